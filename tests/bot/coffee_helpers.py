"""Shared steps of the virtual coffee tests: a community with profiles, a program
in #coffee, and reads of what the rounds stored and sent. Members speak through the
shared driver (`tests.driver.Community`)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from bot.core.app import Kindred
from storage import members
from storage.coffee import CoffeeGroup, CoffeeGroupMember, CoffeeMembership, CoffeeRound
from tests.driver import Community
from tests.fakes.platform import FakePlatform

WORKSPACE = "W1"
CHANNEL = "CCOFFEE"
ADMIN = "UADMIN"
# Monday rounds at 09:00 in Berlin: 08:00 UTC in winter. The clock fixture starts on
# Monday 23 Nov 2026 09:00 UTC, so the first round is Monday 30 Nov 08:00 UTC.
BERLIN_MONDAYS = "cadence=weekly weekday=monday hour=9 timezone=Europe/Berlin"


@dataclass(frozen=True)
class Person:
    user_id: str
    company: str | None = None
    industry: str | None = None
    timezone: str | None = "Europe/Berlin"
    role: str | None = "CX Lead"


async def add_people(kindred: Kindred, *people: Person) -> None:
    async with kindred.db.transaction() as session:
        for person in people:
            member = await members.ensure_member(
                session, "fake", WORKSPACE, person.user_id, person.user_id.title()
            )
            member.company = person.company
            member.industry = person.industry
            member.timezone = person.timezone
            member.role = person.role
            member.topics = ["NPS", "journey mapping"]


async def start(community: Community) -> None:
    """Register the feature ticks without starting APScheduler (tests drive time).
    Commands are typed in #coffee, the program's channel, unless a test says otherwise."""
    assert community.workspace == WORKSPACE and community.admin == ADMIN
    community.channel = CHANNEL
    await community.kindred.start(dispatch=False, schedule=False)


async def program_with(
    community: Community, people: list[Person], setup: str = BERLIN_MONDAYS
) -> None:
    await start(community)
    await add_people(community.kindred, *people)
    assert "created" in await community.say(f"coffee setup {setup}")
    for person in people:
        assert "You're in" in await community.say("coffee join", person.user_id)
    await community.deliver()
    community.platform.sent.clear()


async def stored_rounds(kindred: Kindred) -> list[CoffeeRound]:
    async with kindred.db.sessions() as session:
        query = select(CoffeeRound).order_by(CoffeeRound.occurrence)  # type: ignore[arg-type]
        return list((await session.execute(query)).scalars())


async def stored_groups(kindred: Kindred, round_id: int) -> list[tuple[str, ...]]:
    async with kindred.db.sessions() as session:
        query = (
            select(CoffeeGroup.position, CoffeeGroupMember.user_id)
            .join(CoffeeGroup, CoffeeGroup.id == CoffeeGroupMember.group_id)  # type: ignore[arg-type]
            .where(CoffeeGroupMember.round_id == round_id)
            .order_by(CoffeeGroup.position, CoffeeGroupMember.id)  # type: ignore[arg-type]
        )
        groups: dict[int, list[str]] = {}
        for position, user_id in (await session.execute(query)).all():
            groups.setdefault(position, []).append(user_id)
    return [tuple(groups[position]) for position in sorted(groups)]


async def membership(kindred: Kindred, user_id: str) -> CoffeeMembership:
    async with kindred.db.sessions() as session:
        query = select(CoffeeMembership).where(CoffeeMembership.user_id == user_id)
        return (await session.execute(query)).scalar_one()


def intros(platform: FakePlatform) -> list[tuple[frozenset[str], str]]:
    """(members, text) of every intro posted into a group conversation."""
    return [
        (frozenset(platform.groups[sent.target]), sent.text)
        for sent in platform.sent
        if sent.kind == "post" and sent.target in platform.groups and "meet your" in sent.text
    ]
