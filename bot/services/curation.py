"""Curation's use cases, shared by its commands (bot/commands/curation.py) and its
ticks (bot/jobs/curation.py): nominating by command and by reaction, votes,
curator actions, top lists and searches, settings, digest subscriptions, the
weekly digest (per community, on its weekday and hour, the best items shared
since the last one, posted to the digest channel and sent to subscribers by DM,
exactly once across replicas) and the Atom feed of featured items.

Command use cases take the handler's `Context`: they act as the member who
sent the inbound event, in its transaction, and the curator check asks the
platform whether that member is an admin."""

from __future__ import annotations

import logging
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from apscheduler.triggers.cron import CronTrigger
from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.context import Context
from bot.core.errors import CommandError
from bot.core.figures import Figures, MemberAction, Period, Stored, as_member_actions
from bot.core.formatting import plural
from bot.core.mentions import mention
from bot.core.outbox import Outbox
from bot.core.platform import Button, ButtonStyle, Identity, Message, MessageRef
from bot.core.runtime import Runtime
from bot.core.scheduler import ClaimedWork
from bot.core.templates import Templates, Trusted
from bot.domain.curation import (
    PERIODS,
    Candidate,
    CurationError,
    Nomination,
    NormalisedUrl,
    clean_text,
    emoji_matches,
    fallback_title,
    first_link,
    link_markup,
    merged_tags,
    normalise_url,
    select_digest,
    tag_text,
)
from bot.services.curation_titles import title_fetches
from storage import curation as store
from storage.curation import CuratedItem, CurationDigest, CurationSettings
from storage.members import members_by_user_ids

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
                "tags": tag_text(item.tags),
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
    subscribers = await store.subscribers(session, settings.platform, settings.workspace_id)
    for user_id in subscribers:
        await outbox.dm(user_id, message, key=f"{key}:dm:{user_id}")
    await store.record_digest(
        session,
        CurationDigest(
            platform=settings.platform,
            workspace_id=settings.workspace_id,
            occurrence=occurrence,
            items=len(content.items),
            to_channel=settings.digest_channel_id is not None,
            subscribers=len(subscribers),
        ),
    )
    return len(content.items)


# --- Settings ----------------------------------------------------------------------

WEEKDAY_NAMES = dict(
    zip(
        WEEKDAYS,
        ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"),
        strict=True,
    )
)
FEED_PATH = "/feeds/{platform}/{workspace}.atom"
# What `curate setup` may change, by its option name.
SETTINGS_FIELDS = {
    "timezone": "timezone",
    "emoji": "emoji",
    "channel": "digest_channel_id",
    "weekday": "digest_weekday",
    "hour": "digest_hour",
    "digest": "digest_enabled",
    "feed": "feed_enabled",
}
# Changing any of these moves the next digest.
SCHEDULE_OPTIONS = frozenset({"timezone", "weekday", "hour", "digest"})


async def community_settings(ctx: Context) -> CurationSettings:
    """The community's settings, created with a weekly digest on first use."""
    platform, workspace_id = ctx.inbound.platform, ctx.inbound.workspace_id
    existing = await store.get_settings(ctx.session, platform, workspace_id)
    if existing is not None:
        return existing
    settings = CurationSettings(
        platform=platform,
        workspace_id=workspace_id,
        timezone=ctx.runtime.settings.timezone,
        created_at=ctx.now(),
    )
    reschedule(settings, ctx.now())
    return await store.add_settings(ctx.session, settings)


async def change_settings(ctx: Context, changes: dict[str, Any]) -> str:
    """Apply validated `curate setup` options (none: only show the settings)."""
    settings = await community_settings(ctx)
    for option, value in changes.items():
        setattr(settings, SETTINGS_FIELDS[option], value)
    if SCHEDULE_OPTIONS & set(changes):
        reschedule(settings, ctx.now())
    text = await settings_text(ctx, settings)
    return f"Saved.\n\n{text}" if changes else text


