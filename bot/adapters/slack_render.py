"""Neutral messages, modals and home sections rendered as Slack mrkdwn and Block Kit.

Everything here is pure: no network, no SDK calls. Member-written text is escaped
(`&`, `<`, `>`) so it can never become `<!channel>`, `<!here>` or a user ping;
the bot's own mentions ping only when the message allows them, otherwise they are
shown as a plain `@name`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from typing import Any

from bot.core.mentions import (
    MEMBER_TEXT_END,
    MEMBER_TEXT_START,
    escape_for_slack,
    mentioned_user_ids,
    utc_text,
)
from bot.core.platform import Button, ButtonStyle, Message, Modal, PlatformError

# Block Kit limits (https://docs.slack.dev/reference/block-kit/blocks).
SECTION_TEXT_LIMIT = 3000
MESSAGE_BLOCK_LIMIT = 50
VIEW_BLOCK_LIMIT = 100
BUTTONS_PER_ACTIONS_BLOCK = 25
BUTTON_LABEL_LIMIT = 75
BUTTON_VALUE_LIMIT = 2000
VIEW_TITLE_LIMIT = 24
PRIVATE_METADATA_LIMIT = 3000
INPUT_MAX_LENGTH = 3000
# The top-level `text` of a message with blocks only feeds notifications and
# screen readers; Slack truncates very long values anyway.
FALLBACK_TEXT_LIMIT = 3000

# Kindred's buttons and modals carry this prefix so one listener catches them all.
ID_PREFIX = "kindred"

_MEMBER_SEGMENT = re.compile(f"{MEMBER_TEXT_START}(.*?){MEMBER_TEXT_END}", re.DOTALL)
_SENTINELS = re.compile(f"[{MEMBER_TEXT_START}{MEMBER_TEXT_END}]")
_BOLD = re.compile(r"\*\*(.+?)\*\*", re.DOTALL)
# Slack user ids (U…, W… on Enterprise Grid); `<@member>` in a usage line is text.
_SLACK_USER_ID = re.compile(r"^[UW][A-Z0-9]{2,}$")
# Sequences the bot's own markup may contain; everything else is escaped.
_TRUSTED_TOKEN = re.compile(
    r"<@(?P<user>[A-Za-z0-9_.\-]+)>"
    r"|(?P<control><[#!][A-Za-z0-9^_.\-]+(?:\|[^<>]*)?>)"
    r"|\[(?P<label>[^\]\n]+)\]\((?P<url>(?:https?://|mailto:)[^)\s]+)\)"
    r"|<t:(?P<unix>\d{1,12}):(?P<style>[ft])>"
)
# Slack shows `<!date^…>` in each reader's own time zone; the text after `|` is for
# clients that cannot.
_SLACK_DATE_FORMATS = {"f": "{date_short_pretty} {time}", "t": "{time}"}

MentionRenderer = Callable[[str], str]


def ping(user_id: str) -> str:
    return f"<@{user_id}>"


def mention_renderer(allowed: tuple[str, ...], names: Mapping[str, str]) -> MentionRenderer:
    """Mentions of `allowed` users ping; the others show the person's name inertly."""

    def render(user_id: str) -> str:
        if user_id in allowed:
            return ping(user_id)
        return "@" + escape_for_slack(names.get(user_id, user_id))

    return render


def mentioned_slack_users(text: str) -> set[str]:
    """Slack users the bot's own markup in `text` mentions."""
    return {user_id for user_id in mentioned_user_ids(text) if _SLACK_USER_ID.match(user_id)}


def to_mrkdwn(text: str, render_mention: MentionRenderer = ping) -> str:
    """Neutral markup (`**bold**`, `[label](url)`, `<@U1>`) as Slack mrkdwn."""
    text = _bold_outside_member_text(text)
    pieces: list[str] = []
    position = 0
    for segment in _MEMBER_SEGMENT.finditer(text):
        pieces.append(_trusted_to_mrkdwn(text[position : segment.start()], render_mention))
        pieces.append(escape_for_slack(segment.group(1)))
        position = segment.end()
    pieces.append(_trusted_to_mrkdwn(text[position:], render_mention))
    return _SENTINELS.sub("", "".join(pieces))


