"""The pairing engine (DESIGN.md §5): placement, hard rules, priorities, quality figures."""

from __future__ import annotations

import bisect
import functools
import itertools
import math
import random
from collections.abc import Iterator, Sequence

import numpy as np
import pytest

from bot.domain.matching import (
    Candidate,
    CandidateTable,
    History,
    PairingConfig,
    PairingResult,
    make_groups,
    shared_working_hours,
)
from bot.domain.matching.costs import ArrayHistory, Problem, build_problem
from bot.domain.matching.engine import DENSE_LIMIT, _cost_matrix
from bot.domain.matching.matching import UNMATCHED, grow_matching
from bot.domain.matching.model import find_ids, search_sorted_ids

NO_HISTORY = History()


def pair(a: str, b: str) -> frozenset[str]:
    return frozenset((a, b))


def community(
    size: int,
    seed: int,
    *,
    companies: int = 0,
    industries: int = 0,
    offsets: Sequence[float | None] = (None,),
    prefix: str = "m",
) -> list[Candidate]:
    rng = random.Random(seed)
    return [
        Candidate(
            f"{prefix}{k:05d}",
            company=f"c{rng.randrange(companies)}" if companies else None,
            industry=f"i{rng.randrange(industries)}" if industries else None,
            utc_offset_hours=rng.choice(offsets),
        )
        for k in range(size)
    ]


def pairs_of(groups: Sequence[Sequence[str]]) -> Iterator[frozenset[str]]:
    for group in groups:
        for a, b in itertools.combinations(group, 2):
            yield pair(a, b)


def assert_partition(result: PairingResult, candidates: Sequence[Candidate]) -> None:
    placed = [member for group in result.groups for member in group]
    assert len(placed) == len(set(placed)), "someone is in two groups"
    everyone = {candidate.member_id for candidate in candidates}
    assert set(placed) | set(result.quality.left_out) == everyone
    assert not set(placed) & set(result.quality.left_out)
    assert result.quality.participants == len(placed)
    assert result.quality.groups == len(result.groups)


def history_of(groups: Sequence[Sequence[str]], earlier: History) -> History:
    """The history after a round: these groups met 1 round ago, the rest one round older."""
    in_trio = frozenset(member for group in groups if len(group) == 3 for member in group)
    return earlier.after(groups, in_trio=in_trio)


# --- shared working time -------------------------------------------------------------


def at(offset: float | None, start: float = 9.0, end: float = 17.0) -> Candidate:
    return Candidate("x", utc_offset_hours=offset, work_start_hour=start, work_end_hour=end)


def at_id(member_id: str, offset: float) -> Candidate:
    return Candidate(member_id, utc_offset_hours=offset)


@pytest.mark.parametrize(
    ("a", "b", "hours"),
    [
        (at(0), at(0), 8.0),
        (at(0), at(5), 3.0),
        (at(-5), at(0), 3.0),
        (at(0), at(8), 0.0),
        (at(0), at(5.5), 2.5),  # India's half-hour offset
        (at(-8), at(10), 2.0),  # Pacific afternoon meets Sydney morning across UTC midnight
        (at(-7), at(9.5), 0.5),  # Adelaide, half an hour across midnight
        (at(0, 22, 6), at(7), 4.0),  # night shift crossing local midnight
        (at(0, 22, 6), at(0, 5, 13), 1.0),
        (at(3, 0, 24), at(-6, 10, 12), 2.0),  # always available
        (at(0, 9, 11), at(0, 11, 13), 0.0),  # touching days share nothing
    ],
)
def test_shared_working_hours(a: Candidate, b: Candidate, hours: float) -> None:
    assert shared_working_hours(a, b) == pytest.approx(hours)
    assert shared_working_hours(b, a) == pytest.approx(hours)


def test_shared_working_hours_unknown_offset_is_never_a_problem() -> None:
    assert shared_working_hours(at(None), at(5)) == math.inf
    assert shared_working_hours(at(5), at(None)) == math.inf


def test_shared_working_hours_matches_counting_minutes() -> None:
    rng = random.Random(7)
    for _ in range(200):
        days = [
            (rng.randrange(-24, 29) / 2, rng.randrange(48) / 2, rng.randrange(1, 48) / 2)
            for _ in range(2)
        ]
        utc_minutes = [
            {round((start - offset) * 60 + m) % 1440 for m in range(int(length * 60))}
            for offset, start, length in days
        ]
        a, b = (at(offset, start, (start + length) % 24) for offset, start, length in days)
        assert shared_working_hours(a, b) == pytest.approx(
            len(utc_minutes[0] & utc_minutes[1]) / 60
        )


# --- validation and edge cases ---------------------------------------------------------


