"""`/kindred kudos …`: thanking members with reasons, and the "recognised
contributor" status they earn by an open, written rule.

Kudos are given by command (`/kindred kudos @ana <reason>`) or by the kudos
reaction on someone's message (a DM asks for the reason). Self-kudos and kudos
to bots are refused; each giver has a daily allowance; repeats decay 1/k; pairs
and closed rings that trade kudos are flagged and do not count. Removing the
reaction or deleting the message withdraws the kudos.

The handlers here parse and reply; the use cases are in bot/services/kudos.py.
"""

from __future__ import annotations

from bot.core.context import Context, Preparation
from bot.core.feature import Feature, Tick
from bot.core.platform import Modal, ModalField, PlatformError, Reply
from bot.core.registry import Handlers, Param
from bot.domain.kudos import (
    MAX_REASON_LENGTH,
    KudosError,
    clean_words,
    configured_emoji,
    parse_categories,
)
from bot.domain.profile import canonical_timezone
from bot.jobs import kudos as jobs
from bot.services import kudos as service
from storage import kudos as store

handlers = Handlers("kudos")
feature = Feature(
    summary="Thank members with reasons; a recognised-contributor status earned by a written rule",
    handlers=handlers,
    highlights=("kudos give", "kudos board", "kudos why"),
    tables=store,
    ticks=(Tick(jobs.TICK, jobs.TICK_SECONDS, jobs.tick, next_due=jobs.next_due),),
    metrics=service.metrics,
    actions=service.actions,
    stored_about=service.stored_about,
)

MAX_KUDOS_ID = 2**31 - 1


async def receiver_info(preparation: Preparation) -> service.Receiver:
    """Whether the receiver is one of the community's people (platforms list people,
    not bots), asked of the platform before the transaction."""
    receiver = preparation.args.get("member")
    try:
        listed = await preparation.platform.list_members(preparation.inbound.workspace_id)
    except PlatformError:
        # The stored member record answers alone; the platform is asked again next time.
        return service.Receiver(listed=False, info=None)
    found = next((info for info in listed if info.user_id == receiver), None)
    return service.Receiver(listed=True, info=found)


@handlers.command(
    "kudos give",
    "Thank a member, saying what they did (e.g. /kindred kudos @ana for the NPS template)",
    [
        Param("member", "user", required=True, help="Who you thank"),
        Param(
            "reason",
            "rest",
            required=True,
            help="What they did, in a few words",
            max_length=MAX_REASON_LENGTH,
        ),
        Param("category", help="One of the community's categories", positional=False),
    ],
    group_default=True,
    prepare=receiver_info,
)
async def give(ctx: Context) -> Reply:
    text = await service.give_by_command(
        ctx, ctx.args["member"], ctx.args["reason"], ctx.args.get("category")
    )
    return Reply.text(text)


@handlers.event("reaction")
async def give_by_reaction(ctx: Context) -> None:
    await service.give_by_reaction(ctx)


@handlers.event("reaction_removed")
async def withdraw_reaction(ctx: Context) -> None:
    await service.reaction_removed(ctx)


@handlers.event("message_deleted")
async def withdraw_deleted_message(ctx: Context) -> None:
    await service.message_deleted(ctx)


@handlers.action(service.REASON_ACTION)
async def reason_form(ctx: Context) -> Reply:
    kudos = await service.pending_kudos(ctx, ctx.inbound.value)
    return Reply(
        modal=Modal(
            callback_id=service.REASON_SUBMIT,
            title="Why the kudos?",
            fields=(
                ModalField(
                    "reason",
                    "What did they do?",
                    multiline=True,
                    max_length=MAX_REASON_LENGTH,
                    placeholder="Walked me through setting up our first NPS survey",
                ),
                ModalField("category", "Category (optional)", required=False, max_length=40),
            ),
            value=str(kudos.id),
            submit_label="Send kudos",
        )
    )


@handlers.action(service.REASON_SUBMIT)
async def reason_submitted(ctx: Context) -> Reply:
    options = ctx.inbound.options
    category = clean_words(str(options.get("category") or "")) or None
    text = await service.add_reason(
        ctx, ctx.inbound.value, str(options.get("reason") or ""), category
    )
    return Reply.text(text)


@handlers.command(
    "kudos received",
    "The kudos you (or another member) received, with their reasons",
    [Param("member", "user", help="Whose kudos (default: yours)")],
)
async def received(ctx: Context) -> Reply:
    user_id = ctx.args.get("member") or ctx.inbound.user_id
    return Reply.text(await service.list_text(ctx, user_id, received=True))


