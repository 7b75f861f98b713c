from __future__ import annotations

import asyncio
import io
import re
import shutil
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from bot.adapters.console import ConsoleCommunity, ConsoleSession
from bot.core.app import Kindred
from bot.core.mentions import (
    MEMBER_TEXT_START,
    escape_for_slack,
    render,
    strip_markup_for_plain_text,
)
from bot.core.platform import MessageRef, RateLimit, RateLimited
from bot.core.settings import Settings
from storage import coffee, members
from storage import welcome as welcome_rows
from storage.db import Database
from storage.welcome import Welcome
from tests.bot.adapters.slack_harness import ADMIN as SLACK_ADMIN
from tests.bot.adapters.slack_harness import TEAM as SLACK_TEAM
from tests.bot.adapters.slack_harness import populate, running_slack, slack_settings
from tests.conftest import Clock
from tests.driver import Community, plain
from tests.fakes.discord_harness import discord_settings_for, serving
from tests.fakes.discord_server import Channel, FakeDiscord
from tests.fakes.discord_server import Member as DiscordMember
from tests.fakes.discord_server import Sent as DiscordSent
from tests.fakes.platform import FakePlatform
from tests.fakes.slack import FakeSlack, block_action_payload, interactive, view_submission

ADMIN = "UADMIN"
DISCORD_GUILD = 1_200_000_000_000_000_001
DISCORD_GENERAL = 1_200_000_000_000_000_010
DISCORD_INTROS = 1_200_000_000_000_000_011
DISCORD_ADMIN = 1_200_000_000_000_000_101
DISCORD_NEWCOMER = 1_200_000_000_000_000_201


async def welcome_row(cx: Community, user: str) -> Welcome | None:
    async with cx.kindred.db.sessions() as session:
        query = select(Welcome).where(Welcome.user_id == user)
        return (await session.execute(query)).scalar_one_or_none()


async def set_profile(cx: Community, user: str, **profile: Any) -> None:
    async with cx.kindred.db.transaction() as session:
        member = await members.ensure_member(session, "fake", "W1", user, user.title())
        for name, value in profile.items():
            setattr(member, name, value)


def welcome_dms(platform: FakePlatform) -> list[str]:
    return [
        sent.target
        for sent in platform.sent
        if sent.kind == "dm"
        and any(b.action_id == "welcome.introduce" for b in sent.message.buttons)
    ]


@pytest.fixture
async def cx(community: Community) -> Community:
    """The shared driver, in a community called CX Circle, started without the
    background dispatcher and scheduler (tests deliver and advance by hand)."""
    async with community.kindred.db.transaction() as session:
        stored = await members.ensure_community(session, "fake", "W1")
        stored.name = "CX Circle"
    await community.kindred.start(dispatch=False, schedule=False)
    return community


# Welcome once -----------------------------------------------------------------------


async def test_a_newcomer_gets_one_welcome_dm_with_the_stock_template(
    cx: Community, platform: FakePlatform
) -> None:
    await cx.join("UNEW", user_name="Nia Newcomer")
    await cx.deliver()
    [sent] = platform.sent
    assert (sent.kind, sent.target) == ("dm", "UNEW")
    assert sent.text.startswith("**Welcome!** 👋 Nia Newcomer, we're glad you joined CX Circle.\n")
    assert "/kindred coffee join" in sent.text
    assert [(b.label, b.action_id, b.value) for b in sent.message.buttons] == [
        ("Introduce me", "welcome.introduce", ""),
        ("Join virtual coffee", "coffee.join", ""),
        ("Find me a buddy", "welcome.find_buddy", ""),
    ]
    # The community's name is member-supplied text: it cannot ping.
    assert MEMBER_TEXT_START in sent.message.text


async def test_welcome_once_across_redelivery_rejoin_and_restart(
    cx: Community, platform: FakePlatform, settings: Settings, sqlite_db: Database, clock: Clock
) -> None:
    first = cx.inbound("member_joined", "UNEW")
    await cx.handle(first)
    await cx.handle(first)  # the platform re-delivers the same event
    await cx.leave("UNEW")
    await cx.join("UNEW")  # leaves and comes back
    restarted = Kindred(replace(settings, database_url=str(sqlite_db.url)), sqlite_db, clock=clock)
    restarted.attach(platform)
    await Community(restarted, platform, clock).join("UNEW")
    await cx.deliver()
    assert welcome_dms(platform) == ["UNEW"]


