"""An in-memory Platform for command and job tests (the adapters have their own
end-to-end tests against wire-level fakes)."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field

from bot.core.mentions import strip_markup_for_plain_text
from bot.core.platform import (
    CalendarEvent,
    MemberInfo,
    Message,
    MessageRef,
    NotSupported,
    PlatformError,
    RateLimit,
    RateLimited,
    TransientPlatformError,
)


@dataclass
class Sent:
    kind: str
    workspace_id: str
    target: str
    message: Message
    ref: MessageRef

    @property
    def text(self) -> str:
        return strip_markup_for_plain_text(self.message.text)


@dataclass
class FakePlatform:
    name: str = "fake"
    supports_roles: bool = True
    members: dict[str, list[MemberInfo]] = field(default_factory=dict)
    admins: set[str] = field(default_factory=set)
    sent: list[Sent] = field(default_factory=list)
    groups: dict[str, list[str]] = field(default_factory=dict)
    # Errors to raise on the next calls, in order (RateLimited, TransientPlatformError, …).
    failures: list[Exception] = field(default_factory=list)
    limits: list[tuple[str, RateLimit]] = field(default_factory=list)
    calls: int = 0
    # Member → the roles they hold, as set_role left them.
    roles: dict[str, set[str]] = field(default_factory=dict)
    # Off by default, as on Slack: set it to play a platform with scheduled events
    # (Discord); `calendar` then holds them by id, `calendar_calls` each change.
    scheduled_events: bool = False
    calendar: dict[str, CalendarEvent] = field(default_factory=dict)
    cancelled: set[str] = field(default_factory=set)
    calendar_calls: list[tuple[str, str]] = field(default_factory=list)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def add_members(self, workspace_id: str, *members: MemberInfo) -> None:
        self.members.setdefault(workspace_id, []).extend(members)

    async def list_members(
        self, workspace_id: str, channel_id: str | None = None
    ) -> Sequence[MemberInfo]:
        return list(self.members.get(workspace_id, []))

    async def is_admin(self, workspace_id: str, user_id: str) -> bool:
        return user_id in self.admins

    def _record(self, kind: str, workspace_id: str, target: str, message: Message) -> MessageRef:
        self.calls += 1
        if self.failures:
            raise self.failures.pop(0)
        ref = MessageRef(channel_id=target, message_id=f"m{next(self._ids)}")
        self.sent.append(Sent(kind, workspace_id, target, message, ref))
        return ref

    async def send_dm(self, workspace_id: str, user_id: str, message: Message) -> MessageRef:
        return self._record("dm", workspace_id, user_id, message)

    async def post_channel(
        self, workspace_id: str, channel_id: str, message: Message
    ) -> MessageRef:
        return self._record("post", workspace_id, channel_id, message)

    async def open_group(
        self, workspace_id: str, user_ids: Sequence[str], channel_id: str | None, title: str
    ) -> str:
        group_id = f"G{len(self.groups) + 1}"
        self.groups[group_id] = list(user_ids)
        return group_id

    async def reply_in_thread(
        self, workspace_id: str, parent: MessageRef, message: Message
    ) -> MessageRef:
        ref = self._record("thread_reply", workspace_id, parent.channel_id, message)
        return MessageRef(ref.channel_id, ref.message_id, thread_id=parent.message_id)

    async def update_message(
        self, workspace_id: str, ref: MessageRef, message: Message
    ) -> MessageRef:
        self._record("update", workspace_id, ref.channel_id, message)
        return ref

    async def set_role(self, workspace_id: str, user_id: str, role: str, *, granted: bool) -> None:
        self.calls += 1
        if self.failures:
            raise self.failures.pop(0)
        held = self.roles.setdefault(user_id, set())
        if granted:
            held.add(role)
        else:
            held.discard(role)

    async def save_scheduled_event(
        self, workspace_id: str, event: CalendarEvent, existing_id: str | None
    ) -> MessageRef:
        if not self.scheduled_events:
            raise NotSupported("the fake platform plays Slack: no scheduled events")
        event_id = existing_id or f"E{len(self.calendar) + 1}"
        if existing_id is not None and existing_id not in self.calendar:
            raise PlatformError(f"no scheduled event {existing_id}")
        self.calendar[event_id] = event
        self.calendar_calls.append(("edit" if existing_id else "create", event_id))
        return MessageRef(channel_id=workspace_id, message_id=event_id)

    async def cancel_scheduled_event(self, workspace_id: str, event_id: str) -> MessageRef:
        if not self.scheduled_events:
            raise NotSupported("the fake platform plays Slack: no scheduled events")
        self.cancelled.add(event_id)
        self.calendar_calls.append(("cancel", event_id))
        return MessageRef(channel_id=workspace_id, message_id=event_id)

    def rate_limits(self, kind: str, workspace_id: str, target: str) -> list[tuple[str, RateLimit]]:
        return list(self.limits)

    def texts(self, kind: str | None = None, target: str | None = None) -> list[str]:
        return [
            sent.text
            for sent in self.sent
            if (kind is None or sent.kind == kind) and (target is None or sent.target == target)
        ]


__all__ = ["FakePlatform", "PlatformError", "RateLimited", "Sent", "TransientPlatformError"]
