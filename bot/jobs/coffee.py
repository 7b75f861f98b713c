"""Virtual coffee's tick: what is due now (timed resumes, rounds, reminders,
follow-ups), each occurrence claimed once across replicas, then done by the service."""

from __future__ import annotations

import logging
from datetime import datetime
from functools import partial

from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.runtime import Runtime
from bot.core.scheduler import CATCH_UP_WINDOW
from bot.services.coffee import (
    followup_job,
    platform_members,
    program_schedule,
    reminder_job,
    resume_job,
    resume_member,
    round_job,
    send_followups,
    send_reminder,
    start_round,
)
from storage import coffee
from storage.coffee import CoffeeProgram

log = logging.getLogger(__name__)

TICK = "coffee.tick"
TICK_SECONDS = 60.0


async def run_scheduled_round(runtime: Runtime, program: CoffeeProgram, now: datetime) -> bool:
    """Run the program's due round unless a replica already did; True if this one did."""
    assert program.id is not None
    program_id = program.id
    occurrence = program_schedule(program).latest_at_or_before(now)
    if (
        occurrence is None
        or occurrence < program.next_round_at
        or occurrence < now - CATCH_UP_WINDOW
    ):
        await _skip_missed_round(runtime, program_id, now)
        return False
    listed = await platform_members(runtime, program)

    async def work(session: AsyncSession, occurrence: datetime) -> None:
        current = await coffee.get_program(session, program_id)
        if current is None or current.next_round_at > occurrence:
            return  # rescheduled by an admin meanwhile
        # A run-now in the same minute already made this occurrence's round.
        if await coffee.round_at(session, program_id, occurrence) is None:
            await start_round(runtime, session, current, occurrence, listed, manual=False)
        current.next_round_at = program_schedule(current).next_after(occurrence)

    return await runtime.claims.run_claimed(round_job(program_id), occurrence, work)


async def _skip_missed_round(runtime: Runtime, program_id: int, now: datetime) -> None:
    """The round time passed longer ago than the scheduler's catch-up window (the bot
    was down): pairing people days late would overlap the next round, so move on."""
    async with runtime.db.transaction() as session:
        program = await coffee.get_program(session, program_id)
        if program is None or program.next_round_at > now:
            return
        log.warning(
            "coffee program %s missed its round of %s; next round moved to the schedule",
            program_id,
            program.next_round_at.isoformat(),
        )
        program.next_round_at = program_schedule(program).next_after(now)
        # Nobody met in the missed round, so the skips that named it are used up:
        # "you'll be back for the one after" stays true.
        for membership, _ in await coffee.active_memberships(session, program_id):
            membership.skip_next = False


async def tick(runtime: Runtime, now: datetime) -> None:
    """Everything due now, in an order that keeps rounds consistent: resumes first
    (a member whose pause ends at round time is paired), then rounds (which close
    their predecessors), then reminders and follow-ups of the rounds still open."""
    platforms = list(runtime.platforms)
    if not platforms:
        return
    async with runtime.db.sessions() as session:
        resumes = [
            (membership.id, membership.resume_at)
            for membership in await coffee.memberships_to_resume(session, now, platforms)
        ]
        programs = await coffee.programs_due(session, now, platforms)
    scheduler = runtime.claims
    for membership_id, resume_at in resumes:
        assert membership_id is not None and resume_at is not None
        work = partial(resume_member, runtime, membership_id)
        await scheduler.run_claimed(resume_job(membership_id), resume_at, work)
    for program in programs:
        await run_scheduled_round(runtime, program, now)
    async with runtime.db.sessions() as session:
        reminders = [
            (round_.id, round_.reminder_due_at)
            for round_ in await coffee.rounds_due(session, "reminder_due_at", now, platforms)
        ]
        followups = [
            (round_.id, round_.followup_due_at)
            for round_ in await coffee.rounds_due(session, "followup_due_at", now, platforms)
        ]
    for round_id, due in reminders:
        assert round_id is not None and due is not None
        await scheduler.run_claimed(
            reminder_job(round_id), due, partial(send_reminder, runtime, round_id)
        )
    for round_id, due in followups:
        assert round_id is not None and due is not None
        await scheduler.run_claimed(
            followup_job(round_id), due, partial(send_followups, runtime, round_id)
        )


async def next_due(runtime: Runtime, now: datetime) -> datetime | None:
    """When the tick next has work after `now` (a round, a reminder, a follow-up or
    a timed resume), so a simulated clock can jump straight there."""
    platforms = list(runtime.platforms)
    if not platforms:
        return None
    async with runtime.db.sessions() as session:
        return await coffee.next_due_after(session, now, platforms)
