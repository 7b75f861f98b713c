"""AMA sessions, their questions and votes.

State changes that two people (or two replicas) may attempt at once are single
conditional statements (`UPDATE … WHERE status = …`, vote inserts guarded by a
unique key, counters incremented in SQL), so the database decides who wins.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Column, Index, Text, UniqueConstraint, delete, distinct, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import Field, SQLModel, col

from bot.domain.ama import ASKED_STATUSES, QuestionStatus
from storage import dialect
from storage.db import rowcount
from storage.models import OutboxMessage
from storage.types import UTCDateTime, utcnow


class Ama(SQLModel, table=True):
    """One Ask Me Anything session (lifecycle: `bot.domain.ama.AmaState`)."""

    __tablename__ = "ama"
    __table_args__ = (
        # The tick's query: which AMAs have something due.
        Index("ix_ama_next_event_at", "next_event_at"),
        Index("ix_ama_community_state", "platform", "workspace_id", "state"),
    )

    id: int | None = Field(default=None, primary_key=True)
    platform: str = Field(max_length=16)
    workspace_id: str = Field(max_length=64)
    title: str = Field(max_length=200)
    host_user_id: str = Field(max_length=64)
    channel_id: str = Field(max_length=64)
    created_by: str = Field(max_length=64)
    # The zone times are shown in (the scheduling admin's, else the community's).
    timezone: str = Field(max_length=64)
    moderated: bool = False
    mod_channel_id: str | None = Field(default=None, max_length=64)
    max_questions: int = 3
    state: str = Field(default="scheduled", max_length=16)
    announce_at: datetime = Field(sa_type=UTCDateTime)
    starts_at: datetime = Field(sa_type=UTCDateTime)
    ends_at: datetime = Field(sa_type=UTCDateTime)
    # When the next timeline event (announce, reminders, start, close) is due;
    # None once closed.
    next_event_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # The last Q-number given in this AMA. Numbers run on across the AMAs of one
    # channel, so a later AMA there starts after the earlier ones' (never a second Q1).
    question_count: int = 0
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    live_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    closed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class AmaQuestion(SQLModel, table=True):
    __tablename__ = "ama_question"
    __table_args__ = (
        UniqueConstraint("ama_id", "number"),
        Index("ix_ama_question_ama_status", "ama_id", "status"),
    )

    id: int | None = Field(default=None, primary_key=True)
    ama_id: int = Field(foreign_key="ama.id")
    # None while a draft (a near-duplicate its asker has not confirmed).
    number: int | None = None
    author_user_id: str = Field(max_length=64)
    text: str = Field(sa_column=Column(Text, nullable=False))
    # Hidden from everyone except moderators; stored for limits and rejection notes.
    anonymous: bool = False
    # bot.domain.ama.QuestionStatus
    status: str = Field(max_length=16)
    votes: int = 0
    # For a draft: the asked question it resembles.
    similar_to_id: int | None = Field(default=None, foreign_key="ama_question.id")
    # Outbox rows (not foreign keys: outbox rows may be pruned one day).
    post_outbox_id: int | None = None  # the channel post with the upvote button
    post_update_outbox_id: int | None = None  # the latest queued edit of that post
    mod_outbox_id: int | None = None  # the moderators' queue post
    live_outbox_id: int | None = None  # the thread parent posted when answered live
    moderated_by: str | None = Field(default=None, max_length=64)
    reject_reason: str | None = Field(default=None, sa_column=Column(Text))
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    resolved_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class AmaVote(SQLModel, table=True):
    __tablename__ = "ama_vote"
    __table_args__ = (UniqueConstraint("question_id", "user_id"),)

    id: int | None = Field(default=None, primary_key=True)
    question_id: int = Field(foreign_key="ama_question.id")
    user_id: str = Field(max_length=64)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


# --- AMAs -------------------------------------------------------------------------


async def get_ama(
    session: AsyncSession,
    platform: str,
    workspace_id: str,
    ama_id: int,
    *,
    lock: bool = False,
) -> Ama | None:
    """The AMA of this community; `lock` serialises changes to it (PostgreSQL)."""
    query = select(Ama).where(
        col(Ama.id) == ama_id, col(Ama.platform) == platform, col(Ama.workspace_id) == workspace_id
    )
    if lock:
        query = query.with_for_update()
    return (await session.execute(query)).scalar_one_or_none()


async def get_ama_by_id(session: AsyncSession, ama_id: int, *, lock: bool = False) -> Ama | None:
    query = select(Ama).where(col(Ama.id) == ama_id)
    if lock:
        query = query.with_for_update()
    return (await session.execute(query)).scalar_one_or_none()


async def open_amas(session: AsyncSession, platform: str, workspace_id: str) -> list[Ama]:
    """AMAs not closed yet, soonest first."""
    query = (
        select(Ama)
        .where(
            col(Ama.platform) == platform,
            col(Ama.workspace_id) == workspace_id,
            col(Ama.state) != "closed",
        )
        .order_by(col(Ama.starts_at), col(Ama.id))
    )
    return list((await session.execute(query)).scalars())


async def latest_in_channel(
    session: AsyncSession, platform: str, workspace_id: str, channel_id: str
) -> Ama | None:
    query = (
        select(Ama)
        .where(
            col(Ama.platform) == platform,
            col(Ama.workspace_id) == workspace_id,
            col(Ama.channel_id) == channel_id,
        )
        .order_by(col(Ama.starts_at).desc(), col(Ama.id).desc())
        .limit(1)
    )
    return (await session.execute(query)).scalar_one_or_none()


async def overlapping(
    session: AsyncSession,
    platform: str,
    workspace_id: str,
    channel_id: str,
    starts_at: datetime,
    ends_at: datetime,
) -> Ama | None:
    """An open AMA in `channel_id` whose time overlaps [starts_at, ends_at)."""
    query = (
        select(Ama)
        .where(
            col(Ama.platform) == platform,
            col(Ama.workspace_id) == workspace_id,
            col(Ama.channel_id) == channel_id,
            col(Ama.state) != "closed",
            col(Ama.starts_at) < ends_at,
            col(Ama.ends_at) > starts_at,
        )
        .limit(1)
    )
    return (await session.execute(query)).scalar_one_or_none()


async def due_amas(session: AsyncSession, now: datetime) -> list[Ama]:
    """AMAs (of every community) with a timeline event due; uses ix_ama_next_event_at."""
    query = (
        select(Ama)
        .where(col(Ama.next_event_at) <= now)
        .order_by(col(Ama.next_event_at), col(Ama.id))
    )
    return list((await session.execute(query)).scalars())


# --- questions --------------------------------------------------------------------


async def get_question(
    session: AsyncSession, platform: str, workspace_id: str, question_id: int
) -> tuple[AmaQuestion, Ama] | None:
    """The question and its AMA, if the question belongs to this community."""
    query = (
        select(AmaQuestion, Ama)
        .join(Ama, col(Ama.id) == col(AmaQuestion.ama_id))
        .where(
            col(AmaQuestion.id) == question_id,
            col(Ama.platform) == platform,
            col(Ama.workspace_id) == workspace_id,
        )
    )
    row = (await session.execute(query)).one_or_none()
    return None if row is None else (row[0], row[1])


async def questions(
    session: AsyncSession, ama_id: int, statuses: Collection[str] | None = None
) -> list[AmaQuestion]:
    """The AMA's questions (optionally only some statuses), in the order they were asked."""
    query = select(AmaQuestion).where(col(AmaQuestion.ama_id) == ama_id)
    if statuses is not None:
        query = query.where(col(AmaQuestion.status).in_(list(statuses)))
    return list((await session.execute(query.order_by(col(AmaQuestion.id)))).scalars())


