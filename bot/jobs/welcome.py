"""The welcome tick: delayed welcome DMs and buddy check-ins that are due, each
claimed once across replicas."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.runtime import Runtime
from bot.services.welcome import nudge_buddy, send_delayed_welcome
from storage import welcome as welcome_rows

TICK = "welcome.tick"
TICK_SECONDS = 60
# Per tick and per kind: a burst of delayed welcomes is queued over a few minutes
# (the dispatcher paces delivery anyway) without one tick running for long.
BATCH = 500


async def run_due(runtime: Runtime, now: datetime) -> int:
    """Queue every delayed welcome and buddy check-in due at `now`; how many ran here."""
    async with runtime.db.sessions() as session:
        due_welcomes = await welcome_rows.due_welcomes(session, now, BATCH)
        due_checkins = await welcome_rows.due_buddy_checkins(session, now, BATCH)
    templates = runtime.templates
    ran = 0
    for welcome_id, due in due_welcomes:

        async def send_welcome(
            session: AsyncSession, _: datetime, welcome_id: int = welcome_id
        ) -> None:
            await send_delayed_welcome(session, templates, welcome_id, now)

        ran += await runtime.claims.run_claimed(f"welcome.dm:{welcome_id}", due, send_welcome)
    for welcome_id, due in due_checkins:

        async def nudge(session: AsyncSession, _: datetime, welcome_id: int = welcome_id) -> None:
            await nudge_buddy(session, templates, welcome_id, now)

        ran += await runtime.claims.run_claimed(f"welcome.checkin:{welcome_id}", due, nudge)
    return ran


async def tick(runtime: Runtime, now: datetime) -> None:
    """The scheduler's entry point (it needs no count; tests read `run_due`'s)."""
    await run_due(runtime, now)


async def next_due(runtime: Runtime, now: datetime) -> datetime | None:
    """When the next delayed welcome or buddy check-in after `now` is due, for a
    simulated clock."""
    async with runtime.db.sessions() as session:
        return await welcome_rows.next_due_after(session, now)
