"""AMA sessions: scheduling, which AMA a command means, the timeline (announcement,
reminders a day and 15 minutes before, going live and closing, each run exactly
once across replicas through one periodic tick), closing by hand and the export.
Questions, votes, moderation and the host's live panel are in `ama_questions`.

The announce, live and close steps are also what the `/kindred ama` commands call
(an announcement "now", a close by the host), so both paths send the same messages.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.context import Context
from bot.core.errors import CommandError
from bot.core.figures import Figures, MemberAction, Period, Stored, as_member_actions
from bot.core.formatting import channel_link
from bot.core.mentions import member_text, mention, strip_markup_for_plain_text
from bot.core.outbox import Outbox, message_to_payload
from bot.core.platform import Button, ButtonStyle, Identity, Message
from bot.core.templates import Templates, Trusted
from bot.core.times import describe_time
from bot.domain.ama import (
    ASKED_STATUSES,
    ASKING_STATES,
    DEFAULT_DURATION,
    DEFAULT_MAX_OPEN_QUESTIONS,
    AmaInputError,
    AmaState,
    EventKind,
    QuestionStatus,
    TimelineEvent,
    check_moderation,
    clean_title,
    describe_lead,
    describe_span,
    next_event_time,
    parse_duration,
    parse_time,
    ranked,
    reminder_words,
    state_words,
    timeline,
    transition,
)
from storage import ama as store
from storage import members
from storage.ama import Ama, AmaQuestion

MAX_BIO_LENGTH = 280
ANONYMOUS = Trusted("Anonymous")


async def run_event(
    templates: Templates,
    ama_id: int,
    event: TimelineEvent,
    now: datetime,
    session: AsyncSession,
    _occurrence: datetime,
) -> None:
    """Do one timeline event. `now` (not the event's scheduled moment) dates what
    happens, since a replica coming back from downtime runs events late."""
    ama = await store.get_ama_by_id(session, ama_id, lock=True)
    # Closed early by the host, or this event already handled: nothing left to do.
    if ama is None or ama.next_event_at is None or ama.next_event_at > event.at:
        return
    outbox = Outbox(session, ama.platform, ama.workspace_id)
    if event.kind == EventKind.ANNOUNCE:
        await announce(outbox, templates, ama)
    elif event.kind in {EventKind.REMIND_DAY, EventKind.REMIND_SOON}:
        await remind(outbox, templates, ama, event.kind, now)
        ama.next_event_at = next_event_time(ama_timeline(ama), event.at)
    elif event.kind == EventKind.START:
        await go_live(outbox, templates, ama, now)
        ama.next_event_at = next_event_time(ama_timeline(ama), event.at)
    else:
        await close_ama(outbox, templates, ama, now)


def ama_timeline(ama: Ama) -> tuple[TimelineEvent, ...]:
    return timeline(ama.announce_at, ama.starts_at, ama.ends_at)


# --- shared labels ----------------------------------------------------------------


def zone_of(ama: Ama) -> ZoneInfo:
    return ZoneInfo(ama.timezone)


def asker_label(question: AmaQuestion) -> Trusted:
    """Who asked, as shown in public: anonymous askers are never named."""
    return ANONYMOUS if question.anonymous else Trusted(mention(question.author_user_id))


def when_label(ama: Ama) -> Trusted:
    return Trusted(describe_span(ama.starts_at, ama.ends_at, zone_of(ama)))


def state_label(ama: Ama) -> str:
    return state_words(ama.state, ama.announce_at, ama.starts_at, zone_of(ama))


def ask_button(ama: Ama) -> Button:
    return Button("Ask a question", "ama.ask", str(ama.id), ButtonStyle.PRIMARY)


def question_message(templates: Templates, question: AmaQuestion) -> Message:
    """The question's post in the AMA channel; its upvote button while it is open."""
    text = templates.render(
        "ama/question",
        number=question.number,
        asker=asker_label(question),
        text=question.text,
        status=question.status,
    )
    if question.status != QuestionStatus.APPROVED:
        return Message(text)
    return Message(text, (Button(f"▲ Upvote ({question.votes})", "ama.upvote", str(question.id)),))


async def refresh_question_post(
    outbox: Outbox, templates: Templates, question: AmaQuestion
) -> None:
    """Edit the question's channel post after its votes or status changed.

    An edit still waiting in the outbox takes the new content instead of queueing
    another, so a burst of votes costs one platform call and an older count can
    never land after a newer one."""
    if question.post_outbox_id is None:
        return
    message = question_message(templates, question)
    pending = question.post_update_outbox_id
    if pending is not None and await store.replace_queued_payload(
        outbox.session, pending, message_to_payload(message)
    ):
        return
    question.post_update_outbox_id = await outbox.update(question.post_outbox_id, message)


# --- timeline steps ---------------------------------------------------------------


async def announce(outbox: Outbox, templates: Templates, ama: Ama) -> None:
    """Post the announcement with its Ask button and open the AMA for questions."""
    ama.state = transition(ama.state, AmaState.COLLECTING)
    host = await members.get_member(
        outbox.session, ama.platform, ama.workspace_id, ama.host_user_id
    )
    about = None
    bio = None
    if host is not None:
        about = " at ".join(part for part in (host.role, host.company) if part) or None
        if host.bio:
            bio = host.bio if len(host.bio) <= MAX_BIO_LENGTH else host.bio[:MAX_BIO_LENGTH] + "…"
    text = templates.render(
        "ama/announcement",
        ama_id=ama.id,
        title=ama.title,
        host=Trusted(mention(ama.host_user_id)),
        host_about=about,
        host_bio=bio,
        when=when_label(ama),
        moderated=ama.moderated,
        max_questions=ama.max_questions,
    )
    await outbox.post(
        ama.channel_id,
        Message(text, (ask_button(ama),), mentions=(ama.host_user_id,)),
        key=f"ama.announce:{ama.id}",
    )
    ama.next_event_at = next_event_time(ama_timeline(ama), ama.announce_at)


async def remind(
    outbox: Outbox, templates: Templates, ama: Ama, kind: EventKind, now: datetime
) -> None:
    assert ama.id is not None
    asked = await store.questions(outbox.session, ama.id, ASKED_STATUSES)
    values: dict[str, Any] = {
        "ama_id": ama.id,
        "title": ama.title,
        "host": Trusted(mention(ama.host_user_id)),
        "when": when_label(ama),
        "starts_in": Trusted(describe_lead(ama.starts_at - now)),
        "questions": len(asked),
        "channel": channel_link(ama.channel_id),
    }
    await outbox.post(
        ama.channel_id,
        Message(templates.render("ama/reminder", **values), (ask_button(ama),)),
        key=f"ama.{kind}:{ama.id}",
    )
    await outbox.dm(
        ama.host_user_id,
        Message(templates.render("ama/host_reminder", **values)),
        key=f"ama.{kind}.host:{ama.id}",
    )


async def go_live(outbox: Outbox, templates: Templates, ama: Ama, now: datetime) -> None:
    """Announce that the AMA is live and give the host their control panel."""
    ama.state = transition(ama.state, AmaState.LIVE)
    ama.live_at = now
    text = templates.render(
        "ama/live",
        ama_id=ama.id,
        title=ama.title,
        host=Trusted(mention(ama.host_user_id)),
        until=Trusted(f"{ama.ends_at.astimezone(zone_of(ama)):%H:%M} ({ama.timezone})"),
    )
    await outbox.post(ama.channel_id, Message(text, (ask_button(ama),)), key=f"ama.live:{ama.id}")
    panel = await control_panel(outbox.session, templates, ama)
    await outbox.dm(ama.host_user_id, panel, key=f"ama.panel:{ama.id}")


async def control_panel(
    session: AsyncSession, templates: Templates, ama: Ama, note: str | None = None
) -> Message:
    """The host's private panel: the question being answered, or Next question."""
    assert ama.id is not None
    open_questions = await store.questions(
        session, ama.id, {QuestionStatus.APPROVED, QuestionStatus.ANSWERING}
    )
    current = next((q for q in open_questions if q.status == QuestionStatus.ANSWERING), None)
    waiting = sum(1 for q in open_questions if q.status == QuestionStatus.APPROVED)
    text = templates.render(
        "ama/control",
        ama_id=ama.id,
        title=ama.title,
        channel=channel_link(ama.channel_id),
        until=Trusted(f"{ama.ends_at.astimezone(zone_of(ama)):%H:%M}"),
        note=Trusted(note) if note else None,
        waiting=waiting,
        current=_shown(current) if current is not None else None,
    )
    buttons: list[Button] = []
    if current is not None:
        buttons += [
            Button("Answered", "ama.answered", str(current.id), ButtonStyle.PRIMARY),
            Button("Skip", "ama.skip", str(current.id)),
        ]
    else:
        buttons.append(Button("Next question", "ama.next", str(ama.id), ButtonStyle.PRIMARY))
    buttons.append(Button("Close AMA", "ama.close", str(ama.id), ButtonStyle.DANGER))
    return Message(text, tuple(buttons))


async def close_ama(
    outbox: Outbox, templates: Templates, ama: Ama, now: datetime, *, by_hand: bool = False
) -> None:
    """Close the AMA: recap in the channel (answered questions linking to their
    threads), the unanswered ones to the host. An AMA never announced closes quietly;
    one announced but never live is called off in its channel.

    The question on screen when time runs out counts as answered (the host was
    answering it in its thread). Closed `by_hand`, the host chose to stop with the
    Answered button at hand, so it goes back to the unanswered ones."""
    assert ama.id is not None
    announced = ama.state != AmaState.SCHEDULED
    went_live = ama.live_at is not None
    ama.state = transition(ama.state, AmaState.CLOSED)
    ama.closed_at = now
    ama.next_event_at = None
    if not announced:
        return
    session = outbox.session
    asked = await store.questions(session, ama.id, ASKED_STATUSES)
    for question in asked:
        if question.status != QuestionStatus.ANSWERING:
            continue
        if by_hand:
            changed = await store.change_status(
                session, question.id or 0, {QuestionStatus.ANSWERING}, QuestionStatus.APPROVED
            )
        else:
            changed = await store.change_status(
                session,
                question.id or 0,
                {QuestionStatus.ANSWERING},
                QuestionStatus.ANSWERED,
                resolved_at=now,
            )
        if changed:
            await refresh_question_post(outbox, templates, question)
    summary = await ama_summary(session, ama, asked)
    host = Trusted(mention(ama.host_user_id))
    recap = templates.render(
        "ama/recap",
        ama_id=ama.id,
        title=ama.title,
        host=host,
        went_live=went_live,
        answered=[_shown(q, summary.links) for q in summary.answered],
        asked=len(summary.visible),
        votes=summary.votes,
        unanswered=len(summary.unanswered),
    )
    await outbox.post(ama.channel_id, Message(recap), key=f"ama.recap:{ama.id}")
    if not went_live:
        return
    note = templates.render(
        "ama/unanswered",
        title=ama.title,
        channel=channel_link(ama.channel_id),
        questions=[_shown(q) for q in summary.unanswered],
    )
    await outbox.dm(ama.host_user_id, Message(note), key=f"ama.unanswered:{ama.id}")


class AmaSummary:
    """What was asked in public and what became of it (recap and export)."""

    def __init__(self, visible: Sequence[AmaQuestion], links: dict[int, str]) -> None:
        self.visible = list(visible)
        self.links = links
        self.answered = sorted(
            (q for q in visible if q.status == QuestionStatus.ANSWERED),
            key=lambda q: (q.resolved_at or q.created_at, q.id or 0),
        )
        self.unanswered = ranked(
            q for q in visible if q.status in {QuestionStatus.APPROVED, QuestionStatus.SKIPPED}
        )
        self.votes = sum(q.votes for q in visible)


async def ama_summary(
    session: AsyncSession, ama: Ama, asked: Sequence[AmaQuestion] | None = None
) -> AmaSummary:
    """Questions members saw (moderation still pending is not public), with the
    permalink of each answered question's thread once it was delivered."""
    assert ama.id is not None
    if asked is None:
        asked = await store.questions(session, ama.id, ASKED_STATUSES)
    visible = [q for q in asked if q.status != QuestionStatus.PENDING]
    refs = await store.sent_refs(session, [q.live_outbox_id for q in visible if q.live_outbox_id])
    links: dict[int, str] = {}
    for question in visible:
        ref = refs.get(question.live_outbox_id or -1)
        if question.id is not None and ref is not None and ref.get("permalink"):
            links[question.id] = ref["permalink"]
    return AmaSummary(visible, links)


def _shown(question: AmaQuestion, links: dict[int, str] | None = None) -> dict[str, Any]:
    link = (links or {}).get(question.id or -1)
    return {
        "number": question.number,
        "votes": question.votes,
        "asker": asker_label(question),
        "text": question.text,
        "link": Trusted(link) if link else None,
    }


# What each AMA action means to the health report and recognition (DESIGN.md §7).
ACTION_MEANINGS = {
    "asked": ("question", False),
    "answered": ("ama_answer", True),
    "voted": ("ama_vote", False),
}


async def actions(session: AsyncSession, period: Period) -> list[MemberAction]:
    """Questions asked, hosts' answers (contributions) and upvotes."""
    rows = await store.member_actions(
        session, period.platform, period.workspace_id, period.start, period.end
    )
    return as_member_actions(rows, ACTION_MEANINGS)


async def stored_about(session: AsyncSession, member: Identity) -> Stored:
    """What the AMA feature keeps about a member, for `/kindred privacy`."""
    questions, votes = await store.stored_about(
        session, member.platform, member.workspace_id, member.user_id
    )
    return Stored("ama/stored_about", {"questions": questions, "votes": votes})


async def metrics(session: AsyncSession, period: Period) -> Figures:
    """AMA figures for the health report: sessions held and how questions fared."""
    figures = await store.period_figures(
        session, period.platform, period.workspace_id, period.start, period.end
    )
    asked = figures.questions_asked
    return {
        "amas_held": figures.amas_held,
        "questions_asked": asked,
        "questions_answered": figures.questions_answered,
        "answer_rate": figures.questions_answered / asked if asked else None,
        "distinct_askers": figures.distinct_askers,
        "votes": figures.votes,
    }


# --- scheduling -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Scheduled:
    ama: Ama
    announced_now: bool
    host_has_profile: bool


async def schedule_ama(ctx: Context) -> Scheduled:
    """Validate `ama schedule`'s arguments, store the AMA and, unless a later
    announcement was asked for, announce it now."""
    args = ctx.args
    now = ctx.now()
    admin = await ctx.member()
    zone = ZoneInfo(admin.timezone or ctx.runtime.settings.timezone)
    channel_id = args.get("channel") or ctx.inbound.channel_id
    try:
        title = clean_title(args["title"])
        starts_at = parse_time(args["at"], zone, now)
        duration = parse_duration(args["duration"]) if "duration" in args else DEFAULT_DURATION
        announce_at = (
            parse_time(args["announce"], zone, now, "announce") if "announce" in args else now
        )
        if announce_at >= starts_at:
            raise AmaInputError(
                f"The announcement ({describe_time(announce_at, zone)}) must come before the "
                f"start ({describe_time(starts_at, zone)})."
            )
        if not channel_id:
            raise AmaInputError("Tell me where the AMA happens: add `channel:#ama`.")
        moderated, mod_channel_id = check_moderation(
            channel_id, args.get("moderated"), args.get("mod_channel")
        )
    except AmaInputError as error:
        raise CommandError(str(error)) from None
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
    host = await ctx.member(args["host"])
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
        max_questions=args.get("max_questions", DEFAULT_MAX_OPEN_QUESTIONS),
        state=AmaState.SCHEDULED,
        announce_at=announce_at,
        starts_at=starts_at,
        ends_at=ends_at,
        next_event_at=announce_at,
        created_at=now,
    )
    ctx.session.add(ama)
    await ctx.session.flush()
    announced_now = "announce" not in args
    if announced_now:
        await announce(ctx.outbox, ctx.runtime.templates, ama)
    return Scheduled(ama, announced_now, host_has_profile=bool(host.bio or host.role))