async def settings_text(ctx: Context, settings: CurationSettings) -> str:
    platform, workspace_id = ctx.inbound.platform, ctx.inbound.workspace_id
    curators = await store.curators(ctx.session, platform, workspace_id)
    subscribers = await store.subscribers(ctx.session, platform, workspace_id)
    return ctx.runtime.templates.render(
        "curation/settings",
        enabled=settings.digest_enabled,
        schedule=Trusted(schedule_text(settings)),
        next_digest=Trusted(local_time(settings, settings.next_digest_at)),
        channel=Trusted(f"<#{settings.digest_channel_id}>") if settings.digest_channel_id else None,
        subscribers=len(subscribers),
        emoji=settings.emoji or "📌 (:pushpin:)",
        curators=Trusted(", ".join(mention(user_id) for user_id in curators)),
        feed=settings.feed_enabled,
        feed_path=FEED_PATH.format(platform=platform, workspace=workspace_id),
    )


def schedule_text(settings: CurationSettings) -> str:
    day = WEEKDAY_NAMES.get(settings.digest_weekday, settings.digest_weekday)
    return f"{day}s at {settings.digest_hour:02d}:00 {settings.timezone}"


def local_time(settings: CurationSettings, moment: datetime | None) -> str:
    if moment is None:
        return "not scheduled"
    local = moment.astimezone(ZoneInfo(settings.timezone))
    return f"{local:%a %d %b %Y %H:%M} {settings.timezone}"


# --- Nominating --------------------------------------------------------------------

PRIVATE_REFUSAL = (
    "This is a private conversation, and Kindred never curates from private channels. "
    "Share the link in a public channel instead."
)
HIDDEN_REFUSAL = "A curator hid that link from the library, so it can't be nominated again."


@dataclass(frozen=True, slots=True)
class Nominated:
    item: CuratedItem
    created: bool
    # False when this member had already voted for the item.
    counted: bool
    hidden: bool = False


async def nominate(
    ctx: Context,
    link: NormalisedUrl,
    *,
    kind: str,
    note: str = "",
    tags: Sequence[str] = (),
    fallback_text: str = "",
    message: MessageRef | None = None,
) -> Nominated:
    """Add the link to the library, or count the member's vote if it is there."""
    platform, workspace_id = ctx.inbound.platform, ctx.inbound.workspace_id
    user_id = ctx.inbound.user_id
    await community_settings(ctx)
    item = await store.find_item(ctx.session, platform, workspace_id, link.key)
    created = False
    if item is None:
        fresh = CuratedItem(
            platform=platform,
            workspace_id=workspace_id,
            url_key=link.key,
            url=link.url,
            domain=link.domain[:255],
            title=fallback_title(link, fallback_text),
            title_due_at=ctx.now(),
            note=note or None,
            tags=list(tags),
            shared_by=user_id,
            source_channel_id=ctx.inbound.channel_id,
            source_message_id=message.message_id if message else None,
            source_link=message.permalink if message else None,
            created_at=ctx.now(),
        )
        item = await store.add_item(ctx.session, fresh)
        if item is None:
            # Someone shared the same link at the same moment: theirs is the item.
            item = await store.find_item(ctx.session, platform, workspace_id, link.key)
            assert item is not None
        else:
            created = True
            title_fetches(ctx.runtime).fetch_after_commit(ctx.session)
    if item.hidden:
        return Nominated(item, created=False, counted=False, hidden=True)
    if not created:
        _merge_nomination(item, note, tags)
    counted = await store.add_vote(ctx.session, item, user_id, kind, ctx.now())
    return Nominated(item, created, counted)


def _merge_nomination(item: CuratedItem, note: str, tags: Sequence[str]) -> None:
    """A later nomination adds its tags (up to the limit) and, if the item had no
    note yet, its note."""
    merged = merged_tags(item.tags, tags)
    if merged != item.tags or (note and not item.note):
        item.tags = merged
        item.note = item.note or note or None
        item.refresh_search_text()


