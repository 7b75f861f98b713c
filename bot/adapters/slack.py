"""The Slack adapter: slack-bolt's AsyncApp in, neutral `Inbound` values to the
core, inline replies rendered as Block Kit, and `SlackPlatform` for the outbox.

No feature logic lives here. Every listener acks first (Slack wants an answer
within 3 s), then calls `kindred.handle`, then answers through the response_url,
views.open / views.publish, or the Web API.

Modes:
- HTTP: Events API, interactivity and `/kindred` all POST to /slack/events, with
  Slack's signature checked by bolt (bad or stale signatures get 401).
- Socket Mode (SLACK_APP_TOKEN set): the same listeners over Slack's websocket.
Either way Kindred's web application is served (/healthz answers 200 while the
database is reachable, plus feature routes such as feeds), and with
SLACK_CLIENT_ID/SECRET set /slack/install and /slack/oauth_redirect install
Kindred into more workspaces (installations live in the database).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import hashlib
import hmac
import json
import logging
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any, Literal
from urllib.parse import parse_qs

import aiohttp
from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.adapter.socket_mode.aiohttp import AsyncSocketModeHandler
from slack_bolt.app.async_app import AsyncApp
from slack_bolt.authorization import AuthorizeResult
from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.async_context import AsyncBoltContext
from slack_bolt.oauth.async_oauth_settings import AsyncOAuthSettings
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.request.internals import parse_body
from slack_sdk.errors import SlackApiError
from slack_sdk.socket_mode.async_client import AsyncBaseSocketModeClient
from slack_sdk.socket_mode.request import SocketModeRequest
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.web.async_slack_response import AsyncSlackResponse

from bot.adapters.slack_oauth import (
    DatabaseInstallationStore,
    DatabaseOAuthStateStore,
    StoredInstallationAuthorize,
)
from bot.adapters.slack_platform import (
    PLATFORM,
    BotTokens,
    SlackPlatform,
    SlackUser,
    StaticToken,
)
from bot.adapters.slack_render import (
    ID_PREFIX,
    decode_action_id,
    decode_callback_id,
    home_view,
    message_payload,
    modal_view,
    submitted_values,
)
from bot.core.app import Kindred
from bot.core.errors import StartupRefused
from bot.core.platform import Inbound, Message, MessageRef, PlatformError, Reply
from bot.core.settings import Settings
from bot.core.web import start_web, web_application
from storage import members

log = logging.getLogger(__name__)


class _ExpectedBoltWarnings(logging.Filter):
    """bolt reads SLACK_BOT_TOKEN from the environment and warns that it goes unused
    when a client is given, but the client (carrying that token and SLACK_API_URL)
    is how Kindred configures it."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "`token` will be unused" not in record.getMessage()


_bolt_log = logging.getLogger(f"{__name__}.bolt")
_bolt_log.addFilter(_ExpectedBoltWarnings())

COMMAND = "/kindred"
EVENTS_PATH = "/slack/events"
# Slack's own replay window for signed requests (bolt uses the same).
SIGNATURE_MAX_AGE = 300
INSTALL_PATH = "/slack/install"
REDIRECT_PATH = "/slack/oauth_redirect"
# Work after an ack starts once no request has been in the middle of its ack for
# ACKS_SETTLE seconds, but waits ACKS_FIRST_FOR seconds at most (counted from its
# own ack), and at most CONCURRENT_WORK pieces run at once: in a burst the acks get
# the CPU first (bench/slack_ack.py), and the answers follow right after.
ACKS_FIRST_FOR = 1.0
ACKS_SETTLE = 0.02
CONCURRENT_WORK = 4

