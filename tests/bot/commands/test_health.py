"""The health feature through the shared driver: activity recorded from message
events, `/kindred report` with figures, change, suggested actions and charts,
the NPS pulse, `/kindred privacy`, the weekly report and the signed page."""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import AsyncIterator, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlparse

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import func, select
from sqlalchemy import update as sa_update

from bot.commands import declared_features
from bot.core.app import Kindred
from bot.core.feature import Feature
from bot.core.figures import Figures, MemberAction, Period, Stored
from bot.core.platform import Identity, MemberInfo
from bot.core.registry import Handlers
from bot.core.settings import Secret, Settings
from bot.core.web import start_web, web_application
from bot.services import health_dashboard as dashboard_service
from storage.db import Database
from storage.health import HealthActivity, HealthPulseAnswer, page_snapshot
from storage.models import Member
from tests import browser
from tests.conftest import Clock
from tests.driver import Community, plain
from tests.fakes.platform import FakePlatform


def read(text: object) -> str:
    """What a member reads, bold markers dropped, so figures read as `name: value`."""
    return plain(text).replace("**", "")  # type: ignore[arg-type]


SECRET = "s" * 40
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


class Probe:
    """A feature of the future (kudos, mentorship…) as the report sees it: only
    through its metrics, actions and privacy hooks."""

    def __init__(self) -> None:
        self.actions: list[MemberAction] = []
        self.forgotten: list[Identity] = []

    async def metrics(self, session: object, period: Period) -> Figures:
        inside = [a for a in self.actions if period.start <= a.at < period.end]
        return {"givers": len({a.user_id for a in inside}), "completion_rate": 0.8}

    async def member_actions(self, session: object, period: Period) -> Sequence[MemberAction]:
        return [a for a in self.actions if period.start <= a.at < period.end]

    async def stored_about(self, session: object, member: Identity) -> Stored:
        return Stored("probe/stored_about", {"given": 2 if member.user_id == "U1" else 0})

    async def forget(self, session: object, member: Identity) -> int:
        self.forgotten.append(member)
        return 2

    def feature(self) -> Feature:
        return Feature(
            summary="probe",
            handlers=Handlers("probe"),
            metrics=self.metrics,  # type: ignore[arg-type]
            actions=self.member_actions,  # type: ignore[arg-type]
            stored_about=self.stored_about,  # type: ignore[arg-type]
            forget_feedback=self.forget,  # type: ignore[arg-type]
        )


@pytest.fixture
def probe() -> Probe:
    return Probe()


@pytest.fixture
def config(settings: Settings, tmp_path: Path) -> Path:
    """The bundled config, copied so a test may edit it, with the probe's template."""
    config = tmp_path / "config"
    shutil.copytree(settings.config_dir, config)
    (config / "templates" / "probe").mkdir()
    (config / "templates" / "probe" / "stored_about.j2").write_text(
        "{% if given %}\n{{ given }} kudos you gave\n{% endif %}\n"
    )
    return config


@pytest.fixture
async def health(
    settings: Settings,
    config: Path,
    sqlite_db: Database,
    clock: Clock,
    platform: FakePlatform,
    probe: Probe,
) -> AsyncIterator[Community]:
    configured = replace(
        settings,
        config_dir=config,
        database_url=str(sqlite_db.url),
        public_url="https://kindred.example.com",
        dashboard_secret=Secret(SECRET),
    )
    app = Kindred(
        configured, sqlite_db, clock=clock, features=[*declared_features(), probe.feature()]
    )
    app.attach(platform)
    await app.start(dispatch=False, schedule=False)
    yield Community(app, platform, clock)
    await app.stop()


async def activity_rows(community: Community) -> list[HealthActivity]:
    async with community.kindred.db.sessions() as session:
        return list((await session.execute(select(HealthActivity))).scalars())


async def test_messages_become_per_member_channel_day_counts_without_text(
    health: Community,
) -> None:
    event = health.inbound("message", "U1", channel_id="CGENERAL", text="secret plans")
    await health.handle(event)
    await health.handle(event)  # Slack retried the same event: it counts once
    await health.message("U1", text="more")
    await health.message("U1", channel="CHELP")
    await health.message("U2")
    rows = sorted(
        (r.user_id, r.channel_id, r.day.isoformat(), r.messages)
        for r in await activity_rows(health)
    )
    assert rows == [
        ("U1", "CGENERAL", "2026-11-23", 2),
        ("U1", "CHELP", "2026-11-23", 1),
        ("U2", "CGENERAL", "2026-11-23", 1),
    ]
    columns = {column.name for column in HealthActivity.__table__.columns}  # type: ignore[attr-defined]
    assert "text" not in columns


