"""Mastermind cycles, applications, groups, their sessions, what each member did
at each session (attendance, update, commitment) and the end-of-cycle ratings.

A member's application is also their seat: `group_id` and `seated_at`/`left_at`
say which group they sit in and since when, so a session's roster is who was
seated when it started. Changes two people may make at once (a double click on
form, two members answering one agenda) are single statements or rows guarded by
a unique key, so the database decides who wins.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import JSON, Column, Index, Text, UniqueConstraint, delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import Field, SQLModel, col

from bot.domain.mastermind import ApplicationStatus, CycleState
from storage import dialect
from storage.db import rowcount
from storage.models import OutboxMessage
from storage.types import UTCDateTime, utcnow


class MastermindCycle(SQLModel, table=True):
    """One round of mastermind groups in a community, from applications to the
    end-of-cycle ratings (states: `bot.domain.mastermind.CycleState`)."""

    __tablename__ = "mastermind_cycle"
    __table_args__ = (Index("ix_mastermind_cycle_community", "platform", "workspace_id", "state"),)

    id: int | None = Field(default=None, primary_key=True)
    platform: str = Field(max_length=16)
    workspace_id: str = Field(max_length=64)
    # Where it was set up: on Discord the groups' private threads open here.
    channel_id: str | None = Field(default=None, max_length=64)
    name: str = Field(max_length=100)
    organiser_user_id: str = Field(max_length=64)
    # The organiser's zone (else the community's): deadlines and previews read in it.
    timezone: str = Field(max_length=64)
    deadline: datetime = Field(sa_type=UTCDateTime)
    min_size: int = 5
    max_size: int = 7
    cadence: str = Field(default="weekly", max_length=16)
    session_minutes: int = 60
    session_count: int = 6
    allow_colleagues: bool = False
    state: str = Field(default=CycleState.OPEN, max_length=16)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    formed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    ended_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class MastermindApplication(SQLModel, table=True):
    __tablename__ = "mastermind_application"
    __table_args__ = (
        # A member is in one group per cycle: one application, one seat.
        UniqueConstraint("cycle_id", "user_id"),
        Index("ix_mastermind_application_group", "group_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    cycle_id: int = Field(foreign_key="mastermind_cycle.id")
    user_id: str = Field(max_length=64)
    challenge: str = Field(sa_column=Column(Text, nullable=False))
    tags: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    seniority: str | None = Field(default=None, max_length=50)
    # Its rank among the profile's seniorities (the engine's one-level rule), None unknown.
    seniority_level: int | None = None
    # The profile's company when they applied: the same-company rule reads this.
    company: str | None = Field(default=None, max_length=100)
    # Weekly UTC minute intervals [[start, end], …] (`bot.domain.matching.Applicant`).
    availability: list[list[int]] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False)
    )
    # The slots as they typed them, in their own zone, to show back.
    slots_text: str = Field(max_length=300)
    timezone: str = Field(max_length=64)
    status: str = Field(default=ApplicationStatus.WAITING, max_length=16)
    # Why a waiting applicant was not grouped (the solver's reason, or the hard rules).
    waiting_reason: str | None = Field(default=None, max_length=200)
    group_id: int | None = Field(default=None, foreign_key="mastermind_group.id")
    applied_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    seated_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    left_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class MastermindGroup(SQLModel, table=True):
    __tablename__ = "mastermind_group"
    __table_args__ = (UniqueConstraint("cycle_id", "number"),)

    id: int | None = Field(default=None, primary_key=True)
    cycle_id: int = Field(foreign_key="mastermind_cycle.id")
    number: int
    shared_tags: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    # The common weekly slot, UTC minutes of the week (end may pass a week's end).
    slot_start: int
    slot_end: int
    first_session_at: datetime = Field(sa_type=UTCDateTime)
    # The outbox row that opened the group's conversation (its intro); posts for the
    # group go where it landed. A backfill opens a new one (Slack group DMs cannot
    # take a new member), so this moves to the latest.
    conversation_outbox_id: int | None = None
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class MastermindSession(SQLModel, table=True):
    __tablename__ = "mastermind_session"
    __table_args__ = (
        UniqueConstraint("group_id", "number"),
        Index("ix_mastermind_session_next_event_at", "next_event_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    group_id: int = Field(foreign_key="mastermind_group.id")
    number: int
    starts_at: datetime = Field(sa_type=UTCDateTime)
    hot_seat_user_id: str | None = Field(default=None, max_length=64)
    # The step still to run (`bot.domain.mastermind.EventKind`) and when; None when done.
    next_event: str | None = Field(default=None, max_length=16)
    next_event_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class MastermindEntry(SQLModel, table=True):
    """One member at one session: were they there, their written update, their
    commitment ("by next time I will …") and, asked at the next session, whether
    they kept it."""

    __tablename__ = "mastermind_entry"
    __table_args__ = (UniqueConstraint("session_id", "user_id"),)

    id: int | None = Field(default=None, primary_key=True)
    session_id: int = Field(foreign_key="mastermind_session.id")
    user_id: str = Field(max_length=64)
    attended: bool | None = None
    update_text: str | None = Field(default=None, sa_column=Column(Text))
    update_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    commitment_text: str | None = Field(default=None, sa_column=Column(Text))
    commitment_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    commitment_kept: bool | None = None
    followed_up_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    answered_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class MastermindRating(SQLModel, table=True):
    """End-of-cycle feedback: 1-5, one sentence, and whether to go on together."""

    __tablename__ = "mastermind_rating"
    __table_args__ = (UniqueConstraint("group_id", "user_id"),)

    id: int | None = Field(default=None, primary_key=True)
    group_id: int = Field(foreign_key="mastermind_group.id")
    user_id: str = Field(max_length=64)
    score: int
    comment: str = Field(default="", max_length=300)
    continue_together: bool = False
    rated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


# --- cycles ------------------------------------------------------------------------


async def current_cycle(
    session: AsyncSession, platform: str, workspace_id: str, *, lock: bool = False
) -> MastermindCycle | None:
    """The community's cycle that has not ended (there is at most one)."""
    query = (
        select(MastermindCycle)
        .where(
            col(MastermindCycle.platform) == platform,
            col(MastermindCycle.workspace_id) == workspace_id,
            col(MastermindCycle.state) != CycleState.ENDED,
        )
        .order_by(col(MastermindCycle.id).desc())
        .limit(1)
    )
    if lock:
        # Re-read what an earlier unlocked read of this transaction cached.
        query = query.with_for_update().execution_options(populate_existing=True)
    return (await session.execute(query)).scalar_one_or_none()


