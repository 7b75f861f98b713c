"""After an event: the recap written by the organiser or the presenter (posted to
the event's thread and kept for the library), attendees' ratings, and the
presenter's day-30 outcome, added to the recap."""

from __future__ import annotations

from bot.core.context import Context
from bot.core.errors import CommandError
from bot.core.mentions import member_text, mention
from bot.core.platform import Message
from bot.core.templates import Trusted
from bot.domain.events import RATINGS, EventState, Rsvp
from bot.services.events import event_for
from storage import events as store
from storage.events import Event


def require_writer(ctx: Context, event: Event, what: str) -> None:
    if ctx.inbound.user_id in {event.created_by, event.presenter_user_id}:
        return
    raise CommandError(f"Only the organiser or the presenter of event #{event.id} can {what}.")


def require_started(event: Event) -> None:
    if event.state == EventState.CANCELLED:
        raise CommandError(f"Event #{event.id} was cancelled.")
    if event.state == EventState.SCHEDULED:
        raise CommandError(f"Event #{event.id} hasn't started yet; the recap comes after.")


async def save_recap(ctx: Context, event_id: int, ideas: str, actions: str) -> str:
    event = await event_for(ctx, event_id, lock=True)
    require_writer(ctx, event, "write its recap")
    require_started(event)
    now = ctx.now()
    event.recap_ideas, event.recap_actions = ideas, actions
    event.recap_by, event.recap_at = ctx.inbound.user_id, now
    if event.announcement_outbox_id is not None:
        text = ctx.runtime.templates.render(
            "events/recap",
            event_id=event.id,
            title=event.title,
            ideas=ideas,
            actions=actions,
            author=Trusted(mention(ctx.inbound.user_id)),
        )
        await ctx.outbox.thread_reply(
            event.announcement_outbox_id,
            Message(text),
            key=f"events.recap:{event.id}:{now.isoformat()}",
        )
    return f"Saved the recap of event #{event.id} and posted it in the event's thread. Thank you!"


async def rate_event(ctx: Context, event_id: int, score: int) -> str:
    if score not in RATINGS:
        raise CommandError("A rating is from 1 to 5.")
    event = await event_for(ctx, event_id)
    if event.state != EventState.ENDED:
        raise CommandError(f"Event #{event.id} hasn't ended yet; rate it afterwards.")
    assert event.id is not None
    row = await store.rsvp_of(ctx.session, event.id, ctx.inbound.user_id)
    if row is None or row.status != Rsvp.GOING:
        raise CommandError("Only members who were going can rate the event.")
    row.attended = True
    await store.rate(ctx.session, event.id, ctx.inbound.user_id, score, ctx.now())
    return f"Thanks! You rated **{member_text(event.title)}** {score}/5."


async def missed_event(ctx: Context, event_id: int) -> str:
    event = await event_for(ctx, event_id)
    assert event.id is not None
    row = await store.rsvp_of(ctx.session, event.id, ctx.inbound.user_id)
    if row is None:
        raise CommandError("You had no RSVP for this event.")
    row.attended = False
    return (
        "Thanks for letting us know. The recap will be in the library: `/kindred clinic library`."
    )


async def save_outcome(ctx: Context, event_id: int, tried: str, changed: str) -> str:
    event = await event_for(ctx, event_id, lock=True)
    if ctx.inbound.user_id != event.presenter_user_id:
        raise CommandError(f"Only the presenter of event #{event.id} can report its outcome.")
    if event.state != EventState.ENDED:
        raise CommandError(f"Event #{event.id} hasn't ended yet.")
    now = ctx.now()
    event.outcome = f"Did they try it? {tried}\nWhat changed: {changed}"
    event.outcome_at = now
    if event.announcement_outbox_id is not None:
        text = ctx.runtime.templates.render(
            "events/outcome",
            event_id=event.id,
            title=event.title,
            tried=tried,
            changed=changed,
            presenter=Trusted(mention(ctx.inbound.user_id)),
        )
        await ctx.outbox.thread_reply(
            event.announcement_outbox_id,
            Message(text),
            key=f"events.outcome:{event.id}:{now.isoformat()}",
        )
    return (
        f"Thank you! I added what happened to the recap of event #{event.id}; the next "
        "member with the same problem will find it in `/kindred clinic library`."
    )
