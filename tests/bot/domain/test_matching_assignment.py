"""Mentor assignment (DESIGN.md §5): capacities and exclusions hold, scores are optimal on
small cases, reasons read as words, results repeat for the same input, and the shared-topic
rule is as hard as a block: no seat is spent on an off-topic pair."""

from __future__ import annotations

import itertools
import random
from dataclasses import replace

import pytest

from bot.domain.matching import AssignmentConfig, Mentee, Mentor, assign_mentors
from bot.domain.matching.assignment import candidate_scores

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


@pytest.mark.parametrize("min_shared_topics", [0, 1])
def test_matches_the_exhaustive_optimum_on_tiny_cases(min_shared_topics: int) -> None:
    """With top_k covering everyone, the objective is the best over every assignment (of
    the pairs the topic rule allows, when it is on). On these cases the best is also
    reached leaving nobody out while a mentor they fit has a free seat, so the second
    pass has nothing to trade against the spread term."""
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
        config = AssignmentConfig(top_k=10, spread=0.5, min_shared_topics=min_shared_topics)
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
        best = best_leaving_no_free_seat = 0.0
        for choice in itertools.product([-1, *range(len(mentors))], repeat=len(mentees)):
            if any((i, j) not in single for i, j in enumerate(choice) if j >= 0):
                continue
            loads = [choice.count(j) for j in range(len(mentors))]
            if any(n > m.capacity for n, m in zip(loads, mentors, strict=True)):
                continue
            value = sum(single[i, j] for i, j in enumerate(choice) if j >= 0)
            value -= config.spread * sum(n * (n - 1) / 2 for n in loads)
            best = max(best, value)
            if not any(
                (i, j) in single and loads[j] < mentors[j].capacity
                for i, chosen in enumerate(choice)
                if chosen < 0
                for j in range(len(mentors))
            ):
                best_leaving_no_free_seat = max(best_leaving_no_free_seat, value)
        assert best_leaving_no_free_seat == pytest.approx(best), f"seed {seed}"
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


# --- the shared-topic rule ------------------------------------------------------------

SAME_HOURS = {"utc_offset_hours": 1.0}


def churn_and_onboarding() -> tuple[list[Mentee], list[Mentor]]:
    """M2 teaches onboarding only and fits B (churn only) far better than A on seniority:
    scored on fit alone, A takes M1 and B takes M2's seat off topic."""
    mentors = [
        Mentor("M1", capacity=1, topics=frozenset({"churn"}), company="x", seniority=3),
        Mentor("M2", capacity=1, topics=frozenset({"onboarding"}), company="y", seniority=1),
    ]
    mentees = [
        Mentee("A", topics=frozenset({"churn", "onboarding"}), company="a", seniority=2),
        Mentee("B", topics=frozenset({"churn"}), company="b", seniority=0),
    ]
    return mentees, mentors


def pairs(result: object) -> list[tuple[str, str]]:
    return sorted((m.mentee_id, m.mentor_id) for m in result.matches)  # type: ignore[attr-defined]


def test_the_topic_rule_gives_the_seat_to_the_mentee_on_topic() -> None:
    mentees, mentors = churn_and_onboarding()
    old = assign_mentors(mentees, mentors, AssignmentConfig())
    assert pairs(old) == [("A", "M1"), ("B", "M2")], "0 keeps scoring topics only"
    assert AssignmentConfig().min_shared_topics == 0
    ruled = assign_mentors(mentees, mentors, AssignmentConfig(min_shared_topics=1))
    assert pairs(ruled) == [("A", "M2"), ("B", "M1")]
    assert ruled.unmatched == ()
    assert ruled.quality.excluded_pairs_used == 0
    assert [m.explanation.split(";")[0] for m in ruled.matches] == [
        "both work on onboarding",
        "both work on churn",
    ]


