"""The Platform port on Slack's Web API (slack_sdk's AsyncWebClient).

Every call uses the bot token of the workspace it concerns (one token in
single-workspace mode, the installation store's in OAuth mode). slack_sdk is
built without retry handlers: the outbox dispatcher owns retries, so a 429
becomes `RateLimited(Retry-After)`, 5xx and connection trouble become
`TransientPlatformError`, and Slack's `ok: false` answers become `PlatformError`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, Protocol, TypeVar

import aiohttp
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.web.async_slack_response import AsyncSlackResponse

from bot.adapters.slack_render import mention_renderer, mentioned_slack_users, message_payload
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

log = logging.getLogger(__name__)

PLATFORM = "slack"

# Slack limits each Web API method per app per workspace
# (https://docs.slack.dev/apis/web-api/rate-limits). The dispatcher paces under
# these figures so 429s stay rare, and still honours any 429's Retry-After.
# chat.postMessage is "special": about one message per second per channel, short
# bursts allowed, inside a workspace-wide cap of "several hundred messages per
# minute" (we take the low end, 300/min).
POST_PER_CHANNEL = RateLimit(per_second=1.0, burst=3)
POST_PER_WORKSPACE = RateLimit(per_second=300 / 60, burst=30)
# conversations.open (one per group conversation) is Tier 3: 50+ per minute,
# "sporadic bursts are welcome". It bounds how fast a round of group intros goes out.
OPEN_PER_WORKSPACE = RateLimit(per_second=50 / 60, burst=20)
# chat.update is Tier 3 too.
UPDATE_PER_WORKSPACE = RateLimit(per_second=50 / 60, burst=20)

# users.list pages (Tier 2) and conversations.members pages (Tier 4) stay within
# Slack's recommended page size.
PAGE_SIZE = 200
# conversations.open accepts at most 8 users besides the bot.
GROUP_SIZE_LIMIT = 8
# Reads made while a handler waits (member lists) retry a 429 this many times,
# waiting at most this long in total, before giving up as transient.
READ_RETRIES = 3
READ_WAIT_LIMIT = 10.0
DIRECTORY_TTL = 300.0
USER_TTL = 600.0
ADMIN_TTL = 60.0
CHANNEL_TTL = 600.0
# A workspace's URL (for permalinks) changes only when it is renamed.
WORKSPACE_URL_TTL = 24 * 3600.0
# Every message the outbox sends carries its outbox key in message metadata, so a
# row sent again after a crash can find its first copy (Slack has no idempotency
# key of its own).
OUTBOX_EVENT_TYPE = "kindred_outbox"
# How much earlier than the row's first lease a first copy is looked for: Slack's
# clock and ours may differ a little.
CLOCK_SKEW = 120.0
# How far back through a busy conversation a first copy is looked for.
HISTORY_PAGES = 5

# Slack answers these when a token is revoked, the app was uninstalled, or the
# token belongs to a deleted account: the stored token will never work again.
AUTH_ERRORS = frozenset(
    {"invalid_auth", "not_authed", "token_revoked", "account_inactive", "token_expired"}
)
# `ok: false` answers that describe a passing problem on Slack's side.
TRANSIENT_ERRORS = frozenset(
    {"internal_error", "fatal_error", "service_unavailable", "request_timeout"}
)

Key = TypeVar("Key")
Value = TypeVar("Value")


class BotTokens(Protocol):
    """Where the bot token of a workspace comes from."""

    async def bot_token(self, workspace_id: str) -> str: ...

    def forget(self, workspace_id: str) -> None:
        """Drop a cached token that Slack just refused."""
        ...


@dataclass(frozen=True, slots=True)
class StaticToken:
    """Single-workspace mode: SLACK_BOT_TOKEN for everything."""

    token: str = field(repr=False)

    async def bot_token(self, workspace_id: str) -> str:
        return self.token

    def forget(self, workspace_id: str) -> None:
        """A static token cannot be refreshed; the error reaches the operator's log."""


