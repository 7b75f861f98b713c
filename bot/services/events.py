"""Events: scheduling (with the platform's own scheduled event on Discord, a
calendar file and link elsewhere), RSVPs with a capacity and a waitlist, the
timeline (reminders a day and an hour before, the live thread, the end with its
recap and rating requests, the day-30 outcome request; each step run once across
replicas by the tick), editing and cancelling, the listings and the library, and
the figures for the health report. Clinic submissions are in `events_clinics`;
recaps, ratings and outcomes in `events_followup`.

Times are stored in UTC. Messages to one member show times in that member's
zone (their profile's, else the community's); channel posts show the zone the
organiser scheduled in and, beside it, a moment each reader's platform shows in
their own zone (`bot.core.formatting.local_time`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.context import Context
from bot.core.errors import CommandError
from bot.core.figures import Figures, MemberAction, Period, Stored
from bot.core.formatting import channel_link, local_time, plural
from bot.core.mentions import member_text, mention
from bot.core.outbox import Outbox, message_to_payload
from bot.core.platform import (
    Attachment,
    Button,
    ButtonStyle,
    CalendarEvent,
    Identity,
    Message,
    Platform,
)
from bot.core.templates import Templates, Trusted
from bot.core.times import describe_time
from bot.domain.events import (
    DEFAULT_DURATION,
    LIBRARY_KINDS,
    RATINGS,
    RSVP_WORDS,
    EventInputError,
    EventKind,
    EventState,
    Rsvp,
    Step,
    SubmissionStatus,
    TimelineStep,
    average,
    check_capacity,
    clean_link,
    clean_title,
    describe_span,
    first_step_after,
    google_calendar_url,
    ics_document,
    parse_duration,
    parse_tags,
    parse_time,
    parse_zone,
    seat_for,
    seats_to_fill,
    still_worth_reminding,
    timeline,
)
from bot.services import events_clinics as clinics
from storage import events as store
from storage import members
from storage.events import ClinicSubmission, Event, EventRsvp

KIND_LABELS = {
    EventKind.CLINIC: "Case-study clinic",
    EventKind.SHOWCASE: "Best-practice showcase",
    EventKind.MEETUP: "Meetup",
}
OPEN_STATES = frozenset({EventState.SCHEDULED, EventState.LIVE})
# Who hears about changes and cancellations.
ANSWERED = (Rsvp.GOING, Rsvp.MAYBE, Rsvp.WAITLIST)
LIBRARY_SIZE = 10


# --- shared pieces ----------------------------------------------------------------


def zone_of(event: Event) -> ZoneInfo:
    return ZoneInfo(event.timezone)


def event_timeline(event: Event) -> tuple[TimelineStep, ...]:
    return timeline(event.starts_at, event.ends_at)


async def reader_zones(
    session: AsyncSession, event: Event, user_ids: Iterable[str], default: ZoneInfo
) -> dict[str, ZoneInfo]:
    """Each reader's zone: their profile's, else the community's."""
    wanted = sorted(set(user_ids))
    found = await members.members_by_user_ids(session, event.platform, event.workspace_id, wanted)
    zones: dict[str, ZoneInfo] = {}
    for user_id in wanted:
        member = found.get(user_id)
        zones[user_id] = ZoneInfo(member.timezone) if member and member.timezone else default
    return zones


async def my_zone(ctx: Context) -> ZoneInfo:
    member = await ctx.member()
    return ZoneInfo(member.timezone) if member.timezone else ctx.runtime.settings.zone


def when_for(event: Event, zone: ZoneInfo) -> Trusted:
    return Trusted(describe_span(event.starts_at, event.ends_at, zone))


def event_id_from(value: str) -> int:
    try:
        return int(value.split(":", maxsplit=1)[0])
    except ValueError:
        raise CommandError("That button is out of date. Try `/kindred event list`.") from None


async def event_for(ctx: Context, event_id: int, *, lock: bool = False) -> Event:
    event = await store.get_event(
        ctx.session, ctx.inbound.platform, ctx.inbound.workspace_id, event_id, lock=lock
    )
    if event is None:
        raise CommandError(f"There is no event #{event_id} here. See `/kindred event list`.")
    return event


def _input(error: EventInputError) -> CommandError:
    return CommandError(str(error))


# --- scheduling -------------------------------------------------------------------


