"""`/kindred coffee …`: virtual coffee programs, one per channel (issue #3).

Members join, leave, pause, skip a round, block someone and check their status;
admins set a program up in its channel, preview the next round, run one now and
read the stats. Buttons on intros, reminders, follow-ups and the home tab call
the same code. Rounds themselves run in `bot.services.coffee`.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from bot.commands.profile import canonical_timezone
from bot.core.context import Context
from bot.core.errors import CommandError
from bot.core.feature import Feature, Tick
from bot.core.formatting import channel_link
from bot.core.mentions import member_text, mention
from bot.core.platform import Button, ButtonStyle, Message, Reply
from bot.core.registry import Handlers, Param
from bot.domain.coffee import (
    ANSWERS,
    CADENCES,
    WEEKDAYS,
    RoundFigures,
    first_round_date,
    local_time,
    percent,
    rates,
)
from bot.jobs import coffee as jobs
from bot.services.coffee import (
    answer_buttons,
    check_starters,
    manual_round_job,
    plan_round,
    platform_members,
    program_schedule,
    start_round,
    when,
)
from storage import coffee, members
from storage.coffee import CoffeeMembership, CoffeeProgram

handlers = Handlers("coffee")
feature = Feature(
    summary="Virtual coffee: meet a fellow member every round",
    handlers=handlers,
    highlights=("coffee join", "coffee status", "coffee skip"),
    tables=coffee,
    ticks=(Tick(jobs.TICK, jobs.TICK_SECONDS, jobs.tick, next_due=jobs.next_due),),
    check=check_starters,
)

CHANNEL = Param("channel", "channel", "The program's channel, when there are several")
MAX_PAUSE_WEEKS = 12
HOME_PAUSE_WEEKS = 2
STATS_ROUNDS = 8
SETUP_PARAMS = (
    Param("cadence", "choice", "How often rounds start", choices=CADENCES, positional=False),
    Param("weekday", "choice", "The day rounds start", choices=WEEKDAYS, positional=False),
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


async def _my_program(ctx: Context) -> tuple[CoffeeProgram, CoffeeMembership]:
    """The program of a member command, among the programs the member is in."""
    mine = await coffee.member_memberships(
        ctx.session, ctx.inbound.platform, ctx.inbound.workspace_id, ctx.inbound.user_id
    )
    program = await choose_program(ctx, [program for program, m in mine if m.active])
    assert program.id is not None
    membership = await coffee.get_membership(ctx.session, program.id, ctx.inbound.user_id)
    if membership is None or not membership.active:
        raise CommandError(
            f"You're not in the virtual coffee of {channel_link(program)}. "
            "Join with `/kindred coffee join`."
        )
    return program, membership


async def _member_zone(ctx: Context) -> str | None:
    return (await ctx.member()).timezone


async def _when_for(ctx: Context, program: CoffeeProgram, moment: datetime) -> str:
    """A time in the program's zone, plus the member's own when it differs."""
    text = f"{when(moment, program.timezone)} ({program.timezone})"
    zone = await _member_zone(ctx)
    if zone and zone != program.timezone:
        text += f", {when(moment, zone)} your time"
    return text


# Member commands --------------------------------------------------------------------------


@handlers.command("coffee join", "Join virtual coffee: meet a fellow member every round", [CHANNEL])
async def join(ctx: Context) -> Reply:
    return await _join(ctx, await choose_program(ctx))


async def _join(ctx: Context, program: CoffeeProgram, *, automatic: bool = False) -> Reply:
    assert program.id is not None
    _, changed = await coffee.join(ctx.session, program.id, ctx.inbound.user_id, ctx.now())
    next_round = await _when_for(ctx, program, program.next_round_at)
    if not changed:
        return Reply.text(
            f"You're already in the virtual coffee of {channel_link(program)}. "
            f"The next round starts {next_round}."
        )
    return Reply.text(await _joined_text(ctx, program, next_round, automatic=automatic))


async def _joined_text(
    ctx: Context, program: CoffeeProgram, next_round: str, *, automatic: bool
) -> str:
    return ctx.runtime.templates.render(
        "coffee/joined",
        automatic=automatic,
        channel=channel_link(program),
        schedule=program_schedule(program).describe(),
        next_round=next_round,
        has_timezone=bool(await _member_zone(ctx)),
    )


@handlers.command("coffee leave", "Stop taking part in virtual coffee", [CHANNEL])
async def leave(ctx: Context) -> Reply:
    program, membership = await _my_program(ctx)
    membership.active = False
    membership.left_at = ctx.now()
    membership.skip_next = False
    return Reply.text(
        f"You've left the virtual coffee of {channel_link(program)}. Your past matches are "
        "remembered, so if you come back (`/kindred coffee join`) you'll meet new people."
    )


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
            max_value=MAX_PAUSE_WEEKS,
        ),
        CHANNEL,
    ],
)
async def pause(ctx: Context) -> Reply:
    program, membership = await _my_program(ctx)
    return Reply.text(await _pause(ctx, program, membership, ctx.args["weeks"]))


async def _pause(
    ctx: Context, program: CoffeeProgram, membership: CoffeeMembership, weeks: int
) -> str:
    membership.paused = True
    membership.pause_reason = "member"
    membership.resume_at = ctx.now() + timedelta(weeks=weeks)
    membership.skip_next = False
    back = await _when_for(ctx, program, membership.resume_at)
    plural = "" if weeks == 1 else "s"
    return (
        f"Paused for {weeks} week{plural} in {channel_link(program)}. You're back in on "
        f"{back}, and I'll message you then. Back sooner? `/kindred coffee resume`."
    )


@handlers.command("coffee resume", "Come back to virtual coffee after a pause or skip", [CHANNEL])
async def resume(ctx: Context) -> Reply:
    program, membership = await _my_program(ctx)
    return Reply.text(await _resume(ctx, program, membership))


async def _resume(ctx: Context, program: CoffeeProgram, membership: CoffeeMembership) -> str:
    next_round = await _when_for(ctx, program, program.next_round_at)
    if not membership.paused and not membership.skip_next:
        return (
            f"You're not paused in {channel_link(program)}: you're in the next round, {next_round}."
        )
    coffee.resume(membership)
    membership.skip_next = False
    return f"Welcome back! You're in the next round of {channel_link(program)}, {next_round}."


@handlers.command("coffee skip", "Sit out the next round only", [CHANNEL])
async def skip(ctx: Context) -> Reply:
    program, membership = await _my_program(ctx)
    return Reply.text(await _skip(ctx, program, membership))


async def _skip(ctx: Context, program: CoffeeProgram, membership: CoffeeMembership) -> str:
    if membership.paused:
        raise CommandError(
            f"You're paused in {channel_link(program)} already; `/kindred coffee resume` "
            "brings you back."
        )
    membership.skip_next = True
    next_round = await _when_for(ctx, program, program.next_round_at)
    return (
        f"You'll sit out the round of {next_round} in {channel_link(program)} and be back for "
        "the one after. Changed your mind? `/kindred coffee resume`."
    )


@handlers.command(
    "coffee block",
    "Never be paired with someone (private: they are not told)",
    [Param("member", "user", "Who you never want to be paired with", required=True)],
)
async def block(ctx: Context) -> Reply:
    other = ctx.args["member"]
    if other == ctx.inbound.user_id:
        raise CommandError("You can't block yourself. Mention someone else, like @ana.")
    person = await ctx.member(other)
    added = await coffee.add_block(
        ctx.session, ctx.inbound.platform, ctx.inbound.workspace_id, ctx.inbound.user_id, other
    )
    already = "" if added else " (you had already asked)"
    return Reply.text(
        f"Done{already}: you and {member_text(person.display_name)} will never be paired in "
        "any virtual coffee program here. Nobody is told, and only you can see this. Undo it with "
        f"`/kindred coffee unblock {mention(other)}`."
    )


@handlers.command(
    "coffee unblock",
    "Allow pairing with someone you blocked",
    [Param("member", "user", "Who to unblock", required=True)],
)
async def unblock(ctx: Context) -> Reply:
    other = ctx.args["member"]
    person = await ctx.member(other)
    removed = await coffee.remove_block(
        ctx.session, ctx.inbound.platform, ctx.inbound.workspace_id, ctx.inbound.user_id, other
    )
    if not removed:
        return Reply.text(
            f"You hadn't blocked {member_text(person.display_name)}; nothing to undo."
        )
    return Reply.text(f"Unblocked: you and {member_text(person.display_name)} may be paired again.")


@handlers.command("coffee status", "Your virtual coffee programs, next rounds and last partners")
async def status(ctx: Context) -> Reply:
    inbound = ctx.inbound
    mine = await coffee.member_memberships(
        ctx.session, inbound.platform, inbound.workspace_id, inbound.user_id
    )
    zone = await _member_zone(ctx)
    shown = []
    for program, membership in mine:
        if not membership.active:
            continue
        assert program.id is not None
        partners = await coffee.last_partners(ctx.session, program.id, inbound.user_id)
        people = await members.members_by_user_ids(
            ctx.session,
            inbound.platform,
            inbound.workspace_id,
            [user for _, users in partners for user in users],
        )
        shown.append(
            {
                "channel": channel_link(program),
                "state": _state(membership, program),
                "next_round": f"{when(program.next_round_at, program.timezone)} "
                f"({program.timezone})",
                "next_round_yours": when(program.next_round_at, zone)
                if zone and zone != program.timezone
                else None,
                "last_partners": [
                    f"{local_time(program.timezone, occurrence, '%d %b')}: "
                    + ", ".join(people[u].display_name if u in people else u for u in users)
                    for occurrence, users in partners
                ],
            }
        )
    blocked = [
        blocked_id
        for user_id, blocked_id in await coffee.community_blocks(
            ctx.session, inbound.platform, inbound.workspace_id
        )
        if user_id == inbound.user_id
    ]
    blocked_people = await members.members_by_user_ids(
        ctx.session, inbound.platform, inbound.workspace_id, blocked
    )
    joined = {program.id for program, membership in mine if membership.active}
    available = [p for p in await _community_programs(ctx) if p.id not in joined]
    text = ctx.runtime.templates.render(
        "coffee/status",
        programs=shown,
        available=[channel_link(program) for program in available],
        blocked=[blocked_people[u].display_name for u in blocked if u in blocked_people],
    )
    return Reply.text(text)


def _state(membership: CoffeeMembership, program: CoffeeProgram) -> str:
    if membership.paused and membership.resume_at is not None:
        return f"paused until {when(membership.resume_at, program.timezone)}"
    if membership.paused:
        return "paused (`/kindred coffee resume` to come back)"
    if membership.skip_next:
        return "skipping the next round"
    return "in"


# Admin commands -----------------------------------------------------------------------------


@handlers.command(
    "coffee setup",
    "Start or change the virtual coffee program of this channel",
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
    program = await coffee.program_in_channel(
        ctx.session, inbound.platform, inbound.workspace_id, inbound.channel_id
    )
    created = program is None
    if program is None:
        timezone = (await _member_zone(ctx)) or ctx.runtime.settings.timezone
        program = CoffeeProgram(
            platform=inbound.platform,
            workspace_id=inbound.workspace_id,
            channel_id=inbound.channel_id,
            timezone=timezone,
            anchor_date=ctx.now().date(),
            next_round_at=ctx.now(),
            created_by=inbound.user_id,
        )
    before = program_schedule(program)
    args = dict(ctx.args)
    if "timezone" in args:
        args["timezone"] = canonical_timezone(args["timezone"])
    if "weekday" in args:
        args["weekday"] = WEEKDAYS.index(args["weekday"])
    for name, value in args.items():
        setattr(program, name, value)
    if created or program_schedule(program) != before:
        program.anchor_date = first_round_date(
            program.weekday, program.hour, program.timezone, ctx.now()
        )
        program.next_round_at = program_schedule(program).next_after(ctx.now())
    program.updated_at = ctx.now()
    ctx.session.add(program)
    await ctx.session.flush()
    assert program.id is not None
    schedule = program_schedule(program)
    next_round = await _when_for(ctx, program, program.next_round_at)
    if created:
        announcement = ctx.runtime.templates.render(
            "coffee/announce",
            channel=channel_link(program),
            schedule=schedule.describe(),
            next_round=f"{when(program.next_round_at, program.timezone)} ({program.timezone})",
            auto_join=program.auto_join,
        )
        button = Button("Join virtual coffee", "coffee.join", str(program.id), ButtonStyle.PRIMARY)
        await ctx.outbox.post(
            program.channel_id,
            Message(announcement, buttons=(button,)),
            key=f"coffee:announce:{program.id}",
        )
    opted_in = len(await coffee.active_memberships(ctx.session, program.id))
    text = ctx.runtime.templates.render(
        "coffee/program",
        channel=channel_link(program),
        created=created,
        schedule=schedule.describe(),
        next_round=next_round,
        group_size=program.group_size,
        auto_join=program.auto_join,
        repeat_window=program.repeat_window,
        max_ignored=program.max_ignored,
        members=opted_in,
    )
    return Reply.text(text)


@handlers.command(
    "coffee preview", "Dry run: the groups the next round would make", [CHANNEL], admin=True
)
async def preview(ctx: Context) -> Reply:
    program = await choose_program(ctx)
    occurrence = program.next_round_at
    listed = await platform_members(ctx.runtime, program)
    plan = await plan_round(ctx.session, program, occurrence, listed)
    names = {user_id: member.display_name for user_id, member in plan.roster.members.items()}
    quality = plan.result.quality
    text = ctx.runtime.templates.render(
        "coffee/preview",
        channel=channel_link(program),
        next_round=await _when_for(ctx, program, occurrence),
        groups=[[names.get(user, user) for user in group] for group in plan.result.groups],
        participants=quality.participants,
        repeat_rate=percent(quality.repeat_rate if quality.total_pairs else None),
        cross_company=percent(quality.cross_company_rate if quality.total_pairs else None),
        timezone_fit=percent(quality.timezone_fit if quality.total_pairs else None),
        in_trio=len(quality.in_trio),
        left_out=len(quality.left_out),
        solver_ms=f"{quality.solver_ms:.1f}",
        paused=len(plan.roster.paused),
        skipping=len(plan.roster.skipping),
        unavailable=len(plan.roster.unavailable),
    )
    return Reply.text(text)


@handlers.command("coffee run-now", "Start a round right now", [CHANNEL], admin=True)
async def run_now(ctx: Context) -> Reply:
    program = await choose_program(ctx)
    assert program.id is not None
    # Claimed per minute: a double click (or two admins at once) makes one round.
    occurrence = ctx.now().replace(second=0, microsecond=0)
    job = manual_round_job(program.id)
    already = CommandError(
        f"A round of {channel_link(program)} started at {when(occurrence, program.timezone)} "
        "already; its intros are on their way."
    )
    if not await ctx.runtime.claims.claim_in(ctx.session, job, occurrence):
        raise already
    if await coffee.round_at(ctx.session, program.id, occurrence) is not None:
        raise already
    listed = await platform_members(ctx.runtime, program)
    round_ = await start_round(ctx.runtime, ctx.session, program, occurrence, listed, manual=True)
    if round_.groups == 0:
        return Reply.text(
            f"Round started in {channel_link(program)}, but with {round_.participants} eligible "
            "member(s) there was nobody to pair. Members join with `/kindred coffee join`."
        )
    return Reply.text(
        f"Round started in {channel_link(program)}: {round_.participants} members in "
        f"{round_.groups} groups (solved in {round_.solver_ms:.1f} ms). Intros are on their way; "
        f"the scheduled round after it is {await _when_for(ctx, program, program.next_round_at)}."
    )


@handlers.command(
    "coffee stats",
    "Participants, meet rate and pairing quality per round and in total",
    [CHANNEL],
    admin=True,
)
async def stats(ctx: Context) -> Reply:
    program = await choose_program(ctx)
    assert program.id is not None
    rounds = await coffee.recent_rounds(ctx.session, program.id, limit=None)
    outcomes = await coffee.round_outcomes(ctx.session, program.id)
    figures = []
    for round_ in rounds:
        assert round_.id is not None
        outcome = outcomes.get(round_.id, coffee.GroupOutcome(0, 0, 0))
        figures.append(
            RoundFigures(
                occurrence=round_.occurrence,
                participants=round_.participants,
                groups=round_.groups,
                met_groups=outcome.met,
                answered_groups=outcome.answered,
                asked=round_.followup_sent_at is not None,
                total_pairs=round_.total_pairs,
                repeat_pairs=round_.repeat_pairs,
                any_repeat_pairs=round_.any_repeat_pairs,
                same_company_pairs=round_.same_company_pairs,
                low_overlap_pairs=round_.low_overlap_pairs,
                in_trio=len(round_.in_trio),
                left_out=len(round_.left_out),
                solver_ms=round_.solver_ms,
            )
        )
    total = rates(figures)
    rows = []
    for round_, figure in zip(rounds[:STATS_ROUNDS], figures, strict=False):
        per_round = rates([figure])
        met = (
            f"{figure.met_groups}/{figure.groups} ({figure.answered_groups} answered)"
            if figure.asked
            else "not asked yet"
        )
        rows.append(
            {
                "date": when(figure.occurrence, program.timezone),
                "manual": round_.manual,
                "participants": figure.participants,
                "groups": figure.groups,
                "met": met if figure.groups else "–",
                "repeat_rate": percent(per_round.repeat_rate),
                "cross_company": percent(per_round.cross_company_rate),
                "timezone_fit": percent(per_round.timezone_fit),
                "in_trio": figure.in_trio,
                "left_out": figure.left_out,
                "solver_ms": f"{figure.solver_ms:.1f}",
            }
        )
    solver_times = [figure.solver_ms for figure in figures]
    totals = {
        "rounds": len(figures),
        "participants": sum(figure.participants for figure in figures),
        "members": await coffee.distinct_participants(ctx.session, program.id),
        "groups": sum(figure.groups for figure in figures),
        "meet_rate": percent(total.meet_rate),
        "repeat_rate": percent(total.repeat_rate),
        "ever_met_rate": percent(total.ever_met_rate),
        "cross_company": percent(total.cross_company_rate),
        "timezone_fit": percent(total.timezone_fit),
        "in_trio": sum(figure.in_trio for figure in figures),
        "left_out": sum(figure.left_out for figure in figures),
        "solver_ms": f"{sum(solver_times) / len(solver_times):.1f}" if solver_times else "–",
        "solver_max_ms": f"{max(solver_times):.1f}" if solver_times else "–",
    }
    text = ctx.runtime.templates.render(
        "coffee/stats",
        channel=channel_link(program),
        next_round=await _when_for(ctx, program, program.next_round_at),
        rounds=rows,
        totals=totals,
    )
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
    if membership is None or not membership.active:
        raise CommandError(
            f"You're not in the virtual coffee of {channel_link(program)}; "
            "join with `/kindred coffee join`."
        )
    return program, membership


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
    lines = ["Which virtual coffee would you like to join?"]
    buttons = []
    for number, program in enumerate(programs, start=1):
        lines.append(f"{number}. {channel_link(program)}: {program_schedule(program).describe()}")
        buttons.append(Button(f"Join {number}", "coffee.join", str(program.id)))
    return Reply.text("\n".join(lines), *buttons)


@handlers.action("coffee.skip")
async def skip_button(ctx: Context) -> Reply:
    program, membership = await _button_membership(ctx)
    return Reply.text(await _skip(ctx, program, membership))


@handlers.action("coffee.pause")
async def pause_button(ctx: Context) -> Reply:
    program, membership = await _button_membership(ctx)
    return Reply.text(await _pause(ctx, program, membership, HOME_PAUSE_WEEKS))


@handlers.action("coffee.resume")
async def resume_button(ctx: Context) -> Reply:
    program, membership = await _button_membership(ctx)
    return Reply.text(await _resume(ctx, program, membership))


async def _answer(ctx: Context, answer: str) -> Reply:
    """Record a member's "Did you meet?" answer (the last one counts)."""
    try:
        group_id = int(ctx.inbound.value)
    except ValueError:
        raise CommandError("That button is out of date.") from None
    found = await coffee.group_with_members(ctx.session, group_id)
    if found is None:
        raise CommandError("That coffee round no longer exists.")
    group, group_members = found
    entry = next((m for m in group_members if m.user_id == ctx.inbound.user_id), None)
    if entry is None:
        return Reply.text("This button belongs to another coffee group.")
    entry.answer = answer
    entry.answered_at = ctx.now()
    membership = await coffee.get_membership(ctx.session, group.program_id, ctx.inbound.user_id)
    if membership is not None:
        membership.ignored_followups = 0
    thanks = Message(f"Thanks, noted: {ANSWERS[answer]}.")
    clicked = ctx.inbound.message
    if clicked is not None and clicked.message_id == await coffee.intro_message_id(
        ctx.session, group
    ):
        # The intro keeps its buttons and text: the group still needs who's who.
        return Reply(message=thanks)
    member = await ctx.member()
    text = ctx.runtime.templates.render("coffee/answered", answer=answer, name=member.display_name)
    # "Not yet" keeps a Met button so the member can report the meeting later.
    buttons = answer_buttons(group.id)[:1] if answer == "not_yet" else ()
    return Reply(message=thanks, update_original=Message(text, buttons=buttons))


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
    if program is None or not program.auto_join or member.is_bot:
        return
    assert program.id is not None
    existing = await coffee.get_membership(ctx.session, program.id, inbound.user_id)
    if existing is not None and existing.active:
        return
    membership, _ = await coffee.join(ctx.session, program.id, inbound.user_id, ctx.now())
    next_round = await _when_for(ctx, program, program.next_round_at)
    text = await _joined_text(ctx, program, next_round, automatic=True)
    await ctx.outbox.dm(
        inbound.user_id,
        Message(text),
        key=f"coffee:auto-joined:{membership.id}:{membership.joined_at.isoformat()}",
    )


