"""Exactly-once scheduled work: every replica may fire a trigger, only the one
whose insert of `(job, occurrence)` succeeds does the work (DESIGN.md §3)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from storage.db import rowcount
from storage.models import JobClaim
from storage.types import utcnow


async def claim(session: AsyncSession, job: str, occurrence: str, owner: str) -> bool:
    """Claim inside the caller's transaction, so the claim commits with the work it
    guards. A savepoint keeps a lost race from spoiling the caller's transaction."""
    try:
        async with session.begin_nested():
            session.add(JobClaim(job=job, occurrence=occurrence, owner=owner))
            await session.flush()
    except IntegrityError:
        return False
    return True


async def finish(session: AsyncSession, job: str, occurrence: str) -> None:
    await session.execute(
        update(JobClaim)
        .where(col(JobClaim.job) == job, col(JobClaim.occurrence) == occurrence)
        .values(finished_at=utcnow())
    )


async def forget_finished_before(session: AsyncSession, cutoff: datetime) -> int:
    """Finished claims older than any catch-up window only take space: the work they
    guarded is recorded in the features' own tables."""
    result = await session.execute(
        delete(JobClaim).where(
            col(JobClaim.finished_at).is_not(None), col(JobClaim.finished_at) < cutoff
        )
    )
    return rowcount(result) or 0