async def schedule(ctx: Context) -> Event:
    """Validate `event schedule`, store the event, announce it, and create the
    platform's scheduled event (Discord) or post a calendar file (elsewhere)."""
    args = ctx.args
    now = ctx.now()
    organiser = await ctx.member()
    kind = EventKind(args.get("kind", EventKind.MEETUP))
    submission: ClinicSubmission | None = None
    if "submission" in args:
        if kind != EventKind.CLINIC:
            raise CommandError("Only a clinic comes from a submission: add `kind=clinic`.")
        submission = await clinics.submission_for(ctx, args["submission"])
        if submission.status != SubmissionStatus.ACCEPTED:
            raise CommandError(
                f"Clinic submission #{submission.id} is "
                f"{submission.status.replace('_', ' ')}; accept it in `/kindred clinic queue` "
                "first."
            )
    presenter = args.get("presenter") or (submission.author_user_id if submission else None)
    if kind in LIBRARY_KINDS and presenter is None:
        raise CommandError(
            f"A {kind} needs a presenter: add `presenter=@ana`"
            + (" or `submission=<number>`." if kind == EventKind.CLINIC else ".")
        )
    channel_id = args.get("channel") or ctx.inbound.channel_id
    try:
        zone = (
            parse_zone(args["timezone"])
            if "timezone" in args
            else ZoneInfo(organiser.timezone or ctx.runtime.settings.timezone)
        )
        starts_at = parse_time(args["at"], zone, now)
        duration = parse_duration(args["duration"]) if "duration" in args else DEFAULT_DURATION
        capacity = check_capacity(args.get("capacity"))
        link = clean_link(args["link"]) if "link" in args else None
        tags = parse_tags(args.get("tags", ""))
        title = clean_title(args.get("title") or (submission.problem if submission else ""))
    except EventInputError as error:
        raise _input(error) from None
    if not channel_id:
        raise CommandError("Tell me where to announce it: add `channel=#events`.")
    if presenter is not None:
        await ctx.member(presenter)
    event = Event(
        platform=ctx.inbound.platform,
        workspace_id=ctx.inbound.workspace_id,
        kind=kind,
        title=title,
        channel_id=channel_id,
        presenter_user_id=presenter,
        created_by=ctx.inbound.user_id,
        submission_id=submission.id if submission else None,
        timezone=zone.key,
        starts_at=starts_at,
        ends_at=starts_at + duration,
        capacity=capacity,
        link=link,
        tags=tags,
        remind_maybe=bool(args.get("remind_maybe", False)),
        created_at=now,
    )
    event.next_due_at = first_step_after(event_timeline(event), now)
    ctx.session.add(event)
    await ctx.session.flush()
    if submission is not None:
        await clinics.decide(
            ctx, submission, {SubmissionStatus.ACCEPTED}, SubmissionStatus.SCHEDULED, None
        )
    templates = ctx.runtime.templates
    event.announcement_outbox_id = await ctx.outbox.post(
        event.channel_id,
        await announcement(ctx.session, templates, event),
        key=f"events.announce:{event.id}",
    )
    await publish_calendar(ctx.outbox, ctx.platform, templates, event, now)
    return event


async def publish_calendar(
    outbox: Outbox, platform: Platform, templates: Templates, event: Event, now: datetime
) -> None:
    """Put the event in members' calendars: the platform's own scheduled event where
    there is one (created, or edited after the change before), else a calendar file
    (.ics) posted beside the announcement."""
    if platform.scheduled_events:
        native = calendar_entry(event)
        row = await outbox.scheduled_event(
            native,
            after=event.native_latest_outbox_id,
            key=f"events.native:{event.id}:{event.revision}",
        )
        event.native_latest_outbox_id = row
        if event.native_outbox_id is None:
            event.native_outbox_id = row
        return
    text = templates.render(
        "events/calendar_file",
        event_id=event.id,
        title=event.title,
        when=when_for(event, zone_of(event)),
        changed=event.revision > 0,
    )
    await outbox.post(
        event.channel_id,
        Message(text, attachment=ics_attachment(event, now)),
        key=f"events.ics:{event.id}:{event.revision}",
    )


def calendar_entry(event: Event) -> CalendarEvent:
    description = f"{KIND_LABELS[EventKind(event.kind)]} on Kindred. RSVP in the announcement."
    return CalendarEvent(
        title=event.title,
        starts_at=event.starts_at,
        ends_at=event.ends_at,
        location=event.link or "Online (the link follows in the announcement)",
        description=description,
    )


def ics_attachment(event: Event, now: datetime) -> Attachment:
    entry = calendar_entry(event)
    content = ics_document(
        uid=f"kindred-event-{event.platform}-{event.workspace_id}-{event.id}",
        title=entry.title,
        starts_at=entry.starts_at,
        ends_at=entry.ends_at,
        description=entry.description,
        location=event.link or "",
        sequence=event.revision,
        stamp=now,
    )
    return Attachment(f"event-{event.id}.ics", content, "text/calendar")