async def latest_cycle(
    session: AsyncSession, platform: str, workspace_id: str
) -> MastermindCycle | None:
    """The community's newest cycle, ended or not (for stats after the end)."""
    query = (
        select(MastermindCycle)
        .where(
            col(MastermindCycle.platform) == platform,
            col(MastermindCycle.workspace_id) == workspace_id,
        )
        .order_by(col(MastermindCycle.id).desc())
        .limit(1)
    )
    return (await session.execute(query)).scalar_one_or_none()


async def get_cycle(
    session: AsyncSession, cycle_id: int, *, lock: bool = False
) -> MastermindCycle | None:
    query = select(MastermindCycle).where(col(MastermindCycle.id) == cycle_id)
    if lock:
        # Re-read what an earlier unlocked read of this transaction cached.
        query = query.with_for_update().execution_options(populate_existing=True)
    return (await session.execute(query)).scalar_one_or_none()


async def mark_formed(session: AsyncSession, cycle_id: int, at: datetime) -> bool:
    """Open → running, once: False when another request formed it first."""
    result = await session.execute(
        update(MastermindCycle)
        .where(col(MastermindCycle.id) == cycle_id, col(MastermindCycle.state) == CycleState.OPEN)
        .values(state=CycleState.RUNNING, formed_at=at)
    )
    return rowcount(result) == 1


# --- applications ------------------------------------------------------------------


async def application_of(
    session: AsyncSession, cycle_id: int, user_id: str
) -> MastermindApplication | None:
    query = select(MastermindApplication).where(
        col(MastermindApplication.cycle_id) == cycle_id,
        col(MastermindApplication.user_id) == user_id,
    )
    return (await session.execute(query)).scalar_one_or_none()


