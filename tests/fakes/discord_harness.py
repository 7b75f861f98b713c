"""Runs the real Discord adapter against the fake Discord (tests only)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import replace

from bot.adapters.discord import DiscordService
from bot.core.app import Kindred
from bot.core.settings import Secret, Settings
from storage.db import Database
from tests.fakes.discord_server import FakeDiscord


def discord_settings_for(settings: Settings, fake: FakeDiscord, db: Database) -> Settings:
    """`settings` pointed at the fake Discord and at `db`."""
    return replace(
        settings,
        database_url=str(db.url),
        discord_bot_token=Secret(fake.token),
        discord_api_url=fake.api_url,
        discord_gateway_url=fake.gateway_url,
    )


@contextlib.asynccontextmanager
async def serving(kindred: Kindred, settings: Settings) -> AsyncIterator[DiscordService]:
    """Run the service until the client is ready; stop it (as Ctrl-C would) afterwards."""
    service = DiscordService(kindred, settings, guild_ready_timeout=0.05)
    task = asyncio.create_task(service.run())
    ready = asyncio.create_task(service.ready.wait())
    done, _ = await asyncio.wait({task, ready}, timeout=10, return_when=asyncio.FIRST_COMPLETED)
    if task in done:
        ready.cancel()
        task.result()
    assert ready in done, "the Discord client did not become ready"
    try:
        yield service
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
