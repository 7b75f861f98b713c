"""Welcome logic without I/O: delays, the welcome DM's placeholders, and who
becomes a newcomer's buddy."""

from __future__ import annotations

import logging
import re
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import FrameType
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from jinja2 import TemplateError

from bot.core.formatting import channel_link, channel_links
from bot.core.mentions import mention
from bot.core.platform import Button, ButtonStyle, Message
from bot.core.templates import TemplateProblem, Templates, Trusted

log = logging.getLogger(__name__)

MAX_DELAY = timedelta(days=7)
# A buddy's load counts the newcomers they were given in this window.
BUDDY_LOAD_WINDOW = timedelta(days=30)
BUDDY_CHECKIN_AFTER = timedelta(days=7)
ACTIVATION_WINDOW = timedelta(days=14)
# Two people can meet when their 9:00-17:00 days overlap by at least this much.
WORKDAY_HOURS = 8
MIN_OVERLAP_HOURS = 2

STOCK_TEMPLATE = "welcome/dm"
COFFEE_COMMAND = "`/kindred coffee join`"

# What an organiser's welcome template may use (described in welcome_dm.j2).
PLACEHOLDERS = (
    "name",
    "member",
    "community",
    "channels",
    "intro_channel",
    "coffee_command",
    "code_of_conduct",
)

_DELAY = re.compile(r"^(\d+)\s*([smhd]?)$")
_DELAY_UNITS = {"": 60, "s": 1, "m": 60, "h": 3600, "d": 86400}
_CHANNEL_REF = re.compile(r"<#([A-Za-z0-9_.\-]+)(?:\|[^>]*)?>")
_URL = re.compile(r"^https?://[^\s<>|\"'`()\[\]]+$")


class WelcomeSettingError(ValueError):
    """An organiser's setting that cannot be used; the message says why."""


def parse_delay(text: str) -> timedelta:
    """`0`, `now`, `30m`, `2h`, `1d` (a bare number is minutes), at most 7 days."""
    cleaned = text.strip().lower()
    if cleaned in {"now", "immediately", "none"}:
        return timedelta(0)
    match = _DELAY.match(cleaned)
    if match is None:
        raise WelcomeSettingError(
            f"`{text}` is not a delay I understand. Use 0 (immediately), 30m, 2h or 1d."
        )
    delay = timedelta(seconds=int(match.group(1)) * _DELAY_UNITS[match.group(2)])
    if delay > MAX_DELAY:
        raise WelcomeSettingError("The delay can be at most 7 days (7d).")
    return delay


def format_delay(seconds: int) -> str:
    """The compact form `parse_delay` reads back: immediately, 45s, 30m, 2h, 1d."""
    if seconds == 0:
        return "immediately"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def parse_channel_list(text: str) -> list[str]:
    """Channel ids from `<#C1> <#C2>` (or comma-separated), in order, without repeats."""
    leftover = _CHANNEL_REF.sub("", text).replace(",", " ").strip()
    if leftover:
        raise WelcomeSettingError(
            f"`{leftover.split()[0]}` is not a channel. List channels like #general #help."
        )
    channels: list[str] = []
    for channel in _CHANNEL_REF.findall(text):
        if channel not in channels:
            channels.append(channel)
    return channels


def parse_url(text: str) -> str:
    url = text.strip()
    if not _URL.match(url) or len(url) > 500:
        raise WelcomeSettingError(
            f"`{text}` is not a web link. Give the full address, like https://example.org/coc."
        )
    return url


@dataclass(frozen=True, slots=True)
class WelcomeDetails:
    """Everything a welcome DM can show, gathered from settings and the member."""

    user_id: str
    name: str
    community: str
    visit_channels: Sequence[str] = ()
    intro_channel: str | None = None
    code_of_conduct_url: str | None = None


def placeholder_values(details: WelcomeDetails) -> dict[str, object]:
    return {
        "name": details.name,
        "member": Trusted(mention(details.user_id)),
        "community": details.community,
        "channels": channel_links(details.visit_channels),
        "intro_channel": channel_link(details.intro_channel) if details.intro_channel else "",
        "coffee_command": Trusted(COFFEE_COMMAND),
        "code_of_conduct": Trusted(details.code_of_conduct_url or ""),
    }


def welcome_buttons() -> tuple[Button, ...]:
    return (
        Button("Introduce me", "welcome.introduce", style=ButtonStyle.PRIMARY),
        # Coffee owns this action; "" means the community's program (or a choice).
        Button("Join virtual coffee", "coffee.join", ""),
        Button("Find me a buddy", "welcome.find_buddy"),
    )


def welcome_message(templates: Templates, template: str | None, details: WelcomeDetails) -> Message:
    """The welcome DM: the organiser's template (or the stock one) and its buttons.

    Templates are checked at setup, so a custom one failing here means something
    no check foresaw; the newcomer then gets the stock welcome rather than none."""
    values = placeholder_values(details)
    text = ""
    if template is not None:
        try:
            text = templates.render_source(template, **values)
        except Exception:  # Not only TemplateProblem: a template's own 1/0 too.
            log.exception("the custom welcome template failed; sending the stock one")
    if not text:
        text = templates.render(STOCK_TEMPLATE, **values)
    return Message(text=text, buttons=welcome_buttons())