async def build_a_month(health: Community, probe: Probe) -> None:
    """The month up to 2026-11-23 as the fixture: 26 members who were here before,
    14 who joined this month (NEW0 20 days ago … NEW13 7 days ago); NEW9..NEW13
    post 5 days ago and OLD0 replies to each 30 hours later; NEW5 joins coffee."""
    start = health.clock.now
    health.clock.now = start - timedelta(days=45)
    for i in range(26):
        await health.message(f"OLD{i}")
    for day in range(14):
        health.clock.now = start - timedelta(days=20 - day)
        await health.join(f"NEW{day}")
    health.clock.now = start - timedelta(days=10)
    for i in range(26):
        await health.message(f"OLD{i}")
    for newcomer in range(9, 14):
        health.clock.now = start - timedelta(days=5)
        await health.message(f"NEW{newcomer}")
        health.clock.now += timedelta(hours=30)
        await health.message("OLD0", reply_to=f"NEW{newcomer}")
    health.clock.now = start - timedelta(days=1)
    for i in range(3):
        await health.message(f"OLD{i}")
    probe.actions.append(MemberAction("NEW5", "coffee", start - timedelta(days=3)))
    health.clock.now = start


async def test_the_report_shows_figures_change_suggestions_and_sends_charts(
    health: Community, probe: Probe
) -> None:
    await build_a_month(health, probe)
    reply = await health.command("report month")
    await health.deliver()
    text = read(reply)
    assert "Community health, last month" in text
    # 14 joined; 5 posted within their 14 days and 1 joined coffee: 6 of 14 (43 %).
    assert "Newcomers who joined: 14" in text
    assert "Newcomer activation (14 days): 43 %" in text
    # Active this week: OLD0..OLD2, NEW9..NEW13, NEW5 = 9; in 30 days: 26 + 5 + 1 = 32,
    # and 26 in the 30 days before the previous period's end.
    assert "Active in the last 7 days: 9" in text
    assert "Active in the last 30 days: 32 (+6; was 26)" in text
    assert "Weekly return (7-day ÷ 30-day active): 28 %" in text
    assert "Median time to a newcomer's first reply: 30.0 h" in text
    # The probe feature's figures appear with no line written for it.
    assert "probe.givers: 1" in text
    assert "probe.completion_rate: 80 %" in text
    assert "Coffee rounds" not in text  # nothing happened in coffee: left out of chat
    assert "Newcomer activation is 43 %: 8 of the 14 who joined this period" in text
    assert "Only 28 % of the 32 members active this month were active this week (9)" in text
    assert "Newcomers waited a median of 30.0 h for a first reply" in text
    assert text.count("•") >= 3
    assert "Suggested actions" in text
    charts = [sent for sent in health.sent("dm", health.admin) if sent.message.attachment]
    assert [c.message.attachment.filename for c in charts if c.message.attachment] == [
        "health-month-daily.png",
        "health-month-activation.png",
        "health-month-retention.png",
    ]
    for chart in charts:
        attachment = chart.message.attachment
        assert attachment is not None
        assert attachment.content.startswith(PNG_MAGIC)
        assert len(attachment.content) <= 300_000
        assert attachment.alt_text and attachment.alt_text == chart.message.text
    assert "of the 14 newcomers" in charts[1].message.attachment.alt_text  # type: ignore[union-attr]


async def test_the_same_report_command_delivered_twice_sends_its_charts_once(
    health: Community, probe: Probe
) -> None:
    await build_a_month(health, probe)
    event = health.inbound("command", text="report week", channel_id="CGENERAL")
    await health.handle(event)
    await health.handle(event)
    await health.deliver()
    assert len([s for s in health.sent("dm", health.admin) if s.message.attachment]) == 3


async def test_change_since_the_last_period(health: Community, probe: Probe) -> None:
    health.clock.now -= timedelta(days=8)
    for i in range(6):
        await health.message(f"M{i}")
    health.clock.now += timedelta(days=8)
    for i in range(9):
        await health.message(f"M{i}")
    text = read(await health.say("report week"))
    # This week 9 posted; the week before, 6 (counted at its end over 7 days).
    assert "Active in the last 7 days: 9 (+3; was 6)" in text


async def test_report_refuses_members_and_bad_periods(health: Community) -> None:
    assert "Only community admins" in await health.say("report month", user="U9")
    assert "week" in await health.say("report year")


async def test_report_definitions_explain_each_figure(health: Community) -> None:
    text = await health.say("report definitions", user="U9")
    for words in (
        "Active members",
        "Newcomer activation",
        "first reply",
        "Retention",
        "After a session",
        "NPS",
    ):
        assert words in text


