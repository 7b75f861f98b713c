"""`/kindred coffee …` on the fake platform with a real database: setting programs
up, members joining and managing their participation, admin previews, run-now
and stats, buttons, channel events, the home tab, and one console session."""

from __future__ import annotations

import asyncio
import io
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from bot.adapters.console import ConsoleCommunity, ConsoleSession
from bot.core.app import Kindred
from bot.core.platform import MemberInfo, Reply
from bot.core.settings import Settings
from storage.coffee import CoffeeBlock, CoffeeProgram, CoffeeRound
from storage.db import Database
from storage.models import OutboxMessage
from tests.bot.coffee_helpers import (
    ADMIN,
    BERLIN_MONDAYS,
    CHANNEL,
    Person,
    add_people,
    intros,
    membership,
    program_with,
    start,
    stored_groups,
    stored_rounds,
)
from tests.conftest import Clock
from tests.driver import Community, plain
from tests.fakes.platform import FakePlatform

FOUR = [
    Person("ana", company="Acme"),
    Person("bob", company="Globex", timezone="America/New_York"),
    Person("cy", company="Acme"),
    Person("dee", company="Initech", timezone=None),
]


def text_of(reply: Reply | None) -> str:
    assert reply is not None and reply.message is not None
    return plain(reply.message.text)


async def program(kindred: Kindred) -> CoffeeProgram:
    async with kindred.db.sessions() as session:
        return (await session.execute(select(CoffeeProgram))).scalar_one()


# Setup -------------------------------------------------------------------------------------


async def test_setup_creates_the_program_and_announces_it(
    community: Community, kindred: Kindred, platform: FakePlatform
) -> None:
    await start(community)
    reply = await community.say(f"coffee setup {BERLIN_MONDAYS} auto_join=on repeat_window=4")
    assert "Virtual coffee in <#CCOFFEE>** created." in reply
    assert "every week on Monday at 09:00 (Europe/Berlin)" in reply
    assert "Next round: Mon 30 Nov, 09:00 (Europe/Berlin)" in reply
    assert "Joining the channel opts members in: yes" in reply
    assert "within 4 rounds" in reply
    created = await program(kindred)
    assert created.next_round_at == datetime(2026, 11, 30, 8, 0, tzinfo=UTC)

    await community.deliver()
    [announcement] = [sent for sent in platform.sent if sent.target == CHANNEL]
    assert "Virtual coffee is starting" in announcement.text
    [button] = announcement.message.buttons
    assert (button.action_id, button.value) == ("coffee.join", str(created.id))


async def test_running_setup_again_updates_the_program(
    community: Community, kindred: Kindred, platform: FakePlatform
) -> None:
    await start(community)
    await community.say(f"coffee setup {BERLIN_MONDAYS}")
    reply = await community.say(
        "coffee setup cadence=biweekly weekday=wednesday hour=15 group_size=3"
    )
    assert "updated" in reply
    assert "every 2 weeks on Wednesday at 15:00 (Europe/Berlin)" in reply
    assert "Groups of 3" in reply
    assert "Next round: Wed 25 Nov, 15:00" in reply
    updated = await program(kindred)
    assert (updated.cadence, updated.weekday, updated.hour, updated.group_size) == (
        "biweekly",
        2,
        15,
        3,
    )
    monthly = await community.say("coffee setup cadence=monthly weekday=monday hour=9")
    assert "on the first Monday of each month at 09:00" in monthly
    assert "Next round: Mon 07 Dec, 09:00" in monthly
    await community.deliver()
    assert len([sent for sent in platform.sent if sent.target == CHANNEL]) == 1


