"""kudos tables: kudos with reasons, recognition settings and rule, recognised
contributors, board opt-outs

Revision ID: 0010_kudos
Revises: 0001_foundation
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

import storage.types

revision: str = "0010_kudos"
down_revision: str | Sequence[str] | None = "0001_foundation"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "kudos",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("platform", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("workspace_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("giver_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("receiver_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("category", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True),
        sa.Column("source", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("source_key", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
        sa.Column("emoji", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("channel_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("message_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("message_link", sa.Text(), nullable=True),
        sa.Column("private", sa.Boolean(), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("created_at", storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("active_at", storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("ended_at", storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("revoked_by", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("revoke_reason", sa.Text(), nullable=True),
        sa.Column("public_post_id", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("platform", "workspace_id", "source_key"),
    )
    with op.batch_alter_table("kudos", schema=None) as batch_op:
        batch_op.create_index(
            "ix_kudos_given", ["platform", "workspace_id", "giver_id", "created_at"], unique=False
        )
        batch_op.create_index(
            "ix_kudos_message",
            ["platform", "workspace_id", "channel_id", "message_id"],
            unique=False,
        )
        batch_op.create_index(
            "ix_kudos_received",
            ["platform", "workspace_id", "receiver_id", "created_at"],
            unique=False,
        )

    op.create_table(
        "kudos_board_opt_out",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("platform", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("workspace_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("user_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("created_at", storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("platform", "workspace_id", "user_id"),
    )
    op.create_table(
        "kudos_recognised",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("platform", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("workspace_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("user_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("granted_at", storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("months_below", sa.Integer(), nullable=False),
        sa.Column("reviewed_at", storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("dropped_at", storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("times_granted", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("platform", "workspace_id", "user_id"),
    )
    op.create_table(
        "kudos_settings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("platform", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("workspace_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("timezone", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("emoji", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("reaction_needs_reason", sa.Boolean(), nullable=False),
        sa.Column("categories", sa.JSON(), nullable=False),
        sa.Column("public_channel_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("announce", sa.Boolean(), nullable=False),
        sa.Column("daily_allowance", sa.Integer(), nullable=False),
        sa.Column("min_kudos", sa.Integer(), nullable=False),
        sa.Column("min_givers", sa.Integer(), nullable=False),
        sa.Column("min_companies", sa.Integer(), nullable=False),
        sa.Column("min_days", sa.Integer(), nullable=False),
        sa.Column("min_evidence", sa.Integer(), nullable=False),
        sa.Column("role", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True),
        sa.Column("created_at", storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("platform", "workspace_id"),
    )


def downgrade() -> None:
    op.drop_table("kudos_settings")
    op.drop_table("kudos_recognised")
    op.drop_table("kudos_board_opt_out")
    with op.batch_alter_table("kudos", schema=None) as batch_op:
        batch_op.drop_index("ix_kudos_received")
        batch_op.drop_index("ix_kudos_message")
        batch_op.drop_index("ix_kudos_given")

    op.drop_table("kudos")
