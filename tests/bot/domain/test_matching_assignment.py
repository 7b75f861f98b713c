"""Mentor assignment (DESIGN.md §5): capacities and exclusions hold, scores are optimal on
small cases, reasons read as words, results repeat for the same input."""

from __future__ import annotations

import itertools
import random

import pytest

from bot.domain.matching import AssignmentConfig, Mentee, Mentor, assign_mentors

TOPICS = ("onboarding", "hiring", "pricing", "churn", "community", "docs", "sales")


def population(mentees: int, mentors: int, seed: int) -> tuple[list[Mentee], list[Mentor]]:
    rng = random.Random(seed)

    def common() -> dict[str, object]:
        return {
            "topics": frozenset(rng.sample(TOPICS, rng.randint(0, 3))),
            "company": rng.choice(["a", "b", "c", "d", None]),
            "utc_offset_hours": rng.choice([-5.0, 0.0, 1.0, 5.5, 9.0, None]),
        }

    return (
        [Mentee(f"e{k}", seniority=rng.randint(0, 3), **common()) for k in range(mentees)],  # type: ignore[arg-type]
        [
            Mentor(f"r{k}", capacity=rng.randint(1, 5), seniority=rng.randint(1, 6), **common())  # type: ignore[arg-type]
            for k in range(mentors)
        ],
    )


@pytest.mark.parametrize("seed", range(25))
def test_capacities_and_exclusions_are_never_broken(seed: int) -> None:
    rng = random.Random(seed)
    mentees, mentors = population(rng.randint(0, 60), rng.randint(0, 25), seed)
    pairs = [frozenset((e.member_id, r.member_id)) for e in mentees for r in mentors]
    blocked = frozenset(rng.sample(pairs, len(pairs) // 5))
    ended = frozenset(rng.sample(pairs, len(pairs) // 10))
    config = AssignmentConfig(blocked=blocked, ended_badly=ended, top_k=rng.randint(1, 8))
    result = assign_mentors(mentees, mentors, config)
    by_id = {m.member_id: m for m in [*mentees, *mentors]}
    seen = [match.mentee_id for match in result.matches]
    assert len(seen) == len(set(seen)), "a mentee has two mentors"
    assert set(seen) | {who for who, _ in result.unmatched} == {e.member_id for e in mentees}
    load: dict[str, int] = {}
    for match in result.matches:
        load[match.mentor_id] = load.get(match.mentor_id, 0) + 1
        pair = frozenset((match.mentee_id, match.mentor_id))
        assert pair not in blocked and pair not in ended
        company = by_id[match.mentee_id].company
        assert company is None or company != by_id[match.mentor_id].company
        assert match.score > 0
    for mentor in mentors:
        assert load.get(mentor.member_id, 0) <= mentor.capacity
    assert result.quality.over_capacity == 0
    assert result.quality.excluded_pairs_used == 0
    assert result.quality.matched == len(result.matches)
    again = assign_mentors(mentees, mentors, config)
    assert again.matches == result.matches


def test_matches_the_exhaustive_optimum_on_tiny_cases() -> None:
    """With top_k covering everyone, the objective is the best over every assignment."""
    for seed in range(30):
        mentees, mentors = population(4, 3, seed)
        mentors = [
            Mentor(
                r.member_id,
                capacity=1 + k % 2,
                topics=r.topics,
                company=r.company,
                seniority=r.seniority,
                utc_offset_hours=r.utc_offset_hours,
            )
            for k, r in enumerate(mentors)
        ]
        config = AssignmentConfig(top_k=10, spread=0.5)
        result = assign_mentors(mentees, mentors, config)
        # Score of every (mentee, mentor) pair, from single-pair runs.
        single: dict[tuple[int, int], float] = {}
        for i, e in enumerate(mentees):
            for j, r in enumerate(mentors):
                one = assign_mentors(
                    [e],
                    [
                        Mentor(
                            r.member_id,
                            capacity=1,
                            topics=r.topics,
                            company=r.company,
                            seniority=r.seniority,
                            utc_offset_hours=r.utc_offset_hours,
                        )
                    ],
                    config,
                )
                if one.matches:
                    single[i, j] = one.matches[0].score
        best = 0.0
        for choice in itertools.product([-1, *range(len(mentors))], repeat=len(mentees)):
            if any((i, j) not in single for i, j in enumerate(choice) if j >= 0):
                continue
            loads = [choice.count(j) for j in range(len(mentors))]
            if any(n > m.capacity for n, m in zip(loads, mentors, strict=True)):
                continue
            value = sum(single[i, j] for i, j in enumerate(choice) if j >= 0)
            value -= config.spread * sum(n * (n - 1) / 2 for n in loads)
            best = max(best, value)
        assert result.quality.objective == pytest.approx(best), f"seed {seed}"


def test_spread_gives_the_second_strong_mentee_to_another_mentor() -> None:
    star = Mentor(
        "star", name="Star", capacity=2, topics=frozenset({"hiring", "pricing"}), seniority=3
    )
    other = Mentor("other", capacity=2, topics=frozenset({"hiring"}), seniority=2)
    mentees = [
        Mentee(f"e{k}", topics=frozenset({"hiring", "pricing"}), seniority=1) for k in range(2)
    ]
    no_spread = assign_mentors(mentees, [star, other], AssignmentConfig(spread=0.0))
    assert [m.mentor_id for m in no_spread.matches] == ["star", "star"]
    spread = assign_mentors(mentees, [star, other], AssignmentConfig(spread=3.0))
    assert sorted(m.mentor_id for m in spread.matches) == ["other", "star"]


def test_reasons_are_words_a_member_can_read() -> None:
    dana = Mentor(
        "U2",
        name="Dana",
        capacity=1,
        topics=frozenset({"onboarding", "docs"}),
        company="acme",
        seniority=3,
        utc_offset_hours=2.0,
    )
    sam = Mentee(
        "U1", topics=frozenset({"onboarding"}), company="globex", seniority=1, utc_offset_hours=-2.0
    )
    result = assign_mentors([sam], [dana], AssignmentConfig())
    assert result.matches[0].explanation == (
        "both work on onboarding; 4 h overlap; Dana is two levels senior; different companies"
    )


def test_who_gets_no_mentor_is_told_why() -> None:
    mentor = Mentor("r", capacity=1, company="acme", seniority=2)
    colleague = Mentee("e", company="acme")
    result = assign_mentors([colleague], [mentor], AssignmentConfig())
    assert result.matches == ()
    assert result.unmatched == (
        ("e", "every mentor is excluded (same company, blocked or a past pair)"),
    )
    allowed = assign_mentors([colleague], [mentor], AssignmentConfig(same_company_allowed=True))
    assert [m.mentor_id for m in allowed.matches] == ["r"]


def test_a_mentee_left_without_a_seat_is_told_so() -> None:
    mentor = Mentor("r", capacity=1, topics=frozenset({"docs"}), seniority=2)
    keen = Mentee("e1", topics=frozenset({"docs"}), seniority=1)
    other = Mentee("e2", seniority=1)
    result = assign_mentors([keen, other], [mentor], AssignmentConfig())
    assert [m.mentee_id for m in result.matches] == ["e1"]
    assert result.unmatched == (
        ("e2", "the mentors who fit were all taken by mentees they fit better"),
    )
    assert assign_mentors([other], [], AssignmentConfig()).unmatched == (
        ("e2", "no mentors this cycle"),
    )
