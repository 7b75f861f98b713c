"""Virtual coffee rounds end to end on the fake platform and a real database:
scheduling in the program's time zone, intros through the outbox, reminders,
follow-ups, pauses, blocks, exactly-once rounds across replicas and crashes."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from itertools import combinations, pairwise

import pytest
from sqlalchemy import func, select

from bot.core.app import Kindred
from bot.core.dispatcher import OutboxDispatcher
from bot.core.mentions import escape_for_slack, render
from bot.core.platform import MemberInfo, Message, MessageRef, TransientPlatformError
from bot.core.settings import Settings
from bot.services import coffee as service
from storage.coffee import CoffeeGroup, CoffeeGroupMember, CoffeeProgram, CoffeeRound
from storage.db import Database
from storage.models import JobClaim, Member, OutboxMessage
from tests.bot.coffee_helpers import (
    BERLIN_MONDAYS,
    CHANNEL,
    WORKSPACE,
    Person,
    intros,
    membership,
    program_with,
    stored_groups,
    stored_rounds,
)
from tests.conftest import POSTGRES_URL, Clock
from tests.driver import Community, plain
from tests.fakes.platform import FakePlatform

FIRST_ROUND = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)  # Monday 09:00 in Berlin
WEEK = timedelta(days=7)
SIX = [Person(f"u{index}", company=f"company{index}") for index in range(6)]


def pairs(groups: Sequence[Sequence[str]]) -> set[frozenset[str]]:
    return {frozenset(pair) for group in groups for pair in combinations(group, 2)}


async def test_a_round_fires_at_the_programs_local_time(
    community: Community, kindred: Kindred, platform: FakePlatform, clock: Clock
) -> None:
    await program_with(community, SIX[:4])

    await community.advance(FIRST_ROUND - timedelta(minutes=1))
    assert await stored_rounds(kindred) == []

    await community.advance(FIRST_ROUND)
    [round_] = await stored_rounds(kindred)
    assert round_.occurrence == FIRST_ROUND
    groups = await stored_groups(kindred, round_.id or 0)
    assert sorted(user for group in groups for user in group) == ["u0", "u1", "u2", "u3"]
    assert {members for members, _ in intros(platform)} == {frozenset(g) for g in groups}

    await community.advance(FIRST_ROUND + timedelta(minutes=1))
    assert len(await stored_rounds(kindred)) == 1
    assert len(intros(platform)) == 2


async def test_summer_time_moves_the_round_to_seven_utc(
    community: Community, kindred: Kindred, platform: FakePlatform, clock: Clock
) -> None:
    clock.now = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
    await program_with(community, SIX[:2])
    await community.advance(datetime(2026, 6, 8, 6, 59, tzinfo=UTC))
    assert await stored_rounds(kindred) == []
    await community.advance(datetime(2026, 6, 8, 7, 0, tzinfo=UTC))
    assert [r.occurrence for r in await stored_rounds(kindred)] == [
        datetime(2026, 6, 8, 7, 0, tzinfo=UTC)
    ]


async def test_intro_introduces_the_group_in_the_program_channel(
    community: Community, kindred: Kindred, platform: FakePlatform, clock: Clock
) -> None:
    people = [
        Person("ana", company="Acme", timezone="Europe/Berlin", role="Head of Support"),
        Person("raj", company="<!here> Globex", timezone="Asia/Kolkata", role="CX Analyst"),
    ]
    await program_with(community, people)
    await community.advance(FIRST_ROUND)

    [(members, text)] = intros(platform)
    assert members == {"ana", "raj"}
    assert "<@ana>, Head of Support at Acme (it's Mon 09:00 for them)" in text
    assert "<@raj>, CX Analyst at <!here> Globex (it's Mon 13:30 for them)" in text
    assert "Into: NPS, journey mapping" in text
    starters = service.load_starters(kindred.settings.config_dir)
    assert any(f"Conversation starter:** {starter}" in text for starter in starters)
    # Raj's day starts first (furthest east), so Raj proposes the time.
    assert "<@raj>, would you propose a time" in text
    async with kindred.db.sessions() as session:
        row = (
            await session.execute(select(OutboxMessage).where(OutboxMessage.kind == "group"))
        ).scalar_one()
    # Discord opens a private thread in this channel; Slack a group DM.
    assert row.details["channel_id"] == CHANNEL
    assert set(row.payload["mentions"]) == {"ana", "raj"}
    # What members wrote can never ping: Slack sees the company escaped.
    assert "at &lt;!here&gt; Globex" in render(row.payload["text"], escape_for_slack)


async def test_pause_skip_and_block_are_honoured_over_several_rounds(
    community: Community, kindred: Kindred, platform: FakePlatform, clock: Clock
) -> None:
    await program_with(community, SIX)
    await community.say("coffee block <@u1>", "u0")
    await community.say("coffee skip", "u2")
    await community.say("coffee pause 2", "u3")  # until Mon 7 Dec 09:00 UTC

    seen: list[set[str]] = []
    all_pairs: set[frozenset[str]] = set()
    for week in range(3):
        await community.advance(FIRST_ROUND + week * WEEK)
        round_ = (await stored_rounds(kindred))[-1]
        groups = await stored_groups(kindred, round_.id or 0)
        seen.append({user for group in groups for user in group})
        all_pairs |= pairs(groups)

    assert seen[0] == {"u0", "u1", "u4", "u5"}  # u2 skips, u3 paused
    assert seen[1] == {"u0", "u1", "u2", "u4", "u5"}  # the skip was for one round only
    assert seen[2] == {"u0", "u1", "u2", "u3", "u4", "u5"}  # the pause ended
    assert frozenset({"u0", "u1"}) not in all_pairs
    assert len(community.dms("u3", "Welcome back")) == 1
    # Blocks are private: u1 never hears about it.
    assert not any("block" in text.lower() for text in platform.texts(target="u1"))


async def test_a_skip_holds_for_the_scheduled_round_it_names_despite_a_run_now(
    community: Community, kindred: Kindred
) -> None:
    """Issue #18: a member who skipped "the round of Mon 30 Nov" was paired on Mon
    30 Nov because an admin's run-now before it used the skip up."""
    await program_with(community, SIX[:4])
    assert "sit out the round of Mon 30 Nov" in await community.say("coffee skip", "u0")
    assert "Round started" in await community.say("coffee run-now")
    await community.advance(FIRST_ROUND)
    await community.advance(FIRST_ROUND + WEEK)
    manual, skipped, after = await stored_rounds(kindred)
    assert manual.manual and skipped.occurrence == FIRST_ROUND

    async def paired(round_: CoffeeRound) -> set[str]:
        return {user for group in await stored_groups(kindred, round_.id or 0) for user in group}

    assert "u0" not in await paired(manual)
    assert "u0" not in await paired(skipped)
    assert "u0" in await paired(after)


