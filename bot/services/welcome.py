"""Welcome use cases, shared by the commands and the tick: arrivals, the welcome DM
(now, or later through the tick), greeters' posts and first-press-wins, intros,
buddy choice and the check-in nudge a week later, settings, preview and stats.

Everything is queued in the caller's transaction; later work runs from one tick
per replica, each item claimed once (`run_claimed`) so replicas never double up.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.figures import Figures, MemberAction, Period, Stored, as_member_actions
from bot.core.formatting import channel_link, channel_links
from bot.core.mentions import mention
from bot.core.outbox import Outbox
from bot.core.platform import Button, Identity, Message
from bot.core.templates import Templates, Trusted
from bot.domain.welcome import (
    ACTIVATION_WINDOW,
    BUDDY_CHECKIN_AFTER,
    BUDDY_LOAD_WINDOW,
    IntroForm,
    Journey,
    Milestones,
    Person,
    WelcomeDetails,
    WelcomeSettingError,
    activation,
    check_template,
    choose_buddy,
    format_delay,
    parse_channel_list,
    parse_delay,
    parse_url,
    period_figures,
    welcome_message,
)
from storage import coffee as coffee_rows
from storage import members
from storage import welcome as welcome_rows
from storage.models import Community, Member
from storage.welcome import TRIGGER_CHANNEL, Welcome, WelcomeSettings


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


# Arrivals ---------------------------------------------------------------------------


async def arrive(
    session: AsyncSession,
    outbox: Outbox,
    templates: Templates,
    settings: WelcomeSettings,
    member: Member,
    now: datetime,
) -> None:
    """A newcomer arrived: record it once, tell the greeters, and welcome them now
    (or leave it to the tick when there is a delay)."""
    if not settings.enabled or member.is_bot or member.deactivated:
        return
    delay = timedelta(seconds=settings.delay_seconds)
    welcome_id = await welcome_rows.record_arrival(
        session,
        member.platform,
        member.workspace_id,
        member.user_id,
        trigger=settings.trigger,
        joined_at=now,
        welcome_due_at=now + delay if delay else None,
        welcomed_at=None if delay else now,
    )
    if welcome_id is None:
        return  # Welcomed before: a rejoin, a re-delivery or another replica.
    community = await members.ensure_community(session, member.platform, member.workspace_id)
    if settings.greeters_channel:
        await outbox.post(
            settings.greeters_channel,
            greeters_message(templates, member.user_id, display_community(community.name), None),
            key=f"welcome.greeters:{member.user_id}",
        )
    if delay:
        return  # The welcome tick sends it when it is due.
    await queue_welcome_dm(outbox, templates, settings, member, community)
    if settings.auto_buddy:
        welcome = await session.get(Welcome, welcome_id)
        assert welcome is not None
        await assign_buddy(session, outbox, templates, settings, welcome, now)


async def forget_unwelcomed(session: AsyncSession, welcome: Welcome | None) -> None:
    """Someone who leaves before their delayed welcome went out was never welcomed:
    drop the pending welcome so that, if they come back, they are welcomed then."""
    if welcome is not None and welcome.welcomed_at is None and welcome.welcome_due_at is not None:
        await session.delete(welcome)


# Introductions ----------------------------------------------------------------------


async def post_intro(
    outbox: Outbox,
    templates: Templates,
    settings: WelcomeSettings,
    member: Member,
    welcome: Welcome | None,
    form: IntroForm,
    topics: list[str] | None,
    now: datetime,
) -> None:
    """Copy the form's profile fields to the member and queue the intro post, once
    for a newcomer (anyone else may introduce themselves as often as they like)."""
    assert settings.intro_channel is not None
    if form.role:
        member.role = form.role
    if form.company:
        member.company = form.company
    if topics:
        member.topics = topics
    if form.role or form.company or topics:
        member.profile_updated_at = now
    text = templates.render(
        "welcome/intro_post",
        member=Trusted(mention(member.user_id)),
        role=member.role,
        company=member.company,
        timezone=member.timezone,
        topics=member.topics,
        intro=form.intro,
    )
    key = None
    if welcome is not None:
        welcome.intro_posted_at = now
        key = f"welcome.intro:{member.user_id}"
    await outbox.post(settings.intro_channel, Message(text=text), key=key)


# Greeters ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Greeting:
    """The outcome of pressing "I'll say hi": the greeter now (None: someone was
    first), and the greeters' post as it should now read."""

    greeter: str | None
    updated: Message | None = None


async def take_greeting(
    session: AsyncSession, templates: Templates, welcome: Welcome, greeter: str, now: datetime
) -> Greeting:
    """The first greeter to press takes the newcomer; later presses learn who did."""
    assert welcome.id is not None
    if await welcome_rows.claim_greeting(session, welcome.id, greeter, now):
        community = await members.ensure_community(session, welcome.platform, welcome.workspace_id)
        updated = greeters_message(
            templates, welcome.user_id, display_community(community.name), greeter
        )
        return Greeting(greeter, updated)
    await session.refresh(welcome)
    return Greeting(welcome.greeter_user_id)


