"""Turn the words after `/kindred <command>` into typed, validated arguments.

Text platforms (Slack, console) send words; Discord sends typed options. Both go
through `validate` so a handler sees the same values, and a bad argument gets
the same helpful answer everywhere.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping, Sequence
from typing import Any

from bot.core.registry import CommandSpec, Param

# Mentions as platforms escape them in command text: Slack `<@U1|name>`,
# Discord `<@123>` / `<@!123>`; the console adapter rewrites `@alice` to `<@alice>`.
_USER = re.compile(r"^<@!?([A-Za-z0-9_.\-]+)(?:\|[^>]*)?>$")
_CHANNEL = re.compile(r"^<#([A-Za-z0-9_.\-]+)(?:\|[^>]*)?>$")
_TRUE = {"on", "yes", "true", "1", "enable", "enabled"}
_FALSE = {"off", "no", "false", "0", "disable", "disabled"}


class ArgumentError(ValueError):
    """A user-facing explanation of what is wrong with the arguments."""


def split_words(text: str) -> list[str]:
    # Smart quotes come from phones and Slack's editor; treat them as plain quotes.
    normalised = text.replace("“", '"').replace("”", '"').replace("‘", "'").replace("’", "'")
    # shlex.split, except that only double quotes group words: apostrophes are prose
    # ("What's your take?") and must neither fail nor swallow the text between two.
    lexer = shlex.shlex(normalised, posix=True)
    lexer.whitespace_split = True
    lexer.commenters = ""
    lexer.quotes = '"'
    try:
        return list(lexer)
    except ValueError as error:
        raise ArgumentError(
            'A quote is not closed. Wrap multi-word values in "double quotes".'
        ) from error


def parse_words(spec: CommandSpec, words: Sequence[str]) -> dict[str, Any]:
    """Assign words to parameters: `name=value` or `name:value` by name, others in order."""
    by_name = {param.name: param for param in spec.params}
    raw: dict[str, Any] = {}
    positional = [param for param in spec.params if param.positional]
    index = 0
    for position, word in enumerate(words):
        name, separator, value = _split_named(word)
        if separator and name in by_name:
            if name in raw:
                raise ArgumentError(f"`{name}` is given twice.{_usage_hint(spec)}")
            raw[name] = value
            continue
        while index < len(positional) and positional[index].name in raw:
            index += 1
        if index >= len(positional):
            raise ArgumentError(f"I don't know what to do with `{word}`.{_usage_hint(spec)}")
        param = positional[index]
        if param.kind == "rest":
            raw[param.name] = " ".join(words[position:])
            break
        raw[param.name] = word
        index += 1
    return validate(spec, raw)


def _split_named(word: str) -> tuple[str, str, str]:
    match = re.match(r"^([a-z][a-z_-]*)([=:])(.*)$", word, re.DOTALL)
    if match is None:
        return "", "", word
    return match.group(1).replace("-", "_"), match.group(2), match.group(3)


def validate(spec: CommandSpec, raw: Mapping[str, Any]) -> dict[str, Any]:
    unknown = set(raw) - {param.name for param in spec.params}
    if unknown:
        raise ArgumentError(f"Unknown option `{sorted(unknown)[0]}`.{_usage_hint(spec)}")
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
                f"`{param.name}` must be a whole number, not `{value}`.{hint}"
            ) from None
        if param.min_value is not None and number < param.min_value:
            raise ArgumentError(f"`{param.name}` must be at least {param.min_value}.{hint}")
        if param.max_value is not None and number > param.max_value:
            raise ArgumentError(f"`{param.name}` must be at most {param.max_value}.{hint}")
        return number
    if param.kind == "bool":
        if isinstance(value, bool):
            return value
        text = str(value).lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        raise ArgumentError(f"`{param.name}` must be on or off, not `{value}`.{hint}")
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
            raise ArgumentError(f"`{param.name}` must be one of: {options} (not `{text}`).{hint}")
        return lowered
    if param.max_length is not None and len(text) > param.max_length:
        raise ArgumentError(
            f"`{param.name}` is {len(text)} characters; the limit is {param.max_length}."
        )
    return text


def _usage_hint(spec: CommandSpec) -> str:
    return f"\nUsage: `{spec.usage}`"
