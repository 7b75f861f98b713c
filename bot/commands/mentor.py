"""`/kindred mentor …`: seasoned members guide newer ones (issue #13).

Mentors offer (topics, seniority, capacity, default length, cadence), pause and
resume; mentees request (goal, topics, what success looks like, cadence); both see
their status and end a mentorship without fault. Admins set the program up, preview
and run rounds, and read the stats. A command with no fields opens the form; with
fields it acts at once (the console and scripts). Each handler parses and calls
`bot.services.mentor`, where the use cases live.
"""

from __future__ import annotations

from bot.core.context import Context
from bot.core.feature import Feature, Tick
from bot.core.platform import Modal, ModalField, Reply
from bot.core.registry import Handlers, Param
from bot.domain.mentor import (
    MAX_COOLDOWN_WEEKS,
    MAX_FEEDBACK_LENGTH,
    MAX_GOAL_LENGTH,
    MAX_REASON_LENGTH,
    MAX_REQUESTS_PER_MONTH,
    MAX_SUCCESS_LENGTH,
    ROUND_CADENCES,
)
from bot.jobs import mentor as jobs
from bot.services import mentor as service
from storage import mentor as store

handlers = Handlers("mentor")
feature = Feature(
    summary="Mentorship: seasoned members guide newer ones",
    handlers=handlers,
    highlights=("mentor offer", "mentor request", "mentor status"),
    tables=store,
    ticks=(Tick(jobs.TICK, jobs.TICK_SECONDS, jobs.tick, next_due=jobs.next_due),),
    metrics=service.metrics,
    actions=service.actions,
    stored_about=service.stored_about,
    forget_feedback=service.forget_feedback,
)

OFFER_FORM = Modal(
    callback_id="mentor.offer_submit",
    title="Offer to mentor",
    submit_label="Offer",
    fields=(
        ModalField("topics", "Topics you can help with (comma-separated)", max_length=400),
        ModalField("seniority", "Your seniority (e.g. senior, lead)", max_length=20),
        ModalField("capacity", "Mentees at once (1-5)", max_length=2, placeholder="1"),
        ModalField(
            "duration", "Default length", required=False, max_length=20, placeholder="3 months"
        ),
        ModalField(
            "cadence", "Cadence (weekly, fortnightly, monthly)", required=False, max_length=12
        ),
    ),
)
REQUEST_FORM = Modal(
    callback_id="mentor.request_submit",
    title="Find a mentor",
    submit_label="Request",
    fields=(
        ModalField("goal", "Your goal, in one sentence", max_length=MAX_GOAL_LENGTH),
        ModalField("topics", "Topics (comma-separated)", max_length=400),
        ModalField(
            "success",
            "What success looks like",
            multiline=True,
            required=False,
            max_length=MAX_SUCCESS_LENGTH,
        ),
        ModalField(
            "cadence", "Cadence (weekly, fortnightly, monthly)", required=False, max_length=12
        ),
    ),
)


def _feedback_form(mentorship_id: int) -> Modal:
    return Modal(
        callback_id="mentor.feedback_submit",
        title="How was your mentorship?",
        value=str(mentorship_id),
        fields=(
            ModalField("rating", "How useful was it? (1-5)", max_length=1, placeholder="4"),
            ModalField(
                "text",
                "Anything to add? (admins only)",
                multiline=True,
                required=False,
                max_length=MAX_FEEDBACK_LENGTH,
            ),
            ModalField(
                "recommend", "Recommend this mentor? (yes/no)", required=False, max_length=3
            ),
        ),
    )


# --- mentors ----------------------------------------------------------------------


@handlers.command(
    "mentor offer",
    "Offer to mentor (no options: a form)",
    [
        Param("topics", help='e.g. "NPS, hiring"', positional=False),
        # Words, not choices: Discord counts every choice against the command's size.
        Param("seniority", help="e.g. senior, lead", positional=False),
        Param("capacity", "int", "Mentees at once, 1-5", positional=False),
        Param("duration", help="e.g. 3 months", positional=False),
        Param("cadence", help="weekly, fortnightly or monthly", positional=False),
        Param(
            "cooldown",
            "int",
            "Weeks off after each mentorship",
            min_value=0,
            max_value=MAX_COOLDOWN_WEEKS,
            positional=False,
        ),
    ],
)
async def offer(ctx: Context) -> Reply:
    if not ctx.args:
        await service.require_program(ctx)
        return Reply(modal=OFFER_FORM)
    return Reply.text(await service.save_offer(ctx, ctx.args))


@handlers.action("mentor.offer_submit")
async def offer_submitted(ctx: Context) -> Reply:
    return Reply.text(await service.save_offer(ctx, ctx.inbound.options))


@handlers.command("mentor pause", "Stop receiving new mentees for now")
async def pause(ctx: Context) -> Reply:
    return Reply.text(await service.pause_offer(ctx, paused=True))


@handlers.command("mentor resume", "Receive new mentees again")
async def resume(ctx: Context) -> Reply:
    return Reply.text(await service.pause_offer(ctx, paused=False))


# --- mentees ----------------------------------------------------------------------