def rsvp_buttons(event: Event) -> tuple[Button, ...]:
    value = str(event.id)
    return (
        Button("Going", "events.going", value, ButtonStyle.PRIMARY),
        Button("Maybe", "events.maybe", value),
        Button("Can't go", "events.cant", value),
    )


async def announcement(session: AsyncSession, templates: Templates, event: Event) -> Message:
    """The channel post: what, when (in the organiser's zone), who presents, seats,
    and the RSVP buttons while the event is open."""
    assert event.id is not None
    tally = await store.counts(session, event.id)
    submission = None
    if event.submission_id is not None:
        submission = await store.get_submission(
            session, event.platform, event.workspace_id, event.submission_id
        )
    presenter = None
    if event.presenter_user_id is not None:
        # A clinic's presenter is its submitter, whose company may be hidden.
        hide = submission.hide_company if submission else event.submission_id is not None
        presenter = await clinics.author_line(
            session, event.platform, event.workspace_id, event.presenter_user_id, hide
        )
    brief = {"problem": submission.problem, "ask": submission.ask} if submission else None
    zone = zone_of(event)
    text = templates.render(
        "events/announcement",
        event_id=event.id,
        kind=KIND_LABELS[EventKind(event.kind)],
        title=event.title,
        when=when_for(event, zone),
        # Each reader's own time beside the organiser's (Discord and Slack show it so).
        local_start=local_time(event.starts_at),
        local_end=local_time(event.ends_at, time_only=True),
        presenter=presenter,
        brief=brief,
        link=event.link,
        capacity=event.capacity,
        going=tally.get(Rsvp.GOING, 0),
        maybe=tally.get(Rsvp.MAYBE, 0),
        waitlist=tally.get(Rsvp.WAITLIST, 0),
        tags=", ".join(event.tags),
        state=event.state,
        cancel_reason=event.cancel_reason,
        calendar_link=Trusted(
            google_calendar_url(
                event.title,
                event.starts_at,
                event.ends_at,
                calendar_entry(event).description,
                event.link or "",
            )
        ),
    )
    buttons = rsvp_buttons(event) if event.state in OPEN_STATES else ()
    mentions = (event.presenter_user_id,) if event.presenter_user_id else ()
    return Message(text, buttons, mentions=mentions)


async def refresh_announcement(outbox: Outbox, templates: Templates, event: Event) -> None:
    """Edit the announcement after its counts or details changed, folding a burst
    of changes into the edit still waiting in the outbox."""
    if event.announcement_outbox_id is None:
        return
    message = await announcement(outbox.session, templates, event)
    pending = event.announcement_update_outbox_id
    if pending is not None and await store.replace_queued_payload(
        outbox.session, pending, message_to_payload(message)
    ):
        return
    event.announcement_update_outbox_id = await outbox.update(event.announcement_outbox_id, message)


def scheduled_summary(event: Event, zone: ZoneInfo, native: bool) -> str:
    lines = [
        f"Scheduled **event #{event.id}: {member_text(event.title)}** "
        f"({KIND_LABELS[EventKind(event.kind)].lower()}), {when_for(event, zone)}, "
        f"announced in {channel_link(event.channel_id)}."
    ]
    seats = (
        f"{plural(event.capacity, 'seat')}, then a waitlist" if event.capacity else "no seat limit"
    )
    lines.append(f"RSVPs: Going / Maybe / Can't go, {seats}.")
    reminded = "Going and Maybe" if event.remind_maybe else "Going"
    lines.append(f"Reminders to {reminded} a day and an hour before, in each member's time zone.")
    if native:
        lines.append('It also appears in the server\'s events; "Interested" there counts as Maybe.')
    else:
        lines.append('The announcement has an .ics calendar file and an "Add to calendar" link.')
    if event.link is None:
        lines.append("Tip: add the call's link with `/kindred event edit event=… link=https://…`.")
    return "\n".join(lines)


# --- RSVPs ------------------------------------------------------------------------


