"""Mentorship end to end on the shared driver: offer, request, a round, approval, the
intro, check-ins on the right days, a no-fault ending, feedback, re-match, and bad
input that changes nothing."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from bot.core.app import Kindred
from bot.core.figures import Period
from bot.core.platform import Button, Identity, Reply
from storage.mentor import (
    MentorFeedback,
    MentorOffer,
    MentorProgram,
    MentorRequest,
    Mentorship,
)
from storage.models import OutboxMessage
from tests.conftest import Clock
from tests.driver import Community, plain
from tests.fakes.platform import FakePlatform

CHANNEL = "C-mentor"


@pytest.fixture
def community(kindred: Kindred, platform: FakePlatform, clock: Clock) -> Community:
    return Community(kindred, platform, clock, channel=CHANNEL, admin="alice", deliver_each=True)


@pytest.fixture
async def app(community: Community) -> Community:
    await community.kindred.start(dispatch=False, schedule=False)
    await community.say("mentor setup")
    await community.say("profile set company=Globex seniority=senior timezone=Europe/Berlin", "ana")
    await community.say(
        "profile set company=Initech seniority=junior timezone=Europe/London", "bob"
    )
    return community


async def offer(app: Community, user: str = "ana", **options: str) -> str:
    """`mentor offer` with NPS and hiring, 2 seats, 3 months unless `options` differ."""
    values = {"topics": '"NPS, hiring"', "capacity": "2", "duration": '"3 months"'} | options
    return await app.say("mentor offer " + " ".join(f"{k}={v}" for k, v in values.items()), user)


async def ask(app: Community, user: str = "bob", goal: str = "Run our first NPS survey") -> str:
    return await app.say(f'mentor request goal="{goal}" topics=nps success="A survey sent"', user)


def button(app: Community, user: str, action_id: str) -> Button:
    found = [b for b in app.buttons("dm", user) if b.action_id == action_id]
    assert found, f"no {action_id} button in {user}'s DMs"
    return found[-1]


async def count(app: Community, model: type, **where: object) -> int:
    async with app.kindred.db.sessions() as session:
        query = select(func.count()).select_from(model)
        for name, value in where.items():
            query = query.where(getattr(model, name) == value)
        return int((await session.execute(query)).scalar_one())


async def the_mentorship(app: Community) -> Mentorship:
    async with app.kindred.db.sessions() as session:
        return (
            (await session.execute(select(Mentorship).order_by(Mentorship.id.desc())))
            .scalars()
            .first()
        )  # type: ignore[union-attr,return-value]


def groups(app: Community) -> list[tuple[list[str], str]]:
    return [
        (app.platform.groups[sent.target], sent.text)
        for sent in app.platform.sent
        if sent.target in app.platform.groups
    ]


async def test_the_whole_lifecycle_with_approval(app: Community) -> None:
    posts = app.posts(CHANNEL, "Mentorship is starting")
    assert len(posts) == 1
    saved = await offer(app, cooldown="2")
    assert "Thank you for offering to mentor" in saved and "Up to 2 mentees at once" in saved
    assert "for 3 months by default" in saved
    asked = await ask(app)
    assert "Goal: Run our first NPS survey" in asked and "Topics: NPS" in asked

    ran = await app.say("mentor run-now")
    assert ran.startswith("Round run: 1 of 1 open request matched"), ran
    (proposal,) = app.dms("ana")
    assert "Would you mentor <@bob>?" in proposal
    assert "Goal: Run our first NPS survey" in proposal
    assert "both work on NPS" in proposal and "different companies" in proposal
    assert app.dms("bob") == [], "the mentee hears nothing before the mentor accepts"

    accepted = await app.press(button(app, "ana", "mentor.accept"), "ana")
    assert "Accepted: you're mentoring <@bob>" in plain(accepted)
    ((pair, intro),) = groups(app)
    assert sorted(pair) == ["ana", "bob"]
    assert "meet your mentee <@bob>" in intro and "A first agenda" in intro
    assert "Ending well" in intro and "/kindred mentor end" in intro
    again = await app.press(button(app, "ana", "mentor.accept"), "ana")
    assert "accepted this one already" in plain(again)
    assert len(groups(app)) == 1

    status = await app.say("mentor status", "ana")
    assert "1 of 2 seats left" in status and "Mentoring <@bob>" in status
    assert "Ratings show here once 3 mentees have rated you" in status

    # Check-ins on day 14 and day 42, not a day earlier.
    started = app.clock.now
    await app.advance(to=started + timedelta(days=13, hours=23))
    assert not app.dms("bob", "check-in")
    await app.advance(to=started + timedelta(days=14))
    assert app.dms("bob", "Day 14 check-in") and app.dms("ana", "Day 14 check-in")
    good = await app.press(button(app, "bob", "mentor.checkin_good"), "bob")
    assert "Day 14 check-in: going well" in plain(good)
    await app.advance(to=started + timedelta(days=41))
    assert not app.dms("bob", "Day 42")
    await app.advance(to=started + timedelta(days=42))
    assert len(app.dms("bob", "Day 42 check-in")) == 1

    # "Extend or close?" a week before the planned end (90 days); extending moves it.
    await app.advance(to=started + timedelta(days=83))
    (reminder,) = app.dms("bob", "planned to end")
    assert "Extend it by 4 weeks" in reminder
    extended = await app.press(button(app, "bob", "mentor.extend"), "bob")
    assert "Extended by 4 weeks" in plain(extended)
    await app.advance(to=started + timedelta(days=91))
    assert (await the_mentorship(app)).status == "active"

    ended = await app.say('mentor end reason:"moving teams"', "bob")
    assert ended.startswith("Ended your mentorship with <@ana>, no fault")
    assert "Your reason stays private" in ended
    (thanks,) = app.dms("ana", "has ended")
    assert (
        "moving teams" not in thanks
        and "no new mentee will be proposed to you for 2 weeks" in thanks
    )
    (note,) = app.dms("bob", "has ended")
    assert "Give feedback" in [b.label for b in app.buttons("dm", "bob")]
    assert "another mentor" not in note

    form = await app.press(button(app, "bob", "mentor.feedback"), "bob")
    assert form.modal is not None and form.modal.callback_id == "mentor.feedback_submit"
    refused = await app.submit(form.modal.callback_id, form.modal.value, "bob", rating="9")
    assert "from 1 to 5, not 9" in plain(refused)
    submitted = await app.submit(
        form.modal.callback_id,
        form.modal.value,
        "bob",
        rating="5",
        text="Great help",
        recommend="yes",
    )
    assert "Your feedback is private" in plain(submitted)
    twice = await app.press(button(app, "bob", "mentor.feedback"), "bob")
    assert "given feedback on this mentorship already" in plain(twice)
    assert await count(app, MentorFeedback) == 1

    stats = await app.say("mentor stats")
    assert "Ended: 1, completion rate 100%" in stats
    assert "Median rating: 5 (1 rating); would recommend their mentor: 100% of 1" in stats
    assert "5/5 for Ana: Great help" in stats and "moving teams" in stats
    status = await app.say("mentor status", "ana")
    assert "Great help" not in status and "cooling down until" in status
    assert "Only community admins" in await app.say("mentor stats", "ana")


async def test_check_ins_and_the_planned_end_run_without_approval(app: Community) -> None:
    await app.say("mentor setup approval=off")
    await offer(app, duration='"4 weeks"')
    await ask(app)
    await app.say("mentor run-now")
    assert not app.dms("ana", "Would you mentor"), "no approval: straight to the intro"
    ((pair, _),) = groups(app)
    assert sorted(pair) == ["ana", "bob"]
    started = app.clock.now
    # A 28-day mentorship: day 14 fits before the reminder, day 42 does not.
    await app.advance(to=started + timedelta(days=14))
    assert app.dms("ana", "Day 14 check-in")
    await app.advance(to=started + timedelta(days=21))
    assert app.dms("ana", "planned to end")
    await app.advance(to=started + timedelta(days=28))
    assert not app.dms("ana", "Day 42")
    mentorship = await the_mentorship(app)
    assert (mentorship.status, mentorship.outcome) == ("ended", "completed")
    assert app.dms("bob", "has ended") and app.dms("ana", "has ended")
    # The tick ran each event once, however often it looked.
    await app.advance(hours=1)
    assert len(app.dms("ana", "Day 14")) == 1 and len(app.dms("bob", "has ended")) == 1


async def test_a_decline_feeds_the_next_round_and_never_the_mentee(app: Community) -> None:
    await offer(app)
    await app.say('mentor offer topics="NPS" capacity=1', "carol")
    await ask(app)
    await app.say("mentor run-now")
    first = (await the_mentorship(app)).mentor_user_id
    declined = await app.press(button(app, first, "mentor.decline"), first)
    assert "The mentee isn't told" in plain(declined)
    assert app.dms("bob") == []
    await app.advance(minutes=2)
    await app.say("mentor run-now")
    second = (await the_mentorship(app)).mentor_user_id
    assert second != first, "a declined pair is not proposed again"
    # Unanswered for three days, the proposal expires and the request waits again.
    await app.advance(days=3)
    assert app.dms(second, "expired")
    assert await count(app, MentorRequest, status="open") == 1
    await app.advance(minutes=2)
    assert "0 of 1 open request matched" in await app.say("mentor run-now")


async def test_not_a_fit_offers_a_rematch_with_someone_else(app: Community) -> None:
    await app.say("mentor setup approval=off")
    await offer(app)
    await ask(app)
    await app.say("mentor run-now")
    await app.say("profile set company=Umbrella seniority=lead", "carol")
    await app.say('mentor offer topics="NPS" capacity=1', "carol")
    first = (await the_mentorship(app)).mentor_user_id
    await app.advance(days=14)
    not_fit = await app.press(button(app, "bob", "mentor.checkin_not_fit"), "bob")
    assert "closed this mentorship, no fault" in plain(not_fit)
    (note,) = app.dms("bob", "has ended")
    assert "Want another mentor?" in note
    rematched = await app.press(button(app, "bob", "mentor.rematch"), "bob")
    assert "Found you another mentor" in plain(rematched)
    latest = await the_mentorship(app)
    assert latest.status == "active" and latest.mentor_user_id != first
    again = await app.press(button(app, "bob", "mentor.rematch"), "bob")
    assert "on it already" in plain(again)
    # The re-match does not count against the monthly limit, and was no new request.
    assert await count(app, MentorRequest) == 2


async def test_bad_input_gets_a_clear_answer_and_changes_nothing(app: Community) -> None:
    refusals = {
        'mentor offer topics="NPS" capacity=0': "Capacity must be from 1 to 5 mentees, not 0",
        'mentor offer topics="NPS" capacity=9': "Capacity must be from 1 to 5 mentees, not 9",
        'mentor offer topics="NPS" duration=forever': "write it like `3 months`",
        'mentor offer topics="NPS" duration="2 years"': "from 2 weeks to 12 months",
        "mentor offer capacity=2": "Name at least one topic",
        'mentor offer topics="NPS" cooldown=13': "at most 12",
    }
    for command, answer in refusals.items():
        assert answer in await app.say(command, "ana"), command
    assert await count(app, MentorOffer) == 0
    await offer(app)
    long_goal = "x" * 5000
    refusals = {
        'mentor request goal="" topics=NPS': "The goal is empty",
        f'mentor request goal="{long_goal}" topics=NPS': "`goal` is 5000 characters; the limit",
        'mentor request goal="Grow" topics=astrology': "No mentor offers `astrology`",
        'mentor request goal="Grow" topics=hirng': "Did you mean hiring?",
        'mentor request goal="Grow"': "Name at least one topic",
        'mentor request goal="Grow" topics=NPS cadence=daily': "must be one of",
    }
    for command, answer in refusals.items():
        assert answer in await app.say(command, "bob"), command
    # The form path checks the same way.
    form = await app.submit("mentor.request_submit", "", "bob", goal="   ", topics="NPS")
    assert "The goal is empty" in plain(form)
    form = await app.submit("mentor.request_submit", "", "bob", goal=long_goal, topics="NPS")
    assert "The goal is 5,000 characters; keep it under 300" in plain(form)
    form = await app.submit("mentor.offer_submit", "", "ana", topics="NPS", capacity="9")
    assert "not 9" in plain(form)
    assert await count(app, MentorRequest) == 0
    async with app.kindred.db.sessions() as session:
        (stored,) = (await session.execute(select(MentorOffer))).scalars()
    assert stored.capacity == 2
    assert "Only community admins" in await app.say("mentor setup cadence=weekly", "bob")
    assert "Only community admins" in await app.say("mentor run-now", "bob")


async def test_forms_open_without_options_and_save_through_the_same_checks(app: Community) -> None:
    opened = await app.command("mentor offer", "ana")
    assert opened.modal is not None and len(opened.modal.fields) <= 5
    saved = await app.submit(
        opened.modal.callback_id, "", "ana", topics="NPS, hiring", seniority="lead", capacity="3"
    )
    assert "Up to 3 mentees at once" in plain(saved) and "Seniority: lead" in plain(saved)
    opened = await app.command("mentor request", "bob")
    assert opened.modal is not None
    saved = await app.submit(opened.modal.callback_id, "", "bob", goal="Hire well", topics="HIRING")
    assert "Topics: hiring" in plain(saved)
    assert "already have a request waiting" in await ask(app)


async def test_blocks_and_colleagues_are_never_matched(app: Community) -> None:
    await offer(app)
    await ask(app)
    await app.say("coffee block <@ana>", "bob")
    preview = await app.say("mentor preview")
    assert "0 of 1 open request matched" in preview and "every mentor is excluded" in preview
    await app.say("coffee unblock <@ana>", "bob")
    await app.say("profile set company=globex", "bob")
    assert "0 of 1 open request matched" in await app.say("mentor preview")
    await app.say("mentor setup same_company=on")
    preview = await app.say("mentor preview")
    assert "1 of 1 open request matched" in preview and "Bob → Ana" in preview
    assert app.dms("ana") == [], "a preview sends nothing"
    assert await count(app, Mentorship) == 0


async def test_a_mentor_is_never_proposed_beyond_capacity(app: Community) -> None:
    await offer(app)
    for mentee in ("bob", "carol", "dan"):
        await app.say("profile set seniority=junior", mentee)
        await ask(app, mentee, f"Grow as {mentee}")
    ran = await app.say("mentor run-now")
    assert ran.startswith("Round run: 2 of 3 open requests matched"), ran
    for accept in [b for b in app.buttons("dm", "ana") if b.action_id == "mentor.accept"]:
        await app.press(accept, "ana")
    await app.advance(minutes=2)
    assert "0 of 1 open request matched" in await app.say("mentor run-now")
    assert "0 of 2 seats left" in await app.say("mentor status", "ana")
    lowered = await app.say("mentor offer topics=NPS capacity=1", "ana")
    assert "can't go below 2" in lowered
    async with app.kindred.db.sessions() as session:
        (stored,) = (await session.execute(select(MentorOffer))).scalars()
    assert (stored.capacity, stored.load) == (2, 2)


async def test_a_repeated_delivery_acts_once(app: Community) -> None:
    await offer(app)
    await ask(app)
    await app.say("mentor run-now")
    accept = button(app, "ana", "mentor.accept")
    inbound = app.inbound("button", "ana", action_id=accept.action_id, value=accept.value)
    first = await app.handle(inbound)
    assert isinstance(first, Reply) and "Accepted" in plain(first)
    assert await app.handle(inbound) is None
    assert len(groups(app)) == 1
    async with app.kindred.db.sessions() as session:
        keys = [row.dedupe_key for row in (await session.execute(select(OutboxMessage))).scalars()]
    assert all(keys), "every outbound message carries an idempotency key"


async def test_pause_resume_and_scheduled_rounds(app: Community) -> None:
    created = await app.say("mentor setup cadence=weekly")
    assert "Rounds: weekly, next on" in created
    await offer(app)
    assert "Paused" in await app.say("mentor pause", "ana")
    await ask(app)
    await app.advance(days=7)
    assert app.dms("ana") == []
    await app.say("mentor resume", "ana")
    await app.advance(days=7)
    assert app.dms("ana", "Would you mentor <@bob>?")
    async with app.kindred.db.sessions() as session:
        program = (await session.execute(select(MentorProgram))).scalar_one()
    assert program.next_round_at == app.clock.now + timedelta(days=7)


async def test_ratings_show_to_the_mentor_only_from_three_mentees(app: Community) -> None:
    await app.say("mentor setup approval=off max_requests=1")
    await offer(app, capacity="3")
    for mentee in ("bob", "carol", "dan"):
        await app.say("profile set seniority=junior", mentee)
        await ask(app, mentee)
    await app.say("mentor run-now")
    for position, mentee in enumerate(("bob", "carol", "dan")):
        await app.say("mentor end", mentee)
        form = await app.press(button(app, mentee, "mentor.feedback"), mentee)
        assert form.modal is not None
        await app.submit(
            form.modal.callback_id, form.modal.value, mentee, rating=str(3 + position % 2)
        )
        status = await app.say("mentor status", "ana")
        if position < 2:
            assert "Ratings show here once 3 mentees" in status
    assert "Ratings: 3.3 on average from 3 mentees" in status


async def test_extending_twice_from_both_reminders_extends_once(app: Community) -> None:
    await app.say("mentor setup approval=off")
    await offer(app, duration='"4 weeks"')
    await ask(app)
    await app.say("mentor run-now")
    started = app.clock.now
    await app.advance(to=started + timedelta(days=21))
    first = await app.press(button(app, "bob", "mentor.extend"), "bob")
    assert "Extended by 4 weeks" in plain(first)
    second = await app.press(button(app, "ana", "mentor.extend"), "ana")
    assert "Already extended" in plain(second)
    mentorship = await the_mentorship(app)
    assert mentorship.planned_end_at == started + timedelta(days=56)
    # The new end gets its own reminder, and the mentorship closes at the new end.
    await app.advance(to=started + timedelta(days=49))
    assert len(app.dms("bob", "planned to end")) == 2
    await app.advance(to=started + timedelta(days=56))
    assert (await the_mentorship(app)).status == "ended"


async def test_a_mentor_ending_as_not_a_fit_and_a_withdrawn_request(app: Community) -> None:
    await app.say("mentor setup approval=off")
    await offer(app)
    await ask(app)
    await app.say("mentor run-now")
    ended = await app.say('mentor end why:not-a-fit reason:"different goals"', "ana")
    assert "no fault" in ended
    assert "Find me another mentor" in [b.label for b in app.buttons("dm", "bob")]
    assert "different goals" not in " ".join(app.dms("bob"))
    assert "no active mentorship and no waiting request" in await app.say("mentor end", "bob")
    await app.say("profile set seniority=junior", "carol")
    await ask(app, "carol")
    assert "Withdrew your mentor request" in await app.say("mentor end", "carol")
    assert await count(app, MentorRequest, status="withdrawn") == 1


async def test_member_words_in_refusals_cannot_ping(app: Community) -> None:
    await offer(app)
    reply = await app.command('mentor request goal="Grow" topics="@everyone"', "bob")
    assert reply.message is not None
    assert "No mentor offers" in reply.message.text
    assert "\ue000@everyone\ue001" in reply.message.text, "echoed as member text"


async def test_the_health_report_and_privacy_hooks_see_mentorship(app: Community) -> None:
    await app.say("mentor setup approval=off")
    await offer(app)
    await ask(app)
    await app.say("mentor run-now")
    assert "mentor" in (await app.say("help"))
    period = Period(
        app.platform.name,
        app.workspace,
        app.clock.now - timedelta(days=1),
        app.clock.now + timedelta(days=1),
    )
    async with app.kindred.db.sessions() as session:
        figures = await app.kindred.figures(session, period)
        actions = await app.kindred.member_actions(session, period)
        stored = await app.kindred.stored_about(
            session, Identity(app.platform.name, app.workspace, "bob")
        )
    assert figures["mentor"]["mentorships_started"] == 1 and figures["mentor"]["requests"] == 1
    assert {(a.user_id, a.kind) for a in actions["mentor"]} == {
        ("ana", "mentor_offer"),
        ("bob", "mentor_request"),
    }
    assert stored["mentor"][0].startswith("your mentor request of")


async def test_a_mentor_is_never_matched_off_topic(app: Community) -> None:
    await offer(app, topics="NPS")
    await app.say("profile set seniority=lead", "carol")
    await app.say("mentor offer topics=hiring capacity=1", "carol")
    await app.say("mentor pause", "carol")
    await app.say('mentor request goal="Hire my first team" topics=hiring', "bob")
    preview = await app.say("mentor preview")
    assert "0 of 1 open request matched" in preview
    assert "no mentor with a free seat works on their topics" in preview
    await app.say("mentor resume", "carol")
    assert "Bob → Carol" in await app.say("mentor preview")


async def test_a_seat_goes_to_the_mentee_who_shares_its_topic_in_the_same_round(
    app: Community,
) -> None:
    """Carol's only topic is onboarding, and she fits dave better than bob on seniority.
    Were dave (churn only) given her seat, it would be lost to an off-topic pair; the
    round gives it to bob, who also wants onboarding, and dave gets ana for churn."""
    await app.say("mentor setup approval=off")
    zone = "timezone=Europe/Berlin"
    await app.say(f"profile set company=Globex {zone}", "ana")
    await app.say(f"profile set company=Hooli {zone}", "carol")
    await app.say(f"profile set company=Initech seniority=mid {zone}", "bob")
    await app.say(f"profile set company=Umbrella seniority=student {zone}", "dave")
    await offer(app, topics="churn", capacity="1", seniority="senior")
    await offer(app, "carol", topics="onboarding", capacity="1", seniority="junior")
    await app.say('mentor request goal="Keep customers" topics="churn, onboarding"', "bob")
    await app.say('mentor request goal="Cut churn" topics=churn', "dave")
    ran = await app.say("mentor run-now")
    assert ran.startswith("Round run: 2 of 2 open requests matched"), ran
    async with app.kindred.db.sessions() as session:
        pairs = (await session.execute(select(Mentorship))).scalars().all()
    assert sorted((p.mentee_user_id, p.mentor_user_id) for p in pairs) == [
        ("bob", "carol"),
        ("dave", "ana"),
    ]


async def test_leaving_the_community_ends_what_was_running(app: Community) -> None:
    await app.say("mentor setup approval=off")
    await offer(app)
    await ask(app)
    await app.say("mentor run-now")
    await app.say("profile set seniority=junior", "carol")
    await ask(app, "carol", "Grow as carol")
    await app.leave("ana", channel="C-somewhere")
    assert (await the_mentorship(app)).status == "active", "a channel leave changes nothing"
    await app.leave("ana")
    mentorships = await app.say("mentor stats")
    assert "Active mentorships: 0" in mentorships
    (note,) = app.dms("bob", "has ended")
    assert "They have left the community" in note
    assert not app.dms("ana", "has ended"), "the one who left gets no note"
    async with app.kindred.db.sessions() as session:
        (stored,) = (await session.execute(select(MentorOffer))).scalars()
    assert stored.paused and stored.load == 0
    await app.leave("carol")
    assert await count(app, MentorRequest, status="withdrawn") == 1
    await app.advance(days=60)
    assert not app.dms("ana", "check-in") and not app.dms("bob", "check-in")


async def test_the_home_tab_shows_mentorship_and_opens_the_forms(app: Community) -> None:
    home = await app.open_home("ana")
    assert "Guide a newer member" in plain(home)
    offer_button = next(b for b in home.message.buttons if b.action_id == "mentor.offer_form")  # type: ignore[union-attr]
    opened = await app.press(offer_button, "ana")
    assert opened.modal is not None and opened.modal.callback_id == "mentor.offer_submit"
    await app.say("mentor setup approval=off")
    await offer(app)
    await ask(app)
    await app.say("mentor run-now")
    assert "You mentor 1: <@bob>" in plain(await app.open_home("ana"))
    home = plain(await app.open_home("bob"))
    assert "Your mentor: <@ana>" in home
    assert "Update my offer" in [b.label for b in (await app.open_home("ana")).message.buttons]  # type: ignore[union-attr]
