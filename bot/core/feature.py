"""A feature is declared once, as one `Feature` value in its commands module
(DESIGN.md §2). The registry, the schema check, the scheduler's ticks,
`kindred check`, help and the health report's figures are all derived from the
declared features; nothing is registered by hand in a second place."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from types import ModuleType

from bot.core.config_files import FileCheck, check_config_dir
from bot.core.figures import ActionsHook, ForgetFeedbackHook, MetricsHook, StoredAboutHook
from bot.core.registry import Handlers
from bot.core.runtime import Runtime
from bot.core.settings import Settings

# What a tick returns (e.g. how much it did) is for its tests; the scheduler ignores it.
TickRun = Callable[[Runtime, datetime], Awaitable[object]]
# The earliest moment after `now` at which the tick has something to do (None:
# nothing scheduled), so a simulated clock can jump straight there.
NextDue = Callable[[Runtime, datetime], Awaitable[datetime | None]]


@dataclass(frozen=True, slots=True)
class Tick:
    """One periodic tick of a feature, run on every replica: it finds what is due
    and claims each occurrence (`Runtime.claims`) before doing it."""

    name: str
    seconds: float
    run: TickRun
    next_due: NextDue | None = None


@dataclass(frozen=True, slots=True)
class Feature:
    summary: str
    handlers: Handlers
    # Commands the help overview shows for this feature (its most used ones).
    highlights: tuple[str, ...] = ()
    tables: ModuleType | None = None
    ticks: tuple[Tick, ...] = ()
    # The config files the feature reads (`config/<name>`), each with the check of
    # its content run at start and by `kindred check` (bot/core/config_files.py).
    config_files: Mapping[str, FileCheck] = field(default_factory=dict)
    metrics: MetricsHook | None = None
    # What members did through the feature in a period (MemberAction).
    actions: ActionsHook | None = None
    # What it stores about one member, and erasing their feedback (`/kindred privacy`).
    stored_about: StoredAboutHook | None = None
    forget_feedback: ForgetFeedbackHook | None = None

    @property
    def name(self) -> str:
        return self.handlers.feature


def config_problems(features: Sequence[Feature], settings: Settings) -> list[str]:
    """What is wrong in the config folder, one line per problem with its file and
    line: every YAML file and template parses, and each file a feature declared
    passes that feature's check. For `kindred run` and `kindred check`."""
    checks: dict[str, list[FileCheck]] = {}
    for feature in features:
        for name, check in feature.config_files.items():
            checks.setdefault(name, []).append(check)
    problems = check_config_dir(settings.config_dir, checks)
    return [problem.describe(settings.config_dir.parent) for problem in problems]