async def rsvp(ctx: Context, event_id: int, wanted: Rsvp) -> str:
    """A member's answer; Going past the capacity joins the waitlist. The event row
    is locked, so concurrent clicks take seats one at a time."""
    event = await event_for(ctx, event_id, lock=True)
    now = ctx.now()
    if event.state not in OPEN_STATES or now >= event.ends_at:
        raise CommandError(f"Event #{event.id} ({member_text(event.title)}) is {_closed(event)}.")
    assert event.id is not None
    current = await store.rsvp_of(ctx.session, event.id, ctx.inbound.user_id)
    before = Rsvp(current.status) if current else None
    if before == wanted or (before == Rsvp.WAITLIST and wanted == Rsvp.GOING):
        return await _rsvp_answer(ctx, event, before)
    tally = await store.counts(ctx.session, event.id)
    others_going = tally.get(Rsvp.GOING, 0) - (1 if before == Rsvp.GOING else 0)
    placed = seat_for(wanted, others_going, event.capacity)
    await _place(ctx.session, event, ctx.inbound.user_id, current, placed, now, "button")
    if before == Rsvp.GOING:
        await promote(
            ctx.session, ctx.outbox, ctx.runtime.templates, event, now, ctx.runtime.settings.zone
        )
    await refresh_announcement(ctx.outbox, ctx.runtime.templates, event)
    return await _rsvp_answer(ctx, event, placed)


async def _place(
    session: AsyncSession,
    event: Event,
    user_id: str,
    current: EventRsvp | None,
    status: Rsvp,
    now: datetime,
    source: str,
) -> EventRsvp:
    assert event.id is not None
    if current is None:
        current = EventRsvp(event_id=event.id, user_id=user_id, status=status, created_at=now)
        session.add(current)
    current.status = status
    current.source = source
    current.updated_at = now
    if status == Rsvp.WAITLIST:
        current.waitlisted_at = current.waitlisted_at or now
    else:
        current.waitlisted_at = None
    await session.flush()
    return current


async def _rsvp_answer(ctx: Context, event: Event, status: Rsvp | None) -> str:
    zone = await my_zone(ctx)
    what = f"**{member_text(event.title)}** ({when_for(event, zone)})"
    if status == Rsvp.GOING:
        return (
            f"✅ You're going to {what}. I'll remind you a day and an hour before. "
            "Changed your mind? Press Maybe or Can't go."
        )
    if status == Rsvp.WAITLIST:
        assert event.id is not None
        waiting = await store.rsvps(ctx.session, event.id, {Rsvp.WAITLIST})
        place = next(
            (n for n, r in enumerate(waiting, 1) if r.user_id == ctx.inbound.user_id), len(waiting)
        )
        return (
            f"⏳ {what} is full ({plural(event.capacity or 0, 'seat')}). "
            f"You're #{place} on the waitlist; "
            "I'll DM you as soon as a seat opens."
        )
    if status == Rsvp.MAYBE:
        reminded = " I'll remind you too." if event.remind_maybe else ""
        return f"🤔 Noted: maybe for {what}.{reminded}"
    return f"Noted: you can't make {what}. Thanks for letting us know."


def _closed(event: Event) -> str:
    if event.state == EventState.CANCELLED:
        return "cancelled"
    return "over"


async def promote(
    session: AsyncSession,
    outbox: Outbox,
    templates: Templates,
    event: Event,
    now: datetime,
    default_zone: ZoneInfo,
) -> list[str]:
    """Give free seats to the waitlist, in the order members joined it, each with a
    DM. Runs in the transaction that freed the seats (a drop, a larger capacity)."""
    assert event.id is not None
    tally = await store.counts(session, event.id)
    waiting = await store.rsvps(session, event.id, {Rsvp.WAITLIST})
    moving = waiting[: seats_to_fill(tally.get(Rsvp.GOING, 0), event.capacity, len(waiting))]
    if not moving:
        return []
    zones = await reader_zones(session, event, (r.user_id for r in moving), default_zone)
    for row in moving:
        joined = row.waitlisted_at or now
        row.status = Rsvp.GOING
        row.waitlisted_at = None
        row.updated_at = now
        text = templates.render(
            "events/promoted",
            event_id=event.id,
            title=event.title,
            when=when_for(event, zones[row.user_id]),
            link=event.link,
            channel=channel_link(event.channel_id),
        )
        await outbox.dm(
            row.user_id,
            Message(text, rsvp_buttons(event)[1:]),
            key=f"events.promoted:{event.id}:{row.user_id}:{joined.isoformat()}",
        )
    await session.flush()
    return [row.user_id for row in moving]


