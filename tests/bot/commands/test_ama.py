from __future__ import annotations

import io
import json
import uuid
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import select

from bot.adapters.console import ConsoleCommunity, ConsoleSession
from bot.core.app import Kindred
from bot.core.mentions import MEMBER_TEXT_START, escape_for_slack, render
from bot.core.platform import Button, Message, MessageRef, Reply
from storage.ama import Ama, AmaQuestion
from storage.models import OutboxMessage
from tests.bot.adapters.slack_harness import ADMIN, MEMBER, populate, running_slack, slack_settings
from tests.conftest import Clock
from tests.driver import Community, plain
from tests.fakes.discord_harness import discord_settings_for, serving
from tests.fakes.discord_server import Channel, FakeDiscord, Member
from tests.fakes.platform import FakePlatform, Sent
from tests.fakes.slack import FakeSlack, block_action_payload, interactive, view_submission

CHANNEL = "C-ama"
MODS = "C-mods"
SCHEDULE = 'ama schedule host:<@ana> title:"Scaling support" at:"2026-11-24 15:00"'


@dataclass
class LinkingPlatform(FakePlatform):
    """The fake platform, with permalinks like Slack's and Discord's."""

    async def post_channel(
        self, workspace_id: str, channel_id: str, message: Message
    ) -> MessageRef:
        ref = await super().post_channel(workspace_id, channel_id, message)
        return replace(ref, permalink=f"https://chat.example/{channel_id}/{ref.message_id}")


@pytest.fixture
def platform() -> FakePlatform:
    linking = LinkingPlatform()
    linking.admins.add("alice")
    return linking


@pytest.fixture
def community(kindred: Kindred, platform: FakePlatform, clock: Clock) -> Community:
    """Alice is the admin; commands are typed in the AMA channel."""
    return ama_community(kindred, platform, clock)


def ama_community(kindred: Kindred, platform: FakePlatform, clock: Clock) -> Community:
    return Community(kindred, platform, clock, channel=CHANNEL, admin="alice", deliver_each=True)


@pytest.fixture
async def app(community: Community) -> Community:
    await community.kindred.start(dispatch=False, schedule=False)
    return community


def seen(shown: Sent | Reply | Message | str | None) -> str:
    """What a reader sees, without the bold markers."""
    if isinstance(shown, Sent):
        shown = shown.message
    return plain(shown).replace("**", "")


def button(message: Message | None, action_id: str) -> Button:
    assert message is not None
    found = [b for b in message.buttons if b.action_id == action_id]
    assert found, f"no {action_id} button in {message.buttons}"
    return found[0]


async def stored_ama(community: Community, ama_id: int = 1) -> Ama:
    async with community.kindred.db.sessions() as session:
        return (await session.execute(select(Ama).where(Ama.id == ama_id))).scalar_one()


async def stored_questions(community: Community) -> list[AmaQuestion]:
    async with community.kindred.db.sessions() as session:
        return list((await session.execute(select(AmaQuestion).order_by(AmaQuestion.id))).scalars())


async def ask(community: Community, user: str, question: str, **options: Any) -> str:
    named = " ".join(f"{name}={value}" for name, value in options.items())
    return seen(await community.say(f"ama ask {named} {question}".replace("  ", " "), user))


async def test_schedule_validates_and_announces_with_the_host_bio(
    app: Community, platform: FakePlatform
) -> None:
    await app.say(
        'profile set role="VP Support" company=Globex bio="Built a 200-person team"', "ana"
    )
    assert "Only community admins" in seen(await app.say(SCHEDULE, "bob"))
    refusals = {
        'at:"next week"': 'Use `at:"2026-11-30 15:00"` (time zone UTC)',
        'at:"2026-11-22 15:00"': "is in the past",
        'at:"2026-11-24 15:00" duration:5h': "at most 4 hours",
        'at:"2026-11-24 15:00" moderated:on': "add `mod_channel:#ama-mods`",
        'at:"2026-11-24 15:00" mod_channel:<#C-ama>': "needs its own private channel",
        'at:"2026-11-24 15:00" max_questions:11': "at most 10",
        'at:"2026-11-24 15:00" announce:"2026-11-25 10:00"': "must come before the start",
    }
    for options, message in refusals.items():
        text = seen(await app.say(f'ama schedule host:<@ana> title:"Scaling support" {options}'))
        assert message in text, text
    await app.say("profile set timezone=Europe/Paris")
    text = seen(await app.say(SCHEDULE + " duration:45m"))
    assert text.startswith(
        "Scheduled AMA #1: Scaling support with <@ana>, Tue 24 Nov 2026, 15:00–15:45 "
        "(Europe/Paris), in <#C-ama>."
    )
    assert "Reminders go out a day before and 15 minutes before." in text
    assert "Tip:" not in text
    ama = await stored_ama(app)
    assert (ama.starts_at, ama.state) == (datetime(2026, 11, 24, 14, 0, tzinfo=UTC), "collecting")
    announcement = app.last("post", CHANNEL)
    assert "AMA #1: Scaling support" in seen(announcement)
    assert "VP Support at Globex" in seen(announcement)
    assert "> Built a 200-person team" in seen(announcement)
    assert announcement.message.mentions == ("ana",)
    assert button(announcement.message, "ama.ask").value == "1"
    clash = seen(await app.say('ama schedule host:<@bob> title:Other at:"2026-11-24 15:30"'))
    assert "<#C-ama> already has AMA #1 (Scaling support)" in clash
    assert "Tip: the announcement shows the host's bio" in seen(
        await app.say('ama schedule host:<@bob> title:Other at:"2026-11-24 15:30" channel:<#C-b>')
    )