# What the bot may do, and why. config/slack-manifest.yml asks for exactly these
# (a test keeps the two in step); OAuth installs request them too.
BOT_SCOPES = (
    "commands",  # the /kindred slash command
    "chat:write",  # DMs, posts, thread replies, and updating the bot's own messages
    "chat:write.public",  # post digests and recaps in public channels without joining
    "im:write",  # open a DM to attach a file (AMA exports)
    "mpim:write",  # conversations.open with several people: group intros
    "users:read",  # member lists (users.list), time zones, admin checks, team_join
    "channels:read",  # conversations.members / .info of public channels, member_joined_channel
    "groups:read",  # the same for private channels Kindred was invited to
    # Read the message a reaction was added to, and receive message events (counted
    # per member, channel and day for the health report; no text is stored), in
    # public channels and in the private channels Kindred is in.
    "channels:history",
    "groups:history",
    # After a crash, look for a message Kindred may already have posted in a group
    # DM or DM before posting it again (message metadata carries its outbox key).
    "mpim:history",
    "im:history",
    "reactions:read",  # reaction_added events
    "files:write",  # upload attachments such as an AMA's Markdown export
)
BOT_EVENTS = (
    "app_home_opened",  # render the App Home tab
    "member_joined_channel",  # program channels: welcome and opt-in
    "member_left_channel",  # leaving a program channel
    "reaction_added",  # features that collect or count reactions
    "reaction_removed",  # a kudos reaction taken back withdraws the kudos
    # Every message in public / private channels Kindred is in: the health report
    # counts new posts per member, channel and day (never the text) and times
    # newcomers' first reply; deletions withdraw the kudos given for the message.
    "message.channels",
    "message.groups",
    "team_join",  # welcome new members of the workspace
    "user_change",  # a deactivated account has left the community
    "app_uninstalled",  # forget a workspace's token (OAuth mode)
    "tokens_revoked",  # same, when an admin revokes the token
)

_KINDRED_ID = re.compile(f"^{ID_PREFIX}:")
# Message subtypes that are a member's new post (a reply also sent to the channel,
# a shared file); the plain post has none.
NEW_POST_SUBTYPES = (None, "thread_broadcast", "file_share")


class AcksFirst:
    """Slack gives 3 s to ack and then retries or shows the user an error; the work
    behind an ack has no such deadline. Requests being acked are counted, and work
    starts once none has been in progress for `settle` seconds (or after `patience`),
    so a burst of commands is acked at the bare framework's pace and answered right
    after it."""

    def __init__(self, patience: float, settle: float) -> None:
        self.patience = patience
        self.settle = settle
        self.in_progress = 0
        self._quiet = asyncio.Event()
        self._quiet.set()
        self._settling: asyncio.TimerHandle | None = None

    @contextlib.contextmanager
    def acking(self) -> Iterator[None]:
        self.in_progress += 1
        self._quiet.clear()
        if self._settling is not None:
            self._settling.cancel()
            self._settling = None
        try:
            yield
        finally:
            self.in_progress -= 1
            if self.in_progress == 0:
                # The next request of a burst is usually a few milliseconds away.
                loop = asyncio.get_running_loop()
                self._settling = loop.call_later(self.settle, self._quiet.set)

    def deadline(self) -> float:
        """When work acked now stops deferring to other acks."""
        return asyncio.get_running_loop().time() + self.patience

    async def wait_turn(self, deadline: float) -> None:
        remaining = deadline - asyncio.get_running_loop().time()
        if remaining > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._quiet.wait(), remaining)


class _SocketModeHandler(AsyncSocketModeHandler):
    """bolt's Socket Mode handler, counting envelopes being acked like HTTP requests."""

    def __init__(self, app: AsyncApp, app_token: str, acks: AcksFirst) -> None:
        super().__init__(app, app_token, logger=log)
        self.acks = acks

    async def handle(self, client: AsyncBaseSocketModeClient, req: SocketModeRequest) -> None:
        with self.acks.acking():
            # bolt annotates handle() with the sync client it also accepts.
            await super().handle(client, req)  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class Origin:
    """Where the inline answer to one interaction goes."""

    response_url: str | None = None
    trigger_id: str | None = None
    in_home: bool = False


