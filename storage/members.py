"""Communities and members: who is here, and the profile they chose to share."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from storage import dialect
from storage.models import Community, Member
from storage.types import utcnow


async def ensure_community(
    session: AsyncSession, platform: str, workspace_id: str, name: str = ""
) -> Community:
    query = select(Community).where(
        col(Community.platform) == platform, col(Community.workspace_id) == workspace_id
    )
    community = (await session.execute(query)).scalar_one_or_none()
    if community is None:
        await _insert_if_absent(
            session,
            Community,
            ["platform", "workspace_id"],
            platform=platform,
            workspace_id=workspace_id,
            name=name,
            active=True,
            created_at=utcnow(),
        )
        community = (await session.execute(query)).scalar_one()
    elif name and community.name != name:
        community.name = name
    return community


async def get_member(
    session: AsyncSession, platform: str, workspace_id: str, user_id: str
) -> Member | None:
    query = select(Member).where(
        col(Member.platform) == platform,
        col(Member.workspace_id) == workspace_id,
        col(Member.user_id) == user_id,
    )
    return (await session.execute(query)).scalar_one_or_none()


async def ensure_member(
    session: AsyncSession,
    platform: str,
    workspace_id: str,
    user_id: str,
    display_name: str | None = None,
    *,
    is_bot: bool | None = None,
    deactivated: bool | None = None,
) -> Member:
    """The member row, created on first sight; known facts refreshed when given."""
    member = await get_member(session, platform, workspace_id, user_id)
    if member is None:
        await _insert_if_absent(
            session,
            Member,
            ["platform", "workspace_id", "user_id"],
            platform=platform,
            workspace_id=workspace_id,
            user_id=user_id,
            display_name=display_name or user_id,
            is_bot=bool(is_bot),
            deactivated=bool(deactivated),
            first_seen_at=utcnow(),
            topics=[],
        )
        member = await get_member(session, platform, workspace_id, user_id)
        assert member is not None
        return member
    if display_name:
        member.display_name = display_name
    if is_bot is not None:
        member.is_bot = is_bot
    if deactivated is not None:
        member.deactivated = deactivated
    return member


async def members_by_user_ids(
    session: AsyncSession, platform: str, workspace_id: str, user_ids: Sequence[str]
) -> dict[str, Member]:
    if not user_ids:
        return {}
    query = select(Member).where(
        col(Member.platform) == platform,
        col(Member.workspace_id) == workspace_id,
        col(Member.user_id).in_(list(user_ids)),
    )
    return {member.user_id: member for member in (await session.execute(query)).scalars()}


async def _insert_if_absent(
    session: AsyncSession, model: Any, unique: list[str], **values: Any
) -> None:
    """Insert unless the unique key exists: two events about the same newcomer may
    race, and the loser must see the winner's row rather than fail."""
    await session.execute(
        dialect.insert(session, model)
        .values(**values)
        .on_conflict_do_nothing(index_elements=unique)
    )
