"""Ask Me Anything rules, without I/O: the lifecycle, the timeline of announcement,
reminders, start and close, question text limits, near-duplicate detection and
the order in which questions reach the host."""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Protocol, TypeVar
from zoneinfo import ZoneInfo

from bot.core.times import TimeInputError, describe_time, parse_future_time, read_duration


class AmaState(StrEnum):
    SCHEDULED = "scheduled"  # created; announced (and open for questions) later
    COLLECTING = "collecting"  # announced: members ask and vote before the start
    LIVE = "live"  # the host answers; members keep asking and voting
    CLOSED = "closed"


_NEXT_STATES: dict[AmaState, frozenset[AmaState]] = {
    AmaState.SCHEDULED: frozenset({AmaState.COLLECTING, AmaState.CLOSED}),
    AmaState.COLLECTING: frozenset({AmaState.LIVE, AmaState.CLOSED}),
    AmaState.LIVE: frozenset({AmaState.CLOSED}),
    AmaState.CLOSED: frozenset(),
}

ASKING_STATES = frozenset({AmaState.COLLECTING, AmaState.LIVE})


class LifecycleError(ValueError):
    """A transition the lifecycle does not allow (e.g. going live twice)."""


def transition(current: AmaState | str, target: AmaState) -> AmaState:
    """The new state, or `LifecycleError` when `current` cannot move to `target`."""
    state = AmaState(current)
    if target not in _NEXT_STATES[state]:
        raise LifecycleError(f"an AMA cannot go from {state} to {target}")
    return target


class QuestionStatus(StrEnum):
    DRAFT = "draft"  # a near-duplicate kept until its asker posts it anyway or upvotes
    PENDING = "pending"  # waiting in the moderators' queue
    APPROVED = "approved"  # visible in the channel, open for votes
    ANSWERING = "answering"  # posted by the host as a thread, being answered now
    ANSWERED = "answered"
    SKIPPED = "skipped"
    REJECTED = "rejected"


# How a question's status reads in a sentence ("it is …").
STATUS_WORDS = {
    QuestionStatus.PENDING: "waiting for moderation",
    QuestionStatus.ANSWERING: "being answered right now",
    QuestionStatus.ANSWERED: "already answered",
    QuestionStatus.SKIPPED: "skipped by the host",
    QuestionStatus.REJECTED: "not approved",
    QuestionStatus.APPROVED: "open for votes",
    QuestionStatus.DRAFT: "not posted",
}


def status_words(status: str) -> str:
    return STATUS_WORDS[QuestionStatus(status)]


# What counts toward a member's limit of open questions.
OPEN_STATUSES = frozenset(
    {QuestionStatus.PENDING, QuestionStatus.APPROVED, QuestionStatus.ANSWERING}
)
# Questions a new question is compared with (drafts and rejected ones are not "asked").
ASKED_STATUSES = OPEN_STATUSES | {QuestionStatus.ANSWERED, QuestionStatus.SKIPPED}

MIN_QUESTION_LENGTH = 10
MAX_TITLE_LENGTH = 150
MAX_REASON_LENGTH = 300
MAX_QUESTION_LENGTH = 300
DEFAULT_MAX_OPEN_QUESTIONS = 3
DEFAULT_DURATION = timedelta(minutes=60)
MIN_DURATION = timedelta(minutes=10)
MAX_DURATION = timedelta(hours=4)
NEAR_DUPLICATE_THRESHOLD = 0.75
# Two words are "the same" when they differ by a typo or a spelling variant.
SAME_WORD_RATIO = 0.85


class AmaInputError(ValueError):
    """A member-facing explanation of why a question or a schedule was refused."""


def clean_question(text: str) -> str:
    """The question as it will be shown (whitespace collapsed), or a refusal."""
    cleaned = " ".join(text.split())
    if not cleaned:
        raise AmaInputError(
            "Your question is empty. Write it after the command: `/kindred ama ask How do you…?`"
        )
    if len(cleaned) < MIN_QUESTION_LENGTH:
        raise AmaInputError(
            f"That's a bit short for a question ({len(cleaned)} characters). "
            f"Give the host at least {MIN_QUESTION_LENGTH} characters to work with."
        )
    if len(cleaned) > MAX_QUESTION_LENGTH:
        raise AmaInputError(
            f"Your question is {len(cleaned)} characters; the limit is {MAX_QUESTION_LENGTH}. "
            "Shorter questions get more votes (and better answers)."
        )
    return cleaned


def clean_title(text: str) -> str:
    title = " ".join(text.split())
    if len(title) > MAX_TITLE_LENGTH:
        raise AmaInputError(
            f"The title is {len(title)} characters; keep it under {MAX_TITLE_LENGTH}."
        )
    return title


def clean_reason(text: str) -> str | None:
    """A moderator's rejection reason, whitespace collapsed; None when left empty."""
    reason = " ".join(text.split()) or None
    if reason is not None and len(reason) > MAX_REASON_LENGTH:
        raise AmaInputError(f"Keep the reason under {MAX_REASON_LENGTH} characters.")
    return reason


