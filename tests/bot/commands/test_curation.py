"""Curation end to end on the fake platform and the console adapter: nominating by
command and by reaction, dedupe, votes, curator actions, finding, mention safety,
and the Atom feed read by a real feed parser."""

from __future__ import annotations

import io
import re
from collections.abc import AsyncIterator
from dataclasses import replace

import feedparser
import pytest
from aiohttp import ClientSession
from aiohttp.test_utils import TestServer
from sqlalchemy import func, select

from bot.adapters.console import ConsoleCommunity, ConsoleSession
from bot.adapters.discord_render import render_text as discord_text
from bot.adapters.slack_render import to_mrkdwn
from bot.core.app import Kindred
from bot.core.mentions import strip_markup_for_plain_text
from bot.core.platform import Inbound, MessageRef, Reply
from bot.core.settings import Settings
from bot.core.web import web_application
from bot.services.curation_titles import TitleResult, title_fetches
from storage.curation import CuratedItem, CurationVote
from storage.db import Database
from tests.conftest import Clock
from tests.fakes.platform import FakePlatform

ADMIN = "A1"


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
async def fetcher(kindred: Kindred, platform: FakePlatform) -> AsyncIterator[FakeFetcher]:
    platform.admins.add(ADMIN)
    fake = FakeFetcher()
    title_fetches(kindred).fetcher = fake
    yield fake
    await title_fetches(kindred).wait_idle()


def command(text: str, user: str = "U1", *, channel: str = "C1", private: bool = False) -> Inbound:
    return Inbound(
        kind="command",
        platform="fake",
        workspace_id="W1",
        user_id=user,
        channel_id=channel,
        text=text,
        channel_is_private=private,
    )


def reaction(
    emoji: str,
    text: str,
    user: str = "U1",
    *,
    message_id: str = "m1",
    event_id: str | None = None,
    private: bool = False,
) -> Inbound:
    return Inbound(
        kind="reaction",
        platform="fake",
        workspace_id="W1",
        user_id=user,
        channel_id="C1",
        text=text,
        reaction=emoji,
        message=MessageRef("C1", message_id, permalink=f"https://chat.example/C1/{message_id}"),
        event_id=event_id or f"ev-{user}-{message_id}-{emoji}",
        channel_is_private=private,
    )


def button(action: str, value: str, user: str = "U1", *, kind: str = "button") -> Inbound:
    return Inbound(
        kind=kind,  # type: ignore[arg-type]
        platform="fake",
        workspace_id="W1",
        user_id=user,
        channel_id="C1",
        action_id=action,
        value=value,
        message=MessageRef("C1", "card") if kind == "button" else None,
    )


def plain(reply: Reply | None) -> str:
    assert reply is not None
    message = reply.message or reply.update_original
    assert message is not None
    return strip_markup_for_plain_text(message.text)


async def say(kindred: Kindred, text: str, user: str = "U1", **options: bool) -> str:
    return plain(await kindred.handle(command(text, user, **options)))


async def items(kindred: Kindred) -> list[CuratedItem]:
    async with kindred.db.sessions() as session:
        query = select(CuratedItem).order_by(CuratedItem.id)
        return list((await session.execute(query)).scalars())


async def votes(kindred: Kindred) -> int:
    async with kindred.db.sessions() as session:
        return (await session.execute(select(func.count()).select_from(CurationVote))).scalar_one()