# --- the pulse ----------------------------------------------------------------------


async def setup_pulse(health: Community, *members: str, anonymous: bool = False) -> None:
    health.platform.add_members(health.workspace, *(MemberInfo(m, m) for m in members))
    health.platform.add_members(health.workspace, MemberInfo("BOT", "bot", is_bot=True))
    option = " anonymous=yes" if anonymous else ""
    answer = await health.say(f"pulse setup Would you recommend us to a colleague?{option}")
    assert "The pulse is on" in answer
    await health.advance(minutes=2)


async def test_the_pulse_asks_each_member_once_and_records_one_answer(health: Community) -> None:
    await setup_pulse(health, "U1", "U2")
    (question,) = health.sent("dm", "U1")
    assert "Would you recommend us to a colleague?" in question.text
    assert [b.label for b in question.message.buttons] == [str(n) for n in range(11)]
    assert health.sent("dm", "BOT") == []
    await health.advance(minutes=5)  # the tick again: nobody is asked twice
    assert len(health.sent("dm", "U1")) == 1
    nine = question.message.buttons[9]
    thanks = await health.press(nine, user="U1")
    assert "you answered 9" in read(thanks)
    assert "already answered" in plain(await health.press(question.message.buttons[3], user="U1"))
    assert thanks.update_original is not None
    (why,) = thanks.update_original.buttons
    form = await health.press(why, user="U1")
    assert form.modal is not None
    saved = await health.submit(
        form.modal.callback_id, form.modal.value, user="U1", why="Great people"
    )
    assert "telling us why" in plain(saved)
    async with health.kindred.db.sessions() as session:
        (answer,) = (await session.execute(select(HealthPulseAnswer))).scalars()
    assert (answer.user_id, answer.score, answer.reason) == ("U1", 9, "Great people")


async def test_anonymous_answers_carry_no_member_id(health: Community) -> None:
    await setup_pulse(health, "U1", anonymous=True)
    (question,) = health.sent("dm", "U1")
    await health.press(question.message.buttons[10], user="U1")
    async with health.kindred.db.sessions() as session:
        (answer,) = (await session.execute(select(HealthPulseAnswer))).scalars()
    assert answer.user_id is None
    privacy = await health.say("privacy", user="U1")
    assert "nothing about you" not in privacy
    assert "that you were asked 1 pulse question" in privacy
    assert "with your name" not in privacy


async def test_the_nps_shows_in_the_report_from_ten_answers(health: Community) -> None:
    members = [f"U{i}" for i in range(12)]
    await setup_pulse(health, *members)
    scores = [10, 9, 9, 10, 8, 7, 6, 3, 9, 10, 0]
    for member, score in zip(members[:9], scores, strict=False):
        await health.press(health.sent("dm", member)[0].message.buttons[score], user=member)
    assert "Community NPS: –" in read(await health.say("report month"))
    for member, score in zip(members[9:11], scores[9:], strict=True):
        await health.press(health.sent("dm", member)[0].message.buttons[score], user=member)
    text = read(await health.say("report month"))
    # 11 answers: promoters 6 (10, 9, 9, 10, 9, 10), detractors 3 (6, 3, 0) → +27.
    assert "Community NPS: +27" in text
    assert "NPS 95 % interval" in text
    assert "Pulse answers: 11" in text
    assert "11 of 12 members answered" in await health.say("pulse status")


async def test_pulse_setup_validates_its_arguments(health: Community) -> None:
    assert "at least 7" in await health.say("pulse setup every=2")
    assert "too short" in await health.say("pulse setup Hi?")
    assert "Only community admins" in await health.say("pulse setup", user="U1")
    assert "pulse is off" in await health.say("pulse off")


# --- privacy -----------------------------------------------------------------------------


async def test_privacy_lists_what_is_stored_and_deletes_feedback(
    health: Community, probe: Probe
) -> None:
    await setup_pulse(health, "U1")
    await health.message("U1")
    await health.press(health.sent("dm", "U1")[0].message.buttons[4], user="U1")
    reply = await health.command("privacy", user="U1")
    text = plain(reply)
    assert "message counts for 1 member-channel-day (no text)" in text
    assert "1 pulse answer with your name" in text
    assert "2 kudos you gave" in text
    assert reply.message is not None
    (forget,) = reply.message.buttons
    done = plain(await health.press(forget, user="U1"))
    assert "Deleted 3 records" in done
    assert probe.forgotten == [Identity("fake", "W1", "U1")]
    async with health.kindred.db.sessions() as session:
        assert (
            await session.execute(select(func.count()).select_from(HealthPulseAnswer))
        ).scalar_one() == 0