async def test_rounds_avoid_repeats_and_rotate_the_trio(
    community: Community, kindred: Kindred, platform: FakePlatform, clock: Clock
) -> None:
    nine = [Person(f"p{index}", company=f"c{index}") for index in range(9)]
    await program_with(community, nine)
    met: set[frozenset[str]] = set()
    trios: list[frozenset[str]] = []
    for week in range(3):
        await community.advance(FIRST_ROUND + week * WEEK)
        round_ = (await stored_rounds(kindred))[-1]
        groups = await stored_groups(kindred, round_.id or 0)
        assert sorted(len(group) for group in groups) == [2, 2, 2, 3]
        assert round_.repeat_pairs == 0 and not (pairs(groups) & met)
        met |= pairs(groups)
        trios.append(frozenset(round_.in_trio))
    for previous, current in pairwise(trios):
        assert not previous & current


async def test_each_group_gets_a_starter_none_of_its_members_has_seen(
    community: Community, kindred: Kindred, platform: FakePlatform, clock: Clock
) -> None:
    await program_with(community, SIX[:4])
    for week in range(5):
        await community.advance(FIRST_ROUND + week * WEEK)
    async with kindred.db.sessions() as session:
        rows = (
            await session.execute(
                select(CoffeeGroupMember.user_id, CoffeeGroup.starter).join(
                    CoffeeGroup, CoffeeGroup.id == CoffeeGroupMember.group_id
                )
            )
        ).all()
    starters_by_member: dict[str, list[str]] = {}
    for user, starter in rows:
        starters_by_member.setdefault(user, []).append(starter)
    assert sorted(starters_by_member) == ["u0", "u1", "u2", "u3"]
    for starters in starters_by_member.values():
        assert len(starters) == 5
        assert len(set(starters)) == 5


