"""welcome newcomers: arrivals, buddies and the organisers' settings

Revision ID: 0004_welcome
Revises: 0001_foundation
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

import storage.types

revision: str = "0004_welcome"
down_revision: str | Sequence[str] | None = "0001_foundation"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "welcome",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("platform", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("workspace_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("user_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("trigger", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("joined_at", storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("welcome_due_at", storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("welcomed_at", storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("greeter_user_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("greeted_at", storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("intro_posted_at", storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("buddy_requested_at", storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("buddy_user_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("buddied_at", storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("buddy_checkin_due_at", storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("buddy_nudged_at", storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("platform", "workspace_id", "user_id"),
    )
    with op.batch_alter_table("welcome", schema=None) as batch_op:
        batch_op.create_index(
            "ix_welcome_buddy", ["platform", "workspace_id", "buddy_user_id"], unique=False
        )
        batch_op.create_index("ix_welcome_checkin_due", ["buddy_checkin_due_at"], unique=False)
        batch_op.create_index("ix_welcome_due", ["welcome_due_at"], unique=False)

    op.create_table(
        "welcome_buddy",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("platform", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("workspace_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("user_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("updated_at", storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("platform", "workspace_id", "user_id"),
    )
    op.create_table(
        "welcome_settings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("platform", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("workspace_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("template", sa.Text(), nullable=True),
        sa.Column("delay_seconds", sa.Integer(), nullable=False),
        sa.Column("trigger", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("trigger_channel", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("intro_channel", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("greeters_channel", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("auto_buddy", sa.Boolean(), nullable=False),
        sa.Column(
            "code_of_conduct_url", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True
        ),
        sa.Column("visit_channels", sa.JSON(), nullable=False),
        sa.Column("updated_at", storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("platform", "workspace_id"),
    )


def downgrade() -> None:
    op.drop_table("welcome_settings")
    op.drop_table("welcome_buddy")
    with op.batch_alter_table("welcome", schema=None) as batch_op:
        batch_op.drop_index("ix_welcome_due")
        batch_op.drop_index("ix_welcome_checkin_due")
        batch_op.drop_index("ix_welcome_buddy")

    op.drop_table("welcome")