async def test_setup_refuses_bad_arguments_helpfully(
    community: Community, kindred: Kindred, platform: FakePlatform
) -> None:
    await start(community)
    assert "`weekday` must be one of: monday" in await community.say("coffee setup weekday=funday")
    assert "`hour` must be at most 23" in await community.say("coffee setup hour=25")
    assert "`group_size` must be at most 3" in await community.say("coffee setup group_size=4")
    assert "`auto_join` must be on or off" in await community.say("coffee setup auto_join=maybe")
    zone = await community.say("coffee setup timezone=Europe/Berlinn")
    assert "not a time zone I know" in zone and "Europe/Berlin" in zone
    assert "Usage: `/kindred coffee setup" in await community.say("coffee setup monday")
    assert "in the channel where members should meet" in await community.say(
        "coffee setup", channel=None
    )
    assert "Only community admins" in await community.say("coffee setup", "ana")
    async with kindred.db.sessions() as session:
        assert (
            await session.execute(select(func.count()).select_from(CoffeeProgram))
        ).scalar() == 0


async def test_setup_defaults_to_the_admins_time_zone(
    community: Community, kindred: Kindred, platform: FakePlatform
) -> None:
    await start(community)
    await add_people(kindred, Person(ADMIN, timezone="America/Chicago"))
    reply = await community.say("coffee setup create")
    assert "every week on Monday at 09:00 (America/Chicago)" in reply


async def test_setup_without_settings_shows_them_and_creates_nothing(
    community: Community, kindred: Kindred, platform: FakePlatform
) -> None:
    """Issue #18: a bare `coffee setup` created and announced a program."""
    await start(community)
    hint = await community.say("coffee setup")
    assert "no virtual coffee program in <#CCOFFEE> yet" in hint
    assert "`/kindred coffee setup create`" in hint and "cadence=weekly|fortnightly" in hint
    async with kindred.db.sessions() as session:
        count = select(func.count()).select_from(CoffeeProgram)
        assert (await session.execute(count)).scalar() == 0
    assert "created" in await community.say("coffee setup create")
    await community.deliver()
    platform.sent.clear()
    shown = await community.say("coffee setup")
    assert "Virtual coffee in <#CCOFFEE>**: current settings." in shown
    assert "Members opted in: 0" in shown
    await community.deliver()
    assert platform.sent == []


async def test_setup_accepts_the_usual_words_for_days_and_cadences(
    community: Community, kindred: Kindred
) -> None:
    await start(community)
    reply = await community.say("coffee setup cadence=Fortnightly weekday=WED hour=15")
    assert "every 2 weeks on Wednesday at 15:00" in reply
    assert "on Thursday" in await community.say("coffee setup weekday=thurs")
    assert "on Monday" in await community.say("coffee setup weekday=Monday")
    assert "within 1 round " in await community.say("coffee setup repeat_window=1")
    assert "`weekday` must be one of" in await community.say("coffee setup weekday=mo")


# Member commands ---------------------------------------------------------------------------


async def test_join_without_a_program_explains_what_to_do(
    community: Community, kindred: Kindred, platform: FakePlatform
) -> None:
    await start(community)
    assert "ask an organiser" in await community.say("coffee join", "ana")
    assert "`/kindred coffee setup`" in await community.say("coffee join")


async def test_join_picks_the_program_or_asks_which(
    community: Community, kindred: Kindred, platform: FakePlatform
) -> None:
    await start(community)
    await community.say(f"coffee setup {BERLIN_MONDAYS}")
    # One program: joining from anywhere joins it.
    assert "You're in the virtual coffee rounds of <#CCOFFEE>" in await community.say(
        "coffee join", "ana", channel="CGENERAL"
    )
    assert "already in" in await community.say("coffee join", "ana")
    await community.say(f"coffee setup {BERLIN_MONDAYS}", channel="CREMOTE")
    which = await community.say("coffee join", "bob", channel="CGENERAL")
    assert "Which program?" in which and "<#CCOFFEE>" in which and "<#CREMOTE>" in which
    assert "channel=" in which
    assert "<#CREMOTE>" in await community.say("coffee join channel=<#CREMOTE>", "bob", "CGENERAL")
    missing = await community.say("coffee join channel=<#CNOPE>", "bob", "CGENERAL")
    assert "no virtual coffee program in <#CNOPE>" in missing


