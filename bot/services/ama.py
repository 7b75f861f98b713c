"""AMA timeline work: announcement, reminders a day and 15 minutes before, going
live and closing, each run exactly once across replicas through one periodic tick
(the scheduling pattern every database-driven feature uses).

The announce, live and close steps are also what the `/kindred ama` commands call
(an announcement "now", a close by the host), so both paths send the same messages.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.feature import Figures, Period
from bot.core.formatting import channel_link
from bot.core.mentions import mention
from bot.core.outbox import Outbox, message_to_payload
from bot.core.platform import Button, ButtonStyle, Message
from bot.core.templates import Templates, Trusted
from bot.domain.ama import (
    ASKED_STATUSES,
    AmaState,
    EventKind,
    QuestionStatus,
    TimelineEvent,
    describe_lead,
    describe_span,
    next_event_time,
    ranked,
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


async def close_ama(outbox: Outbox, templates: Templates, ama: Ama, now: datetime) -> None:
    """Close the AMA: recap in the channel (answered questions linking to their
    threads), the unanswered ones to the host. An AMA never announced closes quietly;
    one announced but never live is called off in its channel."""
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
        # The host was on it when time ran out: it has its thread, so it counts.
        if question.status == QuestionStatus.ANSWERING and await store.change_status(
            session,
            question.id or 0,
            {QuestionStatus.ANSWERING},
            QuestionStatus.ANSWERED,
            resolved_at=now,
        ):
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
