"""`/kindred coffee …`: virtual coffee programs, one per channel (issue #3).

Members join, leave, pause, skip a round, block someone and check their status;
admins set a program up in its channel, preview the next round, run one now and
read the stats. Buttons on intros, reminders, follow-ups and the home tab call
the same code. Each handler parses, finds the program and calls
`bot.services.coffee`, where the use cases and the rounds live.
"""

from __future__ import annotations

from bot.core.context import Context, Preparation
from bot.core.errors import CommandError
from bot.core.feature import Feature, Tick
from bot.core.formatting import channel_link
from bot.core.platform import Reply
from bot.core.registry import Handlers, Param, day_aliases
from bot.domain.coffee import CADENCE_ALIASES, CADENCES, WEEKDAYS
from bot.domain.profile import canonical_timezone
from bot.jobs import coffee as jobs
from bot.services import coffee as service
from storage import coffee
from storage.coffee import CoffeeMembership, CoffeeProgram

handlers = Handlers("coffee")
feature = Feature(
    summary="Virtual coffee: meet a fellow member every round",
    handlers=handlers,
    highlights=("coffee join", "coffee status", "coffee skip"),
    tables=coffee,
    ticks=(Tick(jobs.TICK, jobs.TICK_SECONDS, jobs.tick, next_due=jobs.next_due),),
    config_files={service.STARTERS_FILE: service.check_starters},
    metrics=service.metrics,
    actions=service.actions,
    stored_about=service.stored_about,
    forget_feedback=service.forget_feedback,
)

CHANNEL = Param("channel", "channel", "The program's channel, when there are several")
SETUP_PARAMS = (
    Param(
        "create", "choice", "`create`: start a program with the settings shown", choices=("create",)
    ),
    Param(
        "cadence",
        "choice",
        "How often rounds start",
        choices=CADENCES,
        aliases=CADENCE_ALIASES,
        positional=False,
    ),
    Param(
        "weekday",
        "choice",
        "The day rounds start",
        choices=WEEKDAYS,
        aliases=day_aliases(WEEKDAYS),
        positional=False,
    ),
    Param(
        "hour", "int", "The hour rounds start (0-23)", min_value=0, max_value=23, positional=False
    ),
    Param("timezone", help="The program's IANA time zone, e.g. Europe/Berlin", positional=False),
    Param(
        "group_size", "int", "2 (pairs) or 3 (trios)", min_value=2, max_value=3, positional=False
    ),
    Param("auto_join", "bool", "Joining the channel opts a member in (on/off)", positional=False),
    Param(
        "repeat_window",
        "int",
        "Rounds within which nobody meets the same person again",
        min_value=0,
        max_value=52,
        positional=False,
    ),
    Param(
        "max_ignored",
        "int",
        "Unanswered follow-ups in a row before a member is paused",
        min_value=1,
        max_value=10,
        positional=False,
    ),
)


# Finding the program ------------------------------------------------------------------


async def _community_programs(ctx: Context) -> list[CoffeeProgram]:
    return await coffee.community_programs(
        ctx.session, ctx.inbound.platform, ctx.inbound.workspace_id
    )


def _links(programs: list[CoffeeProgram]) -> str:
    return ", ".join(channel_link(program) for program in programs)


async def _no_program_text(ctx: Context) -> str:
    if await ctx.is_admin():
        return (
            "There's no virtual coffee program here yet. Start one by running "
            "`/kindred coffee setup` in the channel where members should meet."
        )
    return "There's no virtual coffee program here yet; ask an organiser to start one."