async def add_by_command(ctx: Context, link: NormalisedUrl, nomination: Nomination) -> Message:
    """`curate add`: the item card, headed by what the nomination did."""
    result = await nominate(
        ctx,
        link,
        kind="nomination",
        note=nomination.note,
        tags=nomination.tags,
        fallback_text=nomination.note,
    )
    if result.hidden:
        raise CommandError(HIDDEN_REFUSAL)
    if result.created:
        status = "📌 Added to the community library. I'm fetching the page's title."
    elif result.counted:
        status = "📌 That link is already in the library: your nomination counts as a vote."
    else:
        status = "You already nominated or voted for that link."
    return await item_message(ctx, result.item, status, voted=True)


async def add_by_reaction(ctx: Context) -> None:
    """The curation emoji on a message with a link nominates the link; a new item is
    confirmed by DM (a reaction has no reply on Slack or Discord), a vote silently."""
    inbound = ctx.inbound
    if inbound.channel_is_private or not inbound.reaction:
        return
    settings = await store.get_settings(ctx.session, inbound.platform, inbound.workspace_id)
    if not emoji_matches(settings.emoji if settings else None, inbound.reaction):
        return
    found = first_link(inbound.text)
    if found is None:
        return
    try:
        link = normalise_url(found)
    except CurationError:
        return
    result = await nominate(
        ctx, link, kind="reaction", fallback_text=inbound.text, message=inbound.message
    )
    if result.hidden or not result.counted or not result.created:
        return
    item = result.item
    shown = Trusted(link_markup(item.title, item.url))
    await ctx.outbox.dm(
        inbound.user_id,
        Message(f"📌 Saved to the community library: {shown} (#{item.id}). Thanks for sharing!"),
        key=f"curate-saved:{item.id}:{inbound.user_id}",
    )


# --- Reading the library -----------------------------------------------------------

LIST_LIMIT = 10


async def top_message(ctx: Context, period: str, tag: str | None) -> Message:
    span = PERIODS[period]
    items = await store.top_items(
        ctx.session,
        ctx.inbound.platform,
        ctx.inbound.workspace_id,
        since=ctx.now() - span if span else None,
        tag=tag,
        limit=LIST_LIMIT,
    )
    heading = {"week": "Top links this week", "month": "Top links this month"}.get(
        period, "Top links of all time"
    )
    if tag:
        heading += f" tagged #{tag}"
    empty = "Nothing yet. Share one with `/kindred curate <link>`, or react to a link with 📌."
    return await list_message(ctx, heading, items, empty)


async def search_message(ctx: Context, words: list[str]) -> Message:
    items = await store.search_items(
        ctx.session, ctx.inbound.platform, ctx.inbound.workspace_id, words, LIST_LIMIT
    )
    heading = f"Links matching “{' '.join(words)}”"
    return await list_message(ctx, heading, items, "No link in the library matches that.")


async def list_message(ctx: Context, heading: str, items: list[CuratedItem], empty: str) -> Message:
    ids = [item.id for item in items if item.id is not None]
    voted = await store.voted_item_ids(ctx.session, ctx.inbound.user_id, ids)
    text = ctx.runtime.templates.render(
        "curation/list",
        heading=heading,
        empty=empty,
        items=[
            {
                "id": item.id,
                "link": Trusted(link_markup(item.title, item.url)),
                "votes": item.vote_count,
                "tags": tag_text(item.tags),
            }
            for item in items
        ],
    )
    buttons = [
        Button(f"👍 #{item.id}", "curate.upvote", str(item.id))
        for item in items
        if item.id not in voted
    ]
    return Message(text=text, buttons=tuple(buttons))


async def item_view(ctx: Context, item_id: int) -> Message:
    """`curate item`: one item; curators also see hidden ones."""
    item = await find_item(ctx, item_id, include_hidden=await is_curator(ctx))
    voted = await store.voted_item_ids(ctx.session, ctx.inbound.user_id, [item_id])
    return await item_message(ctx, item, "", voted=bool(voted))


