"""`/kindred clinic …` and `/kindred event …`: case-study clinics, best-practice
showcases and meetups with RSVPs, a waitlist, reminders, a recap, ratings and the
day-30 outcome, on every platform from one event model.

Buttons carry an event's (or a submission's) id, never state, so they keep
working after a restart.
"""

from __future__ import annotations

from bot.core.context import Context
from bot.core.errors import CommandError
from bot.core.feature import Feature, Tick
from bot.core.platform import Message, Modal, ModalField, Reply
from bot.core.registry import Handlers, Param
from bot.domain.events import (
    MAX_OUTCOME_LENGTH,
    MAX_REASON_LENGTH,
    MAX_RECAP_LENGTH,
    SUBMISSION_FIELDS,
    EventInputError,
    EventKind,
    Rsvp,
    clean_text,
    parse_yes_no,
)
from bot.jobs import events as jobs
from bot.services import events as service
from bot.services import events_clinics as clinics
from bot.services import events_followup as followup
from storage import events as store

handlers = Handlers("events")
feature = Feature(
    summary="Case-study clinics, showcases and meetups: RSVPs, waitlist, reminders, recaps",
    handlers=handlers,
    highlights=("clinic submit", "event list", "event schedule"),
    tables=store,
    ticks=(Tick(jobs.TICK, jobs.TICK_SECONDS, jobs.tick, next_due=jobs.next_due),),
    metrics=service.metrics,
    actions=service.actions,
    stored_about=service.stored_about,
    forget_feedback=service.forget_feedback,
)

EVENT_PARAM = Param("event", "int", "The event's number, shown in its announcement", required=True)
KINDS = tuple(kind.value for kind in EventKind)


def _form_text(ctx: Context, field: str, what: str, limit: int, *, required: bool = True) -> str:
    try:
        return clean_text(str(ctx.inbound.options.get(field) or ""), what, limit, required=required)
    except EventInputError as error:
        raise CommandError(str(error)) from None


def _id(ctx: Context) -> int:
    return service.event_id_from(ctx.inbound.value)


# --- clinics ----------------------------------------------------------------------


@handlers.command("clinic submit", "Bring a real problem to a case-study clinic (a form)")
async def clinic_submit(ctx: Context) -> Reply:
    fields = tuple(
        ModalField(name, label, multiline=name != "problem", max_length=limit)
        for name, (label, limit) in SUBMISSION_FIELDS.items()
    )
    hide = ModalField(
        "hide_company", "Hide my company name? (yes/no)", required=False, placeholder="no"
    )
    return Reply(
        modal=Modal(
            "events.clinic_submitted", "Submit a clinic", (*fields, hide), submit_label="Submit"
        )
    )


@handlers.action("events.clinic_submitted")
async def clinic_submitted(ctx: Context) -> Reply:
    values = {
        name: _form_text(ctx, name, label, limit)
        for name, (label, limit) in SUBMISSION_FIELDS.items()
    }
    try:
        hide = parse_yes_no(str(ctx.inbound.options.get("hide_company") or ""), "Hide my company")
    except EventInputError as error:
        raise CommandError(str(error)) from None
    submission = await clinics.submit_clinic(
        ctx, clinics.SubmissionForm(**values, hide_company=hide)
    )
    hidden = " Your company name stays hidden everywhere." if hide else ""
    return Reply.text(
        f"Thanks! Your clinic submission #{submission.id} is in the organisers' queue; "
        f"I'll DM you when they've looked at it.{hidden}"
    )


@handlers.command("clinic queue", "Clinic submissions waiting for the organisers", admin=True)
async def clinic_queue(ctx: Context) -> Reply:
    text, buttons = await clinics.queue_text(ctx, ctx.runtime.templates)
    return Reply.text(text, *buttons)


@handlers.action("events.clinic_accept", admin=True)
async def clinic_accept(ctx: Context) -> Reply:
    return Reply.text(await clinics.accept_submission(ctx, _id(ctx)))


def _note_modal(callback: str, title: str, label: str, value: str) -> Reply:
    return Reply(
        modal=Modal(
            callback,
            title,
            (ModalField("note", label, multiline=True, max_length=MAX_REASON_LENGTH),),
            value=value,
        )
    )


