"""Mentorship through the real adapters, each against its local fake: Slack (bolt
over signed HTTP, Web API fake) and Discord (discord.py against the fake REST and
gateway). One story on each: offer, request, a round, approval, the intro in a group
conversation, the day-14 check-in with the clock advanced, "not a fit" (a no-fault
ending), feedback through the form, a re-match with the other mentor, and an ending
by command."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from bot.core.app import Kindred
from bot.core.settings import Settings
from storage.db import Database
from storage.mentor import MentorFeedback, Mentorship
from tests.bot.adapters.slack_harness import (
    ADMIN,
    MEMBER,
    TEAM,
    Harness,
    populate,
    running_slack,
    slack_settings,
)
from tests.conftest import Clock
from tests.fakes.discord_harness import discord_settings_for, serving
from tests.fakes.discord_server import Channel, FakeDiscord, Member, Sent
from tests.fakes.slack import FakeSlack, block_action_payload, interactive, view_submission

MENTEE = "UBEN"
SECOND_MENTOR = "UCARA"


async def mentorships(db: Database) -> list[Mentorship]:
    async with db.sessions() as session:
        return list((await session.execute(select(Mentorship).order_by(Mentorship.id))).scalars())


async def feedback_rows(db: Database) -> list[MentorFeedback]:
    async with db.sessions() as session:
        return list((await session.execute(select(MentorFeedback))).scalars())


# --- Slack ------------------------------------------------------------------------


@pytest.fixture
async def slack(settings: Settings, sqlite_db: Database, clock: Clock) -> AsyncIterator[Harness]:
    fake = FakeSlack()
    await fake.start()
    populate(fake)
    fake.add_user(TEAM, SECOND_MENTOR, "cara", tz="Europe/Madrid")
    try:
        async with running_slack(
            fake, slack_settings(settings, fake), sqlite_db, clock=clock
        ) as harness:
            yield harness
    finally:
        await fake.close()


def slack_dms(fake: FakeSlack, user: str) -> list[dict[str, Any]]:
    return [
        message
        for channel in fake.channels_of(TEAM, im=True)
        if user in channel["members"]
        for message in channel["messages"]
    ]


def slack_button(fake: FakeSlack, user: str, label: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The latest DM to `user` with a button labelled `label`, and that button."""
    for message in reversed(slack_dms(fake, user)):
        for block in message["blocks"]:
            for element in block.get("elements", []) if block["type"] == "actions" else []:
                if element["text"]["text"] == label:
                    return message, element
    raise AssertionError(f"no {label!r} button in {user}'s DMs")


async def slack_press(slack: Harness, user: str, label: str) -> dict[str, Any]:
    message, element = slack_button(slack.fake, user, label)
    key = uuid.uuid4().hex
    channel = next(
        c["id"]
        for c in slack.fake.channels_of(TEAM, im=True)
        if user in c["members"] and message in c["messages"]
    )
    payload = block_action_payload(
        {key: element[key] for key in ("action_id", "value", "type")},
        team_id=TEAM,
        user_id=user,
        channel_id=channel,
        message_ts=message["ts"],
        response_url=slack.fake.response_url(key),
    )
    status, _ = await slack.sender.post(interactive(payload))
    assert status == 200
    return await slack.response(key)


