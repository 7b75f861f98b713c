from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.commands import help, profile
from bot.core.app import Kindred
from bot.core.context import Context, Preparation
from bot.core.errors import CommandError
from bot.core.feature import Feature
from bot.core.figures import Figures, MemberAction, Period, Stored
from bot.core.mentions import member_text
from bot.core.platform import Button, Identity, Inbound, Message, Reply
from bot.core.registry import Handlers, Param
from bot.core.settings import Settings
from storage.db import Database
from storage.models import Member, OutboxMessage
from tests.fakes.platform import FakePlatform

probe = Handlers("probe")
calls: list[str] = []


@probe.command("probe echo", "Echo", [Param("words", "rest", required=True)])
async def echo(ctx: Context) -> Reply:
    await ctx.outbox.dm(ctx.inbound.user_id, Message(f"echo {ctx.args['words']}"))
    return Reply.text(ctx.args["words"], Button("Again", "probe.again", "1"))


@probe.command("probe admin", "Admins only", admin=True)
async def admin_only(ctx: Context) -> Reply:
    return Reply.text("welcome, admin")


@probe.command("probe fail", "Queues then refuses")
async def refuse(ctx: Context) -> Reply:
    await ctx.outbox.dm(ctx.inbound.user_id, Message("must not be sent"))
    raise CommandError("Not today.")


@probe.command("probe crash", "Queues then crashes")
async def crash(ctx: Context) -> Reply:
    await ctx.outbox.dm(ctx.inbound.user_id, Message("must not be sent"))
    raise RuntimeError("bug")


slow_platform_read = asyncio.Event()


async def read_slowly(preparation: Preparation) -> str:
    """A platform read that waits until the test lets it finish."""
    await slow_platform_read.wait()
    return f"members of {preparation.inbound.channel_id}"


@probe.command("probe slow", "Reads the platform slowly first", prepare=read_slowly)
async def slow(ctx: Context) -> Reply:
    return Reply.text(f"read {ctx.prepared}")


@probe.action("probe.again")
async def again(ctx: Context) -> Reply:
    calls.append(f"again:{ctx.inbound.value}")
    return Reply(update_original=Message("done"))


@probe.event("member_joined")
async def greet(ctx: Context) -> None:
    calls.append(f"joined:{ctx.inbound.user_id}")
    await ctx.outbox.dm(ctx.inbound.user_id, Message("hello"), key=f"hello:{ctx.inbound.user_id}")


@probe.event("home_opened")
async def home(ctx: Context) -> Reply:
    return Reply.text("probe section", Button("Go", "probe.again", "home"))


def make_kindred(db: Database, settings: Settings, platform: FakePlatform) -> Kindred:
    features = [help.feature, profile.feature, Feature(summary="A probe", handlers=probe)]
    app = Kindred(replace(settings), db, features=features)
    app.attach(platform)
    return app


def command(text: str, user: str = "U1", **extra: object) -> Inbound:
    return Inbound(
        kind="command", platform="fake", workspace_id="W1", user_id=user, text=text, **extra
    )  # type: ignore[arg-type]


async def outbox_count(db: Database) -> int:
    async with db.sessions() as session:
        return (await session.execute(select(func.count()).select_from(OutboxMessage))).scalar_one()


async def test_command_runs_in_one_transaction_with_its_outbox(
    sqlite_db: Database, settings: Settings, platform: FakePlatform
) -> None:
    app = make_kindred(sqlite_db, settings, platform)
    reply = await app.handle(command('probe echo "hello there"'))
    assert reply is not None and reply.message is not None
    assert reply.message.text == "hello there"
    await app.dispatcher.drain()
    assert platform.texts("dm", "U1") == ["echo hello there"]
    async with sqlite_db.sessions() as session:
        member = (await session.execute(select(Member))).scalar_one()
    assert member.user_id == "U1"


