"""AMA questions: asking (limits, exact and near duplicates, drafts), votes, the
moderators' review queue and the host's live panel (next question, answered,
skip). Every change a concurrent member could race is a conditional statement in
`storage.ama`, so the database decides who wins."""

from __future__ import annotations

from bot.core.context import Context
from bot.core.errors import CommandError
from bot.core.formatting import channel_link, plural
from bot.core.mentions import member_text, mention
from bot.core.platform import Button, ButtonStyle, Message, Reply
from bot.core.templates import Templates, Trusted
from bot.domain.ama import (
    ASKED_STATUSES,
    ASKING_STATES,
    OPEN_STATUSES,
    AmaInputError,
    AmaState,
    Candidate,
    QuestionStatus,
    clean_question,
    clean_reason,
    find_similar,
    ranked,
    status_words,
)
from bot.services.ama import (
    ask_button,
    asker_label,
    button_id,
    control_panel,
    question_message,
    refresh_question_post,
    require_asking,
    require_host_or_admin,
    require_live,
    state_label,
)
from storage import ama as store
from storage.ama import Ama, AmaQuestion

QUEUE_SIZE = 10
QUEUE_BUTTONS = 5


async def question_from_button(ctx: Context) -> tuple[AmaQuestion, Ama]:
    found = await store.get_question(
        ctx.session, ctx.inbound.platform, ctx.inbound.workspace_id, button_id(ctx)
    )
    if found is None:
        raise CommandError("That question no longer exists.")
    return found


# --- asking -----------------------------------------------------------------------


async def submit(
    ctx: Context, ama_id: int, text: str, anonymous: bool, draft: AmaQuestion | None = None
) -> Reply:
    """Check and post a question; offer an existing one when it is nearly the same.

    The open AMAs of its channel are locked first, so a member's concurrent
    questions are counted one after the other and Q-numbers never collide, not even
    between two AMAs of one channel."""
    session = ctx.session
    platform, workspace = ctx.inbound.platform, ctx.inbound.workspace_id
    found = await store.get_ama(session, platform, workspace, ama_id)
    if found is None:
        raise CommandError("That AMA no longer exists.")
    locked = await store.lock_open_in_channel(session, platform, workspace, found.channel_id)
    ama = next((open_ama for open_ama in locked if open_ama.id == ama_id), found)
    if ama.id is None:
        raise CommandError("That AMA no longer exists.")
    require_asking(ama)
    try:
        cleaned = clean_question(text)
    except AmaInputError as error:
        raise CommandError(str(error)) from None
    user = ctx.inbound.user_id
    asked = await store.questions(session, ama.id, ASKED_STATUSES)
    by_id = {question.id: question for question in asked}
    similar = find_similar(cleaned, [Candidate(q.id, q.text) for q in asked if q.id is not None])
    if similar is not None and similar.exact:
        return _duplicate_reply(by_id[similar.id], user)
    mine = [q for q in asked if q.author_user_id == user and q.status in OPEN_STATUSES]
    if len(mine) >= ama.max_questions:
        numbers = ", ".join(f"Q{q.number}" for q in mine)
        raise CommandError(
            f"You already have {plural(len(mine), 'open question')} in AMA #{ama.id} "
            f"({numbers}); the "
            f"limit is {ama.max_questions}. You can ask again once one is answered; meanwhile, "
            "upvote the questions you'd like answered."
        )
    if similar is not None and draft is None:
        match = by_id[similar.id]
        # Questions still in moderation are not visible, so cannot be offered instead.
        if match.status != QuestionStatus.PENDING:
            return await _offer_similar(ctx, ama, cleaned, anonymous, match)
    status = QuestionStatus.PENDING if ama.moderated else QuestionStatus.APPROVED
    if draft is None:
        question = await store.add_question(
            session, ama, author_user_id=user, text=cleaned, anonymous=anonymous, status=status
        )
    else:
        question = draft
        question.status = status
        question.similar_to_id = None
    store.assign_number(ama, question, await store.highest_number_in_channel(session, ama))
    await session.flush()
    hidden = " anonymously" if anonymous else ""
    if ama.moderated and ama.mod_channel_id:
        question.mod_outbox_id = await ctx.outbox.post(
            ama.mod_channel_id,
            review_message(ctx, ama, question),
            key=f"ama.review:{question.id}",
        )
        kind = "anonymous question" if anonymous else "question"
        return Reply.text(
            f"Thanks! Your {kind} is **Q{question.number}**. Moderators review it "
            f"before it appears in {channel_link(ama.channel_id)}; if it isn't approved, I'll "
            "tell you why."
        )
    await publish(ctx, ama, question)
    return Reply.text(
        f"Posted your question{hidden} as **Q{question.number}** in "
        f"{channel_link(ama.channel_id)}. Upvotes decide the order the host takes them in."
    )


