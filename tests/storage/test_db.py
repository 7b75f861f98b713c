from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import text

from storage.db import Database
from storage.schema import metadata


async def test_migrations_from_empty_reach_every_head(tmp_path: Path) -> None:
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}")
    try:
        before = await db.migration_state()
        assert before.status == "empty"
        after = await db.upgrade()
        assert after.status == "current"
        assert after.current == after.heads
        again = await db.upgrade()
        assert again.current == after.current
    finally:
        await db.dispose()


async def test_models_and_migrations_agree(db: Database) -> None:
    def differences(connection) -> list:  # type: ignore[no-untyped-def]
        context = MigrationContext.configure(connection, opts={"compare_type": False})
        return compare_metadata(context, metadata)

    async with db.engine.connect() as connection:
        diff = await connection.run_sync(differences)
    assert diff == []


async def test_database_newer_than_code_is_reported(tmp_path: Path) -> None:
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'new.db'}")
    try:
        await db.upgrade()
        async with db.engine.begin() as connection:
            # One row per branch head: rename one of them to a revision the code lacks.
            await connection.execute(
                text(
                    "UPDATE alembic_version SET version_num='9999_future' "
                    "WHERE version_num = (SELECT MIN(version_num) FROM alembic_version)"
                )
            )
        assert (await db.migration_state()).status == "ahead"
    finally:
        await db.dispose()


async def test_sqlite_runs_in_wal_mode(sqlite_db: Database) -> None:
    async with sqlite_db.engine.connect() as connection:
        mode = (await connection.execute(text("PRAGMA journal_mode"))).scalar()
    assert mode == "wal"


def test_unsupported_database_is_refused() -> None:
    with pytest.raises(ValueError, match="supports sqlite"):
        Database("mysql+aiomysql://localhost/kindred")
