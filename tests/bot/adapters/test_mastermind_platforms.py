"""Mastermind groups through the real adapters: on Slack (signed HTTP requests to
the adapter, the Web API fake) a cycle forms into a group DM, and on Discord (the
unmodified client against the fake REST + gateway) into a private thread; in both
the agenda's buttons and forms work, updates are posted without pinging anyone,
and the commitment made after a session is asked about at the next one."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest

from bot.adapters.discord_render import encode_custom_id
from bot.core.app import Kindred
from bot.core.settings import Settings
from storage.db import Database
from tests.bot.adapters.slack_harness import (
    ADMIN,
    MEMBER,
    TEAM,
    Harness,
    populate,
    running_slack,
    slack_settings,
)
from tests.bot.mastermind_helpers import FIRST_SESSION, FORM_AT
from tests.conftest import Clock
from tests.fakes.discord_harness import discord_settings_for, serving
from tests.fakes.discord_server import Channel, FakeDiscord, Member, Sent
from tests.fakes.slack import FakeSlack, block_action_payload, interactive, view_submission

SETUP = 'mastermind setup name="CX leaders" deadline=2026-11-27 size=3-4 sessions=2'
CHALLENGE = "Scale support without burning out <!channel> @everyone"


# --- Slack ---------------------------------------------------------------------------

SLACK_PEOPLE = {
    ADMIN: ("Olgaco", "Europe/Berlin", "Tue 17:00-19:00"),
    MEMBER: ("Acme", "Europe/Berlin", "Tue 17:00-19:00"),
    "UBEN": ("Globex", "America/New_York", "Tue 11:00-13:00"),
    "UCAT": ("Initech", "Europe/Berlin", "Tue 16:00-20:00"),
}


@pytest.fixture
async def slack(settings: Settings, sqlite_db: Database, clock: Clock) -> AsyncIterator[Harness]:
    fake = FakeSlack()
    await fake.start()
    populate(fake)
    fake.add_user(TEAM, "UCAT", "cat")
    try:
        async with running_slack(
            fake, slack_settings(settings, fake), sqlite_db, clock=clock
        ) as harness:
            yield harness
    finally:
        await fake.close()


async def slack_answer(slack: Harness, text: str, user: str) -> str:
    return str((await slack.command(text, user=user))["text"])


async def slack_click(
    slack: Harness, channel: str, message: dict[str, Any], label: str, user: str
) -> str:
    """Press the button labelled `label` on a message; returns the response key."""
    actions = next(block for block in message["blocks"] if block["type"] == "actions")
    element = next(e for e in actions["elements"] if e["text"]["text"] == label)
    key = uuid.uuid4().hex
    payload = block_action_payload(
        {key_: element[key_] for key_ in ("action_id", "value", "type")},
        team_id=TEAM,
        user_id=user,
        channel_id=channel,
        message_ts=message["ts"],
        response_url=slack.fake.response_url(key),
    )
    status, _ = await slack.sender.post(interactive(payload))
    assert status == 200
    return key


async def slack_tick(slack: Harness, clock: Clock, moment: Any) -> None:
    clock.now = moment
    await slack.kindred.scheduler.catch_up()
    await slack.drain()


async def test_a_cycle_on_slack_forms_a_group_dm_and_runs_its_sessions(
    slack: Harness, clock: Clock
) -> None:
    for user, (company, zone, _) in SLACK_PEOPLE.items():
        await slack_answer(slack, f"profile set company={company} timezone={zone}", user)
    assert "is open for applications" in await slack_answer(slack, SETUP, ADMIN)
    for user, (_, _, slots) in SLACK_PEOPLE.items():
        applied = await slack_answer(
            slack,
            f'mastermind apply challenge="{CHALLENGE}" tags="support ops" slots="{slots}"',
            user,
        )
        assert "You've applied" in applied
    clock.now = FORM_AT
    assert "Formed 1 group (4 members)" in await slack_answer(slack, "mastermind form", ADMIN)
    await slack.drain()

    (group,) = slack.fake.channels_of(TEAM, mpim=True)
    assert sorted(group["members"]) == sorted([*SLACK_PEOPLE, "UKINDRED"])
    (intro,) = group["messages"]
    assert "Welcome to your mastermind group" in intro["text"]
    # Member text is escaped: no channel ping, no @everyone.
    assert "&lt;!channel&gt;" in intro["text"] and "<!channel>" not in intro["text"]
    assert f"<@{MEMBER}>" in intro["text"]  # the bot's own mention of each member
    assert "Tue 1 Dec, 11:00 (America/New_York)" in intro["text"]

    await slack_tick(slack, clock, FIRST_SESSION - timedelta(hours=24))
    agenda = group["messages"][-1]
    assert "Session 1 of 2, tomorrow" in agenda["text"]
    assert f"Hot seat: <@{ADMIN}>" in agenda["text"]
    await slack_click(slack, group["id"], agenda, "Post my update", MEMBER)
    (form,) = await slack.fake.wait_for(lambda: slack.fake.opened_views)
    assert form["callback_id"] == "kindred:mastermind.update_submit"
    body = view_submission(
        form, {"update": "Macros shipped <!here>\nNext: the rota"}, team_id=TEAM, user_id=MEMBER
    )
    assert await slack.sender.post(body) == (200, "")
    await slack.fake.wait_for(lambda: slack.fake.ephemerals)
    assert "update for session 1 is posted" in slack.fake.ephemerals[-1]["text"]
    await slack.drain()
    update = group["messages"][-1]
    assert "Update from" in update["text"] and "&lt;!here&gt;" in update["text"]

    await slack_tick(slack, clock, FIRST_SESSION + timedelta(hours=3))
    followup = group["messages"][-1]
    assert "Session 1 is done" in followup["text"]
    key = await slack_click(slack, group["id"], followup, "I was there", "UBEN")
    answer = await slack.response(key)
    assert answer["text"] == "Marked: you were at session 1."
    committed = await slack_answer(slack, "mastermind commit call two peers", "UBEN")
    assert "by next time you will call two peers" in committed

    await slack_tick(slack, clock, FIRST_SESSION + timedelta(days=6))
    second = group["messages"][-1]
    assert "Session 2 of 2" in second["text"]
    assert "<@UBEN>: call two peers" in second["text"]
    assert f"Hot seat: <@{MEMBER}>" in second["text"]
    status = await slack_answer(slack, "mastermind stats", ADMIN)
    assert "Session 1: attended 1/4, updates 1/4, commitments 1 (followed up 1, kept 0)" in status


# --- Discord -------------------------------------------------------------------------

GUILD = 1_300_000_000_000_000_001
MASTER = 1_300_000_000_000_000_010
ANA, BOB, CAROL, DAN = (1_300_000_000_000_000_100 + k for k in range(1, 5))
DISCORD_PEOPLE = {
    ANA: ("Acme", "Europe/Berlin", "Tue 17:00-19:00"),
    BOB: ("Globex", "America/New_York", "Tue 11:00-13:00"),
    CAROL: ("Initech", "Europe/Berlin", "Tue 17:00-18:30"),
    DAN: ("Umbrella", "Europe/Berlin", "Tue 16:30-19:00"),
}


@pytest.fixture
async def discord_fake() -> AsyncIterator[FakeDiscord]:
    server = FakeDiscord()
    server.add_guild(
        "CX Guild",
        members=[
            Member(ANA, "Ana", admin=True),
            Member(BOB, "Bob"),
            Member(CAROL, "Carol"),
            Member(DAN, "Dan"),
        ],
        channels=[Channel(MASTER, "masterminds")],
        guild_id=GUILD,
    )
    await server.start()
    yield server
    await server.stop()


def text(name: str, value: str) -> dict[str, Any]:
    return {"name": name, "type": 3, "value": value}


async def discord_answer(
    fake: FakeDiscord, user: int, path: tuple[str, ...], options: list[dict[str, Any]]
) -> str:
    answers = await fake.answered(await fake.command(GUILD, MASTER, user, path, options))
    return str(answers[-1][2]["content"])


def thread_messages(fake: FakeDiscord) -> list[Sent]:
    """What the bot posted in the groups' threads (not its answers to interactions)."""
    return [s for s in fake.sent if s.channel_id in fake.threads and s.via == "channel"]


