"""Kudos on the console adapter, as a person at the terminal types it: by command, by
`:react` (a DM asks why; `:press` and `:submit` answer), the cap, self-kudos, a
reaction taken back with `:unreact`, a message removed with `:delete`, and the rule
explained."""

from __future__ import annotations

import io
import re

from sqlalchemy import select

from bot.adapters.console import ConsoleCommunity, ConsoleSession
from bot.core.app import Kindred
from bot.core.settings import Settings
from storage.db import Database
from storage.kudos import Kudos


async def kudos_rows(db: Database) -> list[tuple[str, str, str]]:
    async with db.sessions() as session:
        rows = (await session.execute(select(Kudos).order_by(Kudos.id))).scalars()
        return [(row.giver_id, row.receiver_id, row.status) for row in rows]


def last_number(text: str, heading: str) -> str:
    """The number of the latest message shown under `heading` (e.g. `#general @carol`)."""
    numbers = re.findall(rf"── \[(\d+)\] {re.escape(heading)} ──", text)
    assert numbers, f"no message under {heading}"
    return numbers[-1]


def last_button(text: str, label: str) -> str:
    numbers = re.findall(rf"\((\d+)\) {re.escape(label)}", text)
    assert numbers, f"no button {label}"
    return numbers[-1]


async def test_console_kudos_from_command_to_withdrawal(
    settings: Settings, sqlite_db: Database
) -> None:
    output = io.StringIO()
    kindred = Kindred(settings, sqlite_db)
    community = ConsoleCommunity.load(settings.config_dir / "console.yml")
    session = ConsoleSession(kindred, community, output)
    await session.seed()

    async def run(*lines: str) -> str:
        start = len(output.getvalue())
        for line in lines:
            await session.execute(line)
        return output.getvalue()[start:]

    shown = await run(
        "/kindred kudos setup allowance=2 channel=#general",
        ":as bob",
        "/kindred kudos @carol for the journey-mapping workshop slides",
    )
    assert "🙌 Kudos sent to @carol" in shown
    assert (
        "DM → @carol ──\n🙌 @bob gave you kudos: “for the journey-mapping workshop slides”" in shown
    )
    # The public post names people; the console shows them as typed.
    assert "🙌 **Carol Diaz** got kudos from **Bob Okafor**" in shown
    assert "can't give them to yourself" in await run("/kindred kudos @bob for being great at this")

    shown = await run(":as carol", ":say Here is my NPS checklist, free to reuse")
    message = last_number(shown, "#general @carol")
    assert "can't give them to yourself" in await run(f":react {message} raised_hands")
    shown = await run(":as bob", f":react {message} raised_hands")
    assert "DM → @bob ──\n🙌 You reacted with kudos to a message by @carol" in shown
    shown = await run(f":press {last_button(shown, 'Say why')}")
    assert "── form: Why the kudos? ──" in shown
    shown = await run(':submit reason="Saved me a week of survey design" category="great share"')
    assert "🙌 Kudos sent to @carol (great share)" in shown
    assert await kudos_rows(sqlite_db) == [("bob", "carol", "active"), ("bob", "carol", "active")]
    # Bob's allowance of 2 is used up.
    capped = await run("/kindred kudos @dan for the onboarding checklist he shared")
    assert "You've given your 2 kudos for today" in capped

    await run(f":unreact {message} raised_hands")
    assert (await kudos_rows(sqlite_db))[1] == ("bob", "carol", "withdrawn")
    shown = await run(":as dan", f":react {message} raised_hands")
    shown = await run(
        f":press {last_button(shown, 'Say why')}", ':submit reason="A great checklist indeed"'
    )
    assert "Kudos sent" in shown
    assert "Only @carol can delete" in await run(f":delete {message}")
    assert f"Message {message} deleted." in await run(":as carol", f":delete {message}")
    assert await kudos_rows(sqlite_db) == [
        ("bob", "carol", "active"),
        ("bob", "carol", "withdrawn"),
        ("dan", "carol", "withdrawn"),
    ]
    # The console, like Slack, has no roles: the badge lives on the profile card.
    no_roles = await run(":as alice", "/kindred kudos setup role=Stars")
    assert "There are no roles an app can give on console" in no_roles
    assert "Roles: none on this platform" in await run("/kindred kudos setup")
    why = await run(":as carol", "/kindred kudos why")
    assert "You are not a recognised contributor yet." in why
    assert "Kudos that count: 1.0 of 8 ✗" in why
    assert "Distinct givers: 1 of 5 ✗" in why


async def test_console_status_granted_shown_and_explained(
    settings: Settings, sqlite_db: Database
) -> None:
    """On the console (as on Slack) no role exists: the badge is on the profile card
    and the home tab."""
    output = io.StringIO()
    kindred = Kindred(settings, sqlite_db)
    community = ConsoleCommunity.load(settings.config_dir / "console.yml")
    session = ConsoleSession(kindred, community, output)
    await session.seed()

    async def run(*lines: str) -> str:
        start = len(output.getvalue())
        for line in lines:
            await session.execute(line)
        return output.getvalue()[start:]

    await run("/kindred kudos setup kudos=2 givers=2 companies=2 days=0 evidence=0")
    await run(":as bob", "/kindred kudos @carol for the journey map of our onboarding")
    shown = await run(":as dan", "/kindred kudos @carol for the VoC survey questions")
    assert "@carol is now a recognised contributor. 🏅" in shown
    assert "DM → @carol ──\n🏅 **You are now a recognised contributor.**" in shown
    assert "🏅 Recognised contributor" in await run("/kindred profile show @carol")
    home = await run(":as carol", ":home")
    assert "🏅 Recognised contributor" in home and "Kudos: 2 from 2 members" in home
    why = await run("/kindred kudos why")
    assert why.count("✓") == 5 and "🏅 You are a recognised contributor since" in why