async def choose_program(ctx: Context, among: list[CoffeeProgram] | None = None) -> CoffeeProgram:
    """The program a command is about: the `channel` argument, else the channel the
    command was typed in, else the only program in `among` (default: all of the
    community's). Otherwise explain what exists and how to pick."""
    programs = await _community_programs(ctx)
    if not programs:
        raise CommandError(await _no_program_text(ctx))
    by_channel = {program.channel_id: program for program in programs}
    wanted = ctx.args.get("channel")
    if wanted is not None:
        if wanted not in by_channel:
            raise CommandError(
                f"There's no virtual coffee program in <#{wanted}>. Programs: {_links(programs)}."
            )
        return by_channel[wanted]
    if ctx.inbound.channel_id in by_channel:
        return by_channel[ctx.inbound.channel_id]
    candidates = programs if among is None else among
    if len(candidates) == 1:
        return candidates[0]
    if not candidates:
        raise CommandError(
            f"You're not in a virtual coffee program. Programs: {_links(programs)}; "
            "join with `/kindred coffee join`."
        )
    example = candidates[0].channel_id
    raise CommandError(
        f"Which program? There are several: {_links(candidates)}. Run the command in the "
        f"program's channel, or name the channel, e.g. channel=<#{example}>."
    )


def _require_membership(
    program: CoffeeProgram, membership: CoffeeMembership | None, join_hint: str
) -> CoffeeMembership:
    if membership is None or not membership.active:
        raise CommandError(
            f"You're not in the virtual coffee of {channel_link(program)}{join_hint} "
            "with `/kindred coffee join`."
        )
    return membership


async def _my_program(ctx: Context) -> tuple[CoffeeProgram, CoffeeMembership]:
    """The program of a member command, among the programs the member is in."""
    mine = await coffee.member_memberships(
        ctx.session, ctx.inbound.platform, ctx.inbound.workspace_id, ctx.inbound.user_id
    )
    program = await choose_program(ctx, [program for program, m in mine if m.active])
    assert program.id is not None
    membership = await coffee.get_membership(ctx.session, program.id, ctx.inbound.user_id)
    return program, _require_membership(program, membership, ". Join")


async def _zone(ctx: Context) -> str | None:
    """The acting member's time zone, so times are shown in theirs too."""
    return (await ctx.member()).timezone


# Member commands --------------------------------------------------------------------------


@handlers.command("coffee join", "Join virtual coffee: meet a fellow member every round", [CHANNEL])
async def join(ctx: Context) -> Reply:
    return await _join(ctx, await choose_program(ctx))


async def _join(ctx: Context, program: CoffeeProgram) -> Reply:
    text = await service.join_program(
        ctx.session,
        ctx.runtime.templates,
        program,
        ctx.inbound.user_id,
        ctx.now(),
        await _zone(ctx),
    )
    return Reply.text(text)


@handlers.command("coffee leave", "Stop taking part in virtual coffee", [CHANNEL])
async def leave(ctx: Context) -> Reply:
    program, membership = await _my_program(ctx)
    return Reply.text(service.leave_program(program, membership, ctx.now()))


@handlers.command(
    "coffee pause",
    "Take a break from virtual coffee for a few weeks",
    [
        Param(
            "weeks",
            "int",
            "How many weeks (1-12)",
            required=True,
            min_value=1,
            max_value=service.MAX_PAUSE_WEEKS,
        ),
        CHANNEL,
    ],
)
async def pause(ctx: Context) -> Reply:
    program, membership = await _my_program(ctx)
    weeks = ctx.args["weeks"]
    return Reply.text(
        service.pause_membership(program, membership, weeks, ctx.now(), await _zone(ctx))
    )


@handlers.command("coffee resume", "Come back to virtual coffee after a pause or skip", [CHANNEL])
async def resume(ctx: Context) -> Reply:
    program, membership = await _my_program(ctx)
    return Reply.text(service.resume_membership(program, membership, await _zone(ctx)))


@handlers.command(
    "coffee skip", "Sit out the next scheduled round (and any extra one before it)", [CHANNEL]
)
async def skip(ctx: Context) -> Reply:
    program, membership = await _my_program(ctx)
    return Reply.text(service.skip_next_round(program, membership, await _zone(ctx)))


@handlers.command(
    "coffee block",
    "Never be paired with someone (private: they are not told)",
    [Param("member", "user", "Who you never want to be paired with", required=True)],
)
async def block(ctx: Context) -> Reply:
    inbound = ctx.inbound
    text = await service.block_member(
        ctx.session, inbound.platform, inbound.workspace_id, inbound.user_id, ctx.args["member"]
    )
    return Reply.text(text)