@dataclass(frozen=True, slots=True)
class SlackUser:
    """The facts Kindred needs about one Slack account."""

    user_id: str
    display_name: str
    is_bot: bool
    deleted: bool
    timezone: str | None
    is_admin: bool

    @classmethod
    def from_api(cls, data: dict[str, Any]) -> SlackUser:
        profile = data.get("profile") or {}
        name = (
            profile.get("display_name")
            or profile.get("real_name")
            or data.get("real_name")
            or data.get("name")
            or data["id"]
        )
        return cls(
            user_id=data["id"],
            display_name=name,
            # Slackbot is not flagged as a bot but is one.
            is_bot=bool(data.get("is_bot")) or data["id"] == "USLACKBOT",
            deleted=bool(data.get("deleted")),
            timezone=data.get("tz") or None,
            is_admin=bool(
                data.get("is_admin") or data.get("is_owner") or data.get("is_primary_owner")
            ),
        )

    @property
    def is_person(self) -> bool:
        return not self.is_bot and not self.deleted

    def member_info(self) -> MemberInfo:
        return MemberInfo(
            user_id=self.user_id,
            display_name=self.display_name,
            is_bot=self.is_bot,
            deactivated=self.deleted,
            timezone=self.timezone,
            is_admin=self.is_admin,
        )


class ExpiringCache(Generic[Key, Value]):
    """A small cache whose entries lapse after `ttl` seconds."""

    def __init__(self, ttl: float) -> None:
        self.ttl = ttl
        self._entries: dict[Key, tuple[float, Value]] = {}

    def get(self, key: Key) -> Value | None:
        entry = self._entries.get(key)
        if entry is None or entry[0] < time.monotonic():
            return None
        return entry[1]

    def put(self, key: Key, value: Value) -> Value:
        self._entries[key] = (time.monotonic() + self.ttl, value)
        return value

    def drop(self, key: Key) -> None:
        self._entries.pop(key, None)


def _outbox_metadata(message: Message) -> dict[str, Any] | None:
    if message.idempotency_key is None:
        return None
    return {"event_type": OUTBOX_EVENT_TYPE, "event_payload": {"key": message.idempotency_key}}


def _retry_after(response: AsyncSlackResponse) -> float:
    headers = response.headers or {}
    for name, value in headers.items():
        if name.lower() == "retry-after":
            try:
                return max(0.0, float(value))
            except ValueError:
                break
    return 1.0


