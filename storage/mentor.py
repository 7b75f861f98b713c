"""Mentorship: the community's program settings, mentors' offers, mentees' requests,
the mentorships proposed and run, check-in answers and feedback.

A mentor's capacity is guarded by one conditional statement (`UPDATE … SET load =
load + 1 WHERE load < capacity`): PostgreSQL re-checks the condition on the row it
locks, SQLite has one writer, so however many accepts race (replicas included) a
mentor is never over capacity.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Column,
    Index,
    Text,
    UniqueConstraint,
    delete,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import Field, SQLModel, col

from storage.db import rowcount
from storage.types import UTCDateTime, utcnow


class MentorProgram(SQLModel, table=True):
    """How a community runs its mentorship rounds (`/kindred mentor setup`)."""

    __tablename__ = "mentor_program"
    __table_args__ = (UniqueConstraint("platform", "workspace_id"),)

    id: int | None = Field(default=None, primary_key=True)
    platform: str = Field(max_length=16)
    workspace_id: str = Field(max_length=64)
    # Where proposals are announced from and, on Discord, where intro threads open.
    channel_id: str = Field(max_length=64)
    # bot.domain.mentor.ROUND_CADENCES; "off": only run-now.
    cadence: str = Field(default="off", max_length=16)
    next_round_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    approval: bool = True
    same_company_allowed: bool = False
    max_requests_per_month: int = 1
    timezone: str = Field(max_length=64)
    created_by: str = Field(max_length=64)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class MentorOffer(SQLModel, table=True):
    """A member's offer to mentor; `load` counts their active mentorships."""

    __tablename__ = "mentor_offer"
    __table_args__ = (UniqueConstraint("platform", "workspace_id", "user_id"),)

    id: int | None = Field(default=None, primary_key=True)
    platform: str = Field(max_length=16)
    workspace_id: str = Field(max_length=64)
    user_id: str = Field(max_length=64)
    topics: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    seniority: str = Field(max_length=50)
    capacity: int = 1
    duration_days: int = 90
    cadence: str = Field(max_length=16)
    cooldown_weeks: int = 0
    paused: bool = False
    cooldown_until: datetime | None = Field(default=None, sa_type=UTCDateTime)
    load: int = 0
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class MentorRequest(SQLModel, table=True):
    """A mentee's request (lifecycle: `bot.domain.mentor.RequestStatus`)."""

    __tablename__ = "mentor_request"
    __table_args__ = (
        Index("ix_mentor_request_community_status", "platform", "workspace_id", "status"),
        Index("ix_mentor_request_mentee", "platform", "workspace_id", "mentee_user_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    platform: str = Field(max_length=16)
    workspace_id: str = Field(max_length=64)
    mentee_user_id: str = Field(max_length=64)
    goal: str = Field(max_length=300)
    topics: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    success: str = Field(default="", sa_column=Column(Text, nullable=False))
    cadence: str = Field(max_length=16)
    status: str = Field(default="open", max_length=16)
    # A re-match after "not a fit" does not count against the monthly limit.
    rematch_of: int | None = Field(default=None, foreign_key="mentor_request.id")
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    matched_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    closed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class Mentorship(SQLModel, table=True):
    """One mentor and one mentee, from the proposal to the ending
    (`bot.domain.mentor.MentorshipStatus`)."""

    __tablename__ = "mentorship"
    __table_args__ = (
        Index("ix_mentorship_next_due_at", "next_due_at"),
        Index("ix_mentorship_community_status", "platform", "workspace_id", "status"),
        Index("ix_mentorship_mentor", "platform", "workspace_id", "mentor_user_id"),
        Index("ix_mentorship_mentee", "platform", "workspace_id", "mentee_user_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    platform: str = Field(max_length=16)
    workspace_id: str = Field(max_length=64)
    request_id: int = Field(foreign_key="mentor_request.id")
    mentor_user_id: str = Field(max_length=64)
    mentee_user_id: str = Field(max_length=64)
    status: str = Field(max_length=16)
    # Why the engine chose the pair, in words (shown to the mentor and in the intro).
    reasons: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    score: float = 0.0
    round_id: int | None = Field(default=None, foreign_key="mentor_round.id")
    proposed_at: datetime = Field(sa_type=UTCDateTime)
    respond_by: datetime | None = Field(default=None, sa_type=UTCDateTime)
    started_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    planned_end_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # The follow-through: the next timeline event is due then (None: nothing left);
    # `handled_until` is the moment of the last event done.
    next_due_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    handled_until: datetime | None = Field(default=None, sa_type=UTCDateTime)
    ended_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    ended_by: str | None = Field(default=None, max_length=64)
    outcome: str | None = Field(default=None, max_length=16)
    # Private: admins read it in `mentor stats`, the other person never does.
    end_reason: str | None = Field(default=None, sa_column=Column(Text))


class MentorRound(SQLModel, table=True):
    """One matching round and its figures."""

    __tablename__ = "mentor_round"

    id: int | None = Field(default=None, primary_key=True)
    program_id: int = Field(foreign_key="mentor_program.id")
    occurrence: datetime = Field(sa_type=UTCDateTime)
    manual: bool = False
    mentees: int = 0
    mentors: int = 0
    matched: int = 0
    mean_score: float = 0.0
    solver_ms: float = 0.0
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class MentorCheckin(SQLModel, table=True):
    """An answer to a day-14 or day-42 check-in."""

    __tablename__ = "mentor_checkin"
    __table_args__ = (UniqueConstraint("mentorship_id", "user_id", "day"),)

    id: int | None = Field(default=None, primary_key=True)
    mentorship_id: int = Field(foreign_key="mentorship.id")
    user_id: str = Field(max_length=64)
    day: int
    answer: str = Field(max_length=16)
    answered_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class MentorFeedback(SQLModel, table=True):
    """The mentee's feedback after an ending: private, aggregated for the mentor."""

    __tablename__ = "mentor_feedback"
    __table_args__ = (UniqueConstraint("mentorship_id"),)

    id: int | None = Field(default=None, primary_key=True)
    mentorship_id: int = Field(foreign_key="mentorship.id")
    platform: str = Field(max_length=16)
    workspace_id: str = Field(max_length=64)
    mentee_user_id: str = Field(max_length=64)
    mentor_user_id: str = Field(max_length=64)
    rating: int
    text: str = Field(default="", sa_column=Column(Text, nullable=False))
    recommend: bool | None = None
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


# Ids per `IN (…)` of a bulk statement (SQLite allows 32,766 bound values).
_IDS_PER_STATEMENT = 500


# --- program ------------------------------------------------------------------------


async def get_program(
    session: AsyncSession, platform: str, workspace_id: str
) -> MentorProgram | None:
    query = select(MentorProgram).where(
        col(MentorProgram.platform) == platform, col(MentorProgram.workspace_id) == workspace_id
    )
    return (await session.execute(query)).scalar_one_or_none()


async def programs_due(session: AsyncSession, now: datetime) -> list[MentorProgram]:
    query = select(MentorProgram).where(col(MentorProgram.next_round_at) <= now)
    return list((await session.execute(query.order_by(col(MentorProgram.id)))).scalars())


# --- offers -------------------------------------------------------------------------


async def get_offer(
    session: AsyncSession, platform: str, workspace_id: str, user_id: str
) -> MentorOffer | None:
    query = select(MentorOffer).where(
        col(MentorOffer.platform) == platform,
        col(MentorOffer.workspace_id) == workspace_id,
        col(MentorOffer.user_id) == user_id,
    )
    return (await session.execute(query)).scalar_one_or_none()


async def community_offers(
    session: AsyncSession, platform: str, workspace_id: str
) -> list[MentorOffer]:
    query = select(MentorOffer).where(
        col(MentorOffer.platform) == platform, col(MentorOffer.workspace_id) == workspace_id
    )
    return list((await session.execute(query.order_by(col(MentorOffer.id)))).scalars())


async def take_seats(session: AsyncSession, offer_id: int, seats: int = 1) -> bool:
    """Count `seats` more active mentees for the mentor if that many seats are free;
    False (and nothing changed) when not. One statement, so concurrent accepts cannot
    both take the last seat."""
    result = await session.execute(
        update(MentorOffer)
        .where(
            col(MentorOffer.id) == offer_id,
            col(MentorOffer.load) + seats <= col(MentorOffer.capacity),
        )
        .values(load=MentorOffer.load + seats)
        .execution_options(synchronize_session=False)
    )
    return rowcount(result) == 1


async def take_seats_of_many(session: AsyncSession, wanted: dict[int, int]) -> set[int]:
    """`take_seats` for many offers at once (a round without approval): one statement
    per number of seats asked, each still conditional per row; the offers whose seats
    were taken."""
    taken: set[int] = set()
    by_count: dict[int, list[int]] = {}
    for offer_id, seats in wanted.items():
        by_count.setdefault(seats, []).append(offer_id)
    for seats, offer_ids in sorted(by_count.items()):
        result = await session.execute(
            update(MentorOffer)
            .where(
                col(MentorOffer.id).in_(offer_ids),
                col(MentorOffer.load) + seats <= col(MentorOffer.capacity),
            )
            .values(load=MentorOffer.load + seats)
            .returning(col(MentorOffer.id))
            .execution_options(synchronize_session=False)
        )
        taken.update(offer_id for offer_id in result.scalars() if offer_id is not None)
    return taken


async def free_seat(session: AsyncSession, offer_id: int) -> None:
    await session.execute(
        update(MentorOffer)
        .where(col(MentorOffer.id) == offer_id, col(MentorOffer.load) > 0)
        .values(load=MentorOffer.load - 1)
        .execution_options(synchronize_session=False)
    )


# --- requests -----------------------------------------------------------------------


async def get_request(session: AsyncSession, request_id: int) -> MentorRequest | None:
    return await session.get(MentorRequest, request_id)


async def requests_with_status(
    session: AsyncSession, platform: str, workspace_id: str, statuses: Collection[str]
) -> list[MentorRequest]:
    query = select(MentorRequest).where(
        col(MentorRequest.platform) == platform,
        col(MentorRequest.workspace_id) == workspace_id,
        col(MentorRequest.status).in_(list(statuses)),
    )
    return list((await session.execute(query.order_by(col(MentorRequest.id)))).scalars())


async def mentee_requests(
    session: AsyncSession, platform: str, workspace_id: str, user_id: str
) -> list[MentorRequest]:
    query = select(MentorRequest).where(
        col(MentorRequest.platform) == platform,
        col(MentorRequest.workspace_id) == workspace_id,
        col(MentorRequest.mentee_user_id) == user_id,
    )
    return list((await session.execute(query.order_by(col(MentorRequest.id)))).scalars())


async def set_request_status(
    session: AsyncSession, request_id: int, expected: Collection[str], status: str, **values: object
) -> bool:
    result = await session.execute(
        update(MentorRequest)
        .where(col(MentorRequest.id) == request_id, col(MentorRequest.status).in_(list(expected)))
        .values(status=status, **values)
        .execution_options(synchronize_session="fetch")
    )
    return rowcount(result) == 1


# --- mentorships --------------------------------------------------------------------


async def get_mentorship(
    session: AsyncSession, platform: str, workspace_id: str, mentorship_id: int
) -> Mentorship | None:
    query = select(Mentorship).where(
        col(Mentorship.id) == mentorship_id,
        col(Mentorship.platform) == platform,
        col(Mentorship.workspace_id) == workspace_id,
    )
    return (await session.execute(query)).scalar_one_or_none()


async def add_round_mentorships(
    session: AsyncSession, round_id: int, rows: Sequence[Mapping[str, Any]]
) -> dict[str, int]:
    """Insert a round's mentorships (each row with this `round_id`) in a few batched
    statements; their ids by mentee (a mentee has one mentorship per round)."""
    if not rows:
        return {}
    await session.execute(insert(Mentorship.__table__), list(rows))  # type: ignore[attr-defined]
    query = select(col(Mentorship.mentee_user_id), col(Mentorship.id)).where(
        col(Mentorship.round_id) == round_id
    )
    return {
        mentee: row_id
        for mentee, row_id in (await session.execute(query)).all()
        if row_id is not None
    }


async def update_requests(
    session: AsyncSession,
    request_ids: Sequence[int],
    *,
    status: str,
    matched_at: datetime | None = None,
) -> None:
    """Give many requests one status (a round's), a few hundred ids per statement."""
    values: dict[str, object] = {"status": status}
    if matched_at is not None:
        values["matched_at"] = matched_at
    for start in range(0, len(request_ids), _IDS_PER_STATEMENT):
        await session.execute(
            update(MentorRequest)
            .where(col(MentorRequest.id).in_(request_ids[start : start + _IDS_PER_STATEMENT]))
            .values(**values)
            .execution_options(synchronize_session=False)
        )


async def change_status(
    session: AsyncSession,
    mentorship_id: int,
    expected: Collection[str],
    status: str,
    **values: object,
) -> bool:
    """Move the mentorship to `status` if it is still in `expected`: two clicks, two
    replicas or a click and the tick, exactly one wins."""
    result = await session.execute(
        update(Mentorship)
        .where(col(Mentorship.id) == mentorship_id, col(Mentorship.status).in_(list(expected)))
        .values(status=status, **values)
        .execution_options(synchronize_session="fetch")
    )
    return rowcount(result) == 1


async def mentorships_of(
    session: AsyncSession,
    platform: str,
    workspace_id: str,
    user_id: str,
    statuses: Collection[str] | None = None,
) -> list[Mentorship]:
    """Mentorships where the member is the mentor or the mentee."""
    query = select(Mentorship).where(
        col(Mentorship.platform) == platform,
        col(Mentorship.workspace_id) == workspace_id,
        or_(col(Mentorship.mentor_user_id) == user_id, col(Mentorship.mentee_user_id) == user_id),
    )
    if statuses is not None:
        query = query.where(col(Mentorship.status).in_(list(statuses)))
    return list((await session.execute(query.order_by(col(Mentorship.id)))).scalars())


async def community_mentorships(
    session: AsyncSession, platform: str, workspace_id: str
) -> list[Mentorship]:
    query = select(Mentorship).where(
        col(Mentorship.platform) == platform, col(Mentorship.workspace_id) == workspace_id
    )
    return list((await session.execute(query.order_by(col(Mentorship.id)))).scalars())


async def pending_proposals(
    session: AsyncSession, platform: str, workspace_id: str
) -> dict[str, int]:
    """Proposals waiting for each mentor's answer: seats they may still fill."""
    query = (
        select(col(Mentorship.mentor_user_id), func.count())
        .where(
            col(Mentorship.platform) == platform,
            col(Mentorship.workspace_id) == workspace_id,
            col(Mentorship.status) == "proposed",
        )
        .group_by(col(Mentorship.mentor_user_id))
    )
    return {user_id: int(count) for user_id, count in (await session.execute(query)).all()}


async def pairs_kept_apart(
    session: AsyncSession, platform: str, workspace_id: str, bad_rating: int
) -> set[frozenset[str]]:
    """Pairs never proposed again: declined or unanswered proposals, endings marked
    not a fit, mentorships rated `bad_rating` or lower, and pairs already running."""
    query = select(col(Mentorship.mentee_user_id), col(Mentorship.mentor_user_id)).where(
        col(Mentorship.platform) == platform,
        col(Mentorship.workspace_id) == workspace_id,
        or_(
            col(Mentorship.status).in_(["declined", "expired", "proposed", "active"]),
            col(Mentorship.outcome) == "not_a_fit",
        ),
    )
    pairs = {frozenset(row) for row in (await session.execute(query)).all()}
    rated = select(col(MentorFeedback.mentee_user_id), col(MentorFeedback.mentor_user_id)).where(
        col(MentorFeedback.platform) == platform,
        col(MentorFeedback.workspace_id) == workspace_id,
        col(MentorFeedback.rating) <= bad_rating,
    )
    pairs |= {frozenset(row) for row in (await session.execute(rated)).all()}
    return pairs


async def due_mentorships(session: AsyncSession, now: datetime) -> list[Mentorship]:
    query = (
        select(Mentorship)
        .where(col(Mentorship.next_due_at) <= now)
        .order_by(col(Mentorship.next_due_at), col(Mentorship.id))
    )
    return list((await session.execute(query)).scalars())


async def next_due_after(session: AsyncSession, now: datetime) -> datetime | None:
    """The first mentorship event or round after `now` (the tick's `next_due`)."""
    event = (
        await session.execute(
            select(func.min(col(Mentorship.next_due_at))).where(col(Mentorship.next_due_at) > now)
        )
    ).scalar_one_or_none()
    round_ = (
        await session.execute(
            select(func.min(col(MentorProgram.next_round_at))).where(
                col(MentorProgram.next_round_at) > now
            )
        )
    ).scalar_one_or_none()
    moments = [moment for moment in (event, round_) if moment is not None]
    return min(moments, default=None)


# --- check-ins and feedback ---------------------------------------------------------


async def record_checkin(
    session: AsyncSession, mentorship_id: int, user_id: str, day: int, answer: str, now: datetime
) -> None:
    """The member's answer to a check-in; a later click replaces an earlier one."""
    query = select(MentorCheckin).where(
        col(MentorCheckin.mentorship_id) == mentorship_id,
        col(MentorCheckin.user_id) == user_id,
        col(MentorCheckin.day) == day,
    )
    found = (await session.execute(query)).scalar_one_or_none()
    if found is None:
        session.add(
            MentorCheckin(
                mentorship_id=mentorship_id,
                user_id=user_id,
                day=day,
                answer=answer,
                answered_at=now,
            )
        )
    else:
        found.answer = answer
        found.answered_at = now
    await session.flush()


async def feedback_for(session: AsyncSession, mentorship_id: int) -> MentorFeedback | None:
    query = select(MentorFeedback).where(col(MentorFeedback.mentorship_id) == mentorship_id)
    return (await session.execute(query)).scalar_one_or_none()


async def community_feedback(
    session: AsyncSession, platform: str, workspace_id: str
) -> list[MentorFeedback]:
    query = select(MentorFeedback).where(
        col(MentorFeedback.platform) == platform, col(MentorFeedback.workspace_id) == workspace_id
    )
    return list((await session.execute(query.order_by(col(MentorFeedback.id)))).scalars())


async def ratings_of_mentor(
    session: AsyncSession, platform: str, workspace_id: str, mentor_user_id: str
) -> list[tuple[str, int]]:
    """(mentee, rating) of every feedback the mentor received."""
    query = select(col(MentorFeedback.mentee_user_id), col(MentorFeedback.rating)).where(
        col(MentorFeedback.platform) == platform,
        col(MentorFeedback.workspace_id) == workspace_id,
        col(MentorFeedback.mentor_user_id) == mentor_user_id,
    )
    return [(mentee, int(rating)) for mentee, rating in (await session.execute(query)).all()]


# --- privacy ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StoredAbout:
    offer: MentorOffer | None
    requests: list[MentorRequest]
    mentorships: int
    feedback_given: int
    checkins: int


async def stored_about(
    session: AsyncSession, platform: str, workspace_id: str, user_id: str
) -> StoredAbout:
    offer = await get_offer(session, platform, workspace_id, user_id)
    requests = await mentee_requests(session, platform, workspace_id, user_id)
    mentorships = len(await mentorships_of(session, platform, workspace_id, user_id))
    given = (
        await session.execute(
            select(func.count(col(MentorFeedback.id))).where(
                col(MentorFeedback.platform) == platform,
                col(MentorFeedback.workspace_id) == workspace_id,
                col(MentorFeedback.mentee_user_id) == user_id,
            )
        )
    ).scalar_one()
    checkins = (
        await session.execute(
            select(func.count(col(MentorCheckin.id)))
            .join(Mentorship, col(Mentorship.id) == col(MentorCheckin.mentorship_id))
            .where(
                col(Mentorship.platform) == platform,
                col(Mentorship.workspace_id) == workspace_id,
                col(MentorCheckin.user_id) == user_id,
            )
        )
    ).scalar_one()
    return StoredAbout(offer, requests, mentorships, int(given), int(checkins))


async def forget_feedback(
    session: AsyncSession, platform: str, workspace_id: str, user_id: str
) -> int:
    """Delete the feedback the member gave and their check-in answers, and clear the
    private reasons they gave for endings; the mentorships themselves stay."""
    ids = select(col(Mentorship.id)).where(
        col(Mentorship.platform) == platform, col(Mentorship.workspace_id) == workspace_id
    )
    feedback = await session.execute(
        delete(MentorFeedback).where(
            col(MentorFeedback.platform) == platform,
            col(MentorFeedback.workspace_id) == workspace_id,
            col(MentorFeedback.mentee_user_id) == user_id,
        )
    )
    checkins = await session.execute(
        delete(MentorCheckin).where(
            col(MentorCheckin.user_id) == user_id, col(MentorCheckin.mentorship_id).in_(ids)
        )
    )
    await session.execute(
        update(Mentorship)
        .where(
            col(Mentorship.platform) == platform,
            col(Mentorship.workspace_id) == workspace_id,
            col(Mentorship.ended_by) == user_id,
        )
        .values(end_reason=None)
        .execution_options(synchronize_session=False)
    )
    return rowcount(feedback) + rowcount(checkins)


# --- period figures -----------------------------------------------------------------


async def mentorships_in_period(
    session: AsyncSession, platform: str, workspace_id: str, start: datetime, end: datetime
) -> list[Mentorship]:
    """Mentorships proposed, started or ended in [start, end)."""
    query = select(Mentorship).where(
        col(Mentorship.platform) == platform,
        col(Mentorship.workspace_id) == workspace_id,
        or_(
            (col(Mentorship.proposed_at) >= start) & (col(Mentorship.proposed_at) < end),
            (col(Mentorship.started_at) >= start) & (col(Mentorship.started_at) < end),
            (col(Mentorship.ended_at) >= start) & (col(Mentorship.ended_at) < end),
        ),
    )
    return list((await session.execute(query.order_by(col(Mentorship.id)))).scalars())


async def feedback_in_period(
    session: AsyncSession, platform: str, workspace_id: str, start: datetime, end: datetime
) -> list[MentorFeedback]:
    query = select(MentorFeedback).where(
        col(MentorFeedback.platform) == platform,
        col(MentorFeedback.workspace_id) == workspace_id,
        col(MentorFeedback.created_at) >= start,
        col(MentorFeedback.created_at) < end,
    )
    return list((await session.execute(query)).scalars())


async def offers_and_requests_in_period(
    session: AsyncSession, platform: str, workspace_id: str, start: datetime, end: datetime
) -> tuple[list[MentorOffer], list[MentorRequest]]:
    offers = select(MentorOffer).where(
        col(MentorOffer.platform) == platform,
        col(MentorOffer.workspace_id) == workspace_id,
        col(MentorOffer.created_at) >= start,
        col(MentorOffer.created_at) < end,
    )
    requests = select(MentorRequest).where(
        col(MentorRequest.platform) == platform,
        col(MentorRequest.workspace_id) == workspace_id,
        col(MentorRequest.created_at) >= start,
        col(MentorRequest.created_at) < end,
    )
    return (
        list((await session.execute(offers)).scalars()),
        list((await session.execute(requests)).scalars()),
    )
