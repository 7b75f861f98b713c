from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

from bot.adapters.console import ConsoleCommunity, ConsoleSession
from bot.core.app import Kindred
from bot.core.context import Context
from bot.core.platform import Button, Message, Reply
from bot.core.registry import Handlers
from bot.core.settings import Settings
from storage.db import Database

REPO = Path(__file__).resolve().parents[3]

SCRIPT = """\
/kindred help
/kindred help profile
/kindred profile set company=Initech timezone=america/new_york topics="VoC, NPS"
/kindred profile show
:as bob
/kindred profile show @alice
/kindred profile set timezone=Mars/Base
:as nobody
/kindred coffe
:quit
/kindred help
"""


def test_console_driven_by_a_stdin_script(tmp_path: Path) -> None:
    """The README's first command, end to end: a real process reading a script."""
    environment = {
        **os.environ,
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'console.db'}",
        "KINDRED_LOG_LEVEL": "WARNING",
    }
    for name in ("SLACK_BOT_TOKEN", "SLACK_CLIENT_ID", "DISCORD_BOT_TOKEN"):
        environment.pop(name, None)
    result = subprocess.run(
        [sys.executable, "-m", "bot.core.cli", "run"],
        input=SCRIPT,
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=environment,
        timeout=60,
        check=True,
    )
    out = result.stdout
    assert "Kindred console: CX Practitioners (demo). You are @alice in #general." in out
    assert "• `/kindred profile set [company=…]" in out
    assert "Saved your company, timezone, topics." in out
    assert "• Community Lead at Initech" in out
    assert "• Time zone: America/New_York (now " in out
    assert "You are now @bob." in out
    assert "`Mars/Base` is not a time zone I know." in out
    assert "No member @nobody." in out
    assert "I don't know `/kindred coffe`" in out or "`/kindred coffe" in out
    # :quit ends the session: the help after it is never answered.
    assert out.count("**Kindred commands**") == 1
    assert result.stderr == ""


clicks = Handlers("clicks")


@clicks.command("clicks offer", "Offer a button to bob")
async def offer(ctx: Context) -> Reply:
    await ctx.outbox.dm("bob", Message("Coffee?", (Button("Yes", "clicks.yes", "7"),)))
    return Reply.text("Offered.")


@clicks.action("clicks.yes")
async def yes(ctx: Context) -> Reply:
    return Reply(update_original=Message(f"{ctx.inbound.user_id} said yes to {ctx.inbound.value}"))


async def test_buttons_are_numbered_and_pressable(sqlite_db: Database, settings: Settings) -> None:
    output = io.StringIO()
    kindred = Kindred(settings, sqlite_db, extra_handlers=[clicks])
    community = ConsoleCommunity.load(settings.config_dir / "console.yml")
    session = ConsoleSession(kindred, community, output)
    await session.seed()
    for line in ["/kindred clicks offer", ":as bob", "1", ":press 1", ":press x"]:
        await session.execute(line)
    text = output.getvalue()
    assert "── [2] DM → @bob ──\nCoffee?\n(1) Yes" in text
    assert "message 2 updated" in text and "bob said yes to 7" in text
    # The update removed the button: pressing it again is explained.
    assert "There is no button (1) on screen." in text
    assert "Unknown simulation verb ':press'" in text


async def test_join_creates_a_member_and_emits_the_event(
    sqlite_db: Database, settings: Settings
) -> None:
    output = io.StringIO()
    kindred = Kindred(settings, sqlite_db)
    community = ConsoleCommunity.load(settings.config_dir / "console.yml")
    session = ConsoleSession(kindred, community, output)
    await session.execute(":join newbie")
    await session.execute(":as newbie")
    await session.execute(":join Bad Name!")
    text = output.getvalue()
    assert "@newbie joined CX Practitioners (demo)." in text
    assert "You are now @newbie." in text
    assert "Give the newcomer a simple handle" in text
