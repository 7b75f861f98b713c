"""Every table module, imported once so `SQLModel.metadata` knows the whole schema
(for Alembic and for the test that keeps models and migrations in agreement)."""

from sqlmodel import SQLModel

from storage import models  # noqa: F401

metadata = SQLModel.metadata