def _duplicate_reply(match: AmaQuestion, user: str) -> Reply:
    quoted = f"> {member_text(match.text)}"
    if match.author_user_id == user and match.status in OPEN_STATUSES:
        return Reply.text(f"You already asked that as **Q{match.number}**.")
    if match.status == QuestionStatus.PENDING:
        return Reply.text("That exact question is already waiting for the moderators.")
    if match.status == QuestionStatus.APPROVED:
        return Reply.text(
            f"That was already asked as **Q{match.number}** (▲ {match.votes}):\n{quoted}\n"
            "Upvote it instead, so the votes aren't split.",
            Button(f"▲ Upvote Q{match.number}", "ama.upvote", str(match.id), ButtonStyle.PRIMARY),
        )
    return Reply.text(
        f"That was already asked as **Q{match.number}**, {status_words(match.status)}:\n{quoted}"
    )


async def _offer_similar(
    ctx: Context, ama: Ama, text: str, anonymous: bool, match: AmaQuestion
) -> Reply:
    """Keep the new question as a draft and ask: upvote the similar one, or post anyway?
    The draft lives in the database; the buttons carry only its id."""
    user = ctx.inbound.user_id
    draft = await store.add_question(
        ctx.session,
        ama,
        author_user_id=user,
        text=text,
        anonymous=anonymous,
        status=QuestionStatus.DRAFT,
        similar_to_id=match.id,
    )
    own = match.author_user_id == user
    intro = (
        f"You already asked something similar as **Q{match.number}**:"
        if own
        else f"A similar question was already asked as **Q{match.number}** (▲ {match.votes}):"
    )
    lines = [intro, f"> {member_text(match.text)}"]
    buttons: list[Button] = []
    if match.status == QuestionStatus.APPROVED and not own:
        lines.append("Upvote it instead? Similar questions split the votes.")
        buttons.append(
            Button(
                f"▲ Upvote Q{match.number} instead",
                "ama.upvote_instead",
                str(draft.id),
                ButtonStyle.PRIMARY,
            )
        )
    elif match.status != QuestionStatus.APPROVED:
        lines.append(f"It is {status_words(match.status)}.")
    lines.append(f"Or post yours anyway:\n> {member_text(text)}")
    buttons.append(Button("Post mine anyway", "ama.ask_anyway", str(draft.id)))
    return Reply.text("\n".join(lines), *buttons)


async def own_draft(ctx: Context) -> AmaQuestion:
    found = await store.get_question(
        ctx.session, ctx.inbound.platform, ctx.inbound.workspace_id, button_id(ctx)
    )
    if found is None or found[0].author_user_id != ctx.inbound.user_id:
        raise CommandError("That suggestion has expired. Ask again with `/kindred ama ask …`.")
    draft = found[0]
    if draft.status != QuestionStatus.DRAFT:
        raise CommandError(f"You already posted that question as **Q{draft.number}**.")
    return draft


async def publish(ctx: Context, ama: Ama, question: AmaQuestion) -> None:
    question.post_outbox_id = await ctx.outbox.post(
        ama.channel_id,
        question_message(ctx.runtime.templates, question),
        key=f"ama.question:{question.id}",
    )


# --- votes ------------------------------------------------------------------------


async def vote(ctx: Context, question: AmaQuestion, ama: Ama, *, toggle: bool) -> str:
    """One vote per member: pressing again withdraws it (`toggle`)."""
    assert question.id is not None
    if ama.state == AmaState.CLOSED:
        raise CommandError(f"AMA #{ama.id} has closed; the votes are final.")
    if question.status != QuestionStatus.APPROVED:
        raise CommandError(
            f"Q{question.number} is {status_words(question.status)}, "
            "so votes no longer change anything."
        )
    user = ctx.inbound.user_id
    if question.author_user_id == user:
        raise CommandError(
            f"Q{question.number} is your own question; share it so others upvote it."
        )
    votes = await store.add_vote(ctx.session, question.id, user)
    if votes is not None:
        answer = f"▲ Upvoted Q{question.number} (now {plural(votes, 'vote')})."
    elif not toggle:
        return f"You had already upvoted Q{question.number}."
    else:
        votes = await store.remove_vote(ctx.session, question.id, user) or 0
        answer = f"Removed your vote from Q{question.number} (now {plural(votes, 'vote')})."
    await refresh_question_post(ctx.outbox, ctx.runtime.templates, question)
    return answer


