"""Reaction nomination through the real adapters: Slack (bolt over signed HTTP) and
Discord (discord.py against the fake gateway), each against its local fake, with
the curation feature as registered in production."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from sqlalchemy import select

from bot.core.app import Kindred
from bot.core.settings import Settings
from bot.services.curation_titles import TitleResult, title_fetches
from storage.curation import CuratedItem
from storage.db import Database
from storage.models import ProcessedEvent
from tests.bot.adapters.slack_harness import (
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


class Offline:
    async def fetch(self, url: str) -> TitleResult:
        return TitleResult(None, retry=False, reason="offline")


async def library(db: Database) -> list[tuple[str, int, str | None]]:
    async with db.sessions() as session:
        rows = (await session.execute(select(CuratedItem).order_by(CuratedItem.id))).scalars()
        return [(item.url, item.vote_count, item.source_message_id) for item in rows]


async def handled(db: Database, event_id: str) -> bool:
    """Whether the curation feature has acted on (or deliberately ignored) the event."""
    async with db.sessions() as session:
        keys = (await session.execute(select(ProcessedEvent.key))).scalars()
        return any(event_id in key and key.endswith("curation.curate_by_reaction") for key in keys)


async def until(condition: Callable[[], Awaitable[bool]], what: str) -> None:
    deadline = time.monotonic() + 5
    while not await condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)


async def test_slack_reactions_nominate_and_vote(settings: Settings, sqlite_db: Database) -> None:
    fake = FakeSlack()
    await fake.start()
    populate(fake)
    fake.add_channel(TEAM, "CSECRET", [MEMBER, "UKINDRED"], is_private=True)
    public_ts, secret_ts, plain_ts = "1700000000.000001", "1700000000.000002", "1700000000.000003"
    fake.messages(TEAM, CHANNEL).append(
        {"ts": public_ts, "text": "Must read <https://Example.com/a/?utm_source=slack|this>"}
    )
    fake.messages(TEAM, "CSECRET").append({"ts": secret_ts, "text": "https://secret.example/x"})
    fake.messages(TEAM, CHANNEL).append({"ts": plain_ts, "text": "No link, just cheer"})
    try:
        async with running_slack(fake, slack_settings(settings, fake), sqlite_db) as slack:
            title_fetches(slack.kindred).fetcher = Offline()

            async def react(user: str, channel: str, ts: str, event_id: str) -> None:
                event = {
                    "type": "reaction_added",
                    "user": user,
                    "reaction": "pushpin",
                    "item": {"type": "message", "channel": channel, "ts": ts},
                    "item_user": "UBEN",
                }
                await slack.sender.event(event, team_id=TEAM, event_id=event_id)

            await react(MEMBER, CHANNEL, public_ts, "EvPin1")
            await until(lambda: _has_votes(sqlite_db, 1), "the nomination")
            # Slack retries the same event: it counts once. Ben's pin is a vote.
            await react(MEMBER, CHANNEL, public_ts, "EvPin1")
            await react("UBEN", CHANNEL, public_ts, "EvPin2")
            await react(MEMBER, "CSECRET", secret_ts, "EvPin3")
            await react(MEMBER, CHANNEL, plain_ts, "EvPin4")
            for event_id in ("EvPin2", "EvPin3", "EvPin4"):
                await until(lambda e=event_id: handled(sqlite_db, e), event_id)
            answer = await slack.command("curate top")
            await title_fetches(slack.kindred).wait_idle()
            await slack.drain()
            # The nominator is thanked by DM (Slack has no reply to a reaction); Ben's
            # vote and the retried event send nothing.
            confirmations = [
                call.params["channel"]
                for call in fake.calls_to("chat.postMessage")
                if "Saved to the community library" in str(call.params.get("text", ""))
            ]
            assert confirmations == [MEMBER]
    finally:
        await fake.close()
    assert await library(sqlite_db) == [("https://example.com/a", 2, public_ts)]
    assert "Must read this" in str(answer) and "https://example.com/a" in str(answer)


async def _has_votes(db: Database, votes: int) -> bool:
    return [row[1] for row in await library(db)] == [votes]


GUILD = 1_200_000_000_000_000_001
GENERAL = 1_200_000_000_000_000_010
ORGANISERS = 1_200_000_000_000_000_012
ANA, BOB, CAROL = 1_200_000_000_000_000_101, 1_200_000_000_000_000_102, 1_200_000_000_000_000_103


@contextlib.asynccontextmanager
async def discord_running(
    settings: Settings, db: Database, clock: Clock
) -> AsyncIterator[tuple[FakeDiscord, Kindred]]:
    fake = FakeDiscord()
    fake.add_guild(
        "CX Guild",
        members=[Member(ANA, "Ana", admin=True), Member(BOB, "Bob"), Member(CAROL, "Carol")],
        channels=[Channel(GENERAL, "general"), Channel(ORGANISERS, "organisers", private=True)],
        guild_id=GUILD,
    )
    await fake.start()
    configured = discord_settings_for(settings, fake, db)
    kindred = Kindred(configured, db, clock=clock)
    title_fetches(kindred).fetcher = Offline()
    try:
        async with serving(kindred, configured):
            yield fake, kindred
    finally:
        await title_fetches(kindred).wait_idle()
        await fake.stop()


async def test_discord_reactions_nominate_and_vote(
    settings: Settings, sqlite_db: Database, clock: Clock
) -> None:
    async with discord_running(settings, sqlite_db, clock) as (fake, _kindred):
        public = fake.seed_message(GENERAL, "Read https://example.org/cx?fbclid=1 now", BOB)
        secret = fake.seed_message(ORGANISERS, "https://secret.example/plans", ANA)

        async def react(user: int, channel: int, message: int, emoji: str) -> None:
            reaction: dict[str, Any] = {
                "user_id": str(user),
                "channel_id": str(channel),
                "message_id": str(message),
                "guild_id": str(GUILD),
                "emoji": {"id": None, "name": emoji},
                "member": fake.guilds[GUILD].members[user].member(GUILD),
                "burst": False,
                "type": 0,
            }
            await fake.dispatch("MESSAGE_REACTION_ADD", reaction)

        await react(CAROL, GENERAL, public, "📌")
        await until(lambda: _has_votes(sqlite_db, 1), "the nomination")
        await react(ANA, GENERAL, public, "📌")
        await react(BOB, GENERAL, public, "👀")
        await react(CAROL, ORGANISERS, secret, "📌")
        for event_id in (f"{public}:{ANA}:📌", f"{public}:{BOB}:👀", f"{secret}:{CAROL}:📌"):
            await until(lambda e=event_id: handled(sqlite_db, e), event_id)
    ((url, votes, message_id),) = await library(sqlite_db)
    assert (url, votes, message_id) == ("https://example.org/cx", 2, str(public))
