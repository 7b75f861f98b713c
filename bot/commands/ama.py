"""`/kindred ama …`: Ask Me Anything sessions with questions, votes, moderation and
threads, run entirely inside Slack or Discord.

Which AMA a command means: the `ama=<id>` option; else the upcoming or live AMA of
the current channel; else the community's only open AMA; else the member is asked
to choose. Buttons carry ids, never state, so they keep working after a restart.

Each approved question gets its own post in the AMA channel with an upvote button
whose label shows the count (edited as votes change): members vote where they
read, and the channel only ever shows questions that passed moderation.
"""

from __future__ import annotations

from zoneinfo import ZoneInfo

from bot.core.context import Context
from bot.core.errors import CommandError
from bot.core.feature import Feature, Tick
from bot.core.formatting import channel_link
from bot.core.mentions import member_text, mention, strip_markup_for_plain_text
from bot.core.platform import Attachment, Button, ButtonStyle, Message, Modal, ModalField, Reply
from bot.core.registry import Handlers, Param
from bot.core.templates import Trusted
from bot.domain.ama import (
    ASKED_STATUSES,
    ASKING_STATES,
    DEFAULT_DURATION,
    DEFAULT_MAX_OPEN_QUESTIONS,
    MAX_QUESTION_LENGTH,
    OPEN_STATUSES,
    AmaInputError,
    AmaState,
    Candidate,
    EventKind,
    QuestionStatus,
    clean_question,
    describe_span,
    describe_time,
    find_similar,
    parse_duration,
    parse_time,
    ranked,
    timeline,
)
from bot.jobs import ama as jobs
from bot.services.ama import (
    ama_summary,
    announce,
    ask_button,
    asker_label,
    close_ama,
    control_panel,
    question_message,
    refresh_question_post,
    when_label,
    zone_of,
)
from storage import ama as store
from storage import members
from storage.ama import Ama, AmaQuestion

handlers = Handlers("ama")
feature = Feature(
    summary="Ask-me-anything sessions: questions, votes, moderation and a recap",
    handlers=handlers,
    highlights=("ama list", "ama ask", "ama queue"),
    tables=store,
    ticks=(Tick(jobs.TICK, jobs.TICK_SECONDS, jobs.tick, next_due=jobs.next_due),),
)

