"""Shared steps of the mastermind tests: people with profiles, a cycle set up by
the organiser, applications, and reads of what was stored. Everyone speaks through
the shared driver (`tests.driver.Community`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select

from bot.core.app import Kindred
from storage import members
from storage.mastermind import (
    MastermindApplication,
    MastermindEntry,
    MastermindGroup,
    MastermindSession,
)
from tests.driver import Community

WORKSPACE = "W1"
CHANNEL = "CMASTER"
ADMIN = "UADMIN"
# The clock fixture starts on Monday 23 Nov 2026, 09:00 UTC. Everyone below is free
# on Tuesdays 16:00-18:00 UTC (17:00 in Berlin, 11:00 in New York), so a group formed
# on Friday 27 Nov first meets on Tuesday 1 Dec at 16:00 UTC.
SETUP = 'mastermind setup name="CX leaders" deadline=2026-11-27'
FORM_AT = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)
FIRST_SESSION = datetime(2026, 12, 1, 16, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Person:
    user_id: str
    company: str | None
    timezone: str = "Europe/Berlin"
    slots: str = "Tue 17:00-19:00"
    tags: str = "support ops, burnout"
    seniority: str = "senior"

    @property
    def challenge(self) -> str:
        return f"Scale support at {self.company} without burning out"


BERLIN = [Person(f"u{index}", f"company{index}") for index in range(1, 5)]
NEW_YORK = [
    Person(f"u{index}", f"company{index}", "America/New_York", "Tue 11:00-13:00", seniority="lead")
    for index in range(5, 7)
]
SIX = [*BERLIN, *NEW_YORK]
# A colleague of u1: the same-company rule keeps them out of u1's group.
COLLEAGUE = Person("u7", "company1", seniority="mid")


async def add_people(kindred: Kindred, *people: Person) -> None:
    async with kindred.db.transaction() as session:
        for person in people:
            member = await members.ensure_member(
                session, "fake", WORKSPACE, person.user_id, person.user_id.title()
            )
            member.company = person.company
            member.timezone = person.timezone


def application(person: Person) -> str:
    return (
        f'mastermind apply challenge="{person.challenge}" tags="{person.tags}" '
        f'seniority={person.seniority} slots="{person.slots}"'
    )


async def start(community: Community) -> None:
    """Register the ticks without APScheduler (tests drive time); commands are typed
    in the cycle's channel."""
    assert community.workspace == WORKSPACE and community.admin == ADMIN
    community.channel = CHANNEL
    await community.kindred.start(dispatch=False, schedule=False)


async def cycle_with(community: Community, people: list[Person], setup: str = SETUP) -> None:
    await start(community)
    await add_people(community.kindred, *people)
    assert "is open for applications" in await community.say(setup)
    for person in people:
        assert "You've applied" in await community.say(application(person), person.user_id)


async def formed(community: Community, people: list[Person], setup: str = SETUP) -> str:
    await cycle_with(community, people, setup)
    await community.advance(FORM_AT)
    answer = await community.say("mastermind form")
    await community.deliver()
    return answer


async def stored_groups(kindred: Kindred) -> list[tuple[str, ...]]:
    """Each group's seated members (ordered by user id), groups in number order."""
    async with kindred.db.sessions() as session:
        groups = (await session.execute(select(MastermindGroup))).scalars().all()
        seats = (await session.execute(select(MastermindApplication))).scalars().all()
    return [
        tuple(sorted(a.user_id for a in seats if a.group_id == group.id and a.status == "grouped"))
        for group in sorted(groups, key=lambda g: g.number)
    ]


async def stored_sessions(kindred: Kindred) -> list[MastermindSession]:
    async with kindred.db.sessions() as session:
        query = select(MastermindSession).order_by(
            MastermindSession.group_id, MastermindSession.number
        )
        return list((await session.execute(query)).scalars())


async def stored_entries(kindred: Kindred) -> list[MastermindEntry]:
    async with kindred.db.sessions() as session:
        return list((await session.execute(select(MastermindEntry))).scalars())
