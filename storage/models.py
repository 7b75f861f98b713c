"""Foundation tables: communities, members and their profiles, the outbox,
processed inbound events and job claims. Feature tables live in their own
modules under `storage/` and are gathered by `storage.schema`."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from storage.types import UTCDateTime, utcnow


class Community(SQLModel, table=True):
    """A Slack workspace or Discord guild (or the console's demo community)."""

    __tablename__ = "community"
    __table_args__ = (UniqueConstraint("platform", "workspace_id"),)

    id: int | None = Field(default=None, primary_key=True)
    platform: str = Field(max_length=16)
    workspace_id: str = Field(max_length=64)
    name: str = Field(default="", max_length=200)
    active: bool = True
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class Member(SQLModel, table=True):
    """A person in one community, with the profile they chose to share."""

    __tablename__ = "member"
    __table_args__ = (UniqueConstraint("platform", "workspace_id", "user_id"),)

    id: int | None = Field(default=None, primary_key=True)
    platform: str = Field(max_length=16)
    workspace_id: str = Field(max_length=64)
    user_id: str = Field(max_length=64)
    display_name: str = Field(default="", max_length=200)
    is_bot: bool = False
    deactivated: bool = False
    first_seen_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    company: str | None = Field(default=None, max_length=100)
    industry: str | None = Field(default=None, max_length=100)
    role: str | None = Field(default=None, max_length=100)
    seniority: str | None = Field(default=None, max_length=50)
    timezone: str | None = Field(default=None, max_length=64)
    topics: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    bio: str | None = Field(default=None, sa_column=Column(Text))
    profile_updated_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class OutboxMessage(SQLModel, table=True):
    """A message the bot owes a platform, written in the same transaction as the
    state change that caused it, delivered later by the dispatcher."""

    __tablename__ = "outbox"
    __table_args__ = (
        UniqueConstraint("platform", "workspace_id", "dedupe_key"),
        Index("ix_outbox_due", "status", "next_attempt_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    platform: str = Field(max_length=16)
    workspace_id: str = Field(max_length=64)
    # dm | post | group | thread_reply | update | role
    kind: str = Field(max_length=16)
    # A user id (dm, role), channel id (post), parent/target channel (thread_reply, update).
    target: str = Field(default="", max_length=64)
    # For kind=group: the members; for thread_reply/update: the MessageRef.
    details: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    payload: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    # Waits until that outbox row is sent (e.g. a thread reply to a pending post).
    after_id: int | None = Field(default=None, foreign_key="outbox.id")
    dedupe_key: str | None = Field(default=None, max_length=200)
    # pending | sent | failed
    status: str = Field(default="pending", max_length=16)
    attempts: int = 0
    next_attempt_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    lease_owner: str | None = Field(default=None, max_length=64)
    lease_until: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # Set by the first lease and kept: a row leased again may have been sent since
    # then (its dispatcher died between the send and the mark), so the dispatcher
    # looks for that copy before sending.
    first_leased_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    sent_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # The delivered message (MessageRef fields), so later rows can reply or update.
    sent_ref: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    # For kind=group: the conversation opened before the intro was posted, kept so
    # a retry posts into the same conversation instead of opening another.
    opened_channel: str | None = Field(default=None, max_length=64)
    last_error: str | None = Field(default=None, sa_column=Column(Text))


class ProcessedEvent(SQLModel, table=True):
    """Keys of inbound deliveries already acted upon (Slack retries, Discord resumes)."""

    __tablename__ = "processed_event"

    key: str = Field(primary_key=True, max_length=255)
    processed_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class JobClaim(SQLModel, table=True):
    """One row per (job, occurrence): the replica whose insert wins does the work."""

    __tablename__ = "job_claim"
    __table_args__ = (UniqueConstraint("job", "occurrence"),)

    id: int | None = Field(default=None, primary_key=True)
    job: str = Field(max_length=200)
    occurrence: str = Field(max_length=64)
    owner: str = Field(max_length=64)
    claimed_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    finished_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
