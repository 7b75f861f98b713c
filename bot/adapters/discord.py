"""Kindred on Discord: a discord.py client whose commands, buttons, forms and
gateway events become neutral `Inbound` values for the shared handlers, and whose
REST API delivers the outbox (DESIGN.md §2–§4). No feature logic lives here.

- `/kindred` is one application-command group built from the registry, synced at
  start: to each guild in `DISCORD_DEV_GUILD_IDS` (instant, for development) or
  globally (the default; Discord may take a while to show changes everywhere).
- Interactions are answered within Discord's 3 s: the handler gets
  `ANSWER_BUDGET`; if it needs longer the interaction is deferred and the answer
  follows. Answers are ephemeral unless the handler made them public.
- Buttons are persistent (`discord_render.KindredButton`); forms are routed by
  their custom id, so both keep working across restarts.
- `DISCORD_API_URL` / `DISCORD_GATEWAY_URL` point discord.py elsewhere (a
  rate-limit proxy, or the local fake the tests run against).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import json
import logging
import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import aiohttp
import discord
import yarl
from discord import app_commands
from discord.gateway import DiscordWebSocket
from discord.http import Route

from bot.adapters.discord_commands import build_command_group
from bot.adapters.discord_platform import MAX_RATE_LIMIT_WAIT, PLATFORM, DiscordPlatform
from bot.adapters.discord_render import (
    CustomId,
    KindredButton,
    build_modal,
    decode_custom_id,
    render_message,
    submitted_values,
)
from bot.core.app import Kindred
from bot.core.errors import StartupRefused
from bot.core.platform import Inbound, InboundKind, Message, MessageRef, PlatformError, Reply
from bot.core.registry import CommandSpec, Registry
from bot.core.settings import Settings
from storage import members

log = logging.getLogger(__name__)

# Discord wants an answer within 3 s of the click; network time eats the rest.
ANSWER_BUDGET = 2.0
API_VERSION_PATH = "/api/v10"
SCOPES = ("bot", "applications.commands")
# What the features do on Discord, and nothing more:
PERMISSIONS = discord.Permissions(
    view_channel=True,  # see the channels programs, digests and AMAs run in
    send_messages=True,  # intros, digests, announcements
    send_messages_in_threads=True,  # group intros, AMA answers
    create_public_threads=True,  # a thread under an AMA question or a curated item
    create_private_threads=True,  # group intros: bots cannot open group DMs
    manage_threads=True,  # add the group's members to its invite-only private thread
    read_message_history=True,  # read the message a member reacted to; name threads
    attach_files=True,  # AMA exports
    # Give recognised contributors the role a community names (kudos setup role=…),
    # and take it back when the status lapses. Discord only lets the bot manage roles
    # below its own: put Kindred's role above the one it grants.
    manage_roles=True,
    # Events: create the guild scheduled event of a Kindred event, keep its time and
    # title in step, cancel it (Discord lets bots do that only with this permission).
    manage_events=True,
)
DEVELOPER_PORTAL = "https://discord.com/developers/applications"
# Gateway dispatches about "Interested" on a guild scheduled event → Inbound kinds.
INTEREST_EVENTS: dict[str, InboundKind] = {
    "GUILD_SCHEDULED_EVENT_USER_ADD": "event_interest_added",
    "GUILD_SCHEDULED_EVENT_USER_REMOVE": "event_interest_removed",
}
DONE = "Done."
FORM_TOO_SLOW = "That took too long to open the form; please press the button again."


def gateway_intents(registry: Registry) -> discord.Intents:
    """The gateway events the installed features need."""
    intents = discord.Intents.none()
    # Guild joins and leaves, channels and roles (for permission checks).
    intents.guilds = True
    # Privileged: member joins (welcome), member lists (pairing), admin checks.
    intents.members = True
    if {"reaction", "reaction_removed"} & set(registry.events):
        intents.guild_reactions = True
    if {"message", "message_deleted"} & set(registry.events):
        # Not privileged: messages arrive without their text unless Message Content
        # is on, and deletions carry none.
        intents.guild_messages = True
    if _text_readers(registry):
        # Privileged: the text of the message a member reacted to (or wrote).
        intents.message_content = True
    if set(INTEREST_EVENTS.values()) & set(registry.events):
        # Members pressing "Interested" on a guild scheduled event.
        intents.guild_scheduled_events = True
    return intents


def _text_readers(registry: Registry) -> list[str]:
    """The event handlers that read a message's text (EventSpec.reads_text)."""
    return sorted(
        event.name
        for kind in ("reaction", "message")
        for event in registry.events.get(kind, [])
        if event.reads_text
    )


