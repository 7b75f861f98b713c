from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from icalendar import Calendar
from sqlalchemy import func, select

from bot.core.app import Kindred
from bot.core.figures import Period
from bot.core.platform import Button, CalendarEvent, Identity, Reply
from bot.core.settings import Settings
from bot.jobs import events as jobs
from bot.services.events import event_timeline, run_step
from storage.db import Database
from storage.events import ClinicSubmission, Event, EventRsvp
from storage.models import JobClaim
from tests.bot.adapters.slack_harness import ADMIN, MEMBER, populate, running_slack, slack_settings
from tests.conftest import Clock
from tests.driver import Community, contribution_words, plain
from tests.fakes.discord_harness import discord_settings_for, serving
from tests.fakes.discord_server import Channel, FakeDiscord, Member
from tests.fakes.platform import FakePlatform, Sent
from tests.fakes.slack import FakeSlack, block_action_payload, interactive, view_submission

CHANNEL = "C-events"
LINK = "https://meet.example.com/churn"
# The clock starts on Mon 23 Nov 2026, 09:00 UTC; the clinic is on Wednesday.
STARTS = datetime(2026, 11, 25, 16, 0, tzinfo=UTC)
SCHEDULE = (
    f'event schedule clinic submission=1 at="2026-11-25 16:00" timezone=UTC capacity=2 '
    f"link={LINK} tags=churn"
)


@pytest.fixture
async def kindred(
    settings: Settings, db: Database, clock: Clock, platform: FakePlatform
) -> AsyncIterator[Kindred]:
    """The events tests on the shared driver run on SQLite and on PostgreSQL."""
    app = Kindred(replace(settings, database_url=str(db.url)), db, clock=clock)
    app.attach(platform)
    yield app
    await app.stop()


@pytest.fixture
def community(kindred: Kindred, platform: FakePlatform, clock: Clock) -> Community:
    return Community(kindred, platform, clock, channel=CHANNEL, admin="alice", deliver_each=True)


@pytest.fixture
async def app(community: Community) -> Community:
    await community.kindred.start(dispatch=False, schedule=False)
    return community


def seen(shown: Sent | Reply | str | None) -> str:
    if isinstance(shown, Sent):
        return plain(shown.message).replace("**", "")
    return plain(shown).replace("**", "")


async def say(community: Community, text: str, user: str | None = None) -> str:
    """The answer as a member reads it, without the bold markers."""
    return (await community.say(text, user)).replace("**", "")


def find(buttons: tuple[Button, ...] | list[Button], action_id: str, value: str = "") -> Button:
    found = [b for b in buttons if b.action_id == action_id and b.value.startswith(value)]
    assert found, f"no {action_id} among {buttons}"
    return found[0]


def everything_sent(community: Community) -> str:
    texts = [seen(sent) for sent in community.sent()]
    files = [
        sent.message.attachment.content.decode()
        for sent in community.sent()
        if sent.message.attachment is not None
    ]
    return "\n".join(texts + files)


async def submit_clinic(community: Community, user: str = "bob", hide: str = "yes") -> Reply:
    opened = await community.command("clinic submit", user)
    assert opened.modal is not None
    assert [f.field_id for f in opened.modal.fields] == [
        "problem",
        "context",
        "tried",
        "ask",
        "hide_company",
    ]
    return await community.submit(
        opened.modal.callback_id,
        user=user,
        problem="Churn doubles after the first renewal",
        context="B2B SaaS, 400 accounts, a team of six",
        tried="An exit survey and a win-back email",
        ask="What would you measure first?",
        hide_company=hide,
    )


async def scheduled_clinic(app: Community) -> None:
    await say(app, 'profile set company=Globex role="Support Manager"', "bob")
    await say(app, "profile set timezone=America/New_York", "carol")
    await submit_clinic(app)
    queue = await app.command("clinic queue")
    await app.press(find(queue.message.buttons if queue.message else (), "events.clinic_accept"))
    assert "Scheduled event #1" in await say(app, SCHEDULE)


async def stored_event(community: Community, event_id: int = 1) -> Event:
    async with community.kindred.db.sessions() as session:
        return (await session.execute(select(Event).where(Event.id == event_id))).scalar_one()


async def rsvp_rows(community: Community) -> dict[str, str]:
    async with community.kindred.db.sessions() as session:
        rows = (await session.execute(select(EventRsvp))).scalars()
        return {row.user_id: row.status for row in rows}


