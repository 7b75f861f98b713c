"""Mentorship queries on SQLite and PostgreSQL, the capacity race (100 concurrent
accepts through two replicas on PostgreSQL), the privacy queries and the figures of
`mentor stats` and the health report computed by hand on a fixture."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select

from bot.core.app import Kindred
from bot.core.figures import Period
from bot.core.platform import Identity, Inbound
from bot.core.settings import Settings
from bot.services import mentor as service
from storage import mentor as store
from storage.db import Database
from storage.mentor import (
    MentorCheckin,
    MentorFeedback,
    MentorOffer,
    MentorProgram,
    MentorRequest,
    Mentorship,
)
from tests.conftest import POSTGRES_URL, Clock
from tests.driver import contribution_words, plain, privacy_lines
from tests.fakes.platform import FakePlatform

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
P, W = "fake", "W1"


async def add_offer(db: Database, user: str = "ana", capacity: int = 3, load: int = 0) -> int:
    async with db.transaction() as session:
        offer = MentorOffer(
            platform=P,
            workspace_id=W,
            user_id=user,
            topics=["NPS"],
            seniority="senior",
            capacity=capacity,
            cadence="fortnightly",
            load=load,
            created_at=NOW,
        )
        session.add(offer)
        await session.flush()
        assert offer.id is not None
        return offer.id


async def add_request(
    db: Database, mentee: str, status: str = "open", created_at: datetime = NOW
) -> int:
    async with db.transaction() as session:
        request = MentorRequest(
            platform=P,
            workspace_id=W,
            mentee_user_id=mentee,
            goal="Grow",
            topics=["NPS"],
            cadence="weekly",
            status=status,
            created_at=created_at,
        )
        session.add(request)
        await session.flush()
        assert request.id is not None
        return request.id


async def add_mentorship(
    db: Database,
    mentee: str,
    mentor: str = "ana",
    status: str = "proposed",
    *,
    outcome: str | None = None,
    started_at: datetime | None = None,
    ended_at: datetime | None = None,
    rating: int | None = None,
    proposed_at: datetime = NOW,
) -> int:
    request_id = await add_request(db, mentee, "matched" if status != "proposed" else "proposed")
    async with db.transaction() as session:
        mentorship = Mentorship(
            platform=P,
            workspace_id=W,
            request_id=request_id,
            mentor_user_id=mentor,
            mentee_user_id=mentee,
            status=status,
            proposed_at=proposed_at,
            respond_by=proposed_at + timedelta(days=3) if status == "proposed" else None,
            started_at=started_at,
            planned_end_at=started_at + timedelta(days=90) if started_at else None,
            ended_at=ended_at,
            outcome=outcome,
        )
        session.add(mentorship)
        await session.flush()
        assert mentorship.id is not None
        if rating is not None:
            session.add(
                MentorFeedback(
                    mentorship_id=mentorship.id,
                    platform=P,
                    workspace_id=W,
                    mentee_user_id=mentee,
                    mentor_user_id=mentor,
                    rating=rating,
                    text="private words",
                    created_at=ended_at or NOW,
                )
            )
        return mentorship.id


async def test_seats_are_taken_atomically_and_never_beyond_capacity(db: Database) -> None:
    offer_id = await add_offer(db, capacity=3)

    async def take() -> bool:
        async with db.transaction() as session:
            return await store.take_seats(session, offer_id)

    taken = await asyncio.gather(*(take() for _ in range(20)))
    assert taken.count(True) == 3
    async with db.transaction() as session:
        assert not await store.take_seats(session, offer_id)
        await store.free_seat(session, offer_id)
        assert await store.take_seats(session, offer_id)
        await store.free_seat(session, offer_id)
        await store.free_seat(session, offer_id)
        assert not await store.take_seats(session, offer_id, 3), "two free, three asked"
        assert await store.take_seats(session, offer_id, 2)
        offer = await session.get(MentorOffer, offer_id)
        assert offer is not None
        await session.refresh(offer)
        assert offer.load == 3


async def test_status_changes_only_from_the_expected_state(db: Database) -> None:
    mentorship_id = await add_mentorship(db, "bob")
    async with db.transaction() as session:
        assert await store.change_status(session, mentorship_id, ["proposed"], "active")
        assert not await store.change_status(session, mentorship_id, ["proposed"], "declined")
        request = (await session.execute(select(MentorRequest))).scalar_one()
        assert request.id is not None
        assert await store.set_request_status(session, request.id, ["proposed"], "open")
        assert not await store.set_request_status(session, request.id, ["proposed"], "open")


async def test_pairs_kept_apart_and_pending_proposals(db: Database) -> None:
    await add_mentorship(db, "bob")  # pending: not proposed again
    await add_mentorship(db, "carol", status="declined")
    await add_mentorship(db, "dan", status="ended", outcome="not_a_fit", ended_at=NOW)
    await add_mentorship(db, "erin", status="ended", outcome="completed", ended_at=NOW, rating=2)
    await add_mentorship(db, "farid", status="ended", outcome="completed", ended_at=NOW, rating=5)
    await add_mentorship(db, "gus", mentor="hana", status="expired")
    async with db.transaction() as session:
        apart = await store.pairs_kept_apart(session, P, W, bad_rating=2)
        pending = await store.pending_proposals(session, P, W)
    assert apart == {
        frozenset(pair)
        for pair in (
            ("bob", "ana"),
            ("carol", "ana"),
            ("dan", "ana"),
            ("erin", "ana"),
            ("gus", "hana"),
        )
    }
    assert pending == {"ana": 1}


async def test_due_mentorships_and_next_due(db: Database) -> None:
    first = await add_mentorship(db, "bob")
    async with db.transaction() as session:
        mentorship = await session.get(Mentorship, first)
        assert mentorship is not None
        mentorship.next_due_at = NOW + timedelta(days=3)
        session.add(
            MentorProgram(
                platform=P,
                workspace_id=W,
                channel_id="C1",
                timezone="UTC",
                created_by="alice",
                next_round_at=NOW + timedelta(days=7),
            )
        )
    async with db.transaction() as session:
        assert await store.due_mentorships(session, NOW) == []
        assert await store.next_due_after(session, NOW) == NOW + timedelta(days=3)
        due = await store.due_mentorships(session, NOW + timedelta(days=3))
        assert [m.id for m in due] == [first]
        assert await store.next_due_after(session, NOW + timedelta(days=3)) == NOW + timedelta(
            days=7
        )
        assert [
            p.channel_id for p in await store.programs_due(session, NOW + timedelta(days=7))
        ] == ["C1"]


async def test_stored_about_and_forget_feedback(db: Database) -> None:
    await add_offer(db, "bob")
    mentorship_id = await add_mentorship(
        db, "bob", mentor="ana", status="ended", outcome="completed", ended_at=NOW, rating=4
    )
    async with db.transaction() as session:
        mentorship = await session.get(Mentorship, mentorship_id)
        assert mentorship is not None
        mentorship.ended_by = "bob"
        mentorship.end_reason = "moving teams"
        await store.record_checkin(session, mentorship_id, "bob", 14, "good", NOW)
        await store.record_checkin(session, mentorship_id, "bob", 14, "not_met", NOW)
        await store.record_checkin(session, mentorship_id, "ana", 14, "good", NOW)
    bob = Identity(P, W, "bob")
    async with db.transaction() as session:
        lines = privacy_lines(await service.stored_about(session, bob))
    assert lines == [
        "your mentor offer (topics NPS, capacity 3)",
        "your mentor request of 2026-11-23 (matched)",
        "1 mentorship you were part of",
        "1 mentorship feedback answer you gave",
        "1 mentorship check-in answer you gave",
    ]
    async with db.transaction() as session:
        assert await service.forget_feedback(session, bob) == 2
    async with db.transaction() as session:
        assert (
            await session.execute(select(func.count()).select_from(MentorFeedback))
        ).scalar_one() == 0
        checkins = (await session.execute(select(MentorCheckin))).scalars().all()
        assert [c.user_id for c in checkins] == ["ana"]
        mentorship = await session.get(Mentorship, mentorship_id)
        assert mentorship is not None
        assert (mentorship.status, mentorship.end_reason) == ("ended", None)
        assert privacy_lines(await service.stored_about(session, Identity(P, W, "nobody"))) == []


async def test_stats_figures_computed_by_hand(db: Database) -> None:
    """A fixture whose figures are worked out below, by hand."""
    for mentor, capacity in (
        ("m1", 3),
        ("m2", 2),
        ("m3", 1),
        ("m4", 1),
        ("m5", 1),
        ("m6", 1),
        ("m7", 1),
        ("m8", 1),
        ("m9", 1),
        ("m10", 1),
        ("m11", 1),
    ):
        await add_offer(db, mentor, capacity)
    # Waiting requests created 2, 4 and 9 days ago: median wait 4 days.
    for mentee, days in (("w1", 2), ("w2", 4), ("w3", 9)):
        await add_request(db, mentee, created_at=NOW - timedelta(days=days))
    ended = NOW - timedelta(days=1)
    started = NOW - timedelta(days=60)
    # m1: 2 active, 2 ended completed (ratings 5, 4), 1 declined -> 5 requests.
    await add_mentorship(db, "a1", "m1", "active", started_at=started)
    await add_mentorship(db, "a2", "m1", "active", started_at=started)
    await add_mentorship(
        db, "a3", "m1", "ended", outcome="completed", started_at=started, ended_at=ended, rating=5
    )
    await add_mentorship(
        db, "a4", "m1", "ended", outcome="completed", started_at=started, ended_at=ended, rating=4
    )
    await add_mentorship(db, "a5", "m1", "declined")
    # m2: 1 active, 1 ended not a fit (rating 2) -> 2 requests; m3: ended early, rating 3.
    await add_mentorship(db, "b1", "m2", "active", started_at=started)
    await add_mentorship(
        db, "b2", "m2", "ended", outcome="not_a_fit", started_at=started, ended_at=ended, rating=2
    )
    await add_mentorship(
        db, "c1", "m3", "ended", outcome="ended_early", started_at=started, ended_at=ended, rating=3
    )
    async with db.transaction() as session:
        requests = await store.requests_with_status(
            session, P, W, ["open", "proposed", "matched", "withdrawn"]
        )
        figures = service.stats_figures(
            requests,
            await store.community_mentorships(session, P, W),
            await store.community_offers(session, P, W),
            await store.community_feedback(session, P, W),
            NOW,
        )
        period = Period(P, W, NOW - timedelta(days=7), NOW)
        health = await service.metrics(session, period)
        actions = await service.actions(session, period)
    assert figures.open_requests == 3  # w1..w3 (the others are matched)
    assert figures.median_wait_days == 4.0
    assert figures.active == 3  # a1, a2, b1
    assert figures.ended == 4  # a3, a4, b2, c1
    assert figures.completion_rate == 2 / 4  # a3 and a4 completed
    assert figures.median_rating == 3.5  # ratings 5, 4, 2, 3
    assert figures.recommend_rate is None  # nobody answered "would you recommend"
    # 11 mentors: the top 10 % is ceil(1.1) = 2 mentors, m1 (5 requests) and m2 (2),
    # of 8 requests in all (m3 had 1).
    assert figures.top_decile_share == 7 / 8
    assert figures.load[:3] == [("m1", 2, 3), ("m2", 1, 2), ("m10", 0, 1)]
    # The health report's week: the four endings happened in it, nothing started.
    assert health["mentorships_ended"] == 4 and health["mentorships_started"] == 0
    assert health["completion_rate"] == 0.5 and health["median_rating"] == 3.5
    assert health["requests"] == 2  # w1 and w2 were made within the week
    contributions = [a for a in actions if a.contribution]
    assert [(a.user_id, contribution_words(a.kind)) for a in contributions] == [
        ("m1", "completed a mentorship their mentee rated 4 or 5"),
        ("m1", "completed a mentorship their mentee rated 4 or 5"),
    ]
    assert sorted(a.kind for a in actions if not a.contribution).count("mentor_feedback") == 4


async def test_a_hundred_concurrent_accepts_across_two_replicas(
    postgres_db: Database, settings: Settings, clock: Clock
) -> None:
    """100 proposals to one mentor with 3 seats, accepted at once through two
    Kindred replicas sharing PostgreSQL: exactly 3 become mentorships."""
    other = Database(POSTGRES_URL, schema=postgres_db.schema)
    replicas = []
    for db in (postgres_db, other):
        app = Kindred(replace(settings, database_url=str(db.url)), db, clock=clock)
        fake = FakePlatform()
        fake.admins.add("alice")
        app.attach(fake)
        replicas.append(app)
    try:
        first = replicas[0]
        setup = Inbound(
            "command", "fake", W, "alice", channel_id="C1", text="mentor setup", event_id="s"
        )
        assert "created" in plain(await first.handle(setup))
        offer = Inbound(
            "command",
            "fake",
            W,
            "ana",
            channel_id="C1",
            text="mentor offer topics=NPS capacity=3",
            event_id="o",
        )
        assert "Up to 3 mentees" in plain(await first.handle(offer))
        proposals = [await add_mentorship(postgres_db, f"mentee{n}") for n in range(100)]

        async def accept(n: int, mentorship_id: int) -> str:
            press = Inbound(
                "button",
                "fake",
                W,
                "ana",
                action_id="mentor.accept",
                value=str(mentorship_id),
                event_id=f"a{n}",
            )
            return plain(await replicas[n % 2].handle(press))

        answers = await asyncio.gather(*(accept(n, m) for n, m in enumerate(proposals)))
    finally:
        for app in replicas:
            await app.stop()
        await other.dispose()
    assert sum("Accepted" in answer for answer in answers) == 3
    assert sum("at capacity" in answer for answer in answers) == 97
    async with postgres_db.transaction() as session:
        statuses = (
            await session.execute(
                select(Mentorship.status, func.count()).group_by(Mentorship.status)
            )
        ).all()
        offer_row = (await session.execute(select(MentorOffer))).scalar_one()
        reopened = (
            await session.execute(
                select(func.count())
                .select_from(MentorRequest)
                .where(MentorRequest.status == "open")
            )
        ).scalar_one()
    assert dict(statuses) == {"active": 3, "declined": 97}
    assert offer_row.load == 3
    assert reopened == 97, "the mentees who lost the race go back to the next round"


async def test_a_rounds_rows_in_bulk(db: Database) -> None:
    full, roomy = await add_offer(db, "m1", capacity=1, load=1), await add_offer(db, "m2", 3)
    async with db.transaction() as session:
        taken = await store.take_seats_of_many(session, {full: 1, roomy: 2})
        assert taken == {roomy}
        assert await store.take_seats_of_many(session, {roomy: 2}) == set()
        program = MentorProgram(
            platform=P, workspace_id=W, channel_id="C1", timezone="UTC", created_by="alice"
        )
        session.add(program)
        await session.flush()
        round_ = store.MentorRound(program_id=program.id or 0, occurrence=NOW)
        session.add(round_)
        await session.flush()
        assert round_.id is not None
        request_ids = []
        for mentee in ("bob", "carol"):
            request = MentorRequest(
                platform=P, workspace_id=W, mentee_user_id=mentee, goal="Grow", cadence="weekly"
            )
            session.add(request)
            await session.flush()
            request_ids.append(request.id)
        rows = [
            {
                "platform": P,
                "workspace_id": W,
                "request_id": request_id,
                "mentor_user_id": "m2",
                "mentee_user_id": mentee,
                "status": "active",
                "reasons": ["both work on NPS"],
                "score": 4.0,
                "round_id": round_.id,
                "proposed_at": NOW,
                "started_at": NOW,
            }
            for mentee, request_id in zip(("bob", "carol"), request_ids, strict=True)
        ]
        ids = await store.add_round_mentorships(session, round_.id, rows)
        await store.update_requests(
            session,
            [request_id or 0 for request_id in request_ids],
            status="matched",
            matched_at=NOW,
        )
    assert set(ids) == {"bob", "carol"}
    async with db.sessions() as session:
        stored = {
            m.mentee_user_id: m for m in (await session.execute(select(Mentorship))).scalars()
        }
        statuses = (await session.execute(select(MentorRequest.status))).scalars().all()
        load = (
            await session.execute(select(MentorOffer.load).where(MentorOffer.id == roomy))
        ).scalar_one()
    assert stored["bob"].id == ids["bob"] and stored["carol"].reasons == ["both work on NPS"]
    assert stored["bob"].started_at == NOW
    assert set(statuses) == {"matched"}
    async with db.sessions() as session:
        matched_at = (await session.execute(select(MentorRequest.matched_at))).scalars().all()
    assert set(matched_at) == {NOW}
    assert load == 2