async def test_refusal_and_crash_roll_back_everything(
    sqlite_db: Database, settings: Settings, platform: FakePlatform
) -> None:
    app = make_kindred(sqlite_db, settings, platform)
    refused = await app.handle(command("probe fail"))
    assert refused is not None and refused.message is not None
    assert refused.message.text == "Not today."
    crashed = await app.handle(command("probe crash"))
    assert crashed is not None and crashed.message is not None
    assert "Something went wrong on our side and nothing was changed" in crashed.message.text
    assert await outbox_count(sqlite_db) == 0


async def test_admin_commands_check_the_platform(
    sqlite_db: Database, settings: Settings, platform: FakePlatform
) -> None:
    app = make_kindred(sqlite_db, settings, platform)
    denied = await app.handle(command("probe admin", user="U2"))
    assert denied is not None and denied.message is not None
    assert denied.message.text == "Only community admins can use `/kindred probe admin`."
    platform.admins.add("U2")
    allowed = await app.handle(command("probe admin", user="U2"))
    assert allowed is not None and allowed.message is not None
    assert allowed.message.text == "welcome, admin"


async def test_unknown_commands_get_suggestions_and_groups_list_subcommands(
    sqlite_db: Database, settings: Settings, platform: FakePlatform
) -> None:
    app = make_kindred(sqlite_db, settings, platform)
    typo = await app.handle(command("profil show"))
    assert typo is not None and typo.message is not None
    assert "Did you mean `/kindred profile show`?" in typo.message.text
    group = await app.handle(command("profile"))
    assert group is not None and group.message is not None
    assert "/kindred profile set" in group.message.text
    assert "/kindred profile clear" in group.message.text
    empty = await app.handle(command(""))
    assert empty is not None and empty.message is not None
    assert "**Kindred commands**" in empty.message.text


async def test_help_lists_every_registered_command(
    sqlite_db: Database, settings: Settings, platform: FakePlatform
) -> None:
    """The overview names every feature; each feature's help lists all its commands."""
    app = make_kindred(sqlite_db, settings, platform)
    reply = await app.handle(command("help"))
    assert reply is not None and reply.message is not None
    for feature in app.features:
        assert f"**{feature.name}**: {feature.summary}" in reply.message.text
        own = await app.handle(command(f"help {feature.name}"))
        assert own is not None and own.message is not None
        for spec in feature.handlers.commands:
            assert f"`{spec.usage}`: {spec.summary}" in own.message.text
    one = await app.handle(command("help probe"))
    assert one is not None and one.message is not None
    assert "probe echo" in one.message.text and "profile set" not in one.message.text
    unknown = await app.handle(command("help nothing"))
    assert unknown is not None and unknown.message is not None
    assert "There is no feature called `nothing`" in unknown.message.text


async def test_repeated_event_delivery_acts_once(
    sqlite_db: Database, settings: Settings, platform: FakePlatform
) -> None:
    app = make_kindred(sqlite_db, settings, platform)
    calls.clear()
    joined = Inbound(
        kind="member_joined", platform="fake", workspace_id="W1", user_id="U7", event_id="Ev1"
    )
    await asyncio.gather(*(app.handle(joined) for _ in range(3)))
    await app.handle(joined)
    await app.dispatcher.drain()
    assert calls == ["joined:U7"]
    assert platform.texts("dm", "U7") == ["hello"]


async def test_buttons_reach_their_action_and_unknown_ones_are_explained(
    sqlite_db: Database, settings: Settings, platform: FakePlatform
) -> None:
    app = make_kindred(sqlite_db, settings, platform)
    calls.clear()
    click = Inbound(
        kind="button",
        platform="fake",
        workspace_id="W1",
        user_id="U1",
        action_id="probe.again",
        value="42",
    )
    reply = await app.handle(click)
    assert calls == ["again:42"]
    assert reply is not None and reply.update_original == Message("done")
    stale = await app.handle(replace(click, action_id="removed.feature"))
    assert stale is not None and stale.message is not None
    assert "no longer does anything" in stale.message.text


