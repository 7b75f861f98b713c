"""What features report about themselves: figures for a period (the health
report's numbers), member actions (activity, activation, recognition's
evidence), and what they store about one member (`/kindred privacy`). Plain
values, so the Runtime can hand every feature's figures to the features that
read them without importing the feature declarations."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.platform import Identity


@dataclass(frozen=True, slots=True)
class Period:
    """A community and a half-open time range [start, end) that figures describe."""

    platform: str
    workspace_id: str
    start: datetime
    end: datetime


Figures = Mapping[str, float | None]
MetricsHook = Callable[[AsyncSession, Period], Awaitable[Figures]]

# The `MemberAction.kind`s that count as a newcomer's first step, one per path the
# health report's activation figure is broken down by.
ACTIVATION_PATHS = ("intro", "coffee", "buddy", "question", "kudos")


@dataclass(frozen=True, slots=True)
class MemberAction:
    """One thing a member did through a feature, at a moment in a period.

    The health report counts them (active members, newcomer activation by path:
    a `kind` from ACTIVATION_PATHS names the path it belongs to); recognition
    weighs those marked `contribution` (help given to others: an AMA host's
    answer, a featured link, a completed mentorship rated well) as evidence, and
    shows each by its `kind`, in words from config/templates/kudos/contributions.j2
    ("ama_answer: answered an AMA question as host"). Kinds are unique across
    features."""

    user_id: str
    kind: str
    at: datetime
    contribution: bool = False


ActionsHook = Callable[[AsyncSession, Period], Awaitable[Sequence[MemberAction]]]


def as_member_actions(
    rows: Iterable[tuple[str, str, datetime]], meanings: Mapping[str, tuple[str, bool]]
) -> list[MemberAction]:
    """A storage query's (user id, what, when) rows as MemberActions: `meanings`
    maps each "what" to its kind and whether it is a contribution."""
    actions = []
    for user_id, what, at in rows:
        kind, contribution = meanings[what]
        actions.append(MemberAction(user_id, kind, at, contribution=contribution))
    return actions


@dataclass(frozen=True, slots=True)
class Stored:
    """What a feature stores about one member, for `/kindred privacy`: the values
    its `template` (config/templates/<feature>/stored_about.j2) reads to show one
    line per kind of record it keeps ("3 AMA questions you asked", "your mentor
    request of 2026-11-02"), and no line for a kind it keeps nothing of. Values
    print like in any template: member-written text escaped, `Trusted` as is."""

    template: str
    values: Mapping[str, object]


StoredAboutHook = Callable[[AsyncSession, Identity], Awaitable[Stored]]
# Delete the member's feedback, ratings and survey answers (not the records a
# ritual needs to go on, such as a mentorship itself); returns how many rows went.
ForgetFeedbackHook = Callable[[AsyncSession, Identity], Awaitable[int]]