async def interest(ctx: Context, added: bool) -> None:
    """Discord's "Interested" on the event's own entry counts as Maybe; taking it
    back removes only a Maybe that interest added (never a Going)."""
    event = await _event_by_native_id(ctx, ctx.inbound.value)
    if event is None or event.state not in OPEN_STATES:
        return
    assert event.id is not None
    event_id = event.id
    event = await event_for(ctx, event_id, lock=True)
    current = await store.rsvp_of(ctx.session, event_id, ctx.inbound.user_id)
    if added:
        if current is not None and current.status != Rsvp.CANT:
            return
        await _place(
            ctx.session, event, ctx.inbound.user_id, current, Rsvp.MAYBE, ctx.now(), "interested"
        )
    else:
        if current is None or current.source != "interested" or current.status != Rsvp.MAYBE:
            return
        await ctx.session.delete(current)
        await ctx.session.flush()
    await refresh_announcement(ctx.outbox, ctx.runtime.templates, event)


async def _event_by_native_id(ctx: Context, native_id: str) -> Event | None:
    candidates = await store.with_native_events(
        ctx.session, ctx.inbound.platform, ctx.inbound.workspace_id
    )
    refs = await store.sent_refs(
        ctx.session, [event.native_outbox_id for event in candidates if event.native_outbox_id]
    )
    for event in candidates:
        ref = refs.get(event.native_outbox_id or -1)
        if ref is not None and ref.get("message_id") == native_id:
            return event
    return None


# --- the timeline -----------------------------------------------------------------


async def run_step(
    templates: Templates,
    default_zone: ZoneInfo,
    event_id: int,
    step: TimelineStep,
    now: datetime,
    session: AsyncSession,
    _occurrence: datetime,
) -> None:
    """Do one timeline step. A cancelled event, or a step already done (the event
    was rescheduled or another replica was first), does nothing."""
    event = await store.get_event_by_id(session, event_id, lock=True)
    if event is None or event.next_due_at is None or event.next_due_at > step.at:
        return
    if step not in event_timeline(event):
        # Found by a tick that read the event before an organiser moved it.
        return
    if event.state == EventState.CANCELLED:
        event.next_due_at = None
        return
    outbox = Outbox(session, event.platform, event.workspace_id)
    if step.step in {Step.REMIND_DAY, Step.REMIND_HOUR}:
        if still_worth_reminding(step.step, event.starts_at, now):
            await remind(outbox, templates, event, step.step, default_zone)
    elif step.step == Step.START:
        await go_live(outbox, templates, event)
    elif step.step == Step.END:
        await finish(outbox, templates, event, default_zone)
    elif step.step == Step.OUTCOME:
        await ask_outcome(outbox, templates, event)
    event.next_due_at = first_step_after(event_timeline(event), step.at)


async def remind(
    outbox: Outbox, templates: Templates, event: Event, step: Step, default_zone: ZoneInfo
) -> None:
    """Reminders to Going (and Maybe, if asked), each in the member's zone; at T−24 h
    the presenter's brief with the attendee list."""
    assert event.id is not None
    session = outbox.session
    statuses = {Rsvp.GOING, Rsvp.MAYBE} if event.remind_maybe else {Rsvp.GOING}
    answered = await store.rsvps(session, event.id, statuses)
    zones = await reader_zones(
        session,
        event,
        [r.user_id for r in answered] + [event.presenter_user_id or ""],
        default_zone,
    )
    moment = f"{event.starts_at:%Y%m%dT%H%M}"
    for row in answered:
        text = templates.render(
            "events/reminder",
            event_id=event.id,
            title=event.title,
            when=when_for(event, zones[row.user_id]),
            soon=step == Step.REMIND_HOUR,
            maybe=row.status == Rsvp.MAYBE,
            link=event.link,
            channel=channel_link(event.channel_id),
        )
        await outbox.dm(
            row.user_id,
            Message(text, rsvp_buttons(event)),
            key=f"events.{step}:{event.id}:{moment}:{row.user_id}",
        )
    if step != Step.REMIND_DAY or event.presenter_user_id is None:
        return
    going = [r.user_id for r in answered if r.status == Rsvp.GOING]
    maybe = await store.rsvps(session, event.id, {Rsvp.MAYBE})
    waiting = await store.rsvps(session, event.id, {Rsvp.WAITLIST})
    brief = None
    if event.submission_id is not None:
        brief = await store.get_submission(
            session, event.platform, event.workspace_id, event.submission_id
        )
    text = templates.render(
        "events/presenter_brief",
        event_id=event.id,
        kind=KIND_LABELS[EventKind(event.kind)],
        title=event.title,
        when=when_for(event, zones[event.presenter_user_id]),
        link=event.link,
        brief=(
            {
                "problem": brief.problem,
                "context": brief.context,
                "tried": brief.tried,
                "ask": brief.ask,
            }
            if brief
            else None
        ),
        going=Trusted(", ".join(mention(user) for user in going)) if going else None,
        going_count=len(going),
        maybe_count=len(maybe),
        waitlist_count=len(waiting),
    )
    await outbox.dm(
        event.presenter_user_id,
        Message(text),
        key=f"events.brief:{event.id}:{moment}",
    )