async def add_question(
    session: AsyncSession,
    ama: Ama,
    *,
    author_user_id: str,
    text: str,
    anonymous: bool,
    status: str,
    similar_to_id: int | None = None,
) -> AmaQuestion:
    question = AmaQuestion(
        ama_id=ama.id or 0,
        author_user_id=author_user_id,
        text=text,
        anonymous=anonymous,
        status=status,
        similar_to_id=similar_to_id,
    )
    session.add(question)
    await session.flush()
    return question


async def lock_open_in_channel(
    session: AsyncSession, platform: str, workspace_id: str, channel_id: str
) -> list[Ama]:
    """Lock the channel's open AMAs, always in id order (so two askers never wait
    on each other in a cycle): Q-numbers are unique per channel."""
    query = (
        select(Ama)
        .where(
            col(Ama.platform) == platform,
            col(Ama.workspace_id) == workspace_id,
            col(Ama.channel_id) == channel_id,
            col(Ama.state) != "closed",
        )
        .order_by(col(Ama.id))
        .with_for_update()
        # Rows read before the lock are reloaded: their counters may have moved.
        .execution_options(populate_existing=True)
    )
    return list((await session.execute(query)).scalars())


async def highest_number_in_channel(session: AsyncSession, ama: Ama) -> int:
    """The highest Q-number given in any AMA of `ama`'s channel."""
    query = select(func.max(Ama.question_count)).where(
        col(Ama.platform) == ama.platform,
        col(Ama.workspace_id) == ama.workspace_id,
        col(Ama.channel_id) == ama.channel_id,
    )
    return int((await session.execute(query)).scalar_one_or_none() or 0)


