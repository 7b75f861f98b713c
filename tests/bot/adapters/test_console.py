from __future__ import annotations

import io
import os
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url

from bot.adapters.console import ADVANCE_STEP, ConsoleCommunity, ConsoleSession, state_path
from bot.core.app import Kindred
from bot.core.context import Context
from bot.core.feature import Feature, Tick
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


def _run_console(tmp_path: Path, script: str) -> subprocess.CompletedProcess[str]:
    environment = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("SLACK_", "DISCORD_"))
    }
    environment["DATABASE_URL"] = f"sqlite+aiosqlite:///{tmp_path / 'console.db'}"
    environment["KINDRED_LOG_LEVEL"] = "WARNING"
    return subprocess.run(
        [sys.executable, "-m", "bot.core.cli", "run"],
        input=script,
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=environment,
        timeout=90,
        check=True,
    )


def _day(moment: datetime) -> str:
    return f"{moment:%a %d %b %Y}"


def test_a_restart_keeps_the_clock_and_the_group_conversations(tmp_path: Path) -> None:
    """Issue #18 item 14: run twice on one database; the second run's clock carries on
    and its reminder reaches the group the first run opened."""
    started = datetime.now(UTC)
    # Rounds on yesterday's weekday: the run-now round lasts about six days, so its
    # half-way reminder (about three days in) falls in the second run.
    weekday = f"{started - timedelta(days=1):%A}".lower()
    first = _run_console(
        tmp_path,
        "\n".join(
            [
                ":in #virtual-coffee",
                f"/kindred coffee setup weekday={weekday} hour={started.hour} timezone=UTC",
                "/kindred coffee join",
                *(f":as {user}\n/kindred coffee join" for user in ("bob", "carol", "farid")),
                ":as alice",
                "/kindred coffee run-now",
                ":advance 1d",
            ]
        )
        + "\n",
    )
    assert first.stdout.count("] group @") == 2 and "Halfway through" not in first.stdout
    assert f"The clock is now {_day(started + timedelta(days=1))}" in first.stdout
    assert (tmp_path / "console.db-console.json").exists()

    second = _run_console(tmp_path, ":advance 3d\n")
    out = second.stdout
    assert out.startswith(
        "Restored the console state from "
        f"{tmp_path / 'console.db-console.json'}: the clock is {_day(started + timedelta(days=1))}"
    )
    assert "2 group conversations kept." in out
    # The reminders go to the groups opened before the restart, in messages numbered
    # after the first run's.
    assert len(re.findall(r"── \[\d+\] group @\w+, @\w+ ──\n👋 Halfway through", out)) == 2
    before = [int(number) for number in re.findall(r"── \[(\d+)\]", first.stdout)]
    after = [int(number) for number in re.findall(r"── \[(\d+)\]", out)]
    assert min(after) == max(before) + 1
    assert f"The clock is now {_day(started + timedelta(days=4))}" in out
    assert "no channel" not in second.stderr and second.stderr == ""


def test_a_state_file_of_another_database_is_set_aside_with_a_notice(tmp_path: Path) -> None:
    _run_console(tmp_path, ":advance 2d\n")
    (tmp_path / "console.db").unlink()
    fresh = _run_console(tmp_path, ":advance 1m\n")
    assert fresh.stdout.startswith(
        f"The console state in {tmp_path / 'console.db-console.json'} belongs to an earlier "
        "database at this path; starting fresh: the clock is the real time"
    )
    now = datetime.now(UTC)
    assert f"The clock is now {_day(now)}" in fresh.stdout
    (tmp_path / "console.db-console.json").write_text("{not json", encoding="utf-8")
    broken = _run_console(tmp_path, ":quit\n")
    assert broken.stdout.startswith(
        f"Could not read the console state in {tmp_path / 'console.db-console.json'} ("
    )
    assert "starting fresh" in broken.stdout.splitlines()[0]


def test_state_lives_beside_a_database_file_only() -> None:
    assert state_path(make_url("sqlite+aiosqlite:///data/kindred.db")) == Path(
        "data/kindred.db-console.json"
    )
    assert state_path(make_url("sqlite+aiosqlite://")) is None
    assert state_path(make_url("sqlite+aiosqlite:///:memory:")) is None
    server = state_path(make_url("postgresql+asyncpg://kindred:secret@db/kindred"))
    assert server is not None and server.name.startswith(".kindred-console-")
    other = state_path(make_url("postgresql+asyncpg://kindred:secret@db/other"))
    assert other != server


