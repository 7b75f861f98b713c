"""The Platform port and the neutral values that cross it (DESIGN.md §2).

Features never import a platform SDK. Adapters turn SDK events into `Inbound`
values, render `Message` values, and implement `Platform` for the outbox
dispatcher and for the few reads features need (members, admin checks).

Neutral message markup, rendered by each adapter:
- `**bold**`, `_italic_`, `[label](https://url)` links, `> ` quotes;
- `<@USER_ID>` mentions (produced by `bot.core.mentions.mention`), which ping only
  when the user id is also listed in `Message.mentions`;
- `<#CHANNEL_ID>` channel links (native on Slack and Discord);
- `<t:UNIX:f>` / `<t:UNIX:t>` moments (from `bot.core.formatting.local_time`), which
  each reader sees in their own time zone on Discord and Slack, in UTC elsewhere;
- member-written text wrapped by `bot.core.mentions.member_text`, which adapters
  escape for their platform so it can never ping anyone.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Literal, Protocol, runtime_checkable

PlatformName = Literal["console", "slack", "discord"]


@dataclass(frozen=True, slots=True)
class Identity:
    """Who someone is across deployments: one Kindred serves many workspaces."""

    platform: str
    workspace_id: str
    user_id: str


class ButtonStyle(StrEnum):
    DEFAULT = "default"
    PRIMARY = "primary"
    DANGER = "danger"


@dataclass(frozen=True, slots=True)
class Button:
    """A neutral button. `action_id` is registered in the router; `value` rides along.

    Adapters encode both into a stable custom id (`encode_custom_id`) so buttons on
    old messages keep working after a restart.
    """

    label: str
    action_id: str
    value: str = ""
    style: ButtonStyle = ButtonStyle.DEFAULT


@dataclass(frozen=True, slots=True)
class ModalField:
    field_id: str
    label: str
    multiline: bool = False
    required: bool = True
    max_length: int | None = None
    placeholder: str = ""


@dataclass(frozen=True, slots=True)
class Modal:
    """A small form. Its submission arrives as an `Inbound` of kind `modal_submit`
    with `action_id == callback_id` and `options` holding the field values."""

    callback_id: str
    title: str
    fields: tuple[ModalField, ...]
    value: str = ""
    submit_label: str = "Submit"


@dataclass(frozen=True, slots=True)
class Attachment:
    filename: str
    content: bytes
    content_type: str = "text/markdown"
    # What an image shows, for screen readers (Slack's alt_txt, Discord's description).
    alt_text: str = ""


@dataclass(frozen=True, slots=True)
class Message:
    text: str
    buttons: tuple[Button, ...] = ()
    # User ids that this message is meant to ping; every other mention is inert.
    mentions: tuple[str, ...] = ()
    attachment: Attachment | None = None
    # Set by the outbox dispatcher, one per outbox row: a platform that can refuse a
    # repeated send (Discord's enforced nonce) uses it, so a send retried after a
    # crash between delivery and its "sent" mark does not post twice.
    idempotency_key: str | None = None


@dataclass(frozen=True, slots=True)
class CalendarEvent:
    """An event as a platform's own scheduled events show it (Discord's guild
    scheduled events): held elsewhere (a call link as its location), with an end."""

    title: str
    starts_at: datetime
    ends_at: datetime
    location: str
    description: str = ""


@dataclass(frozen=True, slots=True)
class MessageRef:
    """Where a message the bot sent (or a member's message) lives on its platform."""

    channel_id: str
    message_id: str
    # Discord threads are channels; Slack threads are a parent ts in a channel.
    thread_id: str | None = None
    permalink: str | None = None


@dataclass(frozen=True, slots=True)
class MemberInfo:
    user_id: str
    display_name: str
    is_bot: bool = False
    deactivated: bool = False
    timezone: str | None = None  # IANA name when the platform knows it
    is_admin: bool = False


InboundKind = Literal[
    "command",
    "button",
    "modal_submit",
    "member_joined",
    "member_left",
    "channel_joined",
    "reaction",
    "reaction_removed",
    "message",
    "message_deleted",
    "home_opened",
    # A member pressed (or took back) "Interested" on a platform's scheduled event
    # (Discord); `value` is that event's id on the platform.
    "event_interest_added",
    "event_interest_removed",
]


@dataclass(frozen=True, slots=True)
class Inbound:
    """One platform event, in neutral form.

    - command: `text` is everything after `/kindred`; adapters that receive typed
      options (Discord) pass `command_path` and `options` instead.
    - button / modal_submit: `action_id`, `value`, `message` (the clicked message);
      modal field values in `options`.
    - member_joined / member_left: the workspace (or `channel_id` for channel joins).
    - reaction: `reaction` name, `message` reacted to, `text` of that message if known,
      `message_author_id` who wrote it, when that is a person (None for bots, Kindred
      itself, or an author the platform does not say).
    - reaction_removed: the same, for a reaction taken back (no `text`).
    - message_deleted: `message` that was deleted, in `channel_id`; `user_id` is its
      author when the platform says, else empty.
    - event_id: the platform's delivery key; repeated deliveries act once.
    """

    kind: InboundKind
    platform: str
    workspace_id: str
    user_id: str
    channel_id: str | None = None
    text: str = ""
    command_path: tuple[str, ...] | None = None
    options: Mapping[str, Any] = field(default_factory=dict)
    action_id: str | None = None
    value: str = ""
    message: MessageRef | None = None
    reaction: str | None = None
    message_author_id: str | None = None
    event_id: str | None = None
    channel_is_private: bool = False
    user_name: str | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def identity(self) -> Identity:
        return Identity(self.platform, self.workspace_id, self.user_id)


@dataclass(frozen=True, slots=True)
class Reply:
    """The inline answer to a command or button (ephemeral unless `public`).

    `update_original` replaces the clicked message (e.g. disables its buttons);
    `modal` opens a form instead of answering with text.
    """

    message: Message | None = None
    public: bool = False
    update_original: Message | None = None
    modal: Modal | None = None

    @classmethod
    def text(cls, text: str, *buttons: Button) -> Reply:
        return cls(message=Message(text=text, buttons=tuple(buttons)))


class PlatformError(Exception):
    """A platform call failed for good (bad channel, missing scope): do not retry."""


class NotSupported(PlatformError):
    """The platform has no such thing (Slack and the console have no scheduled
    events); features ask `Platform.scheduled_events` first, so this is a bug's
    signal, never a silent success."""


class TransientPlatformError(PlatformError):
    """A platform call failed in a way worth retrying (5xx, timeout, connection)."""


class RateLimited(TransientPlatformError):
    def __init__(self, retry_after: float, scope: str = "") -> None:
        super().__init__(f"rate limited for {retry_after:.2f}s {scope}".strip())
        self.retry_after = retry_after
        self.scope = scope


@dataclass(frozen=True, slots=True)
class RateLimit:
    """A token bucket the dispatcher respects before calling a platform."""

    per_second: float
    burst: int = 1


@runtime_checkable
class Platform(Protocol):
    """What features (reads) and the outbox dispatcher (writes) may ask of a platform."""

    name: str
    # Whether the platform has member roles a bot may grant (Discord); on the others
    # a feature shows a badge in its own messages instead.
    supports_roles: bool
    # Whether the platform has scheduled events of its own (Discord) that
    # `save_scheduled_event` creates and keeps in step; where it has none, features
    # offer a calendar file instead and never call those methods.
    scheduled_events: bool

    async def list_members(
        self, workspace_id: str, channel_id: str | None = None
    ) -> Sequence[MemberInfo]:
        """Humans and bots of a workspace, or of one channel (adapters page through)."""
        ...

    async def is_admin(self, workspace_id: str, user_id: str) -> bool: ...

    async def send_dm(self, workspace_id: str, user_id: str, message: Message) -> MessageRef: ...

    async def post_channel(
        self, workspace_id: str, channel_id: str, message: Message
    ) -> MessageRef: ...

    async def open_group(
        self, workspace_id: str, user_ids: Sequence[str], channel_id: str | None, title: str
    ) -> str:
        """Open (or reuse) a small private conversation; returns its channel id.

        Slack: `conversations.open` with several users. Discord: a private thread in
        `channel_id` with the users added (bots cannot create group DMs)."""
        ...

    async def reply_in_thread(
        self, workspace_id: str, parent: MessageRef, message: Message
    ) -> MessageRef: ...

    async def update_message(
        self, workspace_id: str, ref: MessageRef, message: Message
    ) -> MessageRef: ...

    async def set_role(self, workspace_id: str, user_id: str, role: str, *, granted: bool) -> None:
        """Give `user_id` the role named (or with the id) `role`, or take it away.
        Platforms without roles (`supports_roles` False) refuse with PlatformError."""
        ...

    async def save_scheduled_event(
        self, workspace_id: str, event: CalendarEvent, existing_id: str | None
    ) -> MessageRef:
        """Create the platform's scheduled event (`existing_id` None) or edit it; the
        answer's `message_id` is the event's id. `NotSupported` without them."""
        ...

    async def cancel_scheduled_event(self, workspace_id: str, event_id: str) -> MessageRef:
        """Mark the platform's scheduled event cancelled. `NotSupported` without them."""
        ...

    def rate_limits(
        self, kind: str, workspace_id: str, target: str
    ) -> Sequence[tuple[str, RateLimit]]:
        """Buckets (key, limit) one outbound call of `kind` must take a token from."""
        ...