async def test_bots_and_deactivated_users_are_not_welcomed(
    cx: Community, platform: FakePlatform
) -> None:
    async with cx.kindred.db.transaction() as session:
        await members.ensure_member(session, "fake", "W1", "UBOT", "Deploy Bot", is_bot=True)
        await members.ensure_member(session, "fake", "W1", "UGONE", "Gone", deactivated=True)
    await cx.join("UBOT")
    await cx.join("UGONE")
    await cx.deliver()
    assert platform.sent == []
    assert await welcome_row(cx, "UBOT") is None


async def test_welcomes_can_be_turned_off(cx: Community, platform: FakePlatform) -> None:
    assert "Welcomes: off" in await cx.say("welcome setup enabled=off")
    await cx.join("UNEW")
    await cx.deliver()
    assert platform.sent == []


async def test_channel_trigger_welcomes_joiners_of_that_channel_only(
    cx: Community, platform: FakePlatform
) -> None:
    text = await cx.say("welcome setup trigger_channel=<#CCOMMUNITY>")
    assert "Trigger: joining <#CCOMMUNITY>" in text
    await cx.join("UA")
    await cx.join("UA", channel="CRANDOM")
    await cx.deliver()
    assert platform.sent == []
    await cx.join("UA", channel="CCOMMUNITY")
    await cx.join("UA", channel="CCOMMUNITY")
    await cx.deliver()
    assert welcome_dms(platform) == ["UA"]
    assert "trigger=channel needs the channel" in await cx.say(
        "welcome setup trigger=channel clear=trigger_channel"
    )


# Delays -----------------------------------------------------------------------------


async def test_a_delayed_welcome_arrives_once_after_the_delay(
    cx: Community, platform: FakePlatform, clock: Clock
) -> None:
    assert "Delay: 2h" in await cx.say("welcome setup delay=2h")
    await cx.join("UNEW")
    await cx.advance(hours=1, minutes=59)
    assert platform.sent == []
    assert "(1 more scheduled)" in await cx.say("welcome stats")
    clock.advance(minutes=1)
    await cx.kindred.scheduler.catch_up()
    await cx.kindred.scheduler.catch_up()  # every replica ticks; the claim makes it run once
    await cx.deliver()
    assert welcome_dms(platform) == ["UNEW"]
    row = await welcome_row(cx, "UNEW")
    assert row is not None and row.welcomed_at == clock.now and row.welcome_due_at is None


async def test_leaving_before_a_delayed_welcome_cancels_it_until_they_return(
    cx: Community, platform: FakePlatform, clock: Clock
) -> None:
    await cx.say("welcome setup delay=1d")
    await cx.join("UNEW")
    await cx.leave("UNEW")
    await cx.advance(days=2)
    assert platform.sent == []
    await cx.join("UNEW")
    await cx.advance(days=1)
    assert welcome_dms(platform) == ["UNEW"]


@pytest.mark.parametrize(
    ("value", "problem"),
    [("3 hours", "not a delay I understand"), ("8d", "at most 7 days"), ("-1h", "not a delay")],
)
async def test_bad_delays_are_refused(cx: Community, value: str, problem: str) -> None:
    assert problem in await cx.say(f'welcome setup delay="{value}"')


# Templates --------------------------------------------------------------------------


async def test_custom_template_is_used_and_checked_at_setup(
    cx: Community, platform: FakePlatform
) -> None:
    unknown = await cx.say('welcome setup template="Hi {{ first_name }}!"')
    assert "Unknown placeholder(s): {{ first_name }}" in unknown
    assert "{{ community }}" in unknown
    assert "renders to an empty message" in await cx.say(
        'welcome setup template="{# nothing yet #}"'
    )
    assert "syntax error" in await cx.say('welcome setup template="Hi {{ name"')
    assert "Template: stock" in await cx.say("welcome setup")
    saved = await cx.say(
        'welcome setup template="Hey {{ name }}!\\nRules: {{ code_of_conduct }}" '
        'code_of_conduct=https://cx.example/coc visit="<#CHELP>, <#CJOBS>"',
    )
    assert "Template: custom" in saved
    assert "Channels worth visiting: <#CHELP>, <#CJOBS>" in saved
    await cx.join("UNEW", user_name="Nia")
    await cx.deliver()
    assert platform.texts("dm", "UNEW") == ["Hey Nia!\nRules: https://cx.example/coc"]
    assert "Template: stock" in await cx.say("welcome setup template=default")


