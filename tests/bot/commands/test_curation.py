"""Curation end to end on the fake platform and the console adapter: nominating by
command and by reaction, dedupe, votes, curator actions, finding, mention safety,
and the Atom feed read by a real feed parser."""

from __future__ import annotations

import io
import re
from collections.abc import AsyncIterator

import feedparser
import pytest
from aiohttp import ClientSession
from aiohttp.test_utils import TestServer
from sqlalchemy import func, select

from bot.adapters.console import ConsoleCommunity, ConsoleSession
from bot.adapters.discord_render import render_text as discord_text
from bot.adapters.slack_render import to_mrkdwn
from bot.core.app import Kindred
from bot.core.platform import MessageRef
from bot.core.settings import Settings
from bot.core.web import web_application
from bot.services.curation_titles import TitleResult, title_fetches
from storage.curation import CuratedItem, CurationVote
from storage.db import Database
from tests.conftest import Clock
from tests.driver import Community, plain

ADMIN = "UADMIN"  # the driver's admin


class FakeFetcher:
    """Titles by URL; any other page has none (as when the network is down)."""

    def __init__(self, titles: dict[str, str] | None = None) -> None:
        self.titles = titles or {}
        self.fetched: list[str] = []

    async def fetch(self, url: str) -> TitleResult:
        self.fetched.append(url)
        title = self.titles.get(url)
        return TitleResult(title, retry=False, reason="" if title else "unreachable")


@pytest.fixture
async def fetcher(kindred: Kindred) -> AsyncIterator[FakeFetcher]:
    fake = FakeFetcher()
    title_fetches(kindred).fetcher = fake
    yield fake
    await title_fetches(kindred).wait_idle()


def posted(message_id: str = "m1") -> MessageRef:
    """The chat message a member reacts to."""
    return MessageRef("C1", message_id, permalink=f"https://chat.example/C1/{message_id}")


# A library card's buttons sit on a message, so curator buttons update it.
CARD = MessageRef("C1", "card")


async def items(community: Community) -> list[CuratedItem]:
    async with community.kindred.db.sessions() as session:
        query = select(CuratedItem).order_by(CuratedItem.id)
        return list((await session.execute(query)).scalars())


async def votes(community: Community) -> int:
    async with community.kindred.db.sessions() as session:
        return (await session.execute(select(func.count()).select_from(CurationVote))).scalar_one()


async def test_nominating_by_command_stores_the_item_and_fetches_its_title(
    community: Community, fetcher: FakeFetcher
) -> None:
    fetcher.titles["https://example.com/a"] = "Why NPS is not enough"
    text = await community.say(
        'curate https://example.com/a?utm_source=slack "Great read #NPS #journey"', "U1"
    )
    assert text.startswith("📌 Added to the community library.")
    assert "#1" in text and "#nps #journey" in text and "Great read" in text
    await title_fetches(community.kindred).wait_idle()
    (item,) = await items(community)
    assert (item.url, item.domain, item.shared_by) == ("https://example.com/a", "example.com", "U1")
    assert (item.note, item.tags, item.vote_count) == ("Great read", ["nps", "journey"], 1)
    assert (item.title, item.title_status) == ("Why NPS is not enough", "fetched")
    assert fetcher.fetched == ["https://example.com/a"]
    # Discord sends typed options for `/kindred curate add`.
    typed = await community.command(
        "",
        "U1",
        command_path=("curate", "add"),
        options={"url": "https://example.com/typed", "note": "#cx"},
    )
    assert "Added to the community library" in plain(typed)


async def test_a_failed_title_fetch_keeps_the_members_words(
    community: Community, fetcher: FakeFetcher
) -> None:
    await community.say("curate https://example.com/slow-site A case study on churn", "U1")
    await community.say("curate https://example.com/no-note", "U1")
    await title_fetches(community.kindred).wait_idle()
    first, second = await items(community)
    assert (first.title, first.title_status) == ("A case study on churn", "failed")
    assert second.title == "example.com/no-note"