def item_card(templates: Templates, item: CuratedItem) -> str:
    return templates.render(
        "curation/item",
        link=Trusted(link_markup(item.title, item.url)),
        id=item.id,
        domain=item.domain,
        votes=item.vote_count,
        tags=tag_text(item.tags),
        sharer=Trusted(mention(item.shared_by)),
        note=item.note,
        featured=item.featured,
        hidden=item.hidden,
    )


async def item_message(ctx: Context, item: CuratedItem, status: str, *, voted: bool) -> Message:
    buttons: list[Button] = []
    if not voted and not item.hidden:
        buttons.append(Button("👍 Upvote", "curate.upvote", str(item.id), ButtonStyle.PRIMARY))
    if await is_curator(ctx):
        buttons += [
            Button("Unfeature" if item.featured else "⭐ Feature", "curate.feature", str(item.id)),
            Button(
                "Unhide" if item.hidden else "Hide",
                "curate.hide",
                str(item.id),
                ButtonStyle.DEFAULT if item.hidden else ButtonStyle.DANGER,
            ),
            Button("Retag", "curate.retag", str(item.id)),
        ]
    card = item_card(ctx.runtime.templates, item)
    return Message(text=f"{status}\n\n{card}" if status else card, buttons=tuple(buttons))


async def find_item(ctx: Context, item_id: int, *, include_hidden: bool) -> CuratedItem:
    item = await store.get_item(
        ctx.session, ctx.inbound.platform, ctx.inbound.workspace_id, item_id
    )
    if item is None or (item.hidden and not include_hidden):
        raise CommandError(f"There is no item #{item_id} in the library.")
    return item


def button_item_id(value: str) -> int:
    """The item a library button (made here, valued by item id) points at."""
    value = value.strip()
    if not value.isdigit():
        raise CommandError("That button no longer points at a library item.")
    return int(value)


# --- Votes and curator actions -----------------------------------------------------


async def upvote(ctx: Context, button_value: str) -> str:
    item = await find_item(ctx, button_item_id(button_value), include_hidden=False)
    if await store.add_vote(ctx.session, item, ctx.inbound.user_id, "upvote", ctx.now()):
        return f"👍 Counted: #{item.id} now has {plural(item.vote_count, 'vote')}."
    return f"You already voted for #{item.id} ({plural(item.vote_count, 'vote')})."


async def is_curator(ctx: Context) -> bool:
    """Admins always curate; other members when an admin made them curators."""
    if await store.is_curator(
        ctx.session, ctx.inbound.platform, ctx.inbound.workspace_id, ctx.inbound.user_id
    ):
        return True
    return await ctx.is_admin()


async def curated_item(ctx: Context, button_value: str, what: str) -> CuratedItem:
    """The item a curator button points at, for curators only."""
    if not await is_curator(ctx):
        raise CommandError(f"Only curators can {what}. Admins can add curators.")
    return await find_item(ctx, button_item_id(button_value), include_hidden=True)


async def _curator_view(ctx: Context, item: CuratedItem, status: str) -> Message:
    voted = await store.voted_item_ids(ctx.session, ctx.inbound.user_id, [item.id or 0])
    return await item_message(ctx, item, status, voted=bool(voted))


async def toggle_featured(ctx: Context, button_value: str) -> Message:
    item = await curated_item(ctx, button_value, "feature items")
    item.featured = not item.featured
    item.featured_at = ctx.now() if item.featured else None
    item.featured_by = ctx.inbound.user_id if item.featured else None
    status = (
        f"⭐ Featured #{item.id}: it ranks higher in digests and appears in the feed."
        if item.featured
        else f"#{item.id} is no longer featured."
    )
    return await _curator_view(ctx, item, status)