@pytest.mark.parametrize(
    ("template", "problem"),
    [
        ("Hi {{ 1/0 }}", "stopped with an error when I tried it on a sample newcomer: division"),
        (
            "{% for i in range(99999) %}{% for j in range(99999) %}{% endfor %}{% endfor %}Hi",
            "still rendering after 1 second, so I stopped it",
        ),
        (
            "{% for i in range(99999) %}{% for j in range(99999) %}x{% endfor %}{% endfor %}",
            "longer than 4,000 characters",
        ),
        ("{{ range(10**12) | list }}", "stopped with an error"),
    ],
)
async def test_a_template_that_fails_while_rendering_is_refused_at_setup_saying_why(
    cx: Community, platform: FakePlatform, template: str, problem: str
) -> None:
    started = time.monotonic()
    answer = await cx.say(f'welcome setup template="{template}"')
    assert problem in answer and "Something went wrong" not in answer
    assert time.monotonic() - started < 10
    assert "Template: stock" in await cx.say("welcome setup")
    await cx.join("UNEW")
    await cx.deliver()
    assert welcome_dms(platform) == ["UNEW"]


@pytest.fixture
async def own_config(
    settings: Settings, sqlite_db: Database, clock: Clock, platform: FakePlatform, tmp_path: Path
) -> AsyncIterator[tuple[Community, Path]]:
    """A community whose operator keeps their own templates in a copied config dir."""
    config = tmp_path / "config"
    shutil.copytree(settings.config_dir, config)
    own = replace(settings, config_dir=config, database_url=str(sqlite_db.url))
    kindred = Kindred(own, sqlite_db, clock=clock)
    kindred.attach(platform)
    await kindred.start(dispatch=False, schedule=False)
    try:
        yield Community(kindred, platform, clock), config / "templates" / "welcome"
    finally:
        await kindred.stop()


async def test_a_template_file_name_uses_that_files_text_checked_and_confined(
    own_config: tuple[Community, Path], platform: FakePlatform, tmp_path: Path
) -> None:
    cx, folder = own_config
    (folder / "custom.j2").write_text("Hello {{ name }},\nglad you're here.\n", encoding="utf-8")
    saved = await cx.say("welcome setup template=custom.j2")
    assert "Template: custom" in saved
    await cx.join("UNEW", user_name="Nia")
    await cx.deliver()
    assert platform.texts("dm", "UNEW") == ["Hello Nia,\nglad you're here."]
    assert "There is no template file missing.j2 in config/templates/welcome/" in await cx.say(
        "welcome setup template=missing.j2"
    )
    for escape in ("../settings.j2", "../../templates/welcome/dm.j2", "/etc/passwd.j2"):
        answer = await cx.say(f"welcome setup template={escape}")
        assert "is not a template file name" in answer, escape
    (tmp_path / "outside.j2").write_text("Hi {{ name }}", encoding="utf-8")
    (folder / "link.j2").symlink_to(tmp_path / "outside.j2")
    assert "points outside" in await cx.say("welcome setup template=link.j2")
    (folder / "broken.j2").write_text("Hi {{ 1/0 }}", encoding="utf-8")
    assert "division by zero" in await cx.say("welcome setup template=broken.j2")
    # The refusals changed nothing: the file's text is still the template in use.
    await cx.join("UNEXT", user_name="Ned")
    await cx.deliver()
    assert platform.texts("dm", "UNEXT") == ["Hello Ned,\nglad you're here."]


async def test_setup_validates_every_value_and_changes_nothing_on_refusal(
    cx: Community, platform: FakePlatform
) -> None:
    assert "not a web link" in await cx.say(
        "welcome setup delay=1h code_of_conduct=javascript:alert(1)"
    )
    assert "Delay: immediately" in await cx.say("welcome setup")
    assert "`#help` is not a channel" in await cx.say("welcome setup visit=#help")
    assert "both set and cleared" in await cx.say(
        "welcome setup intro_channel=<#CI> clear=intro_channel"
    )
    assert "Only community admins" in await cx.say("welcome setup enabled=off", user="UX")
    assert "Only community admins" in await cx.say("welcome stats", user="UX")


# Introductions ----------------------------------------------------------------------