def _bold_outside_member_text(text: str) -> str:
    """`**…**` → `*…*` where both markers are the bot's: a template's
    `**{{ name }}**` wraps member text (so the markers sit in different trusted
    pieces), while `**` that a member typed stays as typed."""
    member_spans = [match.span() for match in _MEMBER_SEGMENT.finditer(text)]

    def in_member_text(position: int) -> bool:
        return any(start <= position < end for start, end in member_spans)

    def convert(match: re.Match[str]) -> str:
        if in_member_text(match.start()) or in_member_text(match.end() - 1):
            return match.group()
        return f"*{match.group(1)}*"

    return _BOLD.sub(convert, text)


def _trusted_to_mrkdwn(text: str, render_mention: MentionRenderer) -> str:
    pieces: list[str] = []
    position = 0
    for token in _TRUSTED_TOKEN.finditer(text):
        pieces.append(escape_for_slack(text[position : token.start()]))
        user_id = token.group("user")
        if user_id:
            is_user = _SLACK_USER_ID.match(user_id)
            pieces.append(render_mention(user_id) if is_user else escape_for_slack(token.group()))
        elif token.group("control"):
            pieces.append(token.group("control"))
        elif token.group("unix"):
            unix, style = int(token.group("unix")), token.group("style")
            fallback = escape_for_slack(utc_text(unix, style))
            pieces.append(f"<!date^{unix}^{_SLACK_DATE_FORMATS[style]}|{fallback}>")
        else:
            url = escape_for_slack(token.group("url")).replace("|", "%7C")
            pieces.append(f"<{url}|{escape_for_slack(token.group('label'))}>")
        position = token.end()
    pieces.append(escape_for_slack(text[position:]))
    return "".join(pieces)


def encode_action_id(action_id: str, position: int) -> str:
    """Slack wants action ids unique within a message; the position makes them so."""
    return f"{ID_PREFIX}:{action_id}:{position}"


def decode_action_id(slack_action_id: str) -> str | None:
    prefix, _, rest = slack_action_id.partition(":")
    if prefix != ID_PREFIX or not rest:
        return None
    return rest.rsplit(":", 1)[0]


def encode_callback_id(callback_id: str) -> str:
    return f"{ID_PREFIX}:{callback_id}"


def decode_callback_id(slack_callback_id: str) -> str | None:
    prefix, _, rest = slack_callback_id.partition(":")
    return rest if prefix == ID_PREFIX and rest else None


def plain_text(text: str, limit: int) -> dict[str, Any]:
    return {"type": "plain_text", "text": _shorten(text, limit), "emoji": True}


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def text_sections(mrkdwn: str) -> list[dict[str, Any]]:
    """Section blocks of at most 3,000 characters, split at line ends when possible."""
    blocks = []
    for chunk in _chunks(mrkdwn.strip(), SECTION_TEXT_LIMIT):
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": chunk}})
    return blocks


def _chunks(text: str, limit: int) -> list[str]:
    chunks: list[str] = []
    while len(text) > limit:
        cut = text.rfind("\n", 0, limit)
        if cut <= 0:
            cut = limit
        chunks.append(text[:cut])
        text = text[cut:].lstrip("\n")
    if text:
        chunks.append(text)
    return chunks


def button_blocks(buttons: tuple[Button, ...]) -> list[dict[str, Any]]:
    blocks = []
    for start in range(0, len(buttons), BUTTONS_PER_ACTIONS_BLOCK):
        elements = []
        for position, button in enumerate(
            buttons[start : start + BUTTONS_PER_ACTIONS_BLOCK], start=start
        ):
            if len(button.value) > BUTTON_VALUE_LIMIT:
                raise PlatformError(
                    f"button '{button.action_id}' carries {len(button.value)} characters; "
                    f"Slack allows {BUTTON_VALUE_LIMIT}"
                )
            element: dict[str, Any] = {
                "type": "button",
                "text": plain_text(button.label, BUTTON_LABEL_LIMIT),
                "action_id": encode_action_id(button.action_id, position),
                "value": button.value,
            }
            if button.style is not ButtonStyle.DEFAULT:
                element["style"] = button.style.value
            elements.append(element)
        blocks.append({"type": "actions", "elements": elements})
    return blocks


