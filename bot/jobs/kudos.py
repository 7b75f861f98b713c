"""Recognition's tick: once a day per community, grant the status to members the
rule now fits (30 days passed, evidence arrived elsewhere); on the first of each
month, the review with hysteresis. Each occurrence is claimed by one replica."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.runtime import Runtime
from bot.core.scheduler import ClaimedWork
from bot.domain.kudos import day_start, month_start
from bot.services import kudos as service
from storage import kudos as store
from storage.kudos import KudosSettings

TICK = "kudos.tick"
TICK_SECONDS = 300

Work = Callable[[AsyncSession, Runtime, KudosSettings, datetime], Awaitable[int]]


def _claimed(runtime: Runtime, settings_id: int, work: Work) -> ClaimedWork:
    async def run(session: AsyncSession, occurrence: datetime) -> None:
        settings = await session.get(KudosSettings, settings_id)
        if settings is not None:
            await work(session, runtime, settings, occurrence)

    return run


async def tick(runtime: Runtime, now: datetime) -> int:
    """Run today's sweep and this month's review of every community, once each
    (a replica that was down runs the latest of each, not every missed one)."""
    async with runtime.db.sessions() as session:
        communities = await store.all_settings(session)
    ran = 0
    for settings in communities:
        assert settings.id is not None
        job = f"{service.REVIEW_JOB}:{settings.id}"
        month = month_start(now, settings.timezone)
        if await runtime.claims.run_claimed(
            job, month, _claimed(runtime, settings.id, service.review)
        ):
            ran += 1
        job = f"{service.SWEEP_JOB}:{settings.id}"
        day = day_start(now, settings.timezone)
        if await runtime.claims.run_claimed(
            job, day, _claimed(runtime, settings.id, service.sweep)
        ):
            ran += 1
    return ran


async def next_due(runtime: Runtime, now: datetime) -> datetime | None:
    """The next local midnight of any community (each month starts on one)."""
    async with runtime.db.sessions() as session:
        communities = await store.all_settings(session)
    midnights = [day_start(now, settings.timezone) + timedelta(days=1) for settings in communities]
    return min(midnights, default=None)