def test_invalid_inputs_are_rejected() -> None:
    with pytest.raises(ValueError, match="working"):
        Candidate("a", work_start_hour=9, work_end_hour=9)
    with pytest.raises(ValueError, match=r"0\.\.24"):
        Candidate("a", work_end_hour=25)
    with pytest.raises(ValueError, match="offset"):
        Candidate("a", utc_offset_hours=15)
    with pytest.raises(ValueError, match="group_size"):
        PairingConfig(group_size=4)
    with pytest.raises(ValueError, match="unique"):
        make_groups([Candidate("a"), Candidate("b"), Candidate("a")], NO_HISTORY, PairingConfig())


def test_nobody() -> None:
    result = make_groups([], NO_HISTORY, PairingConfig())
    assert result.groups == ()
    assert result.quality.participants == result.quality.total_pairs == 0
    assert result.quality.repeat_rate == 0.0
    assert result.quality.timezone_fit == result.quality.cross_company_rate == 1.0


@pytest.mark.parametrize("group_size", [2, 3])
def test_one_candidate_is_left_out(group_size: int) -> None:
    result = make_groups([Candidate("solo")], NO_HISTORY, PairingConfig(group_size=group_size))
    assert result.groups == ()
    assert result.quality.left_out == ("solo",)


@pytest.mark.parametrize("group_size", [2, 3])
def test_two_candidates_make_a_pair(group_size: int) -> None:
    result = make_groups(
        [Candidate("b"), Candidate("a")], NO_HISTORY, PairingConfig(group_size=group_size)
    )
    assert [sorted(group) for group in result.groups] == [["a", "b"]]
    assert result.quality.left_out == result.quality.in_trio == ()


def test_three_candidates_make_one_trio_even_if_they_were_the_last_trio() -> None:
    history = History(trio_last_round=frozenset("abc"))
    result = make_groups([Candidate(m) for m in "abc"], history, PairingConfig())
    assert [sorted(group) for group in result.groups] == [["a", "b", "c"]]
    assert result.quality.in_trio == ("a", "b", "c")
    assert result.quality.total_pairs == 3


def test_blocked_pair_of_two_is_left_out() -> None:
    history = History(blocked=frozenset({pair("a", "b")}))
    result = make_groups([Candidate("a"), Candidate("b")], history, PairingConfig())
    assert result.groups == ()
    assert result.quality.left_out == ("a", "b")


@pytest.mark.parametrize(("left_out_before", "left_out_now"), [("a", "b"), ("b", "a")])
def test_who_is_left_out_rotates(left_out_before: str, left_out_now: str) -> None:
    """a and b block each other, so one of them must sit out: not last round's one."""
    history = History(
        blocked=frozenset({pair("a", "b")}),
        left_out_last_round=frozenset({left_out_before}),
    )
    for seed in range(5):
        result = make_groups([Candidate(m) for m in "abc"], history, PairingConfig(seed=seed))
        assert [sorted(group) for group in result.groups] == [[left_out_before, "c"]]
        assert result.quality.left_out == (left_out_now,)


# --- placement and hard rules --------------------------------------------------------------


