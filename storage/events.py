"""Clinic submissions, events, RSVPs and ratings.

Seats are decided with the event's row locked (`SELECT … FOR UPDATE` on
PostgreSQL; SQLite has one writer at a time), and a member has one RSVP row per
event, so nobody is in Going and on the waitlist at once, and the count of
Going never passes the capacity, whatever the number of concurrent clicks.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, Index, Text, UniqueConstraint, delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import Field, SQLModel, col

from bot.domain.events import EventState, Rsvp, SubmissionStatus
from storage.db import rowcount
from storage.models import OutboxMessage
from storage.types import UTCDateTime, utcnow


class ClinicSubmission(SQLModel, table=True):
    """A member's real problem, waiting for the organisers (`SubmissionStatus`)."""

    __tablename__ = "clinic_submission"
    __table_args__ = (
        Index("ix_clinic_submission_community", "platform", "workspace_id", "status"),
    )

    id: int | None = Field(default=None, primary_key=True)
    platform: str = Field(max_length=16)
    workspace_id: str = Field(max_length=64)
    author_user_id: str = Field(max_length=64)
    problem: str = Field(sa_column=Column(Text, nullable=False))
    context: str = Field(sa_column=Column(Text, nullable=False))
    tried: str = Field(sa_column=Column(Text, nullable=False))
    ask: str = Field(sa_column=Column(Text, nullable=False))
    # The member's company never appears in public, in the brief, or in the library.
    hide_company: bool = False
    status: str = Field(default=SubmissionStatus.PENDING, max_length=16)
    # What the organisers said when declining or asking for more.
    note: str | None = Field(default=None, sa_column=Column(Text))
    decided_by: str | None = Field(default=None, max_length=64)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    decided_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class Event(SQLModel, table=True):
    """A clinic, showcase or meetup (lifecycle: `bot.domain.events.EventState`)."""

    __tablename__ = "event"
    __table_args__ = (
        Index("ix_event_next_due_at", "next_due_at"),
        Index("ix_event_community_starts", "platform", "workspace_id", "starts_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    platform: str = Field(max_length=16)
    workspace_id: str = Field(max_length=64)
    kind: str = Field(max_length=16)
    title: str = Field(max_length=200)
    channel_id: str = Field(max_length=64)
    presenter_user_id: str | None = Field(default=None, max_length=64)
    created_by: str = Field(max_length=64)
    submission_id: int | None = Field(default=None, foreign_key="clinic_submission.id")
    # The zone the organiser scheduled in (channel posts show it).
    timezone: str = Field(max_length=64)
    starts_at: datetime = Field(sa_type=UTCDateTime)
    ends_at: datetime = Field(sa_type=UTCDateTime)
    # Seats for Going; None: no limit.
    capacity: int | None = None
    link: str | None = Field(default=None, max_length=500)
    tags: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    remind_maybe: bool = False
    state: str = Field(default=EventState.SCHEDULED, max_length=16)
    # When the next timeline step is due; None when nothing is left to do.
    next_due_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # How many times its time, title or link changed (the .ics SEQUENCE).
    revision: int = 0
    # Outbox rows (not foreign keys: outbox rows may be pruned one day): the channel
    # announcement with the RSVP buttons, its latest queued edit, and the platform's
    # own scheduled event (first created, then last changed).
    announcement_outbox_id: int | None = None
    announcement_update_outbox_id: int | None = None
    native_outbox_id: int | None = None
    native_latest_outbox_id: int | None = None
    recap_ideas: str | None = Field(default=None, sa_column=Column(Text))
    recap_actions: str | None = Field(default=None, sa_column=Column(Text))
    recap_by: str | None = Field(default=None, max_length=64)
    recap_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    outcome: str | None = Field(default=None, sa_column=Column(Text))
    outcome_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    cancel_reason: str | None = Field(default=None, sa_column=Column(Text))
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    cancelled_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class EventRsvp(SQLModel, table=True):
    """One member's answer for one event: one row, so one place (`Rsvp`)."""

    __tablename__ = "event_rsvp"
    __table_args__ = (
        UniqueConstraint("event_id", "user_id"),
        Index("ix_event_rsvp_event_status", "event_id", "status"),
    )

    id: int | None = Field(default=None, primary_key=True)
    event_id: int = Field(foreign_key="event.id")
    user_id: str = Field(max_length=64)
    status: str = Field(max_length=16)
    # "button", or "interested" (Discord's own event list): interest taken back
    # removes only what it added.
    source: str = Field(default="button", max_length=16)
    # Waitlist order (and the promotion DM's key: one per time on the list).
    waitlisted_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # Set by a rating (attended) or "I couldn't make it" (not) after the end.
    attended: bool | None = None
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class EventRating(SQLModel, table=True):
    __tablename__ = "event_rating"
    __table_args__ = (UniqueConstraint("event_id", "user_id"),)

    id: int | None = Field(default=None, primary_key=True)
    event_id: int = Field(foreign_key="event.id")
    user_id: str = Field(max_length=64)
    score: int
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


def _community(platform: str, workspace_id: str) -> tuple[Any, Any]:
    return col(Event.platform) == platform, col(Event.workspace_id) == workspace_id


# --- submissions ------------------------------------------------------------------


async def get_submission(
    session: AsyncSession, platform: str, workspace_id: str, submission_id: int
) -> ClinicSubmission | None:
    query = select(ClinicSubmission).where(
        col(ClinicSubmission.id) == submission_id,
        col(ClinicSubmission.platform) == platform,
        col(ClinicSubmission.workspace_id) == workspace_id,
    )
    return (await session.execute(query)).scalar_one_or_none()


async def submissions_in(
    session: AsyncSession, platform: str, workspace_id: str, statuses: Collection[str]
) -> list[ClinicSubmission]:
    """Oldest first: the organisers' queue."""
    query = (
        select(ClinicSubmission)
        .where(
            col(ClinicSubmission.platform) == platform,
            col(ClinicSubmission.workspace_id) == workspace_id,
            col(ClinicSubmission.status).in_(list(statuses)),
        )
        .order_by(col(ClinicSubmission.created_at), col(ClinicSubmission.id))
    )
    return list((await session.execute(query)).scalars())


async def decide_submission(
    session: AsyncSession,
    submission_id: int,
    from_statuses: Collection[str],
    to_status: SubmissionStatus,
    *,
    by: str | None,
    note: str | None,
    at: datetime,
) -> bool:
    """Move a submission on, unless another organiser already did (one statement)."""
    result = await session.execute(
        update(ClinicSubmission)
        .where(
            col(ClinicSubmission.id) == submission_id,
            col(ClinicSubmission.status).in_(list(from_statuses)),
        )
        .values(status=to_status, decided_by=by, note=note, decided_at=at)
    )
    return rowcount(result) == 1


# --- events -----------------------------------------------------------------------


async def get_event(
    session: AsyncSession, platform: str, workspace_id: str, event_id: int, *, lock: bool = False
) -> Event | None:
    """The community's event; `lock` serialises seat changes (PostgreSQL)."""
    query = select(Event).where(col(Event.id) == event_id, *_community(platform, workspace_id))
    if lock:
        query = query.with_for_update()
    return (await session.execute(query)).scalar_one_or_none()


async def get_event_by_id(
    session: AsyncSession, event_id: int, *, lock: bool = False
) -> Event | None:
    query = select(Event).where(col(Event.id) == event_id)
    if lock:
        query = query.with_for_update()
    return (await session.execute(query)).scalar_one_or_none()


async def upcoming(
    session: AsyncSession, platform: str, workspace_id: str, now: datetime
) -> list[Event]:
    """Events not cancelled that have not ended, soonest first."""
    query = (
        select(Event)
        .where(
            *_community(platform, workspace_id),
            col(Event.state).in_([EventState.SCHEDULED, EventState.LIVE]),
            col(Event.ends_at) > now,
        )
        .order_by(col(Event.starts_at), col(Event.id))
    )
    return list((await session.execute(query)).scalars())


async def due_events(session: AsyncSession, now: datetime) -> list[Event]:
    """Events (of every community) with a timeline step due; uses ix_event_next_due_at."""
    query = (
        select(Event)
        .where(col(Event.next_due_at) <= now)
        .order_by(col(Event.next_due_at), col(Event.id))
    )
    return list((await session.execute(query)).scalars())


async def next_due_after(session: AsyncSession, now: datetime) -> datetime | None:
    query = select(func.min(col(Event.next_due_at))).where(col(Event.next_due_at) > now)
    found: datetime | None = (await session.execute(query)).scalar_one_or_none()
    return found


async def library(
    session: AsyncSession, platform: str, workspace_id: str, kinds: Collection[str]
) -> list[Event]:
    """Ended events of `kinds`, most recent first."""
    query = (
        select(Event)
        .where(
            *_community(platform, workspace_id),
            col(Event.state) == EventState.ENDED,
            col(Event.kind).in_(list(kinds)),
        )
        .order_by(col(Event.starts_at).desc(), col(Event.id).desc())
    )
    return list((await session.execute(query)).scalars())


async def with_native_events(
    session: AsyncSession, platform: str, workspace_id: str
) -> list[Event]:
    """Events still open (scheduled or live) that have a scheduled event on the platform."""
    query = select(Event).where(
        *_community(platform, workspace_id),
        col(Event.native_outbox_id).is_not(None),
        col(Event.state).in_([EventState.SCHEDULED, EventState.LIVE]),
    )
    return list((await session.execute(query)).scalars())


async def sent_refs(session: AsyncSession, outbox_ids: Sequence[int]) -> dict[int, dict[str, Any]]:
    """Where delivered outbox rows landed (channel, message id, permalink)."""
    if not outbox_ids:
        return {}
    query = select(col(OutboxMessage.id), col(OutboxMessage.sent_ref)).where(
        col(OutboxMessage.id).in_(list(outbox_ids))
    )
    return {row_id: ref for row_id, ref in (await session.execute(query)).all() if ref}


async def replace_queued_payload(
    session: AsyncSession, outbox_id: int, payload: dict[str, Any]
) -> bool:
    """Swap the payload of a queued edit no dispatcher has leased yet: a burst of
    RSVPs costs one edit of the announcement, and an older count never lands after
    a newer one. False when the row is already leased or sent."""
    result = await session.execute(
        update(OutboxMessage)
        .where(
            col(OutboxMessage.id) == outbox_id,
            col(OutboxMessage.status) == "pending",
            col(OutboxMessage.lease_owner).is_(None),
        )
        .values(payload=payload)
    )
    return rowcount(result) == 1


# --- RSVPs ------------------------------------------------------------------------


async def rsvp_of(session: AsyncSession, event_id: int, user_id: str) -> EventRsvp | None:
    query = select(EventRsvp).where(
        col(EventRsvp.event_id) == event_id, col(EventRsvp.user_id) == user_id
    )
    return (await session.execute(query)).scalar_one_or_none()


async def rsvps(
    session: AsyncSession, event_id: int, statuses: Collection[str] | None = None
) -> list[EventRsvp]:
    """In the order members answered (the waitlist: in the order they joined it)."""
    query = select(EventRsvp).where(col(EventRsvp.event_id) == event_id)
    if statuses is not None:
        query = query.where(col(EventRsvp.status).in_(list(statuses)))
    query = query.order_by(
        col(EventRsvp.waitlisted_at), col(EventRsvp.updated_at), col(EventRsvp.id)
    )
    return list((await session.execute(query)).scalars())


async def counts(session: AsyncSession, event_id: int) -> dict[str, int]:
    query = (
        select(col(EventRsvp.status), func.count(col(EventRsvp.id)))
        .where(col(EventRsvp.event_id) == event_id)
        .group_by(col(EventRsvp.status))
    )
    return {status: number for status, number in (await session.execute(query)).all()}


async def member_rsvps(
    session: AsyncSession, platform: str, workspace_id: str, user_id: str, now: datetime
) -> list[tuple[Event, EventRsvp]]:
    """The member's answers for events that have not ended, soonest first."""
    query = (
        select(Event, EventRsvp)
        .join(EventRsvp, col(EventRsvp.event_id) == col(Event.id))
        .where(
            *_community(platform, workspace_id),
            col(EventRsvp.user_id) == user_id,
            col(Event.ends_at) > now,
            col(Event.state) != EventState.CANCELLED,
        )
        .order_by(col(Event.starts_at), col(Event.id))
    )
    return [(event, rsvp) for event, rsvp in (await session.execute(query)).all()]


# --- ratings ----------------------------------------------------------------------


async def rate(
    session: AsyncSession, event_id: int, user_id: str, score: int, at: datetime
) -> None:
    """One rating per member and event; rating again changes it."""
    existing = (
        await session.execute(
            select(EventRating).where(
                col(EventRating.event_id) == event_id, col(EventRating.user_id) == user_id
            )
        )
    ).scalar_one_or_none()
    if existing is None:
        session.add(EventRating(event_id=event_id, user_id=user_id, score=score, created_at=at))
    else:
        existing.score = score
        existing.created_at = at
    await session.flush()


async def scores(session: AsyncSession, event_id: int) -> list[int]:
    query = select(col(EventRating.score)).where(col(EventRating.event_id) == event_id)
    return list((await session.execute(query)).scalars())


# --- figures, actions, privacy ----------------------------------------------------


@dataclass(frozen=True, slots=True)
class PeriodFigures:
    events_held: int
    clinics_held: int
    rsvps: int
    attended: int
    ratings: int
    average_rating: float | None
    outcomes_reported: int
    submissions: int


async def period_figures(
    session: AsyncSession, platform: str, workspace_id: str, start: datetime, end: datetime
) -> PeriodFigures:
    """The community's events that ended in [start, end), RSVPs given in it, who
    attended and rated those events, day-30 outcomes and clinic submissions in it."""
    community = _community(platform, workspace_id)
    held = (
        col(Event.state) == EventState.ENDED,
        col(Event.ends_at) >= start,
        col(Event.ends_at) < end,
    )
    events_held, clinics_held = (
        await session.execute(
            select(
                func.count(col(Event.id)),
                func.count(col(Event.id)).filter(col(Event.kind) == "clinic"),
            ).where(*community, *held)
        )
    ).one()
    rsvps = (
        await session.execute(
            select(func.count(col(EventRsvp.id)))
            .join(Event, col(Event.id) == col(EventRsvp.event_id))
            .where(
                *community,
                col(EventRsvp.status).in_([Rsvp.GOING, Rsvp.MAYBE, Rsvp.WAITLIST]),
                col(EventRsvp.created_at) >= start,
                col(EventRsvp.created_at) < end,
            )
        )
    ).scalar_one()
    attended = (
        await session.execute(
            select(func.count(col(EventRsvp.id)))
            .join(Event, col(Event.id) == col(EventRsvp.event_id))
            .where(*community, *held, col(EventRsvp.attended).is_(True))
        )
    ).scalar_one()
    ratings, average_rating = (
        await session.execute(
            select(func.count(col(EventRating.id)), func.avg(col(EventRating.score)))
            .join(Event, col(Event.id) == col(EventRating.event_id))
            .where(*community, *held)
        )
    ).one()
    outcomes = (
        await session.execute(
            select(func.count(col(Event.id))).where(
                *community, col(Event.outcome_at) >= start, col(Event.outcome_at) < end
            )
        )
    ).scalar_one()
    submissions = (
        await session.execute(
            select(func.count(col(ClinicSubmission.id))).where(
                col(ClinicSubmission.platform) == platform,
                col(ClinicSubmission.workspace_id) == workspace_id,
                col(ClinicSubmission.created_at) >= start,
                col(ClinicSubmission.created_at) < end,
            )
        )
    ).scalar_one()
    return PeriodFigures(
        events_held=events_held,
        clinics_held=clinics_held,
        rsvps=rsvps,
        attended=attended,
        ratings=ratings,
        average_rating=float(average_rating) if average_rating is not None else None,
        outcomes_reported=outcomes,
        submissions=submissions,
    )


async def rsvps_given(
    session: AsyncSession, platform: str, workspace_id: str, start: datetime, end: datetime
) -> list[EventRsvp]:
    """RSVPs (Going, Maybe, waitlist) members gave in [start, end)."""
    query = (
        select(EventRsvp)
        .join(Event, col(Event.id) == col(EventRsvp.event_id))
        .where(
            *_community(platform, workspace_id),
            col(EventRsvp.status).in_([Rsvp.GOING, Rsvp.MAYBE, Rsvp.WAITLIST]),
            col(EventRsvp.created_at) >= start,
            col(EventRsvp.created_at) < end,
        )
        .order_by(col(EventRsvp.created_at), col(EventRsvp.id))
    )
    return list((await session.execute(query)).scalars())


async def held_between(
    session: AsyncSession, platform: str, workspace_id: str, start: datetime, end: datetime
) -> list[tuple[Event, list[str]]]:
    """Events that ended in [start, end), each with the members who attended."""
    events = list(
        (
            await session.execute(
                select(Event)
                .where(
                    *_community(platform, workspace_id),
                    col(Event.state) == EventState.ENDED,
                    col(Event.ends_at) >= start,
                    col(Event.ends_at) < end,
                )
                .order_by(col(Event.ends_at), col(Event.id))
            )
        ).scalars()
    )
    held: list[tuple[Event, list[str]]] = []
    for event in events:
        attendees = (
            await session.execute(
                select(col(EventRsvp.user_id))
                .where(col(EventRsvp.event_id) == event.id, col(EventRsvp.attended).is_(True))
                .order_by(col(EventRsvp.user_id))
            )
        ).scalars()
        held.append((event, list(attendees)))
    return held


@dataclass(frozen=True, slots=True)
class StoredAbout:
    submissions: int
    rsvps: int
    ratings: int
    presented: int


async def stored_about(
    session: AsyncSession, platform: str, workspace_id: str, user_id: str
) -> StoredAbout:
    community = _community(platform, workspace_id)
    submissions = (
        await session.execute(
            select(func.count(col(ClinicSubmission.id))).where(
                col(ClinicSubmission.platform) == platform,
                col(ClinicSubmission.workspace_id) == workspace_id,
                col(ClinicSubmission.author_user_id) == user_id,
            )
        )
    ).scalar_one()
    rsvps = (
        await session.execute(
            select(func.count(col(EventRsvp.id)))
            .join(Event, col(Event.id) == col(EventRsvp.event_id))
            .where(*community, col(EventRsvp.user_id) == user_id)
        )
    ).scalar_one()
    ratings = (
        await session.execute(
            select(func.count(col(EventRating.id)))
            .join(Event, col(Event.id) == col(EventRating.event_id))
            .where(*community, col(EventRating.user_id) == user_id)
        )
    ).scalar_one()
    presented = (
        await session.execute(
            select(func.count(col(Event.id))).where(
                *community, col(Event.presenter_user_id) == user_id
            )
        )
    ).scalar_one()
    return StoredAbout(submissions, rsvps, ratings, presented)


async def forget_ratings(
    session: AsyncSession, platform: str, workspace_id: str, user_id: str
) -> int:
    """Delete the member's ratings of this community's events; how many went."""
    events = select(col(Event.id)).where(*_community(platform, workspace_id))
    result = await session.execute(
        delete(EventRating).where(
            col(EventRating.user_id) == user_id, col(EventRating.event_id).in_(events)
        )
    )
    return rowcount(result) or 0