async def test_a_clinic_from_submission_to_its_day_30_outcome(
    app: Community, platform: FakePlatform
) -> None:
    answer = seen(await submit_clinic(app))
    assert "clinic submission #1 is in the organisers' queue" in answer
    assert "company name stays hidden" in answer
    assert "Only community admins" in seen(await app.command("clinic queue", "bob"))
    queue = await app.command("clinic queue")
    shown = seen(queue)
    assert "#1" in shown and "Churn doubles after the first renewal" in shown
    assert "(company hidden)" in shown
    assert queue.message is not None
    accepted = seen(await app.press(find(queue.message.buttons, "events.clinic_accept")))
    assert "Accepted clinic submission #1" in accepted
    assert "was accepted" in app.dms("bob")[-1]

    await say(app, 'profile set company=Globex role="Support Manager"', "bob")
    await say(app, "profile set timezone=America/New_York", "carol")
    summary = await say(app, SCHEDULE)
    assert "Scheduled event #1: Churn doubles after the first renewal" in summary
    assert "2 seats, then a waitlist" in summary and ".ics" in summary
    announcement = app.sent("post", CHANNEL)[0]
    text = seen(announcement)
    assert "Case-study clinic #1" in text and "Wed 25 Nov 2026, 16:00–17:00 (UTC)" in text
    # Beside the organiser's zone, each reader's own (plain text shows it in UTC).
    assert "(UTC) · Wed 25 Nov 2026, 16:00 UTC–17:00 UTC" in text
    assert "Presented by <@bob>, Support Manager" in text and "Globex" not in text
    assert "What would you measure first?" in text and LINK in text
    assert "Going 0/2" in text and "Add to calendar" in text
    assert [b.label for b in announcement.message.buttons] == ["Going", "Maybe", "Can't go"]
    ics = app.sent("post", CHANNEL)[1].message.attachment
    assert ics is not None and ics.filename == "event-1.ics"
    entry = Calendar.from_ical(ics.content).walk("VEVENT")[0]
    assert entry.decoded("dtstart") == STARTS
    assert entry.decoded("dtend") == STARTS + timedelta(hours=1)
    assert str(entry.get("summary")) == "Churn doubles after the first renewal"

    going = find(announcement.message.buttons, "events.going")
    assert "11:00–12:00 (America/New_York)" in seen(await app.press(going, "carol"))
    assert "You're going" in seen(await app.press(going, "dan"))
    waitlisted = seen(await app.press(going, "erin"))
    assert "is full (2 seats)" in waitlisted and "#1 on the waitlist" in waitlisted
    assert "#2 on the waitlist" in seen(await app.press(going, "farid"))
    assert "#1 on the waitlist" in seen(await app.press(going, "erin"))
    assert await rsvp_rows(app) == {
        "carol": "going",
        "dan": "going",
        "erin": "waitlist",
        "farid": "waitlist",
    }
    assert "Going 2/2 · waitlist 2" in seen(app.last("update", CHANNEL))

    await app.press(find(announcement.message.buttons, "events.cant"), "dan")
    assert (await rsvp_rows(app))["erin"] == "going"
    promoted = app.dms("erin")[-1]
    assert "A seat opened up: you're going to" in promoted and "16:00–17:00 (UTC)" in promoted
    assert (await rsvp_rows(app))["farid"] == "waitlist"

    # T−24 h: Going members (not Maybe, not the waitlist) and the presenter's brief.
    await app.advance(to=STARTS - timedelta(hours=24))
    carol = app.dms("carol")
    assert len(carol) == 1 and "Tomorrow: Churn doubles" in carol[0]
    assert "Wed 25 Nov 2026, 11:00–12:00 (America/New_York)" in carol[0]
    assert len(app.dms("erin")) == 2 and app.dms("farid") == []
    brief = app.dms("bob")[-1]
    assert "Your case-study clinic is tomorrow" in brief
    assert "An exit survey and a win-back email" in brief
    assert "2 going (<@carol>, <@erin>), 0 maybe, 1 on the waitlist" in brief
    await app.advance(to=STARTS - timedelta(hours=1))
    assert "Starting in an hour" in app.dms("carol")[-1]
    assert len(app.dms("carol")) == 2

    await app.advance(to=STARTS)
    live = app.last("thread_reply", CHANNEL)
    assert "Event #1 is starting" in seen(live)
    await app.advance(to=STARTS + timedelta(hours=1))
    request = app.last("dm", "bob")
    assert "has ended. Would you write its recap" in seen(request)
    assert "Write the recap" in [b.label for b in request.message.buttons]
    assert app.dms("alice", "Would you write its recap")
    rate_request = app.last("dm", "carol")
    assert [b.label for b in rate_request.message.buttons][:5] == [
        "1 ★",
        "2 ★",
        "3 ★",
        "4 ★",
        "5 ★",
    ]

    form = await app.press(find(request.message.buttons, "events.recap"), "bob")
    assert form.modal is not None
    assert "Only the organiser or the presenter" in seen(
        await app.press(find(request.message.buttons, "events.recap"), "carol")
    )
    saved = await app.submit(
        form.modal.callback_id,
        form.modal.value,
        "bob",
        ideas="Measure time-to-first-value before renewal",
        actions="Add a day-7 health check (Bob)",
    )
    assert "Saved the recap of event #1" in seen(saved)
    assert "Measure time-to-first-value" in seen(app.last("thread_reply", CHANNEL))

    rated = await app.press(find(rate_request.message.buttons, "events.rate", "1:4"), "carol")
    assert "You rated Churn doubles after the first renewal 4/5" in seen(rated)
    assert "Only members who were going" in seen(
        await app.press(find(rate_request.message.buttons, "events.rate", "1:5"), "farid")
    )

    await app.advance(days=30)
    outcome_request = app.last("dm", "bob")
    assert "It's been 30 days" in seen(outcome_request)
    told = await app.press(find(outcome_request.message.buttons, "events.outcome"), "bob")
    assert told.modal is not None
    await app.submit(
        told.modal.callback_id,
        told.modal.value,
        "bob",
        tried="Yes, the day-7 health check",
        changed="Renewal churn fell from 12% to 8%",
    )
    assert "Renewal churn fell" in seen(app.last("thread_reply", CHANNEL))

    library = await say(app, "clinic library churn", "dan")
    assert "Churn doubles after the first renewal" in library
    assert "Measure time-to-first-value" in library and "Renewal churn fell" in library
    assert "rated 4.0/5" in library
    assert "No past clinic or showcase matches `pricing`" in await say(
        app, "clinic library pricing", "dan"
    )
    # The hidden company appears nowhere: posts, DMs, threads, files.
    assert "Globex" not in everything_sent(app) + library
    assert (await stored_event(app)).next_due_at is None


async def test_bad_input_gets_a_clear_answer_and_changes_nothing(app: Community) -> None:
    base = 'event schedule meetup title="CX drinks"'
    refusals = {
        f'{base} at="2026-11-20 18:00"': "is in the past",
        f'{base} at="2026-11-30 18:00" timezone=Mars/Olympus': "not a time zone I know",
        f'{base} at="2026-11-30 18:00" capacity=0': "at least 1 seat",
        f'{base} at="2026-11-30 18:00" duration=20h': "at most 8 hours",
        f'{base} at="2026-11-30 18:00" duration=soon': "couldn't read `soon` as a duration",
        f'{base} at="tomorrow"': "couldn't read `tomorrow` as a date and time",
        f'{base} at="2026-11-30 18:00" link=zoom': "is not a web address",
        'event schedule clinic title="x" at="2026-11-30 18:00"': "needs a presenter",
        'event schedule clinic submission=9 at="2026-11-30 18:00"': "no clinic submission #9",
    }
    for command, refusal in refusals.items():
        assert refusal in await say(app, command), command
    assert "Only community admins" in await say(app, f'{base} at="2026-11-30 18:00"', "bob")
    assert "`event` is missing" in await say(app, "event cancel")
    assert "no event #4" in await say(app, "event cancel 4")
    async with app.kindred.db.sessions() as session:
        assert (await session.execute(select(func.count()).select_from(Event))).scalar() == 0
    assert app.sent() == []


async def test_bad_forms_are_refused(app: Community) -> None:
    opened = await app.command("clinic submit", "bob")
    assert opened.modal is not None
    refused = await app.submit(
        opened.modal.callback_id,
        user="bob",
        problem="Churn",
        context="x",
        tried="y",
        ask="z",
        hide_company="perhaps",
    )
    assert "should be yes or no" in seen(refused)
    empty = await app.submit(
        opened.modal.callback_id, user="bob", problem=" ", context="x", tried="y", ask="z"
    )
    assert "Please fill in the problem in a sentence" in seen(empty)
    async with app.kindred.db.sessions() as session:
        count = select(func.count()).select_from(ClinicSubmission)
        assert (await session.execute(count)).scalar() == 0


