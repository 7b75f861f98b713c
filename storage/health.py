"""The health report's tables: per-member, per-channel, per-day message counts
(never the text), newcomers' first steps, the report and pulse settings of each
community, the NPS pulse's rounds, asks and answers, and the dashboard page's
stored snapshots (aggregates only, so any replica serves the page at once).

A pulse answer stored anonymously has no user id and no time finer than its
day, and the ask row that stops a member being asked twice says only whether
they answered: no row links the two."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import (
    Column,
    Index,
    LargeBinary,
    Text,
    UniqueConstraint,
    and_,
    case,
    delete,
    distinct,
    func,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import Field, SQLModel, col

from bot.domain.health import Newcomer
from storage import dialect
from storage.db import rowcount
from storage.models import Member
from storage.types import UTCDateTime

DEFAULT_PULSE_DAYS = 90
DEFAULT_PULSE_QUESTION = "How likely are you to recommend this community to a colleague?"


class HealthActivity(SQLModel, table=True):
    """How many messages one member posted in one channel on one (UTC) day."""

    __tablename__ = "health_activity"
    __table_args__ = (
        # Also the index of the report's day-range scans (who was active when).
        UniqueConstraint("platform", "workspace_id", "day", "user_id", "channel_id"),
        # Newcomers' own days, for retention: looked up member by member.
        Index("ix_health_activity_member", "platform", "workspace_id", "user_id", "day"),
    )

    id: int | None = Field(default=None, primary_key=True)
    platform: str = Field(max_length=16)
    workspace_id: str = Field(max_length=64)
    day: date
    user_id: str = Field(max_length=64)
    channel_id: str = Field(max_length=64)
    messages: int = 0


class HealthNewcomer(SQLModel, table=True):
    """A member who joined while Kindred was there, and their first steps."""

    __tablename__ = "health_newcomer"
    __table_args__ = (
        UniqueConstraint("platform", "workspace_id", "user_id"),
        Index("ix_health_newcomer_joined", "platform", "workspace_id", "joined_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    platform: str = Field(max_length=16)
    workspace_id: str = Field(max_length=64)
    user_id: str = Field(max_length=64)
    joined_at: datetime = Field(sa_type=UTCDateTime)
    first_post_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    first_reply_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class HealthSettings(SQLModel, table=True):
    """One community's weekly report and pulse settings."""

    __tablename__ = "health_settings"
    __table_args__ = (UniqueConstraint("platform", "workspace_id"),)

    id: int | None = Field(default=None, primary_key=True)
    platform: str = Field(max_length=16)
    workspace_id: str = Field(max_length=64)
    # The private organisers' channel the weekly report goes to (None: not scheduled).
    report_channel_id: str | None = Field(default=None, max_length=64)
    report_next_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    pulse_enabled: bool = False
    pulse_every_days: int = DEFAULT_PULSE_DAYS
    # Whom to ask: everyone in the community, or the members of this channel.
    pulse_channel_id: str | None = Field(default=None, max_length=64)
    pulse_question: str = Field(default=DEFAULT_PULSE_QUESTION, max_length=300)
    pulse_anonymous: bool = False
    pulse_next_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class HealthPageSnapshot(SQLModel, table=True):
    """The dashboard page of one community and period as last built: its figures,
    tables, suggestions and charts (aggregates only, never a member id), encoded
    by the dashboard service."""

    __tablename__ = "health_page_snapshot"
    __table_args__ = (UniqueConstraint("platform", "workspace_id", "period"),)

    id: int | None = Field(default=None, primary_key=True)
    platform: str = Field(max_length=16)
    workspace_id: str = Field(max_length=64)
    period: str = Field(max_length=16)
    built_at: datetime = Field(sa_type=UTCDateTime)
    page: bytes = Field(sa_column=Column(LargeBinary, nullable=False))


