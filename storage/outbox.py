"""Outbox rows: enqueue inside a feature's transaction, lease to one dispatcher
(`FOR UPDATE SKIP LOCKED` on PostgreSQL), mark each sent exactly once."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, exists, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased
from sqlmodel import col

from storage import dialect
from storage.db import Database
from storage.models import OutboxMessage
from storage.types import utcnow


async def enqueue(
    session: AsyncSession,
    *,
    platform: str,
    workspace_id: str,
    kind: str,
    payload: dict[str, Any],
    target: str = "",
    details: dict[str, Any] | None = None,
    dedupe_key: str | None = None,
    after_id: int | None = None,
    not_before: datetime | None = None,
) -> int:
    """Add a row to the caller's transaction; a repeated `dedupe_key` returns the
    existing row's id instead of adding a second message."""
    values = {
        "platform": platform,
        "workspace_id": workspace_id,
        "kind": kind,
        "target": target,
        "details": details or {},
        "payload": payload,
        "dedupe_key": dedupe_key,
        "after_id": after_id,
        "status": "pending",
        "attempts": 0,
        "next_attempt_at": not_before or utcnow(),
        "created_at": utcnow(),
    }
    statement = (
        dialect.insert(session, OutboxMessage)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["platform", "workspace_id", "dedupe_key"])
        .returning(col(OutboxMessage.id))
    )
    row_id: int | None = (await session.execute(statement)).scalar_one_or_none()
    if row_id is not None:
        return row_id
    existing = select(col(OutboxMessage.id)).where(
        col(OutboxMessage.platform) == platform,
        col(OutboxMessage.workspace_id) == workspace_id,
        col(OutboxMessage.dedupe_key) == dedupe_key,
    )
    found = (await session.execute(existing)).scalar_one()
    assert found is not None  # a primary key
    return found


# Keys per look-up of `enqueue_many` (SQLite allows 32,766 bound values).
_MANY_CHUNK = 500


async def enqueue_many(
    session: AsyncSession,
    *,
    platform: str,
    workspace_id: str,
    rows: Sequence[tuple[str, str, dict[str, Any], dict[str, Any], str]],
) -> list[int]:
    """Many rows at once, as `enqueue` would add them one by one: each row is `(kind,
    target, details, payload, dedupe_key)`, and a key already queued yields that row's id.
    A few statements instead of one per row: a round of thousands of intros would
    otherwise spend its time handing single statements to the database driver."""
    now = utcnow()
    keys = [row[4] for row in rows]
    values = [
        {
            "platform": platform,
            "workspace_id": workspace_id,
            "kind": kind,
            "target": target,
            "details": details,
            "payload": payload,
            "dedupe_key": key,
            "after_id": None,
            "status": "pending",
            "attempts": 0,
            "next_attempt_at": now,
            "created_at": now,
        }
        for kind, target, details, payload, key in rows
    ]
    if values:
        # Executed with many parameter sets: SQLAlchemy batches them into multi-row
        # INSERTs of one compiled statement.
        await session.execute(
            dialect.insert(session, OutboxMessage).on_conflict_do_nothing(
                index_elements=["platform", "workspace_id", "dedupe_key"]
            ),
            values,
        )
    found: dict[str, int] = {}
    for start in range(0, len(keys), _MANY_CHUNK):
        query = select(col(OutboxMessage.dedupe_key), col(OutboxMessage.id)).where(
            col(OutboxMessage.platform) == platform,
            col(OutboxMessage.workspace_id) == workspace_id,
            col(OutboxMessage.dedupe_key).in_(keys[start : start + _MANY_CHUNK]),
        )
        for key, row_id in (await session.execute(query)).all():
            assert row_id is not None  # a primary key
            found[str(key)] = row_id
    return [found[key] for key in keys]


@dataclass(frozen=True, slots=True)
class ClaimedRow:
    row: OutboxMessage
    # The sent message of `after_id`, for thread replies and updates to it.
    parent_ref: dict[str, Any] | None
    # When the row was first leased, if this is not its first lease: a dispatcher
    # that held it may have sent it since then without living to mark it.
    leased_before: datetime | None = None


