"""Content curation tables and queries: the community library (items and their
votes), digest settings per community, digest subscribers and curators."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Column,
    Index,
    Text,
    UniqueConstraint,
    delete,
    distinct,
    func,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import Field, SQLModel, col

from storage.db import rowcount
from storage.models import Community
from storage.types import UTCDateTime, utcnow

TITLE_PENDING = "pending"
TITLE_FETCHED = "fetched"
TITLE_FAILED = "failed"


class CurationSettings(SQLModel, table=True):
    """One community's digest schedule, reaction emoji and feed switch."""

    __tablename__ = "curation_settings"
    __table_args__ = (
        UniqueConstraint("platform", "workspace_id"),
        # The digest tick runs every minute on every replica: it reads this index only.
        Index("ix_curation_settings_due", "digest_enabled", "next_digest_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    platform: str = Field(max_length=16)
    workspace_id: str = Field(max_length=64)
    digest_enabled: bool = True
    digest_channel_id: str | None = Field(default=None, max_length=64)
    digest_weekday: str = Field(default="mon", max_length=3)
    digest_hour: int = 9
    timezone: str = Field(default="UTC", max_length=64)
    # The curation reaction; None means the default pin (📌 / :pushpin:).
    emoji: str | None = Field(default=None, max_length=64)
    feed_enabled: bool = True
    next_digest_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    last_digest_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class CuratedItem(SQLModel, table=True):
    """One link in the library, however many times (and however spelled) it was shared."""

    __tablename__ = "curated_item"
    __table_args__ = (
        UniqueConstraint("platform", "workspace_id", "url_key"),
        Index("ix_curated_item_shared", "platform", "workspace_id", "created_at"),
        Index("ix_curated_item_title_due", "title_status", "title_due_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    platform: str = Field(max_length=16)
    workspace_id: str = Field(max_length=64)
    # sha256 of the normalised URL: a fixed-size unique key for any URL length.
    url_key: str = Field(max_length=64)
    url: str = Field(max_length=2000)
    domain: str = Field(max_length=255)
    title: str = Field(max_length=300)
    title_status: str = Field(default=TITLE_PENDING, max_length=16)
    title_attempts: int = 0
    # When the title fetch is next due (or leased until); None once settled.
    title_due_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    note: str | None = Field(default=None, sa_column=Column(Text))
    tags: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    shared_by: str = Field(max_length=64)
    source_channel_id: str | None = Field(default=None, max_length=64)
    source_message_id: str | None = Field(default=None, max_length=64)
    source_link: str | None = Field(default=None, sa_column=Column(Text))
    vote_count: int = 0
    featured: bool = False
    featured_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    featured_by: str | None = Field(default=None, max_length=64)
    hidden: bool = False
    hidden_by: str | None = Field(default=None, max_length=64)
    # Lowercase " title note domain #tag … " for portable LIKE search and tag filters.
    search_text: str = Field(default="", sa_column=Column(Text, nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)

    def refresh_search_text(self) -> None:
        # "#" is kept for tags only, so a tag filter never matches "#nps" in a title.
        free_text = " ".join((self.title, self.note or "", self.domain)).replace("#", " ")
        words = [*free_text.lower().split(), *(f"#{tag}" for tag in self.tags)]
        self.search_text = f" {' '.join(words)} "


class CurationVote(SQLModel, table=True):
    """One member's vote for an item: their nomination, reaction or upvote button."""

    __tablename__ = "curation_vote"
    __table_args__ = (UniqueConstraint("item_id", "user_id"),)

    id: int | None = Field(default=None, primary_key=True)
    item_id: int = Field(foreign_key="curated_item.id")
    user_id: str = Field(max_length=64)
    # nomination | reaction | upvote
    kind: str = Field(max_length=16)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class CurationDigest(SQLModel, table=True):
    """One weekly digest that went out: what it carried and to how many, kept so the
    figures do not depend on outbox rows, which may be pruned."""

    __tablename__ = "curation_digest"
    __table_args__ = (UniqueConstraint("platform", "workspace_id", "occurrence"),)

    id: int | None = Field(default=None, primary_key=True)
    platform: str = Field(max_length=16)
    workspace_id: str = Field(max_length=64)
    occurrence: datetime = Field(sa_type=UTCDateTime)
    items: int
    to_channel: bool
    subscribers: int


class CurationSubscriber(SQLModel, table=True):
    """A member who gets the weekly digest by DM."""

    __tablename__ = "curation_subscriber"
    __table_args__ = (UniqueConstraint("platform", "workspace_id", "user_id"),)

    id: int | None = Field(default=None, primary_key=True)
    platform: str = Field(max_length=16)
    workspace_id: str = Field(max_length=64)
    user_id: str = Field(max_length=64)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class CurationCurator(SQLModel, table=True):
    """A member an admin allowed to feature, hide and retag items (admins always can)."""

    __tablename__ = "curation_curator"
    __table_args__ = (UniqueConstraint("platform", "workspace_id", "user_id"),)

    id: int | None = Field(default=None, primary_key=True)
    platform: str = Field(max_length=16)
    workspace_id: str = Field(max_length=64)
    user_id: str = Field(max_length=64)
    added_by: str = Field(max_length=64)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


async def get_community(
    session: AsyncSession, platform: str, workspace_id: str
) -> Community | None:
    """The community, if Kindred knows it (the public feed must not create one)."""
    query = select(Community).where(
        col(Community.platform) == platform, col(Community.workspace_id) == workspace_id
    )
    return (await session.execute(query)).scalar_one_or_none()


# --- Settings --------------------------------------------------------------------


async def get_settings(
    session: AsyncSession, platform: str, workspace_id: str
) -> CurationSettings | None:
    query = select(CurationSettings).where(
        col(CurationSettings.platform) == platform,
        col(CurationSettings.workspace_id) == workspace_id,
    )
    return (await session.execute(query)).scalar_one_or_none()


async def add_settings(session: AsyncSession, settings: CurationSettings) -> CurationSettings:
    """Insert a community's settings; when a concurrent handler won, use its row."""
    try:
        async with session.begin_nested():
            session.add(settings)
            await session.flush()
    except IntegrityError:
        existing = await get_settings(session, settings.platform, settings.workspace_id)
        assert existing is not None
        return existing
    return settings


async def due_digests(session: AsyncSession, now: datetime) -> list[CurationSettings]:
    query = (
        select(CurationSettings)
        .where(
            col(CurationSettings.digest_enabled).is_(True),
            col(CurationSettings.next_digest_at) <= now,
        )
        .order_by(col(CurationSettings.next_digest_at))
    )
    return list((await session.execute(query)).scalars())


# --- Items and votes -------------------------------------------------------------


async def find_item(
    session: AsyncSession, platform: str, workspace_id: str, url_key: str
) -> CuratedItem | None:
    query = select(CuratedItem).where(
        col(CuratedItem.platform) == platform,
        col(CuratedItem.workspace_id) == workspace_id,
        col(CuratedItem.url_key) == url_key,
    )
    return (await session.execute(query)).scalar_one_or_none()


async def get_item(
    session: AsyncSession, platform: str, workspace_id: str, item_id: int
) -> CuratedItem | None:
    query = select(CuratedItem).where(
        col(CuratedItem.platform) == platform,
        col(CuratedItem.workspace_id) == workspace_id,
        col(CuratedItem.id) == item_id,
    )
    return (await session.execute(query)).scalar_one_or_none()


async def add_item(session: AsyncSession, item: CuratedItem) -> CuratedItem | None:
    """Insert a new item; None when the same link was added concurrently."""
    item.refresh_search_text()
    try:
        async with session.begin_nested():
            session.add(item)
            await session.flush()
    except IntegrityError:
        return None
    return item


async def add_vote(
    session: AsyncSession,
    item: CuratedItem,
    user_id: str,
    kind: str,
    at: datetime | None = None,
) -> bool:
    """Count one member's vote once; False when they had already voted. `at` is
    the bot's clock (simulated in the console), so figures per period match it."""
    assert item.id is not None
    vote = CurationVote(item_id=item.id, user_id=user_id, kind=kind)
    if at is not None:
        vote.created_at = at
    try:
        async with session.begin_nested():
            session.add(vote)
            await session.flush()
    except IntegrityError:
        return False
    # An SQL increment, so concurrent votes on PostgreSQL never lose a count.
    await session.execute(
        update(CuratedItem)
        .where(col(CuratedItem.id) == item.id)
        .values(vote_count=CuratedItem.vote_count + 1)
        .execution_options(synchronize_session=False)
    )
    await session.refresh(item, ["vote_count"])
    return True


async def voted_item_ids(session: AsyncSession, user_id: str, item_ids: Sequence[int]) -> set[int]:
    """Which of these items the member has already voted for."""
    if not item_ids:
        return set()
    query = select(col(CurationVote.item_id)).where(
        col(CurationVote.user_id) == user_id, col(CurationVote.item_id).in_(list(item_ids))
    )
    return set((await session.execute(query)).scalars())


def _visible(platform: str, workspace_id: str) -> list[Any]:
    return [
        CuratedItem.platform == platform,
        CuratedItem.workspace_id == workspace_id,
        col(CuratedItem.hidden).is_(False),
    ]


async def items_shared_between(
    session: AsyncSession, platform: str, workspace_id: str, since: datetime, until: datetime
) -> list[CuratedItem]:
    """Visible items first shared in `[since, until)`: a digest's candidates (the
    half-open windows of consecutive digests never overlap)."""
    query = select(CuratedItem).where(
        *_visible(platform, workspace_id),
        col(CuratedItem.created_at) >= since,
        col(CuratedItem.created_at) < until,
    )
    return list((await session.execute(query)).scalars())


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


async def top_items(
    session: AsyncSession,
    platform: str,
    workspace_id: str,
    *,
    since: datetime | None,
    tag: str | None,
    limit: int,
) -> list[CuratedItem]:
    """Most-voted visible items, newest first among equals."""
    conditions = _visible(platform, workspace_id)
    if since is not None:
        conditions.append(CuratedItem.created_at > since)
    if tag is not None:
        conditions.append(
            col(CuratedItem.search_text).like(f"% #{_like_escape(tag)} %", escape="\\")
        )
    query = (
        select(CuratedItem)
        .where(*conditions)
        .order_by(col(CuratedItem.vote_count).desc(), col(CuratedItem.created_at).desc())
        .limit(limit)
    )
    return list((await session.execute(query)).scalars())


async def search_items(
    session: AsyncSession, platform: str, workspace_id: str, words: Sequence[str], limit: int
) -> list[CuratedItem]:
    """Visible items whose title, note, domain or tags contain every word."""
    conditions = _visible(platform, workspace_id)
    for word in words:
        pattern = f"%{_like_escape(word.lower())}%"
        conditions.append(col(CuratedItem.search_text).like(pattern, escape="\\"))
    query = (
        select(CuratedItem)
        .where(*conditions)
        .order_by(col(CuratedItem.vote_count).desc(), col(CuratedItem.created_at).desc())
        .limit(limit)
    )
    return list((await session.execute(query)).scalars())


async def featured_items(
    session: AsyncSession, platform: str, workspace_id: str, limit: int
) -> list[CuratedItem]:
    query = (
        select(CuratedItem)
        .where(*_visible(platform, workspace_id), col(CuratedItem.featured).is_(True))
        .order_by(col(CuratedItem.featured_at).desc(), col(CuratedItem.id).desc())
        .limit(limit)
    )
    return list((await session.execute(query)).scalars())


# --- Title fetches ---------------------------------------------------------------


async def lease_title_fetches(
    session: AsyncSession, now: datetime, lease_until: datetime, limit: int
) -> list[tuple[int, str, int]]:
    """Take up to `limit` due title fetches (id, url, attempts so far) until
    `lease_until`; a row leased by another replica is not due, so each page is
    fetched by one replica at a time."""
    due = (
        select(col(CuratedItem.id))
        .where(col(CuratedItem.title_status) == TITLE_PENDING, col(CuratedItem.title_due_at) <= now)
        .order_by(col(CuratedItem.title_due_at))
        .limit(limit)
    )
    ids = list((await session.execute(due)).scalars())
    if not ids:
        return []
    leased = await session.execute(
        update(CuratedItem)
        .where(
            col(CuratedItem.id).in_(ids),
            col(CuratedItem.title_status) == TITLE_PENDING,
            col(CuratedItem.title_due_at) <= now,
        )
        .values(title_due_at=lease_until, title_attempts=CuratedItem.title_attempts + 1)
        .returning(col(CuratedItem.id), col(CuratedItem.url), col(CuratedItem.title_attempts))
        .execution_options(synchronize_session=False)
    )
    # A primary key is never NULL; the check only narrows the column's Optional.
    rows = leased.all()
    return [(row_id, url, attempts) for row_id, url, attempts in rows if row_id is not None]


async def record_title(
    session: AsyncSession, item_id: int, title: str | None, *, retry_at: datetime | None
) -> None:
    """Store a fetched title; without one, try again at `retry_at` or give up
    (the provisional title stays)."""
    item = await session.get(CuratedItem, item_id)
    if item is None or item.title_status != TITLE_PENDING:
        return
    if title:
        item.title = title
        item.title_status = TITLE_FETCHED
        item.title_due_at = None
        item.refresh_search_text()
    elif retry_at is not None:
        item.title_due_at = retry_at
    else:
        item.title_status = TITLE_FAILED
        item.title_due_at = None


# --- Subscribers and curators ----------------------------------------------------


async def subscribe(session: AsyncSession, platform: str, workspace_id: str, user_id: str) -> bool:
    """False when the member was already subscribed."""
    try:
        async with session.begin_nested():
            session.add(
                CurationSubscriber(platform=platform, workspace_id=workspace_id, user_id=user_id)
            )
            await session.flush()
    except IntegrityError:
        return False
    return True


async def unsubscribe(
    session: AsyncSession, platform: str, workspace_id: str, user_id: str
) -> bool:
    result = await session.execute(
        delete(CurationSubscriber).where(
            col(CurationSubscriber.platform) == platform,
            col(CurationSubscriber.workspace_id) == workspace_id,
            col(CurationSubscriber.user_id) == user_id,
        )
    )
    return bool(rowcount(result))


async def subscribers(session: AsyncSession, platform: str, workspace_id: str) -> list[str]:
    query = (
        select(col(CurationSubscriber.user_id))
        .where(
            col(CurationSubscriber.platform) == platform,
            col(CurationSubscriber.workspace_id) == workspace_id,
        )
        .order_by(col(CurationSubscriber.id))
    )
    return list((await session.execute(query)).scalars())


async def is_curator(session: AsyncSession, platform: str, workspace_id: str, user_id: str) -> bool:
    query = select(col(CurationCurator.id)).where(
        col(CurationCurator.platform) == platform,
        col(CurationCurator.workspace_id) == workspace_id,
        col(CurationCurator.user_id) == user_id,
    )
    return (await session.execute(query)).first() is not None


async def set_curator(
    session: AsyncSession,
    platform: str,
    workspace_id: str,
    user_id: str,
    *,
    enabled: bool,
    added_by: str,
) -> bool:
    """Add or remove a curator; False when nothing changed."""
    if not enabled:
        result = await session.execute(
            delete(CurationCurator).where(
                col(CurationCurator.platform) == platform,
                col(CurationCurator.workspace_id) == workspace_id,
                col(CurationCurator.user_id) == user_id,
            )
        )
        return bool(rowcount(result))
    try:
        async with session.begin_nested():
            session.add(
                CurationCurator(
                    platform=platform, workspace_id=workspace_id, user_id=user_id, added_by=added_by
                )
            )
            await session.flush()
    except IntegrityError:
        return False
    return True


async def curators(session: AsyncSession, platform: str, workspace_id: str) -> list[str]:
    query = (
        select(col(CurationCurator.user_id))
        .where(
            col(CurationCurator.platform) == platform,
            col(CurationCurator.workspace_id) == workspace_id,
        )
        .order_by(col(CurationCurator.id))
    )
    return list((await session.execute(query)).scalars())


# --- Figures for the health report (bot/services/curation.py `metrics`) -----------
# Each counts one community's rows in a half-open period [start, end).


async def count_links_shared(
    session: AsyncSession, platform: str, workspace_id: str, start: datetime, end: datetime
) -> int:
    """Items first shared in the period (hidden ones too: they were shared)."""
    query = select(func.count(col(CuratedItem.id))).where(
        col(CuratedItem.platform) == platform,
        col(CuratedItem.workspace_id) == workspace_id,
        col(CuratedItem.created_at) >= start,
        col(CuratedItem.created_at) < end,
    )
    return int((await session.execute(query)).scalar_one())


async def count_distinct_sharers(
    session: AsyncSession, platform: str, workspace_id: str, start: datetime, end: datetime
) -> int:
    """Members who first shared at least one item in the period."""
    query = select(func.count(distinct(col(CuratedItem.shared_by)))).where(
        col(CuratedItem.platform) == platform,
        col(CuratedItem.workspace_id) == workspace_id,
        col(CuratedItem.created_at) >= start,
        col(CuratedItem.created_at) < end,
    )
    return int((await session.execute(query)).scalar_one())


async def count_links_featured(
    session: AsyncSession, platform: str, workspace_id: str, start: datetime, end: datetime
) -> int:
    """Items a curator featured in the period and that are still featured."""
    query = select(func.count(col(CuratedItem.id))).where(
        col(CuratedItem.platform) == platform,
        col(CuratedItem.workspace_id) == workspace_id,
        col(CuratedItem.featured).is_(True),
        col(CuratedItem.featured_at) >= start,
        col(CuratedItem.featured_at) < end,
    )
    return int((await session.execute(query)).scalar_one())


async def count_votes(
    session: AsyncSession, platform: str, workspace_id: str, start: datetime, end: datetime
) -> int:
    """Votes (nominations, reactions and upvotes) cast in the period."""
    query = (
        select(func.count(col(CurationVote.id)))
        .join(CuratedItem, col(CuratedItem.id) == col(CurationVote.item_id))
        .where(
            col(CuratedItem.platform) == platform,
            col(CuratedItem.workspace_id) == workspace_id,
            col(CurationVote.created_at) >= start,
            col(CurationVote.created_at) < end,
        )
    )
    return int((await session.execute(query)).scalar_one())


async def record_digest(session: AsyncSession, digest: CurationDigest) -> None:
    session.add(digest)
    await session.flush()


async def digest_figures(
    session: AsyncSession, platform: str, workspace_id: str, start: datetime, end: datetime
) -> tuple[int, int, int]:
    """Digests sent in [start, end): how many, the items they carried, and the
    subscribers they reached by DM."""
    query = select(
        func.count(col(CurationDigest.id)),
        func.coalesce(func.sum(col(CurationDigest.items)), 0),
        func.coalesce(func.sum(col(CurationDigest.subscribers)), 0),
    ).where(
        col(CurationDigest.platform) == platform,
        col(CurationDigest.workspace_id) == workspace_id,
        col(CurationDigest.occurrence) >= start,
        col(CurationDigest.occurrence) < end,
    )
    sent, items, reached = (await session.execute(query)).one()
    return int(sent), int(items), int(reached)


async def next_digest_due(session: AsyncSession, now: datetime) -> datetime | None:
    """When the first enabled digest after `now` is due (the digest tick's
    `next_due`), from ix_curation_settings_due."""
    query = (
        select(col(CurationSettings.next_digest_at))
        .where(
            col(CurationSettings.digest_enabled).is_(True),
            col(CurationSettings.next_digest_at) > now,
        )
        .order_by(col(CurationSettings.next_digest_at))
        .limit(1)
    )
    return (await session.execute(query)).scalar_one_or_none()


async def next_title_due(session: AsyncSession, now: datetime) -> datetime | None:
    """When the first pending title fetch (or retry) after `now` is due (the
    titles tick's `next_due`), from ix_curated_item_title_due."""
    query = (
        select(col(CuratedItem.title_due_at))
        .where(col(CuratedItem.title_status) == TITLE_PENDING, col(CuratedItem.title_due_at) > now)
        .order_by(col(CuratedItem.title_due_at))
        .limit(1)
    )
    return (await session.execute(query)).scalar_one_or_none()


async def member_actions(
    session: AsyncSession, platform: str, workspace_id: str, start: datetime, end: datetime
) -> list[tuple[str, str, datetime]]:
    """(user id, what, when) in [start, end): sharing a link ("shared"), a shared
    link being featured by the curators ("featured", to its sharer), and a vote
    ("voted"). Hidden items count for none of them."""
    visible = _visible(platform, workspace_id)
    shared = select(col(CuratedItem.shared_by), col(CuratedItem.created_at)).where(
        *visible, col(CuratedItem.created_at) >= start, col(CuratedItem.created_at) < end
    )
    featured = select(col(CuratedItem.shared_by), col(CuratedItem.featured_at)).where(
        *visible,
        col(CuratedItem.featured),
        col(CuratedItem.featured_at) >= start,
        col(CuratedItem.featured_at) < end,
    )
    voted = (
        select(col(CurationVote.user_id), col(CurationVote.created_at))
        .join(CuratedItem, col(CuratedItem.id) == col(CurationVote.item_id))
        .where(*visible, col(CurationVote.created_at) >= start, col(CurationVote.created_at) < end)
    )
    actions: list[tuple[str, str, datetime]] = []
    for kind, query in (("shared", shared), ("featured", featured), ("voted", voted)):
        rows = (await session.execute(query)).all()
        # The range filter already excludes NULL moments; this tells the type checker.
        actions += [(user_id, kind, at) for user_id, at in rows if at is not None]
    return actions


async def stored_about(
    session: AsyncSession, platform: str, workspace_id: str, user_id: str
) -> tuple[int, int, bool]:
    """A member's shared links and votes in the community's library, and whether
    they get the digest."""
    community = (
        col(CuratedItem.platform) == platform,
        col(CuratedItem.workspace_id) == workspace_id,
    )
    shared = (
        await session.execute(
            select(func.count(col(CuratedItem.id))).where(
                *community, col(CuratedItem.shared_by) == user_id
            )
        )
    ).scalar_one()
    votes = (
        await session.execute(
            select(func.count(col(CurationVote.id)))
            .join(CuratedItem, col(CuratedItem.id) == col(CurationVote.item_id))
            .where(*community, col(CurationVote.user_id) == user_id)
        )
    ).scalar_one()
    subscribed = user_id in await subscribers(session, platform, workspace_id)
    return int(shared), int(votes), subscribed
