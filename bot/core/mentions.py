"""Mention safety for text the bot re-posts on a member's behalf (DESIGN.md §3).

Member-written text is wrapped in private-use sentinels by `member_text`. Each
adapter calls `render` with its own escaper, so the same neutral message becomes
Slack text with `<`, `>`, `&` escaped, or Discord text whose `@everyone`, `@here`
and `<@…>` sequences are broken, on top of `AllowedMentions.none()`. Sentinels a
member typed themselves are stripped, so nobody can close the quote early.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime

MEMBER_TEXT_START = "\ue000"
MEMBER_TEXT_END = "\ue001"
_SENTINELS = re.compile(f"[{MEMBER_TEXT_START}{MEMBER_TEXT_END}]")
_QUOTED = re.compile(f"{MEMBER_TEXT_START}(.*?){MEMBER_TEXT_END}", re.DOTALL)
_MENTION = re.compile(r"<@([A-Za-z0-9_.\-]+)>")
_ZERO_WIDTH_SPACE = "\u200b"
# `<t:UNIX:f>` (date and time) or `<t:UNIX:t>` (time): a moment each reader sees in
# their own time zone where the platform can show it so (Discord natively, Slack
# as `<!date^…>`); plain text shows it in UTC.
LOCAL_TIME = re.compile(r"<t:(?P<unix>\d{1,12}):(?P<style>[ft])>")


def member_text(text: str) -> str:
    """Mark text written by a member so that no adapter lets it ping anyone."""
    return f"{MEMBER_TEXT_START}{_SENTINELS.sub('', text)}{MEMBER_TEXT_END}"


def mention(user_id: str) -> str:
    """A neutral mention; it pings only if the message lists the user in `mentions`."""
    return f"<@{user_id}>"


def mentioned_user_ids(text: str) -> list[str]:
    """User ids mentioned by the bot's own markup (never inside member text)."""
    return _MENTION.findall(_QUOTED.sub("", text))


def render(
    text: str,
    escape_member_text: Callable[[str], str],
    render_mention: Callable[[str], str] | None = None,
) -> str:
    """Render neutral text: escape member segments, optionally rewrite bot mentions."""
    pieces: list[str] = []
    position = 0
    for quoted in _QUOTED.finditer(text):
        pieces.append(_render_trusted(text[position : quoted.start()], render_mention))
        pieces.append(escape_member_text(quoted.group(1)))
        position = quoted.end()
    pieces.append(_render_trusted(text[position:], render_mention))
    return _SENTINELS.sub("", "".join(pieces))


def _render_trusted(text: str, render_mention: Callable[[str], str] | None) -> str:
    if render_mention is None:
        return text
    return _MENTION.sub(lambda match: render_mention(match.group(1)), text)


def escape_for_slack(text: str) -> str:
    """Slack treats `<…>` as control sequences (`<!channel>`, `<@U1>`): escape them."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def escape_for_discord(text: str) -> str:
    """Break every ping-shaped sequence; AllowedMentions.none() is the second lock."""
    text = re.sub(r"@(everyone|here)", f"@{_ZERO_WIDTH_SPACE}\\1", text)
    return re.sub(r"<([@#])", f"<{_ZERO_WIDTH_SPACE}\\1", text)


def utc_text(unix: int, style: str) -> str:
    """A `LOCAL_TIME` moment in UTC words, for readers whose zone nobody knows."""
    moment = datetime.fromtimestamp(unix, UTC)
    if style == "t":
        return f"{moment:%H:%M} UTC"
    return f"{moment:%a} {moment.day} {moment:%b %Y}, {moment:%H:%M} UTC"


def local_times_in_utc(text: str) -> str:
    return LOCAL_TIME.sub(lambda match: utc_text(int(match["unix"]), match["style"]), text)


def strip_markup_for_plain_text(text: str) -> str:
    """For the console and logs: member segments shown as typed, moments in UTC."""
    return local_times_in_utc(render(text, lambda segment: segment))
