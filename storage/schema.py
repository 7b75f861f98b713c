"""Every table module, imported once so `SQLModel.metadata` knows the whole schema
(for Alembic and for the test that keeps models and migrations in agreement)."""

from sqlmodel import SQLModel

from storage import (
    ama,  # noqa: F401
    coffee,  # noqa: F401
    curation,  # noqa: F401
    models,  # noqa: F401
    slack_installations,  # noqa: F401
    welcome,  # noqa: F401
)

metadata = SQLModel.metadata
