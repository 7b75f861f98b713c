from __future__ import annotations

from bot.core.mentions import (
    escape_for_discord,
    escape_for_slack,
    member_text,
    mention,
    mentioned_user_ids,
    render,
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
