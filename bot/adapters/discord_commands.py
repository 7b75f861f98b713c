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
from dataclasses import dataclass
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
# The names, descriptions and choice names and values of one command and all its
# subcommands and options together may not exceed this many characters.
MAX_COMMAND_SIZE = 8000


@dataclass(frozen=True, slots=True)
class Shape:
    """How much of each command's wording fits in `/kindred`: with every feature
    declared, the full wording is over Discord's MAX_COMMAND_SIZE, so the fixed
    choice lists become suggestions as the member types (the router validates
    either way) and descriptions are shortened, options' first, as far as needed.
    `/kindred help` always has the full text."""

    choice_lists: bool
    option_description: int
    command_description: int


SHAPES = (
    Shape(True, MAX_DESCRIPTION, MAX_DESCRIPTION),
    Shape(False, MAX_DESCRIPTION, MAX_DESCRIPTION),
    *(
        Shape(False, option, command)
        for option, command in (
            (60, 100),
            (45, 80),
            (32, 64),
            (28, 48),
            (24, 40),
            (20, 36),
            (16, 30),
            (10, 24),
        )
    ),
)

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
        if self.param.kind == "choice":
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

    @property
    def choices(self) -> list[app_commands.Choice[int | float | str]] | None:
        return None  # Discord takes a choice list or suggestions, never both

    async def autocomplete(
        self, interaction: discord.Interaction, value: int | float | str, /
    ) -> list[app_commands.Choice[int | float | str]]:
        typed = str(value).strip().lower()
        options = [option for option in self.suggestions() if len(option) <= MAX_CHOICE_VALUE]
        starts = [option for option in options if option.lower().startswith(typed)]
        contains = [option for option in options if typed in option.lower()[1:]]
        ranked = list(dict.fromkeys([*starts, *contains]))[:MAX_CHOICES]
        return [app_commands.Choice(name=option, value=option) for option in ranked]


def _listed(param: Param, shape: Shape) -> bool:
    """Whether Discord shows `param`'s choices as a fixed list."""
    return param.kind == "choice" and shape.choice_lists and len(param.choices) <= MAX_CHOICES


def _transformer(param: Param, registry: Registry, shape: Shape) -> OptionTransformer:
    if param.kind == "choice" and not _listed(param, shape):
        choices = param.choices
        return SuggestingTransformer(param, lambda: choices)
    if param.kind == "word" and param.name == "timezone":
        return SuggestingTransformer(param, _time_zones)
    if param.kind == "word" and param.name == "feature":
        return SuggestingTransformer(param, lambda: sorted(registry.groups()))
    return OptionTransformer(param)


def _description(text: str, fallback: str, limit: int = MAX_DESCRIPTION) -> str:
    """`text` on one line, shortened at a word boundary to `limit` characters."""
    text = " ".join(text.split()) or fallback
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    at_space = cut.rfind(" ")
    if at_space >= limit // 2:
        cut = cut[:at_space]
    return cut.rstrip(" ,;:(-") + "…"


def _summary(spec: CommandSpec) -> str:
    return spec.summary + (" (admins)" if spec.admin else "")


def _group_description(name: str) -> str:
    return f"{name.capitalize()} commands"


def command_size(registry: Registry, shape: Shape) -> int:
    """What Discord counts toward MAX_COMMAND_SIZE for `/kindred` built in `shape`."""
    size = len(ROOT_COMMAND) + len(ROOT_DESCRIPTION)
    groups = {spec.path[0] for spec in registry.commands.values() if len(spec.path) == 2}
    size += sum(len(group) + len(_group_description(group)) for group in groups)
    for spec in registry.commands.values():
        size += len(spec.path[-1])
        size += len(_description(_summary(spec), spec.name, shape.command_description))
        for param in spec.params:
            size += len(param.name)
            size += len(_description(param.help, param.name, shape.option_description))
            if _listed(param, shape):
                size += sum(2 * len(choice) for choice in param.choices)
    return size


def fitting_shape(registry: Registry) -> Shape:
    """The first (fullest) shape in which `/kindred` fits Discord's limit."""
    for shape in SHAPES:
        if command_size(registry, shape) <= MAX_COMMAND_SIZE:
            return shape
    smallest = command_size(registry, SHAPES[-1])
    raise ValueError(
        f"/kindred cannot be registered on Discord: its commands need {smallest:,} "
        f"characters even with short descriptions, over Discord's {MAX_COMMAND_SIZE:,}"
    )


def _command(
    spec: CommandSpec,
    registry: Registry,
    on_command: CommandCallback,
    parent: app_commands.Group,
    shape: Shape,
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
                annotation=_transformer(param, registry, shape),
                default=inspect.Parameter.empty if param.required else None,
            )
        )
    callback.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
    if placeholders:
        app_commands.describe(
            **{
                placeholder: _description(param.help, param.name, shape.option_description)
                for placeholder, param in placeholders.items()
            }
        )(callback)
        app_commands.rename(
            **{placeholder: param.name for placeholder, param in placeholders.items()}
        )(callback)
    return app_commands.Command(
        name=spec.path[-1],
        description=_description(_summary(spec), spec.name, shape.command_description),
        callback=callback,
        parent=parent,
    )


def build_command_group(registry: Registry, on_command: CommandCallback) -> app_commands.Group:
    """`/kindred` with every registered command, worded to fit Discord's size limit;
    `on_command` receives each invocation with its options by their registered names."""
    shape = fitting_shape(registry)
    root = app_commands.Group(name=ROOT_COMMAND, description=ROOT_DESCRIPTION, guild_only=True)
    groups: dict[str, app_commands.Group] = {}
    for spec in registry.commands.values():
        try:
            parent = root
            if len(spec.path) == 2:
                if spec.path[0] not in groups:
                    groups[spec.path[0]] = app_commands.Group(
                        name=spec.path[0],
                        description=_group_description(spec.path[0]),
                        parent=root,
                    )
                parent = groups[spec.path[0]]
            parent.add_command(_command(spec, registry, on_command, parent, shape))
        except ValueError as error:
            raise ValueError(
                f"/kindred {spec.name} cannot be registered on Discord: {error} "
                "(Discord allows 25 subcommands per group)"
            ) from error
    return root