async def test_introduce_me_posts_a_mention_safe_intro_with_profile_fields(
    cx: Community, platform: FakePlatform
) -> None:
    await cx.say("welcome setup intro_channel=<#CINTRO>")
    await cx.join("UNEW", user_name="Nia")
    await set_profile(cx, "UNEW", timezone="Europe/Lisbon")
    form = await cx.press("welcome.introduce", "UNEW")
    assert form.modal is not None and form.modal.callback_id == "welcome.intro_submit"
    assert [field.field_id for field in form.modal.fields] == ["intro", "role", "company", "topics"]
    submitted = await cx.submit(
        "welcome.intro_submit",
        user="UNEW",
        intro="Hi all @everyone <!channel> I run support ops.",
        role="Support Lead",
        company="Globex",
        topics="QA, tooling",
    )
    assert submitted is not None and "on its way to <#CINTRO>" in plain(submitted)
    await cx.deliver()
    [post] = [sent for sent in platform.sent if sent.kind == "post"]
    assert post.target == "CINTRO"
    assert post.text.splitlines()[:4] == [
        "**Please welcome <@UNEW>!**",
        "Support Lead at Globex",
        "Based in the Europe/Lisbon time zone",
        "Into: QA, tooling",
    ]
    slack_text = render(post.message.text, escape_for_slack)
    assert "<!channel>" not in slack_text and "&lt;!channel&gt;" in slack_text
    assert post.message.mentions == ()
    again = await cx.press("welcome.introduce", "UNEW")
    assert "You introduced yourself already" in plain(again)
    row = await welcome_row(cx, "UNEW")
    assert row is not None and row.intro_posted_at is not None


async def test_intro_without_intro_channel_or_text_is_refused_kindly(
    cx: Community, platform: FakePlatform
) -> None:
    await cx.join("UNEW")
    reply = await cx.press("welcome.introduce", "UNEW")
    assert reply.modal is None and "no introductions channel" in plain(reply)
    await cx.say("welcome setup intro_channel=<#CINTRO>")
    empty = await cx.submit("welcome.intro_submit", user="UNEW", intro=" ")
    assert empty is not None and "Your introduction is empty" in plain(empty)
    await cx.deliver()
    assert platform.texts("post") == []


# Buddies ----------------------------------------------------------------------------


async def test_find_me_a_buddy_picks_the_least_loaded_fitting_volunteer(
    cx: Community, platform: FakePlatform, clock: Clock
) -> None:
    await set_profile(cx, "UANA", company="Acme", timezone="Europe/Paris")
    await set_profile(cx, "UBEN", company="Globex", timezone="Asia/Tokyo")
    await set_profile(cx, "UCAT", company="Initech", timezone="Europe/London")
    for user in ("UANA", "UBEN", "UCAT"):
        assert "Thank you for volunteering" in await cx.say("welcome buddy on", user=user)
    assert "You're a welcome buddy" in await cx.say("welcome buddy", user="UANA")
    await cx.say("welcome setup intro_channel=<#CINTRO>")
    await cx.join("UNEW")
    await set_profile(cx, "UNEW", company="acme ", timezone="Europe/Berlin")
    reply = await cx.press("welcome.find_buddy", "UNEW")
    # Same load for all: Ana shares the newcomer's company, Ben's day barely overlaps.
    assert plain(reply) == ("Done! I've introduced you to <@UCAT> in a small group conversation.")
    again = await cx.press("welcome.find_buddy", "UNEW")
    assert "<@UCAT> is your buddy already" in plain(again)
    await cx.deliver()
    assert list(platform.groups.values()) == [["UNEW", "UCAT"]]
    [intro] = platform.texts("post", "G1")
    assert intro.startswith("<@UNEW>, meet <@UCAT>: your welcome buddy in CX Circle!")
    [sent] = [sent for sent in platform.sent if sent.target == "G1"]
    assert set(sent.message.mentions) == {"UNEW", "UCAT"}
    # The next newcomer goes to a volunteer with no newcomer yet.
    await cx.join("UNEXT")
    await set_profile(cx, "UNEXT", company="Initech", timezone="Europe/Madrid")
    assert "<@UANA>" in plain(await cx.press("welcome.find_buddy", "UNEXT"))
    # A week later each buddy is nudged to check in, once.
    await cx.advance(days=7)
    await cx.advance()
    await cx.deliver()
    [checkin] = platform.texts("dm", "UCAT")
    assert checkin.startswith("It's been a week since you became <@UNEW>'s welcome buddy")
    assert len(platform.texts("dm", "UANA")) == 1


