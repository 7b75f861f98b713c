"""The health report through the real adapters: message events counted from
Slack's Events API and Discord's gateway, and the report's charts uploaded with
Slack's files.getUploadURLExternal / files.completeUploadExternal flow and as
Discord attachments, each with its alt text."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import select

from bot.adapters.discord import gateway_intents, privileged_needs
from bot.commands import declared_features
from bot.commands import health as health_commands
from bot.core.app import Kindred
from bot.core.registry import Registry
from bot.core.settings import Settings
from storage.db import Database
from storage.health import HealthActivity, HealthNewcomer
from tests.bot.adapters.slack_harness import (
    ADMIN,
    CHANNEL,
    MEMBER,
    TEAM,
    Harness,
    populate,
    running_slack,
    slack_settings,
)
from tests.conftest import Clock
from tests.fakes.discord_harness import discord_settings_for, serving
from tests.fakes.discord_server import Channel, FakeDiscord, Member
from tests.fakes.slack import FakeSlack

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
GUILD = 1_300_000_000_000_000_001
GENERAL = 1_300_000_000_000_000_010
ANA = 1_300_000_000_000_000_101  # an organiser
BOB = 1_300_000_000_000_000_102


async def activity(db: Database) -> list[tuple[str, str, int]]:
    async with db.sessions() as session:
        rows = (await session.execute(select(HealthActivity))).scalars()
        return sorted((row.user_id, row.channel_id, row.messages) for row in rows)


async def wait_for_activity(db: Database, total: int) -> list[tuple[str, str, int]]:
    async with asyncio.timeout(10):
        while True:
            rows = await activity(db)
            if sum(count for _, _, count in rows) >= total:
                return rows
            await asyncio.sleep(0.02)


# --- Slack ---------------------------------------------------------------------------------


@pytest.fixture
async def slack(settings: Settings, sqlite_db: Database) -> AsyncIterator[Harness]:
    fake = FakeSlack()
    await fake.start()
    populate(fake)
    async with running_slack(fake, slack_settings(settings, fake), sqlite_db) as harness:
        yield harness
    await fake.close()


async def test_slack_messages_are_counted_once_and_replies_time_a_newcomer(
    slack: Harness, sqlite_db: Database
) -> None:
    async with sqlite_db.transaction() as session:
        session.add(
            HealthNewcomer(
                platform="slack", workspace_id=TEAM, user_id=MEMBER, joined_at=slack.kindred.clock()
            )
        )
    post = {
        "type": "message",
        "channel": CHANNEL,
        "channel_type": "channel",
        "user": MEMBER,
        "text": "Hello all",
        "ts": "1764000000.000100",
    }
    assert await slack.sender.event(post, team_id=TEAM, event_id="Ev1") == 200
    # Slack retries an event it thinks was not acked: the same event_id counts once.
    assert await slack.sender.event(post, team_id=TEAM, event_id="Ev1", retry_num=1) == 200
    reply = {
        **post,
        "user": ADMIN,
        "ts": "1764000100.000200",
        "thread_ts": post["ts"],
        "parent_user_id": MEMBER,
    }
    await slack.sender.event(reply, team_id=TEAM, event_id="Ev2")
    edited = {**post, "subtype": "message_changed", "ts": "1764000200.000300"}
    await slack.sender.event(edited, team_id=TEAM, event_id="Ev3")
    bot = {**post, "user": "UKINDRED", "bot_id": "B1", "ts": "1764000300.000400"}
    await slack.sender.event(bot, team_id=TEAM, event_id="Ev4")
    rows = await wait_for_activity(sqlite_db, 2)
    await asyncio.sleep(0.2)  # the edit and the bot's own message must not arrive late
    assert await activity(sqlite_db) == rows == [(ADMIN, CHANNEL, 1), (MEMBER, CHANNEL, 1)]
    async with sqlite_db.sessions() as session:
        newcomer = (await session.execute(select(HealthNewcomer))).scalar_one()
    assert newcomer.first_post_at is not None and newcomer.first_reply_at is not None


async def test_slack_report_charts_are_uploaded_with_alt_text(slack: Harness) -> None:
    # A loaded machine (or a cold matplotlib font cache) can take seconds.
    answer = await slack.command("report week", user=ADMIN, within=30)
    assert "Community health, last week" in answer["text"]
    await slack.drain()
    fake = slack.fake
    assert len(fake.calls_to("files.getUploadURLExternal")) == 2
    completed = fake.calls_to("files.completeUploadExternal")
    assert len(completed) == 2
    shared = [m for m in fake.messages(TEAM, f"D{ADMIN}") if m.get("files")]
    assert len(shared) == 2
    for message in shared:
        (file,) = message["files"]
        assert fake.uploads[file["id"]].startswith(PNG_MAGIC)
        assert len(fake.uploads[file["id"]]) <= 300_000
        assert file["alt_txt"].startswith(("Line chart", "Bar chart"))
        assert message["text"] == file["alt_txt"]


def test_slack_subscribes_to_message_events_for_the_health_report() -> None:
    from bot.adapters.slack import BOT_EVENTS

    assert {"message.channels", "message.groups"} <= set(BOT_EVENTS)


# --- Discord -------------------------------------------------------------------------------


def test_counting_messages_needs_no_message_content_intent() -> None:
    registry = Registry.merge([health_commands.handlers])
    intents = gateway_intents(registry)
    assert intents.guild_messages and not intents.message_content
    assert "Message Content Intent" not in privileged_needs(registry)


@pytest.fixture
async def discord_fake() -> AsyncIterator[FakeDiscord]:
    server = FakeDiscord()
    server.add_guild(
        "CX Guild",
        members=[Member(ANA, "Ana", admin=True), Member(BOB, "Bob")],
        channels=[Channel(GENERAL, "general")],
        guild_id=GUILD,
    )
    await server.start()
    yield server
    await server.stop()


async def test_discord_messages_are_counted_and_charts_sent_as_attachments(
    discord_fake: FakeDiscord, settings: Settings, sqlite_db: Database, clock: Clock
) -> None:
    fake = discord_fake
    configured = discord_settings_for(settings, fake, sqlite_db)
    kindred = Kindred(configured, sqlite_db, clock=clock, features=declared_features())
    async with serving(kindred, configured):
        parent = fake.seed_message(GENERAL, "Hi, I am new", BOB)
        message = fake.message_payload(GENERAL, {"content": ""}, [])
        message["author"] = fake.guilds[GUILD].members[ANA].user()
        message["member"] = fake.guilds[GUILD].members[ANA].member(GUILD, with_user=False)
        message["referenced_message"] = fake.messages[parent]
        message["message_reference"] = {"message_id": str(parent), "channel_id": str(GENERAL)}
        message["type"] = 19  # a reply
        await fake.dispatch("MESSAGE_CREATE", message)
        await fake.dispatch("MESSAGE_CREATE", message)  # a re-delivery after a resume
        assert await wait_for_activity(sqlite_db, 1) == [(str(ANA), str(GENERAL), 1)]

        interaction = await fake.command(GUILD, GENERAL, ANA, ("report", "show"), [])
        # Answered at once, or deferred ("thinking…") and then answered when a loaded
        # machine (or a cold matplotlib font cache) makes the first charts slow.
        await fake.wait_until(
            lambda: "Community health" in str(interaction.answers), "the report", seconds=30
        )
        await kindred.dispatcher.drain()
        dm_channel = fake.dm_channels[ANA]
        charts = [s for s in fake.sent if s.channel_id == dm_channel and s.files]
        assert [s.files for s in charts] == [
            ["health-month-daily.png"],
            ["health-month-activation.png"],
        ]
        for chart in charts:
            (description,) = chart.descriptions
            assert description and description.startswith(("Line chart", "Bar chart"))
