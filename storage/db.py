"""The async engine: embedded SQLite (aiosqlite, WAL) by default, PostgreSQL
(asyncpg) when a community outgrows one machine (DESIGN.md §4)."""

from __future__ import annotations

import socket
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
from sqlalchemy.engine import URL, Connection, CursorResult, Result, make_url
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

    def __init__(
        self,
        url: str,
        *,
        schema: str | None = None,
        echo: bool = False,
        read_only: bool = False,
    ) -> None:
        self.url = make_url(url)
        self.dialect = self.url.get_backend_name()
        self.schema = schema
        self.read_only = read_only
        options: dict[str, Any] = {"echo": echo}
        engine_url = self.url
        if self.dialect == "sqlite":
            # One connection serialises writers in-process: SQLite allows one writer,
            # and a shared connection can never hit "database is locked".
            options |= {"pool_size": 1, "max_overflow": 0, "pool_timeout": 60}
            database = self.url.database
            if read_only and database and database != ":memory:":
                # `kindred check` looks without touching: read-only mode neither
                # creates the file nor changes its journal mode. Reading a WAL database
                # creates its -wal and -shm files unless none exists (nobody has it
                # open): then `immutable` reads without them.
                path = Path(database).resolve()
                quiet = not Path(f"{path}-wal").exists()
                mode = "mode=ro&immutable=1" if quiet else "mode=ro"
                engine_url = self.url.set(database=f"file:{path}?{mode}", query={"uri": "true"})
            elif database and database != ":memory:":
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
        self.engine: AsyncEngine = create_async_engine(engine_url, **options)
        if self.dialect == "sqlite" and not read_only:
            event.listen(self.engine.sync_engine, "connect", _sqlite_connect)
            event.listen(self.engine.sync_engine, "begin", _sqlite_begin)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """A session inside one transaction: committed on success, rolled back on error."""
        async with self.sessions() as session, session.begin():
            yield session

    async def ping(self) -> bool:
        return await self.unreachable() is None

    async def unreachable(self) -> str | None:
        """Why the database cannot be used, in plain words; None when it can."""
        try:
            async with self.engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
        except Exception as error:
            return connection_problem(error, self.url)
        return None

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


# PostgreSQL's SQLSTATE codes for the refusals an operator can fix in DATABASE_URL.
_INVALID_DATABASE = "3D000"
_AUTHENTICATION = {"28000", "28P01"}


def connection_problem(error: BaseException, url: URL) -> str:
    """An operator's explanation of a failed connection, naming DATABASE_URL."""
    original = getattr(error, "orig", None) or error.__cause__ or error
    state = getattr(original, "sqlstate", None)
    where = f"{url.host or 'localhost'}:{url.port or 5432}"
    said = str(original).strip().splitlines()[0] if str(original).strip() else ""
    if state == _INVALID_DATABASE:
        return (
            f"the server at {where} answered: {said}. Create it (e.g. `createdb "
            f"{url.database}`) or fix the database name in DATABASE_URL."
        )
    if state in _AUTHENTICATION:
        return (
            f"the server at {where} refused the login ({said}): authentication failed; "
            "check the user name and password in DATABASE_URL."
        )
    if isinstance(original, ConnectionRefusedError):
        return (
            f"connection refused: nothing listens at {where}. Is PostgreSQL running, and "
            "are the host and port in DATABASE_URL right?"
        )
    if isinstance(original, socket.gaierror):
        return f"the host '{url.host}' in DATABASE_URL cannot be resolved."
    if isinstance(original, TimeoutError):
        return f"no answer from {where} in time; check the host and port in DATABASE_URL."
    return f"{original.__class__.__name__}: {said or 'no details'} (DATABASE_URL)."


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