async def upvote_instead(ctx: Context) -> str:
    """The member drops their near-duplicate draft and votes for the similar question."""
    draft = await own_draft(ctx)
    similar_id = draft.similar_to_id
    await store.delete_draft(ctx.session, draft.id or 0)
    found = (
        await store.get_question(
            ctx.session, ctx.inbound.platform, ctx.inbound.workspace_id, similar_id
        )
        if similar_id is not None
        else None
    )
    if found is None:
        raise CommandError("That question no longer exists; post yours with `/kindred ama ask`.")
    return await vote(ctx, found[0], found[1], toggle=False)


async def queue_reply(ctx: Context, ama: Ama) -> Reply:
    """The top questions, by votes then age, with vote buttons for the member."""
    assert ama.id is not None
    user = ctx.inbound.user_id
    open_questions = await store.questions(ctx.session, ama.id, OPEN_STATUSES)
    waiting = ranked(q for q in open_questions if q.status == QuestionStatus.APPROVED)
    top = waiting[:QUEUE_SIZE]
    voted = await store.voters(ctx.session, [q.id for q in top if q.id is not None])
    answering = next((q for q in open_questions if q.status == QuestionStatus.ANSWERING), None)
    text = ctx.runtime.templates.render(
        "ama/queue",
        ama_id=ama.id,
        title=ama.title,
        host=Trusted(mention(ama.host_user_id)),
        status=Trusted(state_label(ama)),
        top=[
            {
                "number": q.number,
                "votes": q.votes,
                "asker": asker_label(q),
                "text": q.text,
                "mine": q.author_user_id == user,
                "voted": user in voted.get(q.id or 0, set()),
            }
            for q in top
        ],
        more=len(waiting) - len(top),
        answering=answering.number if answering is not None else None,
        pending=sum(1 for q in open_questions if q.status == QuestionStatus.PENDING),
    )
    buttons = [
        Button(
            f"Unvote Q{q.number}" if user in voted.get(q.id or 0, set()) else f"▲ Q{q.number}",
            "ama.upvote",
            str(q.id),
        )
        for q in top
        if q.author_user_id != user
    ][:QUEUE_BUTTONS]
    if ama.state in ASKING_STATES:
        buttons.append(ask_button(ama))
    return Reply.text(text, *buttons)


# --- moderation -------------------------------------------------------------------


def review_message(
    ctx: Context,
    ama: Ama,
    question: AmaQuestion,
    decision: str | None = None,
    reason: str | None = None,
) -> Message:
    """The moderators' queue post. It names anonymous askers: moderators may see them."""
    text = ctx.runtime.templates.render(
        "ama/mod_queue",
        number=question.number,
        ama_id=ama.id,
        title=ama.title,
        author=Trusted(mention(question.author_user_id)),
        anonymous=question.anonymous,
        text=question.text,
        decision=decision,
        moderator=Trusted(mention(ctx.inbound.user_id)),
        reason=reason,
    )
    if decision is not None:
        return Message(text)
    return Message(
        text,
        (
            Button("Approve", "ama.approve", str(question.id), ButtonStyle.PRIMARY),
            Button("Reject", "ama.reject", str(question.id), ButtonStyle.DANGER),
        ),
    )


def require_pending(question: AmaQuestion) -> None:
    if question.status != QuestionStatus.PENDING:
        by = f" by {mention(question.moderated_by)}" if question.moderated_by else ""
        raise CommandError(
            f"Q{question.number} was already moderated{by}: it is {status_words(question.status)}."
        )


async def approve(ctx: Context) -> Message:
    """Publish a pending question; the moderators' post becomes the returned message."""
    question, ama = await question_from_button(ctx)
    assert question.id is not None
    if ama.state == AmaState.CLOSED:
        raise CommandError(f"AMA #{ama.id} has closed; there is nothing left to approve.")
    require_pending(question)
    if not await store.change_status(
        ctx.session,
        question.id,
        {QuestionStatus.PENDING},
        QuestionStatus.APPROVED,
        moderated_by=ctx.inbound.user_id,
    ):
        raise CommandError(f"Another moderator just handled Q{question.number}.")
    await publish(ctx, ama, question)
    return review_message(ctx, ama, question, "approved")