AMA_PARAM = Param(
    "ama", "int", "The AMA's number, shown in its announcement", min_value=1, positional=False
)
MAX_TITLE_LENGTH = 150
MAX_REASON_LENGTH = 300
QUEUE_SIZE = 10
QUEUE_BUTTONS = 5
HOME_BUTTONS = 5
_YES = {"yes", "y", "true", "on", "1"}
_NO = {"no", "n", "false", "off", "0", ""}
_STATUS_WORDS = {
    QuestionStatus.PENDING: "waiting for moderation",
    QuestionStatus.ANSWERING: "being answered right now",
    QuestionStatus.ANSWERED: "already answered",
    QuestionStatus.SKIPPED: "skipped by the host",
    QuestionStatus.REJECTED: "not approved",
    QuestionStatus.APPROVED: "open for votes",
    QuestionStatus.DRAFT: "not posted",
}


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
    now = ctx.now()
    admin = await ctx.member()
    zone = ZoneInfo(admin.timezone or ctx.runtime.settings.timezone)
    title = " ".join(ctx.args["title"].split())
    if len(title) > MAX_TITLE_LENGTH:
        raise CommandError(
            f"The title is {len(title)} characters; keep it under {MAX_TITLE_LENGTH}."
        )
    try:
        starts_at = parse_time(ctx.args["at"], zone, now)
        duration = (
            parse_duration(ctx.args["duration"]) if "duration" in ctx.args else DEFAULT_DURATION
        )
        announce_at = (
            parse_time(ctx.args["announce"], zone, now, "announce")
            if "announce" in ctx.args
            else now
        )
    except AmaInputError as error:
        raise CommandError(str(error)) from None
    if announce_at >= starts_at:
        raise CommandError(
            f"The announcement ({describe_time(announce_at, zone)}) must come before the "
            f"start ({describe_time(starts_at, zone)})."
        )
    channel_id = ctx.args.get("channel") or ctx.inbound.channel_id
    if not channel_id:
        raise CommandError("Tell me where the AMA happens: add `channel:#ama`.")
    moderated, mod_channel_id = _moderation(ctx, channel_id)
    ends_at = starts_at + duration
    platform, workspace = ctx.inbound.platform, ctx.inbound.workspace_id
    clash = await store.overlapping(
        ctx.session, platform, workspace, channel_id, starts_at, ends_at
    )
    if clash is not None:
        span = describe_span(clash.starts_at, clash.ends_at, zone)
        raise CommandError(
            f"{channel_link(channel_id)} already has AMA #{clash.id} "
            f"({member_text(clash.title)}) on {span}. Pick another time or channel."
        )
    host = await ctx.member(ctx.args["host"])
    ama = Ama(
        platform=platform,
        workspace_id=workspace,
        title=title,
        host_user_id=host.user_id,
        channel_id=channel_id,
        created_by=ctx.inbound.user_id,
        timezone=zone.key,
        moderated=moderated,
        mod_channel_id=mod_channel_id,
        max_questions=ctx.args.get("max_questions", DEFAULT_MAX_OPEN_QUESTIONS),
        state=AmaState.SCHEDULED,
        announce_at=announce_at,
        starts_at=starts_at,
        ends_at=ends_at,
        next_event_at=announce_at,
        created_at=now,
    )
    ctx.session.add(ama)
    await ctx.session.flush()
    announced_now = "announce" not in ctx.args
    if announced_now:
        await announce(ctx.outbox, ctx.runtime.templates, ama)
    return Reply.text(
        _scheduled_summary(ama, announced_now, has_profile=bool(host.bio or host.role))
    )


def _moderation(ctx: Context, channel_id: str) -> tuple[bool, str | None]:
    mod_channel = ctx.args.get("mod_channel")
    moderated = ctx.args.get("moderated", mod_channel is not None)
    if moderated and mod_channel is None:
        raise CommandError(
            "A moderated AMA needs a private channel for its review queue: add "
            "`mod_channel:#ama-mods`."
        )
    if not moderated and mod_channel is not None:
        raise CommandError("`mod_channel` only applies to moderated AMAs: add `moderated:on`.")
    if mod_channel == channel_id:
        raise CommandError(
            "The review queue shows who asked anonymous questions, so it needs its own "
            "private channel, not the AMA channel."
        )
    return moderated, mod_channel


def _scheduled_summary(ama: Ama, announced_now: bool, *, has_profile: bool) -> str:
    zone = zone_of(ama)
    lines = [
        f"Scheduled **AMA #{ama.id}: {member_text(ama.title)}** with {mention(ama.host_user_id)}, "
        f"{when_label(ama)}, in {channel_link(ama.channel_id)}."
    ]
    if ama.moderated and ama.mod_channel_id:
        lines.append(f"Questions wait for approval in {channel_link(ama.mod_channel_id)}.")
    if announced_now:
        lines.append("I posted the announcement with an Ask button; questions are open.")
    else:
        lines.append(
            f"I'll announce it and open questions on {describe_time(ama.announce_at, zone)}."
        )
    kinds = {event.kind for event in timeline(ama.announce_at, ama.starts_at, ama.ends_at)}
    reminders = [
        label
        for kind, label in (
            (EventKind.REMIND_DAY, "a day before"),
            (EventKind.REMIND_SOON, "15 minutes before"),
        )
        if kind in kinds
    ]
    if reminders:
        lines.append(f"Reminders go out {' and '.join(reminders)}.")
    if not has_profile:
        lines.append(
            f"Tip: the announcement shows the host's bio; {mention(ama.host_user_id)} can add "
            'one with `/kindred profile set role="…" bio="…"` before the next reminder.'
        )
    return "\n".join(lines)