async def test_declining_and_asking_for_more_reach_the_member_privately(app: Community) -> None:
    await submit_clinic(app, hide="no")
    queue = await app.command("clinic queue")
    assert queue.message is not None
    more = await app.press(find(queue.message.buttons, "events.clinic_more"))
    assert more.modal is not None
    await app.submit(more.modal.callback_id, more.modal.value, note="How big is the team?")
    asked = app.last("dm", "bob")
    assert "How big is the team?" in seen(asked)
    answer = await app.press(find(asked.message.buttons, "events.clinic_answer"), "bob")
    assert answer.modal is not None
    done = await app.submit(answer.modal.callback_id, answer.modal.value, "bob", note="Six people")
    assert "back in the organisers' queue" in seen(done)
    assert "Answer: Six people" in seen(await app.command("clinic queue"))
    decline = await app.press(find(queue.message.buttons, "events.clinic_decline"))
    assert decline.modal is not None
    await app.submit(
        decline.modal.callback_id, decline.modal.value, note="Too close to last week's"
    )
    assert "Too close to last week's" in app.dms("bob")[-1]
    assert "No clinic submissions are waiting" in seen(await app.command("clinic queue"))
    again = await app.press(find(queue.message.buttons, "events.clinic_accept"))
    assert "is declined" in seen(again)
    assert app.posts() == []


async def test_reminders_fire_once_across_restarts_and_replicas(
    app: Community, settings_for_replica: Kindred
) -> None:
    await say(app, 'event schedule meetup title="CX drinks" at="2026-11-25 18:00" timezone=UTC')
    going = find(app.sent("post", CHANNEL)[0].message.buttons, "events.going")
    await app.press(going, "carol")
    due = datetime(2026, 11, 24, 18, 0, tzinfo=UTC)
    app.clock.now = due
    ran = [
        await jobs.tick(app.kindred, due),
        await jobs.tick(settings_for_replica, due),
        await jobs.tick(app.kindred, due + timedelta(minutes=1)),
    ]
    await app.deliver()
    assert ran == [1, 0, 0]
    assert len(app.dms("carol", "Tomorrow: CX drinks")) == 1
    # A restart: a new core on the same database finds nothing left to do.
    await app.advance(minutes=5)
    assert len(app.dms("carol", "Tomorrow: CX drinks")) == 1
    async with app.kindred.db.sessions() as session:
        claims = (await session.execute(select(JobClaim.job))).scalars()
        assert "events.remind_day:1" in list(claims)


@pytest.fixture
async def settings_for_replica(kindred: Kindred, platform: FakePlatform, clock: Clock) -> Kindred:
    """A second replica: its own core on the same database and platform."""
    replica = Kindred(kindred.settings, kindred.db, clock=clock)
    replica.attach(platform)
    return replica


async def test_a_cancelled_event_sends_a_cancellation_not_reminders(app: Community) -> None:
    await say(app, 'event schedule meetup title="CX drinks" at="2026-11-25 18:00" capacity=1')
    buttons = app.sent("post", CHANNEL)[0].message.buttons
    await app.press(find(buttons, "events.going"), "carol")
    await app.press(find(buttons, "events.going"), "dan")
    await app.press(find(buttons, "events.maybe"), "erin")
    assert "Only community admins" in await say(app, "event cancel 1", "bob")
    cancelled = await say(app, "event cancel 1 The venue closed")
    assert "Cancelled event #1" in cancelled and "3 members" in cancelled
    for user in ("carol", "dan", "erin"):
        assert "Cancelled: CX drinks" in app.dms(user)[-1]
        assert "The venue closed" in app.dms(user)[-1]
    assert "Cancelled: Meetup #1" in seen(app.last("update", CHANNEL))
    assert app.last("update", CHANNEL).message.buttons == ()
    assert "is cancelled" in seen(await app.press(find(buttons, "events.going"), "farid"))
    before = len(app.sent())
    await app.advance(days=3)
    assert len(app.sent()) == before
    assert "already cancelled" in await say(app, "event cancel 1")
    assert "No upcoming events" in await say(app, "event list", "carol")


async def test_editing_moves_reminders_tells_members_and_fills_new_seats(
    app: Community,
) -> None:
    await say(app, 'event schedule meetup title="CX drinks" at="2026-11-25 18:00" capacity=1')
    buttons = app.sent("post", CHANNEL)[0].message.buttons
    await app.press(find(buttons, "events.going"), "carol")
    await app.press(find(buttons, "events.going"), "dan")
    assert "at least 1 seat" in await say(app, "event edit 1 capacity=0")
    edited = await say(app, 'event edit 1 at="2026-11-27 18:00" capacity=2')
    assert "Updated the time, capacity of event #1" in edited
    assert "1 member moved up" in edited
    assert "A seat opened up" in app.dms("dan")[0]
    assert "changed: CX drinks" in app.dms("carol")[-1]
    assert "Fri 27 Nov 2026, 18:00–19:00 (UTC)" in app.dms("carol")[-1]
    ics = app.sent("post", CHANNEL)[-1].message.attachment
    assert ics is not None
    entry = Calendar.from_ical(ics.content).walk("VEVENT")[0]
    assert entry.decoded("dtstart") == datetime(2026, 11, 27, 18, 0, tzinfo=UTC)
    assert int(entry.get("sequence")) == 1
    # The old reminder moment passes quietly; the new one reminds.
    await app.advance(to=datetime(2026, 11, 24, 18, 0, tzinfo=UTC))
    assert app.dms("carol", "Tomorrow") == []
    await app.advance(to=datetime(2026, 11, 26, 18, 0, tzinfo=UTC))
    assert len(app.dms("carol", "Tomorrow: CX drinks")) == 1
    assert "Nothing to change" in await say(app, "event edit 1")
    assert "Updated the time zone of event #1" in await say(app, "event edit 1 timezone=Asia/Tokyo")
    assert "Sat 28 Nov 2026, 03:00–04:00 (Asia/Tokyo)" in seen(app.last("update", CHANNEL))
    assert "can't go below 2" in await say(app, "event edit 1 capacity=1")


async def test_a_member_who_leaves_gives_their_seat_to_the_waitlist(app: Community) -> None:
    await say(app, 'event schedule meetup title="CX drinks" at="2026-11-25 18:00" capacity=1')
    going = find(app.sent("post", CHANNEL)[0].message.buttons, "events.going")
    await app.press(going, "carol")
    await app.press(going, "dan")
    await app.press(going, "erin")
    await app.leave("carol", channel=CHANNEL)  # leaving a channel keeps the seat
    assert (await rsvp_rows(app))["carol"] == "going"
    await app.leave("carol")
    assert await rsvp_rows(app) == {"dan": "going", "erin": "waitlist"}
    assert "A seat opened up" in app.dms("dan")[-1]


