"""Virtual coffee domain rules, free of I/O: when rounds happen, how long they last,
who proposes a time, which conversation starter a group gets, and the figures
`/kindred coffee stats` reports. The commands and the round job feed these
functions values read from storage and store what they return."""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

CADENCES = ("weekly", "biweekly", "monthly")
# README and most people say "fortnightly"; the stored name stays "biweekly".
CADENCE_ALIASES = {"fortnightly": "biweekly"}
CADENCE_NAMES = {
    "weekly": "every week",
    "biweekly": "every 2 weeks",
    "monthly": "on the first {weekday} of each month",
}
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
ANSWERS = {"met": "Met", "not_yet": "Not yet", "didnt_happen": "Didn't happen"}
# The follow-up asks "Did you meet?" this long before the round ends, so answers
# arrive before the next pairing; short rounds (run-now) ask at three quarters.
FOLLOWUP_BEFORE_END = timedelta(days=1)
_ONE_DAY = timedelta(days=1)
# Rounds are at most five weeks apart (a month's first weekday); look a bit further.
_LONGEST_GAP_DAYS = 45


@dataclass(frozen=True, slots=True)
class Schedule:
    """When a program's rounds start: `weekday` 0 = Monday, `hour` in the program's
    time zone; `anchor` is the first round's date, which fixes the fortnight of a
    biweekly program."""

    cadence: str
    weekday: int
    hour: int
    timezone: str
    anchor: date

    def occurs_on(self, day: date) -> bool:
        if day.weekday() != self.weekday:
            return False
        if self.cadence == "weekly":
            return True
        if self.cadence == "biweekly":
            # Fortnights count from the first round.
            return day >= self.anchor and (day - self.anchor).days % 14 == 0
        if self.cadence == "monthly":
            return day.day <= 7
        raise ValueError(f"unknown cadence {self.cadence!r}")

    def at(self, day: date) -> datetime:
        """The round time on `day`, in the program's time zone."""
        return datetime.combine(day, time(self.hour), ZoneInfo(self.timezone))

    def next_after(self, moment: datetime) -> datetime:
        """The first round strictly after `moment` (a time zone aware datetime)."""
        day = moment.astimezone(ZoneInfo(self.timezone)).date() - _ONE_DAY
        for _ in range(_LONGEST_GAP_DAYS):
            if self.occurs_on(day) and self.at(day) > moment:
                return self.at(day)
            day += _ONE_DAY
        raise ValueError("the schedule has no future round")

    def latest_at_or_before(self, moment: datetime) -> datetime | None:
        """The most recent round at or before `moment`, if there was one."""
        day = moment.astimezone(ZoneInfo(self.timezone)).date() + _ONE_DAY
        for _ in range(_LONGEST_GAP_DAYS):
            if day < self.anchor:
                return None
            if self.occurs_on(day) and self.at(day) <= moment:
                return self.at(day)
            day -= _ONE_DAY
        return None

    def describe(self) -> str:
        weekday = WEEKDAYS[self.weekday].capitalize()
        if self.cadence == "monthly":
            when = CADENCE_NAMES["monthly"].format(weekday=weekday)
        else:
            when = f"{CADENCE_NAMES[self.cadence]} on {weekday}"
        return f"{when} at {self.hour:02d}:00 ({self.timezone})"


def first_round_date(weekday: int, hour: int, timezone: str, now: datetime) -> date:
    """The date of the first `weekday` at `hour` (program time) after `now`."""
    local = now.astimezone(ZoneInfo(timezone))
    days_ahead = (weekday - local.weekday()) % 7
    if days_ahead == 0 and local.hour >= hour:
        days_ahead = 7
    return local.date() + timedelta(days=days_ahead)


@dataclass(frozen=True, slots=True)
class RoundWindow:
    starts: datetime
    reminder_at: datetime
    followup_at: datetime
    ends: datetime


def round_window(starts: datetime, ends: datetime) -> RoundWindow:
    """A round lasts until the next one: reminder half-way, "Did you meet?" a day
    before the end (three quarters of the way for rounds shorter than two days)."""
    length = ends - starts
    followup_at = max(ends - FOLLOWUP_BEFORE_END, starts + length * 3 / 4)
    return RoundWindow(starts, starts + length / 2, followup_at, ends)