class HealthPulseRound(SQLModel, table=True):
    __tablename__ = "health_pulse_round"
    __table_args__ = (UniqueConstraint("platform", "workspace_id", "started_at"),)

    id: int | None = Field(default=None, primary_key=True)
    platform: str = Field(max_length=16)
    workspace_id: str = Field(max_length=64)
    started_at: datetime = Field(sa_type=UTCDateTime)
    question: str = Field(max_length=300)
    anonymous: bool = False


class HealthPulseAsk(SQLModel, table=True):
    """That a member was asked in a round, and whether they answered (not what)."""

    __tablename__ = "health_pulse_ask"
    __table_args__ = (UniqueConstraint("round_id", "user_id"),)

    id: int | None = Field(default=None, primary_key=True)
    round_id: int = Field(foreign_key="health_pulse_round.id")
    user_id: str = Field(max_length=64)
    answered: bool = False


class HealthPulseAnswer(SQLModel, table=True):
    __tablename__ = "health_pulse_answer"
    __table_args__ = (
        Index("ix_health_pulse_answer_round", "round_id"),
        UniqueConstraint("token"),
    )

    id: int | None = Field(default=None, primary_key=True)
    round_id: int = Field(foreign_key="health_pulse_round.id")
    # None when the community stores answers anonymously.
    user_id: str | None = Field(default=None, max_length=64)
    score: int
    reason: str | None = Field(default=None, sa_column=Column(Text))
    answered_on: date
    # Carried by the member's own "Tell us why" button, so the reason finds its
    # answer without a user id.
    token: str = Field(max_length=32)


# --- activity ---------------------------------------------------------------------------


async def record_message(
    session: AsyncSession,
    platform: str,
    workspace_id: str,
    user_id: str,
    channel_id: str,
    day: date,
) -> None:
    statement = dialect.insert(session, HealthActivity).values(
        platform=platform,
        workspace_id=workspace_id,
        day=day,
        user_id=user_id,
        channel_id=channel_id,
        messages=1,
    )
    statement = statement.on_conflict_do_update(
        index_elements=["platform", "workspace_id", "day", "user_id", "channel_id"],
        set_={"messages": col(HealthActivity.messages) + 1},
    )
    await session.execute(statement)


def _posted_between(platform: str, workspace_id: str, since: date, until: date) -> list[Any]:
    """The community's activity rows of the days in [since, until)."""
    return [
        col(HealthActivity.platform) == platform,
        col(HealthActivity.workspace_id) == workspace_id,
        col(HealthActivity.day) >= since,
        col(HealthActivity.day) < until,
    ]


async def last_posted(
    session: AsyncSession, platform: str, workspace_id: str, ends: Sequence[date], days: int
) -> list[dict[str, date]]:
    """For each day in `ends`: member → the last day in the `days` before it that
    they posted. One pass over the activity for every window (the report asks
    for this period's and the one before's)."""
    windows = [(end - timedelta(days=days), end) for end in ends]
    day = col(HealthActivity.day)
    lasts = [func.max(case((and_(day >= since, day < until), day))) for since, until in windows]
    query = (
        select(col(HealthActivity.user_id), *lasts)
        .where(
            *_posted_between(
                platform, workspace_id, min(w[0] for w in windows), max(w[1] for w in windows)
            )
        )
        .group_by(col(HealthActivity.user_id))
    )
    found: list[dict[str, date]] = [{} for _ in windows]
    for user, *last_days in (await session.execute(query)).all():
        for posted, last in zip(found, last_days, strict=True):
            if last is not None:
                posted[user] = last
    return found


async def daily_posters(
    session: AsyncSession, platform: str, workspace_id: str, since: date, until: date
) -> dict[date, int]:
    """Day → how many members posted that day, for days in [since, until)."""
    query = (
        select(col(HealthActivity.day), func.count(distinct(col(HealthActivity.user_id))))
        .where(*_posted_between(platform, workspace_id, since, until))
        .group_by(col(HealthActivity.day))
    )
    return {day: count for day, count in (await session.execute(query)).all()}


