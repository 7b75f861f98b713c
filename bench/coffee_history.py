"""Loading a coffee program's history for a round: from the group member rows versus from
the snapshot stored with the previous round (issue #12), on SQLite.

    python bench/coffee_history.py                      # 50,000 members x 20 rounds
    python bench/coffee_history.py --members 5000 --rounds 5

The program has `--rounds` rounds of random pairs (an odd count makes a trio) with 10%
churn between rounds, stored as the coffee job stores them. The last round is made by the
engine with the history read from the rows and stored with its snapshot, as
`start_round` does. Then each way of loading the next round's history is timed in fresh
sessions with the garbage collector on, as in the bot, and the two are checked equal.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sqlite3
import statistics
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.domain.matching import Candidate, PairingConfig, make_groups
from bot.services import coffee as service
from storage.coffee import CoffeeProgram, CoffeeRound
from storage.db import Database

START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
CHURN = 0.10
REPEATS = 5


def random_rounds(members: int, rounds: int, seed: int) -> tuple[list[list[list[str]]], list[str]]:
    """`rounds` rounds of random groups over a churning membership; and who is in the
    round after them."""
    rng = np.random.default_rng(seed)
    next_id = members
    current = [f"U{k:09d}" for k in range(members)]
    made: list[list[list[str]]] = []
    for index in range(rounds + 1):
        if index:
            leaving = set(rng.choice(len(current), round(CHURN * len(current)), replace=False))
            current = [m for k, m in enumerate(current) if k not in leaving]
            added = members + index % 2 - len(current)
            current += [f"U{k:09d}" for k in range(next_id, next_id + added)]
            next_id += added
        if index == rounds:
            break
        order = [current[k] for k in rng.permutation(len(current))]
        groups = [order[k : k + 2] for k in range(0, len(order) - 1, 2)]
        if len(order) % 2:
            groups[-1].append(order[-1])
        made.append(groups)
    return made, current


def store_rows(path: Path, program_id: int, rounds: list[list[list[str]]]) -> None:
    """The rounds' rows, written straight with sqlite3 (setting up, not timed)."""
    connection = sqlite3.connect(path)
    group_id = 0
    for index, groups in enumerate(rounds):
        at = (START + timedelta(weeks=index)).isoformat()
        cursor = connection.execute(
            "INSERT INTO coffee_round (program_id, occurrence, manual, ends_at, members_checked,"
            " participants, groups, total_pairs, repeat_pairs, any_repeat_pairs,"
            " same_company_pairs, low_overlap_pairs, in_trio, left_out, solver_ms, created_at)"
            " VALUES (?, ?, 0, ?, 1, 0, ?, 0, 0, 0, 0, 0, '[]', '[]', 0, ?)",
            (program_id, at, at, len(groups), at),
        )
        round_id = cursor.lastrowid
        group_rows, member_rows = [], []
        for position, group in enumerate(groups):
            group_id += 1
            group_rows.append((group_id, round_id, program_id, position, "s", group[0]))
            member_rows += [(group_id, round_id, program_id, user) for user in group]
        connection.executemany(
            "INSERT INTO coffee_group (id, round_id, program_id, position, starter,"
            " proposer_user_id) VALUES (?, ?, ?, ?, ?, ?)",
            group_rows,
        )
        connection.executemany(
            "INSERT INTO coffee_group_member (group_id, round_id, program_id, user_id)"
            " VALUES (?, ?, ?, ?)",
            member_rows,
        )
    connection.commit()
    connection.close()


