"""Profile rules: the fields members share, their limits, and how a time zone or a
topic list typed by a member is read (shared by every feature that asks for them)."""

from __future__ import annotations

import difflib
from functools import cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from bot.core.errors import CommandError

SENIORITIES = ("student", "junior", "mid", "senior", "lead", "manager", "director", "executive")
MAX_TOPICS = 10
MAX_TOPIC_LENGTH = 40
MAX_BIO_LENGTH = 500
FIELDS = ("company", "industry", "role", "seniority", "timezone", "topics", "bio")


@cache
def _zones() -> dict[str, str]:
    return {zone.lower(): zone for zone in available_timezones()}


def canonical_timezone(text: str) -> str:
    """The IANA name for `text` (case-insensitive), or a refusal with suggestions."""
    zone = _zones().get(text.strip().lower())
    if zone is not None:
        try:
            ZoneInfo(zone)
        except ZoneInfoNotFoundError:
            zone = None
    if zone is None:
        close = difflib.get_close_matches(text.strip().lower(), list(_zones()), n=3, cutoff=0.6)
        suggestion = ", ".join(_zones()[name] for name in close)
        hint = f" Did you mean {suggestion}?" if suggestion else ""
        raise CommandError(
            f"`{text}` is not a time zone I know.{hint} Use an IANA name like Europe/Berlin, "
            "America/New_York or Asia/Kolkata."
        )
    return zone


def parse_topics(text: str) -> list[str]:
    topics: list[str] = []
    for raw in text.split(","):
        topic = " ".join(raw.split())
        if not topic:
            continue
        if len(topic) > MAX_TOPIC_LENGTH:
            raise CommandError(
                f"The topic `{topic[:20]}…` is too long ({len(topic)} characters); "
                f"keep each under {MAX_TOPIC_LENGTH}."
            )
        if topic.lower() not in {existing.lower() for existing in topics}:
            topics.append(topic)
    if len(topics) > MAX_TOPICS:
        raise CommandError(f"That's {len(topics)} topics; pick your top {MAX_TOPICS}.")
    return topics