async def claim_due(
    db: Database,
    *,
    owner: str,
    platforms: Sequence[str],
    limit: int,
    lease: timedelta,
    now: datetime | None = None,
) -> list[ClaimedRow]:
    """Lease up to `limit` due rows to `owner`. Rows leased by a dispatcher that
    died become due again when its lease runs out."""
    now = now or utcnow()
    parent = aliased(OutboxMessage)
    parent_sent = exists().where(
        col(parent.id) == col(OutboxMessage.after_id), col(parent.status) == "sent"
    )
    due = (
        select(col(OutboxMessage.id))
        .where(
            col(OutboxMessage.status) == "pending",
            col(OutboxMessage.platform).in_(platforms),
            col(OutboxMessage.next_attempt_at) <= now,
            or_(col(OutboxMessage.lease_until).is_(None), col(OutboxMessage.lease_until) < now),
            or_(col(OutboxMessage.after_id).is_(None), parent_sent),
        )
        .order_by(col(OutboxMessage.id))
        .limit(limit)
        .with_for_update(skip_locked=True, of=OutboxMessage)
    )
    async with db.transaction() as session:
        ids = list((await session.execute(due)).scalars())
        if not ids:
            return []
        earlier = await session.execute(
            select(col(OutboxMessage.id), col(OutboxMessage.first_leased_at)).where(
                col(OutboxMessage.id).in_(ids)
            )
        )
        leased_before = {row_id: at for row_id, at in earlier.all() if at is not None}
        await session.execute(
            update(OutboxMessage)
            .where(col(OutboxMessage.id).in_(ids))
            .values(
                lease_owner=owner,
                lease_until=now + lease,
                first_leased_at=func.coalesce(col(OutboxMessage.first_leased_at), now),
            )
        )
        rows = list(
            (
                await session.execute(
                    select(OutboxMessage)
                    .where(col(OutboxMessage.id).in_(ids))
                    .order_by(col(OutboxMessage.id))
                )
            ).scalars()
        )
        parent_ids = {row.after_id for row in rows if row.after_id is not None}
        parents: dict[int, dict[str, Any] | None] = {}
        if parent_ids:
            found = await session.execute(
                select(col(OutboxMessage.id), col(OutboxMessage.sent_ref)).where(
                    col(OutboxMessage.id).in_(parent_ids)
                )
            )
            parents = {row_id: ref for row_id, ref in found.all()}
    return [
        ClaimedRow(row, parents.get(row.after_id or -1), leased_before.get(row.id or -1))
        for row in rows
    ]


async def renew(
    db: Database, *, owner: str, ids: Iterable[int], lease: timedelta, now: datetime | None = None
) -> set[int]:
    """Extend `owner`'s lease on those of `ids` it still holds (the heartbeat of a
    dispatcher that is busy sending); returns them. A row missing from the answer
    was taken over or finished, and must not be sent by `owner`."""
    wanted = list(ids)
    if not wanted:
        return set()
    now = now or utcnow()
    async with db.transaction() as session:
        renewed = await session.execute(
            update(OutboxMessage)
            .where(
                col(OutboxMessage.id).in_(wanted),
                col(OutboxMessage.lease_owner) == owner,
                col(OutboxMessage.status) == "pending",
                col(OutboxMessage.lease_until).is_not(None),
            )
            .values(lease_until=now + lease)
            .returning(col(OutboxMessage.id))
        )
        return {row_id for row_id in renewed.scalars() if row_id is not None}


async def mark_sent(db: Database, delivered: Iterable[tuple[int, dict[str, Any]]]) -> None:
    """Record deliveries in one transaction (the dispatcher batches them)."""
    batch = [
        {"id": row_id, "status": "sent", "sent_ref": ref, "sent_at": utcnow(), "lease_until": None}
        for row_id, ref in delivered
    ]
    if not batch:
        return
    async with db.transaction() as session:
        await session.execute(update(OutboxMessage), batch)


async def record_opened_channel(db: Database, row_id: int, channel_id: str) -> None:
    async with db.transaction() as session:
        await session.execute(
            update(OutboxMessage)
            .where(col(OutboxMessage.id) == row_id)
            .values(opened_channel=channel_id)
        )


async def reschedule(
    db: Database, row_id: int, *, at: datetime, error: str, count_attempt: bool = True
) -> None:
    """Give the row back (lease released) to be tried again at `at`."""
    values: dict[str, Any] = {
        "next_attempt_at": at,
        "lease_owner": None,
        "lease_until": None,
        "last_error": error[:2000],
    }
    if count_attempt:
        values["attempts"] = col(OutboxMessage.attempts) + 1
    async with db.transaction() as session:
        await session.execute(
            update(OutboxMessage).where(col(OutboxMessage.id) == row_id).values(values)
        )


async def mark_failed(db: Database, row_id: int, error: str) -> None:
    """Give up on a row, and on every row waiting for it (a reply to a post that was
    never delivered can never be delivered either)."""
    async with db.transaction() as session:
        await session.execute(
            update(OutboxMessage)
            .where(col(OutboxMessage.id) == row_id)
            .values(
                status="failed",
                lease_owner=None,
                lease_until=None,
                attempts=col(OutboxMessage.attempts) + 1,
                last_error=error[:2000],
            )
        )
        failed = [row_id]
        while failed:
            dependents = await session.execute(
                update(OutboxMessage)
                .where(
                    col(OutboxMessage.status) == "pending", col(OutboxMessage.after_id).in_(failed)
                )
                .values(status="failed", last_error=f"waited for outbox row {row_id}, which failed")
                .returning(col(OutboxMessage.id))
            )
            failed = [dependent for dependent in dependents.scalars() if dependent is not None]


async def counts_by_status(db: Database) -> dict[str, int]:
    async with db.sessions() as session:
        result = await session.execute(
            select(col(OutboxMessage.status), func.count()).group_by(col(OutboxMessage.status))
        )
        return {status: count for status, count in result.all()}


async def has_pending(db: Database, platforms: Sequence[str]) -> bool:
    """Whether any row is still owed (due now, leased, or waiting for a retry)."""
    async with db.sessions() as session:
        query = select(
            exists().where(
                and_(
                    col(OutboxMessage.status) == "pending",
                    col(OutboxMessage.platform).in_(platforms),
                )
            )
        )
        return bool((await session.execute(query)).scalar())