async def test_a_later_announcement_opens_questions_at_its_time(
    app: Community, platform: FakePlatform, clock: Clock
) -> None:
    text = seen(await app.say(SCHEDULE + ' announce:"2026-11-23 12:00"'))
    assert "I'll announce it and open questions on Mon 23 Nov 2026, 12:00 (UTC)." in text
    assert platform.sent == []
    refused = await ask(app, "bob", "How do you hire for empathy?")
    assert refused == "AMA #1 opens for questions on Mon 23 Nov 2026, 12:00 (UTC)."
    await app.advance(datetime(2026, 11, 23, 12, 0, tzinfo=UTC))
    assert "AMA #1: Scaling support" in seen(app.last("post", CHANNEL))
    assert (await stored_ama(app)).state == "collecting"
    assert "Posted your question as Q1" in await ask(app, "bob", "How do you hire for empathy?")


async def test_question_limits_duplicates_and_near_duplicates(
    app: Community, platform: FakePlatform
) -> None:
    await app.say(SCHEDULE + " max_questions:2")
    form = await app.command("ama ask", "bob")
    assert form.modal is not None and (form.modal.callback_id, form.modal.value) == (
        "ama.ask_submit",
        "1",
    )
    empty = await app.submit("ama.ask_submit", "1", "bob", question="  ")
    assert empty.message is not None and "Your question is empty" in seen(empty.message.text)
    assert "the limit is 300" in await ask(app, "bob", "why " * 80)
    assert "Anonymous should be yes or no" in seen(
        (
            await app.submit("ama.ask_submit", "1", "bob", question="x" * 20, anonymous="?")
        ).message.text  # type: ignore[union-attr]
    )
    first = await ask(app, "bob", "What's Bob's view on scaling support teams?")
    assert first.startswith("Posted your question as Q1 in <#C-ama>.")
    assert "Posted your question as Q2" in await ask(app, "bob", "How do you measure CSAT?")
    limit = await ask(app, "bob", "Which tools do you use for QA?")
    assert "You already have 2 open questions in AMA #1 (Q1, Q2); the limit is 2." in limit
    assert "You already asked that as Q1." in await ask(
        app, "bob", "what's bob's view on scaling support teams"
    )

    exact = await app.command("ama ask How do you measure CSAT", "carol")
    assert exact.message is not None and "already asked as Q2 (▲ 0)" in seen(exact.message.text)
    voted = await app.press(button(exact.message, "ama.upvote"), "carol")
    assert voted.message is not None and "Upvoted Q2 (now 1 vote)" in seen(voted.message.text)

    offer = await app.command("ama ask What is Bob's view on scaling a support team?", "carol")
    assert offer.message is not None
    assert "A similar question was already asked as Q1 (▲ 0)" in seen(offer.message.text)
    anyway = await app.press(button(offer.message, "ama.ask_anyway"), "carol")
    assert anyway.message is not None and "as Q3" in seen(anyway.message.text)
    again = await app.press(button(offer.message, "ama.ask_anyway"), "carol")
    assert again.message is not None and "You already posted that question as Q3" in seen(
        again.message.text
    )
    assert "What is Bob's view on scaling a support team?" in seen(app.last("post"))

    offer = await app.command("ama ask How do you measure your CSAT?", "dan")
    assert offer.message is not None
    instead = await app.press(button(offer.message, "ama.upvote_instead"), "dan")
    assert instead.message is not None and "Upvoted Q2 (now 2 votes)" in seen(instead.message.text)
    # Someone else's button is not yours to press.
    stolen = await app.press(button(offer.message, "ama.ask_anyway"), "erin")
    assert stolen.message is not None and "That suggestion has expired" in seen(stolen.message.text)
    statuses = [(q.number, q.status) for q in await stored_questions(app)]
    assert statuses == [(1, "approved"), (2, "approved"), (3, "approved")]


async def test_votes_toggle_and_edit_the_post_once_per_burst(
    app: Community, platform: FakePlatform
) -> None:
    await app.say(SCHEDULE)
    await ask(app, "bob", "How do you scale support teams?")
    post = app.last("post", CHANNEL)
    upvote = button(post.message, "ama.upvote")
    assert upvote.label == "▲ Upvote (0)"
    own = await app.press(upvote, "bob", message=post.ref)
    assert own.message is not None and "your own question" in seen(own.message.text)

    reply = await app.press(upvote, "carol", message=post.ref)
    assert reply.message is not None and seen(reply.message.text) == "▲ Upvoted Q1 (now 1 vote)."
    assert button(app.last("update").message, "ama.upvote").label == "▲ Upvote (1)"
    reply = await app.press(upvote, "carol", message=post.ref)
    assert reply.message is not None
    assert seen(reply.message.text) == "Removed your vote from Q1 (now 0 votes)."
    assert button(app.last("update").message, "ama.upvote").label == "▲ Upvote (0)"

    updates = len(platform.texts("update"))
    app.deliver_each = False
    for voter in ("dan", "erin", "farid", "carol"):
        await app.press(upvote, voter, message=post.ref)
    await app.deliver()
    assert len(platform.texts("update")) == updates + 1
    assert button(app.last("update").message, "ama.upvote").label == "▲ Upvote (4)"
    queue = await app.command("ama queue", "carol")
    assert queue.message is not None
    assert "1. Q1 (▲ 4, you voted) · <@bob>: How do you scale support teams?" in seen(
        seen(queue.message.text)
    )
    assert button(queue.message, "ama.upvote").label == "Unvote Q1"


