"""The narrow view of the running core that features receive (DESIGN.md §2).

Handlers get it as `ctx.runtime`, ticks and web routes as their first argument.
It is a protocol so that no feature module imports `bot.core.app`: the core
object satisfies it structurally, and tests may pass any object that does."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.figures import Figures, MemberAction, Period
from bot.core.platform import Identity, Platform
from bot.core.settings import Settings
from bot.core.templates import Templates
from storage.db import Database

ClaimedWork = Callable[[AsyncSession, datetime], Awaitable[None]]


class Claims(Protocol):
    """Exactly-once work across replicas and restarts (DESIGN.md §3)."""

    @property
    def owner(self) -> str: ...

    async def run_claimed(self, job: str, occurrence: datetime, work: ClaimedWork) -> bool:
        """Claim `(job, occurrence)` and do `work` in one transaction, unless a
        replica already did."""
        ...

    async def claim_in(self, session: AsyncSession, job: str, occurrence: datetime) -> bool:
        """Claim inside the caller's transaction (a command's manual run), so the
        claim commits or rolls back with the work it guards."""
        ...


class Runtime(Protocol):
    @property
    def settings(self) -> Settings: ...

    @property
    def db(self) -> Database: ...

    @property
    def templates(self) -> Templates: ...

    @property
    def claims(self) -> Claims: ...

    @property
    def platforms(self) -> Mapping[str, Platform]: ...

    @property
    def feature_names(self) -> Sequence[str]: ...

    def help_text(self, feature: str | None = None) -> str | None:
        """The help overview, or one feature's commands (None: no such feature).
        Text rather than the declarations, so that the runtime needs no import of
        the feature types (they refer to handlers, which refer to the Context)."""
        ...

    def clock(self) -> datetime: ...

    def in_background(self, key: str, work: Callable[[], Awaitable[None]]) -> bool:
        """Start `work` without waiting for it, unless work under `key` is already
        running in this process (True: started). For work a request must not wait
        for and that is safe to repeat on another replica."""
        ...

    async def figures(self, session: AsyncSession, period: Period) -> Mapping[str, Figures]:
        """Every declared feature's figures for `period` (its `metrics` hook), by
        feature name: the health report reads other features only through these."""
        ...

    async def member_actions(
        self, session: AsyncSession, period: Period
    ) -> Mapping[str, Sequence[MemberAction]]:
        """Every declared feature's member actions in `period` (its `actions`
        hook), by feature name: activity, activation and recognition's evidence."""
        ...

    async def stored_about(
        self, session: AsyncSession, member: Identity
    ) -> Mapping[str, Sequence[str]]:
        """What each declared feature stores about `member` (its `stored_about`
        hook), by feature name: the lines its template shows, already escaped
        (`Trusted`); features that store nothing are left out."""
        ...

    async def forget_feedback(self, session: AsyncSession, member: Identity) -> Mapping[str, int]:
        """Erase `member`'s feedback in every feature that keeps some (its
        `forget_feedback` hook): rows deleted, by feature name."""
        ...
