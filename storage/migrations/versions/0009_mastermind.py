"""mastermind cycles, applications, groups, sessions, entries and ratings

Revision ID: 0009_mastermind
Revises: 0001_foundation
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

import storage.types

revision: str = "0009_mastermind"
down_revision: str | Sequence[str] | None = "0001_foundation"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "mastermind_cycle",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("platform", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("workspace_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("channel_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("organiser_user_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("timezone", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("deadline", storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("min_size", sa.Integer(), nullable=False),
        sa.Column("max_size", sa.Integer(), nullable=False),
        sa.Column("cadence", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("session_minutes", sa.Integer(), nullable=False),
        sa.Column("session_count", sa.Integer(), nullable=False),
        sa.Column("allow_colleagues", sa.Boolean(), nullable=False),
        sa.Column("state", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("created_at", storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("formed_at", storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("ended_at", storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("mastermind_cycle", schema=None) as batch_op:
        batch_op.create_index(
            "ix_mastermind_cycle_community", ["platform", "workspace_id", "state"], unique=False
        )

    op.create_table(
        "mastermind_group",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("cycle_id", sa.Integer(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("shared_tags", sa.JSON(), nullable=False),
        sa.Column("slot_start", sa.Integer(), nullable=False),
        sa.Column("slot_end", sa.Integer(), nullable=False),
        sa.Column("first_session_at", storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("conversation_outbox_id", sa.Integer(), nullable=True),
        sa.Column("created_at", storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["cycle_id"],
            ["mastermind_cycle.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("cycle_id", "number"),
    )
    op.create_table(
        "mastermind_application",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("cycle_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("challenge", sa.Text(), nullable=False),
        sa.Column("tags", sa.JSON(), nullable=False),
        sa.Column("seniority", sqlmodel.sql.sqltypes.AutoString(length=50), nullable=True),
        sa.Column("seniority_level", sa.Integer(), nullable=True),
        sa.Column("company", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True),
        sa.Column("availability", sa.JSON(), nullable=False),
        sa.Column("slots_text", sqlmodel.sql.sqltypes.AutoString(length=300), nullable=False),
        sa.Column("timezone", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("waiting_reason", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
        sa.Column("group_id", sa.Integer(), nullable=True),
        sa.Column("applied_at", storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("seated_at", storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("left_at", storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["cycle_id"],
            ["mastermind_cycle.id"],
        ),
        sa.ForeignKeyConstraint(
            ["group_id"],
            ["mastermind_group.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("cycle_id", "user_id"),
    )
    with op.batch_alter_table("mastermind_application", schema=None) as batch_op:
        batch_op.create_index("ix_mastermind_application_group", ["group_id"], unique=False)

    op.create_table(
        "mastermind_rating",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("group_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("score", sa.Integer(), nullable=False),
        sa.Column("comment", sqlmodel.sql.sqltypes.AutoString(length=300), nullable=False),
        sa.Column("continue_together", sa.Boolean(), nullable=False),
        sa.Column("rated_at", storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["group_id"],
            ["mastermind_group.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("group_id", "user_id"),
    )
    op.create_table(
        "mastermind_session",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("group_id", sa.Integer(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("starts_at", storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("hot_seat_user_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("next_event", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True),
        sa.Column("next_event_at", storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["group_id"],
            ["mastermind_group.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("group_id", "number"),
    )
    with op.batch_alter_table("mastermind_session", schema=None) as batch_op:
        batch_op.create_index(
            "ix_mastermind_session_next_event_at", ["next_event_at"], unique=False
        )

    op.create_table(
        "mastermind_entry",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("session_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("attended", sa.Boolean(), nullable=True),
        sa.Column("update_text", sa.Text(), nullable=True),
        sa.Column("update_at", storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("commitment_text", sa.Text(), nullable=True),
        sa.Column("commitment_at", storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("commitment_kept", sa.Boolean(), nullable=True),
        sa.Column("followed_up_at", storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("answered_at", storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["mastermind_session.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("session_id", "user_id"),
    )


def downgrade() -> None:
    op.drop_table("mastermind_entry")
    with op.batch_alter_table("mastermind_session", schema=None) as batch_op:
        batch_op.drop_index("ix_mastermind_session_next_event_at")

    op.drop_table("mastermind_session")
    op.drop_table("mastermind_rating")
    with op.batch_alter_table("mastermind_application", schema=None) as batch_op:
        batch_op.drop_index("ix_mastermind_application_group")

    op.drop_table("mastermind_application")
    op.drop_table("mastermind_group")
    with op.batch_alter_table("mastermind_cycle", schema=None) as batch_op:
        batch_op.drop_index("ix_mastermind_cycle_community")

    op.drop_table("mastermind_cycle")
