"""Curation storage on SQLite and PostgreSQL: one item per link even under a race,
one vote per member with no lost counts, title-fetch leases, and search."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import delete

from bot.commands.curation import feature as curation_feature
from bot.core.figures import MemberAction, Period
from bot.core.platform import Identity
from bot.core.templates import Templates
from bot.domain.curation import normalise_url
from bot.services import curation as curation_service
from bot.services.curation import actions as curation_actions
from bot.services.curation import metrics as curation_metrics
from bot.services.curation import send_digest
from storage import curation as store
from storage.curation import CuratedItem, CurationSettings
from storage.db import Database
from storage.models import OutboxMessage
from tests.driver import contribution_words, privacy_lines

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
TEMPLATES = Path(__file__).resolve().parents[2] / "config" / "templates"


def new_item(url: str, *, title: str = "A title", tags: list[str] | None = None) -> CuratedItem:
    link = normalise_url(url)
    return CuratedItem(
        platform="fake",
        workspace_id="W1",
        url_key=link.key,
        url=link.url,
        domain=link.domain,
        title=title,
        tags=tags or [],
        shared_by="U1",
        title_due_at=NOW,
        created_at=NOW,
    )


async def add(db: Database, item: CuratedItem) -> int:
    async with db.transaction() as session:
        added = await store.add_item(session, item)
        assert added is not None and added.id is not None
        return added.id


async def test_one_item_per_link_even_when_two_add_it_at_once(db: Database) -> None:
    async def try_add() -> CuratedItem | None:
        async with db.transaction() as session:
            return await store.add_item(session, new_item("https://example.com/a?utm_source=x"))

    results = await asyncio.gather(try_add(), try_add())
    assert sum(result is not None for result in results) == 1
    async with db.transaction() as session:
        found = await store.find_item(
            session, "fake", "W1", normalise_url("https://EXAMPLE.com/a/").key
        )
        assert found is not None and found.url == "https://example.com/a"


async def test_one_vote_per_member_and_no_lost_counts(db: Database) -> None:
    item_id = await add(db, new_item("https://example.com/a"))

    async def vote(user: str) -> bool:
        async with db.transaction() as session:
            item = await session.get(CuratedItem, item_id)
            assert item is not None
            return await store.add_vote(session, item, user, "upvote")

    results = await asyncio.gather(*(vote(f"U{n}") for n in range(8)), vote("U0"))
    assert sorted(results) == [False] + [True] * 8
    async with db.transaction() as session:
        item = await session.get(CuratedItem, item_id)
        assert item is not None and item.vote_count == 8
        assert await store.voted_item_ids(session, "U3", [item_id, 999]) == {item_id}
        assert await store.voted_item_ids(session, "U99", [item_id]) == set()


async def test_title_fetch_leases(db: Database) -> None:
    first = await add(db, new_item("https://example.com/a"))
    second = await add(db, new_item("https://example.com/b"))
    lease_until = NOW + timedelta(minutes=1)
    async with db.transaction() as session:
        leased = await store.lease_title_fetches(session, NOW, lease_until, limit=10)
    assert sorted(row[0] for row in leased) == [first, second]
    assert {row[2] for row in leased} == {1}
    # Leased rows are not due for another replica until the lease runs out.
    async with db.transaction() as session:
        assert await store.lease_title_fetches(session, NOW, lease_until, limit=10) == []
        await store.record_title(session, first, "Fetched title", retry_at=None)
        await store.record_title(session, second, None, retry_at=NOW + timedelta(minutes=10))
    async with db.transaction() as session:
        assert await store.lease_title_fetches(session, lease_until, lease_until, 10) == []
        later = NOW + timedelta(minutes=10)
        again = await store.lease_title_fetches(session, later, later + timedelta(minutes=1), 10)
        assert [(row[0], row[2]) for row in again] == [(second, 2)]
        await store.record_title(session, second, None, retry_at=None)
    async with db.transaction() as session:
        done = await session.get(CuratedItem, first)
        failed = await session.get(CuratedItem, second)
        assert done is not None and failed is not None
        assert (done.title, done.title_status, done.title_due_at) == (
            "Fetched title",
            "fetched",
            None,
        )
        assert "fetched title" in done.search_text
        assert (failed.title, failed.title_status) == ("A title", "failed")


async def test_search_and_tag_filters(db: Database) -> None:
    await add(db, new_item("https://example.com/a", title="Why #NPS 100% matters", tags=["cx"]))
    await add(db, new_item("https://example.com/b", title="Journey_mapping", tags=["nps"]))
    async with db.transaction() as session:

        async def titles(words: list[str]) -> list[str]:
            found = await store.search_items(session, "fake", "W1", words, 10)
            return sorted(item.title for item in found)

        assert await titles(["nps"]) == ["Journey_mapping", "Why #NPS 100% matters"]
        assert await titles(["#nps"]) == ["Journey_mapping"]
        assert await titles(["100%"]) == ["Why #NPS 100% matters"]
        assert await titles(["%"]) == ["Why #NPS 100% matters"]
        assert await titles(["y_m"]) == ["Journey_mapping"]
        assert await titles(["why", "journey"]) == []
        tagged = await store.top_items(session, "fake", "W1", since=None, tag="nps", limit=10)
        assert [item.title for item in tagged] == ["Journey_mapping"]


async def test_metrics_count_one_community_and_one_period(db: Database) -> None:
    """The health report's figures: rows before or after the period, and rows of
    another workspace, never count."""
    start, end = NOW, NOW + timedelta(days=7)
    templates = Templates(TEMPLATES)

    def shared(url: str, at: datetime, by: str, workspace: str = "W1") -> CuratedItem:
        item = new_item(url)
        item.workspace_id, item.created_at, item.shared_by = workspace, at, by
        return item

    inside = [
        await add(db, shared("https://one.example/x", start, "U1")),
        await add(db, shared("https://two.example/x", start + timedelta(days=1), "U1")),
        await add(db, shared("https://three.example/x", end - timedelta(seconds=1), "U2")),
    ]
    before = await add(db, shared("https://old.example/x", start - timedelta(seconds=1), "U3"))
    after = await add(db, shared("https://new.example/x", end, "U4"))
    elsewhere = await add(db, shared("https://one.example/x", start, "U5", workspace="W2"))
    async with db.transaction() as session:
        for item_id, voters, at in (
            (inside[0], ("U1", "U2", "U3"), start + timedelta(hours=1)),
            (before, ("U1",), start + timedelta(hours=2)),  # an old item's vote in the period
            (inside[1], ("U2",), end),  # after the period
            (elsewhere, ("U1", "U2"), start + timedelta(hours=1)),
        ):
            item = await session.get(CuratedItem, item_id)
            assert item is not None
            for voter in voters:
                assert await store.add_vote(session, item, voter, "upvote", at)
        for item_id, at in (
            (inside[0], start + timedelta(days=2)),
            (before, start - timedelta(days=1)),
            (after, end + timedelta(hours=1)),
            (elsewhere, start + timedelta(days=2)),
        ):
            item = await session.get(CuratedItem, item_id)
            assert item is not None
            item.featured, item.featured_at = True, at
        # Digests: one inside the period (to a channel and a subscriber), one after
        # it, one of the other workspace; an empty week queues nothing.
        for workspace, occurrence in (
            ("W1", start + timedelta(days=3)),
            ("W1", end),
            ("W2", start + timedelta(days=3)),
        ):
            settings = CurationSettings(
                platform="fake", workspace_id=workspace, digest_channel_id="CD"
            )
            settings = await store.get_settings(session, "fake", workspace) or settings
            settings.last_digest_at = occurrence - timedelta(days=7)
            await store.add_settings(session, settings)
            await store.subscribe(session, "fake", workspace, "S1")
            await send_digest(templates, session, settings, occurrence)
        empty = await store.get_settings(session, "fake", "W1")
        assert empty is not None
        empty.last_digest_at = start + timedelta(days=4)
        assert await send_digest(templates, session, empty, start + timedelta(days=4)) == 0

    async with db.transaction() as session:
        figures = await curation_metrics(session, Period("fake", "W1", start, end))
    assert figures == {
        "links_shared": 3,
        "links_featured": 1,
        "votes": 4,
        "distinct_sharers": 2,
        "digests_sent": 1,
        # The digest in the period carried what was shared in its week: the first
        # two items and the one shared a second before the period.
        "digest_items": 3,
        "digest_reach": 1,
    }
    async with db.transaction() as session:
        # Pruning the delivered messages changes none of the figures.
        await session.execute(delete(OutboxMessage))
        assert await curation_metrics(session, Period("fake", "W1", start, end)) == figures
        nothing = await curation_metrics(session, Period("fake", "W9", start, end))
    assert set(nothing.values()) == {0}


def test_the_curation_feature_declares_its_metrics() -> None:
    assert curation_feature.metrics is curation_metrics


async def test_member_actions_are_shares_features_and_votes_of_visible_items(
    db: Database,
) -> None:
    start, end = NOW, NOW + timedelta(days=7)
    featured = new_item("https://one.example/x")
    featured.shared_by = "U1"
    hidden = new_item("https://hidden.example/x")
    hidden.shared_by, hidden.hidden = "U2", True
    old = new_item("https://old.example/x")
    old.shared_by, old.created_at = "U3", start - timedelta(days=1)
    item_ids = [await add(db, item) for item in (featured, hidden, old)]
    async with db.transaction() as session:
        for item_id, voter in zip(item_ids, ("U2", "U3", "U4"), strict=True):
            item = await session.get(CuratedItem, item_id)
            assert item is not None
            assert await store.add_vote(session, item, voter, "upvote", NOW + timedelta(hours=1))
        first = await session.get(CuratedItem, item_ids[0])
        assert first is not None
        first.featured, first.featured_at = True, NOW + timedelta(days=1)
    async with db.sessions() as session:
        actions = await curation_actions(session, Period("fake", "W1", start, end))
    assert sorted(actions, key=lambda action: (action.kind, action.user_id)) == [
        MemberAction("U2", "curation_vote", NOW + timedelta(hours=1)),
        MemberAction("U4", "curation_vote", NOW + timedelta(hours=1)),
        MemberAction(
            "U1",
            "link_featured",
            NOW + timedelta(days=1),
            contribution=True,
        ),
        MemberAction("U1", "link_shared", NOW),
    ]
    assert contribution_words("link_featured") == "shared a link the curators featured"


def test_the_curation_feature_declares_its_actions() -> None:
    assert curation_feature.actions is curation_actions


async def test_privacy_counts_a_members_links_votes_and_subscription(db: Database) -> None:
    item_id = await add(db, new_item("https://one.example/x"))
    async with db.transaction() as session:
        item = await session.get(CuratedItem, item_id)
        assert item is not None
        assert await store.add_vote(session, item, "U2", "upvote", NOW)
        await store.subscribe(session, "fake", "W1", "U2")
    async with db.sessions() as session:
        assert privacy_lines(
            await curation_service.stored_about(session, Identity("fake", "W1", "U1"))
        ) == ["1 link you shared to the library"]
        assert privacy_lines(
            await curation_service.stored_about(session, Identity("fake", "W1", "U2"))
        ) == [
            "1 vote for a library link",
            "your subscription to the weekly digest",
        ]
        assert (
            privacy_lines(
                await curation_service.stored_about(session, Identity("fake", "W2", "U1"))
            )
            == []
        )