def assign_number(ama: Ama, question: AmaQuestion, after: int = 0) -> int:
    """Give a submitted question its Q-number, the next after both this AMA's last
    and `after` (the channel's highest; the caller holds the channel's locks)."""
    ama.question_count = max(ama.question_count, after) + 1
    question.number = ama.question_count
    return question.number


async def change_status(
    session: AsyncSession,
    question_id: int,
    expected: Collection[str],
    status: str,
    **values: Any,
) -> bool:
    """Move the question to `status` if it is still in one of `expected`; False when
    someone else changed it first (two moderators, a double click)."""
    result = await session.execute(
        update(AmaQuestion)
        .where(col(AmaQuestion.id) == question_id, col(AmaQuestion.status).in_(list(expected)))
        .values(status=status, **values)
        .execution_options(synchronize_session="fetch")
    )
    return rowcount(result) == 1


async def delete_draft(session: AsyncSession, question_id: int) -> bool:
    result = await session.execute(
        delete(AmaQuestion).where(
            col(AmaQuestion.id) == question_id, col(AmaQuestion.status) == "draft"
        )
    )
    return rowcount(result) == 1


# --- votes ------------------------------------------------------------------------


async def add_vote(session: AsyncSession, question_id: int, user_id: str) -> int | None:
    """Record the member's vote and return the new count; None if they had voted."""
    statement = (
        dialect.insert(session, AmaVote)
        .values(question_id=question_id, user_id=user_id, created_at=utcnow())
        .on_conflict_do_nothing(index_elements=["question_id", "user_id"])
        .returning(AmaVote.id)
    )
    if (await session.execute(statement)).scalar_one_or_none() is None:
        return None
    return await _add_to_votes(session, question_id, 1)


async def remove_vote(session: AsyncSession, question_id: int, user_id: str) -> int | None:
    """Withdraw the member's vote and return the new count; None if they had not voted."""
    result = await session.execute(
        delete(AmaVote).where(
            col(AmaVote.question_id) == question_id, col(AmaVote.user_id) == user_id
        )
    )
    if rowcount(result) != 1:
        return None
    return await _add_to_votes(session, question_id, -1)


async def _add_to_votes(session: AsyncSession, question_id: int, change: int) -> int:
    # Incremented in SQL, not read-modify-write, so concurrent votes all count; the
    # loaded question object is refreshed from the database, never written back.
    result = await session.execute(
        update(AmaQuestion)
        .where(col(AmaQuestion.id) == question_id)
        .values(votes=AmaQuestion.votes + change)
        .returning(col(AmaQuestion.votes))
        .execution_options(synchronize_session=False)
    )
    votes = result.scalar_one()
    question = await session.get(AmaQuestion, question_id)
    if question is not None:
        await session.refresh(question, ["votes"])
    return votes


async def voters(session: AsyncSession, question_ids: Sequence[int]) -> dict[int, set[str]]:
    if not question_ids:
        return {}
    query = select(col(AmaVote.question_id), col(AmaVote.user_id)).where(
        col(AmaVote.question_id).in_(list(question_ids))
    )
    found: dict[int, set[str]] = {}
    for question_id, user_id in (await session.execute(query)).all():
        found.setdefault(question_id, set()).add(user_id)
    return found


# --- delivered messages -----------------------------------------------------------


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
    """Swap the payload of a queued message no dispatcher has leased yet.

    Vote counts change in bursts; folding them into the update still waiting in
    the outbox sends one edit instead of many, and can never deliver an older count
    after a newer one. False when the row is already leased or sent."""
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


@dataclass(frozen=True, slots=True)
class PeriodFigures:
    amas_held: int
    questions_asked: int
    questions_answered: int
    distinct_askers: int
    votes: int


