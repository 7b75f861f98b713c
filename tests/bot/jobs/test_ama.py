from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from bot.core.app import Kindred
from bot.core.platform import Button
from bot.core.settings import Settings
from storage.db import Database
from tests.bot.commands.test_ama import (
    CHANNEL,
    SCHEDULE,
    ama_community,
    ask,
    button,
    seen,
    stored_ama,
)
from tests.conftest import POSTGRES_URL, Clock
from tests.driver import Community
from tests.fakes.platform import FakePlatform

# SCHEDULE starts at 2026-11-24 15:00 UTC; the clock starts 30 hours before.
DAY_BEFORE = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)
QUARTER_BEFORE = datetime(2026, 11, 24, 14, 45, tzinfo=UTC)
START = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)
END = datetime(2026, 11, 24, 16, 0, tzinfo=UTC)


def reminders(platform: FakePlatform) -> list[str]:
    return [s.kind + ":" + s.target for s in platform.sent if "starts in" in s.text]


async def started(
    settings: Settings, db: Database, clock: Clock, platform: FakePlatform
) -> Community:
    kindred = Kindred(replace(settings), db, clock=clock)
    kindred.attach(platform)
    await kindred.start(dispatch=False, schedule=False)
    return ama_community(kindred, platform, clock)


@pytest.fixture
def community(kindred: Kindred, platform: FakePlatform, clock: Clock) -> Community:
    return ama_community(kindred, platform, clock)


@pytest.fixture
async def app(community: Community) -> Community:
    await community.kindred.start(dispatch=False, schedule=False)
    return community


async def test_reminders_fire_once_each_and_go_live_at_the_start(
    app: Community, platform: FakePlatform
) -> None:
    await app.say(SCHEDULE)
    await ask(app, "bob", "How do you scale support teams?")
    await app.advance(datetime(2026, 11, 23, 14, 59, tzinfo=UTC))
    assert reminders(platform) == []
    await app.advance(DAY_BEFORE)
    await app.advance(datetime(2026, 11, 23, 15, 1, tzinfo=UTC))
    assert reminders(platform) == [f"post:{CHANNEL}", "dm:ana"]
    day = app.last("post", CHANNEL)
    assert seen(day).startswith("⏰ AMA #1 starts in 24 hours: Scaling support with <@ana>")
    assert "1 question so far" in seen(day)
    assert "Reminder: your AMA Scaling support starts in 24 hours" in seen(app.last("dm", "ana"))
    await app.advance(QUARTER_BEFORE)
    await app.advance(QUARTER_BEFORE)
    assert len(reminders(platform)) == 4
    assert "starts in 15 minutes" in seen(app.last("post", CHANNEL))
    await app.advance(START)
    await app.advance(START)
    assert (await stored_ama(app)).state == "live"
    assert len([s for s in platform.sent if "is live" in s.text]) == 1
    assert len([s for s in platform.sent if "Your AMA control panel" in s.text]) == 1


async def test_reminders_already_past_at_scheduling_are_skipped(
    app: Community, platform: FakePlatform
) -> None:
    text = seen(
        await app.say('ama schedule host:<@ana> title:"Scaling support" at:"2026-11-23 12:00"')
    )
    assert "Reminders go out 15 minutes before." in text
    await app.advance(datetime(2026, 11, 23, 11, 45, tzinfo=UTC))
    assert reminders(platform) == [f"post:{CHANNEL}", "dm:ana"]
    assert "starts in 15 minutes" in seen(app.last("post", CHANNEL))


async def test_a_reminder_a_tick_late_still_says_15_minutes(
    app: Community, platform: FakePlatform
) -> None:
    await app.say(SCHEDULE)
    await app.advance(QUARTER_BEFORE + timedelta(seconds=40))
    assert "starts in 15 minutes" in seen(app.last("post", CHANNEL))
    assert "starts in 15 minutes" in seen(app.last("dm", "ana"))


async def test_downtime_skips_stale_reminders_and_a_missed_session_is_called_off(
    app: Community, platform: FakePlatform
) -> None:
    await app.say(SCHEDULE)
    second = (
        'ama schedule host:<@erin> title:"Scaling support" at:"2026-11-24 18:00" channel:<#C-b>'
    )
    assert "Scheduled AMA #2" in seen(await app.say(second))
    # Down from before the first reminder until after the first AMA started.
    await app.advance(datetime(2026, 11, 24, 15, 5, tzinfo=UTC))
    assert [s for s in platform.sent if "starts in 24 hours" in s.text] == []
    assert (await stored_ama(app, 1)).state == "live"
    assert "starts in 2 hours 55" not in " ".join(platform.texts())
    # Down through the whole second AMA: it never went live, so it is called off.
    await app.advance(datetime(2026, 11, 24, 20, 0, tzinfo=UTC))
    assert (await stored_ama(app, 2)).state == "closed"
    called_off = app.last("post", "C-b")
    assert "AMA #2 (Scaling support) with <@erin> was called off" in seen(called_off)
    assert [
        s for s in platform.sent if s.target == "erin" and "Your AMA control panel" in s.text
    ] == []


