"""Moments and durations as organisers type them when they schedule something (an
AMA, an event), and a moment as a reader sees it. Features wrap the refusals in
their own error type and keep their own limits."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

# Further ahead than this is almost certainly a typo in the year.
MAX_SCHEDULE_AHEAD = timedelta(days=366)

_DURATION = re.compile(r"^(?:(?P<hours>\d+)h)?(?:(?P<minutes>\d+)m?)?$")


class TimeInputError(ValueError):
    """A member-facing explanation of why a date, time or duration was refused."""


def parse_future_time(text: str, zone: ZoneInfo, now: datetime, what: str = "at") -> datetime:
    """A future moment (UTC) from `2026-12-01 15:00` in `zone`, or ISO 8601 with an
    offset; `what` is the option's name, for the example in a refusal."""
    example = f'`{what}:"{(now + timedelta(days=7)).astimezone(zone):%Y-%m-%d} 15:00"`'
    try:
        # A date alone would silently mean midnight: insist on a time.
        if ":" not in text:
            raise ValueError(text)
        parsed = datetime.fromisoformat(text.strip().replace("/", "-"))
    except ValueError:
        raise TimeInputError(
            f"I couldn't read `{text}` as a date and time. Use {example} "
            f"(time zone {zone.key}) or ISO 8601 like `2026-12-01T15:00+01:00`."
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=zone)
    moment = parsed.astimezone(UTC)
    if moment <= now:
        raise TimeInputError(
            f"{describe_time(moment, zone)} is in the past (it's now "
            f"{describe_time(now, zone)}). Pick a future time, like {example}."
        )
    if moment - now > MAX_SCHEDULE_AHEAD:
        raise TimeInputError(
            f"{describe_time(moment, zone)} is more than a year away; check the year."
        )
    return moment


def read_duration(text: str) -> timedelta | None:
    """`45m`, `1h`, `90m`, `1h30m` or plain minutes (`45`); None when unreadable."""
    match = _DURATION.match(text.strip().lower().replace(" ", ""))
    if match is None or not (match.group("hours") or match.group("minutes")):
        return None
    return timedelta(hours=int(match.group("hours") or 0), minutes=int(match.group("minutes") or 0))


def describe_time(moment: datetime, zone: ZoneInfo) -> str:
    """`Tue 1 Dec 2026, 15:00 (Europe/Paris)`."""
    local = moment.astimezone(zone)
    return f"{local:%a} {local.day} {local:%b %Y}, {local:%H:%M} ({zone.key})"
