"""Handlers are written once and registered once (DESIGN.md §2).

Each feature module owns a `Handlers` collection; `Registry.merge` joins them and
refuses duplicate command paths or action ids, so two features can never
silently answer the same command or button.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from aiohttp import web

    from bot.core.app import Kindred
    from bot.core.config_files import FileCheck
    from bot.core.context import Context
    from bot.core.platform import InboundKind, Reply

Handler = Callable[["Context"], Awaitable["Reply | None"]]
StartupHook = Callable[["Kindred"], Awaitable[None]]
# A web route of a feature (e.g. an Atom feed): gets the core and the aiohttp request.
WebHandler = Callable[["Kindred", "web.Request"], Awaitable["web.StreamResponse"]]
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


@dataclass(frozen=True, slots=True)
class CommandSpec:
    path: tuple[str, ...]
    summary: str
    handler: Handler
    params: tuple[Param, ...] = ()
    admin: bool = False
    # `/kindred curate <url>` on text platforms means `/kindred curate add <url>`.
    group_default: bool = False

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


class DuplicateRegistrationError(ValueError):
    pass


@dataclass
class Handlers:
    """The handlers of one feature module, collected by decorators."""

    feature: str
    commands: list[CommandSpec] = field(default_factory=list)
    actions: list[ActionSpec] = field(default_factory=list)
    events: list[EventSpec] = field(default_factory=list)
    startup: list[StartupHook] = field(default_factory=list)
    routes: list[tuple[str, str, WebHandler]] = field(default_factory=list)
    config_files: list[tuple[str, FileCheck]] = field(default_factory=list)

    def config_file(self, name: str) -> Callable[[FileCheck], FileCheck]:
        """Check `config/<name>` at start and in `kindred check` (bot/core/config_files)."""

        def register(check: FileCheck) -> FileCheck:
            self.config_files.append((name, check))
            return check

        return register

    def route(self, method: str, path: str) -> Callable[[WebHandler], WebHandler]:
        """Serve `path` on Kindred's HTTP server (KINDRED_HTTP_HOST:KINDRED_HTTP_PORT)."""

        def register(handler: WebHandler) -> WebHandler:
            self.routes.append((method.upper(), path, handler))
            return handler

        return register

    def on_start(self, hook: StartupHook) -> StartupHook:
        """Run once the app is up (features schedule their jobs here)."""
        self.startup.append(hook)
        return hook

    def command(
        self,
        path: str,
        summary: str,
        params: Sequence[Param] = (),
        *,
        admin: bool = False,
        group_default: bool = False,
    ) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            words = tuple(path.split())
            spec = CommandSpec(words, summary, handler, tuple(params), admin, group_default)
            self.commands.append(spec)
            return handler

        return register

    def action(self, action_id: str, *, admin: bool = False) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            self.actions.append(ActionSpec(action_id, handler, admin))
            return handler

        return register

    def event(self, kind: InboundKind) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            self.events.append(EventSpec(kind, f"{self.feature}.{handler.__name__}", handler))
            return handler

        return register


class Registry:
    def __init__(self) -> None:
        self.commands: dict[tuple[str, ...], CommandSpec] = {}
        self.actions: dict[str, ActionSpec] = {}
        self.events: dict[str, list[EventSpec]] = {}
        self.startup: list[StartupHook] = []
        self.routes: dict[tuple[str, str], WebHandler] = {}
        self.features: list[str] = []
        self.config_files: dict[str, list[FileCheck]] = {}

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
        self.startup.extend(collection.startup)
        for name, check in collection.config_files:
            self.config_files.setdefault(name, []).append(check)
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
