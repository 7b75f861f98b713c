"""The mastermind tick: each group session's steps that are due (the agenda a day
before, the attendance and commitment prompt after, the health review a day
after), each claimed by exactly one replica."""

from __future__ import annotations

from datetime import datetime
from functools import partial

from bot.core.runtime import Runtime
from bot.domain.mastermind import EventKind
from bot.services.mastermind import run_step, step_job
from storage import mastermind as store
from storage.mastermind import MastermindSession

TICK = "mastermind.tick"
TICK_SECONDS = 60


async def tick(runtime: Runtime, now: datetime) -> int:
    """Run every due session step; returns how many this replica ran. A step done
    may make the next one due too (a replica back from downtime), so it looks again
    until nothing it can claim is left."""
    ran = 0
    while True:
        async with runtime.db.sessions() as session:
            # One step per group per pass, the earliest: a later session's agenda
            # waits for the earlier session's follow-up (it asks about its commitments).
            first_per_group: dict[int, MastermindSession] = {}
            for meeting in await store.due_sessions(session, now):
                first_per_group.setdefault(meeting.group_id, meeting)
            due = [
                (meeting.id, EventKind(meeting.next_event), meeting.next_event_at)
                for meeting in first_per_group.values()
                if meeting.id is not None
                and meeting.next_event is not None
                and meeting.next_event_at is not None
            ]
        claimed = 0
        for session_id, kind, at in due:
            claimed += await runtime.claims.run_claimed(
                step_job(kind, session_id),
                at,
                partial(run_step, runtime.templates, session_id, kind, now),
            )
        ran += claimed
        if not claimed:
            return ran


async def next_due(runtime: Runtime, now: datetime) -> datetime | None:
    """When the next session step after `now` is due, for a simulated clock."""
    async with runtime.db.sessions() as session:
        return await store.next_event_after(session, now)
