"""Handlers are written once and registered once (DESIGN.md §2).

Each feature module owns a `Handlers` collection; `Registry.merge` joins them and
refuses duplicate command paths or action ids, so two features can never
silently answer the same command or button.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from aiohttp import web

    from bot.core.context import Context, Preparation
    from bot.core.platform import InboundKind, Reply
    from bot.core.runtime import Runtime

Handler = Callable[["Context"], Awaitable["Reply | None"]]
# A command's platform reads (e.g. a channel's members), run before its transaction.
Prepare = Callable[["Preparation"], Awaitable[object]]
# A web route of a feature (e.g. an Atom feed): gets the runtime and the aiohttp request.
WebHandler = Callable[["Runtime", "web.Request"], Awaitable["web.StreamResponse"]]
ParamKind = Literal["word", "rest", "int", "user", "channel", "choice", "bool"]


@dataclass(frozen=True, slots=True)
class Param:
    """One command argument. Text platforms parse it from words (positionally or
    as `name=value` / `name:value`); Discord turns it into a typed option."""

    name: str
    kind: ParamKind = "word"
    help: str = ""
    required: bool = False
    choices: tuple[str, ...] = ()
    min_value: int | None = None
    max_value: int | None = None
    max_length: int | None = None
    positional: bool = True
    # Other words accepted for a `choice` (lower case) → the choice they mean.
    aliases: Mapping[str, str] = field(default_factory=dict)


_DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_MORE_DAYS = {"tuesday": ("tues",), "wednesday": ("weds",), "thursday": ("thur", "thurs")}


def day_aliases(days: Sequence[str]) -> dict[str, str]:
    """`mon`, `monday`, `tues`… → the spelling in `days` (Monday first), so every
    weekday argument accepts the same words whichever spelling a feature stores."""
    return {
        spelling: day
        for name, day in zip(_DAYS, days, strict=True)
        for spelling in (name, name[:3], *_MORE_DAYS.get(name, ()))
    }


@dataclass(frozen=True, slots=True)
class CommandSpec:
    path: tuple[str, ...]
    summary: str
    handler: Handler
    params: tuple[Param, ...] = ()
    admin: bool = False
    # `/kindred curate <url>` on text platforms means `/kindred curate add <url>`.
    group_default: bool = False
    # Runs before the handler's transaction opens; its result is `ctx.prepared`.
    prepare: Prepare | None = None

    @property
    def name(self) -> str:
        return " ".join(self.path)

    @property
    def usage(self) -> str:
        parts = [f"/kindred {self.name}"]
        for param in self.params:
            if not param.positional:
                shown = f"{param.name}=…"
            elif param.kind == "user":
                shown = f"@{param.name}"
            elif param.choices:
                shown = "|".join(param.choices)
            else:
                shown = param.name
            parts.append(f"<{shown}>" if param.required else f"[{shown}]")
        return " ".join(parts)


@dataclass(frozen=True, slots=True)
class ActionSpec:
    """A button (or modal submission) handler, keyed by a stable action id."""

    action_id: str
    handler: Handler
    admin: bool = False


@dataclass(frozen=True, slots=True)
class EventSpec:
    kind: InboundKind
    name: str
    handler: Handler
    # The handler reads the text of the message (written, or reacted to). Discord
    # grants it only with the privileged Message Content intent, so it is asked for
    # only when a registered handler says it needs it: counting messages does not.
    reads_text: bool = False


class DuplicateRegistrationError(ValueError):
    pass


@dataclass
class Handlers:
    """The handlers of one feature module, collected by decorators."""

    feature: str
    commands: list[CommandSpec] = field(default_factory=list)
    actions: list[ActionSpec] = field(default_factory=list)
    events: list[EventSpec] = field(default_factory=list)
    routes: list[tuple[str, str, WebHandler]] = field(default_factory=list)

    def route(self, method: str, path: str) -> Callable[[WebHandler], WebHandler]:
        """Serve `path` on Kindred's HTTP server (KINDRED_HTTP_HOST:KINDRED_HTTP_PORT)."""

        def register(handler: WebHandler) -> WebHandler:
            self.routes.append((method.upper(), path, handler))
            return handler

        return register

    def command(
        self,
        path: str,
        summary: str,
        params: Sequence[Param] = (),
        *,
        admin: bool = False,
        group_default: bool = False,
        prepare: Prepare | None = None,
    ) -> Callable[[Handler], Handler]:
        """Register a command. `prepare` is for platform reads the handler needs:
        it runs before the transaction, so a slow platform holds no database
        connection and delays no other member's answer (DESIGN.md §2)."""

        def register(handler: Handler) -> Handler:
            words = tuple(path.split())
            spec = CommandSpec(
                words, summary, handler, tuple(params), admin, group_default, prepare
            )
            self.commands.append(spec)
            return handler

        return register

    def action(self, action_id: str, *, admin: bool = False) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            self.actions.append(ActionSpec(action_id, handler, admin))
            return handler

        return register

    def event(self, kind: InboundKind, *, reads_text: bool = False) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            name = f"{self.feature}.{handler.__name__}"
            self.events.append(EventSpec(kind, name, handler, reads_text))
            return handler

        return register


