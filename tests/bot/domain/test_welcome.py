from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.core.templates import TemplateProblem, Templates
from bot.domain.welcome import (
    Journey,
    Person,
    WelcomeDetails,
    WelcomeSettingError,
    activation,
    check_template,
    choose_buddy,
    format_delay,
    parse_channel_list,
    parse_delay,
    parse_url,
    welcome_message,
    working_overlap_hours,
)

TEMPLATES = Templates(Path(__file__).resolve().parents[3] / "config" / "templates")
WINTER = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)
SUMMER = datetime(2026, 7, 15, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0", timedelta(0)),
        ("now", timedelta(0)),
        ("45", timedelta(minutes=45)),
        ("30m", timedelta(minutes=30)),
        ("2H", timedelta(hours=2)),
        ("1d", timedelta(days=1)),
        ("7d", timedelta(days=7)),
    ],
)
def test_parse_delay(text: str, expected: timedelta) -> None:
    assert parse_delay(text) == expected
    assert parse_delay(format_delay(int(expected.total_seconds()))) == expected


@pytest.mark.parametrize("text", ["8d", "169h", "2 weeks", "h", "-5m", "1.5h"])
def test_parse_delay_refuses(text: str) -> None:
    with pytest.raises(WelcomeSettingError):
        parse_delay(text)


def test_channel_lists_and_links() -> None:
    assert parse_channel_list("<#C1|help>, <#C2> <#C1>") == ["C1", "C2"]
    with pytest.raises(WelcomeSettingError, match="`help` is not a channel"):
        parse_channel_list("<#C1> help")
    assert parse_url(" https://cx.example/coc ") == "https://cx.example/coc"
    for bad in ("cx.example/coc", "javascript:alert(1)", "https://x.example/<!here>"):
        with pytest.raises(WelcomeSettingError):
            parse_url(bad)


def test_stock_welcome_shows_optional_parts_only_when_configured() -> None:
    bare = welcome_message(TEMPLATES, None, WelcomeDetails("U1", "Nia", "CX Circle"))
    assert "Channels worth a visit" not in bare.text
    assert "code of conduct" not in bare.text
    assert "I'll post them in" not in bare.text
    full = welcome_message(
        TEMPLATES,
        None,
        WelcomeDetails("U1", "Nia", "CX Circle", ("C1", "C2"), "CI", "https://cx.example/coc"),
    )
    assert "Channels worth a visit: <#C1>, <#C2>" in full.text
    assert "[code of conduct](https://cx.example/coc)" in full.text
    assert "I'll post them in <#CI> for you" in full.text


def test_template_check_rejects_problems_before_sending() -> None:
    assert check_template(TEMPLATES, "Hi {{ name }}!\\nSee {{ channels }}") == (
        "Hi {{ name }}!\nSee {{ channels }}"
    )
    with pytest.raises(TemplateProblem, match="Unknown placeholder"):
        check_template(TEMPLATES, "Hi {{ nickname }}")
    with pytest.raises(TemplateProblem, match="empty"):
        check_template(TEMPLATES, "   ")
    with pytest.raises(TemplateProblem, match="empty message"):
        check_template(TEMPLATES, "{% if false %}never{% endif %}")
    with pytest.raises(TemplateProblem, match="could not be rendered"):
        check_template(TEMPLATES, "{{ name.__class__.__mro__ }}")
    # Optional values may be unset later: the template must cope with that too.
    with pytest.raises(TemplateProblem, match="when optional settings are unset"):
        check_template(TEMPLATES, "{% if channels %}Visit {{ channels }}{% endif %}")
    with pytest.raises(TemplateProblem, match="could not be rendered"):
        check_template(TEMPLATES, "Also see {{ channels.split(', ')[1] }}, {{ name }}")


def test_a_template_failing_at_send_time_falls_back_to_the_stock_welcome(
    caplog: pytest.LogCaptureFixture,
) -> None:
    details = WelcomeDetails("U1", "Nia", "CX Circle")
    message = welcome_message(TEMPLATES, "Hi {{ name.nickname }}", details)
    assert message.text == welcome_message(TEMPLATES, None, details).text
    assert "the custom welcome template failed" in caplog.text


def test_member_text_in_a_template_stays_mention_safe() -> None:
    message = welcome_message(
        TEMPLATES, "Hi {{ name }}", WelcomeDetails("U1", "@everyone", "CX Circle")
    )
    assert message.text == "Hi \ue000@everyone\ue001"


def test_working_overlap_follows_daylight_saving() -> None:
    assert working_overlap_hours("Europe/Berlin", "Europe/London", WINTER) == 7
    assert working_overlap_hours("Europe/Berlin", "America/New_York", WINTER) == 2
    assert working_overlap_hours("Europe/Berlin", "America/New_York", SUMMER) == 2
    assert working_overlap_hours("Europe/London", "America/Los_Angeles", WINTER) == 0
    # Across the date line the shorter way round counts.
    assert working_overlap_hours("Pacific/Auckland", "America/Los_Angeles", WINTER) == 5
    assert working_overlap_hours("Europe/Berlin", None, WINTER) is None
    assert working_overlap_hours("Europe/Berlin", "Mars/Olympus", WINTER) is None


def test_buddy_choice_orders_load_then_company_then_timezone() -> None:
    newcomer = Person("UNEW", "Acme", "Europe/Berlin")
    same_company = Person("UA", " ACME ", "Europe/Paris")
    far_away = Person("UB", "Globex", "Asia/Tokyo")
    unknown_zone = Person("UC", "Initech", None)
    close_by = Person("UD", "Hooli", "Europe/London")
    volunteers = [same_company, far_away, unknown_zone, close_by, Person("UNEW")]
    assert choose_buddy(newcomer, volunteers, {}, WINTER) == close_by
    assert choose_buddy(newcomer, volunteers, {"UD": 1}, WINTER) == unknown_zone
    assert choose_buddy(newcomer, volunteers, {"UD": 1, "UC": 1}, WINTER) == far_away
    loads = {"UD": 1, "UC": 1, "UB": 1}
    assert choose_buddy(newcomer, volunteers, loads, WINTER) == same_company
    # Load comes first: a busier volunteer never wins on fit alone.
    assert choose_buddy(newcomer, [close_by, same_company], {"UD": 2}, WINTER) == same_company
    # Ties break by user id, so every replica picks the same person.
    twins = [Person("UZ", "X", "Europe/Paris"), Person("UY", "Y", "Europe/Rome")]
    assert choose_buddy(newcomer, twins, {}, WINTER) == twins[1]
    assert choose_buddy(newcomer, [Person("UNEW")], {}, WINTER) is None
    assert choose_buddy(newcomer, [], {}, WINTER) is None


def test_activation_counts_closed_windows_and_reports_open_ones() -> None:
    now = datetime(2026, 3, 1, tzinfo=UTC)
    old = now - timedelta(days=30)
    recent = now - timedelta(days=3)
    day = timedelta(days=1)
    figures = activation(
        [
            Journey(old, old + day, None, None),
            Journey(old, None, None, old + 13 * day),
            Journey(old, None, old + 15 * day, None),  # a buddy too late
            Journey(old, None, None, None),
            Journey(recent, None, recent + day, None),
            Journey(recent, None, None, None),
        ],
        now,
    )
    assert (figures.eligible, figures.activated, figures.rate) == (4, 2, 0.5)
    assert (figures.by_intro, figures.by_coffee, figures.by_buddy) == (1, 1, 0)
    assert (figures.in_window, figures.in_window_activated) == (2, 1)
    assert activation([], now).rate is None
