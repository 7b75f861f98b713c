"""Profile rules: time zones and topic lists as members type them."""

from __future__ import annotations

import pytest

from bot.core.errors import CommandError
from bot.domain.profile import MAX_TOPICS, canonical_timezone, parse_topics


def test_time_zones_are_read_case_insensitively_and_wrong_ones_get_suggestions() -> None:
    assert canonical_timezone(" europe/berlin ") == "Europe/Berlin"
    with pytest.raises(CommandError, match="Did you mean Europe/Berlin"):
        canonical_timezone("Europe/Berln")
    with pytest.raises(CommandError, match="IANA name"):
        canonical_timezone("Mondays-ish")


def test_topics_are_trimmed_deduplicated_and_bounded() -> None:
    assert parse_topics(" NPS ,  journey   mapping, nps,,") == ["NPS", "journey mapping"]
    with pytest.raises(CommandError, match="too long"):
        parse_topics("x" * 41)
    with pytest.raises(CommandError, match=f"top {MAX_TOPICS}"):
        parse_topics(",".join(f"topic {n}" for n in range(MAX_TOPICS + 1)))