@handlers.command(
    "coffee unblock",
    "Allow pairing with someone you blocked",
    [Param("member", "user", "Who to unblock", required=True)],
)
async def unblock(ctx: Context) -> Reply:
    inbound = ctx.inbound
    text = await service.unblock_member(
        ctx.session, inbound.platform, inbound.workspace_id, inbound.user_id, ctx.args["member"]
    )
    return Reply.text(text)


@handlers.command("coffee status", "Your virtual coffee programs, next rounds and last partners")
async def status(ctx: Context) -> Reply:
    inbound = ctx.inbound
    text = await service.member_status(
        ctx.session,
        ctx.runtime.templates,
        inbound.platform,
        inbound.workspace_id,
        inbound.user_id,
        await _zone(ctx),
    )
    return Reply.text(text)


# Admin commands -----------------------------------------------------------------------------


@handlers.command(
    "coffee setup",
    "Show this channel's virtual coffee settings; `create` or any setting starts a program, "
    "settings change it",
    SETUP_PARAMS,
    admin=True,
)
async def setup(ctx: Context) -> Reply:
    inbound = ctx.inbound
    if not inbound.channel_id:
        raise CommandError(
            "Run `/kindred coffee setup` in the channel where members should meet; "
            "that channel becomes the program's home."
        )
    settings = dict(ctx.args)
    create = settings.pop("create", None) is not None
    if "timezone" in settings:
        settings["timezone"] = canonical_timezone(settings["timezone"])
    if "weekday" in settings:
        settings["weekday"] = WEEKDAYS.index(settings["weekday"])
    request = service.SetupRequest(
        inbound.platform,
        inbound.workspace_id,
        inbound.channel_id,
        inbound.user_id,
        await _zone(ctx),
        settings,
    )
    # Nothing to set and no `create`: show, never create by accident.
    if not settings and not create:
        return Reply.text(await service.show_setup(ctx.runtime, ctx.session, request, ctx.now()))
    return Reply.text(
        await service.set_up(ctx.runtime, ctx.session, ctx.outbox, request, ctx.now())
    )


async def _channel_members(p: Preparation) -> service.ChannelMembers | None:
    """Platform reads happen here, before the transaction: a slow platform must not
    hold the database (SQLite has one connection) while other members wait."""
    inbound = p.inbound
    return await service.read_channel_members(
        p.runtime, inbound.platform, inbound.workspace_id, p.args.get("channel"), inbound.channel_id
    )


@handlers.command(
    "coffee preview",
    "Dry run: the groups the next round would make",
    [CHANNEL],
    admin=True,
    prepare=_channel_members,
)
async def preview(ctx: Context) -> Reply:
    program = await choose_program(ctx)
    listed = service.members_read_for(ctx.prepared, program)
    plan = await service.plan_round(ctx.session, program, program.next_round_at, listed)
    return Reply.text(service.preview_text(ctx.runtime.templates, program, plan, await _zone(ctx)))


@handlers.command(
    "coffee run-now", "Start a round right now", [CHANNEL], admin=True, prepare=_channel_members
)
async def run_now(ctx: Context) -> Reply:
    program = await choose_program(ctx)
    listed = service.members_read_for(ctx.prepared, program)
    text = await service.run_now(
        ctx.runtime, ctx.session, program, ctx.now(), listed, await _zone(ctx)
    )
    return Reply.text(text)


@handlers.command(
    "coffee stats",
    "Participants, meet rate and pairing quality per round and in total",
    [CHANNEL],
    admin=True,
)
async def stats(ctx: Context) -> Reply:
    program = await choose_program(ctx)
    text = await service.stats_text(ctx.session, ctx.runtime.templates, program, await _zone(ctx))
    return Reply.text(text)


# Buttons ------------------------------------------------------------------------------------