async def test_nominating_by_command_stores_the_item_and_fetches_its_title(
    kindred: Kindred, fetcher: FakeFetcher
) -> None:
    fetcher.titles["https://example.com/a"] = "Why NPS is not enough"
    text = await say(
        kindred, 'curate https://example.com/a?utm_source=slack "Great read #NPS #journey"'
    )
    assert text.startswith("📌 Added to the community library.")
    assert "#1" in text and "#nps #journey" in text and "Great read" in text
    await title_fetches(kindred).wait_idle()
    (item,) = await items(kindred)
    assert (item.url, item.domain, item.shared_by) == ("https://example.com/a", "example.com", "U1")
    assert (item.note, item.tags, item.vote_count) == ("Great read", ["nps", "journey"], 1)
    assert (item.title, item.title_status) == ("Why NPS is not enough", "fetched")
    assert fetcher.fetched == ["https://example.com/a"]
    # Discord sends typed options for `/kindred curate add`.
    typed = replace(
        command(""),
        command_path=("curate", "add"),
        options={"url": "https://example.com/typed", "note": "#cx"},
    )
    assert "Added to the community library" in plain(await kindred.handle(typed))


async def test_a_failed_title_fetch_keeps_the_members_words(
    kindred: Kindred, fetcher: FakeFetcher
) -> None:
    await say(kindred, "curate https://example.com/slow-site A case study on churn")
    await say(kindred, "curate https://example.com/no-note")
    await title_fetches(kindred).wait_idle()
    first, second = await items(kindred)
    assert (first.title, first.title_status) == ("A case study on churn", "failed")
    assert second.title == "example.com/no-note"


async def test_tracking_variants_become_one_item_with_two_nominations(
    kindred: Kindred, fetcher: FakeFetcher
) -> None:
    await say(kindred, "curate https://Example.com/a/?utm_source=newsletter&utm_medium=email #nps")
    second = await say(
        kindred, "curate https://example.com/a?fbclid=IwAR0#comments #research", "U2"
    )
    assert second.startswith("📌 That link is already in the library: your nomination counts")
    assert "2 votes" in second
    again = await say(kindred, "curate HTTPS://EXAMPLE.COM/a?gclid=1", "U1")
    assert again.startswith("You already nominated or voted for that link.")
    (item,) = await items(kindred)
    assert item.vote_count == 2 and await votes(kindred) == 2
    # The second nomination brought its tag along.
    assert item.tags == ["nps", "research"]


async def test_refusals(kindred: Kindred, fetcher: FakeFetcher) -> None:
    assert "Only http and https links" in await say(kindred, "curate javascript:alert(1)")
    assert "Only http and https links" in await say(kindred, "curate ftp://files.example.com/x")
    private = await say(kindred, "curate https://example.com/a", private=True)
    assert "never curates from private channels" in private
    assert "5 at most" in await say(kindred, "curate https://example.com/a #a #b #c #d #e #f")
    assert "`url` is missing" in await say(kindred, "curate add")
    assert await items(kindred) == []


async def test_nominating_by_reaction(
    kindred: Kindred, fetcher: FakeFetcher, platform: FakePlatform
) -> None:
    message = "Loved this <https://blog.example.com/onboarding?utm_campaign=q4|piece> <!here>"
    # A reaction has no inline reply on Slack or Discord: a new item is confirmed by DM.
    assert await kindred.handle(reaction("pushpin", message)) is None
    await kindred.dispatcher.drain()
    (saved,) = platform.texts("dm", "U1")
    assert saved.startswith("📌 Saved to the community library:")
    (item,) = await items(kindred)
    assert item.url == "https://blog.example.com/onboarding"
    assert item.title == "Loved this piece"  # the message text until the title is fetched
    assert (item.source_message_id, item.source_link) == ("m1", "https://chat.example/C1/m1")
    # Discord reports the character; a second member's pin is a vote.
    assert await kindred.handle(reaction("📌", message, "U2", message_id="m2")) is None
    await kindred.dispatcher.drain()
    assert platform.texts("dm", "U2") == []  # a vote is counted without a message
    # A re-delivered event acts once; other emoji, private channels and linkless
    # messages are ignored.
    assert await kindred.handle(reaction("📌", message, "U2", message_id="m2")) is None
    assert await kindred.handle(reaction("eyes", message, "U3")) is None
    private = reaction("pushpin", "https://secret.example.com/x", "U3", private=True)
    assert await kindred.handle(private) is None
    assert await kindred.handle(reaction("pushpin", "no link here", "U3")) is None
    assert await kindred.handle(reaction("pushpin", "javascript:alert(1)", "U3")) is None
    assert len(await items(kindred)) == 1 and await votes(kindred) == 2