async def applications(
    session: AsyncSession, cycle_id: int, statuses: Collection[str] | None = None
) -> list[MastermindApplication]:
    query = select(MastermindApplication).where(col(MastermindApplication.cycle_id) == cycle_id)
    if statuses is not None:
        query = query.where(col(MastermindApplication.status).in_(list(statuses)))
    query = query.order_by(col(MastermindApplication.applied_at), col(MastermindApplication.id))
    return list((await session.execute(query)).scalars())


async def seated(session: AsyncSession, group_id: int) -> list[MastermindApplication]:
    """Who sits in the group now, in seating order (the hot seat's order)."""
    query = (
        select(MastermindApplication)
        .where(
            col(MastermindApplication.group_id) == group_id,
            col(MastermindApplication.status) == ApplicationStatus.GROUPED,
        )
        .order_by(col(MastermindApplication.seated_at), col(MastermindApplication.user_id))
    )
    return list((await session.execute(query)).scalars())


async def ever_seated(session: AsyncSession, group_id: int) -> list[MastermindApplication]:
    """Everyone who sat in the group at some point (leavers too), for rosters of past
    sessions."""
    query = select(MastermindApplication).where(col(MastermindApplication.group_id) == group_id)
    return list((await session.execute(query)).scalars())


@dataclass(frozen=True, slots=True)
class PastGroup:
    """A group of an earlier cycle: its members, and who asked (in their end-of-cycle
    rating) to go on with it."""

    members: tuple[str, ...]
    continuing: frozenset[str]


async def past_groups(
    session: AsyncSession, platform: str, workspace_id: str, before_cycle_id: int
) -> list[PastGroup]:
    """The groups of the community's earlier cycles, so a new cycle mixes people who
    have not been grouped together before (except those who asked to go on)."""
    in_community = (
        col(MastermindCycle.platform) == platform,
        col(MastermindCycle.workspace_id) == workspace_id,
        col(MastermindCycle.id) < before_cycle_id,
    )
    query = (
        select(col(MastermindApplication.group_id), col(MastermindApplication.user_id))
        .join(MastermindCycle, col(MastermindCycle.id) == col(MastermindApplication.cycle_id))
        .where(*in_community, col(MastermindApplication.group_id).is_not(None))
    )
    members: dict[int, list[str]] = {}
    for group_id, user_id in (await session.execute(query)).all():
        if group_id is not None:
            members.setdefault(group_id, []).append(user_id)
    wishes = (
        select(col(MastermindRating.group_id), col(MastermindRating.user_id))
        .join(MastermindGroup, col(MastermindGroup.id) == col(MastermindRating.group_id))
        .join(MastermindCycle, col(MastermindCycle.id) == col(MastermindGroup.cycle_id))
        .where(*in_community, col(MastermindRating.continue_together).is_(True))
    )
    continuing: dict[int, set[str]] = {}
    for group_id, user_id in (await session.execute(wishes)).all():
        continuing.setdefault(group_id, set()).add(user_id)
    return [
        PastGroup(tuple(sorted(group)), frozenset(continuing.get(group_id, set())))
        for group_id, group in sorted(members.items())
    ]


# --- groups and sessions -----------------------------------------------------------


async def groups_of(session: AsyncSession, cycle_id: int) -> list[MastermindGroup]:
    query = (
        select(MastermindGroup)
        .where(col(MastermindGroup.cycle_id) == cycle_id)
        .order_by(col(MastermindGroup.number))
    )
    return list((await session.execute(query)).scalars())


async def get_group(
    session: AsyncSession, group_id: int, *, lock: bool = False
) -> MastermindGroup | None:
    query = select(MastermindGroup).where(col(MastermindGroup.id) == group_id)
    if lock:
        # Re-read what an earlier unlocked read of this transaction cached.
        query = query.with_for_update().execution_options(populate_existing=True)
    return (await session.execute(query)).scalar_one_or_none()


async def sessions_of(session: AsyncSession, group_id: int) -> list[MastermindSession]:
    query = (
        select(MastermindSession)
        .where(col(MastermindSession.group_id) == group_id)
        .order_by(col(MastermindSession.number))
    )
    return list((await session.execute(query)).scalars())