def privileged_needs(registry: Registry) -> dict[str, str]:
    """Developer Portal toggle → why Kindred needs it, for the intents requested."""
    intents = gateway_intents(registry)
    needs = {"Server Members Intent": "welcome newcomers, list members for pairing, check admins"}
    if intents.message_content:
        needs["Message Content Intent"] = "read the messages members react to or write (" + (
            ", ".join(_text_readers(registry)) + ")"
        )
    return needs


def application_id(settings: Settings) -> int:
    """A bot token starts with its bot user id in base64; for a bot that id is the
    application id too."""
    token = settings.discord_bot_token.value
    if not token:
        raise StartupRefused("Set DISCORD_BOT_TOKEN first (Developer Portal → your app → Bot).")
    first = token.split(".", 1)[0]
    try:
        decoded = base64.urlsafe_b64decode(first + "=" * (-len(first) % 4)).decode("ascii")
    except (binascii.Error, UnicodeDecodeError):
        decoded = ""
    if not decoded.isdigit():
        raise StartupRefused(
            "DISCORD_BOT_TOKEN does not look like a bot token (copy it from Developer Portal "
            "→ your app → Bot → Reset Token)."
        )
    return int(decoded)


def invite_url(settings: Settings) -> str:
    """The OAuth2 URL that adds the bot with exactly the scopes and permissions used."""
    return discord.utils.oauth_url(application_id(settings), permissions=PERMISSIONS, scopes=SCOPES)


def rest_base(url: str) -> str:
    base = url.rstrip("/")
    return base if re.search(r"/api/v\d+$", base) else base + API_VERSION_PATH


@contextlib.contextmanager
def discord_endpoints(settings: Settings) -> Iterator[None]:
    """Point discord.py at `DISCORD_API_URL` / `DISCORD_GATEWAY_URL` while serving.

    Both are class attributes in discord.py, so they hold for the whole process:
    one process serves one Discord application."""
    saved = Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY
    if settings.discord_api_url:
        Route.BASE = rest_base(settings.discord_api_url)
    if settings.discord_gateway_url:
        DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(settings.discord_gateway_url)
    try:
        yield
    finally:
        Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY = saved


def _is_private(channel: object) -> bool:
    """Whether a channel is hidden from ordinary members (features never re-post
    from private places)."""
    if isinstance(channel, discord.DMChannel | discord.GroupChannel):
        return True
    if isinstance(channel, discord.Thread):
        if channel.type is discord.ChannelType.private_thread:
            return True
        channel = channel.parent
    if isinstance(channel, discord.abc.GuildChannel):
        return not channel.permissions_for(channel.guild.default_role).view_channel
    return False


def _reaction_key(kind: str, payload: discord.RawReactionActionEvent, reaction: str) -> str:
    """A reaction's delivery key. Discord sends no time or id with a reaction, so the
    minute it arrived stands in: a re-delivery after a resume (seconds later) acts
    once, while taking a reaction back and adding it again later is seen each time.
    A re-delivery that straddles a minute acts twice, which the features' reaction
    handlers absorb (one vote, one kudos per member and message)."""
    minute = datetime.now(UTC).strftime("%Y%m%d%H%M")
    return f"{kind}:{payload.message_id}:{payload.user_id}:{reaction}:{minute}"


def _message_ref(channel: object, channel_id: int, message_id: int, jump_url: str) -> MessageRef:
    thread_id = str(channel_id) if isinstance(channel, discord.Thread) else None
    return MessageRef(str(channel_id), str(message_id), thread_id, jump_url)


