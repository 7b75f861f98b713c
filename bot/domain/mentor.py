"""Mentorship rules, free of I/O (issue #13): what a valid offer, request, ending and
feedback look like, when a mentorship's check-ins and reminders fall due, and the
figures `/kindred mentor stats` reports. Services feed these functions values read
from storage and store what they return."""

from __future__ import annotations

import difflib
import math
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot.core.cleaning import without_control_characters
from bot.core.mentions import member_text

# The profile's seniority words, most junior first: a level is the word's index.
from bot.domain.profile import MAX_TOPIC_LENGTH, MAX_TOPICS, SENIORITIES

MIN_CAPACITY = 1
MAX_CAPACITY = 5
MAX_GOAL_LENGTH = 300
MAX_SUCCESS_LENGTH = 500
MAX_REASON_LENGTH = 500
MAX_FEEDBACK_LENGTH = 2000
MIN_DURATION_DAYS = 14
MAX_DURATION_DAYS = 365
DEFAULT_DURATION_DAYS = 90
MAX_COOLDOWN_WEEKS = 12
MAX_REQUESTS_PER_MONTH = 5
# How the pair means to meet; free text would make "how often" unanswerable in stats.
CADENCES = ("weekly", "fortnightly", "monthly")
DEFAULT_CADENCE = "fortnightly"
# How often an admin's rounds run; "off" means only `mentor run-now`.
ROUND_CADENCES = {"weekly": 7, "fortnightly": 14, "monthly": 28, "off": 0}
# Check-ins ("met? how is it going?") this many days after the intro.
CHECKIN_DAYS = (14, 42)
# The "extend or close?" reminder, this long before the planned end.
END_REMINDER_BEFORE = timedelta(days=7)
EXTENSION = timedelta(days=28)
# A proposal the mentor has not answered by then goes back to the next round.
RESPOND_WITHIN = timedelta(days=3)
# A mentor sees their ratings only once this many different mentees gave one.
PRIVATE_RATINGS_MIN = 3
# A rating at or below this keeps the pair apart in later rounds, like "not a fit".
BAD_RATING = 2
GOOD_RATING = 4
MONTH = timedelta(days=30)
_YES = {"yes", "y", "true", "on", "1"}
_NO = {"no", "n", "false", "off", "0"}


class MentorInputError(ValueError):
    """A member's input cannot be used; the message says why and what works."""


class RequestStatus(StrEnum):
    OPEN = "open"  # waiting for a round
    PROPOSED = "proposed"  # a mentor was asked to approve
    MATCHED = "matched"  # a mentorship runs (or ran) on it
    WITHDRAWN = "withdrawn"


class MentorshipStatus(StrEnum):
    PROPOSED = "proposed"
    ACTIVE = "active"
    DECLINED = "declined"  # by the mentor, or lost to a full capacity
    EXPIRED = "expired"  # the mentor did not answer in time
    ENDED = "ended"


class Outcome(StrEnum):
    COMPLETED = "completed"  # the planned end, or "we're done"
    NOT_A_FIT = "not_a_fit"
    ENDED_EARLY = "ended_early"  # no fault: life happened


class EventKind(StrEnum):
    EXPIRE = "expire"
    CHECKIN = "checkin"
    END_REMINDER = "end_reminder"
    END = "end"


@dataclass(frozen=True, slots=True)
class TimelineEvent:
    kind: EventKind
    at: datetime
    # For check-ins: which day (14, 42).
    day: int = 0


def timeline(started_at: datetime, planned_end_at: datetime) -> tuple[TimelineEvent, ...]:
    """An active mentorship's follow-through in time order: check-ins that fall before
    the planned end, the "extend or close?" reminder, and the planned end itself."""
    events = [
        TimelineEvent(EventKind.CHECKIN, started_at + timedelta(days=day), day)
        for day in CHECKIN_DAYS
        if started_at + timedelta(days=day) < planned_end_at - END_REMINDER_BEFORE
    ]
    reminder = planned_end_at - END_REMINDER_BEFORE
    if reminder > started_at:
        events.append(TimelineEvent(EventKind.END_REMINDER, reminder))
    events.append(TimelineEvent(EventKind.END, planned_end_at))
    return tuple(sorted(events, key=lambda event: event.at))


