"""How features send: rows added to the outbox in the handler's transaction.

Nothing here talks to a platform; `bot.core.dispatcher` delivers the rows later.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.platform import (
    Attachment,
    Button,
    ButtonStyle,
    CalendarEvent,
    Message,
    MessageRef,
)
from storage import outbox as outbox_rows


def message_to_payload(message: Message) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "text": message.text,
        "buttons": [
            [button.label, button.action_id, button.value, button.style.value]
            for button in message.buttons
        ],
        "mentions": list(message.mentions),
    }
    if message.attachment is not None:
        payload["attachment"] = {
            "filename": message.attachment.filename,
            "content_type": message.attachment.content_type,
            "content": base64.b64encode(message.attachment.content).decode("ascii"),
        }
        if message.attachment.alt_text:
            payload["attachment"]["alt_text"] = message.attachment.alt_text
    return payload


def payload_to_message(payload: dict[str, Any]) -> Message:
    attachment = None
    if "attachment" in payload:
        stored = payload["attachment"]
        attachment = Attachment(
            filename=stored["filename"],
            content=base64.b64decode(stored["content"]),
            content_type=stored["content_type"],
            alt_text=stored.get("alt_text", ""),
        )
    return Message(
        text=payload["text"],
        buttons=tuple(
            Button(label, action_id, value, ButtonStyle(style))
            for label, action_id, value, style in payload.get("buttons", [])
        ),
        mentions=tuple(payload.get("mentions", [])),
        attachment=attachment,
    )


def ref_to_dict(ref: MessageRef) -> dict[str, Any]:
    return {
        "channel_id": ref.channel_id,
        "message_id": ref.message_id,
        "thread_id": ref.thread_id,
        "permalink": ref.permalink,
    }


def ref_from_dict(data: dict[str, Any]) -> MessageRef:
    return MessageRef(
        channel_id=data["channel_id"],
        message_id=data["message_id"],
        thread_id=data.get("thread_id"),
        permalink=data.get("permalink"),
    )


def calendar_event_to_dict(event: CalendarEvent) -> dict[str, Any]:
    return {
        "title": event.title,
        "starts_at": event.starts_at.isoformat(),
        "ends_at": event.ends_at.isoformat(),
        "location": event.location,
        "description": event.description,
    }


def calendar_event_from_dict(data: dict[str, Any]) -> CalendarEvent:
    return CalendarEvent(
        title=data["title"],
        starts_at=datetime.fromisoformat(data["starts_at"]),
        ends_at=datetime.fromisoformat(data["ends_at"]),
        location=data["location"],
        description=data.get("description", ""),
    )


@dataclass(frozen=True, slots=True)
class GroupMessage:
    """One group conversation for `Outbox.groups`: as `Outbox.group` takes it."""

    user_ids: Sequence[str]
    message: Message
    key: str
    channel_id: str | None = None
    title: str = ""


@dataclass
class Outbox:
    """Queue messages for one community inside the current transaction.

    `key` makes a message idempotent: queueing the same key twice (a retried
    job, a re-delivered event) yields one message. Every method returns the row
    id, which later rows can wait for (`after`) to reply to or update it.
    """

    session: AsyncSession
    platform: str
    workspace_id: str

    async def dm(
        self,
        user_id: str,
        message: Message,
        *,
        key: str | None = None,
        not_before: datetime | None = None,
    ) -> int:
        return await self._enqueue("dm", user_id, message, key=key, not_before=not_before)

    async def post(
        self,
        channel_id: str,
        message: Message,
        *,
        key: str | None = None,
        not_before: datetime | None = None,
    ) -> int:
        return await self._enqueue("post", channel_id, message, key=key, not_before=not_before)

    async def group(
        self,
        user_ids: Sequence[str],
        message: Message,
        *,
        channel_id: str | None = None,
        title: str = "",
        key: str | None = None,
    ) -> int:
        """Open a small private conversation for `user_ids` and post `message` in it."""
        details = {"user_ids": list(user_ids), "channel_id": channel_id, "title": title}
        return await self._enqueue("group", "", message, key=key, details=details)

    async def dms(self, messages: Sequence[tuple[str, Message, str]]) -> list[int]:
        """Many DMs at once, each `(user_id, message, key)`: what `dm` does per message,
        in a few statements (a round's thousands of proposals)."""
        rows: list[tuple[str, str, dict[str, Any], dict[str, Any], str]] = [
            ("dm", user_id, {}, message_to_payload(message), key)
            for user_id, message, key in messages
        ]
        return await outbox_rows.enqueue_many(
            self.session, platform=self.platform, workspace_id=self.workspace_id, rows=rows
        )

    async def groups(self, groups: Sequence[GroupMessage]) -> list[int]:
        """Many group conversations at once: what `group` does per group, in a few
        statements (a round's thousands of intros)."""
        rows: list[tuple[str, str, dict[str, Any], dict[str, Any], str]] = [
            (
                "group",
                "",
                {"user_ids": list(g.user_ids), "channel_id": g.channel_id, "title": g.title},
                message_to_payload(g.message),
                g.key,
            )
            for g in groups
        ]
        return await outbox_rows.enqueue_many(
            self.session, platform=self.platform, workspace_id=self.workspace_id, rows=rows
        )

    async def thread_reply(
        self,
        parent: MessageRef | int,
        message: Message,
        *,
        key: str | None = None,
    ) -> int:
        """Reply under a message; an int is an outbox row whose delivery is awaited."""
        return await self._to_message("thread_reply", parent, message, key)

    async def update(
        self, ref: MessageRef | int, message: Message, *, key: str | None = None
    ) -> int:
        return await self._to_message("update", ref, message, key)

    async def role(self, user_id: str, role: str, *, granted: bool, key: str) -> int:
        """Give a member a platform role (or take it away), once per `key`. Only for
        platforms whose `supports_roles` is True."""
        details = {"role": role, "granted": granted}
        return await self._enqueue("role", user_id, Message(text=""), key=key, details=details)

    async def scheduled_event(
        self, event: CalendarEvent, *, after: int | None = None, key: str | None = None
    ) -> int:
        """Create the platform's own scheduled event (outbox kind `calendar_event`; kinds
        fit in 16 characters), or, `after` the outbox row that
        created it (or last changed it), edit it: each change waits for the one
        before, so they reach the platform in order. Only for platforms whose
        `scheduled_events` is true."""
        return await self._enqueue(
            "calendar_event",
            "",
            Message(event.title),
            key=key,
            details={"event": calendar_event_to_dict(event)},
            after_id=after,
        )

    async def cancel_scheduled_event(self, after: int, *, key: str | None = None) -> int:
        """Cancel the scheduled event created (or last changed) by outbox row `after`."""
        return await self._enqueue(
            "calendar_cancel", "", Message("cancelled"), key=key, after_id=after
        )

    async def _to_message(
        self, kind: str, ref: MessageRef | int, message: Message, key: str | None
    ) -> int:
        if isinstance(ref, MessageRef):
            return await self._enqueue(
                kind, ref.channel_id, message, key=key, details={"ref": ref_to_dict(ref)}
            )
        return await self._enqueue(kind, "", message, key=key, after_id=ref)

    async def _enqueue(
        self,
        kind: str,
        target: str,
        message: Message,
        *,
        key: str | None,
        details: dict[str, Any] | None = None,
        after_id: int | None = None,
        not_before: datetime | None = None,
    ) -> int:
        return await outbox_rows.enqueue(
            self.session,
            platform=self.platform,
            workspace_id=self.workspace_id,
            kind=kind,
            target=target,
            payload=message_to_payload(message),
            details=details,
            dedupe_key=key,
            after_id=after_id,
            not_before=not_before,
        )