async def period_figures(
    session: AsyncSession, platform: str, workspace_id: str, start: datetime, end: datetime
) -> PeriodFigures:
    """The community's AMAs in [start, end): sessions that closed, questions asked
    (drafts, pending and rejected ones are not), answered, and votes cast."""
    community = (col(Ama.platform) == platform, col(Ama.workspace_id) == workspace_id)
    held = (
        await session.execute(
            select(func.count(col(Ama.id))).where(
                *community, col(Ama.closed_at) >= start, col(Ama.closed_at) < end
            )
        )
    ).scalar_one()
    asked = [str(status) for status in ASKED_STATUSES]
    questions = (
        await session.execute(
            select(
                func.count(col(AmaQuestion.id)),
                func.count(distinct(col(AmaQuestion.author_user_id))),
            )
            .join(Ama, col(Ama.id) == col(AmaQuestion.ama_id))
            .where(
                *community,
                col(AmaQuestion.status).in_(asked),
                col(AmaQuestion.created_at) >= start,
                col(AmaQuestion.created_at) < end,
            )
        )
    ).one()
    answered = (
        await session.execute(
            select(func.count(col(AmaQuestion.id)))
            .join(Ama, col(Ama.id) == col(AmaQuestion.ama_id))
            .where(
                *community,
                col(AmaQuestion.status) == str(QuestionStatus.ANSWERED),
                col(AmaQuestion.resolved_at) >= start,
                col(AmaQuestion.resolved_at) < end,
            )
        )
    ).scalar_one()
    votes = (
        await session.execute(
            select(func.count(col(AmaVote.id)))
            .join(AmaQuestion, col(AmaQuestion.id) == col(AmaVote.question_id))
            .join(Ama, col(Ama.id) == col(AmaQuestion.ama_id))
            .where(*community, col(AmaVote.created_at) >= start, col(AmaVote.created_at) < end)
        )
    ).scalar_one()
    return PeriodFigures(
        amas_held=int(held),
        questions_asked=int(questions[0]),
        questions_answered=int(answered),
        distinct_askers=int(questions[1]),
        votes=int(votes),
    )


async def next_event_after(session: AsyncSession, now: datetime) -> datetime | None:
    """When the first AMA timeline event after `now` is due (the tick's `next_due`),
    from ix_ama_next_event_at."""
    query = (
        select(col(Ama.next_event_at))
        .where(col(Ama.next_event_at) > now)
        .order_by(col(Ama.next_event_at))
        .limit(1)
    )
    return (await session.execute(query)).scalar_one_or_none()


async def member_actions(
    session: AsyncSession, platform: str, workspace_id: str, start: datetime, end: datetime
) -> list[tuple[str, str, datetime]]:
    """(user id, what, when) in [start, end): asking a question that was posted
    ("asked"), a host answering one ("answered"), and an upvote ("voted")."""
    community = (col(Ama.platform) == platform, col(Ama.workspace_id) == workspace_id)
    asked = (
        select(col(AmaQuestion.author_user_id), col(AmaQuestion.created_at))
        .join(Ama, col(Ama.id) == col(AmaQuestion.ama_id))
        .where(
            *community,
            col(AmaQuestion.status).in_([str(status) for status in ASKED_STATUSES]),
            col(AmaQuestion.created_at) >= start,
            col(AmaQuestion.created_at) < end,
        )
    )
    answered = (
        select(col(Ama.host_user_id), col(AmaQuestion.resolved_at))
        .join(Ama, col(Ama.id) == col(AmaQuestion.ama_id))
        .where(
            *community,
            col(AmaQuestion.status) == str(QuestionStatus.ANSWERED),
            col(AmaQuestion.resolved_at) >= start,
            col(AmaQuestion.resolved_at) < end,
        )
    )
    voted = (
        select(col(AmaVote.user_id), col(AmaVote.created_at))
        .join(AmaQuestion, col(AmaQuestion.id) == col(AmaVote.question_id))
        .join(Ama, col(Ama.id) == col(AmaQuestion.ama_id))
        .where(*community, col(AmaVote.created_at) >= start, col(AmaVote.created_at) < end)
    )
    actions: list[tuple[str, str, datetime]] = []
    for kind, query in (("asked", asked), ("answered", answered), ("voted", voted)):
        rows = (await session.execute(query)).all()
        # The range filter already excludes NULL moments; this tells the type checker.
        actions += [(user_id, kind, at) for user_id, at in rows if at is not None]
    return actions


async def stored_about(
    session: AsyncSession, platform: str, workspace_id: str, user_id: str
) -> tuple[int, int]:
    """How many of the community's AMA questions a member wrote, and upvotes they cast."""
    community = (col(Ama.platform) == platform, col(Ama.workspace_id) == workspace_id)
    questions = (
        await session.execute(
            select(func.count(col(AmaQuestion.id)))
            .join(Ama, col(Ama.id) == col(AmaQuestion.ama_id))
            .where(*community, col(AmaQuestion.author_user_id) == user_id)
        )
    ).scalar_one()
    votes = (
        await session.execute(
            select(func.count(col(AmaVote.id)))
            .join(AmaQuestion, col(AmaQuestion.id) == col(AmaVote.question_id))
            .join(Ama, col(Ama.id) == col(AmaQuestion.ama_id))
            .where(*community, col(AmaVote.user_id) == user_id)
        )
    ).scalar_one()
    return int(questions), int(votes)
