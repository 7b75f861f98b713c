"""`/kindred curate …` and `/kindred digest …`: the community library.

Members nominate links by command or by reacting with the curation emoji;
variants of one link (tracking parameters, case, trailing slash) become one
item, and further nominations, reactions and upvotes count as one vote per
member. Curators (admins, plus members an admin names) feature, hide and retag
items. A weekly digest (bot/jobs/curation.py) brings the best back, and featured
items are published as an Atom feed. Private channels are never curated from.
"""

from __future__ import annotations

import uuid
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession

from bot.commands.profile import canonical_timezone
from bot.core.context import Context
from bot.core.errors import CommandError
from bot.core.feature import Feature, Tick
from bot.core.mentions import mention
from bot.core.platform import Button, ButtonStyle, Message, MessageRef, Modal, ModalField, Reply
from bot.core.registry import Handlers, Param
from bot.core.runtime import Runtime
from bot.core.templates import Trusted
from bot.domain.curation import (
    MAX_TAGS,
    CurationError,
    NormalisedUrl,
    canonical_emoji,
    clean_text,
    emoji_matches,
    fallback_title,
    first_link,
    link_markup,
    normalise_url,
    parse_note,
    parse_tags,
)
from bot.jobs import curation as jobs
from bot.services import curation as service
from bot.services.curation_titles import title_fetches
from storage import curation as store
from storage.curation import CuratedItem, CurationSettings
from storage.members import members_by_user_ids

handlers = Handlers("curation")
feature = Feature(
    summary="The community library: share links, vote, and get a weekly digest",
    handlers=handlers,
    highlights=("curate add", "curate top", "digest subscribe"),
    tables=store,
    ticks=(
        Tick(
            jobs.DIGEST_JOB,
            jobs.DIGEST_TICK_SECONDS,
            jobs.run_due_digests,
            next_due=jobs.next_digest_due,
        ),
        Tick(
            jobs.TITLES_TICK,
            jobs.TITLES_TICK_SECONDS,
            jobs.fetch_due_titles,
            next_due=jobs.next_title_due,
        ),
    ),
)

PRIVATE_REFUSAL = (
    "This is a private conversation, and Kindred never curates from private channels. "
    "Share the link in a public channel instead."
)
HIDDEN_REFUSAL = "A curator hid that link from the library, so it can't be nominated again."
LIST_LIMIT = 10
MAX_SEARCH_WORDS = 8
PERIODS: dict[str, timedelta | None] = {
    "week": timedelta(days=7),
    "month": timedelta(days=30),
    "all": None,
}
FEED_ENTRIES = 50
FEED_PATH = "/feeds/{platform}/{workspace}.atom"
ATOM_NAMESPACE = "http://www.w3.org/2005/Atom"
WEEKDAY_NAMES = dict(
    zip(
        service.WEEKDAYS,
        ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"),
        strict=True,
    )
)


# --- Nominating --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Nominated:
    item: CuratedItem
    created: bool
    # False when this member had already voted for the item.
    counted: bool
    hidden: bool = False


async def curation_settings(ctx: Context) -> CurationSettings:
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
    service.reschedule(settings, ctx.now())
    return await store.add_settings(ctx.session, settings)


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
    await curation_settings(ctx)
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
    counted = await store.add_vote(ctx.session, item, user_id, kind)
    return Nominated(item, created, counted)


def _merge_nomination(item: CuratedItem, note: str, tags: Sequence[str]) -> None:
    """A later nomination adds its tags (up to the limit) and, if the item had no
    note yet, its note."""
    merged = list(item.tags)
    for tag in tags:
        if tag not in merged and len(merged) < MAX_TAGS:
            merged.append(tag)
    if merged != item.tags or (note and not item.note):
        item.tags = merged
        item.note = item.note or note or None
        item.refresh_search_text()


def _parse_link(text: str) -> NormalisedUrl:
    try:
        return normalise_url(text)
    except CurationError as error:
        raise CommandError(str(error)) from None