async def top_posters(
    session: AsyncSession, platform: str, workspace_id: str, since: date, until: date, limit: int
) -> list[tuple[str, int, int]]:
    """(member, days posted, messages) of the members who posted on the most days
    in [since, until), most first (messages, then the id, break ties)."""
    # Member-days first, then members: cheaper than count(DISTINCT day) per member,
    # which PostgreSQL sorts group by group.
    member_days = (
        select(
            col(HealthActivity.user_id).label("user_id"),
            func.sum(col(HealthActivity.messages)).label("messages"),
        )
        .where(*_posted_between(platform, workspace_id, since, until))
        .group_by(col(HealthActivity.user_id), col(HealthActivity.day))
        .subquery()
    )
    days = func.count()
    messages = func.sum(member_days.c.messages)
    query = (
        select(member_days.c.user_id, days, messages)
        .group_by(member_days.c.user_id)
        .order_by(days.desc(), messages.desc(), member_days.c.user_id)
        .limit(limit)
    )
    return [(user, int(d), int(m)) for user, d, m in (await session.execute(query)).all()]


async def member_count(session: AsyncSession, platform: str, workspace_id: str) -> int:
    query = select(func.count()).where(
        col(Member.platform) == platform,
        col(Member.workspace_id) == workspace_id,
        col(Member.is_bot).is_(False),
        col(Member.deactivated).is_(False),
    )
    return int((await session.execute(query)).scalar_one())


# --- newcomers -----------------------------------------------------------------------


async def record_join(
    session: AsyncSession, platform: str, workspace_id: str, user_id: str, at: datetime
) -> None:
    statement = dialect.insert(session, HealthNewcomer).values(
        platform=platform, workspace_id=workspace_id, user_id=user_id, joined_at=at
    )
    await session.execute(
        statement.on_conflict_do_nothing(index_elements=["platform", "workspace_id", "user_id"])
    )


def _newcomer(platform: str, workspace_id: str, user_id: str) -> list[object]:
    return [
        col(HealthNewcomer.platform) == platform,
        col(HealthNewcomer.workspace_id) == workspace_id,
        col(HealthNewcomer.user_id) == user_id,
    ]


async def note_first_post(
    session: AsyncSession, platform: str, workspace_id: str, user_id: str, at: datetime
) -> None:
    await session.execute(
        update(HealthNewcomer)
        .where(*_newcomer(platform, workspace_id, user_id))  # type: ignore[arg-type]
        .where(col(HealthNewcomer.first_post_at).is_(None))
        .values(first_post_at=at)
    )


async def note_first_reply(
    session: AsyncSession, platform: str, workspace_id: str, newcomer_id: str, at: datetime
) -> None:
    """Another member replied to `newcomer_id` at `at`: their first reply, if they
    had posted and nobody had replied yet."""
    await session.execute(
        update(HealthNewcomer)
        .where(*_newcomer(platform, workspace_id, newcomer_id))  # type: ignore[arg-type]
        .where(
            col(HealthNewcomer.first_reply_at).is_(None),
            col(HealthNewcomer.first_post_at).is_not(None),
            col(HealthNewcomer.first_post_at) <= at,
        )
        .values(first_reply_at=at)
    )


async def newcomers(
    session: AsyncSession, platform: str, workspace_id: str, since: datetime, until: datetime
) -> list[Newcomer]:
    # Columns rather than model instances: building thousands of them costs more
    # than the query.
    query = select(
        col(HealthNewcomer.user_id),
        col(HealthNewcomer.joined_at),
        col(HealthNewcomer.first_post_at),
        col(HealthNewcomer.first_reply_at),
    ).where(
        col(HealthNewcomer.platform) == platform,
        col(HealthNewcomer.workspace_id) == workspace_id,
        col(HealthNewcomer.joined_at) >= since,
        col(HealthNewcomer.joined_at) < until,
    )
    return [Newcomer(*row) for row in (await session.execute(query)).all()]


