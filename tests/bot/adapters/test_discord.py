"""The Discord adapter end to end: the unmodified discord.py client against a local
fake Discord (REST + gateway on 127.0.0.1), a Kindred core on SQLite, and the
registry's real features plus a small test feature for what no feature does yet."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field, replace
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
from sqlalchemy import select

from bot.adapters import discord as discord_adapter
from bot.adapters.discord import DiscordService, invite_url
from bot.adapters.discord_commands import fitting_shape
from bot.adapters.discord_platform import DiscordPlatform
from bot.adapters.discord_render import encode_custom_id, split_content
from bot.commands import declared_features
from bot.core.app import Kindred
from bot.core.cli import main
from bot.core.context import Context
from bot.core.errors import StartupRefused
from bot.core.feature import Feature
from bot.core.mentions import member_text, mention
from bot.core.outbox import Outbox
from bot.core.platform import Attachment, Button, Message, Modal, ModalField, RateLimited, Reply
from bot.core.registry import CommandSpec, Handlers, Param, Registry
from bot.core.settings import Secret, Settings
from storage import outbox as outbox_rows
from storage.db import Database
from storage.models import Community, OutboxMessage
from tests.conftest import Clock
from tests.fakes.discord_harness import discord_settings_for, serving
from tests.fakes.discord_server import Channel, FakeDiscord, Member, Sent

GUILD = 1_100_000_000_000_000_001
GENERAL = 1_100_000_000_000_000_010
COFFEE = 1_100_000_000_000_000_011
ORGANISERS = 1_100_000_000_000_000_012
ANA = 1_100_000_000_000_000_101  # an organiser (administrator role)
BOB = 1_100_000_000_000_000_102
CAROL = 1_100_000_000_000_000_103
DAN = 1_100_000_000_000_000_104
EVE = 1_100_000_000_000_000_105
FAY = 1_100_000_000_000_000_106
HELPER_BOT = 1_100_000_000_000_000_199
# Discord's intent bits (https://discord.com/developers/docs/events/gateway#gateway-intents).
GUILDS, GUILD_MEMBERS, GUILD_MESSAGES, GUILD_REACTIONS, MESSAGE_CONTENT = 1, 2, 512, 1024, 32768
GUILD_SCHEDULED_EVENTS = 1 << 16


@dataclass
class Seen:
    """What the test feature's handlers saw."""

    commands: list[tuple[tuple[str, ...], dict[str, Any]]] = field(default_factory=list)
    reactions: list[tuple[str, str, str, bool]] = field(default_factory=list)


def e2e_feature(seen: Seen) -> Handlers:
    """What the issue asks to cover and no real feature does (yet): a pairing round
    into private threads, a DM with persistent buttons and a form, a slow command,
    a public answer, reactions; and a welcome DM when no welcome feature is installed."""
    handlers = Handlers("e2e")

    @handlers.command(
        "e2e round",
        "Pair the members of a channel",
        [
            Param("channel", "channel", "Where the members are", required=True),
        ],
        admin=True,
    )
    async def round_(ctx: Context) -> Reply:
        channel = ctx.args["channel"]
        people = sorted(
            member.user_id
            for member in await ctx.platform.list_members(ctx.inbound.workspace_id, channel)
        )
        for first, second in zip(people[::2], people[1::2], strict=False):
            text = f"☕ {mention(first)} meet {mention(second)}! Starter: " + member_text(
                "@everyone <@42> @here, what is your favourite NPS story?"
            )
            await ctx.outbox.group(
                [first, second],
                Message(text, mentions=(first, second)),
                channel_id=channel,
                title=f"Coffee: {first[-3:]} & {second[-3:]}",
                key=f"round:{first}:{second}",
            )
        return Reply.text(f"Paired {len(people) // 2} groups.")

    @handlers.command(
        "e2e dm",
        "DM a member some buttons",
        [
            Param("member", "user", "Who gets the DM", required=True),
        ],
    )
    async def dm(ctx: Context) -> Reply:
        buttons = (
            Button("Say hello", "e2e.hello", "v1"),
            Button("Tell us more", "e2e.form", "v2"),
        )
        await ctx.outbox.dm(ctx.args["member"], Message("Pick one:", buttons=buttons))
        return Reply.text("Sent.")

    @handlers.command("e2e slow", "Take longer than Discord's 3 seconds")
    async def slow(ctx: Context) -> Reply:
        await asyncio.sleep(0.3)
        return Reply.text("Finally done.")

    @handlers.command("e2e announce", "Answer for everyone to see")
    async def announce(ctx: Context) -> Reply:
        author = ctx.inbound.user_id
        return Reply(message=Message(f"{mention(author)} says hi", mentions=(author,)), public=True)

    @handlers.command("e2e export", "Answer with a file")
    async def export(ctx: Context) -> Reply:
        document = Attachment("ama.md", b"# AMA\n\n- Q: @everyone?\n")
        return Reply(message=Message("Your export:", attachment=document))

    @handlers.action("e2e.hello")
    async def hello(ctx: Context) -> Reply:
        return Reply(
            update_original=Message(f"Hello pressed ({ctx.inbound.value})."),
            message=Message(f"Hello, {ctx.inbound.user_name}!"),
        )

    @handlers.action("e2e.form")
    async def form(ctx: Context) -> Reply:
        fields = (ModalField("about", "About you", multiline=True),)
        return Reply(modal=Modal("e2e.about", "Tell us more", fields, value=ctx.inbound.value))

    @handlers.action("e2e.about")
    async def about(ctx: Context) -> Reply:
        return Reply.text(f"Got '{ctx.inbound.options['about']}' for {ctx.inbound.value}.")

    @handlers.event("reaction", reads_text=True)
    async def reacted(ctx: Context) -> None:
        inbound = ctx.inbound
        seen.reactions.append(
            (inbound.reaction or "", inbound.text, inbound.user_id, inbound.channel_is_private)
        )

    if not any(
        event.kind == "member_joined"
        for feature in declared_features()
        for event in feature.handlers.events
    ):

        @handlers.event("member_joined")
        async def welcome(ctx: Context) -> None:
            await ctx.outbox.dm(ctx.inbound.user_id, Message("Welcome!"))

    return handlers