async def test_the_curation_emoji_is_configurable(
    kindred: Kindred, fetcher: FakeFetcher, platform: FakePlatform
) -> None:
    assert "Only community admins" in await say(kindred, "curate setup emoji=star")
    assert "Curation reaction: star" in await say(kindred, "curate setup emoji=:star:", ADMIN)
    link = "Read https://example.com/star"
    await kindred.handle(reaction("pushpin", link))
    assert await items(kindred) == []
    await kindred.handle(reaction("⭐", link))
    await kindred.dispatcher.drain()
    assert len(await items(kindred)) == 1
    assert "Saved" in platform.texts("dm", "U1")[0]


async def test_upvote_button_counts_one_vote_per_member(
    kindred: Kindred, fetcher: FakeFetcher
) -> None:
    await say(kindred, "curate https://example.com/a")
    counted = plain(await kindred.handle(button("curate.upvote", "1", "U2")))
    assert counted == "👍 Counted: #1 now has 2 votes."
    repeated = plain(await kindred.handle(button("curate.upvote", "1", "U2")))
    assert repeated == "You already voted for #1 (2 votes)."
    assert "already voted" in plain(await kindred.handle(button("curate.upvote", "1", "U1")))
    assert "no item #9" in plain(await kindred.handle(button("curate.upvote", "9", "U2")))
    assert "no longer points" in plain(await kindred.handle(button("curate.upvote", "x", "U2")))


async def test_curators_feature_hide_and_retag(
    kindred: Kindred, fetcher: FakeFetcher, platform: FakePlatform
) -> None:
    await say(kindred, "curate https://example.com/a Journey mapping guide #nps")
    # Members see an upvote button only; admins also get the curator buttons.
    member_view = await kindred.handle(command("curate item 1", "U2"))
    assert member_view is not None and member_view.message is not None
    assert [b.action_id for b in member_view.message.buttons] == ["curate.upvote"]
    admin_view = await kindred.handle(command("curate item 1", ADMIN))
    assert admin_view is not None and admin_view.message is not None
    assert [b.action_id for b in admin_view.message.buttons] == [
        "curate.upvote",
        "curate.feature",
        "curate.hide",
        "curate.retag",
    ]
    refused = plain(await kindred.handle(button("curate.feature", "1", "U2")))
    assert refused.startswith("Only curators can feature items.")

    featured = await kindred.handle(button("curate.feature", "1", ADMIN))
    assert featured is not None and featured.update_original is not None
    assert "⭐ Featured #1" in plain(featured)
    assert "Unfeature" in [b.label for b in featured.update_original.buttons]

    # An admin makes U2 a curator; U2 retags through the form.
    assert "is now a curator" in await say(kindred, "curate curator <@U2> on", ADMIN)
    assert "Only community admins" in await say(kindred, "curate curator <@U3> on", "U2")
    form = await kindred.handle(button("curate.retag", "1", "U2"))
    assert form is not None and form.modal is not None
    assert form.modal.callback_id == "curate.retag_submit" and form.modal.value == "1"
    bad = replace(button("curate.retag_submit", "1", "U2", kind="modal_submit"))
    bad = replace(bad, options={"tags": "#ok, @everyone"})
    assert "is not a tag" in plain(await kindred.handle(bad))
    good = replace(bad, options={"tags": "#Research cx-ops"})
    assert "🏷 Tags of #1: #research #cx-ops." in plain(await kindred.handle(good))
    assert "tagged #research" in await say(kindred, "curate top #research")

    hidden = plain(await kindred.handle(button("curate.hide", "1", "U2")))
    assert hidden.startswith("🙈 Hid #1")
    assert "Nothing yet" in await say(kindred, "curate top all")
    assert "No link in the library matches" in await say(kindred, "curate search journey")
    assert "no item #1" in await say(kindred, "curate item 1", "U3")
    assert "Hidden: not in digests" in await say(kindred, "curate item 1", "U2")
    renominated = await say(kindred, "curate https://example.com/a", "U3")
    assert "A curator hid that link" in renominated
    assert await kindred.handle(reaction("pushpin", "https://example.com/a", "U3")) is None
    unhidden = plain(await kindred.handle(button("curate.hide", "1", ADMIN)))
    assert unhidden.startswith("#1 is back in the library.")
    assert "no longer a curator" in await say(kindred, "curate curator <@U2> off", ADMIN)
    assert "Only curators" in plain(await kindred.handle(button("curate.hide", "1", "U2")))