async def test_member_text_is_mention_safe_when_reposted(
    app: Community, platform: FakePlatform
) -> None:
    await app.say(SCHEDULE)
    await ask(app, "bob", "<!channel> @everyone how do you scale <@U0> support?")
    post = app.last("post", CHANNEL)
    assert MEMBER_TEXT_START in post.message.text
    slack = render(post.message.text, escape_for_slack)
    assert "<!channel>" not in slack and "&lt;!channel&gt;" in slack
    assert post.message.mentions == ()


async def test_moderation_queue_approve_and_reject_with_a_reason(
    app: Community, platform: FakePlatform
) -> None:
    await app.say(SCHEDULE + " moderated:on mod_channel:<#C-mods> max_questions:1")
    text = await ask(app, "bob", "How do you onboard new agents?", anonymous="yes")
    assert "Thanks! Your anonymous question is Q1. Moderators review it" in text
    review = app.last("post", MODS)
    assert "Q1 for AMA #1 (Scaling support) from <@bob>, asked anonymously" in seen(review)
    assert [p for p in platform.sent if p.target == CHANNEL and "onboard" in seen(p)] == []

    approve = button(review.message, "ama.approve")
    denied = await app.press(approve, "carol", message=review.ref)
    assert denied.message is not None and "Only community admins" in seen(denied.message.text)
    approved = await app.press(approve, "alice", message=review.ref)
    assert approved.update_original is not None
    assert "Approved by <@alice>" in seen(approved.update_original.text)
    assert approved.update_original.buttons == ()
    shown = app.last("post", CHANNEL)
    assert seen(shown) == "Q1 · Anonymous\n> How do you onboard new agents?"
    twice = await app.press(approve, "alice", message=review.ref)
    assert twice.message is not None
    assert "Q1 was already moderated by <@alice>: it is open for votes." in seen(
        seen(twice.message.text)
    )

    await ask(app, "carol", "Is outsourcing tier 1 ever worth it?")
    review = app.last("post", MODS)
    form = await app.press(button(review.message, "ama.reject"), "alice", message=review.ref)
    assert form.modal is not None and form.modal.callback_id == "ama.reject_submit"
    done = await app.submit(
        "ama.reject_submit", form.modal.value, "alice", reason="Off topic  for this AMA"
    )
    assert (
        done.message is not None
        and seen(done.message.text) == "Rejected Q2; I've told the asker privately."
    )
    note = seen(app.last("dm", "carol"))
    assert "was not approved" in note and "Reason: Off topic for this AMA" in note
    assert "Rejected by <@alice>: Off topic for this AMA." in seen(app.last("update", MODS))
    # A rejected question frees the member's slot (limit 1).
    assert "Thanks! Your question is Q3" in await ask(
        app, "carol", "Which KPIs matter most to execs?"
    )


async def test_which_ama_a_command_means(app: Community) -> None:
    assert "There's no AMA open right now" in await ask(app, "bob", "How do you scale support?")
    await app.say(SCHEDULE)
    await app.say(
        'ama schedule host:<@erin> title:"CX leadership" at:"2026-11-25 15:00"', channel="C-b"
    )
    many = seen(await app.say("ama queue", "bob", channel="C-other"))
    assert "Several AMAs are open; say which one with `ama=<id>`" in many
    assert "• `ama=2`: CX leadership in <#C-b>" in many
    assert "AMA #2: CX leadership" in seen(await app.say("ama queue", "bob", channel="C-b"))
    assert "AMA #1: Scaling support" in seen(await app.say("ama queue ama=1", "bob", channel="C-b"))
    assert "There is no AMA #9 here." in seen(await app.say("ama queue ama=9", "bob"))
    assert "Only the host (<@erin>) or an admin can close the AMA." in seen(
        await app.say("ama close", "bob", channel="C-b")
    )
    assert "Cancelled" not in seen(await app.say("ama close", "erin", channel="C-b"))
    assert "AMA #1: Scaling support" in seen(await app.say("ama queue", "bob", channel="C-other"))
    home = await app.handle(app.inbound("home_opened", "bob"))
    assert (
        home is not None
        and home.message is not None
        and "AMA #1: Scaling support with <@ana>" in seen(seen(home.message.text))
    )
    assert button(home.message, "ama.ask").value == "1"


