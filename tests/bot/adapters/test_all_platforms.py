"""`kindred run --platform all`: Slack and Discord from one process and one database."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
import uuid
from pathlib import Path

from aiohttp import ClientError, ClientSession
from sqlalchemy import select

from bot.adapters.slack import EVENTS_PATH
from storage.db import Database
from storage.models import Community
from tests.bot.adapters.slack_harness import CHANNEL, MEMBER, TEAM, TOKEN, populate
from tests.fakes.discord_server import Channel, FakeDiscord, Member
from tests.fakes.slack import SIGNING_SECRET, FakeSlack, Sender, slash_command

GUILD = 1_200_000_000_000_000_001
GENERAL = 1_200_000_000_000_000_010
ANA = 1_200_000_000_000_000_101


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def wait_for_health(session: ClientSession, url: str, seconds: float = 60) -> None:
    async with asyncio.timeout(seconds):
        while True:
            try:
                async with session.get(url) as response:
                    if response.status == 200:
                        return
            except ClientError:
                pass
            await asyncio.sleep(0.1)


async def test_one_process_serves_slack_and_discord(tmp_path: Path) -> None:
    slack = FakeSlack()
    populate(slack)
    await slack.start()
    discord = FakeDiscord()
    discord.add_guild(
        "CX Guild",
        members=[Member(ANA, "Ana")],
        channels=[Channel(GENERAL, "general")],
        guild_id=GUILD,
    )
    await discord.start()
    port = free_port()
    database = tmp_path / "kindred.db"
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "DISCORD_"))}
    environment.update(
        DATABASE_URL=f"sqlite+aiosqlite:///{database}",
        SLACK_BOT_TOKEN=TOKEN,
        SLACK_SIGNING_SECRET=SIGNING_SECRET,
        SLACK_API_URL=slack.api_url,
        DISCORD_BOT_TOKEN=discord.token,
        DISCORD_API_URL=discord.api_url,
        DISCORD_GATEWAY_URL=discord.gateway_url,
        KINDRED_HTTP_HOST="127.0.0.1",
        KINDRED_HTTP_PORT=str(port),
        KINDRED_LOG_LEVEL="WARNING",
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot.core.cli",
        "run",
        "--platform",
        "all",
        cwd=tmp_path,
        env=environment,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    session = ClientSession()
    try:
        await wait_for_health(session, f"http://127.0.0.1:{port}/healthz")
        await discord.wait_until(lambda: bool(discord.sessions), "the bot to connect", seconds=60)

        key = uuid.uuid4().hex
        sender = Sender(f"http://127.0.0.1:{port}{EVENTS_PATH}", session)
        body = slash_command(
            "help",
            team_id=TEAM,
            user_id=MEMBER,
            channel_id=CHANNEL,
            response_url=slack.response_url(key),
        )
        assert await sender.post(body) == (200, "")
        answer = await slack.wait_for(
            lambda: next((posted for k, posted in slack.responses if k == key), None), 30
        )
        assert answer["text"].startswith("*Kindred commands*")

        # A one-message answer (help is long enough to be split on Discord).
        interaction = await discord.command(GUILD, GENERAL, ANA, ("profile", "show"), [])
        answers = await discord.answered(interaction, seconds=30)
        assert answers[0][2]["content"].startswith("**Profile of")
    finally:
        await session.close()
        process.send_signal(signal.SIGINT)
        async with asyncio.timeout(30):
            _, stderr = await process.communicate()
        await slack.close()
        await discord.stop()
    log = stderr.decode()
    assert process.returncode == 130, log
    assert "Traceback" not in log, log
    db = Database(f"sqlite+aiosqlite:///{database}")
    try:
        async with db.sessions() as db_session:
            communities = {
                (row.platform, row.workspace_id)
                for row in (await db_session.execute(select(Community))).scalars()
            }
    finally:
        await db.dispose()
    assert {("slack", TEAM), ("discord", str(GUILD))} <= communities
