"""ama sessions, questions and votes

Revision ID: 0005_ama
Revises: 0001_foundation
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

import storage.types

revision: str = "0005_ama"
down_revision: str | Sequence[str] | None = "0001_foundation"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "ama",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("platform", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("workspace_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("title", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("host_user_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("channel_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("created_by", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("timezone", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("moderated", sa.Boolean(), nullable=False),
        sa.Column("mod_channel_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("max_questions", sa.Integer(), nullable=False),
        sa.Column("state", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("announce_at", storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("starts_at", storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("ends_at", storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("next_event_at", storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("question_count", sa.Integer(), nullable=False),
        sa.Column("created_at", storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("live_at", storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("closed_at", storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("ama", schema=None) as batch_op:
        batch_op.create_index(
            "ix_ama_community_state", ["platform", "workspace_id", "state"], unique=False
        )
        batch_op.create_index("ix_ama_next_event_at", ["next_event_at"], unique=False)

    op.create_table(
        "ama_question",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ama_id", sa.Integer(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=True),
        sa.Column("author_user_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("anonymous", sa.Boolean(), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("votes", sa.Integer(), nullable=False),
        sa.Column("similar_to_id", sa.Integer(), nullable=True),
        sa.Column("post_outbox_id", sa.Integer(), nullable=True),
        sa.Column("post_update_outbox_id", sa.Integer(), nullable=True),
        sa.Column("mod_outbox_id", sa.Integer(), nullable=True),
        sa.Column("live_outbox_id", sa.Integer(), nullable=True),
        sa.Column("moderated_by", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("reject_reason", sa.Text(), nullable=True),
        sa.Column("created_at", storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("resolved_at", storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["ama_id"],
            ["ama.id"],
        ),
        sa.ForeignKeyConstraint(
            ["similar_to_id"],
            ["ama_question.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("ama_id", "number"),
    )
    with op.batch_alter_table("ama_question", schema=None) as batch_op:
        batch_op.create_index("ix_ama_question_ama_status", ["ama_id", "status"], unique=False)

    op.create_table(
        "ama_vote",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("question_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("created_at", storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["question_id"],
            ["ama_question.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("question_id", "user_id"),
    )


def downgrade() -> None:
    op.drop_table("ama_vote")
    with op.batch_alter_table("ama_question", schema=None) as batch_op:
        batch_op.drop_index("ix_ama_question_ama_status")

    op.drop_table("ama_question")
    with op.batch_alter_table("ama", schema=None) as batch_op:
        batch_op.drop_index("ix_ama_next_event_at")
        batch_op.drop_index("ix_ama_community_state")

    op.drop_table("ama")
