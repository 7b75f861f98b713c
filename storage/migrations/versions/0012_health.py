"""health tables: activity counts, newcomers' first steps, settings, NPS pulse

Revision ID: 0012_health
Revises: 0001_foundation
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

import storage.types

revision: str = "0012_health"
down_revision: str | Sequence[str] | None = "0001_foundation"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _string(length: int) -> sqlmodel.sql.sqltypes.AutoString:
    return sqlmodel.sql.sqltypes.AutoString(length=length)


def upgrade() -> None:
    op.create_table(
        "health_activity",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("platform", _string(16), nullable=False),
        sa.Column("workspace_id", _string(64), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("user_id", _string(64), nullable=False),
        sa.Column("channel_id", _string(64), nullable=False),
        sa.Column("messages", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("platform", "workspace_id", "day", "user_id", "channel_id"),
    )
    with op.batch_alter_table("health_activity", schema=None) as batch_op:
        batch_op.create_index(
            "ix_health_activity_member",
            ["platform", "workspace_id", "user_id", "day"],
            unique=False,
        )
    op.create_table(
        "health_newcomer",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("platform", _string(16), nullable=False),
        sa.Column("workspace_id", _string(64), nullable=False),
        sa.Column("user_id", _string(64), nullable=False),
        sa.Column("joined_at", storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("first_post_at", storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("first_reply_at", storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("platform", "workspace_id", "user_id"),
    )
    with op.batch_alter_table("health_newcomer", schema=None) as batch_op:
        batch_op.create_index(
            "ix_health_newcomer_joined", ["platform", "workspace_id", "joined_at"], unique=False
        )
    op.create_table(
        "health_settings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("platform", _string(16), nullable=False),
        sa.Column("workspace_id", _string(64), nullable=False),
        sa.Column("report_channel_id", _string(64), nullable=True),
        sa.Column("report_next_at", storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("pulse_enabled", sa.Boolean(), nullable=False),
        sa.Column("pulse_every_days", sa.Integer(), nullable=False),
        sa.Column("pulse_channel_id", _string(64), nullable=True),
        sa.Column("pulse_question", _string(300), nullable=False),
        sa.Column("pulse_anonymous", sa.Boolean(), nullable=False),
        sa.Column("pulse_next_at", storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("platform", "workspace_id"),
    )
    op.create_table(
        "health_pulse_round",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("platform", _string(16), nullable=False),
        sa.Column("workspace_id", _string(64), nullable=False),
        sa.Column("started_at", storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("question", _string(300), nullable=False),
        sa.Column("anonymous", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("platform", "workspace_id", "started_at"),
    )
    op.create_table(
        "health_pulse_ask",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("round_id", sa.Integer(), nullable=False),
        sa.Column("user_id", _string(64), nullable=False),
        sa.Column("answered", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(["round_id"], ["health_pulse_round.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("round_id", "user_id"),
    )
    op.create_table(
        "health_pulse_answer",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("round_id", sa.Integer(), nullable=False),
        sa.Column("user_id", _string(64), nullable=True),
        sa.Column("score", sa.Integer(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("answered_on", sa.Date(), nullable=False),
        sa.Column("token", _string(32), nullable=False),
        sa.ForeignKeyConstraint(["round_id"], ["health_pulse_round.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("token"),
    )
    with op.batch_alter_table("health_pulse_answer", schema=None) as batch_op:
        batch_op.create_index("ix_health_pulse_answer_round", ["round_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("health_pulse_answer", schema=None) as batch_op:
        batch_op.drop_index("ix_health_pulse_answer_round")
    op.drop_table("health_pulse_answer")
    op.drop_table("health_pulse_ask")
    op.drop_table("health_pulse_round")
    op.drop_table("health_settings")
    with op.batch_alter_table("health_newcomer", schema=None) as batch_op:
        batch_op.drop_index("ix_health_newcomer_joined")
    op.drop_table("health_newcomer")
    with op.batch_alter_table("health_activity", schema=None) as batch_op:
        batch_op.drop_index("ix_health_activity_member")
    op.drop_table("health_activity")