async def test_live_session_recap_and_export(
    app: Community, platform: FakePlatform, clock: Clock
) -> None:
    await app.say(SCHEDULE + " duration:45m")
    await ask(app, "bob", "How do you scale support teams?")
    await ask(app, "carol", "What's your favourite CX metric?", anonymous="yes")
    await ask(app, "dan", "How do you report churn to the board?")
    for voter in ("erin", "farid"):
        post = next(p for p in platform.sent if "favourite" in seen(p))
        await app.press(button(post.message, "ama.upvote"), voter, message=post.ref)
    await app.press(button(platform.sent[1].message, "ama.upvote"), "erin")

    await app.advance(datetime(2026, 11, 24, 15, 0, tzinfo=UTC))
    assert (await stored_ama(app)).state == "live"
    assert "AMA #1 is live: Scaling support with <@ana>, until 15:45 (UTC)" in seen(
        app.last("post", CHANNEL)
    )
    panel = app.last("dm", "ana")
    assert "3 questions are waiting." in seen(panel)
    next_button = button(panel.message, "ama.next")
    refused = await app.press(next_button, "bob", message=panel.ref)
    assert refused.message is not None and "Only the host (<@ana>) or an admin" in seen(
        seen(refused.message.text)
    )

    # Buttons carry no display name here, as on the old Slack payloads: the export
    # below names the host by the handle she was scheduled with.
    shown = await app.press(next_button, "ana", message=panel.ref, user_name="")
    assert shown.update_original is not None
    live_text = seen(shown.update_original.text)
    assert "Posted Q2 in <#C-ama>." in live_text
    assert "Now answering Q2 (▲ 2) from Anonymous" in live_text
    parent = next(p for p in platform.sent if seen(p).startswith("🎙️ Q2"))
    assert seen(parent) == "🎙️ Q2 (▲ 2) · asked by Anonymous\n> What's your favourite CX metric?"
    prompt = app.last("thread_reply", CHANNEL)
    assert prompt.message.mentions == ("ana",)
    async with app.kindred.db.sessions() as session:
        thread = (
            await session.execute(select(OutboxMessage).where(OutboxMessage.kind == "thread_reply"))
        ).scalar_one()
    assert thread.sent_ref is not None and thread.sent_ref["thread_id"] == parent.ref.message_id
    assert "being answered now" in seen(app.last("update", CHANNEL))
    still = await app.press(next_button, "ana", message=panel.ref, user_name="")
    assert still.update_original is not None
    assert "Q2 is still open: mark it Answered or Skip first." in seen(still.update_original.text)

    # Members keep asking and voting while the AMA is live.
    assert "as Q4" in await ask(app, "erin", "How do you keep agents motivated?")
    answered = await app.press(button(shown.update_original, "ama.answered"), "ana", user_name="")
    assert answered.update_original is not None
    assert "✅ Marked Q2 answered." in seen(answered.update_original.text)
    assert "✅ answered" in seen(app.last("update", CHANNEL))
    again = await app.press(button(shown.update_original, "ama.answered"), "ana", user_name="")
    assert again.message is not None and "Q2 isn't being answered: it is already answered." in (
        seen(again.message.text)
    )
    second = await app.press(button(answered.update_original, "ama.next"), "ana", user_name="")
    assert second.update_original is not None and "Now answering Q1" in seen(
        seen(second.update_original.text)
    )
    skipped = await app.press(button(second.update_original, "ama.skip"), "ana", user_name="")
    assert skipped.update_original is not None
    assert "⏭️ Skipped Q1." in seen(skipped.update_original.text)
    assert "2 questions are waiting." in seen(skipped.update_original.text)

    closed = await app.press(button(skipped.update_original, "ama.close"), "ana", user_name="")
    assert closed.update_original is not None
    assert seen(closed.update_original.text).startswith("Closed AMA #1. The recap is in <#C-ama>")
    recap = app.last("post", CHANNEL)
    assert seen(recap).startswith(
        "📝 AMA #1 recap: Scaling support with <@ana>\n1 answered · 4 asked · 3 votes"
    )
    assert (
        f"• [Q2](https://chat.example/C-ama/{parent.ref.message_id}) (▲ 2) · Anonymous: "
        "What's your favourite CX metric?"
    ) in seen(recap)
    assert "3 questions stay unanswered; <@ana> has the list." in seen(recap)
    unanswered = seen(app.last("dm", "ana"))
    assert "3 questions were not answered" in unanswered
    assert unanswered.index("Q1 (▲ 1) · <@bob>") < unanswered.index("Q3 (▲ 0) · <@dan>")
    assert "already closed" in seen(await app.say("ama close ama=1", "ana"))
    assert "has closed; the votes are final" in seen(
        (await app.press(button(platform.sent[1].message, "ama.upvote"), "dan")).message.text  # type: ignore[union-attr]
    )

    assert (
        seen(await app.say("ama export", "bob"))
        == "I've sent you AMA #1 as a Markdown file in a DM."
    )
    export = app.last("dm", "bob").message.attachment
    assert export is not None and export.filename == "ama-1.md"
    document = export.content.decode("utf-8")
    assert document.startswith("# AMA #1: Scaling support\n\n- Host: ana\n")
    assert "### Q2 · ▲ 2 · Anonymous\n\n> What's your favourite CX metric?\n\n" in document
    assert f"Answer thread: https://chat.example/C-ama/{parent.ref.message_id}" in document
    assert "### Q1 · ▲ 1 · Bob · skipped" in document
    assert MEMBER_TEXT_START not in document


