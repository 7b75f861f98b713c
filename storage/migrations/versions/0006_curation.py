"""curation tables: library items, votes, digest settings, subscribers, curators

Revision ID: 0006_curation
Revises: 0001_foundation
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

import storage.types

revision: str = "0006_curation"
down_revision: str | Sequence[str] | None = "0001_foundation"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "curated_item",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("platform", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("workspace_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("url_key", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("url", sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=False),
        sa.Column("domain", sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
        sa.Column("title", sqlmodel.sql.sqltypes.AutoString(length=300), nullable=False),
        sa.Column("title_status", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("title_attempts", sa.Integer(), nullable=False),
        sa.Column("title_due_at", storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("tags", sa.JSON(), nullable=False),
        sa.Column("shared_by", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("source_channel_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("source_message_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("source_link", sa.Text(), nullable=True),
        sa.Column("vote_count", sa.Integer(), nullable=False),
        sa.Column("featured", sa.Boolean(), nullable=False),
        sa.Column("featured_at", storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("featured_by", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("hidden", sa.Boolean(), nullable=False),
        sa.Column("hidden_by", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("search_text", sa.Text(), nullable=False),
        sa.Column("created_at", storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("platform", "workspace_id", "url_key"),
    )
    with op.batch_alter_table("curated_item", schema=None) as batch_op:
        batch_op.create_index(
            "ix_curated_item_shared", ["platform", "workspace_id", "created_at"], unique=False
        )
        batch_op.create_index(
            "ix_curated_item_title_due", ["title_status", "title_due_at"], unique=False
        )

    op.create_table(
        "curation_curator",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("platform", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("workspace_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("user_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("added_by", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("created_at", storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("platform", "workspace_id", "user_id"),
    )
    op.create_table(
        "curation_settings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("platform", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("workspace_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("digest_enabled", sa.Boolean(), nullable=False),
        sa.Column("digest_channel_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("digest_weekday", sqlmodel.sql.sqltypes.AutoString(length=3), nullable=False),
        sa.Column("digest_hour", sa.Integer(), nullable=False),
        sa.Column("timezone", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("emoji", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("feed_enabled", sa.Boolean(), nullable=False),
        sa.Column("next_digest_at", storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_digest_at", storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("platform", "workspace_id"),
    )
    with op.batch_alter_table("curation_settings", schema=None) as batch_op:
        batch_op.create_index(
            "ix_curation_settings_due", ["digest_enabled", "next_digest_at"], unique=False
        )

    op.create_table(
        "curation_subscriber",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("platform", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("workspace_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("user_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("created_at", storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("platform", "workspace_id", "user_id"),
    )
    op.create_table(
        "curation_vote",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("item_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("created_at", storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["item_id"],
            ["curated_item.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("item_id", "user_id"),
    )


def downgrade() -> None:
    op.drop_table("curation_vote")
    op.drop_table("curation_subscriber")
    with op.batch_alter_table("curation_settings", schema=None) as batch_op:
        batch_op.drop_index("ix_curation_settings_due")

    op.drop_table("curation_settings")
    op.drop_table("curation_curator")
    with op.batch_alter_table("curated_item", schema=None) as batch_op:
        batch_op.drop_index("ix_curated_item_title_due")
        batch_op.drop_index("ix_curated_item_shared")

    op.drop_table("curated_item")