@handlers.command(
    "mentor request",
    "Ask for a mentor (no options: a form)",
    [
        Param("goal", help="One sentence", positional=False, max_length=MAX_GOAL_LENGTH),
        Param("topics", help='e.g. "NPS, hiring"', positional=False),
        Param(
            "success",
            help="What success looks like",
            positional=False,
            max_length=MAX_SUCCESS_LENGTH,
        ),
        Param("cadence", help="weekly, fortnightly or monthly", positional=False),
    ],
)
async def request(ctx: Context) -> Reply:
    if not ctx.args:
        await service.require_program(ctx)
        return Reply(modal=REQUEST_FORM)
    return Reply.text(await service.save_request(ctx, ctx.args))


@handlers.action("mentor.request_submit")
async def request_submitted(ctx: Context) -> Reply:
    return Reply.text(await service.save_request(ctx, ctx.inbound.options))


@handlers.command("mentor status", "Your mentees, mentors, requests, seats left")
async def status(ctx: Context) -> Reply:
    return Reply.text(await service.status_text(ctx))


@handlers.command(
    "mentor end",
    "End a mentorship, no fault (or withdraw a request)",
    [
        Param("with", "user", "When you have several"),
        Param(
            "why", "choice", "Default: done", choices=tuple(service.OUTCOME_OF), positional=False
        ),
        Param(
            "reason", "rest", "Private, admins only", max_length=MAX_REASON_LENGTH, positional=False
        ),
    ],
)
async def end(ctx: Context) -> Reply:
    return Reply.text(await service.end_by_command(ctx))


# --- admins -----------------------------------------------------------------------


@handlers.command(
    "mentor setup",
    "Set up mentorship: rounds, approval, colleagues, request limit",
    [
        Param("channel", "channel", "Default: here", positional=False),
        Param(
            "cadence",
            "choice",
            "How often rounds run",
            choices=tuple(ROUND_CADENCES),
            positional=False,
        ),
        Param("approval", "bool", "Mentors approve matches", positional=False),
        Param("same_company", "bool", "Allow colleagues", positional=False),
        Param(
            "max_requests",
            "int",
            "Per mentee per 30 days",
            min_value=1,
            max_value=MAX_REQUESTS_PER_MONTH,
            positional=False,
        ),
    ],
    admin=True,
)
async def setup(ctx: Context) -> Reply:
    return Reply.text(await service.set_up(ctx, ctx.args))


@handlers.command("mentor preview", "The next round's matches, nothing sent", admin=True)
async def preview(ctx: Context) -> Reply:
    return Reply.text(await service.preview_text(ctx))


@handlers.command("mentor run-now", "Run a matching round now", admin=True)
async def run_now(ctx: Context) -> Reply:
    return Reply.text(await service.run_now(ctx))


@handlers.command(
    "mentor stats",
    "Requests, waits, completion, ratings, load",
    admin=True,
)
async def stats(ctx: Context) -> Reply:
    return Reply.text(await service.stats_text(ctx))


# --- buttons ----------------------------------------------------------------------


@handlers.action("mentor.accept")
async def accept(ctx: Context) -> Reply:
    return await service.accept(ctx)


@handlers.action("mentor.decline")
async def decline(ctx: Context) -> Reply:
    return await service.decline(ctx)


@handlers.action("mentor.checkin_good")
async def checkin_good(ctx: Context) -> Reply:
    return await service.answer_checkin(ctx, "good")


@handlers.action("mentor.checkin_not_met")
async def checkin_not_met(ctx: Context) -> Reply:
    return await service.answer_checkin(ctx, "not_met")


@handlers.action("mentor.checkin_not_fit")
async def checkin_not_fit(ctx: Context) -> Reply:
    return await service.answer_checkin(ctx, "not_fit")


@handlers.action("mentor.extend")
async def extend(ctx: Context) -> Reply:
    return await service.extend(ctx)


@handlers.action("mentor.close")
async def close(ctx: Context) -> Reply:
    return await service.close(ctx)


@handlers.action("mentor.rematch")
async def rematch(ctx: Context) -> Reply:
    return await service.rematch(ctx)


@handlers.action("mentor.feedback")
async def feedback(ctx: Context) -> Reply:
    mentorship = await service.feedback_form_allowed(ctx)
    assert mentorship.id is not None
    return Reply(modal=_feedback_form(mentorship.id))


@handlers.action("mentor.feedback_submit")
async def feedback_submitted(ctx: Context) -> Reply:
    return await service.save_feedback(ctx)


# --- events -----------------------------------------------------------------------


@handlers.event("member_left")
async def left_the_community(ctx: Context) -> None:
    """Leaving the community (not a channel) ends what the member had running."""
    if ctx.inbound.channel_id is None:
        await service.member_left(ctx)


@handlers.event("home_opened")
async def home_section(ctx: Context) -> Reply | None:
    """Mentorship on the member's home tab, with buttons that open the two forms; none
    where the community has no program."""
    return await service.home_section(ctx)


@handlers.action("mentor.offer_form")
async def offer_form(ctx: Context) -> Reply:
    await service.require_program(ctx)
    return Reply(modal=OFFER_FORM)


@handlers.action("mentor.request_form")
async def request_form(ctx: Context) -> Reply:
    await service.require_program(ctx)
    return Reply(modal=REQUEST_FORM)
