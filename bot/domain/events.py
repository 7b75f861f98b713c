"""Clinic and event rules, without I/O: what an organiser may schedule (times in
any IANA zone, durations, capacities, links), the timeline of reminders, start,
end and the day-30 follow-up, who gets a seat and who waits, and the calendar
file (.ics) and "Add to calendar" link for platforms without events of their own."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from urllib.parse import urlencode, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from icalendar import Calendar
from icalendar import Event as CalendarEntry

from bot.core.times import TimeInputError, parse_future_time, read_duration


class EventKind(StrEnum):
    CLINIC = "clinic"  # a member brings a real problem; the group brainstorms
    SHOWCASE = "showcase"  # a best practice: what worked, how, and what was learned
    MEETUP = "meetup"


# Kinds whose presenter shares something others can reuse: they make the library.
LIBRARY_KINDS = frozenset({EventKind.CLINIC, EventKind.SHOWCASE})


class EventState(StrEnum):
    SCHEDULED = "scheduled"  # announced, taking RSVPs, reminders to come
    LIVE = "live"  # started: the thread is open for notes
    ENDED = "ended"  # recap, ratings and the day-30 outcome follow
    CANCELLED = "cancelled"


class Rsvp(StrEnum):
    GOING = "going"
    MAYBE = "maybe"
    CANT = "cant"
    WAITLIST = "waitlist"


RSVP_WORDS = {
    Rsvp.GOING: "going",
    Rsvp.MAYBE: "maybe",
    Rsvp.CANT: "can't go",
    Rsvp.WAITLIST: "on the waitlist",
}


class SubmissionStatus(StrEnum):
    PENDING = "pending"  # in the organisers' queue
    MORE_INFO = "more_info"  # organisers asked the member for more
    ACCEPTED = "accepted"  # waiting to be scheduled
    DECLINED = "declined"
    SCHEDULED = "scheduled"  # an event was scheduled for it


class Step(StrEnum):
    REMIND_DAY = "remind_day"  # T−24 h: reminders; the presenter's brief and attendees
    REMIND_HOUR = "remind_hour"  # T−1 h: reminders
    START = "start"  # the thread for live notes
    END = "end"  # recap request and rating requests
    OUTCOME = "outcome"  # day 30: the presenter says what happened


DEFAULT_DURATION = timedelta(hours=1)
MIN_DURATION = timedelta(minutes=15)
MAX_DURATION = timedelta(hours=8)
MAX_CAPACITY = 10_000
MAX_TITLE_LENGTH = 100
MAX_LINK_LENGTH = 500
MAX_TAGS = 5
MAX_TAG_LENGTH = 30
OUTCOME_AFTER = timedelta(days=30)
STEP_OFFSETS = {Step.REMIND_DAY: timedelta(hours=24), Step.REMIND_HOUR: timedelta(hours=1)}
RATINGS = (1, 2, 3, 4, 5)

# What a clinic submission asks, with its limits (the form's fields).
SUBMISSION_FIELDS = {
    "problem": ("The problem in a sentence", 200),
    "context": ("Context: your team, customers, constraints", 1000),
    "tried": ("What you tried so far", 1000),
    "ask": ("What you are asking the group", 500),
}
MAX_REASON_LENGTH = 500
MAX_RECAP_LENGTH = 2000
MAX_OUTCOME_LENGTH = 1500


class EventInputError(ValueError):
    """A member-facing explanation of why an input was refused."""


# --- scheduling input -------------------------------------------------------------


def parse_zone(name: str) -> ZoneInfo:
    """An IANA time zone such as `Europe/Berlin` or `America/Sao_Paulo`."""
    cleaned = name.strip()
    try:
        if not cleaned or cleaned.startswith("/") or ".." in cleaned:
            raise ValueError(cleaned)
        return ZoneInfo(cleaned)
    except (ZoneInfoNotFoundError, ValueError):
        raise EventInputError(
            f"`{cleaned}` is not a time zone I know. Use an IANA name such as "
            "`Europe/Berlin`, `America/New_York` or `UTC`."
        ) from None


def parse_time(text: str, zone: ZoneInfo, now: datetime, what: str = "at") -> datetime:
    """A future moment from `2026-12-01 15:00` (in `zone`) or ISO 8601 with an offset."""
    try:
        return parse_future_time(text, zone, now, what)
    except TimeInputError as refusal:
        raise EventInputError(str(refusal)) from None


def parse_duration(text: str) -> timedelta:
    """`45m`, `1h`, `90m`, `1h30m` or plain minutes (`45`)."""
    duration = read_duration(text)
    if duration is None:
        raise EventInputError(
            f"I couldn't read `{text}` as a duration. Use `duration:45m`, `duration:1h` "
            "or `duration:1h30m`."
        )
    if duration < MIN_DURATION:
        raise EventInputError(f"An event lasts at least {_minutes(MIN_DURATION)} minutes.")
    if duration > MAX_DURATION:
        raise EventInputError(
            f"An event lasts at most {_minutes(MAX_DURATION) // 60} hours "
            f"(you asked for {describe_duration(duration)}); split a longer one in parts."
        )
    return duration


def check_capacity(capacity: int | None) -> int | None:
    """Seats for Going (None: no limit)."""
    if capacity is None:
        return None
    if capacity < 1:
        raise EventInputError(
            "A capacity is at least 1 seat; leave `capacity` out for an event without a limit."
        )
    if capacity > MAX_CAPACITY:
        raise EventInputError(f"A capacity is at most {MAX_CAPACITY:,} seats.")
    return capacity


def clean_title(text: str) -> str:
    title = " ".join(text.split())
    if not title:
        raise EventInputError('Give the event a title, in quotes: `title:"Churn clinic"`.')
    if len(title) > MAX_TITLE_LENGTH:
        raise EventInputError(
            f"The title is {len(title)} characters; keep it under {MAX_TITLE_LENGTH}."
        )
    return title


def clean_link(text: str) -> str:
    """The call's web address (https, or http for a local tool)."""
    link = text.strip()
    parts = urlsplit(link)
    if parts.scheme not in {"https", "http"} or not parts.netloc or " " in link:
        raise EventInputError(
            f"`{link}` is not a web address; give the call's link, like "
            "`link:https://meet.example.com/cx-clinic`."
        )
    if len(link) > MAX_LINK_LENGTH:
        raise EventInputError(f"Keep the link under {MAX_LINK_LENGTH} characters.")
    return link