async def test_closing_with_a_question_live_leaves_it_unanswered(
    app: Community, platform: FakePlatform
) -> None:
    await app.say(SCHEDULE)
    await ask(app, "bob", "How do you scale support teams?")
    await ask(app, "carol", "Which KPIs matter most to executives?")
    await app.advance(datetime(2026, 11, 24, 15, 0, tzinfo=UTC))
    panel = app.last("dm", "ana")
    live = await app.press(button(panel.message, "ama.next"), "ana", message=panel.ref)
    assert "Now answering Q1" in seen(live.update_original)
    assert "Closed AMA #1." in seen(await app.say("ama close", "ana"))
    recap = seen(app.last("post", CHANNEL))
    assert "0 answered · 2 asked" in recap
    assert "2 questions stay unanswered" in recap
    unanswered = seen(app.last("dm", "ana"))
    assert "2 questions were not answered" in unanswered and "Q1 (▲ 0) · <@bob>" in unanswered
    assert "being answered now" not in seen(app.last("update", CHANNEL))
    assert [(q.number, q.status) for q in await stored_questions(app)] == [
        (1, "approved"),
        (2, "approved"),
    ]
    await app.say("ama export", "bob")
    document = app.last("dm", "bob").message.attachment
    assert document is not None
    assert "No questions were answered." in document.content.decode()


async def test_closed_amas_say_so_and_commands_pick_the_channels_ama(app: Community) -> None:
    await app.say(SCHEDULE)
    await app.say(
        'ama schedule host:<@erin> title:"CX leadership" at:"2026-11-25 15:00"', channel="C-b"
    )
    assert "Called off AMA #2" in seen(await app.say("ama close", "erin", channel="C-b"))
    # Not "only the host can close": AMA #2 is this channel's, and it is closed.
    for user, command in (("bob", "ama close"), ("erin", "ama close"), ("bob", "ama close ama=2")):
        answer = seen(await app.say(command, user, channel="C-b"))
        assert answer.startswith("AMA #2 is already closed."), answer
    assert seen(await app.say("ama export", "bob", channel="C-b")) == (
        "I've sent you AMA #2 as a Markdown file in a DM."
    )
    assert seen(await app.say("ama export", "bob")) == (
        "I've sent you AMA #1 as a Markdown file in a DM."
    )


async def test_question_numbers_are_unique_in_a_channel(app: Community) -> None:
    await app.say(SCHEDULE)
    await app.say('ama schedule host:<@erin> title:"CX leadership" at:"2026-11-26 15:00"')
    assert "as Q1 in <#C-ama>" in await ask(app, "bob", "How do you scale support teams?")
    second = await ask(app, "carol", "How do you coach new team leads?", ama=2)
    assert "as Q2 in <#C-ama>" in second
    assert seen(app.last("post", CHANNEL)) == "Q2 · <@carol>\n> How do you coach new team leads?"
    assert "as Q3 in <#C-ama>" in await ask(app, "dan", "Which KPIs matter most to execs?")
    queue = seen(await app.say("ama queue ama=2", "erin"))
    assert "1. Q2 (▲ 0) · <@carol>" in queue
    numbers = [(q.ama_id, q.number) for q in await stored_questions(app)]
    assert numbers == [(1, 1), (2, 2), (1, 3)]


async def test_counts_of_one_are_singular(app: Community) -> None:
    await app.say(SCHEDULE + " max_questions:1")
    assert "Up to 1 open question per member." in seen(app.last("post", CHANNEL))
    await ask(app, "bob", "How do you scale support teams?")
    limit = await ask(app, "bob", "Which KPIs matter most to execs?")
    assert "You already have 1 open question in AMA #1 (Q1); the limit is 1." in limit
    await app.press(button(app.last("post", CHANNEL).message, "ama.upvote"), "carol")
    await app.say("ama export", "bob")
    document = app.last("dm", "bob").message.attachment
    assert document is not None
    assert "- Questions: 1 asked, 0 answered, 1 vote\n" in document.content.decode()


async def test_anonymous_authors_appear_nowhere_public(
    app: Community, platform: FakePlatform, clock: Clock
) -> None:
    await app.say(SCHEDULE + " moderated:on mod_channel:<#C-mods>")
    await ask(app, "carol", "How do you coach underperforming agents?", anonymous="yes")
    await ask(app, "carol", "Should support report to product or to ops?", anonymous="yes")
    for review in [p for p in platform.sent if p.target == MODS]:
        await app.press(button(review.message, "ama.approve"), "alice", message=review.ref)
    await app.press(button(app.last("post", CHANNEL).message, "ama.upvote"), "bob")
    await app.advance(datetime(2026, 11, 24, 15, 0, tzinfo=UTC))
    panel = app.last("dm", "ana")
    live = await app.press(button(panel.message, "ama.next"), "ana", message=panel.ref)
    assert live.update_original is not None
    await app.press(button(live.update_original, "ama.answered"), "ana")
    await app.advance(datetime(2026, 11, 24, 16, 0, tzinfo=UTC))
    await app.say("ama export", "bob")

    assert "Thank you <@ana>" in seen(app.last("post", CHANNEL))
    public = [s for s in platform.sent if s.target != MODS and s.kind != "group"]
    assert len(public) > 8
    for sent in public:
        attachment = sent.message.attachment
        words = seen(sent) + (attachment.content.decode() if attachment else "")
        assert "carol" not in words.lower(), sent
    assert "from <@carol>, asked anonymously" in seen(app.last("post", MODS))