def scheduled_summary(done: Scheduled) -> str:
    ama = done.ama
    zone = zone_of(ama)
    lines = [
        f"Scheduled **AMA #{ama.id}: {member_text(ama.title)}** with {mention(ama.host_user_id)}, "
        f"{when_label(ama)}, in {channel_link(ama.channel_id)}."
    ]
    if ama.moderated and ama.mod_channel_id:
        lines.append(f"Questions wait for approval in {channel_link(ama.mod_channel_id)}.")
    if done.announced_now:
        lines.append("I posted the announcement with an Ask button; questions are open.")
    else:
        lines.append(
            f"I'll announce it and open questions on {describe_time(ama.announce_at, zone)}."
        )
    reminders = reminder_words(ama_timeline(ama))
    if reminders:
        lines.append(f"Reminders go out {' and '.join(reminders)}.")
    if not done.host_has_profile:
        lines.append(
            f"Tip: the announcement shows the host's bio; {mention(ama.host_user_id)} can add "
            'one with `/kindred profile set role="…" bio="…"` before the next reminder.'
        )
    return "\n".join(lines)


# --- which AMA --------------------------------------------------------------------


async def resolve_ama(ctx: Context, *, include_closed: bool = False) -> Ama:
    """The AMA a command means: the `ama=<id>` option; else the live or upcoming AMA
    of the current channel; else (`include_closed`: export, close) the channel's
    most recent AMA; else the community's only open AMA; else the member is asked
    to choose. The channel's own AMA always wins over one elsewhere."""
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
    if include_closed and ctx.inbound.channel_id:
        latest = await store.latest_in_channel(
            ctx.session, platform, workspace, ctx.inbound.channel_id
        )
        if latest is not None:
            return latest
    if len(open_now) == 1:
        return open_now[0]
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


