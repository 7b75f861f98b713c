"""Welcome newcomers: a DM when they arrive (once per community), an introduction
posted on their behalf, a buddy, greeters who say hi, and the organiser's
`/kindred welcome setup|preview|stats`."""

from __future__ import annotations

from pathlib import Path

from bot.core.context import Context
from bot.core.errors import CommandError
from bot.core.feature import Feature, Tick
from bot.core.formatting import channel_link, plural
from bot.core.mentions import mention
from bot.core.platform import Message, Modal, ModalField, Reply
from bot.core.registry import Handlers, Param
from bot.domain.profile import parse_topics
from bot.domain.welcome import (
    BUDDY_LOAD_WINDOW,
    INTRO_MAX_LENGTH,
    PROFILE_FIELD_MAX_LENGTH,
    IntroProblem,
    WelcomeSettingError,
    read_intro_form,
)
from bot.jobs import welcome as jobs
from bot.services import welcome as service
from storage import welcome as welcome_rows
from storage.welcome import TRIGGER_CHANNEL, TRIGGER_WORKSPACE, Welcome, WelcomeSettings

handlers = Handlers("welcome")
feature = Feature(
    summary="Welcome newcomers: a DM, an intro, a buddy and greeters",
    handlers=handlers,
    highlights=("welcome setup", "welcome preview", "welcome stats"),
    tables=welcome_rows,
    ticks=(Tick(jobs.TICK, jobs.TICK_SECONDS, jobs.tick, next_due=jobs.next_due),),
    metrics=service.metrics,
    actions=service.actions,
    stored_about=service.stored_about,
)

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
    await service.forget_unwelcomed(ctx.session, await _welcome(ctx, ctx.inbound.user_id))


async def _arrive(ctx: Context, settings: WelcomeSettings) -> None:
    member = await ctx.member()
    await service.arrive(
        ctx.session, ctx.outbox, ctx.runtime.templates, settings, member, ctx.now()
    )


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
    return Reply(modal=INTRO_FORM)


INTRO_FORM = Modal(
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
        ModalField("role", "Your role", required=False, max_length=PROFILE_FIELD_MAX_LENGTH),
        ModalField(
            "company", "Where you work", required=False, max_length=PROFILE_FIELD_MAX_LENGTH
        ),
        ModalField(
            "topics", "Topics you care about (comma-separated)", required=False, max_length=400
        ),
    ),
    submit_label="Post my intro",
)


@handlers.action("welcome.intro_submit")
async def post_intro(ctx: Context) -> Reply:
    settings = await _settings(ctx)
    if not settings.intro_channel:
        return _no_intro_channel()
    try:
        form = read_intro_form(ctx.inbound.options)
    except IntroProblem as problem:
        raise CommandError(str(problem)) from problem
    welcome = await _welcome(ctx, ctx.inbound.user_id)
    if welcome is not None and welcome.intro_posted_at is not None:
        return Reply.text("You introduced yourself already; I haven't posted it twice.")
    topics = parse_topics(form.topics) if form.topics else None
    await service.post_intro(
        ctx.outbox,
        ctx.runtime.templates,
        settings,
        await ctx.member(),
        welcome,
        form,
        topics,
        ctx.now(),
    )
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
    greeting = await service.take_greeting(
        ctx.session, ctx.runtime.templates, welcome, ctx.inbound.user_id, ctx.now()
    )
    if greeting.updated is not None:
        return Reply(
            message=Message(text=f"Thanks! {mention(newcomer)} is yours: send them a hello."),
            update_original=greeting.updated,
        )
    if greeting.greeter == ctx.inbound.user_id:
        return Reply.text(f"You're already greeting {mention(newcomer)}.")
    return Reply.text(
        f"{mention(greeting.greeter or '')} is already saying hi to {mention(newcomer)}."
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
    if state == "off":
        await welcome_rows.set_buddy_volunteer(ctx.session, platform, workspace, user, active=False)
        return Reply.text(
            "You're no longer a welcome buddy. Newcomers you already have keep you, of course."
        )
    mine = await service.volunteer(
        ctx.session, ctx.outbox, ctx.runtime.templates, platform, workspace, user, ctx.now()
    )
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
    count = await service.buddy_load(
        ctx.session, ctx.inbound.platform, ctx.inbound.workspace_id, ctx.inbound.user_id, ctx.now()
    )
    if count is None:
        return None
    return Reply.text(
        f"**Welcome buddy**\nYou're a welcome buddy: {plural(count, 'newcomer')} "
        f"in the last {BUDDY_LOAD_WINDOW.days} days. "
        "Stop with `/kindred welcome buddy off`."
    )


# Admin ------------------------------------------------------------------------------


@handlers.command("welcome setup", "Configure how newcomers are welcomed", SETUP_PARAMS, admin=True)
async def setup(ctx: Context) -> Reply:
    templates = ctx.runtime.templates
    if not ctx.args:
        return Reply.text(
            await service.describe_settings(ctx.session, templates, await _settings(ctx))
        )
    settings = await welcome_rows.ensure_settings(
        ctx.session, ctx.inbound.platform, ctx.inbound.workspace_id
    )
    try:
        service.apply_settings(templates, _templates_dir(ctx), settings, ctx.args)
    except WelcomeSettingError as error:
        raise CommandError(str(error)) from error
    settings.updated_at = ctx.now()
    settings.updated_by = ctx.inbound.user_id
    return Reply.text(
        "Saved.\n\n" + await service.describe_settings(ctx.session, templates, settings)
    )


@handlers.command("welcome preview", "See the welcome DM exactly as a newcomer gets it", admin=True)
async def preview(ctx: Context) -> Reply:
    settings = await _settings(ctx)
    message = service.preview(
        ctx.runtime.templates, settings, await ctx.member(), await ctx.community()
    )
    return Reply(message=message)


@handlers.command(
    "welcome stats", "Newcomers welcomed, introduced, buddied, and activation", admin=True
)
async def stats(ctx: Context) -> Reply:
    text = await service.stats(
        ctx.session,
        ctx.runtime.templates,
        ctx.inbound.platform,
        ctx.inbound.workspace_id,
        ctx.now(),
    )
    return Reply.text(text)


# Helpers ----------------------------------------------------------------------------


def _templates_dir(ctx: Context) -> Path:
    """Where organisers keep their own welcome templates (`template=custom.j2`)."""
    return ctx.runtime.settings.config_dir / "templates" / "welcome"


async def _settings(ctx: Context) -> WelcomeSettings:
    return await welcome_rows.get_settings(
        ctx.session, ctx.inbound.platform, ctx.inbound.workspace_id
    )


async def _welcome(ctx: Context, user_id: str) -> Welcome | None:
    return await welcome_rows.get_welcome(
        ctx.session, ctx.inbound.platform, ctx.inbound.workspace_id, user_id
    )
