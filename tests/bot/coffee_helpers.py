"""Shared steps of the virtual coffee tests: a community with profiles, a program
in #coffee, commands and buttons as an adapter would deliver them, and reads of
what the rounds stored and sent."""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select

from bot.core.app import Kindred
from bot.core.mentions import strip_markup_for_plain_text
from bot.core.platform import Inbound, MessageRef, Reply
from storage import members
from storage.coffee import CoffeeGroup, CoffeeGroupMember, CoffeeMembership, CoffeeRound
from storage.models import OutboxMessage
from tests.conftest import Clock
from tests.fakes.platform import FakePlatform

WORKSPACE = "W1"
CHANNEL = "CCOFFEE"
ADMIN = "UADMIN"
# Monday rounds at 09:00 in Berlin: 08:00 UTC in winter. The clock fixture starts on
# Monday 23 Nov 2026 09:00 UTC, so the first round is Monday 30 Nov 08:00 UTC.
BERLIN_MONDAYS = "cadence=weekly weekday=monday hour=9 timezone=Europe/Berlin"
_event_ids = itertools.count(1)


@dataclass(frozen=True)
class Person:
    user_id: str
    company: str | None = None
    industry: str | None = None
    timezone: str | None = "Europe/Berlin"
    role: str | None = "CX Lead"


def inbound(kind: Any, user: str = ADMIN, **fields: Any) -> Inbound:
    """An event as an adapter delivers it, with a fresh delivery key."""
    fields.setdefault("event_id", f"coffee-ev{next(_event_ids)}")
    fields.setdefault("user_name", user.title())
    return Inbound(kind=kind, platform="fake", workspace_id=WORKSPACE, user_id=user, **fields)


async def say(kindred: Kindred, text: str, user: str = ADMIN, channel: str | None = CHANNEL) -> str:
    reply = await kindred.handle(inbound("command", user, text=text, channel_id=channel))
    assert reply is not None and reply.message is not None
    return strip_markup_for_plain_text(reply.message.text)


async def press(
    kindred: Kindred,
    user: str,
    action_id: str,
    value: str = "",
    message: MessageRef | None = None,
) -> Reply:
    reply = await kindred.handle(
        inbound("button", user, action_id=action_id, value=value, message=message)
    )
    assert reply is not None
    return reply


def plain(text: str) -> str:
    return strip_markup_for_plain_text(text)


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


async def start(kindred: Kindred, platform: FakePlatform) -> None:
    """Register the feature ticks without starting APScheduler (tests drive time)."""
    platform.admins.add(ADMIN)
    await kindred.start(dispatch=False, schedule=False)


async def program_with(
    kindred: Kindred, platform: FakePlatform, people: list[Person], setup: str = BERLIN_MONDAYS
) -> None:
    await start(kindred, platform)
    await add_people(kindred, *people)
    assert "created" in await say(kindred, f"coffee setup {setup}")
    for person in people:
        assert "You're in" in await say(kindred, "coffee join", person.user_id)
    await deliver(kindred)
    platform.sent.clear()


async def deliver(kindred: Kindred) -> None:
    try:
        async with asyncio.timeout(10):
            await kindred.dispatcher.drain()
    except TimeoutError:
        async with kindred.db.sessions() as session:
            rows = (await session.execute(select(OutboxMessage))).scalars()
            owed = [
                (row.id, row.kind, row.status, row.attempts, row.last_error)
                for row in rows
                if row.status != "sent"
            ]
        raise AssertionError(f"the outbox did not drain: {owed}") from None


async def advance(kindred: Kindred, clock: Clock, to: datetime) -> None:
    """Move the clock, run everything due (as the minute tick would) and deliver."""
    clock.now = to
    await kindred.scheduler.catch_up()
    await deliver(kindred)


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


def dms(platform: FakePlatform, user: str, containing: str = "") -> list[str]:
    return [text for text in platform.texts("dm", user) if containing in text]