@pytest.mark.parametrize("size", [4, 5, 10, 11, 64, 65, 301, DENSE_LIMIT + 1, 2_500])
def test_everyone_is_placed_once_with_at_most_one_trio(size: int) -> None:
    candidates = community(size, seed=size, companies=7, industries=4, offsets=(-5, 0, 1, None))
    result = make_groups(candidates, NO_HISTORY, PairingConfig(seed=size))
    assert_partition(result, candidates)
    assert result.quality.left_out == ()
    expected = [2] * (size // 2 - 1) + [3] if size % 2 else [2] * (size // 2)
    assert sorted(len(group) for group in result.groups) == expected
    assert len(result.quality.in_trio) == (3 if size % 2 else 0)


@pytest.mark.parametrize("size", [30, 31, 1_501])
def test_blocks_are_never_grouped(size: int) -> None:
    candidates = community(size, seed=3)
    ids = [c.member_id for c in candidates]
    rng = random.Random(size)
    blocked = frozenset(pair(*rng.sample(ids, 2)) for _ in range(size * 3))
    result = make_groups(candidates, History(blocked=blocked), PairingConfig())
    assert_partition(result, candidates)
    assert not set(pairs_of(result.groups)) & blocked
    assert result.quality.left_out == ()  # a few blocks each leave everyone placeable


@pytest.mark.parametrize("size", [4, 9, 10])
def test_only_the_member_who_blocked_everyone_is_left_out(size: int) -> None:
    candidates = community(size, seed=1)
    ids = [c.member_id for c in candidates]
    loner = ids[size // 2]
    blocked = frozenset(pair(loner, other) for other in ids if other != loner)
    others = size - 1
    expected = [2] * (others // 2 - 1) + [3] if others % 2 else [2] * (others // 2)
    for seed in range(8):
        history = History(blocked=blocked)
        result = make_groups(candidates, history, PairingConfig(seed=seed))
        assert result.quality.left_out == (loner,)
        assert sorted(len(group) for group in result.groups) == expected


@pytest.mark.parametrize("size", [9, 15, 1_201])
def test_nobody_is_in_the_trio_two_rounds_running(size: int) -> None:
    candidates = community(size, seed=size, companies=3, offsets=(0, 2))
    history = NO_HISTORY
    for round_index in range(6):
        result = make_groups(candidates, history, PairingConfig(seed=round_index))
        assert len(result.quality.in_trio) == 3
        assert not set(result.quality.in_trio) & history.trio_last_round
        history = history_of(result.groups, history)


def test_same_seed_same_groups_whatever_the_input_order() -> None:
    for size in (40, 41, 1_600):
        candidates = community(size, seed=5, companies=9, offsets=(-3, 0, 4))
        history = History.from_pairs(
            {
                pair(candidates[k].member_id, candidates[k + 1].member_id): 1 + k % 9
                for k in range(0, size - 1, 3)
            },
        )
        shuffled = candidates[:]
        random.Random(1).shuffle(shuffled)
        first = make_groups(candidates, history, PairingConfig(seed=11))
        again = make_groups(shuffled, history, PairingConfig(seed=11))
        other_seed = make_groups(candidates, history, PairingConfig(seed=12))
        assert first.groups == again.groups
        assert first.groups != other_seed.groups


# --- priorities -----------------------------------------------------------------------------


def perfect_matchings(members: Sequence[str]) -> Iterator[list[frozenset[str]]]:
    if not members:
        yield []
        return
    first, rest = members[0], members[1:]
    for k, partner in enumerate(rest):
        for matching in perfect_matchings(rest[:k] + rest[k + 1 :]):
            yield [pair(first, partner), *matching]


def test_small_case_finds_the_only_pairing_without_repeats_or_colleagues() -> None:
    candidates = [
        Candidate("ana", company="acme"),
        Candidate("ben", company="acme"),
        Candidate("cho", company="bolt"),
        Candidate("dev", company="bolt"),
        Candidate("eli", company="crux"),
        Candidate("fay", company="crux"),
    ]
    company = {c.member_id: c.company for c in candidates}
    met = {
        pair("ben", "cho"): 1,
        pair("ben", "eli"): 3,
        pair("ben", "fay"): 8,
        pair("cho", "eli"): 20,
    }
    clean = [
        matching
        for matching in perfect_matchings([c.member_id for c in candidates])
        if not any(p in met or len({company[m] for m in p}) == 1 for p in matching)
    ]
    assert len(clean) == 1  # the case is what it claims to be
    for seed in range(6):
        result = make_groups(candidates, History.from_pairs(met), PairingConfig(seed=seed))
        assert {frozenset(group) for group in result.groups} == set(clean[0])
        assert result.quality.any_repeat_pairs == result.quality.same_company_pairs == 0


def test_timezone_comes_before_company() -> None:
    candidates = [
        Candidate("a", company="x", utc_offset_hours=0),
        Candidate("b", company="x", utc_offset_hours=0),
        Candidate("c", company="y", utc_offset_hours=9),
        Candidate("d", company="y", utc_offset_hours=9),
    ]
    result = make_groups(candidates, NO_HISTORY, PairingConfig())
    assert {frozenset(group) for group in result.groups} == {pair("a", "b"), pair("c", "d")}
    assert result.quality.low_overlap_pairs == 0
    assert result.quality.same_company_pairs == 2


def test_timezone_comes_before_meeting_again() -> None:
    # Two rounds ago: a partner from the previous round ranks above timezone (next test).
    candidates = [at_id("a", 0), at_id("b", 0), at_id("c", 9), at_id("d", 9)]
    met = {pair("a", "b"): 2, pair("c", "d"): 2}
    result = make_groups(candidates, History.from_pairs(met), PairingConfig())
    assert {frozenset(group) for group in result.groups} == {pair("a", "b"), pair("c", "d")}
    assert result.quality.repeat_pairs == 2


def test_previous_partner_comes_before_timezone() -> None:
    candidates = [at_id("a", 0), at_id("b", 0), at_id("c", 9), at_id("d", 9)]
    met = {pair("a", "b"): 1, pair("c", "d"): 1}
    result = make_groups(candidates, History.from_pairs(met), PairingConfig())
    assert {frozenset(group) for group in result.groups} == {pair("a", "c"), pair("b", "d")} or {
        frozenset(group) for group in result.groups
    } == {pair("a", "d"), pair("b", "c")}
    assert result.quality.repeat_pairs == 0


@pytest.mark.parametrize("seed", range(4))
def test_never_the_same_partner_twice_in_a_row_in_a_small_program(seed: int) -> None:
    """#18: six members, two of them far from the rest; a repeat-free round always exists,
    so nobody meets last round's partner, whatever it costs in shared hours."""
    candidates = [at_id(m, 0) for m in "abcd"] + [at_id("e", 12), at_id("f", 12)]
    history = NO_HISTORY
    previous: set[frozenset[str]] = set()
    for round_index in range(8):
        result = make_groups(candidates, history, PairingConfig(seed=seed * 100 + round_index))
        pairs = set(pairs_of(result.groups))
        assert not pairs & previous, f"round {round_index + 1}: {sorted(map(sorted, pairs))}"
        previous = pairs
        history = history_of(result.groups, history)


def test_meeting_again_comes_before_company() -> None:
    candidates = [Candidate(m, company=c) for m, c in zip("abcd", "xxyy", strict=True)]
    met = {pair("a", "c"): 30, pair("b", "d"): 30, pair("a", "d"): 40, pair("b", "c"): 40}
    result = make_groups(candidates, History.from_pairs(met), PairingConfig())
    assert {frozenset(group) for group in result.groups} == {pair("a", "b"), pair("c", "d")}
    assert result.quality.same_company_pairs == 2
    assert result.quality.any_repeat_pairs == 0


@pytest.mark.parametrize(("oldest", "window"), [(5, 6), (20, 6), (3, 2)])
def test_when_everyone_met_the_longest_ago_meet_again(oldest: int, window: int) -> None:
    candidates = [Candidate(m) for m in "abcd"]
    met = {
        pair("a", "b"): 1,
        pair("c", "d"): 1,
        pair("a", "c"): oldest - 1,
        pair("b", "d"): oldest - 1,
        pair("a", "d"): oldest,
        pair("b", "c"): oldest,
    }
    result = make_groups(candidates, History.from_pairs(met), PairingConfig(repeat_window=window))
    assert {frozenset(group) for group in result.groups} == {pair("a", "d"), pair("b", "c")}
    assert result.quality.any_repeat_pairs == 2
    assert result.quality.repeat_pairs == (2 if oldest <= window else 0)


@pytest.mark.parametrize(("at_zero", "at_twelve"), [(5, 4), (4, 5), (1_001, 1_000)])
def test_the_trio_goes_where_an_odd_one_out_is_unavoidable(at_zero: int, at_twelve: int) -> None:
    """Two timezones with no shared hours; only a trio inside the odd one avoids a bad pair."""
    candidates = [at_id(f"z{k:04d}", 0) for k in range(at_zero)]
    candidates += [at_id(f"t{k:04d}", 12) for k in range(at_twelve)]
    for seed in range(3):
        result = make_groups(candidates, NO_HISTORY, PairingConfig(seed=seed))
        assert result.quality.low_overlap_pairs == 0
        odd_side = "z" if at_zero % 2 else "t"
        assert {member[0] for member in result.quality.in_trio} == {odd_side}


def test_matches_the_exhaustive_optimum_of_its_own_cost() -> None:
    """On small random rounds, no grouping at all is cheaper than the engine's."""
    rng = random.Random(11)
    for trial in range(120):
        size = rng.randint(4, 9)
        candidates = [
            Candidate(
                f"m{k}",
                company=rng.choice(["a", "b", "c", None]),
                industry=rng.choice(["x", "y"]),
                utc_offset_hours=rng.choice([-5, 0, 3, 9, None]),
            )
            for k in range(size)
        ]
        ids = [c.member_id for c in candidates]
        met = {
            pair(a, b): rng.randint(1, 12)
            for a, b in itertools.combinations(ids, 2)
            if rng.random() < 0.3
        }
        trio_before = frozenset(rng.sample(ids, 3)) if rng.random() < 0.5 else frozenset()
        history = History.from_pairs(met, trio_last_round=trio_before)
        config = PairingConfig(seed=trial)
        problem = build_problem(candidates, history, config)
        cost = _cost_matrix(problem, ArrayHistory(problem, history), np.arange(size))
        result = make_groups(candidates, history, config)
        best = min(price(grouping, problem, cost) for grouping in all_groupings(ids))
        assert price(result.groups, problem, cost) <= best + 0.5, f"trial {trial}"


def price(groups: Sequence[Sequence[str]], problem: Problem, cost: np.ndarray) -> float:
    """The engine's own objective: pair costs plus trio penalties."""
    position = {member: k for k, member in enumerate(problem.ids)}
    total = sum(cost[position[a], position[b]] for a, b in pairs_of_tuples(groups))
    trio_members = [position[m] for group in groups if len(group) == 3 for m in group]
    return float(total + problem.oversize_penalty[trio_members].sum())


def pairs_of_tuples(groups: Sequence[Sequence[str]]) -> Iterator[tuple[str, str]]:
    for group in groups:
        yield from itertools.combinations(group, 2)


def all_groupings(members: list[str]) -> Iterator[list[tuple[str, ...]]]:
    """Every way to split members into pairs, plus one trio when the count is odd."""
    if len(members) % 2 == 0:
        for matching in perfect_matchings(members):
            yield [tuple(p) for p in matching]
        return
    for trio in itertools.combinations(members, 3):
        rest = [m for m in members if m not in trio]
        for matching in perfect_matchings(rest):
            yield [trio, *(tuple(p) for p in matching)]


@pytest.mark.parametrize("size", [20, 30])
def test_stable_membership_stays_repeat_free_until_round_n_minus_3(size: int) -> None:
    candidates = community(size, seed=size)
    history = NO_HISTORY
    for round_index in range(size - 3):
        result = make_groups(candidates, history, PairingConfig(seed=round_index))
        assert result.quality.any_repeat_pairs == 0, f"round {round_index + 1}"
        history = history_of(result.groups, history)


def test_big_community_avoids_repeats_colleagues_and_timezone_gaps() -> None:
    candidates = community(3_001, seed=2, companies=200, industries=8, offsets=(-6, -5, 0, 1, 8, 9))
    history = NO_HISTORY
    for round_index in range(3):
        result = make_groups(candidates, history, PairingConfig(seed=round_index))
        assert_partition(result, candidates)
        quality = result.quality
        assert quality.any_repeat_pairs == quality.same_company_pairs == 0
        assert quality.low_overlap_pairs == 0
        history = history_of(result.groups, history)


# --- groups of three -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("size", "sizes"),
    [(2, [2]), (4, [2, 2]), (5, [2, 3]), (9, [3, 3, 3]), (10, [2, 2, 3, 3]), (11, [2, 3, 3, 3])],
)
def test_groups_of_three_absorb_the_remainder_in_pairs(size: int, sizes: list[int]) -> None:
    candidates = community(size, seed=size)
    result = make_groups(candidates, NO_HISTORY, PairingConfig(group_size=3))
    assert_partition(result, candidates)
    assert sorted(len(group) for group in result.groups) == sizes
    assert result.quality.in_trio == ()  # trios are the norm here, not an odd-count extra


def test_groups_of_three_mix_companies() -> None:
    candidates = [Candidate(f"{c}{k}", company=c) for c in "xyz" for k in range(4)]
    for seed in range(4):
        result = make_groups(candidates, NO_HISTORY, PairingConfig(group_size=3, seed=seed))
        assert result.quality.same_company_pairs == 0
        assert all(len({m[0] for m in group}) == 3 for group in result.groups)


@pytest.mark.parametrize(("at_zero", "at_twelve"), [(4, 3), (10, 9), (3, 4), (9, 10)])
def test_groups_of_three_keep_the_pairs_where_they_fit(at_zero: int, at_twelve: int) -> None:
    """Two timezones with no shared hours: the remainder pairs must sit in the cluster
    whose size leaves a remainder."""
    candidates = [at_id(f"z{k:02d}", 0) for k in range(at_zero)]
    candidates += [at_id(f"t{k:02d}", 12) for k in range(at_twelve)]
    for seed in range(4):
        result = make_groups(candidates, NO_HISTORY, PairingConfig(group_size=3, seed=seed))
        assert result.quality.low_overlap_pairs == 0


def test_groups_of_three_in_a_big_community() -> None:
    candidates = community(DENSE_LIMIT + 3, seed=4, companies=50, offsets=(0, 1, 2))
    result = make_groups(candidates, NO_HISTORY, PairingConfig(group_size=3))
    assert_partition(result, candidates)
    assert sorted(len(group) for group in result.groups) == [2, 2] + [3] * 333
    assert result.quality.same_company_pairs == 0


# --- quality figures -----------------------------------------------------------------------


def test_quality_of_a_hand_checked_trio() -> None:
    candidates = [
        Candidate("a", company="x", utc_offset_hours=0),
        Candidate("b", company="x", utc_offset_hours=0),
        Candidate("c", company="y", utc_offset_hours=9),
    ]
    met = {pair("a", "b"): 2, pair("a", "c"): 10}
    quality = make_groups(candidates, History.from_pairs(met), PairingConfig()).quality
    assert quality.participants == 3
    assert quality.groups == 1
    assert quality.total_pairs == 3
    assert quality.repeat_pairs == 1  # a-b, two rounds ago
    assert quality.any_repeat_pairs == 2  # and a-c, ten rounds ago
    assert quality.same_company_pairs == 1  # a-b
    assert quality.low_overlap_pairs == 2  # c shares no working hour with a or b
    assert quality.in_trio == ("a", "b", "c")
    assert quality.left_out == ()
    assert quality.repeat_rate == pytest.approx(1 / 3)
    assert quality.cross_company_rate == pytest.approx(2 / 3)
    assert quality.timezone_fit == pytest.approx(1 / 3)
    assert quality.solver_ms > 0


@pytest.mark.parametrize("size", [50, 1_200])
def test_quality_figures_match_a_recount(size: int) -> None:
    """An odd round with forced defects of every kind, counted again by hand."""
    rng = random.Random(size)
    candidates = [
        Candidate(
            f"m{k:05d}",
            company="big" if rng.random() < 0.7 else f"c{k % 5}",
            utc_offset_hours=rng.choice([-8, -2, 0, 5]),
        )
        for k in range(size)
    ]
    # A two-hour day shares too little with anyone; the twins share their night only with
    # each other, and they met two rounds ago (last round's partner would outrank their
    # shared hours, #18).
    candidates.append(Candidate("loner", utc_offset_hours=0, work_start_hour=13, work_end_hour=15))
    candidates += [
        Candidate(t, utc_offset_hours=0, work_start_hour=1, work_end_hour=4)
        for t in ("twin1", "twin2")
    ]
    ids = [c.member_id for c in candidates]
    met = {pair(*rng.sample(ids, 2)): rng.randint(1, 15) for _ in range(size * 4)}
    met[pair("twin1", "twin2")] = 2
    config = PairingConfig(repeat_window=4, min_shared_hours=3)
    result = make_groups(candidates, History.from_pairs(met), config)
    by_id = {c.member_id: c for c in candidates}
    pairs = list(pairs_of(result.groups))
    quality = result.quality
    recount = {
        "repeat": sum(1 <= met.get(p, 0) <= 4 for p in pairs),
        "any repeat": sum(p in met for p in pairs),
        "same company": sum(
            len(companies := {by_id[m].company for m in p}) == 1 and None not in companies
            for p in pairs
        ),
        "low overlap": sum(shared_working_hours(*(by_id[m] for m in p)) < 3 for p in pairs),
    }
    assert min(recount.values()) > 0
    assert recount == {
        "repeat": quality.repeat_pairs,
        "any repeat": quality.any_repeat_pairs,
        "same company": quality.same_company_pairs,
        "low overlap": quality.low_overlap_pairs,
    }
    assert quality.total_pairs == len(pairs)
    assert quality.in_trio == tuple(sorted(next(g for g in result.groups if len(g) == 3)))


# --- the matching step ---------------------------------------------------------------------


@functools.cache
def maximum_matching_size(edges: frozenset[tuple[int, int]], vertices: frozenset[int]) -> int:
    if not vertices:
        return 0
    first = min(vertices)
    rest = vertices - {first}
    best = maximum_matching_size(edges, rest)
    for other in rest:
        if (first, other) in edges:
            best = max(best, 1 + maximum_matching_size(edges, rest - {other}))
    return best


def test_grow_matching_reaches_a_maximum_matching() -> None:
    rng = np.random.default_rng(0)
    for _ in range(400):
        size = int(rng.integers(2, 12))
        adjacent = np.triu(rng.random((size, size)) < rng.uniform(0.1, 0.7), 1)
        adjacent |= adjacent.T
        mate = np.full(size, UNMATCHED, dtype=np.int64)
        for v in rng.permutation(size):  # a random partial matching to start from
            free = [w for w in np.flatnonzero(adjacent[v]) if mate[w] == UNMATCHED]
            if mate[v] == UNMATCHED and free and rng.random() < 0.5:
                mate[v], mate[free[0]] = free[0], v
        grown = grow_matching(adjacent, mate, rng.permutation(size).tolist())
        matched = np.flatnonzero(grown != UNMATCHED)
        assert (grown[grown[matched]] == matched).all()
        assert adjacent[matched, grown[matched]].all()
        assert ((mate == UNMATCHED) | (grown != UNMATCHED)).all(), "a matched vertex lost its mate"
        edges = frozenset((int(a), int(b)) for a, b in zip(*np.nonzero(adjacent), strict=True))
        assert matched.size // 2 == maximum_matching_size(edges, frozenset(range(size)))


# --- history as arrays -----------------------------------------------------------------------


def test_history_after_matches_a_mapping_kept_by_hand() -> None:
    rng = random.Random(3)
    people = [f"u{k}" * rng.randint(1, 3) for k in range(40)]  # ids of mixed width
    history = History()
    expected: dict[frozenset[str], int] = {}
    for _ in range(12):
        present = rng.sample(people, 24)
        groups = [present[k : k + 2] for k in range(0, 22, 2)] + [present[22:]]
        forget = rng.sample([p for p in people if p not in present], 3)
        expected = {pair: ago + 1 for pair, ago in expected.items() if not pair & set(forget)}
        expected.update(dict.fromkeys(pairs_of(groups), 1))
        history = history.after(groups, in_trio=groups[-1], forget=forget)
        assert_normal(history)
        assert history.last_met == expected
        assert history.trio_last_round == frozenset(groups[-1])


def assert_normal(history: History) -> None:
    """`after` and `after_round` skip normalising: their arrays must already be normal."""
    again = History(history.member_ids, history.first, history.second, history.rounds_ago)
    for name in ("member_ids", "first", "second", "rounds_ago"):
        np.testing.assert_array_equal(getattr(again, name), getattr(history, name))
        assert getattr(history, name).dtype == getattr(again, name).dtype
    assert not history.first.flags.writeable
    assert history.left_out_last_round == frozenset()


def test_history_keeps_each_pairs_latest_meeting_whatever_the_order() -> None:
    history = History(
        member_ids=np.array(["c", "a", "b"]),
        first=np.array([0, 1, 2, 1]),
        second=np.array([1, 0, 1, 2]),
        rounds_ago=np.array([5, 2, 7, 3]),
    )
    assert history.last_met == {pair("a", "c"): 2, pair("a", "b"): 3}
    assert list(history.member_ids) == ["a", "b", "c"]
    with pytest.raises(ValueError, match="unique"):
        History(
            member_ids=np.array(["a", "a"]),
            first=np.array([0]),
            second=np.array([1]),
            rounds_ago=np.array([1]),
        )
    with pytest.raises(ValueError, match="at least 1"):
        History(
            member_ids=np.array(["a", "b"]),
            first=np.array([0]),
            second=np.array([1]),
            rounds_ago=np.array([0]),
        )


@pytest.mark.parametrize("size", [7, 60, 1_300])
def test_a_candidate_table_groups_exactly_like_the_objects(size: int) -> None:
    candidates = community(size, seed=size, companies=5, industries=3, offsets=(-5, 0, 3, None))
    history = History.from_pairs(
        {
            pair(candidates[k].member_id, candidates[k + 1].member_id): 1 + k % 4
            for k in range(0, size - 1, 2)
        }
    )
    table = CandidateTable.from_candidates(list(reversed(candidates)))
    for seed in range(3):
        config = PairingConfig(seed=seed)
        assert (
            make_groups(table, history, config).groups
            == make_groups(candidates, history, config).groups
        )


def test_a_candidate_table_changes_like_a_rebuilt_one() -> None:
    rng = random.Random(4)
    candidates = community(300, seed=4, companies=7, offsets=(0, 5, None))
    table = CandidateTable.from_candidates(candidates)
    current = {c.member_id: c for c in candidates}
    for step in range(5):
        removed = rng.sample(sorted(current), 30)
        fresh = community(30, seed=100 + step, companies=9, offsets=(2, None), prefix=f"n{step}-")
        moved = [
            Candidate(m, company="moved", utc_offset_hours=1.0)
            for m in rng.sample(sorted(set(current) - set(removed)), 5)
        ]
        table = table.changed([*fresh, *moved], removed=removed)
        for member in removed:
            del current[member]
        current.update({c.member_id: c for c in [*fresh, *moved]})
        rebuilt = CandidateTable.from_candidates(list(current.values()))
        assert table.member_ids.tolist() == rebuilt.member_ids.tolist()
        result = make_groups(table, NO_HISTORY, PairingConfig(seed=step))
        assert (
            result.groups
            == make_groups(list(current.values()), NO_HISTORY, PairingConfig(seed=step)).groups
        )


@pytest.mark.parametrize("size", [11, 1_201])
def test_after_round_carries_the_history_like_after(size: int) -> None:
    rng = random.Random(size)
    everyone = community(size + 40, seed=size, companies=4, offsets=(0, 4))
    history = History()
    for round_index in range(4):
        present = rng.sample(everyone, size)
        table = CandidateTable.from_candidates(present)
        result = make_groups(table if round_index % 2 else present, history, PairingConfig())
        gone = [c.member_id for c in rng.sample([c for c in everyone if c not in present], 5)]
        by_arrays = history.after_round(result, forget=gone)
        by_groups = history.after(result.groups, in_trio=result.quality.in_trio, forget=gone)
        assert by_arrays.last_met == by_groups.last_met
        assert by_arrays.member_ids.tolist() == by_groups.member_ids.tolist()
        assert by_arrays.trio_last_round == by_groups.trio_last_round
        assert_normal(by_arrays)
        # Forgetting everyone absent: the next history's ids are the round's own.
        absent = sorted(set(history.member_ids.tolist()) - {c.member_id for c in present})
        carried = history.after_round(result, forget=absent)
        rebuilt = history.after(result.groups, in_trio=result.quality.in_trio, forget=absent)
        assert carried.last_met == rebuilt.last_met
        assert carried.member_ids.tolist() == rebuilt.member_ids.tolist()
        assert carried.trio_last_round == rebuilt.trio_last_round
        assert_normal(carried)
        assert np.shares_memory(carried.member_ids, result.member_id_array)
        history = by_arrays


def test_a_round_with_no_groups_only_ages_the_history() -> None:
    """A round of one member (or none) makes no pair; carrying it forward used to fail."""
    history = History.from_pairs({frozenset({"a", "b"}): 1, frozenset({"b", "c"}): 2})
    for present in ([], [Candidate("a")]):
        result = make_groups(present, history, PairingConfig())
        for carried in (
            history.after_round(result),
            history.after(result.groups, in_trio=result.quality.in_trio),
        ):
            assert carried.last_met == {frozenset({"a", "b"}): 2, frozenset({"b", "c"}): 3}
            assert_normal(carried)


@pytest.mark.parametrize(("haystack", "wanted"), [(500, 400), (500, 20), (3, 40), (0, 5)])
def test_finding_ids_agrees_with_a_dictionary(haystack: int, wanted: int) -> None:
    rng = random.Random(haystack + wanted)
    pool = [f"u{k}" * rng.randint(1, 3) for k in range(2 * (haystack + wanted))]  # mixed width
    known = sorted(set(rng.sample(pool, haystack)))
    sorted_ids = np.array(known, dtype=str) if known else np.zeros(0, dtype=str)
    asked = rng.sample(pool, wanted)
    position = {member: k for k, member in enumerate(known)}
    expected = [position.get(member, -1) for member in asked]
    assert find_ids(sorted_ids, np.array(asked, dtype=str)).tolist() == expected
    asked.sort()
    assert search_sorted_ids(sorted_ids, np.array(asked, dtype=str)).tolist() == [
        bisect.bisect_left(known, member) for member in asked
    ]


def test_a_candidate_table_makes_the_problem_the_objects_make() -> None:
    candidates = community(2_000, seed=9, companies=40, industries=6, offsets=(-5, 0, None))
    candidates += [Candidate(f"z{k}") for k in range(30)]  # no company, no industry
    table = CandidateTable.empty().changed(candidates[1_000:]).changed(candidates[:1_000])
    by_table = build_problem(table, NO_HISTORY, PairingConfig())
    by_objects = build_problem(list(reversed(candidates)), NO_HISTORY, PairingConfig())
    for column in ("company", "industry", "window_start", "window_length"):
        np.testing.assert_array_equal(getattr(by_table, column), getattr(by_objects, column))
    assert (by_table.company_count, by_table.industry_count) == (
        by_objects.company_count,
        by_objects.industry_count,
    )
    assert by_table.ids == by_objects.ids


def test_big_churning_community_has_no_timezone_gap_the_population_avoids() -> None:
    # Three regions whose working days overlap neighbour to neighbour, companies with a home
    # region, 10% churn: mending last round's partners used to leave a pair or two across
    # the widest gap although a pairing without any gap existed.
    rng = random.Random(5_000)
    regions = ((-8.0, -7.0, -6.0, -5.0, -4.0), (0.0, 1.0, 2.0, 3.0), (5.0, 5.5, 7.0, 9.0, 10.0))
    homes = [rng.randrange(3) for _ in range(500)]
    serial = itertools.count()

    def newcomer() -> Candidate:
        company = rng.choices(range(500), [1 / (k + 1) for k in range(500)])[0]
        region = homes[company] if rng.random() < 0.7 else rng.randrange(3)
        start = rng.choice((8.0, 8.5, 9.0, 10.0))
        return Candidate(
            f"m{next(serial):06d}",
            company=f"c{company}",
            industry=f"i{company % 10}",
            utc_offset_hours=rng.choice(regions[region]),
            work_start_hour=start,
            work_end_hour=start + 8.0,
        )

    members = {c.member_id: c for c in (newcomer() for _ in range(5_000))}
    history = NO_HISTORY
    for round_index in range(6):
        gone = rng.sample(sorted(members), 500) if round_index else []
        for member in gone:
            del members[member]
        members.update((c.member_id, c) for c in (newcomer() for _ in range(len(gone))))
        candidates = list(members.values())
        result = make_groups(candidates, history, PairingConfig(seed=round_index))
        # The population allows no gap: members sharing a working window pair up, and the
        # odd one of each window finds a partner among the other odd ones.
        problem = build_problem(candidates, NO_HISTORY, PairingConfig())
        windows = problem.window_start * 100 + problem.window_length
        _, first_of_window, per_window = np.unique(windows, return_index=True, return_counts=True)
        odd = first_of_window[per_window % 2 == 1]
        fits = ~problem.low_overlap(odd[:, None], odd[None, :])
        np.fill_diagonal(fits, False)
        mate = grow_matching(fits, np.full(odd.size, UNMATCHED, dtype=np.int64), range(odd.size))
        assert (mate == UNMATCHED).sum() == 0, "the population itself forces a gap"
        assert result.quality.low_overlap_pairs == 0, f"round {round_index + 1}"
        history = history.after_round(result, forget=gone)