# --- which AMA --------------------------------------------------------------------


async def resolve_ama(ctx: Context, *, include_closed: bool = False) -> Ama:
    """The AMA a command means (see the module docstring)."""
    platform, workspace = ctx.inbound.platform, ctx.inbound.workspace_id
    if "ama" in ctx.args:
        ama = await store.get_ama(ctx.session, platform, workspace, ctx.args["ama"])
        if ama is None:
            raise CommandError(f"There is no AMA #{ctx.args['ama']} here.")
        return ama
    open_now = await store.open_amas(ctx.session, platform, workspace)
    here = [ama for ama in open_now if ama.channel_id == ctx.inbound.channel_id]
    if here:
        return next((ama for ama in here if ama.state == AmaState.LIVE), here[0])
    if len(open_now) == 1:
        return open_now[0]
    if include_closed and ctx.inbound.channel_id:
        latest = await store.latest_in_channel(
            ctx.session, platform, workspace, ctx.inbound.channel_id
        )
        if latest is not None:
            return latest
    if not open_now:
        raise CommandError(
            "There's no AMA open right now. Admins can schedule one with "
            '`/kindred ama schedule host:@ana title:"Scaling support" at:"2026-12-01 15:00"`.'
        )
    listing = "\n".join(
        f"• `ama={ama.id}`: {member_text(ama.title)} in {channel_link(ama.channel_id)}, "
        f"{when_label(ama)}"
        for ama in open_now
    )
    raise CommandError(f"Several AMAs are open; say which one with `ama=<id>`:\n{listing}")


async def _ama_from_button(ctx: Context, *, lock: bool = False) -> Ama:
    ama = await store.get_ama(
        ctx.session, ctx.inbound.platform, ctx.inbound.workspace_id, _button_id(ctx), lock=lock
    )
    if ama is None:
        raise CommandError("That AMA no longer exists.")
    return ama


async def _question_from_button(ctx: Context) -> tuple[AmaQuestion, Ama]:
    found = await store.get_question(
        ctx.session, ctx.inbound.platform, ctx.inbound.workspace_id, _button_id(ctx)
    )
    if found is None:
        raise CommandError("That question no longer exists.")
    return found


def _button_id(ctx: Context) -> int:
    try:
        return int(ctx.inbound.value)
    except ValueError:
        raise CommandError("That button is out of date. Try `/kindred ama queue`.") from None


async def _require_host_or_admin(ctx: Context, ama: Ama, what: str) -> None:
    if ctx.inbound.user_id == ama.host_user_id or await ctx.is_admin():
        return
    raise CommandError(f"Only the host ({mention(ama.host_user_id)}) or an admin can {what}.")


def _require_asking(ama: Ama) -> None:
    if ama.state == AmaState.SCHEDULED:
        raise CommandError(
            f"AMA #{ama.id} opens for questions on {describe_time(ama.announce_at, zone_of(ama))}."
        )
    if ama.state not in ASKING_STATES:
        raise CommandError(
            f"AMA #{ama.id} ({member_text(ama.title)}) has closed. "
            f"Read it with `/kindred ama export ama={ama.id}`."
        )


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
    ama = await resolve_ama(ctx)
    if "question" not in ctx.args:
        _require_asking(ama)
        return Reply(modal=_ask_modal(ama))
    assert ama.id is not None
    return await _submit(ctx, ama.id, ctx.args["question"], ctx.args.get("anonymous", False))


@handlers.action("ama.ask")
async def ask_button_pressed(ctx: Context) -> Reply:
    ama = await _ama_from_button(ctx)
    _require_asking(ama)
    return Reply(modal=_ask_modal(ama))