async def toggle_hidden(ctx: Context, button_value: str) -> Message:
    item = await curated_item(ctx, button_value, "hide items")
    item.hidden = not item.hidden
    item.hidden_by = ctx.inbound.user_id if item.hidden else None
    status = (
        f"🙈 Hid #{item.id}: it no longer appears in digests, searches, top lists or the feed."
        if item.hidden
        else f"#{item.id} is back in the library."
    )
    return await _curator_view(ctx, item, status)


async def retag(ctx: Context, item: CuratedItem, tags: Sequence[str]) -> Message:
    item.tags = list(tags)
    item.refresh_search_text()
    status = (
        f"🏷 Tags of #{item.id}: {tag_text(tags)}." if tags else f"Removed the tags of #{item.id}."
    )
    return await item_message(ctx, item, status, voted=True)


async def set_curator(ctx: Context, user_id: str, *, enabled: bool) -> str:
    await ctx.member(user_id)
    changed = await store.set_curator(
        ctx.session,
        ctx.inbound.platform,
        ctx.inbound.workspace_id,
        user_id,
        enabled=enabled,
        added_by=ctx.inbound.user_id,
    )
    who = mention(user_id)
    if enabled:
        return f"{who} is now a curator." if changed else f"{who} was already a curator."
    return f"{who} is no longer a curator." if changed else f"{who} was not a curator."


# --- Digest subscriptions ----------------------------------------------------------


async def subscribe(ctx: Context) -> str:
    settings = await community_settings(ctx)
    added = await store.subscribe(
        ctx.session, ctx.inbound.platform, ctx.inbound.workspace_id, ctx.inbound.user_id
    )
    when = local_time(settings, settings.next_digest_at)
    if not settings.digest_enabled:
        return (
            "Subscribed, but the admins have paused the weekly digest; you'll get it when "
            "they turn it back on."
            if added
            else "You're already subscribed; the admins have paused the digest for now."
        )
    if added:
        return f"Subscribed: the next digest comes by DM on {when}."
    return f"You're already subscribed; the next digest comes on {when}."


async def unsubscribe(ctx: Context) -> str:
    removed = await store.unsubscribe(
        ctx.session, ctx.inbound.platform, ctx.inbound.workspace_id, ctx.inbound.user_id
    )
    if removed:
        return "Unsubscribed: no more digest DMs. `/kindred digest subscribe` to return."
    return "You weren't subscribed to the digest."


async def preview(ctx: Context) -> str:
    settings = await community_settings(ctx)
    # Ranked as the digest will rank it: at its scheduled time, with what is shared so far.
    until = max(settings.next_digest_at or ctx.now(), ctx.now() + timedelta(seconds=1))
    content = await digest_content(ctx.session, settings, until)
    when = local_time(settings, settings.next_digest_at)
    if not settings.digest_enabled:
        header = "The weekly digest is off (`/kindred curate setup digest=on`)."
    else:
        header = f"Next digest: {when}."
    if not content.items:
        return f"{header} Nothing was shared since the last one, so it would be skipped."
    message = digest_message(ctx.runtime.templates, content)
    return f"{header} So far it would say:\n\n{message.text}"


# --- Atom feed ---------------------------------------------------------------------

FEED_ENTRIES = 50
ATOM_NAMESPACE = "http://www.w3.org/2005/Atom"


