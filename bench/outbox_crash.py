"""A replica killed with SIGKILL in the middle of a round's intros, on PostgreSQL,
against the fake Slack: how many messages end up posted twice, and how long until
the survivor has delivered the dead replica's rows.

    .venv/bin/python bench/outbox_crash.py             # Kindred as it is
    .venv/bin/python bench/outbox_crash.py --no-lookup # without the history lookup

A child process runs one dispatcher (its own owner) over a burst of group intros;
the parent kills it once some intros are out, then a survivor dispatcher takes
over. With --no-lookup the survivor cannot look for first copies, as before #18.
Needs PostgreSQL at KINDRED_TEST_POSTGRES_URL (default: the test database).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import os
import signal
import sys
import time
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from slack_sdk.web.async_client import AsyncWebClient  # noqa: E402
from sqlalchemy import text  # noqa: E402
from sqlalchemy.ext.asyncio import create_async_engine  # noqa: E402

from bot.adapters.slack_platform import SlackPlatform, StaticToken  # noqa: E402
from bot.core.dispatcher import LEASE, OutboxDispatcher  # noqa: E402
from bot.core.outbox import Outbox  # noqa: E402
from bot.core.platform import Message, MessageRef, RateLimit  # noqa: E402
from storage import outbox as outbox_rows  # noqa: E402
from storage.db import Database  # noqa: E402
from tests.fakes.slack import FakeSlack  # noqa: E402

POSTGRES_URL = os.environ.get(
    "KINDRED_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
)
TEAM, TOKEN = "T1", "xoxb-bench"


class WithoutLookup:
    """SlackPlatform minus `find_sent`: the dispatcher cannot look for first copies."""

    name = "slack"

    def __init__(self, platform: SlackPlatform) -> None:
        self._platform = platform

    def __getattr__(self, name: str) -> Any:
        if name == "find_sent":
            raise AttributeError(name)
        return getattr(self._platform, name)

    async def send_dm(self, workspace_id: str, user_id: str, message: Message) -> MessageRef:
        return await self._platform.send_dm(workspace_id, user_id, message)

    def rate_limits(self, kind: str, workspace_id: str, target: str) -> list[tuple[str, RateLimit]]:
        return self._platform.rate_limits(kind, workspace_id, target)


def platform_for(api_url: str, lookup: bool) -> Any:
    platform = SlackPlatform(AsyncWebClient(base_url=api_url), StaticToken(TOKEN), pace=100.0)
    return platform if lookup else WithoutLookup(platform)


async def replica(api_url: str, schema: str, lease: float) -> None:
    db = Database(POSTGRES_URL, schema=schema)
    dispatcher = OutboxDispatcher(
        db, {"slack": platform_for(api_url, True)}, lease=timedelta(seconds=lease)
    )
    await dispatcher.run()


async def run(pairs: int, kill_after: int, lease: float, lookup: bool) -> dict[str, Any]:
    fake = FakeSlack()
    await fake.start()
    # Slack takes tens of milliseconds per call, so a burst has sends in flight.
    fake.delay = 0.05
    fake.add_workspace(TEAM, TOKEN)
    for number in range(2 * pairs):
        fake.add_user(TEAM, f"U{number:04d}")
    schema = f"kindred_bench_{uuid.uuid4().hex[:10]}"
    admin = create_async_engine(POSTGRES_URL)
    async with admin.begin() as connection:
        await connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    db = Database(POSTGRES_URL, schema=schema)
    try:
        await db.upgrade()
        async with db.transaction() as session:
            outbox = Outbox(session, "slack", TEAM)
            for pair in range(pairs):
                people = [f"U{2 * pair:04d}", f"U{2 * pair + 1:04d}"]
                await outbox.group(people, Message(f"Meet, pair {pair}"), key=f"intro:{pair}")
        child = await asyncio.create_subprocess_exec(
            sys.executable, __file__, "--replica", fake.api_url, schema, str(lease), cwd=REPO
        )
        await fake.wait_for(lambda: len(fake.calls_to("chat.postMessage")) >= kill_after, within=60)
        os.kill(child.pid, signal.SIGKILL)
        await child.wait()
        killed_at = time.monotonic()
        await asyncio.sleep(0.5)  # what was in flight reaches Slack anyway
        posted_by_the_dead = len(fake.calls_to("chat.postMessage"))
        survivor = OutboxDispatcher(
            db, {"slack": platform_for(fake.api_url, lookup)}, lease=timedelta(seconds=lease)
        )
        async with asyncio.timeout(lease * 3 + 60):
            await survivor.drain()
        took_over_in = time.monotonic() - killed_at
        texts = collections.Counter(
            message["text"]
            for channel in fake.workspaces[TEAM].channels.values()
            for message in channel["messages"]
        )
        return {
            "intros": pairs,
            "posted before the kill": posted_by_the_dead,
            "posted twice": sum(1 for count in texts.values() if count > 1),
            "missing": pairs - len(texts),
            "found, not re-posted": survivor.recovered_count,
            "all delivered after (s)": round(took_over_in, 1),
            "statuses": await outbox_rows.counts_by_status(db),
        }
    finally:
        await db.dispose()
        async with admin.begin() as connection:
            await connection.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        await admin.dispose()
        await fake.close()


def main() -> None:
    if len(sys.argv) == 5 and sys.argv[1] == "--replica":
        asyncio.run(replica(sys.argv[2], sys.argv[3], float(sys.argv[4])))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=60)
    parser.add_argument("--kill-after", type=int, default=20, help="posts before SIGKILL")
    parser.add_argument("--lease", type=float, default=LEASE.total_seconds())
    parser.add_argument("--no-lookup", action="store_true")
    args = parser.parse_args()
    result = asyncio.run(run(args.pairs, args.kill_after, args.lease, not args.no_lookup))
    for name, value in result.items():
        print(f"{name:>24}: {value}")


if __name__ == "__main__":
    main()