def _zone(timezone: str | None) -> ZoneInfo | None:
    if not timezone:
        return None
    try:
        return ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def utc_offset_hours(timezone: str | None, at: datetime) -> float | None:
    """The member's offset from UTC at the round's time, None when unknown."""
    zone = _zone(timezone)
    offset = None if zone is None else at.astimezone(zone).utcoffset()
    return None if offset is None else offset.total_seconds() / 3600


def local_time(timezone: str | None, at: datetime, pattern: str = "%a %H:%M") -> str | None:
    zone = _zone(timezone)
    return None if zone is None else at.astimezone(zone).strftime(pattern)


def normalised(text: str | None) -> str | None:
    """Company and industry compared case- and space-insensitively; blank is unknown."""
    if text is None:
        return None
    cleaned = " ".join(text.split()).lower()
    return cleaned or None


def round_seed(program_id: int, occurrence: datetime) -> int:
    """The same program and occurrence always pair the same way (preview = round)."""
    return (program_id * 1_000_003 + int(occurrence.timestamp()) // 60) % 2**32


def choose_starter(starters: Sequence[str], seen: Mapping[str, int], seed: int) -> str:
    """A starter none of the group has seen in this program; when they have seen
    them all, one the group has seen least often. `seen` counts sightings."""
    if not starters:
        raise ValueError("no conversation starters configured")
    fewest = min(seen.get(starter, 0) for starter in starters)
    fresh = [starter for starter in starters if seen.get(starter, 0) == fewest]
    return random.Random(seed).choice(fresh)


@dataclass(frozen=True, slots=True)
class ProposerCandidate:
    user_id: str
    times_proposed: int
    utc_offset_hours: float | None


def choose_proposer(candidates: Sequence[ProposerCandidate]) -> str:
    """Rotate the chore: whoever proposed least often in this program; on a tie the
    one whose working day starts first (furthest east), so the others wake up to a
    proposal; then by id so the choice is stable."""
    return min(
        candidates,
        key=lambda candidate: (
            candidate.times_proposed,
            -(candidate.utc_offset_hours if candidate.utc_offset_hours is not None else -99.0),
            candidate.user_id,
        ),
    ).user_id


@dataclass(frozen=True, slots=True)
class RoundFigures:
    """One stored round as stats sees it. `asked` is whether its follow-up went out:
    the meet rate counts every group of a round whose members were asked, and of a
    round not asked yet the groups that already said they met (pressing "We met" on
    the intro or the reminder), so early meetings show before the follow-up."""

    occurrence: datetime
    participants: int
    groups: int
    met_groups: int
    answered_groups: int
    asked: bool
    total_pairs: int
    repeat_pairs: int
    any_repeat_pairs: int
    same_company_pairs: int
    low_overlap_pairs: int
    in_trio: int
    left_out: int
    solver_ms: float


@dataclass(frozen=True, slots=True)
class Rates:
    meet_rate: float | None
    # Pairs that met within the repeat window / at any time before.
    repeat_rate: float | None
    ever_met_rate: float | None
    cross_company_rate: float | None
    timezone_fit: float | None


def rates(figures: Iterable[RoundFigures]) -> Rates:
    """Pair-weighted rates over rounds (a big round counts for more than a small one)."""
    rounds = list(figures)
    asked_groups = sum(r.groups if r.asked else r.met_groups for r in rounds)
    met = sum(r.met_groups for r in rounds)
    pairs = sum(r.total_pairs for r in rounds)

    def share(count: int) -> float | None:
        return count / pairs if pairs else None

    repeat = share(sum(r.repeat_pairs for r in rounds))
    ever_met = share(sum(r.any_repeat_pairs for r in rounds))
    same_company = share(sum(r.same_company_pairs for r in rounds))
    low_overlap = share(sum(r.low_overlap_pairs for r in rounds))
    return Rates(
        meet_rate=met / asked_groups if asked_groups else None,
        repeat_rate=repeat,
        ever_met_rate=ever_met,
        cross_company_rate=None if same_company is None else 1 - same_company,
        timezone_fit=None if low_overlap is None else 1 - low_overlap,
    )


def percent(value: float | None) -> str:
    return "–" if value is None else f"{value:.0%}"
