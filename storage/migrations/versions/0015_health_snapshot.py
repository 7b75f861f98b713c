"""health_page_snapshot: the dashboard page as last built, shared by every replica

Revision ID: 0015_health_snapshot
Revises: 0012_health
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

import storage.types

revision: str = "0015_health_snapshot"
down_revision: str | Sequence[str] | None = "0012_health"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _string(length: int) -> sqlmodel.sql.sqltypes.AutoString:
    return sqlmodel.sql.sqltypes.AutoString(length=length)


def upgrade() -> None:
    op.create_table(
        "health_page_snapshot",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("platform", _string(16), nullable=False),
        sa.Column("workspace_id", _string(64), nullable=False),
        sa.Column("period", _string(16), nullable=False),
        sa.Column("built_at", storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("page", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("platform", "workspace_id", "period"),
    )


def downgrade() -> None:
    op.drop_table("health_page_snapshot")
