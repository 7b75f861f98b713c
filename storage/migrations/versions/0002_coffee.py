"""virtual coffee programs, rounds and groups

Revision ID: 0002_coffee
Revises: 0001_foundation
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

import storage.types

revision: str = "0002_coffee"
down_revision: str | Sequence[str] | None = "0001_foundation"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "coffee_block",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("platform", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("workspace_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("user_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("blocked_user_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("created_at", storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("platform", "workspace_id", "user_id", "blocked_user_id"),
    )
    op.create_table(
        "coffee_program",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("platform", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("workspace_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("channel_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("cadence", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("weekday", sa.Integer(), nullable=False),
        sa.Column("hour", sa.Integer(), nullable=False),
        sa.Column("timezone", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("anchor_date", sa.Date(), nullable=False),
        sa.Column("group_size", sa.Integer(), nullable=False),
        sa.Column("auto_join", sa.Boolean(), nullable=False),
        sa.Column("repeat_window", sa.Integer(), nullable=False),
        sa.Column("max_ignored", sa.Integer(), nullable=False),
        sa.Column("next_round_at", storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_by", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("created_at", storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("platform", "workspace_id", "channel_id"),
    )
    with op.batch_alter_table("coffee_program", schema=None) as batch_op:
        batch_op.create_index("ix_coffee_program_next_round_at", ["next_round_at"], unique=False)

    op.create_table(
        "coffee_membership",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("program_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("first_joined_at", storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("joined_at", storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("left_at", storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("paused", sa.Boolean(), nullable=False),
        sa.Column("resume_at", storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("pause_reason", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True),
        sa.Column("skip_next", sa.Boolean(), nullable=False),
        sa.Column("ignored_followups", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["program_id"],
            ["coffee_program.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("program_id", "user_id"),
    )
    with op.batch_alter_table("coffee_membership", schema=None) as batch_op:
        batch_op.create_index("ix_coffee_membership_resume_at", ["resume_at"], unique=False)

    op.create_table(
        "coffee_round",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("program_id", sa.Integer(), nullable=False),
        sa.Column("occurrence", storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("manual", sa.Boolean(), nullable=False),
        sa.Column("ends_at", storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("reminder_due_at", storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("followup_due_at", storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("followup_sent_at", storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("closed_at", storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("members_checked", sa.Boolean(), nullable=False),
        sa.Column("participants", sa.Integer(), nullable=False),
        sa.Column("groups", sa.Integer(), nullable=False),
        sa.Column("total_pairs", sa.Integer(), nullable=False),
        sa.Column("repeat_pairs", sa.Integer(), nullable=False),
        sa.Column("any_repeat_pairs", sa.Integer(), nullable=False),
        sa.Column("same_company_pairs", sa.Integer(), nullable=False),
        sa.Column("low_overlap_pairs", sa.Integer(), nullable=False),
        sa.Column("in_trio", sa.JSON(), nullable=False),
        sa.Column("left_out", sa.JSON(), nullable=False),
        sa.Column("solver_ms", sa.Float(), nullable=False),
        sa.Column("created_at", storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["program_id"],
            ["coffee_program.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("program_id", "occurrence"),
    )
    with op.batch_alter_table("coffee_round", schema=None) as batch_op:
        batch_op.create_index("ix_coffee_round_followup_due_at", ["followup_due_at"], unique=False)
        batch_op.create_index("ix_coffee_round_reminder_due_at", ["reminder_due_at"], unique=False)

    op.create_table(
        "coffee_group",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("round_id", sa.Integer(), nullable=False),
        sa.Column("program_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("starter", sa.Text(), nullable=False),
        sa.Column("proposer_user_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("intro_outbox_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["intro_outbox_id"],
            ["outbox.id"],
        ),
        sa.ForeignKeyConstraint(
            ["program_id"],
            ["coffee_program.id"],
        ),
        sa.ForeignKeyConstraint(
            ["round_id"],
            ["coffee_round.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("round_id", "position"),
    )
    with op.batch_alter_table("coffee_group", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_coffee_group_program_id"), ["program_id"], unique=False
        )

    op.create_table(
        "coffee_group_member",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("group_id", sa.Integer(), nullable=False),
        sa.Column("round_id", sa.Integer(), nullable=False),
        sa.Column("program_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("answer", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True),
        sa.Column("answered_at", storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("asked_at", storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["group_id"],
            ["coffee_group.id"],
        ),
        sa.ForeignKeyConstraint(
            ["program_id"],
            ["coffee_program.id"],
        ),
        sa.ForeignKeyConstraint(
            ["round_id"],
            ["coffee_round.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("group_id", "user_id"),
    )
    with op.batch_alter_table("coffee_group_member", schema=None) as batch_op:
        batch_op.create_index(
            "ix_coffee_group_member_program_user", ["program_id", "user_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("coffee_group_member", schema=None) as batch_op:
        batch_op.drop_index("ix_coffee_group_member_program_user")

    op.drop_table("coffee_group_member")
    with op.batch_alter_table("coffee_group", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_coffee_group_program_id"))

    op.drop_table("coffee_group")
    with op.batch_alter_table("coffee_round", schema=None) as batch_op:
        batch_op.drop_index("ix_coffee_round_reminder_due_at")
        batch_op.drop_index("ix_coffee_round_followup_due_at")

    op.drop_table("coffee_round")
    with op.batch_alter_table("coffee_membership", schema=None) as batch_op:
        batch_op.drop_index("ix_coffee_membership_resume_at")

    op.drop_table("coffee_membership")
    with op.batch_alter_table("coffee_program", schema=None) as batch_op:
        batch_op.drop_index("ix_coffee_program_next_round_at")

    op.drop_table("coffee_program")
    op.drop_table("coffee_block")
