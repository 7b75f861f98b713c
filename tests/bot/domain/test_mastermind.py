"""Pure mastermind rules: reading sizes, lengths, deadlines and weekly slots in a
member's own time zone; forming with the hard rules on top of the engine; the
backfill choice; the fair hot seat; a group's health and week-8 verdict."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from bot.core.mentions import strip_markup_for_plain_text
from bot.domain.mastermind import (
    HARD_RULES_REASON,
    NO_SLOT_REASON,
    FormingRules,
    LocalSlot,
    MastermindInputError,
    SessionTally,
    alive_at_week_eight,
    choose_backfill,
    clean_commitment,
    clean_update,
    form_groups,
    forming_history,
    low_two_running,
    next_hot_seat,
    next_weekly,
    parse_deadline,
    parse_session_minutes,
    parse_size,
    parse_slots,
    parse_tags,
    silent_members,
    to_utc_week,
)
from bot.domain.matching import Applicant

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
MONDAY = date(2026, 11, 30)
TUESDAY_16_UTC = 1 * 1440 + 16 * 60
RULES = FormingRules(min_size=5, max_size=7, session_minutes=60, allow_colleagues=False)


def refusal(call: object, *args: object) -> str:
    with pytest.raises(MastermindInputError) as raised:
        call(*args)  # type: ignore[operator]
    return strip_markup_for_plain_text(str(raised.value))


def person(name: str, company: str | None, tags: tuple[str, ...] = ("churn",)) -> Applicant:
    return Applicant(
        member_id=name,
        company=company,
        tags=frozenset(tags),
        seniority=2,
        availability=((TUESDAY_16_UTC, TUESDAY_16_UTC + 120),),
    )


# --- reading what people type --------------------------------------------------------


def test_sizes() -> None:
    assert parse_size("5-7") == (5, 7)
    assert parse_size(" 6 ") == (6, 6)
    assert "too small" in refusal(parse_size, "2")
    assert "too big" in refusal(parse_size, "12")
    assert "too big" in refusal(parse_size, "5-9")
    assert parse_size("3-8") == (3, 8)
    assert "above the largest" in refusal(parse_size, "7-5")
    assert "`lots`" in refusal(parse_size, "lots")


def test_session_lengths() -> None:
    assert [parse_session_minutes(t) for t in ("1h", "90m", "1h30m", "45", "2h")] == [
        60,
        90,
        90,
        45,
        120,
    ]
    assert "30 minutes to 3 hours" in refusal(parse_session_minutes, "10m")
    assert "`an hour`" in refusal(parse_session_minutes, "an hour")


def test_deadlines_are_read_in_the_organisers_zone() -> None:
    assert parse_deadline("2026-12-10", BERLIN, NOW) == datetime(2026, 12, 10, 22, 59, tzinfo=UTC)
    assert parse_deadline("2026-12-10 18:00", NEW_YORK, NOW) == datetime(
        2026, 12, 10, 23, 0, tzinfo=UTC
    )
    assert parse_deadline("7d", BERLIN, NOW) == NOW + timedelta(days=7)
    assert parse_deadline("36h", BERLIN, NOW) == NOW + timedelta(hours=36)
    assert "future" in refusal(parse_deadline, "0d", BERLIN, NOW)
    assert "future" in refusal(parse_deadline, "2026-11-01", BERLIN, NOW)
    assert "deadline=2026-12-10" in refusal(parse_deadline, "next week", BERLIN, NOW)


def test_slots_in_every_spelling() -> None:
    assert parse_slots("Mon 18:00-20:00, thu 12-14") == (
        LocalSlot(0, 18 * 60, 20 * 60),
        LocalSlot(3, 12 * 60, 14 * 60),
    )
    assert [s.day for s in parse_slots("weekdays 12-13")] == [0, 1, 2, 3, 4]
    assert [s.day for s in parse_slots("Fri-Mon 9:30-11")] == [4, 5, 6, 0]
    assert parse_slots("Tuesday 17:00-24:00") == (LocalSlot(1, 17 * 60, 24 * 60),)
    assert parse_slots("sun 8-9").__getitem__(0).describe() == "Sun 08:00-09:00"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Mondays-ish", "can't read `Mondays-ish` as a weekly slot"),
        ("Mon", "can't read `Mon`"),
        ("Mon 20-18", "ends before it starts"),
        ("Mon 18:75-19:00", "not a time of day"),
        ("Funday 10-11", "`funday` is not a day"),
        ("Mon-weekdays 10-11", "not a range of days"),
        ("", "Tell me when you are free"),
        ("weekdays 9-10, weekends 9-10, mon 11-12, tue 11-12, wed 1-2, thu 1-2", "11 slots"),
    ],
)
def test_slots_that_cannot_be_read(text: str, expected: str) -> None:
    assert expected in refusal(parse_slots, text)


def test_local_slots_become_utc_week_minutes() -> None:
    (berlin,) = to_utc_week(parse_slots("Tue 17:00-19:00"), BERLIN, MONDAY)
    (new_york,) = to_utc_week(parse_slots("Tue 11:00-13:00"), NEW_YORK, MONDAY)
    assert berlin == new_york == (TUESDAY_16_UTC, TUESDAY_16_UTC + 120)
    # Monday 00:30 in Berlin is Sunday 23:30 UTC: the end of the week, wrapping.
    (early,) = to_utc_week(parse_slots("Mon 0:30-2:00"), BERLIN, MONDAY)
    assert early == (6 * 1440 + 23 * 60 + 30, 6 * 1440 + 23 * 60 + 30 + 90)
    Applicant("wraps", availability=(early,))  # the engine accepts the wrap


def test_next_weekly() -> None:
    assert next_weekly(TUESDAY_16_UTC, NOW) == datetime(2026, 11, 24, 16, 0, tzinfo=UTC)
    at = datetime(2026, 11, 24, 16, 0, tzinfo=UTC)
    assert next_weekly(TUESDAY_16_UTC, at) == at
    assert next_weekly(TUESDAY_16_UTC, at + timedelta(minutes=1)) == at + timedelta(weeks=1)


def test_tags_updates_and_commitments() -> None:
    assert parse_tags("Churn, NPS , churn") == ("churn", "nps")
    assert "at least one tag" in refusal(parse_tags, " , ")
    assert "pick your top 5" in refusal(parse_tags, "a,b,c,d,e,f")
    assert clean_update("  Shipped macros \n\n Next:  rota ") == "Shipped macros\nNext: rota"
    assert "to 2 lines" in refusal(clean_update, "a\nb\nc")
    assert "two lines" in refusal(clean_update, "  ")
    assert clean_commitment("By next time I will call two peers") == "call two peers"
    assert clean_commitment("I will  draft it") == "draft it"
    assert "Finish the sentence" in refusal(clean_commitment, "I will")


# --- forming ---------------------------------------------------------------------------


def test_colleagues_are_kept_apart_unless_allowed() -> None:
    people = [person(f"u{k}", f"c{k}") for k in range(6)] + [person("u6", "c0")]
    plan = form_groups(people, RULES)
    (group,) = plan.groups
    assert len(group.members) == 6 and not {"u0", "u6"} <= set(group.members)
    assert len(plan.left_out) == 1 and plan.left_out[0][1] == HARD_RULES_REASON
    allowed = form_groups(people, FormingRules(5, 7, 60, allow_colleagues=True))
    assert [len(g.members) for g in allowed.groups] == [7]
    assert allowed.groups[0].companies[0] == ("c0", 2)


def test_blocked_pairs_never_share_a_group_in_many_populations() -> None:
    generator = random.Random(7)
    for trial in range(20):
        count = generator.randint(10, 30)
        people = [person(f"m{k:02}", f"c{k}") for k in range(count)]
        blocked = {
            tuple(generator.sample([p.member_id for p in people], 2)) for _ in range(count // 2)
        }
        plan = form_groups(people, RULES, blocked_pairs=blocked)  # type: ignore[arg-type]
        for group in plan.groups:
            assert RULES.min_size <= len(group.members) <= RULES.max_size, trial
            for one, other in blocked:
                assert not {one, other} <= set(group.members), (trial, one, other)
        placed = [m for g in plan.groups for m in g.members] + [m for m, _ in plan.left_out]
        assert sorted(placed) == sorted(p.member_id for p in people)


def test_a_group_without_a_common_slot_is_not_formed() -> None:
    apart = [
        Applicant(f"u{k}", f"c{k}", frozenset({"churn"}), 1, ((k * 1440, k * 1440 + 60),))
        for k in range(5)
    ]
    plan = form_groups(apart, RULES)
    assert plan.groups == ()
    assert {reason for _, reason in plan.left_out} == {NO_SLOT_REASON}


def test_shared_tags_and_slot_come_from_the_engine() -> None:
    people = [person(f"u{k}", f"c{k}", ("churn", f"own{k}")) for k in range(5)]
    (group,) = form_groups(people, RULES).groups
    assert group.shared_tags == ("churn",)
    assert group.slot == (TUESDAY_16_UTC, TUESDAY_16_UTC + 120)


def test_past_groups_are_mixed_up_when_re_forming() -> None:
    people = [person(f"u{k:02}", f"c{k}") for k in range(12)]
    first = form_groups(people, RULES)
    again = form_groups(people, RULES, past_groups=[g.members for g in first.groups])
    before = {frozenset(g.members) for g in first.groups}
    assert not before & {frozenset(g.members) for g in again.groups}


def test_the_backfill_respects_the_hard_rules_and_the_slot() -> None:
    group = [person(f"u{k}", f"c{k}") for k in range(5)]
    colleague = person("w1", "c0")
    blocked = person("w2", "c9")
    elsewhere = Applicant("w3", "c8", frozenset({"churn"}), 2, ((0, 60),))
    fits = person("w4", "c7")
    assert (
        choose_backfill(
            group, [colleague, blocked, elsewhere, fits], RULES, blocked_pairs=[("u1", "w2")]
        )
        == "w4"
    )
    assert (
        choose_backfill(group, [colleague, blocked, elsewhere], RULES, blocked_pairs=[("w2", "u1")])
        is None
    )
    full = [person(f"u{k}", f"c{k}") for k in range(7)]
    assert choose_backfill(full, [fits], RULES) is None


# --- the hot seat and health -------------------------------------------------------------


def test_the_hot_seat_is_fair_whoever_joins_or_leaves() -> None:
    members = ["ana", "bob", "cid", "dan", "eve"]
    holders: list[str] = []
    for _ in range(10):
        holders.append(next_hot_seat(members, holders))
    assert holders == members * 2
    # A leaver after their turn, a newcomer: the newcomer goes before anyone's second turn.
    holders = ["ana", "bob"]
    now_seated = ["bob", "cid", "dan", "eve", "fay"]
    upcoming = []
    for _ in range(4):
        upcoming.append(next_hot_seat(now_seated, holders + upcoming))
    assert upcoming == ["cid", "dan", "eve", "fay"]
    with pytest.raises(ValueError):
        next_hot_seat([], [])


def tally(number: int, attended: int, updates: int, seated: int = 6) -> SessionTally:
    return SessionTally(
        number,
        datetime(2026, 12, 1, tzinfo=UTC) + timedelta(weeks=number - 1),
        seated,
        attended,
        updates,
        0,
        0,
        0,
    )


def test_low_two_sessions_running() -> None:
    assert not low_two_running([tally(1, 3, 6)])
    assert low_two_running([tally(1, 3, 6), tally(2, 6, 3)])
    assert not low_two_running([tally(1, 3, 3), tally(2, 4, 4)])  # 4/6 is 67 %
    assert not low_two_running([tally(1, 3, 3), tally(2, 6, 6), tally(3, 1, 1)])


def test_silence_is_three_weeks_of_nothing() -> None:
    now = datetime(2026, 12, 23, tzinfo=UTC)
    seen = {
        "ana": now - timedelta(days=21),
        "bob": now - timedelta(days=20),
        "cid": now - timedelta(days=30),
    }
    assert silent_members(seen, now) == ["ana", "cid"]


def test_alive_at_week_eight() -> None:
    first = datetime(2026, 12, 1, tzinfo=UTC)
    weekly = [first + timedelta(weeks=k) for k in range(10)]
    held = [tally(k + 1, 4, 4) for k in range(10)]
    week_eight = first + timedelta(weeks=8)
    assert alive_at_week_eight(held[:7], weekly, week_eight - timedelta(days=1)) is None
    assert alive_at_week_eight(held[:8], weekly, week_eight) is True
    died = held[:5] + [tally(k, 1, 0) for k in (6, 7, 8)]
    assert alive_at_week_eight(died, weekly, week_eight) is False
    # A four-session cycle ends before week 8: its last session decides.
    short = weekly[:4]
    assert alive_at_week_eight(held[:3], short, week_eight) is None
    assert alive_at_week_eight(held[:4], short, week_eight) is True
    assert alive_at_week_eight([*held[:3], tally(4, 2, 2)], short, week_eight) is False
    assert alive_at_week_eight([], [], week_eight) is None


def test_whoever_the_hard_rules_take_out_is_seated_where_there_is_room() -> None:
    """Ten people of one firm and twenty of twenty others: the solver alone puts
    colleagues together; the hard rules take them out and seat them one per group."""
    firm = [person(f"f{k:02}", "firm") for k in range(10)]
    others = [person(f"o{k:02}", f"c{k}") for k in range(20)]
    plan = form_groups([*firm, *others], RULES)
    for group in plan.groups:
        assert RULES.min_size <= len(group.members) <= RULES.max_size
        assert sum(member.startswith("f") for member in group.members) <= 1
        assert group.slot == (TUESDAY_16_UTC, TUESDAY_16_UTC + 120)
    seated = sum(len(g.members) for g in plan.groups)
    # One firm member per group: as many as there are groups, the rest wait.
    assert seated == 20 + len(plan.groups)
    assert len(plan.left_out) == 10 - len(plan.groups)
    assert {reason for _, reason in plan.left_out} <= {
        HARD_RULES_REASON,
        "the group fell below 5 under the hard rules",
    }


def test_members_who_asked_to_go_on_together_are_not_held_apart() -> None:
    past = [(("ana", "bob", "cid"), {"ana", "bob"}), (("dan", "eve"), {"dan"})]
    assert forming_history(past) == [("ana", "cid"), ("bob", "cid"), ("dan", "eve")]
