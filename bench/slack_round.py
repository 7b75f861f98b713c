"""A 2,000-member round through the Slack adapter, against the fake Slack enforcing
Slack's published rate limits (issue #4).

1,000 group intros (each a conversations.open with two people, then a
chat.postMessage), queued by one `/kindred` command in one transaction and
delivered by the outbox dispatcher through `SlackPlatform`. Per method and
workspace the fake enforces conversations.open at Tier 3 (50/min, bursts of 20),
chat.postMessage at 1/s per channel (bursts of 3) within 300/min per workspace,
users.list at Tier 2 (20/min), and answers 429 + Retry-After beyond.

Tier 3 makes a real 1,000-group round take about 20 minutes, so time is compressed:
the fake's limits, its Retry-After values and Kindred's pacing all run --speedup
times faster; the report shows the measured time and its real-time equivalent.
Two runs: Kindred's pacing, and pacing off (only Retry-After honoured).

Run: python bench/slack_round.py [--members 2000] [--speedup 20]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bot.adapters.slack_platform import (  # noqa: E402
    OPEN_PER_WORKSPACE,
    POST_PER_CHANNEL,
    POST_PER_WORKSPACE,
)
from bot.core.context import Context  # noqa: E402
from bot.core.mentions import mention  # noqa: E402
from bot.core.platform import Button, Message, Reply  # noqa: E402
from bot.core.registry import Handlers  # noqa: E402
from bot.core.settings import Settings  # noqa: E402
from storage.db import Database  # noqa: E402
from tests.bot.adapters.slack_harness import (  # noqa: E402
    ADMIN,
    TEAM,
    populate,
    running_slack,
    slack_settings,
)
from tests.fakes.slack import FakeSlack  # noqa: E402

# Users.list is Tier 2: 20+ per minute.
USERS_LIST_PER_MINUTE = 20
# "No pacing": buckets so fast they never wait; only Retry-After slows delivery.
UNPACED = 1_000_000.0

bench = Handlers("bench")


@bench.command("bench round", "Queue a group intro for every pair of bench members")
async def queue_round(ctx: Context) -> Reply:
    people = [m.user_id for m in await ctx.platform.list_members(TEAM) if m.user_id[:2] == "UP"]
    for index in range(0, len(people) - 1, 2):
        pair = people[index : index + 2]
        intro = Message(
            f"☕ Meet {mention(pair[0])} and {mention(pair[1])}! Find 30 minutes this week.",
            buttons=(Button("We met", "bench.met", str(index)),),
            mentions=tuple(pair),
        )
        await ctx.outbox.group(pair, intro, key=f"bench-round:{index // 2}")
    return Reply.text(f"Queued {len(people) // 2} intros.")


@dataclass
class Outcome:
    label: str
    seconds: float
    groups: int
    lost: int
    doubled: int
    refused: int
    opens: int
    posts: int


async def run(members: int, speedup: float, pace: float, label: str) -> Outcome:
    fake = FakeSlack(retry_after_unit=1 / speedup)
    await fake.start()
    populate(fake)
    for number in range(members):
        fake.add_user(TEAM, f"UP{number:05d}", f"p{number}")
    fake.limit("users.list", USERS_LIST_PER_MINUTE / 60 * speedup, USERS_LIST_PER_MINUTE)
    fake.limit(
        "conversations.open", OPEN_PER_WORKSPACE.per_second * speedup, OPEN_PER_WORKSPACE.burst
    )
    fake.limit(
        "chat.postMessage", POST_PER_WORKSPACE.per_second * speedup, POST_PER_WORKSPACE.burst
    )
    fake.limit_per_channel(POST_PER_CHANNEL.per_second * speedup, POST_PER_CHANNEL.burst)
    try:
        with tempfile.TemporaryDirectory() as directory:
            db = Database(f"sqlite+aiosqlite:///{directory}/round.db")
            await db.upgrade()
            settings = replace(slack_settings(Settings(), fake), log_level="WARNING")
            async with running_slack(fake, settings, db, extra_handlers=[bench], pace=pace) as h:
                started = time.perf_counter()
                answer = await h.command("bench round", user=ADMIN, within=120)
                print(f"  {label}: {answer['text']}", flush=True)
                await h.drain()
                seconds = time.perf_counter() - started
            await db.dispose()
    finally:
        await fake.close()
    per_group = collections.Counter(
        len(channel["messages"]) for channel in fake.channels_of(TEAM, mpim=True)
    )
    return Outcome(
        label=label,
        seconds=seconds,
        groups=sum(per_group.values()),
        lost=members // 2 - sum(count for size, count in per_group.items() if size >= 1),
        doubled=sum(count for size, count in per_group.items() if size > 1),
        refused=len([call for call in fake.calls if call.status == 429]),
        opens=len(fake.calls_to("conversations.open")),
        posts=len(fake.calls_to("chat.postMessage")),
    )


def report(outcomes: list[Outcome], members: int, speedup: float) -> None:
    print(
        f"\n{members}-member round ({members // 2} group intros) against Slack's published "
        f"limits, time compressed {speedup:g}×"
    )
    print(
        f"{'':24}{'measured':>10}{'real time':>12}{'lost':>6}{'doubled':>9}"
        f"{'429s':>7}{'opens':>7}{'posts':>7}"
    )
    for outcome in outcomes:
        real = outcome.seconds * speedup
        print(
            f"{outcome.label:24}{outcome.seconds:>9.1f}s{real / 60:>10.1f}min"
            f"{outcome.lost:>6}{outcome.doubled:>9}{outcome.refused:>7}"
            f"{outcome.opens:>7}{outcome.posts:>7}"
        )
    floor = (members // 2 - OPEN_PER_WORKSPACE.burst) / OPEN_PER_WORKSPACE.per_second
    print(
        f"Floor set by conversations.open (Tier 3, {OPEN_PER_WORKSPACE.per_second * 60:g}/min "
        f"after a burst of {OPEN_PER_WORKSPACE.burst}): {floor / 60:.1f} min real time."
    )


async def main(members: int, speedup: float) -> None:
    outcomes = [
        await run(members, speedup, speedup, "Kindred's pacing"),
        await run(members, speedup, UNPACED, "Retry-After only"),
    ]
    report(outcomes, members, speedup)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=2000)
    parser.add_argument("--speedup", type=float, default=20.0)
    arguments = parser.parse_args()
    asyncio.run(main(arguments.members, arguments.speedup))
