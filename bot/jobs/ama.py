"""The AMA tick: each AMA's timeline events that are due (announce, reminders a
day and 15 minutes before, going live, closing), each claimed by one replica."""

from __future__ import annotations

from datetime import datetime
from functools import partial

from bot.core.runtime import Runtime
from bot.domain.ama import due_events
from bot.services.ama import ama_timeline, run_event
from storage import ama as store

TICK = "ama.tick"
TICK_SECONDS = 60


async def tick(runtime: Runtime, now: datetime) -> None:
    """Run every AMA event that is due, each claimed by exactly one replica."""
    async with runtime.db.sessions() as session:
        due = await store.due_amas(session, now)
    for ama in due:
        events = ama_timeline(ama)
        for event in due_events(events, ama.next_event_at, now):
            assert ama.id is not None
            await runtime.claims.run_claimed(
                f"ama.{event.kind}:{ama.id}",
                event.at,
                partial(run_event, runtime.templates, ama.id, event, now),
            )


async def next_due(runtime: Runtime, now: datetime) -> datetime | None:
    """When the next AMA timeline event after `now` is due, for a simulated clock."""
    async with runtime.db.sessions() as session:
        return await store.next_event_after(session, now)
