"""Kudos through the real adapters: Slack (bolt over signed HTTP against the fake Web
API) and Discord (discord.py against the fake REST and gateway). Kudos by command and
by reaction, self-kudos refused, the cap, a re-delivered event acting once, a removed
reaction and a deleted message withdrawing, and on Discord the status granted with
its role."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.commands import declared_features
from bot.core.app import Kindred
from bot.core.feature import Feature
from bot.core.figures import MemberAction, Period
from bot.core.registry import Handlers
from bot.core.settings import Settings
from storage.db import Database
from storage.kudos import Kudos, RecognisedContributor
from tests.bot.adapters.slack_harness import (
    ADMIN,
    CHANNEL,
    MEMBER,
    TEAM,
    populate,
    running_slack,
    slack_settings,
)
from tests.conftest import Clock
from tests.fakes.discord_harness import discord_settings_for, serving
from tests.fakes.discord_server import Channel, FakeDiscord, Member
from tests.fakes.slack import FakeSlack


async def statuses(db: Database) -> list[tuple[str, str, str]]:
    async with db.sessions() as session:
        rows = (await session.execute(select(Kudos).order_by(Kudos.id))).scalars()
        return [(row.giver_id, row.receiver_id, row.status) for row in rows]


async def until(condition: Callable[[], Awaitable[bool]], what: str) -> None:
    deadline = time.monotonic() + 10
    while not await condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)


def has(db: Database, expected: list[tuple[str, str, str]]) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return await statuses(db) == expected

    return check


# --- Slack -------------------------------------------------------------------------


async def test_slack_kudos_by_command_and_reaction(settings: Settings, sqlite_db: Database) -> None:
    fake = FakeSlack()
    await fake.start()
    populate(fake)
    fake.add_user(TEAM, "UHELPER", "helper-bot", is_bot=True)
    first, second = "1700000000.000001", "1700000000.000002"
    fake.messages(TEAM, CHANNEL).append({"ts": first, "user": "UBEN", "text": "Here's how"})
    fake.messages(TEAM, CHANNEL).append({"ts": second, "user": ADMIN, "text": "And the fix"})
    try:
        async with running_slack(fake, slack_settings(settings, fake), sqlite_db) as slack:
            answer = await slack.command("kudos <@UBEN> for the churn dashboard walkthrough")
            assert "Kudos sent to <@UBEN>" in answer["text"]
            refused = await slack.command("kudos <@UANA> for being my own hero")
            assert "can't give them to yourself" in refused["text"]
            bot = await slack.command("kudos <@UHELPER> for the reminders every day")
            assert "bots and accounts that left don't get kudos" in bot["text"]
            await slack.drain()
            dms = [
                call.params
                for call in fake.calls_to("chat.postMessage")
                if call.params.get("channel") == "UBEN"
            ]
            assert len(dms) == 1 and "churn dashboard walkthrough" in str(dms[0])

            key = await slack.send_command("kudos setup reasons=off allowance=3", user=ADMIN)
            assert "Saved." in (await slack.response(key))["text"]

            def reaction(kind: str, ts: str, author: str) -> dict[str, Any]:
                return {
                    "type": kind,
                    "user": MEMBER,
                    "reaction": "raised_hands",
                    "item": {"type": "message", "channel": CHANNEL, "ts": ts},
                    "item_user": author,
                }

            assert (
                await slack.sender.event(
                    reaction("reaction_added", first, "UBEN"), team_id=TEAM, event_id="EvK1"
                )
                == 200
            )
            expected = [(MEMBER, "UBEN", "active"), (MEMBER, "UBEN", "active")]
            await until(has(sqlite_db, expected), "the reaction's kudos")
            # Slack retries the same event: it counts once.
            await slack.sender.event(
                reaction("reaction_added", first, "UBEN"),
                team_id=TEAM,
                event_id="EvK1",
                retry_num=1,
            )
            await slack.sender.event(
                reaction("reaction_added", second, ADMIN), team_id=TEAM, event_id="EvK2"
            )
            expected.append((MEMBER, ADMIN, "active"))
            await until(has(sqlite_db, expected), "the second reaction")
            # The allowance of 3 is used up: the next reaction gets a DM, no kudos.
            capped = await slack.command("kudos <@UADMIN> for one kudos too many today")
            assert "You've given your 3 kudos for today" in capped["text"]

            await slack.sender.event(
                reaction("reaction_removed", first, "UBEN"), team_id=TEAM, event_id="EvK3"
            )
            expected[1] = (MEMBER, "UBEN", "withdrawn")
            await until(has(sqlite_db, expected), "the removed reaction")
            deleted = {
                "type": "message",
                "subtype": "message_deleted",
                "hidden": True,
                "channel": CHANNEL,
                "channel_type": "channel",
                "ts": "1700000000.000009",
                "deleted_ts": second,
                "previous_message": {"type": "message", "user": ADMIN, "ts": second},
            }
            assert await slack.sender.event(deleted, team_id=TEAM, event_id="EvK4") == 200
            expected[2] = (MEMBER, ADMIN, "withdrawn")
            await until(has(sqlite_db, expected), "the deleted message")
            # Other messages in the channel are acknowledged (not 404, which Slack retries).
            plain = {
                "type": "message",
                "channel": CHANNEL,
                "user": "UBEN",
                "ts": "1.2",
                "text": "hi",
            }
            assert await slack.sender.event(plain, team_id=TEAM, event_id="EvK5") == 200
    finally:
        await fake.close()


# --- Discord -----------------------------------------------------------------------

GUILD = 1_200_000_000_000_000_001
GENERAL = 1_200_000_000_000_000_010
KUDOS = 1_200_000_000_000_000_011
ROLE = 1_200_000_000_000_000_050
ANA, BOB, CAROL = 1_200_000_000_000_000_101, 1_200_000_000_000_000_102, 1_200_000_000_000_000_103


class Evidence:
    """A probe feature reporting one contribution of each member in `helpers`."""

    def __init__(self) -> None:
        self.helpers: set[str] = set()
        self.feature = Feature(summary="probe", handlers=Handlers("probe"), actions=self.actions)

    async def actions(self, session: AsyncSession, period: Period) -> Sequence[MemberAction]:
        return [
            MemberAction(user, "ama_answer", period.start, contribution=True)
            for user in sorted(self.helpers)
        ]


@contextlib.asynccontextmanager
async def discord_running(
    settings: Settings, db: Database, clock: Clock, evidence: Evidence
) -> AsyncIterator[FakeDiscord]:
    fake = FakeDiscord()
    guild = fake.add_guild(
        "CX Guild",
        members=[Member(ANA, "Ana", admin=True), Member(BOB, "Bob"), Member(CAROL, "Carol")],
        channels=[Channel(GENERAL, "general"), Channel(KUDOS, "kudos")],
        guild_id=GUILD,
    )
    guild.extra_roles[ROLE] = "Contributor"
    await fake.start()
    configured = discord_settings_for(settings, fake, db)
    kindred = Kindred(
        configured, db, features=(*declared_features(), evidence.feature), clock=clock
    )
    try:
        async with serving(kindred, configured):
            yield fake
    finally:
        await fake.stop()


def user_option(fake: FakeDiscord, user_id: int) -> tuple[dict[str, Any], dict[str, Any]]:
    member = fake.guilds[GUILD].members[user_id]
    resolved = {
        "users": {str(user_id): member.user()},
        "members": {str(user_id): member.member(GUILD, with_user=False)},
    }
    return {"name": "member", "type": 6, "value": str(user_id)}, resolved


async def test_discord_kudos_withdrawals_and_the_role(
    settings: Settings, sqlite_db: Database, clock: Clock
) -> None:
    evidence = Evidence()
    async with discord_running(settings, sqlite_db, clock, evidence) as fake:
        (identify,) = fake.identifies
        intents = int(identify["intents"])
        assert intents & (1 << 10) and intents & (1 << 9)  # guild reactions and messages
        setup = [
            {"name": "channel", "type": 7, "value": str(KUDOS)},
            {"name": "givers", "type": 4, "value": 2},
            {"name": "kudos", "type": 4, "value": 2},
            {"name": "companies", "type": 4, "value": 0},
            {"name": "days", "type": 4, "value": 0},
            {"name": "reasons", "type": 5, "value": False},
            {"name": "role", "type": 3, "value": "Contributor"},
        ]
        channels = {
            "channels": {
                str(KUDOS): {"id": str(KUDOS), "name": "kudos", "type": 0, "permissions": "0"}
            }
        }
        answers = await fake.answered(
            await fake.command(GUILD, GENERAL, ANA, ("kudos", "setup"), setup, channels)
        )
        assert "Role for recognised contributors: Contributor" in str(answers)

        option, resolved = user_option(fake, BOB)
        reason = {"name": "reason", "type": 3, "value": "for the onboarding checklist"}
        answers = await fake.answered(
            await fake.command(GUILD, GENERAL, CAROL, ("kudos", "give"), [option, reason], resolved)
        )
        assert "Kudos sent to" in str(answers)
        option, resolved = user_option(fake, CAROL)
        answers = await fake.answered(
            await fake.command(GUILD, GENERAL, CAROL, ("kudos", "give"), [option, reason], resolved)
        )
        assert "can't give them to yourself" in str(answers)

        message = fake.seed_message(GENERAL, "Here is the macro I use", BOB)

        async def react(event: str, user: int) -> None:
            payload: dict[str, Any] = {
                "user_id": str(user),
                "channel_id": str(GENERAL),
                "message_id": str(message),
                "guild_id": str(GUILD),
                "emoji": {"id": None, "name": "🙌"},
                "burst": False,
                "type": 0,
            }
            if event == "MESSAGE_REACTION_ADD":
                payload["member"] = fake.guilds[GUILD].members[user].member(GUILD)
                payload["message_author_id"] = str(BOB)
            await fake.dispatch(event, payload)

        await react("MESSAGE_REACTION_ADD", ANA)
        # A gateway resume re-delivers the same reaction: it counts once.
        await react("MESSAGE_REACTION_ADD", ANA)
        expected = [(str(CAROL), str(BOB), "active"), (str(ANA), str(BOB), "active")]
        await until(has(sqlite_db, expected), "the reaction's kudos")
        # Two givers, two kudos, but no evidence yet: no status.
        assert await recognised(sqlite_db) == []
        await react("MESSAGE_REACTION_REMOVE", ANA)
        expected[1] = (str(ANA), str(BOB), "withdrawn")
        await until(has(sqlite_db, expected), "the removed reaction")

        second = fake.seed_message(GENERAL, "And the follow-up", BOB)
        message = second
        await react("MESSAGE_REACTION_ADD", ANA)
        expected.append((str(ANA), str(BOB), "active"))
        await until(has(sqlite_db, expected), "the second reaction")
        # Evidence arrives (an AMA answered as host); a kudos with a reason from a
        # second giver completes the rule (the reaction's kudos has none: reasons=off).
        evidence.helpers.add(str(BOB))
        option, resolved = user_option(fake, BOB)
        answers = await fake.answered(
            await fake.command(GUILD, GENERAL, ANA, ("kudos", "give"), [option, reason], resolved)
        )
        assert "is now a recognised contributor" in str(answers)
        expected.append((str(ANA), str(BOB), "active"))
        assert await recognised(sqlite_db) == [str(BOB)]
        guild = fake.guilds[GUILD]
        await fake.wait_until(lambda: guild.member_roles.get(BOB) == {ROLE}, "the role")
        await fake.wait_until(
            lambda: any("recognised contributor" in sent.content for sent in fake.sent),
            "the announcement",
        )
        # The public posts (four kudos, the new contributor) allow no mention at all.
        posts = [sent for sent in fake.sent if sent.channel_id == KUDOS]
        assert len(posts) == 5
        for sent in posts:
            allowed = sent.allowed_mentions or {}
            assert not allowed.get("parse") and not allowed.get("users"), allowed

        await fake.dispatch(
            "MESSAGE_DELETE",
            {"id": str(second), "channel_id": str(GENERAL), "guild_id": str(GUILD)},
        )
        expected[2] = (str(ANA), str(BOB), "withdrawn")
        await until(has(sqlite_db, expected), "the deleted message")
        # The status stays: it is reviewed monthly, not taken at the first withdrawal.
        assert await recognised(sqlite_db) == [str(BOB)]


async def recognised(db: Database) -> list[str]:
    async with db.sessions() as session:
        query = select(RecognisedContributor.user_id).where(
            RecognisedContributor.active.is_(True)  # type: ignore[attr-defined]
        )
        return sorted((await session.execute(query)).scalars())