def recording(collection: Handlers, seen: Seen) -> Handlers:
    """The same feature, with every command noting the typed arguments it got."""

    def wrap(spec: CommandSpec) -> CommandSpec:
        async def handler(ctx: Context) -> Reply | None:
            seen.commands.append((spec.path, dict(ctx.args)))
            return await spec.handler(ctx)

        return replace(spec, handler=handler)

    return Handlers(
        collection.feature,
        commands=[wrap(spec) for spec in collection.commands],
        actions=collection.actions,
        events=collection.events,
    )


@pytest.fixture
def seen() -> Seen:
    return Seen()


@pytest.fixture
def features(seen: Seen) -> tuple[Feature, ...]:
    return tuple(
        replace(feature, handlers=recording(feature.handlers, seen))
        for feature in declared_features()
    )


@pytest.fixture
def e2e(seen: Seen) -> Handlers:
    return recording(e2e_feature(seen), seen)


@pytest.fixture
def registry(features: tuple[Feature, ...], e2e: Handlers) -> Registry:
    """What the core builds from the features and the test's own handlers."""
    return Registry.merge([*(feature.handlers for feature in features), e2e])


@pytest.fixture
async def fake() -> AsyncIterator[FakeDiscord]:
    server = FakeDiscord()
    server.add_guild(
        "CX Guild",
        members=[
            Member(ANA, "Ana", admin=True),
            Member(BOB, "Bob"),
            Member(CAROL, "Carol"),
            Member(DAN, "Dan"),
            Member(EVE, "Eve"),
            Member(FAY, "Fay"),
            Member(HELPER_BOT, "Helper", bot=True),
        ],
        channels=[
            Channel(GENERAL, "general"),
            Channel(COFFEE, "coffee"),
            Channel(ORGANISERS, "organisers", private=True),
        ],
        guild_id=GUILD,
    )
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
def discord_settings(settings: Settings, fake: FakeDiscord, sqlite_db: Database) -> Settings:
    return discord_settings_for(settings, fake, sqlite_db)


@pytest.fixture
def make_kindred(
    discord_settings: Settings,
    sqlite_db: Database,
    clock: Clock,
    features: tuple[Feature, ...],
    e2e: Handlers,
) -> Callable[[], Kindred]:
    def make() -> Kindred:
        return Kindred(
            discord_settings, sqlite_db, clock=clock, features=features, extra_handlers=[e2e]
        )

    return make


@pytest.fixture
async def service(
    make_kindred: Callable[[], Kindred], discord_settings: Settings
) -> AsyncIterator[DiscordService]:
    async with serving(make_kindred(), discord_settings) as running:
        yield running


def sent_to(fake: FakeDiscord, channel_id: int) -> list[Sent]:
    return [sent for sent in fake.sent if sent.channel_id == channel_id]


def dms_to(fake: FakeDiscord, user_id: int) -> list[Sent]:
    channel = fake.dm_channels.get(user_id)
    return [] if channel is None else sent_to(fake, channel)


# Connecting ---------------------------------------------------------------------------


async def test_identify_asks_for_the_intents_the_features_need(
    service: DiscordService, fake: FakeDiscord, registry: Registry
) -> None:
    intents = int(fake.identifies[0]["intents"])
    assert intents & GUILDS and intents & GUILD_MEMBERS
    # Message Content only for handlers that read the text, not for counting messages.
    reads_text = any(
        event.reads_text
        for kind in ("reaction", "message")
        for event in registry.events.get(kind, [])
    )
    assert bool(intents & MESSAGE_CONTENT) == reads_text
    events = set(registry.events)
    assert bool(intents & GUILD_REACTIONS) == bool({"reaction", "reaction_removed"} & events)
    assert bool(intents & GUILD_MESSAGES) == bool({"message", "message_deleted"} & events)
    interest = {"event_interest_added", "event_interest_removed"} & events
    assert bool(intents & GUILD_SCHEDULED_EVENTS) == bool(interest)
    assert fake.heartbeats >= 1
    assert service.client.get_guild(GUILD) is not None