def check_moderation(
    channel_id: str, moderated: bool | None, mod_channel: str | None
) -> tuple[bool, str | None]:
    """Whether the AMA is moderated and where its review queue lives. Moderation is
    on when a review channel is given, unless turned off explicitly."""
    is_moderated = moderated if moderated is not None else mod_channel is not None
    if is_moderated and mod_channel is None:
        raise AmaInputError(
            "A moderated AMA needs a private channel for its review queue: add "
            "`mod_channel:#ama-mods`."
        )
    if not is_moderated and mod_channel is not None:
        raise AmaInputError("`mod_channel` only applies to moderated AMAs: add `moderated:on`.")
    if mod_channel == channel_id:
        raise AmaInputError(
            "The review queue shows who asked anonymous questions, so it needs its own "
            "private channel, not the AMA channel."
        )
    return is_moderated, mod_channel


# --- near-duplicates -------------------------------------------------------------

# Words that say little about what is asked (apostrophes are removed before).
_STOPWORD_LIST = """
a about am an and any are as at be been being but by can could did do does doing for
from had has have having how i if in into is it its just me might my of on or our should
so some than that the their them then there these they this those to too us very was we
were what whats when where which who whom why will with would you your yours youre ive
id ill im dont doesnt
"""
_STOPWORDS = frozenset(_STOPWORD_LIST.split())
_SUFFIXES = ("ing", "ies", "es", "ed", "s")
_WORD = re.compile(r"[a-z0-9]+")


def _stem(word: str) -> str:
    # A light stemmer: "teams"/"team", "scaling"/"scale" meet via the typo tolerance.
    for suffix in _SUFFIXES:
        if len(word) > len(suffix) + 2 and word.endswith(suffix):
            return word[: -len(suffix)]
    return word


def normalise(text: str) -> str:
    """Lowercase words without punctuation: the form exact duplicates are compared in."""
    return " ".join(_WORD.findall(text.lower().replace("'", "").replace("’", "")))


def keywords(text: str) -> list[str]:
    """The words that carry the question's meaning, stemmed."""
    words = normalise(text).split()
    meaningful = [_stem(word) for word in words if word not in _STOPWORDS]
    # A question made only of stopwords ("what do you do?") is compared word for word.
    return meaningful or words


def similarity(first: str, second: str) -> float:
    """Token-set Jaccard similarity in [0, 1] where words within a typo count as equal,
    so reordered or slightly reworded questions score high but a question that
    differs in one meaningful word ("hire" vs "train") does not."""
    left, right = set(keywords(first)), set(keywords(second))
    if not left and not right:
        return 1.0
    unmatched = set(right)
    matched = 0
    for word in sorted(left):
        if word in unmatched:
            unmatched.discard(word)
            matched += 1
            continue
        close = difflib.get_close_matches(word, sorted(unmatched), n=1, cutoff=SAME_WORD_RATIO)
        if close:
            unmatched.discard(close[0])
            matched += 1
    return matched / (len(left) + len(right) - matched)


@dataclass(frozen=True, slots=True)
class Candidate:
    """An already-asked question a new one is compared with."""

    id: int
    text: str


@dataclass(frozen=True, slots=True)
class Similar:
    id: int
    score: float
    exact: bool


def find_similar(
    text: str, candidates: Iterable[Candidate], threshold: float = NEAR_DUPLICATE_THRESHOLD
) -> Similar | None:
    """The asked question `text` duplicates (exactly, once normalised) or nearly
    duplicates (similarity at least `threshold`); the closest one wins."""
    wanted = normalise(text)
    best: Similar | None = None
    for candidate in candidates:
        if normalise(candidate.text) == wanted:
            return Similar(candidate.id, 1.0, exact=True)
        score = similarity(text, candidate.text)
        if score >= threshold and (best is None or score > best.score):
            best = Similar(candidate.id, score, exact=False)
    return best


# --- ordering ---------------------------------------------------------------------


class Rankable(Protocol):
    @property
    def id(self) -> int | None: ...

    @property
    def votes(self) -> int: ...

    @property
    def created_at(self) -> datetime: ...


R = TypeVar("R", bound=Rankable)


def ranked(questions: Iterable[R]) -> list[R]:
    """Most votes first; among equals, the question asked first."""
    return sorted(questions, key=lambda q: (-q.votes, q.created_at, q.id or 0))


# --- schedule input ---------------------------------------------------------------


def parse_duration(text: str) -> timedelta:
    """`45m`, `1h`, `90m`, `1h30m` or plain minutes (`45`)."""
    duration = read_duration(text)
    if duration is None:
        raise AmaInputError(
            f"I couldn't read `{text}` as a duration. Use minutes or hours, like "
            "`duration:45m`, `duration:1h` or `duration:1h30m`."
        )
    if duration < MIN_DURATION:
        raise AmaInputError(f"An AMA lasts at least {_minutes(MIN_DURATION)} minutes.")
    if duration > MAX_DURATION:
        raise AmaInputError(
            f"An AMA lasts at most {_minutes(MAX_DURATION) // 60} hours; "
            "schedule a second one for the rest."
        )
    return duration


