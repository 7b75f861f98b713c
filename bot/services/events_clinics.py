"""Clinic submissions: a member's real problem (with their company hidden if they
ask), the organisers' queue (accept, decline with a reason, ask for more) and the
member's answer. Scheduling a clinic from an accepted submission is in `events`."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.context import Context
from bot.core.errors import CommandError
from bot.core.mentions import member_text, mention
from bot.core.platform import Button, ButtonStyle, Message
from bot.core.templates import Templates, Trusted
from bot.domain.events import SubmissionStatus
from storage import events as store
from storage import members
from storage.events import ClinicSubmission

# Shown at a time, with their buttons, so the queue stays one readable message.
QUEUE_SIZE = 5


@dataclass(frozen=True, slots=True)
class SubmissionForm:
    problem: str
    context: str
    tried: str
    ask: str
    hide_company: bool


async def submit_clinic(ctx: Context, form: SubmissionForm) -> ClinicSubmission:
    submission = ClinicSubmission(
        platform=ctx.inbound.platform,
        workspace_id=ctx.inbound.workspace_id,
        author_user_id=ctx.inbound.user_id,
        problem=form.problem,
        context=form.context,
        tried=form.tried,
        ask=form.ask,
        hide_company=form.hide_company,
        created_at=ctx.now(),
    )
    ctx.session.add(submission)
    await ctx.session.flush()
    return submission


async def submission_for(ctx: Context, submission_id: int) -> ClinicSubmission:
    submission = await store.get_submission(
        ctx.session, ctx.inbound.platform, ctx.inbound.workspace_id, submission_id
    )
    if submission is None:
        raise CommandError(f"There is no clinic submission #{submission_id} here.")
    return submission


async def author_line(
    session: AsyncSession, platform: str, workspace_id: str, user_id: str, hide_company: bool
) -> Trusted:
    """`@bob, Support Manager at Globex`, without the company when it is hidden."""
    member = await members.get_member(session, platform, workspace_id, user_id)
    parts = [mention(user_id)]
    if member is not None:
        about = member.role or ""
        if member.company and not hide_company:
            about = f"{about} at {member.company}" if about else member.company
        if about:
            parts.append(member_text(about))
    return Trusted(", ".join(parts))


async def queue_text(ctx: Context, templates: Templates) -> tuple[str, list[Button]]:
    waiting = await store.submissions_in(
        ctx.session,
        ctx.inbound.platform,
        ctx.inbound.workspace_id,
        {SubmissionStatus.PENDING, SubmissionStatus.MORE_INFO, SubmissionStatus.ACCEPTED},
    )
    items = []
    buttons: list[Button] = []
    # A few at a time, so the answer stays one readable message with its buttons.
    for submission in waiting[:QUEUE_SIZE]:
        assert submission.id is not None
        items.append(
            {
                "id": submission.id,
                "author": await author_line(
                    ctx.session,
                    submission.platform,
                    submission.workspace_id,
                    submission.author_user_id,
                    submission.hide_company,
                ),
                "hide_company": submission.hide_company,
                "status": submission.status,
                "problem": submission.problem,
                "context": submission.context,
                "tried": submission.tried,
                "ask": submission.ask,
                "note": submission.note,
            }
        )
        if submission.status == SubmissionStatus.ACCEPTED:
            continue
        value = str(submission.id)
        buttons += [
            Button(f"Accept #{value}", "events.clinic_accept", value, ButtonStyle.PRIMARY),
            Button(f"Decline #{value}", "events.clinic_decline", value, ButtonStyle.DANGER),
            Button(f"Ask #{value} for more", "events.clinic_more", value),
        ]
    text = templates.render(
        "events/queue", submissions=items, more=max(0, len(waiting) - QUEUE_SIZE)
    )
    return text, buttons


async def accept_submission(ctx: Context, submission_id: int) -> str:
    submission = await submission_for(ctx, submission_id)
    await decide(
        ctx,
        submission,
        {SubmissionStatus.PENDING, SubmissionStatus.MORE_INFO},
        SubmissionStatus.ACCEPTED,
        None,
    )
    await ctx.outbox.dm(
        submission.author_user_id,
        Message(
            ctx.runtime.templates.render(
                "events/submission_accepted", id=submission.id, problem=submission.problem
            )
        ),
        key=f"events.clinic_accepted:{submission.id}",
    )
    return (
        f"Accepted clinic submission #{submission.id}; I told {mention(submission.author_user_id)}."
        f" Schedule it with `/kindred event schedule kind=clinic submission={submission.id} "
        'title="…" at="2026-12-10 16:00" capacity=12 link=https://…`.'
    )


async def decline_submission(ctx: Context, submission_id: int, reason: str) -> str:
    submission = await submission_for(ctx, submission_id)
    await decide(
        ctx,
        submission,
        {SubmissionStatus.PENDING, SubmissionStatus.MORE_INFO, SubmissionStatus.ACCEPTED},
        SubmissionStatus.DECLINED,
        reason,
    )
    await ctx.outbox.dm(
        submission.author_user_id,
        Message(
            ctx.runtime.templates.render(
                "events/submission_declined",
                id=submission.id,
                problem=submission.problem,
                reason=reason,
            )
        ),
        key=f"events.clinic_declined:{submission.id}",
    )
    return f"Declined clinic submission #{submission.id}; I sent the reason privately."


async def ask_for_more(ctx: Context, submission_id: int, question: str) -> str:
    submission = await submission_for(ctx, submission_id)
    await decide(
        ctx,
        submission,
        {SubmissionStatus.PENDING, SubmissionStatus.MORE_INFO},
        SubmissionStatus.MORE_INFO,
        question,
    )
    assert submission.decided_at is not None
    await ctx.outbox.dm(
        submission.author_user_id,
        Message(
            ctx.runtime.templates.render(
                "events/submission_more",
                id=submission.id,
                problem=submission.problem,
                question=question,
            ),
            (Button("Answer", "events.clinic_answer", str(submission.id), ButtonStyle.PRIMARY),),
        ),
        key=f"events.clinic_more:{submission.id}:{submission.decided_at.isoformat()}",
    )
    return f"Asked {mention(submission.author_user_id)} for more about #{submission.id}."


async def answer_organisers(ctx: Context, submission_id: int, answer: str) -> str:
    submission = await submission_for(ctx, submission_id)
    if submission.author_user_id != ctx.inbound.user_id:
        raise CommandError("Only the member who submitted this clinic can answer.")
    if submission.status != SubmissionStatus.MORE_INFO:
        raise CommandError(f"Clinic submission #{submission.id} is not waiting for an answer.")
    submission.context = f"{submission.context}\n\nAsked: {submission.note}\nAnswer: {answer}"
    await decide(
        ctx, submission, {SubmissionStatus.MORE_INFO}, SubmissionStatus.PENDING, submission.note
    )
    return f"Thanks! Clinic submission #{submission.id} is back in the organisers' queue."


async def decide(
    ctx: Context,
    submission: ClinicSubmission,
    allowed: Collection[str],
    to: SubmissionStatus,
    note: str | None,
) -> None:
    assert submission.id is not None
    now = ctx.now()
    if not await store.decide_submission(
        ctx.session, submission.id, allowed, to, by=ctx.inbound.user_id, note=note, at=now
    ):
        raise CommandError(
            f"Clinic submission #{submission.id} is {submission.status.replace('_', ' ')}; "
            "someone may have just handled it. See `/kindred clinic queue`."
        )
    await ctx.session.refresh(submission)
