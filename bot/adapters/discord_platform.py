"""The Platform port on Discord: what the outbox dispatcher sends and the few reads
features make (DESIGN.md §2, §4).

discord.py paces each REST route by Discord's `X-RateLimit-*` headers and retries
short 429s itself; a 429 asking to wait longer than `MAX_RATE_LIMIT_WAIT` is
raised as `RateLimited`, so the dispatcher pauses the bucket and delivers other
rows meanwhile. On top of that the dispatcher paces our own buckets below, which
keep a round or a burst of welcomes well inside Discord's limits.
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import AsyncIterator, Sequence
from typing import Final, TypedDict

import aiohttp
import discord

from bot.adapters.discord_render import Rendered, render_message
from bot.core.platform import (
    CalendarEvent,
    MemberInfo,
    Message,
    MessageRef,
    PlatformError,
    RateLimit,
    RateLimited,
    TransientPlatformError,
)

log = logging.getLogger(__name__)

PLATFORM = "discord"
# Longer 429 waits are handed to the dispatcher instead of blocking the call
# (discord.py refuses values under 30 s).
MAX_RATE_LIMIT_WAIT = 30.0
# Our buckets, in outbox rows (one row is 1 to 5 requests). Discord allows 50
# requests/s per bot; we leave room for interaction answers.
BOT_WIDE = RateLimit(per_second=10.0, burst=20)
# DM channel creation is what Discord's anti-spam watches: about one new DM a
# second, bot-wide, with a small burst, so a wave of joins is welcomed steadily.
DIRECT_MESSAGES = RateLimit(per_second=1.0, burst=5)
# Discord allows 5 messages per 5 s in one channel.
PER_CHANNEL = RateLimit(per_second=1.0, burst=5)
# A group intro is a private thread (create + add members + post) in the program
# channel; one a second keeps a large round clear of the thread-creation limits.
GROUP_THREADS = RateLimit(per_second=1.0, burst=5)
THREAD_ARCHIVE_MINUTES: Final = 10080  # a week: the length of a typical round
MAX_THREAD_NAME = 100
THREAD_ALREADY_EXISTS = 160004
DEFAULT_THREAD_NAME = "Kindred"
# Discord's limits on a scheduled event's fields.
MAX_EVENT_NAME = 100
MAX_EVENT_LOCATION = 100
MAX_EVENT_DESCRIPTION = 1000


@contextlib.asynccontextmanager
async def discord_errors(action: str) -> AsyncIterator[None]:
    """Translate discord.py errors into the port's: permanent, transient, rate limited."""
    try:
        yield
    except discord.RateLimited as limited:
        raise RateLimited(limited.retry_after, PLATFORM) from limited
    except discord.HTTPException as error:
        detail = f"Discord refused to {action} ({error.status}, code {error.code}): {error.text}"
        if error.status == 429:
            # No `Via` header: Cloudflare's limit on invalid requests, measured in minutes.
            retry_after = float(error.response.headers.get("Retry-After", 60))
            raise RateLimited(retry_after, PLATFORM) from error
        if error.status >= 500:
            raise TransientPlatformError(detail) from error
        raise PlatformError(detail) from error
    except (aiohttp.ClientError, TimeoutError, ConnectionError) as error:
        raise TransientPlatformError(f"could not reach Discord to {action}: {error}") from error


def thread_name(text: str) -> str:
    """A thread title from the first line of a message, without Markdown marks."""
    first_line = next((line for line in text.splitlines() if line.strip()), "")
    plain = re.sub(r"<[@#][!&]?\d+>", "", re.sub(r"[*_>`~|]", "", first_line)).strip()
    if len(plain) > MAX_THREAD_NAME:
        plain = plain[: MAX_THREAD_NAME - 1] + "…"
    return plain or DEFAULT_THREAD_NAME


class _SendExtras(TypedDict, total=False):
    """The keyword arguments `_send` passes only when it has them."""

    view: discord.ui.View
    file: discord.File
    reference: discord.MessageReference
    nonce: str


class _EditExtras(TypedDict, total=False):
    attachments: list[discord.File]