async def test_tracking_variants_become_one_item_with_two_nominations(
    community: Community, fetcher: FakeFetcher
) -> None:
    await community.say(
        "curate https://Example.com/a/?utm_source=newsletter&utm_medium=email #nps", "U1"
    )
    second = await community.say(
        "curate https://example.com/a?fbclid=IwAR0#comments #research", "U2"
    )
    assert second.startswith("📌 That link is already in the library: your nomination counts")
    assert "2 votes" in second
    again = await community.say("curate HTTPS://EXAMPLE.COM/a?gclid=1", "U1")
    assert again.startswith("You already nominated or voted for that link.")
    (item,) = await items(community)
    assert item.vote_count == 2 and await votes(community) == 2
    # The second nomination brought its tag along.
    assert item.tags == ["nps", "research"]


async def test_refusals(community: Community, fetcher: FakeFetcher) -> None:
    assert "Only http and https links" in await community.say("curate javascript:alert(1)", "U1")
    assert "Only http and https links" in await community.say(
        "curate ftp://files.example.com/x", "U1"
    )
    private = await community.say("curate https://example.com/a", "U1", channel_is_private=True)
    assert "never curates from private channels" in private
    assert "5 at most" in await community.say(
        "curate https://example.com/a #a #b #c #d #e #f", "U1"
    )
    assert "`url` is missing" in await community.say("curate add", "U1")
    assert await items(community) == []


async def test_nominating_by_reaction(community: Community, fetcher: FakeFetcher) -> None:
    message = "Loved this <https://blog.example.com/onboarding?utm_campaign=q4|piece> <!here>"
    # A reaction has no inline reply on Slack or Discord: a new item is confirmed by DM.
    assert await community.react("pushpin", "U1", text=message, message=posted("m1")) is None
    await community.deliver()
    (saved,) = community.dms("U1")
    assert saved.startswith("📌 Saved to the community library:")
    (item,) = await items(community)
    assert item.url == "https://blog.example.com/onboarding"
    assert item.title == "Loved this piece"  # the message text until the title is fetched
    assert (item.source_message_id, item.source_link) == ("m1", "https://chat.example/C1/m1")
    # Discord reports the character; a second member's pin is a vote.
    pin = {"text": message, "message": posted("m2"), "event_id": "ev-U2-m2"}
    assert await community.react("📌", "U2", **pin) is None
    await community.deliver()
    assert community.dms("U2") == []  # a vote is counted without a message
    # A re-delivered event acts once; other emoji, private channels and linkless
    # messages are ignored.
    assert await community.react("📌", "U2", **pin) is None
    assert await community.react("eyes", "U3", text=message, message=posted()) is None
    secret = "https://secret.example.com/x"
    private = await community.react(
        "pushpin", "U3", text=secret, message=posted(), channel_is_private=True
    )
    assert private is None
    assert await community.react("pushpin", "U3", text="no link here", message=posted()) is None
    linkless = await community.react("pushpin", "U3", text="javascript:alert(1)")
    assert linkless is None
    assert len(await items(community)) == 1 and await votes(community) == 2


async def test_the_curation_emoji_is_configurable(
    community: Community, fetcher: FakeFetcher
) -> None:
    assert "Only community admins" in await community.say("curate setup emoji=star", "U1")
    assert "Curation reaction: star" in await community.say("curate setup emoji=:star:", ADMIN)
    link = "Read https://example.com/star"
    await community.react("pushpin", "U1", text=link, message=posted())
    assert await items(community) == []
    await community.react("⭐", "U1", text=link, message=posted())
    await community.deliver()
    assert len(await items(community)) == 1
    assert "Saved" in community.dms("U1")[0]