async def newcomer_activity_days(
    session: AsyncSession, platform: str, workspace_id: str, joined_since: datetime, until: date
) -> dict[str, set[date]]:
    """User → the days they posted, for members who joined since `joined_since`.
    Driven from the newcomers (a few thousand) into the activity table's member
    index, rather than through every activity row of the period."""
    joined = select(col(HealthNewcomer.user_id)).where(
        col(HealthNewcomer.platform) == platform,
        col(HealthNewcomer.workspace_id) == workspace_id,
        col(HealthNewcomer.joined_at) >= joined_since,
    )
    query = (
        select(col(HealthActivity.user_id), col(HealthActivity.day))
        .where(
            col(HealthActivity.platform) == platform,
            col(HealthActivity.workspace_id) == workspace_id,
            col(HealthActivity.user_id).in_(joined),
            col(HealthActivity.day) >= joined_since.date(),
            col(HealthActivity.day) < until,
        )
        .distinct()
    )
    days: dict[str, set[date]] = {}
    for user_id, day in (await session.execute(query)).all():
        days.setdefault(user_id, set()).add(day)
    return days


# --- settings ---------------------------------------------------------------------------


async def settings_for(session: AsyncSession, platform: str, workspace_id: str) -> HealthSettings:
    """The community's settings row, created with the defaults on first use."""
    query = select(HealthSettings).where(
        col(HealthSettings.platform) == platform, col(HealthSettings.workspace_id) == workspace_id
    )
    found = (await session.execute(query)).scalar_one_or_none()
    if found is None:
        await session.execute(
            dialect.insert(session, HealthSettings)
            .values(
                platform=platform,
                workspace_id=workspace_id,
                pulse_enabled=False,
                pulse_every_days=DEFAULT_PULSE_DAYS,
                pulse_question=DEFAULT_PULSE_QUESTION,
                pulse_anonymous=False,
            )
            .on_conflict_do_nothing(index_elements=["platform", "workspace_id"])
        )
        found = (await session.execute(query)).scalar_one()
    return found


async def reports_due(session: AsyncSession, now: datetime) -> Sequence[HealthSettings]:
    query = select(HealthSettings).where(
        col(HealthSettings.report_next_at).is_not(None), col(HealthSettings.report_next_at) <= now
    )
    return (await session.execute(query)).scalars().all()


async def pulses_due(session: AsyncSession, now: datetime) -> Sequence[HealthSettings]:
    query = select(HealthSettings).where(
        col(HealthSettings.pulse_enabled).is_(True),
        col(HealthSettings.pulse_next_at).is_not(None),
        col(HealthSettings.pulse_next_at) <= now,
    )
    return (await session.execute(query)).scalars().all()


async def next_scheduled_after(session: AsyncSession, now: datetime) -> datetime | None:
    reports = select(func.min(HealthSettings.report_next_at)).where(
        col(HealthSettings.report_next_at) > now
    )
    pulses = select(func.min(HealthSettings.pulse_next_at)).where(
        col(HealthSettings.pulse_enabled).is_(True), col(HealthSettings.pulse_next_at) > now
    )
    moments = [
        (await session.execute(reports)).scalar_one_or_none(),
        (await session.execute(pulses)).scalar_one_or_none(),
    ]
    found = [moment for moment in moments if moment is not None]
    return min(found) if found else None


async def advance_report(
    session: AsyncSession, settings_id: int, was: datetime, next_at: datetime
) -> bool:
    """Move the weekly report on from `was`, unless another replica already did."""
    result = await session.execute(
        update(HealthSettings)
        .where(col(HealthSettings.id) == settings_id, col(HealthSettings.report_next_at) == was)
        .values(report_next_at=next_at)
    )
    return rowcount(result) == 1


