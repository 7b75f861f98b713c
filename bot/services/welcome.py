"""Welcome deliveries: the welcome DM (now, or later through the tick), greeters'
posts, buddy introductions, and the buddy's check-in nudge a week later.

Everything is queued in the caller's transaction; later work runs from one tick
per replica, each item claimed once (`run_claimed`) so replicas never double up.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.mentions import mention
from bot.core.outbox import Outbox
from bot.core.platform import Button, Message
from bot.core.templates import Templates, Trusted
from bot.domain.welcome import (
    BUDDY_CHECKIN_AFTER,
    BUDDY_LOAD_WINDOW,
    Person,
    WelcomeDetails,
    choose_buddy,
    welcome_message,
)
from storage import members
from storage import welcome as welcome_rows
from storage.models import Community, Member
from storage.welcome import Welcome, WelcomeSettings


def display_community(name: str) -> str:
    """How messages name a community whose platform did not tell us its name."""
    return name or "the community"


def welcome_details(settings: WelcomeSettings, member: Member, community: str) -> WelcomeDetails:
    return WelcomeDetails(
        user_id=member.user_id,
        name=member.display_name or member.user_id,
        community=community,
        visit_channels=tuple(settings.visit_channels),
        intro_channel=settings.intro_channel,
        code_of_conduct_url=settings.code_of_conduct_url,
    )


def greeters_message(
    templates: Templates, newcomer: str, community: str, greeter: str | None
) -> Message:
    text = templates.render(
        "welcome/greeters",
        member=Trusted(mention(newcomer)),
        community=community,
        greeter=Trusted(mention(greeter)) if greeter else None,
    )
    buttons = () if greeter else (Button("I'll say hi", "welcome.greet", newcomer),)
    return Message(text=text, buttons=buttons)


async def queue_welcome_dm(
    outbox: Outbox,
    templates: Templates,
    settings: WelcomeSettings,
    member: Member,
    community: Community,
) -> None:
    """Queue the welcome DM, keyed per member so it can only ever be queued once."""
    details = welcome_details(settings, member, display_community(community.name))
    message = welcome_message(templates, settings.template, details)
    await outbox.dm(member.user_id, message, key=f"welcome:{member.user_id}")


async def assign_buddy(
    session: AsyncSession,
    outbox: Outbox,
    templates: Templates,
    settings: WelcomeSettings,
    welcome: Welcome,
    now: datetime,
) -> Member | None:
    """Pick a buddy and introduce the two; None (request remembered) when no
    volunteer is free."""
    if welcome.buddy_user_id is not None:
        return await members.get_member(
            session, welcome.platform, welcome.workspace_id, welcome.buddy_user_id
        )
    newcomer = await members.ensure_member(
        session, welcome.platform, welcome.workspace_id, welcome.user_id
    )
    volunteers = await welcome_rows.volunteer_members(
        session, welcome.platform, welcome.workspace_id
    )
    loads = await welcome_rows.buddy_loads(
        session, welcome.platform, welcome.workspace_id, now - BUDDY_LOAD_WINDOW
    )
    chosen = choose_buddy(
        Person(newcomer.user_id, newcomer.company, newcomer.timezone),
        [Person(v.user_id, v.company, v.timezone) for v in volunteers],
        loads,
        now,
    )
    if chosen is None:
        welcome.buddy_requested_at = welcome.buddy_requested_at or now
        return None
    buddy = next(v for v in volunteers if v.user_id == chosen.user_id)
    welcome.buddy_user_id = buddy.user_id
    welcome.buddied_at = now
    welcome.buddy_checkin_due_at = now + BUDDY_CHECKIN_AFTER
    community = await members.ensure_community(session, welcome.platform, welcome.workspace_id)
    text = templates.render(
        "welcome/buddy_intro",
        newcomer=Trusted(mention(newcomer.user_id)),
        buddy=Trusted(mention(buddy.user_id)),
        newcomer_name=newcomer.display_name,
        buddy_name=buddy.display_name,
        newcomer_about=_about(newcomer),
        buddy_about=_about(buddy),
        community=display_community(community.name),
    )
    # Discord opens the conversation as a private thread, which needs a channel.
    channel = settings.intro_channel or settings.greeters_channel or settings.trigger_channel
    await outbox.group(
        [newcomer.user_id, buddy.user_id],
        Message(text=text, mentions=(newcomer.user_id, buddy.user_id)),
        channel_id=channel,
        title=f"Welcome buddies: {newcomer.display_name} & {buddy.display_name}"[:100],
        key=f"welcome.buddy:{newcomer.user_id}",
    )
    return buddy


def _about(member: Member) -> str | None:
    """A short line from the member's profile (role, company, time zone)."""
    parts = []
    if member.role or member.company:
        parts.append((member.role or "works") + (f" at {member.company}" if member.company else ""))
    if member.timezone:
        parts.append(f"{member.timezone} time")
    return ", ".join(parts) or None


async def serve_waiting_newcomers(
    session: AsyncSession,
    outbox: Outbox,
    templates: Templates,
    settings: WelcomeSettings,
    now: datetime,
    window: timedelta,
) -> list[Welcome]:
    """When a volunteer appears, introduce the newcomers who asked (within `window`)
    while nobody was free, oldest request first; returns those who got a buddy."""
    waiting = await welcome_rows.waiting_for_buddy(
        session, settings.platform, settings.workspace_id, now - window
    )
    served: list[Welcome] = []
    for welcome in waiting:
        if await assign_buddy(session, outbox, templates, settings, welcome, now) is None:
            break
        served.append(welcome)
    return served


async def send_delayed_welcome(
    session: AsyncSession, templates: Templates, welcome_id: int, now: datetime
) -> None:
    welcome = await session.get(Welcome, welcome_id)
    if welcome is None or welcome.welcome_due_at is None:
        return
    welcome.welcome_due_at = None
    settings = await welcome_rows.get_settings(session, welcome.platform, welcome.workspace_id)
    member = await members.get_member(
        session, welcome.platform, welcome.workspace_id, welcome.user_id
    )
    if not settings.enabled or member is None or member.is_bot or member.deactivated:
        return  # Welcomes were turned off, or the account went away, during the delay.
    welcome.welcomed_at = now
    outbox = Outbox(session, welcome.platform, welcome.workspace_id)
    community = await members.ensure_community(session, welcome.platform, welcome.workspace_id)
    await queue_welcome_dm(outbox, templates, settings, member, community)
    if settings.auto_buddy:
        await assign_buddy(session, outbox, templates, settings, welcome, now)


async def nudge_buddy(
    session: AsyncSession, templates: Templates, welcome_id: int, now: datetime
) -> None:
    welcome = await session.get(Welcome, welcome_id)
    if welcome is None or welcome.buddy_checkin_due_at is None or welcome.buddy_user_id is None:
        return
    welcome.buddy_checkin_due_at = None
    welcome.buddy_nudged_at = now
    community = await members.ensure_community(session, welcome.platform, welcome.workspace_id)
    text = templates.render(
        "welcome/buddy_checkin",
        newcomer=Trusted(mention(welcome.user_id)),
        community=display_community(community.name),
    )
    outbox = Outbox(session, welcome.platform, welcome.workspace_id)
    await outbox.dm(
        welcome.buddy_user_id,
        Message(text=text),
        key=f"welcome.checkin:{welcome.user_id}",
    )
