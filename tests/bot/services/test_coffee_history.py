"""The coffee round's carried history (issue #12): the snapshot stored with each round
gives the next round exactly the History that reading every group member row would,
on SQLite and PostgreSQL; a snapshot that does not cover the latest rounds is not used;
and it commits or rolls back with its round."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from sqlalchemy import select

from bot.core.app import Kindred
from bot.core.settings import Settings
from bot.domain.matching import History
from bot.services import coffee as service
from storage import coffee
from storage.coffee import CoffeeGroup, CoffeeGroupMember, CoffeeHistory, CoffeeProgram, CoffeeRound
from storage.db import Database
from tests.bot.coffee_helpers import Person, add_people, program_with, stored_rounds
from tests.conftest import Clock
from tests.driver import Community
from tests.fakes.platform import FakePlatform

FIRST_ROUND = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)  # Monday 09:00 in Berlin
WEEK = timedelta(days=7)
NINE = [Person(f"p{index}", company=f"c{index % 4}") for index in range(9)]


@pytest.fixture
async def app(settings: Settings, db: Database, clock: Clock) -> AsyncIterator[Kindred]:
    kindred = Kindred(replace(settings, database_url=str(db.url)), db, clock=clock)
    kindred.attach(FakePlatform())
    yield kindred
    await kindred.stop()


@pytest.fixture
def members(app: Kindred, clock: Clock) -> Community:
    platform = app.platforms["fake"]
    assert isinstance(platform, FakePlatform)
    return Community(app, platform, clock)


def assert_same(carried: History, read: History) -> None:
    assert carried.member_ids.dtype == read.member_ids.dtype
    assert carried.member_ids.tolist() == read.member_ids.tolist()
    assert np.array_equal(carried.first, read.first)
    assert np.array_equal(carried.second, read.second)
    assert np.array_equal(carried.rounds_ago, read.rounds_ago)
    assert carried.last_met == read.last_met
    assert carried.trio_last_round == read.trio_last_round
    assert carried.left_out_last_round == read.left_out_last_round
    assert carried.blocked == read.blocked


async def program(app: Kindred) -> CoffeeProgram:
    async with app.db.sessions() as session:
        return (await session.execute(select(CoffeeProgram))).scalar_one()


async def check_snapshot(app: Kindred, *, current: bool = True) -> History:
    """The history the next round would use equals the one read from the rows."""
    found = await program(app)
    async with app.db.sessions() as session:
        loaded = await service.load_history(session, found)
        read = await service.read_history(session, found)
    assert loaded.from_snapshot is current
    assert_same(loaded.history, read)
    return loaded.history


class RowReads:
    """Counts the reads of group member rows for a history (the slow path)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls = 0
        real = coffee.grouped_members

        async def counted(*args: object, **kwargs: object) -> object:
            self.calls += 1
            return await real(*args, **kwargs)  # type: ignore[arg-type]

        monkeypatch.setattr(coffee, "grouped_members", counted)


async def test_the_snapshot_equals_the_rows_over_rounds_with_churn_blocks_and_a_trio(
    app: Kindred, members: Community, monkeypatch: pytest.MonkeyPatch
) -> None:
    await program_with(members, NINE)
    await members.say("coffee block <@p1>", "p0")
    reads = RowReads(monkeypatch)
    trios = 0
    for week in range(6):
        before = reads.calls
        await members.advance(FIRST_ROUND + week * WEEK)
        # The first round had no snapshot yet; every later one used the stored one.
        assert reads.calls - before == (1 if week == 0 else 0)
        latest = (await stored_rounds(app))[-1]
        assert latest.occurrence == FIRST_ROUND + week * WEEK
        trios += bool(latest.in_trio)
        history = await check_snapshot(app)
        assert frozenset({"p0", "p1"}) in history.blocked
        # Churn: one leaves, a newcomer joins; the count stays odd or turns even.
        leaver, newcomer = f"p{week}", Person(f"n{week}", company="c9")
        await members.say("coffee leave", leaver)
        await add_people(app, newcomer)
        await members.say("coffee join", newcomer.user_id)
        if week % 2:
            await add_people(app, Person(f"m{week}"))
            await members.say("coffee join", f"m{week}")
        # An admin's extra round in between uses the snapshot too.
        if week == 3:
            await members.advance(FIRST_ROUND + week * WEEK + timedelta(days=1))
            before = reads.calls
            assert "Round started" in await members.say("coffee run-now")
            assert reads.calls == before
            assert (await stored_rounds(app))[-1].manual
            await check_snapshot(app)
    assert trios >= 3
    # Members who left stay in the history, as the rows have them.
    assert "p0" in (await check_snapshot(app)).member_ids.tolist()