def next_event(
    started_at: datetime, planned_end_at: datetime, after: datetime
) -> TimelineEvent | None:
    """The first timeline event strictly after `after` (the last one handled)."""
    return next((e for e in timeline(started_at, planned_end_at) if e.at > after), None)


# --- input -----------------------------------------------------------------------


def clean_text(text: str | None, what: str, limit: int, *, required: bool = True) -> str:
    """One field of a form or command: trimmed, at most `limit` characters."""
    cleaned = without_control_characters(text or "").strip()
    if not cleaned:
        if required:
            raise MentorInputError(f"The {what} is empty; write a few words.")
        return ""
    if len(cleaned) > limit:
        raise MentorInputError(
            f"The {what} is {len(cleaned):,} characters; keep it under {limit:,}."
        )
    return cleaned


def one_sentence(text: str | None, what: str, limit: int) -> str:
    """A goal is one line: newlines become spaces."""
    return " ".join(clean_text(text, what, limit).split())


def parse_topics(text: str | None, *, required: bool = True) -> list[str]:
    topics: list[str] = []
    for raw in (text or "").split(","):
        topic = " ".join(raw.split())
        if not topic:
            continue
        if len(topic) > MAX_TOPIC_LENGTH:
            raise MentorInputError(
                f"The topic `{member_text(topic[:20])}…` is {len(topic)} characters; "
                f"keep each under {MAX_TOPIC_LENGTH}."
            )
        if topic.lower() not in {existing.lower() for existing in topics}:
            topics.append(topic)
    if required and not topics:
        raise MentorInputError('Name at least one topic, e.g. topics="NPS, hiring".')
    if len(topics) > MAX_TOPICS:
        raise MentorInputError(f"That's {len(topics)} topics; pick your top {MAX_TOPICS}.")
    return topics


def known_topics(wanted: Sequence[str], offered: Iterable[str]) -> list[str]:
    """The mentee's topics spelled as mentors offer them; a topic no mentor offers is
    refused with the closest offered ones, so a typo never silently matches nothing."""
    spelling = {topic.lower(): topic for topic in offered}
    if not spelling:
        raise MentorInputError(
            "No mentor has offered any topic yet, so there is nobody to match you with. "
            "Try again once mentors have signed up with `/kindred mentor offer`."
        )
    found: list[str] = []
    for topic in wanted:
        match = spelling.get(topic.lower())
        if match is None:
            close = difflib.get_close_matches(topic.lower(), list(spelling), n=3, cutoff=0.6)
            hint = (
                f" Did you mean {member_text(', '.join(spelling[c] for c in close))}?"
                if close
                else " Topics mentors offer: "
                f"{member_text(', '.join(sorted(spelling.values())[:20]))}."
            )
            raise MentorInputError(f"No mentor offers `{member_text(topic[:40])}`.{hint}")
        found.append(match)
    return found


def parse_capacity(text: str | int | None) -> int:
    try:
        capacity = int(str(text).strip())
    except ValueError:
        raise MentorInputError(
            f"Capacity is how many mentees at once, a whole number from {MIN_CAPACITY} "
            f"to {MAX_CAPACITY}."
        ) from None
    if not MIN_CAPACITY <= capacity <= MAX_CAPACITY:
        raise MentorInputError(
            f"Capacity must be from {MIN_CAPACITY} to {MAX_CAPACITY} mentees, not {capacity}: "
            "it is how many you mentor at once."
        )
    return capacity


_UNITS = {"d": 1, "day": 1, "w": 7, "week": 7, "m": 30, "month": 30, "y": 365, "year": 365}