@handlers.command(
    "curate add",
    "Add a link to the community library, with an optional note and #tags",
    [
        Param("url", required=True, help="The link, https://…"),
        Param("note", "rest", help="Why it's worth reading; #words become tags", max_length=600),
    ],
    group_default=True,
)
async def curate_add(ctx: Context) -> Reply:
    if ctx.inbound.channel_is_private:
        raise CommandError(PRIVATE_REFUSAL)
    link = _parse_link(ctx.args["url"])
    try:
        nomination = parse_note(ctx.args.get("note", ""))
    except CurationError as error:
        raise CommandError(str(error)) from None
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
    return await item_reply(ctx, result.item, status, voted=True)


@handlers.event("reaction")
async def curate_by_reaction(ctx: Context) -> None:
    """The curation emoji on a message with a link nominates the link; a new item is
    confirmed by DM (a reaction has no reply on Slack or Discord), a vote silently."""
    inbound = ctx.inbound
    if inbound.channel_is_private or not inbound.reaction:
        return None
    settings = await store.get_settings(ctx.session, inbound.platform, inbound.workspace_id)
    if not emoji_matches(settings.emoji if settings else None, inbound.reaction):
        return None
    found = first_link(inbound.text)
    if found is None:
        return None
    try:
        link = normalise_url(found)
    except CurationError:
        return None
    result = await nominate(
        ctx, link, kind="reaction", fallback_text=inbound.text, message=inbound.message
    )
    if result.hidden or not result.counted or not result.created:
        return None
    item = result.item
    shown = Trusted(link_markup(item.title, item.url))
    await ctx.outbox.dm(
        inbound.user_id,
        Message(f"📌 Saved to the community library: {shown} (#{item.id}). Thanks for sharing!"),
        key=f"curate-saved:{item.id}:{inbound.user_id}",
    )
    return None


# --- Reading the library -----------------------------------------------------------


@handlers.command(
    "curate top",
    "The most-voted links of the week, the month or all time",
    [
        Param("period", help="week, month or all (default: week)"),
        Param("tag", help="Only links with this tag, e.g. #nps"),
    ],
)
async def curate_top(ctx: Context) -> Reply:
    period, tag = _period_and_tag(ctx.args.get("period"), ctx.args.get("tag"))
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
    return await list_reply(ctx, heading, items, empty)


def _period_and_tag(first: str | None, second: str | None) -> tuple[str, str | None]:
    """Text platforms send `top #nps` as well as `top month #nps`: a `#tag` in the
    period's place is the tag."""
    period = "week"
    tags: list[str] = []
    if first is not None:
        if first.lower() in PERIODS:
            period = first.lower()
        elif first.startswith(("#", "<#")):
            tags.append(first)
        else:
            raise CommandError(
                f"`{clean_text(first)[:40]}` is not a period: use week, month or all "
                "(and start a tag with #, like `/kindred curate top month #nps`)."
            )
    if second is not None:
        tags.append(second)
    if not tags:
        return period, None
    if len(tags) > 1:
        raise CommandError("Give one period (week, month or all) and at most one tag.")
    try:
        parsed = parse_tags(tags[0])
    except CurationError:
        raise CommandError(
            f"`{clean_text(tags[0])[:40]}` is neither a period (week, month, all) nor a tag."
        ) from None
    if len(parsed) != 1:
        raise CommandError("Filter by one tag at a time, like `/kindred curate top month #nps`.")
    return period, parsed[0]


@handlers.command(
    "curate search",
    "Find links in the library by words in their title, note, site or #tags",
    [Param("words", "rest", required=True, help="What to look for", max_length=200)],
)
async def curate_search(ctx: Context) -> Reply:
    words = list(dict.fromkeys(clean_text(ctx.args["words"]).lower().split()))
    if len(words) > MAX_SEARCH_WORDS:
        raise CommandError(f"Search with at most {MAX_SEARCH_WORDS} words.")
    items = await store.search_items(
        ctx.session, ctx.inbound.platform, ctx.inbound.workspace_id, words, LIST_LIMIT
    )
    heading = f"Links matching “{' '.join(words)}”"
    return await list_reply(ctx, heading, items, "No link in the library matches that.")


@handlers.command(
    "curate item",
    "Show one library item (curators also get feature, hide and retag buttons)",
    [Param("item", "int", required=True, help="The item number, e.g. 12", min_value=1)],
)
async def curate_item(ctx: Context) -> Reply:
    item = await _find_item(ctx, ctx.args["item"], include_hidden=await is_curator(ctx))
    voted = await store.voted_item_ids(ctx.session, ctx.inbound.user_id, [ctx.args["item"]])
    return await item_reply(ctx, item, "", voted=bool(voted))


