from __future__ import annotations

import pytest

from bot.core.arguments import ArgumentError, parse_words, split_words, validate
from bot.core.mentions import MEMBER_TEXT_END, MEMBER_TEXT_START
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


ASK = CommandSpec(
    ("ama", "ask"),
    "Ask",
    noop,
    (
        Param("question", "rest"),
        Param("anonymous", "bool", positional=False),
        Param("ama", "int", min_value=1, positional=False),
        Param("title", positional=False),
    ),
)


def test_options_after_free_text_are_options() -> None:
    words = split_words("What metrics matter most? anonymous=yes ama:2")
    assert parse_words(ASK, words) == {
        "question": "What metrics matter most?",
        "anonymous": True,
        "ama": 2,
    }
    words = split_words("Why? title=x and why not?")
    assert parse_words(ASK, words) == {"question": "Why? and why not?", "title": "x"}


def test_quoting_keeps_a_literal_equals_sign() -> None:
    words = split_words('Is "ama=2" the same as "anonymous=yes"?')
    assert parse_words(ASK, words) == {"question": "Is ama=2 the same as anonymous=yes?"}
    # A quoted value still belongs to its option; prose with a colon stays prose.
    assert parse_words(ASK, split_words('Update: title="a=b"')) == {
        "question": "Update:",
        "title": "a=b",
    }


def test_integers_without_declared_bounds_fit_every_database() -> None:
    spec = CommandSpec(("curate", "item"), "Item", noop, (Param("item", "int", min_value=1),))
    assert parse_words(spec, ["2147483647"]) == {"item": 2147483647}
    with pytest.raises(ArgumentError, match="at most 2147483647"):
        parse_words(spec, ["1180591620717411303424"])


def test_error_answers_echo_member_text_short_and_marked() -> None:
    spec = CommandSpec(("coffee", "join"), "Join", noop, ())
    with pytest.raises(ArgumentError) as error:
        parse_words(spec, split_words("<!channel>" + "x" * 500))
    assert MEMBER_TEXT_START + "<!channel>" in error.value.markup
    echoed = error.value.markup.split(MEMBER_TEXT_START)[1].split(MEMBER_TEXT_END)[0]
    assert len(echoed) == 200 and echoed.endswith("…")
