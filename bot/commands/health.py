"""`/kindred report …`, `/kindred pulse …`, `/kindred privacy`: the community
health report in chat (figures, change, suggested actions, charts) and on a
signed dashboard page, the community NPS pulse, and what Kindred stores about a
member. Message events are counted here (member, channel, day; no text)."""

from __future__ import annotations

from aiohttp import web

from bot.core.context import Context, Preparation
from bot.core.errors import CommandError
from bot.core.feature import Feature, Tick
from bot.core.formatting import channel_link
from bot.core.platform import Button, ButtonStyle, Message, Modal, ModalField, Reply
from bot.core.registry import Handlers, Param
from bot.core.runtime import Runtime
from bot.core.templates import Trusted
from bot.domain.health import PERIODS
from bot.jobs import health as jobs
from bot.services import health as service
from bot.services import health_dashboard as dashboard
from bot.services import health_pulse as pulse
from storage import health as store

handlers = Handlers("health")
feature = Feature(
    summary="Community health: a report that suggests actions, an NPS pulse, a dashboard page",
    handlers=handlers,
    highlights=("report show", "pulse setup", "privacy"),
    tables=store,
    ticks=(Tick(jobs.TICK, jobs.TICK_SECONDS, jobs.tick, next_due=jobs.next_due),),
    stored_about=service.stored_about,
    forget_feedback=service.forget_feedback,
)

PERIOD = Param("period", "choice", "week, month or quarter (default: month)", choices=PERIODS)


# --- the report -----------------------------------------------------------------------


async def _draw(preparation: Preparation) -> service.Drawn:
    """The report and its charts, made before the command's transaction opens."""
    inbound = preparation.inbound
    kind = preparation.args.get("period", "month")
    return await service.draw(preparation.runtime, inbound.platform, inbound.workspace_id, kind)


@handlers.command(
    "report show",
    "The community health report: figures, change, suggested actions, charts by DM",
    [PERIOD],
    admin=True,
    group_default=True,
    prepare=_draw,
)
async def show(ctx: Context) -> Reply:
    inbound = ctx.inbound
    drawn: service.Drawn = ctx.prepared
    key = f"health.report:{inbound.user_id}:{inbound.event_id or ctx.now().isoformat()}"
    charts = await service.queue_charts(ctx.outbox, drawn, key=key, dm_to=inbound.user_id)
    text = service.report_text(ctx.runtime.templates, drawn.report)
    templates = ctx.runtime.templates
    return Reply.text(templates.render("health/charts_sent", text=Trusted(text), charts=charts))


NAMES = Param(
    "names",
    "bool",
    "Name members on the page: newcomers yet to start, the most active",
    positional=False,
)


async def _warm_page(preparation: Preparation) -> None:
    """Store the page's snapshot before the link is sent (rebuilt unless one was
    built in the last few minutes), so every view through the link, on any replica,
    shows at once instead of building the report; the other periods of the
    selector are built in the background meanwhile."""
    settings = preparation.runtime.settings
    if settings.public_url and settings.dashboard_secret:
        inbound = preparation.inbound
        period = preparation.args.get("period", "month")
        names = bool(preparation.args.get("names"))
        runtime, place = preparation.runtime, (inbound.platform, inbound.workspace_id)
        fresh_for = dashboard.LINK_REBUILD_AFTER
        await dashboard.snapshot(
            runtime, dashboard.PageOf(*place, period, names), fresh_for=fresh_for
        )
        for other in PERIODS:
            if other != period:
                page = dashboard.PageOf(*place, other, names)
                dashboard.rebuild_in_background(runtime, page, fresh_for=fresh_for)


@handlers.command(
    "report link",
    "DM me a link to the dashboard page, valid for an hour",
    [PERIOD, NAMES],
    admin=True,
    prepare=_warm_page,
)
async def link(ctx: Context) -> Reply:
    inbound = ctx.inbound
    names = bool(ctx.args.get("names"))
    url = dashboard.signed_link(
        ctx.runtime.settings,
        inbound.platform,
        inbound.workspace_id,
        ctx.now(),
        ctx.args.get("period", "month"),
        names=names,
    )
    key = f"health.link:{inbound.user_id}:{inbound.event_id or ctx.now().isoformat()}"
    templates = ctx.runtime.templates
    await ctx.outbox.dm(
        inbound.user_id,
        Message(text=templates.render("health/link", url=Trusted(url), minutes=60, names=names)),
        key=key,
    )
    return Reply.text(templates.render("health/link_sent"))


