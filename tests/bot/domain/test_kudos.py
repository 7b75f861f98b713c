"""Recognition's pure rules: reasons, categories, emoji, the allowance day, 1/k
repeats, reciprocal pairs and closed rings, the written rule, hysteresis, boards."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import count, permutations

import pytest

from bot.domain.kudos import (
    Given,
    KudosError,
    Rule,
    assess,
    board,
    canonical_emoji,
    closed_rings,
    configured_emoji,
    day_start,
    flags,
    match_category,
    monthly_review,
    parse_categories,
    parse_reason,
    reciprocal_pairs,
    repeat_weights,
    rising,
)

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
_ids = count(1)


def given(giver: str, receiver: str, days_ago: float = 0, reason: bool = True) -> Given:
    return Given(next(_ids), giver, receiver, NOW - timedelta(days=days_ago), reason)


def test_reasons_need_a_few_words_and_stay_short() -> None:
    assert parse_reason("  for   the NPS\ntemplate ") == "for the NPS template"
    with pytest.raises(KudosError) as short:
        parse_reason("thanks a")
    assert (short.value.why, short.value.values) == ("short_reason", {"words": 3})
    with pytest.raises(KudosError) as long:
        parse_reason("word " * 200)
    assert long.value.why == "long_reason"


def test_categories_and_emoji() -> None:
    assert parse_categories("Helpful answer, great  share,helpful answer") == [
        "helpful answer",
        "great share",
    ]
    with pytest.raises(KudosError):
        parse_categories(" , ")
    assert match_category("Great_Share", ["helpful answer", "great share"]) == "great share"
    with pytest.raises(KudosError) as unknown:
        match_category("hugs", ["great share"])
    assert unknown.value.values == {"category": "hugs", "categories": ["great share"]}
    assert canonical_emoji("🙌") == canonical_emoji(":raised_hands:") == "raised_hands"
    assert canonical_emoji("raised_hands::skin-tone-3") == "raised_hands"
    assert canonical_emoji("<:kudos:123456>") == "kudos"
    assert configured_emoji("🎉") == "tada"
    with pytest.raises(KudosError):
        configured_emoji("two words")


def test_the_allowance_day_starts_at_midnight_in_the_givers_zone() -> None:
    start = day_start(NOW, "America/Los_Angeles")
    assert start.isoformat() == "2026-11-23T00:00:00-08:00"
    assert day_start(datetime(2026, 11, 23, 7, 59, tzinfo=UTC), "America/Los_Angeles").day == 22


def test_repeats_from_one_giver_within_30_days_count_one_over_k() -> None:
    rows = [given("A", "R", 40), given("A", "R", 20), given("A", "R", 10), given("A", "R", 1)]
    weights = repeat_weights(rows)
    # k counts this giver's kudos to R in the 30 days up to each one: 20 days ago
    # follows 40 days ago (1/2); 10 days ago follows only 20 days ago (1/2, as 40
    # days ago is 30 days earlier); yesterday follows 20 and 10 days ago (1/3).
    assert [round(weights[row.kudos_id], 3) for row in rows] == [1.0, 0.5, 0.5, 0.333]
    other = given("B", "R", 1)
    assert repeat_weights([*rows, other])[other.kudos_id] == 1.0


def test_reciprocal_pairs_need_both_sides_to_lean_on_each_other() -> None:
    assert reciprocal_pairs([given("A", "B"), given("B", "A")]) == [frozenset("AB")]
    # B gets most of their kudos elsewhere: not a pair.
    spread = [given("A", "B"), given("B", "A"), given("C", "B"), given("D", "B"), given("E", "B")]
    assert reciprocal_pairs(spread) == []
    assert reciprocal_pairs([given("A", "B")]) == []


def test_a_closed_ring_is_found_alone_or_inside_a_healthy_community() -> None:
    ring = [given(a, b) for a, b in permutations("VWXYZ", 2)]
    assert closed_rings(ring) == [frozenset("VWXYZ")]
    cycle = [given(a, b) for a, b in zip("VWXYZ", "WXYZV", strict=True)]
    assert closed_rings(cycle) == [frozenset("VWXYZ")]
    # Twelve members thanking each other widely are no ring (too big to be closed),
    # and a ring with one thank-you to and from the outside is still found.
    healthy = [given(a, b) for a, b in permutations("ABCDEFGHIJKL", 2)]
    assert closed_rings(healthy) == []
    mixed = [*healthy, *ring, given("V", "A"), given("A", "V")]
    assert closed_rings(mixed) == [frozenset("VWXYZ")]


def test_the_rule_counts_reasons_givers_companies_days_and_evidence() -> None:
    rule = Rule(min_kudos=4, min_givers=3, min_companies=2, min_days=30, min_evidence=1)
    rows = [given(giver, "R", 35) for giver in "ABC"] + [
        given("A", "R", 2),
        given("D", "R", 1, False),
    ]
    companies = {"A": "Acme", "B": "acme ", "C": "Globex", "D": "Initech"}
    met = assess("R", rows, companies, ["answered an AMA question"], rule, NOW)
    assert met.met and met.weighted_kudos == 4.0 and met.givers == 3 and met.companies == 2
    assert (met.days, met.without_reason) == (35, 1)
    lacking = assess("R", rows, {"A": "Acme", "B": "Acme"}, [], rule, NOW)
    assert lacking.missing == ("companies", "evidence")
    assert lacking.givers_without_company == 1
    recent = assess("R", [given(g, "R", 3) for g in "ABCD"], companies, ["x"], rule, NOW)
    assert recent.missing == ("days",)


def test_kudos_inside_flagged_groups_do_not_count() -> None:
    rule = Rule(min_kudos=1, min_givers=1, min_companies=0, min_days=0, min_evidence=0)
    rows = [given("A", "B"), given("B", "A")]
    assessed = assess("A", rows, {}, [], rule, NOW, flags(rows))
    assert not assessed.met and assessed.flagged == 1


def test_monthly_review_drops_only_after_two_months_below() -> None:
    first = monthly_review(0, met=False)
    assert (first.keep, first.months_below) == (True, 1)
    second = monthly_review(first.months_below, met=False)
    assert (second.keep, second.months_below) == (False, 2)
    assert monthly_review(1, met=True).months_below == 0


def test_boards_rank_by_distinct_givers_and_hide_opt_outs() -> None:
    rows = [given("A", "R"), given("A", "R"), given("B", "S"), given("C", "S"), given("S", "S")]
    assert [(entry.user_id, entry.givers) for entry in board(rows, set(), 10)] == [
        ("S", 2),
        ("R", 1),
    ]
    assert [entry.user_id for entry in board(rows, {"S"}, 10)] == ["R"]
    last = [given("A", "S", 40), given("B", "S", 40)]
    gains = rising(rows, last, set(), 10)
    assert [(entry.user_id, entry.change) for entry in gains] == [("R", 1)]
