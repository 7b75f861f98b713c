"""The community NPS pulse: a question in the community's words, DMed to members
every few days with 0–10 buttons and an optional "why?" form; each member is
asked at most once per round, and answers may be stored without who gave them."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.context import Context
from bot.core.errors import CommandError
from bot.core.formatting import channel_link
from bot.core.outbox import Outbox
from bot.core.platform import Button, MemberInfo, Message, Reply
from bot.core.templates import Templates
from bot.domain.health import MIN_NPS_ANSWERS, nps
from storage import health as store

MAX_REASON_LENGTH = 1000


async def setup(ctx: Context) -> dict[str, Any]:
    """Store the pulse settings; the first round goes out at the next tick."""
    args, inbound = ctx.args, ctx.inbound
    settings = await store.settings_for(ctx.session, inbound.platform, inbound.workspace_id)
    if "question" in args:
        question = args["question"].strip()
        if len(question) < 10:
            raise CommandError(
                "The question looks too short; ask it the way you would ask a member."
            )
        settings.pulse_question = question
    if "every" in args:
        settings.pulse_every_days = args["every"]
    if "channel" in args:
        settings.pulse_channel_id = args["channel"]
    if "anonymous" in args:
        settings.pulse_anonymous = args["anonymous"]
    if not settings.pulse_enabled or settings.pulse_next_at is None:
        settings.pulse_enabled = True
        settings.pulse_next_at = ctx.now().replace(second=0, microsecond=0) + timedelta(minutes=1)
    return {
        "question": settings.pulse_question,
        "every": settings.pulse_every_days,
        "audience": channel_link(settings.pulse_channel_id) if settings.pulse_channel_id else "",
        "anonymous": settings.pulse_anonymous,
        "next": settings.pulse_next_at.strftime("%a %d %b, %H:%M UTC"),
    }


async def turn_off(session: AsyncSession, platform: str, workspace_id: str) -> None:
    settings = await store.settings_for(session, platform, workspace_id)
    settings.pulse_enabled = False
    settings.pulse_next_at = None


def question_message(
    templates: Templates, round_id: int, question: str, anonymous: bool
) -> Message:
    return Message(
        text=templates.render("health/pulse_question", question=question, anonymous=anonymous),
        buttons=tuple(
            Button(str(score), "health.pulse", f"{round_id}:{score}") for score in range(11)
        ),
    )


async def run_round(
    templates: Templates,
    settings_id: int,
    due: datetime,
    audience: Sequence[MemberInfo],
    session: AsyncSession,
    now: datetime,
) -> None:
    """One pulse round (claimed by the caller): ask each member of the audience
    once, by DM through the outbox, and schedule the next round."""
    settings = await session.get(store.HealthSettings, settings_id)
    if settings is None or not settings.pulse_enabled or settings.pulse_next_at != due:
        return
    pulse = await store.start_round(
        session,
        settings.platform,
        settings.workspace_id,
        due,
        settings.pulse_question,
        settings.pulse_anonymous,
    )
    assert pulse.id is not None
    outbox = Outbox(session, settings.platform, settings.workspace_id)
    message = question_message(templates, pulse.id, pulse.question, pulse.anonymous)
    for member in audience:
        if member.is_bot or member.deactivated:
            continue
        if await store.ask(session, pulse.id, member.user_id):
            await outbox.dm(
                member.user_id, message, key=f"health.pulse:{pulse.id}:{member.user_id}"
            )
    await store.advance_pulse(
        session, settings_id, due, due + timedelta(days=settings.pulse_every_days)
    )


async def answer(ctx: Context) -> Reply:
    """A 0–10 button: the member's one answer in the round."""
    try:
        round_text, score_text = ctx.inbound.value.split(":")
        round_id, score = int(round_text), int(score_text)
    except ValueError:
        raise CommandError("That button no longer works; wait for the next pulse.") from None
    if not 0 <= score <= 10:
        raise CommandError("Answers go from 0 to 10.")
    templates = ctx.runtime.templates
    pulse = await store.get_round(ctx.session, round_id)
    if pulse is None or pulse.platform != ctx.inbound.platform:
        raise CommandError("That pulse is over.")
    if not await store.mark_answered(ctx.session, round_id, ctx.inbound.user_id):
        return Reply.text(templates.render("health/pulse_already"))
    user = None if pulse.anonymous else ctx.inbound.user_id
    token = await store.add_answer(ctx.session, round_id, user, score, ctx.now().date())
    thanks = Message(
        text=templates.render("health/pulse_thanks", score=score, anonymous=pulse.anonymous),
        buttons=(Button("Tell us why", "health.pulse_why", token),),
    )
    return Reply(update_original=thanks)


async def add_reason(ctx: Context) -> Reply:
    reason = str(ctx.inbound.options.get("why") or "").strip()
    templates = ctx.runtime.templates
    if not reason:
        return Reply(
            update_original=Message(text=templates.render("health/pulse_reason", saved=False))
        )
    if len(reason) > MAX_REASON_LENGTH:
        raise CommandError(f"Please keep it under {MAX_REASON_LENGTH} characters.")
    if not await store.add_reason(ctx.session, ctx.inbound.value, reason):
        raise CommandError(
            "That answer is gone (it may have been deleted with `/kindred privacy`)."
        )
    return Reply(update_original=Message(text=templates.render("health/pulse_reason", saved=True)))


async def status_text(ctx: Context) -> str:
    inbound = ctx.inbound
    settings = await store.settings_for(ctx.session, inbound.platform, inbound.workspace_id)
    latest = await store.latest_round(ctx.session, inbound.platform, inbound.workspace_id)
    asked = answered = 0
    score = interval = None
    if latest is not None:
        assert latest.id is not None
        asked, answered = await store.asked_count(ctx.session, latest.id)
        result = nps(await store.round_scores(ctx.session, latest.id))
        score, interval = result.score, result.interval
    return ctx.runtime.templates.render(
        "health/pulse_status",
        enabled=settings.pulse_enabled,
        next=settings.pulse_next_at.strftime("%a %d %b, %H:%M UTC")
        if settings.pulse_next_at
        else "",
        started=latest.started_at.strftime("%d %b %Y") if latest else "",
        asked=asked,
        answered=answered,
        score=f"{score:+.0f}" if score is not None else "",
        interval=f"{interval[0]:+.0f} to {interval[1]:+.0f}" if interval else "",
        min_answers=MIN_NPS_ANSWERS,
    )
