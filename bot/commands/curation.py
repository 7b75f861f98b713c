"""`/kindred curate …` and `/kindred digest …`: the community library.

Members nominate links by command or by reacting with the curation emoji;
variants of one link (tracking parameters, case, trailing slash) become one
item, and further nominations, reactions and upvotes count as one vote per
member. Curators (admins, plus members an admin names) feature, hide and retag
items. A weekly digest (bot/jobs/curation.py) brings the best back, and featured
items are published as an Atom feed. Private channels are never curated from.

The handlers here parse and reply; the use cases are in bot/services/curation.py.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ParamSpec, TypeVar

from aiohttp import web

from bot.core.context import Context
from bot.core.errors import CommandError
from bot.core.feature import Feature, Tick
from bot.core.platform import Message, Modal, ModalField, Reply
from bot.core.registry import Handlers, Param, day_aliases
from bot.core.runtime import Runtime
from bot.domain.curation import (
    MAX_TAGS,
    CurationError,
    NormalisedUrl,
    configured_emoji,
    normalise_url,
    parse_note,
    parse_tags,
    period_and_tag,
    search_words,
    tag_text,
)
from bot.domain.profile import canonical_timezone
from bot.jobs import curation as jobs
from bot.services import curation as service
from storage import curation as store

handlers = Handlers("curation")
feature = Feature(
    summary="The community library: share links, vote, and get a weekly digest",
    handlers=handlers,
    highlights=("curate add", "curate top", "digest subscribe"),
    tables=store,
    ticks=(
        Tick(
            jobs.DIGEST_TICK,
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
    metrics=service.metrics,
    actions=service.actions,
    stored_about=service.stored_about,
)


# Item numbers are integer keys: 2^31 - 1 is the largest PostgreSQL stores, and a
# larger number would overflow SQLite's 64-bit integers in the query.
MAX_ITEM_ID = 2**31 - 1

P = ParamSpec("P")
T = TypeVar("T")


def _parsed(parse: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """Run a pure parser of bot/domain/curation.py: its refusal is the answer."""
    try:
        return parse(*args, **kwargs)
    except CurationError as error:
        raise CommandError(str(error)) from None


# --- Nominating --------------------------------------------------------------------


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
        raise CommandError(service.PRIVATE_REFUSAL)
    link: NormalisedUrl = _parsed(normalise_url, ctx.args["url"])
    nomination = _parsed(parse_note, ctx.args.get("note", ""))
    return Reply(message=await service.add_by_command(ctx, link, nomination))


@handlers.event("reaction", reads_text=True)
async def curate_by_reaction(ctx: Context) -> None:
    """The curation emoji on a message with a link nominates the link."""
    await service.add_by_reaction(ctx)


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
    period, tag = _parsed(period_and_tag, ctx.args.get("period"), ctx.args.get("tag"))
    return Reply(message=await service.top_message(ctx, period, tag))


@handlers.command(
    "curate search",
    "Find links in the library by words in their title, note, site or #tags",
    [Param("words", "rest", required=True, help="What to look for", max_length=200)],
)
async def curate_search(ctx: Context) -> Reply:
    words = _parsed(search_words, ctx.args["words"])
    return Reply(message=await service.search_message(ctx, words))


@handlers.command(
    "curate item",
    "Show one library item (curators also get feature, hide and retag buttons)",
    [
        Param(
            "item",
            "int",
            required=True,
            help="The item number, e.g. 12",
            min_value=1,
            max_value=MAX_ITEM_ID,
        )
    ],
)
async def curate_item(ctx: Context) -> Reply:
    return Reply(message=await service.item_view(ctx, ctx.args["item"]))


# --- Votes and curator actions -----------------------------------------------------


@handlers.action("curate.upvote")
async def upvote(ctx: Context) -> Reply:
    return Reply.text(await service.upvote(ctx, ctx.inbound.value))


def _curator_reply(ctx: Context, message: Message) -> Reply:
    """A curator button updates the card it sits on; without one, a new reply."""
    if ctx.inbound.message is None:
        return Reply(message=message)
    return Reply(update_original=message)


@handlers.action("curate.feature")
async def toggle_featured(ctx: Context) -> Reply:
    return _curator_reply(ctx, await service.toggle_featured(ctx, ctx.inbound.value))


@handlers.action("curate.hide")
async def toggle_hidden(ctx: Context) -> Reply:
    return _curator_reply(ctx, await service.toggle_hidden(ctx, ctx.inbound.value))


@handlers.action("curate.retag")
async def retag(ctx: Context) -> Reply:
    item = await service.curated_item(ctx, ctx.inbound.value, "retag items")
    current = tag_text(item.tags)
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
    item = await service.curated_item(ctx, ctx.inbound.value, "retag items")
    tags = _parsed(parse_tags, str(ctx.inbound.options.get("tags") or ""))
    return Reply(message=await service.retag(ctx, item, tags))


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
    enabled: bool = ctx.args.get("enabled", True)
    return Reply.text(await service.set_curator(ctx, ctx.args["member"], enabled=enabled))


# --- Settings ----------------------------------------------------------------------


@handlers.command(
    "curate setup",
    "Show or change the digest schedule and channel, the curation emoji and the feed",
    [
        Param("channel", "channel", help="Where the weekly digest is posted", positional=False),
        Param(
            "weekday",
            "choice",
            help="Digest day",
            choices=service.WEEKDAYS,
            aliases=day_aliases(service.WEEKDAYS),
            positional=False,
        ),
        Param("hour", "int", help="Digest hour, 0-23", min_value=0, max_value=23, positional=False),
        Param("timezone", help="IANA time zone, e.g. Europe/Berlin", positional=False),
        Param("emoji", help="Reaction that nominates a link (default 📌)", positional=False),
        Param("digest", "bool", help="Weekly digest on or off", positional=False),
        Param("feed", "bool", help="Atom feed of featured items on or off", positional=False),
    ],
    admin=True,
)
async def curate_setup(ctx: Context) -> Reply:
    """Without options: the settings and how to change them; nothing is changed."""
    changes = dict(ctx.args)
    if "timezone" in changes:
        changes["timezone"] = canonical_timezone(changes["timezone"])
    if "emoji" in changes:
        changes["emoji"] = _parsed(configured_emoji, changes["emoji"])
    return Reply.text(await service.change_settings(ctx, changes))


# --- Digest subscriptions ----------------------------------------------------------


@handlers.command("digest subscribe", "Get the community's weekly digest by DM")
async def digest_subscribe(ctx: Context) -> Reply:
    return Reply.text(await service.subscribe(ctx))


@handlers.command("digest unsubscribe", "Stop getting the weekly digest by DM")
async def digest_unsubscribe(ctx: Context) -> Reply:
    return Reply.text(await service.unsubscribe(ctx))


@handlers.command("digest preview", "Show what the next weekly digest would contain", admin=True)
async def digest_preview(ctx: Context) -> Reply:
    return Reply.text(await service.preview(ctx))


# --- Atom feed ---------------------------------------------------------------------


@handlers.route("GET", service.FEED_PATH)
async def featured_feed(runtime: Runtime, request: web.Request) -> web.StreamResponse:
    """The featured items as an Atom feed, for newsletters and feed readers."""
    body = await service.featured_feed(
        runtime, request.match_info["platform"], request.match_info["workspace"], str(request.url)
    )
    if body is None:
        raise web.HTTPNotFound(text="No feed here.")
    return web.Response(
        body=body,
        content_type="application/atom+xml",
        charset="utf-8",
        headers={"Cache-Control": "public, max-age=300"},
    )
