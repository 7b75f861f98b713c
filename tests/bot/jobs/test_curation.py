"""The weekly digest: schedule, ranking with diversity, channel post and DMs, empty
weeks, and exactly one digest when two replicas run the tick at once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from bot.adapters.discord_render import render_text as discord_text
from bot.core.app import Kindred
from bot.core.settings import Settings
from bot.jobs.curation import run_due_digests
from bot.services.curation import latest_due, next_digest_after
from bot.services.curation_titles import TitleResult, title_fetches
from storage.curation import CurationSettings
from storage.db import Database
from storage.models import JobClaim, OutboxMessage
from tests.conftest import Clock
from tests.driver import Community
from tests.fakes.platform import FakePlatform

ADMIN = "UADMIN"  # the driver's admin
# The clock fixture starts on Monday 23 November 2026, 09:00 UTC: the default
# digest (Mondays 09:00 in KINDRED_TIMEZONE, UTC here) is due one week later.
FIRST_DIGEST = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)


class NoTitles:
    async def fetch(self, url: str) -> TitleResult:
        return TitleResult(None, retry=False, reason="offline")


def prepare(kindred: Kindred, platform: FakePlatform) -> None:
    platform.admins.add(ADMIN)
    title_fetches(kindred).fetcher = NoTitles()


@pytest.fixture
async def offline(kindred: Kindred, platform: FakePlatform) -> AsyncIterator[None]:
    """Admin A1, no network for titles, and no fetch left running at the end."""
    prepare(kindred, platform)
    yield
    await title_fetches(kindred).wait_idle()


async def share(community: Community, url: str, note: str, user: str, voters: int = 0) -> int:
    text = await community.say(f"curate {url} {note}", user)
    assert "Added to the community library" in text, text
    item_id = int(text.split(" · #", 1)[1].split()[0])
    for voter in range(voters):
        await community.press("curate.upvote", f"V{voter}", value=str(item_id))
    return item_id


def settings_row(weekday: str = "mon", hour: int = 9, timezone: str = "UTC") -> CurationSettings:
    return CurationSettings(
        platform="fake",
        workspace_id="W1",
        digest_weekday=weekday,
        digest_hour=hour,
        timezone=timezone,
    )


def test_schedule_follows_the_communitys_time_zone() -> None:
    berlin_friday = settings_row("fri", 16, "Europe/Berlin")
    monday = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
    assert next_digest_after(berlin_friday, monday) == datetime(2026, 11, 27, 15, 0, tzinfo=UTC)
    # Across the spring DST change, 16:00 in Berlin is 14:00 UTC.
    march = datetime(2027, 3, 29, 0, 0, tzinfo=UTC)
    assert next_digest_after(berlin_friday, march) == datetime(2027, 4, 2, 14, 0, tzinfo=UTC)
    # Strictly after: a digest at exactly its time schedules the following week.
    exactly = next_digest_after(settings_row(), FIRST_DIGEST)
    assert exactly == FIRST_DIGEST + timedelta(days=7)


def test_a_replica_down_for_weeks_sends_one_digest_for_the_latest_week() -> None:
    weekly = settings_row()
    weekly.next_digest_at = FIRST_DIGEST
    assert latest_due(weekly, FIRST_DIGEST - timedelta(minutes=1)) is None
    assert latest_due(weekly, FIRST_DIGEST) == FIRST_DIGEST
    three_weeks_later = FIRST_DIGEST + timedelta(days=21, hours=5)
    assert latest_due(weekly, three_weeks_later) == FIRST_DIGEST + timedelta(days=21)


async def test_digest_ranks_diversifies_and_reaches_channel_and_subscribers(
    community: Community, clock: Clock, offline: None
) -> None:
    await community.kindred.start(dispatch=False, schedule=False)
    await community.say("curate setup channel=<#CD>", ADMIN)
    for user in ("S1", "S2"):
        assert "Subscribed" in await community.say("digest subscribe", user)
    assert "already subscribed" in await community.say("digest subscribe", "S1")
    await community.say("digest subscribe", "S3")
    assert "Unsubscribed" in await community.say("digest unsubscribe", "S3")

    clock.advance(days=1)
    # Ana shares three strong links: only two may appear.
    await share(community, "https://a1.example/x", "Ana one #nps", "ana", voters=9)
    await share(community, "https://a2.example/x", "Ana two #nps", "ana", voters=8)
    await share(community, "https://a3.example/x", "Ana three #research", "ana", voters=7)
    # Three from one site: only two may appear.
    await share(community, "https://hbr.example/1", "HBR one #leadership", "bo", voters=6)
    await share(community, "https://hbr.example/2", "HBR two #leadership", "cy", voters=5)
    await share(community, "https://hbr.example/3", "HBR three #ops", "di", voters=4)
    # A third NPS item waits behind the varied ones.
    await share(community, "https://nps.example/x", "Third NPS #nps", "ed", voters=3)
    hidden = await share(community, "https://spam.example/x", "Spam #nps", "fi", voters=12)
    await share(community, "https://quiet.example/x", "Quiet one #ops", "gu", voters=0)
    await share(community, "https://late.example/x", "Fresh @everyone #cx", "ha", voters=1)
    await community.press("curate.hide", ADMIN, value=str(hidden))

    preview = await community.say("digest preview", ADMIN)
    assert "Next digest: Mon 30 Nov 2026 09:00 UTC. So far it would say:" in preview
    assert "Only community admins" in await community.say("digest preview", "U1")

    await community.advance(to=FIRST_DIGEST)
    (post,) = community.posts("CD")
    order = [
        line.split(". [", 1)[1].split("]", 1)[0] for line in post.splitlines() if ". [" in line
    ]
    # Everything is six days old, so votes decide; Ana's third link and the third
    # HBR article exceed their limits, and the third NPS item fills the last place.
    assert order == [
        "Ana one",
        "Ana two",
        "HBR one",
        "HBR two",
        "Third NPS",
        "Fresh @\u200beveryone",
        "Quiet one",
    ]
    assert "Spam" not in post and "Ana three" not in post
    assert sum(line.strip().startswith("hbr.example ·") for line in post.splitlines()) == 2
    assert [sent.target for sent in community.sent("dm")] == ["S1", "S2"]
    digest_message = community.last("post", "CD").message
    assert [b.action_id for b in digest_message.buttons] == ["curate.upvote"] * 7
    assert "@everyone" not in discord_text(digest_message.text)
    assert digest_message.mentions == ()

    # The next week starts from this digest: old items do not come back, new ones do.
    clock.advance(days=2)
    await share(community, "https://next.example/x", "Next week's #cx", "ana", voters=1)
    await community.advance(to=FIRST_DIGEST + timedelta(days=7))
    second = community.posts("CD")[1]
    assert "Next week's" in second and "Ana one" not in second


async def test_an_empty_week_posts_nothing(
    community: Community, clock: Clock, offline: None
) -> None:
    await community.say("curate setup channel=<#CD>", ADMIN)
    await community.say("digest subscribe", "S1")
    assert "would be skipped" in await community.say("digest preview", ADMIN)
    clock.now = FIRST_DIGEST
    await run_due_digests(community.kindred, clock())
    await community.deliver()
    assert community.sent() == []
    async with community.kindred.db.sessions() as session:
        settings = (await session.execute(select(CurationSettings))).scalar_one()
        claims = (await session.execute(select(JobClaim.job, JobClaim.occurrence))).all()
    assert settings.last_digest_at == FIRST_DIGEST
    assert settings.next_digest_at == FIRST_DIGEST + timedelta(days=7)
    assert ("curation.digest:1", FIRST_DIGEST.isoformat()) in claims


async def test_setup_moves_the_schedule(community: Community, clock: Clock, offline: None) -> None:
    shown = await community.say("curate setup weekday=fri hour=16 timezone=europe/berlin", ADMIN)
    assert "Fridays at 16:00 Europe/Berlin (next: Fri 27 Nov 2026 16:00 Europe/Berlin)" in shown
    assert "must be one of" in await community.say("curate setup weekday=someday", ADMIN)
    assert "at most 23" in await community.say("curate setup hour=24", ADMIN)
    assert "not a time zone" in await community.say("curate setup timezone=Mars/Base", ADMIN)
    paused = await community.say("curate setup digest=off", ADMIN)
    assert "Weekly digest: off" in paused
    assert "paused" in await community.say("digest subscribe", "S1")
    await share(community, "https://example.com/x", "Something #cx", "ana")
    clock.now = datetime(2026, 11, 27, 15, 0, tzinfo=UTC)
    await run_due_digests(community.kindred, clock())
    await community.deliver()
    assert community.sent() == []


async def count(db: Database, model: type) -> int:
    async with db.sessions() as session:
        return (await session.execute(select(func.count()).select_from(model))).scalar_one()


async def test_two_replicas_send_exactly_one_digest(
    postgres_db: Database, settings: Settings, clock: Clock
) -> None:
    platforms = [FakePlatform(), FakePlatform()]
    replicas = []
    for number, platform in enumerate(platforms):
        replica = Kindred(settings, postgres_db, clock=clock, instance=f"replica-{number}")
        replica.attach(platform)
        prepare(replica, platform)
        replicas.append(replica)
    first, second = (
        Community(replica, platform, clock, admin=ADMIN)
        for replica, platform in zip(replicas, platforms, strict=True)
    )
    await first.say("curate setup channel=<#CD>", ADMIN)
    for user in ("S1", "S2"):
        await second.say("digest subscribe", user)
    clock.advance(hours=1)
    await share(first, "https://example.com/a", "First #nps", "ana", voters=2)
    await share(second, "https://example.com/b", "Second #cx", "bo", voters=1)
    clock.now = FIRST_DIGEST + timedelta(minutes=1)
    # Both replicas tick at once, three ticks running: still one digest.
    for _ in range(3):
        await asyncio.gather(*(run_due_digests(replica, clock()) for replica in replicas))
    assert await count(postgres_db, OutboxMessage) == 3  # one post, two DMs
    await asyncio.gather(*(replica.dispatcher.drain() for replica in replicas))
    sent = [s for platform in platforms for s in platform.sent]
    assert sorted((s.kind, s.target) for s in sent) == [("dm", "S1"), ("dm", "S2"), ("post", "CD")]
    async with postgres_db.sessions() as session:
        jobs = (await session.execute(select(JobClaim.job))).scalars().all()
    assert [job for job in jobs if job.startswith("curation.digest")] == ["curation.digest:1"]
    for replica in replicas:
        await title_fetches(replica).wait_idle()
        await replica.stop()