@handlers.action("ama.ask_submit")
async def ask_submitted(ctx: Context) -> Reply:
    answer = str(ctx.inbound.options.get("anonymous") or "").strip().lower()
    if answer not in _YES | _NO:
        raise CommandError(f"Anonymous should be yes or no, not `{member_text(answer)}`.")
    question = str(ctx.inbound.options.get("question") or "")
    return await _submit(ctx, _button_id(ctx), question, answer in _YES)


@handlers.action("ama.ask_anyway")
async def ask_anyway(ctx: Context) -> Reply:
    draft = await _own_draft(ctx)
    return await _submit(ctx, draft.ama_id, draft.text, draft.anonymous, draft=draft)


async def _submit(
    ctx: Context, ama_id: int, text: str, anonymous: bool, draft: AmaQuestion | None = None
) -> Reply:
    """Check and post a question; offer an existing one when it is nearly the same.

    The AMA row is locked first, so a member's concurrent questions are counted one
    after the other and Q-numbers never collide."""
    session = ctx.session
    ama = await store.get_ama(
        session, ctx.inbound.platform, ctx.inbound.workspace_id, ama_id, lock=True
    )
    if ama is None or ama.id is None:
        raise CommandError("That AMA no longer exists.")
    _require_asking(ama)
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
            f"You already have {len(mine)} open questions in AMA #{ama.id} ({numbers}); the "
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
    store.assign_number(ama, question)
    await session.flush()
    hidden = " anonymously" if anonymous else ""
    if ama.moderated and ama.mod_channel_id:
        question.mod_outbox_id = await ctx.outbox.post(
            ama.mod_channel_id,
            _review_message(ctx, ama, question),
            key=f"ama.review:{question.id}",
        )
        kind = "anonymous question" if anonymous else "question"
        return Reply.text(
            f"Thanks! Your {kind} is **Q{question.number}**. Moderators review it "
            f"before it appears in {channel_link(ama.channel_id)}; if it isn't approved, I'll "
            "tell you why."
        )
    await _publish(ctx, ama, question)
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
        f"That was already asked as **Q{match.number}**, "
        f"{_STATUS_WORDS[QuestionStatus(match.status)]}:\n{quoted}"
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
        lines.append(f"It is {_STATUS_WORDS[QuestionStatus(match.status)]}.")
    lines.append(f"Or post yours anyway:\n> {member_text(text)}")
    buttons.append(Button("Post mine anyway", "ama.ask_anyway", str(draft.id)))
    return Reply.text("\n".join(lines), *buttons)


async def _own_draft(ctx: Context) -> AmaQuestion:
    found = await store.get_question(
        ctx.session, ctx.inbound.platform, ctx.inbound.workspace_id, _button_id(ctx)
    )
    if found is None or found[0].author_user_id != ctx.inbound.user_id:
        raise CommandError("That suggestion has expired. Ask again with `/kindred ama ask …`.")
    draft = found[0]
    if draft.status != QuestionStatus.DRAFT:
        raise CommandError(f"You already posted that question as **Q{draft.number}**.")
    return draft


async def _publish(ctx: Context, ama: Ama, question: AmaQuestion) -> None:
    question.post_outbox_id = await ctx.outbox.post(
        ama.channel_id,
        question_message(ctx.runtime.templates, question),
        key=f"ama.question:{question.id}",
    )


# --- votes ------------------------------------------------------------------------


@handlers.action("ama.upvote")
async def upvote(ctx: Context) -> Reply:
    question, ama = await _question_from_button(ctx)
    return await _vote(ctx, question, ama, toggle=True)


@handlers.action("ama.upvote_instead")
async def upvote_instead(ctx: Context) -> Reply:
    draft = await _own_draft(ctx)
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
    return await _vote(ctx, found[0], found[1], toggle=False)