def message_blocks(
    message: Message, render_mention: MentionRenderer = ping
) -> list[dict[str, Any]]:
    return text_sections(to_mrkdwn(message.text, render_mention)) + button_blocks(message.buttons)


def message_payload(message: Message, render_mention: MentionRenderer = ping) -> dict[str, Any]:
    """`text` + `blocks` for chat.postMessage, chat.update and response_url posts."""
    mrkdwn = to_mrkdwn(message.text, render_mention)
    blocks = text_sections(mrkdwn) + button_blocks(message.buttons)
    if len(blocks) > MESSAGE_BLOCK_LIMIT:
        raise PlatformError(
            f"message needs {len(blocks)} blocks; Slack allows {MESSAGE_BLOCK_LIMIT}"
        )
    return {"text": _shorten(mrkdwn, FALLBACK_TEXT_LIMIT) or " ", "blocks": blocks}


def home_view(notice: Message | None, sections: Message | None) -> dict[str, Any]:
    """The App Home tab: an optional notice (the answer to a click made there), then
    every feature's section. Views never notify, so mentions render as links."""
    blocks: list[dict[str, Any]] = [{"type": "header", "text": plain_text("Kindred", 150)}]
    if notice is not None:
        blocks += message_blocks(notice)
        blocks.append({"type": "divider"})
    if sections is not None:
        blocks += message_blocks(sections)
    else:
        blocks += text_sections("Nothing here yet. Type `/kindred help` in any channel.")
    if len(blocks) > VIEW_BLOCK_LIMIT:
        blocks = blocks[: VIEW_BLOCK_LIMIT - 1]
        blocks += text_sections("_More is available with_ `/kindred help`.")
    return {"type": "home", "blocks": blocks}


def modal_view(modal: Modal, metadata: Mapping[str, Any]) -> dict[str, Any]:
    """A Block Kit modal; `metadata` (modal value, origin) rides in private_metadata."""
    private_metadata = json.dumps(metadata, separators=(",", ":"))
    if len(private_metadata) > PRIVATE_METADATA_LIMIT:
        raise PlatformError(
            f"modal '{modal.callback_id}' carries too much data for Slack "
            f"({len(private_metadata)} of {PRIVATE_METADATA_LIMIT} characters)"
        )
    blocks = []
    for field in modal.fields:
        element: dict[str, Any] = {
            "type": "plain_text_input",
            "action_id": field.field_id,
            "multiline": field.multiline,
            "max_length": min(field.max_length or INPUT_MAX_LENGTH, INPUT_MAX_LENGTH),
        }
        if field.placeholder:
            element["placeholder"] = plain_text(field.placeholder, 150)
        blocks.append(
            {
                "type": "input",
                "block_id": field.field_id,
                "label": plain_text(field.label, 2000),
                "optional": not field.required,
                "element": element,
            }
        )
    return {
        "type": "modal",
        "callback_id": encode_callback_id(modal.callback_id),
        "title": plain_text(modal.title, VIEW_TITLE_LIMIT),
        "submit": plain_text(modal.submit_label, VIEW_TITLE_LIMIT),
        "close": plain_text("Cancel", VIEW_TITLE_LIMIT),
        "private_metadata": private_metadata,
        "blocks": blocks,
    }


def submitted_values(view: Mapping[str, Any]) -> dict[str, str]:
    """Field id → text typed into a submitted modal (empty for skipped optional fields)."""
    values: dict[str, str] = {}
    for block in view.get("state", {}).get("values", {}).values():
        for field_id, state in block.items():
            values[field_id] = state.get("value") or ""
    return values