async def test_commands_are_synced_as_one_typed_group(
    service: DiscordService, fake: FakeDiscord, registry: Registry
) -> None:
    (kindred,) = fake.commands[None]
    assert kindred["name"] == "kindred"
    synced: dict[tuple[str, ...], dict[str, Any]] = {}
    for option in kindred["options"]:
        if option["type"] == 2:
            for sub in option["options"]:
                synced[(option["name"], sub["name"])] = sub
        else:
            synced[(option["name"],)] = option
    assert set(synced) == set(registry.commands)
    # With many features declared, choice lists give way to suggestions to fit.
    listed = fitting_shape(registry).choice_lists
    types = {"word": 3, "rest": 3, "choice": 3, "int": 4, "bool": 5, "user": 6, "channel": 7}
    for path, spec in registry.commands.items():
        options = {option["name"]: option for option in synced[path].get("options", [])}
        assert set(options) == {param.name for param in spec.params}
        for param in spec.params:
            option = options[param.name]
            assert option["type"] == types[param.kind], (path, param.name)
            assert option["required"] == param.required
            if param.kind == "int":
                assert option.get("min_value") == param.min_value
                assert option.get("max_value") == param.max_value
            if param.kind == "choice" and listed and len(param.choices) <= 25:
                assert [choice["value"] for choice in option["choices"]] == list(param.choices)
            elif param.kind == "choice":
                assert option["autocomplete"] is True and "choices" not in option
            if param.kind == "channel":
                assert option["channel_types"] == [0, 5]


def option_value(param: Param, fake: FakeDiscord) -> tuple[dict[str, Any], Any, dict[str, Any]]:
    """A valid value for `param`: the option Discord sends, what the handler should
    get, and the `resolved` data Discord adds for members and channels."""
    if param.kind == "user":
        member = fake.guilds[GUILD].members[BOB]
        resolved = {
            "users": {str(BOB): member.user()},
            "members": {str(BOB): member.member(GUILD, with_user=False)},
        }
        return {"type": 6, "value": str(BOB)}, str(BOB), resolved
    if param.kind == "channel":
        channel = {"id": str(COFFEE), "name": "coffee", "type": 0, "permissions": "1024"}
        return {"type": 7, "value": str(COFFEE)}, str(COFFEE), {"channels": {str(COFFEE): channel}}
    if param.kind == "int":
        number = next(v for v in (param.min_value, param.max_value, 3) if v is not None)
        return {"type": 4, "value": number}, number, {}
    if param.kind == "bool":
        return {"type": 5, "value": True}, True, {}
    if param.kind == "choice":
        return {"type": 3, "value": param.choices[-1]}, param.choices[-1], {}
    text = "several words here" if param.kind == "rest" else "alpha"
    text = text[: param.max_length or None]
    return {"type": 3, "value": text}, text, {}


async def test_every_subcommand_reaches_its_handler_with_typed_options(
    service: DiscordService, fake: FakeDiscord, registry: Registry, seen: Seen
) -> None:
    """Discovered from the registry, so commands added later are covered too."""
    for path, spec in registry.commands.items():
        options: list[dict[str, Any]] = []
        expected: dict[str, Any] = {}
        resolved: dict[str, Any] = {}
        for param in spec.params:
            option, value, extra = option_value(param, fake)
            options.append({"name": param.name, **option})
            expected[param.name] = value
            for key, items in extra.items():
                resolved.setdefault(key, {}).update(items)
        seen.commands.clear()
        interaction = await fake.command(GUILD, GENERAL, ANA, path, options, resolved)
        answers = await fake.answered(interaction)
        # A command with a slow prepare step (the health report draws its charts
        # first) is deferred before its handler runs.
        await fake.wait_until(lambda: bool(seen.commands), f"the handler of {path}", 30)
        assert seen.commands == [(path, expected)], path
        assert answers[0][0] == "callback" and answers[0][1] in {4, 5, 9}, (path, answers)


# Events -------------------------------------------------------------------------------


async def test_a_member_join_produces_exactly_one_welcome_dm(
    service: DiscordService, fake: FakeDiscord, caplog: pytest.LogCaptureFixture
) -> None:
    newcomer = Member(1_100_000_000_000_000_201, "Nia")
    helper = Member(1_100_000_000_000_000_202, "OtherBot", bot=True)
    await fake.member_join(GUILD, helper)
    await fake.member_join(GUILD, newcomer)
    await fake.wait_until(lambda: len(dms_to(fake, newcomer.user_id)) == 1, "the welcome DM")
    # Discord re-delivers events after a resume: discord.py drops a join for a member
    # it has cached, and Kindred's event key drops one that reaches the handlers.
    caplog.set_level("INFO", logger="bot.core.app")
    caplog.set_level("DEBUG", logger="discord.state")
    await fake.dispatch("GUILD_MEMBER_ADD", {**newcomer.member(GUILD), "guild_id": str(GUILD)})
    await fake.wait_until(
        lambda: "already cached member" in caplog.text, "discord.py to drop the re-delivery"
    )
    guild = service.client.get_guild(GUILD)
    assert guild is not None
    cached = guild.get_member(newcomer.user_id)
    assert cached is not None
    await service.on_member_join(cached)
    assert "skipping repeated delivery" in caplog.text
    async with asyncio.timeout(5):
        await service.kindred.dispatcher.drain()
    assert len(dms_to(fake, newcomer.user_id)) == 1
    assert dms_to(fake, helper.user_id) == []
    (welcome,) = dms_to(fake, newcomer.user_id)
    assert welcome.content
    assert welcome.allowed_mentions is not None
    assert welcome.allowed_mentions.get("parse") == []