async def go_live(outbox: Outbox, templates: Templates, event: Event) -> None:
    """Open the thread for live notes under the announcement."""
    event.state = EventState.LIVE
    if event.announcement_outbox_id is None:
        return
    text = templates.render("events/live", event_id=event.id, title=event.title, link=event.link)
    await outbox.thread_reply(
        event.announcement_outbox_id, Message(text), key=f"events.live:{event.id}"
    )


async def finish(
    outbox: Outbox, templates: Templates, event: Event, default_zone: ZoneInfo
) -> None:
    """The end: the organiser and the presenter are asked for the recap; Going
    members are asked for a rating."""
    assert event.id is not None
    event.state = EventState.ENDED
    value = str(event.id)
    writers = sorted(
        {event.created_by, *([event.presenter_user_id] if event.presenter_user_id else [])}
    )
    for user_id in writers:
        text = templates.render("events/recap_request", event_id=event.id, title=event.title)
        await outbox.dm(
            user_id,
            Message(text, (Button("Write the recap", "events.recap", value, ButtonStyle.PRIMARY),)),
            key=f"events.recap_request:{event.id}:{user_id}",
        )
    going = await store.rsvps(outbox.session, event.id, {Rsvp.GOING})
    buttons = tuple(Button(f"{score} ★", "events.rate", f"{event.id}:{score}") for score in RATINGS)
    missed = Button("I couldn't make it", "events.missed", value)
    for row in going:
        if row.user_id == event.presenter_user_id:
            continue
        text = templates.render("events/rate_request", event_id=event.id, title=event.title)
        await outbox.dm(
            row.user_id,
            Message(text, (*buttons, missed)),
            key=f"events.rate_request:{event.id}:{row.user_id}",
        )


async def ask_outcome(outbox: Outbox, templates: Templates, event: Event) -> None:
    """Day 30: the presenter of a clinic or showcase says what happened since."""
    if event.presenter_user_id is None or EventKind(event.kind) not in LIBRARY_KINDS:
        return
    text = templates.render("events/outcome_request", event_id=event.id, title=event.title)
    await outbox.dm(
        event.presenter_user_id,
        Message(
            text, (Button("Tell the group", "events.outcome", str(event.id), ButtonStyle.PRIMARY),)
        ),
        key=f"events.outcome_request:{event.id}",
    )


# --- editing and cancelling -------------------------------------------------------


async def edit(ctx: Context) -> str:
    args = ctx.args
    event = await event_for(ctx, args["event"], lock=True)
    if event.state != EventState.SCHEDULED:
        raise CommandError(
            f"Event #{event.id} has "
            f"{'been cancelled' if event.state == EventState.CANCELLED else 'started'}; "
            "it can't change now."
        )
    assert event.id is not None
    now = ctx.now()
    zone = zone_of(event)
    changed: list[str] = []
    try:
        if "timezone" in args:
            zone = parse_zone(args["timezone"])
            event.timezone = zone.key
            changed.append("time zone")
        if "at" in args or "duration" in args:
            duration = (
                parse_duration(args["duration"])
                if "duration" in args
                else event.ends_at - event.starts_at
            )
            starts_at = parse_time(args["at"], zone, now) if "at" in args else event.starts_at
            event.starts_at, event.ends_at = starts_at, starts_at + duration
            event.next_due_at = first_step_after(event_timeline(event), now)
            changed.append("time")
        if "title" in args:
            event.title = clean_title(args["title"])
            changed.append("title")
        if "link" in args:
            event.link = clean_link(args["link"])
            changed.append("link")
        if "capacity" in args:
            event.capacity = check_capacity(args["capacity"])
            changed.append("capacity")
    except EventInputError as error:
        raise _input(error) from None
    if not changed:
        raise CommandError(
            "Nothing to change: give `at`, `duration`, `timezone`, `title`, `link` or `capacity`."
        )
    going = (await store.counts(ctx.session, event.id)).get(Rsvp.GOING, 0)
    if event.capacity is not None and going > event.capacity:
        raise CommandError(
            f"{plural(going, 'member is', 'members are')} already going to event #{event.id}; "
            f"the capacity can't go below {going}."
        )
    templates = ctx.runtime.templates
    promoted = await promote(
        ctx.session, ctx.outbox, templates, event, now, ctx.runtime.settings.zone
    )
    if set(changed) & {"time", "title", "link"}:
        event.revision += 1
        await publish_calendar(ctx.outbox, ctx.platform, templates, event, now)
        await _tell_answered(ctx, event, "events/changed", f"changed:{event.revision}")
    await refresh_announcement(ctx.outbox, templates, event)
    moved = f" {plural(len(promoted), 'member')} moved up from the waitlist." if promoted else ""
    return (
        f"Updated the {', '.join(changed)} of event #{event.id}: "
        f"{when_for(event, await my_zone(ctx))}.{moved}"
    )