class DiscordPlatform:
    """Implements `bot.core.platform.Platform` with a logged-in discord.py client."""

    name = PLATFORM
    supports_roles = True
    # Guild scheduled events: members see them in the server's event list, with
    # "Interested", and in their own time zone.
    scheduled_events = True

    def __init__(self, client: discord.Client) -> None:
        self.client = client

    # Reads ----------------------------------------------------------------------------

    async def _guild(self, workspace_id: str) -> discord.Guild:
        guild = self.client.get_guild(int(workspace_id))
        if guild is not None:
            return guild
        async with discord_errors(f"look up guild {workspace_id}"):
            return await self.client.fetch_guild(int(workspace_id))

    async def _members(self, guild: discord.Guild) -> Sequence[discord.Member]:
        if guild.chunked:
            return guild.members
        async with discord_errors(f"list the members of guild {guild.id}"):
            if self.client.get_guild(guild.id) is guild:
                # Over the gateway: one request, and the cache stays current afterwards.
                return await guild.chunk()
            return [member async for member in guild.fetch_members(limit=None)]

    async def list_members(
        self, workspace_id: str, channel_id: str | None = None
    ) -> Sequence[MemberInfo]:
        """Humans of the guild, or of the people who can see one channel or thread."""
        guild = await self._guild(workspace_id)
        members = await self._members(guild)
        if channel_id is not None:
            members = await self._channel_members(guild, members, int(channel_id))
        return [
            MemberInfo(
                user_id=str(member.id),
                display_name=member.display_name,
                is_admin=_is_admin(member),
            )
            for member in members
            if not member.bot
        ]

    async def _channel_members(
        self, guild: discord.Guild, members: Sequence[discord.Member], channel_id: int
    ) -> Sequence[discord.Member]:
        channel = guild.get_channel_or_thread(channel_id)
        if channel is None:
            async with discord_errors(f"look up channel {channel_id}"):
                fetched = await self.client.fetch_channel(channel_id)
            if not isinstance(fetched, discord.abc.GuildChannel | discord.Thread):
                raise PlatformError(f"channel {channel_id} is not in guild {guild.id}")
            channel = fetched
        if isinstance(channel, discord.Thread):
            async with discord_errors(f"list the members of thread {channel_id}"):
                in_thread = {member.id for member in await channel.fetch_members()}
            return [member for member in members if member.id in in_thread]
        return [member for member in members if channel.permissions_for(member).view_channel]

    async def is_admin(self, workspace_id: str, user_id: str) -> bool:
        guild = await self._guild(workspace_id)
        member = guild.get_member(int(user_id))
        if member is None:
            async with discord_errors(f"look up member {user_id}"):
                try:
                    member = await guild.fetch_member(int(user_id))
                except discord.NotFound:
                    return False  # not (or no longer) in the server
        return _is_admin(member)

    # Writes ---------------------------------------------------------------------------

    async def send_dm(self, workspace_id: str, user_id: str, message: Message) -> MessageRef:
        rendered = render_message(workspace_id, message)
        async with discord_errors(f"open a DM with {user_id}"):
            channel = await self.client.create_dm(discord.Object(int(user_id)))
        return await self._send(channel, rendered, f"DM {user_id}")

    async def post_channel(
        self, workspace_id: str, channel_id: str, message: Message
    ) -> MessageRef:
        rendered = render_message(workspace_id, message)
        channel = self.client.get_partial_messageable(int(channel_id), guild_id=int(workspace_id))
        return await self._send(channel, rendered, f"post in channel {channel_id}")

    async def open_group(
        self, workspace_id: str, user_ids: Sequence[str], channel_id: str | None, title: str
    ) -> str:
        """A private thread in `channel_id` (or the guild's system channel) with the
        members added: Discord bots cannot open group DMs."""
        guild = await self._guild(workspace_id)
        parent = await self._group_parent(guild, channel_id)
        async with discord_errors(f"open a private thread in channel {parent.id}"):
            thread = await parent.create_thread(
                name=thread_name(title),
                type=discord.ChannelType.private_thread,
                # Like a group DM: only the bot (and moderators) decide who is in it.
                invitable=False,
                auto_archive_duration=THREAD_ARCHIVE_MINUTES,
            )
        for user_id in user_ids:
            async with discord_errors(f"add {user_id} to thread {thread.id}"):
                await thread.add_user(discord.Object(int(user_id)))
        return str(thread.id)

    async def _group_parent(
        self, guild: discord.Guild, channel_id: str | None
    ) -> discord.TextChannel:
        if channel_id is None:
            if guild.system_channel is None:
                raise PlatformError(
                    "a group conversation on Discord is a private thread in a channel; this "
                    "feature gave no channel and the server has no system channel"
                )
            return guild.system_channel
        channel = guild.get_channel(int(channel_id))
        if channel is None:
            async with discord_errors(f"look up channel {channel_id}"):
                fetched = await self.client.fetch_channel(int(channel_id))
            channel = fetched if isinstance(fetched, discord.abc.GuildChannel) else None
        if not isinstance(channel, discord.TextChannel) or channel.is_news():
            raise PlatformError(
                f"channel {channel_id} cannot hold private threads; use a text channel"
            )
        return channel

    async def reply_in_thread(
        self, workspace_id: str, parent: MessageRef, message: Message
    ) -> MessageRef:
        """Into the message's thread, starting one (public, named after the message)
        when it has none; in a DM, a reply to the message."""
        rendered = render_message(workspace_id, message)
        if parent.thread_id is not None:
            partial = self.client.get_partial_messageable(
                int(parent.thread_id), guild_id=int(workspace_id)
            )
            return await self._send(partial, rendered, f"reply in thread {parent.thread_id}")
        channel = await self._channel(int(parent.channel_id))
        if isinstance(channel, discord.Thread):
            return await self._send(channel, rendered, f"reply in thread {channel.id}")
        if isinstance(channel, discord.DMChannel | discord.GroupChannel):
            reference = discord.MessageReference(
                message_id=int(parent.message_id), channel_id=channel.id, fail_if_not_exists=False
            )
            return await self._send(channel, rendered, "reply in a DM", reference=reference)
        if not isinstance(channel, discord.TextChannel):
            raise PlatformError(f"channel {parent.channel_id} cannot hold threads")
        thread = await self._thread_of(channel, int(parent.message_id))
        sent = await self._send(thread, rendered, f"reply in thread {thread.id}")
        return MessageRef(sent.channel_id, sent.message_id, str(thread.id), sent.permalink)

    async def _thread_of(self, channel: discord.TextChannel, message_id: int) -> discord.Thread:
        async with discord_errors(f"start a thread on message {message_id}"):
            original = await channel.fetch_message(message_id)
            try:
                return await original.create_thread(
                    name=thread_name(original.content),
                    auto_archive_duration=THREAD_ARCHIVE_MINUTES,
                )
            except discord.HTTPException as error:
                if error.code != THREAD_ALREADY_EXISTS:
                    raise
        # A thread started on a message has the message's id.
        existing = await self._channel(message_id)
        if not isinstance(existing, discord.Thread):
            raise PlatformError(f"message {message_id} has a thread that cannot be read")
        return existing

    async def _channel(
        self, channel_id: int
    ) -> discord.abc.GuildChannel | discord.abc.PrivateChannel | discord.Thread:
        channel = self.client.get_channel(channel_id)
        if channel is not None:
            return channel
        async with discord_errors(f"look up channel {channel_id}"):
            return await self.client.fetch_channel(channel_id)

    async def update_message(
        self, workspace_id: str, ref: MessageRef, message: Message
    ) -> MessageRef:
        rendered = render_message(workspace_id, message)
        channel = self.client.get_partial_messageable(int(ref.channel_id))
        target = channel.get_partial_message(int(ref.message_id))
        content = rendered.pieces[0]
        if len(rendered.pieces) > 1:
            # An edit cannot grow into several messages.
            content = content[: len(content) - 1] + "…"
        file = rendered.file()
        extras: _EditExtras = {"attachments": [file]} if file is not None else {}
        async with discord_errors(f"edit message {ref.message_id}"):
            await target.edit(
                content=content,
                view=rendered.view(),
                allowed_mentions=rendered.allowed_mentions,
                **extras,
            )
        return ref

    async def _send(
        self,
        channel: discord.abc.Messageable,
        rendered: Rendered,
        action: str,
        reference: discord.MessageReference | None = None,
    ) -> MessageRef:
        """Send every piece; the first is the message others refer to (threads hang off
        it), the last carries the buttons and the file."""
        first: discord.Message | None = None
        last_index = len(rendered.pieces) - 1
        for index, piece in enumerate(rendered.pieces):
            extras: _SendExtras = {}
            if index == last_index:
                view, file = rendered.view(), rendered.file()
                if view is not None:
                    extras["view"] = view
                if file is not None:
                    extras["file"] = file
            if index == 0 and reference is not None:
                extras["reference"] = reference
            if rendered.idempotency_key is not None:
                # Discord returns the first message instead of posting a second one with
                # the same nonce (discord.py sets enforce_nonce), closing the window
                # between a delivery and the outbox marking it sent.
                extras["nonce"] = f"{rendered.idempotency_key}-{index}"
            async with discord_errors(action):
                sent = await channel.send(
                    piece, allowed_mentions=rendered.allowed_mentions, **extras
                )
            first = first or sent
        assert first is not None
        return MessageRef(str(first.channel.id), str(first.id), permalink=first.jump_url)

    async def set_role(self, workspace_id: str, user_id: str, role: str, *, granted: bool) -> None:
        """Add or remove a guild role (named, or given by id) for one member. Needs
        the Manage Roles permission and the bot's own role above the one it grants."""
        guild = await self._guild(workspace_id)
        found = discord.utils.find(
            lambda candidate: str(candidate.id) == role or candidate.name == role, guild.roles
        )
        if found is None:
            async with discord_errors(f"list the roles of guild {guild.id}"):
                roles = await guild.fetch_roles()
            found = discord.utils.find(
                lambda candidate: str(candidate.id) == role or candidate.name == role, roles
            )
        if found is None:
            raise PlatformError(f"guild {guild.id} has no role '{role}'")
        reason = "Kindred: recognised contributor" if granted else "Kindred: status lapsed"
        change = self.client.http.add_role if granted else self.client.http.remove_role
        async with discord_errors(f"{'give' if granted else 'take'} role '{role}'"):
            await change(guild.id, int(user_id), found.id, reason=reason)

    # Scheduled events ---------------------------------------------------------------

    async def save_scheduled_event(
        self, workspace_id: str, event: CalendarEvent, existing_id: str | None
    ) -> MessageRef:
        """An EXTERNAL guild scheduled event (held at a link, not in a voice channel),
        which Discord requires to have a location and an end time."""
        guild = await self._guild(workspace_id)
        name = _clipped(event.title, MAX_EVENT_NAME)
        location = _clipped(event.location, MAX_EVENT_LOCATION)
        description = _clipped(event.description, MAX_EVENT_DESCRIPTION)
        if existing_id is None:
            earlier = await self._same_scheduled_event(guild, name, event)
            if earlier is not None:
                return MessageRef(str(guild.id), str(earlier.id), permalink=earlier.url)
            async with discord_errors(f"create a scheduled event in guild {guild.id}"):
                saved = await guild.create_scheduled_event(
                    name=name,
                    start_time=event.starts_at,
                    end_time=event.ends_at,
                    entity_type=discord.EntityType.external,
                    privacy_level=discord.PrivacyLevel.guild_only,
                    location=location,
                    description=description,
                )
        else:
            scheduled = await self._scheduled_event(guild, int(existing_id))
            async with discord_errors(f"edit scheduled event {existing_id}"):
                saved = await scheduled.edit(
                    name=name,
                    start_time=event.starts_at,
                    end_time=event.ends_at,
                    entity_type=discord.EntityType.external,
                    privacy_level=discord.PrivacyLevel.guild_only,
                    location=location,
                    description=description,
                )
        return MessageRef(str(guild.id), str(saved.id), permalink=saved.url)

    async def _same_scheduled_event(
        self, guild: discord.Guild, name: str, event: CalendarEvent
    ) -> discord.ScheduledEvent | None:
        """The bot's own open scheduled event with this name and time: Discord takes no
        idempotency key for events, so a creation retried after a crash (sent, but not
        yet marked sent) finds the first one instead of adding a second."""
        async with discord_errors(f"list the scheduled events of guild {guild.id}"):
            existing = await guild.fetch_scheduled_events(with_counts=False)
        bot_id = self.client.user.id if self.client.user else None
        for candidate in existing:
            if (
                candidate.creator_id == bot_id
                and candidate.name == name
                and candidate.start_time == event.starts_at
                and candidate.status == discord.EventStatus.scheduled
            ):
                return candidate
        return None

    async def cancel_scheduled_event(self, workspace_id: str, event_id: str) -> MessageRef:
        guild = await self._guild(workspace_id)
        scheduled = await self._scheduled_event(guild, int(event_id))
        async with discord_errors(f"cancel scheduled event {event_id}"):
            cancelled = await scheduled.cancel()
        return MessageRef(str(guild.id), str(cancelled.id), permalink=cancelled.url)

    async def _scheduled_event(self, guild: discord.Guild, event_id: int) -> discord.ScheduledEvent:
        cached = guild.get_scheduled_event(event_id)
        if cached is not None:
            return cached
        async with discord_errors(f"look up scheduled event {event_id}"):
            return await guild.fetch_scheduled_event(event_id)

    def rate_limits(self, kind: str, workspace_id: str, target: str) -> list[tuple[str, RateLimit]]:
        buckets = [("discord:bot", BOT_WIDE)]
        if kind == "role":
            return buckets
        if kind == "dm":
            buckets.append(("discord:dm", DIRECT_MESSAGES))
        elif kind == "group":
            buckets.append((f"discord:threads:{workspace_id}", GROUP_THREADS))
        elif target:
            buckets.append((f"discord:channel:{target}", PER_CHANNEL))
        return buckets


def _clipped(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _is_admin(member: discord.Member) -> bool:
    permissions = member.guild_permissions
    return permissions.administrator or permissions.manage_guild