async def test_join_suggests_a_time_zone_and_shows_both_times(
    community: Community, kindred: Kindred, platform: FakePlatform
) -> None:
    await start(community)
    await add_people(kindred, *FOUR)
    await community.say(f"coffee setup {BERLIN_MONDAYS}")
    bob = await community.say("coffee join", "bob")
    assert "Mon 30 Nov, 09:00 (Europe/Berlin), Mon 30 Nov, 03:00 your time" in bob
    assert "profile set timezone" not in bob
    assert "profile set timezone" in await community.say("coffee join", "dee")


async def test_leave_pause_resume_and_skip(
    community: Community, kindred: Kindred, platform: FakePlatform, clock: Clock
) -> None:
    await program_with(community, FOUR)
    paused = await community.say("coffee pause 3", "ana")
    assert "Paused for 3 weeks" in paused and "Mon 14 Dec, 10:00" in paused
    state = await membership(kindred, "ana")
    assert state.paused and state.resume_at == clock.now + timedelta(weeks=3)
    assert "paused until" in await community.say("coffee status", "ana")
    assert "paused in <#CCOFFEE> already" in await community.say("coffee skip", "ana")
    assert "Welcome back" in await community.say("coffee resume", "ana")
    assert "not paused" in await community.say("coffee resume", "ana")

    assert "sit out the round of Mon 30 Nov" in await community.say("coffee skip", "ana")
    assert "skipping the next round" in await community.say("coffee status", "ana")

    assert "You've left" in await community.say("coffee leave", "ana")
    assert not (await membership(kindred, "ana")).active
    assert "not in a virtual coffee program" in await community.say("coffee leave", "ana", None)
    assert "You're in" in await community.say("coffee join", "ana")
    assert not (await membership(kindred, "ana")).skip_next


async def test_pause_needs_a_sensible_number_of_weeks(
    community: Community, kindred: Kindred, platform: FakePlatform
) -> None:
    await program_with(community, FOUR)
    assert "`weeks` is missing" in await community.say("coffee pause", "ana")
    assert "`weeks` must be at most 12" in await community.say("coffee pause 13", "ana")
    assert "`weeks` must be a whole number" in await community.say("coffee pause soon", "ana")
    assert not (await membership(kindred, "ana")).paused


async def test_members_outside_the_program_are_told_how_to_join(
    community: Community, kindred: Kindred, platform: FakePlatform
) -> None:
    await program_with(community, FOUR[:2])
    assert "Join with `/kindred coffee join`" in await community.say("coffee skip", "zed")


async def test_block_is_private_and_can_be_undone(
    community: Community, kindred: Kindred, platform: FakePlatform
) -> None:
    await program_with(community, FOUR)
    reply = await community.say("coffee block <@bob>", "ana")
    assert "you and Bob will never be paired" in reply and "Nobody is told" in reply
    assert "already asked" in await community.say("coffee block <@bob>", "ana")
    assert "Bob" in await community.say("coffee status", "ana")
    assert "never be paired" not in await community.say("coffee status", "bob")
    await community.deliver()
    assert platform.sent == []
    assert "can't block yourself" in await community.say("coffee block <@ana>", "ana")
    assert "must mention a member" in await community.say("coffee block bob", "ana")
    unknown = await community.say("coffee block <@U123>", "ana")
    assert "I don't know <@U123>" in unknown and "Done" not in unknown
    assert "Unblocked" in await community.say("coffee unblock <@bob>", "ana")
    assert "nothing to undo" in await community.say("coffee unblock <@bob>", "ana")
    async with kindred.db.sessions() as session:
        assert (await session.execute(select(func.count()).select_from(CoffeeBlock))).scalar() == 0


async def test_status_lists_programs_next_rounds_and_last_partners(
    community: Community, kindred: Kindred, platform: FakePlatform, clock: Clock
) -> None:
    await program_with(community, FOUR[:2])
    assert "Last partners" not in await community.say("coffee status", "bob")
    clock.now = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
    await kindred.scheduler.catch_up()
    status = await community.say("coffee status", "bob")
    assert "<#CCOFFEE>: in" in status
    assert "Next round: Mon 07 Dec, 09:00 (Europe/Berlin) (your time: Mon 07 Dec, 03:00)" in status
    assert "Last partners: 30 Nov: Ana" in status
    nobody = await community.say("coffee status", "zed")
    assert "not in any virtual coffee program" in nobody and "<#CCOFFEE>" in nobody


