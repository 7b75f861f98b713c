"""Turn the words after `/kindred <command>` into typed, validated arguments.

Text platforms (Slack, console) send words; Discord sends typed options. Both go
through `validate` so a handler sees the same values, and a bad argument gets
the same helpful answer everywhere.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from bot.core.mentions import member_text, strip_markup_for_plain_text
from bot.core.registry import CommandSpec, Param

# Mentions as platforms escape them in command text: Slack `<@U1|name>`,
# Discord `<@123>` / `<@!123>`; the console adapter rewrites `@alice` to `<@alice>`.
_USER = re.compile(r"^<@!?([A-Za-z0-9_.\-]+)(?:\|[^>]*)?>$")
_CHANNEL = re.compile(r"^<#([A-Za-z0-9_.\-]+)(?:\|[^>]*)?>$")
_TRUE = {"on", "yes", "true", "1", "enable", "enabled"}
_FALSE = {"off", "no", "false", "0", "disable", "disabled"}
# Integer options end up in INTEGER columns, 32-bit on PostgreSQL (64 on SQLite);
# a parameter without its own bounds is held to that range so a huge number gets
# an answer instead of a database overflow.
DEFAULT_MIN_INT = -(2**31)
DEFAULT_MAX_INT = 2**31 - 1
# How much of a member's input an error answer repeats.
ECHO_LIMIT = 200


class ArgumentError(ValueError):
    """A user-facing explanation of what is wrong with the arguments.

    `markup` is the answer in neutral markup, the member's own words in it marked
    by `echo`; `str()` is the same text as typed, for logs."""

    def __init__(self, markup: str) -> None:
        super().__init__(markup)
        self.markup = markup

    def __str__(self) -> str:
        return strip_markup_for_plain_text(self.markup)


class Word(str):
    """One word of a command line, quotes removed. `option` is `(name, separator,
    value)` when the word was typed as `name=value` / `name:value` with the name
    outside quotes: `"a=b"` stays a plain word that happens to contain `=`."""

    option: tuple[str, str, str] | None

    def __new__(cls, text: str, option: tuple[str, str, str] | None = None) -> Word:
        word = super().__new__(cls, text)
        word.option = option
        return word


_OPTION_NAME = re.compile(r"^([A-Za-z][A-Za-z_-]*)([=:])")


def split_words(text: str) -> list[Word]:
    """Words separated by whitespace; only double quotes group words, because
    apostrophes are prose ("What's your take?") and must neither fail nor swallow
    the text between two. No backslash escapes: members paste paths and regexes."""
    # Smart quotes come from phones and Slack's editor; treat them as plain quotes.
    normalised = text.replace("“", '"').replace("”", '"').replace("‘", "'").replace("’", "'")
    words: list[Word] = []
    raw: list[str] = []
    value: list[str] = []
    quoted = False
    in_word = False

    def finish() -> None:
        typed = "".join(raw)
        named = _OPTION_NAME.match(typed)
        option = None
        if named is not None:
            name, separator = named.group(1), named.group(2)
            option = (name.lower().replace("-", "_"), separator, "".join(value)[len(name) + 1 :])
        words.append(Word("".join(value), option))

    for char in normalised:
        if char == '"':
            quoted = not quoted
            in_word = True
            raw.append(char)
        elif char.isspace() and not quoted:
            if in_word:
                finish()
            raw, value, in_word = [], [], False
        else:
            raw.append(char)
            value.append(char)
            in_word = True
    if quoted:
        raise ArgumentError('A quote is not closed. Wrap multi-word values in "double quotes".')
    if in_word:
        finish()
    return words


def parse_words(spec: CommandSpec, words: Sequence[str]) -> dict[str, Any]:
    """Assign words to parameters: `name=value` or `name:value` by name wherever it
    stands (also after free text: `ama ask Why? anonymous=yes`), the others in order;
    a `rest` parameter takes the remaining words."""
    by_name = {param.name: param for param in spec.params}
    raw: dict[str, Any] = {}
    loose: list[str] = []
    for word in words:
        option = _option(word)
        if option is not None and option[0] in by_name:
            name, _, value = option
            if name in raw:
                raise ArgumentError(f"`{name}` is given twice.{_usage_hint(spec)}")
            raw[name] = value
        else:
            loose.append(word)
    positional = [param for param in spec.params if param.positional and param.name not in raw]
    for position, word in enumerate(loose):
        if position >= len(positional):
            raise ArgumentError(f"I don't know what to do with `{echo(word)}`.{_usage_hint(spec)}")
        param = positional[position]
        if param.kind == "rest":
            raw[param.name] = " ".join(loose[position:])
            break
        raw[param.name] = word
    return validate(spec, raw)


def _option(word: str) -> tuple[str, str, str] | None:
    if isinstance(word, Word):
        option = word.option
    else:
        named = _OPTION_NAME.match(word)
        option = None
        if named is not None:
            name = named.group(1)
            option = (name.lower().replace("-", "_"), named.group(2), word[len(name) + 1 :])
    # "Update: we shipped it" is prose; `name:value` needs a value, `name=` is explicit.
    if option is not None and option[1] == ":" and not option[2]:
        return None
    return option


def echo(text: object) -> str:
    """A member's input repeated in an error answer: at most ECHO_LIMIT characters,
    marked as member text so no adapter lets it ping or format anything."""
    shown = str(text)
    if len(shown) > ECHO_LIMIT:
        shown = shown[: ECHO_LIMIT - 1] + "…"
    return member_text(shown)


def validate(spec: CommandSpec, raw: Mapping[str, Any]) -> dict[str, Any]:
    unknown = set(raw) - {param.name for param in spec.params}
    if unknown:
        raise ArgumentError(f"Unknown option `{echo(sorted(unknown)[0])}`.{_usage_hint(spec)}")
    values: dict[str, Any] = {}
    for param in spec.params:
        value = raw.get(param.name)
        if value is None or (isinstance(value, str) and value.strip() == ""):
            if param.required:
                raise ArgumentError(f"`{param.name}` is missing.{_usage_hint(spec)}")
            continue
        values[param.name] = _convert(param, value, spec)
    return values


def _convert(param: Param, value: Any, spec: CommandSpec) -> Any:
    hint = _usage_hint(spec)
    if param.kind == "int":
        try:
            number = int(value)
        except (TypeError, ValueError):
            raise ArgumentError(
                f"`{param.name}` must be a whole number, not `{echo(value)}`.{hint}"
            ) from None
        low = DEFAULT_MIN_INT if param.min_value is None else param.min_value
        high = DEFAULT_MAX_INT if param.max_value is None else param.max_value
        if number < low:
            raise ArgumentError(f"`{param.name}` must be at least {low}.{hint}")
        if number > high:
            raise ArgumentError(f"`{param.name}` must be at most {high}.{hint}")
        return number
    if param.kind == "bool":
        if isinstance(value, bool):
            return value
        text = str(value).lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        raise ArgumentError(f"`{param.name}` must be on or off, not `{echo(value)}`.{hint}")
    text = str(value).strip()
    if param.kind == "user":
        match = _USER.match(text)
        if match is None:
            raise ArgumentError(f"`{param.name}` must mention a member, like @ana.{hint}")
        return match.group(1)
    if param.kind == "channel":
        match = _CHANNEL.match(text)
        if match is None:
            raise ArgumentError(f"`{param.name}` must be a channel, like #general.{hint}")
        return match.group(1)
    if param.kind == "choice":
        lowered = param.aliases.get(text.lower(), text.lower())
        if lowered not in param.choices:
            options = ", ".join(param.choices)
            raise ArgumentError(
                f"`{param.name}` must be one of: {options} (not `{echo(text)}`).{hint}"
            )
        return lowered
    if param.max_length is not None and len(text) > param.max_length:
        raise ArgumentError(
            f"`{param.name}` is {len(text)} characters; the limit is {param.max_length}."
        )
    return text


def _usage_hint(spec: CommandSpec) -> str:
    return f"\nUsage: `{spec.usage}`"