async def test_upvote_button_counts_one_vote_per_member(
    community: Community, fetcher: FakeFetcher
) -> None:
    await community.say("curate https://example.com/a", "U1")
    counted = plain(await community.press("curate.upvote", "U2", value="1", message=CARD))
    assert counted == "👍 Counted: #1 now has 2 votes."
    repeated = plain(await community.press("curate.upvote", "U2", value="1", message=CARD))
    assert repeated == "You already voted for #1 (2 votes)."
    assert "already voted" in plain(
        await community.press("curate.upvote", "U1", value="1", message=CARD)
    )
    assert "no item #9" in plain(
        await community.press("curate.upvote", "U2", value="9", message=CARD)
    )
    assert "no longer points" in plain(
        await community.press("curate.upvote", "U2", value="x", message=CARD)
    )


async def test_curators_feature_hide_and_retag(community: Community, fetcher: FakeFetcher) -> None:
    await community.say("curate https://example.com/a Journey mapping guide #nps", "U1")
    # Members see an upvote button only; admins also get the curator buttons.
    member_view = await community.command("curate item 1", "U2")
    assert member_view is not None and member_view.message is not None
    assert [b.action_id for b in member_view.message.buttons] == ["curate.upvote"]
    admin_view = await community.command("curate item 1", ADMIN)
    assert admin_view is not None and admin_view.message is not None
    assert [b.action_id for b in admin_view.message.buttons] == [
        "curate.upvote",
        "curate.feature",
        "curate.hide",
        "curate.retag",
    ]
    refused = plain(await community.press("curate.feature", "U2", value="1", message=CARD))
    assert refused.startswith("Only curators can feature items.")

    featured = await community.press("curate.feature", ADMIN, value="1", message=CARD)
    assert featured is not None and featured.update_original is not None
    assert "⭐ Featured #1" in plain(featured)
    assert "Unfeature" in [b.label for b in featured.update_original.buttons]

    # An admin makes U2 a curator; U2 retags through the form.
    assert "is now a curator" in await community.say("curate curator <@U2> on", ADMIN)
    assert "Only community admins" in await community.say("curate curator <@U3> on", "U2")
    form = await community.press("curate.retag", "U2", value="1", message=CARD)
    assert form is not None and form.modal is not None
    assert form.modal.callback_id == "curate.retag_submit" and form.modal.value == "1"
    bad = await community.submit("curate.retag_submit", "1", "U2", tags="#ok, @everyone")
    assert "is not a tag" in plain(bad)
    good = await community.submit("curate.retag_submit", "1", "U2", tags="#Research cx-ops")
    assert "🏷 Tags of #1: #research #cx-ops." in plain(good)
    assert "tagged #research" in await community.say("curate top #research", "U1")

    hidden = plain(await community.press("curate.hide", "U2", value="1", message=CARD))
    assert hidden.startswith("🙈 Hid #1")
    assert "Nothing yet" in await community.say("curate top all", "U1")
    assert "No link in the library matches" in await community.say("curate search journey", "U1")
    assert "no item #1" in await community.say("curate item 1", "U3")
    assert "Hidden: not in digests" in await community.say("curate item 1", "U2")
    renominated = await community.say("curate https://example.com/a", "U3")
    assert "A curator hid that link" in renominated
    hidden_link = {"text": "https://example.com/a", "message": posted()}
    assert await community.react("pushpin", "U3", **hidden_link) is None
    unhidden = plain(await community.press("curate.hide", ADMIN, value="1", message=CARD))
    assert unhidden.startswith("#1 is back in the library.")
    assert "no longer a curator" in await community.say("curate curator <@U2> off", ADMIN)
    assert "Only curators" in plain(
        await community.press("curate.hide", "U2", value="1", message=CARD)
    )