# Admin commands ----------------------------------------------------------------------------


async def test_preview_shows_groups_and_quality_without_sending(
    community: Community, kindred: Kindred, platform: FakePlatform
) -> None:
    await program_with(community, FOUR)
    await community.say("coffee skip", "dee")
    preview = await community.say("coffee preview")
    assert "Nothing was sent" in preview
    assert "3 eligible · 1 group ·" in preview
    assert "cross-company" in preview and "time-zone fit" in preview and "ms" in preview
    assert "1 skipping" in preview
    # Ana and Cy both work at Acme: the only trio has them, but it's the only choice.
    assert "Ana" in preview and "Bob" in preview and "Cy" in preview
    await community.deliver()
    assert platform.sent == []
    assert await stored_rounds(kindred) == []
    assert "Only community admins" in await community.say("coffee preview", "ana")


async def test_run_now_starts_a_round_once_per_minute(
    community: Community, kindred: Kindred, platform: FakePlatform
) -> None:
    await program_with(community, FOUR)
    reply = await community.say("coffee run-now")
    assert "Round started in <#CCOFFEE>: 4 members in 2 groups" in reply
    assert "already" in await community.say("coffee run-now")
    await community.deliver()
    assert len(intros(platform)) == 2
    [round_] = await stored_rounds(kindred)
    assert round_.manual
    # Ana and Cy (both Acme) are kept apart.
    assert all({"ana", "cy"} - set(g) for g in await stored_groups(kindred, round_.id or 0))


async def test_run_now_with_nobody_to_pair_says_so(
    community: Community, kindred: Kindred, platform: FakePlatform
) -> None:
    await program_with(community, [])
    assert "nobody to pair" in await community.say("coffee run-now")


@pytest.mark.parametrize(
    ("command", "answer"), [("coffee preview", "Nothing was sent"), ("coffee run-now", "Round")]
)
async def test_a_slow_member_listing_holds_up_nobody_else(
    community: Community,
    platform: FakePlatform,
    monkeypatch: pytest.MonkeyPatch,
    command: str,
    answer: str,
) -> None:
    """Issue #18: with Slack's members API slow, another member's `help` waited for
    the admin's preview, since the listing ran inside its SQLite transaction."""
    await program_with(community, FOUR)
    listing, release = asyncio.Event(), asyncio.Event()
    real = platform.list_members

    async def slow(workspace_id: str, channel_id: str | None = None) -> list[MemberInfo]:
        listing.set()
        await release.wait()
        return list(await real(workspace_id, channel_id))

    monkeypatch.setattr(platform, "list_members", slow)
    admin = asyncio.create_task(community.say(command))
    try:
        async with asyncio.timeout(5):
            await listing.wait()
        async with asyncio.timeout(2):
            assert "Kindred commands" in await community.say("help", "ana")
        assert not admin.done()
    finally:
        release.set()
    assert answer in await admin


async def test_stats_before_and_after_rounds(
    community: Community, kindred: Kindred, platform: FakePlatform, clock: Clock
) -> None:
    await program_with(community, FOUR)
    assert "No rounds yet" in await community.say("coffee stats")
    clock.now = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
    await kindred.scheduler.catch_up()
    stats = await community.say("coffee stats")
    assert "over 1 round: 4 participations (4 different members) · 2 groups" in stats
    assert "meet rate –" in stats and "not asked yet" in stats
    assert "repeat rate 0%" in stats and "cross-company 100%" in stats
    assert "Only community admins" in await community.say("coffee stats", "ana")