async def test_a_buddy_request_waits_for_the_first_volunteer(
    cx: Community, platform: FakePlatform
) -> None:
    await cx.join("UNEW")
    reply = await cx.press("welcome.find_buddy", "UNEW")
    assert "No volunteer buddy is free right now" in plain(reply)
    assert "1 waiting for a volunteer" in await cx.say("welcome stats")
    assert "introduced you to <@UNEW>" in await cx.say("welcome buddy on", user="UVOL")
    assert "Buddies are for newcomers" in plain(await cx.press("welcome.find_buddy", "UVOL"))
    assert "no longer a welcome buddy" in await cx.say("welcome buddy off", user="UVOL")
    await cx.deliver()
    assert list(platform.groups.values()) == [["UNEW", "UVOL"]]


async def test_automatic_buddies_at_welcome_time(cx: Community, platform: FakePlatform) -> None:
    await cx.say("welcome buddy on", user="UVOL")
    assert "Automatic buddy: on (1 volunteer)" in await cx.say("welcome setup auto_buddy=on")
    await cx.join("UNEW")
    await cx.deliver()
    assert welcome_dms(platform) == ["UNEW"]
    assert list(platform.groups.values()) == [["UNEW", "UVOL"]]
    home = await cx.open_home("UVOL")
    assert home is not None and "1 newcomer in the last 30 days" in plain(home)


# Greeters ---------------------------------------------------------------------------


async def test_greeters_take_a_newcomer_once(cx: Community, platform: FakePlatform) -> None:
    await cx.say("welcome setup greeters_channel=<#CGREET>")
    await cx.join("UNEW")
    await cx.deliver()
    [post] = [sent for sent in platform.sent if sent.kind == "post"]
    assert post.target == "CGREET" and post.text.startswith("👋 <@UNEW> just joined CX Circle.")
    [button] = post.message.buttons
    assert (button.label, button.action_id, button.value) == (
        "I'll say hi",
        "welcome.greet",
        "UNEW",
    )
    clicked = {"message": MessageRef("CGREET", post.ref.message_id)}
    own = await cx.press("welcome.greet", "UNEW", "UNEW", **clicked)
    assert "That's you" in plain(own)
    taken = await cx.press("welcome.greet", "UG1", "UNEW", **clicked)
    assert "<@UNEW> is yours" in plain(taken)
    assert taken.update_original is not None and taken.update_original.buttons == ()
    updated = strip_markup_for_plain_text(taken.update_original.text)
    assert "<@UG1> is saying hi." in updated
    late = await cx.press("welcome.greet", "UG2", "UNEW", **clicked)
    assert plain(late) == "<@UG1> is already saying hi to <@UNEW>."
    assert late.update_original is None
    assert "Greeted personally by a greeter: 1" in await cx.say("welcome stats")


# Preview and stats ------------------------------------------------------------------


async def test_preview_shows_the_dm_with_the_admins_own_profile(cx: Community) -> None:
    await cx.say("welcome setup delay=30m intro_channel=<#CINTRO>")
    reply = await cx.command("welcome preview", user_name="Alma")
    assert reply is not None and reply.message is not None and not reply.public
    text = strip_markup_for_plain_text(reply.message.text)
    assert text.startswith("_Preview with you as the newcomer. Newcomers get this 30m after")
    assert "**Welcome!** 👋 Alma, we're glad you joined CX Circle." in text
    assert "I'll post them in <#CINTRO> for you" in text
    assert [b.action_id for b in reply.message.buttons] == [
        "welcome.introduce",
        "coffee.join",
        "welcome.find_buddy",
    ]


async def test_stats_report_activation_within_fourteen_days(
    cx: Community, platform: FakePlatform, clock: Clock
) -> None:
    await cx.say("welcome setup intro_channel=<#CINTRO>")
    await cx.say("welcome buddy on", user="UVOL")
    for user in ("UINTRO", "UCOFFEE", "UBUDDY", "UIDLE", "ULATE"):
        await cx.join(user)
    await cx.submit("welcome.intro_submit", user="UINTRO", intro="Hi")
    await cx.press("welcome.find_buddy", "UBUDDY")
    async with cx.kindred.db.transaction() as session:
        program = coffee.CoffeeProgram(
            platform="fake",
            workspace_id="W1",
            channel_id="CCOFFEE",
            anchor_date=date(2026, 11, 23),
            next_round_at=clock.now,
            created_by=ADMIN,
        )
        session.add(program)
        await session.flush()
        assert program.id is not None
        await coffee.join(session, program.id, "UCOFFEE", clock.advance(days=3))
    assert "Still in their first 14 days: 5, of whom 3 already took a step." in await cx.say(
        "welcome stats"
    )
    async with cx.kindred.db.transaction() as session:
        await coffee.join(session, program.id, "ULATE", clock.advance(days=12))
    text = await cx.say("welcome stats")
    assert "Welcomed: 5" in text and "Introduced: 1" in text and "Buddied: 1" in text
    assert "3 of 5 newcomers (60%)" in text
    assert "intro 1 · coffee 1 · buddy 1" in text


