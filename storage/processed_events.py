"""Idempotent inbound: each delivery key acts once (DESIGN.md §3)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from storage.db import rowcount
from storage.models import ProcessedEvent


async def first_delivery(session: AsyncSession, key: str) -> bool:
    """Record `key` in the caller's transaction; False when it was already processed
    (the record then commits or rolls back together with the handler's effects)."""
    try:
        async with session.begin_nested():
            session.add(ProcessedEvent(key=key[:255]))
            await session.flush()
    except IntegrityError:
        return False
    return True


async def forget_before(session: AsyncSession, cutoff: datetime) -> int:
    """Platforms re-deliver within minutes; keys older than a few days only take space."""
    result = await session.execute(
        delete(ProcessedEvent).where(col(ProcessedEvent.processed_at) < cutoff)
    )
    return rowcount(result) or 0
