"""`/kindred` on Discord fits Discord's size limit for one command, however many
features are declared, keeping as much of the wording as fits."""

from __future__ import annotations

from typing import Any

import discord
import pytest
from discord import app_commands

from bot.adapters.discord_commands import (
    MAX_COMMAND_SIZE,
    SHAPES,
    build_command_group,
    command_size,
    fitting_shape,
)
from bot.commands import coffee, declared_features
from bot.core.context import Context
from bot.core.platform import Reply
from bot.core.registry import Handlers, Param, Registry
from tests.fakes.discord_server import command_size as size_discord_counts


async def ignore(*_: Any) -> None:
    return None


def synced(registry: Registry) -> dict[str, Any]:
    """The `/kindred` payload discord.py sends when it syncs the command tree."""
    tree = app_commands.CommandTree(discord.Client(intents=discord.Intents.none()))
    return build_command_group(registry, ignore).to_dict(tree)


def test_every_declared_feature_fits_in_one_command() -> None:
    registry = Registry.merge(feature.handlers for feature in declared_features())
    payload = synced(registry)
    assert size_discord_counts(payload) <= MAX_COMMAND_SIZE
    assert size_discord_counts(payload) == command_size(registry, fitting_shape(registry))
    assert {option["name"] for option in payload["options"]} >= {"coffee", "help"}


def test_a_small_registry_keeps_its_full_wording_and_choice_lists() -> None:
    registry = Registry.merge([coffee.feature.handlers])
    assert fitting_shape(registry) == SHAPES[0]
    payload = synced(registry)
    assert size_discord_counts(payload) == command_size(registry, SHAPES[0])
    (group,) = payload["options"]
    setup = next(sub for sub in group["options"] if sub["name"] == "setup")
    cadence = next(option for option in setup["options"] if option["name"] == "cadence")
    assert [choice["value"] for choice in cadence["choices"]] == ["weekly", "biweekly", "monthly"]


def wordy_registry(commands: int) -> Registry:
    handlers = Handlers("wordy")

    async def handler(ctx: Context) -> Reply:
        return Reply.text("ok")

    for number in range(commands):
        group = f"group{number // 20}"
        params = [
            Param(f"option{index}", "choice", "A long explanation " * 6, choices=("one", "two"))
            for index in range(4)
        ]
        handlers.command(f"{group} command{number}", "Does a thing, explained " * 5, params)(
            handler
        )
    return Registry.merge([handlers])


def test_a_big_registry_is_shortened_until_it_fits() -> None:
    registry = wordy_registry(60)
    shape = fitting_shape(registry)
    assert shape != SHAPES[0] and not shape.choice_lists
    payload = synced(registry)
    assert size_discord_counts(payload) == command_size(registry, shape) <= MAX_COMMAND_SIZE
    option = payload["options"][0]["options"][0]["options"][0]
    assert "choices" not in option and option["autocomplete"] is True
    # Shortened at a word boundary, and marked as shortened.
    assert option["description"].endswith("…") and " explanation…" not in option["description"]


def test_a_registry_that_cannot_fit_is_refused_with_its_size() -> None:
    with pytest.raises(ValueError, match=r"need [\d,]+ characters .* over Discord's 8,000"):
        build_command_group(wordy_registry(400), ignore)
