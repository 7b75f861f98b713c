"""`/kindred ama …`: Ask Me Anything sessions with questions, votes, moderation and
threads, run entirely inside Slack or Discord.

Which AMA a command means: see `bot.services.ama.resolve_ama`. Buttons carry ids,
never state, so they keep working after a restart.

Each approved question gets its own post in the AMA channel with an upvote button
whose label shows the count (edited as votes change): members vote where they
read, and the channel only ever shows questions that passed moderation.
"""

from __future__ import annotations

from bot.core.context import Context
from bot.core.errors import CommandError
from bot.core.feature import Feature, Tick
from bot.core.formatting import channel_link
from bot.core.mentions import member_text, mention
from bot.core.platform import Attachment, Button, Message, Modal, ModalField, Reply
from bot.core.registry import Handlers, Param
from bot.domain.ama import (
    DEFAULT_MAX_OPEN_QUESTIONS,
    MAX_QUESTION_LENGTH,
    MAX_REASON_LENGTH,
    QuestionStatus,
)
from bot.jobs import ama as jobs
from bot.services import ama as service
from bot.services import ama_questions as questions
from storage import ama as store
from storage.ama import Ama

handlers = Handlers("ama")
feature = Feature(
    summary="Ask-me-anything sessions: questions, votes, moderation and a recap",
    handlers=handlers,
    highlights=("ama ask", "ama queue", "ama schedule"),
    tables=store,
    ticks=(Tick(jobs.TICK, jobs.TICK_SECONDS, jobs.tick, next_due=jobs.next_due),),
    metrics=service.metrics,
    actions=service.actions,
    stored_about=service.stored_about,
)

AMA_PARAM = Param(
    "ama", "int", "The AMA's number, shown in its announcement", min_value=1, positional=False
)
HOME_BUTTONS = 5
_YES = {"yes", "y", "true", "on", "1"}
_NO = {"no", "n", "false", "off", "0", ""}


# --- scheduling -------------------------------------------------------------------


@handlers.command(
    "ama schedule",
    "Schedule an Ask Me Anything session",
    [
        Param("host", "user", "Who answers the questions", required=True),
        Param("title", help='The topic, in quotes: "Scaling support"', required=True),
        Param("at", help='When it starts, e.g. "2026-12-01 15:00" (your time zone)', required=True),
        Param(
            "duration", help="How long: 45m, 1h, 1h30m (default 1h, at most 4h)", positional=False
        ),
        Param("channel", "channel", "Where it happens (default: here)", positional=False),
        Param("moderated", "bool", "Moderators approve questions first", positional=False),
        Param("mod_channel", "channel", "Private channel for the review queue", positional=False),
        Param(
            "max_questions",
            "int",
            f"Open questions per member (default {DEFAULT_MAX_OPEN_QUESTIONS})",
            min_value=1,
            max_value=10,
            positional=False,
        ),
        Param(
            "announce",
            help="When to announce it and open questions (default: now)",
            positional=False,
        ),
    ],
    admin=True,
)
async def schedule(ctx: Context) -> Reply:
    return Reply.text(service.scheduled_summary(await service.schedule_ama(ctx)))


# --- asking -----------------------------------------------------------------------


def _ask_modal(ama: Ama) -> Modal:
    return Modal(
        callback_id="ama.ask_submit",
        title="Ask a question",
        value=str(ama.id),
        fields=(
            ModalField(
                "question",
                "Your question",
                multiline=True,
                max_length=MAX_QUESTION_LENGTH,
                placeholder="What would you like the host to answer?",
            ),
            ModalField("anonymous", "Anonymous? (yes/no)", required=False, placeholder="no"),
        ),
    )


@handlers.command(
    "ama ask",
    "Ask the AMA host a question (anonymous=yes hides your name)",
    [
        Param("question", "rest", "Your question", max_length=MAX_QUESTION_LENGTH),
        Param("anonymous", "bool", "Hide your name from everyone but moderators", positional=False),
        AMA_PARAM,
    ],
)
async def ask(ctx: Context) -> Reply:
    ama = await service.resolve_ama(ctx)
    if "question" not in ctx.args:
        service.require_asking(ama)
        return Reply(modal=_ask_modal(ama))
    assert ama.id is not None
    return await questions.submit(
        ctx, ama.id, ctx.args["question"], ctx.args.get("anonymous", False)
    )


@handlers.action("ama.ask")
async def ask_button_pressed(ctx: Context) -> Reply:
    ama = await service.ama_from_button(ctx)
    service.require_asking(ama)
    return Reply(modal=_ask_modal(ama))


@handlers.action("ama.ask_submit")
async def ask_submitted(ctx: Context) -> Reply:
    answer = str(ctx.inbound.options.get("anonymous") or "").strip().lower()
    if answer not in _YES | _NO:
        raise CommandError(f"Anonymous should be yes or no, not `{member_text(answer)}`.")
    question = str(ctx.inbound.options.get("question") or "")
    return await questions.submit(ctx, service.button_id(ctx), question, answer in _YES)