async def list_reply(ctx: Context, heading: str, items: list[CuratedItem], empty: str) -> Reply:
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
                "tags": _tag_text(item.tags),
            }
            for item in items
        ],
    )
    buttons = [
        Button(f"👍 #{item.id}", "curate.upvote", str(item.id))
        for item in items
        if item.id not in voted
    ]
    return Reply(message=Message(text=text, buttons=tuple(buttons)))


def item_card(ctx: Context, item: CuratedItem) -> str:
    return ctx.runtime.templates.render(
        "curation/item",
        link=Trusted(link_markup(item.title, item.url)),
        id=item.id,
        domain=item.domain,
        votes=item.vote_count,
        tags=_tag_text(item.tags),
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
    card = item_card(ctx, item)
    return Message(text=f"{status}\n\n{card}" if status else card, buttons=tuple(buttons))


async def item_reply(ctx: Context, item: CuratedItem, status: str, *, voted: bool) -> Reply:
    return Reply(message=await item_message(ctx, item, status, voted=voted))


def _tag_text(tags: Sequence[str]) -> str:
    return " ".join(f"#{tag}" for tag in tags)


def _votes(count: int) -> str:
    return f"{count} vote" if count == 1 else f"{count} votes"


async def _find_item(ctx: Context, item_id: int, *, include_hidden: bool) -> CuratedItem:
    item = await store.get_item(
        ctx.session, ctx.inbound.platform, ctx.inbound.workspace_id, item_id
    )
    if item is None or (item.hidden and not include_hidden):
        raise CommandError(f"There is no item #{item_id} in the library.")
    return item


def _button_item_id(ctx: Context) -> int:
    value = ctx.inbound.value.strip()
    if not value.isdigit():
        raise CommandError("That button no longer points at a library item.")
    return int(value)


# --- Votes and curator actions -----------------------------------------------------


@handlers.action("curate.upvote")
async def upvote(ctx: Context) -> Reply:
    item = await _find_item(ctx, _button_item_id(ctx), include_hidden=False)
    if await store.add_vote(ctx.session, item, ctx.inbound.user_id, "upvote"):
        return Reply.text(f"👍 Counted: #{item.id} now has {_votes(item.vote_count)}.")
    return Reply.text(f"You already voted for #{item.id} ({_votes(item.vote_count)}).")


async def is_curator(ctx: Context) -> bool:
    """Admins always curate; other members when an admin made them curators."""
    if await store.is_curator(
        ctx.session, ctx.inbound.platform, ctx.inbound.workspace_id, ctx.inbound.user_id
    ):
        return True
    return await ctx.is_admin()


async def _curated_item(ctx: Context, what: str) -> CuratedItem:
    if not await is_curator(ctx):
        raise CommandError(f"Only curators can {what}. Admins can add curators.")
    return await _find_item(ctx, _button_item_id(ctx), include_hidden=True)


async def _curator_reply(ctx: Context, item: CuratedItem, status: str) -> Reply:
    voted = await store.voted_item_ids(ctx.session, ctx.inbound.user_id, [item.id or 0])
    message = await item_message(ctx, item, status, voted=bool(voted))
    if ctx.inbound.message is None:
        return Reply(message=message)
    return Reply(update_original=message)


@handlers.action("curate.feature")
async def toggle_featured(ctx: Context) -> Reply:
    item = await _curated_item(ctx, "feature items")
    item.featured = not item.featured
    item.featured_at = ctx.now() if item.featured else None
    item.featured_by = ctx.inbound.user_id if item.featured else None
    status = (
        f"⭐ Featured #{item.id}: it ranks higher in digests and appears in the feed."
        if item.featured
        else f"#{item.id} is no longer featured."
    )
    return await _curator_reply(ctx, item, status)


@handlers.action("curate.hide")
async def toggle_hidden(ctx: Context) -> Reply:
    item = await _curated_item(ctx, "hide items")
    item.hidden = not item.hidden
    item.hidden_by = ctx.inbound.user_id if item.hidden else None
    status = (
        f"🙈 Hid #{item.id}: it no longer appears in digests, searches, top lists or the feed."
        if item.hidden
        else f"#{item.id} is back in the library."
    )
    return await _curator_reply(ctx, item, status)


@handlers.action("curate.retag")
async def retag(ctx: Context) -> Reply:
    item = await _curated_item(ctx, "retag items")
    current = _tag_text(item.tags)
    return Reply(
        modal=Modal(
            callback_id="curate.retag_submit",
            title=f"Retag #{item.id}",
            fields=(
                ModalField(
                    "tags",
                    f"Tags, up to {MAX_TAGS} (empty removes them)",
                    required=False,
                    max_length=200,
                    placeholder=f"Now: {current}" if current else "#nps #research",
                ),
            ),
            value=str(item.id),
            submit_label="Save tags",
        )
    )


@handlers.action("curate.retag_submit")
async def retag_submit(ctx: Context) -> Reply:
    item = await _curated_item(ctx, "retag items")
    try:
        tags = parse_tags(str(ctx.inbound.options.get("tags") or ""))
    except CurationError as error:
        raise CommandError(str(error)) from None
    item.tags = list(tags)
    item.refresh_search_text()
    status = (
        f"🏷 Tags of #{item.id}: {_tag_text(tags)}." if tags else f"Removed the tags of #{item.id}."
    )
    return Reply(message=await item_message(ctx, item, status, voted=True))


@handlers.command(
    "curate curator",
    "Let a member feature, hide and retag library items (admins always can)",
    [
        Param("member", "user", required=True, help="Who"),
        Param("enabled", "bool", help="on (default) or off"),
    ],
    admin=True,
)
async def set_curator(ctx: Context) -> Reply:
    user_id: str = ctx.args["member"]
    enabled: bool = ctx.args.get("enabled", True)
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
        text = f"{who} is now a curator." if changed else f"{who} was already a curator."
    else:
        text = f"{who} is no longer a curator." if changed else f"{who} was not a curator."
    return Reply.text(text)


# --- Settings ----------------------------------------------------------------------


@handlers.command(
    "curate setup",
    "Show or change the digest schedule and channel, the curation emoji and the feed",
    [
        Param("channel", "channel", help="Where the weekly digest is posted", positional=False),
        Param("weekday", "choice", help="Digest day", choices=service.WEEKDAYS, positional=False),
        Param("hour", "int", help="Digest hour, 0-23", min_value=0, max_value=23, positional=False),
        Param("timezone", help="IANA time zone, e.g. Europe/Berlin", positional=False),
        Param("emoji", help="Reaction that nominates a link (default 📌)", positional=False),
        Param("digest", "bool", help="Weekly digest on or off", positional=False),
        Param("feed", "bool", help="Atom feed of featured items on or off", positional=False),
    ],
    admin=True,
)
async def curate_setup(ctx: Context) -> Reply:
    settings = await curation_settings(ctx)
    args = ctx.args
    if "timezone" in args:
        settings.timezone = canonical_timezone(args["timezone"])
    if "emoji" in args:
        emoji = clean_text(args["emoji"]).strip(":")
        if not emoji or len(emoji) > 64 or " " in emoji:
            raise CommandError("Give one emoji, like `emoji=pushpin` or `emoji=📌`.")
        settings.emoji = None if canonical_emoji(emoji) == "pushpin" else emoji
    if "channel" in args:
        settings.digest_channel_id = args["channel"]
    if "weekday" in args:
        settings.digest_weekday = args["weekday"]
    if "hour" in args:
        settings.digest_hour = args["hour"]
    if "digest" in args:
        settings.digest_enabled = args["digest"]
    if "feed" in args:
        settings.feed_enabled = args["feed"]
    if {"timezone", "weekday", "hour", "digest"} & set(args):
        service.reschedule(settings, ctx.now())
    text = await settings_text(ctx, settings)
    return Reply.text(f"Saved.\n\n{text}" if args else text)


async def settings_text(ctx: Context, settings: CurationSettings) -> str:
    platform, workspace_id = ctx.inbound.platform, ctx.inbound.workspace_id
    curators = await store.curators(ctx.session, platform, workspace_id)
    subscribers = await store.subscribers(ctx.session, platform, workspace_id)
    return ctx.runtime.templates.render(
        "curation/settings",
        enabled=settings.digest_enabled,
        schedule=Trusted(_schedule(settings)),
        next_digest=Trusted(_local_time(settings, settings.next_digest_at)),
        channel=Trusted(f"<#{settings.digest_channel_id}>") if settings.digest_channel_id else None,
        subscribers=len(subscribers),
        emoji=settings.emoji or "📌 (:pushpin:)",
        curators=Trusted(", ".join(mention(user_id) for user_id in curators)),
        feed=settings.feed_enabled,
        feed_path=FEED_PATH.format(platform=platform, workspace=workspace_id),
    )


def _schedule(settings: CurationSettings) -> str:
    day = WEEKDAY_NAMES.get(settings.digest_weekday, settings.digest_weekday)
    return f"{day}s at {settings.digest_hour:02d}:00 {settings.timezone}"


def _local_time(settings: CurationSettings, moment: datetime | None) -> str:
    if moment is None:
        return "not scheduled"
    local = moment.astimezone(ZoneInfo(settings.timezone))
    return f"{local:%a %d %b %Y %H:%M} {settings.timezone}"


# --- Digest subscriptions ----------------------------------------------------------


@handlers.command("digest subscribe", "Get the community's weekly digest by DM")
async def digest_subscribe(ctx: Context) -> Reply:
    settings = await curation_settings(ctx)
    added = await store.subscribe(
        ctx.session, ctx.inbound.platform, ctx.inbound.workspace_id, ctx.inbound.user_id
    )
    when = _local_time(settings, settings.next_digest_at)
    if not settings.digest_enabled:
        return Reply.text(
            "Subscribed, but the admins have paused the weekly digest; you'll get it when "
            "they turn it back on."
            if added
            else "You're already subscribed; the admins have paused the digest for now."
        )
    if added:
        return Reply.text(f"Subscribed: the next digest comes by DM on {when}.")
    return Reply.text(f"You're already subscribed; the next digest comes on {when}.")


@handlers.command("digest unsubscribe", "Stop getting the weekly digest by DM")
async def digest_unsubscribe(ctx: Context) -> Reply:
    removed = await store.unsubscribe(
        ctx.session, ctx.inbound.platform, ctx.inbound.workspace_id, ctx.inbound.user_id
    )
    if removed:
        return Reply.text(
            "Unsubscribed: no more digest DMs. `/kindred digest subscribe` to return."
        )
    return Reply.text("You weren't subscribed to the digest.")


@handlers.command("digest preview", "Show what the next weekly digest would contain", admin=True)
async def digest_preview(ctx: Context) -> Reply:
    settings = await curation_settings(ctx)
    # Ranked as the digest will rank it: at its scheduled time, with what is shared so far.
    until = max(settings.next_digest_at or ctx.now(), ctx.now() + timedelta(seconds=1))
    content = await service.digest_content(ctx.session, settings, until)
    when = _local_time(settings, settings.next_digest_at)
    if not settings.digest_enabled:
        header = "The weekly digest is off (`/kindred curate setup digest=on`)."
    else:
        header = f"Next digest: {when}."
    if not content.items:
        return Reply.text(
            f"{header} Nothing was shared since the last one, so it would be skipped."
        )
    message = service.digest_message(ctx.runtime.templates, content)
    return Reply(message=Message(text=f"{header} So far it would say:\n\n{message.text}"))


# --- Atom feed ---------------------------------------------------------------------


@handlers.route("GET", FEED_PATH)
async def featured_feed(runtime: Runtime, request: web.Request) -> web.StreamResponse:
    """The community's featured items as an Atom feed (RFC 4287), for newsletters and
    feed readers. Hidden items never appear; admins can switch it off."""
    platform = request.match_info["platform"]
    workspace_id = request.match_info["workspace"]
    async with runtime.db.transaction() as session:
        community = await store.get_community(session, platform, workspace_id)
        settings = await store.get_settings(session, platform, workspace_id)
        if community is None or (settings is not None and not settings.feed_enabled):
            raise web.HTTPNotFound(text="No feed here.")
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
    ET.SubElement(feed, "link", rel="self", type="application/atom+xml", href=str(request.url))
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
    body = ET.tostring(feed, encoding="utf-8", xml_declaration=True)
    return web.Response(
        body=body,
        content_type="application/atom+xml",
        charset="utf-8",
        headers={"Cache-Control": "public, max-age=300"},
    )


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