async def test_setup_alone_shows_the_settings_and_how_to_change_them_in_good_grammar(
    cx: Community, clock: Clock
) -> None:
    shown = await cx.say("welcome setup")
    assert shown.startswith("**Welcome settings**\n• Welcomes: on")
    assert "Template: stock (config/templates/welcome/dm.j2)" in shown
    assert "using the names enabled, template, delay, trigger, trigger_channel" in shown
    assert "`clear=name` unsets one" in shown
    assert "Automatic buddy: off (0 volunteers)" in shown
    await cx.say("welcome buddy on", user="UVOL")
    assert "Automatic buddy: off (1 volunteer)" in await cx.say("welcome setup")
    await cx.join("UNEW")
    await cx.press("welcome.find_buddy", "UNEW")
    clock.advance(days=15)
    assert "1 of 1 newcomer (100%)" in await cx.say("welcome stats")
    home = await cx.open_home("UVOL")
    assert home is not None and "1 newcomer in the last 30 days" in plain(home)


# Bursts and replicas ----------------------------------------------------------------


async def test_a_burst_of_500_joins_is_welcomed_paced_without_loss_or_duplicate(
    cx: Community, platform: FakePlatform
) -> None:
    platform.limits = [("fake-dm", RateLimit(per_second=500, burst=50))]
    platform.failures = [RateLimited(0.05) for _ in range(3)]
    joins = [cx.inbound("member_joined", f"U{n:03}") for n in range(500)]
    for event in joins:
        await cx.handle(event)
    for event in joins[:100]:  # a re-delivery of the first hundred events
        await cx.handle(event)
    started = time.monotonic()
    await cx.deliver()
    elapsed = time.monotonic() - started
    targets = welcome_dms(platform)
    assert len(targets) == 500
    assert sorted(targets) == [f"U{n:03}" for n in range(500)]
    assert platform.calls == 503  # three 429s retried, nothing sent twice
    # Paced: after the burst of 50, 450 more at 500/s take at least 0.9 s.
    assert elapsed >= 0.85


async def test_two_replicas_racing_on_one_join_welcome_once(
    postgres_db: Database, settings: Settings, clock: Clock, platform: FakePlatform
) -> None:
    replicas = [
        Kindred(replace(settings, database_url=str(postgres_db.url)), postgres_db, clock=clock)
        for _ in range(2)
    ]
    for replica in replicas:
        replica.attach(platform)
    users = [f"U{n}" for n in range(20)]
    # Only the welcome is raced here: the community and its members already exist.
    async with postgres_db.transaction() as session:
        await members.ensure_community(session, "fake", "W1")
        for user in users:
            await members.ensure_member(session, "fake", "W1", user)
    # Two deliveries of the same arrival (e.g. two gateway shards after a resume).
    await asyncio.gather(
        *(Community(replica, platform, clock).join(user) for user in users for replica in replicas)
    )
    for replica in replicas:
        await Community(replica, platform, clock).deliver()
    assert sorted(welcome_dms(platform)) == sorted(users)


# Console end to end -----------------------------------------------------------------


def last_button(output: str, label: str) -> str:
    return re.findall(rf"\((\d+)\) {re.escape(label)}", output)[-1]


