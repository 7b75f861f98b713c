"""Member text cleaned once, where an `Inbound` enters the core (DESIGN.md §3).

Control characters have no place in chat text and break things further down:
PostgreSQL refuses a NUL in a text column, XML (the Atom feed) refuses most C0
characters, and a lone surrogate cannot be encoded for any database. Newline and
tab are text. The mention-safety sentinels are removed too, so a member cannot
fake the end of a quoted segment (bot.core.mentions).
"""

from __future__ import annotations

import dataclasses
import re
from typing import TYPE_CHECKING, Any

from bot.core.mentions import MEMBER_TEXT_END, MEMBER_TEXT_START

if TYPE_CHECKING:
    # Only for the annotation: the domain layer imports this module for its cleaner.
    from bot.core.platform import Inbound

# Unicode's control characters (category Cc: C0, DEL, C1) except tab and newline,
# and the surrogates (Cs), which only a malformed payload can carry.
CONTROL_CHARACTERS = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff" + MEMBER_TEXT_START + MEMBER_TEXT_END + "]"
)


def without_control_characters(text: str, replacement: str = "") -> str:
    """`text` without control characters (newline and tab kept) or sentinels."""
    return CONTROL_CHARACTERS.sub(replacement, text)


def _clean(value: Any) -> Any:
    if isinstance(value, str):
        return without_control_characters(value)
    if isinstance(value, list | tuple):
        return type(value)(_clean(item) for item in value)
    if isinstance(value, dict):
        return {key: _clean(item) for key, item in value.items()}
    return value


def clean_inbound(inbound: Inbound) -> Inbound:
    """The event as handlers see it: its text, options (typed options and form
    values), button value and the member's name cleaned; `raw` stays as received."""
    return dataclasses.replace(
        inbound,
        text=without_control_characters(inbound.text),
        options=_clean(dict(inbound.options)),
        value=without_control_characters(inbound.value),
        user_name=None
        if inbound.user_name is None
        else without_control_characters(inbound.user_name),
    )