@handlers.command("kudos given", "The kudos you gave, with their reasons")
async def given(ctx: Context) -> Reply:
    return Reply.text(await service.list_text(ctx, ctx.inbound.user_id, received=False))


@handlers.command(
    "kudos board",
    "This month's leaderboard by distinct givers; `rising`, or one category",
    [
        Param(
            "board", "choice", help="month (default), rising or category", choices=service.BOARDS
        ),
        Param("category", "rest", help="The category, for a category board", max_length=40),
    ],
)
async def show_board(ctx: Context) -> Reply:
    which = ctx.args.get("board") or "month"
    return Reply.text(await service.board_text(ctx, which, ctx.args.get("category")))


@handlers.command(
    "kudos boards",
    "Appear on the kudos boards (on) or stay off them (off)",
    [Param("shown", "bool", required=True, help="on or off")],
)
async def boards(ctx: Context) -> Reply:
    return Reply.text(await service.set_boards(ctx, shown=ctx.args["shown"]))


@handlers.command(
    "kudos why",
    "Why someone has the recognised-contributor status, or what they still need",
    [Param("member", "user", help="Whom to explain (default: you)")],
)
async def why(ctx: Context) -> Reply:
    user_id = ctx.args.get("member") or ctx.inbound.user_id
    return Reply.text(await service.why_text(ctx, user_id))


def _count(name: str, help_text: str, most: int) -> Param:
    return Param(name, "int", help=help_text, min_value=0, max_value=most, positional=False)


@handlers.command(
    "kudos setup",
    "Show or change the kudos settings and the written rule for the status",
    [
        Param("channel", "channel", help="Where kudos are posted publicly", positional=False),
        Param(
            "public", "bool", help="Post kudos publicly (off clears the channel)", positional=False
        ),
        Param("announce", "bool", help="Announce new recognised contributors", positional=False),
        Param("emoji", help="The kudos reaction (default 🙌)", positional=False),
        Param("reasons", "bool", help="A reaction's kudos needs a reason", positional=False),
        Param(
            "categories",
            help='Comma-separated, e.g. "helpful answer, great share"',
            positional=False,
        ),
        Param(
            "allowance",
            "int",
            help="Kudos per giver per day",
            min_value=1,
            max_value=100,
            positional=False,
        ),
        _count("kudos", "Kudos with reasons the status needs", 1000),
        _count("givers", "Distinct givers it needs", 1000),
        _count("companies", "Distinct givers' companies it needs", 100),
        _count("days", "Days since the first kudos", 3650),
        _count("evidence", "Contributions beyond kudos it needs", 100),
        Param(
            "role",
            help="Discord role for recognised contributors (none: no role)",
            positional=False,
            max_length=100,
        ),
        Param("timezone", help="IANA time zone of boards and reviews", positional=False),
    ],
    admin=True,
)
async def setup(ctx: Context) -> Reply:
    """Without options: the settings and the rule; nothing is changed."""
    changes = dict(ctx.args)
    try:
        if "emoji" in changes:
            changes["emoji"] = configured_emoji(changes["emoji"])
        if "categories" in changes:
            changes["categories"] = parse_categories(changes["categories"])
    except KudosError as error:
        raise service.refused_input(ctx.runtime.templates, error) from None
    if "timezone" in changes:
        changes["timezone"] = canonical_timezone(changes["timezone"])
    if "role" in changes:
        role = clean_words(changes["role"]).lstrip("@")
        changes["role"] = None if role.lower() in {"", "none", "off"} else role
    if "public" in changes:
        if changes.pop("public") is False:
            changes["channel"] = None
        elif "channel" not in changes:
            raise service.refusal(ctx.runtime.templates, "channel_needed")
    return Reply.text(await service.change_settings(ctx, changes))


@handlers.command("kudos stats", "Givers, receivers, reasons and flagged patterns", admin=True)
async def stats(ctx: Context) -> Reply:
    return Reply.text(await service.stats_text(ctx))


@handlers.command(
    "kudos revoke",
    "Revoke a kudos (its number is in `kudos received`), saying why",
    [
        Param(
            "kudos",
            "int",
            required=True,
            help="The kudos number",
            min_value=1,
            max_value=MAX_KUDOS_ID,
        ),
        Param(
            "reason", "rest", required=True, help="Why it is revoked", max_length=MAX_REASON_LENGTH
        ),
    ],
    admin=True,
)
async def revoke(ctx: Context) -> Reply:
    return Reply.text(await service.revoke(ctx, ctx.args["kudos"], ctx.args["reason"]))
