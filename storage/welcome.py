"""Welcome tables and queries: one row per newcomer (welcomed once per community,
whatever the re-deliveries, rejoins and replicas), the organisers' settings, and
the members who volunteer as buddies."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Column,
    Index,
    Text,
    UniqueConstraint,
    and_,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import Field, SQLModel, col

from storage import dialect
from storage.db import rowcount
from storage.models import Member
from storage.types import UTCDateTime, utcnow

TRIGGER_WORKSPACE = "workspace"
TRIGGER_CHANNEL = "channel"


class WelcomeSettings(SQLModel, table=True):
    """How one community welcomes newcomers. No row means the defaults: on, stock
    template, immediately, on joining the workspace."""

    __tablename__ = "welcome_settings"
    __table_args__ = (UniqueConstraint("platform", "workspace_id"),)

    id: int | None = Field(default=None, primary_key=True)
    platform: str = Field(max_length=16)
    workspace_id: str = Field(max_length=64)
    enabled: bool = True
    # The organiser's own DM template; None means config/templates/welcome/dm.j2.
    template: str | None = Field(default=None, sa_column=Column(Text))
    delay_seconds: int = 0
    trigger: str = Field(default=TRIGGER_WORKSPACE, max_length=16)
    trigger_channel: str | None = Field(default=None, max_length=64)
    intro_channel: str | None = Field(default=None, max_length=64)
    greeters_channel: str | None = Field(default=None, max_length=64)
    auto_buddy: bool = False
    code_of_conduct_url: str | None = Field(default=None, max_length=500)
    visit_channels: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_by: str | None = Field(default=None, max_length=64)


class Welcome(SQLModel, table=True):
    """A newcomer's first weeks. The unique key is what makes a welcome happen once."""

    __tablename__ = "welcome"
    __table_args__ = (
        UniqueConstraint("platform", "workspace_id", "user_id"),
        Index("ix_welcome_due", "welcome_due_at"),
        Index("ix_welcome_checkin_due", "buddy_checkin_due_at"),
        Index("ix_welcome_buddy", "platform", "workspace_id", "buddy_user_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    platform: str = Field(max_length=16)
    workspace_id: str = Field(max_length=64)
    user_id: str = Field(max_length=64)
    trigger: str = Field(default=TRIGGER_WORKSPACE, max_length=16)
    joined_at: datetime = Field(sa_type=UTCDateTime)
    # Set while a delayed welcome DM is owed; cleared when it is queued.
    welcome_due_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    welcomed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    greeter_user_id: str | None = Field(default=None, max_length=64)
    greeted_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    intro_posted_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # Asked for a buddy while no volunteer was free; served when one volunteers.
    buddy_requested_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    buddy_user_id: str | None = Field(default=None, max_length=64)
    buddied_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    buddy_checkin_due_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    buddy_nudged_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class WelcomeBuddy(SQLModel, table=True):
    """A member who volunteered to be a newcomer's first contact."""

    __tablename__ = "welcome_buddy"
    __table_args__ = (UniqueConstraint("platform", "workspace_id", "user_id"),)

    id: int | None = Field(default=None, primary_key=True)
    platform: str = Field(max_length=16)
    workspace_id: str = Field(max_length=64)
    user_id: str = Field(max_length=64)
    active: bool = True
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


_WelcomeTable = type[WelcomeSettings] | type[Welcome] | type[WelcomeBuddy]


def _insert(session: AsyncSession, model: _WelcomeTable, values: dict[str, Any]) -> Any:
    return dialect.insert(session, model).values(**values)


def _natural_key(values: dict[str, Any]) -> list[str]:
    return ["platform", "workspace_id", *(["user_id"] if "user_id" in values else [])]


async def _insert_ignoring_duplicate(
    session: AsyncSession, model: _WelcomeTable, values: dict[str, Any]
) -> int | None:
    """Insert a row unless its (platform, workspace_id[, user_id]) key exists; the new
    id, or None. Concurrent inserts (replicas) wait for each other instead of failing."""
    statement = (
        _insert(session, model, values)
        .on_conflict_do_nothing(index_elements=_natural_key(values))
        .returning(col(model.id))
    )
    return (await session.execute(statement)).scalar_one_or_none()


async def get_settings(session: AsyncSession, platform: str, workspace_id: str) -> WelcomeSettings:
    """The community's settings, or unsaved defaults when the organiser never set any."""
    query = select(WelcomeSettings).where(
        col(WelcomeSettings.platform) == platform, col(WelcomeSettings.workspace_id) == workspace_id
    )
    found = (await session.execute(query)).scalar_one_or_none()
    return found or WelcomeSettings(platform=platform, workspace_id=workspace_id)


async def ensure_settings(
    session: AsyncSession, platform: str, workspace_id: str
) -> WelcomeSettings:
    """The stored settings row, created with the defaults if missing (for editing)."""
    await _insert_ignoring_duplicate(
        session,
        WelcomeSettings,
        WelcomeSettings(platform=platform, workspace_id=workspace_id).model_dump(exclude={"id"}),
    )
    query = select(WelcomeSettings).where(
        col(WelcomeSettings.platform) == platform, col(WelcomeSettings.workspace_id) == workspace_id
    )
    return (await session.execute(query)).scalar_one()


async def record_arrival(
    session: AsyncSession,
    platform: str,
    workspace_id: str,
    user_id: str,
    *,
    trigger: str,
    joined_at: datetime,
    welcome_due_at: datetime | None,
    welcomed_at: datetime | None,
) -> int | None:
    """The new row's id if this is the member's first arrival; None if they were
    welcomed (or are owed a welcome) already. One statement: joins come in bursts."""
    return await _insert_ignoring_duplicate(
        session,
        Welcome,
        {
            "platform": platform,
            "workspace_id": workspace_id,
            "user_id": user_id,
            "trigger": trigger,
            "joined_at": joined_at,
            "welcome_due_at": welcome_due_at,
            "welcomed_at": welcomed_at,
        },
    )


async def get_welcome(
    session: AsyncSession, platform: str, workspace_id: str, user_id: str
) -> Welcome | None:
    query = select(Welcome).where(
        col(Welcome.platform) == platform,
        col(Welcome.workspace_id) == workspace_id,
        col(Welcome.user_id) == user_id,
    )
    return (await session.execute(query)).scalar_one_or_none()


async def claim_greeting(
    session: AsyncSession, welcome_id: int, greeter: str, at: datetime
) -> bool:
    """The first greeter to click takes the newcomer; concurrent clicks lose cleanly."""
    result = await session.execute(
        update(Welcome)
        .where(col(Welcome.id) == welcome_id, col(Welcome.greeter_user_id).is_(None))
        .values(greeter_user_id=greeter, greeted_at=at)
        .execution_options(synchronize_session=False)
    )
    return (rowcount(result) or 0) == 1


async def set_buddy_volunteer(
    session: AsyncSession, platform: str, workspace_id: str, user_id: str, *, active: bool
) -> None:
    values = {
        "platform": platform,
        "workspace_id": workspace_id,
        "user_id": user_id,
        "active": active,
        "updated_at": utcnow(),
    }
    statement = _insert(session, WelcomeBuddy, values).on_conflict_do_update(
        index_elements=_natural_key(values),
        set_={"active": active, "updated_at": values["updated_at"]},
    )
    await session.execute(statement)


async def is_buddy_volunteer(
    session: AsyncSession, platform: str, workspace_id: str, user_id: str
) -> bool:
    query = select(col(WelcomeBuddy.active)).where(
        col(WelcomeBuddy.platform) == platform,
        col(WelcomeBuddy.workspace_id) == workspace_id,
        col(WelcomeBuddy.user_id) == user_id,
    )
    return bool((await session.execute(query)).scalar_one_or_none())


async def volunteer_members(
    session: AsyncSession, platform: str, workspace_id: str
) -> list[Member]:
    """Active volunteers who are still reachable people (not bots, not deactivated)."""
    query = (
        select(Member)
        .join(
            WelcomeBuddy,
            (col(WelcomeBuddy.platform) == col(Member.platform))
            & (WelcomeBuddy.workspace_id == Member.workspace_id)
            & (WelcomeBuddy.user_id == Member.user_id),
        )
        .where(
            col(WelcomeBuddy.platform) == platform,
            col(WelcomeBuddy.workspace_id) == workspace_id,
            col(WelcomeBuddy.active).is_(True),
            col(Member.is_bot).is_(False),
            col(Member.deactivated).is_(False),
        )
        .order_by(Member.user_id)
    )
    return list((await session.execute(query)).scalars())


async def buddy_loads(
    session: AsyncSession, platform: str, workspace_id: str, since: datetime
) -> dict[str, int]:
    """How many newcomers each buddy was given since `since`."""
    query = (
        select(col(Welcome.buddy_user_id), func.count())
        .where(
            col(Welcome.platform) == platform,
            col(Welcome.workspace_id) == workspace_id,
            col(Welcome.buddy_user_id).is_not(None),
            col(Welcome.buddied_at) >= since,
        )
        .group_by(Welcome.buddy_user_id)
    )
    rows = (await session.execute(query)).all()
    # The query excludes NULL buddies; the check only narrows the column's Optional.
    return {user_id: count for user_id, count in rows if user_id is not None}


async def waiting_for_buddy(
    session: AsyncSession, platform: str, workspace_id: str, since: datetime
) -> list[Welcome]:
    """Newcomers who asked for a buddy (since `since`) while nobody was free."""
    query = (
        select(Welcome)
        .where(
            col(Welcome.platform) == platform,
            col(Welcome.workspace_id) == workspace_id,
            col(Welcome.buddy_requested_at).is_not(None),
            col(Welcome.buddy_requested_at) >= since,
            col(Welcome.buddy_user_id).is_(None),
        )
        .order_by(col(Welcome.buddy_requested_at), col(Welcome.id))
    )
    return list((await session.execute(query)).scalars())


async def due_welcomes(
    session: AsyncSession, now: datetime, limit: int
) -> list[tuple[int, datetime]]:
    """(id, due time) of delayed welcome DMs now owed, across communities (indexed)."""
    return await _due(session, Welcome.welcome_due_at, now, limit)


async def due_buddy_checkins(
    session: AsyncSession, now: datetime, limit: int
) -> list[tuple[int, datetime]]:
    """(id, due time) of buddy check-in nudges now owed, across communities (indexed)."""
    return await _due(session, Welcome.buddy_checkin_due_at, now, limit)


async def _due(
    session: AsyncSession, due_at: Any, now: datetime, limit: int
) -> list[tuple[int, datetime]]:
    query = (
        select(col(Welcome.id), due_at)
        .where(due_at.is_not(None), due_at <= now)
        .order_by(due_at, col(Welcome.id))
        .limit(limit)
    )
    return [(row_id, due) for row_id, due in (await session.execute(query)).all()]


async def community_welcomes(
    session: AsyncSession, platform: str, workspace_id: str, joined_before: datetime | None = None
) -> Sequence[Welcome]:
    """The community's newcomers (only those who arrived before `joined_before`:
    nothing of a period's figures happens before an arrival)."""
    query = select(Welcome).where(
        col(Welcome.platform) == platform, col(Welcome.workspace_id) == workspace_id
    )
    if joined_before is not None:
        query = query.where(col(Welcome.joined_at) < joined_before)
    return list((await session.execute(query)).scalars())


async def next_due_after(session: AsyncSession, now: datetime) -> datetime | None:
    """The earliest delayed welcome or buddy check-in after `now` (the tick's
    `next_due`), each read from its index."""
    parts = [
        select(due_at).where(due_at > now).order_by(due_at).limit(1).scalar_subquery()
        for due_at in (col(Welcome.welcome_due_at), col(Welcome.buddy_checkin_due_at))
    ]
    row = (await session.execute(select(*parts))).one()
    return min((due for due in row if due is not None), default=None)


async def member_actions(
    session: AsyncSession, platform: str, workspace_id: str, start: datetime, end: datetime
) -> list[tuple[str, str, datetime]]:
    """(user id, what, when) in [start, end): a newcomer's intro posted ("intro")
    and buddy given ("buddied"); a buddy taking a newcomer on ("became_buddy") and a
    greeter saying hi ("greeted")."""
    rows = (
        await session.execute(
            select(Welcome).where(
                col(Welcome.platform) == platform,
                col(Welcome.workspace_id) == workspace_id,
                or_(
                    *(
                        and_(moment >= start, moment < end)
                        for moment in (
                            col(Welcome.intro_posted_at),
                            col(Welcome.buddied_at),
                            col(Welcome.greeted_at),
                        )
                    )
                ),
            )
        )
    ).scalars()
    actions: list[tuple[str, str, datetime]] = []
    for welcome in rows:
        moments = (
            (welcome.user_id, "intro", welcome.intro_posted_at),
            (welcome.user_id, "buddied", welcome.buddied_at),
            (welcome.buddy_user_id, "became_buddy", welcome.buddied_at),
            (welcome.greeter_user_id, "greeted", welcome.greeted_at),
        )
        actions += [
            (user_id, kind, at)
            for user_id, kind, at in moments
            if user_id is not None and at is not None and start <= at < end
        ]
    return actions
