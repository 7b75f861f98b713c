from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

import pytest
from icalendar import Calendar

from bot.domain.events import (
    EventInputError,
    Rsvp,
    Step,
    check_capacity,
    clean_link,
    due_steps,
    first_step_after,
    google_calendar_url,
    ics_document,
    parse_duration,
    parse_tags,
    parse_time,
    parse_zone,
    seat_for,
    seats_to_fill,
    still_worth_reminding,
    timeline,
)

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
START = datetime(2026, 11, 25, 16, 0, tzinfo=UTC)
BERLIN = ZoneInfo("Europe/Berlin")


def test_times_are_read_in_the_given_zone_and_stored_in_utc() -> None:
    assert parse_time("2026-11-25 17:00", BERLIN, NOW) == START
    assert parse_time("2026-11-25T11:00-05:00", BERLIN, NOW) == START
    assert parse_zone("America/Sao_Paulo").key == "America/Sao_Paulo"
    for bad, said in {
        "2026-11-20 10:00": "in the past",
        "2028-01-01 10:00": "more than a year away",
        "2026-11-25": "couldn't read",
    }.items():
        with pytest.raises(EventInputError, match=said):
            parse_time(bad, BERLIN, NOW)
    for zone in ("Mars/Olympus", "", "../etc/passwd"):
        with pytest.raises(EventInputError, match="not a time zone"):
            parse_zone(zone)


def test_durations_capacities_links_and_tags() -> None:
    assert parse_duration("1h30m") == timedelta(minutes=90)
    assert parse_duration("45") == timedelta(minutes=45)
    for bad, said in {
        "20h": "at most 8 hours",
        "5m": "at least 15",
        "soon": "couldn't read",
    }.items():
        with pytest.raises(EventInputError, match=said):
            parse_duration(bad)
    assert check_capacity(None) is None and check_capacity(12) == 12
    with pytest.raises(EventInputError, match="at least 1 seat"):
        check_capacity(0)
    assert clean_link(" https://meet.example.com/x ") == "https://meet.example.com/x"
    for bad in ("zoom", "javascript:alert(1)", "https://"):
        with pytest.raises(EventInputError, match="not a web address"):
            clean_link(bad)
    assert parse_tags("Churn, #onboarding churn") == ["churn", "onboarding"]
    with pytest.raises(EventInputError, match="not a tag"):
        parse_tags("<!channel>")


def test_seats_and_the_waitlist() -> None:
    assert seat_for(Rsvp.GOING, 1, 2) == Rsvp.GOING
    assert seat_for(Rsvp.GOING, 2, 2) == Rsvp.WAITLIST
    assert seat_for(Rsvp.GOING, 500, None) == Rsvp.GOING
    assert seat_for(Rsvp.MAYBE, 2, 2) == Rsvp.MAYBE
    assert seats_to_fill(going=1, capacity=3, waiting=5) == 2
    assert seats_to_fill(going=3, capacity=3, waiting=5) == 0
    assert seats_to_fill(going=9, capacity=None, waiting=4) == 4


def test_the_timeline_skips_reminders_already_past_when_scheduled() -> None:
    steps = timeline(START, START + timedelta(hours=1))
    assert [s.step for s in steps] == list(Step)
    assert [s.at - START for s in steps] == [
        timedelta(hours=-24),
        timedelta(hours=-1),
        timedelta(0),
        timedelta(hours=1),
        timedelta(days=30, hours=1),
    ]
    # Scheduled 3 hours ahead: the first step is the hour-before reminder.
    assert first_step_after(steps, START - timedelta(hours=3)) == START - timedelta(hours=1)
    late = due_steps(steps, START - timedelta(hours=24), START + timedelta(minutes=5))
    assert [s.step for s in late] == [Step.REMIND_DAY, Step.REMIND_HOUR, Step.START]
    assert not still_worth_reminding(Step.REMIND_HOUR, START, START + timedelta(minutes=5))
    assert still_worth_reminding(Step.START, START, START + timedelta(minutes=5))
    assert due_steps(steps, None, START) == []


def test_the_ics_file_round_trips_through_an_icalendar_parser() -> None:
    content = ics_document(
        uid="kindred-event-1",
        title="Churn clinic: renewals, part 2",
        starts_at=START.astimezone(BERLIN),
        ends_at=START + timedelta(hours=1),
        description="Case-study clinic",
        location="https://meet.example.com/x",
        sequence=2,
        stamp=NOW,
    )
    calendar = Calendar.from_ical(content)
    (entry,) = calendar.walk("VEVENT")
    assert entry.decoded("dtstart") == START
    assert entry.decoded("dtend") == START + timedelta(hours=1)
    assert str(entry.get("summary")) == "Churn clinic: renewals, part 2"
    assert str(entry.get("location")) == "https://meet.example.com/x"
    assert int(entry.get("sequence")) == 2
    assert str(entry.get("uid")) == "kindred-event-1"


def test_the_add_to_calendar_link_carries_the_event_in_utc() -> None:
    url = google_calendar_url(
        "Churn & retention", START, START + timedelta(hours=1), "Clinic", "https://m.example"
    )
    query = parse_qs(urlsplit(url).query)
    assert query["action"] == ["TEMPLATE"]
    assert query["text"] == ["Churn & retention"]
    assert query["dates"] == ["20261125T160000Z/20261125T170000Z"]
    assert ")" not in url and " " not in url
