"""Virtual coffee domain rules: schedules across cadences and daylight saving,
round windows, starters, proposers and the stats arithmetic."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from bot.domain.coffee import (
    ProposerCandidate,
    RoundFigures,
    Schedule,
    choose_proposer,
    choose_starter,
    first_round_date,
    local_time,
    normalised,
    percent,
    rates,
    round_window,
    utc_offset_hours,
)

MONDAY = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def test_weekly_rounds_follow_the_program_time_zone_across_daylight_saving() -> None:
    schedule = Schedule("weekly", 0, 9, "Europe/Berlin", date(2026, 3, 23))
    winter = schedule.next_after(datetime(2026, 3, 23, 9, 0, tzinfo=UTC))
    assert winter == datetime(2026, 3, 30, 7, 0, tzinfo=UTC)  # summer time began on 29 March
    assert schedule.next_after(datetime(2026, 3, 23, 7, 59, tzinfo=UTC)) == datetime(
        2026, 3, 23, 8, 0, tzinfo=UTC
    )


def test_next_after_is_strictly_after() -> None:
    schedule = Schedule("weekly", 0, 9, "Europe/Berlin", date(2026, 11, 30))
    round_time = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
    assert schedule.next_after(round_time) == round_time + timedelta(days=7)


def test_biweekly_rounds_keep_their_fortnight() -> None:
    schedule = Schedule("biweekly", 2, 15, "Europe/Berlin", date(2026, 11, 25))
    first = schedule.next_after(MONDAY)
    assert first == datetime(2026, 11, 25, 14, 0, tzinfo=UTC)
    assert schedule.next_after(first) == datetime(2026, 12, 9, 14, 0, tzinfo=UTC)
    # Months later the rhythm still counts from the anchor.
    later = schedule.next_after(datetime(2027, 2, 1, tzinfo=UTC))
    assert (later.date() - date(2026, 11, 25)).days % 14 == 0


def test_monthly_rounds_fall_on_the_first_weekday_of_the_month() -> None:
    schedule = Schedule("monthly", 0, 9, "America/New_York", date(2026, 12, 7))
    first = schedule.next_after(MONDAY)
    assert first == datetime(2026, 12, 7, 14, 0, tzinfo=UTC)
    assert schedule.next_after(first) == datetime(2027, 1, 4, 14, 0, tzinfo=UTC)


def test_schedules_describe_themselves() -> None:
    assert (
        Schedule("weekly", 4, 8, "Asia/Tokyo", date(2026, 1, 2)).describe()
        == "every week on Friday at 08:00 (Asia/Tokyo)"
    )
    assert Schedule("monthly", 1, 17, "UTC", date(2026, 1, 6)).describe() == (
        "on the first Tuesday of each month at 17:00 (UTC)"
    )
    with pytest.raises(ValueError, match="unknown cadence"):
        Schedule("daily", 0, 9, "UTC", date(2026, 1, 5)).next_after(MONDAY)


def test_first_round_date_is_the_next_matching_weekday_and_hour() -> None:
    # Monday 10:00 in Berlin: Monday 09:00 has passed, so next week.
    assert first_round_date(0, 9, "Europe/Berlin", MONDAY) == date(2026, 11, 30)
    assert first_round_date(0, 11, "Europe/Berlin", MONDAY) == date(2026, 11, 23)
    assert first_round_date(2, 9, "Europe/Berlin", MONDAY) == date(2026, 11, 25)
    # Already Tuesday in Tokyo.
    assert first_round_date(0, 9, "Asia/Tokyo", datetime(2026, 11, 23, 20, 0, tzinfo=UTC)) == date(
        2026, 11, 30
    )


def test_round_window_reminds_half_way_and_asks_a_day_before_the_end() -> None:
    week = round_window(MONDAY, MONDAY + timedelta(days=7))
    assert week.reminder_at == MONDAY + timedelta(days=3, hours=12)
    assert week.followup_at == MONDAY + timedelta(days=6)
    short = round_window(MONDAY, MONDAY + timedelta(hours=8))
    assert short.reminder_at == MONDAY + timedelta(hours=4)
    assert short.followup_at == MONDAY + timedelta(hours=6)


def test_offsets_and_local_times() -> None:
    assert utc_offset_hours("Asia/Kolkata", MONDAY) == 5.5
    assert utc_offset_hours("Europe/Berlin", datetime(2026, 7, 1, tzinfo=UTC)) == 2.0
    assert utc_offset_hours(None, MONDAY) is None
    assert utc_offset_hours("Mars/Olympus", MONDAY) is None
    assert local_time("America/New_York", MONDAY) == "Mon 04:00"
    assert local_time(None, MONDAY) is None
    assert normalised("  ACME  Corp ") == "acme corp"
    assert normalised("   ") is None and normalised(None) is None


def test_starters_are_fresh_for_the_group_and_deterministic() -> None:
    starters = ["a", "b", "c"]
    assert choose_starter(starters, {"a": 1, "b": 2}, seed=7) == "c"
    assert choose_starter(starters, {"a": 1, "b": 1, "c": 2}, seed=7) in {"a", "b"}
    assert choose_starter(starters, {}, seed=3) == choose_starter(starters, {}, seed=3)
    with pytest.raises(ValueError, match="no conversation starters"):
        choose_starter([], {}, seed=1)


def test_the_proposer_rotates_then_favours_the_earliest_day() -> None:
    berlin = ProposerCandidate("ana", 0, 1.0)
    tokyo = ProposerCandidate("kai", 0, 9.0)
    unknown = ProposerCandidate("zed", 0, None)
    assert choose_proposer([berlin, tokyo, unknown]) == "kai"
    assert choose_proposer([berlin, ProposerCandidate("kai", 2, 9.0)]) == "ana"
    assert choose_proposer([unknown, ProposerCandidate("amy", 0, None)]) == "amy"


def figures(**fields: object) -> RoundFigures:
    base: dict[str, object] = {
        "occurrence": MONDAY,
        "participants": 4,
        "groups": 2,
        "met_groups": 1,
        "answered_groups": 2,
        "asked": True,
        "total_pairs": 2,
        "repeat_pairs": 0,
        "any_repeat_pairs": 0,
        "same_company_pairs": 0,
        "low_overlap_pairs": 0,
        "in_trio": 0,
        "left_out": 0,
        "solver_ms": 1.0,
    }
    return RoundFigures(**(base | fields))  # type: ignore[arg-type]


def test_rates_weigh_pairs_and_only_count_asked_rounds_for_meetings() -> None:
    total = rates(
        [
            figures(),
            figures(
                groups=4,
                met_groups=4,
                total_pairs=6,
                repeat_pairs=3,
                any_repeat_pairs=4,
                same_company_pairs=3,
            ),
            figures(asked=False, met_groups=0, low_overlap_pairs=2),
        ]
    )
    assert total.meet_rate == 5 / 6
    assert total.repeat_rate == 3 / 10
    assert total.ever_met_rate == 4 / 10
    assert total.cross_company_rate == 1 - 3 / 10
    assert total.timezone_fit == 1 - 2 / 10
    empty = rates([])
    assert (empty.meet_rate, empty.repeat_rate, empty.timezone_fit) == (None, None, None)
    assert percent(None) == "–" and percent(0.5) == "50%"