async def featured_feed(
    runtime: Runtime, platform: str, workspace_id: str, self_url: str
) -> bytes | None:
    """The community's featured items as an Atom feed (RFC 4287), for newsletters and
    feed readers; None when there is no such community or admins switched it off.
    Hidden items never appear."""
    async with runtime.db.transaction() as session:
        community = await store.get_community(session, platform, workspace_id)
        settings = await store.get_settings(session, platform, workspace_id)
        if community is None or (settings is not None and not settings.feed_enabled):
            return None
        items = await store.featured_items(session, platform, workspace_id, FEED_ENTRIES)
        sharers = await _display_names(session, platform, workspace_id, items)
    name = clean_text(community.name) or f"{platform} {workspace_id}"
    updated = max(
        (item.featured_at or item.created_at for item in items), default=community.created_at
    )
    feed = ET.Element("feed", xmlns=ATOM_NAMESPACE)
    ET.SubElement(feed, "id").text = _urn(platform, workspace_id, "featured")
    ET.SubElement(feed, "title").text = f"{name}: featured links"
    ET.SubElement(feed, "subtitle").text = "Links the community's curators chose to keep."
    ET.SubElement(feed, "updated").text = _atom_time(updated)
    ET.SubElement(feed, "link", rel="self", type="application/atom+xml", href=self_url)
    ET.SubElement(ET.SubElement(feed, "author"), "name").text = name
    ET.SubElement(feed, "generator").text = "Kindred"
    for item in items:
        entry = ET.SubElement(feed, "entry")
        ET.SubElement(entry, "id").text = _urn(platform, workspace_id, f"item:{item.url_key}")
        ET.SubElement(entry, "title").text = clean_text(item.title) or item.domain
        ET.SubElement(entry, "link", rel="alternate", type="text/html", href=item.url)
        ET.SubElement(entry, "published").text = _atom_time(item.created_at)
        ET.SubElement(entry, "updated").text = _atom_time(item.featured_at or item.created_at)
        author = ET.SubElement(entry, "author")
        ET.SubElement(author, "name").text = sharers.get(item.shared_by, "a member")
        for tag in item.tags:
            ET.SubElement(entry, "category", term=tag)
        if item.note:
            ET.SubElement(entry, "summary").text = clean_text(item.note)
    body: bytes = ET.tostring(feed, encoding="utf-8", xml_declaration=True)
    return body


async def _display_names(
    session: AsyncSession, platform: str, workspace_id: str, items: list[CuratedItem]
) -> dict[str, str]:
    found = await members_by_user_ids(
        session, platform, workspace_id, sorted({item.shared_by for item in items})
    )
    return {user_id: clean_text(member.display_name) for user_id, member in found.items()}


def _urn(platform: str, workspace_id: str, what: str) -> str:
    """A stable Atom id: the same item keeps its id across restarts and replicas."""
    return uuid.uuid5(uuid.NAMESPACE_URL, f"kindred:{platform}:{workspace_id}:{what}").urn


def _atom_time(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


# --- Figures for the health report ------------------------------------------------

# What each curation action means to the health report and recognition (DESIGN.md §7).
ACTION_MEANINGS = {
    "shared": ("link_shared", False),
    "featured": ("link_featured", True),
    "voted": ("curation_vote", False),
}


async def actions(session: AsyncSession, period: Period) -> list[MemberAction]:
    """Links shared and voted for, and shared links featured (contributions)."""
    rows = await store.member_actions(
        session, period.platform, period.workspace_id, period.start, period.end
    )
    return as_member_actions(rows, ACTION_MEANINGS)


async def stored_about(session: AsyncSession, member: Identity) -> Stored:
    """What the library keeps about a member, for `/kindred privacy`."""
    shared, votes, subscribed = await store.stored_about(
        session, member.platform, member.workspace_id, member.user_id
    )
    return Stored(
        "curation/stored_about", {"shared": shared, "votes": votes, "subscribed": subscribed}
    )


async def metrics(session: AsyncSession, period: Period) -> Figures:
    """Curation's figures for one community and period: links shared and featured,
    votes, distinct sharers, digests sent, the items they carried and their reach."""
    scope = (session, period.platform, period.workspace_id, period.start, period.end)
    digests, items, reached = await store.digest_figures(*scope)
    return {
        "links_shared": await store.count_links_shared(*scope),
        "links_featured": await store.count_links_featured(*scope),
        "votes": await store.count_votes(*scope),
        "distinct_sharers": await store.count_distinct_sharers(*scope),
        "digests_sent": digests,
        "digest_items": items,
        # Subscribers who got a digest by DM (channel readers cannot be counted).
        "digest_reach": reached,
    }