async def cancel(ctx: Context) -> str:
    event = await event_for(ctx, ctx.args["event"], lock=True)
    if event.state == EventState.CANCELLED:
        raise CommandError(f"Event #{event.id} is already cancelled.")
    if event.state == EventState.ENDED:
        raise CommandError(f"Event #{event.id} is over; there is nothing to cancel.")
    reason = " ".join(str(ctx.args.get("reason", "")).split()) or None
    now = ctx.now()
    event.state = EventState.CANCELLED
    event.cancel_reason = reason
    event.cancelled_at = now
    event.next_due_at = None
    if event.submission_id is not None:
        # The member's problem can still be heard: back to the accepted ones.
        submission = await clinics.submission_for(ctx, event.submission_id)
        await clinics.decide(
            ctx, submission, {SubmissionStatus.SCHEDULED}, SubmissionStatus.ACCEPTED, reason
        )
    told = await _tell_answered(ctx, event, "events/cancelled", "cancelled")
    if event.native_latest_outbox_id is not None:
        event.native_latest_outbox_id = await ctx.outbox.cancel_scheduled_event(
            event.native_latest_outbox_id, key=f"events.native_cancel:{event.id}"
        )
    await refresh_announcement(ctx.outbox, ctx.runtime.templates, event)
    return (
        f"Cancelled event #{event.id} ({member_text(event.title)}). "
        f"{plural(told, 'member')} who answered get a cancellation instead of reminders."
    )


async def _tell_answered(ctx: Context, event: Event, template: str, what: str) -> int:
    """DM everyone who answered Going, Maybe or the waitlist, in their own zone."""
    assert event.id is not None
    answered = await store.rsvps(ctx.session, event.id, set(ANSWERED))
    zones = await reader_zones(
        ctx.session, event, (r.user_id for r in answered), ctx.runtime.settings.zone
    )
    for row in answered:
        text = ctx.runtime.templates.render(
            template,
            event_id=event.id,
            title=event.title,
            when=when_for(event, zones[row.user_id]),
            reason=event.cancel_reason,
            link=event.link,
            status=RSVP_WORDS[Rsvp(row.status)],
        )
        buttons = rsvp_buttons(event) if event.state in OPEN_STATES else ()
        await ctx.outbox.dm(
            row.user_id, Message(text, buttons), key=f"events.{what}:{event.id}:{row.user_id}"
        )
    return len(answered)


async def member_left(ctx: Context) -> int:
    """A member who leaves the community gives up their seats and waitlist places
    (a seat freed this way goes to the waitlist at once); returns how many events."""
    answered = await store.member_rsvps(
        ctx.session, ctx.inbound.platform, ctx.inbound.workspace_id, ctx.inbound.user_id, ctx.now()
    )
    for event, row in answered:
        assert event.id is not None
        locked = await event_for(ctx, event.id, lock=True)
        seated = row.status == Rsvp.GOING
        await ctx.session.delete(row)
        await ctx.session.flush()
        if seated:
            await promote(
                ctx.session,
                ctx.outbox,
                ctx.runtime.templates,
                locked,
                ctx.now(),
                ctx.runtime.settings.zone,
            )
        await refresh_announcement(ctx.outbox, ctx.runtime.templates, locked)
    return len(answered)


# --- listings ---------------------------------------------------------------------


async def upcoming_text(ctx: Context) -> str:
    zone = await my_zone(ctx)
    events = await store.upcoming(
        ctx.session, ctx.inbound.platform, ctx.inbound.workspace_id, ctx.now()
    )
    items = []
    for event in events:
        assert event.id is not None
        tally = await store.counts(ctx.session, event.id)
        mine = await store.rsvp_of(ctx.session, event.id, ctx.inbound.user_id)
        items.append(
            {
                "id": event.id,
                "kind": KIND_LABELS[EventKind(event.kind)],
                "title": event.title,
                "when": when_for(event, zone),
                "channel": channel_link(event.channel_id),
                "going": tally.get(Rsvp.GOING, 0),
                "capacity": event.capacity,
                "waitlist": tally.get(Rsvp.WAITLIST, 0),
                "mine": RSVP_WORDS[Rsvp(mine.status)] if mine else None,
                "live": event.state == EventState.LIVE,
            }
        )
    return ctx.runtime.templates.render("events/list", events=items, zone=zone.key, mine=False)


