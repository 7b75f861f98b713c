"""Welcome newcomers: a DM when they arrive (once per community), an introduction
posted on their behalf, a buddy, greeters who say hi, and the organiser's
`/kindred welcome setup|preview|stats`."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from bot.commands.profile import parse_topics
from bot.core.context import Context
from bot.core.errors import CommandError
from bot.core.feature import Feature, Tick
from bot.core.formatting import channel_link, channel_links
from bot.core.mentions import mention
from bot.core.platform import Message, Modal, ModalField, Reply
from bot.core.registry import Handlers, Param
from bot.core.templates import Trusted
from bot.domain.welcome import (
    ACTIVATION_WINDOW,
    BUDDY_LOAD_WINDOW,
    Journey,
    WelcomeSettingError,
    activation,
    check_template,
    format_delay,
    parse_channel_list,
    parse_delay,
    parse_url,
    welcome_message,
)
from bot.jobs import welcome as jobs
from bot.services import welcome as service
from storage import coffee as coffee_rows
from storage import welcome as welcome_rows
from storage.welcome import TRIGGER_CHANNEL, TRIGGER_WORKSPACE, Welcome, WelcomeSettings

handlers = Handlers("welcome")
feature = Feature(
    summary="Welcome newcomers: a DM, an intro, a buddy and greeters",
    handlers=handlers,
    highlights=("welcome setup", "welcome preview", "welcome stats"),
    tables=welcome_rows,
    ticks=(Tick(jobs.TICK, jobs.TICK_SECONDS, jobs.run_due, next_due=jobs.next_due),),
)

INTRO_MAX_LENGTH = 1000
PROFILE_FIELD_MAX_LENGTH = 100
CLEARABLE = (
    "template",
    "trigger_channel",
    "intro_channel",
    "greeters_channel",
    "code_of_conduct",
    "visit",
)

SETUP_PARAMS = (
    Param("enabled", "bool", "Welcome newcomers: on or off", positional=False),
    Param(
        "template",
        help='The welcome DM, e.g. "Hi {{ name }}, welcome to {{ community }}!" (\\n = new line)',
        max_length=4000,
        positional=False,
    ),
    Param("delay", help="When to send the DM: 0 (immediately), 30m, 2h, 1d", positional=False),
    Param(
        "trigger",
        "choice",
        "Welcome on joining the workspace, or on joining trigger_channel",
        choices=(TRIGGER_WORKSPACE, TRIGGER_CHANNEL),
        positional=False,
    ),
    Param(
        "trigger_channel", "channel", "The community channel for trigger=channel", positional=False
    ),
    Param("intro_channel", "channel", "Where introductions are posted", positional=False),
    Param("greeters_channel", "channel", "Where greeters hear about newcomers", positional=False),
    Param("auto_buddy", "bool", "Give every newcomer a buddy without asking", positional=False),
    Param("code_of_conduct", help="Link to the code of conduct", positional=False),
    Param("visit", help='Channels worth visiting, e.g. "#help #jobs"', positional=False),
    Param(
        "clear", "choice", "Unset one of the settings above", choices=CLEARABLE, positional=False
    ),
)


# Arrivals ---------------------------------------------------------------------------


@handlers.event("member_joined")
async def welcome_workspace_joiner(ctx: Context) -> None:
    settings = await _settings(ctx)
    if settings.trigger == TRIGGER_WORKSPACE:
        await _arrive(ctx, settings)


@handlers.event("channel_joined")
async def welcome_channel_joiner(ctx: Context) -> None:
    settings = await _settings(ctx)
    if settings.trigger == TRIGGER_CHANNEL and ctx.inbound.channel_id == settings.trigger_channel:
        await _arrive(ctx, settings)


@handlers.event("member_left")
async def forget_unwelcomed_leaver(ctx: Context) -> None:
    """Someone who leaves before their delayed welcome went out was never welcomed:
    drop the pending welcome so that, if they come back, they are welcomed then."""
    welcome = await _welcome(ctx, ctx.inbound.user_id)
    if welcome is not None and welcome.welcomed_at is None and welcome.welcome_due_at is not None:
        await ctx.session.delete(welcome)


async def _arrive(ctx: Context, settings: WelcomeSettings) -> None:
    if not settings.enabled:
        return
    member = await ctx.member()
    if member.is_bot or member.deactivated:
        return
    now = ctx.now()
    delay = timedelta(seconds=settings.delay_seconds)
    welcome_id = await welcome_rows.record_arrival(
        ctx.session,
        ctx.inbound.platform,
        ctx.inbound.workspace_id,
        member.user_id,
        trigger=settings.trigger,
        joined_at=now,
        welcome_due_at=now + delay if delay else None,
        welcomed_at=None if delay else now,
    )
    if welcome_id is None:
        return  # Welcomed before: a rejoin, a re-delivery or another replica.
    community = await ctx.community()
    templates = ctx.runtime.templates
    if settings.greeters_channel:
        await ctx.outbox.post(
            settings.greeters_channel,
            service.greeters_message(
                templates, member.user_id, service.display_community(community.name), None
            ),
            key=f"welcome.greeters:{member.user_id}",
        )
    if delay:
        return  # The welcome tick sends it when it is due.
    await service.queue_welcome_dm(ctx.outbox, templates, settings, member, community)
    if settings.auto_buddy:
        welcome = await ctx.session.get(Welcome, welcome_id)
        assert welcome is not None
        await service.assign_buddy(ctx.session, ctx.outbox, templates, settings, welcome, now)


# The welcome DM's buttons ------------------------------------------------------------


@handlers.action("welcome.introduce")
async def open_intro_form(ctx: Context) -> Reply:
    settings = await _settings(ctx)
    if not settings.intro_channel:
        return _no_intro_channel()
    welcome = await _welcome(ctx, ctx.inbound.user_id)
    if welcome is not None and welcome.intro_posted_at is not None:
        return Reply.text(
            f"You introduced yourself already, in {channel_link(settings.intro_channel)}. "
            "Keep the conversation going there!"
        )
    return Reply(
        modal=Modal(
            callback_id="welcome.intro_submit",
            title="Introduce yourself",
            fields=(
                ModalField(
                    "intro",
                    "A few lines about you",
                    multiline=True,
                    max_length=INTRO_MAX_LENGTH,
                    placeholder="What you do, why you joined, what you would like to talk about",
                ),
                ModalField(
                    "role", "Your role", required=False, max_length=PROFILE_FIELD_MAX_LENGTH
                ),
                ModalField(
                    "company", "Where you work", required=False, max_length=PROFILE_FIELD_MAX_LENGTH
                ),
                ModalField(
                    "topics",
                    "Topics you care about (comma-separated)",
                    required=False,
                    max_length=400,
                ),
            ),
            submit_label="Post my intro",
        )
    )


@handlers.action("welcome.intro_submit")
async def post_intro(ctx: Context) -> Reply:
    settings = await _settings(ctx)
    if not settings.intro_channel:
        return _no_intro_channel()
    values = {name: str(value or "").strip() for name, value in ctx.inbound.options.items()}
    intro = values.get("intro", "")
    if not intro:
        raise CommandError("Your introduction is empty: write a few lines about yourself.")
    if len(intro) > INTRO_MAX_LENGTH:
        raise CommandError(
            f"Your introduction is {len(intro)} characters; "
            f"please keep it under {INTRO_MAX_LENGTH}."
        )
    welcome = await _welcome(ctx, ctx.inbound.user_id)
    if welcome is not None and welcome.intro_posted_at is not None:
        return Reply.text("You introduced yourself already; I haven't posted it twice.")
    member = await ctx.member()
    for name in ("role", "company"):
        if values.get(name):
            if len(values[name]) > PROFILE_FIELD_MAX_LENGTH:
                raise CommandError(
                    f"Your {name} is too long; keep it under {PROFILE_FIELD_MAX_LENGTH} characters."
                )
            setattr(member, name, " ".join(values[name].split()))
    if values.get("topics"):
        member.topics = parse_topics(values["topics"])
    if any(values.get(name) for name in ("role", "company", "topics")):
        member.profile_updated_at = ctx.now()
    text = ctx.runtime.templates.render(
        "welcome/intro_post",
        member=Trusted(mention(member.user_id)),
        role=member.role,
        company=member.company,
        timezone=member.timezone,
        topics=member.topics,
        intro=intro,
    )
    key = None
    if welcome is not None:
        welcome.intro_posted_at = ctx.now()
        key = f"welcome.intro:{member.user_id}"
    await ctx.outbox.post(settings.intro_channel, Message(text=text), key=key)
    return Reply.text(
        f"Thanks! Your introduction is on its way to {channel_link(settings.intro_channel)}."
    )


def _no_intro_channel() -> Reply:
    return Reply.text(
        "This community has no introductions channel set up yet, so I can't post an intro "
        "for you. Say hello in any channel you like: people here will be glad to meet you!"
    )


@handlers.action("welcome.find_buddy")
async def find_buddy(ctx: Context) -> Reply:
    welcome = await _welcome(ctx, ctx.inbound.user_id)
    if welcome is None:
        return Reply.text(
            "Buddies are for newcomers, and you've been around longer than that. "
            "Want to be one? `/kindred welcome buddy on`"
        )
    settings = await _settings(ctx)
    already = welcome.buddy_user_id
    buddy = await service.assign_buddy(
        ctx.session, ctx.outbox, ctx.runtime.templates, settings, welcome, ctx.now()
    )
    if buddy is None:
        return Reply.text(
            "No volunteer buddy is free right now. I've noted your request and will "
            "introduce you as soon as someone volunteers."
        )
    if already is not None:
        return Reply.text(
            f"{mention(buddy.user_id)} is your buddy already: say hi in your conversation!"
        )
    return Reply.text(
        f"Done! I've introduced you to {mention(buddy.user_id)} in a small group conversation."
    )


@handlers.action("welcome.greet")
async def take_greeting(ctx: Context) -> Reply:
    newcomer = ctx.inbound.value
    welcome = await _welcome(ctx, newcomer)
    if welcome is None or welcome.id is None:
        return Reply.text("I can't find that newcomer any more.")
    if newcomer == ctx.inbound.user_id:
        return Reply.text("That's you! Your greeters will be in touch.")
    if await welcome_rows.claim_greeting(ctx.session, welcome.id, ctx.inbound.user_id, ctx.now()):
        community = await ctx.community()
        updated = service.greeters_message(
            ctx.runtime.templates,
            newcomer,
            service.display_community(community.name),
            ctx.inbound.user_id,
        )
        return Reply(
            message=Message(text=f"Thanks! {mention(newcomer)} is yours: send them a hello."),
            update_original=updated,
        )
    await ctx.session.refresh(welcome)
    if welcome.greeter_user_id == ctx.inbound.user_id:
        return Reply.text(f"You're already greeting {mention(newcomer)}.")
    return Reply.text(
        f"{mention(welcome.greeter_user_id or '')} is already saying hi to {mention(newcomer)}."
    )


# Buddies ----------------------------------------------------------------------------


@handlers.command(
    "welcome buddy",
    "Volunteer (on) or stop (off) being a newcomer's buddy",
    [Param("state", "choice", "on or off", choices=("on", "off"))],
)
async def volunteer(ctx: Context) -> Reply:
    platform, workspace = ctx.inbound.platform, ctx.inbound.workspace_id
    user = ctx.inbound.user_id
    state = ctx.args.get("state")
    if state is None:
        active = await welcome_rows.is_buddy_volunteer(ctx.session, platform, workspace, user)
        return Reply.text(
            "You're a welcome buddy. Stop with `/kindred welcome buddy off`."
            if active
            else "You're not a welcome buddy. Volunteer with `/kindred welcome buddy on`."
        )
    await welcome_rows.set_buddy_volunteer(
        ctx.session, platform, workspace, user, active=state == "on"
    )
    if state == "off":
        return Reply.text(
            "You're no longer a welcome buddy. Newcomers you already have keep you, of course."
        )
    settings = await _settings(ctx)
    served = await service.serve_waiting_newcomers(
        ctx.session, ctx.outbox, ctx.runtime.templates, settings, ctx.now(), ACTIVATION_WINDOW
    )
    mine = [welcome.user_id for welcome in served if welcome.buddy_user_id == user]
    text = (
        "Thank you for volunteering as a welcome buddy! When a newcomer asks for one, I'll "
        "introduce you in a small group conversation, and remind you to check in after a week."
    )
    if mine:
        names = ", ".join(mention(user_id) for user_id in mine)
        text += f"\nNewcomers were waiting, so I've introduced you to {names}."
    return Reply.text(text)


@handlers.event("home_opened")
async def buddy_home_section(ctx: Context) -> Reply | None:
    """Volunteers see their buddy status on their home tab; others see nothing."""
    platform, workspace, user = (
        ctx.inbound.platform,
        ctx.inbound.workspace_id,
        ctx.inbound.user_id,
    )
    if not await welcome_rows.is_buddy_volunteer(ctx.session, platform, workspace, user):
        return None
    loads = await welcome_rows.buddy_loads(
        ctx.session, platform, workspace, ctx.now() - BUDDY_LOAD_WINDOW
    )
    count = loads.get(user, 0)
    return Reply.text(
        f"**Welcome buddy**\nYou're a welcome buddy: {count} newcomer"
        f"{'' if count == 1 else 's'} in the last {BUDDY_LOAD_WINDOW.days} days. "
        "Stop with `/kindred welcome buddy off`."
    )


# Admin ------------------------------------------------------------------------------


@handlers.command("welcome setup", "Configure how newcomers are welcomed", SETUP_PARAMS, admin=True)
async def setup(ctx: Context) -> Reply:
    if not ctx.args:
        settings = await _settings(ctx)
        return Reply.text(await _describe(ctx, settings))
    settings = await welcome_rows.ensure_settings(
        ctx.session, ctx.inbound.platform, ctx.inbound.workspace_id
    )
    try:
        _apply(ctx, settings, ctx.args)
    except WelcomeSettingError as error:
        raise CommandError(str(error)) from error
    settings.updated_at = ctx.now()
    settings.updated_by = ctx.inbound.user_id
    return Reply.text("Saved.\n\n" + await _describe(ctx, settings))


def _apply(ctx: Context, settings: WelcomeSettings, args: dict[str, Any]) -> None:
    """Apply the organiser's changes; a refusal raises, and the handler's transaction
    rolls back, so a bad value never leaves the settings half-changed."""
    if "enabled" in args:
        settings.enabled = args["enabled"]
    if "template" in args:
        source = args["template"]
        settings.template = (
            None
            if source.lower() in {"default", "stock"}
            else check_template(ctx.runtime.templates, source)
        )
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


async def _describe(ctx: Context, settings: WelcomeSettings) -> str:
    volunteers = await welcome_rows.volunteer_members(
        ctx.session, ctx.inbound.platform, ctx.inbound.workspace_id
    )

    def link(channel: str | None) -> Trusted | None:
        return channel_link(channel) if channel else None

    return ctx.runtime.templates.render(
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


@handlers.command("welcome preview", "See the welcome DM exactly as a newcomer gets it", admin=True)
async def preview(ctx: Context) -> Reply:
    settings = await _settings(ctx)
    member = await ctx.member()
    community = await ctx.community()
    details = service.welcome_details(settings, member, service.display_community(community.name))
    message = welcome_message(ctx.runtime.templates, settings.template, details)
    when = format_delay(settings.delay_seconds)
    when = "right away" if settings.delay_seconds == 0 else f"{when} after they arrive"
    status = (
        ""
        if settings.enabled
        else " Welcomes are **off**: nobody gets this until you turn them on."
    )
    header = f"_Preview with you as the newcomer. Newcomers get this {when}._{status}"
    return Reply(message=Message(text=f"{header}\n\n{message.text}", buttons=message.buttons))


@handlers.command(
    "welcome stats", "Newcomers welcomed, introduced, buddied, and activation", admin=True
)
async def stats(ctx: Context) -> Reply:
    platform, workspace = ctx.inbound.platform, ctx.inbound.workspace_id
    welcomes = await welcome_rows.community_welcomes(ctx.session, platform, workspace)
    coffee = await coffee_rows.first_joined_at(
        ctx.session, platform, workspace, [welcome.user_id for welcome in welcomes]
    )
    now = ctx.now()
    figures = activation(
        (
            Journey(w.joined_at, w.intro_posted_at, w.buddied_at, coffee.get(w.user_id))
            for w in welcomes
            if w.welcomed_at is not None
        ),
        now,
    )
    community = await ctx.community()
    text = ctx.runtime.templates.render(
        "welcome/stats",
        community=service.display_community(community.name),
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
    return Reply.text(text)


# Helpers ----------------------------------------------------------------------------


async def _settings(ctx: Context) -> WelcomeSettings:
    return await welcome_rows.get_settings(
        ctx.session, ctx.inbound.platform, ctx.inbound.workspace_id
    )


async def _welcome(ctx: Context, user_id: str) -> Welcome | None:
    return await welcome_rows.get_welcome(
        ctx.session, ctx.inbound.platform, ctx.inbound.workspace_id, user_id
    )
