"""Virtual coffee tables and queries: programs (one per channel), memberships,
rounds with their quality figures, groups with their members' answers, and
private blocks between members."""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

import numpy as np
import numpy.typing as npt
from sqlalchemy import (
    JSON,
    Column,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    Text,
    UniqueConstraint,
    case,
    distinct,
    func,
    update,
)
from sqlalchemy import delete as sa_delete
from sqlalchemy import select as sa_select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import Field, SQLModel, col, select

from storage import dialect
from storage.db import rowcount
from storage.models import Member, OutboxMessage
from storage.types import UTCDateTime, utcnow

# How many earlier rounds a pairing looks back on: recency weighting makes older
# meetings matter little, and this bounds the history query of a long-lived program.
HISTORY_ROUNDS = 52


class CoffeeProgram(SQLModel, table=True):
    """A virtual coffee program: one channel of one community, with its schedule."""

    __tablename__ = "coffee_program"
    __table_args__ = (
        UniqueConstraint("platform", "workspace_id", "channel_id"),
        Index("ix_coffee_program_next_round_at", "next_round_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    platform: str = Field(max_length=16)
    workspace_id: str = Field(max_length=64)
    channel_id: str = Field(max_length=64)
    cadence: str = Field(default="weekly", max_length=16)
    weekday: int = 0
    hour: int = 9
    timezone: str = Field(default="UTC", max_length=64)
    # The first round's date: fixes which fortnight a biweekly program meets.
    anchor_date: date
    group_size: int = 2
    auto_join: bool = False
    repeat_window: int = 6
    # Follow-ups a member may leave unanswered in a row before being paused.
    max_ignored: int = 3
    # The next scheduled round (UTC); the tick looks for programs due by this index.
    next_round_at: datetime = Field(sa_type=UTCDateTime)
    created_by: str = Field(max_length=64)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class CoffeeMembership(SQLModel, table=True):
    """A member's place in one program: opted in or out, paused, skipping."""

    __tablename__ = "coffee_membership"
    __table_args__ = (
        UniqueConstraint("program_id", "user_id"),
        Index("ix_coffee_membership_resume_at", "resume_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    program_id: int = Field(
        sa_column=Column(Integer, ForeignKey("coffee_program.id"), nullable=False)
    )
    user_id: str = Field(max_length=64)
    active: bool = True
    first_joined_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    joined_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    left_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    paused: bool = False
    # When a timed pause ends (the tick resumes the member); None for open-ended pauses.
    resume_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # member | silence: why the member is paused, for the wording of messages.
    pause_reason: str | None = Field(default=None, max_length=16)
    skip_next: bool = False
    ignored_followups: int = 0


class CoffeeRound(SQLModel, table=True):
    """One pairing round of a program and what the pairing engine achieved."""

    __tablename__ = "coffee_round"
    __table_args__ = (
        UniqueConstraint("program_id", "occurrence"),
        Index("ix_coffee_round_reminder_due_at", "reminder_due_at"),
        Index("ix_coffee_round_followup_due_at", "followup_due_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    program_id: int = Field(
        sa_column=Column(Integer, ForeignKey("coffee_program.id"), nullable=False)
    )
    occurrence: datetime = Field(sa_type=UTCDateTime)
    manual: bool = False
    ends_at: datetime = Field(sa_type=UTCDateTime)
    # Cleared once the reminder / follow-up went out (or the round was superseded).
    reminder_due_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    followup_due_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    followup_sent_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # Set when the next round starts: unanswered follow-ups were counted then.
    closed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # False when the platform could not be asked who is deactivated (stored flags used).
    members_checked: bool = True
    participants: int = 0
    groups: int = 0
    total_pairs: int = 0
    repeat_pairs: int = 0
    any_repeat_pairs: int = 0
    same_company_pairs: int = 0
    low_overlap_pairs: int = 0
    in_trio: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    left_out: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    solver_ms: float = 0.0
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class CoffeeGroup(SQLModel, table=True):
    """The members a round put together, their starter and who proposes a time."""

    __tablename__ = "coffee_group"
    __table_args__ = (UniqueConstraint("round_id", "position"),)

    id: int | None = Field(default=None, primary_key=True)
    round_id: int = Field(sa_column=Column(Integer, ForeignKey("coffee_round.id"), nullable=False))
    program_id: int = Field(
        sa_column=Column(Integer, ForeignKey("coffee_program.id"), nullable=False, index=True)
    )
    position: int
    starter: str = Field(sa_column=Column(Text, nullable=False))
    proposer_user_id: str = Field(max_length=64)
    # The outbox row of the intro: once sent it names the group's conversation.
    intro_outbox_id: int | None = Field(
        default=None, sa_column=Column(Integer, ForeignKey("outbox.id"))
    )


class CoffeeGroupMember(SQLModel, table=True):
    """A member of a group and their answer to "Did you meet?" (last answer wins)."""

    __tablename__ = "coffee_group_member"
    __table_args__ = (
        UniqueConstraint("group_id", "user_id"),
        Index("ix_coffee_group_member_program_user", "program_id", "user_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    group_id: int = Field(sa_column=Column(Integer, ForeignKey("coffee_group.id"), nullable=False))
    round_id: int = Field(sa_column=Column(Integer, ForeignKey("coffee_round.id"), nullable=False))
    program_id: int = Field(
        sa_column=Column(Integer, ForeignKey("coffee_program.id"), nullable=False)
    )
    user_id: str = Field(max_length=64)
    # met | not_yet | didnt_happen
    answer: str | None = Field(default=None, max_length=16)
    answered_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    asked_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class CoffeeBlock(SQLModel, table=True):
    """A member asked never to be paired with another: private (the other is not
    told), binding both ways, in every program of the community."""

    __tablename__ = "coffee_block"
    __table_args__ = (UniqueConstraint("platform", "workspace_id", "user_id", "blocked_user_id"),)

    id: int | None = Field(default=None, primary_key=True)
    platform: str = Field(max_length=16)
    workspace_id: str = Field(max_length=64)
    user_id: str = Field(max_length=64)
    blocked_user_id: str = Field(max_length=64)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class CoffeeHistory(SQLModel, table=True):
    """A program's pairing history as arrays, current after the rounds it names: what
    the next round reads instead of every group member row of the last HISTORY_ROUNDS
    rounds. Written in the transaction that stores a round; a snapshot whose
    `round_ids` are not the program's latest rounds is stale and not used."""

    __tablename__ = "coffee_history"

    program_id: int = Field(
        sa_column=Column(Integer, ForeignKey("coffee_program.id"), primary_key=True)
    )
    # The ids of the rounds it covers, newest first (what `recent_rounds` returns).
    round_ids: list[int] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    # numpy arrays in .npy format (`np.save`, read back with pickles refused).
    member_ids: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    first: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    second: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    rounds_ago: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


# Programs ---------------------------------------------------------------------------


async def get_program(session: AsyncSession, program_id: int) -> CoffeeProgram | None:
    return await session.get(CoffeeProgram, program_id)


async def program_in_channel(
    session: AsyncSession, platform: str, workspace_id: str, channel_id: str
) -> CoffeeProgram | None:
    query = select(CoffeeProgram).where(
        CoffeeProgram.platform == platform,
        CoffeeProgram.workspace_id == workspace_id,
        CoffeeProgram.channel_id == channel_id,
    )
    return (await session.execute(query)).scalar_one_or_none()


async def community_programs(
    session: AsyncSession, platform: str, workspace_id: str
) -> list[CoffeeProgram]:
    query = (
        select(CoffeeProgram)
        .where(CoffeeProgram.platform == platform, CoffeeProgram.workspace_id == workspace_id)
        .order_by(col(CoffeeProgram.id))
    )
    return list((await session.execute(query)).scalars())


async def programs_due(
    session: AsyncSession, now: datetime, platforms: Sequence[str]
) -> list[CoffeeProgram]:
    query = (
        select(CoffeeProgram)
        .where(
            col(CoffeeProgram.next_round_at) <= now,
            col(CoffeeProgram.platform).in_(list(platforms)),
        )
        .order_by(col(CoffeeProgram.next_round_at))
    )
    return list((await session.execute(query)).scalars())


# Memberships ------------------------------------------------------------------------


async def get_membership(
    session: AsyncSession, program_id: int, user_id: str
) -> CoffeeMembership | None:
    query = select(CoffeeMembership).where(
        CoffeeMembership.program_id == program_id, CoffeeMembership.user_id == user_id
    )
    return (await session.execute(query)).scalar_one_or_none()


async def join(
    session: AsyncSession, program_id: int, user_id: str, now: datetime
) -> tuple[CoffeeMembership, bool]:
    """Opt a member in; returns the membership and whether it changed anything.
    Re-joining clears pauses and skips: joining means "pair me"."""
    membership = await get_membership(session, program_id, user_id)
    if membership is None:
        membership = CoffeeMembership(
            program_id=program_id, user_id=user_id, first_joined_at=now, joined_at=now
        )
        session.add(membership)
        await session.flush()
        return membership, True
    changed = not membership.active or membership.paused or membership.skip_next
    if not membership.active:
        membership.joined_at = now
    membership.active = True
    membership.left_at = None
    resume(membership)
    membership.skip_next = False
    return membership, changed


def resume(membership: CoffeeMembership) -> None:
    membership.paused = False
    membership.resume_at = None
    membership.pause_reason = None
    membership.ignored_followups = 0


async def member_memberships(
    session: AsyncSession, platform: str, workspace_id: str, user_id: str
) -> list[tuple[CoffeeProgram, CoffeeMembership]]:
    query = (
        select(CoffeeProgram, CoffeeMembership)
        .join(CoffeeMembership, col(CoffeeMembership.program_id) == col(CoffeeProgram.id))
        .where(
            CoffeeProgram.platform == platform,
            CoffeeProgram.workspace_id == workspace_id,
            CoffeeMembership.user_id == user_id,
        )
        .order_by(col(CoffeeProgram.id))
    )
    return [(program, membership) for program, membership in (await session.execute(query)).all()]


async def active_memberships(
    session: AsyncSession, program_id: int
) -> list[tuple[CoffeeMembership, Member]]:
    """Opted-in memberships of a program with their member rows."""
    query = (
        select(CoffeeMembership, Member)
        .join(CoffeeProgram, col(CoffeeProgram.id) == col(CoffeeMembership.program_id))
        .join(
            Member,
            (col(Member.platform) == col(CoffeeProgram.platform))
            & (col(Member.workspace_id) == col(CoffeeProgram.workspace_id))
            & (col(Member.user_id) == col(CoffeeMembership.user_id)),
        )
        .where(CoffeeMembership.program_id == program_id, col(CoffeeMembership.active))
        .order_by(col(CoffeeMembership.id))
    )
    return [(membership, member) for membership, member in (await session.execute(query)).all()]


async def memberships_to_resume(
    session: AsyncSession, now: datetime, platforms: Sequence[str]
) -> list[CoffeeMembership]:
    query = (
        select(CoffeeMembership)
        .join(CoffeeProgram, col(CoffeeProgram.id) == col(CoffeeMembership.program_id))
        .where(
            col(CoffeeMembership.resume_at) <= now,
            col(CoffeeProgram.platform).in_(list(platforms)),
        )
        .order_by(col(CoffeeMembership.resume_at))
    )
    return list((await session.execute(query)).scalars())


async def first_joined_at(
    session: AsyncSession, platform: str, workspace_id: str, user_ids: Sequence[str]
) -> dict[str, datetime]:
    """When each member first opted into any coffee program of the community
    (members who never did are absent)."""
    if not user_ids:
        return {}
    query = (
        select(CoffeeMembership.user_id, CoffeeMembership.first_joined_at)
        .join(CoffeeProgram, col(CoffeeProgram.id) == col(CoffeeMembership.program_id))
        .where(
            CoffeeProgram.platform == platform,
            CoffeeProgram.workspace_id == workspace_id,
            col(CoffeeMembership.user_id).in_(list(user_ids)),
        )
    )
    first: dict[str, datetime] = {}
    for user_id, joined in (await session.execute(query)).all():
        if user_id not in first or joined < first[user_id]:
            first[user_id] = joined
    return first


# Blocks -----------------------------------------------------------------------------


async def add_block(
    session: AsyncSession, platform: str, workspace_id: str, user_id: str, blocked: str
) -> bool:
    """Record a block; False when it already existed."""
    existing = await session.execute(
        select(CoffeeBlock.id).where(
            CoffeeBlock.platform == platform,
            CoffeeBlock.workspace_id == workspace_id,
            CoffeeBlock.user_id == user_id,
            CoffeeBlock.blocked_user_id == blocked,
        )
    )
    if existing.first() is not None:
        return False
    session.add(
        CoffeeBlock(
            platform=platform, workspace_id=workspace_id, user_id=user_id, blocked_user_id=blocked
        )
    )
    await session.flush()
    return True


async def remove_block(
    session: AsyncSession, platform: str, workspace_id: str, user_id: str, blocked: str
) -> bool:
    query = select(CoffeeBlock).where(
        CoffeeBlock.platform == platform,
        CoffeeBlock.workspace_id == workspace_id,
        CoffeeBlock.user_id == user_id,
        CoffeeBlock.blocked_user_id == blocked,
    )
    block = (await session.execute(query)).scalar_one_or_none()
    if block is None:
        return False
    await session.delete(block)
    return True


async def community_blocks(
    session: AsyncSession, platform: str, workspace_id: str
) -> list[tuple[str, str]]:
    query = select(CoffeeBlock.user_id, CoffeeBlock.blocked_user_id).where(
        CoffeeBlock.platform == platform, CoffeeBlock.workspace_id == workspace_id
    )
    return [(user_id, blocked) for user_id, blocked in (await session.execute(query)).all()]


# Rounds and history -----------------------------------------------------------------


async def round_at(
    session: AsyncSession, program_id: int, occurrence: datetime
) -> CoffeeRound | None:
    query = select(CoffeeRound).where(
        CoffeeRound.program_id == program_id, CoffeeRound.occurrence == occurrence
    )
    return (await session.execute(query)).scalar_one_or_none()


async def recent_rounds(
    session: AsyncSession, program_id: int, limit: int | None = HISTORY_ROUNDS
) -> list[CoffeeRound]:
    """The program's latest rounds (all of them with `limit=None`), newest first."""
    query = (
        select(CoffeeRound)
        .where(CoffeeRound.program_id == program_id)
        .order_by(col(CoffeeRound.occurrence).desc(), col(CoffeeRound.id).desc())
        .limit(limit)
    )
    return list((await session.execute(query)).scalars())


async def unclosed_rounds(session: AsyncSession, program_id: int) -> list[CoffeeRound]:
    query = (
        select(CoffeeRound)
        .where(CoffeeRound.program_id == program_id, col(CoffeeRound.closed_at).is_(None))
        .order_by(col(CoffeeRound.occurrence))
    )
    return list((await session.execute(query)).scalars())


async def round_groups(
    session: AsyncSession, round_ids: Sequence[int]
) -> dict[int, list[tuple[CoffeeGroup, list[CoffeeGroupMember]]]]:
    """Groups (in position order) with their members, by round id."""
    if not round_ids:
        return {}
    groups = (
        await session.execute(
            select(CoffeeGroup)
            .where(col(CoffeeGroup.round_id).in_(list(round_ids)))
            .order_by(col(CoffeeGroup.round_id), col(CoffeeGroup.position))
        )
    ).scalars()
    members = (
        await session.execute(
            select(CoffeeGroupMember)
            .where(col(CoffeeGroupMember.round_id).in_(list(round_ids)))
            .order_by(col(CoffeeGroupMember.id))
        )
    ).scalars()
    by_group: dict[int, list[CoffeeGroupMember]] = {}
    for member in members:
        by_group.setdefault(member.group_id, []).append(member)
    result: dict[int, list[tuple[CoffeeGroup, list[CoffeeGroupMember]]]] = {}
    for group in groups:
        assert group.id is not None
        result.setdefault(group.round_id, []).append((group, by_group.get(group.id, [])))
    return result


async def group_with_members(
    session: AsyncSession, group_id: int
) -> tuple[CoffeeGroup, list[CoffeeGroupMember]] | None:
    group = await session.get(CoffeeGroup, group_id)
    if group is None:
        return None
    members = (
        await session.execute(
            select(CoffeeGroupMember)
            .where(CoffeeGroupMember.group_id == group_id)
            .order_by(col(CoffeeGroupMember.id))
        )
    ).scalars()
    return group, list(members)


async def starters_seen(
    session: AsyncSession, program_id: int, user_ids: Sequence[str]
) -> dict[str, dict[str, int]]:
    """For each member, how often they have seen each starter in this program."""
    if not user_ids:
        return {}
    query = (
        select(CoffeeGroupMember.user_id, CoffeeGroup.starter, func.count())
        .join(CoffeeGroup, col(CoffeeGroup.id) == col(CoffeeGroupMember.group_id))
        .where(
            CoffeeGroupMember.program_id == program_id,
            col(CoffeeGroupMember.user_id).in_(list(user_ids)),
        )
        .group_by(CoffeeGroupMember.user_id, CoffeeGroup.starter)
    )
    seen: dict[str, dict[str, int]] = {}
    for user_id, starter, count in (await session.execute(query)).all():
        seen.setdefault(user_id, {})[starter] = count
    return seen


async def proposals_made(session: AsyncSession, program_id: int) -> dict[str, int]:
    query = (
        select(CoffeeGroup.proposer_user_id, func.count())
        .where(CoffeeGroup.program_id == program_id)
        .group_by(CoffeeGroup.proposer_user_id)
    )
    return {user_id: count for user_id, count in (await session.execute(query)).all()}


async def rounds_due(
    session: AsyncSession, column: str, now: datetime, platforms: Sequence[str]
) -> list[CoffeeRound]:
    """Rounds whose reminder (`reminder_due_at`) or follow-up (`followup_due_at`) is due."""
    due = getattr(CoffeeRound, column)
    query = (
        select(CoffeeRound)
        .join(CoffeeProgram, col(CoffeeProgram.id) == col(CoffeeRound.program_id))
        .where(due <= now, col(CoffeeProgram.platform).in_(list(platforms)))
        .order_by(due)
    )
    return list((await session.execute(query)).scalars())


async def intro_conversations(session: AsyncSession, outbox_ids: Sequence[int]) -> dict[int, str]:
    """The conversation each delivered intro opened, by outbox row id (undelivered
    intros are absent: their group has nowhere to be reminded yet)."""
    if not outbox_ids:
        return {}
    query = select(OutboxMessage.id, OutboxMessage.opened_channel).where(
        col(OutboxMessage.id).in_(list(outbox_ids)),
        OutboxMessage.status == "sent",
        col(OutboxMessage.opened_channel).is_not(None),
    )
    return {row_id: channel for row_id, channel in (await session.execute(query)).all()}


async def intro_message_id(session: AsyncSession, group: CoffeeGroup) -> str | None:
    """The platform's id of the group's delivered intro message, if delivered."""
    if group.intro_outbox_id is None:
        return None
    row = await session.get(OutboxMessage, group.intro_outbox_id)
    if row is None or row.sent_ref is None:
        return None
    return str(row.sent_ref.get("message_id"))


async def last_partners(
    session: AsyncSession, program_id: int, user_id: str, rounds: int = 3
) -> list[tuple[datetime, list[str]]]:
    """The member's partners in their latest rounds of a program, newest first."""
    mine = (
        select(CoffeeGroupMember.group_id, CoffeeRound.occurrence)
        .join(CoffeeRound, col(CoffeeRound.id) == col(CoffeeGroupMember.round_id))
        .where(CoffeeGroupMember.program_id == program_id, CoffeeGroupMember.user_id == user_id)
        .order_by(col(CoffeeRound.occurrence).desc())
        .limit(rounds)
    )
    found = (await session.execute(mine)).all()
    if not found:
        return []
    group_ids = [group_id for group_id, _ in found]
    others = await session.execute(
        select(CoffeeGroupMember.group_id, CoffeeGroupMember.user_id).where(
            col(CoffeeGroupMember.group_id).in_(group_ids), CoffeeGroupMember.user_id != user_id
        )
    )
    partners: dict[int, list[str]] = {}
    for group_id, partner in others.all():
        partners.setdefault(group_id, []).append(partner)
    return [(occurrence, partners.get(group_id, [])) for group_id, occurrence in found]


@dataclass(frozen=True, slots=True)
class GroupOutcome:
    groups: int
    met: int
    answered: int


async def round_outcomes(session: AsyncSession, program_id: int) -> dict[int, GroupOutcome]:
    """Per round of a program: groups, groups where someone answered "met", and
    groups where anyone answered at all."""
    group = col(CoffeeGroupMember.group_id)
    answer = col(CoffeeGroupMember.answer)
    query = (
        select(
            CoffeeGroupMember.round_id,
            func.count(distinct(group)),
            func.count(distinct(case((answer == "met", group)))),
            func.count(distinct(case((answer.is_not(None), group)))),
        )
        .where(CoffeeGroupMember.program_id == program_id)
        .group_by(col(CoffeeGroupMember.round_id))
    )
    return {
        round_id: GroupOutcome(groups, met, answered)
        for round_id, groups, met, answered in (await session.execute(query)).all()
    }


async def distinct_participants(session: AsyncSession, program_id: int) -> int:
    query = select(func.count(distinct(col(CoffeeGroupMember.user_id)))).where(
        CoffeeGroupMember.program_id == program_id
    )
    return int((await session.execute(query)).scalar_one())


async def grouped_members(
    session: AsyncSession, round_ids: Sequence[int]
) -> dict[int, dict[int, list[str]]]:
    """Who was grouped with whom: round id → group id → user ids (columns only, so a
    big program's history loads quickly)."""
    if not round_ids:
        return {}
    query = select(
        CoffeeGroupMember.round_id, CoffeeGroupMember.group_id, CoffeeGroupMember.user_id
    ).where(col(CoffeeGroupMember.round_id).in_(list(round_ids)))
    grouped: dict[int, dict[int, list[str]]] = {}
    for round_id, group_id, user_id in (await session.execute(query)).all():
        grouped.setdefault(round_id, {}).setdefault(group_id, []).append(user_id)
    return grouped


@dataclass(frozen=True, slots=True)
class HistoryArrays:
    """A stored history snapshot: the rounds it covers (newest first), the member ids
    and, per met pair, indices into them and how many rounds ago they last met."""

    round_ids: list[int]
    member_ids: npt.NDArray[np.str_]
    first: npt.NDArray[np.int64]
    second: npt.NDArray[np.int64]
    rounds_ago: npt.NDArray[np.int64]


def _to_bytes(array: npt.NDArray[np.generic]) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def _from_bytes(data: bytes) -> npt.NDArray[np.generic]:
    array: npt.NDArray[np.generic] = np.load(io.BytesIO(data), allow_pickle=False)
    return array


async def history_snapshot(session: AsyncSession, program_id: int) -> HistoryArrays | None:
    """The program's stored history snapshot, whatever rounds it covers."""
    table = CoffeeHistory.__table__  # type: ignore[attr-defined]
    row = (
        await session.execute(
            sa_select(
                table.c.round_ids,
                table.c.member_ids,
                table.c.first,
                table.c.second,
                table.c.rounds_ago,
            ).where(table.c.program_id == program_id)
        )
    ).one_or_none()
    if row is None:
        return None
    round_ids, member_ids, first, second, rounds_ago = row
    return HistoryArrays(
        round_ids=[int(round_id) for round_id in round_ids],
        member_ids=_from_bytes(member_ids).astype(np.str_, copy=False),
        first=_from_bytes(first).astype(np.int64),
        second=_from_bytes(second).astype(np.int64),
        rounds_ago=_from_bytes(rounds_ago).astype(np.int64),
    )


async def save_history_snapshot(
    session: AsyncSession, program_id: int, arrays: HistoryArrays, now: datetime
) -> None:
    """Store the program's history snapshot, replacing the one before (an upsert, so two
    rounds of one program committing at once do not fail on the row)."""
    # Indices fit 32 bits (History packs a pair into one 64-bit key); rounds ago 16.
    values = {
        "round_ids": list(arrays.round_ids),
        "member_ids": _to_bytes(arrays.member_ids),
        "first": _to_bytes(arrays.first.astype("<i4")),
        "second": _to_bytes(arrays.second.astype("<i4")),
        "rounds_ago": _to_bytes(arrays.rounds_ago.astype("<i2")),
        "updated_at": now,
    }
    await session.execute(
        dialect.insert(session, CoffeeHistory)
        .values(program_id=program_id, **values)
        .on_conflict_do_update(index_elements=["program_id"], set_=values)
    )


async def drop_history_snapshot(session: AsyncSession, program_id: int) -> None:
    await session.execute(
        sa_delete(CoffeeHistory).where(col(CoffeeHistory.program_id) == program_id)
    )


@dataclass(frozen=True, slots=True)
class PeriodFigures:
    rounds: int
    participants: int
    distinct_participants: int
    groups: int
    groups_met: int
    groups_answered: int
    repeat_pairs: int
    total_pairs: int


async def period_figures(
    session: AsyncSession, platform: str, workspace_id: str, start: datetime, end: datetime
) -> PeriodFigures:
    """What the community's rounds that started in [start, end) achieved; rounds
    nobody took part in are not rounds."""
    rounds = (
        await session.execute(
            sa_select(
                func.count(col(CoffeeRound.id)),
                func.coalesce(func.sum(col(CoffeeRound.participants)), 0),
                func.coalesce(func.sum(col(CoffeeRound.groups)), 0),
                func.coalesce(func.sum(col(CoffeeRound.repeat_pairs)), 0),
                func.coalesce(func.sum(col(CoffeeRound.total_pairs)), 0),
            )
            .join(CoffeeProgram, col(CoffeeProgram.id) == col(CoffeeRound.program_id))
            .where(
                col(CoffeeProgram.platform) == platform,
                col(CoffeeProgram.workspace_id) == workspace_id,
                col(CoffeeRound.occurrence) >= start,
                col(CoffeeRound.occurrence) < end,
                col(CoffeeRound.participants) > 0,
            )
        )
    ).one()
    in_period = (
        select(CoffeeGroupMember)
        .join(CoffeeRound, col(CoffeeRound.id) == col(CoffeeGroupMember.round_id))
        .join(CoffeeProgram, col(CoffeeProgram.id) == col(CoffeeRound.program_id))
        .where(
            col(CoffeeProgram.platform) == platform,
            col(CoffeeProgram.workspace_id) == workspace_id,
            col(CoffeeRound.occurrence) >= start,
            col(CoffeeRound.occurrence) < end,
        )
        .subquery()
    )
    people = (
        await session.execute(sa_select(func.count(distinct(in_period.c.user_id))))
    ).scalar_one()
    answered = (
        await session.execute(
            sa_select(
                func.count(distinct(in_period.c.group_id)).filter(in_period.c.answer == "met"),
                func.count(distinct(in_period.c.group_id)).filter(in_period.c.answer.is_not(None)),
            )
        )
    ).one()
    return PeriodFigures(
        rounds=int(rounds[0]),
        participants=int(rounds[1]),
        distinct_participants=int(people),
        groups=int(rounds[2]),
        groups_met=int(answered[0]),
        groups_answered=int(answered[1]),
        repeat_pairs=int(rounds[3]),
        total_pairs=int(rounds[4]),
    )


async def next_due_after(
    session: AsyncSession, now: datetime, platforms: Sequence[str]
) -> datetime | None:
    """The earliest round, timed resume, reminder or follow-up after `now` (the
    tick's `next_due`), in one statement: each part reads the first row after
    `now` from its column's index."""
    listed = list(platforms)
    on_platform = col(CoffeeProgram.platform).in_(listed)
    rounds = col(CoffeeProgram.id) == col(CoffeeRound.program_id)
    parts = (
        select(col(CoffeeProgram.next_round_at))
        .where(col(CoffeeProgram.next_round_at) > now, on_platform)
        .order_by(col(CoffeeProgram.next_round_at)),
        select(col(CoffeeMembership.resume_at))
        .join(CoffeeProgram, col(CoffeeProgram.id) == col(CoffeeMembership.program_id))
        .where(col(CoffeeMembership.resume_at) > now, on_platform)
        .order_by(col(CoffeeMembership.resume_at)),
        select(col(CoffeeRound.reminder_due_at))
        .join(CoffeeProgram, rounds)
        .where(col(CoffeeRound.reminder_due_at) > now, on_platform)
        .order_by(col(CoffeeRound.reminder_due_at)),
        select(col(CoffeeRound.followup_due_at))
        .join(CoffeeProgram, rounds)
        .where(col(CoffeeRound.followup_due_at) > now, on_platform)
        .order_by(col(CoffeeRound.followup_due_at)),
    )
    query = select(*(part.limit(1).scalar_subquery() for part in parts))
    row = (await session.execute(query)).one()
    return min((due for due in row if due is not None), default=None)


async def member_actions(
    session: AsyncSession, platform: str, workspace_id: str, start: datetime, end: datetime
) -> list[tuple[str, str, datetime]]:
    """(user id, what, when) in [start, end): first opting into a program of the
    community ("joined"), and answering that the group met ("met")."""
    community = (
        col(CoffeeProgram.platform) == platform,
        col(CoffeeProgram.workspace_id) == workspace_id,
    )
    joined = (
        select(CoffeeMembership.user_id, func.min(col(CoffeeMembership.first_joined_at)))
        .join(CoffeeProgram, col(CoffeeProgram.id) == col(CoffeeMembership.program_id))
        .where(*community)
        .group_by(col(CoffeeMembership.user_id))
    )
    met = (
        select(CoffeeGroupMember.user_id, CoffeeGroupMember.answered_at)
        .join(CoffeeProgram, col(CoffeeProgram.id) == col(CoffeeGroupMember.program_id))
        .where(
            *community,
            col(CoffeeGroupMember.answer) == "met",
            col(CoffeeGroupMember.answered_at) >= start,
            col(CoffeeGroupMember.answered_at) < end,
        )
    )
    actions = [
        (user_id, "joined", at)
        for user_id, at in (await session.execute(joined)).all()
        if start <= at < end
    ]
    actions += [(user_id, "met", at) for user_id, at in (await session.execute(met)).all()]
    return actions


@dataclass(frozen=True, slots=True)
class StoredAbout:
    """How many coffee records of each kind hold one member's id."""

    memberships: int
    groups: int
    answers: int
    blocks: int


async def stored_about(
    session: AsyncSession, platform: str, workspace_id: str, user_id: str
) -> StoredAbout:
    community = (
        col(CoffeeProgram.platform) == platform,
        col(CoffeeProgram.workspace_id) == workspace_id,
    )
    memberships = (
        await session.execute(
            sa_select(func.count(col(CoffeeMembership.id)))
            .join(CoffeeProgram, col(CoffeeProgram.id) == col(CoffeeMembership.program_id))
            .where(*community, col(CoffeeMembership.user_id) == user_id)
        )
    ).scalar_one()
    groups = (
        await session.execute(
            sa_select(
                func.count(col(CoffeeGroupMember.id)),
                func.count(col(CoffeeGroupMember.answer)),
            )
            .join(CoffeeProgram, col(CoffeeProgram.id) == col(CoffeeGroupMember.program_id))
            .where(*community, col(CoffeeGroupMember.user_id) == user_id)
        )
    ).one()
    blocks = (
        await session.execute(
            sa_select(func.count(col(CoffeeBlock.id))).where(
                col(CoffeeBlock.platform) == platform,
                col(CoffeeBlock.workspace_id) == workspace_id,
                col(CoffeeBlock.user_id) == user_id,
            )
        )
    ).scalar_one()
    return StoredAbout(int(memberships), int(groups[0]), int(groups[1]), int(blocks))


async def forget_answers(
    session: AsyncSession, platform: str, workspace_id: str, user_id: str
) -> int:
    """Erase a member's "Did you meet?" answers; the groups they were in stay, since
    the next rounds' history needs them. Returns how many answers went."""
    programs = sa_select(col(CoffeeProgram.id)).where(
        col(CoffeeProgram.platform) == platform, col(CoffeeProgram.workspace_id) == workspace_id
    )
    result = await session.execute(
        update(CoffeeGroupMember)
        .where(
            col(CoffeeGroupMember.program_id).in_(programs),
            col(CoffeeGroupMember.user_id) == user_id,
            col(CoffeeGroupMember.answer).is_not(None),
        )
        .values(answer=None, answered_at=None)
    )
    return rowcount(result)
