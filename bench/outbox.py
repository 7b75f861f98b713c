"""Outbox dispatcher throughput and pacing (issue #2).

1. Unlimited platform fake: messages/s delivered on SQLite and PostgreSQL, beside
   the raw rate of the fake itself (what a dispatcher with zero overhead would do).
2. Slack-like fake (20 accepted calls/s, HTTP-429-style RateLimited with
   Retry-After beyond): achieved vs allowed rate, with our pacing and with
   Retry-After alone, and lost/doubled counts.

Run: python bench/outbox.py [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import os
import tempfile
import time
import uuid
from collections.abc import Sequence
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from bot.core.dispatcher import OutboxDispatcher
from bot.core.outbox import Outbox
from bot.core.platform import MemberInfo, Message, MessageRef, RateLimit, RateLimited
from storage.db import Database

POSTGRES_URL = os.environ.get(
    "KINDRED_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
)


class CountingPlatform:
    """Accepts everything instantly; counts deliveries per target."""

    name = "bench"

    def __init__(self, limits: Sequence[tuple[str, RateLimit]] = ()) -> None:
        self.delivered: collections.Counter[str] = collections.Counter()
        self.limits = list(limits)
        self.rejected = 0

    def accept(self, target: str) -> MessageRef:
        self.delivered[target] += 1
        return MessageRef(target, str(sum(self.delivered.values())))

    async def send_dm(self, workspace_id: str, user_id: str, message: Message) -> MessageRef:
        return self.accept(user_id)

    async def post_channel(
        self, workspace_id: str, channel_id: str, message: Message
    ) -> MessageRef:
        return self.accept(channel_id)

    async def open_group(
        self, workspace_id: str, user_ids: Sequence[str], channel_id: str | None, title: str
    ) -> str:
        return "G-" + "-".join(user_ids)

    async def reply_in_thread(
        self, workspace_id: str, parent: MessageRef, message: Message
    ) -> MessageRef:
        return self.accept(parent.channel_id)

    async def update_message(
        self, workspace_id: str, ref: MessageRef, message: Message
    ) -> MessageRef:
        return ref

    async def list_members(
        self, workspace_id: str, channel_id: str | None = None
    ) -> list[MemberInfo]:
        return []

    async def is_admin(self, workspace_id: str, user_id: str) -> bool:
        return False

    def rate_limits(self, kind: str, workspace_id: str, target: str) -> list[tuple[str, RateLimit]]:
        return self.limits


class SlackLikePlatform(CountingPlatform):
    """At most `allowed` accepted calls per rolling second; beyond, a 429 whose
    Retry-After says when the oldest accepted call leaves the window."""

    def __init__(self, allowed: int, limits: Sequence[tuple[str, RateLimit]] = ()) -> None:
        super().__init__(limits)
        self.allowed = allowed
        self.window: collections.deque[float] = collections.deque()

    def accept(self, target: str) -> MessageRef:
        now = time.monotonic()
        while self.window and now - self.window[0] >= 1.0:
            self.window.popleft()
        if len(self.window) >= self.allowed:
            self.rejected += 1
            raise RateLimited(max(0.05, 1.0 - (now - self.window[0])))
        self.window.append(now)
        return super().accept(target)


async def queue(db: Database, count: int) -> None:
    async with db.transaction() as session:
        outbox = Outbox(session, "bench", "W1")
        for number in range(count):
            await outbox.dm(f"U{number}", Message(f"message {number}"), key=f"m{number}")


async def deliver(db: Database, platform: CountingPlatform, count: int) -> float:
    await queue(db, count)
    dispatcher = OutboxDispatcher(db, {"bench": platform})
    started = time.perf_counter()
    await dispatcher.drain()
    elapsed = time.perf_counter() - started
    lost = sum(1 for n in range(count) if platform.delivered[f"U{n}"] == 0)
    doubled = sum(1 for value in platform.delivered.values() if value > 1)
    if lost or doubled:
        raise SystemExit(f"FAILED: {lost} lost, {doubled} doubled")
    return elapsed


async def with_sqlite(work):  # type: ignore[no-untyped-def]
    with tempfile.TemporaryDirectory() as directory:
        db = Database(f"sqlite+aiosqlite:///{Path(directory) / 'bench.db'}")
        await db.upgrade()
        try:
            return await work(db)
        finally:
            await db.dispose()


async def with_postgres(work):  # type: ignore[no-untyped-def]
    schema = f"kindred_bench_{uuid.uuid4().hex[:8]}"
    admin = create_async_engine(POSTGRES_URL)
    async with admin.begin() as connection:
        await connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    db = Database(POSTGRES_URL, schema=schema)
    try:
        await db.upgrade()
        return await work(db)
    finally:
        await db.dispose()
        async with admin.begin() as connection:
            await connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        await admin.dispose()


async def raw_platform_rate(count: int) -> float:
    """Messages/s of the fake alone, called in a tight loop: the ceiling."""
    platform = CountingPlatform()
    started = time.perf_counter()
    for number in range(count):
        await platform.send_dm("W1", f"U{number}", Message("x"))
    return count / (time.perf_counter() - started)


async def main(quick: bool) -> None:
    unlimited = 2_000 if quick else 10_000
    print(f"1) Unlimited platform fake, {unlimited} DMs")
    print(f"   fake alone (baseline): {await raw_platform_rate(unlimited):>12,.0f} msg/s")
    for name, runner in (("SQLite", with_sqlite), ("PostgreSQL", with_postgres)):
        elapsed = await runner(lambda db: deliver(db, CountingPlatform(), unlimited))
        rate = unlimited / elapsed
        verdict = "ok" if rate >= 1000 else "BELOW TARGET"
        print(f"   dispatcher on {name:<10}: {rate:>10,.0f} msg/s  ({verdict}: target ≥ 1,000)")

    allowed = 20
    paced_count = 200 if quick else 600
    print(
        f"\n2) Slack-like fake: {allowed} accepted calls/s, 429 + Retry-After beyond; "
        f"{paced_count} DMs"
    )
    for label, limits in (
        ("paced by our token bucket", [("bench:W1", RateLimit(per_second=allowed, burst=allowed))]),
        ("Retry-After only (no pacing)", []),
    ):
        platform = SlackLikePlatform(allowed, limits)
        elapsed = await with_sqlite(lambda db, p=platform: deliver(db, p, paced_count))
        achieved = paced_count / elapsed
        print(
            f"   {label:<30} achieved {achieved:5.1f}/s of allowed {allowed}/s "
            f"= {achieved / allowed:6.1%}; 429s received: {platform.rejected}; "
            "lost 0, doubled 0"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller runs (smoke test)")
    asyncio.run(main(parser.parse_args().quick))
