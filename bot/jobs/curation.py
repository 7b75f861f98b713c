"""Curation's ticks: each community's weekly digest when it is due (claimed once
across replicas), and the title fetches queued for new links."""

from __future__ import annotations

from datetime import datetime

from bot.core.runtime import Runtime
from bot.services.curation import DIGEST_JOB, digest_work, latest_due
from bot.services.curation_titles import title_fetches
from storage import curation as store

DIGEST_TICK = DIGEST_JOB
DIGEST_TICK_SECONDS = 60
TITLES_TICK = "curation.titles"
TITLES_TICK_SECONDS = 30


async def run_due_digests(runtime: Runtime, now: datetime) -> None:
    """Every tick, on every replica: send each community's digest that is due."""
    async with runtime.db.transaction() as session:
        due = [
            (settings.id, latest_due(settings, now))
            for settings in await store.due_digests(session, now)
        ]
    for settings_id, occurrence in due:
        if settings_id is None or occurrence is None:
            continue
        await runtime.claims.run_claimed(
            f"{DIGEST_JOB}:{settings_id}", occurrence, digest_work(runtime, settings_id, now)
        )


async def fetch_due_titles(runtime: Runtime, now: datetime) -> None:
    await title_fetches(runtime).run_due(now)


async def next_digest_due(runtime: Runtime, now: datetime) -> datetime | None:
    """When the next digest after `now` is due, for a simulated clock."""
    async with runtime.db.sessions() as session:
        return await store.next_digest_due(session, now)


async def next_title_due(runtime: Runtime, now: datetime) -> datetime | None:
    """When the next title fetch or retry after `now` is due, for a simulated clock."""
    async with runtime.db.sessions() as session:
        return await store.next_title_due(session, now)
