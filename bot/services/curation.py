"""The weekly curation digest: per community, on its weekday and hour, the best
items shared since the last digest, posted to the digest channel and sent to
subscribers by DM, exactly once across replicas (the tick pattern)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from apscheduler.triggers.cron import CronTrigger
from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.mentions import mention
from bot.core.outbox import Outbox
from bot.core.platform import Button, Message
from bot.core.runtime import Runtime
from bot.core.scheduler import ClaimedWork
from bot.core.templates import Templates, Trusted
from bot.domain.curation import Candidate, link_markup, select_digest
from storage import curation as store
from storage.curation import CuratedItem, CurationSettings

log = logging.getLogger(__name__)

# Claims and outbox keys of digests are named after it.
DIGEST_JOB = "curation.digest"
# The first digest of a community looks back one week.
FIRST_DIGEST_WINDOW = timedelta(days=7)
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def digest_trigger(settings: CurationSettings) -> CronTrigger:
    return CronTrigger(
        day_of_week=settings.digest_weekday,
        hour=settings.digest_hour,
        minute=0,
        timezone=settings.timezone,
    )


def next_digest_after(settings: CurationSettings, moment: datetime) -> datetime:
    """The first scheduled digest strictly after `moment` (DST handled by the trigger)."""
    fire = digest_trigger(settings).get_next_fire_time(None, moment + timedelta(seconds=1))
    if not isinstance(fire, datetime):
        raise ValueError("a weekly cron trigger always fires again")
    return fire


def reschedule(settings: CurationSettings, now: datetime) -> None:
    """After the schedule changed: the next digest is the next matching hour."""
    settings.next_digest_at = next_digest_after(settings, now)


def latest_due(settings: CurationSettings, now: datetime) -> datetime | None:
    """The most recent scheduled time at or before `now`, from the stored due time on:
    a replica that was down for weeks sends one digest, not one per missed week."""
    due = settings.next_digest_at
    if due is None or due > now:
        return None
    while (following := next_digest_after(settings, due)) <= now:
        due = following
    return due


@dataclass(frozen=True, slots=True)
class DigestContent:
    items: list[CuratedItem]
    since: datetime
    until: datetime


async def digest_content(
    session: AsyncSession, settings: CurationSettings, until: datetime
) -> DigestContent:
    """What a digest at `until` contains: ranked, diversified items shared since
    the previous digest (hidden items never)."""
    since = settings.last_digest_at or until - FIRST_DIGEST_WINDOW
    shared = await store.items_shared_between(
        session, settings.platform, settings.workspace_id, since, until
    )
    by_id = {item.id: item for item in shared}
    chosen = select_digest((candidate(item) for item in shared), until)
    return DigestContent([by_id[choice.item_id] for choice in chosen], since, until)


def candidate(item: CuratedItem) -> Candidate:
    assert item.id is not None
    return Candidate(
        item_id=item.id,
        votes=item.vote_count,
        shared_at=item.created_at,
        sharer=item.shared_by,
        domain=item.domain,
        tags=tuple(item.tags),
        featured=item.featured,
    )


def digest_message(templates: Templates, content: DigestContent) -> Message:
    """The digest as one message, with an upvote button per item."""
    text = templates.render(
        "curation/digest_post",
        items=[
            {
                "id": item.id,
                "link": Trusted(link_markup(item.title, item.url)),
                "domain": item.domain,
                "note": item.note,
                "tags": " ".join(f"#{tag}" for tag in item.tags),
                "votes": item.vote_count,
                "sharer": Trusted(mention(item.shared_by)),
                "featured": item.featured,
            }
            for item in content.items
        ],
        since=content.since,
        until=content.until,
    )
    buttons = tuple(
        Button(f"👍 #{item.id}", "curate.upvote", str(item.id)) for item in content.items
    )
    return Message(text=text, buttons=buttons)


def digest_work(runtime: Runtime, settings_id: int, now: datetime) -> ClaimedWork:
    async def work(session: AsyncSession, occurrence: datetime) -> None:
        settings = await session.get(CurationSettings, settings_id)
        if settings is None:
            return
        await send_digest(runtime.templates, session, settings, occurrence)
        settings.last_digest_at = occurrence
        settings.next_digest_at = next_digest_after(settings, max(occurrence, now))

    return work


async def send_digest(
    templates: Templates, session: AsyncSession, settings: CurationSettings, occurrence: datetime
) -> int:
    """Queue the digest for `occurrence` in the claim's transaction; an empty week
    sends nothing. Returns how many items it carried."""
    content = await digest_content(session, settings, occurrence)
    if not content.items:
        log.info("no digest for %s/%s: nothing shared", settings.platform, settings.workspace_id)
        return 0
    message = digest_message(templates, content)
    outbox = Outbox(session, settings.platform, settings.workspace_id)
    key = f"{DIGEST_JOB}:{settings.id}:{occurrence.isoformat()}"
    if settings.digest_channel_id:
        await outbox.post(settings.digest_channel_id, message, key=f"{key}:post")
    for user_id in await store.subscribers(session, settings.platform, settings.workspace_id):
        await outbox.dm(user_id, message, key=f"{key}:dm:{user_id}")
    return len(content.items)