# Buddies ----------------------------------------------------------------------------


async def volunteer(
    session: AsyncSession,
    outbox: Outbox,
    templates: Templates,
    platform: str,
    workspace_id: str,
    user_id: str,
    now: datetime,
) -> list[str]:
    """Make `user_id` a buddy volunteer; the waiting newcomers they were given."""
    await welcome_rows.set_buddy_volunteer(session, platform, workspace_id, user_id, active=True)
    settings = await welcome_rows.get_settings(session, platform, workspace_id)
    served = await serve_waiting_newcomers(
        session, outbox, templates, settings, now, ACTIVATION_WINDOW
    )
    return [welcome.user_id for welcome in served if welcome.buddy_user_id == user_id]


async def buddy_load(
    session: AsyncSession, platform: str, workspace_id: str, user_id: str, now: datetime
) -> int | None:
    """How many newcomers a volunteer was given lately; None for non-volunteers."""
    if not await welcome_rows.is_buddy_volunteer(session, platform, workspace_id, user_id):
        return None
    loads = await welcome_rows.buddy_loads(session, platform, workspace_id, now - BUDDY_LOAD_WINDOW)
    return loads.get(user_id, 0)


# Settings ---------------------------------------------------------------------------


def apply_settings(
    templates: Templates, templates_dir: Path, settings: WelcomeSettings, args: Mapping[str, Any]
) -> None:
    """Apply the organiser's changes; a refusal raises, and the handler's transaction
    rolls back, so a bad value never leaves the settings half-changed."""
    if "enabled" in args:
        settings.enabled = args["enabled"]
    if "template" in args:
        settings.template = custom_template(templates, templates_dir, args["template"])
    if "delay" in args:
        settings.delay_seconds = int(parse_delay(args["delay"]).total_seconds())
    if "trigger_channel" in args:
        settings.trigger_channel = args["trigger_channel"]
        if "trigger" not in args:
            settings.trigger = TRIGGER_CHANNEL
    if "trigger" in args:
        settings.trigger = args["trigger"]
    for name in ("intro_channel", "greeters_channel", "auto_buddy"):
        if name in args:
            setattr(settings, name, args[name])
    if "code_of_conduct" in args:
        settings.code_of_conduct_url = parse_url(args["code_of_conduct"])
    if "visit" in args:
        settings.visit_channels = parse_channel_list(args["visit"])
    clear = args.get("clear")
    if clear is not None:
        if clear in args:
            raise WelcomeSettingError(f"`{clear}` is both set and cleared; pick one.")
        attribute = {"code_of_conduct": "code_of_conduct_url", "visit": "visit_channels"}.get(
            clear, clear
        )
        setattr(settings, attribute, [] if clear == "visit" else None)
    if settings.trigger == TRIGGER_CHANNEL and not settings.trigger_channel:
        raise WelcomeSettingError(
            "trigger=channel needs the channel too: add trigger_channel=#your-community-channel."
        )


def custom_template(templates: Templates, templates_dir: Path, value: str) -> str | None:
    """The organiser's template text, checked; None for the stock one. A value ending
    in `.j2` names a file in `templates_dir`, whose text is checked and saved (so a
    later edit of the file takes effect when setup is run again)."""
    if value.lower() in {"default", "stock"}:
        return None
    if value.strip().lower().endswith(".j2"):
        return check_template(templates, read_template_file(templates_dir, value), typed=False)
    return check_template(templates, value)


_TEMPLATE_FILE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]*\.j2")
# As long as a template typed into `welcome setup template="…"` may be.
MAX_TEMPLATE_FILE_CHARS = 4000


def read_template_file(templates_dir: Path, value: str) -> str:
    """The text of `value`, a plain file name in `templates_dir`: no folders, no
    `..`, nothing that resolves outside it (a symlink out is refused too)."""
    name = value.strip()
    where = f"{templates_dir.parent.parent.name}/templates/welcome/"
    if not _TEMPLATE_FILE.fullmatch(name) or ".." in name:
        raise WelcomeSettingError(
            f"`{name[:100]}` is not a template file name: give just the name of a file "
            f"in {where}, like custom.j2."
        )
    path = templates_dir / name
    if not path.is_file():
        raise WelcomeSettingError(
            f"There is no template file {name} in {where}: put it there first, "
            "or give the template's text instead."
        )
    if path.resolve().parent != templates_dir.resolve():
        raise WelcomeSettingError(f"{name} points outside {where}; copy the file there instead.")
    try:
        source = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise WelcomeSettingError(f"I could not read {name} from {where}: {error}.") from error
    if len(source) > MAX_TEMPLATE_FILE_CHARS:
        raise WelcomeSettingError(
            f"{name} is {len(source):,} characters long; keep a welcome template under "
            f"{MAX_TEMPLATE_FILE_CHARS:,}."
        )
    return source