async def _vote(ctx: Context, question: AmaQuestion, ama: Ama, *, toggle: bool) -> Reply:
    """One vote per member: pressing again withdraws it (`toggle`)."""
    assert question.id is not None
    if ama.state == AmaState.CLOSED:
        raise CommandError(f"AMA #{ama.id} has closed; the votes are final.")
    if question.status != QuestionStatus.APPROVED:
        raise CommandError(
            f"Q{question.number} is {_STATUS_WORDS[QuestionStatus(question.status)]}, "
            "so votes no longer change anything."
        )
    user = ctx.inbound.user_id
    if question.author_user_id == user:
        raise CommandError(
            f"Q{question.number} is your own question; share it so others upvote it."
        )
    votes = await store.add_vote(ctx.session, question.id, user)
    if votes is not None:
        answer = f"▲ Upvoted Q{question.number} (now {_votes(votes)})."
    elif not toggle:
        return Reply.text(f"You had already upvoted Q{question.number}.")
    else:
        votes = await store.remove_vote(ctx.session, question.id, user) or 0
        answer = f"Removed your vote from Q{question.number} (now {_votes(votes)})."
    await refresh_question_post(ctx.outbox, ctx.runtime.templates, question)
    return Reply.text(answer)


def _votes(count: int) -> str:
    return f"{count} vote" if count == 1 else f"{count} votes"


@handlers.command("ama queue", "Show the top questions, by votes then age", [AMA_PARAM])
async def queue(ctx: Context) -> Reply:
    ama = await resolve_ama(ctx)
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
        status=Trusted(_state_label(ama)),
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


def _state_label(ama: Ama) -> str:
    zone = zone_of(ama)
    if ama.state == AmaState.SCHEDULED:
        return f"questions open {describe_time(ama.announce_at, zone)}"
    if ama.state == AmaState.COLLECTING:
        return f"collecting questions, starts {describe_time(ama.starts_at, zone)}"
    if ama.state == AmaState.LIVE:
        return "🔴 live now"
    return "closed"


# --- moderation -------------------------------------------------------------------


def _review_message(
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


def _require_pending(question: AmaQuestion) -> None:
    if question.status != QuestionStatus.PENDING:
        by = f" by {mention(question.moderated_by)}" if question.moderated_by else ""
        raise CommandError(
            f"Q{question.number} was already moderated{by}: it is "
            f"{_STATUS_WORDS[QuestionStatus(question.status)]}."
        )


@handlers.action("ama.approve", admin=True)
async def approve(ctx: Context) -> Reply:
    question, ama = await _question_from_button(ctx)
    assert question.id is not None
    if ama.state == AmaState.CLOSED:
        raise CommandError(f"AMA #{ama.id} has closed; there is nothing left to approve.")
    _require_pending(question)
    if not await store.change_status(
        ctx.session,
        question.id,
        {QuestionStatus.PENDING},
        QuestionStatus.APPROVED,
        moderated_by=ctx.inbound.user_id,
    ):
        raise CommandError(f"Another moderator just handled Q{question.number}.")
    await _publish(ctx, ama, question)
    return Reply(update_original=_review_message(ctx, ama, question, "approved"))


@handlers.action("ama.reject", admin=True)
async def reject(ctx: Context) -> Reply:
    question, _ = await _question_from_button(ctx)
    _require_pending(question)
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
    question, ama = await _question_from_button(ctx)
    assert question.id is not None
    reason = " ".join(str(ctx.inbound.options.get("reason") or "").split()) or None
    if reason is not None and len(reason) > MAX_REASON_LENGTH:
        raise CommandError(f"Keep the reason under {MAX_REASON_LENGTH} characters.")
    _require_pending(question)
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
            question.mod_outbox_id, _review_message(ctx, ama, question, "rejected", reason)
        )
    return Reply.text(f"Rejected Q{question.number}; I've told the asker privately.")


# --- live -------------------------------------------------------------------------