async def test_maybe_and_cant_and_event_lists_in_my_time_zone(app: Community) -> None:
    await say(app, "profile set timezone=Asia/Tokyo", "carol")
    await say(
        app,
        'event schedule showcase title="Our NPS rebuild" presenter=<@bob> '
        'at="2026-11-30 09:00" timezone=Europe/Berlin remind_maybe=on',
    )
    buttons = app.sent("post", CHANNEL)[0].message.buttons
    assert "maybe for Our NPS rebuild" in seen(
        await app.press(find(buttons, "events.maybe"), "carol")
    )
    listing = await say(app, "event list", "carol")
    assert "times in Asia/Tokyo" in listing and "Mon 30 Nov 2026, 17:00–18:00" in listing
    assert "you: maybe" in listing
    mine = await say(app, "event mine", "carol")
    assert "Your events" in mine and "Our NPS rebuild" in mine
    assert "haven't answered" in await say(app, "event mine", "dan")
    await app.advance(to=datetime(2026, 11, 29, 8, 0, tzinfo=UTC))
    assert "You said maybe" in app.dms("carol")[-1]


async def test_native_scheduled_events_follow_the_event(
    app: Community, platform: FakePlatform
) -> None:
    platform.scheduled_events = True
    summary = await say(
        app, f'event schedule meetup title="CX drinks" at="2026-11-25 18:00" link={LINK}'
    )
    assert "appears in the server's events" in summary
    assert platform.calendar_calls == [("create", "E1")]
    assert platform.calendar["E1"].location == LINK
    assert all(sent.message.attachment is None for sent in app.sent())
    await say(app, 'event edit 1 title="CX drinks, again"')
    assert platform.calendar_calls[-1] == ("edit", "E1")
    assert platform.calendar["E1"].title == "CX drinks, again"
    going = find(app.sent("post", CHANNEL)[0].message.buttons, "events.going")
    await app.press(going, "dan")
    interest = app.inbound("event_interest_added", "carol", value="E1")
    await app.handle(interest)
    await app.handle(interest)  # a re-delivery acts once
    await app.handle(app.inbound("event_interest_added", "dan", value="E1"))
    await app.handle(app.inbound("event_interest_added", "erin", value="E404"))
    assert await rsvp_rows(app) == {"carol": "maybe", "dan": "going"}
    await app.handle(app.inbound("event_interest_removed", "carol", value="E1"))
    await app.handle(app.inbound("event_interest_removed", "dan", value="E1"))
    assert await rsvp_rows(app) == {"dan": "going"}
    await say(app, "event cancel 1")
    assert platform.calendar_calls[-1] == ("cancel", "E1")


async def test_a_cancelled_clinic_can_be_scheduled_again(app: Community) -> None:
    await scheduled_clinic(app)
    assert "is scheduled; accept it" in await say(app, SCHEDULE)
    await say(app, "event cancel 1 The presenter is ill")
    assert "Clinic submissions (1" in seen(await app.command("clinic queue"))
    assert "Scheduled event #2" in await say(app, SCHEDULE.replace("25 16:00", "27 16:00"))


async def test_figures_actions_and_privacy(app: Community) -> None:
    await scheduled_clinic(app)
    buttons = app.sent("post", CHANNEL)[0].message.buttons
    await app.press(find(buttons, "events.going"), "carol")
    await app.advance(to=STARTS + timedelta(hours=1))
    rate = app.last("dm", "carol")
    await app.press(find(rate.message.buttons, "events.rate", "1:5"), "carol")
    period = Period("fake", "W1", STARTS - timedelta(days=7), STARTS + timedelta(days=7))
    async with app.kindred.db.sessions() as session:
        figures = (await app.kindred.figures(session, period))["events"]
        actions = (await app.kindred.member_actions(session, period))["events"]
        stored = await app.kindred.stored_about(session, Identity("fake", "W1", "carol"))
    assert figures["events_held"] == 1 and figures["clinics_held"] == 1
    assert figures["rsvps"] == 1 and figures["attended"] == 1
    assert figures["ratings"] == 1 and figures["average_rating"] == 5.0
    kinds = {(action.user_id, action.kind, action.contribution) for action in actions}
    assert kinds == {
        ("carol", "event_rsvp", False),
        ("carol", "event_attended", False),
        ("bob", "clinic_presented", True),
    }
    assert [contribution_words(a.kind) for a in actions if a.contribution] == [
        "presented a case-study clinic"
    ]
    assert stored["events"] == ["1 event RSVP", "1 event rating"]
    async with app.kindred.db.transaction() as session:
        forgotten = await app.kindred.forget_feedback(session, Identity("fake", "W1", "carol"))
    assert forgotten["events"] == 1


@pytest.fixture
async def replicas(
    db: Database, settings: Settings, clock: Clock
) -> AsyncIterator[tuple[Community, Community]]:
    """Two replicas of Kindred, each with its own database engine (a connection pool
    of its own on PostgreSQL; SQLite serves one process, so they share one)."""
    second_db = (
        Database(str(db.url.render_as_string(hide_password=False)), schema=db.schema)
        if db.dialect == "postgresql"
        else db
    )
    platform = FakePlatform()
    apps = []
    for replica_db in (db, second_db):
        app = Kindred(replace(settings, database_url=str(replica_db.url)), replica_db, clock=clock)
        app.attach(platform)
        apps.append(app)
    first, second = (
        Community(app, platform, clock, channel=CHANNEL, admin="alice") for app in apps
    )
    yield first, second
    for app in apps:
        await app.stop()
    if second_db is not db:
        await second_db.dispose()