class DiscordService:
    """One discord.py client serving every guild the bot is in."""

    def __init__(
        self, kindred: Kindred, settings: Settings, *, guild_ready_timeout: float = 2.0
    ) -> None:
        self.kindred = kindred
        self.settings = settings
        self.intents = gateway_intents(kindred.registry)
        options: dict[str, Any] = {
            "intents": self.intents,
            # Nobody is pinged unless a message lists them (render.allowed_mentions).
            "allowed_mentions": discord.AllowedMentions.none(),
            "max_ratelimit_timeout": MAX_RATE_LIMIT_WAIT,
            # Large guilds are chunked when a feature first lists their members.
            "chunk_guilds_at_startup": False,
            "guild_ready_timeout": guild_ready_timeout,
            # discord.py reports "Interested" only for events and users it has cached
            # (a large server's members are not, until chunked); the raw dispatch
            # always arrives, so features that count interest read that instead.
            "enable_debug_events": self.intents.guild_scheduled_events,
        }
        # Kindred has no voice features: no warnings about voice libraries.
        discord.VoiceClient.warn_nacl = discord.VoiceClient.warn_dave = False
        self.client: discord.Client = (
            discord.AutoShardedClient(**options)
            if settings.discord_sharded
            else discord.Client(**options)
        )
        self.tree = app_commands.CommandTree(self.client)
        self.tree.add_command(build_command_group(kindred.registry, self._on_command))
        self.tree.on_error = self._on_command_error  # type: ignore[method-assign]
        self.platform = DiscordPlatform(self.client)
        self.ready = asyncio.Event()
        for handler in (
            self.on_ready,
            self.on_guild_available,
            self.on_guild_join,
            self.on_guild_remove,
            self.on_member_join,
            self.on_raw_member_remove,
            self.on_raw_reaction_add,
            self.on_raw_reaction_remove,
            self.on_raw_message_delete,
            self.on_socket_raw_receive,
            self.on_message,
            self.on_interaction,
            self.on_kindred_button,
        ):
            self.client.event(handler)

    # Lifecycle ------------------------------------------------------------------------

    async def run(self) -> None:
        """Log in, check intents, sync commands, start the core, serve until cancelled."""
        with discord_endpoints(self.settings):
            try:
                await self._login()
                await self._check_privileged_intents()
                self.client.add_dynamic_items(KindredButton)
                await self._sync_commands()
                await self._settle_shard_count()
                self.kindred.attach(self.platform)
                await self.kindred.start()
                try:
                    await self._connect()
                finally:
                    await self.kindred.stop()
            finally:
                await self.client.close()

    async def _login(self) -> None:
        try:
            await self.client.login(self.settings.discord_bot_token.value)
        except discord.LoginFailure as error:
            raise StartupRefused(
                "Discord rejected DISCORD_BOT_TOKEN. Copy a fresh one from "
                f"{DEVELOPER_PORTAL} → your app → Bot → Reset Token."
            ) from error
        except (discord.HTTPException, aiohttp.ClientError, OSError) as error:
            raise StartupRefused(f"Cannot reach Discord at {Route.BASE}: {error}") from error
        log.info(
            "Discord: logged in as %s (application %s); intents: %s",
            self.client.user,
            self.client.application_id,
            ", ".join(name for name, on in self.intents if on),
        )

    def _intents_refusal(self, missing: dict[str, str]) -> StartupRefused:
        lines = [f"- {toggle}: needed to {why}" for toggle, why in missing.items()]
        return StartupRefused(
            "Discord: Kindred needs privileged gateway intents that are off for this "
            "application:\n" + "\n".join(lines) + f"\nTurn them on at {DEVELOPER_PORTAL}/"
            f"{self.client.application_id}/bot under Privileged Gateway Intents, save, "
            "and start Kindred again."
        )

    async def _check_privileged_intents(self) -> None:
        """Say which toggle is off before the gateway refuses with a bare 4014."""
        flags = self.client.application_flags
        enabled = {
            "Server Members Intent": flags.gateway_guild_members
            or flags.gateway_guild_members_limited,
            "Message Content Intent": flags.gateway_message_content
            or flags.gateway_message_content_limited,
        }
        needs = privileged_needs(self.kindred.registry)
        missing = {toggle: why for toggle, why in needs.items() if not enabled[toggle]}
        if missing:
            raise self._intents_refusal(missing)

    async def _sync_commands(self) -> None:
        guild_ids = self.settings.discord_dev_guild_ids
        if not guild_ids:
            try:
                synced = await self.tree.sync()
            except discord.HTTPException as error:
                # The previous registration stays in place; members can still use it.
                log.error("Discord: could not sync /kindred globally: %s", error)
                return
            log.info("Discord: /kindred synced globally (%d top-level command)", len(synced))
            return
        for guild_id in guild_ids:
            guild = discord.Object(guild_id)
            self.tree.copy_global_to(guild=guild)
            try:
                await self.tree.sync(guild=guild)
            except discord.Forbidden as error:
                raise StartupRefused(
                    f"Cannot register /kindred in server {guild_id} (DISCORD_DEV_GUILD_IDS): "
                    "the bot is not in it, or was added without the applications.commands "
                    "scope. Add it with the URL from `kindred discord invite-url`."
                ) from error
            log.info("Discord: /kindred synced to development server %s", guild_id)

    async def _settle_shard_count(self) -> None:
        """AutoShardedClient connects to the gateway URL Discord recommends unless the
        shard count is known; with a gateway override, ask for the count ourselves."""
        if (
            isinstance(self.client, discord.AutoShardedClient)
            and self.settings.discord_gateway_url
            and self.client.shard_count is None
        ):
            shards, _, _ = await self.client.http.get_bot_gateway()
            self.client.shard_count = shards

    async def _connect(self) -> None:
        try:
            await self.client.connect(reconnect=True)
        except discord.PrivilegedIntentsRequired as error:
            raise self._intents_refusal(privileged_needs(self.kindred.registry)) from error

    async def on_ready(self) -> None:
        log.info("Discord: connected to %d server(s)", len(self.client.guilds))
        self.ready.set()

    # Communities ----------------------------------------------------------------------

    async def _register(self, guild: discord.Guild, *, active: bool) -> None:
        async with self.kindred.db.transaction() as session:
            community = await members.ensure_community(
                session, PLATFORM, str(guild.id), guild.name or ""
            )
            community.active = active

    async def on_guild_available(self, guild: discord.Guild) -> None:
        await self._register(guild, active=True)

    async def on_guild_join(self, guild: discord.Guild) -> None:
        log.info("Discord: added to server %s (%s)", guild.name, guild.id)
        await self._register(guild, active=True)

    async def on_guild_remove(self, guild: discord.Guild) -> None:
        log.info("Discord: removed from server %s (%s)", guild.name, guild.id)
        await self._register(guild, active=False)

    # Gateway events -------------------------------------------------------------------

    def _event(self, kind: InboundKind, guild_id: int, user_id: int, **fields: Any) -> Inbound:
        return Inbound(
            kind=kind,
            platform=PLATFORM,
            workspace_id=str(guild_id),
            user_id=str(user_id),
            **fields,
        )

    async def _notify(self, inbound: Inbound) -> None:
        """Gateway events have nobody to answer inline; features send via the outbox."""
        reply = await self.kindred.handle(inbound)
        if reply is not None:
            log.debug("no inline answer for a %s event; dropping its reply", inbound.kind)

    async def on_member_join(self, member: discord.Member) -> None:
        if member.bot:
            return
        joined = member.joined_at.isoformat() if member.joined_at else ""
        await self._notify(
            self._event(
                "member_joined",
                member.guild.id,
                member.id,
                user_name=member.display_name,
                # A re-delivery after a resume carries the same join time; a rejoin does not.
                event_id=f"join:{member.id}:{joined}",
                raw={"guild_id": member.guild.id, "user_id": member.id, "joined_at": joined},
            )
        )

    async def on_raw_member_remove(self, payload: discord.RawMemberRemoveEvent) -> None:
        user = payload.user
        if user.bot:
            return
        joined_at = user.joined_at if isinstance(user, discord.Member) else None
        # Without the join time (member not cached), a re-delivery comes within the hour.
        stamp = joined_at.isoformat() if joined_at else datetime.now(UTC).strftime("%Y-%m-%dT%H")
        await self._notify(
            self._event(
                "member_left",
                payload.guild_id,
                user.id,
                user_name=user.display_name,
                event_id=f"leave:{user.id}:{stamp}",
                raw={"guild_id": payload.guild_id, "user_id": user.id},
            )
        )

    async def on_socket_raw_receive(self, frame: str) -> None:
        """GUILD_SCHEDULED_EVENT_USER_ADD / _REMOVE, whether or not the event and the
        member are in discord.py's cache. Every gateway frame comes through here as
        text, so anything else is passed over before it is parsed a second time."""
        if "GUILD_SCHEDULED_EVENT_USER_" not in frame:
            return
        payload = json.loads(frame)
        kind = INTEREST_EVENTS.get(str(payload.get("t")))
        if kind is None or kind not in self.kindred.registry.events:
            return
        data = payload.get("d") or {}
        event_id, user_id = str(data["guild_scheduled_event_id"]), int(data["user_id"])
        await self._notify(
            self._event(
                kind,
                int(data["guild_id"]),
                user_id,
                value=event_id,
                # A resumed session replays a dispatch with its sequence number.
                event_id=f"interest:{event_id}:{user_id}:{kind}:{payload.get('s')}",
                raw=data,
            )
        )

    async def on_raw_reaction_add(self, payload: discord.RawReactionActionEvent) -> None:
        if payload.guild_id is None or "reaction" not in self.kindred.registry.events:
            return
        if (payload.member is not None and payload.member.bot) or (
            self.client.user is not None and payload.user_id == self.client.user.id
        ):
            return
        channel = self.client.get_channel(payload.channel_id)
        partial = self.client.get_partial_messageable(
            payload.channel_id, guild_id=payload.guild_id
        ).get_partial_message(payload.message_id)
        emoji = payload.emoji
        reaction = str(emoji) if emoji.is_unicode_emoji() else (emoji.name or "")
        await self._notify(
            self._event(
                "reaction",
                payload.guild_id,
                payload.user_id,
                channel_id=str(payload.channel_id),
                reaction=reaction,
                message=_message_ref(
                    channel, payload.channel_id, payload.message_id, partial.jump_url
                ),
                text=await self._message_text(partial),
                channel_is_private=_is_private(channel),
                message_author_id=self._author(payload.guild_id, payload.message_author_id),
                user_name=payload.member.display_name if payload.member else None,
                event_id=_reaction_key("reaction", payload, reaction),
                raw={"channel_id": payload.channel_id, "message_id": payload.message_id},
            )
        )

    def _author(self, guild_id: int, author_id: int | None) -> str | None:
        """Who wrote a reacted message, when that is a person: None for Kindred, other
        bots (members are cached: the members intent is on), or an unknown author."""
        if author_id is None or (self.client.user is not None and author_id == self.client.user.id):
            return None
        guild = self.client.get_guild(guild_id)
        member = guild.get_member(author_id) if guild is not None else None
        return None if member is not None and member.bot else str(author_id)

    async def on_raw_reaction_remove(self, payload: discord.RawReactionActionEvent) -> None:
        if payload.guild_id is None or "reaction_removed" not in self.kindred.registry.events:
            return
        if self.client.user is not None and payload.user_id == self.client.user.id:
            return
        channel = self.client.get_channel(payload.channel_id)
        emoji = payload.emoji
        reaction = str(emoji) if emoji.is_unicode_emoji() else (emoji.name or "")
        jump_url = (
            self.client.get_partial_messageable(payload.channel_id, guild_id=payload.guild_id)
            .get_partial_message(payload.message_id)
            .jump_url
        )
        await self._notify(
            self._event(
                "reaction_removed",
                payload.guild_id,
                payload.user_id,
                channel_id=str(payload.channel_id),
                reaction=reaction,
                message=_message_ref(channel, payload.channel_id, payload.message_id, jump_url),
                channel_is_private=_is_private(channel),
                event_id=_reaction_key("unreaction", payload, reaction),
                raw={"channel_id": payload.channel_id, "message_id": payload.message_id},
            )
        )

    async def on_raw_message_delete(self, payload: discord.RawMessageDeleteEvent) -> None:
        if payload.guild_id is None or "message_deleted" not in self.kindred.registry.events:
            return
        cached = payload.cached_message
        author = cached.author.id if cached is not None else None
        channel = self.client.get_channel(payload.channel_id)
        jump_url = (
            self.client.get_partial_messageable(payload.channel_id, guild_id=payload.guild_id)
            .get_partial_message(payload.message_id)
            .jump_url
        )
        await self._notify(
            Inbound(
                kind="message_deleted",
                platform=PLATFORM,
                workspace_id=str(payload.guild_id),
                user_id=str(author) if author is not None else "",
                channel_id=str(payload.channel_id),
                message=_message_ref(channel, payload.channel_id, payload.message_id, jump_url),
                channel_is_private=_is_private(channel),
                # A message is deleted once: its id is the delivery key.
                event_id=f"deleted:{payload.message_id}",
                raw={"channel_id": payload.channel_id, "message_id": payload.message_id},
            )
        )

    async def _message_text(self, partial: discord.PartialMessage) -> str:
        cached = discord.utils.get(self.client.cached_messages, id=partial.id)
        if cached is not None:
            return cached.content
        try:
            return (await partial.fetch()).content
        except discord.HTTPException as error:
            log.warning("Discord: cannot read message %s: %s", partial.id, error)
            return ""

    async def on_message(self, message: discord.Message) -> None:
        """A member's message in a guild channel (the health report counts them)."""
        if (
            message.guild is None
            or message.author.bot
            or "message" not in self.kindred.registry.events
        ):
            return
        await self._notify(
            self._event(
                "message",
                message.guild.id,
                message.author.id,
                channel_id=str(message.channel.id),
                text=message.content,
                message=_message_ref(
                    message.channel, message.channel.id, message.id, message.jump_url
                ),
                channel_is_private=_is_private(message.channel),
                user_name=message.author.display_name,
                event_id=f"message:{message.id}",
                options=_reply_to(message),
            )
        )

    # Interactions ---------------------------------------------------------------------

    def _interaction_inbound(
        self, interaction: discord.Interaction, kind: InboundKind, workspace_id: str, **fields: Any
    ) -> Inbound:
        message = interaction.message
        ref = None
        if message is not None and interaction.channel_id is not None:
            ref = _message_ref(
                interaction.channel, interaction.channel_id, message.id, message.jump_url
            )
        return Inbound(
            kind=kind,
            platform=PLATFORM,
            workspace_id=workspace_id,
            user_id=str(interaction.user.id),
            channel_id=str(interaction.channel_id) if interaction.channel_id else None,
            message=ref,
            event_id=str(interaction.id),
            channel_is_private=_is_private(interaction.channel),
            user_name=interaction.user.display_name,
            raw=dict(interaction.data or {}),
            **fields,
        )

    async def _on_command(
        self, interaction: discord.Interaction, spec: CommandSpec, options: dict[str, Any]
    ) -> None:
        inbound = self._interaction_inbound(
            interaction,
            "command",
            str(interaction.guild_id),
            command_path=spec.path,
            options=options,
        )
        await self._answer(interaction, inbound)

    async def on_kindred_button(self, interaction: discord.Interaction, target: CustomId) -> None:
        # In a DM there is no guild: the button says which community sent it.
        workspace_id = str(interaction.guild_id) if interaction.guild_id else target.workspace_id
        inbound = self._interaction_inbound(
            interaction, "button", workspace_id, action_id=target.action_id, value=target.value
        )
        await self._answer(interaction, inbound)

    async def on_interaction(self, interaction: discord.Interaction) -> None:
        """Form submissions (commands and buttons arrive through the tree and
        `KindredButton`)."""
        if interaction.type is not discord.InteractionType.modal_submit:
            return
        data: dict[str, Any] = dict(interaction.data or {})
        target = decode_custom_id(str(data.get("custom_id", "")))
        if target is None:
            return
        workspace_id = str(interaction.guild_id) if interaction.guild_id else target.workspace_id
        inbound = self._interaction_inbound(
            interaction,
            "modal_submit",
            workspace_id,
            action_id=target.action_id,
            value=target.value,
            options=submitted_values(data.get("components", [])),
        )
        await self._answer(interaction, inbound)

    async def _answer(self, interaction: discord.Interaction, inbound: Inbound) -> None:
        """Run the handler; answer directly if it is quick, otherwise defer first."""
        handling = asyncio.ensure_future(self.kindred.handle(inbound))
        thinking = False
        try:
            try:
                reply = await asyncio.wait_for(asyncio.shield(handling), ANSWER_BUDGET)
            except TimeoutError:
                thinking = await self._defer(interaction, inbound)
                reply = await handling
        except Exception:
            # Handlers' own errors are answered by the core; this is infrastructure
            # (the database is down, say). The member still gets an answer.
            reference = uuid.uuid4().hex[:8]
            log.exception("Discord: %s %s failed (ref %s)", inbound.kind, interaction.id, reference)
            reply = Reply.text(f"Something went wrong on our side. (ref {reference})")
        try:
            await self._respond(interaction, inbound, reply, thinking=thinking)
        except (discord.HTTPException, PlatformError) as error:
            log.warning(
                "Discord: could not answer %s interaction %s: %s",
                inbound.kind,
                interaction.id,
                error,
            )

    async def _defer(self, interaction: discord.Interaction, inbound: Inbound) -> bool:
        """Acknowledge now; True when Discord shows a 'thinking…' message to replace."""
        if inbound.kind == "command" or interaction.message is None:
            await interaction.response.defer(ephemeral=True, thinking=True)
            return True
        await interaction.response.defer()
        return False

    async def _respond(
        self,
        interaction: discord.Interaction,
        inbound: Inbound,
        reply: Reply | None,
        *,
        thinking: bool,
    ) -> None:
        workspace_id = inbound.workspace_id
        response = interaction.response
        if reply is not None and reply.modal is not None:
            if not response.is_done():
                await response.send_modal(build_modal(workspace_id, reply.modal))
                return
            reply = Reply.text(FORM_TOO_SLOW)
        if reply is not None and reply.update_original is not None and interaction.message:
            rendered = render_message(workspace_id, reply.update_original)
            fields: dict[str, Any] = {
                "content": rendered.pieces[0],
                "view": rendered.view(),
                "allowed_mentions": rendered.allowed_mentions,
            }
            if not response.is_done():
                await response.edit_message(**fields)
            else:
                await interaction.edit_original_response(**fields)
        if reply is not None and reply.message is not None:
            await self._send_reply(
                interaction, workspace_id, reply.message, public=reply.public, thinking=thinking
            )
        elif thinking:
            await interaction.edit_original_response(content=DONE)
        elif not response.is_done():
            if inbound.kind == "command":
                await response.send_message(DONE, ephemeral=True)
            else:
                # A button whose handler had nothing to say: acknowledge silently.
                await response.defer()

    async def _send_reply(
        self,
        interaction: discord.Interaction,
        workspace_id: str,
        message: Message,
        *,
        public: bool,
        thinking: bool,
    ) -> None:
        rendered = render_message(workspace_id, message)
        ephemeral = not public
        if thinking and public:
            # The 'thinking…' message is ephemeral; a public answer replaces it.
            await interaction.delete_original_response()
            thinking = False
        last = len(rendered.pieces) - 1
        for index, piece in enumerate(rendered.pieces):
            fields: dict[str, Any] = {"allowed_mentions": rendered.allowed_mentions}
            view = rendered.view() if index == last else None
            file = rendered.file() if index == last else None
            if view is not None:
                fields["view"] = view
            if index == 0 and thinking:
                if file is not None:
                    fields["attachments"] = [file]
                await interaction.edit_original_response(content=piece, **fields)
                continue
            if file is not None:
                fields["file"] = file
            if not interaction.response.is_done():
                await interaction.response.send_message(piece, ephemeral=ephemeral, **fields)
            else:
                await interaction.followup.send(piece, ephemeral=ephemeral, **fields)

    async def _on_command_error(
        self, interaction: discord.Interaction, error: app_commands.AppCommandError
    ) -> None:
        if isinstance(error, app_commands.TransformerError):
            text = f"That value for `{error.transformer._error_display_name}` cannot be used here."
        elif isinstance(
            error, app_commands.CommandNotFound | app_commands.CommandSignatureMismatch
        ):
            text = (
                "Kindred's commands were just updated and Discord has not caught up yet. "
                "Try again in a minute."
            )
        else:
            reference = uuid.uuid4().hex[:8]
            log.error(
                "Discord: command failed (ref %s)", reference, exc_info=error.__cause__ or error
            )
            text = f"Something went wrong on our side and nothing was changed. (ref {reference})"
        with contextlib.suppress(discord.HTTPException):
            if interaction.response.is_done():
                await interaction.followup.send(text, ephemeral=True)
            else:
                await interaction.response.send_message(text, ephemeral=True)


async def serve_discord(kindred: Kindred, settings: Settings) -> None:
    """Serve every guild the bot is in until cancelled (`kindred run --platform discord`)."""
    await DiscordService(kindred, settings).run()


def _reply_to(message: discord.Message) -> dict[str, str]:
    """Whom a reply answers (`reply_to`), when the gateway resolved the message it
    replies to; other members' replies to a newcomer time their first answer."""
    reference = message.reference
    resolved = reference.resolved if reference is not None else None
    if isinstance(resolved, discord.Message) and not resolved.author.bot:
        return {"reply_to": str(resolved.author.id)}
    return {}