async def test_privacy_says_what_each_features_template_says(
    health: Community, config: Path
) -> None:
    """Each feature's lines come from its editable template: an edit shows at once."""
    await health.message("U1")
    before = plain(await health.command("privacy", user="U1"))
    assert "message counts for 1 member-channel-day (no text)" in before
    template = config / "templates" / "health" / "stored_about.j2"
    template.write_text(
        template.read_text().replace("message counts for", "how many messages you posted on")
    )
    (config / "templates" / "probe" / "stored_about.j2").write_text("{{ given }} thanks you sent\n")
    after = plain(await health.command("privacy", user="U1"))
    assert "how many messages you posted on 1 member-channel-day (no text)" in after
    assert "message counts" not in after
    assert "2 thanks you sent" in after and "2 kudos you gave" not in after


# --- the weekly report ---------------------------------------------------------------------


async def test_the_weekly_report_goes_to_the_organisers_channel_once_a_week(
    health: Community, probe: Probe
) -> None:
    await build_a_month(health, probe)
    assert "private channel" in await health.say("report schedule")
    answer = await health.say("report schedule", channel="CORG", channel_is_private=True)
    assert "<#CORG>" in answer or "#CORG" in answer
    await health.advance(minutes=2)
    posts = health.sent("post", "CORG")
    assert "Community health, last week" in posts[0].text
    assert [p.message.attachment is not None for p in posts] == [False, True, True, True]
    await health.advance(hours=1)
    assert len(health.sent("post", "CORG")) == 4
    await health.advance(days=7)
    assert len(health.sent("post", "CORG")) == 8
    assert "off" in await health.say("report schedule off=yes")
    await health.advance(days=7)
    assert len(health.sent("post", "CORG")) == 8


# --- the dashboard page ---------------------------------------------------------------------


async def dashboard_link(health: Community) -> str:
    assert "sent you a link" in await health.say("report link")
    await health.deliver()
    # The selector's other periods are built in the background meanwhile.
    await health.kindred.background.idle()
    (dm,) = [s for s in health.sent("dm", health.admin) if "dashboard" in s.text]
    start = dm.message.text.index("https://")
    return dm.message.text[start : dm.message.text.index(")", start)]


async def test_report_link_explains_what_the_operator_must_set(
    settings: Settings, sqlite_db: Database, clock: Clock, platform: FakePlatform
) -> None:
    app = Kindred(replace(settings, database_url=str(sqlite_db.url)), sqlite_db, clock=clock)
    app.attach(platform)
    community = Community(app, platform, clock)
    answer = await community.say("report link")
    assert "KINDRED_PUBLIC_URL" in answer and "KINDRED_DASHBOARD_SECRET" in answer
    await app.stop()


async def test_the_page_needs_a_valid_unexpired_link(health: Community, probe: Probe) -> None:
    await build_a_month(health, probe)
    link = urlparse(await dashboard_link(health))
    query = {k: v[0] for k, v in parse_qs(link.query).items()}
    async with TestClient(TestServer(web_application(health.kindred))) as client:
        page = await client.get(link.path, params=query)
        assert page.status == 200
        html = await page.text()
        assert html.count('src="data:image/png;base64,') == 3
        assert "Newcomer activation (14 days)" in html
        assert "<code>/kindred welcome setup auto_buddy=yes</code>" in html
        assert "NEW1" not in html and "OLD0" not in html  # no member ids or names
        csv_page = await client.get(
            "/health/dashboard.csv", params={**query, "table": "activation"}
        )
        assert csv_page.headers["Content-Type"].startswith("text/csv")
        assert (await csv_page.text()).splitlines()[0] == "path,newcomers who took it,share"
        tampered = {**query, "c": "fake:W2"}
        assert (await client.get(link.path, params=tampered)).status == 403
        assert (await client.get(link.path)).status == 403
        health.clock.now += timedelta(minutes=61)
        assert (await client.get(link.path, params=query)).status == 403


