from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from bot.domain.ama import (
    AmaInputError,
    AmaState,
    Candidate,
    EventKind,
    LifecycleError,
    clean_question,
    describe_lead,
    describe_span,
    due_events,
    find_similar,
    next_event_time,
    parse_duration,
    parse_time,
    ranked,
    similarity,
    timeline,
    transition,
)

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
PARIS = ZoneInfo("Europe/Paris")


def test_lifecycle_moves_forward_only() -> None:
    state = transition("scheduled", AmaState.COLLECTING)
    state = transition(state, AmaState.LIVE)
    assert transition(state, AmaState.CLOSED) == AmaState.CLOSED
    assert transition(AmaState.SCHEDULED, AmaState.CLOSED) == AmaState.CLOSED
    for current, target in [
        (AmaState.SCHEDULED, AmaState.LIVE),
        (AmaState.LIVE, AmaState.COLLECTING),
        (AmaState.LIVE, AmaState.LIVE),
        (AmaState.CLOSED, AmaState.CLOSED),
        (AmaState.CLOSED, AmaState.LIVE),
    ]:
        with pytest.raises(LifecycleError):
            transition(current, target)


def test_question_text_limits() -> None:
    assert clean_question("  How do you\n scale   support? ") == "How do you scale support?"
    with pytest.raises(AmaInputError, match="empty"):
        clean_question("   \n ")
    with pytest.raises(AmaInputError, match="bit short"):
        clean_question("Why?")
    with pytest.raises(AmaInputError, match="limit is 300"):
        clean_question("why " * 80)


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("How do you scale support teams?", "How do you scale a support team?"),
        ("How do you measure CSAT for chat support?", "How do you measure chat support CSAT?"),
        ("What's your favourite CX metric?", "What is your favorite CX metric?"),
        ("How are you scaling your support org?", "How do you scale support orgs?"),
    ],
)
def test_reworded_questions_are_near_duplicates(first: str, second: str) -> None:
    assert similarity(first, second) >= 0.75
    match = find_similar(second, [Candidate(7, first)])
    assert match is not None and match.id == 7 and not match.exact


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("How do you hire support staff?", "How do you train support staff?"),
        ("What tools do you use for QA?", "How do you report on churn to the board?"),
        ("How did you scale support at Acme?", "How did you grow support at Acme?"),
    ],
)
def test_different_questions_are_not_duplicates(first: str, second: str) -> None:
    assert similarity(first, second) < 0.75
    assert find_similar(second, [Candidate(1, first)]) is None


def test_exact_duplicates_ignore_case_and_punctuation_and_the_closest_wins() -> None:
    candidates = [
        Candidate(1, "How do you scale support teams quickly?"),
        Candidate(2, "How do you scale support teams?"),
    ]
    exact = find_similar("how do you SCALE support teams", candidates)
    assert exact is not None and exact.exact and exact.id == 2
    near = find_similar("How do you scale a support team?", candidates)
    assert near is not None and near.id == 2 and not near.exact


@dataclass
class Q:
    id: int
    votes: int
    created_at: datetime


def test_ranked_by_votes_then_age() -> None:
    questions = [
        Q(1, 2, NOW),
        Q(2, 5, NOW + timedelta(minutes=3)),
        Q(3, 2, NOW - timedelta(minutes=1)),
        Q(4, 5, NOW + timedelta(minutes=1)),
        Q(5, 2, NOW),
    ]
    assert [q.id for q in ranked(questions)] == [4, 2, 3, 1, 5]


@pytest.mark.parametrize(
    ("text", "minutes"),
    [("45m", 45), ("1h", 60), ("90m", 90), ("1h30m", 90), ("45", 45), (" 2H ", 120), ("4h", 240)],
)
def test_durations(text: str, minutes: int) -> None:
    assert parse_duration(text) == timedelta(minutes=minutes)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("soon", "couldn't read `soon`"),
        ("h", "couldn't read"),
        ("5m", "at least 10 minutes"),
        ("4h1m", "at most 4 hours"),
    ],
)
def test_bad_durations_explain(text: str, message: str) -> None:
    with pytest.raises(AmaInputError, match=message):
        parse_duration(text)