class SlackAdapter:
    """Serves one Kindred core on Slack. `pace` scales outbound pacing (tests and
    benchmarks against a fast fake Slack)."""

    def __init__(self, kindred: Kindred, settings: Settings, *, pace: float = 1.0) -> None:
        self.kindred = kindred
        self.settings = settings
        self.pace = pace
        self.socket_mode = bool(settings.slack_app_token)
        self.oauth = settings.slack_oauth
        self._session: aiohttp.ClientSession | None = None
        self._runner: web.AppRunner | None = None
        self._socket: _SocketModeHandler | None = None
        self._platform: SlackPlatform | None = None
        self._bolt: AsyncApp | None = None
        self._core_started = False
        self._acks = AcksFirst(ACKS_FIRST_FOR, ACKS_SETTLE)
        self._working = asyncio.Semaphore(CONCURRENT_WORK)
        self.port = settings.http_port

    @property
    def platform(self) -> SlackPlatform:
        if self._platform is None:
            raise RuntimeError("the Slack adapter is not started")
        return self._platform

    @property
    def bolt(self) -> AsyncApp:
        if self._bolt is None:
            raise RuntimeError("the Slack adapter is not started")
        return self._bolt

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise RuntimeError("the Slack adapter is not started")
        return self._session

    # -- life cycle --------------------------------------------------------------------

    async def start(self) -> None:
        # One connection pool for every Web API call and response_url post.
        self._session = aiohttp.ClientSession()
        store = DatabaseInstallationStore(self.kindred.db) if self.oauth else None
        tokens: BotTokens = store or StaticToken(self.settings.slack_bot_token.value)
        self._platform = SlackPlatform(self._web_client(), tokens, pace=self.pace)
        self.kindred.attach(self._platform)
        identity = None if self.oauth else await self._register_workspace()
        self._bolt = self._build_bolt(store, identity)
        await self.kindred.start()
        self._core_started = True
        await self._serve_http()
        if self.socket_mode:
            self._socket = _SocketModeHandler(
                self._bolt, self.settings.slack_app_token.value, self._acks
            )
            await self._socket.connect_async()  # type: ignore[no-untyped-call]
            log.info("Slack Socket Mode connected")

    async def _register_workspace(self) -> AsyncSlackResponse:
        """Record the token's workspace and its name (welcomes and digests use it);
        with OAuth, each installation records its own. Returns the `auth.test`
        answer, which bolt and permalinks share instead of asking again."""
        try:
            identity = await self._web_client(self.settings.slack_bot_token.value).auth_test()
        except SlackApiError as error:
            raise StartupRefused(
                f"Slack refused SLACK_BOT_TOKEN ({error.response.get('error', 'unknown error')}). "
                "Copy the Bot User OAuth Token from your app's OAuth & Permissions page."
            ) from error
        except (aiohttp.ClientError, TimeoutError) as error:
            raise StartupRefused(
                f"Cannot reach Slack at {self.settings.slack_api_url}: "
                f"{error.__class__.__name__} {error}"
            ) from error
        async with self.kindred.db.transaction() as session:
            await members.ensure_community(
                session, PLATFORM, str(identity["team_id"]), str(identity.get("team") or "")
            )
        self.platform.know_workspace(str(identity["team_id"]), str(identity.get("url") or ""))
        return identity

    async def stop(self) -> None:
        """Undo whatever `start` got done (it may have failed half-way)."""
        if self._socket is not None:
            await self._socket.close_async()  # type: ignore[no-untyped-call]
            self._socket = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._core_started:
            # Other adapters may share the core; it counts who started it.
            await self.kindred.stop()
            self._core_started = False
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _web_client(self, token: str | None = None) -> AsyncWebClient:
        # No retry handlers: the outbox dispatcher decides when to try again.
        return AsyncWebClient(
            token=token,
            base_url=self.settings.slack_api_url,
            session=self._session,
            retry_handlers=[],
        )

    def _build_bolt(
        self, store: DatabaseInstallationStore | None, identity: AsyncSlackResponse | None
    ) -> AsyncApp:
        settings = self.settings
        if store is None:
            assert identity is not None, "single-workspace mode registers its workspace first"
            # Given a token, bolt would call auth.test lazily inside the first request,
            # before its ack (a slow Slack made that ack miss the 3 s deadline). The
            # answer from start-up is the same, so bolt is handed it.
            authorized = AuthorizeResult.from_auth_test_response(
                auth_test_response=identity, bot_token=settings.slack_bot_token.value
            )

            async def authorize() -> AuthorizeResult:
                return authorized

            app = AsyncApp(
                name="kindred",
                logger=_bolt_log,
                signing_secret=settings.slack_signing_secret.value,
                # Without a token here bolt takes `authorize`; each request's client
                # gets the token from its result.
                client=self._web_client(),
                authorize=authorize,
            )
            app.event("app_uninstalled")(self._on_token_lost)
            app.event("tokens_revoked")(self._on_token_lost)
        else:
            client = self._web_client()
            secret = settings.slack_client_secret.value
            app = AsyncApp(
                name="kindred",
                logger=_bolt_log,
                signing_secret=settings.slack_signing_secret.value,
                client=client,
                installation_store=store,
                installation_store_bot_only=True,
                # From the stored installation: no auth.test before an ack.
                # bolt accepts an AsyncAuthorize instance, though typed for functions.
                authorize=StoredInstallationAuthorize(store),  # type: ignore[arg-type]
                oauth_settings=AsyncOAuthSettings(
                    client_id=settings.slack_client_id,
                    client_secret=secret,
                    scopes=list(BOT_SCOPES),
                    user_scopes=[],
                    install_path=INSTALL_PATH,
                    redirect_uri_path=REDIRECT_PATH,
                    installation_store=store,
                    installation_store_bot_only=True,
                    state_store=DatabaseOAuthStateStore(self.kindred.db),
                ),
            )
            app.enable_token_revocation_listeners()
        app.command(COMMAND)(self._on_command)
        app.action(_KINDRED_ID)(self._on_button)
        app.view_submission(_KINDRED_ID)(self._on_modal_submit)
        app.event("team_join")(self._on_team_join)
        app.event("member_joined_channel")(self._on_channel_join)
        app.event("member_left_channel")(self._on_channel_leave)
        app.event("user_change")(self._on_user_change)
        app.event("app_home_opened")(self._on_home_opened)
        app.event("reaction_added")(self._on_reaction)
        app.event("reaction_removed")(self._on_reaction_removed)
        app.event({"type": "message", "subtype": "message_deleted"})(self._on_message_deleted)
        # After the deletions: bolt runs the first listener that matches, and a message
        # event no listener matches would be answered 404 (Slack then retries it).
        app.event("message")(self._on_message)
        return app

    async def _serve_http(self) -> None:
        """Kindred's web application (health, feature routes) plus Slack's endpoints."""
        web_app = web_application(self.kindred)
        if not self.socket_mode:
            web_app.router.add_post(EVENTS_PATH, self._dispatch)
        if self.oauth:
            web_app.router.add_get(INSTALL_PATH, self._install)
            web_app.router.add_get(REDIRECT_PATH, self._oauth_redirect)
        self._runner = await start_web(web_app, self.settings.http_host, self.settings.http_port)
        self.port = self._runner.addresses[0][1]
        mode = "Socket Mode" if self.socket_mode else f"HTTP mode at {EVENTS_PATH}"
        installs = f", installs at {INSTALL_PATH}" if self.oauth else ""
        log.info(
            "Slack adapter on %s:%s (%s%s)", self.settings.http_host, self.port, mode, installs
        )

    # -- Slack's endpoints ------------------------------------------------------------

    async def _dispatch(self, request: web.Request) -> web.Response:
        with self._acks.acking():
            bolt_request = await self._verified_request(request)
            if isinstance(bolt_request, web.Response):
                return bolt_request
            return await to_aiohttp_response(await self.bolt.async_dispatch(bolt_request))

    async def _verified_request(self, request: web.Request) -> AsyncBoltRequest | web.Response:
        """The request as bolt reads it, or the refusal: 401 for a missing, wrong or
        stale signature, 400 for a signed body that is not what Slack sends.

        bolt parses the body before its own signature check, so a broken body from
        anyone would otherwise end in a 500 with a traceback; checking first keeps
        the parser away from whoever cannot sign."""
        raw = await request.read()
        headers = request.headers
        if not _is_ssl_check(raw) and not _signed_by_slack(
            self.settings.slack_signing_secret.value,
            raw,
            headers.get("X-Slack-Request-Timestamp"),
            headers.get("X-Slack-Signature"),
        ):
            return web.Response(status=401, text="invalid request signature")
        try:
            text = raw.decode("utf-8")
            # The same reading bolt does; it breaks on anything but an object.
            body = parse_body(text, request.content_type)
        except ValueError as error:
            # UnicodeDecodeError and json.JSONDecodeError are both ValueErrors.
            log.warning("refusing a signed Slack request with an unreadable body: %s", error)
            return web.Response(status=400, text="unreadable request body")
        if not isinstance(body, dict):
            log.warning("refusing a signed Slack request whose body is not an object")
            return web.Response(status=400, text="unreadable request body")
        return AsyncBoltRequest(
            body=text,
            query=request.query_string,
            headers={key: headers.getall(key) for key in headers},
        )

    async def _install(self, request: web.Request) -> web.Response:
        flow = self.bolt.oauth_flow
        assert flow is not None, "install routes exist only in OAuth mode"
        bolt_request = await to_bolt_request(request)
        return await to_aiohttp_response(await flow.handle_installation(bolt_request))

    async def _oauth_redirect(self, request: web.Request) -> web.Response:
        flow = self.bolt.oauth_flow
        assert flow is not None, "install routes exist only in OAuth mode"
        bolt_request = await to_bolt_request(request)
        return await to_aiohttp_response(await flow.handle_callback(bolt_request))

    # -- listeners --------------------------------------------------------------------

    async def _on_token_lost(self, body: dict[str, Any]) -> None:
        log.error(
            "Slack workspace %s uninstalled Kindred or revoked its token: SLACK_BOT_TOKEN "
            "no longer works there. Reinstall the app and set the new token.",
            body.get("team_id"),
        )

    async def _on_command(self, ack: AsyncAck, body: dict[str, Any]) -> None:
        await ack()
        trigger_id = body.get("trigger_id")
        workspace_id, channel_id = body["team_id"], body.get("channel_id")
        # Slack names DMs and group DMs in the payload; other channels are asked.
        channel_name = str(body.get("channel_name", ""))
        private = channel_name in {"directmessage", "privategroup"}
        private = private or channel_name.startswith("mpdm-")
        if channel_id and not private:
            private = await self.platform.channel_is_private(workspace_id, channel_id)
        inbound = Inbound(
            kind="command",
            platform=PLATFORM,
            workspace_id=workspace_id,
            user_id=body["user_id"],
            user_name=body.get("user_name"),
            channel_id=channel_id,
            channel_is_private=private,
            # `should_escape` makes mentions arrive as <@U1|name>, which
            # bot.core.arguments understands.
            text=body.get("text", "").strip(),
            event_id=f"command:{trigger_id}" if trigger_id else None,
            raw=body,
        )
        await self._answer(inbound, Origin(body.get("response_url"), trigger_id))

    async def _on_button(
        self, ack: AsyncAck, body: dict[str, Any], action: dict[str, Any], context: AsyncBoltContext
    ) -> None:
        await ack()
        action_id = decode_action_id(action["action_id"])
        if action_id is None:
            return
        container = body.get("container") or {}
        channel_id = (body.get("channel") or {}).get("id") or container.get("channel_id")
        message = None
        if container.get("type") == "message" and channel_id and container.get("message_ts"):
            thread_ts = (body.get("message") or {}).get("thread_ts")
            message = MessageRef(channel_id, container["message_ts"], thread_id=thread_ts)
        user = body.get("user") or {}
        inbound = Inbound(
            kind="button",
            platform=PLATFORM,
            workspace_id=_team_id(body, context),
            user_id=user["id"],
            user_name=user.get("username") or user.get("name"),
            channel_id=channel_id,
            action_id=action_id,
            value=action.get("value", ""),
            message=message,
            # Each click has its own action_ts; a re-sent payload acts once.
            event_id=f"action:{action.get('action_ts')}:{action['action_id']}",
            raw=body,
        )
        origin = Origin(
            body.get("response_url"),
            body.get("trigger_id"),
            in_home=container.get("type") == "view"
            and (body.get("view") or {}).get("type") == "home",
        )
        await self._answer(inbound, origin)

    async def _on_modal_submit(
        self, ack: AsyncAck, body: dict[str, Any], view: dict[str, Any], context: AsyncBoltContext
    ) -> None:
        await ack()
        callback_id = decode_callback_id(view.get("callback_id", ""))
        if callback_id is None:
            return
        metadata = json.loads(view.get("private_metadata") or "{}")
        origin_message = metadata.get("message")
        user = body.get("user") or {}
        inbound = Inbound(
            kind="modal_submit",
            platform=PLATFORM,
            workspace_id=_team_id(body, context),
            user_id=user["id"],
            user_name=user.get("username") or user.get("name"),
            channel_id=metadata.get("channel"),
            action_id=callback_id,
            value=metadata.get("value", ""),
            options=submitted_values(view),
            message=MessageRef(*origin_message) if origin_message else None,
            event_id=f"view:{view['id']}:{view.get('hash', '')}",
            raw=body,
        )
        await self._answer(inbound, Origin(in_home=bool(metadata.get("home"))))

    async def _on_team_join(
        self, event: dict[str, Any], body: dict[str, Any], context: AsyncBoltContext
    ) -> None:
        user = SlackUser.from_api(event["user"])
        if not user.is_person:
            return
        await self._notify(
            Inbound(
                kind="member_joined",
                platform=PLATFORM,
                workspace_id=_team_id(body, context),
                user_id=user.user_id,
                user_name=user.display_name,
                event_id=body.get("event_id"),
                raw=body,
            )
        )

    async def _on_user_change(
        self, event: dict[str, Any], body: dict[str, Any], context: AsyncBoltContext
    ) -> None:
        """Slack has no "left the workspace" event: leaving is deactivation."""
        user = SlackUser.from_api(event["user"])
        if not user.deleted or user.is_bot:
            return
        workspace_id = _team_id(body, context)
        self.platform.forget_user(workspace_id, user.user_id)
        await self._notify(
            Inbound(
                kind="member_left",
                platform=PLATFORM,
                workspace_id=workspace_id,
                user_id=user.user_id,
                user_name=user.display_name,
                event_id=body.get("event_id"),
                raw=body,
            )
        )

    async def _on_channel_join(
        self, event: dict[str, Any], body: dict[str, Any], context: AsyncBoltContext
    ) -> None:
        await self._channel_membership("channel_joined", event, body, context)

    async def _on_channel_leave(
        self, event: dict[str, Any], body: dict[str, Any], context: AsyncBoltContext
    ) -> None:
        await self._channel_membership("member_left", event, body, context)

    async def _channel_membership(
        self,
        kind: Literal["channel_joined", "member_left"],
        event: dict[str, Any],
        body: dict[str, Any],
        context: AsyncBoltContext,
    ) -> None:
        workspace_id = _team_id(body, context)
        user_id = event["user"]
        if user_id == context.bot_user_id:
            return
        try:
            user = await self.platform.user(workspace_id, user_id)
        except PlatformError as error:
            log.warning("skipping a channel %s: cannot look up %s: %s", kind, user_id, error)
            return
        if user.is_bot:
            return
        await self._notify(
            Inbound(
                kind=kind,
                platform=PLATFORM,
                workspace_id=workspace_id,
                user_id=user_id,
                user_name=user.display_name,
                channel_id=event["channel"],
                channel_is_private=event.get("channel_type") == "G",
                event_id=body.get("event_id"),
                raw=body,
            )
        )

    async def _on_home_opened(
        self, event: dict[str, Any], body: dict[str, Any], context: AsyncBoltContext
    ) -> None:
        if event.get("tab") != "home":
            return
        inbound = Inbound(
            kind="home_opened",
            platform=PLATFORM,
            workspace_id=_team_id(body, context),
            user_id=event["user"],
            raw=body,
        )
        await self._publish_home(inbound, notice=None)

    async def _on_reaction(
        self, event: dict[str, Any], body: dict[str, Any], context: AsyncBoltContext
    ) -> None:
        item = event.get("item") or {}
        if item.get("type") != "message":
            return
        workspace_id = _team_id(body, context)
        channel_id, ts = item["channel"], item["ts"]
        await self._notify(
            Inbound(
                kind="reaction",
                platform=PLATFORM,
                workspace_id=workspace_id,
                user_id=event["user"],
                channel_id=channel_id,
                reaction=event["reaction"],
                message=MessageRef(channel_id, ts),
                message_author_id=await self._author(workspace_id, event, context),
                text=await self.platform.message_text(workspace_id, channel_id, ts),
                channel_is_private=await self.platform.channel_is_private(workspace_id, channel_id),
                event_id=body.get("event_id"),
                raw=body,
            )
        )

    async def _author(
        self, workspace_id: str, event: dict[str, Any], context: AsyncBoltContext
    ) -> str | None:
        """Who wrote the message a reaction is on, when that is a person: None for
        Kindred's own messages, other apps' bots, or an author Slack does not name."""
        author = event.get("item_user")
        if not author or author == context.bot_user_id:
            return None
        try:
            user = await self.platform.user(workspace_id, str(author))
        except PlatformError as error:
            log.warning("cannot look up the author %s of a reacted message: %s", author, error)
            return None
        return user.user_id if user.is_person else None

    async def _on_reaction_removed(
        self, event: dict[str, Any], body: dict[str, Any], context: AsyncBoltContext
    ) -> None:
        item = event.get("item") or {}
        if item.get("type") != "message":
            return
        channel_id = item["channel"]
        workspace_id = _team_id(body, context)
        await self._notify(
            Inbound(
                kind="reaction_removed",
                platform=PLATFORM,
                workspace_id=workspace_id,
                user_id=event["user"],
                channel_id=channel_id,
                reaction=event["reaction"],
                message=MessageRef(channel_id, item["ts"]),
                message_author_id=await self._author(workspace_id, event, context),
                event_id=body.get("event_id"),
                raw=body,
            )
        )

    async def _on_message(
        self, event: dict[str, Any], body: dict[str, Any], context: AsyncBoltContext
    ) -> None:
        """A member's new post in a channel, for features that read messages; edits,
        bots, Kindred itself and other subtypes are acknowledged and left alone."""
        user_id, channel_id = event.get("user"), event.get("channel")
        if (
            event.get("subtype") not in NEW_POST_SUBTYPES
            or event.get("bot_id")
            or not user_id
            or user_id == context.bot_user_id
            or not channel_id
            or event.get("channel_type") not in {"channel", "group"}
            or "message" not in self.kindred.registry.events
        ):
            return
        # A reply in a thread names whom it answers (the health report times a
        # newcomer's first reply from it).
        thread, parent = event.get("thread_ts"), event.get("parent_user_id")
        replies_to = parent if thread and thread != event.get("ts") and parent else None
        await self._notify(
            Inbound(
                kind="message",
                platform=PLATFORM,
                workspace_id=_team_id(body, context),
                user_id=str(user_id),
                channel_id=channel_id,
                text=str(event.get("text") or ""),
                message=MessageRef(channel_id, event["ts"], thread_id=thread),
                channel_is_private=event.get("channel_type") == "group",
                options={"reply_to": replies_to} if replies_to else {},
                event_id=body.get("event_id"),
                raw=body,
            )
        )

    async def _on_message_deleted(
        self, event: dict[str, Any], body: dict[str, Any], context: AsyncBoltContext
    ) -> None:
        channel_id, ts = event.get("channel"), event.get("deleted_ts")
        if not channel_id or not ts:
            return
        previous = event.get("previous_message") or {}
        await self._notify(
            Inbound(
                kind="message_deleted",
                platform=PLATFORM,
                workspace_id=_team_id(body, context),
                user_id=str(previous.get("user") or ""),
                channel_id=channel_id,
                message=MessageRef(channel_id, ts),
                channel_is_private=event.get("channel_type") == "group",
                event_id=body.get("event_id"),
                raw=body,
            )
        )

    # -- answering ----------------------------------------------------------------------

    async def _notify(self, inbound: Inbound) -> None:
        """Events have nobody to answer inline; what features say goes via the outbox."""
        reply = await self._handle(inbound)
        if reply is not None:
            log.debug("no inline answer for a %s event; dropping its reply", inbound.kind)

    async def _handle(self, inbound: Inbound) -> Reply | None:
        # The wait counts from the ack, so a long flood delays work by at most
        # `patience`, never starving it.
        deadline = self._acks.deadline()
        async with self._working:
            await self._acks.wait_turn(deadline)
            return await self.kindred.handle(inbound)

    async def _answer(self, inbound: Inbound, origin: Origin) -> None:
        reply = await self._handle(inbound)
        try:
            if reply is not None and reply.modal is not None:
                await self._open_modal(inbound, origin, reply)
            if origin.in_home:
                # The home tab is re-rendered with the answer on top.
                await self._publish_home(inbound, reply.message if reply else None)
                return
            if reply is not None:
                await self._reply(inbound, origin, reply)
        except PlatformError as error:
            log.warning("could not answer %s from %s: %s", inbound.kind, inbound.user_id, error)

    async def _open_modal(self, inbound: Inbound, origin: Origin, reply: Reply) -> None:
        modal = reply.modal
        assert modal is not None
        if origin.trigger_id is None:
            raise PlatformError(f"cannot open '{modal.callback_id}': no trigger to open it from")
        metadata: dict[str, Any] = {"value": modal.value, "channel": inbound.channel_id}
        if inbound.message is not None:
            metadata["message"] = [inbound.message.channel_id, inbound.message.message_id]
        if origin.in_home:
            metadata["home"] = True
        view = modal_view(modal, metadata)
        await self.platform.call(
            inbound.workspace_id,
            "views.open",
            lambda token: self.platform.client.views_open(
                token=token, trigger_id=origin.trigger_id, view=view
            ),
        )

    async def _reply(self, inbound: Inbound, origin: Origin, reply: Reply) -> None:
        workspace_id = inbound.workspace_id
        if reply.update_original is not None:
            payload = await self.platform.render(workspace_id, reply.update_original)
            if origin.response_url:
                await self._respond(origin.response_url, {"replace_original": True, **payload})
            elif inbound.message is not None:
                await self.platform.update_message(
                    workspace_id, inbound.message, reply.update_original
                )
        message = reply.message
        if message is None:
            return
        if message.attachment is not None:
            # Files cannot be ephemeral: the asker gets them in their DM with Kindred.
            if reply.public and inbound.channel_id:
                await self.platform.post_channel(workspace_id, inbound.channel_id, message)
            else:
                await self.platform.send_dm(workspace_id, inbound.user_id, message)
            return
        if reply.public:
            payload = await self.platform.render(workspace_id, message)
            if origin.response_url:
                await self._respond(
                    origin.response_url,
                    {"response_type": "in_channel", "replace_original": False, **payload},
                )
            elif inbound.channel_id:
                await self.platform.post_channel(workspace_id, inbound.channel_id, message)
            return
        # Only the asker sees an ephemeral answer, so its mentions notify nobody.
        payload = message_payload(message)
        if origin.response_url:
            await self._respond(
                origin.response_url,
                {"response_type": "ephemeral", "replace_original": False, **payload},
            )
        else:
            await self._ephemeral(inbound, message, payload)

    async def _ephemeral(self, inbound: Inbound, message: Message, payload: dict[str, Any]) -> None:
        """Show an answer to one person in the channel they acted in, else in their DM."""
        channel_id = inbound.channel_id
        if channel_id:
            try:
                await self.platform.call(
                    inbound.workspace_id,
                    "chat.postEphemeral",
                    lambda token: self.platform.client.chat_postEphemeral(
                        token=token, channel=channel_id, user=inbound.user_id, **payload
                    ),
                )
                return
            except PlatformError as error:
                log.info("ephemeral answer refused (%s); sending it as a DM", error)
        await self.platform.send_dm(inbound.workspace_id, inbound.user_id, message)

    async def _respond(self, response_url: str, body: dict[str, Any]) -> None:
        try:
            async with self.session.post(response_url, json=body) as response:
                if response.status >= 400:
                    detail = (await response.text())[:200]
                    raise PlatformError(f"response_url refused: HTTP {response.status} {detail}")
        except (aiohttp.ClientError, TimeoutError) as error:
            raise PlatformError(f"response_url unreachable: {error.__class__.__name__}") from None

    async def _publish_home(self, inbound: Inbound, notice: Message | None) -> None:
        # Rendering the home tab only reads, so no event id: a re-delivered
        # app_home_opened simply renders the tab again.
        opened = replace(
            inbound, kind="home_opened", event_id=None, action_id=None, value="", message=None
        )
        sections = await self._handle(opened)
        view = home_view(notice, sections.message if sections else None)
        try:
            await self.platform.call(
                inbound.workspace_id,
                "views.publish",
                lambda token: self.platform.client.views_publish(
                    token=token, user_id=inbound.user_id, view=view
                ),
            )
        except PlatformError as error:
            log.warning("could not publish the home tab of %s: %s", inbound.user_id, error)


