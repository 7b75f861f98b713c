"""Recognition tables and queries: kudos (with reasons, their source message and
what became of them), each community's settings and written rule, the members
who earned the status, and the members who keep off the boards."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import JSON, Column, Index, Text, UniqueConstraint, distinct, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import Field, SQLModel, col

from storage.types import UTCDateTime, utcnow

# What became of a kudos.
PENDING = "pending"  # given by reaction; waiting for the giver's reason
ACTIVE = "active"
WITHDRAWN = "withdrawn"  # the reaction was removed or the message deleted
REVOKED = "revoked"  # an admin revoked it, with a reason


class KudosSettings(SQLModel, table=True):
    """One community's kudos settings and its written rule for the status."""

    __tablename__ = "kudos_settings"
    __table_args__ = (UniqueConstraint("platform", "workspace_id"),)

    id: int | None = Field(default=None, primary_key=True)
    platform: str = Field(max_length=16)
    workspace_id: str = Field(max_length=64)
    timezone: str = Field(default="UTC", max_length=64)
    emoji: str = Field(default="raised_hands", max_length=64)
    # A reaction records a kudos only once the giver has said why (a DM asks).
    reaction_needs_reason: bool = True
    categories: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    # Where kudos (and, when `announce`, new recognised contributors) are posted.
    public_channel_id: str | None = Field(default=None, max_length=64)
    announce: bool = True
    daily_allowance: int = 5
    min_kudos: int = 8
    min_givers: int = 5
    min_companies: int = 2
    min_days: int = 30
    min_evidence: int = 1
    # The Discord role recognised contributors get (a name or an id), if any.
    role: str | None = Field(default=None, max_length=100)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class Kudos(SQLModel, table=True):
    """One thank-you from a giver to a receiver."""

    __tablename__ = "kudos"
    __table_args__ = (
        # A reaction records one kudos per giver and message, however often delivered.
        UniqueConstraint("platform", "workspace_id", "source_key"),
        Index("ix_kudos_received", "platform", "workspace_id", "receiver_id", "created_at"),
        Index("ix_kudos_given", "platform", "workspace_id", "giver_id", "created_at"),
        Index("ix_kudos_message", "platform", "workspace_id", "channel_id", "message_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    platform: str = Field(max_length=16)
    workspace_id: str = Field(max_length=64)
    giver_id: str = Field(max_length=64)
    receiver_id: str = Field(max_length=64)
    reason: str | None = Field(default=None, sa_column=Column(Text))
    category: str | None = Field(default=None, max_length=40)
    # command | reaction
    source: str = Field(max_length=16)
    source_key: str | None = Field(default=None, max_length=200)
    emoji: str | None = Field(default=None, max_length=64)
    channel_id: str | None = Field(default=None, max_length=64)
    message_id: str | None = Field(default=None, max_length=64)
    message_link: str | None = Field(default=None, sa_column=Column(Text))
    # Given in a private channel or a DM: never posted in the public channel.
    private: bool = False
    status: str = Field(default=ACTIVE, max_length=16)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    # When it started to count (a reaction's kudos: when its reason came).
    active_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    ended_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    revoked_by: str | None = Field(default=None, max_length=64)
    revoke_reason: str | None = Field(default=None, sa_column=Column(Text))
    # The outbox row of its public post, so a withdrawal can edit the post.
    public_post_id: int | None = Field(default=None)


class RecognisedContributor(SQLModel, table=True):
    """A member who met the community's rule; kept while monthly reviews allow."""

    __tablename__ = "kudos_recognised"
    __table_args__ = (UniqueConstraint("platform", "workspace_id", "user_id"),)

    id: int | None = Field(default=None, primary_key=True)
    platform: str = Field(max_length=16)
    workspace_id: str = Field(max_length=64)
    user_id: str = Field(max_length=64)
    active: bool = True
    granted_at: datetime = Field(sa_type=UTCDateTime)
    # Monthly reviews in a row that found the member below the bar.
    months_below: int = 0
    reviewed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    dropped_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    times_granted: int = 1


class KudosBoardOptOut(SQLModel, table=True):
    """A member who asked to be left off the leaderboards."""

    __tablename__ = "kudos_board_opt_out"
    __table_args__ = (UniqueConstraint("platform", "workspace_id", "user_id"),)

    id: int | None = Field(default=None, primary_key=True)
    platform: str = Field(max_length=16)
    workspace_id: str = Field(max_length=64)
    user_id: str = Field(max_length=64)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


# --- Settings ----------------------------------------------------------------------


async def get_settings(
    session: AsyncSession, platform: str, workspace_id: str
) -> KudosSettings | None:
    query = select(KudosSettings).where(
        col(KudosSettings.platform) == platform, col(KudosSettings.workspace_id) == workspace_id
    )
    return (await session.execute(query)).scalar_one_or_none()


async def add_settings(session: AsyncSession, settings: KudosSettings) -> KudosSettings:
    """Insert a community's settings; when a concurrent handler won, use its row."""
    try:
        async with session.begin_nested():
            session.add(settings)
            await session.flush()
    except IntegrityError:
        existing = await get_settings(session, settings.platform, settings.workspace_id)
        assert existing is not None
        return existing
    return settings


async def all_settings(session: AsyncSession) -> list[KudosSettings]:
    query = select(KudosSettings).order_by(col(KudosSettings.id))
    return list((await session.execute(query)).scalars())


# --- Kudos -------------------------------------------------------------------------


async def add_kudos(session: AsyncSession, kudos: Kudos) -> Kudos | None:
    """Insert a kudos; None when its source (a giver's reaction on a message) already
    recorded one."""
    try:
        async with session.begin_nested():
            session.add(kudos)
            await session.flush()
    except IntegrityError:
        return None
    return kudos


async def get_kudos(
    session: AsyncSession, platform: str, workspace_id: str, kudos_id: int
) -> Kudos | None:
    query = select(Kudos).where(
        col(Kudos.platform) == platform,
        col(Kudos.workspace_id) == workspace_id,
        col(Kudos.id) == kudos_id,
    )
    return (await session.execute(query)).scalar_one_or_none()


async def by_source(
    session: AsyncSession, platform: str, workspace_id: str, source_key: str
) -> Kudos | None:
    query = select(Kudos).where(
        col(Kudos.platform) == platform,
        col(Kudos.workspace_id) == workspace_id,
        col(Kudos.source_key) == source_key,
    )
    return (await session.execute(query)).scalar_one_or_none()


async def on_message(
    session: AsyncSession, platform: str, workspace_id: str, channel_id: str, message_id: str
) -> list[Kudos]:
    """Kudos recorded for one message that still stand or wait for a reason."""
    query = select(Kudos).where(
        col(Kudos.platform) == platform,
        col(Kudos.workspace_id) == workspace_id,
        col(Kudos.channel_id) == channel_id,
        col(Kudos.message_id) == message_id,
        col(Kudos.status).in_([ACTIVE, PENDING]),
    )
    return list((await session.execute(query)).scalars())


async def given_since(
    session: AsyncSession, platform: str, workspace_id: str, giver_id: str, since: datetime
) -> int:
    """How many kudos `giver_id` gave since `since` (for the daily allowance; a
    withdrawn one still used its place, so remove-and-add gains nothing)."""
    query = select(func.count()).where(
        col(Kudos.platform) == platform,
        col(Kudos.workspace_id) == workspace_id,
        col(Kudos.giver_id) == giver_id,
        col(Kudos.created_at) >= since,
        col(Kudos.status) != REVOKED,
    )
    return int((await session.execute(query)).scalar_one())


async def standing(
    session: AsyncSession,
    platform: str,
    workspace_id: str,
    since: datetime,
    until: datetime | None = None,
) -> list[Kudos]:
    """Every kudos that stands (active), given in [since, until)."""
    query = select(Kudos).where(
        col(Kudos.platform) == platform,
        col(Kudos.workspace_id) == workspace_id,
        col(Kudos.status) == ACTIVE,
        col(Kudos.created_at) >= since,
    )
    if until is not None:
        query = query.where(col(Kudos.created_at) < until)
    return list((await session.execute(query.order_by(col(Kudos.id)))).scalars())


async def in_period(
    session: AsyncSession, platform: str, workspace_id: str, start: datetime, end: datetime
) -> list[Kudos]:
    """Every kudos created in [start, end), whatever became of it."""
    query = select(Kudos).where(
        col(Kudos.platform) == platform,
        col(Kudos.workspace_id) == workspace_id,
        col(Kudos.created_at) >= start,
        col(Kudos.created_at) < end,
    )
    return list((await session.execute(query.order_by(col(Kudos.id)))).scalars())


async def listed(
    session: AsyncSession,
    platform: str,
    workspace_id: str,
    *,
    receiver_id: str | None = None,
    giver_id: str | None = None,
    limit: int,
    include_private: bool = True,
) -> list[Kudos]:
    """A member's latest kudos received (or given) that stand, newest first."""
    query = select(Kudos).where(
        col(Kudos.platform) == platform,
        col(Kudos.workspace_id) == workspace_id,
        col(Kudos.status) == ACTIVE,
    )
    if not include_private:
        query = query.where(col(Kudos.private).is_(False))
    if receiver_id is not None:
        query = query.where(col(Kudos.receiver_id) == receiver_id)
    if giver_id is not None:
        query = query.where(col(Kudos.giver_id) == giver_id)
    query = query.order_by(col(Kudos.created_at).desc(), col(Kudos.id).desc()).limit(limit)
    return list((await session.execute(query)).scalars())


async def counts_about(
    session: AsyncSession, platform: str, workspace_id: str, user_id: str
) -> tuple[int, int]:
    """How many kudos rows name `user_id` as giver, and as receiver."""
    base = select(func.count()).where(
        col(Kudos.platform) == platform, col(Kudos.workspace_id) == workspace_id
    )
    given = (await session.execute(base.where(col(Kudos.giver_id) == user_id))).scalar_one()
    received = (await session.execute(base.where(col(Kudos.receiver_id) == user_id))).scalar_one()
    return int(given), int(received)


async def receivers_since(
    session: AsyncSession, platform: str, workspace_id: str, since: datetime
) -> list[str]:
    """Members with a standing kudos since `since` (candidates for the status)."""
    query = (
        select(col(Kudos.receiver_id))
        .where(
            col(Kudos.platform) == platform,
            col(Kudos.workspace_id) == workspace_id,
            col(Kudos.status) == ACTIVE,
            col(Kudos.created_at) >= since,
        )
        .distinct()
        .order_by(col(Kudos.receiver_id))
    )
    return list((await session.execute(query)).scalars())


@dataclass(frozen=True, slots=True)
class ReceivedSummary:
    """A member's standing kudos received: how many, from how many givers, and the
    categories with their counts (most first)."""

    kudos: int
    givers: int
    categories: list[tuple[str, int]]


async def received_summary(
    session: AsyncSession, platform: str, workspace_id: str, user_id: str
) -> ReceivedSummary:
    mine = (
        col(Kudos.platform) == platform,
        col(Kudos.workspace_id) == workspace_id,
        col(Kudos.receiver_id) == user_id,
        col(Kudos.status) == ACTIVE,
    )
    totals = select(func.count(), func.count(distinct(col(Kudos.giver_id)))).where(*mine)
    kudos, givers = (await session.execute(totals)).one()
    by_category = (
        select(col(Kudos.category), func.count())
        .where(*mine, col(Kudos.category).is_not(None))
        .group_by(col(Kudos.category))
    )
    counted = [(str(name), int(count)) for name, count in await session.execute(by_category)]
    counted.sort(key=lambda item: (-item[1], item[0]))
    return ReceivedSummary(int(kudos), int(givers), counted)


# --- Recognised contributors -------------------------------------------------------


async def recognition(
    session: AsyncSession, platform: str, workspace_id: str, user_id: str
) -> RecognisedContributor | None:
    query = select(RecognisedContributor).where(
        col(RecognisedContributor.platform) == platform,
        col(RecognisedContributor.workspace_id) == workspace_id,
        col(RecognisedContributor.user_id) == user_id,
    )
    return (await session.execute(query)).scalar_one_or_none()


async def recognised(
    session: AsyncSession, platform: str, workspace_id: str
) -> list[RecognisedContributor]:
    """The community's current recognised contributors."""
    query = (
        select(RecognisedContributor)
        .where(
            col(RecognisedContributor.platform) == platform,
            col(RecognisedContributor.workspace_id) == workspace_id,
            col(RecognisedContributor.active).is_(True),
        )
        .order_by(col(RecognisedContributor.granted_at))
    )
    return list((await session.execute(query)).scalars())


async def add_recognition(
    session: AsyncSession, row: RecognisedContributor
) -> RecognisedContributor | None:
    """Insert a first grant; None when a concurrent handler granted it first."""
    try:
        async with session.begin_nested():
            session.add(row)
            await session.flush()
    except IntegrityError:
        return None
    return row


# --- Boards ------------------------------------------------------------------------


async def opted_out(session: AsyncSession, platform: str, workspace_id: str) -> set[str]:
    query = select(col(KudosBoardOptOut.user_id)).where(
        col(KudosBoardOptOut.platform) == platform,
        col(KudosBoardOptOut.workspace_id) == workspace_id,
    )
    return set((await session.execute(query)).scalars())


async def set_opt_out(
    session: AsyncSession, platform: str, workspace_id: str, user_id: str, *, out: bool
) -> bool:
    """Keep `user_id` off the boards (or put them back); whether anything changed."""
    query = select(KudosBoardOptOut).where(
        col(KudosBoardOptOut.platform) == platform,
        col(KudosBoardOptOut.workspace_id) == workspace_id,
        col(KudosBoardOptOut.user_id) == user_id,
    )
    existing = (await session.execute(query)).scalar_one_or_none()
    if out and existing is None:
        try:
            async with session.begin_nested():
                session.add(
                    KudosBoardOptOut(platform=platform, workspace_id=workspace_id, user_id=user_id)
                )
                await session.flush()
        except IntegrityError:
            return False
        return True
    if not out and existing is not None:
        await session.delete(existing)
        return True
    return False