async def test_reminder_and_follow_up_reach_groups_that_did_not_say_they_met(
    community: Community, kindred: Kindred, platform: FakePlatform, clock: Clock
) -> None:
    await program_with(community, SIX[:4])
    await community.advance(FIRST_ROUND)
    [round_] = await stored_rounds(kindred)
    first, second = await stored_groups(kindred, round_.id or 0)
    async with kindred.db.sessions() as session:
        group_ids = list(
            (
                await session.execute(
                    select(CoffeeGroup.id)
                    .where(CoffeeGroup.round_id == round_.id)
                    .order_by(CoffeeGroup.position)
                )
            ).scalars()
        )
    # The first group says "We met" on its intro, which keeps its text and buttons.
    [intro] = [
        sent for sent in platform.sent if set(platform.groups.get(sent.target, [])) == set(first)
    ]
    intro_reply = await community.press("coffee.met", first[0], str(group_ids[0]), intro.ref)
    assert intro_reply.update_original is None
    assert intro_reply.message is not None and intro_reply.message.text == "Thanks, noted: Met."

    # Half-way (Thursday 20:00 UTC): only the second group is reminded.
    await community.advance(FIRST_ROUND + timedelta(days=3, hours=11))
    assert not [t for t in platform.texts("post") if "Halfway" in t]
    await community.advance(FIRST_ROUND + timedelta(days=3, hours=12))
    reminders = [sent for sent in platform.sent if sent.kind == "post" and "Halfway" in sent.text]
    assert [set(platform.groups[sent.target]) for sent in reminders] == [set(second)]

    # A day before the next round: "Did you meet?" to the second group's members only.
    await community.advance(FIRST_ROUND + timedelta(days=6))
    for user in first:
        assert community.dms(user, "Did you meet") == []
    for user in second:
        [question] = [s for s in platform.sent if s.target == user and "Did you meet" in s.text]
        assert [b.label for b in question.message.buttons] == ["Met", "Not yet", "Didn't happen"]

    answer = await community.press("coffee.not_yet", second[0], str(group_ids[1]))
    assert answer.update_original is not None
    assert [b.label for b in answer.update_original.buttons] == ["Met"]
    answer = await community.press("coffee.didnt_happen", second[1], str(group_ids[1]))
    assert answer.update_original is not None and answer.update_original.buttons == ()
    assert "didn't happen" in plain(answer.update_original.text)

    stats = await community.say("coffee stats")
    assert "meet rate 50%" in stats
    # The last answer wins: the second group met after all.
    await community.press("coffee.met", second[0], str(group_ids[1]))
    stats = await community.say("coffee stats")
    assert "meet rate 100%" in stats
    assert "met 2/2 (2 answered)" in stats


async def test_members_who_ignore_follow_ups_are_paused_kindly(
    community: Community, kindred: Kindred, platform: FakePlatform, clock: Clock
) -> None:
    await program_with(community, SIX[:3])
    for week in range(3):
        round_time = FIRST_ROUND + week * WEEK
        await community.advance(round_time)
        await community.advance(round_time + timedelta(days=3, hours=12))
        await community.advance(round_time + timedelta(days=6))
        # Everyone but u1 answers "Did you meet?".
        for user in ("u0", "u2"):
            [question] = [s for s in platform.sent if s.target == user and s.message.buttons]
            await community.press("coffee.met", user, question.message.buttons[0].value)
            platform.sent.remove(question)
        assert (await membership(kindred, "u1")).ignored_followups == week
    # The fourth round closes the third: u1 ignored three follow-ups in a row.
    await community.advance(FIRST_ROUND + 3 * WEEK)
    [notice] = community.dms("u1", "paused")
    assert "/kindred coffee resume" in notice
    latest = (await stored_rounds(kindred))[-1]
    assert {user for g in await stored_groups(kindred, latest.id or 0) for user in g} == {
        "u0",
        "u2",
    }
    assert (await membership(kindred, "u0")).ignored_followups == 0

    assert "Welcome back" in await community.say("coffee resume", "u1")
    assert (await membership(kindred, "u1")).ignored_followups == 0
    await community.advance(FIRST_ROUND + 4 * WEEK)
    latest = (await stored_rounds(kindred))[-1]
    assert "u1" in {user for g in await stored_groups(kindred, latest.id or 0) for user in g}


async def test_a_timed_pause_resumes_once_with_a_message(
    community: Community, kindred: Kindred, platform: FakePlatform, clock: Clock
) -> None:
    await program_with(community, SIX[:2])
    await community.say("coffee pause 1", "u0")
    resume_at = clock.now + WEEK
    await community.advance(resume_at - timedelta(minutes=1))
    assert (await membership(kindred, "u0")).paused
    await community.advance(resume_at)
    await community.advance(resume_at + timedelta(minutes=1))
    assert not (await membership(kindred, "u0")).paused
    [message] = community.dms("u0", "Welcome back")
    assert "Mon 07 Dec, 09:00" in message


