"""The mentorship tick: scheduled rounds, then each mentorship's due timeline event
(a proposal's expiry, the day-14 and day-42 check-ins, "extend or close?", the planned
end), each occurrence claimed by exactly one replica."""

from __future__ import annotations

from datetime import datetime, timedelta
from functools import partial

from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.runtime import Runtime
from bot.domain.mentor import ROUND_CADENCES
from bot.services.mentor import due_event, event_job, round_job, run_event, run_round
from storage import mentor as store

TICK = "mentor.tick"
TICK_SECONDS = 60.0


# A mentorship whose events piled up (the bot was down, a clock jumped) gets them in
# order, one pass each; a failing event is retried next tick, not in a tight loop.
MAX_PASSES = 8


async def tick(runtime: Runtime, now: datetime) -> None:
    async with runtime.db.sessions() as session:
        programs = [(p.id, p.next_round_at) for p in await store.programs_due(session, now)]
    for program_id, occurrence in programs:
        assert program_id is not None and occurrence is not None
        await runtime.claims.run_claimed(
            round_job(program_id), occurrence, partial(_scheduled_round, runtime, program_id)
        )
    for _ in range(MAX_PASSES):
        async with runtime.db.sessions() as session:
            mentorships = await store.due_mentorships(session, now)
        ran = False
        for mentorship in mentorships:
            event = due_event(mentorship)
            if event is None or mentorship.id is None:
                continue
            ran |= await runtime.claims.run_claimed(
                event_job(mentorship.id, event),
                event.at,
                partial(run_event, runtime.templates, mentorship.id, event),
            )
        if not ran:
            return


async def _scheduled_round(
    runtime: Runtime, program_id: int, session: AsyncSession, occurrence: datetime
) -> None:
    program = await session.get(store.MentorProgram, program_id, with_for_update=True)
    if program is None or program.next_round_at != occurrence:
        return  # rescheduled by an admin meanwhile
    await run_round(runtime, session, program, occurrence, manual=False)
    days = ROUND_CADENCES.get(program.cadence, 0)
    program.next_round_at = occurrence + timedelta(days=days) if days else None


async def next_due(runtime: Runtime, now: datetime) -> datetime | None:
    """When the next round or mentorship event after `now` is due (a simulated clock
    jumps straight there)."""
    async with runtime.db.sessions() as session:
        return await store.next_due_after(session, now)