class Registry:
    def __init__(self) -> None:
        self.commands: dict[tuple[str, ...], CommandSpec] = {}
        self.actions: dict[str, ActionSpec] = {}
        self.events: dict[str, list[EventSpec]] = {}
        self.routes: dict[tuple[str, str], WebHandler] = {}
        self.features: list[str] = []

    @classmethod
    def merge(cls, collections: Iterable[Handlers]) -> Registry:
        registry = cls()
        for collection in collections:
            registry.add(collection)
        return registry

    def add(self, collection: Handlers) -> None:
        self.features.append(collection.feature)
        for spec in collection.commands:
            if not 1 <= len(spec.path) <= 2:
                # Discord allows `/kindred group subcommand` at most.
                raise DuplicateRegistrationError(f"command '/kindred {spec.name}' is too deep")
            if spec.group_default and len(spec.path) != 2:
                raise DuplicateRegistrationError(f"'{spec.name}' cannot be a group default")
            if spec.path in self.commands:
                raise DuplicateRegistrationError(f"command '/kindred {spec.name}' registered twice")
            if any(path[: len(spec.path)] == spec.path for path in self.commands) or any(
                spec.path[: len(path)] == path for path in self.commands
            ):
                raise DuplicateRegistrationError(
                    f"command '/kindred {spec.name}' overlaps another command's path"
                )
            self.commands[spec.path] = spec
        for action in collection.actions:
            if action.action_id in self.actions:
                raise DuplicateRegistrationError(f"action id '{action.action_id}' registered twice")
            if ":" in action.action_id:
                raise DuplicateRegistrationError(
                    f"action id '{action.action_id}' may not contain ':' (custom id separator)"
                )
            self.actions[action.action_id] = action
        for event in collection.events:
            self.events.setdefault(event.kind, []).append(event)
        for method, path, handler in collection.routes:
            if (method, path) in self.routes:
                raise DuplicateRegistrationError(f"route {method} {path} registered twice")
            self.routes[(method, path)] = handler

    def find_command(self, words: Sequence[str]) -> tuple[CommandSpec | None, int]:
        """The command whose path is the longest prefix of `words`, and its length."""
        for length in range(min(len(words), 2), 0, -1):
            spec = self.commands.get(tuple(word.lower() for word in words[:length]))
            if spec is not None:
                return spec, length
        if len(words) >= 2:
            for spec in self.groups().get(words[0].lower(), []):
                if spec.group_default:
                    return spec, 1
        return None, 0

    def groups(self) -> dict[str, list[CommandSpec]]:
        grouped: dict[str, list[CommandSpec]] = {}
        for spec in self.commands.values():
            grouped.setdefault(spec.path[0], []).append(spec)
        return grouped