async def test_a_round_added_some_other_way_makes_the_snapshot_stale_until_the_next_round(
    app: Kindred, members: Community, monkeypatch: pytest.MonkeyPatch
) -> None:
    await program_with(members, NINE[:6])
    await members.advance(FIRST_ROUND)
    await check_snapshot(app)
    found = await program(app)
    assert found.id is not None
    async with app.db.transaction() as session:
        extra = CoffeeRound(
            program_id=found.id, occurrence=FIRST_ROUND + timedelta(days=1), ends_at=FIRST_ROUND
        )
        session.add(extra)
        await session.flush()
        assert extra.id is not None
        group = CoffeeGroup(
            round_id=extra.id, program_id=found.id, position=0, starter="s", proposer_user_id="p0"
        )
        session.add(group)
        await session.flush()
        assert group.id is not None
        for user in ("p0", "p5"):
            session.add(
                CoffeeGroupMember(
                    group_id=group.id, round_id=extra.id, program_id=found.id, user_id=user
                )
            )
    await check_snapshot(app, current=False)
    reads = RowReads(monkeypatch)
    await members.advance(FIRST_ROUND + WEEK)
    assert reads.calls == 1  # the stale snapshot was not used; the rows were
    await check_snapshot(app)


async def test_only_the_last_history_rounds_are_kept(
    app: Kindred, members: Community, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(coffee, "HISTORY_ROUNDS", 3)
    await program_with(members, NINE[:5])
    for week in range(6):
        await members.advance(FIRST_ROUND + week * WEEK)
        if week == 2:
            await members.say("coffee leave", "p4")  # drops out of the history later
        history = await check_snapshot(app)
        assert int(history.rounds_ago.max()) <= 3
    assert "p4" not in history.member_ids.tolist()


async def test_the_snapshot_rolls_back_with_its_round(
    app: Kindred, members: Community, monkeypatch: pytest.MonkeyPatch
) -> None:
    await program_with(members, NINE[:4])
    await members.advance(FIRST_ROUND)
    found = await program(app)
    [first] = await stored_rounds(app)
    real = service.save_history
    calls = 0

    async def crash_after_saving(*args: object, **kwargs: object) -> bool:
        nonlocal calls
        calls += 1
        saved = await real(*args, **kwargs)  # type: ignore[arg-type]
        if calls == 1:
            raise RuntimeError("replica died after storing the snapshot")
        return saved

    monkeypatch.setattr(service, "save_history", crash_after_saving)
    await members.advance(FIRST_ROUND + WEEK)
    assert [r.id for r in await stored_rounds(app)] == [first.id]
    async with app.db.sessions() as session:
        snapshot = await coffee.history_snapshot(session, found.id or 0)
    assert snapshot is not None and snapshot.round_ids == [first.id]
    await check_snapshot(app)
    await members.advance(FIRST_ROUND + WEEK + timedelta(minutes=1))
    assert len(await stored_rounds(app)) == 2
    await check_snapshot(app)
    async with app.db.sessions() as session:
        assert len(list((await session.execute(select(CoffeeHistory))).scalars())) == 1