def parse_tags(text: str) -> list[str]:
    """`churn, onboarding` → ["churn", "onboarding"] (lower case, no duplicates)."""
    tags: list[str] = []
    for piece in re.split(r"[,\s]+", text.lower()):
        tag = piece.strip().lstrip("#")
        if not tag or tag in tags:
            continue
        if len(tag) > MAX_TAG_LENGTH or not re.fullmatch(r"[a-z0-9][a-z0-9_-]*", tag):
            raise EventInputError(
                f"`{tag}` is not a tag: letters, digits, `-` and `_`, up to "
                f"{MAX_TAG_LENGTH} characters."
            )
        tags.append(tag)
    if len(tags) > MAX_TAGS:
        raise EventInputError(f"At most {MAX_TAGS} tags.")
    return tags


def clean_text(text: str, what: str, limit: int, *, required: bool = True) -> str:
    """A form field, trimmed, within its limit."""
    cleaned = text.strip()
    if required and not cleaned:
        raise EventInputError(f"Please fill in {what.lower()}.")
    if len(cleaned) > limit:
        raise EventInputError(f"{what} is {len(cleaned)} characters; the limit is {limit}.")
    return cleaned


def parse_yes_no(text: str, what: str) -> bool:
    answer = text.strip().lower()
    if answer in {"yes", "y", "true", "on", "1"}:
        return True
    if answer in {"no", "n", "false", "off", "0", ""}:
        return False
    raise EventInputError(f"{what} should be yes or no, not `{answer}`.")


# --- showing times ----------------------------------------------------------------


def describe_span(starts_at: datetime, ends_at: datetime, zone: ZoneInfo) -> str:
    """`Tue 1 Dec 2026, 15:00–16:00 (Europe/Paris)`; a span past midnight shows both days."""
    start, end = starts_at.astimezone(zone), ends_at.astimezone(zone)
    day = f"{start:%a} {start.day} {start:%b %Y}"
    if end.date() == start.date():
        return f"{day}, {start:%H:%M}–{end:%H:%M} ({zone.key})"
    return f"{day}, {start:%H:%M} – {end:%a} {end.day} {end:%b}, {end:%H:%M} ({zone.key})"