async def test_closing_by_hand_leaves_nothing_for_the_end_time(
    app: Community, platform: FakePlatform
) -> None:
    await app.say(SCHEDULE)
    await app.advance(START)
    assert "Closed AMA #1." in seen(await app.say("ama close", "ana"))
    sent = len(platform.sent)
    await app.advance(END)
    assert len(platform.sent) == sent
    ama = await stored_ama(app)
    assert (ama.state, ama.next_event_at) == ("closed", None)


async def test_a_new_core_on_the_same_database_continues_mid_ama(
    settings: Settings, sqlite_db: Database, clock: Clock
) -> None:
    first_platform = FakePlatform(admins={"alice"})
    first = await started(settings, sqlite_db, clock, first_platform)
    await first.say(SCHEDULE)
    await ask(first, "bob", "How do you scale support teams?")
    await ask(first, "carol", "Which KPIs matter most to executives?")
    await first.advance(START)
    panel = first.last("dm", "ana")
    live = await first.press(button(panel.message, "ama.next"), "ana", message=panel.ref)
    assert live.update_original is not None
    answered_button = button(live.update_original, "ama.answered")
    await first.kindred.stop()

    # A fresh process: new engine, new core, nothing in memory but the buttons' ids.
    restarted_db = Database(str(sqlite_db.url))
    second_platform = FakePlatform(admins={"alice"})
    second = await started(settings, restarted_db, clock, second_platform)
    try:
        done = await second.press(answered_button, "ana")
        assert done.update_original is not None
        assert "✅ Marked Q1 answered." in seen(done.update_original.text)
        following = await second.press(button(done.update_original, "ama.next"), "ana")
        assert following.update_original is not None
        assert "Now answering Q2" in seen(following.update_original.text)
        assert "as Q3" in await ask(second, "dan", "How do you keep agents motivated?")
        await second.advance(END)
        recap = seen(second.last("post", CHANNEL))
        assert "2 answered · 3 asked" in recap
        assert "• Q1 (▲ 0) · <@bob>: How do you scale support teams?" in recap
        assert "Q3 (▲ 0) · <@dan>" in seen(second.last("dm", "ana"))
    finally:
        await second.kindred.stop()
        await restarted_db.dispose()


async def test_two_replicas_send_each_reminder_once(
    settings: Settings, postgres_db: Database, clock: Clock
) -> None:
    platform = FakePlatform(admins={"alice"})
    other_db = Database(POSTGRES_URL, schema=postgres_db.schema)
    replicas = [
        await started(settings, postgres_db, clock, platform),
        await started(settings, other_db, clock, platform),
    ]
    try:
        await replicas[0].say(SCHEDULE)
        await ask(replicas[1], "bob", "How do you scale support teams?")
        for moment in (DAY_BEFORE, QUARTER_BEFORE, START, END):
            clock.now = moment
            for _ in range(2):
                await asyncio.gather(*(r.kindred.scheduler.catch_up() for r in replicas))
            await asyncio.gather(*(r.deliver() for r in replicas))
        assert reminders(platform) == [f"post:{CHANNEL}", "dm:ana"] * 2
        assert len([s for s in platform.sent if "is live" in s.text]) == 1
        assert len([s for s in platform.sent if "Your AMA control panel" in s.text]) == 1
        assert len([s for s in platform.sent if "recap" in s.text]) == 1
        assert len(platform.texts("dm", "ana")) == 4
    finally:
        for replica in replicas:
            await replica.kindred.stop()
        await other_db.dispose()


async def test_the_ask_button_on_the_announcement_opens_a_form(
    app: Community, platform: FakePlatform
) -> None:
    await app.say(SCHEDULE)
    announcement = app.last("post", CHANNEL)
    form = await app.press(button(announcement.message, "ama.ask"), "bob")
    assert form.modal is not None and form.modal.callback_id == "ama.ask_submit"
    assert [field.field_id for field in form.modal.fields] == ["question", "anonymous"]
    await app.advance(END)
    closed = await app.press(Button("Ask", "ama.ask", "1"), "bob")
    assert closed.message is not None
    assert "AMA #1 (Scaling support) has closed." in seen(closed.message.text)
