"""Mastermind storage on SQLite and PostgreSQL: one current cycle, forming marked
once, one application and one entry per member (also under concurrent inserts),
ratings replaced not doubled, history of past groups, the tick's queries, the
period rows the figures read, and what `/kindred privacy` sees and forgets."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.exc import IntegrityError

from storage import mastermind as store
from storage import outbox as outbox_rows
from storage.db import Database
from storage.mastermind import (
    MastermindApplication,
    MastermindCycle,
    MastermindGroup,
    MastermindSession,
)

NOW = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)
FIRST = datetime(2026, 12, 1, 16, 0, tzinfo=UTC)


async def make_cycle(db: Database, workspace: str = "W1", **overrides: object) -> int:
    async with db.transaction() as session:
        cycle = MastermindCycle(
            platform="fake",
            workspace_id=workspace,
            name="CX leaders",
            organiser_user_id="UADMIN",
            timezone="UTC",
            deadline=NOW,
            created_at=NOW - timedelta(days=5),
            **overrides,  # type: ignore[arg-type]
        )
        session.add(cycle)
        await session.flush()
        assert cycle.id is not None
        return cycle.id


async def make_group(db: Database, cycle_id: int, users: list[str], number: int = 1) -> int:
    async with db.transaction() as session:
        group = MastermindGroup(
            cycle_id=cycle_id, number=number, slot_start=0, slot_end=60, first_session_at=FIRST
        )
        session.add(group)
        await session.flush()
        assert group.id is not None
        for seat, user in enumerate(users):
            session.add(
                MastermindApplication(
                    cycle_id=cycle_id,
                    user_id=user,
                    challenge="Churn",
                    slots_text="Tue 17:00-19:00",
                    timezone="UTC",
                    status="grouped",
                    group_id=group.id,
                    seated_at=NOW + timedelta(microseconds=seat),
                )
            )
        for number_ in (1, 2):
            session.add(
                MastermindSession(
                    group_id=group.id,
                    number=number_,
                    starts_at=FIRST + timedelta(weeks=number_ - 1),
                    next_event="agenda",
                    next_event_at=FIRST + timedelta(weeks=number_ - 1, hours=-24),
                )
            )
        return group.id


async def test_the_current_cycle_is_the_one_not_ended(db: Database) -> None:
    ended = await make_cycle(db, state="ended", ended_at=NOW)
    running = await make_cycle(db, state="running")
    await make_cycle(db, workspace="W2")
    async with db.sessions() as session:
        current = await store.current_cycle(session, "fake", "W1")
        latest = await store.latest_cycle(session, "fake", "W1")
        assert current is not None and current.id == running
        assert latest is not None and latest.id == running
        assert await store.current_cycle(session, "fake", "W3") is None
        assert (await store.get_cycle(session, ended)) is not None


async def test_forming_is_marked_once_even_concurrently(db: Database) -> None:
    cycle_id = await make_cycle(db)

    async def mark() -> bool:
        async with db.transaction() as session:
            return await store.mark_formed(session, cycle_id, NOW)

    results = await asyncio.gather(mark(), mark())
    assert sorted(results) == [False, True]
    async with db.sessions() as session:
        cycle = await store.get_cycle(session, cycle_id)
        assert cycle is not None and cycle.state == "running" and cycle.formed_at == NOW


async def test_one_application_per_member_and_cycle(db: Database) -> None:
    cycle_id = await make_cycle(db)
    await make_group(db, cycle_id, ["ana"])
    with pytest.raises(IntegrityError):
        async with db.transaction() as session:
            session.add(
                MastermindApplication(
                    cycle_id=cycle_id,
                    user_id="ana",
                    challenge="Again",
                    slots_text="",
                    timezone="UTC",
                )
            )


async def test_seats_sessions_and_the_ticks_queries(db: Database) -> None:
    cycle_id = await make_cycle(db)
    group_id = await make_group(db, cycle_id, ["cid", "ana", "bob"])
    async with db.transaction() as session:
        seated = await store.seated(session, group_id)
        assert [a.user_id for a in seated] == ["cid", "ana", "bob"]  # seating order
        seated[0].status, seated[0].left_at = "left", NOW
    async with db.sessions() as session:
        assert [a.user_id for a in await store.seated(session, group_id)] == ["ana", "bob"]
        assert len(await store.ever_seated(session, group_id)) == 3
        assert [g.id for g in await store.groups_of(session, cycle_id)] == [group_id]
        assert await store.due_sessions(session, NOW) == []
        due = await store.due_sessions(session, FIRST)
        assert [s.number for s in due] == [1]
        assert await store.next_event_after(session, NOW) == FIRST - timedelta(hours=24)
        assert await store.next_event_after(session, FIRST + timedelta(weeks=2)) is None
        assert [s.number for s in await store.sessions_of(session, group_id)] == [1, 2]


async def test_entries_are_created_once_even_concurrently(db: Database) -> None:
    cycle_id = await make_cycle(db)
    group_id = await make_group(db, cycle_id, ["ana"])
    async with db.sessions() as session:
        (first, _) = await store.sessions_of(session, group_id)
    assert first.id is not None

    async def touch() -> int:
        async with db.transaction() as session:
            entry = await store.entry(session, first.id or 0, "ana")
            entry.attended = True
            assert entry.id is not None
            return entry.id

    ids = await asyncio.gather(touch(), touch())
    assert ids[0] == ids[1]
    async with db.sessions() as session:
        (entry,) = await store.entries_of(session, [first.id])
        assert entry.attended is True
        assert await store.entries_of(session, []) == []


async def test_ratings_are_replaced_not_doubled(db: Database) -> None:
    cycle_id = await make_cycle(db)
    group_id = await make_group(db, cycle_id, ["ana", "bob"])
    async with db.transaction() as session:
        await store.save_rating(session, group_id, "ana", 3, "Ok", False, NOW)
        await store.save_rating(session, group_id, "ana", 5, "Great", True, NOW)
        await store.save_rating(session, group_id, "bob", 4, "", False, NOW)
    async with db.sessions() as session:
        ratings = await store.ratings_of(session, [group_id])
    assert [(r.user_id, r.score, r.comment, r.continue_together) for r in ratings] == [
        ("ana", 5, "Great", True),
        ("bob", 4, "", False),
    ]


async def test_past_groups_are_the_earlier_cycles_of_the_community(db: Database) -> None:
    old = await make_cycle(db, state="ended", ended_at=NOW)
    await make_group(db, old, ["bob", "ana"])
    await make_group(db, old, ["cid", "dan"], number=2)
    elsewhere = await make_cycle(db, workspace="W2", state="ended", ended_at=NOW)
    await make_group(db, elsewhere, ["eve", "fay"])
    current = await make_cycle(db)
    await make_group(db, current, ["gus", "hal"])
    async with db.transaction() as session:
        (first_group, _) = await store.groups_of(session, old)
        await store.save_rating(session, first_group.id or 0, "ana", 5, "", True, NOW)
        await store.save_rating(session, first_group.id or 0, "bob", 4, "", False, NOW)
    async with db.sessions() as session:
        assert await store.past_groups(session, "fake", "W1", current) == [
            store.PastGroup(("ana", "bob"), frozenset({"ana"})),
            store.PastGroup(("cid", "dan"), frozenset()),
        ]


async def test_the_conversation_channel_is_where_the_intro_landed(db: Database) -> None:
    async with db.transaction() as session:
        row = await outbox_rows.enqueue(
            session,
            platform="fake",
            workspace_id="W1",
            kind="group",
            target="",
            payload={"text": "hi"},
            details={"user_ids": ["ana"], "channel_id": None, "title": "t"},
            dedupe_key="mastermind.intro:1",
        )
        assert await store.conversation_channel(session, row) is None
    await outbox_rows.mark_sent(db, [(row, {"channel_id": "G1", "message_id": "m1"})])
    async with db.sessions() as session:
        assert await store.conversation_channel(session, row) == "G1"


async def test_period_rows_and_privacy(db: Database) -> None:
    cycle_id = await make_cycle(db, state="running")
    group_id = await make_group(db, cycle_id, ["ana", "bob"])
    other = await make_cycle(db, workspace="W2")
    await make_group(db, other, ["ana"])
    async with db.transaction() as session:
        (first, _) = await store.sessions_of(session, group_id)
        entry = await store.entry(session, first.id or 0, "ana")
        entry.update_text, entry.update_at = "Moved", FIRST
        entry.commitment_text, entry.commitment_at = "Call", FIRST
        await store.save_rating(session, group_id, "ana", 5, "Great", True, NOW)
    async with db.sessions() as session:
        rows = await store.community_rows(session, "fake", "W1", NOW, NOW + timedelta(weeks=4))
        assert [c.id for c in rows.cycles] == [cycle_id]
        assert len(rows.groups) == 1 and len(rows.seats) == 2 and len(rows.sessions) == 2
        assert len(rows.entries) == 1 and len(rows.ratings) == 1
        before = await store.community_rows(
            session, "fake", "W1", NOW - timedelta(weeks=9), NOW - timedelta(weeks=8)
        )
        assert before.cycles == []
        about = await store.stored_about(session, "fake", "W1", "ana")
        assert about == store.StoredAbout(applications=1, updates=1, commitments=1, ratings=1)
        nothing = await store.stored_about(session, "fake", "W1", "zed")
        assert nothing == store.StoredAbout(0, 0, 0, 0)
    async with db.transaction() as session:
        assert await store.forget_ratings(session, "fake", "W2", "ana") == 0
        assert await store.forget_ratings(session, "fake", "W1", "ana") == 1
        assert await store.forget_ratings(session, "fake", "W1", "ana") == 0
    async with db.sessions() as session:
        assert (await store.stored_about(session, "fake", "W1", "ana")).ratings == 0