async def test_console_end_to_end(sqlite_db: Any, settings: Any, clock: Clock) -> None:
    """The whole lifecycle as someone would try it in the console adapter."""
    output = io.StringIO()
    kindred = Kindred(settings, sqlite_db, clock=clock)
    community = ConsoleCommunity.load(settings.config_dir / "console.yml")
    session = ConsoleSession(
        kindred, community, output, lambda delta: clock.advance(seconds=delta.total_seconds())
    )
    await session.seed()
    await kindred.start(dispatch=False, schedule=False)

    def press(label: str) -> str:
        numbers = [
            n for n, (b, _, _) in session.platform.buttons.items() if b.label.startswith(label)
        ]
        assert numbers, f"no button {label!r} on screen"
        return str(numbers[-1])

    try:
        for line in [
            ":in #ama",
            '/kindred ama schedule host:@erin title:"Leading CX teams" at:"2026-11-24 16:00" '
            "duration:30m",
            ":as bob",
            "/kindred ama ask How do you build a CX team from scratch?",
            ":as carol",
        ]:
            await session.execute(line)
        await session.execute(press("▲ Upvote (0)"))
        await session.execute(
            "/kindred ama ask anonymous=yes What's the hardest CX lesson you learned?"
        )
        await session.execute(":as dan")
        await session.execute(press("Ask a question"))
        await session.execute(':submit question="How do you build CX teams from scratch?"')
        await session.execute(press("▲ Upvote Q1 instead"))
        await session.execute(":advance 1d")
        text = output.getvalue()
        # The console steps through the day: the day-before reminder goes out on time.
        assert "AMA #1 starts in 24 hours: Leading CX teams" in text
        await session.execute(":advance 6h")
        text = output.getvalue()
        assert "AMA #1 starts in 15 minutes: Leading CX teams" in text
        assert "AMA #1 is live: Leading CX teams" in text
        await session.execute(":as erin")
        await session.execute(press("Next question"))
        await session.execute(press("Answered"))
        await session.execute(press("Next question"))
        await session.execute(press("Skip"))
        await session.execute("/kindred ama close")
        await session.execute("/kindred ama export")
    finally:
        await kindred.stop()
    text = output.getvalue()
    assert "I posted the announcement with an Ask button" in text
    assert "Upvote it instead? Similar questions split the votes." in text
    assert "Upvoted Q1 (now 2 votes)." in text
    assert "🎙️ **Q1** (▲ 2) · asked by @bob" in text
    assert "thread of message" in text and "@erin, this thread is for your answer to Q1" in text
    assert "📝 **AMA #1 recap: Leading CX teams** with @erin" in text
    assert "• Q1 (▲ 2) · @bob: How do you build a CX team from scratch?" in text
    assert "📎 ama-1.md" in text
    assert "### Q2 · ▲ 0 · Anonymous · skipped" in text
    public = text.split("── ")
    assert not any("carol" in part.lower() and "What's the hardest" in part for part in public)


# -- one whole AMA through the real Slack adapter (signed HTTP, fake Slack Web API) --------

SLACK_AMA = "CAMA"


def _slack_buttons(message: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        element
        for block in message.get("blocks", [])
        if block["type"] == "actions"
        for element in block["elements"]
    ]


def _slack_text(body: dict[str, Any]) -> str:
    """The message's text as a reader sees it, ignoring bold markers."""
    return body["text"].replace("*", "")


async def _slack_click(
    slack: Any, message: dict[str, Any], action: str, user: str, channel: str
) -> str:
    """Press the message's button for `action`; returns the response_url's key."""
    [element] = [b for b in _slack_buttons(message) if b["action_id"].split(":")[1] == action]
    key = uuid.uuid4().hex
    payload = block_action_payload(
        {name: element[name] for name in ("action_id", "value", "type")},
        team_id="T1",
        user_id=user,
        channel_id=channel,
        message_ts=message["ts"],
        response_url=slack.fake.response_url(key),
    )
    status, _ = await slack.sender.post(interactive(payload))
    assert status == 200
    return key