async def test_slack_mentorship_from_offer_to_rematch(
    slack: Harness, sqlite_db: Database, clock: Clock
) -> None:
    fake = slack.fake
    assert "created" in (await slack.command("mentor setup", user=ADMIN))["text"]
    await slack.command("profile set company=Globex seniority=senior", user=MEMBER)
    offered = await slack.command('mentor offer topics="NPS, hiring" capacity=1', user=MEMBER)
    assert "Up to 1 mentee at once" in offered["text"]
    await slack.command("profile set company=Umbrella seniority=lead", user=SECOND_MENTOR)
    await slack.command("mentor offer topics=NPS", user=SECOND_MENTOR)
    await slack.command("profile set company=Initech seniority=junior", user=MENTEE)
    asked = await slack.command(
        'mentor request goal="Run our first NPS survey" topics="NPS, hiring"', user=MENTEE
    )
    assert "looking for a mentor" in asked["text"]
    ran = await slack.command("mentor run-now", user=ADMIN)
    assert ran["text"].startswith("Round run: 1 of 1 open request matched")
    await slack.drain()
    (first,) = await mentorships(sqlite_db)
    mentor = first.mentor_user_id
    (proposal,) = slack_dms(fake, mentor)
    assert "Would you mentor @ben?" in proposal["text"]
    assert slack_dms(fake, MENTEE) == []

    accepted = await slack_press(slack, mentor, "Accept")
    assert accepted["replace_original"] is True and "Accepted" in accepted["text"]
    await slack.drain()
    (group,) = fake.channels_of(TEAM, mpim=True)
    assert sorted(group["members"]) == sorted([mentor, MENTEE, "UKINDRED"])
    (intro,) = group["messages"]
    assert "meet your mentee <@UBEN>" in intro["text"] and "A first agenda" in intro["text"]

    clock.advance(days=13)
    await slack.kindred.scheduler.catch_up()
    await slack.drain()
    assert not any("check-in" in m["text"] for m in slack_dms(fake, MENTEE))
    clock.advance(days=1)
    await slack.kindred.scheduler.catch_up()
    await slack.drain()
    assert any("Day 14 check-in" in m["text"] for m in slack_dms(fake, MENTEE))
    assert any("Day 14 check-in" in m["text"] for m in slack_dms(fake, mentor))

    not_fit = await slack_press(slack, MENTEE, "Not a fit")
    assert "no fault" in not_fit["text"]
    await slack.drain()
    await slack_press_modal(
        slack, MENTEE, {"rating": "2", "text": "Different goals", "recommend": "no"}
    )
    (given,) = await feedback_rows(sqlite_db)
    assert (given.rating, given.text, given.recommend) == (2, "Different goals", False)

    rematched = await slack_press(slack, MENTEE, "Find me another mentor")
    assert "asked a mentor who fits" in rematched["text"]
    await slack.drain()
    second = (await mentorships(sqlite_db))[-1]
    assert second.mentor_user_id != mentor and second.status == "proposed"
    await slack_press(slack, second.mentor_user_id, "Accept")
    await slack.drain()
    assert len(fake.channels_of(TEAM, mpim=True)) == 2
    ended = await slack.command("mentor end", user=MENTEE)
    assert "Ended your mentorship with <@" in ended["text"]
    await slack.drain()
    assert any("has ended" in m["text"] for m in slack_dms(fake, second.mentor_user_id))
    statuses = [m.status for m in await mentorships(sqlite_db)]
    assert statuses == ["ended", "ended"]


async def slack_press_modal(slack: Harness, user: str, values: dict[str, str]) -> None:
    """Press "Give feedback", then submit the form Slack opened."""
    opened = len(slack.fake.opened_views)
    message, element = slack_button(slack.fake, user, "Give feedback")
    payload = block_action_payload(
        {key: element[key] for key in ("action_id", "value", "type")},
        team_id=TEAM,
        user_id=user,
        channel_id=None,
        message_ts=message["ts"],
        response_url=None,
    )
    await slack.sender.post(interactive(payload))
    view = (await slack.fake.wait_for(lambda: slack.fake.opened_views[opened:]))[0]
    assert view["callback_id"] == "kindred:mentor.feedback_submit"
    status, _ = await slack.sender.post(view_submission(view, values, team_id=TEAM, user_id=user))
    assert status == 200
    for _ in range(100):
        if await feedback_rows(slack.kindred.db):
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the feedback form was not saved")


# --- Discord ----------------------------------------------------------------------

GUILD = 1_300_000_000_000_000_001
MENTORING = 1_300_000_000_000_000_010
ANA, BOB, CAROL = 1_300_000_000_000_000_101, 1_300_000_000_000_000_102, 1_300_000_000_000_000_103


@pytest.fixture
async def discord(
    settings: Settings, sqlite_db: Database, clock: Clock
) -> AsyncIterator[tuple[FakeDiscord, Kindred]]:
    fake = FakeDiscord()
    fake.add_guild(
        "CX Guild",
        members=[Member(ANA, "Ana", admin=True), Member(BOB, "Bob"), Member(CAROL, "Carol")],
        channels=[Channel(MENTORING, "mentoring")],
        guild_id=GUILD,
    )
    await fake.start()
    configured = discord_settings_for(settings, fake, sqlite_db)
    kindred = Kindred(configured, sqlite_db, clock=clock)
    try:
        async with serving(kindred, configured):
            yield fake, kindred
    finally:
        await fake.stop()


def text_option(name: str, value: str) -> dict[str, Any]:
    return {"name": name, "type": 3, "value": value}


async def discord_say(
    fake: FakeDiscord, user: int, path: tuple[str, ...], **options: str | int
) -> str:
    typed = [
        {"name": name, "type": 4, "value": value}
        if isinstance(value, int)
        else text_option(name, value)
        for name, value in options.items()
    ]
    answers = await fake.answered(await fake.command(GUILD, MENTORING, user, path, typed))
    return str(answers[-1][2]["content"])