async def test_a_cycle_on_discord_forms_a_private_thread_and_runs_its_sessions(
    settings: Settings, sqlite_db: Database, clock: Clock, discord_fake: FakeDiscord
) -> None:
    fake = discord_fake
    discord_settings = discord_settings_for(settings, fake, sqlite_db)
    kindred = Kindred(discord_settings, sqlite_db, clock=clock)
    async with serving(kindred, discord_settings):
        for user, (company, zone, _) in DISCORD_PEOPLE.items():
            await discord_answer(
                fake, user, ("profile", "set"), [text("company", company), text("timezone", zone)]
            )
        setup = [
            text("name", "CX leaders"),
            text("deadline", "2026-11-27"),
            text("size", "3-4"),
            {"name": "sessions", "type": 4, "value": 2},
        ]
        assert "is open for applications" in await discord_answer(
            fake, ANA, ("mastermind", "setup"), setup
        )
        for user, (_, _, slots) in DISCORD_PEOPLE.items():
            applied = await discord_answer(
                fake,
                user,
                ("mastermind", "apply"),
                [text("challenge", CHALLENGE), text("tags", "support ops"), text("slots", slots)],
            )
            assert "You've applied" in applied
        clock.now = FORM_AT
        formed = await discord_answer(fake, ANA, ("mastermind", "form"), [])
        assert "Formed 1 group (4 members)" in formed
        await fake.wait_until(lambda: len(thread_messages(fake)) == 1, "the group's intro")
        (thread,) = fake.threads.values()
        assert thread.private and not thread.invitable and thread.parent_id == MASTER
        assert sorted(thread.members[1:]) == sorted(DISCORD_PEOPLE)
        (intro,) = thread_messages(fake)
        assert "Welcome to your mastermind group" in intro.content
        assert "@\u200beveryone" in intro.content
        assert intro.allowed_mentions is not None and intro.allowed_mentions["parse"] == []
        assert sorted(intro.allowed_mentions["users"]) == sorted(DISCORD_PEOPLE)

        clock.now = FIRST_SESSION - timedelta(hours=24)
        await kindred.scheduler.catch_up()
        await fake.wait_until(lambda: len(thread_messages(fake)) == 2, "the agenda")
        agenda = thread_messages(fake)[-1]
        assert "Session 1 of 2, tomorrow" in agenda.content
        update_button = next(c for c in agenda.custom_ids if "mastermind.update" in c)
        opened = await fake.answered(await fake.click(agenda.message_id, update_button, BOB))
        assert opened[0][:2] == ("callback", 9)
        modal = opened[0][2]
        assert modal["custom_id"].startswith(
            encode_custom_id(str(GUILD), "mastermind.update_submit", "")[:-1]
        )
        submitted = await fake.submit(
            modal["custom_id"],
            {"update": "Macros shipped @here\nNext: the rota"},
            BOB,
            guild_id=GUILD,
            channel_id=thread.thread_id,
            message_id=agenda.message_id,
        )
        answers = await fake.answered(submitted)
        assert "update for session 1 is posted" in answers[0][2]["content"]
        await fake.wait_until(lambda: len(thread_messages(fake)) == 3, "the update")
        update = thread_messages(fake)[-1]
        assert "Update from" in update.content and "@\u200bhere" in update.content
        assert update.allowed_mentions == {"parse": []}  # nobody may be pinged

        clock.now = FIRST_SESSION + timedelta(hours=3)
        await kindred.scheduler.catch_up()
        await fake.wait_until(lambda: len(thread_messages(fake)) == 4, "the follow-up")
        followup = thread_messages(fake)[-1]
        there = next(c for c in followup.custom_ids if "mastermind.attended" in c)
        answers = await fake.answered(await fake.click(followup.message_id, there, CAROL))
        assert any("you were at session 1" in str(a) for a in answers)
        committed = await discord_answer(
            fake, CAROL, ("mastermind", "commit"), [text("text", "call two peers")]
        )
        assert "by next time you will call two peers" in committed
        await fake.wait_until(lambda: len(thread_messages(fake)) == 5, "the commitment")

        clock.now = FIRST_SESSION + timedelta(days=6)
        await kindred.scheduler.catch_up()
        await fake.wait_until(lambda: len(thread_messages(fake)) == 6, "the second agenda")
        second = thread_messages(fake)[-1]
        assert "Session 2 of 2" in second.content
        assert f"<@{CAROL}>: call two peers" in second.content