async def get_session(
    session: AsyncSession, session_id: int, *, lock: bool = False
) -> MastermindSession | None:
    query = select(MastermindSession).where(col(MastermindSession.id) == session_id)
    if lock:
        # Re-read what an earlier unlocked read of this transaction cached.
        query = query.with_for_update().execution_options(populate_existing=True)
    return (await session.execute(query)).scalar_one_or_none()


async def due_sessions(session: AsyncSession, now: datetime) -> list[MastermindSession]:
    """Sessions with a step due at or before `now`, earliest first."""
    query = (
        select(MastermindSession)
        .where(col(MastermindSession.next_event_at) <= now)
        .order_by(col(MastermindSession.next_event_at), col(MastermindSession.id))
    )
    return list((await session.execute(query)).scalars())


async def next_event_after(session: AsyncSession, now: datetime) -> datetime | None:
    query = select(func.min(MastermindSession.next_event_at)).where(
        col(MastermindSession.next_event_at) > now
    )
    return (await session.execute(query)).scalar_one_or_none()


async def conversation_channel(session: AsyncSession, outbox_id: int) -> str | None:
    """Where the group's conversation landed (its intro row's delivery), once sent."""
    query = select(col(OutboxMessage.sent_ref)).where(col(OutboxMessage.id) == outbox_id)
    ref = (await session.execute(query)).scalar_one_or_none()
    return None if not ref else str(ref["channel_id"])


# --- entries -----------------------------------------------------------------------


async def entry(session: AsyncSession, session_id: int, user_id: str) -> MastermindEntry:
    """The member's entry for the session, created on first use (races insert once)."""
    await session.execute(
        dialect.insert(session, MastermindEntry)
        .values(session_id=session_id, user_id=user_id)
        .on_conflict_do_nothing(index_elements=["session_id", "user_id"])
    )
    query = select(MastermindEntry).where(
        col(MastermindEntry.session_id) == session_id, col(MastermindEntry.user_id) == user_id
    )
    return (await session.execute(query)).scalar_one()


async def entries_of(session: AsyncSession, session_ids: Sequence[int]) -> list[MastermindEntry]:
    if not session_ids:
        return []
    query = (
        select(MastermindEntry)
        .where(col(MastermindEntry.session_id).in_(list(session_ids)))
        .order_by(col(MastermindEntry.session_id), col(MastermindEntry.user_id))
    )
    return list((await session.execute(query)).scalars())


# --- ratings -----------------------------------------------------------------------


async def save_rating(
    session: AsyncSession,
    group_id: int,
    user_id: str,
    score: int,
    comment: str,
    continue_together: bool,
    at: datetime,
) -> None:
    """One rating per member and group; rating again replaces it."""
    values = {
        "score": score,
        "comment": comment,
        "continue_together": continue_together,
        "rated_at": at,
    }
    await session.execute(
        dialect.insert(session, MastermindRating)
        .values(group_id=group_id, user_id=user_id, **values)
        .on_conflict_do_update(index_elements=["group_id", "user_id"], set_=values)
    )


async def ratings_of(session: AsyncSession, group_ids: Sequence[int]) -> list[MastermindRating]:
    if not group_ids:
        return []
    query = select(MastermindRating).where(col(MastermindRating.group_id).in_(list(group_ids)))
    return list((await session.execute(query.order_by(col(MastermindRating.id)))).scalars())


# --- the figures, privacy ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CommunityRows:
    """A community's mastermind rows a period's figures are computed from."""

    cycles: list[MastermindCycle]
    groups: list[MastermindGroup]
    seats: list[MastermindApplication]
    sessions: list[MastermindSession]
    entries: list[MastermindEntry]
    ratings: list[MastermindRating]


