"""Neutral messages as Slack mrkdwn and Block Kit (pure functions, no network)."""

from __future__ import annotations

import json

import pytest

from bot.adapters.slack_render import (
    decode_action_id,
    decode_callback_id,
    encode_action_id,
    home_view,
    mention_renderer,
    message_payload,
    modal_view,
    submitted_values,
    to_mrkdwn,
)
from bot.core.mentions import member_text, mention
from bot.core.platform import Button, Message, Modal, ModalField, PlatformError


def test_neutral_markup_becomes_mrkdwn() -> None:
    text = "**Round 3** is out: [see the groups](https://example.org/r?a=1&b=2) in <#C1|coffee>"
    assert to_mrkdwn(text) == (
        "*Round 3* is out: <https://example.org/r?a=1&amp;b=2|see the groups> in <#C1|coffee>"
    )


def test_member_text_cannot_ping_or_link() -> None:
    written = member_text("<!channel> <!here> <@U123> **hi** [x](https://evil.example) & co")
    rendered = to_mrkdwn(f"{mention('UASKER')} asks: {written}")
    assert rendered == (
        "<@UASKER> asks: &lt;!channel&gt; &lt;!here&gt; &lt;@U123&gt; **hi** "
        "[x](https://evil.example) &amp; co"
    )


def test_mentions_ping_only_when_allowed() -> None:
    render = mention_renderer(("UANA",), {"UBEN": "Ben <B>"})
    text = f"{mention('UANA')} meets {mention('UBEN')} and {mention('UCAL')}"
    assert to_mrkdwn(text, render) == "<@UANA> meets @Ben &lt;B&gt; and @UCAL"


def test_usage_placeholders_are_not_mentions() -> None:
    assert to_mrkdwn("`/kindred coffee block <@member>` or 1 < 2") == (
        "`/kindred coffee block &lt;@member&gt;` or 1 &lt; 2"
    )


def test_long_text_is_split_into_sections_at_line_ends() -> None:
    lines = [f"line {number:04d} " + "x" * 40 for number in range(200)]
    payload = message_payload(Message("\n".join(lines)))
    sections = [block["text"]["text"] for block in payload["blocks"]]
    assert all(len(section) <= 3000 for section in sections)
    assert "\n".join(sections) == "\n".join(lines)
    assert len(payload["text"]) <= 3000


def test_buttons_split_into_blocks_of_25_with_unique_ids() -> None:
    buttons = tuple(Button(f"Option {n}", "poll.vote", str(n)) for n in range(30))
    blocks = message_payload(Message("Vote", buttons))["blocks"]
    actions = [block for block in blocks if block["type"] == "actions"]
    assert [len(block["elements"]) for block in actions] == [25, 5]
    ids = [element["action_id"] for block in actions for element in block["elements"]]
    assert len(set(ids)) == 30
    assert {decode_action_id(action_id) for action_id in ids} == {"poll.vote"}
    assert actions[1]["elements"][-1]["value"] == "29"


def test_oversized_messages_are_refused_not_truncated() -> None:
    with pytest.raises(PlatformError, match="2001 characters"):
        message_payload(Message("x", (Button("Big", "a.b", "v" * 2001),)))
    many = tuple(Button(str(n), "a.b", str(n)) for n in range(25 * 50))
    with pytest.raises(PlatformError, match="blocks"):
        message_payload(Message("x", many))


def test_ids_from_other_apps_are_not_ours() -> None:
    assert decode_action_id(encode_action_id("coffee.met", 3)) == "coffee.met"
    assert decode_action_id("other_app_button") is None
    assert decode_callback_id("kindred:ama.ask") == "ama.ask"
    assert decode_callback_id("someone_else") is None


def test_modal_round_trip() -> None:
    modal = Modal(
        "ama.ask",
        "Ask the guest a question, anonymously if you like",
        (
            ModalField("question", "Your question", multiline=True, max_length=500),
            ModalField("alias", "Name to show", required=False, placeholder="Anonymous"),
        ),
        value="ama-7",
    )
    view = modal_view(modal, {"value": modal.value, "channel": "C1"})
    assert view["callback_id"] == "kindred:ama.ask"
    assert len(view["title"]["text"]) == 24
    assert json.loads(view["private_metadata"]) == {"value": "ama-7", "channel": "C1"}
    question, alias = view["blocks"]
    assert (question["optional"], question["element"]["max_length"]) == (False, 500)
    assert (alias["optional"], alias["element"]["placeholder"]["text"]) == (True, "Anonymous")
    state = {"values": {"question": {"question": {"value": "Why?"}}, "alias": {"alias": {}}}}
    assert submitted_values({**view, "state": state}) == {"question": "Why?", "alias": ""}
    with pytest.raises(PlatformError, match="too much data"):
        modal_view(modal, {"value": "v" * 3000})


def test_home_view_puts_the_answer_above_the_sections() -> None:
    view = home_view(Message("Saved."), Message("**Coffee**: next round Monday"))
    assert view["type"] == "home"
    kinds = [block["type"] for block in view["blocks"]]
    assert kinds == ["header", "section", "divider", "section"]
    assert view["blocks"][3]["text"]["text"] == "*Coffee*: next round Monday"
    empty = home_view(None, None)
    assert "/kindred help" in empty["blocks"][1]["text"]["text"]


def test_bold_around_member_text_becomes_slack_bold() -> None:
    from bot.core.mentions import member_text

    text = f"**Welcome, {member_text('<!channel> Nia')}!** and **{member_text('x')}**"
    assert to_mrkdwn(text) == "*Welcome, &lt;!channel&gt; Nia!* and *x*"
