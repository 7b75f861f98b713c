from __future__ import annotations

import pytest

from bot.core.arguments import ArgumentError, parse_words, split_words, validate
from bot.core.platform import Reply
from bot.core.registry import CommandSpec, Param


async def noop(ctx: object) -> Reply | None:
    return None


SPEC = CommandSpec(
    ("ama", "schedule"),
    "Schedule",
    noop,
    (
        Param("host", "user", required=True),
        Param("weeks", "int", min_value=1, max_value=12),
        Param("size", "choice", choices=("2", "3")),
        Param("moderated", "bool", positional=False),
        Param("title", positional=False, max_length=20),
        Param("channel", "channel", positional=False),
        Param("question", "rest"),
    ),
)


def test_positional_named_and_rest_arguments() -> None:
    words = split_words(
        'title:"Scaling support" <@U1|ana> 3 2 moderated=on channel=<#C9|ama> why is NPS hard?'
    )
    assert parse_words(SPEC, words) == {
        "host": "U1",
        "weeks": 3,
        "size": "2",
        "moderated": True,
        "title": "Scaling support",
        "channel": "C9",
        "question": "why is NPS hard?",
    }


def test_discord_style_mentions_and_smart_quotes() -> None:
    words = split_words("<@!123456> title=“Big day”")
    assert parse_words(SPEC, words) == {"host": "123456", "title": "Big day"}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "`host` is missing"),
        ("bob", "must mention a member"),
        ("<@U1> 0", "at least 1"),
        ("<@U1> 13", "at most 12"),
        ("<@U1> many", "whole number"),
        ("<@U1> 2 5", "must be one of: 2, 3"),
        ("<@U1> moderated=maybe", "on or off"),
        ('<@U1> title="way too long for the limit here"', "the limit is 20"),
        ('<@U1> title="unclosed', "quote is not closed"),
        ("<@U1> title=a title=b", "given twice"),
        ("<@U1> channel=general", "must be a channel"),
    ],
)
def test_bad_arguments_get_a_helpful_message(text: str, message: str) -> None:
    with pytest.raises(ArgumentError, match=message) as error:
        parse_words(SPEC, split_words(text))
    if "quote" not in message and "limit" not in message:
        assert "Usage: `/kindred ama schedule" in str(error.value)


def test_extra_words_are_refused_when_no_rest_param() -> None:
    spec = CommandSpec(("coffee", "join"), "Join", noop, ())
    with pytest.raises(ArgumentError, match="don't know what to do with `now`"):
        parse_words(spec, ["now"])


def test_typed_options_are_validated_like_words() -> None:
    assert validate(SPEC, {"host": "<@42>", "weeks": 4, "moderated": False}) == {
        "host": "42",
        "weeks": 4,
        "moderated": False,
    }
    with pytest.raises(ArgumentError, match="Unknown option `colour`"):
        validate(SPEC, {"host": "<@42>", "colour": "red"})
