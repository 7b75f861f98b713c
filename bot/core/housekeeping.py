"""Daily housekeeping: forget inbound delivery keys older than any re-delivery, and
finished job claims older than any catch-up."""

from __future__ import annotations

from datetime import datetime, timedelta

from apscheduler.triggers.cron import CronTrigger
from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.scheduler import JobScheduler
from storage import claims, processed_events

JOB = "housekeeping.processed_events"
KEEP_EVENTS_FOR = timedelta(days=7)
KEEP_FINISHED_CLAIMS_FOR = timedelta(days=90)


async def prune_processed_events(session: AsyncSession, occurrence: datetime) -> None:
    await processed_events.forget_before(session, occurrence - KEEP_EVENTS_FOR)
    await claims.forget_finished_before(session, occurrence - KEEP_FINISHED_CLAIMS_FOR)


def schedule_housekeeping(scheduler: JobScheduler) -> None:
    scheduler.schedule(JOB, CronTrigger(hour=3, minute=17, timezone="UTC"), prune_processed_events)