async def test_top_and_search(community: Community, fetcher: FakeFetcher, clock: Clock) -> None:
    await community.say("curate https://old.example.com/x Old classic #nps", "U1")
    for voter in ("U2", "U3", "U4"):
        await community.press("curate.upvote", voter, value="1", message=CARD)
    clock.advance(days=10)
    await community.say(
        "curate https://hbr.example.org/journey Journey mapping 101 #research", "U1"
    )
    await community.say("curate https://cx.example.net/nps NPS pitfalls #nps", "U2")
    await community.press("curate.upvote", "U3", value="3", message=CARD)

    week = await community.say("curate top", "U1")
    assert week.index("NPS pitfalls") < week.index("Journey mapping 101")
    assert "Old classic" not in week
    every = await community.say("curate top all", "U1")
    assert every.index("Old classic") < every.index("NPS pitfalls")
    assert "Journey" not in await community.say("curate top month #nps", "U1")
    assert "Top links this month tagged #nps" in await community.say("curate top month nps", "U1")
    assert "`yesterday` is not a period" in await community.say("curate top yesterday", "U1")
    assert "neither a period" in await community.say("curate top week @everyone", "U1")
    assert "at most one tag" in await community.say("curate top #a #b", "U1")

    assert "Journey mapping 101" in await community.say("curate search JOURNEY mapping", "U1")
    tagged = await community.say("curate search #nps", "U1")
    assert "Old classic" in tagged and "Journey" not in tagged
    assert "hbr.example.org" not in await community.say("curate search %", "U1")
    assert "No link in the library matches" in await community.say("curate search _", "U1")
    listing = await community.command("curate top all", "U3")
    assert listing is not None and listing.message is not None
    # U3 voted for #1 and #3 already: only #2 gets an upvote button.
    assert [b.value for b in listing.message.buttons] == ["2"]


async def test_member_text_cannot_ping_anyone(community: Community, fetcher: FakeFetcher) -> None:
    fetcher.titles["https://example.com/ping"] = "<!channel> Big news @everyone [x](https://evil)"
    await community.say('curate https://example.com/ping "@here <!everyone> <@U9> read this"', "U1")
    await title_fetches(community.kindred).wait_idle()
    shown = await community.command("curate item 1", "U2")
    assert shown is not None and shown.message is not None
    slack = to_mrkdwn(shown.message.text)
    assert "<!channel>" not in slack and "<!everyone>" not in slack and "<@U9>" not in slack
    # The bot's own link survives as a Slack link to the real page.
    assert "<https://example.com/ping|" in slack
    discord = discord_text(shown.message.text)
    assert "@everyone" not in discord and "@here" not in discord and "<@U9>" not in discord
    assert shown.message.mentions == ()


@pytest.fixture
async def feed_server(kindred: Kindred) -> AsyncIterator[TestServer]:
    server = TestServer(web_application(kindred), host="127.0.0.1")
    await server.start_server()
    yield server
    await server.close()


async def fetch_feed(server: TestServer, path: str) -> tuple[int, str, str]:
    async with ClientSession() as client, client.get(server.make_url(path)) as response:
        return response.status, response.headers.get("Content-Type", ""), await response.text()


async def test_featured_items_are_an_atom_feed(
    community: Community, fetcher: FakeFetcher, feed_server: TestServer
) -> None:
    fetcher.titles["https://example.com/a"] = "Tips & tricks <for> \x0bCX"
    await community.say('curate https://example.com/a "Read it & weep #nps #cx"', "U1")
    await community.say("curate https://example.com/b Second", "U1")
    await community.say("curate https://example.com/c Not featured", "U1")
    await title_fetches(community.kindred).wait_idle()
    for item_id in ("1", "2"):
        await community.press("curate.feature", ADMIN, value=item_id, message=CARD)
    await community.press("curate.hide", ADMIN, value="2", message=CARD)

    status, content_type, body = await fetch_feed(feed_server, "/feeds/fake/W1.atom")
    assert status == 200 and content_type == "application/atom+xml; charset=utf-8"
    feed = feedparser.parse(body)
    assert feed.bozo == 0, feed.get("bozo_exception")
    assert feed.version == "atom10"
    assert feed.feed.title == "fake W1: featured links"
    assert feed.feed.id.startswith("urn:uuid:")
    assert [link.rel for link in feed.feed.links] == ["self"]
    (entry,) = feed.entries  # hidden and unfeatured items stay out
    assert entry.title == "Tips & tricks <for> CX"
    assert entry.link == "https://example.com/a"
    assert entry.summary == "Read it & weep"
    assert [tag.term for tag in entry.tags] == ["nps", "cx"]
    assert entry.author == "U1"
    assert entry.id.startswith("urn:uuid:")
    # Ids are stable: the next read names the same entry the same way.
    _, _, again = await fetch_feed(feed_server, "/feeds/fake/W1.atom")
    assert feedparser.parse(again).entries[0].id == entry.id

    assert (await fetch_feed(feed_server, "/feeds/fake/nobody.atom"))[0] == 404
    await community.say("curate setup feed=off", ADMIN)
    assert (await fetch_feed(feed_server, "/feeds/fake/W1.atom"))[0] == 404