# Trial newcomers for checking a template: every optional value set, and none set.
_SAMPLES = (
    WelcomeDetails(
        user_id="U0",
        name="Sam Sample",
        community="Sample Community",
        visit_channels=("C0", "C1"),
        intro_channel="C2",
        code_of_conduct_url="https://example.org/coc",
    ),
    WelcomeDetails(user_id="U0", name="Sam Sample", community="Sample Community"),
)


def check_template(templates: Templates, source: str, *, typed: bool = True) -> str:
    """Refuse a template now rather than when a newcomer arrives: syntax, unknown
    placeholders, and trial renders (with and without the optional values, which
    organisers may change later) that must each finish quickly and produce some
    text of a sensible length. `\\n` typed in a slash command becomes a line break
    (`typed=False` for a template file, whose line breaks are real)."""
    if typed:
        source = source.replace("\\n", "\n")
    templates.check(source, PLACEHOLDERS)
    for sample in _SAMPLES:
        if not trial_render(templates, source, placeholder_values(sample)):
            raise TemplateProblem(
                "The template renders to an empty message"
                + ("." if sample.visit_channels else " when optional settings are unset.")
            )
    return source


# A welcome DM renders in well under a millisecond; a second means a runaway loop.
TRIAL_SECONDS = 1.0
# Longer than any welcome worth reading, and Discord splits messages over 2,000.
MAX_MESSAGE_CHARS = 4000


class _TooSlow(BaseException):
    """Raised by the trial's tracer. A BaseException, so that neither Jinja's nor
    the template's own `except Exception` can swallow it."""


def trial_render(
    templates: Templates,
    source: str,
    values: Mapping[str, object],
    *,
    seconds: float = TRIAL_SECONDS,
    max_chars: int = MAX_MESSAGE_CHARS,
) -> str:
    """Render `source` once as a trial, stopped after `seconds` or `max_chars`; any
    failure becomes a TemplateProblem that says, in plain words, what went wrong.

    The sandbox bounds each `range` but not loops nested in loops, and Jinja cannot
    be interrupted from outside, so a tracer on this thread checks the deadline on
    every line of the compiled template (setup-time only: tracing is slow)."""
    deadline = time.monotonic() + seconds

    def tracer(frame: FrameType, event: str, arg: Any) -> Any:
        if time.monotonic() > deadline:
            raise _TooSlow
        return tracer

    previous = sys.gettrace()
    sys.settrace(tracer)
    chunks: list[str] = []
    size = 0
    try:
        for chunk in templates.environment.from_string(source).generate(**values):
            size += len(chunk)
            if size > max_chars:
                raise TemplateProblem(
                    f"The template makes a message longer than {max_chars:,} characters; "
                    "a welcome DM should be short."
                )
            chunks.append(chunk)
    except _TooSlow:
        raise TemplateProblem(
            f"The template was still rendering after {seconds:g} second"
            f"{'' if seconds == 1 else 's'}, so I stopped it: is there a loop that never "
            "ends, or loops inside loops?"
        ) from None
    except TemplateProblem:
        raise
    except TemplateError as error:
        raise TemplateProblem(f"The template could not be rendered: {error}") from error
    except Exception as error:  # Anything the template's own code raised (1/0, …).
        raise TemplateProblem(
            f"The template stopped with an error when I tried it on a sample newcomer: "
            f"{str(error).rstrip('.') or type(error).__name__}."
        ) from error
    finally:
        sys.settrace(previous)
    return "".join(chunks).strip()


INTRO_MAX_LENGTH = 1000
PROFILE_FIELD_MAX_LENGTH = 100


class IntroProblem(ValueError):
    """A submitted intro form that cannot be posted; the message says why."""


@dataclass(frozen=True, slots=True)
class IntroForm:
    """The "Introduce yourself" form as submitted, trimmed and checked."""

    intro: str
    role: str = ""
    company: str = ""
    topics: str = ""


def read_intro_form(options: Mapping[str, object]) -> IntroForm:
    """The submitted form's fields; refuses an empty or over-long intro or field
    (platforms enforce the lengths too, but a custom client may not)."""
    values = {name: str(value or "").strip() for name, value in options.items()}
    intro = values.get("intro", "")
    if not intro:
        raise IntroProblem("Your introduction is empty: write a few lines about yourself.")
    if len(intro) > INTRO_MAX_LENGTH:
        raise IntroProblem(
            f"Your introduction is {len(intro)} characters; "
            f"please keep it under {INTRO_MAX_LENGTH}."
        )
    fields = {}
    for name in ("role", "company"):
        if len(values.get(name, "")) > PROFILE_FIELD_MAX_LENGTH:
            raise IntroProblem(
                f"Your {name} is too long; keep it under {PROFILE_FIELD_MAX_LENGTH} characters."
            )
        fields[name] = " ".join(values.get(name, "").split())
    return IntroForm(intro, fields["role"], fields["company"], values.get("topics", ""))