async def test_capacity_holds_under_concurrent_clicks_across_replicas(
    replicas: tuple[Community, Community],
) -> None:
    first, second = replicas
    await say(first, 'event schedule meetup title="CX drinks" at="2026-11-25 18:00" capacity=5')
    await first.deliver()
    going = find(first.sent("post", CHANNEL)[0].message.buttons, "events.going")
    people = [f"member{n:02}" for n in range(24)]
    answers = await asyncio.gather(
        *((first if n % 2 else second).press(going, user) for n, user in enumerate(people))
    )
    assert all("went wrong" not in seen(answer) for answer in answers)
    rows = await rsvp_rows(first)
    assert len(rows) == 24
    assert sum(status == "going" for status in rows.values()) == 5
    assert sum(status == "waitlist" for status in rows.values()) == 19
    seated = [user for user, status in rows.items() if status == "going"]
    cant = find(first.sent("post", CHANNEL)[0].message.buttons, "events.cant")
    await asyncio.gather(
        *((first if n % 2 else second).press(cant, user) for n, user in enumerate(seated[:3]))
    )
    await first.deliver()
    rows = await rsvp_rows(first)
    assert sum(status == "going" for status in rows.values()) == 5
    assert sum(status == "waitlist" for status in rows.values()) == 16
    promoted = [sent.target for sent in first.sent("dm") if "A seat opened up" in seen(sent)]
    assert len(promoted) == len(set(promoted)) == 3
    assert all(rows[user] == "going" for user in promoted)


# -- through the real Slack adapter (HTTP, signed requests, the fake Web API) ------------

SLACK_EVENTS = "CEVENTS"


def _slack_buttons(message: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        element
        for block in message.get("blocks", [])
        if block["type"] == "actions"
        for element in block["elements"]
    ]


async def _slack_press(
    slack: Any, message: dict[str, Any], action: str, user: str, channel: str, value: str = ""
) -> str:
    """Press the message's button for `action` (and `value`, among buttons alike);
    returns the key of the response_url the answer goes to."""
    [element] = [
        b
        for b in _slack_buttons(message)
        if b["action_id"].split(":")[1] == action and b["value"].endswith(value)
    ]
    key = uuid.uuid4().hex
    payload = block_action_payload(
        {name: element[name] for name in ("action_id", "value", "type")},
        team_id="T1",
        user_id=user,
        channel_id=channel,
        message_ts=message.get("ts"),
        response_url=slack.fake.response_url(key),
    )
    status, _ = await slack.sender.post(interactive(payload))
    assert status == 200
    return key


async def _slack_click(
    slack: Any, message: dict[str, Any], action: str, user: str, channel: str, value: str = ""
) -> dict[str, Any]:
    """Press a button and return the answer to the click."""
    return await slack.response(await _slack_press(slack, message, action, user, channel, value))


async def test_an_event_through_the_slack_adapter_with_its_ics_file(
    settings: Settings, sqlite_db: Database, clock: Clock
) -> None:
    fake = FakeSlack()
    await fake.start()
    populate(fake)
    fake.add_channel("T1", SLACK_EVENTS, [ADMIN, MEMBER, "UBEN", "UKINDRED"])
    try:
        async with running_slack(
            fake, slack_settings(settings, fake), sqlite_db, clock=clock
        ) as slack:
            answer = await slack.command(
                f'event schedule meetup title="CX drinks & churn" at="2026-11-25 18:00" '
                f"timezone=Europe/Berlin capacity=1 link={LINK}",
                user=ADMIN,
                channel=SLACK_EVENTS,
            )
            assert "Scheduled event #1: CX drinks &amp; churn" in answer["text"].replace("*", "")
            await slack.drain()
            posted = fake.messages("T1", SLACK_EVENTS)
            announcement = next(m for m in posted if _slack_buttons(m))
            assert "Meetup #1" in announcement["text"]
            assert "Wed 25 Nov 2026, 18:00–19:00 (Europe/Berlin)" in announcement["text"]
            start = int(datetime(2026, 11, 25, 17, 0, tzinfo=UTC).timestamp())
            local = f"<!date^{start}^{{date_short_pretty}} {{time}}|Wed 25 Nov 2026, 17:00 UTC>"
            assert local in announcement["text"]
            assert "|Add to calendar>" in announcement["text"]
            assert "calendar.google.com/calendar/render?action=TEMPLATE" in announcement["text"]
            # The .ics file, read back with a standard iCalendar parser.
            assert fake.calls_to("files.completeUploadExternal")
            [ics] = fake.uploads.values()
            [entry] = Calendar.from_ical(ics).walk("VEVENT")
            assert entry.decoded("dtstart") == datetime(2026, 11, 25, 17, 0, tzinfo=UTC)
            assert entry.decoded("dtend") == datetime(2026, 11, 25, 18, 0, tzinfo=UTC)
            assert str(entry.get("summary")) == "CX drinks & churn"

            going = await _slack_click(slack, announcement, "events.going", MEMBER, SLACK_EVENTS)
            assert "You're going to" in going["text"]
            waiting = await _slack_click(slack, announcement, "events.going", "UBEN", SLACK_EVENTS)
            assert "#1 on the waitlist" in waiting["text"]
            await _slack_click(slack, announcement, "events.cant", MEMBER, SLACK_EVENTS)
            await slack.drain()
            promoted = fake.messages("T1", "DUBEN")[-1]
            assert "A seat opened up" in promoted["text"]
            assert "Going 1/1" in fake.messages("T1", SLACK_EVENTS)[0]["text"]

            clock.now = datetime(2026, 11, 24, 17, 0, tzinfo=UTC)
            await slack.kindred.scheduler.catch_up()
            await slack.drain()
            assert "Tomorrow: CX drinks &amp; churn" in fake.messages("T1", "DUBEN")[-1]["text"]
            assert not any("Tomorrow" in m["text"] for m in fake.messages("T1", f"D{MEMBER}"))
    finally:
        await fake.close()


