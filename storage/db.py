"""The async engine: embedded SQLite (aiosqlite, WAL) by default, PostgreSQL
(asyncpg) when a community outgrows one machine (DESIGN.md §4)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import event, text
from sqlalchemy.engine import Connection, CursorResult, Result, make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

MIGRATIONS = Path(__file__).parent / "migrations"

MigrationStatus = Literal["empty", "behind", "current", "ahead"]


@dataclass(frozen=True, slots=True)
class MigrationState:
    status: MigrationStatus
    current: frozenset[str]
    heads: frozenset[str]


class Database:
    """One engine and its session factory; `schema` isolates a PostgreSQL schema
    (tests run each worker in its own)."""

    def __init__(self, url: str, *, schema: str | None = None, echo: bool = False) -> None:
        self.url = make_url(url)
        self.dialect = self.url.get_backend_name()
        self.schema = schema
        options: dict[str, Any] = {"echo": echo}
        if self.dialect == "sqlite":
            # One connection serialises writers in-process: SQLite allows one writer,
            # and a shared connection can never hit "database is locked".
            options |= {"pool_size": 1, "max_overflow": 0, "pool_timeout": 60}
            database = self.url.database
            if database and database != ":memory:":
                Path(database).parent.mkdir(parents=True, exist_ok=True)
        elif self.dialect == "postgresql":
            options |= {"pool_size": 10, "max_overflow": 10, "pool_pre_ping": True}
            if schema:
                options["connect_args"] = {"server_settings": {"search_path": schema}}
        else:
            raise ValueError(
                f"DATABASE_URL uses '{self.dialect}'; Kindred supports sqlite+aiosqlite "
                "and postgresql+asyncpg"
            )
        self.engine: AsyncEngine = create_async_engine(self.url, **options)
        if self.dialect == "sqlite":
            event.listen(self.engine.sync_engine, "connect", _sqlite_connect)
            event.listen(self.engine.sync_engine, "begin", _sqlite_begin)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)

    @property
    def is_postgres(self) -> bool:
        return self.dialect == "postgresql"

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """A session inside one transaction: committed on success, rolled back on error."""
        async with self.sessions() as session, session.begin():
            yield session

    async def ping(self) -> bool:
        try:
            async with self.engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
        except Exception:
            return False
        return True

    async def upgrade(self) -> MigrationState:
        async with self.engine.begin() as connection:
            await connection.run_sync(_upgrade)
        return await self.migration_state()

    async def migration_state(self) -> MigrationState:
        async with self.engine.connect() as connection:
            current = await connection.run_sync(_current_revisions)
        heads = frozenset(_script().get_heads())
        known = {revision.revision for revision in _script().walk_revisions()}
        if not current:
            status: MigrationStatus = "empty"
        elif current - known:
            status = "ahead"
        elif current == heads:
            status = "current"
        else:
            status = "behind"
        return MigrationState(status, frozenset(current), heads)

    async def dispose(self) -> None:
        await self.engine.dispose()


def rowcount(result: Result[Any]) -> int:
    """Rows an UPDATE or DELETE (without RETURNING) matched.

    `AsyncSession.execute` is typed to return `Result` because a session cannot
    promise a cursor for every statement (SQLAlchemy #12913); for such DML it is
    always a `CursorResult`, which is what carries `rowcount`."""
    if not isinstance(result, CursorResult):
        raise TypeError(f"rowcount needs the CursorResult of DML, not {type(result).__name__}")
    return result.rowcount


def _sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    # The sqlite3 driver's own transaction handling never emits BEGIN before a
    # SAVEPOINT, so releasing a savepoint would commit the whole transaction. Turn it
    # off and begin explicitly (the SQLAlchemy-documented recipe).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


def _sqlite_begin(connection: Connection) -> None:
    connection.exec_driver_sql("BEGIN")


def _alembic_config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def _script() -> ScriptDirectory:
    return ScriptDirectory.from_config(_alembic_config())


def _upgrade(connection: Connection) -> None:
    command.upgrade(_alembic_config(connection), "heads")


def _current_revisions(connection: Connection) -> set[str]:
    return set(MigrationContext.configure(connection).get_current_heads())
