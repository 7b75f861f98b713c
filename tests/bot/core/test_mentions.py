from __future__ import annotations

from datetime import UTC, datetime

from bot.adapters.slack_render import to_mrkdwn
from bot.core.formatting import local_time
from bot.core.mentions import (
    escape_for_discord,
    escape_for_slack,
    member_text,
    mention,
    mentioned_user_ids,
    render,
    strip_markup_for_plain_text,
)

HOSTILE = "hi <!channel> <!here> <!everyone> @everyone @here <@U1> <@&123> <#C1> & co"


def test_member_text_is_escaped_for_slack() -> None:
    rendered = render(f"From {mention('U9')}: {member_text(HOSTILE)}", escape_for_slack)
    assert rendered.startswith("From <@U9>: ")
    body = rendered.removeprefix("From <@U9>: ")
    assert "<" not in body and ">" not in body
    assert "&lt;!channel&gt;" in body and "&amp; co" in body


def test_member_text_is_broken_for_discord() -> None:
    rendered = render(member_text(HOSTILE), escape_for_discord)
    assert "@everyone" not in rendered and "@here" not in rendered
    assert "<@U1>" not in rendered and "<@&123>" not in rendered and "<#C1>" not in rendered


def test_member_cannot_close_the_quote_early() -> None:
    sneaky = "a\ue001 <!channel> \ue000b"
    rendered = render(member_text(sneaky), escape_for_slack)
    assert "<!channel>" not in rendered
    assert "\ue000" not in rendered and "\ue001" not in rendered


def test_mentions_inside_member_text_are_not_the_bots() -> None:
    text = f"{mention('U1')} said {member_text('<@U2>')}"
    assert mentioned_user_ids(text) == ["U1"]


def test_render_rewrites_only_trusted_mentions() -> None:
    text = f"{mention('U1')} {member_text('<@U2>')}"
    assert render(text, lambda s: s, lambda user: f"@{user.lower()}") == "@u1 <@U2>"


def test_local_times_are_tokens_that_plain_text_shows_in_utc() -> None:
    start = datetime(2026, 11, 25, 16, 0, tzinfo=UTC)
    text = f"Starts {local_time(start)}, ends {local_time(start, time_only=True)}"
    assert text == "Starts <t:1795622400:f>, ends <t:1795622400:t>"
    assert strip_markup_for_plain_text(text) == "Starts Wed 25 Nov 2026, 16:00 UTC, ends 16:00 UTC"
    assert "<!date^1795622400^{time}|16:00 UTC>" in to_mrkdwn(text)