async def test_console_newcomer_is_welcomed_introduced_and_buddied(
    settings: Settings, sqlite_db: Database, clock: Clock
) -> None:
    output = io.StringIO()
    kindred = Kindred(settings, sqlite_db, clock=clock)
    community = ConsoleCommunity.load(settings.config_dir / "console.yml")
    session = ConsoleSession(
        kindred, community, output, lambda delta: clock.advance(seconds=delta.total_seconds())
    )
    await session.seed()
    await kindred.start(dispatch=False, schedule=False)
    try:
        await session.execute("/kindred welcome setup intro_channel=#introductions")
        await session.execute(":as bob")
        await session.execute("/kindred welcome buddy on")
        await session.execute(":join newbie")
        screen = output.getvalue()
        assert (
            "── [3] DM → @newbie ──\n**Welcome!** 👋 Newbie, we're glad you joined CX Practitioners"
            in screen
        )
        assert "(1) Introduce me   (2) Join virtual coffee   (3) Find me a buddy" in screen
        await session.execute(":as newbie")
        await session.execute(last_button(screen, "Introduce me"))
        assert 'Answer with :submit intro="…" role="…" (optional)' in output.getvalue()
        await session.execute(
            ':submit intro="Hi! I run support at a startup. @everyone say hi" company=Initech'
        )
        await session.execute(last_button(screen, "Find me a buddy"))
        await session.execute(":advance 7d")
        await session.execute(":as alice")
        await session.execute("/kindred welcome stats")
    finally:
        await kindred.stop()
    screen = output.getvalue()
    assert (
        "── [5] #introductions ──\n**Please welcome @newbie!**\nWorks at Initech\n\n"
        "Hi! I run support at a startup. @everyone say hi\n"
    ) in screen
    assert "Done! I've introduced you to @bob in a small group conversation." in screen
    assert "── [7] group @newbie, @bob ──\n@newbie, meet @bob: your welcome buddy" in screen
    assert (
        "── [8] DM → @bob ──\nIt's been a week since you became @newbie's welcome buddy" in screen
    )
    assert "• Welcomed: 1\n• Introduced: 1\n• Buddied: 1\n" in screen
    assert "Still in their first 14 days: 1, of whom 1 already took a step." in screen


async def test_console_join_of_an_existing_member_welcomes_nobody(
    settings: Settings, sqlite_db: Database, clock: Clock
) -> None:
    output = io.StringIO()
    kindred = Kindred(settings, sqlite_db, clock=clock)
    community = ConsoleCommunity.load(settings.config_dir / "console.yml")
    session = ConsoleSession(
        kindred, community, output, lambda delta: clock.advance(seconds=delta.total_seconds())
    )
    await session.seed()
    await kindred.start(dispatch=False, schedule=False)
    try:
        await session.execute(":join alice")
        await session.execute(":join newbie")
        await session.execute(":join newbie")
    finally:
        await kindred.stop()
    screen = output.getvalue()
    assert "@alice is already a member." in screen
    assert "DM → @alice" not in screen
    assert screen.count("DM → @newbie ──\n**Welcome!**") == 1


# Slack and Discord through their adapters -------------------------------------------


@pytest.fixture
async def fake_slack() -> AsyncIterator[FakeSlack]:
    fake = FakeSlack()
    await fake.start()
    populate(fake)
    fake.add_channel(SLACK_TEAM, "CINTRO", [SLACK_ADMIN])
    yield fake
    await fake.close()


async def test_slack_team_join_welcomes_once_and_posts_the_intro(
    fake_slack: FakeSlack, settings: Settings, sqlite_db: Database
) -> None:
    async with running_slack(fake_slack, slack_settings(settings, fake_slack), sqlite_db) as slack:
        saved = await slack.command(
            "welcome setup intro_channel=<#CINTRO|introductions>", user=SLACK_ADMIN
        )
        assert "Intro channel: <#CINTRO>" in saved["text"]
        newcomer = fake_slack.add_user(SLACK_TEAM, "UNEW", "nia")
        joined = {"type": "team_join", "user": newcomer}
        for event_id, retry in (("EvJoin1", None), ("EvJoin1", 1), ("EvJoin2", None)):
            status = await slack.sender.event(
                joined, team_id=SLACK_TEAM, event_id=event_id, retry_num=retry
            )
            assert status == 200
        await fake_slack.wait_for(lambda: fake_slack.messages(SLACK_TEAM, "DUNEW"))
        async with asyncio.timeout(10):
            await slack.drain()
        [welcome] = fake_slack.messages(SLACK_TEAM, "DUNEW")
        assert welcome["text"].startswith("*Welcome!* 👋 nia, we're glad you joined")
        [actions] = [block for block in welcome["blocks"] if block["type"] == "actions"]
        labels = [button["text"]["text"] for button in actions["elements"]]
        assert labels == ["Introduce me", "Join virtual coffee", "Find me a buddy"]
        introduce = actions["elements"][0]
        press_introduce = block_action_payload(
            {key: introduce[key] for key in ("action_id", "value", "type") if key in introduce},
            team_id=SLACK_TEAM,
            user_id="UNEW",
            channel_id="DUNEW",
            message_ts=welcome["ts"],
            response_url=fake_slack.response_url("introduce"),
        )
        assert (await slack.sender.post(interactive(press_introduce)))[0] == 200
        [modal] = await fake_slack.wait_for(lambda: fake_slack.opened_views)
        assert modal["title"]["text"] == "Introduce yourself"
        submission = view_submission(
            modal,
            {"intro": "Support ops nerd <!channel> <@UADMIN>", "role": "Support Lead"},
            team_id=SLACK_TEAM,
            user_id="UNEW",
        )
        assert (await slack.sender.post(submission))[0] == 200
        await fake_slack.wait_for(lambda: fake_slack.messages(SLACK_TEAM, "CINTRO"))
        [intro] = fake_slack.messages(SLACK_TEAM, "CINTRO")
    assert intro["text"].startswith("*Please welcome @nia!*\nSupport Lead\n")
    assert "Support ops nerd &lt;!channel&gt; &lt;@UADMIN&gt;" in intro["text"]
    assert len(fake_slack.messages(SLACK_TEAM, "DUNEW")) == 1


