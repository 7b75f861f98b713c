from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from apscheduler.triggers.cron import CronTrigger
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.housekeeping import JOB as HOUSEKEEPING
from bot.core.housekeeping import schedule_housekeeping
from bot.core.outbox import Outbox
from bot.core.platform import Message
from bot.core.scheduler import JobScheduler, latest_occurrence
from storage.db import Database
from storage.models import JobClaim, OutboxMessage, ProcessedEvent
from tests.conftest import Clock


def test_latest_occurrence_respects_the_trigger_timezone() -> None:
    monday_nine_berlin = CronTrigger(day_of_week="mon", hour=9, timezone="Europe/Berlin")
    before = datetime(2026, 11, 23, 7, 59, tzinfo=UTC)  # 08:59 in Berlin
    after = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
    assert latest_occurrence(monday_nine_berlin, before) is None
    occurrence = latest_occurrence(monday_nine_berlin, after)
    assert occurrence is not None and occurrence.astimezone(UTC) == after


async def count(db: Database, model: type) -> int:
    async with db.sessions() as session:
        return (await session.execute(select(func.count()).select_from(model))).scalar_one()


def daily_job(ran: list[str], name: str):  # type: ignore[no-untyped-def]
    async def work(session: AsyncSession, occurrence: datetime) -> None:
        ran.append(name)
        await Outbox(session, "fake", "W1").post("C1", Message(f"daily {occurrence:%F}"))

    return work


async def test_two_replicas_run_an_occurrence_once(postgres_db: Database, clock: Clock) -> None:
    ran: list[str] = []
    replicas = [JobScheduler(postgres_db, f"replica-{n}", clock) for n in range(2)]
    for number, replica in enumerate(replicas):
        replica.schedule("daily", CronTrigger(hour=8, timezone="UTC"), daily_job(ran, str(number)))
    results = await asyncio.gather(*(replica.fire("daily") for replica in replicas))
    assert sorted(results) == [False, True]
    assert len(ran) == 1
    assert await count(postgres_db, OutboxMessage) == 1
    # A restart of either replica does not run it again.
    restarted = JobScheduler(postgres_db, "replica-0-restarted", clock)
    restarted.schedule("daily", CronTrigger(hour=8, timezone="UTC"), daily_job(ran, "again"))
    await restarted.catch_up()
    assert len(ran) == 1
    # The next day's occurrence runs.
    clock.advance(days=1)
    assert await restarted.fire("daily")
    assert await count(postgres_db, JobClaim) == 2


async def test_crash_before_commit_leaves_the_occurrence_unclaimed(
    db: Database, clock: Clock
) -> None:
    attempts: list[int] = []

    async def flaky(session: AsyncSession, occurrence: datetime) -> None:
        await Outbox(session, "fake", "W1").post("C1", Message("half-done"))
        attempts.append(1)
        if len(attempts) == 1:
            raise RuntimeError("process died mid-round")

    scheduler = JobScheduler(db, "me", clock)
    scheduler.schedule("round", CronTrigger(hour=8, timezone="UTC"), flaky)
    assert await scheduler.fire("round") is False
    assert await count(db, JobClaim) == 0
    assert await count(db, OutboxMessage) == 0
    assert await scheduler.fire("round") is True
    assert await count(db, OutboxMessage) == 1
    async with db.sessions() as session:
        claim = (await session.execute(select(JobClaim))).scalar_one()
    assert claim.finished_at is not None


async def test_ticks_run_on_catch_up_and_errors_do_not_escape(
    sqlite_db: Database, clock: Clock
) -> None:
    seen: list[datetime] = []

    async def tick(now: datetime) -> None:
        seen.append(now)
        raise RuntimeError("boom")

    scheduler = JobScheduler(sqlite_db, "me", clock)
    scheduler.every("feature.tick", 60, tick)
    await scheduler.catch_up()
    assert seen == [clock.now]


async def test_housekeeping_forgets_old_delivery_keys(sqlite_db: Database, clock: Clock) -> None:
    async with sqlite_db.transaction() as session:
        session.add(ProcessedEvent(key="old", processed_at=clock.now - timedelta(days=30)))
        session.add(ProcessedEvent(key="recent", processed_at=clock.now - timedelta(hours=1)))
        long_ago = clock.now - timedelta(days=200)
        session.add(JobClaim(job="old", occurrence="x", owner="o", finished_at=long_ago))
        session.add(JobClaim(job="unfinished", occurrence="x", owner="o", claimed_at=long_ago))
    scheduler = JobScheduler(sqlite_db, "me", clock)
    schedule_housekeeping(scheduler)
    clock.advance(hours=20)  # past 03:17 UTC the next day
    assert await scheduler.fire(HOUSEKEEPING)
    async with sqlite_db.sessions() as session:
        keys = list((await session.execute(select(ProcessedEvent.key))).scalars())
    assert keys == ["recent"]
    async with sqlite_db.sessions() as session:
        jobs = set((await session.execute(select(JobClaim.job))).scalars())
    assert jobs == {"unfinished", HOUSEKEEPING}


@pytest.mark.parametrize("replicas", [2])
async def test_scheduler_really_fires_from_apscheduler(sqlite_db: Database, replicas: int) -> None:
    """The APScheduler wiring, not just `fire`: a trigger due every second runs."""
    ran: list[str] = []
    from apscheduler.triggers.interval import IntervalTrigger

    scheduler = JobScheduler(sqlite_db, "me", lambda: datetime.now(UTC))
    scheduler.schedule("tick", IntervalTrigger(seconds=1), daily_job(ran, "x"))
    scheduler.start()
    try:
        async with asyncio.timeout(5):
            while not ran:
                await asyncio.sleep(0.05)
    finally:
        await scheduler.shutdown()
    assert ran


async def test_shutdown_waits_for_a_run_in_flight(sqlite_db: Database) -> None:
    """A run APScheduler started is mid-transaction when the scheduler stops: it
    finishes (not cancelled under aiosqlite) and no task outlives `shutdown`."""
    from apscheduler.triggers.interval import IntervalTrigger

    started = asyncio.Event()
    release = asyncio.Event()
    outcome: list[str] = []

    async def slow(session: AsyncSession, occurrence: datetime) -> None:
        started.set()
        try:
            await release.wait()
            await Outbox(session, "fake", "W1").post("C1", Message("slow"))
        except asyncio.CancelledError:
            outcome.append("cancelled")
            raise
        outcome.append("finished")

    scheduler = JobScheduler(sqlite_db, "me", lambda: datetime.now(UTC))
    scheduler.schedule("slow", IntervalTrigger(seconds=0.2), slow)
    scheduler.start()
    async with asyncio.timeout(5):
        await started.wait()
    stopping = asyncio.create_task(scheduler.shutdown())
    await asyncio.sleep(0.1)
    assert not stopping.done(), "shutdown returned while a run was still in flight"
    release.set()
    async with asyncio.timeout(5):
        await stopping
    assert outcome == ["finished"]
    assert await count(sqlite_db, OutboxMessage) == 1
    assert asyncio.all_tasks() == {asyncio.current_task()}
