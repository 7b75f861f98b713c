"""The few statements whose spelling differs between SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

from sqlalchemy.dialects.postgresql import insert as postgres_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession


def insert(session: AsyncSession, model: Any) -> Any:
    """An INSERT for `model` with the dialect's ON CONFLICT clauses available
    (both dialects spell them `on_conflict_do_nothing` / `on_conflict_do_update`)."""
    dialect = session.bind.dialect.name if session.bind is not None else "sqlite"
    return (postgres_insert if dialect == "postgresql" else sqlite_insert)(model)