def discord_dms(fake: FakeDiscord, user: int) -> list[Sent]:
    channel = fake.dm_channels.get(user)
    return [] if channel is None else [s for s in fake.sent if s.channel_id == channel]


def discord_button(fake: FakeDiscord, user: int, action_id: str) -> tuple[Sent, str]:
    for sent in reversed(discord_dms(fake, user)):
        for custom_id in sent.custom_ids:
            if f":{action_id}:" in custom_id:
                return sent, custom_id
    raise AssertionError(f"no {action_id} button in {user}'s DMs")


async def discord_press(fake: FakeDiscord, user: int, action_id: str) -> list[tuple[Any, ...]]:
    sent, custom_id = discord_button(fake, user, action_id)
    return await fake.answered(await fake.click(sent.message_id, custom_id, user))


async def settle(kindred: Kindred) -> None:
    async with asyncio.timeout(10):
        await kindred.dispatcher.drain()


async def test_discord_mentorship_from_offer_to_rematch(
    discord: tuple[FakeDiscord, Kindred], sqlite_db: Database, clock: Clock
) -> None:
    fake, kindred = discord
    assert "created" in await discord_say(fake, ANA, ("mentor", "setup"))
    await discord_say(fake, ANA, ("profile", "set"), company="Globex", seniority="senior")
    assert "Up to 1 mentee" in await discord_say(
        fake, ANA, ("mentor", "offer"), topics="NPS, hiring", capacity=1
    )
    await discord_say(fake, CAROL, ("profile", "set"), company="Umbrella", seniority="lead")
    await discord_say(fake, CAROL, ("mentor", "offer"), topics="NPS")
    await discord_say(fake, BOB, ("profile", "set"), company="Initech", seniority="junior")
    asked = await discord_say(
        fake, BOB, ("mentor", "request"), goal="Run our first NPS survey", topics="NPS, hiring"
    )
    assert "looking for a mentor" in asked
    assert (await discord_say(fake, ANA, ("mentor", "run-now"))).startswith("Round run: 1 of 1")
    await settle(kindred)
    (first,) = await mentorships(sqlite_db)
    mentor = int(first.mentor_user_id)
    (proposal,) = discord_dms(fake, mentor)
    assert f"Would you mentor <@{BOB}>?" in proposal.content
    assert proposal.allowed_mentions is not None and proposal.allowed_mentions["parse"] == []

    answers = await discord_press(fake, mentor, "mentor.accept")
    assert "Accepted" in answers[0][2]["content"]
    await settle(kindred)
    (thread,) = fake.threads.values()
    assert thread.private and thread.parent_id == MENTORING
    assert sorted(thread.members[1:]) == sorted([mentor, BOB])
    (intro,) = [s for s in fake.sent if s.channel_id == thread.thread_id]
    assert f"meet your mentee <@{BOB}>" in intro.content
    assert intro.allowed_mentions is not None
    assert set(intro.allowed_mentions["users"]) == {mentor, BOB}

    clock.advance(days=14)
    await kindred.scheduler.catch_up()
    await settle(kindred)
    assert any("Day 14 check-in" in s.content for s in discord_dms(fake, BOB))
    answers = await discord_press(fake, BOB, "mentor.checkin_not_fit")
    assert "no fault" in answers[0][2]["content"]
    await settle(kindred)

    sent, custom_id = discord_button(fake, BOB, "mentor.feedback")
    opened = await fake.answered(await fake.click(sent.message_id, custom_id, BOB))
    assert opened[0][:2] == ("callback", 9)
    form = opened[0][2]
    submitted = await fake.submit(
        form["custom_id"],
        {"rating": "3", "text": "Kind, not my topic", "recommend": "yes"},
        BOB,
        guild_id=None,
        channel_id=sent.channel_id,
        message_id=sent.message_id,
    )
    assert "Your feedback is private" in (await fake.answered(submitted))[0][2]["content"]
    (given,) = await feedback_rows(sqlite_db)
    assert (given.rating, given.recommend) == (3, True)

    answers = await discord_press(fake, BOB, "mentor.rematch")
    assert "asked a mentor who fits" in answers[0][2]["content"]
    await settle(kindred)
    second = (await mentorships(sqlite_db))[-1]
    assert int(second.mentor_user_id) != mentor
    await discord_press(fake, int(second.mentor_user_id), "mentor.accept")
    await settle(kindred)
    assert len(fake.threads) == 2
    ended = await discord_say(fake, BOB, ("mentor", "end"), why="done")
    assert "no fault" in ended
    await settle(kindred)
    assert [m.status for m in await mentorships(sqlite_db)] == ["ended", "ended"]
    assert clock.now - first.proposed_at >= timedelta(days=14)