def test_top_k_holds_feasible_candidates_only() -> None:
    """With one candidate each, an off-topic favourite must not take the only place."""
    mentee = Mentee("C", topics=frozenset({"churn"}), company="c", utc_offset_hours=0.0)
    on_topic = Mentor("M1", topics=frozenset({"churn"}), company="x", utc_offset_hours=12.0)
    favourite = Mentor(
        "M2", topics=frozenset({"onboarding"}), company="y", seniority=2, utc_offset_hours=0.0
    )
    config = AssignmentConfig(top_k=1)
    rows, cols, _ = candidate_scores([mentee], [on_topic, favourite], config)
    assert cols.tolist() == [1], "scored on fit alone, the off-topic mentor is the only one"
    ruled = replace(config, min_shared_topics=1)
    rows, cols, scores = candidate_scores([mentee], [on_topic, favourite], ruled)
    assert (rows.tolist(), cols.tolist()) == ([0], [0]) and (scores > 0).all()
    assert pairs(assign_mentors([mentee], [on_topic, favourite], ruled)) == [("C", "M1")]
    wide = candidate_scores([mentee], [on_topic, favourite], replace(ruled, top_k=5))
    assert wide[1].tolist() == [0], "an infeasible pair is never a candidate"


@pytest.mark.parametrize("seed", range(40))
def test_no_pair_below_the_topic_minimum_is_ever_returned(seed: int) -> None:
    rng = random.Random(1000 + seed)
    mentees, mentors = population(rng.randint(1, 60), rng.randint(1, 25), seed)
    every = [frozenset((e.member_id, r.member_id)) for e in mentees for r in mentors]
    minimum = rng.choice([1, 1, 2])
    config = AssignmentConfig(
        blocked=frozenset(rng.sample(every, len(every) // 6)),
        same_company_allowed=rng.random() < 0.5,
        top_k=rng.randint(1, 8),
        min_shared_topics=minimum,
    )
    result = assign_mentors(mentees, mentors, config)
    by_id = {m.member_id: m for m in [*mentees, *mentors]}
    for match in result.matches:
        shared = by_id[match.mentee_id].topics & by_id[match.mentor_id].topics
        assert len(shared) >= minimum, match
    assert result.quality.excluded_pairs_used == 0
    words = "works on their topics" if minimum == 1 else f"shares {minimum} of their topics"

    def excluded(e: Mentee, r: Mentor) -> bool:
        colleague = e.company is not None and e.company == r.company
        return frozenset((e.member_id, r.member_id)) in config.blocked or (
            colleague and not config.same_company_allowed
        )

    for who, why in result.unmatched:
        mentee = by_id[who]
        assert isinstance(mentee, Mentee)
        on_topic = [r for r in mentors if len(mentee.topics & r.topics) >= minimum]
        feasible = [r for r in on_topic if not excluded(mentee, r)]
        if why == f"no mentor with a free seat {words}":
            assert not on_topic
        elif why == "every mentor is excluded (same company, blocked or a past pair)":
            assert on_topic and all(excluded(mentee, r) for r in mentors)
        elif why.startswith(f"every mentor who {words} is excluded"):
            assert on_topic and not feasible
        else:
            assert why == "the mentors who fit were all taken by mentees they fit better"
            assert feasible, who
    again = assign_mentors(mentees, mentors, config)
    assert again.matches == result.matches and again.unmatched == result.unmatched


@pytest.mark.parametrize("seed", range(10))
def test_the_rule_changes_nothing_when_every_pair_shares_a_topic(seed: int) -> None:
    mentees, mentors = population(50, 20, seed)
    mentees = [replace(e, topics=e.topics | {"common"}) for e in mentees]
    mentors = [replace(r, topics=r.topics | {"common"}) for r in mentors]
    free = assign_mentors(mentees, mentors, AssignmentConfig(top_k=5))
    ruled = assign_mentors(mentees, mentors, AssignmentConfig(top_k=5, min_shared_topics=1))
    assert ruled.matches == free.matches and ruled.unmatched == free.unmatched


def test_who_gets_no_mentor_on_topic_is_told_why() -> None:
    mentor = Mentor("r", capacity=1, topics=frozenset({"docs"}), company="acme", seniority=2)
    config = AssignmentConfig(min_shared_topics=1)
    elsewhere = Mentee("e1", topics=frozenset({"sales"}), company="globex")
    colleague = Mentee("e2", topics=frozenset({"docs"}), company="acme")
    both = Mentee("e3", topics=frozenset({"sales"}), company="acme")
    result = assign_mentors([elsewhere, colleague, both], [mentor], config)
    assert result.matches == ()
    assert result.unmatched == (
        ("e1", "no mentor with a free seat works on their topics"),
        ("e2", "every mentor is excluded (same company, blocked or a past pair)"),
        ("e3", "no mentor with a free seat works on their topics"),
    )
    other = Mentor("s", capacity=1, topics=frozenset({"sales"}), company="acme", seniority=2)
    off_topic = replace(mentor, company="initech")
    result = assign_mentors([elsewhere, both], [off_topic, other], config)
    assert pairs(result) == [("e1", "s")]
    assert result.unmatched == (
        (
            "e3",
            "every mentor who works on their topics is excluded "
            "(same company, blocked or a past pair)",
        ),
    )
    two = assign_mentors([elsewhere], [other], AssignmentConfig(min_shared_topics=2))
    assert two.unmatched == (("e1", "no mentor with a free seat shares 2 of their topics"),)
    assert assign_mentors([elsewhere], [], config).unmatched == (("e1", "no mentors this cycle"),)
    with pytest.raises(ValueError, match="min_shared_topics"):
        AssignmentConfig(min_shared_topics=-1)


# --- the second pass: nobody left out while a mentor they may have has a free seat ------


def test_a_mentee_outside_everyones_top_k_takes_a_free_seat() -> None:
    """With one candidate each, both mentees want the star and one loses it; the mentor
    with a free seat was in nobody's top 1, and the second pass gives it to the loser."""
    star = Mentor("star", capacity=1, topics=frozenset({"hiring", "pricing"}), seniority=2)
    other = Mentor("other", capacity=1, topics=frozenset({"hiring"}), seniority=2)
    mentees = [  # e0 is two levels below the star, e1 one: e0 fits the star better
        Mentee(f"e{k}", topics=frozenset({"hiring", "pricing"}), seniority=k) for k in range(2)
    ]
    config = AssignmentConfig(top_k=1, min_shared_topics=1)
    _rows, cols, _ = candidate_scores(mentees, [star, other], config)
    assert cols.tolist() == [0, 0], "both mentees' only candidate is the star"
    result = assign_mentors(mentees, [star, other], config)
    assert pairs(result) == [("e0", "star"), ("e1", "other")]
    assert result.unmatched == ()
    assert result.quality.load == (1, 1) and result.quality.over_capacity == 0
    assert result.matches[1].explanation.startswith("both work on hiring")
    # A third mentee finds every seat taken, and is told so truthfully.
    third = Mentee("e2", topics=frozenset({"hiring"}), seniority=0)
    full = assign_mentors([*mentees, third], [star, other], config)
    assert full.quality.matched == 2 and full.quality.over_capacity == 0
    assert [why for _, why in full.unmatched] == [
        "the mentors who fit were all taken by mentees they fit better"
    ]


def test_the_second_pass_looks_further_than_top_k_among_the_free_mentors() -> None:
    """Everyone's top 1 is the star, and the next best free mentor of both left out is
    the same: one round seats one of them, the next round the other, at the third mentor."""
    mentors = [
        Mentor(name, capacity=1, topics=frozenset(TOPICS[:shared]), seniority=2)
        for name, shared in (("star", 3), ("second", 2), ("third", 1))
    ]
    mentees = [Mentee(f"e{k}", topics=frozenset(TOPICS[:3])) for k in range(3)]
    config = AssignmentConfig(top_k=1, min_shared_topics=1)
    assert candidate_scores(mentees, mentors, config)[1].tolist() == [0, 0, 0]
    result = assign_mentors(mentees, mentors, config)
    assert sorted(m.mentor_id for m in result.matches) == ["second", "star", "third"]
    assert result.unmatched == () and result.quality.load == (1, 1, 1)


def test_a_free_seat_the_spread_term_would_leave_empty_is_taken() -> None:
    """The star's second seat costs `spread` more than the weak pair is worth, so the
    main solve leaves the mentee out; a free seat they fit above `min_score` is theirs."""
    star = Mentor("star", capacity=2, topics=frozenset({"docs"}), seniority=1)
    strong = Mentee("strong", topics=frozenset({"docs"}), seniority=0)
    weak = Mentee("weak", topics=frozenset({"docs"}), seniority=3)  # the mentor is below
    config = AssignmentConfig(spread=5.0)
    result = assign_mentors([strong, weak], [star], config)
    assert pairs(result) == [("strong", "star"), ("weak", "star")]
    assert result.quality.load == (2,) and result.unmatched == ()


def test_a_mentee_no_mentor_fits_well_enough_is_not_told_the_seats_were_taken() -> None:
    """A mentor below the mentee, off topic: allowed, but scoring nothing above 0."""
    mentor = Mentor("r", capacity=3, seniority=1)
    senior = Mentee("e", seniority=3)
    result = assign_mentors([senior], [mentor], AssignmentConfig())
    assert result.matches == ()
    assert result.unmatched == (("e", "no mentor they could have fits them well enough"),)
    assert assign_mentors([senior], [mentor], AssignmentConfig(min_score=-5.0)).matches


@pytest.mark.parametrize("seed", range(30))
def test_nobody_is_left_out_while_a_mentor_they_may_have_has_a_free_seat(seed: int) -> None:
    rng = random.Random(2000 + seed)
    mentees, mentors = population(rng.randint(10, 80), rng.randint(3, 25), seed)
    every = [frozenset((e.member_id, r.member_id)) for e in mentees for r in mentors]
    config = AssignmentConfig(
        blocked=frozenset(rng.sample(every, len(every) // 6)),
        ended_badly=frozenset(rng.sample(every, len(every) // 10)),
        same_company_allowed=rng.random() < 0.3,
        top_k=rng.randint(1, 3),
        spread=rng.choice([0.0, 0.5, 2.0]),
        min_score=rng.choice([0.0, 0.0, 2.0]),
        min_shared_topics=rng.choice([0, 1, 1, 2]),
    )
    result = assign_mentors(mentees, mentors, config)
    by_id = {m.member_id: m for m in [*mentees, *mentors]}
    load = {r.member_id: 0 for r in mentors}
    for match in result.matches:
        load[match.mentor_id] += 1
        mentee, mentor = by_id[match.mentee_id], by_id[match.mentor_id]
        pair = frozenset((match.mentee_id, match.mentor_id))
        assert pair not in config.blocked and pair not in config.ended_badly
        assert config.same_company_allowed or not (
            mentee.company is not None and mentee.company == mentor.company
        )
        assert len(mentee.topics & mentor.topics) >= config.min_shared_topics
        assert match.score > config.min_score
    assert all(load[r.member_id] <= r.capacity for r in mentors)
    assert result.quality.over_capacity == 0 and result.quality.excluded_pairs_used == 0
    wide = replace(config, top_k=len(mentors))
    for who, why in result.unmatched:
        mentee = by_id[who]
        assert isinstance(mentee, Mentee)
        _, cols, _ = candidate_scores([mentee], mentors, wide)  # allowed, above min_score
        free = [
            mentors[c].member_id
            for c in cols.tolist()
            if load[mentors[c].member_id] < mentors[c].capacity
        ]
        assert not free, f"{who} unmatched while {free} have a free seat"
        if why == "the mentors who fit were all taken by mentees they fit better":
            assert cols.size, f"{who} told 'taken' with no mentor they fit"
        else:
            assert not cols.size, f"{who}: {why!r} although they fit {cols.size} mentors"
    again = assign_mentors(mentees, mentors, config)
    assert again.matches == result.matches and again.unmatched == result.unmatched