@handlers.action("events.clinic_decline", admin=True)
async def clinic_decline(ctx: Context) -> Reply:
    return _note_modal(
        "events.clinic_declined",
        f"Decline #{_id(ctx)}",
        "Reason (sent privately to the member)",
        ctx.inbound.value,
    )


@handlers.action("events.clinic_declined", admin=True)
async def clinic_declined(ctx: Context) -> Reply:
    reason = _form_text(ctx, "note", "The reason", MAX_REASON_LENGTH)
    return Reply.text(await clinics.decline_submission(ctx, _id(ctx), reason))


@handlers.action("events.clinic_more", admin=True)
async def clinic_more(ctx: Context) -> Reply:
    return _note_modal(
        "events.clinic_more_asked",
        f"Ask #{_id(ctx)} for more",
        "What would you like to know?",
        ctx.inbound.value,
    )


@handlers.action("events.clinic_more_asked", admin=True)
async def clinic_more_asked(ctx: Context) -> Reply:
    question = _form_text(ctx, "note", "Your question", MAX_REASON_LENGTH)
    return Reply.text(await clinics.ask_for_more(ctx, _id(ctx), question))


@handlers.action("events.clinic_answer")
async def clinic_answer(ctx: Context) -> Reply:
    return _note_modal(
        "events.clinic_answered", f"Clinic #{_id(ctx)}", "Your answer", ctx.inbound.value
    )


@handlers.action("events.clinic_answered")
async def clinic_answered(ctx: Context) -> Reply:
    answer = _form_text(ctx, "note", "Your answer", MAX_REASON_LENGTH)
    return Reply.text(await clinics.answer_organisers(ctx, _id(ctx), answer))


@handlers.command(
    "clinic library",
    "Past clinics and showcases with their recap and outcome",
    [Param("tag", help="Only those with this tag (or word in the title)")],
)
async def clinic_library(ctx: Context) -> Reply:
    return Reply.text(await service.library_text(ctx, ctx.args.get("tag")))


# --- events -----------------------------------------------------------------------


@handlers.command(
    "event schedule",
    "Schedule a clinic, showcase or meetup (AMAs: `/kindred ama schedule`)",
    [
        Param("kind", "choice", "clinic, showcase or meetup (default meetup)", choices=KINDS),
        Param("title", help='The title, in quotes: "Churn clinic"'),
        Param("at", help='When it starts, e.g. "2026-12-10 16:00"', required=True),
        Param("duration", help="15m to 8h (default 1h)", positional=False),
        Param("timezone", help="IANA zone of `at` (default: yours)", positional=False),
        Param("capacity", "int", "Seats for Going; then a waitlist", positional=False),
        Param("link", help="The call's link", positional=False),
        Param("presenter", "user", "Who presents", positional=False),
        Param("channel", "channel", "Where to announce it (default: here)", positional=False),
        Param("submission", "int", "The accepted clinic submission", min_value=1, positional=False),
        Param("remind_maybe", "bool", "Remind Maybe too (default off)", positional=False),
        Param("tags", help='Library tags: "churn, onboarding"', positional=False),
    ],
    admin=True,
)
async def event_schedule(ctx: Context) -> Reply:
    event = await service.schedule(ctx)
    return Reply.text(
        service.scheduled_summary(event, await service.my_zone(ctx), ctx.platform.scheduled_events)
    )


@handlers.command(
    "event edit",
    "Change an event's time, title, link or capacity (members are told)",
    [
        EVENT_PARAM,
        Param("at", help="New start", positional=False),
        Param("duration", help="New length", positional=False),
        Param("timezone", help="IANA zone of `at`", positional=False),
        Param("title", help="New title", positional=False),
        Param("link", help="New link", positional=False),
        Param("capacity", "int", "New number of seats", positional=False),
    ],
    admin=True,
)
async def event_edit(ctx: Context) -> Reply:
    return Reply.text(await service.edit(ctx))


@handlers.command(
    "event cancel",
    "Cancel an event: a cancellation instead of reminders",
    [EVENT_PARAM, Param("reason", "rest", "Why (told to members)", max_length=300)],
    admin=True,
)
async def event_cancel(ctx: Context) -> Reply:
    return Reply.text(await service.cancel(ctx))


@handlers.command("event list", "Upcoming events, in your time zone")
async def event_list(ctx: Context) -> Reply:
    return Reply.text(await service.upcoming_text(ctx))