async def advance_pulse(
    session: AsyncSession, settings_id: int, was: datetime, next_at: datetime
) -> bool:
    result = await session.execute(
        update(HealthSettings)
        .where(col(HealthSettings.id) == settings_id, col(HealthSettings.pulse_next_at) == was)
        .values(pulse_next_at=next_at)
    )
    return rowcount(result) == 1


# --- pulse -------------------------------------------------------------------------------


async def start_round(
    session: AsyncSession,
    platform: str,
    workspace_id: str,
    started_at: datetime,
    question: str,
    anonymous: bool,
) -> HealthPulseRound:
    pulse = HealthPulseRound(
        platform=platform,
        workspace_id=workspace_id,
        started_at=started_at,
        question=question,
        anonymous=anonymous,
    )
    session.add(pulse)
    await session.flush()
    return pulse


async def latest_round(
    session: AsyncSession, platform: str, workspace_id: str
) -> HealthPulseRound | None:
    query = (
        select(HealthPulseRound)
        .where(
            col(HealthPulseRound.platform) == platform,
            col(HealthPulseRound.workspace_id) == workspace_id,
        )
        .order_by(col(HealthPulseRound.started_at).desc())
        .limit(1)
    )
    return (await session.execute(query)).scalar_one_or_none()


async def get_round(session: AsyncSession, round_id: int) -> HealthPulseRound | None:
    return await session.get(HealthPulseRound, round_id)


async def ask(session: AsyncSession, round_id: int, user_id: str) -> bool:
    """Record that `user_id` is asked in the round; False if they already were."""
    result = await session.execute(
        dialect.insert(session, HealthPulseAsk)
        .values(round_id=round_id, user_id=user_id, answered=False)
        .on_conflict_do_nothing(index_elements=["round_id", "user_id"])
    )
    return rowcount(result) == 1


async def mark_answered(session: AsyncSession, round_id: int, user_id: str) -> bool:
    """The member's first answer in the round; False if they were not asked in it
    or have answered already (a second press changes nothing)."""
    result = await session.execute(
        update(HealthPulseAsk)
        .where(
            col(HealthPulseAsk.round_id) == round_id,
            col(HealthPulseAsk.user_id) == user_id,
            col(HealthPulseAsk.answered).is_(False),
        )
        .values(answered=True)
    )
    return rowcount(result) == 1


async def add_answer(
    session: AsyncSession, round_id: int, user_id: str | None, score: int, on: date
) -> str:
    token = secrets.token_hex(16)
    session.add(
        HealthPulseAnswer(
            round_id=round_id, user_id=user_id, score=score, answered_on=on, token=token
        )
    )
    await session.flush()
    return token


async def add_reason(session: AsyncSession, token: str, reason: str) -> bool:
    result = await session.execute(
        update(HealthPulseAnswer).where(col(HealthPulseAnswer.token) == token).values(reason=reason)
    )
    return rowcount(result) == 1


async def scores(
    session: AsyncSession, platform: str, workspace_id: str, since: date, until: date
) -> list[int]:
    """Every pulse answer's score given on a day in [since, until)."""
    query = (
        select(col(HealthPulseAnswer.score))
        .join(HealthPulseRound, col(HealthPulseRound.id) == col(HealthPulseAnswer.round_id))
        .where(
            col(HealthPulseRound.platform) == platform,
            col(HealthPulseRound.workspace_id) == workspace_id,
            col(HealthPulseAnswer.answered_on) >= since,
            col(HealthPulseAnswer.answered_on) < until,
        )
    )
    return list((await session.execute(query)).scalars())


async def asked_count(session: AsyncSession, round_id: int) -> tuple[int, int]:
    """(asked, answered) in one round."""
    asked = select(func.count()).where(col(HealthPulseAsk.round_id) == round_id)
    answered = asked.where(col(HealthPulseAsk.answered).is_(True))
    return (
        int((await session.execute(asked)).scalar_one()),
        int((await session.execute(answered)).scalar_one()),
    )