async def test_a_whole_ama_through_the_slack_adapter(
    settings: Any, sqlite_db: Any, clock: Clock
) -> None:
    fake = FakeSlack()
    await fake.start()
    populate(fake)
    fake.add_channel("T1", SLACK_AMA, [ADMIN, MEMBER, "UBEN", "UKINDRED"])
    host, asker = MEMBER, "UBEN"
    try:
        async with running_slack(
            fake, slack_settings(settings, fake), sqlite_db, clock=clock
        ) as slack:
            answer = await slack.command(
                f'ama schedule host:<@{host}|ana> title:"Scaling support" at:"2026-11-24 15:00"',
                user=ADMIN,
                channel=SLACK_AMA,
            )
            assert "Scheduled AMA #1: Scaling support with <@UANA>" in _slack_text(answer)
            await slack.drain()
            announcement = fake.messages("T1", SLACK_AMA)[-1]
            assert "<#CAMA>" not in announcement["text"] and "<@UANA>" in announcement["text"]

            answer = await slack.command(
                "ama ask anonymous=yes What's your take on <!channel> NPS surveys?",
                user=asker,
                channel=SLACK_AMA,
            )
            assert "Posted your question anonymously as Q1 in <#CAMA>" in _slack_text(answer)
            await slack.drain()
            question = fake.messages("T1", SLACK_AMA)[-1]
            assert "&lt;!channel&gt;" in question["text"] and "Anonymous" in question["text"]
            assert "UBEN" not in json.dumps(question)

            await _slack_click(slack, announcement, "ama.ask", ADMIN, SLACK_AMA)
            [form] = await fake.wait_for(lambda: fake.opened_views)
            body = view_submission(
                form,
                {"question": "How do you staff weekend support?", "anonymous": "no"},
                team_id="T1",
                user_id=ADMIN,
            )
            assert (await slack.sender.post(body))[0] == 200
            await slack.drain()
            await fake.wait_for(lambda: len(fake.messages("T1", SLACK_AMA)) == 3)
            voted = await slack.response(
                await _slack_click(slack, question, "ama.upvote", ADMIN, SLACK_AMA)
            )
            assert voted["text"] == "▲ Upvoted Q1 (now 1 vote)."
            await slack.drain()
            assert question.get("edited") is True
            assert _slack_buttons(question)[0]["text"]["text"] == "▲ Upvote (1)"

            clock.now = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)
            await slack.kindred.scheduler.catch_up()
            await slack.drain()
            panel = fake.messages("T1", f"D{host}")[-1]
            assert "Your AMA control panel" in _slack_text(panel)
            shown = await slack.response(
                await _slack_click(slack, panel, "ama.next", host, f"D{host}")
            )
            assert shown["replace_original"] is True and "Now answering Q1" in _slack_text(shown)
            await slack.drain()
            channel_messages = fake.messages("T1", SLACK_AMA)
            parent = next(m for m in channel_messages if _slack_text(m).startswith("🎙️ Q1"))
            [prompt] = [m for m in channel_messages if m.get("thread_ts") == parent["ts"]]
            assert "<@UANA>, this thread is for your answer to Q1" in prompt["text"]
            answered = {**panel, "blocks": shown["blocks"]}
            done = await slack.response(
                await _slack_click(slack, answered, "ama.answered", host, f"D{host}")
            )
            assert "✅ Marked Q1 answered." in done["text"]

            closed = await slack.command("ama close", user=host, channel=SLACK_AMA)
            assert closed["text"].startswith("Closed AMA #1.")
            await slack.drain()
            recap = _slack_text(fake.messages("T1", SLACK_AMA)[-1])
            assert "AMA #1 recap: Scaling support with @ana" in recap
            assert "Anonymous: What's your take on &lt;!channel&gt; NPS surveys?" in recap
            assert "UBEN" not in recap
            assert "Q2 (▲ 0) · @olga" in _slack_text(fake.messages("T1", f"D{host}")[-1])

            await slack.command("ama export", user=ADMIN, channel=SLACK_AMA)
            await slack.drain()
            [document] = fake.uploads.values()
            text = document.decode("utf-8")
            assert text.startswith("# AMA #1: Scaling support")
            assert "### Q1 · ▲ 1 · Anonymous" in text and "ben" not in text.lower()
            assert "ama-1.md" in json.dumps(fake.messages("T1", f"D{ADMIN}"))
    finally:
        await fake.close()


# -- one whole AMA through the real Discord adapter (discord.py against a fake Discord) ----

D_GUILD = 1_200_000_000_000_000_001
D_AMA = 1_200_000_000_000_000_010
D_OLGA = 1_200_000_000_000_000_101  # administrator
D_ANA = 1_200_000_000_000_000_102  # the host
D_BEN = 1_200_000_000_000_000_103