@handlers.event("member_left")
async def opt_out_on_leave(ctx: Context) -> None:
    """Leaving a program's channel (or the community) ends the membership; the
    history stays so a comeback still avoids repeats."""
    inbound = ctx.inbound
    mine = await coffee.member_memberships(
        ctx.session, inbound.platform, inbound.workspace_id, inbound.user_id
    )
    for program, membership in mine:
        if inbound.channel_id and program.channel_id != inbound.channel_id:
            continue
        if membership.active:
            membership.active = False
            membership.left_at = ctx.now()


@handlers.event("home_opened")
async def home_section(ctx: Context) -> Reply:
    inbound = ctx.inbound
    mine = [
        (program, membership)
        for program, membership in await coffee.member_memberships(
            ctx.session, inbound.platform, inbound.workspace_id, inbound.user_id
        )
        if membership.active
    ]
    zone = await _member_zone(ctx)
    programs = []
    buttons: list[Button] = []
    for number, (program, membership) in enumerate(mine, start=1):
        suffix = f" ({number})" if len(mine) > 1 else ""
        programs.append(
            {
                "channel": channel_link(program),
                "state": _state(membership, program),
                "next_round": when(program.next_round_at, zone or program.timezone),
            }
        )
        value = str(program.id)
        if membership.paused or membership.skip_next:
            buttons.append(Button(f"Resume{suffix}", "coffee.resume", value, ButtonStyle.PRIMARY))
        else:
            buttons.append(Button(f"Skip next round{suffix}", "coffee.skip", value))
            buttons.append(Button(f"Pause {HOME_PAUSE_WEEKS} weeks{suffix}", "coffee.pause", value))
    available = not mine and bool(await _community_programs(ctx))
    if available:
        # "" lets the member pick when the community has several programs.
        buttons = [Button("Join virtual coffee", "coffee.join", "", ButtonStyle.PRIMARY)]
    text = ctx.runtime.templates.render("coffee/home", programs=programs, available=available)
    return Reply.text(text, *buttons)