async def test_a_clinic_from_submission_to_outcome_through_the_slack_adapter(
    settings: Settings, sqlite_db: Database, clock: Clock
) -> None:
    fake = FakeSlack()
    await fake.start()
    populate(fake)
    fake.add_user("T1", "UCAT", "cat")
    fake.add_channel("T1", SLACK_EVENTS, [ADMIN, MEMBER, "UBEN", "UCAT", "UKINDRED"])
    presenter, dropping, waiting = MEMBER, "UBEN", "UCAT"

    async def submit_form(values: dict[str, str], user: str) -> None:
        form = await fake.wait_for(lambda: fake.opened_views[-1] if fake.opened_views else None)
        fake.opened_views.clear()
        body = view_submission(form, values, team_id="T1", user_id=user)
        assert (await slack.sender.post(body))[0] == 200
        await slack.drain()

    async def at(moment: datetime) -> None:
        clock.now = moment
        await slack.kindred.scheduler.catch_up()
        await slack.drain()

    def dms(user: str) -> list[dict[str, Any]]:
        return fake.messages("T1", f"D{user}")

    def thread() -> list[dict[str, Any]]:
        return [m for m in fake.messages("T1", SLACK_EVENTS) if m.get("thread_ts")]

    async def delivered(condition: Callable[[], bool]) -> None:
        """A form's submission is acked first and handled after: deliver until it shows."""
        for _ in range(100):
            await slack.drain()
            if condition():
                return
            await asyncio.sleep(0.05)
        raise AssertionError("never delivered")

    try:
        async with running_slack(
            fake, slack_settings(settings, fake), sqlite_db, clock=clock
        ) as slack:
            await slack.command("profile set company=Globex", user=presenter)
            await slack.send_command("clinic submit", user=presenter, channel=SLACK_EVENTS)
            await submit_form(
                {
                    "problem": "Churn doubles after the first renewal",
                    "context": "B2B SaaS, 400 accounts",
                    "tried": "An exit survey",
                    "ask": "What would you measure first?",
                    "hide_company": "yes",
                },
                presenter,
            )
            await delivered(lambda: any("submission #1" in str(c.params) for c in fake.calls))
            queue = await slack.command("clinic queue", user=ADMIN, channel=SLACK_EVENTS)
            assert "(company hidden)" in queue["text"] and "Globex" not in queue["text"]
            accepted = await _slack_click(slack, queue, "events.clinic_accept", ADMIN, SLACK_EVENTS)
            assert "Accepted clinic submission #1" in accepted["text"]
            await slack.command(
                'event schedule clinic submission=1 at="2026-11-25 16:00" timezone=UTC '
                f"capacity=1 link={LINK} tags=churn",
                user=ADMIN,
                channel=SLACK_EVENTS,
            )
            await slack.drain()
            announcement = next(m for m in fake.messages("T1", SLACK_EVENTS) if _slack_buttons(m))
            assert "Case-study clinic #1" in announcement["text"]
            await _slack_click(slack, announcement, "events.going", dropping, SLACK_EVENTS)
            full = await _slack_click(slack, announcement, "events.going", waiting, SLACK_EVENTS)
            assert "#1 on the waitlist" in full["text"]
            await _slack_click(slack, announcement, "events.cant", dropping, SLACK_EVENTS)
            await slack.drain()
            assert "A seat opened up" in dms(waiting)[-1]["text"]

            await at(STARTS - timedelta(hours=24))
            assert "Tomorrow: Churn doubles" in dms(waiting)[-1]["text"]
            brief = dms(presenter)[-1]["text"]
            assert "Your case-study clinic is tomorrow" in brief and "1 going (@cat)" in brief
            await at(STARTS + timedelta(hours=1))
            assert "Event #1 is starting" in thread()[0]["text"]
            request = dms(presenter)[-1]
            assert "Would you write its recap" in request["text"]
            await _slack_press(slack, request, "events.recap", presenter, f"D{presenter}")
            await submit_form(
                {"ideas": "Measure time-to-first-value", "actions": "Day-7 health check (ana)"},
                presenter,
            )
            await delivered(lambda: "Measure time-to-first-value" in thread()[-1]["text"])
            rate = dms(waiting)[-1]
            rated = await _slack_click(slack, rate, "events.rate", waiting, f"D{waiting}", "1:5")
            assert "You rated" in rated["text"] and "5/5" in rated["text"]

            await at(STARTS + timedelta(days=30, hours=1))
            outcome = dms(presenter)[-1]
            assert "It's been 30 days" in outcome["text"]
            await _slack_press(slack, outcome, "events.outcome", presenter, f"D{presenter}")
            await submit_form(
                {"tried": "Yes, the day-7 check", "changed": "Renewal churn fell to 8%"},
                presenter,
            )
            await delivered(lambda: "Renewal churn fell to 8%" in thread()[-1]["text"])
            library = await slack.command("clinic library churn", user="UBEN")
            assert "Measure time-to-first-value" in library["text"]
            assert "Renewal churn fell to 8%" in library["text"]
            assert "Globex" not in json.dumps(fake.messages("T1", SLACK_EVENTS))
    finally:
        await fake.close()


# -- through the real Discord adapter (discord.py against a fake Discord) ----------------

D_GUILD = 1_300_000_000_000_000_001
D_EVENTS = 1_300_000_000_000_000_010
D_OLGA = 1_300_000_000_000_000_101  # administrator
D_ANA = 1_300_000_000_000_000_102
D_BEN = 1_300_000_000_000_000_103
GUILD_SCHEDULED_EVENTS_INTENT = 1 << 16


