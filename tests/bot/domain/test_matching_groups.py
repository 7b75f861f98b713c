"""Cohorts of 5-7 (DESIGN.md §5): everyone placed once, sizes in bounds, colleagues apart
where possible, history respected, the figures recount, results repeat for a seed."""

from __future__ import annotations

import dataclasses
import itertools
import random

import numpy as np
import pytest

from bot.domain.matching import (
    Applicant,
    CohortConfig,
    backfill_seat,
    make_cohorts,
)
from bot.domain.matching.groups import GROUPED_BEFORE, _encode, _Groups, group_plan

EVENING = 18 * 60  # Monday 18:00 UTC


def people(count: int, seed: int, companies: int = 6, tags: int = 4) -> list[Applicant]:
    rng = random.Random(seed)
    return [
        Applicant(
            f"a{k:04d}",
            company=rng.choice([*(f"c{c}" for c in range(companies)), None]),
            tags=frozenset(rng.sample([f"t{t}" for t in range(tags)], rng.randint(0, 2))),
            seniority=rng.choice([0, 1, 2, None]),
            availability=tuple(
                (start, start + rng.choice([45, 60, 120]))
                for start in rng.sample(range(0, 10080 - 120, 30), rng.randint(0, 3))
            ),
        )
        for k in range(count)
    ]


@pytest.mark.parametrize("seed", range(30))
def test_everyone_is_placed_once_in_bounds_and_the_figures_recount(seed: int) -> None:
    rng = random.Random(seed)
    applicants = people(rng.randint(0, 90), seed)
    config = CohortConfig(seed=seed)
    result = make_cohorts(applicants, config)
    placed = [m for c in result.cohorts for m in c.members]
    assert len(placed) == len(set(placed)), "someone is in two groups"
    everyone = {a.member_id for a in applicants}
    assert set(placed) | {m for m, _ in result.left_out} == everyone
    assert not set(placed) & {m for m, _ in result.left_out}
    assert all(5 <= len(c.members) <= 7 for c in result.cohorts)
    # Nobody is left out unless no split into groups of 5..7 covers everyone.
    assert len(result.left_out) == len(applicants) - sum(group_plan(len(applicants), config))
    by_id = {a.member_id: a for a in applicants}
    for cohort in result.cohorts:
        members = [by_id[m] for m in cohort.members]
        same = sum(
            a.company is not None and a.company == b.company
            for a, b in itertools.combinations(members, 2)
        )
        assert cohort.same_company_pairs == same
        assert cohort.shared_tags == frozenset.intersection(*(a.tags for a in members))
        if cohort.common_slot is not None:
            start, end = cohort.common_slot
            assert end - start >= 60
            for a in members:
                free = {m % 10080 for s, e in a.availability for m in range(s, e)}
                assert all(m % 10080 in free for m in range(start, end))
    again = make_cohorts(list(reversed(applicants)), config)
    assert again.cohorts == result.cohorts, "input order changed the result"


def test_count_that_cannot_split_says_who_and_why() -> None:
    applicants = people(9, seed=1)
    result = make_cohorts(applicants, CohortConfig())
    assert [len(c.members) for c in result.cohorts] == [7]
    assert len(result.left_out) == 2
    assert all("cannot all fit groups of 5-7" in why for _, why in result.left_out)
    assert make_cohorts(people(4, seed=1), CohortConfig()).cohorts == ()


def test_colleagues_are_split_when_the_population_allows() -> None:
    # 60 applicants, 10 per company: six per group means one from each company can sit in
    # every group of 6.
    applicants = [Applicant(f"a{k:03d}", company=f"c{k % 6}") for k in range(60)]
    for seed in range(5):
        result = make_cohorts(applicants, CohortConfig(seed=seed))
        assert result.quality.same_company_pairs == 0


def test_re_forming_never_regroups_a_pair_when_avoidable() -> None:
    applicants = [Applicant(f"a{k:03d}", tags=frozenset({"growth"})) for k in range(120)]
    past: tuple[tuple[str, ...], ...] = ()
    for cycle in range(4):
        result = make_cohorts(applicants, CohortConfig(seed=cycle, past_groups=past))
        assert result.quality.grouped_before_pairs == 0, f"cycle {cycle + 1}"
        past += tuple(c.members for c in result.cohorts)


def test_common_slot_and_shared_tag_are_found_when_the_data_allows() -> None:
    # Two clusters: tag x at Monday 18:00, tag y at Wednesday 09:00; shuffled together.
    wednesday = 2 * 1440 + 9 * 60
    applicants = [
        Applicant(
            f"a{k:03d}",
            company=f"c{k % 7}",
            tags=frozenset({"x" if k % 2 else "y"}),
            availability=((EVENING, EVENING + 90),) if k % 2 else ((wednesday, wednesday + 90),),
        )
        for k in range(84)
    ]
    result = make_cohorts(applicants, CohortConfig(seed=3))
    assert result.quality.without_common_slot == 0
    assert result.quality.without_shared_tag == 0
    assert result.quality.same_company_pairs == 0


def test_backfill_picks_the_applicant_who_fits_the_group() -> None:
    slot = ((EVENING, EVENING + 120),)
    group = [
        Applicant(f"g{k}", company=f"c{k}", tags=frozenset({"pricing"}), availability=slot)
        for k in range(5)
    ]
    colleague = Applicant(
        "a-colleague", company="c0", tags=frozenset({"pricing"}), availability=slot
    )
    no_slot = Applicant("b-no-slot", company="z", tags=frozenset({"pricing"}))
    fits = Applicant("c-fits", company="y", tags=frozenset({"pricing"}), availability=slot)
    pool = [*group, colleague, no_slot, fits]
    result = backfill_seat([g.member_id for g in group], pool, CohortConfig())
    assert result.chosen == "c-fits"
    assert result.cohort is not None
    assert result.cohort.shared_tags == frozenset({"pricing"})
    assert result.cohort.common_slot == (EVENING, EVENING + 120)
    full = backfill_seat(
        [*(g.member_id for g in group), "c-fits", "a-colleague"], pool, CohortConfig()
    )
    assert full.chosen is None


def test_pairs_grouped_before_price_alike_as_bits_and_as_keys() -> None:
    applicants = people(300, seed=11)
    rng = random.Random(11)
    past = tuple(
        tuple(a.member_id for a in rng.sample(applicants, rng.randint(2, 7))) for _ in range(120)
    )
    enc = _encode(applicants, CohortConfig(past_groups=past))
    assert enc.past_bits is not None
    by_keys = dataclasses.replace(enc, past_bits=None)
    slots = np.array(
        [[rng.randrange(-1, len(applicants)) for _ in range(7)] for _ in range(2_000)],
        dtype=np.int64,
    )
    with_bits = _Groups(enc, slots).cost
    np.testing.assert_array_equal(with_bits, _Groups(by_keys, slots).cost)
    assert (with_bits >= GROUPED_BEFORE).any()