@handlers.action("ama.ask_anyway")
async def ask_anyway(ctx: Context) -> Reply:
    draft = await questions.own_draft(ctx)
    return await questions.submit(ctx, draft.ama_id, draft.text, draft.anonymous, draft=draft)


# --- votes ------------------------------------------------------------------------


@handlers.action("ama.upvote")
async def upvote(ctx: Context) -> Reply:
    question, ama = await questions.question_from_button(ctx)
    return Reply.text(await questions.vote(ctx, question, ama, toggle=True))


@handlers.action("ama.upvote_instead")
async def upvote_instead(ctx: Context) -> Reply:
    return Reply.text(await questions.upvote_instead(ctx))


@handlers.command("ama queue", "Show the top questions, by votes then age", [AMA_PARAM])
async def queue(ctx: Context) -> Reply:
    return await questions.queue_reply(ctx, await service.resolve_ama(ctx))


# --- moderation -------------------------------------------------------------------


@handlers.action("ama.approve", admin=True)
async def approve(ctx: Context) -> Reply:
    return Reply(update_original=await questions.approve(ctx))


@handlers.action("ama.reject", admin=True)
async def reject(ctx: Context) -> Reply:
    question, _ = await questions.question_from_button(ctx)
    questions.require_pending(question)
    return Reply(
        modal=Modal(
            callback_id="ama.reject_submit",
            title=f"Reject Q{question.number}",
            value=str(question.id),
            submit_label="Reject",
            fields=(
                ModalField(
                    "reason",
                    "Reason (sent privately to the asker)",
                    multiline=True,
                    required=False,
                    max_length=MAX_REASON_LENGTH,
                ),
            ),
        )
    )


@handlers.action("ama.reject_submit", admin=True)
async def reject_submitted(ctx: Context) -> Reply:
    reason = str(ctx.inbound.options.get("reason") or "")
    return Reply.text(await questions.reject(ctx, reason))


# --- live -------------------------------------------------------------------------


@handlers.action("ama.next")
async def next_question(ctx: Context) -> Reply:
    """Post the top-voted waiting question in the AMA channel as a thread parent."""
    ama = await service.ama_from_button(ctx, lock=True)
    return Reply(update_original=await questions.next_question(ctx, ama))


@handlers.action("ama.answered")
async def answered(ctx: Context) -> Reply:
    return Reply(
        update_original=await questions.resolve_live_question(ctx, QuestionStatus.ANSWERED)
    )


@handlers.action("ama.skip")
async def skip(ctx: Context) -> Reply:
    return Reply(update_original=await questions.resolve_live_question(ctx, QuestionStatus.SKIPPED))


# --- close and export -------------------------------------------------------------


@handlers.command(
    "ama close",
    "End the AMA now: recap in its channel, unanswered questions to the host",
    [AMA_PARAM],
)
async def close_command(ctx: Context) -> Reply:
    ama = await service.resolve_ama(ctx, include_closed=True)
    return Reply.text(await service.close_by_hand(ctx, ama.id or 0))


@handlers.action("ama.close")
async def close_button(ctx: Context) -> Reply:
    text = await service.close_by_hand(ctx, service.button_id(ctx))
    return Reply(update_original=Message(text))


@handlers.command("ama export", "Get the whole AMA as a Markdown file", [AMA_PARAM])
async def export(ctx: Context) -> Reply:
    ama = await service.resolve_ama(ctx, include_closed=True)
    document = await service.export_markdown(ctx.session, ctx.runtime.templates, ama)
    await ctx.outbox.dm(
        ctx.inbound.user_id,
        Message(
            f"AMA #{ama.id} ({member_text(ama.title)}) as a Markdown document.",
            attachment=Attachment(f"ama-{ama.id}.md", document.encode("utf-8")),
        ),
    )
    return Reply.text(f"I've sent you AMA #{ama.id} as a Markdown file in a DM.")


# --- home -------------------------------------------------------------------------


@handlers.event("home_opened")
async def ama_home_section(ctx: Context) -> Reply | None:
    """Open AMAs on the member's home tab, each with an Ask button."""
    amas = await service.askable_amas(ctx)
    if not amas:
        return None
    lines = ["**Ask Me Anything**"]
    lines += [
        f"• AMA #{ama.id}: {member_text(ama.title)} with {mention(ama.host_user_id)}, "
        f"{service.state_label(ama)}, in {channel_link(ama.channel_id)}"
        for ama in amas
    ]
    buttons = [
        Button(f"Ask in AMA #{ama.id}", "ama.ask", str(ama.id)) for ama in amas[:HOME_BUTTONS]
    ]
    return Reply.text("\n".join(lines), *buttons)
