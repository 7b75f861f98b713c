"""Console start-up, per-command latency and memory footprint (issue #2).

1. Start-up: seconds until `kindred run` prints its console banner, beside the
   bare interpreter start-up measured in the same run.
2. Latency: median and p99 of 1,000 `/kindred profile show` on SQLite through the
   whole path (parse, transaction, template, console rendering), beside a bare
   `SELECT` of the same member row on the same database.
3. Memory: resident set size of a process holding a 10,000-member community
   (every member row loaded, the console's roster of 10,000).
4. Simulated time (issue #18): `:advance 30d` with 50 members in virtual coffee,
   an AMA and a weekly digest, jumping from one due moment to the next; beside
   the old behaviour (a look at every tick every 15 minutes) on an identical
   community, measured over its first days and scaled to 30 (`--full` steps all
   30 days), and the load average.

Run: python bench/console.py
"""

from __future__ import annotations

import asyncio
import io
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import insert, select

from bot.adapters.console import ADVANCE_STEP, ConsoleCommunity, ConsoleSession
from bot.core.app import Kindred
from bot.core.settings import Settings
from storage.db import Database
from storage.models import Member
from storage.types import utcnow

REPO = Path(__file__).resolve().parent.parent


def startup_seconds(directory: Path) -> tuple[float, float]:
    environment = {
        **os.environ,
        "DATABASE_URL": f"sqlite+aiosqlite:///{directory / 'startup.db'}",
        "KINDRED_LOG_LEVEL": "WARNING",
    }
    # The first start also creates the schema; measure a warm start like an operator's.
    subprocess.run(
        [sys.executable, "-m", "bot.core.cli", "db", "upgrade"],
        env=environment,
        check=True,
        capture_output=True,
        cwd=directory,
    )
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "bot.core.cli", "run"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=environment,
        cwd=directory,
    )
    assert process.stdout is not None and process.stdin is not None
    for line in process.stdout:
        if line.startswith("Kindred console:"):
            break
    ready = time.perf_counter() - started
    process.stdin.write(":quit\n")
    process.stdin.close()
    process.wait(timeout=30)
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", "pass"], check=True)
    return ready, time.perf_counter() - started


async def latency(directory: Path, count: int) -> tuple[list[float], list[float]]:
    db = Database(f"sqlite+aiosqlite:///{directory / 'latency.db'}")
    await db.upgrade()
    settings = replace(Settings(), config_dir=REPO / "config")
    kindred = Kindred(settings, db)
    session = ConsoleSession(
        kindred, ConsoleCommunity.load(REPO / "config" / "console.yml"), io.StringIO()
    )
    await session.seed()
    command_times = []
    for _ in range(count):
        session.output = io.StringIO()
        session.platform.write = session.write
        started = time.perf_counter()
        await session.execute("/kindred profile show")
        command_times.append(time.perf_counter() - started)
    select_times = []
    for _ in range(count):
        started = time.perf_counter()
        async with db.sessions() as database_session:
            query = select(Member).where(Member.user_id == "alice")
            (await database_session.execute(query)).scalar_one()
        select_times.append(time.perf_counter() - started)
    await db.dispose()
    return command_times, select_times


async def memory(directory: Path, members: int) -> float:
    db = Database(f"sqlite+aiosqlite:///{directory / 'memory.db'}")
    await db.upgrade()
    rows = [
        {
            "platform": "console",
            "workspace_id": "demo",
            "user_id": f"u{n}",
            "display_name": f"Member {n}",
            "is_bot": False,
            "deactivated": False,
            "company": f"Company {n % 800}",
            "timezone": "Europe/Berlin",
            "topics": ["NPS", "journey mapping"],
            "first_seen_at": None,
        }
        for n in range(members)
    ]
    async with db.transaction() as session:
        for row in rows:
            row.pop("first_seen_at")
        await session.execute(insert(Member), rows)
    community = ConsoleCommunity.load(REPO / "config" / "console.yml")
    community.members.update({row["user_id"]: dict(row) for row in rows})
    kindred = Kindred(replace(Settings(), config_dir=REPO / "config"), db)
    session = ConsoleSession(kindred, community, io.StringIO())
    async with db.sessions() as database_session:
        loaded = list((await database_session.execute(select(Member))).scalars())
    assert len(loaded) >= members
    await session.platform.list_members("demo")
    await session.execute("/kindred profile show @u42")
    await db.dispose()
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def busy_month(directory: Path, name: str, members: int) -> tuple[ConsoleSession, Database]:
    """A console community of `members` in virtual coffee, with an AMA in ten days
    and a weekly digest with a link shared, on its own database."""
    db = Database(f"sqlite+aiosqlite:///{directory / name}")
    await db.upgrade()
    offset = [timedelta(0)]

    def clock() -> datetime:
        return utcnow() + offset[0]

    def advance(by: timedelta) -> None:
        offset[0] += by

    community = ConsoleCommunity.load(REPO / "config" / "console.yml")
    for n in range(members - len(community.members)):
        community.members[f"m{n}"] = {
            "id": f"m{n}",
            "name": f"Member {n}",
            "company": f"Company {n % 9}",
            "timezone": ("Europe/Berlin", "America/New_York", "Asia/Dubai")[n % 3],
        }
    kindred = Kindred(replace(Settings(), config_dir=REPO / "config"), db, clock=clock)
    session = ConsoleSession(kindred, community, io.StringIO(), advance)
    await session.seed()
    ama_at = clock() + timedelta(days=10)
    script = [
        ":in #virtual-coffee",
        "/kindred coffee setup weekday=monday hour=9 timezone=Europe/Berlin",
        *(line for user in community.members for line in (f":as {user}", "/kindred coffee join")),
        ":as alice",
        ":in #ama",
        f'/kindred ama schedule host:@erin title:"Scaling support" at:"{ama_at:%Y-%m-%d %H:%M}"',
        ":in #general",
        "/kindred curate setup channel=#general weekday=fri hour=16 timezone=Europe/Berlin",
        "/kindred digest subscribe",
        "/kindred curate add https://example.invalid/cx-metrics",
    ]
    for line in script:
        await session.execute(line)
    await kindred.start()
    return session, db