class FrozenClock:
    """A simulated clock that moves only when the console advances it."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, by: timedelta) -> None:
        self.now += by


def _console(
    settings: Settings, db: Database, clock: FrozenClock, **kindred: Any
) -> tuple[ConsoleSession, io.StringIO]:
    output = io.StringIO()
    core = Kindred(settings, db, clock=clock, **kindred)
    community = ConsoleCommunity.load(settings.config_dir / "console.yml")
    return ConsoleSession(core, community, output, clock.advance), output


# A Wednesday, deliberately off the quarter hour: stepping by 15 minutes from here
# would run everything a few minutes late.
WEDNESDAY = datetime(2026, 11, 18, 10, 7, tzinfo=UTC)


async def test_advance_runs_each_due_item_at_its_time_in_order(
    sqlite_db: Database, settings: Settings
) -> None:
    """A due item created by a run (a round's follow-up) is found and run at its own
    time; the clock never overshoots what is due."""
    clock = FrozenClock(WEDNESDAY)
    planned = [WEDNESDAY + timedelta(hours=1, minutes=1), WEDNESDAY + timedelta(days=2)]
    ran: list[tuple[str, datetime]] = []

    async def run(runtime: Any, now: datetime) -> None:
        for due in [due for due in planned if due <= now]:
            planned.remove(due)
            ran.append(("run", now))
            if due == WEDNESDAY + timedelta(hours=1, minutes=1):
                planned.append(now + timedelta(minutes=44, seconds=30))

    async def next_due(runtime: Any, now: datetime) -> datetime | None:
        return min((due for due in planned if due > now), default=None)

    ticking = Feature(
        "Ticks at planned times",
        Handlers("ticking"),
        ticks=(Tick("ticking.tick", 60, run, next_due=next_due),),
    )
    session, output = _console(settings, sqlite_db, clock, features=[ticking])
    await session.kindred.start(dispatch=False, schedule=False)
    try:
        await session.execute(":advance 3d")
    finally:
        await session.kindred.stop()
    assert [when for _, when in ran] == [
        WEDNESDAY + timedelta(hours=1, minutes=1),
        WEDNESDAY + timedelta(hours=1, minutes=45, seconds=30),
        WEDNESDAY + timedelta(days=2),
    ]
    assert clock.now == WEDNESDAY + timedelta(days=3)
    assert "The clock is now Sat 21 Nov 2026 10:07 UTC." in output.getvalue()


async def test_a_tick_without_next_due_is_still_looked_at_every_step(
    sqlite_db: Database, settings: Settings
) -> None:
    clock = FrozenClock(WEDNESDAY)
    seen: list[datetime] = []

    async def run(runtime: Any, now: datetime) -> None:
        seen.append(now)

    blind = Feature("No next_due", Handlers("blind"), ticks=(Tick("blind.tick", 60, run),))
    session, _ = _console(settings, sqlite_db, clock, features=[blind])
    await session.kindred.start(dispatch=False, schedule=False)
    try:
        await session.execute(":advance 2h")
    finally:
        await session.kindred.stop()
    assert seen == [WEDNESDAY + ADVANCE_STEP * step for step in range(1, 9)]


async def test_coffee_over_a_month_fires_at_the_exact_times_in_few_looks(
    sqlite_db: Database, settings: Settings
) -> None:
    """Issue #18 speed: `:advance` jumps to each due moment (round, reminder,
    follow-up) instead of looking every 15 minutes, and each fires on time."""
    clock = FrozenClock(WEDNESDAY)
    session, _ = _console(settings, sqlite_db, clock)
    shown: list[tuple[datetime, str]] = []
    show = session.platform.show

    def noting(where: str, channel_id: str, message: Message, message_id: str | None = None):  # type: ignore[no-untyped-def]
        shown.append((clock.now, session.platform.plain(message.text)))
        return show(where, channel_id, message, message_id)

    session.platform.show = noting  # type: ignore[method-assign]
    await session.seed()
    for line in [
        ":in #virtual-coffee",
        "/kindred coffee setup weekday=monday hour=9 timezone=Europe/Berlin",
        "/kindred coffee join",
        ":as bob",
        "/kindred coffee join",
        ":as carol",
        "/kindred coffee join",
        ":as farid",
        "/kindred coffee join",
    ]:
        await session.execute(line)
    await session.kindred.start(dispatch=False, schedule=False)
    looks = 0
    catch_up = session.kindred.scheduler.catch_up

    async def counting() -> None:
        nonlocal looks
        looks += 1
        await catch_up()

    session.kindred.scheduler.catch_up = counting  # type: ignore[method-assign]
    try:
        await session.execute(":advance 16d")
    finally:
        await session.kindred.stop()
    round_1 = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)  # Mon 09:00 in Berlin
    moments = [(when, text) for when, text in shown if when > WEDNESDAY]
    intros = [when for when, text in moments if "meet your match" in text]
    reminders = [when for when, text in moments if "Halfway through" in text]
    followups = [when for when, text in moments if "Did you meet" in text]
    assert intros == [round_1] * 2 + [round_1 + timedelta(days=7)] * 2
    assert (
        reminders
        == [round_1 + timedelta(days=3, hours=12)] * 2
        + [round_1 + timedelta(days=10, hours=12)] * 2
    )
    # A DM to each member a day before the round ends (Sun 08:00 UTC): due items the
    # round itself created.
    assert followups == [round_1 + timedelta(days=6)] * 4
    # In order: each round's intros, then its reminder, then the next round.
    assert [when for when, _ in moments] == sorted(when for when, _ in moments)
    # Stepping every 15 minutes looked 1,536 times; jumping looks a few times a day.
    assert looks < 60
