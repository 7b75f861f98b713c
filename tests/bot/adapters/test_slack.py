"""The Slack adapter end to end: the real bolt app served over real HTTP (or Socket
Mode), driven by signed requests, talking to the local fake Slack Web API."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import re
import socket
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp import ClientSession
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy import select

from bot.adapters.slack import BOT_EVENTS, BOT_SCOPES, AcksFirst, serve_slack
from bot.adapters.slack_platform import SlackPlatform, StaticToken
from bot.commands import declared_features
from bot.core.app import Kindred
from bot.core.context import Context
from bot.core.errors import StartupRefused
from bot.core.feature import Feature
from bot.core.mentions import member_text, mention
from bot.core.platform import (
    Attachment,
    Button,
    ButtonStyle,
    Inbound,
    Message,
    Modal,
    ModalField,
    PlatformError,
    RateLimited,
    Reply,
    TransientPlatformError,
)
from bot.core.registry import CommandSpec, Handlers, Registry
from bot.core.settings import Secret, Settings
from storage import members, slack_installations
from storage import outbox as outbox_rows
from storage.db import Database
from storage.models import OutboxMessage
from tests.bot.adapters.slack_harness import (
    ADMIN,
    CHANNEL,
    MEMBER,
    TEAM,
    TOKEN,
    Harness,
    populate,
    running_slack,
    slack_settings,
)
from tests.fakes.slack import (
    SIGNING_SECRET,
    FakeSlack,
    block_action_payload,
    event_callback,
    interactive,
    signature_headers,
    slash_command,
    slash_command_fields,
    view_submission,
)

REPO = Path(__file__).resolve().parents[3]


class Probe:
    """A test-only feature: records what reached it and sends through the outbox."""

    def __init__(self) -> None:
        self.seen: list[Inbound] = []
        self.gate = asyncio.Event()
        self.handlers = handlers = Handlers("probe")

        @handlers.event("member_joined")
        async def joined(ctx: Context) -> None:
            self.seen.append(ctx.inbound)
            # No outbox key on purpose: only the adapter's event id keeps this single.
            await ctx.outbox.dm(ctx.inbound.user_id, Message("probe hello"))

        @handlers.event("channel_joined")
        async def channel_joined(ctx: Context) -> None:
            self.seen.append(ctx.inbound)

        @handlers.event("member_left")
        async def left(ctx: Context) -> None:
            self.seen.append(ctx.inbound)

        @handlers.event("reaction")
        async def reacted(ctx: Context) -> None:
            self.seen.append(ctx.inbound)

        @handlers.event("home_opened")
        async def home(ctx: Context) -> Reply:
            return Reply.text("**Probe** section", Button("Press", "probe.press", "home"))

        @handlers.command("probe post", "Post a message with buttons")
        async def post(ctx: Context) -> Reply:
            buttons = (
                Button("Acme", "probe.press", "acme"),
                Button("Globex", "probe.press", "globex", ButtonStyle.PRIMARY),
            )
            await ctx.outbox.post(CHANNEL, Message("Where do you work?", buttons), key="buttons")
            return Reply.text("Posted.")

        @handlers.action("probe.press")
        async def press(ctx: Context) -> Reply:
            member = await ctx.member()
            member.company = ctx.inbound.value
            return Reply(
                message=Message(f"Saved {ctx.inbound.value}."),
                update_original=Message(f"{mention(ctx.inbound.user_id)} chose a company."),
            )

        @handlers.command("probe form", "Open a form")
        async def form(ctx: Context) -> Reply:
            fields = (ModalField("answer", "Your answer", multiline=True, max_length=500),)
            return Reply(modal=Modal("probe.form", "A question", fields, value="ctx-42"))

        @handlers.action("probe.form")
        async def submitted(ctx: Context) -> Reply:
            self.seen.append(ctx.inbound)
            return Reply.text(f"Got {member_text(ctx.inbound.options['answer'])}.")

        @handlers.command("probe where", "Say whether this channel is private")
        async def where(ctx: Context) -> Reply:
            return Reply.text(f"private={ctx.inbound.channel_is_private}")

        @handlers.command("probe slow", "Answer after the test says so")
        async def slow(ctx: Context) -> Reply:
            await self.gate.wait()
            return Reply.text("Finally.")

        @handlers.command("probe outbound", "Queue one message of each kind")
        async def outbound(ctx: Context) -> Reply:
            post_id = await ctx.outbox.post(CHANNEL, Message("Thread parent"), key="parent")
            await ctx.outbox.thread_reply(post_id, Message("In the thread"), key="reply")
            await ctx.outbox.update(post_id, Message("Parent, edited"), key="edit")
            await ctx.outbox.group(
                [MEMBER, "UBEN"],
                Message(f"Meet {mention(MEMBER)} and {mention('UBEN')}", mentions=(MEMBER, "UBEN")),
                key="group",
            )
            export = Attachment("ama.md", b"# AMA export\n- Q1")
            await ctx.outbox.dm("UBEN", Message("Your export", attachment=export), key="file")
            unsafe = member_text("<!channel> read <@UADMIN> now & later")
            await ctx.outbox.post(
                CHANNEL,
                Message(
                    f"{unsafe} (from {mention(MEMBER)} to {mention('UBEN')})", mentions=(MEMBER,)
                ),
                key="unsafe",
            )
            return Reply.text("Queued.")

        @handlers.command("probe dm", "DM the caller")
        async def dm(ctx: Context) -> Reply:
            await ctx.outbox.dm(ctx.inbound.user_id, Message("hi from your workspace"))
            return Reply(message=Message("Sent you a DM."), public=True)

        @handlers.command("probe round", "Queue a group intro for every pair of members")
        async def round_(ctx: Context) -> Reply:
            people = [member.user_id for member in await ctx.platform.list_members(TEAM)]
            people = [user_id for user_id in people if user_id.startswith("UP")]
            for index in range(0, len(people), 2):
                pair = people[index : index + 2]
                await ctx.outbox.group(
                    pair,
                    Message(
                        f"Meet {mention(pair[0])} and {mention(pair[1])}", mentions=tuple(pair)
                    ),
                    key=f"round-1:{index // 2}",
                )
            return Reply.text(f"Queued {len(people) // 2} intros.")


@pytest.fixture
async def fake() -> AsyncIterator[FakeSlack]:
    slack = FakeSlack()
    await slack.start()
    populate(slack)
    yield slack
    await slack.close()


@pytest.fixture
def probe() -> Probe:
    return Probe()


@pytest.fixture
async def slack(
    fake: FakeSlack, settings: Settings, sqlite_db: Database, probe: Probe
) -> AsyncIterator[Harness]:
    features = (*declared_features(), Feature(summary="Test probe", handlers=probe.handlers))
    async with running_slack(
        fake, slack_settings(settings, fake), sqlite_db, features=features
    ) as h:
        yield h


def _texts(fake: FakeSlack, channel_id: str, team: str = TEAM) -> list[str]:
    return [message["text"] for message in fake.messages(team, channel_id)]


# -- commands -----------------------------------------------------------------------------


async def test_help_answers_through_the_response_url(slack: Harness) -> None:
    answer = await slack.command("help")
    assert answer["response_type"] == "ephemeral"
    text = "\n".join(block["text"]["text"] for block in answer["blocks"])
    assert text.startswith("*Kindred commands*")
    # The overview names each feature; `help <feature>` lists its commands.
    profile = await slack.command("help profile")
    text = "\n".join(block["text"]["text"] for block in profile["blocks"])
    assert "`/kindred profile show [@member]`" in text
    probe = await slack.command("help probe")
    text = "\n".join(block["text"]["text"] for block in probe["blocks"])
    assert "/kindred probe post" in text


def _sample(spec: CommandSpec) -> str:
    """Arguments that pass validation, so the command reaches its handler."""
    words = []
    for param in spec.params:
        if not param.required:
            continue
        value = {
            "user": "<@UBEN|ben>",
            "channel": f"<#{CHANNEL}|general>",
            "bool": "on",
            "int": str(param.min_value if param.min_value is not None else 1),
        }.get(param.kind, param.choices[0] if param.choices else "x")
        words.append(f"{param.name}={value}")
    return " ".join([*spec.path, *words])


async def test_every_subcommand_reaches_its_handler(
    fake: FakeSlack, settings: Settings, sqlite_db: Database
) -> None:
    reached: list[tuple[str, Inbound]] = []

    def recorder(spec: CommandSpec) -> Any:
        async def record(ctx: Context) -> Reply:
            reached.append((spec.name, ctx.inbound))
            return Reply.text(f"reached {spec.name}")

        return record

    wrapped = [
        replace(
            feature,
            handlers=Handlers(
                feature.name,
                commands=[
                    replace(spec, handler=recorder(spec)) for spec in feature.handlers.commands
                ],
            ),
        )
        for feature in declared_features()
    ]
    registry = Registry.merge(feature.handlers for feature in wrapped)
    async with running_slack(
        fake, slack_settings(settings, fake), sqlite_db, features=wrapped
    ) as h:
        for spec in registry.commands.values():
            answer = await h.command(_sample(spec), user=ADMIN)
            assert answer["text"] == f"reached {spec.name}", answer["text"]
    assert [name for name, _ in reached] == [spec.name for spec in registry.commands.values()]
    assert len(reached) >= 3
    inbound = reached[0][1]
    assert (inbound.platform, inbound.workspace_id, inbound.user_id) == ("slack", TEAM, ADMIN)
    assert inbound.channel_id == CHANNEL


async def test_command_is_acked_before_slow_work_and_answered_after(
    slack: Harness, probe: Probe
) -> None:
    key = uuid.uuid4().hex
    body = slash_command(
        "probe slow", team_id=TEAM, user_id=MEMBER, response_url=slack.fake.response_url(key)
    )
    started = time.perf_counter()
    status, text = await slack.sender.post(body)
    acked = time.perf_counter() - started
    assert (status, text) == (200, "")
    assert acked < 1.0
    assert slack.fake.responses == []
    probe.gate.set()
    answer = await slack.response(key)
    assert answer["text"] == "Finally."


async def _acked_within(slack: Harness, body: str, *, json_body: bool = False) -> float:
    started = time.perf_counter()
    status, _ = await slack.sender.post(body, json_body=json_body)
    assert status == 200
    return time.perf_counter() - started


async def test_nothing_calls_a_slow_slack_between_a_request_and_its_ack(
    slack: Harness, probe: Probe
) -> None:
    """The first request after a start included: bolt would ask auth.test then."""
    slack.fake.delay = 2.5
    calls_before = len(slack.fake.calls)
    key = uuid.uuid4().hex
    command = slash_command(
        "help", team_id=TEAM, user_id=MEMBER, response_url=slack.fake.response_url(key)
    )
    assert await _acked_within(slack, command) < 1.0
    joined = event_callback(
        {"type": "member_joined_channel", "user": "UBEN", "channel": CHANNEL},
        team_id=TEAM,
        event_id="EvSlowJoin",
    )
    assert await _acked_within(slack, joined, json_body=True) < 1.0
    reaction = event_callback(
        {
            "type": "reaction_added",
            "user": MEMBER,
            "reaction": "bookmark",
            "item": {"type": "message", "channel": CHANNEL, "ts": "1.000001"},
        },
        team_id=TEAM,
        event_id="EvSlowReaction",
    )
    assert await _acked_within(slack, reaction, json_body=True) < 1.0
    click = interactive(
        block_action_payload(
            {"action_id": "kindred:probe.press:0", "value": "acme", "type": "button"},
            team_id=TEAM,
            user_id=MEMBER,
            channel_id=CHANNEL,
            message_ts="1.000002",
            response_url=slack.fake.response_url(uuid.uuid4().hex),
        )
    )
    assert await _acked_within(slack, click) < 1.0
    # The answers still come, after the slow calls that follow the acks.
    assert (await slack.response(key, within=15))["text"]
    assert [c.method for c in slack.fake.calls[calls_before:] if c.method == "auth.test"] == []


async def test_work_defers_to_acks_in_progress_but_not_for_long() -> None:
    acks = AcksFirst(patience=0.3, settle=0.02)
    loop = asyncio.get_running_loop()
    with acks.acking():
        acked_at = loop.time()
        waiting = asyncio.create_task(acks.wait_turn(acks.deadline()))
        await asyncio.sleep(0.1)
        assert not waiting.done()
    await waiting
    assert loop.time() - acked_at >= 0.1
    with acks.acking():  # a flood that never pauses
        flooded_at = loop.time()
        await acks.wait_turn(acks.deadline())
        assert 0.29 <= loop.time() - flooded_at < 2.0


async def test_commands_know_whether_their_channel_is_private(slack: Harness) -> None:
    slack.fake.add_channel(TEAM, "CSECRET", [MEMBER, "UKINDRED"], is_private=True)
    assert (await slack.command("probe where"))["text"] == "private=False"
    assert (await slack.command("probe where", channel="CSECRET"))["text"] == "private=True"
    # A private channel Kindred is not in: Slack will not describe it.
    assert (await slack.command("probe where", channel="CHIDDEN"))["text"] == "private=True"


async def test_admin_commands_ask_slack_who_is_an_admin(slack: Harness) -> None:
    refused = await slack.command("welcome preview", user=MEMBER)
    assert refused["text"] == "Only community admins can use `/kindred welcome preview`."
    allowed = await slack.command("welcome preview", user=ADMIN)
    assert "Only community admins" not in allowed["text"]
    asked = {call.params["user"] for call in slack.fake.calls_to("users.info")}
    assert asked == {MEMBER, ADMIN}


async def test_unknown_command_gets_a_helpful_answer(slack: Harness) -> None:
    answer = await slack.command("profil show")
    assert "Did you mean `/kindred profile show`?" in answer["text"]


async def test_mentions_in_command_text_reach_the_handler(slack: Harness) -> None:
    answer = await slack.command("profile show <@UBEN|ben>")
    assert answer["text"].startswith("*Profile of <@UBEN>*")


# -- signatures --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("secret", "age"), [("wrong-secret", 0), (None, 600)], ids=["bad", "stale"]
)
async def test_bad_or_stale_signatures_get_401_and_do_nothing(
    slack: Harness, probe: Probe, secret: str | None, age: float
) -> None:
    body = event_callback(
        {"type": "team_join", "user": slack.fake.add_user(TEAM, "UNEW", "newbie")},
        team_id=TEAM,
        event_id="EvForged",
    )
    status, _ = await slack.sender.post(
        body, json_body=True, secret=secret, timestamp=time.time() - age
    )
    assert status == 401
    command = slash_command("help", team_id=TEAM, user_id=MEMBER, response_url="http://x/")
    status, _ = await slack.sender.post(command, secret=secret, timestamp=time.time() - age)
    assert status == 401
    async with slack.session.post(
        slack.sender.url,
        data=command,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    ) as unsigned:
        assert unsigned.status == 401
    await slack.drain()
    assert probe.seen == []
    assert slack.fake.responses == []
    assert slack.fake.calls_to("chat.postMessage") == []


BROKEN_BODIES = [
    pytest.param('{"type": "event_callback", "event": {', True, id="json"),
    pytest.param("payload=%7B%22type%22%3A+%22block_actions", False, id="form-payload"),
    pytest.param("[1, 2]", True, id="json-not-an-object"),
    pytest.param("payload=%5B%5D", False, id="form-payload-not-an-object"),
    pytest.param(b"\xff\xfe{", True, id="not-utf8"),
]


async def _post_raw(
    slack: Harness, body: bytes, json_body: bool, headers: dict[str, str]
) -> tuple[int, str]:
    headers = {
        **headers,
        "Content-Type": "application/json" if json_body else "application/x-www-form-urlencoded",
    }
    async with slack.session.post(slack.sender.url, data=body, headers=headers) as response:
        return response.status, await response.text()


def _signed(body: bytes, *, secret: str = SIGNING_SECRET, age: float = 0) -> dict[str, str]:
    stamp = str(int(time.time() - age))
    digest = hmac.new(secret.encode(), f"v0:{stamp}:".encode() + body, hashlib.sha256)
    return {"X-Slack-Request-Timestamp": stamp, "X-Slack-Signature": f"v0={digest.hexdigest()}"}


@pytest.mark.parametrize(("body", "json_body"), BROKEN_BODIES)
async def test_unparsable_bodies_get_401_unless_signed_and_then_400(
    slack: Harness, probe: Probe, body: str | bytes, json_body: bool
) -> None:
    raw = body.encode() if isinstance(body, str) else body
    # The signature is checked before the body is read as JSON: whoever cannot sign
    # learns nothing about the parser.
    assert (await _post_raw(slack, raw, json_body, {}))[0] == 401
    forged = _signed(raw, secret="wrong-secret")
    assert (await _post_raw(slack, raw, json_body, forged))[0] == 401
    assert (await _post_raw(slack, raw, json_body, _signed(raw, age=600)))[0] == 401
    garbage_stamp = {**_signed(raw), "X-Slack-Request-Timestamp": "soon"}
    assert (await _post_raw(slack, raw, json_body, garbage_stamp))[0] == 401
    status, text = await _post_raw(slack, raw, json_body, _signed(raw))
    assert status == 400
    assert "Traceback" not in text
    # The endpoint still serves well-formed requests afterwards.
    assert (await slack.command("help"))["text"]
    assert probe.seen == []


async def test_slacks_certificate_probe_is_answered_unsigned(slack: Harness) -> None:
    status, _ = await _post_raw(slack, b"ssl_check=1&token=legacy", False, {})
    assert status == 200


# -- events ------------------------------------------------------------------------------


async def test_team_join_delivered_three_times_welcomes_once(slack: Harness, probe: Probe) -> None:
    newcomer = slack.fake.add_user(TEAM, "UNEW", "newbie")
    event = {"type": "team_join", "user": newcomer}
    statuses = [
        await slack.sender.event(event, team_id=TEAM, event_id="Ev0001"),
        await slack.sender.event(event, team_id=TEAM, event_id="Ev0001", retry_num=1),
        await slack.sender.event(event, team_id=TEAM, event_id="Ev0001", retry_num=2),
    ]
    assert statuses == [200, 200, 200]
    await slack.fake.wait_for(lambda: len(slack.fake.messages(TEAM, "DUNEW")) >= 2)
    await slack.drain()
    delivered = slack.fake.messages(TEAM, "DUNEW")
    # The welcome feature's DM (with its buttons) and the probe's, once each.
    assert len(delivered) == 2
    (welcome,) = [message for message in delivered if message["text"] != "probe hello"]
    assert "newbie" in welcome["text"]
    assert any(block["type"] == "actions" for block in welcome["blocks"])
    assert [inbound.user_id for inbound in probe.seen] == ["UNEW"]
    assert probe.seen[0].event_id == "Ev0001"


async def test_bots_joining_are_not_welcomed(slack: Harness, probe: Probe) -> None:
    robot = slack.fake.add_user(TEAM, "UROBOT", "robot", is_bot=True)
    await slack.sender.event({"type": "team_join", "user": robot}, team_id=TEAM, event_id="Ev2")
    join = {"type": "member_joined_channel", "user": "UKINDRED", "channel": CHANNEL}
    await slack.sender.event({**join, "channel_type": "C"}, team_id=TEAM, event_id="Ev3")
    # A person joining afterwards: by the time that is handled (after a users.info
    # round trip), the bot events before it have long been filtered out.
    person = {**join, "user": "UBEN", "channel_type": "C"}
    await slack.sender.event(person, team_id=TEAM, event_id="Ev4")
    await _until_seen(probe, 1)
    await slack.drain()
    assert [(i.kind, i.user_id, i.channel_id) for i in probe.seen] == [
        ("channel_joined", "UBEN", CHANNEL)
    ]
    assert "DUROBOT" not in slack.fake.workspaces[TEAM].channels


async def _until_seen(probe: Probe, count: int) -> None:
    async with asyncio.timeout(5):
        while len(probe.seen) < count:
            await asyncio.sleep(0.01)


async def test_channel_leave_and_deactivation_become_member_left(
    slack: Harness, probe: Probe
) -> None:
    leave = {"type": "member_left_channel", "user": "UBEN", "channel": "CPRIV", "channel_type": "G"}
    await slack.sender.event(leave, team_id=TEAM, event_id="EvLeave")
    await _until_seen(probe, 1)
    gone = slack.fake.add_user(TEAM, "UGONE", "gone", deleted=True)
    await slack.sender.event({"type": "user_change", "user": gone}, team_id=TEAM, event_id="EvGone")
    renamed = slack.fake.add_user(TEAM, "UREN", "renamed")
    await slack.sender.event({"type": "user_change", "user": renamed}, team_id=TEAM, event_id="Ev9")
    await _until_seen(probe, 2)
    assert [(i.kind, i.user_id, i.channel_id, i.channel_is_private) for i in probe.seen] == [
        ("member_left", "UBEN", "CPRIV", True),
        ("member_left", "UGONE", None, False),
    ]


async def test_reaction_carries_the_message_text_and_privacy(slack: Harness, probe: Probe) -> None:
    fake = slack.fake
    fake.add_channel(TEAM, "CSECRET", [MEMBER, "UKINDRED"], is_private=True)
    fake.messages(TEAM, CHANNEL).append({"ts": "1699999999.000001", "text": "Great read"})
    fake.messages(TEAM, CHANNEL).append(
        {"ts": "1699999999.000002", "text": "A reply", "thread_ts": "1699999999.000001"}
    )
    fake.messages(TEAM, "CSECRET").append({"ts": "1699999999.000003", "text": "Hush"})
    for number, (channel, ts) in enumerate(
        [
            (CHANNEL, "1699999999.000001"),
            (CHANNEL, "1699999999.000002"),
            ("CSECRET", "1699999999.000003"),
        ]
    ):
        event = {
            "type": "reaction_added",
            "user": MEMBER,
            "reaction": "pushpin",
            "item": {"type": "message", "channel": channel, "ts": ts},
            "item_user": "UBEN",
        }
        await slack.sender.event(event, team_id=TEAM, event_id=f"EvR{number}")
        await _until_seen(probe, number + 1)
    assert [(i.text, i.channel_is_private, i.reaction) for i in probe.seen] == [
        ("Great read", False, "pushpin"),
        ("A reply", False, "pushpin"),
        ("Hush", True, "pushpin"),
    ]
    assert probe.seen[1].message is not None
    assert probe.seen[1].message.message_id == "1699999999.000002"


# -- buttons, modals, App Home ---------------------------------------------------------------


async def _posted_buttons(slack: Harness) -> dict[str, Any]:
    await slack.command("probe post")
    await slack.drain()
    return slack.fake.messages(TEAM, CHANNEL)[-1]


async def test_button_click_updates_state_and_the_clicked_message(
    slack: Harness, sqlite_db: Database
) -> None:
    posted = await _posted_buttons(slack)
    actions = next(block for block in posted["blocks"] if block["type"] == "actions")
    ids = [element["action_id"] for element in actions["elements"]]
    assert ids == ["kindred:probe.press:0", "kindred:probe.press:1"]
    assert actions["elements"][1]["style"] == "primary"
    clicked = {key: actions["elements"][1][key] for key in ("action_id", "value", "type")}
    key = uuid.uuid4().hex
    payload = block_action_payload(
        {**clicked, "block_id": "b1"},
        team_id=TEAM,
        user_id=MEMBER,
        channel_id=CHANNEL,
        message_ts=posted["ts"],
        response_url=slack.fake.response_url(key),
    )
    status, _ = await slack.sender.post(interactive(payload))
    assert status == 200
    await slack.fake.wait_for(lambda: len([k for k, _ in slack.fake.responses if k == key]) == 2)
    replaced, answer = [body for k, body in slack.fake.responses if k == key]
    assert replaced["replace_original"] is True
    assert replaced["text"] == "@ana chose a company."
    assert all(block["type"] != "actions" for block in replaced["blocks"])
    assert answer["response_type"] == "ephemeral"
    assert answer["text"] == "Saved globex."
    async with sqlite_db.transaction() as session:
        member = await members.get_member(session, "slack", TEAM, MEMBER)
    assert member is not None
    assert member.company == "globex"


async def test_button_without_response_url_updates_with_chat_update(slack: Harness) -> None:
    posted = await _posted_buttons(slack)
    payload = block_action_payload(
        {"action_id": "kindred:probe.press:0", "value": "acme", "type": "button"},
        team_id=TEAM,
        user_id=MEMBER,
        channel_id=CHANNEL,
        message_ts=posted["ts"],
        response_url=None,
    )
    await slack.sender.post(interactive(payload))
    await slack.fake.wait_for(lambda: slack.fake.ephemerals)
    assert posted["edited"] is True
    assert posted["text"] == "@ana chose a company."
    assert slack.fake.ephemerals[0]["text"] == "Saved acme."
    assert slack.fake.ephemerals[0]["user"] == MEMBER


async def test_modal_opens_and_its_submission_reaches_the_handler(
    slack: Harness, probe: Probe
) -> None:
    await slack.send_command("probe form")
    view = await slack.fake.wait_for(lambda: slack.fake.opened_views)
    modal = view[0]
    assert modal["callback_id"] == "kindred:probe.form"
    assert modal["blocks"][0]["element"]["multiline"] is True
    body = view_submission(modal, {"answer": "Less <!here> please"}, team_id=TEAM, user_id=MEMBER)
    status, text = await slack.sender.post(body)
    assert (status, text) == (200, "")
    await slack.fake.wait_for(lambda: slack.fake.ephemerals)
    submitted = probe.seen[-1]
    assert (submitted.kind, submitted.action_id, submitted.value) == (
        "modal_submit",
        "probe.form",
        "ctx-42",
    )
    assert submitted.options == {"answer": "Less <!here> please"}
    ephemeral = slack.fake.ephemerals[0]
    assert (ephemeral["channel"], ephemeral["user"]) == (CHANNEL, MEMBER)
    assert ephemeral["text"] == "Got Less &lt;!here&gt; please."


async def test_app_home_shows_every_section_and_answers_clicks_there(slack: Harness) -> None:
    opened = {"type": "app_home_opened", "user": MEMBER, "channel": "DUANA", "tab": "home"}
    await slack.sender.event(opened, team_id=TEAM, event_id="EvHome")
    home = await slack.fake.wait_for(lambda: slack.fake.home(TEAM, MEMBER))
    text = "\n".join(b["text"]["text"] for b in home["blocks"] if b["type"] == "section")
    assert "*Profile of <@UANA>*" in text
    assert text.endswith("*Probe* section")
    button = next(b for b in home["blocks"] if b["type"] == "actions")["elements"][0]
    payload = block_action_payload(
        {key: button[key] for key in ("action_id", "value", "type")},
        team_id=TEAM,
        user_id=MEMBER,
        channel_id=None,
        message_ts=None,
        response_url=None,
        container_type="view",
    )
    await slack.sender.post(interactive(payload))

    def republished() -> dict[str, Any] | None:
        view = slack.fake.home(TEAM, MEMBER)
        return view if view is not home else None

    view = await slack.fake.wait_for(republished)
    assert view["blocks"][1]["text"]["text"] == "Saved home."
    assert view["blocks"][2]["type"] == "divider"


# -- outbound ------------------------------------------------------------------------------


async def test_every_outbound_kind_lands_where_it_should(slack: Harness) -> None:
    fake = slack.fake
    await slack.command("probe outbound")
    await slack.drain()
    general = {message["text"]: message for message in fake.messages(TEAM, CHANNEL)}
    parent = general["Parent, edited"]
    assert parent["edited"] is True
    assert general["In the thread"]["thread_ts"] == parent["ts"]
    assert "&lt;!channel&gt; read &lt;@UADMIN&gt; now &amp; later (from <@UANA> to @ben)" in general
    (group,) = fake.channels_of(TEAM, mpim=True)
    assert sorted(group["members"]) == sorted([MEMBER, "UBEN", "UKINDRED"])
    assert [m["text"] for m in group["messages"]] == ["Meet <@UANA> and <@UBEN>"]
    (shared,) = fake.messages(TEAM, "DUBEN")
    assert shared["text"] == "Your export"
    assert fake.uploads[shared["files"][0]["id"]] == b"# AMA export\n- Q1"
    # Delivered messages keep a permalink (AMA recaps link to answer threads).
    async with slack.kindred.db.sessions() as session:
        refs = [
            row.sent_ref
            for row in (await session.execute(select(OutboxMessage))).scalars()
            if row.kind in {"post", "thread_reply"}
        ]
    workspace = f"https://{TEAM.lower()}.slack.com/archives/{CHANNEL}/p"
    assert refs and all(ref and ref["permalink"].startswith(workspace) for ref in refs)
    thread = general["In the thread"]
    assert any(
        ref
        and ref["permalink"].endswith(f"?thread_ts={parent['ts']}&cid={CHANNEL}")
        and thread["ts"].replace(".", "") in ref["permalink"]
        for ref in refs
    )


async def test_public_reply_goes_to_the_channel(slack: Harness) -> None:
    answer = await slack.command("probe dm")
    assert answer["response_type"] == "in_channel"
    await slack.drain()
    assert _texts(slack.fake, "DUANA") == ["hi from your workspace"]


async def test_a_round_for_2000_members_survives_429_storms(
    fake: FakeSlack, settings: Settings, sqlite_db: Database, probe: Probe
) -> None:
    pairs = 1000
    for number in range(2 * pairs):
        fake.add_user(TEAM, f"UP{number:04d}", f"p{number}")
    # Slack-like answers, faster than Slack so the test stays short: each method
    # accepts 400 calls/s per workspace (bursts of 20) and 1/s per channel, and the
    # round starts in the middle of a 429 storm.
    fake.limit("conversations.open", 400, 20)
    fake.limit("chat.postMessage", 400, 20)
    fake.limit_per_channel(1, 3)
    fake.fail_next("conversations.open", 25, retry_after=0.2)
    fake.fail_next("chat.postMessage", 25, retry_after=0.2)
    # Paced at ~600 group intros/s: faster than the fake allows, so 429s keep coming.
    async with running_slack(
        fake, slack_settings(settings, fake), sqlite_db, extra_handlers=[probe.handlers], pace=720
    ) as h:
        started = time.perf_counter()
        # Queueing 1,000 intros in one transaction takes a few seconds on a busy box.
        answer = await h.command("probe round", user=ADMIN, within=60)
        assert answer["text"] == f"Queued {pairs} intros."
        async with asyncio.timeout(120):
            await h.drain()
        elapsed = time.perf_counter() - started
    groups = fake.channels_of(TEAM, mpim=True)
    assert len(groups) == pairs
    assert all(len(group["messages"]) == 1 for group in groups)
    assert len(fake.calls_to("chat.postMessage")) == pairs
    assert len(fake.calls_to("conversations.open")) == pairs
    refused = [call for call in fake.calls if call.status == 429]
    assert len(refused) > 50  # the storm, then the fake's own limits
    assert await outbox_rows.counts_by_status(sqlite_db) == {"sent": pairs}
    print(f"\n2,000-member round: {pairs} intros in {elapsed:.2f}s, {len(refused)} calls got 429")


# -- members and errors ---------------------------------------------------------------------


async def test_member_lists_page_through_1000_people_and_skip_bots(fake: FakeSlack) -> None:
    people = [f"UM{number:04d}" for number in range(1000)]
    for user_id in people:
        fake.add_user(TEAM, user_id)
    for number in range(20):
        fake.add_user(TEAM, f"UBOT{number:02d}", is_bot=True)
        fake.add_user(TEAM, f"UOLD{number:02d}", deleted=True)
    fake.add_channel(TEAM, "CBIG", [*people, "UBOT00", "UOLD00", "UKINDRED"])
    fake.fail_next("users.list", 1, retry_after=0.05)
    async with ClientSession() as session:
        client = AsyncWebClient(base_url=fake.api_url, session=session, retry_handlers=[])
        platform = SlackPlatform(client, StaticToken(TOKEN))
        everyone = await platform.list_members(TEAM)
        channel = await platform.list_members(TEAM, "CBIG")
    assert len(everyone) == 1003  # the 1,000 plus populate()'s three people
    assert {m.user_id for m in channel} == set(people)
    assert all(not m.is_bot and not m.deactivated for m in everyone)
    assert next(m for m in everyone if m.user_id == "UBEN").timezone == "America/New_York"
    assert next(m for m in everyone if m.user_id == ADMIN).is_admin
    pages = fake.calls_to("users.list")
    assert len(pages) == 6  # 1,044 accounts at 200 a page, after one 429 was waited out
    assert len(fake.calls_to("users.list", ok=False)) == 1
    assert len(fake.calls_to("conversations.members")) == 6


async def test_slack_errors_become_the_ports_errors(fake: FakeSlack) -> None:
    message = Message("hello")
    async with ClientSession() as session:
        client = AsyncWebClient(base_url=fake.api_url, session=session, retry_handlers=[])
        platform = SlackPlatform(client, StaticToken(TOKEN))
        fake.fail_next("chat.postMessage", 1, retry_after=2.5)
        with pytest.raises(RateLimited) as limited:
            await platform.send_dm(TEAM, MEMBER, message)
        assert limited.value.retry_after == 2.5
        fake.fail_next("chat.postMessage", 1, status=503)
        with pytest.raises(TransientPlatformError):
            await platform.post_channel(TEAM, CHANNEL, message)
        with pytest.raises(PlatformError, match="channel_not_found") as missing:
            await platform.post_channel(TEAM, "CNOPE", message)
        assert not isinstance(missing.value, TransientPlatformError)
        revoked = SlackPlatform(client, StaticToken("xoxb-revoked"))
        with pytest.raises(PlatformError, match="invalid_auth"):
            await revoked.post_channel(TEAM, CHANNEL, message)
        with pytest.raises(PlatformError, match="1 to 8 people"):
            await platform.open_group(TEAM, [f"U{n}" for n in range(9)], None, "too many")
        unreachable = AsyncWebClient(
            base_url="http://127.0.0.1:9/api/", session=session, retry_handlers=[]
        )
        with pytest.raises(TransientPlatformError, match="cannot reach Slack"):
            await SlackPlatform(unreachable, StaticToken(TOKEN)).send_dm(TEAM, MEMBER, message)
    assert fake.messages(TEAM, CHANNEL) == []


def test_pacing_follows_slacks_tiers() -> None:
    platform = SlackPlatform(client=None, tokens=StaticToken(TOKEN))  # type: ignore[arg-type]
    group = dict(platform.rate_limits("group", TEAM, ""))
    assert group[f"slack:{TEAM}:conversations.open"].per_second == pytest.approx(50 / 60)
    dm = dict(platform.rate_limits("dm", TEAM, MEMBER))
    assert dm[f"slack:{TEAM}:channel:{MEMBER}"].per_second == 1.0
    assert dm[f"slack:{TEAM}:chat.postMessage"].per_second == 5.0
    faster = SlackPlatform(client=None, tokens=StaticToken(TOKEN), pace=10)  # type: ignore[arg-type]
    assert dict(faster.rate_limits("update", TEAM, CHANNEL))[
        f"slack:{TEAM}:chat.update"
    ].per_second == pytest.approx(500 / 60)


# -- multi-workspace OAuth -----------------------------------------------------------------


async def _install(h: Harness, code: str) -> str:
    async with h.session.get(f"{h.base_url}/slack/install") as page:
        assert page.status == 200
        html = await page.text()
    authorize = re.search(r'href="(https://slack\.com/oauth/v2/authorize\?[^"]+)"', html)
    assert authorize is not None
    url = authorize.group(1).replace("&amp;", "&")
    assert f"scope={','.join(BOT_SCOPES)}&" in url
    state = re.search(r"state=([^&]+)", url)
    assert state is not None
    cookie = {"Cookie": f"slack-app-oauth-state={state.group(1)}"}
    callback = f"{h.base_url}/slack/oauth_redirect?code={code}&state={state.group(1)}"
    async with h.session.get(callback, headers=cookie) as done:
        return f"{done.status} {await done.text()}"


# slack_sdk still hands oauth.v2.access credentials to aiohttp's BasicAuth.
@pytest.mark.filterwarnings("ignore:BasicAuth is deprecated:DeprecationWarning")
async def test_two_workspaces_installed_by_oauth_each_use_their_own_token(
    fake: FakeSlack, settings: Settings, sqlite_db: Database, probe: Probe
) -> None:
    fake.client_credentials = ("client-1", "client-secret")
    fake.add_oauth_code("code-one", "TONE", "xoxb-one", name="Guild One")
    fake.add_oauth_code("code-two", "TTWO", "xoxb-two", name="Guild Two")
    for team in ("TONE", "TTWO"):
        fake.add_user(team, MEMBER, "ana")
    oauth = slack_settings(
        settings,
        fake,
        slack_client_id="client-1",
        slack_client_secret=Secret("client-secret"),
    )
    oauth = replace(oauth, slack_bot_token=Secret(""))
    async with running_slack(fake, oauth, sqlite_db, extra_handlers=[probe.handlers]) as h:
        assert (await _install(h, "code-one")).startswith("200")
        assert (await _install(h, "code-two")).startswith("200")
        assert (await _install(h, "code-reused")).startswith("401")
        for team in ("TONE", "TTWO"):
            answer = await h.command("probe dm", team=team)
            assert answer["text"] == "Sent you a DM."
        await h.drain()
        async with sqlite_db.transaction() as session:
            stored = [await slack_installations.find(session, t) for t in ("TONE", "TTWO")]
            names = [
                (await members.ensure_community(session, "slack", t)).name for t in ("TONE", "TTWO")
            ]
        assert names == ["Guild One", "Guild Two"]
        assert [row.bot_token for row in stored if row] == ["xoxb-one", "xoxb-two"]
        assert all(row and row.installer_user_id == "UINSTALLER" for row in stored)
        sends = {(c.team_id, c.params["channel"]) for c in fake.calls_to("chat.postMessage")}
        assert sends == {("TONE", MEMBER), ("TTWO", MEMBER)}
        assert _texts(fake, "DUANA", "TONE") == ["hi from your workspace"]
        assert _texts(fake, "DUANA", "TTWO") == ["hi from your workspace"]

        opened = {"type": "app_home_opened", "user": MEMBER, "channel": "DUANA", "tab": "home"}
        assert await h.sender.event(opened, team_id="TTWO", event_id="EvHomeTwo") == 200
        await fake.wait_for(lambda: fake.home("TTWO", MEMBER))
        assert fake.home("TONE", MEMBER) is None
        (published,) = fake.calls_to("views.publish")
        assert published.team_id == "TTWO"

        uninstalled = {"type": "app_uninstalled"}
        assert await h.sender.event(uninstalled, team_id="TTWO", event_id="EvBye") == 200
        async with asyncio.timeout(5):
            while True:
                async with sqlite_db.transaction() as session:
                    if await slack_installations.find(session, "TTWO") is None:
                        break
                await asyncio.sleep(0.01)
        with pytest.raises(PlatformError, match="not installed"):
            await h.adapter.platform.send_dm("TTWO", MEMBER, Message("still there?"))


@pytest.mark.filterwarnings("ignore:BasicAuth is deprecated:DeprecationWarning")
async def test_an_installed_workspace_is_acked_without_asking_a_slow_slack_after_a_restart(
    fake: FakeSlack, settings: Settings, sqlite_db: Database, probe: Probe
) -> None:
    fake.client_credentials = ("client-1", "client-secret")
    fake.add_oauth_code("code-one", "TONE", "xoxb-one", name="Guild One")
    fake.add_user("TONE", MEMBER, "ana")
    oauth = slack_settings(
        settings, fake, slack_client_id="client-1", slack_client_secret=Secret("client-secret")
    )
    oauth = replace(oauth, slack_bot_token=Secret(""))
    async with running_slack(fake, oauth, sqlite_db, extra_handlers=[probe.handlers]) as h:
        assert (await _install(h, "code-one")).startswith("200")
    async with running_slack(fake, oauth, sqlite_db, extra_handlers=[probe.handlers]) as h:
        fake.delay = 2.5
        calls_before = len(fake.calls)
        key = uuid.uuid4().hex
        body = slash_command(
            "help", team_id="TONE", user_id=MEMBER, response_url=fake.response_url(key)
        )
        assert await _acked_within(h, body) < 1.0
        assert (await h.response(key, within=15))["text"]
        assert [c.method for c in fake.calls[calls_before:] if c.method == "auth.test"] == []


# -- Socket Mode, health, entry point, manifest ------------------------------------------------


async def test_socket_mode_serves_commands_events_and_buttons(
    fake: FakeSlack, settings: Settings, sqlite_db: Database, probe: Probe
) -> None:
    fake.app_tokens.add("xapp-1-test")
    socket_settings = slack_settings(settings, fake, slack_app_token=Secret("xapp-1-test"))
    async with running_slack(
        fake, socket_settings, sqlite_db, extra_handlers=[probe.handlers]
    ) as h:
        command = slash_command_fields(
            "help", team_id=TEAM, user_id=MEMBER, response_url=fake.response_url("sock")
        )
        acknowledgement = await fake.send_envelope("slash_commands", command)
        assert "payload" not in acknowledgement or not acknowledgement["payload"]
        answer = await h.response("sock")
        assert answer["text"].startswith("*Kindred commands*")

        newcomer = fake.add_user(TEAM, "UNEW", "newbie")
        envelope = json.loads(
            event_callback({"type": "team_join", "user": newcomer}, team_id=TEAM, event_id="EvS1")
        )
        await fake.send_envelope("events_api", envelope)
        await fake.send_envelope("events_api", envelope, retry_attempt=1)
        await fake.wait_for(lambda: len(fake.messages(TEAM, "DUNEW")) >= 2)
        await h.drain()
        assert _texts(fake, "DUNEW").count("probe hello") == 1

        post = slash_command_fields(
            "probe post", team_id=TEAM, user_id=MEMBER, response_url=fake.response_url("post")
        )
        await fake.send_envelope("slash_commands", post)
        await h.response("post")
        await h.drain()
        posted = fake.messages(TEAM, CHANNEL)[-1]
        payload = block_action_payload(
            {"action_id": "kindred:probe.press:0", "value": "acme", "type": "button"},
            team_id=TEAM,
            user_id=MEMBER,
            channel_id=CHANNEL,
            message_ts=posted["ts"],
            response_url=fake.response_url("click"),
        )
        await fake.send_envelope("interactive", payload)
        assert (await h.response("click"))["replace_original"] is True
        async with h.session.post(h.sender.url, data="{}") as not_served:
            assert not_served.status in {404, 405}
        async with h.session.get(f"{h.base_url}/healthz") as health:
            assert health.status == 200


async def test_healthz_follows_the_database(slack: Harness) -> None:
    async with slack.session.get(f"{slack.base_url}/healthz") as health:
        assert (health.status, await health.json()) == (200, {"status": "ok"})
    reachable = slack.kindred.db
    slack.kindred.db = Database("postgresql+asyncpg://nobody@127.0.0.1:9/nothing")
    try:
        async with slack.session.get(f"{slack.base_url}/healthz") as health:
            assert health.status == 503
    finally:
        await slack.kindred.db.dispose()
        slack.kindred.db = reachable


def _free_port() -> int:
    with socket.socket() as probe_socket:
        probe_socket.bind(("127.0.0.1", 0))
        return int(probe_socket.getsockname()[1])


async def test_serve_slack_runs_until_cancelled(
    fake: FakeSlack, settings: Settings, sqlite_db: Database
) -> None:
    port = _free_port()
    served = replace(slack_settings(settings, fake), http_port=port)
    kindred = Kindred(replace(served, database_url=str(sqlite_db.url)), sqlite_db)
    task = asyncio.create_task(serve_slack(kindred, served))
    async with ClientSession() as session:
        async with asyncio.timeout(10):
            while True:
                try:
                    async with session.get(f"http://127.0.0.1:{port}/healthz") as health:
                        if health.status == 200:
                            break
                except OSError:
                    await asyncio.sleep(0.02)
        body = slash_command(
            "help", team_id=TEAM, user_id=MEMBER, response_url=fake.response_url("k")
        )
        headers = {**signature_headers(body), "Content-Type": "application/x-www-form-urlencoded"}
        async with session.post(
            f"http://127.0.0.1:{port}/slack/events", data=body, headers=headers
        ) as acked:
            assert acked.status == 200
        answer = await fake.wait_for(lambda: fake.responses)
        assert answer[0][1]["text"].startswith("*Kindred commands*")
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        with pytest.raises(OSError):
            await session.get(f"http://127.0.0.1:{port}/healthz")


def test_manifest_asks_for_what_the_adapter_uses() -> None:
    manifest = yaml.safe_load((REPO / "config" / "slack-manifest.yml").read_text())
    assert manifest["oauth_config"]["scopes"]["bot"] == list(BOT_SCOPES)
    events = manifest["settings"]["event_subscriptions"]["bot_events"]
    assert sorted(events) == sorted(BOT_EVENTS)
    (command,) = manifest["features"]["slash_commands"]
    assert (command["command"], command["should_escape"]) == ("/kindred", True)
    assert command["url"].endswith("/slack/events")
    assert manifest["settings"]["interactivity"]["is_enabled"] is True
    assert manifest["features"]["app_home"]["home_tab_enabled"] is True
    assert manifest["oauth_config"]["redirect_urls"][0].endswith("/slack/oauth_redirect")


async def test_the_workspace_is_registered_with_its_name(slack: Harness) -> None:
    async with slack.kindred.db.sessions() as session:
        community = await members.ensure_community(session, "slack", TEAM)
    assert community.name == "CX Guild"


async def test_a_real_coffee_round_opens_group_dms(slack: Harness) -> None:
    """The coffee feature itself, through the adapter: setup, joins, run-now."""
    setup = await slack.command("coffee setup create", user=ADMIN)
    assert "Virtual coffee in" in setup["text"]
    for user in (ADMIN, MEMBER, "UBEN"):
        joined = await slack.command("coffee join", user=user)
        assert "You're in the virtual coffee rounds" in joined["text"]
    started = await slack.command("coffee run-now", user=ADMIN)
    assert started["text"].startswith("Round started")
    await slack.drain()
    # Three members: one group of three, in one group DM with one intro.
    (group,) = slack.fake.channels_of(TEAM, mpim=True)
    assert sorted(group["members"]) == sorted([ADMIN, MEMBER, "UBEN", "UKINDRED"])
    (intro,) = group["messages"]
    assert "Virtual coffee" in intro["text"]


async def test_a_refused_or_unreachable_slack_stops_the_start_in_plain_words(
    fake: FakeSlack, settings: Settings, sqlite_db: Database
) -> None:
    wrong_token = replace(slack_settings(settings, fake), slack_bot_token=Secret("xoxb-wrong"))
    kindred = Kindred(replace(wrong_token, database_url=str(sqlite_db.url)), sqlite_db)
    with pytest.raises(StartupRefused, match=r"Slack refused SLACK_BOT_TOKEN \(invalid_auth\)"):
        await serve_slack(kindred, wrong_token)
    unreachable = replace(
        slack_settings(settings, fake), slack_api_url=f"http://127.0.0.1:{_free_port()}/api/"
    )
    kindred = Kindred(replace(unreachable, database_url=str(sqlite_db.url)), sqlite_db)
    with pytest.raises(StartupRefused, match=r"Cannot reach Slack at http://127\.0\.0\.1:"):
        await serve_slack(kindred, unreachable)