async def test_an_event_through_the_discord_adapter_with_its_scheduled_event(
    settings: Settings, sqlite_db: Database, clock: Clock
) -> None:
    fake = FakeDiscord()
    fake.add_guild(
        "CX Guild",
        members=[Member(D_OLGA, "Olga", admin=True), Member(D_ANA, "Ana"), Member(D_BEN, "Ben")],
        channels=[Channel(D_EVENTS, "events")],
        guild_id=D_GUILD,
    )
    await fake.start()
    discord_settings = discord_settings_for(settings, fake, sqlite_db)
    kindred = Kindred(discord_settings, sqlite_db, clock=clock)

    def in_channel(channel_id: int) -> list[Any]:
        return [sent for sent in fake.sent if sent.channel_id == channel_id]

    def custom_id(sent: Any, action: str) -> str:
        [found] = [i for i in sent.custom_ids if i.split(":")[2] == action]
        return found

    def event_requests(method: str) -> list[Any]:
        return [
            r
            for r in fake.requests
            if r.method == method and re.fullmatch(r"guilds/\d+/scheduled-events(/\d+)?", r.path)
        ]

    async def rsvps_become(expected: dict[str, str]) -> None:
        for _ in range(100):
            async with sqlite_db.sessions() as session:
                rows = (await session.execute(select(EventRsvp))).scalars()
                if {row.user_id: row.status for row in rows} == expected:
                    return
            await asyncio.sleep(0.05)
        raise AssertionError(f"RSVPs never became {expected}")

    try:
        async with serving(kindred, discord_settings) as service:
            assert int(fake.identifies[0]["intents"]) & GUILD_SCHEDULED_EVENTS_INTENT
            schedule = [
                {"name": "kind", "type": 3, "value": "meetup"},
                {"name": "title", "type": 3, "value": "CX drinks"},
                {"name": "at", "type": 3, "value": "2026-11-25 18:00"},
                {"name": "timezone", "type": 3, "value": "UTC"},
                {"name": "capacity", "type": 4, "value": 1},
                {"name": "link", "type": 3, "value": LINK},
            ]
            answer = await fake.answered(
                await fake.command(D_GUILD, D_EVENTS, D_OLGA, ("event", "schedule"), schedule)
            )
            assert "appears in the server's events" in answer[-1][2]["content"]
            await kindred.dispatcher.drain()
            [created] = event_requests("POST")
            assert created.path == f"guilds/{D_GUILD}/scheduled-events"
            assert created.body["entity_type"] == 3  # EXTERNAL
            assert created.body["entity_metadata"] == {"location": LINK}
            assert created.body["name"] == "CX drinks"
            assert created.body["scheduled_start_time"].startswith("2026-11-25T18:00:00")
            assert created.body["scheduled_end_time"].startswith("2026-11-25T19:00:00")
            [native_id] = fake.scheduled_events
            # Created again (a crash between the creation and its "sent" mark): the
            # first event is found, not doubled.
            again = await service.platform.save_scheduled_event(
                str(D_GUILD),
                CalendarEvent(
                    "CX drinks",
                    datetime(2026, 11, 25, 18, 0, tzinfo=UTC),
                    datetime(2026, 11, 25, 19, 0, tzinfo=UTC),
                    LINK,
                ),
                None,
            )
            assert again.message_id == str(native_id)
            assert len(event_requests("POST")) == 1
            announcement = in_channel(D_EVENTS)[-1]
            assert "Meetup #1: CX drinks" in announcement.content
            start = int(datetime(2026, 11, 25, 18, 0, tzinfo=UTC).timestamp())
            assert f"<t:{start}:f>–<t:{start + 3600}:t>" in announcement.content
            assert not announcement.files  # the server's own event replaces the .ics

            edit = [
                {"name": "event", "type": 4, "value": 1},
                {"name": "at", "type": 3, "value": "2026-11-26 18:30"},
            ]
            await fake.answered(
                await fake.command(D_GUILD, D_EVENTS, D_OLGA, ("event", "edit"), edit)
            )
            await kindred.dispatcher.drain()
            patched = event_requests("PATCH")[-1]
            assert patched.path == f"guilds/{D_GUILD}/scheduled-events/{native_id}"
            assert patched.body["scheduled_start_time"].startswith("2026-11-26T18:30:00")
            assert fake.scheduled_events[native_id]["scheduled_end_time"].startswith(
                "2026-11-26T19:30:00"
            )

            await fake.interested(D_GUILD, native_id, D_BEN)
            await rsvps_become({str(D_BEN): "maybe"})
            going = await fake.click(
                announcement.message_id, custom_id(announcement, "events.going"), D_ANA
            )
            assert "You're going to" in str(await fake.answered(going))
            full = await fake.click(
                announcement.message_id, custom_id(announcement, "events.going"), D_OLGA
            )
            assert "#1 on the waitlist" in str(await fake.answered(full))
            await fake.interested(D_GUILD, native_id, D_BEN, added=False)
            await rsvps_become({str(D_ANA): "going", str(D_OLGA): "waitlist"})

            cancel = [{"name": "event", "type": 4, "value": 1}]
            await fake.answered(
                await fake.command(D_GUILD, D_EVENTS, D_OLGA, ("event", "cancel"), cancel)
            )
            await kindred.dispatcher.drain()
            assert fake.scheduled_events[native_id]["status"] == 4  # CANCELED
            assert "Cancelled: CX drinks" in in_channel(fake.dm_channels[D_ANA])[-1].content
    finally:
        await fake.stop()


# -- on the console adapter: a real process reading a script ------------------------------


def test_a_clinic_from_submission_to_outcome_on_the_console(tmp_path: Path) -> None:
    day = (datetime.now(UTC) + timedelta(days=10)).date().isoformat()
    script = f"""\
:as bob
/kindred clinic submit
:submit problem="Churn doubles after the first renewal" context="B2B SaaS" tried="A survey" \
ask="What to measure?" hide_company=yes
:as alice
/kindred clinic queue
:press 1
/kindred event schedule clinic submission=1 at="{day} 16:00" timezone=Europe/Paris capacity=1
:as carol
:press 4
:as dan
:press 7
:as carol
:press 12
/kindred event list
:advance 10d
:advance 1d
:as bob
:press 25
:submit ideas="Measure time-to-first-value" actions="Day-7 health check (Bob)"
:as dan
:press 29
:advance 30d
:as bob
:press 32
:submit tried="Yes, the day-7 check" changed="Renewal churn fell from 12% to 8%"
/kindred clinic library
"""
    environment = {
        **os.environ,
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'console.db'}",
        "KINDRED_LOG_LEVEL": "WARNING",
    }
    for name in ("SLACK_BOT_TOKEN", "SLACK_CLIENT_ID", "DISCORD_BOT_TOKEN"):
        environment.pop(name, None)
    result = subprocess.run(
        [sys.executable, "-m", "bot.core.cli", "run"],
        input=script,
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=environment,
        timeout=60,
        check=True,
    )
    out = result.stdout
    assert "Your clinic submission #1 is in the organisers' queue" in out
    assert "(company hidden)" in out and "Globex" not in out
    assert "Scheduled **event #1: Churn doubles after the first renewal**" in out
    assert "📎 event-1.ics" in out and "BEGIN:VCALENDAR" in out
    # Carol (New York) sees her own time; Dan is waitlisted, then promoted when she drops.
    assert "10:00–11:00 (America/New_York)" in out
    assert "You're #1 on the waitlist" in out
    assert "DM → @dan ──\n🎉 **A seat opened up" in out
    assert "Upcoming events** (times in America/New_York)" in out
    assert "DM → @dan ──\n📅 **Tomorrow: Churn doubles" in out
    assert "09:00–10:00 (America/Chicago)" in out
    assert "Your case-study clinic is tomorrow" in out
    assert "thread of message 6 ──\n🔴 **Event #1 is starting" in out
    assert "DM → @bob ──\n🙏 **Churn doubles after the first renewal** (event #1) has ended" in out
    assert "(29) 4 ★" in out and "You rated **Churn doubles after the first renewal** 4/5" in out
    assert "thread of message 6 ──\n📝 **Recap of event #1" in out
    assert "DM → @bob ──\n🌱 It's been 30 days" in out
    library = out[out.index("/kindred clinic library") :]
    assert "Measure time-to-first-value" in library and "Renewal churn fell" in library
    assert "rated 4.0/5" in library and "Globex" not in library
    assert result.stderr == ""


async def test_the_queue_shows_the_oldest_five_with_their_buttons(app: Community) -> None:
    for user in ("bob", "carol", "dan", "erin", "farid", "gina"):
        await submit_clinic(app, user)
    queue = await app.command("clinic queue")
    assert queue.message is not None
    text = seen(queue)
    assert "Clinic submissions (6, oldest first)" in text
    assert "#5 from <@farid>" in text and "#6" not in text
    assert "…and 1 more" in text
    assert len(queue.message.buttons) == 15


