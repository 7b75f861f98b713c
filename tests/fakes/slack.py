"""A local fake of Slack for the adapter's end-to-end tests and benchmarks.

- Web API at `/api/<method>` (the methods Kindred uses), token → workspace,
  every call recorded; Slack-like rate limits per method per workspace (and per
  channel for chat.postMessage) answer 429 + Retry-After; `fail_next` injects
  429 storms or 5xx answers.
- `response_url` endpoints (`/respond/<key>`) and the file upload URL.
- Socket Mode: `apps.connections.open` hands out a `ws://127.0.0.1` URL that
  speaks the envelope protocol (hello, envelopes acked by `envelope_id`).
- Helpers that build correctly signed inbound requests: slash commands
  (form-encoded), Events API envelopes (JSON) and interactivity (`payload=`).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import itertools
import json
import math
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from aiohttp import ClientSession, WSMsgType, web

SIGNING_SECRET = "test-signing-secret"
Params = dict[str, Any]
Answer = dict[str, Any]
APP_ID = "AKINDRED"


# -- signed inbound requests -------------------------------------------------------------


def signature_headers(
    body: str, secret: str = SIGNING_SECRET, timestamp: float | None = None
) -> dict[str, str]:
    """`X-Slack-Signature` = v0= HMAC-SHA256 of `v0:{timestamp}:{body}`."""
    stamp = str(int(time.time() if timestamp is None else timestamp))
    digest = hmac.new(secret.encode(), f"v0:{stamp}:{body}".encode(), hashlib.sha256)
    return {"X-Slack-Request-Timestamp": stamp, "X-Slack-Signature": f"v0={digest.hexdigest()}"}


def slash_command_fields(
    text: str,
    *,
    team_id: str,
    user_id: str,
    response_url: str,
    channel_id: str = "CGENERAL",
    user_name: str = "ana",
    trigger_id: str | None = None,
) -> dict[str, str]:
    """What Slack sends for `/kindred <text>` (form fields over HTTP, JSON in Socket Mode)."""
    return {
        "token": "legacy-verification-token",
        "team_id": team_id,
        "team_domain": team_id.lower(),
        "channel_id": channel_id,
        "channel_name": "general",
        "user_id": user_id,
        "user_name": user_name,
        "command": "/kindred",
        "text": text,
        "api_app_id": APP_ID,
        "response_url": response_url,
        "trigger_id": trigger_id or f"trigger-{uuid.uuid4().hex}",
    }


def slash_command(text: str, **fields: Any) -> str:
    return urlencode(slash_command_fields(text, **fields))


def event_callback(event: dict[str, Any], *, team_id: str, event_id: str) -> str:
    return json.dumps(
        {
            "token": "legacy-verification-token",
            "team_id": team_id,
            "api_app_id": APP_ID,
            "event": event,
            "type": "event_callback",
            "event_id": event_id,
            "event_time": int(time.time()),
            "authorizations": [{"team_id": team_id, "is_bot": True}],
        }
    )


def block_action_payload(
    action: dict[str, Any],
    *,
    team_id: str,
    user_id: str,
    channel_id: str | None,
    message_ts: str | None,
    response_url: str | None,
    container_type: str = "message",
    view: dict[str, Any] | None = None,
) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "type": "block_actions",
        "team": {"id": team_id, "domain": team_id.lower()},
        "user": {"id": user_id, "username": "ana", "team_id": team_id},
        "api_app_id": APP_ID,
        "trigger_id": f"trigger-{uuid.uuid4().hex}",
        "actions": [{**action, "action_ts": f"{time.time():.6f}"}],
    }
    if container_type == "message":
        payload["container"] = {
            "type": "message",
            "message_ts": message_ts,
            "channel_id": channel_id,
            "is_ephemeral": False,
        }
        payload["channel"] = {"id": channel_id}
        payload["message"] = {"ts": message_ts, "type": "message"}
    else:
        payload["container"] = {"type": "view", "view_id": (view or {}).get("id", "VHOME")}
        payload["view"] = view or {"id": "VHOME", "type": "home"}
    if response_url is not None:
        payload["response_url"] = response_url
    return payload


def interactive(payload: dict[str, Any]) -> str:
    return urlencode({"payload": json.dumps(payload)})


def view_submission(
    view: dict[str, Any], values: dict[str, str], *, team_id: str, user_id: str
) -> str:
    state = {
        field_id: {field_id: {"type": "plain_text_input", "value": value}}
        for field_id, value in values.items()
    }
    submitted = {**view, "id": "VMODAL", "hash": "1.abc", "state": {"values": state}}
    return interactive(
        {
            "type": "view_submission",
            "team": {"id": team_id},
            "user": {"id": user_id, "username": "ana", "team_id": team_id},
            "api_app_id": APP_ID,
            "view": submitted,
        }
    )


@dataclass
class Sender:
    """Posts signed requests to the adapter, as Slack would."""

    url: str
    session: ClientSession
    secret: str = SIGNING_SECRET

    async def post(
        self,
        body: str,
        *,
        json_body: bool = False,
        retry_num: int | None = None,
        secret: str | None = None,
        timestamp: float | None = None,
    ) -> tuple[int, str]:
        headers = signature_headers(body, secret or self.secret, timestamp)
        headers["Content-Type"] = (
            "application/json" if json_body else "application/x-www-form-urlencoded"
        )
        if retry_num is not None:
            headers["X-Slack-Retry-Num"] = str(retry_num)
            headers["X-Slack-Retry-Reason"] = "http_timeout"
        async with self.session.post(self.url, data=body.encode(), headers=headers) as response:
            return response.status, await response.text()

    async def event(self, event: dict[str, Any], *, team_id: str, event_id: str, **kw: Any) -> int:
        body = event_callback(event, team_id=team_id, event_id=event_id)
        status, _ = await self.post(body, json_body=True, **kw)
        return status


# -- the fake Web API -----------------------------------------------------------------


@dataclass
class Call:
    method: str
    team_id: str | None
    params: dict[str, Any]
    status: int


@dataclass
class Workspace:
    team_id: str
    name: str
    token: str
    bot_user_id: str
    bot_id: str
    users: dict[str, dict[str, Any]] = field(default_factory=dict)
    channels: dict[str, dict[str, Any]] = field(default_factory=dict)
    homes: dict[str, dict[str, Any]] = field(default_factory=dict)


class _Bucket:
    def __init__(self, per_second: float, burst: int) -> None:
        self.rate = per_second
        self.capacity = float(burst)
        self.tokens = float(burst)
        self.updated = time.monotonic()

    def wait(self) -> float:
        """0 if a call may go now (and takes a token), else seconds until it may."""
        now = time.monotonic()
        self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens >= 1:
            self.tokens -= 1
            return 0.0
        return (1 - self.tokens) / self.rate


@dataclass
class _Failure:
    status: int
    retry_after: float


class FakeSlack:
    def __init__(self, *, retry_after_unit: float = 0.0) -> None:
        self.workspaces: dict[str, Workspace] = {}
        self.tokens: dict[str, str] = {}
        self.app_tokens: set[str] = set()
        self.calls: list[Call] = []
        self.responses: list[tuple[str, dict[str, Any]]] = []
        # When each response_url post arrived (time.time()), for benchmarks.
        self.response_times: dict[str, float] = {}
        self.opened_views: list[dict[str, Any]] = []
        self.ephemerals: list[dict[str, Any]] = []
        self.uploads: dict[str, bytes] = {}
        self.alt_texts: dict[str, str | None] = {}
        self.oauth_codes: dict[str, tuple[str, str]] = {}
        self.client_credentials: tuple[str, str] | None = None
        self.limits: dict[str, tuple[float, int]] = {}
        self.channel_limit: tuple[float, int] | None = None
        self._buckets: dict[tuple[str, str], _Bucket] = {}
        self._failures: dict[str, list[_Failure]] = {}
        # Real Slack's Retry-After is whole seconds (unit 1.0); 0 sends the exact wait,
        # so tests stay fast.
        self.retry_after_unit = retry_after_unit
        self.rate_limited = 0
        # Seconds every Web API call takes (a slow Slack); response_url posts stay fast.
        self.delay = 0.0
        # When each Web API call arrived (time.monotonic()), to compare with acks.
        self.call_times: list[tuple[str, float]] = []
        self._ts = itertools.count(1)
        self._ids = itertools.count(1)
        self._changed = asyncio.Condition()
        self._socket: web.WebSocketResponse | None = None
        self._socket_acks: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self.socket_connected = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self.port = 0

    # -- set-up ------------------------------------------------------------------------

    async def start(self) -> None:
        app = web.Application(client_max_size=16 * 1024 * 1024)
        app.router.add_route("*", "/api/{method}", self._api)
        app.router.add_post("/respond/{key}", self._respond)
        app.router.add_get("/respond", self._response_times)
        app.router.add_post("/upload/{file_id}", self._upload)
        app.router.add_get("/socket-mode", self._socket_mode)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]

    async def close(self) -> None:
        if self._socket is not None:
            await self._socket.close()
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_url(self) -> str:
        return f"{self.base_url}/api/"

    def response_url(self, key: str) -> str:
        return f"{self.base_url}/respond/{key}"

    def add_workspace(
        self, team_id: str, token: str, *, name: str = "", bot_user_id: str = "UKINDRED"
    ) -> Workspace:
        workspace = Workspace(team_id, name or f"Team {team_id}", token, bot_user_id, f"B{team_id}")
        self.workspaces[team_id] = workspace
        self.tokens[token] = team_id
        self.add_user(team_id, bot_user_id, "Kindred", is_bot=True)
        return workspace

    def add_oauth_code(self, code: str, team_id: str, token: str, *, name: str = "") -> None:
        """oauth.v2.access with `code` installs Kindred in a new workspace."""
        self.oauth_codes[code] = (team_id, token)
        if team_id not in self.workspaces:
            self.add_workspace(team_id, token, name=name)

    def add_user(
        self,
        team_id: str,
        user_id: str,
        name: str = "",
        *,
        tz: str | None = "Europe/Berlin",
        is_bot: bool = False,
        deleted: bool = False,
        is_admin: bool = False,
    ) -> dict[str, Any]:
        name = name or user_id.lower()
        user = {
            "id": user_id,
            "team_id": team_id,
            "name": name,
            "real_name": name.title(),
            "deleted": deleted,
            "is_bot": is_bot,
            "is_admin": is_admin,
            "is_owner": False,
            "tz": tz,
            "profile": {"display_name": name, "real_name": name.title()},
        }
        self.workspaces[team_id].users[user_id] = user
        return user

    def add_channel(
        self, team_id: str, channel_id: str, members: Iterable[str], *, is_private: bool = False
    ) -> None:
        self.workspaces[team_id].channels[channel_id] = {
            "id": channel_id,
            "is_private": is_private,
            "is_im": False,
            "is_mpim": False,
            "members": list(members),
            "messages": [],
        }

    def limit(self, method: str, per_second: float, burst: int) -> None:
        """Answer 429 when `method` is called faster than this in one workspace."""
        self.limits[method] = (per_second, burst)

    def limit_per_channel(self, per_second: float, burst: int) -> None:
        """chat.postMessage's per-channel limit."""
        self.channel_limit = (per_second, burst)

    def fail_next(
        self, method: str, count: int, *, status: int = 429, retry_after: float = 0.05
    ) -> None:
        self._failures.setdefault(method, []).extend(
            _Failure(status, retry_after) for _ in range(count)
        )

    # -- reading what happened -----------------------------------------------------------

    def calls_to(self, method: str, *, ok: bool = True) -> list[Call]:
        return [c for c in self.calls if c.method == method and (c.status == 200) == ok]

    def messages(self, team_id: str, channel_id: str) -> list[dict[str, Any]]:
        """The channel's messages (none while nobody has opened it)."""
        channel = self.workspaces[team_id].channels.get(channel_id)
        return channel["messages"] if channel is not None else []

    def channels_of(
        self, team_id: str, *, mpim: bool | None = None, im: bool | None = None
    ) -> list[dict[str, Any]]:
        return [
            channel
            for channel in self.workspaces[team_id].channels.values()
            if (mpim is None or channel["is_mpim"] == mpim)
            and (im is None or channel["is_im"] == im)
        ]

    def home(self, team_id: str, user_id: str) -> dict[str, Any] | None:
        return self.workspaces[team_id].homes.get(user_id)

    async def wait_for(self, condition: Callable[[], Any], within: float = 5.0) -> Any:
        """Wait until `condition()` is truthy (re-checked whenever the fake changes)."""
        async with asyncio.timeout(within), self._changed:
            while not (result := condition()):
                await self._changed.wait()
            return result

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    # -- Web API -------------------------------------------------------------------------

    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        self.call_times.append((method, time.monotonic()))
        if self.delay:
            await asyncio.sleep(self.delay)
        params: dict[str, Any] = dict(request.query)
        if request.content_type == "application/json":
            params.update(await request.json())
        elif request.can_read_body:
            params.update({k: v for k, v in (await request.post()).items() if isinstance(v, str)})
        authorization = request.headers.get("Authorization", "")
        token = authorization.removeprefix("Bearer ") if authorization.startswith("Bearer ") else ""
        token = token or str(params.pop("token", ""))
        team_id = self.tokens.get(token)
        status, body, headers = self._answer(method, token, team_id, params, request)
        self.calls.append(Call(method, team_id, params, status))
        await self._notify()
        return web.json_response(body, status=status, headers=headers)

    def _answer(
        self,
        method: str,
        token: str,
        team_id: str | None,
        params: dict[str, Any],
        request: web.Request,
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        failures = self._failures.get(method)
        if failures:
            failure = failures.pop(0)
            return self._refusal(failure.status, failure.retry_after)
        if method == "oauth.v2.access":
            return 200, self._oauth_access(params, request), {}
        if method == "apps.connections.open":
            if token not in self.app_tokens:
                return 200, {"ok": False, "error": "invalid_auth"}, {}
            return 200, {"ok": True, "url": f"ws://127.0.0.1:{self.port}/socket-mode"}, {}
        if team_id is None:
            return 200, {"ok": False, "error": "invalid_auth"}, {}
        wait = self._throttle(method, team_id, params)
        if wait > 0:
            self.rate_limited += 1
            return self._refusal(429, wait)
        workspace = self.workspaces[team_id]
        handler = getattr(self, "_" + method.replace(".", "_"), None)
        if handler is None:
            return 200, {"ok": False, "error": "unknown_method"}, {}
        try:
            return 200, {"ok": True, **handler(workspace, params)}, {}
        except SlackError as error:
            return 200, {"ok": False, "error": error.code}, {}

    def _refusal(
        self, status: int, retry_after: float
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        if status != 429:
            return status, {"ok": False, "error": "internal_error"}, {}
        unit = self.retry_after_unit
        wait = math.ceil(retry_after / unit) * unit if unit else retry_after
        value = f"{wait:g}" if unit >= 1 else f"{wait:.3f}"
        return 429, {"ok": False, "error": "ratelimited"}, {"Retry-After": value}

    def _throttle(self, method: str, team_id: str, params: dict[str, Any]) -> float:
        waits = []
        if method in self.limits:
            waits.append(self._bucket((team_id, method), *self.limits[method]).wait())
        if method == "chat.postMessage" and self.channel_limit is not None:
            channel = str(params.get("channel", ""))
            waits.append(self._bucket((team_id, f"channel:{channel}"), *self.channel_limit).wait())
        return max(waits, default=0.0)

    def _bucket(self, key: tuple[str, str], per_second: float, burst: int) -> _Bucket:
        if key not in self._buckets:
            self._buckets[key] = _Bucket(per_second, burst)
        return self._buckets[key]

    def _oauth_access(self, params: dict[str, Any], request: web.Request) -> dict[str, Any]:
        client_id, client_secret = params.get("client_id"), params.get("client_secret")
        authorization = request.headers.get("Authorization", "")
        if authorization.startswith("Basic "):
            decoded = base64.b64decode(authorization[6:]).decode()
            client_id, _, client_secret = decoded.partition(":")
        if self.client_credentials and (client_id, client_secret) != self.client_credentials:
            return {"ok": False, "error": "invalid_client_id"}
        found = self.oauth_codes.pop(str(params.get("code")), None)
        if found is None:
            return {"ok": False, "error": "invalid_code"}
        team_id, token = found
        workspace = self.workspaces[team_id]
        return {
            "ok": True,
            "app_id": APP_ID,
            "authed_user": {"id": "UINSTALLER"},
            "scope": "commands,chat:write",
            "token_type": "bot",
            "access_token": token,
            "bot_user_id": workspace.bot_user_id,
            "team": {"id": team_id, "name": workspace.name},
            "enterprise": None,
            "is_enterprise_install": False,
        }

    # Methods (each returns the fields of an ok answer or raises SlackError).

    def _auth_test(self, workspace: Workspace, params: Params) -> Answer:
        return {
            "url": f"https://{workspace.team_id.lower()}.slack.com/",
            "team": workspace.name,
            "user": "kindred",
            "team_id": workspace.team_id,
            "user_id": workspace.bot_user_id,
            "bot_id": workspace.bot_id,
            "is_enterprise_install": False,
        }

    def _users_list(self, workspace: Workspace, params: Params) -> Answer:
        users = list(workspace.users.values())
        return self._page(users, params, "members")

    def _users_info(self, workspace: Workspace, params: Params) -> Answer:
        user = workspace.users.get(str(params.get("user")))
        if user is None:
            raise SlackError("user_not_found")
        return {"user": user}

    def _conversations_members(
        self, workspace: Workspace, params: dict[str, Any]
    ) -> dict[str, Any]:
        channel = self._channel(workspace, params)
        return self._page(channel["members"], params, "members")

    def _conversations_info(self, workspace: Workspace, params: Params) -> Answer:
        channel = self._channel(workspace, params)
        return {"channel": {k: v for k, v in channel.items() if k not in {"messages", "members"}}}

    def _conversations_open(self, workspace: Workspace, params: Params) -> Answer:
        users = sorted(str(params.get("users", "")).split(","))
        for user_id in users:
            if user_id not in workspace.users:
                raise SlackError("user_not_found")
        if len(users) == 1:
            channel_id = f"D{users[0]}"
            im, mpim = True, False
        else:
            channel_id = "G" + hashlib.sha1(",".join(users).encode()).hexdigest()[:10].upper()
            im, mpim = False, True
        if channel_id not in workspace.channels:
            self.add_channel(workspace.team_id, channel_id, [*users, workspace.bot_user_id])
            workspace.channels[channel_id].update(is_private=True, is_im=im, is_mpim=mpim)
        return {"channel": {"id": channel_id}}

    def _conversations_history(
        self, workspace: Workspace, params: dict[str, Any]
    ) -> dict[str, Any]:
        channel = self._channel(workspace, params)
        top_level = [m for m in channel["messages"] if m.get("thread_ts", m["ts"]) == m["ts"]]
        return self._history_page(self._window(top_level, params, limit=False), params)

    def _conversations_replies(
        self, workspace: Workspace, params: dict[str, Any]
    ) -> dict[str, Any]:
        channel = self._channel(workspace, params)
        wanted = str(params.get("ts"))
        message = next((m for m in channel["messages"] if m["ts"] == wanted), None)
        if message is None:
            raise SlackError("thread_not_found")
        thread = message.get("thread_ts", message["ts"])
        in_thread = [m for m in channel["messages"] if m.get("thread_ts", m["ts"]) == thread]
        chosen = self._window(in_thread, params, newest_first=False, limit=False)
        return self._history_page(chosen, params)

    def _history_page(self, chosen: list[dict[str, Any]], params: Params) -> Answer:
        """One page of messages, cursor-paginated; metadata only when asked for
        (`include_all_metadata`), as Slack does."""
        page = self._page(chosen, params, "messages")
        if str(params.get("include_all_metadata", "")).lower() not in {"1", "true"}:
            page["messages"] = [
                {k: v for k, v in m.items() if k != "metadata"} for m in page["messages"]
            ]
        page["has_more"] = bool(page["response_metadata"]["next_cursor"])
        return page

    def _chat_postMessage(self, workspace: Workspace, params: Params) -> Answer:
        channel_id = str(params.get("channel", ""))
        if channel_id in workspace.users:
            channel_id = self._conversations_open(workspace, {"users": channel_id})["channel"]["id"]
        channel = workspace.channels.get(channel_id)
        if channel is None:
            raise SlackError("channel_not_found")
        message = {
            "ts": self._next_ts(),
            "text": params.get("text", ""),
            "blocks": params.get("blocks", []),
            "user": workspace.bot_user_id,
        }
        if params.get("thread_ts"):
            message["thread_ts"] = params["thread_ts"]
        if params.get("metadata"):
            metadata = params["metadata"]
            message["metadata"] = metadata if isinstance(metadata, dict) else json.loads(metadata)
        channel["messages"].append(message)
        return {"channel": channel_id, "ts": message["ts"], "message": message}

    def _chat_update(self, workspace: Workspace, params: Params) -> Answer:
        channel = self._channel(workspace, params)
        for message in channel["messages"]:
            if message["ts"] == params.get("ts"):
                message.update(text=params.get("text", ""), blocks=params.get("blocks", []))
                message["edited"] = True
                return {"channel": channel["id"], "ts": message["ts"]}
        raise SlackError("message_not_found")

    def _chat_postEphemeral(self, workspace: Workspace, params: Params) -> Answer:
        channel = self._channel(workspace, params)
        if params.get("user") not in channel["members"]:
            raise SlackError("user_not_in_channel")
        self.ephemerals.append(dict(params))
        return {"message_ts": self._next_ts()}

    def _views_publish(self, workspace: Workspace, params: Params) -> Answer:
        view = params["view"] if isinstance(params["view"], dict) else json.loads(params["view"])
        workspace.homes[str(params["user_id"])] = view
        return {"view": {"id": f"V{next(self._ids)}", **view}}

    def _views_open(self, workspace: Workspace, params: Params) -> Answer:
        if not params.get("trigger_id"):
            raise SlackError("invalid_trigger_id")
        view = params["view"] if isinstance(params["view"], dict) else json.loads(params["view"])
        self.opened_views.append(view)
        return {"view": {"id": f"V{next(self._ids)}", **view}}

    def _files_getUploadURLExternal(
        self, workspace: Workspace, params: dict[str, Any]
    ) -> dict[str, Any]:
        file_id = f"F{next(self._ids)}"
        # Slack takes a file's alt text when the upload URL is asked for.
        self.alt_texts[file_id] = params.get("alt_txt")
        return {"file_id": file_id, "upload_url": f"{self.base_url}/upload/{file_id}"}

    def _files_completeUploadExternal(
        self, workspace: Workspace, params: dict[str, Any]
    ) -> dict[str, Any]:
        files = json.loads(params["files"]) if isinstance(params["files"], str) else params["files"]
        for entry in files:
            if entry["id"] not in self.uploads:
                raise SlackError("file_not_found")
        channel = self._channel(workspace, {"channel": params.get("channel_id")})
        shared = [
            {
                "id": f["id"],
                "title": f.get("title"),
                "name": f.get("title"),
                "alt_txt": self.alt_texts.get(f["id"]),
            }
            for f in files
        ]
        channel["messages"].append(
            {"ts": self._next_ts(), "text": params.get("initial_comment", ""), "files": shared}
        )
        return {"files": shared}

    def _channel(self, workspace: Workspace, params: Params) -> Answer:
        channel = workspace.channels.get(str(params.get("channel")))
        if channel is None:
            raise SlackError("channel_not_found")
        return channel

    @staticmethod
    def _page(items: list[Any], params: dict[str, Any], key: str) -> dict[str, Any]:
        start = int(params.get("cursor") or 0)
        limit = int(params.get("limit") or 100)
        page = items[start : start + limit]
        following = start + limit
        cursor = str(following) if following < len(items) else ""
        return {key: page, "response_metadata": {"next_cursor": cursor}}

    @staticmethod
    def _window(
        messages: list[dict[str, Any]],
        params: dict[str, Any],
        *,
        newest_first: bool = True,
        limit: bool = True,
    ) -> list[dict[str, Any]]:
        inclusive = str(params.get("inclusive", "")).lower() in {"1", "true"}
        latest = params.get("latest")
        oldest = params.get("oldest")

        def inside(ts: str) -> bool:
            value = float(ts)
            if latest is not None:
                newest = float(latest)
                if value > newest or (value == newest and not inclusive):
                    return False
            if oldest is not None:
                earliest = float(oldest)
                if value < earliest or (value == earliest and not inclusive):
                    return False
            return True

        chosen = [m for m in messages if inside(m["ts"])]
        chosen.sort(key=lambda m: float(m["ts"]), reverse=newest_first)
        return chosen[: int(params.get("limit") or 100)] if limit else chosen

    def _next_ts(self) -> str:
        # Like Slack's: the posting time, unique per message (the counter keeps them
        # increasing and distinct within one second).
        return f"{int(time.time())}.{next(self._ts):06d}"

    # -- response_url, uploads, Socket Mode ------------------------------------------------

    async def _respond(self, request: web.Request) -> web.Response:
        key = request.match_info["key"]
        self.response_times.setdefault(key, time.time())
        self.responses.append((key, await request.json()))
        await self._notify()
        return web.Response(text="ok")

    async def _response_times(self, request: web.Request) -> web.Response:
        """For a benchmark running in another process."""
        return web.json_response(self.response_times)

    async def _upload(self, request: web.Request) -> web.Response:
        self.uploads[request.match_info["file_id"]] = await request.read()
        return web.Response(text=f"OK - {len(self.uploads[request.match_info['file_id']])}")

    async def _socket_mode(self, request: web.Request) -> web.WebSocketResponse:
        socket = web.WebSocketResponse()
        await socket.prepare(request)
        self._socket = socket
        await socket.send_json(
            {
                "type": "hello",
                "num_connections": 1,
                "debug_info": {"host": "fake", "approximate_connection_time": 3600},
                "connection_info": {"app_id": APP_ID},
            }
        )
        self.socket_connected.set()
        async for message in socket:
            if message.type != WSMsgType.TEXT:
                continue
            acknowledgement = json.loads(message.data)
            waiter = self._socket_acks.pop(acknowledgement.get("envelope_id", ""), None)
            if waiter is not None and not waiter.done():
                waiter.set_result(acknowledgement)
        self.socket_connected.clear()
        return socket

    async def send_envelope(
        self, kind: str, payload: dict[str, Any], *, retry_attempt: int = 0, within: float = 5.0
    ) -> dict[str, Any]:
        """Push one Socket Mode envelope and wait for the app's acknowledgement."""
        await asyncio.wait_for(self.socket_connected.wait(), within)
        assert self._socket is not None
        envelope_id = uuid.uuid4().hex
        waiter: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._socket_acks[envelope_id] = waiter
        await self._socket.send_json(
            {
                "envelope_id": envelope_id,
                "type": kind,
                "payload": payload,
                "accepts_response_payload": kind != "events_api",
                "retry_attempt": retry_attempt,
                "retry_reason": "timeout" if retry_attempt else "",
            }
        )
        return await asyncio.wait_for(waiter, within)


class SlackError(Exception):
    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code