async def _program_from_button(ctx: Context) -> CoffeeProgram:
    try:
        program_id = int(ctx.inbound.value)
    except ValueError:
        raise CommandError("That button is out of date. Try `/kindred coffee status`.") from None
    program = await coffee.get_program(ctx.session, program_id)
    if program is None or (program.platform, program.workspace_id) != (
        ctx.inbound.platform,
        ctx.inbound.workspace_id,
    ):
        raise CommandError("That virtual coffee program no longer exists.")
    return program


async def _button_membership(ctx: Context) -> tuple[CoffeeProgram, CoffeeMembership]:
    program = await _program_from_button(ctx)
    assert program.id is not None
    membership = await coffee.get_membership(ctx.session, program.id, ctx.inbound.user_id)
    return program, _require_membership(program, membership, "; join")


@handlers.action("coffee.join")
async def join_button(ctx: Context) -> Reply:
    """Value: a program id, or "" for "the community's program" (welcome's button);
    with several programs the member picks one."""
    if ctx.inbound.value:
        return await _join(ctx, await _program_from_button(ctx))
    programs = await _community_programs(ctx)
    if not programs:
        raise CommandError(await _no_program_text(ctx))
    if len(programs) == 1:
        return await _join(ctx, programs[0])
    return service.join_choices(programs)


@handlers.action("coffee.skip")
async def skip_button(ctx: Context) -> Reply:
    program, membership = await _button_membership(ctx)
    return Reply.text(service.skip_next_round(program, membership, await _zone(ctx)))


@handlers.action("coffee.pause")
async def pause_button(ctx: Context) -> Reply:
    program, membership = await _button_membership(ctx)
    weeks = service.HOME_PAUSE_WEEKS
    return Reply.text(
        service.pause_membership(program, membership, weeks, ctx.now(), await _zone(ctx))
    )


@handlers.action("coffee.resume")
async def resume_button(ctx: Context) -> Reply:
    program, membership = await _button_membership(ctx)
    return Reply.text(service.resume_membership(program, membership, await _zone(ctx)))


async def _answer(ctx: Context, answer: str) -> Reply:
    try:
        group_id = int(ctx.inbound.value)
    except ValueError:
        raise CommandError("That button is out of date.") from None
    return await service.record_answer(
        ctx.session,
        ctx.runtime.templates,
        group_id,
        await ctx.member(),
        answer,
        ctx.inbound.message,
        ctx.now(),
    )


@handlers.action("coffee.met")
async def met(ctx: Context) -> Reply:
    return await _answer(ctx, "met")


@handlers.action("coffee.not_yet")
async def not_yet(ctx: Context) -> Reply:
    return await _answer(ctx, "not_yet")


@handlers.action("coffee.didnt_happen")
async def didnt_happen(ctx: Context) -> Reply:
    return await _answer(ctx, "didnt_happen")


# Events -------------------------------------------------------------------------------------


@handlers.event("channel_joined")
async def opt_in_on_channel_join(ctx: Context) -> None:
    """Joining a program's channel opts the member in when the program says so."""
    inbound = ctx.inbound
    if not inbound.channel_id:
        return
    program = await coffee.program_in_channel(
        ctx.session, inbound.platform, inbound.workspace_id, inbound.channel_id
    )
    member = await ctx.member()
    if program is not None:
        await service.opt_in_on_channel_join(
            ctx.session, ctx.outbox, ctx.runtime.templates, program, member, ctx.now()
        )


@handlers.event("member_left")
async def opt_out_on_leave(ctx: Context) -> None:
    """Leaving a program's channel (or the community) ends the membership."""
    inbound = ctx.inbound
    mine = await coffee.member_memberships(
        ctx.session, inbound.platform, inbound.workspace_id, inbound.user_id
    )
    service.end_memberships(mine, inbound.channel_id, ctx.now())


@handlers.event("home_opened")
async def home_section(ctx: Context) -> Reply:
    inbound = ctx.inbound
    return await service.home_section(
        ctx.session,
        ctx.runtime.templates,
        inbound.platform,
        inbound.workspace_id,
        inbound.user_id,
        await _zone(ctx),
    )