async def describe_settings(
    session: AsyncSession, templates: Templates, settings: WelcomeSettings
) -> str:
    volunteers = await welcome_rows.volunteer_members(
        session, settings.platform, settings.workspace_id
    )

    def link(channel: str | None) -> Trusted | None:
        return channel_link(channel) if channel else None

    return templates.render(
        "welcome/settings",
        enabled=settings.enabled,
        trigger_channel=link(settings.trigger_channel)
        if settings.trigger == TRIGGER_CHANNEL
        else None,
        delay=format_delay(settings.delay_seconds),
        custom_template=settings.template is not None,
        intro_channel=link(settings.intro_channel),
        greeters_channel=link(settings.greeters_channel),
        auto_buddy=settings.auto_buddy,
        volunteers=len(volunteers),
        code_of_conduct=Trusted(settings.code_of_conduct_url)
        if settings.code_of_conduct_url
        else None,
        channels=channel_links(settings.visit_channels),
    )


def preview(
    templates: Templates, settings: WelcomeSettings, member: Member, community: Community
) -> Message:
    """The welcome DM with `member` as the newcomer, under a line saying when and
    whether newcomers get it."""
    details = welcome_details(settings, member, display_community(community.name))
    message = welcome_message(templates, settings.template, details)
    when = format_delay(settings.delay_seconds)
    when = "right away" if settings.delay_seconds == 0 else f"{when} after they arrive"
    status = (
        ""
        if settings.enabled
        else " Welcomes are **off**: nobody gets this until you turn them on."
    )
    header = f"_Preview with you as the newcomer. Newcomers get this {when}._{status}"
    return Message(text=f"{header}\n\n{message.text}", buttons=message.buttons)


# Stats ------------------------------------------------------------------------------


async def stats(
    session: AsyncSession, templates: Templates, platform: str, workspace_id: str, now: datetime
) -> str:
    welcomes = await welcome_rows.community_welcomes(session, platform, workspace_id)
    coffee = await coffee_rows.first_joined_at(
        session, platform, workspace_id, [welcome.user_id for welcome in welcomes]
    )
    figures = activation(
        (
            Journey(w.joined_at, w.intro_posted_at, w.buddied_at, coffee.get(w.user_id))
            for w in welcomes
            if w.welcomed_at is not None
        ),
        now,
    )
    community = await members.ensure_community(session, platform, workspace_id)
    return templates.render(
        "welcome/stats",
        community=display_community(community.name),
        welcomed=sum(w.welcomed_at is not None for w in welcomes),
        scheduled=sum(w.welcome_due_at is not None for w in welcomes),
        introduced=sum(w.intro_posted_at is not None for w in welcomes),
        buddied=sum(w.buddy_user_id is not None for w in welcomes),
        waiting=sum(w.buddy_requested_at is not None and w.buddy_user_id is None for w in welcomes),
        greeted=sum(w.greeter_user_id is not None for w in welcomes),
        eligible=figures.eligible,
        activated=figures.activated,
        rate=round(100 * (figures.rate or 0)),
        by_intro=figures.by_intro,
        by_coffee=figures.by_coffee,
        by_buddy=figures.by_buddy,
        in_window=figures.in_window,
        in_window_activated=figures.in_window_activated,
    )


# What each welcome action means to the health report and recognition (DESIGN.md §7).
ACTION_MEANINGS = {
    "intro": ("intro", False),
    "buddied": ("buddy", False),
    "became_buddy": ("welcome_buddy", True),
    "greeted": ("welcome_greeted", True),
}


async def actions(session: AsyncSession, period: Period) -> list[MemberAction]:
    """Newcomers posting their intro or getting a buddy; buddies and greeters
    taking them in (contributions)."""
    rows = await welcome_rows.member_actions(
        session, period.platform, period.workspace_id, period.start, period.end
    )
    return as_member_actions(rows, ACTION_MEANINGS)


async def stored_about(session: AsyncSession, member: Identity) -> Stored:
    """What the welcome feature keeps about a member, for `/kindred privacy`."""
    welcome = await welcome_rows.get_welcome(
        session, member.platform, member.workspace_id, member.user_id
    )
    volunteer = await welcome_rows.is_buddy_volunteer(
        session, member.platform, member.workspace_id, member.user_id
    )
    return Stored("welcome/stored_about", {"welcomed": welcome is not None, "buddy": volunteer})


async def metrics(session: AsyncSession, period: Period) -> Figures:
    """The welcome feature's figures for the health report (DESIGN.md §7)."""
    welcomes = await welcome_rows.community_welcomes(
        session, period.platform, period.workspace_id, joined_before=period.end
    )
    coffee = await coffee_rows.first_joined_at(
        session, period.platform, period.workspace_id, [w.user_id for w in welcomes]
    )
    return period_figures(
        (
            Milestones(
                Journey(w.joined_at, w.intro_posted_at, w.buddied_at, coffee.get(w.user_id)),
                w.welcomed_at,
                w.buddy_nudged_at,
            )
            for w in welcomes
        ),
        period.start,
        period.end,
    )