@pytest.mark.parametrize(
    ("cell", "exported"),
    [
        ("=1+2", "'=1+2"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("+cmd", "'+cmd"),
        ("-cmd", "'-cmd"),
        ("\tTab", "'\tTab"),
        ("+3", "+3"),
        ("-2 pts", "-2 pts"),
        ("Ana", "Ana"),
        ("", ""),
    ],
)
def test_csv_cells_a_spreadsheet_would_run_are_exported_as_text(cell: str, exported: str) -> None:
    assert dashboard_service.spreadsheet_safe(cell) == exported


def test_links_expire_after_an_hour() -> None:
    from bot.services.health_dashboard import signed_link

    settings = replace(Settings(), public_url="https://k.example", dashboard_secret=Secret(SECRET))
    now = datetime(2026, 11, 23, 9, 0).astimezone()
    link = signed_link(settings, "slack", "T1", now, "week")
    expires = int(parse_qs(urlparse(link).query)["e"][0])
    assert expires - int(now.timestamp()) == 3600


# --- the page in a real browser ---------------------------------------------------------------


async def downloaded(folder: Path) -> Path:
    """The one file Chromium finished downloading into `folder`."""
    async with asyncio.timeout(30):
        while True:
            done = await asyncio.to_thread(
                lambda: [p for p in folder.iterdir() if not p.name.endswith(".crdownload")]
            )
            if done:
                (found,) = done
                return found
            await asyncio.sleep(0.1)


@pytest.mark.skipif(
    browser.CHROMIUM is None and not os.environ.get("CI"),
    reason="headless Chromium is not installed (apt-get install chromium; CI installs it)",
)
async def title_of(page: browser.Page) -> str:
    """The document's title; "" while a reload has no document to ask."""
    try:
        return str(await page.evaluate("document.title"))
    except AssertionError:  # the context went away with the reload
        return ""


async def test_the_page_in_headless_chromium(
    health: Community, probe: Probe, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    await build_a_month(health, probe)
    link = urlparse(await dashboard_link(health))
    runner = await start_web(web_application(health.kindred), "127.0.0.1", 0)
    base = f"http://127.0.0.1:{runner.addresses[0][1]}"
    url = f"{base}{link.path}?{link.query}"
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    try:
        async with browser.chromium(downloads) as chrome:
            page = await chrome.new_page(1280, 900)
            assert await page.open(url) == 200
            # Every chart is decoded and drawn: a broken image has no natural width.
            sizes = await page.evaluate(
                "[...document.images].map(i => [i.id, i.complete && i.naturalWidth, i.alt])"
            )
            assert [(name, width > 0) for name, width, _ in sizes] == [
                ("chart-daily", True),
                ("chart-activation", True),
                ("chart-retention", True),
            ]
            assert all(alt for _, _, alt in sizes)
            assert len(await page.screenshot()) > 10_000
            # The period selector keeps the signature: the week opens too.
            week = await page.evaluate("document.querySelector('nav a').href")
            assert await page.open(week) == 200
            assert "last week" in await page.evaluate("document.title")
            await page.evaluate("document.getElementById('csv-activation').click()")
            csv_file = await downloaded(downloads)
            assert csv_file.name.endswith("-activation-2026-11-17.csv")
            assert csv_file.read_text().splitlines()[0] == "path,newcomers who took it,share"
            # A link no page was built for yet: Chromium shows that it is being
            # prepared, then reloads itself into the page once it is built.
            monkeypatch.setattr(dashboard_service, "PREPARING_RELOAD_SECONDS", 1)
            named = fresh_link(health, "quarter", names=True)
            assert await page.open(f"{base}{link.path}?{urlencode(named)}") == 202
            async with asyncio.timeout(30):
                # Until the reload has brought the built page (a title may be empty,
                # or the old one, mid-reload).
                while await title_of(page) != "Community health: last quarter":
                    await asyncio.sleep(0.2)
            assert await page.evaluate("document.getElementById('table-newcomers') !== null")
            tampered = url.replace("c=fake%3AW1", "c=fake%3AW2")
            assert tampered != url
            assert await page.open(tampered) == 403
            health.clock.now += timedelta(minutes=61)
            assert await page.open(url) == 403
            assert "expired" in await page.evaluate("document.body.innerText")
    finally:
        await runner.cleanup()


async def test_two_replicas_send_one_weekly_report_and_one_pulse_round(
    health: Community, probe: Probe, platform: FakePlatform
) -> None:
    await build_a_month(health, probe)
    platform.add_members(health.workspace, MemberInfo("U1", "U1"), MemberInfo("U2", "U2"))
    await health.say("report schedule", channel="CORG", channel_is_private=True)
    await health.say("pulse setup Would you recommend us to a colleague?")
    first = health.kindred
    second = Kindred(
        first.settings, first.db, clock=first.clock, features=first.features, instance="second"
    )
    second.attach(platform)
    await second.start(dispatch=False, schedule=False)
    try:
        health.clock.now += timedelta(minutes=2)
        # Both replicas' ticks find the same report and round due at once.
        await asyncio.gather(first.scheduler.catch_up(), second.scheduler.catch_up())
        await health.deliver()
        await second.dispatcher.drain()
    finally:
        await second.stop()
    assert len(health.sent("post", "CORG")) == 4  # one text and three charts
    assert len(health.sent("dm", "U1")) == 1 and len(health.sent("dm", "U2")) == 1
    # The weekly report also stored the week's page for any replica to serve.
    async with first.db.sessions() as session:
        stored = await page_snapshot(session, "fake", health.workspace, "week")
    assert stored is not None and stored[0] == health.clock.now


async def test_report_link_builds_the_page_before_sending_it(
    health: Community, probe: Probe, monkeypatch: pytest.MonkeyPatch
) -> None:
    await build_a_month(health, probe)
    link = urlparse(await dashboard_link(health))
    query = {k: v[0] for k, v in parse_qs(link.query).items()}

    async def no_rebuild(*_: object) -> None:
        raise AssertionError("the first view rebuilt the report")

    monkeypatch.setattr(dashboard_service, "draw", no_rebuild)
    async with TestClient(TestServer(web_application(health.kindred))) as client:
        assert (await client.get(link.path, params=query)).status == 200
        csv_page = await client.get("/health/dashboard.csv", params={**query, "table": "daily"})
        assert csv_page.status == 200


# --- the page's snapshot, shared by every replica ---------------------------------------------


@pytest.fixture
async def health_on_db(
    settings: Settings, db: Database, clock: Clock, platform: FakePlatform, probe: Probe
) -> AsyncIterator[Community]:
    """The health fixture on SQLite and on PostgreSQL."""
    configured = replace(
        settings,
        database_url=str(db.url),
        public_url="https://kindred.example.com",
        dashboard_secret=Secret(SECRET),
    )
    app = Kindred(configured, db, clock=clock, features=[*declared_features(), probe.feature()])
    app.attach(platform)
    await app.start(dispatch=False, schedule=False)
    yield Community(app, platform, clock)
    await app.stop()


class Draws:
    """Counts the dashboard's report builds, on every replica of this process."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.count = 0
        real = dashboard_service.draw

        async def counted(*args: object) -> object:
            self.count += 1
            return await real(*args)  # type: ignore[arg-type]

        monkeypatch.setattr(dashboard_service, "draw", counted)


async def test_another_replica_serves_the_linked_page_from_the_stored_snapshot(
    health_on_db: Community, probe: Probe, platform: FakePlatform, monkeypatch: pytest.MonkeyPatch
) -> None:
    health = health_on_db
    await build_a_month(health, probe)
    link = urlparse(await dashboard_link(health))
    query = {k: v[0] for k, v in parse_qs(link.query).items()}
    first = health.kindred
    draws = Draws(monkeypatch)
    # Another replica: its own process state and its own connections, the same database.
    db = Database(str(first.db.url), schema=first.db.schema)
    second = Kindred(
        first.settings, db, clock=first.clock, features=first.features, instance="second"
    )
    second.attach(platform)
    await second.start(dispatch=False, schedule=False)
    try:
        async with (
            TestClient(TestServer(web_application(first))) as on_first,
            TestClient(TestServer(web_application(second))) as on_second,
        ):
            page = await on_second.get(link.path, params=query)
            assert page.status == 200
            html = await page.text()
            assert html.count('src="data:image/png;base64,') == 3
            assert "Newcomer activation (14 days)" in html
            assert "<code>/kindred welcome setup auto_buddy=yes</code>" in html
            assert html == await (await on_first.get(link.path, params=query)).text()
            csv_page = await on_second.get(
                "/health/dashboard.csv", params={**query, "table": "activation"}
            )
            assert (await csv_page.text()).splitlines()[0] == "path,newcomers who took it,share"
            # Still the stored page 59 minutes on, while the link is valid.
            health.clock.now += timedelta(minutes=59)
            assert (await on_second.get(link.path, params=query)).status == 200
            assert draws.count == 0
            # `report link` also built the selector's other periods, in the background,
            # and stored them for every replica.
            assert draws.count == 0
            for period in ("week", "quarter"):
                other = await on_second.get(link.path, params={**query, "p": period})
                assert other.status == 200 and f"last {period}" in await other.text()
            assert draws.count == 0
            # The link's rules stay: tampered 403, expired 403.
            assert (await on_second.get(link.path, params={**query, "c": "fake:W2"})).status == 403
            health.clock.now += timedelta(minutes=2)
            assert (await on_second.get(link.path, params=query)).status == 403
        # A stored page older than the freshness window is rebuilt when asked for.
        health.clock.now += dashboard_service.PAGE_FRESH_FOR
        rebuilt = await dashboard_service.snapshot(
            second, dashboard_service.PageOf("fake", health.workspace, "month")
        )
        assert draws.count == 1 and rebuilt.built_at == health.clock.now
        again = await dashboard_service.snapshot(
            first, dashboard_service.PageOf("fake", health.workspace, "month")
        )
        assert draws.count == 1 and again == rebuilt
    finally:
        await second.stop()
        await db.dispose()


def fresh_link(health: Community, period: str = "month", *, names: bool = False) -> dict[str, str]:
    """A link's query as `report link` signs it, without building any page."""
    link = dashboard_service.signed_link(
        health.kindred.settings, "fake", health.workspace, health.clock.now, period, names=names
    )
    return {k: v[0] for k, v in parse_qs(urlparse(link).query).items()}


async def test_a_view_never_builds_the_page_it_shows_a_stored_one_or_says_it_is_coming(
    health_on_db: Community, probe: Probe, monkeypatch: pytest.MonkeyPatch
) -> None:
    health = health_on_db
    await build_a_month(health, probe)
    kindred = health.kindred
    draws = Draws(monkeypatch)
    async with TestClient(TestServer(web_application(kindred))) as client:
        # No page stored yet: the view answers at once, and the build runs behind it.
        query = fresh_link(health)
        preparing = await client.get(dashboard_service.PAGE_PATH, params=query)
        assert preparing.status == 202
        html = await preparing.text()
        assert '<meta http-equiv="refresh" content="5">' in html
        assert "preparing the figures for the last month" in html
        csv_page = await client.get(
            dashboard_service.CSV_PATH, params={**query, "table": "figures"}
        )
        assert csv_page.status == 503 and csv_page.headers["Retry-After"] == "5"
        # Asking again while it builds starts no second build.
        assert (await client.get(dashboard_service.PAGE_PATH, params=query)).status == 202
        await kindred.background.idle()
        assert draws.count == 1
        ready = await client.get(dashboard_service.PAGE_PATH, params=query)
        assert ready.status == 200
        first_html = await ready.text()
        assert 'id="rebuilding"' not in first_html and "Newcomer activation" in first_html
        # An old page is shown at once, marked as such, while a newer one is built.
        built_at = health.clock.now
        health.clock.now += dashboard_service.PAGE_FRESH_FOR
        probe.actions.append(MemberAction("NEW0", "coffee", health.clock.now - timedelta(hours=1)))
        query = fresh_link(health)
        stale = await client.get(dashboard_service.PAGE_PATH, params=query)
        assert stale.status == 200
        stale_html = await stale.text()
        assert 'id="rebuilding"' in stale_html
        assert f"These figures are from {built_at:%Y-%m-%d %H:%M} UTC" in stale_html
        await kindred.background.idle()
        assert draws.count == 2
        renewed = await (await client.get(dashboard_service.PAGE_PATH, params=query)).text()
        assert 'id="rebuilding"' not in renewed
        assert f"as of {health.clock.now:%Y-%m-%d %H:%M} UTC" in renewed


async def name_members(health: Community, names: dict[str, str]) -> None:
    async with health.kindred.db.transaction() as session:
        for user_id, name in names.items():
            member = (
                await session.execute(select(Member).where(Member.user_id == user_id))
            ).scalar_one()
            member.display_name = name


async def test_names_appear_only_on_a_link_that_asked_for_them(
    health_on_db: Community, probe: Probe
) -> None:
    health = health_on_db
    await build_a_month(health, probe)
    hostile = '=HYPERLINK("https://evil.example","x")'
    await name_members(
        health, {"NEW0": hostile, "NEW1": "<script>alert(1)</script>", "OLD0": "Olga Old"}
    )
    async with health.kindred.db.transaction() as session:
        await session.execute(
            sa_update(Member).where(Member.user_id == "NEW3").values(deactivated=True)
        )
    assert "sent you a link" in await health.say("report link names:yes")
    await health.deliver()
    dm = [s for s in health.sent("dm", health.admin) if "dashboard" in s.text][-1]
    assert "names members" in dm.message.text
    url = urlparse(dm.message.text[dm.message.text.index("https://") :].split(")")[0])
    named = {k: v[0] for k, v in parse_qs(url.query).items()}
    assert named["n"] == "1"
    await health.kindred.background.idle()
    async with TestClient(TestServer(web_application(health.kindred))) as client:
        html = await (await client.get(url.path, params=named)).text()
        assert "Newcomers yet to take a first step" in html
        assert "Members who posted on the most days" in html
        # Of the 14 who joined, NEW5 joined coffee and NEW9..NEW13 posted: 8 wait,
        # the earliest joiner first, less NEW3, whose account is deactivated.
        newcomers = html.split('id="table-newcomers"')[1].split("</table>")[0]
        assert newcomers.count("<tr>") == 1 + 7
        assert "New5" not in newcomers and "New9" not in newcomers
        assert "New3" not in newcomers
        assert newcomers.index("HYPERLINK") < newcomers.index("<td>New2</td>")
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "<script>" not in html
        contributors = html.split('id="table-contributors"')[1].split("</table>")[0]
        # OLD0 posted on 3 days (and replied to five newcomers on one of them).
        assert "<td>Olga Old</td><td>3</td>" in contributors
        exported = await client.get(
            dashboard_service.CSV_PATH, params={**named, "table": "newcomers"}
        )
        rows = (await exported.text()).splitlines()
        assert rows[0] == "member,joined,days since joining"
        # A name a spreadsheet would run as a formula is exported as text.
        assert rows[1].startswith("\"'=HYPERLINK(")
        # The same link without names, or names added to a link signed without them.
        plain_link = {k: v for k, v in named.items() if k != "n"}
        assert (await client.get(url.path, params=plain_link)).status == 403
        unnamed = fresh_link(health)
        await dashboard_service.snapshot(
            health.kindred, dashboard_service.PageOf("fake", health.workspace, "month")
        )
        html = await (await client.get(url.path, params=unnamed)).text()
        assert "Olga Old" not in html and "HYPERLINK" not in html
        assert "table-newcomers" not in html
        assert (await client.get(url.path, params={**unnamed, "n": "1"})).status == 403
        refused = await client.get(
            dashboard_service.CSV_PATH, params={**unnamed, "table": "newcomers"}
        )
        assert refused.status == 403
    # Names are kept no longer than a link can show them: the health tick deletes
    # pages with names once they are older than any live link, and only those.
    scope = ("fake", health.workspace)

    async def kept() -> list[str]:
        async with health.kindred.db.sessions() as session:
            keys = ("month", "week", "quarter", "month:names", "week:names", "quarter:names")
            return [key for key in keys if await page_snapshot(session, *scope, key) is not None]

    assert await kept() == ["month", "month:names", "week:names", "quarter:names"]
    health.clock.now += dashboard_service.PAGE_FRESH_FOR - timedelta(minutes=1)
    await health.kindred.scheduler.catch_up()
    assert len(await kept()) == 4
    health.clock.now += timedelta(minutes=2)
    await health.kindred.scheduler.catch_up()
    assert await kept() == ["month"]


async def test_the_page_shows_satisfaction_after_a_session(
    health: Community, probe: Probe, monkeypatch: pytest.MonkeyPatch
) -> None:
    await build_a_month(health, probe)
    real = dashboard_service.draw

    async def rated(*args: Any) -> Any:
        drawn = await real(*args)
        report = replace(
            drawn.report,
            current={**drawn.report.current, "mentor.ratings": 7.0, "mentor.median_rating": 4.5},
        )
        return replace(drawn, report=report)

    monkeypatch.setattr(dashboard_service, "draw", rated)
    query = fresh_link(health)
    await dashboard_service.snapshot(
        health.kindred, dashboard_service.PageOf("fake", health.workspace, "month")
    )
    async with TestClient(TestServer(web_application(health.kindred))) as client:
        html = await (await client.get(dashboard_service.PAGE_PATH, params=query)).text()
        table = html.split('id="table-after_session"')[1].split("</table>")[0]
        assert "<td>Mentorship rating (median)</td><td>4.50</td><td>7</td>" in table
        exported = await client.get(
            dashboard_service.CSV_PATH, params={**query, "table": "after_session"}
        )
        assert (await exported.text()).splitlines() == [
            "after a session,rating,answers",
            "Mentorship rating (median),4.50,7",
        ]


async def test_the_report_shows_satisfaction_after_a_session_from_the_rituals_figures(
    health: Community, probe: Probe
) -> None:
    from bot.services.health import build_report, report_text

    await build_a_month(health, probe)
    async with health.kindred.db.sessions() as session:
        report = await build_report(health.kindred, session, "fake", health.workspace, "month")
    assert "After a session" not in report_text(health.kindred.templates, report)
    rated = replace(
        report,
        current={
            **report.current,
            "coffee.groups": 10.0,
            "coffee.answer_rate": 0.6,  # 6 groups answered
            "coffee.meet_rate": 0.5,  # 3 of the 6 met
            "mentor.ratings": 7.0,
            "mentor.median_rating": 4.5,
            "events.ratings": 3.0,  # fewer than 5: hidden
            "events.average_rating": 4.7,
        },
    )
    text = read(report_text(health.kindred.templates, rated))
    assert "After a session" in text
    assert "Coffee meet rate: 50 % (6 answered)" in text
    assert "Mentorship rating (median): 4.50 (7 answered)" in text
    assert "Event rating (average): – (3 answered)" in text
    assert "Mastermind rating" not in text.split("After a session")[1].split("Suggested")[0]
