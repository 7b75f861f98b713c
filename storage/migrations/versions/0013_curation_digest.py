"""curation: a record of each digest sent, so its figures outlive pruned outbox rows

Revision ID: 0013_curation_digest
Revises: 0006_curation
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

import storage.types

revision: str = "0013_curation_digest"
down_revision: str | Sequence[str] | None = "0006_curation"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "curation_digest",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("platform", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("workspace_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("occurrence", storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("items", sa.Integer(), nullable=False),
        sa.Column("to_channel", sa.Boolean(), nullable=False),
        sa.Column("subscribers", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("platform", "workspace_id", "occurrence"),
    )


def downgrade() -> None:
    op.drop_table("curation_digest")