async def test_discord_member_join_welcomes_once_and_posts_the_intro(
    settings: Settings, sqlite_db: Database, clock: Clock
) -> None:
    fake = FakeDiscord()
    fake.add_guild(
        "CX Guild",
        members=[DiscordMember(DISCORD_ADMIN, "Ana", admin=True)],
        channels=[Channel(DISCORD_GENERAL, "general"), Channel(DISCORD_INTROS, "introductions")],
        guild_id=DISCORD_GUILD,
    )
    await fake.start()
    discord_settings = discord_settings_for(settings, fake, sqlite_db)
    kindred = Kindred(discord_settings, sqlite_db, clock=clock)
    try:
        async with serving(kindred, discord_settings) as service:
            async with kindred.db.transaction() as session:
                stored = await welcome_rows.ensure_settings(session, "discord", str(DISCORD_GUILD))
                stored.intro_channel = str(DISCORD_INTROS)
            newcomer = DiscordMember(DISCORD_NEWCOMER, "Nia")
            await fake.member_join(DISCORD_GUILD, newcomer)
            await fake.wait_until(lambda: len(discord_dms(fake, DISCORD_NEWCOMER)) == 1, "welcome")
            # The same arrival handled again (a gateway re-delivery after a resume).
            guild = service.client.get_guild(DISCORD_GUILD)
            cached = guild.get_member(DISCORD_NEWCOMER) if guild is not None else None
            assert cached is not None
            await service.on_member_join(cached)
            async with asyncio.timeout(10):
                await kindred.dispatcher.drain()
            [welcome] = discord_dms(fake, DISCORD_NEWCOMER)
            assert welcome.content.startswith(
                "**Welcome!** 👋 Nia, we're glad you joined CX Guild."
            )
            assert welcome.allowed_mentions is not None and welcome.allowed_mentions["parse"] == []
            introduce = next(cid for cid in welcome.custom_ids if "welcome.introduce" in cid)
            pressed = await fake.click(welcome.message_id, introduce, DISCORD_NEWCOMER)
            [(_, callback_type, form)] = await fake.answered(pressed)
            assert callback_type == 9 and form["title"] == "Introduce yourself"
            submitted = await fake.submit(
                form["custom_id"],
                {"intro": "Support ops nerd @everyone <@1>", "company": "Globex"},
                DISCORD_NEWCOMER,
                guild_id=None,
                channel_id=welcome.channel_id,
            )
            await fake.answered(submitted)
            await fake.wait_until(lambda: bool(sent_in(fake, DISCORD_INTROS)), "the intro post")
    finally:
        await fake.stop()
    [intro] = sent_in(fake, DISCORD_INTROS)
    assert intro.content.startswith("**Please welcome ")
    assert "Works at Globex" in intro.content
    assert "@everyone" not in intro.content.replace("@\u200beveryone", "")
    assert intro.allowed_mentions is not None and intro.allowed_mentions["parse"] == []


def sent_in(fake: FakeDiscord, channel_id: int) -> list[DiscordSent]:
    return [sent for sent in fake.sent if sent.channel_id == channel_id]


def discord_dms(fake: FakeDiscord, user_id: int) -> list[DiscordSent]:
    channel = fake.dm_channels.get(user_id)
    return [] if channel is None else sent_in(fake, channel)
