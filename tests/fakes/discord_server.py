"""A local Discord for the adapter's end-to-end tests: REST under `/api/v10` and a
gateway websocket on 127.0.0.1, speaking the wire formats the unmodified
discord.py client expects (DESIGN.md §6).

The gateway sends HELLO, reads IDENTIFY (recording the intents, refusing
privileged intents the application has not enabled with close code 4014), sends
READY and one GUILD_CREATE per guild, answers heartbeats, and lets the test push
events (`dispatch`, `member_join`, `command`, `click`, `submit`). REST records
every call, keeps the messages, DM channels and threads it creates, answers
interaction callbacks and follow-ups, and returns 429s (with `Via`, JSON
`retry_after` and `X-RateLimit-*` headers) when told to.

Gotchas it honours: discord.py parses JSON only when Content-Type is exactly
`application/json`; a 429 without `Via` looks like a Cloudflare ban; interactions
need `attachment_size_limit`; `member_count` equals the members sent, so the
client does not ask for member chunks.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiohttp import WSMsgType, web

API_PREFIX = "/api/v10/"
ADMINISTRATOR = 1 << 3
VIEW_CHANNEL = 1 << 10
EVERYONE_PERMISSIONS = (1 << 10) | (1 << 11) | (1 << 16) | (1 << 38)
EPHEMERAL = 1 << 6
GATEWAY_GUILD_MEMBERS_LIMITED = 1 << 15
GATEWAY_MESSAGE_CONTENT_LIMITED = 1 << 19
INTENT_MEMBERS = 1 << 1
INTENT_MESSAGE_CONTENT = 1 << 15
ATTACHMENT_SIZE_LIMIT = 10 * 1024 * 1024
# Discord refuses a command whose names, descriptions and choices add up to more.
COMMAND_SIZE_LIMIT = 8000
WAIT_SECONDS = 5.0


def now_iso() -> str:
    return datetime.now(UTC).isoformat()


def command_size(command: dict[str, Any]) -> int:
    """What Discord counts toward an application command's size: every name,
    description and choice name and value, options and subcommands included."""
    size = len(command.get("name", "")) + len(command.get("description", ""))
    for choice in command.get("choices") or []:
        size += len(choice["name"]) + len(str(choice["value"]))
    return size + sum(command_size(option) for option in command.get("options") or [])


def bot_token(application_id: int) -> str:
    """A token shaped like Discord's: the bot's id in base64, a timestamp, an HMAC."""
    encoded = base64.b64encode(str(application_id).encode()).decode().rstrip("=")
    return f"{encoded}.GfakeT.fake-signature-not-a-secret"


def json_response(
    data: Any, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    # Exactly `application/json`: aiohttp's json_response adds a charset, and then
    # discord.py would treat the body as text.
    return web.Response(
        body=json.dumps(data).encode(),
        status=status,
        content_type="application/json",
        headers=headers,
    )


def error(status: int, code: int, message: str) -> web.Response:
    return json_response({"message": message, "code": code}, status)


@dataclass
class Member:
    user_id: int
    name: str
    admin: bool = False
    bot: bool = False
    joined_at: str = field(default_factory=now_iso)

    def user(self) -> dict[str, Any]:
        return {
            "id": str(self.user_id),
            "username": self.name.lower(),
            "discriminator": "0",
            "global_name": self.name,
            "avatar": None,
            "bot": self.bot,
        }

    def member(self, guild_id: int, *, with_user: bool = True) -> dict[str, Any]:
        data: dict[str, Any] = {
            "nick": None,
            "avatar": None,
            "roles": [str(admin_role_id(guild_id))] if self.admin else [],
            "joined_at": self.joined_at,
            "premium_since": None,
            "deaf": False,
            "mute": False,
            "pending": False,
            "flags": 0,
        }
        if with_user:
            data["user"] = self.user()
        return data


def admin_role_id(guild_id: int) -> int:
    return guild_id + 1


@dataclass
class Channel:
    channel_id: int
    name: str
    private: bool = False


@dataclass
class Guild:
    guild_id: int
    name: str
    owner_id: int
    channels: dict[int, Channel] = field(default_factory=dict)
    members: dict[int, Member] = field(default_factory=dict)
    # Large guilds arrive with only the bot's member; the rest come in chunks (op 8).
    large: bool = False
    bot_id: int = 0
    # Roles beyond @everyone and Organisers (id → name), and who holds which.
    extra_roles: dict[int, str] = field(default_factory=dict)
    member_roles: dict[int, set[int]] = field(default_factory=dict)

    def channel_payload(self, channel: Channel) -> dict[str, Any]:
        overwrites = []
        if channel.private:
            overwrites.append(
                {"id": str(self.guild_id), "type": 0, "allow": "0", "deny": str(VIEW_CHANNEL)}
            )
        return {
            "id": str(channel.channel_id),
            "type": 0,
            "guild_id": str(self.guild_id),
            "name": channel.name,
            "position": 0,
            "permission_overwrites": overwrites,
            "parent_id": None,
            "nsfw": False,
            "topic": None,
            "last_message_id": None,
            "rate_limit_per_user": 0,
        }

    def payload(self) -> dict[str, Any]:
        roles = [
            {
                "id": str(self.guild_id),
                "name": "@everyone",
                "permissions": str(EVERYONE_PERMISSIONS),
                "position": 0,
                "color": 0,
                "hoist": False,
                "managed": False,
                "mentionable": False,
                "flags": 0,
            },
            {
                "id": str(admin_role_id(self.guild_id)),
                "name": "Organisers",
                "permissions": str(ADMINISTRATOR),
                "position": 1,
                "color": 0,
                "hoist": False,
                "managed": False,
                "mentionable": False,
                "flags": 0,
            },
        ]
        roles += [
            {
                "id": str(role_id),
                "name": name,
                "permissions": "0",
                "position": 1,
                "color": 0,
                "hoist": False,
                "managed": False,
                "mentionable": False,
                "flags": 0,
            }
            for role_id, name in self.extra_roles.items()
        ]
        first_channel = next(iter(self.channels), None)
        return {
            "id": str(self.guild_id),
            "name": self.name,
            "icon": None,
            "splash": None,
            "discovery_splash": None,
            "owner_id": str(self.owner_id),
            "features": [],
            "emojis": [],
            "stickers": [],
            "roles": roles,
            "members": [
                member.member(self.guild_id)
                for member in self.members.values()
                if not self.large or member.user_id == self.bot_id
            ],
            # Equal to the members sent (unless large), so discord.py has them all.
            "member_count": len(self.members),
            "channels": [self.channel_payload(channel) for channel in self.channels.values()],
            "threads": [],
            "presences": [],
            "voice_states": [],
            "stage_instances": [],
            "guild_scheduled_events": [],
            "large": self.large,
            "unavailable": False,
            "joined_at": now_iso(),
            "system_channel_id": str(first_channel) if first_channel else None,
            "premium_tier": 0,
            "preferred_locale": "en-US",
            "verification_level": 0,
            "explicit_content_filter": 0,
            "default_message_notifications": 0,
            "mfa_level": 0,
            "nsfw_level": 0,
            "afk_timeout": 300,
        }


@dataclass
class Request:
    method: str
    path: str
    body: Any
    status: int = 200


@dataclass
class Sent:
    """A message as Discord received it (posted, edited or answered)."""

    channel_id: int
    message_id: int
    content: str
    components: list[dict[str, Any]]
    allowed_mentions: dict[str, Any] | None
    flags: int = 0
    files: list[str] = field(default_factory=list)
    via: str = "channel"
    # Each file's alt text (the attachment's `description`), None where it had none.
    descriptions: list[str | None] = field(default_factory=list)

    @property
    def custom_ids(self) -> list[str]:
        return [
            component["custom_id"]
            for row in self.components
            for component in row.get("components", [])
            if "custom_id" in component
        ]


@dataclass
class Thread:
    thread_id: int
    parent_id: int
    guild_id: int
    name: str
    private: bool
    invitable: bool
    members: list[int] = field(default_factory=list)

    def payload(self, owner_id: int) -> dict[str, Any]:
        return {
            "id": str(self.thread_id),
            "type": 12 if self.private else 11,
            "guild_id": str(self.guild_id),
            "parent_id": str(self.parent_id),
            "name": self.name,
            "owner_id": str(owner_id),
            "last_message_id": None,
            "rate_limit_per_user": 0,
            "message_count": 0,
            "member_count": len(self.members),
            "flags": 0,
            "thread_metadata": {
                "archived": False,
                "auto_archive_duration": 10080,
                "archive_timestamp": now_iso(),
                "locked": False,
                "invitable": self.invitable,
            },
        }


@dataclass
class Interaction:
    interaction_id: int
    token: str
    guild_id: int | None
    channel_id: int
    # The message whose button was pressed (or whose form was submitted), if any.
    message_id: int | None = None
    # What `@original` edits: the answer, or for (deferred) updates the pressed message.
    original_id: int | None = None
    # ("callback", type, data) | ("edit_original", data) | ("followup", data) | ("delete_original",)
    answers: list[tuple[Any, ...]] = field(default_factory=list)

    @property
    def callback_type(self) -> int | None:
        for answer in self.answers:
            if answer[0] == "callback":
                return int(answer[1])
        return None


@dataclass
class RateLimitRule:
    method: str
    pattern: re.Pattern[str]
    remaining: int
    retry_after: float
    is_global: bool


@dataclass
class GatewaySession:
    socket: web.WebSocketResponse
    sequence: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def send(self, op: int, data: Any, event: str | None = None) -> None:
        async with self.lock:
            frame: dict[str, Any] = {"op": op, "d": data, "s": None, "t": None}
            if op == 0:
                frame["s"] = next(self.sequence)
                frame["t"] = event
            await self.socket.send_str(json.dumps(frame))


class FakeDiscord:
    def __init__(
        self,
        *,
        application_id: int = 870000000000000001,
        privileged_enabled: tuple[str, ...] = ("members", "message_content"),
        gateway_refuses_privileged: bool = False,
        heartbeat_interval_ms: int = 41250,
    ) -> None:
        self.application_id = application_id
        self.token = bot_token(application_id)
        self.privileged_enabled = set(privileged_enabled)
        # Simulates flags that say "enabled" while the gateway still refuses (4014).
        self.gateway_refuses_privileged = gateway_refuses_privileged
        self.heartbeat_interval_ms = heartbeat_interval_ms
        self.bot = Member(application_id, "Kindred", bot=True)
        self.guilds: dict[int, Guild] = {}
        self._ids = itertools.count(1_300_000_000_000_000_000)
        self.requests: list[Request] = []
        self.sent: list[Sent] = []
        self.messages: dict[int, dict[str, Any]] = {}
        # Enforced nonces of the bot's messages (Discord keeps them a few minutes).
        self.nonces: dict[str, int] = {}
        self.dm_channels: dict[int, int] = {}
        self.threads: dict[int, Thread] = {}
        self.interactions: dict[int, Interaction] = {}
        self.commands: dict[int | None, list[dict[str, Any]]] = {}
        # Guild scheduled events by id, as the bot created and last changed them.
        self.scheduled_events: dict[int, dict[str, Any]] = {}
        self.identifies: list[dict[str, Any]] = []
        self.heartbeats = 0
        self.sessions: list[GatewaySession] = []
        self.rate_limits: list[RateLimitRule] = []
        self.rate_limited: list[Request] = []
        self._changed = asyncio.Condition()
        self._runner: web.AppRunner | None = None
        self.port = 0

    # World ----------------------------------------------------------------------------

    def new_id(self) -> int:
        return next(self._ids)

    def add_guild(
        self,
        name: str,
        members: list[Member],
        channels: list[Channel],
        guild_id: int | None = None,
        *,
        large: bool = False,
    ) -> Guild:
        guild_id = guild_id or self.new_id()
        owner = members[0].user_id if members else 0
        guild = Guild(guild_id, name, owner, large=large, bot_id=self.bot.user_id)
        guild.members = {self.bot.user_id: self.bot}
        guild.members.update({member.user_id: member for member in members})
        guild.channels = {channel.channel_id: channel for channel in channels}
        self.guilds[guild_id] = guild
        return guild

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/v10"

    @property
    def gateway_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/gateway"

    def rate_limit(
        self,
        method: str,
        pattern: str,
        *,
        times: int = 1,
        retry_after: float = 0.1,
        is_global: bool = False,
    ) -> None:
        """The next `times` matching requests get a 429."""
        self.rate_limits.append(
            RateLimitRule(method, re.compile(pattern), times, retry_after, is_global)
        )

    # Server ---------------------------------------------------------------------------

    async def start(self) -> None:
        app = web.Application(client_max_size=32 * 1024 * 1024)
        app.router.add_get("/gateway", self._gateway)
        app.router.add_route("*", API_PREFIX + "{tail:.*}", self._rest)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]

    async def stop(self) -> None:
        for session in list(self.sessions):
            await session.socket.close()
        if self._runner is not None:
            await self._runner.cleanup()

    async def _changed_now(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    async def wait_until(
        self, condition: Callable[[], bool], what: str = "condition", seconds: float = WAIT_SECONDS
    ) -> None:
        """Wait (at most `seconds`) until `condition()` holds after a request or frame."""
        try:
            async with asyncio.timeout(seconds), self._changed:
                while not condition():
                    with contextlib.suppress(TimeoutError):
                        # Also wakes on a poll: some changes happen outside this fake.
                        await asyncio.wait_for(self._changed.wait(), 0.05)
        except TimeoutError:
            raise AssertionError(f"timed out waiting for {what}") from None

    # Gateway --------------------------------------------------------------------------

    async def _gateway(self, request: web.Request) -> web.WebSocketResponse:
        socket = web.WebSocketResponse()
        await socket.prepare(request)
        session = GatewaySession(socket)
        await session.send(10, {"heartbeat_interval": self.heartbeat_interval_ms})
        async for frame in socket:
            if frame.type is not WSMsgType.TEXT:
                break
            payload = json.loads(frame.data)
            op, data = payload.get("op"), payload.get("d")
            if op == 1:
                self.heartbeats += 1
                await session.send(11, None)
            elif op == 2:
                if not await self._identify(session, data):
                    break
            elif op == 6:
                # No resumes here: the client identifies afresh.
                await session.send(9, False)
            elif op == 8:
                await self._member_chunk(session, data)
            await self._changed_now()
        if session in self.sessions:
            self.sessions.remove(session)
        await self._changed_now()
        return socket

    async def _identify(self, session: GatewaySession, data: dict[str, Any]) -> bool:
        self.identifies.append(data)
        intents = int(data.get("intents", 0))
        wanted = {
            name
            for name, bit in (
                ("members", INTENT_MEMBERS),
                ("message_content", INTENT_MESSAGE_CONTENT),
            )
            if intents & bit
        }
        if self.gateway_refuses_privileged or wanted - self.privileged_enabled:
            await session.socket.close(code=4014, message=b"Disallowed intent(s).")
            return False
        shard = data.get("shard", [0, 1])
        await session.send(
            0,
            {
                "v": 10,
                "user": {**self.bot.user(), "verified": True, "mfa_enabled": False, "flags": 0},
                "guilds": [{"id": str(guild_id), "unavailable": True} for guild_id in self.guilds],
                "session_id": f"session-{self.new_id()}",
                "resume_gateway_url": self.gateway_url,
                "application": {"id": str(self.application_id), "flags": self.application_flags},
                "shard": shard,
                "private_channels": [],
                "relationships": [],
            },
            "READY",
        )
        for guild_id, guild in self.guilds.items():
            if (guild_id >> 22) % shard[1] == shard[0]:
                await session.send(0, guild.payload(), "GUILD_CREATE")
        self.sessions.append(session)
        return True

    async def _member_chunk(self, session: GatewaySession, data: dict[str, Any]) -> None:
        guild = self.guilds[int(data["guild_id"])]
        chunk = {
            "guild_id": str(guild.guild_id),
            "members": [member.member(guild.guild_id) for member in guild.members.values()],
            "chunk_index": 0,
            "chunk_count": 1,
            "nonce": data.get("nonce"),
        }
        await session.send(0, chunk, "GUILD_MEMBERS_CHUNK")

    @property
    def application_flags(self) -> int:
        flags = 0
        if "members" in self.privileged_enabled:
            flags |= GATEWAY_GUILD_MEMBERS_LIMITED
        if "message_content" in self.privileged_enabled:
            flags |= GATEWAY_MESSAGE_CONTENT_LIMITED
        return flags

    async def dispatch(self, event: str, data: dict[str, Any]) -> None:
        """Push one event to every connected session."""
        assert self.sessions, "no gateway session is connected"
        for session in list(self.sessions):
            await session.send(0, data, event)

    async def member_join(self, guild_id: int, member: Member) -> None:
        guild = self.guilds[guild_id]
        guild.members[member.user_id] = member
        await self.dispatch(
            "GUILD_MEMBER_ADD", {**member.member(guild_id), "guild_id": str(guild_id)}
        )

    async def interested(
        self, guild_id: int, event_id: int, user_id: int, *, added: bool = True
    ) -> None:
        """A member presses (or takes back) "Interested" on a scheduled event."""
        event = "GUILD_SCHEDULED_EVENT_USER_" + ("ADD" if added else "REMOVE")
        data = {
            "guild_scheduled_event_id": str(event_id),
            "user_id": str(user_id),
            "guild_id": str(guild_id),
        }
        await self.dispatch(event, data)

    # Interactions ---------------------------------------------------------------------

    def _interaction(
        self,
        kind: int,
        user_id: int,
        data: dict[str, Any],
        *,
        guild_id: int | None,
        channel_id: int,
        message: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        interaction_id = self.new_id()
        token = f"interaction-token-{interaction_id}"
        self.interactions[interaction_id] = Interaction(
            interaction_id,
            token,
            guild_id,
            channel_id,
            int(message["id"]) if message is not None else None,
        )
        payload: dict[str, Any] = {
            "id": str(interaction_id),
            "application_id": str(self.application_id),
            "type": kind,
            "token": token,
            "version": 1,
            "data": data,
            "locale": "en-US",
            "app_permissions": str(EVERYONE_PERMISSIONS),
            "entitlements": [],
            "attachment_size_limit": ATTACHMENT_SIZE_LIMIT,
        }
        if guild_id is not None:
            guild = self.guilds[guild_id]
            member = guild.members[user_id]
            permissions = ADMINISTRATOR if member.admin else EVERYONE_PERMISSIONS
            payload.update(
                guild_id=str(guild_id),
                guild_locale="en-US",
                member={**member.member(guild_id), "permissions": str(permissions)},
                channel=self._channel_payload(channel_id) or {"id": str(channel_id), "type": 0},
                channel_id=str(channel_id),
                context=0,
                authorizing_integration_owners={"0": str(guild_id)},
            )
        else:
            user = self._user(user_id)
            payload.update(
                user=user,
                channel={"id": str(channel_id), "type": 1, "recipients": [user]},
                channel_id=str(channel_id),
                context=1,
                authorizing_integration_owners={"0": str(user_id)},
            )
        if message is not None:
            payload["message"] = message
        return payload

    def _user(self, user_id: int) -> dict[str, Any]:
        for guild in self.guilds.values():
            if user_id in guild.members:
                return guild.members[user_id].user()
        return Member(user_id, f"user{user_id}").user()

    async def command(
        self,
        guild_id: int,
        channel_id: int,
        user_id: int,
        path: tuple[str, ...],
        options: list[dict[str, Any]],
        resolved: dict[str, Any] | None = None,
        *,
        kind: int = 2,
    ) -> Interaction:
        """`/kindred <path> <options>` as Discord sends it (guild commands carry the guild);
        `kind=4` asks for autocomplete of the option marked `focused`."""
        nested: list[dict[str, Any]] = options
        if len(path) == 2:
            nested = [
                {
                    "type": 2,
                    "name": path[0],
                    "options": [{"type": 1, "name": path[1], "options": options}],
                }
            ]
        else:
            nested = [{"type": 1, "name": path[0], "options": options}]
        guild_commands = self.commands.get(guild_id) or self.commands.get(None) or []
        command_id = next(
            (int(c["id"]) for c in guild_commands if c["name"] == "kindred"), self.new_id()
        )
        data: dict[str, Any] = {
            "id": str(command_id),
            "name": "kindred",
            "type": 1,
            "options": nested,
            "resolved": resolved or {},
        }
        if guild_id in self.commands:
            data["guild_id"] = str(guild_id)
        payload = self._interaction(kind, user_id, data, guild_id=guild_id, channel_id=channel_id)
        await self.dispatch("INTERACTION_CREATE", payload)
        return self.interactions[int(payload["id"])]

    async def click(self, message_id: int, custom_id: str, user_id: int) -> Interaction:
        """A button press on a message this fake stored (in a guild or a DM)."""
        message = self.messages[message_id]
        guild_id = int(message["guild_id"]) if message.get("guild_id") else None
        payload = self._interaction(
            3,
            user_id,
            {"custom_id": custom_id, "component_type": 2},
            guild_id=guild_id,
            channel_id=int(message["channel_id"]),
            message=message,
        )
        await self.dispatch("INTERACTION_CREATE", payload)
        return self.interactions[int(payload["id"])]

    async def submit(
        self,
        custom_id: str,
        values: dict[str, str],
        user_id: int,
        *,
        guild_id: int | None,
        channel_id: int,
        message_id: int | None = None,
    ) -> Interaction:
        rows = [
            {"type": 1, "components": [{"type": 4, "custom_id": key, "value": value}]}
            for key, value in values.items()
        ]
        payload = self._interaction(
            5,
            user_id,
            {"custom_id": custom_id, "components": rows},
            guild_id=guild_id,
            channel_id=channel_id,
            message=self.messages[message_id] if message_id else None,
        )
        await self.dispatch("INTERACTION_CREATE", payload)
        return self.interactions[int(payload["id"])]

    async def answered(
        self, interaction: Interaction, count: int = 1, seconds: float = WAIT_SECONDS
    ) -> list[tuple[Any, ...]]:
        await self.wait_until(
            lambda: len(interaction.answers) >= count,
            f"answer to {interaction.interaction_id}",
            seconds,
        )
        return interaction.answers

    # REST -----------------------------------------------------------------------------

    async def _rest(self, request: web.Request) -> web.StreamResponse:
        path = request.match_info["tail"]
        body, files = await self._body(request)
        recorded = Request(request.method, path, body)
        for rule in self.rate_limits:
            if rule.remaining > 0 and rule.method == request.method and rule.pattern.search(path):
                rule.remaining -= 1
                recorded.status = 429
                self.requests.append(recorded)
                self.rate_limited.append(recorded)
                await self._changed_now()
                return self._too_many(rule)
        self.requests.append(recorded)
        response = await self._route(request.method, path, body, files, request)
        recorded.status = response.status
        await self._changed_now()
        return response

    def _too_many(self, rule: RateLimitRule) -> web.Response:
        headers = {
            "Via": "1.1 google",
            "Retry-After": str(max(1, round(rule.retry_after))),
            "X-RateLimit-Limit": "5",
            "X-RateLimit-Remaining": "0",
            "X-RateLimit-Reset-After": f"{rule.retry_after:.3f}",
            "X-RateLimit-Reset": f"{time.time() + rule.retry_after:.3f}",
            "X-RateLimit-Bucket": f"fake-{rule.pattern.pattern}",
            "X-RateLimit-Scope": "global" if rule.is_global else "user",
        }
        if rule.is_global:
            headers["X-RateLimit-Global"] = "true"
        body = {
            "message": "You are being rate limited.",
            "retry_after": rule.retry_after,
            "global": rule.is_global,
        }
        return json_response(body, 429, headers)

    async def _body(self, request: web.Request) -> tuple[Any, list[str]]:
        if request.content_type.startswith("multipart/"):
            form = await request.post()
            files = [part.filename for key, part in form.items() if key.startswith("files[")]
            return json.loads(str(form.get("payload_json", "{}"))), files
        if request.can_read_body:
            text = await request.text()
            return (json.loads(text) if text else None), []
        return None, []

    async def _route(
        self, method: str, path: str, body: Any, files: list[str], request: web.Request
    ) -> web.StreamResponse:
        app = self.application_id
        routes: list[tuple[str, str, Callable[..., Awaitable[web.StreamResponse]]]] = [
            ("GET", r"users/@me", self._me),
            ("GET", r"oauth2/applications/@me", self._application),
            ("GET", r"gateway/bot", self._gateway_bot),
            ("PUT", rf"applications/{app}/commands", self._sync_commands),
            ("PUT", rf"applications/{app}/guilds/(\d+)/commands", self._sync_commands),
            ("POST", r"users/@me/channels", self._open_dm),
            ("GET", r"channels/(\d+)", self._get_channel),
            ("POST", r"channels/(\d+)/messages", self._post_message),
            ("GET", r"channels/(\d+)/messages/(\d+)", self._get_message),
            ("PATCH", r"channels/(\d+)/messages/(\d+)", self._edit_message),
            ("POST", r"channels/(\d+)/threads", self._create_thread),
            ("POST", r"channels/(\d+)/messages/(\d+)/threads", self._thread_from_message),
            ("PUT", r"channels/(\d+)/thread-members/(\d+)", self._add_thread_member),
            ("GET", r"channels/(\d+)/thread-members", self._thread_members),
            ("GET", r"guilds/(\d+)", self._get_guild),
            ("GET", r"guilds/(\d+)/members", self._list_members),
            ("GET", r"guilds/(\d+)/members/(\d+)", self._get_member),
            ("PUT", r"guilds/(\d+)/members/(\d+)/roles/(\d+)", self._add_member_role),
            ("DELETE", r"guilds/(\d+)/members/(\d+)/roles/(\d+)", self._remove_member_role),
            ("POST", r"guilds/(\d+)/scheduled-events", self._create_scheduled_event),
            ("GET", r"guilds/(\d+)/scheduled-events", self._list_scheduled_events),
            ("GET", r"guilds/(\d+)/scheduled-events/(\d+)", self._get_scheduled_event),
            ("PATCH", r"guilds/(\d+)/scheduled-events/(\d+)", self._edit_scheduled_event),
            ("POST", r"interactions/(\d+)/([^/]+)/callback", self._callback),
            ("PATCH", rf"webhooks/{app}/([^/]+)/messages/@original", self._edit_original),
            ("DELETE", rf"webhooks/{app}/([^/]+)/messages/@original", self._delete_original),
            ("POST", rf"webhooks/{app}/([^/]+)", self._followup),
        ]
        for route_method, pattern, handler in routes:
            match = re.fullmatch(pattern, path)
            if match is not None and route_method == method:
                return await handler(*match.groups(), body=body, files=files, request=request)
        return error(404, 0, f"404: fake Discord has no {method} {path}")

    async def _me(self, **_: Any) -> web.Response:
        return json_response(
            {**self.bot.user(), "verified": True, "mfa_enabled": False, "flags": 0}
        )

    async def _application(self, **_: Any) -> web.Response:
        return json_response(
            {
                "id": str(self.application_id),
                "name": "Kindred",
                "icon": None,
                "description": "",
                "bot_public": True,
                "bot_require_code_grant": False,
                "owner": Member(self.new_id(), "Owner").user(),
                "verify_key": "0" * 64,
                "team": None,
                "flags": self.application_flags,
                "summary": "",
            }
        )

    async def _gateway_bot(self, **_: Any) -> web.Response:
        return json_response(
            {
                "url": self.gateway_url,
                "shards": 1,
                "session_start_limit": {
                    "total": 1000,
                    "remaining": 999,
                    "reset_after": 0,
                    "max_concurrency": 1,
                },
            }
        )

    async def _sync_commands(
        self, guild_id: str | None = None, *, body: Any, **_: Any
    ) -> web.Response:
        for index, command in enumerate(body):
            if command_size(command) > COMMAND_SIZE_LIMIT:
                return json_response(
                    {
                        "code": 50035,
                        "message": "Invalid Form Body",
                        "errors": {
                            str(index): {
                                "_errors": [
                                    {
                                        "code": "APPLICATION_COMMAND_TOO_LARGE",
                                        "message": "Command exceeds maximum size (8000)",
                                    }
                                ]
                            }
                        },
                    },
                    status=400,
                )
        stored = [
            {
                **command,
                "id": str(self.new_id()),
                "application_id": str(self.application_id),
                "version": str(self.new_id()),
                **({"guild_id": guild_id} if guild_id else {}),
            }
            for command in body
        ]
        self.commands[int(guild_id) if guild_id else None] = stored
        return json_response(stored)

    def _dm_user(self, channel_id: int) -> int | None:
        for user_id, dm_id in self.dm_channels.items():
            if dm_id == channel_id:
                return user_id
        return None

    def _channel_payload(self, channel_id: int) -> dict[str, Any] | None:
        for guild in self.guilds.values():
            if channel_id in guild.channels:
                return guild.channel_payload(guild.channels[channel_id])
        if channel_id in self.threads:
            return self.threads[channel_id].payload(self.bot.user_id)
        user_id = self._dm_user(channel_id)
        if user_id is not None:
            return {
                "id": str(channel_id),
                "type": 1,
                "recipients": [self._user(user_id)],
                "last_message_id": None,
            }
        return None

    def _guild_of(self, channel_id: int) -> int | None:
        for guild in self.guilds.values():
            if channel_id in guild.channels:
                return guild.guild_id
        if channel_id in self.threads:
            return self.threads[channel_id].guild_id
        return None

    async def _open_dm(self, *, body: Any, **_: Any) -> web.Response:
        user_id = int(body["recipient_id"])
        channel_id = self.dm_channels.setdefault(user_id, self.new_id())
        payload = self._channel_payload(channel_id)
        return json_response(payload)

    async def _get_channel(self, channel_id: str, **_: Any) -> web.Response:
        payload = self._channel_payload(int(channel_id))
        if payload is None:
            return error(404, 10003, "Unknown Channel")
        return json_response(payload)

    def message_payload(
        self, channel_id: int, body: dict[str, Any], files: list[str], message_id: int | None = None
    ) -> dict[str, Any]:
        message_id = message_id or self.new_id()
        message: dict[str, Any] = {
            "id": str(message_id),
            "channel_id": str(channel_id),
            "type": 0,
            "content": body.get("content") or "",
            "author": self.bot.user(),
            "attachments": [
                {
                    "id": str(self.new_id()),
                    "filename": name,
                    "size": 1,
                    "url": f"https://cdn.example/{name}",
                    "proxy_url": f"https://cdn.example/{name}",
                }
                for name in files
            ],
            "embeds": [],
            "mentions": [],
            "mention_roles": [],
            "mention_everyone": False,
            "pinned": False,
            "tts": False,
            "timestamp": now_iso(),
            "edited_timestamp": None,
            "flags": int(body.get("flags") or 0),
            "components": body.get("components") or [],
        }
        guild_id = self._guild_of(channel_id)
        if guild_id is not None:
            message["guild_id"] = str(guild_id)
        return message

    def seed_message(self, channel_id: int, content: str, author_id: int) -> int:
        """A message a member wrote earlier (for reactions to refer to)."""
        message = self.message_payload(channel_id, {"content": content}, [])
        message["author"] = self._user(author_id)
        self.messages[int(message["id"])] = message
        return int(message["id"])

    def _record(
        self, message: dict[str, Any], body: dict[str, Any], files: list[str], via: str
    ) -> None:
        self.messages[int(message["id"])] = message
        self.sent.append(
            Sent(
                channel_id=int(message["channel_id"]),
                message_id=int(message["id"]),
                content=message["content"],
                components=message["components"],
                allowed_mentions=body.get("allowed_mentions"),
                flags=message["flags"],
                files=files,
                via=via,
                descriptions=[
                    attachment.get("description")
                    for attachment in (body or {}).get("attachments") or []
                ],
            )
        )

    async def _post_message(
        self, channel_id: str, *, body: Any, files: list[str], **_: Any
    ) -> web.Response:
        if self._channel_payload(int(channel_id)) is None:
            return error(404, 10003, "Unknown Channel")
        nonce = body.get("nonce") if body.get("enforce_nonce") else None
        if nonce is not None and nonce in self.nonces:
            # Discord answers a repeated enforced nonce with the message it already made.
            return json_response(self.messages[self.nonces[nonce]])
        message = self.message_payload(int(channel_id), body, files)
        if nonce is not None:
            self.nonces[nonce] = int(message["id"])
        self._record(message, body, files, "channel")
        return json_response(message)

    async def _get_message(self, channel_id: str, message_id: str, **_: Any) -> web.Response:
        message = self.messages.get(int(message_id))
        if message is None or message["channel_id"] != channel_id:
            return error(404, 10008, "Unknown Message")
        return json_response(message)

    async def _edit_message(
        self, channel_id: str, message_id: str, *, body: Any, files: list[str], **_: Any
    ) -> web.Response:
        if int(message_id) not in self.messages:
            return error(404, 10008, "Unknown Message")
        return json_response(self._update_message(int(message_id), body, files, "edit"))

    async def _create_thread(self, channel_id: str, *, body: Any, **_: Any) -> web.Response:
        guild_id = self._guild_of(int(channel_id))
        if guild_id is None:
            return error(404, 10003, "Unknown Channel")
        thread = Thread(
            self.new_id(),
            int(channel_id),
            guild_id,
            body["name"],
            private=body.get("type") == 12,
            invitable=bool(body.get("invitable", True)),
            members=[self.bot.user_id],
        )
        self.threads[thread.thread_id] = thread
        return json_response(thread.payload(self.bot.user_id), 201)

    async def _thread_from_message(
        self, channel_id: str, message_id: str, *, body: Any, **_: Any
    ) -> web.Response:
        if int(message_id) in self.threads:
            return error(400, 160004, "A thread has already been created for this message")
        guild_id = self._guild_of(int(channel_id))
        if guild_id is None or int(message_id) not in self.messages:
            return error(404, 10008, "Unknown Message")
        thread = Thread(
            int(message_id),
            int(channel_id),
            guild_id,
            body["name"],
            private=False,
            invitable=True,
            members=[self.bot.user_id],
        )
        self.threads[thread.thread_id] = thread
        return json_response(thread.payload(self.bot.user_id), 201)

    async def _add_thread_member(self, thread_id: str, user_id: str, **_: Any) -> web.Response:
        thread = self.threads.get(int(thread_id))
        if thread is None:
            return error(404, 10003, "Unknown Channel")
        if int(user_id) not in thread.members:
            thread.members.append(int(user_id))
        return web.Response(status=204)

    async def _thread_members(self, thread_id: str, **_: Any) -> web.Response:
        thread = self.threads[int(thread_id)]
        return json_response(
            [
                {"id": thread_id, "user_id": str(user), "join_timestamp": now_iso(), "flags": 0}
                for user in thread.members
            ]
        )

    async def _create_scheduled_event(self, guild_id: str, *, body: Any, **_: Any) -> web.Response:
        if body.get("entity_type") == 3 and not (
            body.get("scheduled_end_time") and (body.get("entity_metadata") or {}).get("location")
        ):
            # Discord's rule for EXTERNAL events.
            return error(400, 50035, "Invalid Form Body: external events need location and end")
        event_id = self.new_id()
        event = {
            "id": str(event_id),
            "guild_id": guild_id,
            "channel_id": None,
            "creator_id": str(self.bot.user_id),
            "entity_id": None,
            "status": 1,
            "user_count": 0,
            **body,
        }
        self.scheduled_events[event_id] = event
        # Discord tells bots with the guild_scheduled_events intent about it.
        if self.sessions:
            await self.dispatch("GUILD_SCHEDULED_EVENT_CREATE", event)
        return json_response(event)

    async def _list_scheduled_events(self, guild_id: str, **_: Any) -> web.Response:
        return json_response(
            [event for event in self.scheduled_events.values() if event["guild_id"] == guild_id]
        )

    async def _get_scheduled_event(self, guild_id: str, event_id: str, **_: Any) -> web.Response:
        event = self.scheduled_events.get(int(event_id))
        if event is None or event["guild_id"] != guild_id:
            return error(404, 10070, "Unknown Guild Scheduled Event")
        return json_response(event)

    async def _edit_scheduled_event(
        self, guild_id: str, event_id: str, *, body: Any, **_: Any
    ) -> web.Response:
        event = self.scheduled_events.get(int(event_id))
        if event is None or event["guild_id"] != guild_id:
            return error(404, 10070, "Unknown Guild Scheduled Event")
        event.update(body)
        if self.sessions:
            await self.dispatch("GUILD_SCHEDULED_EVENT_UPDATE", event)
        return json_response(event)

    async def _get_guild(self, guild_id: str, **_: Any) -> web.Response:
        guild = self.guilds.get(int(guild_id))
        if guild is None:
            return error(404, 10004, "Unknown Guild")
        return json_response(guild.payload())

    async def _list_members(self, guild_id: str, *, request: web.Request, **_: Any) -> web.Response:
        guild = self.guilds[int(guild_id)]
        after = int(request.query.get("after", "0"))
        limit = int(request.query.get("limit", "1"))
        chosen = sorted(user for user in guild.members if user > after)[:limit]
        return json_response([guild.members[user].member(guild.guild_id) for user in chosen])

    async def _get_member(self, guild_id: str, user_id: str, **_: Any) -> web.Response:
        guild = self.guilds[int(guild_id)]
        member = guild.members.get(int(user_id))
        if member is None:
            return error(404, 10007, "Unknown Member")
        return json_response(member.member(guild.guild_id))

    async def _add_member_role(
        self, guild_id: str, user_id: str, role_id: str, **_: Any
    ) -> web.Response:
        return self._change_member_role(guild_id, user_id, role_id, granted=True)

    async def _remove_member_role(
        self, guild_id: str, user_id: str, role_id: str, **_: Any
    ) -> web.Response:
        return self._change_member_role(guild_id, user_id, role_id, granted=False)

    def _change_member_role(
        self, guild_id: str, user_id: str, role_id: str, *, granted: bool
    ) -> web.Response:
        guild = self.guilds.get(int(guild_id))
        if guild is None or int(user_id) not in guild.members:
            return error(404, 10007, "Unknown Member")
        if int(role_id) not in guild.extra_roles:
            return error(404, 10011, "Unknown Role")
        held = guild.member_roles.setdefault(int(user_id), set())
        (held.add if granted else held.discard)(int(role_id))
        return web.Response(status=204)

    def _by_token(self, token: str) -> Interaction:
        return next(i for i in self.interactions.values() if i.token == token)

    async def _callback(
        self, interaction_id: str, token: str, *, body: Any, files: list[str], **_: Any
    ) -> web.Response:
        interaction = self.interactions[int(interaction_id)]
        if interaction.callback_type is not None:
            return error(400, 40060, "Interaction has already been acknowledged.")
        kind = int(body["type"])
        data = body.get("data") or {}
        interaction.answers.append(("callback", kind, data))
        response: dict[str, Any] = {
            "interaction": {
                "id": interaction_id,
                "type": 2,
                "response_message_loading": kind == 5,
                "response_message_ephemeral": bool(int(data.get("flags") or 0) & EPHEMERAL),
            }
        }
        if kind in (6, 7) and interaction.message_id is not None:
            # Updates (and deferred updates) act on the message whose button was pressed.
            interaction.original_id = interaction.message_id
            if kind == 7:
                message = self._update_message(interaction.message_id, data, files, "update")
                response["resource"] = {"type": kind, "message": message}
        if kind in (4, 5):
            message = self.message_payload(interaction.channel_id, data, files)
            self._record(message, data, files, "interaction")
            interaction.original_id = int(message["id"])
            response["interaction"]["response_message_id"] = message["id"]
            response["resource"] = {"type": kind, "message": message}
        return json_response(response)

    def _update_message(
        self, message_id: int, body: dict[str, Any], files: list[str], via: str
    ) -> dict[str, Any]:
        message = {**self.messages[message_id], "edited_timestamp": now_iso()}
        if "content" in body:
            message["content"] = body["content"] or ""
        if "components" in body:
            message["components"] = body["components"] or []
        self._record(message, body, files, via)
        return message

    async def _edit_original(
        self, token: str, *, body: Any, files: list[str], **_: Any
    ) -> web.Response:
        interaction = self._by_token(token)
        interaction.answers.append(("edit_original", body))
        if interaction.original_id is None:
            return error(404, 10008, "Unknown Message")
        return json_response(
            self._update_message(interaction.original_id, body, files, "edit_original")
        )

    async def _delete_original(self, token: str, **_: Any) -> web.Response:
        self._by_token(token).answers.append(("delete_original",))
        return web.Response(status=204)

    async def _followup(self, token: str, *, body: Any, files: list[str], **_: Any) -> web.Response:
        interaction = self._by_token(token)
        interaction.answers.append(("followup", body))
        message = self.message_payload(interaction.channel_id, body, files)
        self._record(message, body, files, "followup")
        return json_response(message)