async def test_a_step_read_before_the_event_moved_does_nothing(app: Community) -> None:
    await say(app, 'event schedule meetup title="CX drinks" at="2026-11-25 18:00"')
    going = find(app.sent("post", CHANNEL)[0].message.buttons, "events.going")
    await app.press(going, "carol")
    stale = event_timeline(await stored_event(app))[0]  # the day-before reminder
    await say(app, 'event edit 1 at="2026-11-24 20:00"')
    before = (await stored_event(app)).next_due_at
    app.clock.now = stale.at
    kindred = app.kindred
    work = partial(run_step, kindred.templates, kindred.settings.zone, 1, stale, stale.at)
    assert await kindred.claims.run_claimed("events.remind_day:1", stale.at, work)
    await app.deliver()
    assert app.dms("carol", "Tomorrow") == []
    assert (await stored_event(app)).next_due_at == before


D_CAT = 1_300_000_000_000_000_104
EPHEMERAL = 1 << 6


async def test_a_clinic_from_submission_to_outcome_through_the_discord_adapter(
    settings: Settings, sqlite_db: Database, clock: Clock
) -> None:
    fake = FakeDiscord()
    fake.add_guild(
        "CX Guild",
        members=[
            Member(D_OLGA, "Olga", admin=True),
            Member(D_ANA, "Ana"),
            Member(D_BEN, "Ben"),
            Member(D_CAT, "Cat"),
        ],
        channels=[Channel(D_EVENTS, "events")],
        guild_id=D_GUILD,
    )
    await fake.start()
    discord_settings = discord_settings_for(settings, fake, sqlite_db)
    kindred = Kindred(discord_settings, sqlite_db, clock=clock)
    presenter, dropping, waiting = D_ANA, D_BEN, D_CAT

    def in_channel(channel_id: int) -> list[Any]:
        return [sent for sent in fake.sent if sent.channel_id == channel_id]

    def dms(user: int) -> list[Any]:
        return in_channel(fake.dm_channels[user]) if user in fake.dm_channels else []

    def custom_id(sent: Any, action: str, value: str = "") -> str:
        [found] = [i for i in sent.custom_ids if i.split(":")[2] == action and i.endswith(value)]
        return found

    async def command(user: int, path: tuple[str, ...], **options: Any) -> Any:
        kinds = {str: 3, int: 4}
        given = [
            {"name": name, "type": kinds[type(value)], "value": value}
            for name, value in options.items()
        ]
        interaction = await fake.command(D_GUILD, D_EVENTS, user, path, given)
        await fake.answered(interaction)
        return interaction

    async def fill(interaction: Any, user: int, values: dict[str, str]) -> None:
        kind, form = interaction.answers[-1][1:]
        assert kind == 9, "a form opens"
        await fake.answered(
            await fake.submit(
                form["custom_id"], values, user, guild_id=D_GUILD, channel_id=D_EVENTS
            )
        )
        await kindred.dispatcher.drain()

    async def at(moment: datetime) -> None:
        clock.now = moment
        await kindred.scheduler.catch_up()
        await kindred.dispatcher.drain()

    try:
        async with serving(kindred, discord_settings):
            await command(presenter, ("profile", "set"), company="Globex")
            await fill(
                await command(presenter, ("clinic", "submit")),
                presenter,
                {
                    "problem": "Churn doubles after the first renewal",
                    "context": "B2B SaaS, 400 accounts",
                    "tried": "An exit survey",
                    "ask": "What would you measure first?",
                    "hide_company": "yes",
                },
            )
            queue = await command(D_OLGA, ("clinic", "queue"))
            listed = fake.sent[-1]
            assert listed.message_id == queue.original_id and "(company hidden)" in listed.content
            accept = await fake.click(
                listed.message_id, custom_id(listed, "events.clinic_accept"), D_OLGA
            )
            assert "Accepted clinic submission #1" in str(await fake.answered(accept))
            await command(
                D_OLGA,
                ("event", "schedule"),
                kind="clinic",
                submission=1,
                at="2026-11-25 16:00",
                timezone="UTC",
                capacity=1,
                link=LINK,
            )
            await kindred.dispatcher.drain()
            [native] = fake.scheduled_events.values()
            assert native["name"] == "Churn doubles after the first renewal"
            announcement = in_channel(D_EVENTS)[-1]
            assert "Case-study clinic #1" in announcement.content
            going = custom_id(announcement, "events.going")
            await fake.answered(await fake.click(announcement.message_id, going, dropping))
            full = await fake.click(announcement.message_id, going, waiting)
            assert "#1 on the waitlist" in str(await fake.answered(full))
            cant = custom_id(announcement, "events.cant")
            await fake.answered(await fake.click(announcement.message_id, cant, dropping))
            await kindred.dispatcher.drain()
            assert "A seat opened up" in dms(waiting)[-1].content

            await at(STARTS - timedelta(hours=24))
            assert "Tomorrow: Churn doubles" in dms(waiting)[-1].content
            assert "Your case-study clinic is tomorrow" in dms(presenter)[-1].content
            await at(STARTS + timedelta(hours=1))
            assert "Event #1 is starting" in in_channel(announcement.message_id)[0].content
            request = dms(presenter)[-1]
            recap = await fake.click(
                request.message_id, custom_id(request, "events.recap"), presenter
            )
            await fake.answered(recap)
            await fill(
                recap,
                presenter,
                {"ideas": "Measure time-to-first-value", "actions": "Day-7 health check (Ana)"},
            )
            notes = in_channel(announcement.message_id)
            assert "Measure time-to-first-value" in notes[-1].content
            rate = dms(waiting)[-1]
            rated = await fake.click(rate.message_id, custom_id(rate, "events.rate", ":5"), waiting)
            assert "5/5" in str(await fake.answered(rated))

            await at(STARTS + timedelta(days=30, hours=1))
            ask = dms(presenter)[-1]
            assert "It's been 30 days" in ask.content
            told = await fake.click(ask.message_id, custom_id(ask, "events.outcome"), presenter)
            await fake.answered(told)
            await fill(told, presenter, {"tried": "Yes", "changed": "Renewal churn fell to 8%"})
            assert "Renewal churn fell to 8%" in in_channel(announcement.message_id)[-1].content
            library = await command(dropping, ("clinic", "library"), tag="churn")
            shown = library.answers[-1][2]["content"]
            assert "Measure time-to-first-value" in shown and "Renewal churn fell" in shown
            # Nothing public names the hidden company (only Ana's own profile answer does).
            public = [sent for sent in fake.sent if not sent.flags & EPHEMERAL]
            assert public and all("Globex" not in sent.content for sent in public)
    finally:
        await fake.stop()
