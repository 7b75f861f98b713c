"""Console start-up, per-command latency and memory footprint (issue #2).

1. Start-up: seconds until `kindred run` prints its console banner, beside the
   bare interpreter start-up measured in the same run.
2. Latency: median and p99 of 1,000 `/kindred profile show` on SQLite through the
   whole path (parse, transaction, template, console rendering), beside a bare
   `SELECT` of the same member row on the same database.
3. Memory: resident set size of a process holding a 10,000-member community
   (every member row loaded, the console's roster of 10,000).

Run: python bench/console.py
"""

from __future__ import annotations

import asyncio
import io
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from sqlalchemy import insert, select

from bot.adapters.console import ConsoleCommunity, ConsoleSession
from bot.core.app import Kindred
from bot.core.settings import Settings
from storage.db import Database
from storage.models import Member

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


def main() -> None:
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


if __name__ == "__main__":
    main()