class SlackPlatform:
    """Implements `bot.core.platform.Platform` for Slack.

    `pace` scales every pacing rate (tests and benchmarks against a faster fake).
    """

    name = PLATFORM
    # Slack has no member roles an app may grant (nor may it edit member profiles):
    # recognition shows its badge on Kindred's profile card and App Home instead.
    supports_roles = False
    # Slack has no events: announcements carry an .ics file and a calendar link.
    scheduled_events = False

    def __init__(self, client: AsyncWebClient, tokens: BotTokens, *, pace: float = 1.0) -> None:
        self.client = client
        self.tokens = tokens
        self.pace = pace
        self._directories: ExpiringCache[str, dict[str, SlackUser]] = ExpiringCache(DIRECTORY_TTL)
        self._users: ExpiringCache[tuple[str, str], SlackUser] = ExpiringCache(USER_TTL)
        self._admins: ExpiringCache[tuple[str, str], bool] = ExpiringCache(ADMIN_TTL)
        self._private_channels: ExpiringCache[tuple[str, str], bool] = ExpiringCache(CHANNEL_TTL)
        self._workspace_urls: ExpiringCache[str, str] = ExpiringCache(WORKSPACE_URL_TTL)

    # -- calling Slack ---------------------------------------------------------------

    async def call(
        self,
        workspace_id: str,
        method: str,
        invoke: Callable[[str], Awaitable[AsyncSlackResponse]],
    ) -> AsyncSlackResponse:
        """Run one Web API call with the workspace's token, mapping failures to the
        port's errors. `invoke` receives the token."""
        token = await self.tokens.bot_token(workspace_id)
        try:
            return await invoke(token)
        except SlackApiError as error:
            response = error.response
            status = response.status_code
            if status == 429:
                raise RateLimited(_retry_after(response), f"{method} in {workspace_id}") from None
            if status >= 500:
                raise TransientPlatformError(f"{method}: Slack answered HTTP {status}") from None
            code = str(response.get("error", f"HTTP {status}"))
            if code in AUTH_ERRORS:
                self.tokens.forget(workspace_id)
            if code in TRANSIENT_ERRORS:
                raise TransientPlatformError(f"{method}: {code}") from None
            raise PlatformError(f"{method} failed in {workspace_id}: {code}") from None
        except (aiohttp.ClientError, TimeoutError) as error:
            raise TransientPlatformError(
                f"{method}: cannot reach Slack ({error.__class__.__name__})"
            ) from None
        except SlackClientError as error:
            raise PlatformError(f"{method}: {error}") from None

    async def read(
        self,
        workspace_id: str,
        method: str,
        invoke: Callable[[str], Awaitable[AsyncSlackResponse]],
    ) -> AsyncSlackResponse:
        """A read a handler is waiting for: short 429 waits are absorbed here."""
        retries = 0
        waited = 0.0
        while True:
            try:
                return await self.call(workspace_id, method, invoke)
            except RateLimited as limited:
                retries += 1
                if retries > READ_RETRIES or waited + limited.retry_after > READ_WAIT_LIMIT:
                    raise
                waited += limited.retry_after
                await asyncio.sleep(limited.retry_after)

    # -- members ---------------------------------------------------------------------

    async def list_members(
        self, workspace_id: str, channel_id: str | None = None
    ) -> Sequence[MemberInfo]:
        """People (no bots, no deactivated accounts) of the workspace or one channel."""
        directory = await self._directory(workspace_id)
        if channel_id is None:
            users = list(directory.values())
        else:
            users = []
            for user_id in await self._channel_member_ids(workspace_id, channel_id):
                user = directory.get(user_id)
                if user is None:
                    # Joined since the directory was read.
                    try:
                        user = await self.user(workspace_id, user_id)
                    except PlatformError as error:
                        log.warning("skipping channel member %s: %s", user_id, error)
                        continue
                users.append(user)
        return [user.member_info() for user in users if user.is_person]

    async def _directory(self, workspace_id: str) -> dict[str, SlackUser]:
        cached = self._directories.get(workspace_id)
        if cached is not None:
            return cached
        directory: dict[str, SlackUser] = {}
        cursor: str | None = None
        while True:

            def users_page(
                token: str, cursor: str | None = cursor
            ) -> Awaitable[AsyncSlackResponse]:
                return self.client.users_list(token=token, limit=PAGE_SIZE, cursor=cursor)

            page = await self.read(workspace_id, "users.list", users_page)
            data: dict[str, Any]
            for data in page.get("members", []):
                user = SlackUser.from_api(data)
                directory[user.user_id] = user
                self._users.put((workspace_id, user.user_id), user)
            cursor = (page.get("response_metadata") or {}).get("next_cursor") or None
            if cursor is None:
                break
        return self._directories.put(workspace_id, directory)

    async def _channel_member_ids(self, workspace_id: str, channel_id: str) -> list[str]:
        member_ids: list[str] = []
        cursor: str | None = None
        while True:

            def members_page(
                token: str, cursor: str | None = cursor
            ) -> Awaitable[AsyncSlackResponse]:
                return self.client.conversations_members(
                    token=token, channel=channel_id, limit=PAGE_SIZE, cursor=cursor
                )

            page = await self.read(workspace_id, "conversations.members", members_page)
            member_ids.extend(page.get("members", []))
            cursor = (page.get("response_metadata") or {}).get("next_cursor") or None
            if cursor is None:
                return member_ids

    async def user(self, workspace_id: str, user_id: str) -> SlackUser:
        cached = self._users.get((workspace_id, user_id))
        if cached is not None:
            return cached
        response = await self.read(
            workspace_id,
            "users.info",
            lambda token: self.client.users_info(token=token, user=user_id),
        )
        return self._users.put((workspace_id, user_id), SlackUser.from_api(response["user"]))

    def forget_user(self, workspace_id: str, user_id: str) -> None:
        """Slack told us the account changed; look it up afresh next time."""
        self._users.drop((workspace_id, user_id))
        self._admins.drop((workspace_id, user_id))
        self._directories.drop(workspace_id)

    async def is_admin(self, workspace_id: str, user_id: str) -> bool:
        """Workspace admins and owners, asked fresh (cached a minute) so a demotion
        takes effect quickly."""
        cached = self._admins.get((workspace_id, user_id))
        if cached is not None:
            return cached
        response = await self.read(
            workspace_id,
            "users.info",
            lambda token: self.client.users_info(token=token, user=user_id),
        )
        user = SlackUser.from_api(response["user"])
        self._users.put((workspace_id, user_id), user)
        return self._admins.put((workspace_id, user_id), user.is_admin)

    # -- channels and messages (reads for inbound events) ------------------------------

    async def channel_is_private(self, workspace_id: str, channel_id: str) -> bool:
        """Private channels, DMs and group DMs; unknown channels count as private so
        nothing from them is ever re-posted publicly by mistake."""
        cached = self._private_channels.get((workspace_id, channel_id))
        if cached is not None:
            return cached
        try:
            response = await self.read(
                workspace_id,
                "conversations.info",
                lambda token: self.client.conversations_info(token=token, channel=channel_id),
            )
        except TransientPlatformError as error:
            log.warning("cannot tell now whether %s is private: %s", channel_id, error)
            return True
        except PlatformError as error:
            # Kindred cannot see the channel: a private channel it is not in, or a DM.
            log.info("treating %s as private: %s", channel_id, error)
            return self._private_channels.put((workspace_id, channel_id), True)
        channel = response["channel"]
        private = bool(channel.get("is_private") or channel.get("is_im") or channel.get("is_mpim"))
        return self._private_channels.put((workspace_id, channel_id), private)

    async def message_text(self, workspace_id: str, channel_id: str, ts: str) -> str:
        """The text of one message, top-level or in a thread ("" if Slack won't say)."""
        try:
            history = await self.read(
                workspace_id,
                "conversations.history",
                lambda token: self.client.conversations_history(
                    token=token, channel=channel_id, latest=ts, inclusive=True, limit=1
                ),
            )
            message: dict[str, Any]
            for message in history.get("messages", []):
                if message.get("ts") == ts:
                    return str(message.get("text", ""))
            # Not top-level: a reply in a thread.
            replies = await self.read(
                workspace_id,
                "conversations.replies",
                # Slack may put the thread's parent first; the window keeps the rest
                # down to the one reply asked for.
                lambda token: self.client.conversations_replies(
                    token=token,
                    channel=channel_id,
                    ts=ts,
                    oldest=ts,
                    latest=ts,
                    inclusive=True,
                    limit=2,
                ),
            )
            for message in replies.get("messages", []):
                if message.get("ts") == ts:
                    return str(message.get("text", ""))
        except PlatformError as error:
            log.warning("cannot read message %s in %s: %s", ts, channel_id, error)
        return ""

    # -- sending (called by the outbox dispatcher) ------------------------------------

    async def send_dm(self, workspace_id: str, user_id: str, message: Message) -> MessageRef:
        # chat.postMessage to a user id posts in the bot's DM with that person
        # (its Messages tab), without a conversations.open round trip.
        if message.attachment is not None:
            opened = await self.call(
                workspace_id,
                "conversations.open",
                lambda token: self.client.conversations_open(token=token, users=user_id),
            )
            return await self._upload(workspace_id, opened["channel"]["id"], message)
        return await self.post_channel(workspace_id, user_id, message)

    async def post_channel(
        self, workspace_id: str, channel_id: str, message: Message
    ) -> MessageRef:
        if message.attachment is not None:
            return await self._upload(workspace_id, channel_id, message)
        payload = await self.render(workspace_id, message)
        response = await self.call(
            workspace_id,
            "chat.postMessage",
            lambda token: self.client.chat_postMessage(
                token=token, channel=channel_id, metadata=_outbox_metadata(message), **payload
            ),
        )
        channel, ts = str(response["channel"]), str(response["ts"])
        link = await self.permalink(workspace_id, channel, ts)
        return MessageRef(channel_id=channel, message_id=ts, permalink=link)

    async def open_group(
        self, workspace_id: str, user_ids: Sequence[str], channel_id: str | None, title: str
    ) -> str:
        """A group DM (`conversations.open` with the users); Slack group DMs have no
        title, so the intro message itself says what the group is for."""
        if not 1 <= len(user_ids) <= GROUP_SIZE_LIMIT:
            raise PlatformError(
                f"a Slack group conversation holds 1 to {GROUP_SIZE_LIMIT} people "
                f"(asked for {len(user_ids)})"
            )
        response = await self.call(
            workspace_id,
            "conversations.open",
            lambda token: self.client.conversations_open(token=token, users=",".join(user_ids)),
        )
        return str(response["channel"]["id"])

    async def reply_in_thread(
        self, workspace_id: str, parent: MessageRef, message: Message
    ) -> MessageRef:
        thread_ts = parent.thread_id or parent.message_id
        payload = await self.render(workspace_id, message)
        response = await self.call(
            workspace_id,
            "chat.postMessage",
            lambda token: self.client.chat_postMessage(
                token=token,
                channel=parent.channel_id,
                thread_ts=thread_ts,
                metadata=_outbox_metadata(message),
                **payload,
            ),
        )
        channel, ts = str(response["channel"]), str(response["ts"])
        link = await self.permalink(workspace_id, channel, ts, thread_ts)
        return MessageRef(channel, ts, thread_id=thread_ts, permalink=link)

    async def find_sent(
        self,
        workspace_id: str,
        kind: str,
        target: str,
        parent: MessageRef | None,
        key: str,
        since: datetime,
    ) -> MessageRef | None:
        """The message posted with outbox key `key` since `since`, if any: called for
        a row leased before, whose dispatcher may have posted it and died before
        recording that. `kind` is dm (target: user), post (target: channel) or
        thread_reply (under `parent`)."""
        oldest = f"{since.timestamp() - CLOCK_SKEW:.6f}"
        thread_ts = None
        if kind == "thread_reply":
            if parent is None:
                return None
            channel_id = parent.channel_id
            thread_ts = parent.thread_id or parent.message_id
        elif kind == "dm":
            # History needs the DM's own id; posting to a user id hides it.
            opened = await self.call(
                workspace_id,
                "conversations.open",
                lambda token: self.client.conversations_open(token=token, users=target),
            )
            channel_id = str(opened["channel"]["id"])
        else:
            channel_id = target
        cursor: str | None = None
        for _ in range(HISTORY_PAGES):

            def page_of(token: str, cursor: str | None = cursor) -> Awaitable[AsyncSlackResponse]:
                if thread_ts is None:
                    return self.client.conversations_history(
                        token=token,
                        channel=channel_id,
                        oldest=oldest,
                        include_all_metadata=True,
                        limit=PAGE_SIZE,
                        cursor=cursor,
                    )
                return self.client.conversations_replies(
                    token=token,
                    channel=channel_id,
                    ts=thread_ts,
                    oldest=oldest,
                    include_all_metadata=True,
                    limit=PAGE_SIZE,
                    cursor=cursor,
                )

            method = "conversations.history" if thread_ts is None else "conversations.replies"
            page = await self.read(workspace_id, method, page_of)
            found: dict[str, Any]
            for found in page.get("messages", []):
                metadata: dict[str, Any] = found.get("metadata") or {}
                payload: dict[str, Any] = metadata.get("event_payload") or {}
                if metadata.get("event_type") == OUTBOX_EVENT_TYPE and payload.get("key") == key:
                    ts = str(found["ts"])
                    link = await self.permalink(workspace_id, channel_id, ts, thread_ts)
                    return MessageRef(channel_id, ts, thread_id=thread_ts, permalink=link)
            cursor = (page.get("response_metadata") or {}).get("next_cursor") or None
            if cursor is None:
                return None
        log.warning(
            "no first copy of %s in the last %d pages of %s; sending it",
            key,
            HISTORY_PAGES,
            channel_id,
        )
        return None

    def know_workspace(self, workspace_id: str, url: str) -> None:
        """Remember a workspace's URL from an `auth.test` made elsewhere (start-up)."""
        if url:
            self._workspace_urls.put(workspace_id, url.rstrip("/"))

    async def permalink(
        self, workspace_id: str, channel_id: str, ts: str, thread_ts: str | None = None
    ) -> str | None:
        """A message's link, built the way Slack builds it (recaps link to threads).

        One `auth.test` per workspace and day gives the workspace URL, instead of a
        `chat.getPermalink` call for every message; without it there is no link."""
        base = self._workspace_urls.get(workspace_id)
        if base is None:
            try:
                identity = await self.call(
                    workspace_id, "auth.test", lambda token: self.client.auth_test(token=token)
                )
            except PlatformError:
                return None
            base = self._workspace_urls.put(workspace_id, str(identity["url"]).rstrip("/"))
        link = f"{base}/archives/{channel_id}/p{ts.replace('.', '')}"
        if thread_ts is not None and thread_ts != ts:
            link += f"?thread_ts={thread_ts}&cid={channel_id}"
        return link

    async def update_message(
        self, workspace_id: str, ref: MessageRef, message: Message
    ) -> MessageRef:
        payload = await self.render(workspace_id, message)
        await self.call(
            workspace_id,
            "chat.update",
            lambda token: self.client.chat_update(
                token=token, channel=ref.channel_id, ts=ref.message_id, **payload
            ),
        )
        return ref

    async def _upload(self, workspace_id: str, channel_id: str, message: Message) -> MessageRef:
        """A file with the message as its comment: one visible post, so a retry after
        a failure never shows the text twice."""
        attachment = message.attachment
        assert attachment is not None
        if message.buttons:
            raise PlatformError("Slack cannot show buttons on a file upload; send them apart")
        payload = await self.render(workspace_id, message)
        response = await self.call(
            workspace_id,
            "files.getUploadURLExternal + files.completeUploadExternal",
            lambda token: self.client.files_upload_v2(
                token=token,
                channel=channel_id,
                filename=attachment.filename,
                title=attachment.filename,
                content=attachment.content,
                initial_comment=payload["text"],
                alt_txt=attachment.alt_text or None,
            ),
        )
        return MessageRef(channel_id=channel_id, message_id=str(response["file"]["id"]))

    async def render(self, workspace_id: str, message: Message) -> dict[str, Any]:
        """Block Kit for a message others will receive: mentions it does not mean to
        ping are shown as names."""
        inert = mentioned_slack_users(message.text) - set(message.mentions)
        names = {}
        for user_id in sorted(inert):
            try:
                names[user_id] = (await self.user(workspace_id, user_id)).display_name
            except PlatformError:
                names[user_id] = "member"
        return message_payload(message, mention_renderer(message.mentions, names))

    # -- pacing --------------------------------------------------------------------------

    async def set_role(self, workspace_id: str, user_id: str, role: str, *, granted: bool) -> None:
        raise PlatformError(
            "Slack has no roles an app can give; Kindred shows the badge on its profile "
            "card and App Home instead"
        )

    async def save_scheduled_event(
        self, workspace_id: str, event: CalendarEvent, existing_id: str | None
    ) -> MessageRef:
        raise NotSupported("Slack has no scheduled events; features attach a calendar file")

    async def cancel_scheduled_event(self, workspace_id: str, event_id: str) -> MessageRef:
        raise NotSupported("Slack has no scheduled events; features attach a calendar file")

    def rate_limits(self, kind: str, workspace_id: str, target: str) -> list[tuple[str, RateLimit]]:
        key = f"{PLATFORM}:{workspace_id}"
        if kind == "group":
            return [
                (f"{key}:conversations.open", self._paced(OPEN_PER_WORKSPACE)),
                (f"{key}:chat.postMessage", self._paced(POST_PER_WORKSPACE)),
            ]
        if kind == "update":
            return [(f"{key}:chat.update", self._paced(UPDATE_PER_WORKSPACE))]
        limits = [(f"{key}:chat.postMessage", self._paced(POST_PER_WORKSPACE))]
        if target:
            limits.append((f"{key}:channel:{target}", self._paced(POST_PER_CHANNEL)))
        return limits

    def _paced(self, limit: RateLimit) -> RateLimit:
        if self.pace == 1.0:
            return limit
        return RateLimit(per_second=limit.per_second * self.pace, burst=limit.burst)