@handlers.command(
    "report schedule",
    "Send the weekly report to a private organisers' channel (off: stop)",
    [
        Param("channel", "channel", "The organisers' channel (default: here)"),
        Param("off", "bool", "Stop the weekly report", positional=False),
    ],
    admin=True,
)
async def schedule(ctx: Context) -> Reply:
    inbound = ctx.inbound
    if ctx.args.get("off"):
        await service.unschedule_report(ctx.session, inbound.platform, inbound.workspace_id)
        return Reply.text(ctx.runtime.templates.render("health/schedule", channel=None, first=""))
    channel = ctx.args.get("channel") or inbound.channel_id
    if not channel:
        raise CommandError("Name the organisers' channel: `/kindred report schedule #organisers`.")
    if not inbound.channel_is_private and "channel" not in ctx.args:
        raise CommandError(
            "The weekly report is for organisers: run this in a private channel, or name "
            "one: `/kindred report schedule #organisers`."
        )
    first = await service.schedule_report(
        ctx.session, inbound.platform, inbound.workspace_id, channel, ctx.now()
    )
    return Reply.text(
        ctx.runtime.templates.render(
            "health/schedule",
            channel=channel_link(channel),
            first=first.strftime("%a %d %b, %H:%M UTC"),
        )
    )


@handlers.command("report definitions", "What each figure of the health report means")
async def definitions(ctx: Context) -> Reply:
    return Reply.text(ctx.runtime.templates.render("health/definitions"))


# --- the pulse ----------------------------------------------------------------------------


@handlers.command(
    "pulse setup",
    "Ask members the community NPS question every few days (default every 90)",
    [
        Param("question", "rest", "The question, in your community's words", max_length=300),
        Param(
            "every",
            "int",
            "Days between rounds (default 90)",
            min_value=7,
            max_value=365,
            positional=False,
        ),
        Param(
            "channel",
            "channel",
            "Ask only this channel's members (default: everyone)",
            positional=False,
        ),
        Param("anonymous", "bool", "Store answers without who gave them", positional=False),
    ],
    admin=True,
)
async def pulse_setup(ctx: Context) -> Reply:
    configured = await pulse.setup(ctx)
    return Reply.text(ctx.runtime.templates.render("health/pulse_setup", **configured))


@handlers.command("pulse off", "Stop asking the pulse question", admin=True)
async def pulse_off(ctx: Context) -> Reply:
    await pulse.turn_off(ctx.session, ctx.inbound.platform, ctx.inbound.workspace_id)
    return Reply.text(ctx.runtime.templates.render("health/pulse_off"))


@handlers.command("pulse status", "How the latest pulse round is going", admin=True)
async def pulse_status(ctx: Context) -> Reply:
    return Reply.text(await pulse.status_text(ctx))


@handlers.action("health.pulse")
async def pulse_answered(ctx: Context) -> Reply:
    return await pulse.answer(ctx)


@handlers.action("health.pulse_why")
async def pulse_why(ctx: Context) -> Reply:
    return Reply(
        modal=Modal(
            callback_id="health.pulse_why_submit",
            title="Why?",
            value=ctx.inbound.value,
            fields=(
                ModalField(
                    "why",
                    "What is behind your answer? (optional)",
                    multiline=True,
                    required=False,
                    max_length=pulse.MAX_REASON_LENGTH,
                ),
            ),
        )
    )


@handlers.action("health.pulse_why_submit")
async def pulse_why_submitted(ctx: Context) -> Reply:
    return await pulse.add_reason(ctx)


# --- privacy -------------------------------------------------------------------------------


@handlers.command("privacy", "What Kindred stores about you; delete your feedback")
async def privacy(ctx: Context) -> Reply:
    stored = await ctx.runtime.stored_about(ctx.session, ctx.inbound.identity)
    text = ctx.runtime.templates.render("health/privacy", stored=stored)
    if not stored:
        return Reply.text(text)
    return Reply.text(
        text,
        Button("Delete my feedback and pulse answers", "health.forget", style=ButtonStyle.DANGER),
    )


@handlers.action("health.forget")
async def forget(ctx: Context) -> Reply:
    deleted = await ctx.runtime.forget_feedback(ctx.session, ctx.inbound.identity)
    text = ctx.runtime.templates.render(
        "health/forgotten", deleted=deleted, total=sum(deleted.values())
    )
    return Reply(update_original=Message(text=text), message=Message(text=text))


# --- activity -------------------------------------------------------------------------------


@handlers.event("message")
async def count_message(ctx: Context) -> None:
    """Counts the message (member, channel, day); its text is neither read nor kept."""
    await service.record_message(ctx)


@handlers.event("member_joined")
async def note_join(ctx: Context) -> None:
    if ctx.inbound.channel_id is None:
        await service.record_join(ctx)


# --- the dashboard page ------------------------------------------------------------------------


@handlers.route("GET", dashboard.PAGE_PATH)
async def dashboard_page(runtime: Runtime, request: web.Request) -> web.StreamResponse:
    return await dashboard.page(runtime, request)


@handlers.route("GET", dashboard.CSV_PATH)
async def dashboard_csv(runtime: Runtime, request: web.Request) -> web.StreamResponse:
    return await dashboard.csv_download(runtime, request)