# --- what is stored about one member ----------------------------------------------------


async def stored_counts(
    session: AsyncSession, platform: str, workspace_id: str, user_id: str
) -> dict[str, int]:
    activity = select(func.count()).where(
        col(HealthActivity.platform) == platform,
        col(HealthActivity.workspace_id) == workspace_id,
        col(HealthActivity.user_id) == user_id,
    )
    newcomer = select(func.count()).where(*_newcomer(platform, workspace_id, user_id))  # type: ignore[arg-type]
    rounds = select(col(HealthPulseRound.id)).where(
        col(HealthPulseRound.platform) == platform,
        col(HealthPulseRound.workspace_id) == workspace_id,
    )
    asks = select(func.count()).where(
        col(HealthPulseAsk.user_id) == user_id, col(HealthPulseAsk.round_id).in_(rounds)
    )
    answers = select(func.count()).where(
        col(HealthPulseAnswer.user_id) == user_id, col(HealthPulseAnswer.round_id).in_(rounds)
    )
    return {
        "activity_days": int((await session.execute(activity)).scalar_one()),
        "newcomer": int((await session.execute(newcomer)).scalar_one()),
        "asks": int((await session.execute(asks)).scalar_one()),
        "answers": int((await session.execute(answers)).scalar_one()),
    }


async def forget_answers(
    session: AsyncSession, platform: str, workspace_id: str, user_id: str
) -> int:
    """Delete the member's pulse answers that carry their id (anonymous ones carry
    none, so nobody can find them, the member included)."""
    rounds = select(col(HealthPulseRound.id)).where(
        col(HealthPulseRound.platform) == platform,
        col(HealthPulseRound.workspace_id) == workspace_id,
    )
    result = await session.execute(
        delete(HealthPulseAnswer).where(
            col(HealthPulseAnswer.user_id) == user_id, col(HealthPulseAnswer.round_id).in_(rounds)
        )
    )
    return rowcount(result)


async def round_scores(session: AsyncSession, round_id: int) -> list[int]:
    query = select(col(HealthPulseAnswer.score)).where(col(HealthPulseAnswer.round_id) == round_id)
    return list((await session.execute(query)).scalars())


async def page_snapshot(
    session: AsyncSession, platform: str, workspace_id: str, period: str
) -> tuple[datetime, bytes] | None:
    """When the stored page was built, and the page; None when none is stored."""
    row = (
        await session.execute(
            select(col(HealthPageSnapshot.built_at), col(HealthPageSnapshot.page)).where(
                col(HealthPageSnapshot.platform) == platform,
                col(HealthPageSnapshot.workspace_id) == workspace_id,
                col(HealthPageSnapshot.period) == period,
            )
        )
    ).first()
    return None if row is None else (row[0], row[1])


async def store_page_snapshot(
    session: AsyncSession,
    platform: str,
    workspace_id: str,
    period: str,
    built_at: datetime,
    page: bytes,
) -> None:
    """Keep the page just built, replacing an older one (two replicas building at
    once both write; the later build wins)."""
    statement = dialect.insert(session, HealthPageSnapshot).values(
        platform=platform, workspace_id=workspace_id, period=period, built_at=built_at, page=page
    )
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=["platform", "workspace_id", "period"],
            set_={"built_at": built_at, "page": page},
            where=col(HealthPageSnapshot.built_at) <= built_at,
        )
    )


async def drop_page_snapshots(
    session: AsyncSession, keys: Sequence[str], built_before: datetime
) -> int:
    """Delete the stored pages under `keys` (every community's) built before
    `built_before`; how many."""
    result = await session.execute(
        delete(HealthPageSnapshot).where(
            col(HealthPageSnapshot.period).in_(list(keys)),
            col(HealthPageSnapshot.built_at) < built_before,
        )
    )
    return rowcount(result)