def test_times_are_read_in_the_given_zone_unless_they_carry_an_offset() -> None:
    assert parse_time("2026-12-01 15:00", PARIS, NOW) == datetime(2026, 12, 1, 14, 0, tzinfo=UTC)
    assert parse_time("2026-12-01T15:00", PARIS, NOW) == datetime(2026, 12, 1, 14, 0, tzinfo=UTC)
    with_offset = parse_time("2026-12-01T15:00-05:00", PARIS, NOW)
    assert with_offset == datetime(2026, 12, 1, 20, 0, tzinfo=UTC)
    # Summer time is the zone's business, not the caller's.
    assert parse_time("2027-07-01 15:00", PARIS, NOW) == datetime(2027, 7, 1, 13, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("next tuesday", 'Use `at:"2026-11-30 15:00"` \\(time zone Europe/Paris\\)'),
        ("2026-12-01", "couldn't read"),
        ("2026-11-23 09:59", "is in the past \\(it's now Mon 23 Nov 2026, 10:00"),
        ("2028-01-01 10:00", "more than a year away"),
    ],
)
def test_bad_times_explain_with_an_example(text: str, message: str) -> None:
    with pytest.raises(AmaInputError, match=message):
        parse_time(text, PARIS, NOW)


def test_span_is_described_in_the_zone() -> None:
    starts = datetime(2026, 12, 1, 14, 0, tzinfo=UTC)
    assert (
        describe_span(starts, starts + timedelta(minutes=45), PARIS)
        == "Tue 1 Dec 2026, 15:00–15:45 (Europe/Paris)"
    )


def test_timeline_skips_reminders_already_past_at_the_announcement() -> None:
    starts = NOW + timedelta(days=2)
    full = timeline(NOW, starts, starts + timedelta(hours=1))
    assert [event.kind for event in full] == [
        EventKind.ANNOUNCE,
        EventKind.REMIND_DAY,
        EventKind.REMIND_SOON,
        EventKind.START,
        EventKind.CLOSE,
    ]
    assert full[1].at == starts - timedelta(hours=24)
    assert full[2].at == starts - timedelta(minutes=15)
    soon = timeline(NOW, NOW + timedelta(hours=3), NOW + timedelta(hours=4))
    assert [event.kind for event in soon] == [
        EventKind.ANNOUNCE,
        EventKind.REMIND_SOON,
        EventKind.START,
        EventKind.CLOSE,
    ]
    imminent = timeline(NOW, NOW + timedelta(minutes=15), NOW + timedelta(hours=1))
    assert EventKind.REMIND_SOON not in {event.kind for event in imminent}


def test_due_events_follow_the_cursor_and_drop_stale_ones() -> None:
    starts = NOW + timedelta(days=2)
    events = timeline(NOW, starts, starts + timedelta(hours=1))
    day, soon, start, close = events[1], events[2], events[3], events[4]
    assert due_events(events, day.at, day.at - timedelta(seconds=1)) == []
    assert due_events(events, day.at, day.at + timedelta(minutes=5)) == [day]
    # Down through both reminders: only the 15-minute one still makes sense.
    assert due_events(events, day.at, soon.at + timedelta(minutes=1)) == [soon]
    # Down until after the start: no reminder at all, just go live.
    assert due_events(events, day.at, start.at + timedelta(minutes=1)) == [start]
    # Down for the whole session: close it, no control panel for a finished AMA.
    assert due_events(events, day.at, close.at + timedelta(minutes=1)) == [close]
    assert due_events(events, None, close.at) == []
    assert next_event_time(events, day.at) == soon.at
    assert next_event_time(events, close.at) is None


def test_lead_times_round_up_to_the_minute() -> None:
    # A tick runs up to a minute after a reminder's moment: still "in 15 minutes".
    assert describe_lead(timedelta(minutes=14, seconds=20)) == "15 minutes"
    assert describe_lead(timedelta(minutes=15)) == "15 minutes"
    assert describe_lead(timedelta(hours=23, minutes=59, seconds=30)) == "24 hours"
    assert describe_lead(timedelta(seconds=5)) == "1 minute"