def button_id(ctx: Context) -> int:
    """The id a button or form carries (an AMA's or a question's)."""
    try:
        return int(ctx.inbound.value)
    except ValueError:
        raise CommandError("That button is out of date. Try `/kindred ama queue`.") from None


async def ama_from_button(ctx: Context, *, lock: bool = False) -> Ama:
    ama = await store.get_ama(
        ctx.session, ctx.inbound.platform, ctx.inbound.workspace_id, button_id(ctx), lock=lock
    )
    if ama is None:
        raise CommandError("That AMA no longer exists.")
    return ama


async def require_host_or_admin(ctx: Context, ama: Ama, what: str) -> None:
    if ctx.inbound.user_id == ama.host_user_id or await ctx.is_admin():
        return
    raise CommandError(f"Only the host ({mention(ama.host_user_id)}) or an admin can {what}.")


def require_asking(ama: Ama) -> None:
    if ama.state == AmaState.SCHEDULED:
        raise CommandError(
            f"AMA #{ama.id} opens for questions on {describe_time(ama.announce_at, zone_of(ama))}."
        )
    if ama.state not in ASKING_STATES:
        raise CommandError(
            f"AMA #{ama.id} ({member_text(ama.title)}) has closed. "
            f"Read it with `/kindred ama export ama={ama.id}`."
        )