async def community_rows(
    session: AsyncSession, platform: str, workspace_id: str, start: datetime, end: datetime
) -> CommunityRows:
    """Cycles of the community that were running at some point of [start, end), with
    their groups, seats, sessions, entries and ratings."""
    cycles_query = select(MastermindCycle).where(
        col(MastermindCycle.platform) == platform,
        col(MastermindCycle.workspace_id) == workspace_id,
        col(MastermindCycle.created_at) < end,
        (col(MastermindCycle.ended_at).is_(None)) | (col(MastermindCycle.ended_at) >= start),
    )
    cycles = list((await session.execute(cycles_query.order_by(col(MastermindCycle.id)))).scalars())
    cycle_ids = [cycle.id for cycle in cycles if cycle.id is not None]
    if not cycle_ids:
        return CommunityRows([], [], [], [], [], [])
    groups = list(
        (
            await session.execute(
                select(MastermindGroup)
                .where(col(MastermindGroup.cycle_id).in_(cycle_ids))
                .order_by(col(MastermindGroup.cycle_id), col(MastermindGroup.number))
            )
        ).scalars()
    )
    seats = list(
        (
            await session.execute(
                select(MastermindApplication).where(
                    col(MastermindApplication.cycle_id).in_(cycle_ids)
                )
            )
        ).scalars()
    )
    group_ids = [group.id for group in groups if group.id is not None]
    sessions: list[MastermindSession] = []
    if group_ids:
        sessions = list(
            (
                await session.execute(
                    select(MastermindSession)
                    .where(col(MastermindSession.group_id).in_(group_ids))
                    .order_by(col(MastermindSession.group_id), col(MastermindSession.number))
                )
            ).scalars()
        )
    entries = await entries_of(session, [s.id for s in sessions if s.id is not None])
    ratings = await ratings_of(session, group_ids)
    return CommunityRows(cycles, groups, seats, sessions, entries, ratings)


@dataclass(frozen=True, slots=True)
class StoredAbout:
    applications: int
    updates: int
    commitments: int
    ratings: int


async def stored_about(
    session: AsyncSession, platform: str, workspace_id: str, user_id: str
) -> StoredAbout:
    """How many of each kind of record the community's cycles keep about a member."""
    in_community = (
        col(MastermindCycle.platform) == platform,
        col(MastermindCycle.workspace_id) == workspace_id,
    )
    applications_query = (
        select(func.count())
        .select_from(MastermindApplication)
        .join(MastermindCycle, col(MastermindCycle.id) == col(MastermindApplication.cycle_id))
        .where(*in_community, col(MastermindApplication.user_id) == user_id)
    )
    entries_query = (
        select(
            func.count(col(MastermindEntry.update_text)),
            func.count(col(MastermindEntry.commitment_text)),
        )
        .join(MastermindSession, col(MastermindSession.id) == col(MastermindEntry.session_id))
        .join(MastermindGroup, col(MastermindGroup.id) == col(MastermindSession.group_id))
        .join(MastermindCycle, col(MastermindCycle.id) == col(MastermindGroup.cycle_id))
        .where(*in_community, col(MastermindEntry.user_id) == user_id)
    )
    updates, commitments = (await session.execute(entries_query)).one()
    return StoredAbout(
        applications=(await session.execute(applications_query)).scalar_one(),
        updates=updates,
        commitments=commitments,
        ratings=len(await _ratings_in(session, platform, workspace_id, user_id)),
    )


async def _ratings_in(
    session: AsyncSession, platform: str, workspace_id: str, user_id: str
) -> list[int]:
    query = (
        select(col(MastermindRating.id))
        .join(MastermindGroup, col(MastermindGroup.id) == col(MastermindRating.group_id))
        .join(MastermindCycle, col(MastermindCycle.id) == col(MastermindGroup.cycle_id))
        .where(
            col(MastermindCycle.platform) == platform,
            col(MastermindCycle.workspace_id) == workspace_id,
            col(MastermindRating.user_id) == user_id,
        )
    )
    return [row_id for row_id in (await session.execute(query)).scalars() if row_id is not None]


async def forget_ratings(
    session: AsyncSession, platform: str, workspace_id: str, user_id: str
) -> int:
    """Delete the member's end-of-cycle ratings in the community; how many went."""
    ids = await _ratings_in(session, platform, workspace_id, user_id)
    if not ids:
        return 0
    await session.execute(delete(MastermindRating).where(col(MastermindRating.id).in_(ids)))
    return len(ids)