async def test_top_and_search(kindred: Kindred, fetcher: FakeFetcher, clock: Clock) -> None:
    await say(kindred, "curate https://old.example.com/x Old classic #nps")
    for voter in ("U2", "U3", "U4"):
        await kindred.handle(button("curate.upvote", "1", voter))
    clock.advance(days=10)
    await say(kindred, "curate https://hbr.example.org/journey Journey mapping 101 #research")
    await say(kindred, "curate https://cx.example.net/nps NPS pitfalls #nps", "U2")
    await kindred.handle(button("curate.upvote", "3", "U3"))

    week = await say(kindred, "curate top")
    assert week.index("NPS pitfalls") < week.index("Journey mapping 101")
    assert "Old classic" not in week
    every = await say(kindred, "curate top all")
    assert every.index("Old classic") < every.index("NPS pitfalls")
    assert "Journey" not in await say(kindred, "curate top month #nps")
    assert "Top links this month tagged #nps" in await say(kindred, "curate top month nps")
    assert "`yesterday` is not a period" in await say(kindred, "curate top yesterday")
    assert "neither a period" in await say(kindred, "curate top week @everyone")
    assert "at most one tag" in await say(kindred, "curate top #a #b")

    assert "Journey mapping 101" in await say(kindred, "curate search JOURNEY mapping")
    tagged = await say(kindred, "curate search #nps")
    assert "Old classic" in tagged and "Journey" not in tagged
    assert "hbr.example.org" not in await say(kindred, "curate search %")
    assert "No link in the library matches" in await say(kindred, "curate search _")
    listing = await kindred.handle(command("curate top all", "U3"))
    assert listing is not None and listing.message is not None
    # U3 voted for #1 and #3 already: only #2 gets an upvote button.
    assert [b.value for b in listing.message.buttons] == ["2"]


async def test_member_text_cannot_ping_anyone(kindred: Kindred, fetcher: FakeFetcher) -> None:
    fetcher.titles["https://example.com/ping"] = "<!channel> Big news @everyone [x](https://evil)"
    await say(kindred, 'curate https://example.com/ping "@here <!everyone> <@U9> read this"')
    await title_fetches(kindred).wait_idle()
    shown = await kindred.handle(command("curate item 1", "U2"))
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
    kindred: Kindred, fetcher: FakeFetcher, feed_server: TestServer
) -> None:
    fetcher.titles["https://example.com/a"] = "Tips & tricks <for> \x0bCX"
    await say(kindred, 'curate https://example.com/a "Read it & weep #nps #cx"')
    await say(kindred, "curate https://example.com/b Second")
    await say(kindred, "curate https://example.com/c Not featured")
    await title_fetches(kindred).wait_idle()
    for item_id in ("1", "2"):
        await kindred.handle(button("curate.feature", item_id, ADMIN))
    await kindred.handle(button("curate.hide", "2", ADMIN))

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
    await say(kindred, "curate setup feed=off", ADMIN)
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