async def test_console_end_to_end(sqlite_db: Database, settings: Settings, clock: Clock) -> None:
    output = io.StringIO()
    kindred = Kindred(settings, sqlite_db, clock=clock)
    fetcher = FakeFetcher({"https://example.com/a": "The CX playbook"})
    title_fetches(kindred).fetcher = fetcher
    community = ConsoleCommunity.load(settings.config_dir / "console.yml")
    session = ConsoleSession(
        kindred, community, output, lambda delta: clock.advance(seconds=delta.total_seconds())
    )
    await session.seed()
    await kindred.start(dispatch=False, schedule=False)
    try:
        await session.execute(
            '/kindred curate https://example.com/a?utm_source=x "Great read #nps"'
        )
        await title_fetches(kindred).wait_idle()
        await session.execute(":as bob")
        await session.execute("/kindred curate https://EXAMPLE.com/a/#intro")
        await session.execute(":say Worth a look: https://example.com/b?fbclid=123")
        said = re.findall(r"── \[(\d+)\] #general @bob ──", output.getvalue())
        await session.execute(":as carol")
        await session.execute(f":react {said[-1]} pushpin")
        await session.execute(":as alice")
        await session.execute("/kindred curate setup channel=#general")
        await session.execute("/kindred curate item 1")
        feature = re.findall(r"\((\d+)\) ⭐ Feature", output.getvalue())
        await session.execute(feature[-1])
        await session.execute(":advance 7d")
    finally:
        await kindred.stop()
    text = output.getvalue()
    assert "📌 Added to the community library." in text
    assert "That link is already in the library: your nomination counts as a vote." in text
    saved = "📌 Saved to the community library: [Worth a look](https://example.com/b) (#2)."
    assert f"DM → @carol ──\n{saved}" in text
    assert "Digest channel: #general" in text
    assert "⭐ Featured #1" in text
    digest = text[text.index("picks of the week") :]
    assert "[The CX playbook](https://example.com/a)" in digest
    assert "2 👍 · shared by @alice · #nps" in digest
    assert "#general ──" in text[: text.index("picks of the week")].rsplit("── [", 1)[1]


async def test_item_numbers_are_bounded(community: Community, fetcher: FakeFetcher) -> None:
    """2^70 once overflowed SQLite's integers and the member got "Something went
    wrong"; an item number beyond any stored key is refused by the parser."""
    answer = await community.say("curate item 1180591620717411303424", "U1")
    assert "`item` must be at most 2147483647" in answer
    assert "no item #2147483647" in await community.say("curate item 2147483647", "U1")


async def test_setup_without_options_only_shows_the_settings(
    community: Community, fetcher: FakeFetcher
) -> None:
    before = await community.say("curate setup", ADMIN)
    assert before.startswith("**Curation settings**")
    assert "Weekly digest: on, Mondays at 09:00 UTC" in before
    assert "Change any of these with `/kindred curate setup name=value" in before
    assert "Saved" not in before
    # Showing twice changes nothing: the same settings, the same next digest.
    assert await community.say("curate setup", ADMIN) == before


async def test_one_vote_is_singular(community: Community, fetcher: FakeFetcher) -> None:
    await community.say("curate https://example.com/a", "U1")
    again = await community.press("curate.upvote", "U1", value="1", message=CARD)
    assert plain(again) == "You already voted for #1 (1 vote)."
    assert "example.com · 1 vote" in await community.say("curate item 1", "U2")
