"""Shared fixtures: real databases (SQLite per test, PostgreSQL per worker schema),
a controllable clock, and a Kindred core wired to the in-memory fake platform."""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from bot.core.app import Kindred
from bot.core.settings import Settings
from storage.db import Database
from storage.schema import metadata
from tests.driver import Community
from tests.fakes.platform import FakePlatform

REPO = Path(__file__).resolve().parent.parent
POSTGRES_URL = os.environ.get(
    "KINDRED_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
)


class Clock:
    """A clock tests move by hand."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock(datetime(2026, 11, 23, 9, 0, tzinfo=UTC))


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One migrated SQLite file per worker; each test gets a copy (migrating is slow)."""
    path = tmp_path_factory.mktemp("template") / "template.db"

    async def migrate() -> None:
        db = Database(f"sqlite+aiosqlite:///{path}")
        await db.upgrade()
        async with db.engine.connect() as connection:
            await connection.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))
        await db.dispose()

    asyncio.run(migrate())
    return path


@pytest.fixture
async def sqlite_db(sqlite_template: Path, tmp_path: Path) -> AsyncIterator[Database]:
    path = tmp_path / "kindred.db"
    shutil.copyfile(sqlite_template, path)
    db = Database(f"sqlite+aiosqlite:///{path}")
    yield db
    await db.dispose()


def _postgres_reachable() -> str | None:
    async def probe() -> None:
        engine = create_async_engine(POSTGRES_URL)
        try:
            async with engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
        finally:
            await engine.dispose()

    try:
        asyncio.run(probe())
    except Exception as error:
        return f"PostgreSQL at {POSTGRES_URL} is unreachable: {error.__class__.__name__}"
    return None


@pytest.fixture(scope="session")
def postgres_schema() -> Iterator[str]:
    """A migrated schema of our own for this worker, dropped at the end."""
    problem = _postgres_reachable()
    if problem is not None:
        pytest.skip(problem)
    schema = f"kindred_test_{uuid.uuid4().hex[:10]}"

    async def create() -> None:
        admin = create_async_engine(POSTGRES_URL)
        async with admin.begin() as connection:
            await connection.execute(text(f'CREATE SCHEMA "{schema}"'))
        await admin.dispose()
        db = Database(POSTGRES_URL, schema=schema)
        await db.upgrade()
        await db.dispose()

    async def drop() -> None:
        admin = create_async_engine(POSTGRES_URL)
        async with admin.begin() as connection:
            await connection.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        await admin.dispose()

    asyncio.run(create())
    yield schema
    asyncio.run(drop())


@pytest.fixture
async def postgres_db(postgres_schema: str) -> AsyncIterator[Database]:
    db = Database(POSTGRES_URL, schema=postgres_schema)
    tables = ", ".join(f'"{table.name}"' for table in metadata.sorted_tables)
    async with db.engine.begin() as connection:
        await connection.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    yield db
    await db.dispose()


@pytest.fixture(params=["sqlite", "postgres"])
def db(request: pytest.FixtureRequest) -> Database:
    """Runs the test on both databases."""
    return request.getfixturevalue(f"{request.param}_db")


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return replace(Settings(), config_dir=REPO / "config")


@pytest.fixture
def platform() -> FakePlatform:
    return FakePlatform()


@pytest.fixture
async def kindred(
    settings: Settings, sqlite_db: Database, clock: Clock, platform: FakePlatform
) -> AsyncIterator[Kindred]:
    app = Kindred(replace(settings, database_url=str(sqlite_db.url)), sqlite_db, clock=clock)
    app.attach(platform)
    yield app
    await app.stop()


@pytest.fixture
def community(kindred: Kindred, platform: FakePlatform, clock: Clock) -> Community:
    """The shared driver: members of workspace W1 speaking to the real core."""
    return Community(kindred, platform, clock)