@handlers.action("ama.next")
async def next_question(ctx: Context) -> Reply:
    """Post the top-voted waiting question in the AMA channel as a thread parent."""
    ama = await _ama_from_button(ctx, lock=True)
    assert ama.id is not None
    await _require_host_or_admin(ctx, ama, "run the AMA")
    _require_live(ama)
    templates = ctx.runtime.templates
    open_questions = await store.questions(
        ctx.session, ama.id, {QuestionStatus.APPROVED, QuestionStatus.ANSWERING}
    )
    current = next((q for q in open_questions if q.status == QuestionStatus.ANSWERING), None)
    if current is not None:
        note = f"Q{current.number} is still open: mark it Answered or Skip first."
        return Reply(update_original=await control_panel(ctx.session, templates, ama, note))
    waiting = ranked(q for q in open_questions if q.status == QuestionStatus.APPROVED)
    if not waiting:
        return Reply(update_original=await control_panel(ctx.session, templates, ama))
    top = waiting[0]
    assert top.id is not None
    if not await store.change_status(
        ctx.session, top.id, {QuestionStatus.APPROVED}, QuestionStatus.ANSWERING
    ):
        raise CommandError("The queue just changed; press Next question again.")
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
    note = f"Posted Q{top.number} in {channel_link(ama.channel_id)}."
    return Reply(update_original=await control_panel(ctx.session, templates, ama, note))


@handlers.action("ama.answered")
async def answered(ctx: Context) -> Reply:
    return await _resolve_live_question(ctx, QuestionStatus.ANSWERED)


@handlers.action("ama.skip")
async def skip(ctx: Context) -> Reply:
    return await _resolve_live_question(ctx, QuestionStatus.SKIPPED)


async def _resolve_live_question(ctx: Context, status: QuestionStatus) -> Reply:
    question, ama = await _question_from_button(ctx)
    assert question.id is not None
    await _require_host_or_admin(ctx, ama, "mark questions")
    _require_live(ama)
    if not await store.change_status(
        ctx.session, question.id, {QuestionStatus.ANSWERING}, status, resolved_at=ctx.now()
    ):
        raise CommandError(
            f"Q{question.number} isn't being answered: it is "
            f"{_STATUS_WORDS[QuestionStatus(question.status)]}."
        )
    templates = ctx.runtime.templates
    await refresh_question_post(ctx.outbox, templates, question)
    done = "✅ Marked" if status == QuestionStatus.ANSWERED else "⏭️ Skipped"
    note = f"{done} Q{question.number}{' answered' if status == QuestionStatus.ANSWERED else ''}."
    return Reply(update_original=await control_panel(ctx.session, templates, ama, note))


def _require_live(ama: Ama) -> None:
    if ama.state == AmaState.LIVE:
        return
    if ama.state == AmaState.CLOSED:
        raise CommandError(f"AMA #{ama.id} has closed.")
    raise CommandError(
        f"AMA #{ama.id} goes live on {describe_time(ama.starts_at, zone_of(ama))}; "
        "the control panel works from then."
    )


# --- close and export -------------------------------------------------------------


@handlers.command(
    "ama close",
    "End the AMA now: recap in its channel, unanswered questions to the host",
    [AMA_PARAM],
)
async def close_command(ctx: Context) -> Reply:
    ama = await resolve_ama(ctx)
    return Reply.text(await _close(ctx, ama.id or 0))


@handlers.action("ama.close")
async def close_button(ctx: Context) -> Reply:
    text = await _close(ctx, _button_id(ctx))
    return Reply(update_original=Message(text))