async def test_deactivated_accounts_and_bots_are_not_paired(
    community: Community, kindred: Kindred, platform: FakePlatform, clock: Clock
) -> None:
    await program_with(community, SIX[:4])
    platform.add_members(
        WORKSPACE,
        MemberInfo("u0", "U0"),
        MemberInfo("u1", "U1"),
        MemberInfo("u2", "U2", deactivated=True),
        MemberInfo("u3", "U3", is_bot=True),
    )
    await community.advance(FIRST_ROUND)
    [round_] = await stored_rounds(kindred)
    [group] = await stored_groups(kindred, round_.id or 0)
    assert set(group) == {"u0", "u1"}
    assert round_.members_checked
    async with kindred.db.sessions() as session:
        member = (await session.execute(select(Member).where(Member.user_id == "u2"))).scalar_one()
    assert member.deactivated


async def test_an_unreachable_platform_falls_back_to_stored_flags(
    community: Community,
    kindred: Kindred,
    platform: FakePlatform,
    clock: Clock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    await program_with(community, SIX[:3])
    async with kindred.db.transaction() as session:
        member = (await session.execute(select(Member).where(Member.user_id == "u2"))).scalar_one()
        member.deactivated = True

    async def unreachable(workspace_id: str, channel_id: str | None = None) -> list[MemberInfo]:
        raise TransientPlatformError("connection reset")

    monkeypatch.setattr(platform, "list_members", unreachable)
    await community.advance(FIRST_ROUND)
    [round_] = await stored_rounds(kindred)
    assert not round_.members_checked
    assert {u for g in await stored_groups(kindred, round_.id or 0) for u in g} == {"u0", "u1"}


async def test_a_failure_inside_the_round_leaves_nothing_and_is_retried(
    community: Community,
    kindred: Kindred,
    platform: FakePlatform,
    clock: Clock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    await program_with(community, SIX[:4])
    real = service.make_groups
    calls = 0

    def crash_once(*args: object, **kwargs: object) -> object:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("replica died mid-round")
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(service, "make_groups", crash_once)
    await community.advance(FIRST_ROUND)
    assert await stored_rounds(kindred) == []
    assert intros(platform) == []
    async with kindred.db.sessions() as session:
        unfinished = select(func.count()).where(JobClaim.finished_at.is_(None))
        assert (await session.execute(unfinished)).scalar() == 0
        coffee_claims = select(func.count()).where(JobClaim.job.startswith("coffee."))
        # The round's claim rolled back with the round, so the next tick may claim it.
        assert (await session.execute(coffee_claims)).scalar() == 0

    await community.advance(FIRST_ROUND + timedelta(minutes=1))
    [round_] = await stored_rounds(kindred)
    assert round_.occurrence == FIRST_ROUND
    assert len(intros(platform)) == 2


class HangingPlatform(FakePlatform):
    """Delivers `posts_before_hang` messages, then hangs like a process about to die."""

    def __init__(self, posts_before_hang: int, hangs_expected: int) -> None:
        super().__init__()
        self.posts_left: int | None = posts_before_hang
        self.hanging = 0
        self.hangs_expected = hangs_expected
        self.hung = asyncio.Event()
        self.opened = 0

    async def open_group(
        self, workspace_id: str, user_ids: Sequence[str], channel_id: str | None, title: str
    ) -> str:
        self.opened += 1
        return await super().open_group(workspace_id, user_ids, channel_id, title)

    async def post_channel(
        self, workspace_id: str, channel_id: str, message: Message
    ) -> MessageRef:
        if self.posts_left == 0:
            self.hanging += 1
            if self.hanging == self.hangs_expected:
                self.hung.set()
            await asyncio.Event().wait()
        if self.posts_left is not None:
            self.posts_left -= 1
        return await super().post_channel(workspace_id, channel_id, message)


async def test_a_crash_between_claim_and_delivery_resumes_without_re_pairing(
    community: Community, kindred: Kindred, platform: FakePlatform, clock: Clock
) -> None:
    await program_with(community, SIX)
    clock.now = FIRST_ROUND
    await kindred.scheduler.catch_up()  # the round commits; nothing delivered yet
    [round_] = await stored_rounds(kindred)
    groups = await stored_groups(kindred, round_.id or 0)

    # A dispatcher leases the three intros, opens their conversations, delivers one
    # and dies while posting the others.
    flaky = HangingPlatform(posts_before_hang=1, hangs_expected=2)
    crashed = OutboxDispatcher(
        kindred.db, {"fake": flaky}, owner="crashed", lease=timedelta(milliseconds=300)
    )
    task = asyncio.create_task(crashed.deliver_batch())
    async with asyncio.timeout(5):
        await flaky.hung.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert len(intros(flaky)) == 1

    # After the restart the round is not paired again, and this replica's dispatcher
    # finishes the intros once the dead one's lease lapses.
    flaky.posts_left = None
    kindred.attach(flaky)
    await kindred.scheduler.catch_up()
    await community.deliver()

    assert len(await stored_rounds(kindred)) == 1
    assert await stored_groups(kindred, round_.id or 0) == groups
    delivered = intros(flaky)
    assert sorted(sorted(members) for members, _ in delivered) == sorted(
        sorted(group) for group in groups
    )
    # One conversation per group: the retries posted into those already opened.
    assert flaky.opened == 3
    assert len({sent.target for sent in flaky.sent if "meet your" in sent.text}) == 3


async def test_run_now_and_the_scheduled_round_in_one_minute_make_one_round(
    community: Community, kindred: Kindred, platform: FakePlatform, clock: Clock
) -> None:
    await program_with(community, SIX[:4])
    clock.now = FIRST_ROUND
    assert "Round started" in await community.say("coffee run-now")
    await community.advance(FIRST_ROUND + timedelta(seconds=30))
    assert len(await stored_rounds(kindred)) == 1
    async with kindred.db.sessions() as session:
        program = (await session.execute(select(CoffeeProgram))).scalar_one()
    assert program.next_round_at == FIRST_ROUND + WEEK


async def test_a_round_missed_for_longer_than_the_catch_up_window_is_skipped(
    community: Community, kindred: Kindred, platform: FakePlatform, clock: Clock
) -> None:
    await program_with(community, SIX[:2])
    await community.advance(FIRST_ROUND + timedelta(hours=13))
    assert await stored_rounds(kindred) == []
    async with kindred.db.sessions() as session:
        program = (await session.execute(select(CoffeeProgram))).scalar_one()
    assert program.next_round_at == FIRST_ROUND + WEEK
    await community.advance(FIRST_ROUND + WEEK)
    assert len(await stored_rounds(kindred)) == 1


async def test_two_replicas_on_postgres_make_one_round(
    postgres_db: Database, postgres_schema: str, settings: Settings, clock: Clock
) -> None:
    platform = FakePlatform()
    second_db = Database(POSTGRES_URL, schema=postgres_schema)
    local = replace(settings, database_url=POSTGRES_URL)
    first = Kindred(local, postgres_db, clock=clock, instance="replica-a")
    second = Kindred(local, second_db, clock=clock, instance="replica-b")
    for replica in (first, second):
        replica.attach(platform)
    try:
        await program_with(Community(first, platform, clock), SIX)
        await second.start(dispatch=False, schedule=False)
        clock.now = FIRST_ROUND
        await asyncio.gather(first.scheduler.catch_up(), second.scheduler.catch_up())
        async with asyncio.timeout(10):
            await asyncio.gather(first.dispatcher.drain(), second.dispatcher.drain())
        rounds = await stored_rounds(first)
        assert len(rounds) == 1
        assert len(await stored_groups(first, rounds[0].id or 0)) == 3
        assert len(intros(platform)) == 3
        assert len(platform.groups) == 3
        async with postgres_db.sessions() as session:
            owners = (
                await session.execute(
                    select(JobClaim.owner).where(JobClaim.job.startswith("coffee.round"))
                )
            ).scalars()
            assert len(list(owners)) == 1
            count = select(func.count()).select_from(CoffeeRound)
            assert (await session.execute(count)).scalar() == 1
    finally:
        await first.stop()
        await second.stop()
        await second_db.dispose()


async def test_trios_wanted_but_two_members_make_a_pair(
    community: Community, kindred: Kindred, platform: FakePlatform, clock: Clock
) -> None:
    await program_with(community, SIX[:2], setup=BERLIN_MONDAYS + " group_size=3")
    await community.advance(FIRST_ROUND)
    [round_] = await stored_rounds(kindred)
    # Two members with trios wanted: one pair, nobody dropped.
    assert round_.groups == 1 and round_.left_out == []
