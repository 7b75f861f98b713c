"""Runs the real Slack adapter over real HTTP against the local fake Slack."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from typing import Any

from aiohttp import ClientSession

from bot.adapters.slack import EVENTS_PATH, SlackAdapter
from bot.core.app import Kindred
from bot.core.feature import Feature
from bot.core.registry import Handlers
from bot.core.settings import Secret, Settings
from storage.db import Database
from tests.fakes.slack import SIGNING_SECRET, FakeSlack, Sender, slash_command

TEAM = "T1"
TOKEN = "xoxb-team-one"
ADMIN = "UADMIN"
MEMBER = "UANA"
CHANNEL = "CGENERAL"


@dataclass
class Harness:
    fake: FakeSlack
    adapter: SlackAdapter
    kindred: Kindred
    session: ClientSession
    sender: Sender

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.adapter.port}"

    async def command(self, text: str, *, within: float = 5.0, **options: Any) -> dict[str, Any]:
        """Send `/kindred <text>` and return what the app posted to the response_url."""
        return await self.response(await self.send_command(text, **options), within)

    async def send_command(
        self,
        text: str,
        *,
        user: str = MEMBER,
        team: str = TEAM,
        channel: str = CHANNEL,
    ) -> str:
        """Send `/kindred <text>`, check the ack, and return the response_url's key."""
        key = uuid.uuid4().hex
        body = slash_command(
            text,
            team_id=team,
            user_id=user,
            channel_id=channel,
            response_url=self.fake.response_url(key),
        )
        status, answer = await self.sender.post(body)
        assert (status, answer) == (200, "")
        return key

    async def response(self, key: str, within: float = 5.0) -> dict[str, Any]:
        def posted() -> dict[str, Any] | None:
            return next((body for k, body in self.fake.responses if k == key), None)

        return await self.fake.wait_for(posted, within)

    async def drain(self) -> None:
        """Deliver everything the outbox owes."""
        await self.kindred.dispatcher.drain()


def slack_settings(settings: Settings, fake: FakeSlack, **changes: Any) -> Settings:
    return replace(
        settings,
        slack_bot_token=Secret(TOKEN),
        slack_signing_secret=Secret(SIGNING_SECRET),
        slack_api_url=fake.api_url,
        http_host="127.0.0.1",
        http_port=0,
        **changes,
    )


def populate(fake: FakeSlack) -> None:
    fake.add_workspace(TEAM, TOKEN, name="CX Guild")
    fake.add_user(TEAM, ADMIN, "olga", is_admin=True)
    fake.add_user(TEAM, MEMBER, "ana")
    fake.add_user(TEAM, "UBEN", "ben", tz="America/New_York")
    fake.add_channel(TEAM, CHANNEL, [ADMIN, MEMBER, "UBEN", "UKINDRED"])


@asynccontextmanager
async def running_slack(
    fake: FakeSlack,
    settings: Settings,
    db: Database,
    *,
    features: Sequence[Feature] | None = None,
    extra_handlers: Sequence[Handlers] = (),
    pace: float = 50.0,
    clock: Any = None,
) -> AsyncIterator[Harness]:
    options: dict[str, Any] = {"features": features, "extra_handlers": extra_handlers}
    if clock is not None:
        options["clock"] = clock
    kindred = Kindred(replace(settings, database_url=str(db.url)), db, **options)
    adapter = SlackAdapter(kindred, settings, pace=pace)
    session = ClientSession()
    try:
        await adapter.start()
        sender = Sender(f"http://127.0.0.1:{adapter.port}{EVENTS_PATH}", session)
        yield Harness(fake, adapter, kindred, session, sender)
    finally:
        await session.close()
        await adapter.stop()
