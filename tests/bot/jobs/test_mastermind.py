"""The mastermind tick and forming across replicas and crashes: forming is claimed
once (two replicas on one PostgreSQL database, a double click), each session step
runs once, a crashed step is redone by the next tick, and a replica back from
downtime catches up in order."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from bot.core.app import Kindred
from bot.core.settings import Settings
from bot.jobs import mastermind as jobs
from bot.services import mastermind as service
from storage.db import Database
from storage.mastermind import MastermindGroup
from storage.models import JobClaim
from tests.bot.mastermind_helpers import (
    FIRST_SESSION,
    FORM_AT,
    SETUP,
    SIX,
    Person,
    cycle_with,
    formed,
    stored_groups,
    stored_sessions,
)
from tests.conftest import POSTGRES_URL, Clock
from tests.driver import Community
from tests.fakes.platform import FakePlatform

TWELVE = [Person(f"p{index:02}", f"firm{index}") for index in range(12)]


def texts(platform: FakePlatform, containing: str) -> list[str]:
    return [sent.text for sent in platform.sent if containing in sent.text]


async def test_two_replicas_on_postgres_form_one_set_of_groups(
    postgres_db: Database, postgres_schema: str, settings: Settings, clock: Clock
) -> None:
    platform = FakePlatform()
    second_db = Database(POSTGRES_URL, schema=postgres_schema)
    local = replace(settings, database_url=POSTGRES_URL)
    first = Kindred(local, postgres_db, clock=clock, instance="replica-a")
    second = Kindred(local, second_db, clock=clock, instance="replica-b")
    for replica in (first, second):
        replica.attach(platform)
    try:
        one = Community(first, platform, clock)
        other = Community(second, platform, clock)
        await cycle_with(one, TWELVE)
        await second.start(dispatch=False, schedule=False)
        other.channel = one.channel
        clock.now = FORM_AT
        # The organiser's double click lands on both replicas at once.
        answers = await asyncio.gather(one.say("mastermind form"), other.say("mastermind form"))
        assert sorted(answer.split(" ")[0] for answer in answers) == ["Formed", "“CX"]
        assert any("already formed" in answer for answer in answers)
        async with asyncio.timeout(10):
            await asyncio.gather(first.dispatcher.drain(), second.dispatcher.drain())
        assert len(await stored_groups(first)) == 2
        assert len(texts(platform, "Welcome to your mastermind")) == 2
        assert len(platform.groups) == 2
        async with postgres_db.sessions() as session:
            claims = select(func.count()).where(JobClaim.job.startswith("mastermind.form"))
            assert (await session.execute(claims)).scalar() == 1
            groups = select(func.count()).select_from(MastermindGroup)
            assert (await session.execute(groups)).scalar() == 2

        # Both replicas tick through the first session: each step once per group.
        for moment in (
            FIRST_SESSION - timedelta(hours=24),
            FIRST_SESSION + timedelta(hours=3),
            FIRST_SESSION + timedelta(hours=24),
        ):
            clock.now = moment
            await asyncio.gather(first.scheduler.catch_up(), second.scheduler.catch_up())
            async with asyncio.timeout(10):
                await asyncio.gather(first.dispatcher.drain(), second.dispatcher.drain())
        assert len(texts(platform, "Session 1 of 6, tomorrow")) == 2
        assert len(texts(platform, "Session 1 is done")) == 2
        sessions = await stored_sessions(first)
        assert [s.next_event for s in sessions if s.number == 1] == [None, None]
    finally:
        await first.stop()
        await second.stop()
        await second_db.dispose()


async def test_a_step_that_crashes_is_redone_by_the_next_tick(
    community: Community, platform: FakePlatform, monkeypatch: pytest.MonkeyPatch
) -> None:
    await formed(community, SIX)
    real = service.send_agenda
    calls = 0

    async def crash_once(*args: object, **kwargs: object) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("replica died mid-agenda")
        await real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(service, "send_agenda", crash_once)
    await community.advance(FIRST_SESSION - timedelta(hours=24))
    assert texts(platform, "Session 1 of 6") == []
    (first, *_) = await stored_sessions(community.kindred)
    assert first.next_event == "agenda" and first.hot_seat_user_id is None
    await community.advance(minutes=1)
    assert len(texts(platform, "Session 1 of 6")) == 1
    await community.advance(minutes=1)
    assert len(texts(platform, "Session 1 of 6")) == 1


async def test_a_replica_back_from_downtime_runs_each_missed_step_once_in_order(
    community: Community, platform: FakePlatform
) -> None:
    await formed(community, SIX)
    await community.advance(FIRST_SESSION + timedelta(weeks=2, hours=1))
    steps = [
        sent.text.split("**")[1]
        for sent in platform.sent
        if "Session" in sent.text and sent.kind == "post" and sent.target == "G1"
    ]
    late = "already begun (this agenda is late)"
    assert steps == [
        f"Session 1 of 6, {late}",
        "Session 1 is done.",
        f"Session 2 of 6, {late}",
        "Session 2 is done.",
        f"Session 3 of 6, {late}",
    ]
    # Hot seats rotated even though every step ran late.
    sessions = await stored_sessions(community.kindred)
    assert [s.hot_seat_user_id for s in sessions[:3]] == ["u1", "u2", "u3"]


async def test_next_due_is_the_next_session_step(community: Community) -> None:
    await formed(community, SIX)
    assert await jobs.next_due(community.kindred, FORM_AT) == FIRST_SESSION - timedelta(hours=24)
    after_agenda = FIRST_SESSION - timedelta(hours=23)
    await community.advance(after_agenda)
    # The follow-up: two hours after the hour-long session ends.
    assert await jobs.next_due(community.kindred, after_agenda) == FIRST_SESSION + timedelta(
        hours=3
    )


async def test_nothing_is_due_before_forming(community: Community) -> None:
    await cycle_with(community, SIX)
    assert await jobs.next_due(community.kindred, FORM_AT) is None
    assert await jobs.tick(community.kindred, FORM_AT + timedelta(weeks=4)) == 0


async def test_two_leavers_at_once_on_two_replicas_seat_the_one_waiting_applicant_once(
    postgres_db: Database, postgres_schema: str, settings: Settings, clock: Clock
) -> None:
    platform = FakePlatform()
    second_db = Database(POSTGRES_URL, schema=postgres_schema)
    local = replace(settings, database_url=POSTGRES_URL)
    first = Kindred(local, postgres_db, clock=clock, instance="replica-a")
    second = Kindred(local, second_db, clock=clock, instance="replica-b")
    for replica in (first, second):
        replica.attach(platform)
    try:
        one = Community(first, platform, clock)
        other = Community(second, platform, clock)
        thirteen = [Person(f"p{index:02}", f"firm{index}") for index in range(13)]
        await formed(one, thirteen, f"{SETUP} size=5-6")
        await second.start(dispatch=False, schedule=False)
        other.channel = one.channel
        groups = await stored_groups(first)
        assert [len(group) for group in groups] == [6, 6]
        (waiting,) = {p.user_id for p in thirteen} - {m for g in groups for m in g}
        await asyncio.gather(
            one.say("mastermind leave", groups[0][0]), other.say("mastermind leave", groups[1][0])
        )
        after = await stored_groups(first)
        assert sorted(len(group) for group in after) == [5, 6]
        assert sum(waiting in group for group in after) == 1
    finally:
        await first.stop()
        await second.stop()
        await second_db.dispose()