async def test_stats_count_meetings_before_the_follow_up_and_skip_empty_rounds(
    community: Community, kindred: Kindred, platform: FakePlatform, clock: Clock
) -> None:
    """Issue #18: "meet rate –" after both groups pressed "We met", and a run-now
    with nobody in it counted as a round."""
    await program_with(community, [])
    assert "nobody to pair" in await community.say("coffee run-now")
    assert "No rounds yet" in await community.say("coffee stats")
    await add_people(kindred, *FOUR)
    for person in FOUR:
        await community.say("coffee join", person.user_id)
    clock.advance(minutes=1)
    assert "2 groups" in await community.say("coffee run-now")
    await community.deliver()
    for sent in community.sent("post"):
        if sent.target in platform.groups:
            [we_met] = [b for b in sent.message.buttons if b.action_id == "coffee.met"]
            await community.press(we_met, platform.groups[sent.target][0], message=sent.ref)
    stats = await community.say("coffee stats")
    assert "over 1 round:" in stats
    assert "meet rate 100%" in stats and "met 2/2 so far" in stats


# Buttons and events --------------------------------------------------------------------------


async def test_join_button_from_welcome_and_from_the_announcement(
    community: Community, kindred: Kindred, platform: FakePlatform
) -> None:
    await start(community)
    assert "no virtual coffee program" in text_of(await community.press("coffee.join", "ana"))
    await community.say(f"coffee setup {BERLIN_MONDAYS}")
    assert "You're in" in text_of(await community.press("coffee.join", "ana"))
    await community.say(f"coffee setup {BERLIN_MONDAYS}", channel="CREMOTE")
    choice = await community.press("coffee.join", "bob")
    assert choice.message is not None
    assert [b.label for b in choice.message.buttons] == ["Join 1", "Join 2"]
    remote = choice.message.buttons[1]
    assert "<#CREMOTE>" in text_of(await community.press(remote.action_id, "bob", remote.value))
    assert "out of date" in text_of(await community.press("coffee.join", "bob", "abc"))
    assert "no longer exists" in text_of(await community.press("coffee.join", "bob", "999"))


async def test_answer_buttons_belong_to_the_group(
    community: Community, kindred: Kindred, platform: FakePlatform, clock: Clock
) -> None:
    await program_with(community, [*FOUR[:2], Person("eve", company="Hooli")])
    await community.say("coffee leave", "eve")
    await community.say("coffee run-now")
    [round_] = await stored_rounds(kindred)
    [group] = await stored_groups(kindred, round_.id or 0)
    assert set(group) == {"ana", "bob"}
    stranger = await community.press("coffee.met", "eve", "1")
    assert "another coffee group" in text_of(stranger)
    assert "out of date" in text_of(await community.press("coffee.met", "ana", "x"))
    assert "no longer exists" in text_of(await community.press("coffee.met", "ana", "42"))
    met = await community.press("coffee.met", "ana", "1")
    assert met.update_original is not None
    assert "Marked as met by Ana" in plain(met.update_original.text)


async def test_joining_the_channel_opts_in_when_the_program_says_so(
    community: Community, kindred: Kindred, platform: FakePlatform
) -> None:
    await start(community)
    await community.say(f"coffee setup {BERLIN_MONDAYS}")
    await community.join("ana", CHANNEL)
    await community.say("coffee setup auto_join=on")
    await community.join("bob", CHANNEL)
    await community.join("bob", CHANNEL)
    await community.join("cy", "CGENERAL")
    await community.deliver()
    assert community.dms("ana") == []
    [welcome] = community.dms("bob")
    assert "You joined <#CCOFFEE>, so you're in its virtual coffee rounds" in welcome
    assert (await membership(kindred, "bob")).active
    assert "not in any virtual coffee program" in await community.say("coffee status", "ana")

    await community.leave("bob", CHANNEL)
    assert not (await membership(kindred, "bob")).active


async def test_leaving_the_community_ends_every_membership(
    community: Community, kindred: Kindred, platform: FakePlatform
) -> None:
    await program_with(community, FOUR[:1])
    await community.leave("ana")
    assert not (await membership(kindred, "ana")).active