def parse_duration(text: str) -> int:
    """ "3 months", "12 weeks", "6w", "90d" → days (a month counts 30)."""
    words = text.strip().lower().replace("-", " ")
    number = "".join(ch for ch in words if ch.isdigit())
    unit = "".join(ch for ch in words if ch.isalpha()).rstrip("s")
    if not number or unit not in _UNITS:
        raise MentorInputError(
            f"I can't read `{member_text(text[:40])}` as a length; write it like `3 months` "
            "or `12 weeks`."
        )
    days = int(number) * _UNITS[unit]
    if not MIN_DURATION_DAYS <= days <= MAX_DURATION_DAYS:
        raise MentorInputError(
            "A mentorship lasts from 2 weeks to 12 months by default; "
            f"`{member_text(text[:40])}` is {days} days."
        )
    return days


def describe_duration(days: int) -> str:
    if days % 30 == 0:
        months = days // 30
        return f"{months} month{'s' if months != 1 else ''}"
    if days % 7 == 0:
        weeks = days // 7
        return f"{weeks} week{'s' if weeks != 1 else ''}"
    return f"{days} days"


def parse_choice(text: str | None, what: str, choices: Sequence[str], default: str) -> str:
    chosen = (text or "").strip().lower() or default
    if chosen not in choices:
        raise MentorInputError(
            f"The {what} must be one of {', '.join(choices)}, not `{member_text(chosen[:40])}`."
        )
    return chosen


def parse_rating(text: str | None) -> int:
    try:
        rating = int((text or "").strip())
    except ValueError:
        raise MentorInputError("Rate how useful it was with a whole number from 1 to 5.") from None
    if not 1 <= rating <= 5:
        raise MentorInputError(f"The rating goes from 1 to 5, not {rating}.")
    return rating


def parse_yes_no(text: str | None, what: str) -> bool | None:
    answer = (text or "").strip().lower()
    if not answer:
        return None
    if answer in _YES:
        return True
    if answer in _NO:
        return False
    raise MentorInputError(f"Answer {what} with yes or no, not `{member_text(answer[:40])}`.")


def seniority_level(word: str | None) -> int:
    """A seniority word's level (0 = student); unknown counts as junior."""
    if word and word.lower() in SENIORITIES:
        return SENIORITIES.index(word.lower())
    return 1


def normalised_company(company: str | None) -> str | None:
    """Companies compared case- and space-insensitively; blank is unknown."""
    if company is None:
        return None
    cleaned = " ".join(company.lower().split())
    return cleaned or None


def utc_offset_hours(timezone: str | None, at: datetime) -> float | None:
    if not timezone:
        return None
    try:
        offset = at.astimezone(ZoneInfo(timezone)).utcoffset()
    except (ZoneInfoNotFoundError, ValueError):
        return None
    return None if offset is None else offset.total_seconds() / 3600


def describe_time(moment: datetime, timezone: str) -> str:
    """A moment in a member's time zone, e.g. `Mon 23 Nov, 09:00`."""
    return moment.astimezone(ZoneInfo(timezone)).strftime("%a %d %b, %H:%M")


# --- figures ---------------------------------------------------------------------


def median(values: Sequence[float]) -> float | None:
    return float(statistics.median(values)) if values else None


def share(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def top_decile_share(requests_per_mentor: Sequence[int]) -> float | None:
    """Of all the requests mentors received, the share that went to the most requested
    10 % of mentors (at least one mentor): 0.1 is an even spread, 1.0 one star."""
    counts = sorted((count for count in requests_per_mentor if count >= 0), reverse=True)
    total = sum(counts)
    if not total:
        return None
    top = max(1, math.ceil(len(counts) * 0.1))
    return sum(counts[:top]) / total


def percent(value: float | None) -> str:
    return "–" if value is None else f"{value:.0%}"


def describe_days(days: float | None) -> str:
    if days is None:
        return "–"
    return f"{days:.1f} days"