async def step_like_before(session: ConsoleSession, span: timedelta) -> None:
    """The old `:advance`: move 15 minutes, look at every tick, deliver, repeat."""
    assert session.clock_offset is not None
    scheduler = session.kindred.scheduler
    while span > timedelta(0):
        step = min(span, ADVANCE_STEP)
        session.clock_offset(step)
        span -= step
        runs = scheduler.runs
        await scheduler.catch_up()
        if scheduler.runs != runs:
            await session.kindred.dispatcher.drain()


async def simulated_month(directory: Path, members: int, baseline_days: int) -> dict[str, float]:
    session, db = await busy_month(directory, "month-jump.db", members)
    output = io.StringIO()
    session.output = output
    started = time.perf_counter()
    await session.execute(":advance 30d")
    jumped = time.perf_counter() - started
    text = output.getvalue()
    await session.kindred.stop()
    await db.dispose()
    stepping, db = await busy_month(directory, "month-step.db", members)
    stepping.output = io.StringIO()
    started = time.perf_counter()
    await step_like_before(stepping, timedelta(days=baseline_days))
    stepped = time.perf_counter() - started
    await stepping.kindred.stop()
    await db.dispose()
    return {
        "jump": jumped,
        "step": stepped * 30 / baseline_days,
        "intros": text.count("meet your match"),
        "reminders": text.count("Halfway through"),
        "ama": len(re.findall(r"Scaling support", text)),
        "digests": text.count("Worth your time"),
    }


def main() -> None:
    full = "--full" in sys.argv[1:]
    with tempfile.TemporaryDirectory() as name:
        directory = Path(name)
        ready, interpreter = startup_seconds(directory)
        print(
            f"1) Console ready in {ready:.2f} s (target ≤ 2 s); bare Python start-up "
            f"{interpreter:.2f} s; ratio {ready / interpreter:.1f}×"
        )
        commands, selects = asyncio.run(latency(directory, 1000))
        median = statistics.median(commands) * 1000
        p99 = statistics.quantiles(commands, n=100)[98] * 1000
        bare = statistics.median(selects) * 1000
        print(
            f"2) /kindred profile show ×1000 on SQLite: median {median:.2f} ms, p99 {p99:.2f} ms "
            f"(target median ≤ 20 ms); bare SELECT median {bare:.2f} ms; ratio "
            f"{median / bare:.1f}×"
        )
        rss = asyncio.run(memory(directory, 10_000))
        print(f"3) Resident memory with 10,000 members loaded: {rss:.0f} MB (target < 150 MB)")
        days = 30 if full else 3
        month = asyncio.run(simulated_month(directory, 50, days))
        scaled = "" if full else f", measured over {days} days and scaled to 30"
        print(
            f"4) :advance 30d, 50 members in coffee, an AMA and a digest: {month['jump']:.2f} s "
            f"(target ≤ 5 s; {month['intros']:.0f} intros, {month['reminders']:.0f} reminders, "
            f"{month['ama']:.0f} AMA posts, {month['digests']:.0f} digests); stepping every "
            f"15 minutes as before: {month['step']:.1f} s{scaled}; ratio "
            f"{month['step'] / month['jump']:.0f}×"
        )
    print("Load average (1, 5, 15 min): " + ", ".join(f"{load:.2f}" for load in os.getloadavg()))


if __name__ == "__main__":
    main()