async def test_home_tab_section_offers_the_right_buttons(
    community: Community, kindred: Kindred, platform: FakePlatform
) -> None:
    await program_with(community, FOUR[:1])
    home = await community.open_home("ana")
    assert home is not None and home.message is not None
    assert "<#CCOFFEE>: in. Next round Mon 30 Nov, 09:00." in plain(home.message.text)
    labels = {b.label: b for b in home.message.buttons}
    assert {"Skip next round", "Pause 2 weeks"} <= set(labels)
    pause = labels["Pause 2 weeks"]
    assert "Paused for 2 weeks" in text_of(
        await community.press(pause.action_id, "ana", pause.value)
    )
    home = await community.open_home("ana")
    assert home is not None and home.message is not None
    [resume] = [b for b in home.message.buttons if b.action_id == "coffee.resume"]
    assert "Welcome back" in text_of(await community.press(resume.action_id, "ana", resume.value))

    newcomer = await community.open_home("zed")
    assert newcomer is not None and newcomer.message is not None
    assert ("coffee.join", "") in [(b.action_id, b.value) for b in newcomer.message.buttons]


async def test_intro_skip_button_skips_the_next_round(
    community: Community, kindred: Kindred, platform: FakePlatform, clock: Clock
) -> None:
    await program_with(community, FOUR)
    await community.say("coffee run-now")
    await community.deliver()
    intro = next(sent for sent in platform.sent if "meet your" in sent.text)
    skip = next(b for b in intro.message.buttons if b.action_id == "coffee.skip")
    user = platform.groups[intro.target][0]
    assert "sit out the round" in text_of(await community.press(skip.action_id, user, skip.value))
    assert (await membership(kindred, user)).skip_next


# Console -------------------------------------------------------------------------------------


async def test_console_session_runs_a_round_end_to_end(
    settings: Settings, sqlite_db: Database, clock: Clock
) -> None:
    kindred = Kindred(replace(settings, database_url=str(sqlite_db.url)), sqlite_db, clock=clock)
    output = io.StringIO()
    community = ConsoleCommunity.load(Path(settings.config_dir) / "console.yml")
    session = ConsoleSession(
        kindred, community, output, lambda delta: setattr(clock, "now", clock.now + delta)
    )
    await session.seed()
    await kindred.start(dispatch=False, schedule=False)
    try:
        script = [
            ":in #virtual-coffee",
            "/kindred coffee setup cadence=weekly weekday=monday hour=9 timezone=Europe/Paris",
            "/kindred coffee join",
            ":as bob",
            "/kindred coffee join",
            ":as carol",
            "/kindred coffee join",
            ":as dan",
            "/kindred coffee join",
            ":as erin",
            "/kindred coffee skip",
            "/kindred coffee join",
            "/kindred coffee skip",
            ":advance 7d",
        ]
        for line in script:
            assert await session.execute(line)
        shown = output.getvalue()
        assert "Virtual coffee in #virtual-coffee** created." in shown
        assert "Virtual coffee is starting" in shown
        assert "You're not in the virtual coffee of" in shown
        assert shown.count("meet your match") == 2
        intro_lines = shown[shown.index("meet your match") :]
        assert "Conversation starter" in intro_lines
        # Alice and Dan both work at Acme: never paired together.
        async with sqlite_db.sessions() as db_session:
            [round_] = list((await db_session.execute(select(CoffeeRound))).scalars())
        groups = await stored_groups(kindred, round_.id or 0)
        assert {frozenset(g) for g in groups} and all({"alice", "dan"} - set(g) for g in groups)
        assert "erin" not in {user for group in groups for user in group}

        before = len(output.getvalue())
        assert await session.execute(":as alice")
        assert await session.execute("/kindred coffee stats")
        assert "4 participations" in output.getvalue()[before:]
    finally:
        await kindred.stop()
    async with sqlite_db.sessions() as db_session:
        pending = (
            select(func.count()).select_from(OutboxMessage).where(OutboxMessage.status != "sent")
        )
        assert (await db_session.execute(pending)).scalar() == 0