@dataclass(frozen=True, slots=True)
class Person:
    """What buddy choice knows about someone."""

    user_id: str
    company: str | None = None
    timezone: str | None = None


def _utc_offset_hours(zone: str | None, at: datetime) -> float | None:
    if not zone:
        return None
    try:
        offset = at.astimezone(ZoneInfo(zone)).utcoffset()
    except (ZoneInfoNotFoundError, ValueError):
        return None
    return None if offset is None else offset.total_seconds() / 3600


def working_overlap_hours(first: str | None, second: str | None, at: datetime) -> float | None:
    """Shared hours of two 9-to-5 days at `at` (daylight saving included); None if
    either time zone is unknown."""
    a, b = _utc_offset_hours(first, at), _utc_offset_hours(second, at)
    if a is None or b is None:
        return None
    difference = abs(a - b) % 24
    difference = min(difference, 24 - difference)
    return max(0.0, WORKDAY_HOURS - difference)


def _same_company(first: str | None, second: str | None) -> bool:
    if not first or not second:
        return False
    return " ".join(first.lower().split()) == " ".join(second.lower().split())


def choose_buddy(
    newcomer: Person, volunteers: Iterable[Person], loads: dict[str, int], at: datetime
) -> Person | None:
    """The least-loaded volunteer; among equals, one from another company, then one
    whose working day overlaps the newcomer's (known fit before unknown before
    misfit), then by user id so every replica picks the same person."""

    def rank(volunteer: Person) -> tuple[int, bool, int, str]:
        overlap = working_overlap_hours(newcomer.timezone, volunteer.timezone, at)
        timezone_fit = 1 if overlap is None else (0 if overlap >= MIN_OVERLAP_HOURS else 2)
        return (
            loads.get(volunteer.user_id, 0),
            _same_company(newcomer.company, volunteer.company),
            timezone_fit,
            volunteer.user_id,
        )

    candidates = [person for person in volunteers if person.user_id != newcomer.user_id]
    return min(candidates, key=rank, default=None)


@dataclass(frozen=True, slots=True)
class Journey:
    """One newcomer's first steps, for the activation figures."""

    joined_at: datetime
    intro_posted_at: datetime | None
    buddied_at: datetime | None
    coffee_joined_at: datetime | None


@dataclass(frozen=True, slots=True)
class Activation:
    """Newcomers whose 14-day window has closed, and how many acted within it."""

    eligible: int
    activated: int
    by_intro: int
    by_coffee: int
    by_buddy: int
    # Newcomers still inside their window, and how many already acted.
    in_window: int
    in_window_activated: int

    @property
    def rate(self) -> float | None:
        return self.activated / self.eligible if self.eligible else None


def _within(moment: datetime | None, deadline: datetime) -> bool:
    return moment is not None and moment <= deadline


def activation(journeys: Iterable[Journey], now: datetime) -> Activation:
    """Share of newcomers who, within 14 days of joining, posted an intro, joined
    coffee or got a buddy. Only closed windows count towards the rate, so a wave of
    yesterday's joiners does not drag it down."""
    eligible = activated = by_intro = by_coffee = by_buddy = in_window = in_window_activated = 0
    for journey in journeys:
        deadline = journey.joined_at + ACTIVATION_WINDOW
        intro = _within(journey.intro_posted_at, deadline)
        coffee = _within(journey.coffee_joined_at, deadline)
        buddy = _within(journey.buddied_at, deadline)
        acted = intro or coffee or buddy
        if deadline > now:
            in_window += 1
            in_window_activated += acted
            continue
        eligible += 1
        activated += acted
        by_intro += intro
        by_coffee += coffee
        by_buddy += buddy
    return Activation(
        eligible, activated, by_intro, by_coffee, by_buddy, in_window, in_window_activated
    )


@dataclass(frozen=True, slots=True)
class Milestones:
    """When one newcomer passed each step, for a period's figures."""

    journey: Journey
    welcomed_at: datetime | None
    buddy_nudged_at: datetime | None


def period_figures(
    newcomers: Iterable[Milestones], start: datetime, end: datetime
) -> dict[str, float | None]:
    """The welcome figures of [start, end). Counts are of steps taken in the period;
    activation is of the cohort whose 14-day window closed in it (joined in
    [start - 14 days, end - 14 days)), so any period, even a week, has a settled
    rate that later data cannot change; None when that cohort is empty."""

    def within(moment: datetime | None) -> bool:
        return moment is not None and start <= moment < end

    rows = list(newcomers)
    closing = [
        row.journey
        for row in rows
        if row.welcomed_at is not None and start <= row.journey.joined_at + ACTIVATION_WINDOW < end
    ]
    cohort = activation(closing, end)
    return {
        "newcomers": sum(within(row.journey.joined_at) for row in rows),
        "welcomed": sum(within(row.welcomed_at) for row in rows),
        "intros_posted": sum(within(row.journey.intro_posted_at) for row in rows),
        "buddies_assigned": sum(within(row.journey.buddied_at) for row in rows),
        "buddy_checkins_done": sum(within(row.buddy_nudged_at) for row in rows),
        "activation_cohort": cohort.eligible,
        "activated": cohort.activated,
        "activation_rate": cohort.rate,
    }