async def run(members: int, rounds: int) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "bench.db"
        db = Database(f"sqlite+aiosqlite:///{path}")
        await db.upgrade()
        async with db.transaction() as session:
            program = CoffeeProgram(
                platform="fake",
                workspace_id="W",
                channel_id="C",
                anchor_date=date(2026, 1, 5),
                next_round_at=START,
                created_by="bench",
            )
            session.add(program)
            await session.flush()
            assert program.id is not None
            program_id = program.id
        print(f"Setting up {members:,} members x {rounds} rounds of rows ...", flush=True)
        made, last_members = random_rounds(members, rounds, seed=members)
        store_rows(path, program_id, made[:-1])
        rows = sum(len(g) for groups in made for g in groups)

        # The last round as the job makes it: history from the rows, the engine, then
        # the round stored with its snapshot in one transaction.
        async with db.transaction() as session:
            stored = await session.get(CoffeeProgram, program_id)
            assert stored is not None
            loaded = await service.load_history(session, stored)
            assert not loaded.from_snapshot
            result = make_groups(
                [Candidate(m) for m in last_members], loaded.history, PairingConfig(seed=1)
            )
            occurrence = START + timedelta(weeks=rounds - 1)
            round_ = CoffeeRound(program_id=program_id, occurrence=occurrence, ends_at=occurrence)
            session.add(round_)
            await session.flush()
            assert round_.id is not None
            groups = [list(group) for group in result.groups]
            rows += sum(map(len, groups)) - sum(len(g) for g in made[-1])
            await _store_groups(session, program_id, round_.id, groups)
            started = time.perf_counter()
            assert await service.save_history(session, stored, loaded, result, round_)
            save_ms = (time.perf_counter() - started) * 1000.0

        from_rows, from_snapshot = [], []
        for _ in range(REPEATS):
            for way, times in (("rows", from_rows), ("snapshot", from_snapshot)):
                async with db.sessions() as session:
                    stored = await session.get(CoffeeProgram, program_id)
                    assert stored is not None
                    started = time.perf_counter()
                    if way == "rows":
                        history = await service.read_history(session, stored)
                    else:
                        snapshot = await service.load_history(session, stored)
                        assert snapshot.from_snapshot
                        history = snapshot.history
                    times.append((time.perf_counter() - started) * 1000.0)
                    if way == "rows":
                        read = history
                    else:
                        assert history.last_met == read.last_met
        await db.dispose()
        size = path.stat().st_size
    rows_ms, snapshot_ms = statistics.median(from_rows), statistics.median(from_snapshot)
    print(
        f"{members:,} members, {rounds} rounds, {rows:,} group member rows, "
        f"{history.first.size:,} met pairs, database {size / 1e6:.0f} MB"
    )
    print(f"  from the rows:     median {rows_ms:8.1f} ms  (runs {fmt(from_rows)})")
    print(f"  from the snapshot: median {snapshot_ms:8.1f} ms  (runs {fmt(from_snapshot)})")
    print(f"  ratio rows/snapshot {rows_ms / snapshot_ms:.1f}x")
    print(f"  storing the snapshot with the round: {save_ms:.1f} ms")


async def _store_groups(
    session: object, program_id: int, round_id: int, groups: list[list[str]]
) -> None:
    from sqlalchemy import insert, select
    from sqlalchemy.ext.asyncio import AsyncSession
    from sqlalchemy.sql import func

    from storage.coffee import CoffeeGroup, CoffeeGroupMember

    assert isinstance(session, AsyncSession)
    first = int((await session.execute(select(func.max(CoffeeGroup.id)))).scalar() or 0) + 1
    await session.execute(
        insert(CoffeeGroup),
        [
            {
                "id": first + k,
                "round_id": round_id,
                "program_id": program_id,
                "position": k,
                "starter": "s",
                "proposer_user_id": group[0],
            }
            for k, group in enumerate(groups)
        ],
    )
    await session.execute(
        insert(CoffeeGroupMember),
        [
            {"group_id": first + k, "round_id": round_id, "program_id": program_id, "user_id": m}
            for k, group in enumerate(groups)
            for m in group
        ],
    )


def fmt(times: list[float]) -> str:
    return ", ".join(f"{t:.0f}" for t in times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=50_000)
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    print(f"CPUs {os.cpu_count()}, load average at start {os.getloadavg()}")
    asyncio.run(run(args.members, args.rounds))
    load = os.getloadavg()
    busy = " (machine loaded: figures are pessimistic)" if load[0] > (os.cpu_count() or 1) else ""
    print(f"load average at end {load}{busy}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
