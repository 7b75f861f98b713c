"""Exactly-once scheduled work: every replica may fire a trigger, only the one
whose insert of `(job, occurrence)` succeeds does the work (DESIGN.md §3)."""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

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
        .where(JobClaim.job == job, JobClaim.occurrence == occurrence)
        .values(finished_at=utcnow())
    )


async def unfinished(session: AsyncSession, job_prefix: str) -> list[JobClaim]:
    """Claims whose work was interrupted (a crash after the claim), oldest first."""
    query = (
        select(JobClaim)
        .where(JobClaim.job.startswith(job_prefix), JobClaim.finished_at.is_(None))
        .order_by(JobClaim.id)
    )
    return list((await session.execute(query)).scalars())
