from __future__ import annotations

import asyncio

from sqlalchemy import func, select

from storage import members
from storage.db import Database
from storage.models import Community, Member


async def test_concurrent_first_sightings_create_one_row(db: Database) -> None:
    async def see(name: str) -> int:
        async with db.transaction() as session:
            await members.ensure_community(session, "fake", "W1")
            member = await members.ensure_member(session, "fake", "W1", "U1", name)
            assert member.id is not None
            return member.id

    ids = await asyncio.gather(*(see(f"Ana {n}") for n in range(5)))
    assert len(set(ids)) == 1
    async with db.sessions() as session:
        assert (await session.execute(select(func.count()).select_from(Member))).scalar() == 1
        assert (await session.execute(select(func.count()).select_from(Community))).scalar() == 1


async def test_known_facts_are_refreshed(db: Database) -> None:
    async with db.transaction() as session:
        await members.ensure_member(session, "fake", "W1", "U1", "Ana")
    async with db.transaction() as session:
        member = await members.ensure_member(
            session, "fake", "W1", "U1", "Ana B.", is_bot=False, deactivated=True
        )
        assert (member.display_name, member.deactivated) == ("Ana B.", True)
    async with db.sessions() as session:
        found = await members.members_by_user_ids(session, "fake", "W1", ["U1", "U2"])
    assert list(found) == ["U1"] and found["U1"].deactivated