async def reject(ctx: Context, reason_text: str) -> str:
    """Reject a pending question and tell its asker why, privately."""
    question, ama = await question_from_button(ctx)
    assert question.id is not None
    try:
        reason = clean_reason(reason_text)
    except AmaInputError as error:
        raise CommandError(str(error)) from None
    require_pending(question)
    if not await store.change_status(
        ctx.session,
        question.id,
        {QuestionStatus.PENDING},
        QuestionStatus.REJECTED,
        moderated_by=ctx.inbound.user_id,
        reject_reason=reason,
        resolved_at=ctx.now(),
    ):
        raise CommandError(f"Another moderator just handled Q{question.number}.")
    note = ctx.runtime.templates.render(
        "ama/rejected", ama_id=ama.id, title=ama.title, text=question.text, reason=reason
    )
    await ctx.outbox.dm(question.author_user_id, Message(note), key=f"ama.rejected:{question.id}")
    if question.mod_outbox_id is not None:
        await ctx.outbox.update(
            question.mod_outbox_id, review_message(ctx, ama, question, "rejected", reason)
        )
    return f"Rejected Q{question.number}; I've told the asker privately."


# --- the host's live panel --------------------------------------------------------


async def next_question(ctx: Context, ama: Ama) -> Message:
    """Post the top-voted waiting question in the AMA channel as a thread parent;
    returns the host's updated control panel."""
    assert ama.id is not None
    await require_host_or_admin(ctx, ama, "run the AMA")
    require_live(ama)
    templates = ctx.runtime.templates
    open_questions = await store.questions(
        ctx.session, ama.id, {QuestionStatus.APPROVED, QuestionStatus.ANSWERING}
    )
    current = next((q for q in open_questions if q.status == QuestionStatus.ANSWERING), None)
    if current is not None:
        note = f"Q{current.number} is still open: mark it Answered or Skip first."
        return await control_panel(ctx.session, templates, ama, note)
    waiting = ranked(q for q in open_questions if q.status == QuestionStatus.APPROVED)
    if not waiting:
        return await control_panel(ctx.session, templates, ama)
    top = waiting[0]
    assert top.id is not None
    if not await store.change_status(
        ctx.session, top.id, {QuestionStatus.APPROVED}, QuestionStatus.ANSWERING
    ):
        raise CommandError("The queue just changed; press Next question again.")
    await _post_live(ctx, templates, ama, top)
    note = f"Posted Q{top.number} in {channel_link(ama.channel_id)}."
    return await control_panel(ctx.session, templates, ama, note)


async def _post_live(ctx: Context, templates: Templates, ama: Ama, top: AmaQuestion) -> None:
    host = Trusted(mention(ama.host_user_id))
    parent = templates.render(
        "ama/question_live",
        number=top.number,
        votes=top.votes,
        asker=asker_label(top),
        text=top.text,
    )
    top.live_outbox_id = await ctx.outbox.post(
        ama.channel_id, Message(parent), key=f"ama.live_question:{top.id}"
    )
    # The bot's first reply opens the thread (a Discord thread must be created).
    prompt = templates.render("ama/thread_prompt", host=host, number=top.number)
    await ctx.outbox.thread_reply(
        top.live_outbox_id,
        Message(prompt, mentions=(ama.host_user_id,)),
        key=f"ama.thread_prompt:{top.id}",
    )
    await refresh_question_post(ctx.outbox, templates, top)


async def resolve_live_question(ctx: Context, status: QuestionStatus) -> Message:
    """Mark the question being answered as answered or skipped; returns the panel."""
    question, ama = await question_from_button(ctx)
    assert question.id is not None
    await require_host_or_admin(ctx, ama, "mark questions")
    require_live(ama)
    if not await store.change_status(
        ctx.session, question.id, {QuestionStatus.ANSWERING}, status, resolved_at=ctx.now()
    ):
        raise CommandError(
            f"Q{question.number} isn't being answered: it is {status_words(question.status)}."
        )
    templates = ctx.runtime.templates
    await refresh_question_post(ctx.outbox, templates, question)
    done = "✅ Marked" if status == QuestionStatus.ANSWERED else "⏭️ Skipped"
    note = f"{done} Q{question.number}{' answered' if status == QuestionStatus.ANSWERED else ''}."
    return await control_panel(ctx.session, templates, ama, note)