def parse_time(text: str, zone: ZoneInfo, now: datetime, what: str = "at") -> datetime:
    """A future moment from `2026-12-01 15:00` (in `zone`) or ISO 8601 with an offset."""
    try:
        return parse_future_time(text, zone, now, what)
    except TimeInputError as refusal:
        raise AmaInputError(str(refusal)) from None


def describe_span(starts_at: datetime, ends_at: datetime, zone: ZoneInfo) -> str:
    """`Tue 1 Dec 2026, 15:00–16:00 (Europe/Paris)`."""
    start = starts_at.astimezone(zone)
    return (
        f"{start:%a} {start.day} {start:%b %Y}, {start:%H:%M}–"
        f"{ends_at.astimezone(zone):%H:%M} ({zone.key})"
    )


def describe_lead(lead: timedelta) -> str:
    """How long until something starts: `15 minutes`, `1 hour 30 minutes`, `24 hours`.
    Reminders say this rather than "tomorrow", which a late delivery could make false.
    Minutes round up: a tick runs up to a minute after the reminder's moment, and
    14 minutes 20 seconds to go is still "in 15 minutes", not 14."""
    minutes = max(1, math.ceil(lead.total_seconds() / 60))
    if minutes < 60:
        return f"{minutes} minute" if minutes == 1 else f"{minutes} minutes"
    if minutes >= 120:
        return f"{round(minutes / 60)} hours"
    rest = minutes - 60
    return "1 hour" if rest == 0 else f"1 hour {rest} minute{'s' if rest > 1 else ''}"


def _minutes(duration: timedelta) -> int:
    return int(duration.total_seconds() // 60)


# --- timeline ---------------------------------------------------------------------


class EventKind(StrEnum):
    ANNOUNCE = "announce"
    REMIND_DAY = "remind24"
    REMIND_SOON = "remind15"
    START = "start"
    CLOSE = "close"


REMINDER_LEADS = {
    EventKind.REMIND_DAY: timedelta(hours=24),
    EventKind.REMIND_SOON: timedelta(minutes=15),
}
_REMINDERS = frozenset(REMINDER_LEADS)


@dataclass(frozen=True, slots=True)
class TimelineEvent:
    kind: EventKind
    at: datetime


def timeline(
    announce_at: datetime, starts_at: datetime, ends_at: datetime
) -> tuple[TimelineEvent, ...]:
    """Everything that happens to an AMA on its own, in time order. A reminder whose
    moment is not after the announcement is left out: nobody needs "starts in 24
    hours" right after "starts in 3 hours"."""
    events = [TimelineEvent(EventKind.ANNOUNCE, announce_at)]
    for kind, lead in REMINDER_LEADS.items():
        if starts_at - lead > announce_at:
            events.append(TimelineEvent(kind, starts_at - lead))
    events.append(TimelineEvent(EventKind.START, starts_at))
    events.append(TimelineEvent(EventKind.CLOSE, ends_at))
    return tuple(events)


def due_events(
    events: Sequence[TimelineEvent], cursor: datetime | None, now: datetime
) -> list[TimelineEvent]:
    """The events from `cursor` (the next one not yet handled) up to `now`.

    After downtime several may be due at once: a reminder is dropped when a later
    event is due too (no "starts in 24 hours" once it started), and so is the start
    when the close is due (no control panel for an AMA that is already over)."""
    if cursor is None:
        return []
    due = [event for event in events if cursor <= event.at <= now]
    kept: list[TimelineEvent] = []
    for position, event in enumerate(due):
        later = due[position + 1 :]
        if event.kind in _REMINDERS and later:
            continue
        if event.kind == EventKind.START and any(e.kind == EventKind.CLOSE for e in later):
            continue
        kept.append(event)
    return kept


def next_event_time(events: Sequence[TimelineEvent], after: datetime) -> datetime | None:
    """When the first event after `after` is due (None once the close has happened)."""
    return next((event.at for event in events if event.at > after), None)


_REMINDER_WORDS = {EventKind.REMIND_DAY: "a day before", EventKind.REMIND_SOON: "15 minutes before"}


def reminder_words(events: Sequence[TimelineEvent]) -> list[str]:
    """The reminders an AMA's timeline sends, as the scheduling answer names them."""
    kinds = {event.kind for event in events}
    return [words for kind, words in _REMINDER_WORDS.items() if kind in kinds]


def state_words(state: str, announce_at: datetime, starts_at: datetime, zone: ZoneInfo) -> str:
    """Where the AMA stands, for queues, the home tab and the export."""
    if state == AmaState.SCHEDULED:
        return f"questions open {describe_time(announce_at, zone)}"
    if state == AmaState.COLLECTING:
        return f"collecting questions, starts {describe_time(starts_at, zone)}"
    if state == AmaState.LIVE:
        return "🔴 live now"
    return "closed"
