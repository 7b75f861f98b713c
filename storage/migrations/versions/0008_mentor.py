"""mentorship: program, offers, requests, mentorships, rounds, check-ins, feedback

Revision ID: 0008_mentor
Revises: 0001_foundation
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

import storage.types

revision: str = "0008_mentor"
down_revision: str | Sequence[str] | None = "0001_foundation"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "mentor_offer",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("platform", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("workspace_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("user_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("topics", sa.JSON(), nullable=False),
        sa.Column("seniority", sqlmodel.sql.sqltypes.AutoString(length=50), nullable=False),
        sa.Column("capacity", sa.Integer(), nullable=False),
        sa.Column("duration_days", sa.Integer(), nullable=False),
        sa.Column("cadence", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("cooldown_weeks", sa.Integer(), nullable=False),
        sa.Column("paused", sa.Boolean(), nullable=False),
        sa.Column("cooldown_until", storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("load", sa.Integer(), nullable=False),
        sa.Column("created_at", storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("platform", "workspace_id", "user_id"),
    )
    op.create_table(
        "mentor_program",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("platform", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("workspace_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("channel_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("cadence", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("next_round_at", storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("approval", sa.Boolean(), nullable=False),
        sa.Column("same_company_allowed", sa.Boolean(), nullable=False),
        sa.Column("max_requests_per_month", sa.Integer(), nullable=False),
        sa.Column("timezone", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("created_by", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("created_at", storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("platform", "workspace_id"),
    )
    op.create_table(
        "mentor_request",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("platform", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("workspace_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("mentee_user_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("goal", sqlmodel.sql.sqltypes.AutoString(length=300), nullable=False),
        sa.Column("topics", sa.JSON(), nullable=False),
        sa.Column("success", sa.Text(), nullable=False),
        sa.Column("cadence", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("rematch_of", sa.Integer(), nullable=True),
        sa.Column("created_at", storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("matched_at", storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("closed_at", storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["rematch_of"],
            ["mentor_request.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("mentor_request", schema=None) as batch_op:
        batch_op.create_index(
            "ix_mentor_request_community_status",
            ["platform", "workspace_id", "status"],
            unique=False,
        )
        batch_op.create_index(
            "ix_mentor_request_mentee", ["platform", "workspace_id", "mentee_user_id"], unique=False
        )

    op.create_table(
        "mentor_round",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("program_id", sa.Integer(), nullable=False),
        sa.Column("occurrence", storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("manual", sa.Boolean(), nullable=False),
        sa.Column("mentees", sa.Integer(), nullable=False),
        sa.Column("mentors", sa.Integer(), nullable=False),
        sa.Column("matched", sa.Integer(), nullable=False),
        sa.Column("mean_score", sa.Float(), nullable=False),
        sa.Column("solver_ms", sa.Float(), nullable=False),
        sa.Column("created_at", storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["program_id"],
            ["mentor_program.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "mentorship",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("platform", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("workspace_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("request_id", sa.Integer(), nullable=False),
        sa.Column("mentor_user_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("mentee_user_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("reasons", sa.JSON(), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("round_id", sa.Integer(), nullable=True),
        sa.Column("proposed_at", storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("respond_by", storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("started_at", storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("planned_end_at", storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("next_due_at", storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("handled_until", storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("ended_at", storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("ended_by", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("outcome", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True),
        sa.Column("end_reason", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["request_id"],
            ["mentor_request.id"],
        ),
        sa.ForeignKeyConstraint(
            ["round_id"],
            ["mentor_round.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("mentorship", schema=None) as batch_op:
        batch_op.create_index(
            "ix_mentorship_community_status", ["platform", "workspace_id", "status"], unique=False
        )
        batch_op.create_index(
            "ix_mentorship_mentee", ["platform", "workspace_id", "mentee_user_id"], unique=False
        )
        batch_op.create_index(
            "ix_mentorship_mentor", ["platform", "workspace_id", "mentor_user_id"], unique=False
        )
        batch_op.create_index("ix_mentorship_next_due_at", ["next_due_at"], unique=False)

    op.create_table(
        "mentor_checkin",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("mentorship_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("day", sa.Integer(), nullable=False),
        sa.Column("answer", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("answered_at", storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["mentorship_id"],
            ["mentorship.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("mentorship_id", "user_id", "day"),
    )
    op.create_table(
        "mentor_feedback",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("mentorship_id", sa.Integer(), nullable=False),
        sa.Column("platform", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("workspace_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("mentee_user_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("mentor_user_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("rating", sa.Integer(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("recommend", sa.Boolean(), nullable=True),
        sa.Column("created_at", storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["mentorship_id"],
            ["mentorship.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("mentorship_id"),
    )


def downgrade() -> None:
    op.drop_table("mentor_feedback")
    op.drop_table("mentor_checkin")
    with op.batch_alter_table("mentorship", schema=None) as batch_op:
        batch_op.drop_index("ix_mentorship_next_due_at")
        batch_op.drop_index("ix_mentorship_mentor")
        batch_op.drop_index("ix_mentorship_mentee")
        batch_op.drop_index("ix_mentorship_community_status")

    op.drop_table("mentorship")
    op.drop_table("mentor_round")
    with op.batch_alter_table("mentor_request", schema=None) as batch_op:
        batch_op.drop_index("ix_mentor_request_mentee")
        batch_op.drop_index("ix_mentor_request_community_status")

    op.drop_table("mentor_request")
    op.drop_table("mentor_program")
    op.drop_table("mentor_offer")