async def test_home_sections_are_combined(
    sqlite_db: Database, settings: Settings, platform: FakePlatform
) -> None:
    app = make_kindred(sqlite_db, settings, platform)
    reply = await app.handle(
        Inbound(kind="home_opened", platform="fake", workspace_id="W1", user_id="U1")
    )
    assert reply is not None and reply.message is not None
    assert "Profile of" in reply.message.text and "probe section" in reply.message.text
    assert [button.label for button in reply.message.buttons][-1] == "Go"


async def test_two_adapters_share_one_core_start_and_stop(
    sqlite_db: Database, settings: Settings, platform: FakePlatform
) -> None:
    """`--platform all`: each adapter starts and stops the core; one dispatcher runs."""
    app = make_kindred(sqlite_db, settings, platform)
    await app.start()
    first_dispatcher = app._dispatcher_task
    await app.start()
    assert app._dispatcher_task is first_dispatcher
    await app.stop()
    assert first_dispatcher is not None and not first_dispatcher.done()
    assert app.scheduler.scheduler.running
    await app.stop()
    assert first_dispatcher.done()
    assert not app.scheduler.scheduler.running


async def test_a_slow_platform_read_holds_no_transaction(
    sqlite_db: Database, settings: Settings, platform: FakePlatform
) -> None:
    """SQLite has one connection: a platform read inside a transaction would make
    every other member wait for it (issue #18, item 8)."""
    app = make_kindred(sqlite_db, settings, platform)
    slow_platform_read.clear()
    waiting = asyncio.create_task(app.handle(command("probe slow", channel_id="C9")))
    await asyncio.sleep(0.05)
    async with asyncio.timeout(2):
        other = await app.handle(command("probe echo hi", user="U2"))
    assert other is not None and other.message is not None and other.message.text == "hi"
    assert not waiting.done()
    slow_platform_read.set()
    reply = await waiting
    assert reply is not None and reply.message is not None
    assert reply.message.text == "read members of C9"


async def test_every_features_figures_and_actions_reach_the_runtime(
    sqlite_db: Database, settings: Settings, tmp_path: Path
) -> None:
    moment = datetime(2026, 11, 23, tzinfo=UTC)

    async def counted(session: AsyncSession, period: Period) -> Figures:
        return {"probes": 3.0, "unknown": None}

    async def acted(session: AsyncSession, period: Period) -> list[MemberAction]:
        return [MemberAction("U1", "question", moment, contribution=True)]

    async def stored(session: AsyncSession, member: Identity) -> Stored:
        answers = 2 if member.user_id == "U1" else 0
        return Stored("reporting/stored_about", {"answers": answers, "by": member.user_id})

    async def forgotten(session: AsyncSession, member: Identity) -> int:
        return 2

    reporting = Feature(
        summary="Reports",
        handlers=Handlers("reporting"),
        metrics=counted,
        actions=acted,
        stored_about=stored,
        forget_feedback=forgotten,
    )
    templates = tmp_path / "templates" / "reporting"
    templates.mkdir(parents=True)
    (templates / "stored_about.j2").write_text(
        "{% if answers %}\n{{ answers }} answers by {{ by }}\n{% endif %}\n\n"
    )
    app = Kindred(
        replace(settings, config_dir=tmp_path), sqlite_db, features=[help.feature, reporting]
    )
    period = Period("fake", "W1", moment, moment + timedelta(days=7))
    async with sqlite_db.sessions() as session:
        assert await app.figures(session, period) == {"reporting": {"probes": 3.0, "unknown": None}}
        actions = await app.member_actions(session, period)
        # The feature's template shows its values, member text marked as such.
        assert await app.stored_about(session, Identity("fake", "W1", "U1")) == {
            "reporting": [f"2 answers by {member_text('U1')}"]
        }
        assert await app.stored_about(session, Identity("fake", "W1", "U2")) == {}
        assert await app.forget_feedback(session, Identity("fake", "W1", "U1")) == {"reporting": 2}
    assert actions == {"reporting": [MemberAction("U1", "question", moment, True)]}