def _signed_by_slack(secret: str, raw: bytes, timestamp: str | None, signature: str | None) -> bool:
    """`X-Slack-Signature` is v0= HMAC-SHA256 of `v0:{timestamp}:{body}`, and the
    timestamp is at most SIGNATURE_MAX_AGE seconds off (replays). Computed on the
    bytes, so a body that is not even UTF-8 is refused as unsigned, not as a crash."""
    if timestamp is None or signature is None:
        return False
    try:
        stamp = int(timestamp)
    except ValueError:
        return False
    if abs(time.time() - stamp) > SIGNATURE_MAX_AGE:
        return False
    signed = b"v0:" + timestamp.encode() + b":" + raw
    expected = "v0=" + hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected.encode(), signature.encode("utf-8", "replace"))


def _is_ssl_check(raw: bytes) -> bool:
    """Slack's certificate probe, which bolt answers without a signature (as before)."""
    try:
        fields = parse_qs(raw.decode("utf-8"))
    except ValueError:
        return False
    return fields.get("ssl_check") == ["1"]


def _team_id(body: dict[str, Any], context: AsyncBoltContext) -> str:
    team = body.get("team_id") or (body.get("team") or {}).get("id") or context.team_id
    if not team:
        raise PlatformError("Slack sent an event without a workspace id")
    return str(team)


async def serve_slack(kindred: Kindred, settings: Settings) -> None:
    """`kindred run --platform slack`: serve until cancelled."""
    adapter = SlackAdapter(kindred, settings)
    try:
        await adapter.start()
        # What is loaded by now (SDKs, features, templates) lives as long as the
        # process; freezing it spares the collector from rescanning it, and a full
        # collection would otherwise stall the event loop (and the acks) ~100 ms.
        gc.collect()
        gc.freeze()
        await asyncio.Event().wait()
    finally:
        gc.unfreeze()
        await adapter.stop()