def require_live(ama: Ama) -> None:
    if ama.state == AmaState.LIVE:
        return
    if ama.state == AmaState.CLOSED:
        raise CommandError(f"AMA #{ama.id} has closed.")
    raise CommandError(
        f"AMA #{ama.id} goes live on {describe_time(ama.starts_at, zone_of(ama))}; "
        "the control panel works from then."
    )


async def askable_amas(ctx: Context) -> list[Ama]:
    """Open AMAs taking questions now (the member's home tab lists them)."""
    return [
        ama
        for ama in await store.open_amas(
            ctx.session, ctx.inbound.platform, ctx.inbound.workspace_id
        )
        if ama.state in ASKING_STATES
    ]


# --- closing by hand and the export -----------------------------------------------


async def close_by_hand(ctx: Context, ama_id: int) -> str:
    """The host (or an admin) ends the AMA now; the answer says what happened."""
    ama = await store.get_ama(
        ctx.session, ctx.inbound.platform, ctx.inbound.workspace_id, ama_id, lock=True
    )
    if ama is None:
        raise CommandError("That AMA no longer exists.")
    # Closed is public knowledge; saying so beats "only the host can close".
    if ama.state == AmaState.CLOSED:
        raise CommandError(
            f"AMA #{ama.id} is already closed. Read it with `/kindred ama export ama={ama.id}`."
        )
    await require_host_or_admin(ctx, ama, "close the AMA")
    previous = AmaState(ama.state)
    await close_ama(ctx.outbox, ctx.runtime.templates, ama, ctx.now(), by_hand=True)
    channel = channel_link(ama.channel_id)
    if previous == AmaState.SCHEDULED:
        return f"Cancelled AMA #{ama.id} before its announcement; nobody was notified."
    if previous == AmaState.COLLECTING:
        return f"Called off AMA #{ama.id}; I let {channel} know."
    return (
        f"Closed AMA #{ama.id}. The recap is in {channel}, and the host has a note with any "
        f"unanswered questions. Get the whole AMA with `/kindred ama export ama={ama.id}`."
    )


async def export_markdown(session: AsyncSession, templates: Templates, ama: Ama) -> str:
    """The whole AMA as a document. Anonymous askers appear as "Anonymous"."""
    if ama.state == AmaState.SCHEDULED:
        raise CommandError(f"AMA #{ama.id} hasn't been announced yet; there's nothing to export.")
    summary = await ama_summary(session, ama)
    people = await members.members_by_user_ids(
        session,
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

    document = templates.render(
        "ama/export",
        ama_id=ama.id,
        title=ama.title,
        host=name(ama.host_user_id),
        when=when_label(ama),
        status=state_label(ama),
        asked=len(summary.visible),
        votes=summary.votes,
        answered=[shown(q) for q in summary.answered],
        unanswered=[shown(q) for q in summary.unanswered],
    )
    # A file is never parsed for pings; the member-text markers have no meaning there.
    return strip_markup_for_plain_text(document) + "\n"
