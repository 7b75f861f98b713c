"""The events tick: each event's timeline steps that are due (reminders a day and
an hour before, the live thread, the end, the day-30 outcome), each claimed by
exactly one replica, so a restart or a second replica never sends one twice."""

from __future__ import annotations

from datetime import datetime
from functools import partial

from bot.core.runtime import Runtime
from bot.domain.events import due_steps
from bot.services.events import event_timeline, run_step
from storage import events as store

TICK = "events.tick"
TICK_SECONDS = 60


async def tick(runtime: Runtime, now: datetime) -> int:
    """Run every due step; returns how many this replica ran."""
    async with runtime.db.sessions() as session:
        due = await store.due_events(session, now)
    ran = 0
    for event in due:
        assert event.id is not None
        for step in due_steps(event_timeline(event), event.next_due_at, now):
            ran += await runtime.claims.run_claimed(
                f"events.{step.step}:{event.id}",
                step.at,
                partial(run_step, runtime.templates, runtime.settings.zone, event.id, step, now),
            )
    return ran


async def next_due(runtime: Runtime, now: datetime) -> datetime | None:
    """When the next step of any event is due, for a simulated clock."""
    async with runtime.db.sessions() as session:
        return await store.next_due_after(session, now)