async def test_guild_join_and_leave_register_and_deactivate_the_community(
    service: DiscordService, fake: FakeDiscord, sqlite_db: Database
) -> None:
    async def community(guild_id: int) -> Community | None:
        async with sqlite_db.transaction() as session:
            query = select(Community).where(
                Community.platform == "discord", Community.workspace_id == str(guild_id)
            )
            return (await session.execute(query)).scalar_one_or_none()

    first = await community(GUILD)
    assert first is not None and first.active and first.name == "CX Guild"
    other = fake.add_guild("Second Guild", [Member(EVE, "Eve")], [Channel(fake.new_id(), "hi")])
    await fake.dispatch("GUILD_CREATE", other.payload())
    await fake.dispatch("GUILD_DELETE", {"id": str(GUILD)})

    async def settled() -> bool:
        joined, left = await community(other.guild_id), await community(GUILD)
        return joined is not None and joined.active and left is not None and not left.active

    async with asyncio.timeout(5):
        while not await settled():
            await asyncio.sleep(0.02)


async def test_reactions_reach_features_with_the_message_text(
    service: DiscordService, fake: FakeDiscord, seen: Seen
) -> None:
    public = fake.seed_message(GENERAL, "Read https://example.org/cx", BOB)
    private = fake.seed_message(ORGANISERS, "secret plans", ANA)
    for channel, message in ((GENERAL, public), (ORGANISERS, private)):
        reaction = {
            "user_id": str(CAROL),
            "channel_id": str(channel),
            "message_id": str(message),
            "guild_id": str(GUILD),
            "emoji": {"id": None, "name": "📌"},
            "member": fake.guilds[GUILD].members[CAROL].member(GUILD),
            "burst": False,
            "type": 0,
        }
        await fake.dispatch("MESSAGE_REACTION_ADD", reaction)
    await fake.wait_until(lambda: len(seen.reactions) == 2, "both reactions")
    assert sorted(seen.reactions) == sorted(
        [
            ("📌", "Read https://example.org/cx", str(CAROL), False),
            ("📌", "secret plans", str(CAROL), True),
        ]
    )


# Buttons and forms --------------------------------------------------------------------


async def test_buttons_on_a_message_sent_before_a_restart_still_work(
    make_kindred: Callable[[], Kindred], discord_settings: Settings, fake: FakeDiscord
) -> None:
    member_option = [{"name": "member", "type": 6, "value": str(BOB)}]
    bob = fake.guilds[GUILD].members[BOB]
    resolved = {
        "users": {str(BOB): bob.user()},
        "members": {str(BOB): bob.member(GUILD, with_user=False)},
    }
    async with serving(make_kindred(), discord_settings):
        await fake.command(GUILD, GENERAL, ANA, ("e2e", "dm"), member_option, resolved)
        await fake.wait_until(lambda: len(dms_to(fake, BOB)) == 1, "the DM with buttons")
    (dm,) = dms_to(fake, BOB)
    hello, form = dm.custom_ids
    assert hello == encode_custom_id(str(GUILD), "e2e.hello", "v1")
    assert not fake.sessions

    async with serving(make_kindred(), discord_settings):
        # In a DM there is no guild: the custom id says which community it came from.
        opened = await fake.answered(await fake.click(dm.message_id, form, BOB))
        assert opened[0][:2] == ("callback", 9)
        modal = opened[0][2]
        assert modal["custom_id"] == encode_custom_id(str(GUILD), "e2e.about", "v2")
        assert modal["components"][0]["components"][0]["custom_id"] == "about"

        click = await fake.click(dm.message_id, hello, BOB)
        answers = await fake.answered(click, 2)
        assert answers[0][:2] == ("callback", 7)  # the clicked message is updated
        assert answers[0][2]["content"] == "Hello pressed (v1)."
        assert answers[0][2]["components"] == []
        assert answers[1][0] == "followup"
        assert answers[1][1]["content"] == "Hello, Bob!"
        assert answers[1][1]["flags"] & 64  # ephemeral

    async with serving(make_kindred(), discord_settings):
        # A form opened before a restart still submits.
        submitted = await fake.submit(
            modal["custom_id"],
            {"about": "I run support at Acme"},
            BOB,
            guild_id=None,
            channel_id=dm.channel_id,
            message_id=dm.message_id,
        )
        answers = await fake.answered(submitted)
        assert answers[0][:2] == ("callback", 4)
        assert answers[0][2]["content"] == "Got 'I run support at Acme' for v2."
        assert answers[0][2]["flags"] & 64


# Answering in time ---------------------------------------------------------------------