def describe_duration(duration: timedelta) -> str:
    minutes = _minutes(duration)
    hours, rest = divmod(minutes, 60)
    if not hours:
        return f"{rest} min"
    return f"{hours} h" + (f" {rest} min" if rest else "")


def _minutes(duration: timedelta) -> int:
    return int(duration.total_seconds() // 60)


# --- the timeline -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TimelineStep:
    step: Step
    at: datetime


def timeline(starts_at: datetime, ends_at: datetime) -> tuple[TimelineStep, ...]:
    """Every step of an event, in order."""
    return (
        TimelineStep(Step.REMIND_DAY, starts_at - STEP_OFFSETS[Step.REMIND_DAY]),
        TimelineStep(Step.REMIND_HOUR, starts_at - STEP_OFFSETS[Step.REMIND_HOUR]),
        TimelineStep(Step.START, starts_at),
        TimelineStep(Step.END, ends_at),
        TimelineStep(Step.OUTCOME, ends_at + OUTCOME_AFTER),
    )


def first_step_after(steps: Sequence[TimelineStep], moment: datetime) -> datetime | None:
    """When the next step strictly after `moment` is due (reminders whose moment has
    passed when the event is scheduled are not sent late)."""
    return next((step.at for step in steps if step.at > moment), None)


def due_steps(
    steps: Sequence[TimelineStep], next_due_at: datetime | None, now: datetime
) -> list[TimelineStep]:
    """Steps from the stored next one up to `now`, in order."""
    if next_due_at is None:
        return []
    return [step for step in steps if next_due_at <= step.at <= now]


def still_worth_reminding(step: Step, starts_at: datetime, now: datetime) -> bool:
    """A reminder found late (a replica was down) is sent only before the start."""
    return step not in STEP_OFFSETS or now < starts_at


# --- seats ------------------------------------------------------------------------


def seat_for(wanted: Rsvp, going: int, capacity: int | None) -> Rsvp:
    """Where a member who asks for `wanted` lands, with `going` seats already taken
    (not counting theirs): Going beyond the capacity means the waitlist."""
    if wanted != Rsvp.GOING or capacity is None or going < capacity:
        return wanted
    return Rsvp.WAITLIST


def seats_to_fill(going: int, capacity: int | None, waiting: int) -> int:
    """How many waitlisted members move up now."""
    if capacity is None:
        return waiting
    return max(0, min(waiting, capacity - going))


def average(scores: Iterable[int]) -> float | None:
    values = list(scores)
    return sum(values) / len(values) if values else None


# --- calendars --------------------------------------------------------------------


def ics_document(
    *,
    uid: str,
    title: str,
    starts_at: datetime,
    ends_at: datetime,
    description: str,
    location: str,
    sequence: int,
    stamp: datetime,
) -> bytes:
    """One VEVENT in UTC; `sequence` grows with each change, so calendar apps that
    imported an earlier file replace it rather than add a second entry."""
    calendar = Calendar()
    calendar.add("prodid", "-//Kindred//events//EN")
    calendar.add("version", "2.0")
    calendar.add("method", "PUBLISH")
    entry = CalendarEntry()
    entry.add("uid", uid)
    entry.add("dtstamp", stamp.astimezone(UTC))
    entry.add("dtstart", starts_at.astimezone(UTC))
    entry.add("dtend", ends_at.astimezone(UTC))
    entry.add("summary", title)
    entry.add("description", description)
    if location:
        entry.add("location", location)
        entry.add("url", location)
    entry.add("sequence", sequence)
    calendar.add_component(entry)
    return bytes(calendar.to_ical())


def google_calendar_url(
    title: str, starts_at: datetime, ends_at: datetime, details: str, location: str
) -> str:
    """Google Calendar's "create event" template, prefilled (times in UTC)."""

    def stamp(moment: datetime) -> str:
        return moment.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")

    query = urlencode(
        {
            "action": "TEMPLATE",
            "text": title,
            "dates": f"{stamp(starts_at)}/{stamp(ends_at)}",
            "details": details,
            "location": location,
        }
    )
    return f"https://calendar.google.com/calendar/render?{query}"