async def mine_text(ctx: Context) -> str:
    zone = await my_zone(ctx)
    answered = await store.member_rsvps(
        ctx.session, ctx.inbound.platform, ctx.inbound.workspace_id, ctx.inbound.user_id, ctx.now()
    )
    items = [
        {
            "id": event.id,
            "kind": KIND_LABELS[EventKind(event.kind)],
            "title": event.title,
            "when": when_for(event, zone),
            "channel": channel_link(event.channel_id),
            "going": None,
            "capacity": None,
            "waitlist": 0,
            "mine": RSVP_WORDS[Rsvp(row.status)],
            "live": event.state == EventState.LIVE,
        }
        for event, row in answered
        if row.status != Rsvp.CANT
    ]
    return ctx.runtime.templates.render("events/list", events=items, zone=zone.key, mine=True)


async def library_text(ctx: Context, tag: str | None) -> str:
    """Past clinics and showcases with their recap and outcome; a tag (or a word of
    the title) narrows them."""
    zone = await my_zone(ctx)
    wanted = tag.lower().lstrip("#") if tag else None
    past = await store.library(
        ctx.session, ctx.inbound.platform, ctx.inbound.workspace_id, set(LIBRARY_KINDS)
    )
    if wanted:
        past = [e for e in past if wanted in e.tags or wanted in e.title.lower()]
    items = []
    for event in past[:LIBRARY_SIZE]:
        assert event.id is not None
        items.append(
            {
                "id": event.id,
                "kind": KIND_LABELS[EventKind(event.kind)],
                "title": event.title,
                "when": Trusted(describe_time(event.starts_at, zone)),
                "presenter": Trusted(mention(event.presenter_user_id))
                if event.presenter_user_id
                else None,
                "tags": ", ".join(event.tags),
                "ideas": event.recap_ideas,
                "actions": event.recap_actions,
                "outcome": event.outcome,
                "rating": average(await store.scores(ctx.session, event.id)),
            }
        )
    return ctx.runtime.templates.render("events/library", events=items, tag=wanted)


# --- the hooks the core reads -----------------------------------------------------


async def metrics(session: AsyncSession, period: Period) -> Figures:
    """Events held, RSVPs, attendance, ratings and clinic outcomes, for the health report."""
    figures = await store.period_figures(
        session, period.platform, period.workspace_id, period.start, period.end
    )
    return {
        "events_held": figures.events_held,
        "clinics_held": figures.clinics_held,
        "rsvps": figures.rsvps,
        "attended": figures.attended,
        "ratings": figures.ratings,
        "average_rating": figures.average_rating,
        "clinic_outcomes_reported": figures.outcomes_reported,
        "clinic_submissions": figures.submissions,
    }


async def actions(session: AsyncSession, period: Period) -> Sequence[MemberAction]:
    """RSVPs and attendance; presenting a clinic or showcase is a contribution."""
    found: list[MemberAction] = [
        MemberAction(row.user_id, "event_rsvp", row.created_at)
        for row in await store.rsvps_given(
            session, period.platform, period.workspace_id, period.start, period.end
        )
    ]
    for event, attendees in await store.held_between(
        session, period.platform, period.workspace_id, period.start, period.end
    ):
        found += [MemberAction(user, "event_attended", event.ends_at) for user in attendees]
        if event.presenter_user_id and EventKind(event.kind) in LIBRARY_KINDS:
            found.append(
                MemberAction(
                    event.presenter_user_id,
                    f"{event.kind}_presented",
                    event.ends_at,
                    contribution=True,
                )
            )
    return found


async def stored_about(session: AsyncSession, member: Identity) -> Stored:
    """What events keep about a member, for `/kindred privacy`."""
    stored = await store.stored_about(session, member.platform, member.workspace_id, member.user_id)
    return Stored(
        "events/stored_about",
        {
            "submissions": stored.submissions,
            "rsvps": stored.rsvps,
            "ratings": stored.ratings,
            "presented": stored.presented,
        },
    )


async def forget_feedback(session: AsyncSession, member: Identity) -> int:
    return await store.forget_ratings(session, member.platform, member.workspace_id, member.user_id)
