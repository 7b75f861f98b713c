"""Each health metric against a fixture computed by hand (the numbers in the
comments are the hand computation)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from bot.domain.health import (
    Activation,
    Cohort,
    Csat,
    Newcomer,
    Span,
    activation,
    active_members,
    csat,
    first_reply,
    nps,
    report_spans,
    retention,
    score_counts,
    suggestions,
    without_small_ratings,
    yet_to_start,
)

PATHS = ("intro", "coffee", "buddy", "question", "kudos")
NOV = Span(datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 12, 1, tzinfo=UTC))


def at(day: int, hour: int = 9, month: int = 11) -> datetime:
    return datetime(2026, month, day, hour, tzinfo=UTC)


def test_report_spans_are_whole_days_up_to_today_and_the_period_before() -> None:
    current, before = report_spans("week", datetime(2026, 11, 23, 15, 30, tzinfo=UTC))
    assert (current.start, current.end) == (at(17, 0), at(24, 0))
    assert (before.start, before.end) == (at(10, 0), at(17, 0))
    assert report_spans("quarter", at(23))[0].days == 91


def test_active_members_and_weekly_return() -> None:
    # 7 days: a b c d e f (6); 30 days: those plus g h i j k l (12) → 6 / 12 = 50 %.
    week = set("abcdef")
    month = set("abcdefghijkl")
    active = active_members(40, week, month)
    assert (active.members, active.active_7d, active.active_30d) == (40, 6, 12)
    assert active.ratio == 0.5
    # Someone active this week counts in the 30 days too.
    assert active_members(40, {"z"}, set("abcde")).active_30d == 6


def test_weekly_return_is_hidden_for_fewer_than_five_members() -> None:
    assert active_members(10, {"a"}, set("abcd")).ratio is None


def test_activation_counts_first_steps_within_14_days_by_path() -> None:
    newcomers = [
        Newcomer("n1", at(2), first_post_at=at(3)),  # posted on day 1 → post
        Newcomer("n2", at(2), first_post_at=at(20)),  # posted on day 18: too late
        Newcomer("n3", at(5)),  # coffee on day 4 and intro on day 10
        Newcomer("n4", at(5)),  # buddy on day 15: too late
        Newcomer("n5", at(10)),  # nothing
        Newcomer("n6", at(25)),  # question on day 2 (Nov 27)
        Newcomer("n7", at(28, month=10)),  # joined in October: not in the cohort
    ]
    actions = {
        "n3": [("coffee", at(9)), ("intro", at(15)), ("vote", at(16))],
        "n4": [("buddy", at(20, 10))],
        "n6": [("question", at(27))],
        "n7": [("intro", at(2))],
    }
    result = activation(newcomers, actions, NOV, PATHS)
    # Cohort n1..n6 = 6; activated n1, n3, n6 = 3 → 50 %; 3 never acted.
    assert (result.joined, result.activated, result.never_acted) == (6, 3, 3)
    assert result.rate == 0.5
    assert result.by_path == {
        "post": 1,
        "intro": 1,
        "coffee": 1,
        "buddy": 0,
        "question": 1,
        "kudos": 0,
    }
    assert result.path_rate("coffee") == pytest.approx(1 / 6)


def test_activation_window_is_cut_at_the_period_end() -> None:
    # Joined Nov 28, posted Dec 2: inside 14 days but after the period's end.
    newcomers = [Newcomer(f"n{i}", at(28), first_post_at=at(2, month=12)) for i in range(5)]
    assert activation(newcomers, {}, NOV, PATHS).activated == 0


def test_newcomers_yet_to_start_are_those_who_neither_posted_nor_acted() -> None:
    newcomers = [
        Newcomer("N3", at(10)),  # nothing yet: waiting
        Newcomer("N1", at(2)),  # nothing yet: waiting, and joined first
        Newcomer("N2", at(5), first_post_at=at(28)),  # posted (day 23 after joining)
        Newcomer("N4", at(6)),  # joined coffee on day 20
        Newcomer("N5", at(7), first_post_at=at(2, month=12)),  # posted after the span
        Newcomer("N6", at(20)),  # acted before joining only: waiting
        Newcomer("OUT", at(30, month=10)),  # joined before the span
    ]
    actions = {"N4": [("coffee", at(20))], "N6": [("kudos", at(19))]}
    waiting = yet_to_start(newcomers, actions, NOV)
    assert [newcomer.user_id for newcomer in waiting] == ["N1", "N5", "N3", "N6"]


def test_activation_rate_is_hidden_below_five_newcomers() -> None:
    result = activation([Newcomer("n1", at(2), first_post_at=at(2, 10))], {}, NOV, PATHS)
    assert (result.joined, result.activated, result.rate, result.path_rate("post")) == (
        1,
        1,
        None,
        None,
    )


def test_median_time_to_a_newcomers_first_reply() -> None:
    newcomers = [
        Newcomer("a", at(1), at(2, 9), at(2, 10)),  # 1 h
        Newcomer("b", at(1), at(3, 9), at(3, 12)),  # 3 h
        Newcomer("c", at(1), at(4, 9), at(5, 9)),  # 24 h
        Newcomer("d", at(1), at(5, 9), at(5, 11)),  # 2 h
        Newcomer("e", at(1), at(6, 9), at(7, 15)),  # 30 h
        Newcomer("f", at(1), at(7, 9)),  # unanswered
        Newcomer("g", at(1), at(30, 9), at(1, 9, month=12)),  # reply after the period
        Newcomer("h", at(20, month=10), at(25, month=10), at(2)),  # first post in October
    ]
    result = first_reply(newcomers, NOV)
    # Posted in November: a..g = 7; answered in November: a..e = 5; median(1, 2, 3, 24, 30) = 3.
    assert (result.posted, result.answered, result.median_hours) == (7, 5, 3.0)
    assert first_reply(newcomers[:4], NOV).median_hours is None  # 4 waits: too few to show


def test_retention_cohorts_by_join_month() -> None:
    # Five members joined on 2026-08-03 (a Monday); activity by member:
    #   m1: Aug 5 (week 1), Aug 26 (week 4: Aug 24–30), Oct 20 (week 12: Oct 19–25)
    #   m2: Aug 9 (week 1, its last day), Aug 24 (week 4)
    #   m3: Aug 10 (week 2 only)
    #   m4: Oct 25 (week 12)
    #   m5: nothing
    joined = datetime(2026, 8, 3, 12, tzinfo=UTC)
    newcomers = [Newcomer(f"m{i}", joined) for i in range(1, 6)]
    newcomers.append(Newcomer("late", datetime(2026, 11, 20, tzinfo=UTC)))
    days = {
        "m1": {date(2026, 8, 5), date(2026, 8, 26), date(2026, 10, 20)},
        "m2": {date(2026, 8, 9), date(2026, 8, 24)},
        "m3": {date(2026, 8, 10)},
        "m4": {date(2026, 10, 25)},
    }
    cohorts = retention(newcomers, days, datetime(2026, 11, 24, tzinfo=UTC))
    assert [c.month for c in cohorts] == [
        "2026-06",
        "2026-07",
        "2026-08",
        "2026-09",
        "2026-10",
        "2026-11",
    ]
    august = cohorts[2]
    # week 1: m1, m2 = 2/5; week 4: m1, m2 = 2/5; week 12: m1, m4 = 2/5.
    assert august == Cohort("2026-08", 5, {1: 0.4, 4: 0.4, 12: 0.4})
    # November has one member: too small to show, and its weeks have not ended.
    assert cohorts[5] == Cohort("2026-11", 1, {1: None, 4: None, 12: None})


def test_retention_waits_until_a_week_has_ended_for_every_member() -> None:
    joined = datetime(2026, 11, 10, tzinfo=UTC)
    newcomers = [Newcomer(f"m{i}", joined) for i in range(5)]
    days = {"m0": {date(2026, 11, 11)}}
    (november,) = retention(newcomers, days, datetime(2026, 11, 24, tzinfo=UTC), months=1)
    # Week 1 (Nov 10–16) is over: 1/5; week 4 ends Dec 7: not yet.
    assert november.retained == {1: 0.2, 4: None, 12: None}


def test_nps_with_its_95_percent_interval() -> None:
    # 10 promoters, 4 passives, 6 detractors: NPS = 100 × (10 − 6) / 20 = 20.
    # Variance of the ±1/0 mean: (0.5 + 0.3 − 0.2²) / 20 = 0.038; sd 0.19494;
    # half-width 1.96 × 100 × 0.19494 = 38.21 → (−18.21, 58.21).
    scores = [9, 10] * 5 + [7, 8] * 2 + [0, 3, 5, 6, 6, 4]
    result = nps(scores)
    assert (result.promoters, result.passives, result.detractors) == (10, 4, 6)
    assert result.score == 20
    low, high = result.interval or (0, 0)
    assert low == pytest.approx(-18.207, abs=0.01)
    assert high == pytest.approx(58.207, abs=0.01)
    assert score_counts(scores) == [1, 0, 0, 1, 1, 1, 2, 2, 2, 5, 5]


def test_nps_is_hidden_until_ten_answers_and_the_interval_stays_in_range() -> None:
    assert nps([10] * 9).score is None
    assert nps([10] * 9).interval is None
    assert nps([10] * 10).interval == (100.0, 100.0)
    with pytest.raises(ValueError):
        nps([11])


def test_suggestions_carry_the_numbers_that_triggered_them() -> None:
    current = {
        "activation_rate": 0.38,
        "weekly_return": 0.25,
        "active_7d": 15,
        "active_30d": 60,
        "first_reply_hours": 30.0,
        "coffee.meet_rate": 0.45,
        "ama.answer_rate": 0.9,
        "nps": -5.0,
        "nps_answers": 22,
    }
    previous = {"activation_rate": 0.55, "first_reply_hours": 12.0, "coffee.meet_rate": 0.7}
    started = Activation(joined=14, activated=5)
    cohorts = [Cohort("2026-09", 8, {1: 0.5, 4: 0.25, 12: None})]
    found = suggestions(current, previous, started, cohorts)
    assert [s.kind for s in found] == [
        "activation",
        "weekly_return",
        "first_reply",
        "meet_rate",
        "nps",
        "retention",
    ]
    assert found[0].numbers == {"rate": 0.38, "was": 0.55, "never_acted": 9, "joined": 14}
    assert found[5].numbers == {"month": "2026-09", "rate": 0.25, "size": 8}


def test_no_suggestion_when_figures_are_healthy_or_unknown() -> None:
    healthy = {"activation_rate": 0.7, "weekly_return": 0.6, "first_reply_hours": 2.0, "nps": 40.0}
    assert suggestions(healthy, {"activation_rate": 0.72}, Activation(10, 7), []) == []
    assert suggestions({}, {}, Activation(0, 0), []) == []


def test_a_ten_point_drop_in_activation_suggests_action_even_above_half() -> None:
    found = suggestions({"activation_rate": 0.6}, {"activation_rate": 0.75}, Activation(10, 6), [])
    assert [s.kind for s in found] == ["activation"]


def test_spans_count_days() -> None:
    assert NOV.days == 30
    assert NOV.end_day - timedelta(days=1) == date(2026, 11, 30)


def test_satisfaction_after_a_session_reads_each_ritual_s_own_figures() -> None:
    current = {
        # Coffee: 12 groups, 0.75 of them answered "Did you meet?" → 9 answered;
        # 6 of the 9 met → 0.666…
        "coffee.groups": 12.0,
        "coffee.answer_rate": 0.75,
        "coffee.meet_rate": 6 / 9,
        # Mentorship: ratings 3, 4, 5, 5, 5 → median 5 from 5 answers.
        "mentor.ratings": 5.0,
        "mentor.median_rating": 5.0,
        # Events: 4 ratings, fewer than 5 → the average is hidden, the count shown.
        "events.ratings": 4.0,
        "events.average_rating": 4.25,
        # Mastermind: nobody rated → no line.
        "mastermind.ratings": 0.0,
        "mastermind.average_rating": None,
        "probe.givers": 3.0,
    }
    assert csat(current) == [
        Csat("coffee", "coffee.meet_rate", 6 / 9, 9),
        Csat("mentor", "mentor.median_rating", 5.0, 5),
        Csat("events", "events.average_rating", None, 4),
    ]
    # Coffee with 4 of 8 groups answering: 4 answers, below 5 → hidden.
    assert csat({"coffee.groups": 8.0, "coffee.answer_rate": 0.5, "coffee.meet_rate": 1.0}) == [
        Csat("coffee", "coffee.meet_rate", None, 4)
    ]
    assert csat({"probe.givers": 3.0}) == []


def test_a_rating_fewer_than_five_gave_is_hidden_among_the_figures() -> None:
    figures = {
        "coffee.groups": 8.0,
        "coffee.answer_rate": 0.5,  # 4 groups answered: hidden
        "coffee.meet_rate": 0.75,
        "mentor.ratings": 5.0,  # 5 ratings: shown
        "mentor.median_rating": 4.0,
        "events.ratings": 1.0,  # one rating: its average is that member's score
        "events.average_rating": 2.0,
        "kudos.givers": 2.0,  # not a rating: left alone
    }
    assert without_small_ratings(figures) == {
        **figures,
        "coffee.meet_rate": None,
        "events.average_rating": None,
    }
    assert without_small_ratings({"kudos.givers": 2.0}) == {"kudos.givers": 2.0}
