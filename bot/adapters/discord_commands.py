"""The `/kindred` application-command group, built from the registry.

One-word paths become subcommands of `/kindred`, two-word paths subcommands of a
nested group (`/kindred coffee join`). Each `Param` becomes a typed option:
members as user options, channels as text-channel options, numbers as integers
with their range, fixed choices as choices (autocomplete beyond Discord's 25),
text with its length limit. The values come back in the neutral form the router
validates for every platform (`<@id>`, `<#id>`, int, bool, str), so a bad value
gets the same answer on Discord as on Slack.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Iterable
from functools import cache
from typing import Any
from zoneinfo import available_timezones

import discord
from discord import app_commands

from bot.core.registry import CommandSpec, Param, Registry

CommandCallback = Callable[[discord.Interaction, CommandSpec, dict[str, Any]], Awaitable[None]]

ROOT_COMMAND = "kindred"
ROOT_DESCRIPTION = "Kindred: virtual coffee, welcomes, AMAs and more for this community"
# Discord's limits for application commands.
MAX_DESCRIPTION = 100
MAX_CHOICES = 25
MAX_CHOICE_VALUE = 100
MAX_STRING_OPTION = 6000

OPTION_TYPES = {
    "word": discord.AppCommandOptionType.string,
    "rest": discord.AppCommandOptionType.string,
    "choice": discord.AppCommandOptionType.string,
    "int": discord.AppCommandOptionType.integer,
    "bool": discord.AppCommandOptionType.boolean,
    "user": discord.AppCommandOptionType.user,
    "channel": discord.AppCommandOptionType.channel,
}


@cache
def _time_zones() -> tuple[str, ...]:
    return tuple(sorted(available_timezones()))


class OptionTransformer(app_commands.Transformer):
    """Declares one `Param` as a typed option and hands its value back neutrally."""

    def __init__(self, param: Param) -> None:
        super().__init__()
        self.param = param

    @property
    def type(self) -> discord.AppCommandOptionType:
        return OPTION_TYPES[self.param.kind]

    @property
    def channel_types(self) -> list[discord.ChannelType]:
        # Programs, digests and AMAs live in text (or announcement) channels.
        if self.param.kind == "channel":
            return [discord.ChannelType.text, discord.ChannelType.news]
        return []

    @property
    def min_value(self) -> int | None:
        return self.param.min_value if self.param.kind == "int" else None

    @property
    def max_value(self) -> int | None:
        if self.param.kind == "int":
            return self.param.max_value
        if self.type is discord.AppCommandOptionType.string and self.param.max_length:
            return min(self.param.max_length, MAX_STRING_OPTION)
        return None

    @property
    def choices(self) -> list[app_commands.Choice[int | float | str]] | None:
        if self.param.kind == "choice" and len(self.param.choices) <= MAX_CHOICES:
            return [app_commands.Choice(name=choice, value=choice) for choice in self.param.choices]
        return None

    @property
    def _error_display_name(self) -> str:
        return self.param.name

    async def transform(self, interaction: discord.Interaction, value: Any, /) -> Any:
        if self.param.kind == "user":
            return f"<@{value.id}>"
        if self.param.kind == "channel":
            return f"<#{value.id}>"
        return value


class SuggestingTransformer(OptionTransformer):
    """A text option whose valid values are known: Discord suggests them as the
    member types (the handler still validates whatever is sent)."""

    def __init__(self, param: Param, suggestions: Callable[[], Iterable[str]]) -> None:
        super().__init__(param)
        self.suggestions = suggestions

    async def autocomplete(
        self, interaction: discord.Interaction, value: int | float | str, /
    ) -> list[app_commands.Choice[int | float | str]]:
        typed = str(value).strip().lower()
        options = [option for option in self.suggestions() if len(option) <= MAX_CHOICE_VALUE]
        starts = [option for option in options if option.lower().startswith(typed)]
        contains = [option for option in options if typed in option.lower()[1:]]
        ranked = list(dict.fromkeys([*starts, *contains]))[:MAX_CHOICES]
        return [app_commands.Choice(name=option, value=option) for option in ranked]


def _transformer(param: Param, registry: Registry) -> OptionTransformer:
    if param.kind == "choice" and len(param.choices) > MAX_CHOICES:
        choices = param.choices
        return SuggestingTransformer(param, lambda: choices)
    if param.kind == "word" and param.name == "timezone":
        return SuggestingTransformer(param, _time_zones)
    if param.kind == "word" and param.name == "feature":
        return SuggestingTransformer(param, lambda: sorted(registry.groups()))
    return OptionTransformer(param)


def _description(text: str, fallback: str) -> str:
    text = " ".join(text.split()) or fallback
    return text if len(text) <= MAX_DESCRIPTION else text[: MAX_DESCRIPTION - 1] + "…"


def _command(
    spec: CommandSpec,
    registry: Registry,
    on_command: CommandCallback,
    parent: app_commands.Group,
) -> app_commands.Command[Any, ..., None]:
    # Python names are positional placeholders (a parameter may be called `from`);
    # `rename` gives each option its real name on Discord.
    placeholders = {f"option_{index}": param for index, param in enumerate(spec.params)}

    async def callback(interaction: discord.Interaction, **options: Any) -> None:
        values = {
            param.name: options[placeholder]
            for placeholder, param in placeholders.items()
            if options.get(placeholder) is not None
        }
        await on_command(interaction, spec, values)

    parameters = [
        inspect.Parameter(
            "interaction", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=discord.Interaction
        )
    ]
    for placeholder, param in placeholders.items():
        parameters.append(
            inspect.Parameter(
                placeholder,
                inspect.Parameter.KEYWORD_ONLY,
                annotation=_transformer(param, registry),
                default=inspect.Parameter.empty if param.required else None,
            )
        )
    callback.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
    if placeholders:
        app_commands.describe(
            **{
                placeholder: _description(param.help, param.name)
                for placeholder, param in placeholders.items()
            }
        )(callback)
        app_commands.rename(
            **{placeholder: param.name for placeholder, param in placeholders.items()}
        )(callback)
    summary = spec.summary + (" (admins)" if spec.admin else "")
    return app_commands.Command(
        name=spec.path[-1],
        description=_description(summary, spec.name),
        callback=callback,
        parent=parent,
    )


def build_command_group(registry: Registry, on_command: CommandCallback) -> app_commands.Group:
    """`/kindred` with every registered command; `on_command` receives each invocation
    with its options by their registered names."""
    root = app_commands.Group(name=ROOT_COMMAND, description=ROOT_DESCRIPTION, guild_only=True)
    groups: dict[str, app_commands.Group] = {}
    for spec in registry.commands.values():
        try:
            parent = root
            if len(spec.path) == 2:
                if spec.path[0] not in groups:
                    groups[spec.path[0]] = app_commands.Group(
                        name=spec.path[0],
                        description=f"{spec.path[0].capitalize()} commands",
                        parent=root,
                    )
                parent = groups[spec.path[0]]
            parent.add_command(_command(spec, registry, on_command, parent))
        except ValueError as error:
            raise ValueError(
                f"/kindred {spec.name} cannot be registered on Discord: {error} "
                "(Discord allows 25 subcommands per group)"
            ) from error
    return root
