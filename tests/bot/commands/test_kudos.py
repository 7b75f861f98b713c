"""Recognition end to end on the shared driver (fake platform, real core, SQLite):
kudos by command and by reaction, refusals and the daily cap, withdrawals, the
status granted at once and explained, the five-account ring, the monthly review
with hysteresis, boards that ping nobody, and the feature's hooks."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.adapters.slack_render import mention_renderer, to_mrkdwn
from bot.commands import declared_features
from bot.core.app import Kindred
from bot.core.feature import Feature
from bot.core.figures import MemberAction, Period
from bot.core.mentions import MEMBER_TEXT_START, escape_for_slack, render
from bot.core.platform import Identity, MemberInfo, MessageRef
from bot.core.registry import Handlers
from bot.core.settings import Settings
from bot.services import kudos as service
from storage.db import Database
from storage.kudos import Kudos, RecognisedContributor
from storage.members import ensure_member
from tests.conftest import Clock
from tests.driver import Community, plain, privacy_lines
from tests.fakes.platform import FakePlatform

ADMIN = "UADMIN"
PUBLIC = "CKUDOS"
HOST_ANSWER = "answered an AMA question as host"


class Contributions:
    """A probe feature whose `actions` hook reports contributions of the members in
    `helpers`: the evidence other features (AMA, curation, mentorship…) report."""

    def __init__(self) -> None:
        self.helpers: set[str] = set()
        self.feature = Feature(summary="probe", handlers=Handlers("probe"), actions=self.actions)

    async def actions(self, session: AsyncSession, period: Period) -> Sequence[MemberAction]:
        return [
            MemberAction(user_id, "ama_answer", period.start, contribution=True)
            for user_id in sorted(self.helpers)
        ]


@pytest.fixture
def contributions() -> Contributions:
    return Contributions()


@pytest.fixture
async def kindred(
    settings: Settings,
    sqlite_db: Database,
    clock: Clock,
    platform: FakePlatform,
    contributions: Contributions,
) -> AsyncIterator[Kindred]:
    app = Kindred(
        replace(settings, database_url=str(sqlite_db.url)),
        sqlite_db,
        features=(*declared_features(), contributions.feature),
        clock=clock,
    )
    app.attach(platform)
    await app.start(dispatch=False, schedule=False)
    yield app
    await app.stop()


PEOPLE = (
    "UANA",
    "UBEN",
    "UCAR",
    "UBOB",
    *(f"U{n}" for n in range(6)),
    *(f"R{n}" for n in range(1, 6)),
)


@pytest.fixture
def community(kindred: Kindred, platform: FakePlatform, clock: Clock) -> Community:
    platform.add_members("W1", *(MemberInfo(user, user.title()) for user in PEOPLE))
    return Community(kindred, platform, clock, deliver_each=True)


async def all_kudos(community: Community) -> list[Kudos]:
    async with community.kindred.db.sessions() as session:
        return list((await session.execute(select(Kudos).order_by(Kudos.id))).scalars())


async def recognised(community: Community) -> list[str]:
    async with community.kindred.db.sessions() as session:
        query = select(RecognisedContributor).where(RecognisedContributor.active.is_(True))  # type: ignore[attr-defined]
        return sorted(row.user_id for row in (await session.execute(query)).scalars())


async def companies(community: Community, **by_user: str) -> None:
    for user, company in by_user.items():
        await community.say(f"profile set company={company}", user)


def posted(message_id: str, channel: str = "CGENERAL") -> MessageRef:
    return MessageRef(channel, message_id, permalink=f"https://chat.example/{channel}/{message_id}")


# --- Giving by command -------------------------------------------------------------


async def test_kudos_by_command_reaches_the_receiver_and_the_public_channel(
    community: Community,
) -> None:
    await community.say(f"kudos setup channel=<#{PUBLIC}>")
    answer = await community.say(
        "kudos <@UANA> for walking me through our first NPS survey category=helpful_answer",
        "UBEN",
    )
    assert answer.startswith("🙌 Kudos sent to <@UANA> (helpful answer)")
    assert "You can give 4 more today." in answer
    (dm,) = community.dms("UANA")
    assert "<@UBEN> gave you kudos for a helpful answer" in dm
    assert "walking me through our first NPS survey" in dm
    (post,) = community.posts(PUBLIC)
    # Names, not mentions: the public post pings nobody.
    assert post.startswith("🙌 **Uana** got kudos from **Uben** (helpful answer)")
    assert community.last("post", PUBLIC).message.mentions == ()
    (kudos,) = await all_kudos(community)
    assert (kudos.giver_id, kudos.receiver_id, kudos.status) == ("UBEN", "UANA", "active")
    # Discord sends typed options for `/kindred kudos give`.
    typed = await community.command(
        "",
        "UCAR",
        command_path=("kudos", "give"),
        options={"member": "<@UANA>", "reason": "shared her churn playbook with everyone"},
    )
    assert "Kudos sent to" in plain(typed)


async def test_member_text_in_a_reason_never_pings(community: Community) -> None:
    await community.say(f"kudos setup channel=<#{PUBLIC}>")
    await community.say("kudos <@UANA> thanks @everyone <!channel> and <@UBOB> too", "UBEN")
    sent = community.last("post", PUBLIC).message
    # The reason is member text: adapters escape it, so `@everyone` and `<@UBOB>` are inert.
    assert MEMBER_TEXT_START in sent.text
    rendered = render(sent.text, escape_for_slack)
    assert "<!channel>" not in rendered and "<@UBOB>" not in rendered


@pytest.mark.parametrize(
    ("text", "refusal"),
    [
        ("kudos <@UBEN> for being me all along", "can't give them to yourself"),
        ("kudos <@UANA> thx", "in at least 3 words"),
        ("kudos <@UANA> for a great answer category=nonsense", "is not one of this community's"),
        ("kudos <@UBOT> for answering at 3am every night", "Bots don't need kudos"),
        ("kudos <@UGONE> for the help before leaving us", "<@UGONE> is not among them"),
    ],
)
async def test_refusals_change_nothing(
    community: Community, platform: FakePlatform, text: str, refusal: str
) -> None:
    platform.add_members("W1", MemberInfo("UBOT", "Helper bot", is_bot=True))
    answer = await community.say(text, "UBEN")
    assert refusal in answer
    assert await all_kudos(community) == []
    assert community.sent() == []


async def test_usage_when_the_reason_is_missing(community: Community) -> None:
    answer = await community.say("kudos give <@UANA>", "UBEN")
    assert "reason" in answer and "Usage" in answer
    assert await all_kudos(community) == []


async def test_the_daily_cap_resets_at_midnight_in_the_givers_time_zone(
    community: Community, clock: Clock
) -> None:
    # 09:00 UTC is 04:00 in New York; the giver's midnight is at 05:00 UTC.
    await community.say("profile set timezone=America/New_York", "UBEN")
    for number in range(5):
        answer = await community.say(
            f"kudos <@U{number}> for the help with ticket {number}", "UBEN"
        )
        assert "Kudos sent" in answer
    capped = await community.say("kudos <@UANA> for the help with ticket six", "UBEN")
    assert "You've given your 5 kudos for today" in capped
    assert "It resets at 00:00 (America/New_York)" in capped
    assert len(await all_kudos(community)) == 5
    # Someone else still can.
    assert "Kudos sent" in await community.say("kudos <@UANA> for the help with it", "UCAR")
    await community.advance(hours=14)  # 23:00 UTC: 18:00 in New York, same day
    assert "5 kudos for today" in await community.say("kudos <@UANA> for more help today", "UBEN")
    await community.advance(hours=6)  # 05:00 UTC next day: midnight in New York
    assert "Kudos sent" in await community.say("kudos <@UANA> for more help today", "UBEN")


# --- Giving by reaction ------------------------------------------------------------


async def test_a_reaction_asks_for_a_reason_then_counts(community: Community) -> None:
    message = posted("m100")
    await community.react("raised_hands", "UBEN", message=message, message_author_id="UANA")
    (pending,) = await all_kudos(community)
    assert pending.status == "pending"
    (ask,) = community.dms("UBEN")
    assert "You reacted with kudos to a message by <@UANA>" in ask
    assert community.dms("UANA") == []
    (button,) = community.buttons("dm", "UBEN")
    form = await community.press(button, "UBEN")
    assert form.modal is not None and form.modal.callback_id == "kudos.reason_submit"
    short = await community.submit(form.modal.callback_id, form.modal.value, "UBEN", reason="ok")
    assert "in at least 3 words" in plain(short)
    done = await community.submit(
        form.modal.callback_id,
        form.modal.value,
        "UBEN",
        reason="Found the bug in our survey logic",
        category="Helpful Answer",
    )
    assert "Kudos sent to <@UANA> (helpful answer)" in plain(done)
    (kudos,) = await all_kudos(community)
    assert (kudos.status, kudos.reason, kudos.category) == (
        "active",
        "Found the bug in our survey logic",
        "helpful answer",
    )
    (dm,) = community.dms("UANA")
    assert "The message: https://chat.example/CGENERAL/m100" in dm
    # Pressing the old button again finds nothing left to do.
    again = await community.press(button, "UBEN")
    assert "already has its reason" in plain(again)


async def test_a_redelivered_reaction_records_one_kudos(community: Community) -> None:
    await community.say("kudos setup reasons=off")
    message = posted("m7")
    for _ in range(2):
        await community.react(
            "🙌", "UBEN", message=message, message_author_id="UANA", event_id="Ev-same"
        )
    # A different delivery key for the same reaction (a resumed gateway) is caught too.
    await community.react("raised_hands", "UBEN", message=message, message_author_id="UANA")
    (kudos,) = await all_kudos(community)
    assert (kudos.status, kudos.reason) == ("active", None)
    assert len(community.dms("UANA")) == 1


async def test_other_reactions_self_and_unknown_authors_record_nothing(
    community: Community,
) -> None:
    await community.react("pushpin", "UBEN", message=posted("m1"), message_author_id="UANA")
    await community.react("raised_hands", "UBEN", message=posted("m2"))
    await community.react("raised_hands", "UBEN", message=posted("m3"), message_author_id="UBEN")
    async with community.kindred.db.transaction() as session:
        await ensure_member(session, "fake", "W1", "UGONE", deactivated=True)
        await ensure_member(session, "fake", "W1", "UBOT", is_bot=True)
    await community.react("raised_hands", "UBEN", message=posted("m4"), message_author_id="UGONE")
    await community.react("raised_hands", "UBEN", message=posted("m5"), message_author_id="UBOT")
    assert await all_kudos(community) == []
    refused_self, refused_bot = community.dms("UBEN")
    assert "can't give them to yourself" in refused_self
    assert "Bots don't need kudos" in refused_bot


async def test_removing_the_reaction_withdraws_the_kudos_and_its_post(
    community: Community,
) -> None:
    await community.say(f"kudos setup channel=<#{PUBLIC}> reasons=off")
    message = posted("m9")
    await community.react("raised_hands", "UBEN", message=message, message_author_id="UANA")
    # Ana has not used Kindred yet, so her name is unknown: she is shown by a mention
    # the message does not allow, which adapters render as her name, pinging nobody.
    (post,) = community.posts(PUBLIC)
    assert post.startswith("🙌 **<@UANA>** got kudos from **Uben**")
    sent = community.last("post", PUBLIC).message
    assert sent.mentions == ()
    rendered = to_mrkdwn(sent.text, mention_renderer(sent.mentions, {"UANA": "Ana"}))
    assert rendered.startswith("🙌 *@Ana* got kudos from *Uben*")
    # Someone else's removal does not touch Ben's kudos.
    await community.unreact("raised_hands", "UCAR", message=message)
    assert [k.status for k in await all_kudos(community)] == ["active"]
    await community.unreact("raised_hands", "UBEN", message=message)
    assert [k.status for k in await all_kudos(community)] == ["withdrawn"]
    update = community.last("update", PUBLIC)
    assert "This kudos was withdrawn" in update.text
    assert "None yet" in await community.say("kudos received", "UANA")
    # Adding it back restores it, without a second DM or post: the post thanks again.
    await community.react("raised_hands", "UBEN", message=message, message_author_id="UANA")
    assert [k.status for k in await all_kudos(community)] == ["active"]
    assert len(community.dms("UANA")) == 1 and len(community.posts(PUBLIC)) == 1
    assert community.last("update", PUBLIC).text == "🙌 **Uana** got kudos from **Uben**"


async def test_deleting_the_message_withdraws_its_kudos(community: Community) -> None:
    await community.say("kudos setup reasons=off")
    message = posted("m5")
    await community.react("raised_hands", "UBEN", message=message, message_author_id="UANA")
    await community.react("raised_hands", "UCAR", message=message, message_author_id="UANA")
    await community.react("raised_hands", "UCAR", message=posted("m6"), message_author_id="UANA")
    await community.delete_message(message, "UANA")
    assert [k.status for k in await all_kudos(community)] == ["withdrawn", "withdrawn", "active"]


# --- Status ------------------------------------------------------------------------


async def thank(community: Community, giver: str, receiver: str, what: str) -> str:
    return await community.say(f"kudos <@{receiver}> for {what} and more", giver)


async def test_the_status_is_granted_the_moment_the_rule_is_met_and_explained(
    community: Community, contributions: Contributions, platform: FakePlatform
) -> None:
    await community.say(f"kudos setup channel=<#{PUBLIC}> role=Contributor")
    await companies(community, U1="Acme", U2="Acme", U3="Globex", U4="Globex", U5="Initech")
    for giver in ("U1", "U2", "U3", "U4", "U5"):
        await thank(community, giver, "UANA", f"help number {giver}")
    early = await community.say("kudos why <@UANA>", "U1")
    assert "<@UANA> is not a recognised contributor yet" in early
    assert "Kudos that count: 5.0 of 8 ✗" in early
    assert "Distinct givers: 5 of 5 ✓" in early
    assert "Companies among them: 3 of 2 ✓" in early
    assert "Days since the first kudos that counts: 0 of 30 ✗" in early
    assert "Contributions beyond kudos: 0 of 1 ✗" in early
    await community.advance(days=31)
    contributions.helpers.add("UANA")
    await thank(community, "U1", "UANA", "the template")
    await thank(community, "U2", "UANA", "the review")
    assert await recognised(community) == []
    answer = await thank(community, "U3", "UANA", "the survey")
    assert "<@UANA> is now a recognised contributor" in answer
    assert await recognised(community) == ["UANA"]
    (granted,) = community.dms("UANA", "You are now a recognised contributor")
    assert HOST_ANSWER in granted and "Contributor role" in granted
    (note,) = community.posts(PUBLIC, "is now a recognised contributor")
    assert note.startswith("🏅 **Uana** is now")
    assert platform.roles["UANA"] == {"Contributor"}
    explained = await community.say("kudos why", "UANA")
    assert explained.startswith("🏅 You are a recognised contributor since")
    assert f"Contributions beyond kudos: 1 of 1 ✓ ({HOST_ANSWER})" in explained
    card = await community.say("profile show <@UANA>", "U1")
    assert "🏅 Recognised contributor" in card and "Kudos: 8 from 5 members" in card
    home = await community.open_home("UANA")
    assert "🏅 Recognised contributor" in plain(home)


async def test_repeats_within_30_days_count_less(
    community: Community, contributions: Contributions
) -> None:
    await community.say("kudos setup givers=1 companies=0 days=0 kudos=2")
    contributions.helpers.add("UANA")
    for what in ("one", "two", "three"):
        await thank(community, "U1", "UANA", f"thing {what}")
    # 1 + 1/2 + 1/3 = 1.83: three kudos from one giver in a month are not two.
    why = await community.say("kudos why <@UANA>", "U1")
    assert "Kudos that count: 1.83 of 2 ✗" in why
    await community.advance(days=30)
    await thank(community, "U1", "UANA", "thing four")
    assert await recognised(community) == ["UANA"]


async def test_the_daily_sweep_grants_when_time_completes_the_rule(
    community: Community, contributions: Contributions
) -> None:
    await community.say("kudos setup givers=2 companies=0 kudos=2 days=30")
    contributions.helpers.add("UANA")
    await thank(community, "U1", "UANA", "the onboarding call")
    await thank(community, "U2", "UANA", "the pricing notes")
    assert await recognised(community) == []
    await community.advance(days=29)
    assert await recognised(community) == []
    await community.advance(days=2)
    assert await recognised(community) == ["UANA"]
    assert len(community.dms("UANA", "You are now a recognised contributor")) == 1
    # Later sweeps grant nothing twice.
    await community.advance(days=3)
    assert len(community.dms("UANA", "You are now a recognised contributor")) == 1


async def test_a_five_account_ring_produces_no_recognised_contributor(
    community: Community, contributions: Contributions
) -> None:
    """Five accounts thanking each other (two "companies", each with evidence) would
    meet a rule tuned to four givers; the ring is flagged and counts for nothing."""
    await community.say("kudos setup givers=4 kudos=8 companies=2 days=30")
    ring = ("R1", "R2", "R3", "R4", "R5")
    await companies(community, R1="Shell", R2="Shell", R3="Front", R4="Front", R5="Front")
    contributions.helpers.update(ring)
    for _ in range(2):
        for giver in ring:
            for receiver in ring:
                if giver != receiver:
                    await thank(community, giver, receiver, f"great work {receiver}")
        await community.advance(days=31)
    for giver in ring:
        await thank(community, giver, ring[(ring.index(giver) + 1) % 5], "a final push")
    await community.advance(days=1)
    assert await recognised(community) == []
    why = await community.say("kudos why <@R1>", "R2")
    assert "inside a reciprocal pair or a closed ring do not count" in why
    stats = await community.say("kudos stats")
    assert "Closed ring: <@R1>, <@R2>, <@R3>, <@R4>, <@R5>" in stats


async def test_a_reciprocal_pair_is_flagged_and_does_not_count(
    community: Community, contributions: Contributions
) -> None:
    await community.say("kudos setup givers=1 companies=0 days=0 kudos=1")
    await thank(community, "UANA", "UBEN", "the reply on churn")
    await thank(community, "UBEN", "UANA", "the reply on pricing")
    # Evidence arrives; the daily sweep finds only the pair's kudos, which do not count.
    contributions.helpers.update({"UANA", "UBEN"})
    await community.advance(days=1)
    assert await recognised(community) == []
    assert "Reciprocal pair: <@UANA> ↔ <@UBEN>" in await community.say("kudos stats")
    # A third member's kudos breaks nothing and counts.
    await thank(community, "UCAR", "UANA", "the retro notes")
    assert await recognised(community) == ["UANA"]


async def test_the_monthly_review_drops_the_status_only_after_two_months_below(
    community: Community, contributions: Contributions, platform: FakePlatform, clock: Clock
) -> None:
    await community.say("kudos setup givers=2 companies=0 days=0 kudos=2 role=Contributor")
    contributions.helpers.add("UANA")
    await thank(community, "U1", "UANA", "the onboarding call")
    await thank(community, "U2", "UANA", "the pricing notes")
    assert await recognised(community) == ["UANA"]
    assert platform.roles["UANA"] == {"Contributor"}
    kudos = await all_kudos(community)
    answer = await community.say(f"kudos revoke {kudos[0].id} given by mistake to the wrong person")
    assert f"Revoked kudos #{kudos[0].id}" in answer
    assert community.dms("UANA", "revoked a kudos you received")
    # Below the bar from now on. 1 Dec review: one month below, kept.
    await community.advance(to=datetime(2026, 12, 1, 0, 30, tzinfo=UTC))
    assert await recognised(community) == ["UANA"]
    assert "(1 so far)" in await community.say("kudos why", "UANA")
    await community.advance(to=datetime(2027, 1, 1, 0, 30, tzinfo=UTC))
    assert await recognised(community) == []
    assert community.dms("UANA", "status has lapsed")
    assert platform.roles["UANA"] == set()
    # Meeting the rule again grants it again, at once.
    await thank(community, "U3", "UANA", "the new survey")
    assert await recognised(community) == ["UANA"]
    assert platform.roles["UANA"] == {"Contributor"}


async def test_revoke_refuses_unknown_and_repeated(community: Community) -> None:
    assert "There is no kudos #99" in await community.say("kudos revoke 99 not a real kudos at all")
    await thank(community, "U1", "UANA", "the onboarding call")
    (kudos,) = await all_kudos(community)
    assert "Revoked" in await community.say(f"kudos revoke {kudos.id} spam from a test account")
    assert "already revoked" in await community.say(f"kudos revoke {kudos.id} spam again, sorry")
    only_admins = await community.say(f"kudos revoke {kudos.id} because I say so", "U1")
    assert "Only community admins" in only_admins


# --- Reading -----------------------------------------------------------------------


async def test_lists_and_boards_show_names_and_respect_opt_outs(
    community: Community, clock: Clock
) -> None:
    await thank(community, "U1", "UANA", "the onboarding call")
    await thank(community, "U2", "UANA", "the pricing notes")
    await thank(community, "U1", "UBEN", "the churn model")
    received = await community.say("kudos received", "UANA")
    assert received.startswith("**Kudos you received**")
    assert "from <@U2>" in received and "the pricing notes" in received
    given = await community.say("kudos given", "U1")
    assert "to <@UANA>" in given and "to <@UBEN>" in given
    reply = await community.command("kudos board", "U3")
    assert reply.message is not None and reply.message.mentions == ()
    board = plain(reply)
    assert "1. Uana: 2 givers" in board and "2. Uben: 1 giver" in board
    assert "You're off" in await community.say("kudos boards off", "UANA")
    board = await community.say("kudos board", "U3")
    assert "Uana" not in board and "1. Uben: 1 giver" in board
    rising = await community.say("kudos board rising", "U3")
    assert "1. Uben: 1 giver (+1)" in rising
    await community.say("kudos <@UBEN> for a great share indeed category=great_share", "U2")
    category = await community.say("kudos board category great share", "U3")
    assert "Kudos for “great share”" in category and "1. Uben: 1 giver" in category
    assert "Which category?" in await community.say("kudos board category", "U3")


async def test_setup_shows_and_validates(community: Community) -> None:
    shown = await community.say("kudos setup")
    assert "at least 8 kudos with reasons, from at least 5 distinct givers at 2" in shown
    assert "Daily allowance per giver: 5" in shown
    changed = await community.say(
        'kudos setup categories="Great share, office hours" allowance=3 emoji=🎉'
    )
    assert changed.startswith("Saved.") and "great share, office hours" in changed
    assert "Reaction: tada" in changed
    assert "Say where" in await community.say("kudos setup public=on")
    with_channel = await community.say(f"kudos setup channel=<#{PUBLIC}>")
    assert "Public kudos channel: <#CKUDOS>" in with_channel
    assert "Public kudos channel: none" in await community.say("kudos setup public=off")
    assert "Give one emoji" in await community.say('kudos setup emoji="two words"')
    bad = await community.say("kudos setup allowance=0")
    assert "allowance" in bad
    assert "Only community admins" in await community.say("kudos setup allowance=9", "U1")


# --- Hooks -------------------------------------------------------------------------


async def test_metrics_actions_and_stored_about(community: Community, clock: Clock) -> None:
    await community.say("kudos setup reasons=off")
    await thank(community, "U1", "UANA", "the onboarding call")
    await community.react("raised_hands", "U2", message=posted("m1"), message_author_id="UANA")
    await community.react("raised_hands", "U3", message=posted("m2"), message_author_id="UBEN")
    await community.unreact("raised_hands", "U3", message=posted("m2"))
    period = Period("fake", "W1", clock.now - timedelta(days=1), clock.now + timedelta(days=1))
    async with community.kindred.db.sessions() as session:
        figures = await service.metrics(session, period)
        actions = await service.actions(session, period)
        about = privacy_lines(await service.stored_about(session, Identity("fake", "W1", "UANA")))
        everything = await community.kindred.member_actions(session, period)
    assert figures["kudos"] == 2 and figures["givers"] == 2 and figures["receivers"] == 1
    assert figures["with_reason_share"] == 0.5 and figures["withdrawn"] == 1
    assert sorted((action.user_id, action.kind) for action in actions) == [
        ("U1", "kudos"),
        ("U2", "kudos"),
    ]
    assert not any(action.contribution for action in actions)
    assert "kudos" in everything
    assert about == ["2 kudos you received, with their reasons"]


async def test_contributions_are_named_in_the_words_of_the_editable_template(
    settings: Settings,
    sqlite_db: Database,
    clock: Clock,
    platform: FakePlatform,
    contributions: Contributions,
    tmp_path: Path,
) -> None:
    config = tmp_path / "config"
    shutil.copytree(settings.config_dir, config)
    words = config / "templates" / "kudos" / "contributions.j2"
    words.write_text(words.read_text().replace(HOST_ANSWER, "hosted an AMA and answered"))
    app = Kindred(
        replace(settings, config_dir=config, database_url=str(sqlite_db.url)),
        sqlite_db,
        features=(*declared_features(), contributions.feature),
        clock=clock,
    )
    app.attach(platform)
    platform.add_members("W1", MemberInfo("UANA", "Ana"))
    await app.start(dispatch=False, schedule=False)
    try:
        community = Community(app, platform, clock, deliver_each=True)
        contributions.helpers.add("UANA")
        why = await community.say("kudos why", "UANA")
        assert "Contributions beyond kudos: 1 of 1 ✓ (hosted an AMA and answered)" in why
        # A kind the template does not name shows as itself.
        words.write_text(words.read_text().replace("ama_answer: ", "retired_kind: "))
        why = await community.say("kudos why", "UANA")
        assert "Contributions beyond kudos: 1 of 1 ✓ (ama_answer)" in why
    finally:
        await app.stop()


async def test_a_real_ama_host_answer_is_evidence(
    community: Community, platform: FakePlatform
) -> None:
    """Evidence from the AMA feature's own actions hook: the host answered a question."""
    await community.say("kudos setup givers=2 companies=0 days=0 kudos=2")
    await community.say('ama schedule host:<@UANA> title:"Scaling support" at:"2026-11-24 15:00"')
    await community.say("ama ask How do you scale a support team past fifty?", "UBEN")
    await thank(community, "U1", "UANA", "the support playbook")
    await thank(community, "U2", "UANA", "the hiring plan")
    assert await recognised(community) == []
    assert "Contributions beyond kudos: 0 of 1 ✗" in await community.say("kudos why <@UANA>")

    await community.advance(to=datetime(2026, 11, 24, 15, 0, tzinfo=UTC))
    panel = community.last("dm", "UANA")
    (next_question,) = [b for b in panel.message.buttons if b.action_id == "ama.next"]
    shown = await community.press(next_question, "UANA", message=panel.ref)
    assert shown.update_original is not None
    (answered,) = [b for b in shown.update_original.buttons if b.action_id == "ama.answered"]
    await community.press(answered, "UANA", message=panel.ref)
    # The daily sweep sees the new evidence.
    await community.advance(days=1)
    assert await recognised(community) == ["UANA"]
    why = await community.say("kudos why <@UANA>")
    assert f"Contributions beyond kudos: 1 of 1 ✓ ({HOST_ANSWER})" in why


async def test_kudos_given_in_private_are_never_posted(community: Community) -> None:
    await community.say(f"kudos setup channel=<#{PUBLIC}>")
    said = await community.say(
        "kudos <@UANA> for the quiet help last week",
        "UBEN",
        channel="DSECRET",
        channel_is_private=True,
    )
    assert "Kudos sent" in said and "posted" not in said
    await community.react(
        "raised_hands",
        "UCAR",
        message=posted("m3", "GSECRET"),
        message_author_id="UANA",
        channel="GSECRET",
        channel_is_private=True,
    )
    (button,) = community.buttons("dm", "UCAR")
    form = await community.press(button, "UCAR")
    assert form.modal is not None
    done = await community.submit(
        form.modal.callback_id, form.modal.value, "UCAR", reason="Helped me with the churn deck"
    )
    assert "Kudos sent" in plain(done) and "posted" not in plain(done)
    assert community.posts(PUBLIC) == []
    assert len(community.dms("UANA")) == 2
    assert "quiet help" in await community.say("kudos received", "UANA")
    assert "quiet help" not in await community.say("kudos received <@UANA>", "U1")
