"""What a handler receives: the inbound event, its parsed arguments, one database
transaction, an outbox bound to that transaction, and read access to the
platform for the few things features must ask it (members, admin checks)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.outbox import Outbox
from bot.core.platform import Inbound, Platform
from bot.core.runtime import Runtime
from storage import members
from storage.models import Community, Member


@dataclass(frozen=True, slots=True)
class Preparation:
    """What a command's `prepare` step sees: no database session, since it runs
    before the handler's transaction opens (it may open a short read of its own)."""

    inbound: Inbound
    args: Mapping[str, Any]
    platform: Platform
    runtime: Runtime


@dataclass
class Context:
    inbound: Inbound
    session: AsyncSession
    outbox: Outbox
    platform: Platform
    runtime: Runtime
    args: dict[str, Any] = field(default_factory=dict)
    # What the command's `prepare` step returned (platform reads), if it has one.
    prepared: Any = None

    def now(self) -> datetime:
        return self.runtime.clock()

    async def community(self) -> Community:
        return await members.ensure_community(
            self.session, self.inbound.platform, self.inbound.workspace_id
        )

    async def member(self, user_id: str | None = None) -> Member:
        """The acting member (or `user_id`), created on first sight."""
        own = user_id is None or user_id == self.inbound.user_id
        return await members.ensure_member(
            self.session,
            self.inbound.platform,
            self.inbound.workspace_id,
            user_id or self.inbound.user_id,
            self.inbound.user_name if own else None,
        )

    async def is_admin(self, user_id: str | None = None) -> bool:
        return await self.platform.is_admin(
            self.inbound.workspace_id, user_id or self.inbound.user_id
        )
