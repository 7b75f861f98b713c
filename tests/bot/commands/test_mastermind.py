"""Mastermind groups end to end on the shared driver: a cycle from setup to
forming to four sessions with the clock advanced (hot seat, updates, commitments
followed up), a silent group alerted, a leaver backfilled, end-of-cycle ratings;
and every refusal of bad input, which changes nothing."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from bot.core.app import Kindred
from bot.core.figures import Period
from bot.core.mentions import MEMBER_TEXT_END, MEMBER_TEXT_START
from bot.core.platform import Button, Identity, TransientPlatformError
from storage import mastermind as store
from storage.mastermind import MastermindApplication, MastermindCycle
from tests.bot.mastermind_helpers import (
    ADMIN,
    CHANNEL,
    COLLEAGUE,
    FIRST_SESSION,
    FORM_AT,
    SETUP,
    SIX,
    Person,
    add_people,
    application,
    cycle_with,
    formed,
    start,
    stored_entries,
    stored_groups,
)
from tests.driver import Community, contribution_words, plain
from tests.fakes.platform import FakePlatform
from tests.test_readme import EXAMPLE, REPO, normalised

WEEK = timedelta(weeks=1)
FOUR_SESSIONS = f"{SETUP} sessions=4"


def button(community: Community, action_id: str, target: str | None = None) -> Button:
    """The latest button with this action id sent to `target`."""
    found = [b for b in community.buttons(target=target) if b.action_id == action_id]
    assert found, f"no {action_id} button sent to {target}"
    return found[-1]


def group_posts(community: Community, channel: str) -> list[str]:
    return community.platform.texts("post", channel)


async def agenda_of(community: Community, number: int) -> str:
    await community.advance(FIRST_SESSION + (number - 1) * WEEK - timedelta(hours=24))
    return community.platform.sent[-1].text


async def followup_of(community: Community, number: int) -> None:
    await community.advance(FIRST_SESSION + (number - 1) * WEEK + timedelta(hours=3))


async def review_of(community: Community, number: int) -> None:
    await community.advance(FIRST_SESSION + (number - 1) * WEEK + timedelta(hours=24))


async def update_by_button(community: Community, user: str, text: str) -> str:
    form = await community.press(button(community, "mastermind.update"), user)
    assert form.modal is not None and form.modal.callback_id == "mastermind.update_submit"
    reply = await community.submit(form.modal.callback_id, form.modal.value, user, update=text)
    return plain(reply)


async def commit_by_button(community: Community, user: str, text: str) -> str:
    form = await community.press(button(community, "mastermind.commit"), user)
    assert form.modal is not None
    reply = await community.submit(form.modal.callback_id, form.modal.value, user, commitment=text)
    return plain(reply)


# --- the whole cycle -----------------------------------------------------------------


async def test_a_cycle_from_setup_to_ratings(community: Community, platform: FakePlatform) -> None:
    answer = await formed(community, [*SIX, COLLEAGUE], FOUR_SESSIONS)
    assert "Formed 1 group (6 members)" in answer and "1 on the waiting list" in answer
    # Colleagues never share a group: u7 (u1's colleague) waits for a seat.
    assert await stored_groups(community.kindred) == [("u1", "u2", "u3", "u4", "u5", "u6")]
    assert community.dms("u7", "waiting list")
    assert community.posts(CHANNEL, "1 mastermind group formed")
    # The group's own conversation, opened once, with everyone in it and pinged.
    assert platform.groups == {"G1": ["u1", "u2", "u3", "u4", "u5", "u6"]}
    (intro,) = community.sent("post", "G1")
    assert intro.message.mentions == ("u1", "u2", "u3", "u4", "u5", "u6")
    assert "Shared challenge: **burnout, support ops**" in intro.text
    # The common slot in each member's local time.
    assert "<@u1>: Scale support at company1" in intro.text
    assert "(first session Tue 1 Dec, 17:00 (Europe/Berlin))" in intro.text
    assert "(first session Tue 1 Dec, 11:00 (America/New_York))" in intro.text
    assert "Ground rules" in intro.text

    hot_seats = []
    committer = ""  # who wrote the playbook commitment at the previous session
    for number in (1, 2, 3, 4):
        agenda = await agenda_of(community, number)
        assert f"Session {number} of 4, tomorrow" in agenda
        hot_seats.append(agenda.split("Hot seat: <@")[1].split(">")[0])
        if number > 1:
            # Last time's commitments are asked about.
            assert "Last time you committed to:" in agenda
            line = f"<@{committer}>: write the session {number - 1} playbook"
            # A leaver's commitment is not asked about any more.
            assert (line in agenda) == (committer != "u1" or number == 2)
            await community.press(button(community, "mastermind.kept"), "u2")
        # Four of six post their update (two by the button's form, two by command).
        for user in ("u1", "u2") if number < 3 else ("u2", "u3"):
            assert "update for session" in await update_by_button(
                community, user, f"Shipped macros for session {number}\nNext: triage rota"
            )
        for user in ("u3", "u4") if number < 3 else ("u4", "u7"):
            assert "update for session" in await community.say(
                f"mastermind update Tried the rota for session {number} @everyone", user
            )
        await followup_of(community, number)
        followup = community.sent("post")[-1]
        if number < 4:
            assert "write your **commitment**" in followup.text
        attendees = ("u1", "u2", "u3", "u4") if number < 3 else ("u2", "u3", "u4", "u7")
        for user in attendees:
            await community.press(button(community, "mastermind.attended"), user)
        if number < 4:
            committer = attendees[0]
            assert "by next time you will" in await commit_by_button(
                community, committer, f"write the session {number} playbook"
            )
            assert "by next time you will" in await community.say(
                f"mastermind commit I will call two peers before session {number + 1}",
                attendees[1],
            )
        await review_of(community, number)
        if number == 2:
            # u1 leaves; the best waiting applicant (u7, now no colleague inside) is seated.
            assert "You've left group 1" in await community.say("mastermind leave", "u1")
            await community.deliver()
            assert await stored_groups(community.kindred) == [("u2", "u3", "u4", "u5", "u6", "u7")]
            assert platform.groups["G2"] == ["u2", "u3", "u4", "u5", "u6", "u7"]
            (welcome,) = community.sent("post", "G2")
            assert "welcome <@u7>" in welcome.text
            assert community.dms(ADMIN, "<@u7> from the waiting list took the seat")
            assert community.posts("G1", "<@u1> has left the group")

    # Fair rotation: nobody twice before everyone once (u1 left after their turn).
    assert hot_seats == ["u1", "u2", "u3", "u4"]
    # Updates are posted in the group, mention-safe.
    updates = [s for s in community.sent("post") if "Update from" in s.text]
    assert len(updates) == 16
    assert all(s.message.mentions == () for s in updates)
    pinging = next(s for s in updates if "@everyone" in s.text)
    assert f"{MEMBER_TEXT_START}Tried the rota" in pinging.message.text
    assert pinging.message.text.rstrip().endswith(MEMBER_TEXT_END)

    # u5 and u6 never did anything: after three weeks the organiser hears of it, once.
    silent = community.dms(ADMIN, "have been silent for 3 weeks")
    assert len(silent) == 1 and "<@u5>, <@u6>" in silent[0]

    # The end: every seated member is asked to rate; two do, one by command.
    for user in ("u2", "u3", "u4", "u5", "u6", "u7"):
        assert community.dms(user, "How was your mastermind")
    form = await community.press(button(community, "mastermind.rate", "u2"), "u2")
    assert form.modal is not None
    rated = await community.submit(
        form.modal.callback_id,
        form.modal.value,
        "u2",
        score="5",
        comment="Great",
        **{"continue": "yes"},
    )
    assert "5/5" in plain(rated) and "go on with the same group" in plain(rated)
    assert "4/5" in await community.say("mastermind rate 4 Useful, a bit short", "u3")

    stats = await community.say("mastermind stats")
    assert "Group 1** (6 members) · alive at week 8: yes · rating: 4.5/5 from 2, 1 want" in stats
    assert "Session 1: attended 4/6, updates 4/6, commitments 2 (followed up 2, kept 1)" in stats
    assert "Session 4: attended 4/6, updates 4/6, commitments 0" in stats
    async with community.kindred.db.sessions() as session:
        cycle = (await session.execute(select(MastermindCycle))).scalar_one()
    assert cycle.state == "ended"


async def test_the_commitment_is_asked_about_and_shows_in_status(community: Community) -> None:
    await formed(community, SIX)
    await agenda_of(community, 1)
    await followup_of(community, 1)
    await community.say("mastermind commit draft the escalation playbook", "u1")
    status = await community.say("mastermind status", "u1")
    assert "(session 1) draft the escalation playbook" in status
    assert "Next session: Tue 8 Dec, 17:00 (Europe/Berlin), session 2" in status
    agenda = await agenda_of(community, 2)
    assert "<@u1>: draft the escalation playbook" in agenda
    await community.press(button(community, "mastermind.not_kept"), "u1")
    assert "No open commitments." in await community.say("mastermind status", "u1")
    refused = await community.press(button(community, "mastermind.kept"), "u2")
    assert "You made no commitment at session 1" in plain(refused)


async def test_low_updates_and_attendance_two_sessions_running_alert_the_organiser(
    community: Community,
) -> None:
    await formed(community, SIX)
    for number in (1, 2):
        await agenda_of(community, number)
        await community.say(f"mastermind update Session {number} went fine", "u1")
        await followup_of(community, number)
        for user in ("u1", "u2", "u3"):  # 3 of 6 = 50 %, below 60 %
            await community.press(button(community, "mastermind.attended"), user)
        await review_of(community, number)
        alerts = community.dms(ADMIN, "is slipping")
        assert len(alerts) == (0 if number == 1 else 1)
    (alert,) = community.dms(ADMIN, "is slipping")
    assert "Session 1: attendance 50 %, updates 17 %" in alert
    assert "Session 2: attendance 50 %, updates 17 %" in alert


# --- forming -------------------------------------------------------------------------


async def test_preview_shows_the_groups_and_sends_nothing(
    community: Community, platform: FakePlatform
) -> None:
    await cycle_with(community, [*SIX, COLLEAGUE])
    await community.deliver()
    platform.sent.clear()
    preview = await community.say("mastermind preview")
    assert "Group 1**: <@u1>, <@u2>, <@u3>, <@u4>, <@u5>, <@u6>" in preview
    assert "Shared challenge: burnout, support ops" in preview
    assert "Common slot: Tue 16:00" in preview  # the organiser has no zone: UTC
    assert "Companies: company1, company2, company3" in preview
    assert "<@u7>: no group fitted without a colleague or a blocked pair" in preview
    await community.deliver()
    assert platform.sent == []
    assert await stored_groups(community.kindred) == []


async def test_colleagues_share_a_group_when_the_organiser_allows_it(
    community: Community,
) -> None:
    await formed(community, [*SIX, COLLEAGUE], f"{SETUP} colleagues=yes")
    assert await stored_groups(community.kindred) == [("u1", "u2", "u3", "u4", "u5", "u6", "u7")]


async def test_blocked_pairs_never_share_a_group(community: Community) -> None:
    """Six applicants would make one group of six; u2 blocked u1 (a private coffee
    block), so one of them waits and the group forms with five."""
    await cycle_with(community, SIX)
    assert "will never be paired" in await community.say("coffee block <@u1>", "u2")
    await community.advance(FORM_AT)
    assert "Formed 1 group (5 members)" in await community.say("mastermind form")
    (group,) = await stored_groups(community.kindred)
    assert len(group) == 5 and not {"u1", "u2"} <= set(group)


async def test_forming_twice_makes_one_set_of_groups(
    community: Community, platform: FakePlatform
) -> None:
    await formed(community, SIX)
    again = await community.say("mastermind form")
    assert "already formed" in again
    await community.deliver()
    assert len(await stored_groups(community.kindred)) == 1
    assert len([s for s in platform.sent if "Welcome to your mastermind" in s.text]) == 1


async def test_a_crash_mid_announcement_announces_each_group_once(
    community: Community, platform: FakePlatform
) -> None:
    twelve = [Person(f"p{index:02}", f"firm{index}") for index in range(12)]
    await cycle_with(community, twelve)
    await community.advance(FORM_AT)
    # The first two deliveries fail the way a dying replica or a flaky network does.
    platform.failures = [TransientPlatformError("boom"), TransientPlatformError("boom")]
    assert "Formed 2 groups" in await community.say("mastermind form")
    for _ in range(5):
        await community.advance(seconds=120)
    intros = [s for s in platform.sent if "Welcome to your mastermind" in s.text]
    assert len(intros) == 2
    assert sorted(tuple(platform.groups[s.target]) for s in intros) == sorted(
        await stored_groups(community.kindred)
    )


async def test_too_few_applicants_form_nothing(community: Community) -> None:
    await cycle_with(community, SIX[:3])
    await community.advance(FORM_AT)
    answer = await community.say("mastermind form")
    assert "No group can form yet: 3 applicants" in answer
    assert await stored_groups(community.kindred) == []
    async with community.kindred.db.sessions() as session:
        cycle = (await session.execute(select(MastermindCycle))).scalar_one()
    assert cycle.state == "open"


# --- bad input ----------------------------------------------------------------------


async def count(kindred: Kindred, model: type) -> int:
    async with kindred.db.sessions() as session:
        return (await session.execute(select(func.count()).select_from(model))).scalar_one()


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ("size=2", "A group of 2 is too small"),
        ("size=12", "A group of 12 is too big"),
        ("size=7-5", "above the largest"),
        ("size=lots", "like `size=5-7`"),
        ("length=5h", "30 minutes to 3 hours"),
        ("cadence=daily", "weekly"),
        ("sessions=1", "`sessions` must be at least 2"),
    ],
)
async def test_bad_setup_is_refused_and_changes_nothing(
    community: Community, options: str, expected: str
) -> None:
    await start(community)
    answer = await community.say(f"{SETUP} {options}")
    assert expected in answer
    assert await count(community.kindred, MastermindCycle) == 0


async def test_setup_refuses_a_past_deadline_and_a_second_cycle(community: Community) -> None:
    await start(community)
    assert "in the future" in await community.say('mastermind setup name="Old" deadline=2026-11-01')
    assert "deadline=2026-12-10" in await community.say(
        'mastermind setup name="Soon" deadline=tomorrow'
    )
    assert "is open" in await community.say(SETUP)
    assert "one mastermind cycle runs at a time" in await community.say(SETUP)
    assert await count(community.kindred, MastermindCycle) == 1


async def test_setup_is_for_organisers(community: Community) -> None:
    await start(community)
    answer = await community.say(SETUP, "u1")
    assert "admin" in answer.lower()
    assert await count(community.kindred, MastermindCycle) == 0


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ('challenge="Churn" tags="churn" slots="Mondays-ish"', "can't read `Mondays-ish`"),
        ('challenge="Churn" tags="churn" slots="Mon 18-17"', "ends before it starts"),
        ('challenge="Churn" tags="churn" slots="Mon 25:00-26:00"', "not a time of day"),
        ('challenge="  " tags="churn" slots="Mon 18-20"', "Also give `challenge=…`"),
        ('challenge="Churn" tags=", ," slots="Mon 18-20"', "at least one tag"),
        ('challenge="Churn" slots="Mon 18-20"', "Also give `tags=…`"),
        ('challenge="Churn" tags="churn" slots="Mon 18-20" seniority=boss', "seniority"),
    ],
)
async def test_bad_applications_are_refused_and_change_nothing(
    community: Community, fields: str, expected: str
) -> None:
    await start(community)
    await community.say(SETUP)
    answer = await community.say(f"mastermind apply {fields}", "u1")
    assert expected in answer
    assert await count(community.kindred, MastermindApplication) == 0


async def test_an_empty_challenge_in_the_form_is_refused(community: Community) -> None:
    await start(community)
    await community.say(SETUP)
    form = await community.command("mastermind apply", "u1")
    assert form.modal is not None and form.modal.callback_id == "mastermind.apply_submit"
    reply = await community.submit(
        form.modal.callback_id, user="u1", challenge=" ", tags="churn", slots="Mon 18-20"
    )
    assert "Tell the group which challenge" in plain(reply)
    reply = await community.submit(
        form.modal.callback_id, user="u1", challenge="Churn", tags="churn", slots="Mon 18-20"
    )
    assert "You've applied" in plain(reply)
    assert await count(community.kindred, MastermindApplication) == 1


async def test_member_text_in_refusals_cannot_ping(community: Community) -> None:
    await start(community)
    await community.say(SETUP)
    reply = await community.command(
        'mastermind apply challenge="x" tags="y" slots="<!channel> @everyone"', "u1"
    )
    assert reply.message is not None
    assert f"{MEMBER_TEXT_START}<!channel> @everyone" in reply.message.text


async def test_applying_needs_an_open_cycle(community: Community) -> None:
    await start(community)
    assert "No mastermind cycle is running" in await community.say(application(SIX[0]), "u1")
    await formed(community, SIX)
    assert "closed on" in await community.say(application(COLLEAGUE), "u7")


async def test_applying_again_changes_the_application(community: Community) -> None:
    await cycle_with(community, SIX[:1])
    again = await community.say(
        'mastermind apply challenge="Churn" tags="churn, nps" slots="weekdays 12-13"', "u1"
    )
    assert "Free each week: Mon 12:00-13:00, Tue 12:00-13:00" in again
    assert await count(community.kindred, MastermindApplication) == 1


async def test_updates_need_a_group_and_an_agenda(community: Community) -> None:
    await formed(community, SIX)
    assert "not in a group" in await community.say("mastermind update hi", "nobody")
    assert "first session is on Tue 1 Dec" in await community.say("mastermind update hi", "u1")
    await agenda_of(community, 1)
    assert "`text` is missing" in await community.say("mastermind update  ", "u1")
    reply = await update_by_button(community, "u1", "one\ntwo\nthree")
    assert "Keep your update to 2 lines" in reply
    assert [e.update_text for e in await stored_entries(community.kindred)] == [None] * 6
    await followup_of(community, 1)
    assert "Session 1 is over" in await community.say("mastermind update late news", "u1")
    assert "Session 1 is over" in await update_by_button(community, "u2", "late news")
    assert [e.update_text for e in await stored_entries(community.kindred)] == [None] * 6


async def test_leaving_the_waiting_list_and_leaving_twice(community: Community) -> None:
    await formed(community, [*SIX, COLLEAGUE])
    assert "withdrawn" in await community.say("mastermind leave", "u7")
    assert "no application or seat" in await community.say("mastermind leave", "u7")
    # With nobody waiting, a leaver's seat stays open and the organiser hears of it.
    await community.say("mastermind leave", "u6")
    await community.deliver()
    assert community.dms(ADMIN, "Nobody on the waiting list fits the seat")
    assert await stored_groups(community.kindred) == [("u1", "u2", "u3", "u4", "u5")]


async def test_status_before_and_after_forming(community: Community) -> None:
    await cycle_with(community, SIX[:1])
    assert "Groups form after" in await community.say("mastermind status", "u1")
    assert "You haven't applied" in await community.say("mastermind status", "u2")


async def test_the_home_tab_invites_then_shows_the_group(community: Community) -> None:
    await start(community)
    assert "Mastermind" not in plain(await community.open_home("u1"))
    await community.say(SETUP)
    await add_people(community.kindred, *SIX)
    home = await community.open_home("u1")
    assert "Applications are open until Sat 28 Nov, 00:59" in plain(home)
    assert home.message is not None
    apply_button = next(b for b in home.message.buttons if b.action_id == "mastermind.apply_open")
    form = await community.press(apply_button, "u1")
    assert form.modal is not None and form.modal.callback_id == "mastermind.apply_submit"
    for person in SIX:
        await community.say(application(person), person.user_id)
    assert "You've applied. Groups form after" in plain(await community.open_home("u1"))
    await community.advance(FORM_AT)
    await community.say("mastermind form")
    await agenda_of(community, 1)
    await followup_of(community, 1)
    await community.say("mastermind commit draft the playbook", "u1")
    home = plain(await community.open_home("u1"))
    assert "You're in group 1. Next session: Tue 8 Dec, 17:00." in home
    assert "Open commitment: 1" in home


# --- the feature's hooks -------------------------------------------------------------


async def test_figures_actions_and_privacy(community: Community, kindred: Kindred) -> None:
    await formed(community, SIX)
    await agenda_of(community, 1)
    await community.say("mastermind update Shipped macros", "u2")
    await followup_of(community, 1)
    for user in ("u1", "u2", "u3", "u4"):
        await community.press(button(community, "mastermind.attended"), user)
    await community.say("mastermind commit write the playbook", "u2")
    await agenda_of(community, 2)
    period = Period("fake", "W1", FORM_AT, FIRST_SESSION + WEEK)
    async with kindred.db.sessions() as session:
        figures = (await kindred.figures(session, period))["mastermind"]
        actions = (await kindred.member_actions(session, period))["mastermind"]
    assert figures["sessions_held"] == 1
    assert figures["attendance_rate"] == pytest.approx(4 / 6)
    assert figures["update_rate"] == pytest.approx(1 / 6)
    assert figures["commitments_made"] == 1
    assert figures["commitments_followed_up"] == 1
    assert figures["groups_alive_week_8"] == 0 and figures["alive_week_8_rate"] is None
    kinds = sorted((a.user_id, a.kind, a.contribution) for a in actions)
    assert ("u2", "mastermind_update", False) in kinds
    assert ("u2", "mastermind_commitment", False) in kinds
    # u1 had the hot seat: the others helped them by being there.
    assert ("u1", "mastermind_session", False) in kinds
    assert ("u2", "mastermind_session", True) in kinds
    helped = next(a for a in actions if a.contribution)
    assert contribution_words(helped.kind) == "supported a peer on a mastermind hot seat"

    assert "after its last session, on Tue 5 Jan" in await community.say(
        "mastermind rate 5 Great", "u2"
    )
    async with kindred.db.transaction() as session:
        await store.save_rating(session, 1, "u2", 5, "Great", False, FIRST_SESSION)
    me = Identity("fake", "W1", "u2")
    async with kindred.db.transaction() as session:
        stored = (await kindred.stored_about(session, me))["mastermind"]
        assert stored == [
            "1 mastermind application with your challenge and weekly slots",
            "1 mastermind session update",
            "1 mastermind commitment",
            "1 end-of-cycle mastermind rating",
        ]
        assert (await kindred.forget_feedback(session, me))["mastermind"] == 1
    async with kindred.db.sessions() as session:
        assert "1 end-of-cycle" not in str((await kindred.stored_about(session, me))["mastermind"])


# --- README ---------------------------------------------------------------------------


def test_readme_mastermind_example_is_what_the_console_prints(tmp_path: Path) -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Mastermind groups", 1)[1].split("\n## ", 1)[0]
    example = EXAMPLE.search(section)
    assert example is not None, "README's mastermind section lost its console example"
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "DISCORD_"))}
    environment["DATABASE_URL"] = f"sqlite+aiosqlite:///{tmp_path / 'kindred.db'}"
    environment.pop("KINDRED_LOG_LEVEL", None)
    result = subprocess.run(
        [sys.executable, "-m", "bot.core.cli", "run"],
        input=example.group("script"),
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=environment,
        timeout=60,
        check=True,
    )
    assert normalised(result.stdout) == normalised(example.group("output"))
