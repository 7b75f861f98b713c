"""The events feature's queries, on SQLite and on PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from storage import events as store
from storage import outbox as outbox_rows
from storage.db import Database
from storage.events import ClinicSubmission, Event, EventRsvp

START = datetime(2026, 12, 1, 14, 0, tzinfo=UTC)
PERIOD = (START - timedelta(days=1), START + timedelta(days=1))


async def make_event(db: Database, **overrides: object) -> int:
    values: dict[str, object] = {
        "kind": "clinic",
        "title": "Churn clinic",
        "state": "ended",
        "presenter_user_id": "bob",
        "next_due_at": START + timedelta(days=30),
        "starts_at": START,
        "ends_at": START + timedelta(hours=1),
    } | overrides
    async with db.transaction() as session:
        event = Event(
            platform="fake",
            workspace_id="W1",
            channel_id="C1",
            created_by="alice",
            timezone="UTC",
            **values,
        )
        session.add(event)
        await session.flush()
        assert event.id is not None
        return event.id


async def add_rsvp(db: Database, event_id: int, user: str, status: str, **fields: object) -> None:
    async with db.transaction() as session:
        session.add(
            EventRsvp(event_id=event_id, user_id=user, status=status, created_at=START, **fields)
        )


async def test_figures_count_held_events_rsvps_attendance_ratings_and_outcomes(
    db: Database,
) -> None:
    held = await make_event(db, outcome="It worked", outcome_at=START + timedelta(hours=2))
    await make_event(db, kind="meetup", title="Drinks")
    await make_event(db, state="cancelled", title="Called off")
    later = START + timedelta(days=5)
    await make_event(
        db, state="scheduled", starts_at=later, ends_at=later + timedelta(hours=1), title="Later"
    )
    await add_rsvp(db, held, "carol", "going", attended=True)
    await add_rsvp(db, held, "dan", "going", attended=False)
    await add_rsvp(db, held, "erin", "waitlist", waitlisted_at=START)
    await add_rsvp(db, held, "farid", "cant")
    async with db.transaction() as session:
        await store.rate(session, held, "carol", 3, START)
        await store.rate(session, held, "carol", 5, START)  # rating again changes it
        await store.rate(session, held, "dan", 4, START)
        session.add(
            ClinicSubmission(
                platform="fake",
                workspace_id="W1",
                author_user_id="bob",
                problem="p",
                context="c",
                tried="t",
                ask="a",
                created_at=START,
            )
        )
    async with db.sessions() as session:
        figures = await store.period_figures(session, "fake", "W1", *PERIOD)
        other = await store.period_figures(session, "fake", "W2", *PERIOD)
        attended = await store.held_between(session, "fake", "W1", *PERIOD)
        given = await store.rsvps_given(session, "fake", "W1", *PERIOD)
    assert figures == store.PeriodFigures(
        events_held=2,
        clinics_held=1,
        rsvps=3,
        attended=1,
        ratings=2,
        average_rating=4.5,
        outcomes_reported=1,
        submissions=1,
    )
    assert other.events_held == 0 and other.average_rating is None
    assert [(event.title, users) for event, users in attended] == [
        ("Churn clinic", ["carol"]),
        ("Drinks", []),
    ]
    assert sorted(row.user_id for row in given) == ["carol", "dan", "erin"]


async def test_privacy_lines_and_forgetting_ratings_stay_in_the_community(db: Database) -> None:
    here = await make_event(db)
    elsewhere = await make_event(db, title="Elsewhere")
    async with db.transaction() as session:
        moved = await store.get_event_by_id(session, elsewhere)
        assert moved is not None
        moved.workspace_id = "W2"
    await add_rsvp(db, here, "carol", "going")
    async with db.transaction() as session:
        await store.rate(session, here, "carol", 4, START)
        await store.rate(session, elsewhere, "carol", 2, START)
    async with db.sessions() as session:
        about = await store.stored_about(session, "fake", "W1", "carol")
        presenter = await store.stored_about(session, "fake", "W1", "bob")
    assert about == store.StoredAbout(submissions=0, rsvps=1, ratings=1, presented=0)
    assert presenter.presented == 1
    async with db.transaction() as session:
        assert await store.forget_ratings(session, "fake", "W1", "carol") == 1
    async with db.sessions() as session:
        assert await store.scores(session, here) == []
        assert await store.scores(session, elsewhere) == [2]


async def test_timeline_queries_waitlist_order_and_the_library(db: Database) -> None:
    due = await make_event(db, state="scheduled", next_due_at=START - timedelta(hours=1))
    await make_event(db, state="scheduled", next_due_at=START + timedelta(hours=3))
    showcase = await make_event(db, kind="showcase", title="NPS rebuild", next_due_at=None)
    await add_rsvp(db, due, "late", "waitlist", waitlisted_at=START + timedelta(minutes=5))
    await add_rsvp(db, due, "early", "waitlist", waitlisted_at=START)
    await add_rsvp(db, due, "seated", "going")
    async with db.sessions() as session:
        assert [e.id for e in await store.due_events(session, START)] == [due]
        assert await store.next_due_after(session, START) == START + timedelta(hours=3)
        waiting = await store.rsvps(session, due, {"waitlist"})
        assert [row.user_id for row in waiting] == ["early", "late"]
        assert await store.counts(session, due) == {"waitlist": 2, "going": 1}
        library = await store.library(session, "fake", "W1", {"clinic", "showcase"})
        assert [e.id for e in library] == [showcase]
        upcoming = await store.upcoming(session, "fake", "W1", START - timedelta(days=1))
        assert {e.id for e in upcoming} == {due, 2}


async def test_native_event_lookup_and_queued_payload_swap(db: Database) -> None:
    async with db.transaction() as session:
        row = await outbox_rows.enqueue(
            session, platform="fake", workspace_id="W1", kind="calendar_event", payload={}
        )
        update = await outbox_rows.enqueue(
            session, platform="fake", workspace_id="W1", kind="update", payload={"text": "a"}
        )
    event_id = await make_event(db, state="scheduled", native_outbox_id=row)
    await outbox_rows.mark_sent(db, [(row, {"channel_id": "W1", "message_id": "E9"})])
    async with db.transaction() as session:
        found = await store.with_native_events(session, "fake", "W1")
        assert [e.id for e in found] == [event_id]
        assert (await store.sent_refs(session, [row]))[row]["message_id"] == "E9"
        assert await store.replace_queued_payload(session, update, {"text": "b"})
        assert not await store.replace_queued_payload(session, row, {"text": "c"})