async def _close(ctx: Context, ama_id: int) -> str:
    ama = await store.get_ama(
        ctx.session, ctx.inbound.platform, ctx.inbound.workspace_id, ama_id, lock=True
    )
    if ama is None:
        raise CommandError("That AMA no longer exists.")
    await _require_host_or_admin(ctx, ama, "close the AMA")
    if ama.state == AmaState.CLOSED:
        raise CommandError(f"AMA #{ama.id} is already closed.")
    previous = AmaState(ama.state)
    await close_ama(ctx.outbox, ctx.runtime.templates, ama, ctx.now())
    channel = channel_link(ama.channel_id)
    if previous == AmaState.SCHEDULED:
        return f"Cancelled AMA #{ama.id} before its announcement; nobody was notified."
    if previous == AmaState.COLLECTING:
        return f"Called off AMA #{ama.id}; I let {channel} know."
    return (
        f"Closed AMA #{ama.id}. The recap is in {channel}, and the host has a note with any "
        f"unanswered questions. Get the whole AMA with `/kindred ama export ama={ama.id}`."
    )


@handlers.command("ama export", "Get the whole AMA as a Markdown file", [AMA_PARAM])
async def export(ctx: Context) -> Reply:
    ama = await resolve_ama(ctx, include_closed=True)
    if ama.state == AmaState.SCHEDULED:
        raise CommandError(f"AMA #{ama.id} hasn't been announced yet; there's nothing to export.")
    document = await export_markdown(ctx, ama)
    await ctx.outbox.dm(
        ctx.inbound.user_id,
        Message(
            f"AMA #{ama.id} ({member_text(ama.title)}) as a Markdown document.",
            attachment=Attachment(f"ama-{ama.id}.md", document.encode("utf-8")),
        ),
    )
    return Reply.text(f"I've sent you AMA #{ama.id} as a Markdown file in a DM.")


async def export_markdown(ctx: Context, ama: Ama) -> str:
    """The whole AMA as a document. Anonymous askers appear as "Anonymous"."""
    summary = await ama_summary(ctx.session, ama)
    people = await members.members_by_user_ids(
        ctx.session,
        ama.platform,
        ama.workspace_id,
        sorted({q.author_user_id for q in summary.visible} | {ama.host_user_id}),
    )

    def name(user_id: str) -> str:
        member = people.get(user_id)
        return member.display_name if member is not None else user_id

    def shown(question: AmaQuestion) -> dict[str, object]:
        link = summary.links.get(question.id or -1)
        return {
            "number": question.number,
            "votes": question.votes,
            "asker": "Anonymous" if question.anonymous else name(question.author_user_id),
            "text": question.text,
            "link": link,
            "skipped": question.status == QuestionStatus.SKIPPED,
        }

    document = ctx.runtime.templates.render(
        "ama/export",
        ama_id=ama.id,
        title=ama.title,
        host=name(ama.host_user_id),
        when=when_label(ama),
        status=_state_label(ama),
        asked=len(summary.visible),
        votes=summary.votes,
        answered=[shown(q) for q in summary.answered],
        unanswered=[shown(q) for q in summary.unanswered],
    )
    # A file is never parsed for pings; the member-text markers have no meaning there.
    return strip_markup_for_plain_text(document) + "\n"


# --- home -------------------------------------------------------------------------


@handlers.event("home_opened")
async def ama_home_section(ctx: Context) -> Reply | None:
    """Open AMAs on the member's home tab, each with an Ask button."""
    amas = [
        ama
        for ama in await store.open_amas(
            ctx.session, ctx.inbound.platform, ctx.inbound.workspace_id
        )
        if ama.state in ASKING_STATES
    ]
    if not amas:
        return None
    lines = ["**Ask Me Anything**"]
    lines += [
        f"• AMA #{ama.id}: {member_text(ama.title)} with {mention(ama.host_user_id)}, "
        f"{_state_label(ama)}, in {channel_link(ama.channel_id)}"
        for ama in amas
    ]
    buttons = [
        Button(f"Ask in AMA #{ama.id}", "ama.ask", str(ama.id)) for ama in amas[:HOME_BUTTONS]
    ]
    return Reply.text("\n".join(lines), *buttons)