async def test_a_whole_ama_through_the_discord_adapter(
    settings: Any, sqlite_db: Any, clock: Clock
) -> None:
    fake = FakeDiscord()
    fake.add_guild(
        "CX Guild",
        members=[Member(D_OLGA, "Olga", admin=True), Member(D_ANA, "Ana"), Member(D_BEN, "Ben")],
        channels=[Channel(D_AMA, "ama")],
        guild_id=D_GUILD,
    )
    await fake.start()
    discord_settings = discord_settings_for(settings, fake, sqlite_db)
    kindred = Kindred(discord_settings, sqlite_db, clock=clock)

    def in_channel(channel_id: int) -> list[Any]:
        return [sent for sent in fake.sent if sent.channel_id == channel_id]

    async def delivered() -> None:
        await kindred.dispatcher.drain()

    def custom_id(sent_or_components: Any, action: str) -> str:
        """The custom id (`prefix:guild:action:value`) of the button for `action`."""
        rows = getattr(sent_or_components, "components", sent_or_components)
        ids = [c["custom_id"] for row in rows for c in row.get("components", [])]
        [found] = [i for i in ids if i.split(":")[2] == action]
        return found

    try:
        async with serving(kindred, discord_settings):
            ana = fake.guilds[D_GUILD].members[D_ANA]
            resolved = {
                "users": {str(D_ANA): ana.user()},
                "members": {str(D_ANA): ana.member(D_GUILD, with_user=False)},
            }
            schedule = [
                {"name": "host", "type": 6, "value": str(D_ANA)},
                {"name": "title", "type": 3, "value": "Scaling support"},
                {"name": "at", "type": 3, "value": "2026-11-24 15:00"},
            ]
            answer = await fake.answered(
                await fake.command(D_GUILD, D_AMA, D_OLGA, ("ama", "schedule"), schedule, resolved)
            )
            assert "Scheduled **AMA #1: Scaling support**" in str(answer)
            await delivered()
            announcement = in_channel(D_AMA)[-1]
            assert "AMA #1: Scaling support" in announcement.content

            ask = [
                {
                    "name": "question",
                    "type": 3,
                    "value": "What's your take on @everyone NPS surveys?",
                },
                {"name": "anonymous", "type": 5, "value": True},
            ]
            await fake.answered(await fake.command(D_GUILD, D_AMA, D_BEN, ("ama", "ask"), ask))
            await delivered()
            question = in_channel(D_AMA)[-1]
            assert (
                question.content
                == "**Q1** · Anonymous\n> What's your take on @\u200beveryone NPS surveys?"
            )
            assert question.allowed_mentions == {"parse": []}
            assert "Ben" not in question.content and str(D_BEN) not in question.content

            opened = await fake.answered(
                await fake.click(
                    announcement.message_id, custom_id(announcement, "ama.ask"), D_OLGA
                )
            )
            assert opened[0][:2] == ("callback", 9)
            form = opened[0][2]
            await fake.answered(
                await fake.submit(
                    form["custom_id"],
                    {"question": "How do you staff weekend support?", "anonymous": "no"},
                    D_OLGA,
                    guild_id=D_GUILD,
                    channel_id=D_AMA,
                )
            )
            vote = await fake.click(question.message_id, custom_id(question, "ama.upvote"), D_OLGA)
            assert "Upvoted Q1 (now 1 vote)" in str(await fake.answered(vote))
            await delivered()
            assert "Upvote (1)" in str(in_channel(D_AMA)[-1].components)

            clock.now = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)
            await kindred.scheduler.catch_up()
            await delivered()
            panel = in_channel(fake.dm_channels[D_ANA])[-1]
            assert "Your AMA control panel" in panel.content
            shown = await fake.answered(
                await fake.click(panel.message_id, custom_id(panel, "ama.next"), D_ANA)
            )
            assert shown[0][:2] == ("callback", 7)
            await delivered()
            parent = next(s for s in in_channel(D_AMA) if s.content.startswith("🎙️ **Q1**"))
            assert parent.message_id in fake.threads
            prompt = in_channel(parent.message_id)[-1]
            assert f"<@{D_ANA}>, this thread is for your answer to Q1" in prompt.content
            answered = custom_id(shown[0][2]["components"], "ama.answered")
            await fake.answered(await fake.click(panel.message_id, answered, D_ANA))

            await fake.answered(await fake.command(D_GUILD, D_AMA, D_ANA, ("ama", "close"), []))
            await delivered()
            recap = in_channel(D_AMA)[-1].content
            assert "AMA #1 recap: Scaling support" in recap
            link = f"https://discord.com/channels/{D_GUILD}/{D_AMA}/{parent.message_id}"
            question = "What's your take on @\u200beveryone NPS surveys?"
            assert f"• [Q1]({link}) (▲ 1) · Anonymous: {question}" in recap
            assert "Ben" not in recap and str(D_BEN) not in recap

            await fake.answered(await fake.command(D_GUILD, D_AMA, D_OLGA, ("ama", "export"), []))
            await delivered()
            exported = in_channel(fake.dm_channels[D_OLGA])[-1]
            assert exported.files == ["ama-1.md"]
    finally:
        await fake.stop()


async def test_options_after_the_question_are_options_not_text(
    app: Community,
) -> None:
    """As help shows it: `ama ask <question> anonymous=yes` (#18)."""
    await app.say(SCHEDULE)
    second = SCHEDULE.replace("Scaling support", "Hiring leads").replace("24", "26")
    assert seen(await app.say(second)).startswith("Scheduled AMA #2: Hiring leads")
    answer = await app.say("ama ask What metrics matter most? anonymous=yes ama=2", "carol")
    assert "anonymous" in answer.lower()
    post = app.last("post", CHANNEL)
    shown = seen(post)
    assert "What metrics matter most?" in shown
    assert "anonymous=yes" not in shown and "ama=2" not in shown
    assert "carol" not in shown.lower()
    async with app.kindred.db.sessions() as session:
        question = (await session.execute(select(AmaQuestion))).scalar_one()
    assert (question.ama_id, question.anonymous, question.text) == (
        2,
        True,
        "What metrics matter most?",
    )
