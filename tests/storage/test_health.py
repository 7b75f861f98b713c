"""The health tables and queries on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, date, datetime

from storage import health as store
from storage.db import Database

P, W = "slack", "T1"


def at(day: int, hour: int = 9) -> datetime:
    return datetime(2026, 11, day, hour, tzinfo=UTC)


async def test_activity_counts_and_active_members(db: Database) -> None:
    async with db.transaction() as session:
        for user, channel, day in [
            ("U1", "C1", 2),
            ("U1", "C1", 2),
            ("U1", "C2", 2),
            ("U2", "C1", 3),
            ("U3", "C1", 9),
        ]:
            await store.record_message(session, P, W, user, channel, date(2026, 11, day))
        await store.record_message(session, "discord", W, "U9", "C1", date(2026, 11, 2))
    async with db.sessions() as session:
        # The 8 days before 9 Nov, and the 2 days before 3 Nov (1 and 2 Nov).
        ends = [date(2026, 11, 9), date(2026, 11, 3)]
        assert await store.last_posted(session, P, W, ends, days=8) == [
            {"U1": date(2026, 11, 2), "U2": date(2026, 11, 3)},
            {"U1": date(2026, 11, 2)},
        ]
        assert await store.last_posted(session, P, W, [date(2026, 11, 10)], days=1) == [
            {"U3": date(2026, 11, 9)}
        ]
        assert await store.daily_posters(session, P, W, date(2026, 11, 1), date(2026, 11, 30)) == {
            date(2026, 11, 2): 1,
            date(2026, 11, 3): 1,
            date(2026, 11, 9): 1,
        }
        counts = await store.stored_counts(session, P, W, "U1")
    assert counts == {"activity_days": 2, "newcomer": 0, "asks": 0, "answers": 0}


async def test_top_posters_rank_by_days_then_messages(db: Database) -> None:
    async with db.transaction() as session:
        for user, channel, day in [
            ("U1", "C1", 2),
            ("U1", "C1", 2),
            ("U1", "C2", 2),  # U1: 1 day, 3 messages
            ("U2", "C1", 3),
            ("U2", "C1", 4),  # U2: 2 days, 2 messages
            ("U3", "C1", 5),  # U3: 1 day, 1 message
            ("U4", "C1", 5),  # U4: the same as U3: the id breaks the tie
            ("U5", "C1", 20),  # after the window
        ]:
            await store.record_message(session, P, W, user, channel, date(2026, 11, day))
    async with db.sessions() as session:
        top = await store.top_posters(session, P, W, date(2026, 11, 1), date(2026, 11, 10), 3)
        everyone = await store.top_posters(session, P, W, date(2026, 11, 1), date(2026, 11, 10), 10)
    assert top == [("U2", 2, 2), ("U1", 1, 3), ("U3", 1, 1)]
    assert everyone == [*top, ("U4", 1, 1)]


async def test_newcomers_first_post_and_first_reply(db: Database) -> None:
    async with db.transaction() as session:
        await store.record_join(session, P, W, "N1", at(1))
        await store.record_join(session, P, W, "N1", at(5))  # a second join keeps the first
        await store.note_first_reply(session, P, W, "N1", at(2))  # before any post: ignored
        await store.note_first_post(session, P, W, "N1", at(3))
        await store.note_first_post(session, P, W, "N1", at(4))
        await store.note_first_reply(session, P, W, "N1", at(6))
        await store.note_first_reply(session, P, W, "N1", at(7))
        await store.record_message(session, P, W, "N1", "C1", date(2026, 11, 3))
        await store.record_message(session, P, W, "OLD", "C1", date(2026, 11, 3))
    async with db.sessions() as session:
        (newcomer,) = await store.newcomers(session, P, W, at(1, 0), at(30))
        days = await store.newcomer_activity_days(session, P, W, at(1, 0), date(2026, 12, 1))
    assert (newcomer.joined_at, newcomer.first_post_at, newcomer.first_reply_at) == (
        at(1),
        at(3),
        at(6),
    )
    assert days == {"N1": {date(2026, 11, 3)}}


async def test_pulse_asks_once_answers_once_and_forgets_linked_answers(db: Database) -> None:
    async with db.transaction() as session:
        pulse = await store.start_round(session, P, W, at(1), "Recommend us?", False)
        assert pulse.id is not None
        assert await store.ask(session, pulse.id, "U1")
        assert not await store.ask(session, pulse.id, "U1")
        assert await store.ask(session, pulse.id, "U2")
        assert await store.mark_answered(session, pulse.id, "U1")
        assert not await store.mark_answered(session, pulse.id, "U1")
        assert not await store.mark_answered(session, pulse.id, "U3")  # never asked
        token = await store.add_answer(session, pulse.id, "U1", 9, date(2026, 11, 1))
        await store.add_answer(session, pulse.id, None, 3, date(2026, 11, 2))
        assert await store.add_reason(session, token, "Kind people")
        round_id = pulse.id
    async with db.sessions() as session:
        assert await store.asked_count(session, round_id) == (2, 1)
        assert sorted(await store.scores(session, P, W, date(2026, 11, 1), date(2026, 11, 3))) == [
            3,
            9,
        ]
    async with db.transaction() as session:
        assert await store.forget_answers(session, P, W, "U1") == 1
    async with db.sessions() as session:
        assert await store.round_scores(session, round_id) == [3]


async def test_settings_schedule_and_claimed_advance(db: Database) -> None:
    async with db.transaction() as session:
        settings = await store.settings_for(session, P, W)
        settings.report_channel_id = "CORG"
        settings.report_next_at = at(2)
    async with db.sessions() as session:
        (due,) = await store.reports_due(session, at(3))
        assert await store.next_scheduled_after(session, at(1)) == at(2)
    async with db.transaction() as session:
        assert due.id is not None
        assert await store.advance_report(session, due.id, at(2), at(9))
        assert not await store.advance_report(session, due.id, at(2), at(16))