async def test_slow_handlers_are_deferred_then_answered(
    service: DiscordService, fake: FakeDiscord, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(discord_adapter, "ANSWER_BUDGET", 0.05)
    interaction = await fake.command(GUILD, GENERAL, BOB, ("e2e", "slow"), [])
    answers = await fake.answered(interaction, 2)
    assert answers[0][:2] == ("callback", 5)  # "Kindred is thinking…", ephemeral
    assert answers[0][2]["flags"] & 64
    assert answers[1][0] == "edit_original"
    assert answers[1][1]["content"] == "Finally done."

    # A late public answer replaces the private 'thinking' message.
    monkeypatch.setattr(discord_adapter, "ANSWER_BUDGET", 0)
    public = await fake.command(GUILD, GENERAL, BOB, ("e2e", "announce"), [])
    answers = await fake.answered(public, 3)
    assert [answer[0] for answer in answers] == ["callback", "delete_original", "followup"]
    assert answers[2][1]["content"] == f"<@{BOB}> says hi"
    assert not int(answers[2][1].get("flags") or 0) & 64

    # A button is acknowledged without a 'thinking' message, then answered.
    buttons = (Button("Say hello", "e2e.hello", "v3"),)
    posted = await service.platform.post_channel(
        str(GUILD), str(GENERAL), Message("Press me", buttons=buttons)
    )
    (custom_id,) = fake.messages[int(posted.message_id)]["components"][0]["components"]
    click = await fake.click(int(posted.message_id), custom_id["custom_id"], CAROL)
    answers = await fake.answered(click, 3)
    assert answers[0][:2] == ("callback", 6)
    assert answers[1][0] == "edit_original"
    assert answers[1][1]["content"] == "Hello pressed (v3)."
    assert answers[2][0] == "followup" and answers[2][1]["content"] == "Hello, Carol!"
    assert fake.messages[int(posted.message_id)]["content"] == "Hello pressed (v3)."


async def test_errors_are_private_and_public_answers_are_not(
    service: DiscordService, fake: FakeDiscord
) -> None:
    refused = await fake.command(
        GUILD,
        GENERAL,
        BOB,
        ("e2e", "round"),
        [{"name": "channel", "type": 7, "value": str(COFFEE)}],
        {
            "channels": {
                str(COFFEE): {"id": str(COFFEE), "name": "coffee", "type": 0, "permissions": "0"}
            }
        },
    )
    answers = await fake.answered(refused)
    assert "Only community admins" in answers[0][2]["content"]
    assert answers[0][2]["flags"] & 64
    assert answers[0][2]["allowed_mentions"] == {"parse": []}

    public = await fake.answered(await fake.command(GUILD, GENERAL, BOB, ("e2e", "announce"), []))
    assert public[0][:2] == ("callback", 4)
    assert not int(public[0][2].get("flags") or 0) & 64
    # Pinging the author is what this message is for; nobody else.
    assert public[0][2]["allowed_mentions"] == {"parse": [], "users": [BOB]}


async def test_files_go_with_answers_and_posts(service: DiscordService, fake: FakeDiscord) -> None:
    answers = await fake.answered(await fake.command(GUILD, GENERAL, BOB, ("e2e", "export"), []))
    assert answers[0][:2] == ("callback", 4)
    assert answers[0][2]["content"] == "Your export:" and answers[0][2]["flags"] & 64
    assert fake.sent[-1].files == ["ama.md"]
    document = Attachment("digest.md", b"# Digest")
    await service.platform.post_channel(
        str(GUILD), str(GENERAL), Message("Digest", attachment=document)
    )
    assert fake.sent[-1].files == ["digest.md"] and fake.sent[-1].channel_id == GENERAL


async def test_autocomplete_suggests_time_zones(service: DiscordService, fake: FakeDiscord) -> None:
    interaction = await fake.command(
        GUILD,
        GENERAL,
        BOB,
        ("profile", "set"),
        [{"name": "timezone", "type": 3, "value": "berl", "focused": True}],
        kind=4,
    )
    answers = await fake.answered(interaction)
    assert answers[0][:2] == ("callback", 8)
    assert {"name": "Europe/Berlin", "value": "Europe/Berlin"} in answers[0][2]["choices"]


# Outbound -----------------------------------------------------------------------------


async def run_round(fake: FakeDiscord, channel: int = COFFEE) -> None:
    option = [{"name": "channel", "type": 7, "value": str(channel)}]
    resolved = {
        "channels": {str(channel): {"id": str(channel), "name": "c", "type": 0, "permissions": "0"}}
    }
    answers = await fake.answered(
        await fake.command(GUILD, channel, ANA, ("e2e", "round"), option, resolved)
    )
    assert answers[0][2]["content"] == "Paired 3 groups."


def intros(fake: FakeDiscord) -> list[Sent]:
    return [sent for sent in fake.sent if sent.channel_id in fake.threads]


async def test_a_pairing_round_opens_private_threads_and_pings_only_the_pair(
    service: DiscordService, fake: FakeDiscord
) -> None:
    await run_round(fake)
    await fake.wait_until(lambda: len(intros(fake)) == 3, "three intros")
    humans = [ANA, BOB, CAROL, DAN, EVE, FAY]
    pairs = [humans[index : index + 2] for index in range(0, 6, 2)]
    threads = sorted(fake.threads.values(), key=lambda thread: thread.members)
    assert [thread.members for thread in threads] == [[fake.bot.user_id, *pair] for pair in pairs]
    for thread in threads:
        assert thread.private and not thread.invitable and thread.parent_id == COFFEE
        (intro,) = sent_to(fake, thread.thread_id)
        first, second = thread.members[1:]
        assert intro.content.startswith(f"☕ <@{first}> meet <@{second}>!")
        # Member text cannot ping: broken on screen, and nobody but the pair is allowed.
        assert "@everyone" not in intro.content and "@here" not in intro.content
        assert "@\u200beveryone" in intro.content and "<\u200b@42>" in intro.content
        assert intro.allowed_mentions == {"parse": [], "users": [first, second]}
    async with asyncio.timeout(5):
        await service.kindred.dispatcher.drain()
    async with service.kindred.db.transaction() as session:
        rows = (await session.execute(select(OutboxMessage))).scalars().all()
    assert {row.status for row in rows} == {"sent"}


async def test_a_real_coffee_round_pairs_members_in_private_threads(
    service: DiscordService, fake: FakeDiscord
) -> None:
    """The coffee feature itself, through the adapter: setup, joins, run-now."""

    async def kindred(user: int, *path: str, options: list[dict[str, Any]] | None = None) -> str:
        answers = await fake.answered(await fake.command(GUILD, COFFEE, user, path, options or []))
        return str(answers[-1][2]["content"])

    create = [{"name": "create", "type": 3, "value": "create"}]
    assert "Virtual coffee in" in await kindred(ANA, "coffee", "setup", options=create)
    for user in (ANA, BOB, CAROL, DAN, EVE, FAY):
        assert "You're in the virtual coffee rounds" in await kindred(user, "coffee", "join")
    assert (await kindred(ANA, "coffee", "run-now")).startswith("Round started")
    await fake.wait_until(lambda: len(intros(fake)) == 3, "three coffee intros")
    paired = sorted(member for thread in fake.threads.values() for member in thread.members[1:])
    assert paired == sorted([ANA, BOB, CAROL, DAN, EVE, FAY])
    for thread in fake.threads.values():
        assert thread.private and not thread.invitable and thread.parent_id == COFFEE
        (intro,) = sent_to(fake, thread.thread_id)
        assert "Virtual coffee" in intro.content
        assert intro.allowed_mentions is not None
        assert intro.allowed_mentions["parse"] == []
        assert set(intro.allowed_mentions["users"]) <= set(thread.members[1:])
        assert intro.allowed_mentions["users"], "the pair is meant to be pinged"


async def test_429s_during_a_round_are_waited_out_without_losing_or_doubling(
    service: DiscordService, fake: FakeDiscord
) -> None:
    fake.rate_limit("POST", r"^channels/\d+/threads$", times=2, retry_after=0.2)
    fake.rate_limit("PUT", r"/thread-members/", times=2, retry_after=0.1)
    fake.rate_limit("POST", r"^channels/\d+/messages$", times=2, retry_after=0.3)
    fake.rate_limit("POST", r"^channels/\d+/messages$", times=1, retry_after=0.1, is_global=True)
    await run_round(fake)
    await fake.wait_until(lambda: len(intros(fake)) == 3, "three intros despite the 429s")
    assert len(fake.rate_limited) == 7
    # Each refused request was made again once, and nothing else was repeated.
    creations = [r for r in fake.requests if r.method == "POST" and r.path.endswith("/threads")]
    assert [r.status for r in creations].count(429) == 2 and len(creations) == 3 + 2
    assert len(fake.threads) == 3
    assert all(len(thread.members) == 3 for thread in fake.threads.values())
    assert sorted(len(sent_to(fake, thread)) for thread in fake.threads) == [1, 1, 1]


async def test_long_rate_limits_are_handed_to_the_dispatcher(
    service: DiscordService, fake: FakeDiscord
) -> None:
    """Beyond 30 s discord.py does not sleep: the dispatcher pauses the bucket."""
    fake.rate_limit("POST", r"^channels/\d+/messages$", times=1, retry_after=45.0)
    with pytest.raises(RateLimited) as raised:
        await service.platform.post_channel(str(GUILD), str(GENERAL), Message("hello"))
    assert raised.value.retry_after == 45.0
    assert sent_to(fake, GENERAL) == []


async def test_thread_replies_and_edits(service: DiscordService, fake: FakeDiscord) -> None:
    platform: DiscordPlatform = service.platform
    question = await platform.post_channel(
        str(GUILD), str(GENERAL), Message("**Q:** How do you measure " + member_text("@here NPS?"))
    )
    reply = await platform.reply_in_thread(str(GUILD), question, Message("Answered live."))
    assert reply.thread_id == question.message_id  # a thread started on the message
    assert fake.threads[int(question.message_id)].name == "Q: How do you measure @\u200bhere NPS?"
    again = await platform.reply_in_thread(str(GUILD), question, Message("And a follow-up."))
    assert again.thread_id == reply.thread_id
    assert [sent.content for sent in sent_to(fake, int(reply.thread_id))] == [
        "Answered live.",
        "And a follow-up.",
    ]
    edited = await platform.update_message(
        str(GUILD), question, Message("Closed.", buttons=(Button("Reopen", "e2e.hello", "q1"),))
    )
    assert edited == question
    assert fake.sent[-1].via == "edit" and fake.sent[-1].content == "Closed."
    assert fake.sent[-1].custom_ids == [encode_custom_id(str(GUILD), "e2e.hello", "q1")]

    # In a DM there is no thread: the answer replies to the message instead.
    dm = await platform.send_dm(str(GUILD), str(BOB), Message("Your question was picked."))
    in_dm = await platform.reply_in_thread(str(GUILD), dm, Message("It's live now."))
    assert in_dm.channel_id == dm.channel_id and in_dm.thread_id is None


async def test_a_send_repeated_after_a_crash_posts_once(
    service: DiscordService, fake: FakeDiscord, sqlite_db: Database
) -> None:
    """A dispatcher that delivered a row but died before marking it sent: the next
    one sends it again, with the same nonce, and Discord keeps one message."""
    async with sqlite_db.transaction() as session:
        row_id = await Outbox(session, "discord", str(GUILD)).post(
            str(GENERAL), Message("Digest of the week")
        )
    claimed = await outbox_rows.claim_due(
        sqlite_db, owner="dead", platforms=["discord"], limit=1, lease=timedelta(0)
    )
    assert [item.row.id for item in claimed] == [row_id]
    first = await service.platform.post_channel(
        str(GUILD), str(GENERAL), Message("Digest of the week", idempotency_key=f"kindred-{row_id}")
    )
    async with asyncio.timeout(10):
        await service.kindred.dispatcher.drain()
    assert [sent.content for sent in sent_to(fake, GENERAL)] == ["Digest of the week"]
    async with sqlite_db.sessions() as session:
        row = await session.get(OutboxMessage, row_id)
    assert row is not None and row.status == "sent"
    assert row.sent_ref is not None and row.sent_ref["message_id"] == first.message_id


async def test_members_of_a_channel_and_admins(service: DiscordService, fake: FakeDiscord) -> None:
    platform = service.platform
    everyone = await platform.list_members(str(GUILD))
    assert {member.user_id for member in everyone} == {
        str(user) for user in (ANA, BOB, CAROL, DAN, EVE, FAY)
    }
    private = await platform.list_members(str(GUILD), str(ORGANISERS))
    assert [(member.user_id, member.is_admin) for member in private] == [(str(ANA), True)]
    assert await platform.is_admin(str(GUILD), str(ANA))
    assert not await platform.is_admin(str(GUILD), str(BOB))
    assert not await platform.is_admin(str(GUILD), "1100000000000000999")

    thread = await platform.open_group(str(GUILD), [str(BOB), str(CAROL)], None, "Buddies")
    assert fake.threads[int(thread)].parent_id == GENERAL  # the server's system channel
    in_thread = await platform.list_members(str(GUILD), thread)
    assert sorted(member.user_id for member in in_thread) == [str(BOB), str(CAROL)]


async def test_large_and_not_yet_loaded_guilds_are_listed_in_full(
    service: DiscordService, fake: FakeDiscord
) -> None:
    people = [Member(fake.new_id(), f"Member {number}") for number in range(5)]
    expected = {str(member.user_id) for member in people}
    # A large guild arrives without its members; the first list asks for them (op 8).
    large = fake.add_guild("Large", people, [Channel(fake.new_id(), "lobby")], large=True)
    await fake.dispatch("GUILD_CREATE", large.payload())
    await fake.wait_until(lambda: service.client.get_guild(large.guild_id) is not None)
    listed = await service.platform.list_members(str(large.guild_id))
    assert {member.user_id for member in listed} == expected
    # A guild the gateway has not delivered yet (Kindred starts before it connects):
    # the REST API answers.
    unseen = fake.add_guild("Unseen", people, [Channel(fake.new_id(), "lobby")])
    listed = await service.platform.list_members(str(unseen.guild_id))
    assert {member.user_id for member in listed} == expected


def test_long_messages_are_split_at_line_ends() -> None:
    text = "\n".join(f"line {number:04d} " + "x" * 90 for number in range(60))
    pieces = split_content(text)
    assert all(len(piece) <= 2000 for piece in pieces) and len(pieces) == 4
    assert "\n".join(pieces) == text
    assert split_content("y" * 4500) == ["y" * 2000, "y" * 2000, "y" * 500]


# Configuration ------------------------------------------------------------------------


def test_invite_url_asks_for_exactly_what_the_features_use(discord_settings: Settings) -> None:
    url = urlparse(invite_url(discord_settings))
    query = parse_qs(url.query)
    assert (url.scheme, url.netloc, url.path) == ("https", "discord.com", "/oauth2/authorize")
    assert query["client_id"] == ["870000000000000001"]
    assert query["scope"] == ["bot applications.commands"]
    bits = {
        "view_channel": 1 << 10,
        "send_messages": 1 << 11,
        "read_message_history": 1 << 16,
        "attach_files": 1 << 15,
        "manage_threads": 1 << 34,
        "create_public_threads": 1 << 35,
        "create_private_threads": 1 << 36,
        "send_messages_in_threads": 1 << 38,
        "manage_roles": 1 << 28,
        "manage_events": 1 << 33,
    }
    assert int(query["permissions"][0]) == sum(bits.values())
    with pytest.raises(StartupRefused, match="does not look like a bot token"):
        invite_url(replace(discord_settings, discord_bot_token=Secret("not-a-token")))


@pytest.mark.parametrize(
    ("enabled", "refuses", "missing"),
    [
        (("message_content",), False, "Server Members Intent"),
        (("members",), False, "Message Content Intent"),
        # The flags say yes but the gateway still says 4014 (Disallowed intents).
        (("members", "message_content"), True, "Server Members Intent"),
    ],
)
async def test_missing_privileged_intents_stop_the_start_with_instructions(
    make_kindred: Callable[[], Kindred],
    discord_settings: Settings,
    fake: FakeDiscord,
    enabled: tuple[str, ...],
    refuses: bool,
    missing: str,
) -> None:
    fake.privileged_enabled = set(enabled)
    fake.gateway_refuses_privileged = refuses
    service = DiscordService(make_kindred(), discord_settings, guild_ready_timeout=0.05)
    with pytest.raises(StartupRefused) as refused:
        async with asyncio.timeout(10):
            await service.run()
    message = str(refused.value)
    assert missing in message and "Privileged Gateway Intents" in message
    assert "developers/applications/870000000000000001/bot" in message


async def test_sharded_client_and_per_guild_command_sync(
    make_kindred: Callable[[], Kindred], discord_settings: Settings, fake: FakeDiscord
) -> None:
    settings = replace(discord_settings, discord_sharded=True, discord_dev_guild_ids=(GUILD,))
    async with serving(make_kindred(), settings) as running:
        assert fake.identifies[0]["shard"] == [0, 1]
        assert set(fake.commands) == {GUILD}  # development: this guild only, instantly
        interaction = await fake.command(GUILD, GENERAL, BOB, ("help",), [])
        answers = await fake.answered(interaction)
        assert answers[0][2]["content"].startswith("**Kindred commands**")
        assert running.client.shard_count == 1


async def test_kindred_run_platform_discord_serves_until_interrupted(
    fake: FakeDiscord, tmp_path: Path
) -> None:
    """The operator's command, as a real process against the fake Discord."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "DISCORD_"))}
    environment.update(
        DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'kindred.db'}",
        DISCORD_BOT_TOKEN=fake.token,
        DISCORD_API_URL=fake.api_url,
        DISCORD_GATEWAY_URL=fake.gateway_url,
        # Little output: nothing reads the pipe until the process ends.
        KINDRED_LOG_LEVEL="WARNING",
        # The health/feed server runs beside Discord; any free loopback port will do.
        KINDRED_HTTP_HOST="127.0.0.1",
        KINDRED_HTTP_PORT="0",
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot.core.cli",
        "run",
        "--platform",
        "discord",
        cwd=tmp_path,
        env=environment,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    answers: list[tuple[Any, ...]] = []
    try:
        # Generous limits: a fresh process imports everything and migrates its database.
        await fake.wait_until(lambda: bool(fake.sessions), "the bot to connect", seconds=60)
        interaction = await fake.command(GUILD, GENERAL, BOB, ("help",), [])
        answers = await fake.answered(interaction, seconds=30)
    finally:
        process.send_signal(signal.SIGINT)
        async with asyncio.timeout(30):
            _, stderr = await process.communicate()
    log = stderr.decode()
    assert answers[0][2]["content"].startswith("**Kindred commands**"), log
    assert process.returncode == 130, log
    assert "Traceback" not in log
    assert fake.token not in log


def test_invite_url_command(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DISCORD_BOT_TOKEN", FakeDiscord().token)
    assert main(["discord", "invite-url"]) == 0
    assert capsys.readouterr().out.startswith(
        "https://discord.com/oauth2/authorize?client_id=870000000000000001&"
    )


async def test_a_pushpin_reaction_nominates_a_link_to_the_library(
    service: DiscordService, fake: FakeDiscord
) -> None:
    """The curation feature end to end on Discord (the page title cannot be fetched
    here, so the message text stands in). The link is public-looking but never
    resolves (`.invalid`); a loopback link is refused like any private host (#18)."""
    message = fake.seed_message(GENERAL, "Worth a read: https://library.invalid/cx-playbook", BOB)
    await fake.dispatch(
        "MESSAGE_REACTION_ADD",
        {
            "user_id": str(CAROL),
            "channel_id": str(GENERAL),
            "message_id": str(message),
            "guild_id": str(GUILD),
            "emoji": {"id": None, "name": "📌"},
            "member": fake.guilds[GUILD].members[CAROL].member(GUILD),
            "burst": False,
            "type": 0,
        },
    )
    top = ""
    async with asyncio.timeout(5):
        while "cx-playbook" not in top:
            await asyncio.sleep(0.02)  # the reaction is handled in the background
            answers = await fake.answered(
                await fake.command(GUILD, GENERAL, DAN, ("curate", "top"), [])
            )
            top = answers[0][2]["content"]
    assert "1. [Worth a read](https://library.invalid/cx-playbook)" in top and "1 👍" in top
