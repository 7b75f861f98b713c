from __future__ import annotations

import pytest

from bot.commands import declared_features
from bot.core.platform import Reply
from bot.core.registry import DuplicateRegistrationError, Handlers, Param, Registry


async def noop(ctx: object) -> Reply | None:
    return None


def test_the_shipped_features_register_without_clashes() -> None:
    features = declared_features()
    registry = Registry.merge(feature.handlers for feature in features)
    assert ("help",) in registry.commands
    assert ("profile", "set") in registry.commands
    assert len(registry.features) == len(features)


def test_duplicate_command_is_refused() -> None:
    first, second = Handlers("a"), Handlers("b")
    first.command("coffee join", "x")(noop)
    second.command("coffee join", "y")(noop)
    with pytest.raises(DuplicateRegistrationError, match="registered twice"):
        Registry.merge([first, second])


def test_duplicate_action_id_is_refused() -> None:
    first, second = Handlers("a"), Handlers("b")
    first.action("coffee.met")(noop)
    second.action("coffee.met")(noop)
    with pytest.raises(DuplicateRegistrationError, match=r"action id 'coffee\.met'"):
        Registry.merge([first, second])


def test_command_that_shadows_a_group_is_refused() -> None:
    handlers = Handlers("a")
    handlers.command("curate", "x")(noop)
    handlers.command("curate top", "y")(noop)
    with pytest.raises(DuplicateRegistrationError, match="overlaps"):
        Registry.merge([handlers])


def test_paths_deeper_than_discord_allows_are_refused() -> None:
    handlers = Handlers("a")
    handlers.command("a b c", "x")(noop)
    with pytest.raises(DuplicateRegistrationError, match="too deep"):
        Registry.merge([handlers])


def test_action_ids_cannot_contain_the_custom_id_separator() -> None:
    handlers = Handlers("a")
    handlers.action("bad:id")(noop)
    with pytest.raises(DuplicateRegistrationError, match="may not contain"):
        Registry.merge([handlers])


def test_duplicate_route_is_refused() -> None:
    first, second = Handlers("a"), Handlers("b")
    first.route("GET", "/x")(noop)  # type: ignore[arg-type]
    second.route("get", "/x")(noop)  # type: ignore[arg-type]
    with pytest.raises(DuplicateRegistrationError, match="route GET /x"):
        Registry.merge([first, second])


def test_find_command_prefers_the_longest_path_and_group_defaults() -> None:
    handlers = Handlers("curate")
    handlers.command("curate add", "Add", [Param("url")], group_default=True)(noop)
    handlers.command("curate top", "Top")(noop)
    registry = Registry.merge([handlers])
    assert registry.find_command(["curate", "top"])[0] is registry.commands[("curate", "top")]
    spec, used = registry.find_command(["curate", "https://x.example"])
    assert spec is registry.commands[("curate", "add")]
    assert used == 1
    assert registry.find_command(["unknown"]) == (None, 0)


def test_usage_shows_positional_named_and_choice_params() -> None:
    handlers = Handlers("x")
    handlers.command(
        "coffee pause",
        "Pause",
        [
            Param("weeks", "int", required=True),
            Param("who", "user"),
            Param("size", "choice", choices=("2", "3")),
            Param("note", positional=False),
        ],
    )(noop)
    spec = Registry.merge([handlers]).commands[("coffee", "pause")]
    assert spec.usage == "/kindred coffee pause <weeks> [@who] [2|3] [note=…]"