@handlers.command("event mine", "The events you answered, in your time zone")
async def event_mine(ctx: Context) -> Reply:
    return Reply.text(await service.mine_text(ctx))


async def _rsvp(ctx: Context, wanted: Rsvp) -> Reply:
    return Reply.text(await service.rsvp(ctx, _id(ctx), wanted))


@handlers.action("events.going")
async def going(ctx: Context) -> Reply:
    return await _rsvp(ctx, Rsvp.GOING)


@handlers.action("events.maybe")
async def maybe(ctx: Context) -> Reply:
    return await _rsvp(ctx, Rsvp.MAYBE)


@handlers.action("events.cant")
async def cant(ctx: Context) -> Reply:
    return await _rsvp(ctx, Rsvp.CANT)


@handlers.event("event_interest_added")
async def interested(ctx: Context) -> None:
    await service.interest(ctx, added=True)


@handlers.event("event_interest_removed")
async def not_interested(ctx: Context) -> None:
    await service.interest(ctx, added=False)


@handlers.event("member_left")
async def leaver_gives_up_seats(ctx: Context) -> None:
    if ctx.inbound.channel_id is None:  # the community, not one channel
        await service.member_left(ctx)


# --- after the event --------------------------------------------------------------


def _recap_modal(event_id: int) -> Reply:
    return Reply(
        modal=Modal(
            "events.recap_written",
            f"Recap of event #{event_id}",
            (
                ModalField("ideas", "Key ideas", multiline=True, max_length=MAX_RECAP_LENGTH),
                ModalField(
                    "actions",
                    "Action items, with owners",
                    multiline=True,
                    max_length=MAX_RECAP_LENGTH,
                    placeholder="Try a churn survey at day 7 (Bob)",
                ),
            ),
            value=str(event_id),
        )
    )


async def _open_recap(ctx: Context, event_id: int) -> Reply:
    event = await service.event_for(ctx, event_id)
    followup.require_writer(ctx, event, "write its recap")
    followup.require_started(event)
    return _recap_modal(event_id)


@handlers.command(
    "event recap", "Write the recap of an event (organiser or presenter)", [EVENT_PARAM]
)
async def event_recap(ctx: Context) -> Reply:
    return await _open_recap(ctx, ctx.args["event"])


@handlers.action("events.recap")
async def recap_button(ctx: Context) -> Reply:
    return await _open_recap(ctx, _id(ctx))


@handlers.action("events.recap_written")
async def recap_written(ctx: Context) -> Reply:
    ideas = _form_text(ctx, "ideas", "Key ideas", MAX_RECAP_LENGTH)
    actions = _form_text(ctx, "actions", "Action items", MAX_RECAP_LENGTH)
    return Reply.text(await followup.save_recap(ctx, _id(ctx), ideas, actions))


@handlers.action("events.rate")
async def rate(ctx: Context) -> Reply:
    try:
        event_text, score_text = ctx.inbound.value.split(":")
        event_id, score = int(event_text), int(score_text)
    except ValueError:
        raise CommandError("That button is out of date.") from None
    return Reply(update_original=Message(await followup.rate_event(ctx, event_id, score)))


@handlers.action("events.missed")
async def missed(ctx: Context) -> Reply:
    return Reply(update_original=Message(await followup.missed_event(ctx, _id(ctx))))


@handlers.action("events.outcome")
async def outcome_button(ctx: Context) -> Reply:
    event_id = _id(ctx)
    return Reply(
        modal=Modal(
            "events.outcome_told",
            f"Event #{event_id}: 30 days on",
            (
                ModalField(
                    "tried", "Did you try it?", multiline=True, max_length=MAX_OUTCOME_LENGTH
                ),
                ModalField(
                    "changed", "What changed?", multiline=True, max_length=MAX_OUTCOME_LENGTH
                ),
            ),
            value=str(event_id),
        )
    )


@handlers.action("events.outcome_told")
async def outcome_told(ctx: Context) -> Reply:
    tried = _form_text(ctx, "tried", "Did you try it?", MAX_OUTCOME_LENGTH)
    changed = _form_text(ctx, "changed", "What changed?", MAX_OUTCOME_LENGTH)
    return Reply.text(await followup.save_outcome(ctx, _id(ctx), tried, changed))
