"""Mastermind groups (#14): a cycle set up by an organiser, applications, groups
formed once by the engine's groups solver under hard rules, each group's sessions
(agenda with the hot seat a day before, the commitment prompt after, a look at
the group's health a day after), backfilling a leaver's seat, end-of-cycle
ratings, and the figures the stats command and the health report read.

Every message goes through the outbox with a key; forming is claimed once per
cycle inside the organiser's transaction; each session step is claimed by the
tick (`bot.jobs.mastermind`). Member text (challenges, updates, commitments) is
printed through templates, which make it mention-safe.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.context import Context
from bot.core.errors import CommandError
from bot.core.figures import Figures, MemberAction, Period, Stored
from bot.core.formatting import channel_link
from bot.core.mentions import member_text, mention
from bot.core.outbox import Outbox
from bot.core.platform import Button, ButtonStyle, Identity, Message, Reply
from bot.core.templates import Templates, Trusted
from bot.domain.mastermind import (
    DEFAULT_SESSION_MINUTES,
    DEFAULT_SESSIONS,
    DEFAULT_SIZE,
    FIRST_SESSION_NOTICE,
    LOW_SHARE,
    SILENT_FOR,
    SILENT_MEMBERS,
    ApplicationStatus,
    Cadence,
    CycleState,
    EventKind,
    FormingPlan,
    FormingRules,
    MastermindInputError,
    SessionTally,
    alive_at_week_eight,
    choose_backfill,
    clean_challenge,
    clean_comment,
    clean_commitment,
    clean_name,
    clean_update,
    event_at,
    form_groups,
    forming_history,
    local_weekly,
    local_when,
    low_two_running,
    next_event,
    next_hot_seat,
    next_weekly,
    parse_deadline,
    parse_session_minutes,
    parse_size,
    parse_slots,
    parse_tags,
    percent,
    reference_monday,
    session_times,
    share,
    silent_members,
    to_utc_week,
)
from bot.domain.matching import Applicant
from bot.domain.profile import SENIORITIES
from storage import coffee as coffee_store
from storage import mastermind as store
from storage.mastermind import (
    MastermindApplication,
    MastermindCycle,
    MastermindEntry,
    MastermindGroup,
    MastermindSession,
)


def form_job(cycle_id: int) -> str:
    return f"mastermind.form:{cycle_id}"


def step_job(kind: EventKind, session_id: int) -> str:
    return f"mastermind.{kind}:{session_id}"


def refused(error: MastermindInputError) -> CommandError:
    return CommandError(str(error))


def zone_named(name: str | None, fallback: str) -> ZoneInfo:
    return ZoneInfo(name or fallback)


def rules_of(cycle: MastermindCycle) -> FormingRules:
    return FormingRules(
        min_size=cycle.min_size,
        max_size=cycle.max_size,
        session_minutes=cycle.session_minutes,
        allow_colleagues=cycle.allow_colleagues,
        seed=cycle.id or 0,
    )


def _key_part(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]


# --- which cycle -------------------------------------------------------------------


async def current_cycle(ctx: Context, *, lock: bool = False) -> MastermindCycle:
    cycle = await store.current_cycle(
        ctx.session, ctx.inbound.platform, ctx.inbound.workspace_id, lock=lock
    )
    if cycle is None:
        raise CommandError(
            "No mastermind cycle is running here. An organiser starts one with "
            '`/kindred mastermind setup name="…" deadline=YYYY-MM-DD`.'
        )
    return cycle


# --- setup -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SetupChoices:
    name: str
    deadline: str
    size: str | None = None
    cadence: str | None = None
    length: str | None = None
    sessions: int | None = None
    allow_colleagues: bool = False
    channel_id: str | None = None


async def set_up(ctx: Context, choices: SetupChoices) -> str:
    """Start a cycle taking applications; one cycle at a time per community."""
    now = ctx.now()
    organiser = await ctx.member()
    zone = zone_named(organiser.timezone, ctx.runtime.settings.timezone)
    try:
        name = clean_name(choices.name)
        deadline = parse_deadline(choices.deadline, zone, now)
        low, high = parse_size(choices.size) if choices.size else DEFAULT_SIZE
        minutes = (
            parse_session_minutes(choices.length) if choices.length else DEFAULT_SESSION_MINUTES
        )
    except MastermindInputError as error:
        raise refused(error) from None
    running = await store.current_cycle(ctx.session, ctx.inbound.platform, ctx.inbound.workspace_id)
    if running is not None:
        raise CommandError(
            f"The cycle “{running.name}” is still {running.state}; "
            "one mastermind cycle runs at a time."
        )
    cycle = MastermindCycle(
        platform=ctx.inbound.platform,
        workspace_id=ctx.inbound.workspace_id,
        channel_id=choices.channel_id or ctx.inbound.channel_id,
        name=name,
        organiser_user_id=ctx.inbound.user_id,
        timezone=str(zone),
        deadline=deadline,
        min_size=low,
        max_size=high,
        cadence=Cadence(choices.cadence or Cadence.WEEKLY),
        session_minutes=minutes,
        session_count=choices.sessions or DEFAULT_SESSIONS,
        allow_colleagues=choices.allow_colleagues,
        created_at=now,
    )
    ctx.session.add(cycle)
    await ctx.session.flush()
    return ctx.runtime.templates.render(
        "mastermind/setup",
        name=cycle.name,
        deadline=Trusted(local_when(deadline, zone)),
        timezone=cycle.timezone,
        low=low,
        high=high,
        cadence=Trusted(Cadence(cycle.cadence).words),
        minutes=minutes,
        sessions=cycle.session_count,
        colleagues=cycle.allow_colleagues,
        channel=channel_link(cycle.channel_id) if cycle.channel_id else None,
    )


# --- applying ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ApplicationForm:
    challenge: str
    tags: str
    slots: str
    # One of the profile's seniorities; None: the member's profile's.
    seniority: str | None = None


async def open_cycle(ctx: Context) -> MastermindCycle:
    """The cycle taking applications now (refused when there is none)."""
    cycle = await current_cycle(ctx)
    if cycle.state != CycleState.OPEN or ctx.now() >= cycle.deadline:
        zone = zone_named((await ctx.member()).timezone, ctx.runtime.settings.timezone)
        raise CommandError(
            f"Applications for “{cycle.name}” closed on {local_when(cycle.deadline, zone)}."
        )
    return cycle


async def apply(ctx: Context, form: ApplicationForm) -> str:
    cycle = await open_cycle(ctx)
    now = ctx.now()
    member = await ctx.member()
    zone = zone_named(member.timezone, ctx.runtime.settings.timezone)
    try:
        challenge = clean_challenge(form.challenge)
        tags = parse_tags(form.tags)
        slots = parse_slots(form.slots)
    except MastermindInputError as error:
        raise refused(error) from None
    availability = to_utc_week(slots, zone, reference_monday(cycle.deadline, zone))
    assert cycle.id is not None
    application = await store.application_of(ctx.session, cycle.id, ctx.inbound.user_id)
    if application is not None and application.status != ApplicationStatus.WAITING:
        raise CommandError(f"You already have a seat in “{cycle.name}”.")
    if application is None:
        application = MastermindApplication(
            cycle_id=cycle.id,
            user_id=ctx.inbound.user_id,
            challenge=challenge,
            slots_text="",
            timezone=str(zone),
        )
    application.challenge = challenge
    application.tags = list(tags)
    application.company = member.company
    seniority = (form.seniority or member.seniority or "").strip().lower() or None
    if seniority is not None and seniority not in SENIORITIES:
        raise CommandError(
            f"Seniority is one of {', '.join(SENIORITIES)}, not `{member_text(seniority)}`."
        )
    application.seniority = seniority
    application.seniority_level = None if seniority is None else SENIORITIES.index(seniority)
    application.availability = [[start, end] for start, end in availability]
    application.slots_text = ", ".join(slot.describe() for slot in slots)
    application.timezone = str(zone)
    application.applied_at = now
    ctx.session.add(application)
    await ctx.session.flush()
    return ctx.runtime.templates.render(
        "mastermind/applied",
        name=cycle.name,
        challenge=challenge,
        tags=", ".join(tags),
        slots=application.slots_text,
        timezone=application.timezone,
        deadline=Trusted(local_when(cycle.deadline, zone)),
        company=member.company,
    )


def same_company_key(company: str | None) -> str | None:
    """`Acme`, ` acme ` and `ACME` are one company for the same-company rule."""
    key = " ".join((company or "").split()).casefold()
    return key or None


def applicant_of(application: MastermindApplication) -> Applicant:
    return Applicant(
        member_id=application.user_id,
        company=same_company_key(application.company),
        tags=frozenset(application.tags),
        seniority=application.seniority_level,
        availability=tuple((start, end) for start, end in application.availability),
    )


# --- preview and forming -----------------------------------------------------------


async def plan_for(session: AsyncSession, cycle: MastermindCycle) -> FormingPlan:
    """The groups the cycle's waiting applicants would form now (preview and form
    make the same call, with the cycle's id as the solver's seed)."""
    assert cycle.id is not None
    waiting = await store.applications(session, cycle.id, {ApplicationStatus.WAITING})
    blocks = await coffee_store.community_blocks(session, cycle.platform, cycle.workspace_id)
    past = await store.past_groups(session, cycle.platform, cycle.workspace_id, cycle.id)
    history = forming_history((group.members, group.continuing) for group in past)
    return form_groups(
        [applicant_of(a) for a in waiting],
        rules_of(cycle),
        blocked_pairs=blocks,
        past_groups=history,
    )


def _companies(companies: Sequence[tuple[str, int]], size: int, spelled: dict[str, str]) -> str:
    """The company mix as members spelled their companies (`Acme ×2, Globex`)."""
    known = sum(count for _, count in companies)
    parts = [
        spelled.get(key, key) if count == 1 else f"{spelled.get(key, key)} ×{count}"
        for key, count in companies
    ]
    if size > known:
        parts.append(f"{size - known} not given")
    return ", ".join(parts)


async def preview(ctx: Context) -> str:
    cycle = await current_cycle(ctx)
    if cycle.state != CycleState.OPEN:
        raise CommandError(f"“{cycle.name}” is already formed; see `/kindred mastermind stats`.")
    plan = await plan_for(ctx.session, cycle)
    zone = zone_named(cycle.timezone, ctx.runtime.settings.timezone)
    start = next_weekly(0, ctx.now() + FIRST_SESSION_NOTICE)
    assert cycle.id is not None
    applications = await store.applications(ctx.session, cycle.id)
    challenges = {a.user_id: a.challenge for a in applications}
    spelled = {
        key: a.company for a in applications if a.company and (key := same_company_key(a.company))
    }
    return ctx.runtime.templates.render(
        "mastermind/preview",
        name=cycle.name,
        groups=[
            {
                "number": number,
                "members": Trusted(", ".join(mention(m) for m in group.members)),
                "challenges": [challenges.get(m, "") for m in group.members],
                "shared": ", ".join(group.shared_tags),
                "slot": Trusted(local_weekly(next_weekly(group.slot[0], start), zone)),
                "companies": _companies(group.companies, len(group.members), spelled),
            }
            for number, group in enumerate(plan.groups, 1)
        ],
        left_out=[
            {"who": Trusted(mention(member)), "reason": reason} for member, reason in plan.left_out
        ],
        timezone=cycle.timezone,
    )


async def form(ctx: Context) -> str:
    """Form the cycle's groups and queue their intros, exactly once: the claim and
    the cycle's state change commit with the groups, so a double click, a second
    replica or a retry after a crash finds them formed."""
    cycle = await current_cycle(ctx, lock=True)
    assert cycle.id is not None
    if cycle.state != CycleState.OPEN or not await ctx.runtime.claims.claim_in(
        ctx.session, form_job(cycle.id), cycle.created_at
    ):
        raise CommandError(f"“{cycle.name}” is already formed; see `/kindred mastermind stats`.")
    now = ctx.now()
    plan = await plan_for(ctx.session, cycle)
    if not plan.groups:
        waiting = len(plan.left_out)
        raise CommandError(
            f"No group can form yet: {waiting} applicant{'' if waiting == 1 else 's'}, and a "
            f"group needs {cycle.min_size}-{cycle.max_size} people from different companies "
            "with a weekly hour in common. `/kindred mastermind preview` shows why."
        )
    if not await store.mark_formed(ctx.session, cycle.id, now):
        raise CommandError(f"“{cycle.name}” is already formed.")
    cycle.state, cycle.formed_at = CycleState.RUNNING, now
    by_user = {a.user_id: a for a in await store.applications(ctx.session, cycle.id)}
    outbox = ctx.outbox
    templates = ctx.runtime.templates
    for number, planned in enumerate(plan.groups, 1):
        first = next_weekly(planned.slot[0], now + FIRST_SESSION_NOTICE)
        group = MastermindGroup(
            cycle_id=cycle.id,
            number=number,
            shared_tags=list(planned.shared_tags),
            slot_start=planned.slot[0],
            slot_end=planned.slot[1],
            first_session_at=first,
            created_at=now,
        )
        ctx.session.add(group)
        await ctx.session.flush()
        assert group.id is not None
        for seat, user_id in enumerate(planned.members):
            application = by_user[user_id]
            application.status = ApplicationStatus.GROUPED
            application.group_id = group.id
            # Seating order is the hot seat's order; a microsecond apart keeps it stable.
            application.seated_at = now + timedelta(microseconds=seat)
            application.waiting_reason = None
        for index, starts_at in enumerate(
            session_times(first, Cadence(cycle.cadence), cycle.session_count), 1
        ):
            ctx.session.add(
                MastermindSession(
                    group_id=group.id,
                    number=index,
                    starts_at=starts_at,
                    next_event=EventKind.AGENDA,
                    next_event_at=event_at(EventKind.AGENDA, starts_at, cycle.session_minutes),
                )
            )
        await ctx.session.flush()
        await open_conversation(
            outbox, templates, cycle, group, key=f"mastermind.intro:{group.id}", session=ctx.session
        )
    for user_id, reason in plan.left_out:
        application = by_user[user_id]
        application.waiting_reason = reason[:200]
        await outbox.dm(
            user_id,
            Message(templates.render("mastermind/waiting", name=cycle.name)),
            key=f"mastermind.waiting:{cycle.id}:{user_id}",
        )
    if cycle.channel_id:
        await outbox.post(
            cycle.channel_id,
            Message(
                templates.render(
                    "mastermind/formed",
                    name=cycle.name,
                    groups=len(plan.groups),
                    grouped=sum(len(g.members) for g in plan.groups),
                )
            ),
            key=f"mastermind.formed:{cycle.id}",
        )
    grouped = sum(len(g.members) for g in plan.groups)
    return (
        f"Formed {len(plan.groups)} group{'' if len(plan.groups) == 1 else 's'} "
        f"({grouped} members) for “{cycle.name}”; their intros are on the way. "
        f"{len(plan.left_out)} on the waiting list for a seat."
    )


async def open_conversation(
    outbox: Outbox,
    templates: Templates,
    cycle: MastermindCycle,
    group: MastermindGroup,
    *,
    key: str,
    session: AsyncSession,
    newcomer: str | None = None,
) -> None:
    """Open the group's conversation with its intro: members, the shared challenge,
    the common slot in each member's local time, the ground rules. A backfill opens
    a new one with the newcomer welcomed."""
    assert group.id is not None
    seated = await store.seated(session, group.id)
    sessions = await store.sessions_of(session, group.id)
    upcoming = [s for s in sessions if s.next_event is not None]
    first = upcoming[0].starts_at if upcoming else group.first_session_at
    people = []
    for application in seated:
        zone = ZoneInfo(application.timezone)
        people.append(
            {
                "who": Trusted(mention(application.user_id)),
                "challenge": application.challenge,
                "when": Trusted(f"{local_when(first, zone)} ({application.timezone})"),
            }
        )
    text = templates.render(
        "mastermind/intro",
        name=cycle.name,
        number=group.number,
        shared=", ".join(group.shared_tags),
        members=people,
        cadence=Trusted(Cadence(cycle.cadence).words),
        minutes=cycle.session_minutes,
        sessions=len(upcoming),
        newcomer=Trusted(mention(newcomer)) if newcomer else None,
    )
    user_ids = tuple(a.user_id for a in seated)
    group.conversation_outbox_id = await outbox.group(
        user_ids,
        Message(text, mentions=user_ids),
        channel_id=cycle.channel_id,
        title=f"Mastermind {cycle.name} #{group.number}",
        key=key,
    )


async def post_to_group(
    outbox: Outbox, group: MastermindGroup, message: Message, *, key: str
) -> int:
    """Post in the group's conversation: where its intro landed, or (not delivered
    yet) as a reply waiting for the intro."""
    assert group.conversation_outbox_id is not None
    channel = await store.conversation_channel(outbox.session, group.conversation_outbox_id)
    if channel is None:
        return await outbox.thread_reply(group.conversation_outbox_id, message, key=key)
    return await outbox.post(channel, message, key=key)


# --- the session steps (the tick) --------------------------------------------------


async def run_step(
    templates: Templates,
    session_id: int,
    kind: EventKind,
    now: datetime,
    session: AsyncSession,
    _occurrence: datetime,
) -> None:
    """Do one session step (claimed by the tick); a step already done is skipped.

    Rows are locked cycle, group, session, the order `leave` locks them in, so a
    step and a leaver's backfill wait for each other instead of deadlocking."""
    found = await store.get_session(session, session_id)
    if found is None:
        return
    unlocked = await store.get_group(session, found.group_id)
    assert unlocked is not None
    cycle = await store.get_cycle(session, unlocked.cycle_id, lock=True)
    group = await store.get_group(session, found.group_id, lock=True)
    meeting = await store.get_session(session, session_id, lock=True)
    assert cycle is not None and group is not None and meeting is not None
    if meeting.next_event != kind:
        return
    outbox = Outbox(session, cycle.platform, cycle.workspace_id)
    if kind is EventKind.AGENDA:
        await send_agenda(outbox, templates, cycle, group, meeting, late=now >= meeting.starts_at)
    elif kind is EventKind.FOLLOWUP:
        await send_followup(outbox, templates, cycle, group, meeting)
    else:
        await review(outbox, templates, cycle, group, meeting, now)
    following = next_event(kind)
    meeting.next_event = following
    meeting.next_event_at = (
        None if following is None else event_at(following, meeting.starts_at, cycle.session_minutes)
    )
    if following is None:
        await _end_if_done(session, cycle, now)


async def send_agenda(
    outbox: Outbox,
    templates: Templates,
    cycle: MastermindCycle,
    group: MastermindGroup,
    meeting: MastermindSession,
    *,
    late: bool = False,
) -> None:
    """A day before: the hot seat, last time's commitments (asked about now), and the
    prompt for each member's two-line update. `late`: a replica back from downtime
    sends it after the session began, and says so."""
    session = outbox.session
    assert group.id is not None and meeting.id is not None
    seated = await store.seated(session, group.id)
    if not seated:
        return
    sessions = await store.sessions_of(session, group.id)
    holders = [
        s.hot_seat_user_id for s in sessions if s.hot_seat_user_id and s.number < meeting.number
    ]
    members_in_order = [a.user_id for a in seated]
    meeting.hot_seat_user_id = next_hot_seat(members_in_order, holders)
    for user_id in members_in_order:
        await store.entry(session, meeting.id, user_id)
    previous = next((s for s in sessions if s.number == meeting.number - 1), None)
    commitments: list[dict[str, Any]] = []
    if previous is not None and previous.id is not None:
        for entry in await store.entries_of(session, [previous.id]):
            if entry.commitment_text and entry.user_id in members_in_order:
                entry.followed_up_at = event_at(
                    EventKind.AGENDA, meeting.starts_at, cycle.session_minutes
                )
                commitments.append(
                    {"who": Trusted(mention(entry.user_id)), "text": entry.commitment_text}
                )
    hot_seat = next(a for a in seated if a.user_id == meeting.hot_seat_user_id)
    text = templates.render(
        "mastermind/agenda",
        name=cycle.name,
        number=meeting.number,
        total=len(sessions),
        times=_times_by_zone(seated, meeting.starts_at),
        minutes=cycle.session_minutes,
        hot_seat=Trusted(mention(hot_seat.user_id)),
        hot_seat_challenge=hot_seat.challenge,
        commitments=commitments,
        late=late,
    )
    buttons = [Button("Post my update", "mastermind.update", str(meeting.id), ButtonStyle.PRIMARY)]
    if commitments and previous is not None:
        buttons += [
            Button("I kept my commitment", "mastermind.kept", str(previous.id)),
            Button("Not yet", "mastermind.not_kept", str(previous.id)),
        ]
    await post_to_group(
        outbox,
        group,
        Message(text, tuple(buttons), mentions=tuple(members_in_order)),
        key=f"mastermind.agenda:{meeting.id}",
    )


def _times_by_zone(
    seated: Sequence[MastermindApplication], starts_at: datetime
) -> list[dict[str, Any]]:
    zones: dict[str, list[str]] = {}
    for application in seated:
        zones.setdefault(application.timezone, []).append(application.user_id)
    return [
        {
            "when": Trusted(local_when(starts_at, ZoneInfo(zone))),
            "timezone": zone,
            "members": Trusted(", ".join(mention(m) for m in users)),
        }
        for zone, users in sorted(zones.items())
    ]


async def send_followup(
    outbox: Outbox,
    templates: Templates,
    cycle: MastermindCycle,
    group: MastermindGroup,
    meeting: MastermindSession,
) -> None:
    """After the session: attendance and each member's commitment; after the last
    one, the end-of-cycle rating to each member."""
    assert group.id is not None and meeting.id is not None
    seated = await store.seated(outbox.session, group.id)
    sessions = await store.sessions_of(outbox.session, group.id)
    last = meeting.number == len(sessions)
    user_ids = tuple(a.user_id for a in seated)
    text = templates.render(
        "mastermind/followup", name=cycle.name, number=meeting.number, last=last
    )
    buttons = [
        Button("I was there", "mastermind.attended", str(meeting.id), ButtonStyle.PRIMARY),
        Button("I missed it", "mastermind.missed", str(meeting.id)),
    ]
    if not last:
        buttons.append(Button("My commitment", "mastermind.commit", str(meeting.id)))
    await post_to_group(
        outbox,
        group,
        Message(text, tuple(buttons), mentions=user_ids),
        key=f"mastermind.followup:{meeting.id}",
    )
    if last:
        for user_id in user_ids:
            await outbox.dm(
                user_id,
                Message(
                    templates.render("mastermind/rate", name=cycle.name, number=group.number),
                    (
                        Button(
                            "Rate the cycle", "mastermind.rate", str(group.id), ButtonStyle.PRIMARY
                        ),
                    ),
                ),
                key=f"mastermind.rate:{group.id}:{user_id}",
            )


async def review(
    outbox: Outbox,
    templates: Templates,
    cycle: MastermindCycle,
    group: MastermindGroup,
    meeting: MastermindSession,
    now: datetime,
) -> None:
    """A day after the session: alert the organiser when updates or attendance were
    below the line two sessions running, or when two members have been silent for
    three weeks."""
    assert group.id is not None
    session = outbox.session
    tallies = await group_tallies(session, group, upto=meeting.number)
    if low_two_running(tallies):
        before, latest = tallies[-2], tallies[-1]
        await outbox.dm(
            cycle.organiser_user_id,
            Message(
                templates.render(
                    "mastermind/alert_low",
                    name=cycle.name,
                    line=Trusted(percent(LOW_SHARE)),
                    number=group.number,
                    sessions=[
                        {
                            "number": t.number,
                            "attendance": percent(t.attendance),
                            "updates": percent(t.update_share),
                        }
                        for t in (before, latest)
                    ],
                )
            ),
            key=f"mastermind.alert.low:{group.id}:{meeting.number}",
        )
    quiet = silent_members(await last_seen(session, group), now)
    if len(quiet) >= SILENT_MEMBERS:
        await outbox.dm(
            cycle.organiser_user_id,
            Message(
                templates.render(
                    "mastermind/alert_silent",
                    name=cycle.name,
                    number=group.number,
                    members=Trusted(", ".join(mention(m) for m in quiet)),
                    weeks=SILENT_FOR.days // 7,
                )
            ),
            key=f"mastermind.alert.silent:{group.id}:{_key_part(','.join(quiet))}",
        )


async def last_seen(session: AsyncSession, group: MastermindGroup) -> dict[str, datetime]:
    """When each seated member last did something in the group, else when seated."""
    assert group.id is not None
    seated = await store.seated(session, group.id)
    seen = {a.user_id: a.seated_at or group.created_at for a in seated}
    sessions = await store.sessions_of(session, group.id)
    for entry in await store.entries_of(session, [s.id for s in sessions if s.id is not None]):
        if entry.user_id not in seen:
            continue
        moments = [m for m in (entry.answered_at, entry.update_at, entry.commitment_at) if m]
        if moments:
            seen[entry.user_id] = max(seen[entry.user_id], *moments)
    return seen


async def group_tallies(
    session: AsyncSession, group: MastermindGroup, *, upto: int | None = None
) -> list[SessionTally]:
    """Each held session's figures, up to session number `upto`."""
    assert group.id is not None
    sessions = [
        s
        for s in await store.sessions_of(session, group.id)
        if held(s) and (upto is None or s.number <= upto)
    ]
    seats = await store.ever_seated(session, group.id)
    entries = await store.entries_of(session, [s.id for s in sessions if s.id is not None])
    return [tally_of(meeting, seats, entries) for meeting in sessions]


def held(meeting: MastermindSession) -> bool:
    """A session counts as held once its follow-up went out (it ended) after an
    agenda with a hot seat (a group nobody sat in by then held nothing)."""
    return meeting.hot_seat_user_id is not None and meeting.next_event in (
        EventKind.REVIEW,
        None,
    )


def tally_of(
    meeting: MastermindSession,
    seats: Sequence[MastermindApplication],
    entries: Sequence[MastermindEntry],
) -> SessionTally:
    roster = {
        seat.user_id
        for seat in seats
        if seat.seated_at is not None
        and seat.seated_at <= meeting.starts_at
        and (seat.left_at is None or seat.left_at > meeting.starts_at)
    }
    mine = [e for e in entries if e.session_id == meeting.id and e.user_id in roster]
    return SessionTally(
        number=meeting.number,
        starts_at=meeting.starts_at,
        seated=len(roster),
        attended=sum(1 for e in mine if e.attended),
        updates=sum(1 for e in mine if e.update_text),
        commitments=sum(1 for e in mine if e.commitment_text),
        followed_up=sum(1 for e in mine if e.commitment_text and e.followed_up_at),
        kept=sum(1 for e in mine if e.commitment_kept),
    )


async def _end_if_done(session: AsyncSession, cycle: MastermindCycle, now: datetime) -> None:
    """The cycle ends when no session of any of its groups has a step left."""
    assert cycle.id is not None
    for group in await store.groups_of(session, cycle.id):
        assert group.id is not None
        if any(s.next_event is not None for s in await store.sessions_of(session, group.id)):
            return
    # The caller holds the cycle's lock (run_step).
    if cycle.state == CycleState.RUNNING:
        cycle.state, cycle.ended_at = CycleState.ENDED, now


# --- what members do in their group ------------------------------------------------


async def _seat(ctx: Context) -> tuple[MastermindCycle, MastermindApplication, MastermindGroup]:
    """The acting member's cycle, seat and group (refusals say what is missing)."""
    cycle = await current_cycle(ctx)
    assert cycle.id is not None
    application = await store.application_of(ctx.session, cycle.id, ctx.inbound.user_id)
    if application is None or application.status != ApplicationStatus.GROUPED:
        raise CommandError(f"You're not in a group of “{cycle.name}”.")
    assert application.group_id is not None
    group = await store.get_group(ctx.session, application.group_id)
    assert group is not None
    return cycle, application, group


async def _session_from(
    ctx: Context, session_id: int | None, *, started: bool
) -> tuple[MastermindCycle, MastermindGroup, MastermindSession]:
    """The session a button names, or (typed command) the member's group's latest
    session whose agenda went out (`started`: that has already begun)."""
    cycle, _, group = await _seat(ctx)
    assert group.id is not None
    sessions = await store.sessions_of(ctx.session, group.id)
    if session_id is not None:
        meeting = next((s for s in sessions if s.id == session_id), None)
        if meeting is None:
            raise CommandError("That session is not one of your group's.")
        return cycle, group, meeting
    now = ctx.now()
    candidates = [
        s
        for s in sessions
        if s.hot_seat_user_id is not None and (not started or s.starts_at <= now)
    ]
    if not candidates:
        first = sessions[0].starts_at if sessions else group.first_session_at
        zone = zone_named((await ctx.member()).timezone, ctx.runtime.settings.timezone)
        raise CommandError(
            f"Your group's first session is on {local_when(first, zone)}; "
            "the agenda comes a day before."
        )
    return cycle, group, candidates[-1]


async def record_update(ctx: Context, text: str, session_id: int | None = None) -> str:
    try:
        update = clean_update(text)
    except MastermindInputError as error:
        raise refused(error) from None
    _, group, meeting = await _session_from(ctx, session_id, started=False)
    assert meeting.id is not None
    if held(meeting):
        raise CommandError(
            f"Session {meeting.number} is over; updates for the next session open with "
            "its agenda, a day before it."
        )
    entry = await store.entry(ctx.session, meeting.id, ctx.inbound.user_id)
    entry.update_text, entry.update_at = update, ctx.now()
    await post_to_group(
        ctx.outbox,
        group,
        Message(
            ctx.runtime.templates.render(
                "mastermind/update_posted",
                who=Trusted(mention(ctx.inbound.user_id)),
                number=meeting.number,
                text=update,
            )
        ),
        key=f"mastermind.update:{entry.id}:{_key_part(update)}",
    )
    return f"Thanks, your update for session {meeting.number} is posted in your group."


async def record_commitment(ctx: Context, text: str, session_id: int | None = None) -> str:
    try:
        commitment = clean_commitment(text)
    except MastermindInputError as error:
        raise refused(error) from None
    _, group, meeting = await _session_from(ctx, session_id, started=True)
    assert meeting.id is not None
    entry = await store.entry(ctx.session, meeting.id, ctx.inbound.user_id)
    entry.commitment_text, entry.commitment_at = commitment, ctx.now()
    await post_to_group(
        ctx.outbox,
        group,
        Message(
            ctx.runtime.templates.render(
                "mastermind/commitment_posted",
                who=Trusted(mention(ctx.inbound.user_id)),
                text=commitment,
            )
        ),
        key=f"mastermind.commitment:{entry.id}:{_key_part(commitment)}",
    )
    return (
        f"Noted: by next time you will {commitment}. "
        "Your group will ask you about it at the next session."
    )


async def record_attendance(ctx: Context, session_id: int, attended: bool) -> str:
    _, _, meeting = await _session_from(ctx, session_id, started=True)
    assert meeting.id is not None
    entry = await store.entry(ctx.session, meeting.id, ctx.inbound.user_id)
    entry.attended, entry.answered_at = attended, ctx.now()
    if attended:
        return f"Marked: you were at session {meeting.number}."
    return f"Marked: you missed session {meeting.number}. See you next time!"


async def record_kept(ctx: Context, session_id: int, kept: bool) -> str:
    _, _, meeting = await _session_from(ctx, session_id, started=True)
    assert meeting.id is not None
    entry = await store.entry(ctx.session, meeting.id, ctx.inbound.user_id)
    if not entry.commitment_text:
        raise CommandError(f"You made no commitment at session {meeting.number}.")
    entry.commitment_kept, entry.answered_at = kept, ctx.now()
    if kept:
        return "Well done! Tell the group how it went."
    return "Thanks for saying so: bring what got in the way to the session."


async def rate(
    ctx: Context, score: int, comment: str, continue_together: bool, group_id: int | None = None
) -> str:
    try:
        comment = clean_comment(comment)
    except MastermindInputError as error:
        raise refused(error) from None
    if group_id is None:
        cycle = await store.latest_cycle(
            ctx.session, ctx.inbound.platform, ctx.inbound.workspace_id
        )
        if cycle is None or cycle.id is None:
            raise CommandError("There is no mastermind cycle to rate yet.")
        application = await store.application_of(ctx.session, cycle.id, ctx.inbound.user_id)
        if application is None or application.group_id is None:
            raise CommandError(f"You had no group in “{cycle.name}” to rate.")
        group_id = application.group_id
    group = await store.get_group(ctx.session, group_id)
    if group is None:
        raise CommandError("That group no longer exists.")
    assert group.id is not None
    if ctx.inbound.user_id not in {
        a.user_id for a in await store.ever_seated(ctx.session, group.id)
    }:
        raise CommandError("You can only rate a group you sat in.")
    sessions = await store.sessions_of(ctx.session, group.id)
    if sessions and not held(sessions[-1]):
        zone = zone_named((await ctx.member()).timezone, ctx.runtime.settings.timezone)
        raise CommandError(
            "You can rate the cycle after its last session, on "
            f"{local_when(sessions[-1].starts_at, zone)}."
        )
    await store.save_rating(
        ctx.session, group.id, ctx.inbound.user_id, score, comment, continue_together, ctx.now()
    )
    wish = (
        " You'd like to go on with the same group: the organiser sees that, and the next "
        "cycle will not keep you apart from those who asked the same."
        if continue_together
        else ""
    )
    return f"Thank you for rating the cycle {score}/5.{wish}"


# --- leaving and backfilling -------------------------------------------------------


async def leave(ctx: Context) -> str:
    cycle = await current_cycle(ctx, lock=True)
    assert cycle.id is not None
    application = await store.application_of(ctx.session, cycle.id, ctx.inbound.user_id)
    if application is None or application.status == ApplicationStatus.LEFT:
        raise CommandError(f"You have no application or seat in “{cycle.name}” to leave.")
    now = ctx.now()
    if application.status == ApplicationStatus.WAITING:
        application.status, application.left_at = ApplicationStatus.LEFT, now
        return f"You've withdrawn your application to “{cycle.name}”."
    assert application.group_id is not None
    group = await store.get_group(ctx.session, application.group_id, lock=True)
    assert group is not None and group.id is not None
    application.status, application.left_at = ApplicationStatus.LEFT, now
    await ctx.session.flush()
    templates = ctx.runtime.templates
    await post_to_group(
        ctx.outbox,
        group,
        Message(templates.render("mastermind/left", who=Trusted(mention(ctx.inbound.user_id)))),
        key=f"mastermind.left:{group.id}:{ctx.inbound.user_id}",
    )
    newcomer = await backfill(ctx, cycle, group, now)
    await ctx.outbox.dm(
        cycle.organiser_user_id,
        Message(
            templates.render(
                "mastermind/seat_open",
                name=cycle.name,
                number=group.number,
                leaver=Trusted(mention(ctx.inbound.user_id)),
                newcomer=Trusted(mention(newcomer)) if newcomer else None,
            )
        ),
        key=f"mastermind.seat_open:{group.id}:{ctx.inbound.user_id}",
    )
    return (
        f"You've left group {group.number} of “{cycle.name}”. "
        "Thank you for the sessions you gave it."
    )


async def backfill(
    ctx: Context, cycle: MastermindCycle, group: MastermindGroup, now: datetime
) -> str | None:
    """Seat the best waiting applicant in a leaver's place while sessions remain; the
    group gets a new conversation with them in it (Slack group DMs cannot take a
    new member; Discord gets a new private thread alike). None: nobody fits."""
    assert cycle.id is not None and group.id is not None
    sessions = await store.sessions_of(ctx.session, group.id)
    if not any(s.starts_at > now for s in sessions):
        return None
    seated = await store.seated(ctx.session, group.id)
    waiting = await store.applications(ctx.session, cycle.id, {ApplicationStatus.WAITING})
    blocks = await coffee_store.community_blocks(ctx.session, cycle.platform, cycle.workspace_id)
    chosen = choose_backfill(
        [applicant_of(a) for a in seated],
        [applicant_of(a) for a in waiting],
        rules_of(cycle),
        blocked_pairs=blocks,
    )
    if chosen is None:
        return None
    newcomer = next(a for a in waiting if a.user_id == chosen)
    newcomer.status, newcomer.group_id = ApplicationStatus.GROUPED, group.id
    newcomer.seated_at, newcomer.waiting_reason = now, None
    await ctx.session.flush()
    await open_conversation(
        ctx.outbox,
        ctx.runtime.templates,
        cycle,
        group,
        key=f"mastermind.backfill:{group.id}:{chosen}",
        session=ctx.session,
        newcomer=chosen,
    )
    return chosen


# --- status and stats --------------------------------------------------------------


async def status(ctx: Context) -> str:
    cycle = await current_cycle(ctx)
    assert cycle.id is not None
    member = await ctx.member()
    zone = zone_named(member.timezone, ctx.runtime.settings.timezone)
    application = await store.application_of(ctx.session, cycle.id, ctx.inbound.user_id)
    templates = ctx.runtime.templates
    values: dict[str, Any] = {
        "name": cycle.name,
        "state": cycle.state,
        "deadline": Trusted(local_when(cycle.deadline, zone)),
        "status": application.status if application else None,
        "reason": application.waiting_reason if application else None,
        "challenge": application.challenge if application else None,
        "group": None,
    }
    if (
        application is None
        or application.group_id is None
        or application.status != ApplicationStatus.GROUPED
    ):
        return templates.render("mastermind/status", **values)
    group = await store.get_group(ctx.session, application.group_id)
    assert group is not None and group.id is not None
    seated = await store.seated(ctx.session, group.id)
    sessions = await store.sessions_of(ctx.session, group.id)
    now = ctx.now()
    upcoming = next((s for s in sessions if s.starts_at > now), None)
    entries = await store.entries_of(ctx.session, [s.id for s in sessions if s.id is not None])
    number_of = {s.id: s.number for s in sessions}
    open_commitments = [
        {"number": number_of[e.session_id], "text": e.commitment_text}
        for e in entries
        if e.user_id == ctx.inbound.user_id and e.commitment_text and e.commitment_kept is None
    ]
    values["group"] = {
        "number": group.number,
        "members": Trusted(", ".join(mention(a.user_id) for a in seated)),
        "shared": ", ".join(group.shared_tags),
        "next": Trusted(local_when(upcoming.starts_at, zone)) if upcoming else None,
        "next_number": upcoming.number if upcoming else None,
        "hot_seat": Trusted(mention(upcoming.hot_seat_user_id))
        if upcoming and upcoming.hot_seat_user_id
        else None,
        "timezone": str(zone),
        "commitments": open_commitments,
    }
    return templates.render("mastermind/status", **values)


async def home_section(ctx: Context) -> Reply | None:
    """The member's mastermind on the home tab: their group and next session, their
    application, or an Apply button while a cycle takes applications."""
    cycle = await store.current_cycle(ctx.session, ctx.inbound.platform, ctx.inbound.workspace_id)
    if cycle is None or cycle.id is None:
        return None
    member = await ctx.member()
    zone = zone_named(member.timezone, ctx.runtime.settings.timezone)
    now = ctx.now()
    application = await store.application_of(ctx.session, cycle.id, ctx.inbound.user_id)
    taking = cycle.state == CycleState.OPEN and now < cycle.deadline
    status = None if application is None else application.status
    if status in (None, ApplicationStatus.LEFT) and not taking:
        return None
    values: dict[str, Any] = {
        "name": cycle.name,
        "deadline": Trusted(local_when(cycle.deadline, zone)),
        "status": status,
        "taking": taking,
        "group": None,
        "next": None,
        "commitments": 0,
    }
    if application is not None and application.group_id is not None and status == "grouped":
        group = await store.get_group(ctx.session, application.group_id)
        assert group is not None and group.id is not None
        sessions = await store.sessions_of(ctx.session, group.id)
        upcoming = next((s for s in sessions if s.starts_at > now), None)
        entries = await store.entries_of(ctx.session, [s.id for s in sessions if s.id])
        values["group"] = group.number
        values["next"] = Trusted(local_when(upcoming.starts_at, zone)) if upcoming else None
        values["commitments"] = sum(
            1
            for e in entries
            if e.user_id == ctx.inbound.user_id and e.commitment_text and e.commitment_kept is None
        )
    text = ctx.runtime.templates.render("mastermind/home", **values)
    if status in (None, ApplicationStatus.LEFT):
        return Reply.text(
            text, Button("Apply for a mastermind group", "mastermind.apply_open", str(cycle.id))
        )
    return Reply.text(text)


async def stats(ctx: Context) -> str:
    cycle = await store.latest_cycle(ctx.session, ctx.inbound.platform, ctx.inbound.workspace_id)
    if cycle is None or cycle.id is None:
        raise CommandError("No mastermind cycle yet: start one with `/kindred mastermind setup`.")
    now = ctx.now()
    applications = await store.applications(ctx.session, cycle.id)
    groups = await store.groups_of(ctx.session, cycle.id)
    ratings = await store.ratings_of(ctx.session, [g.id for g in groups if g.id is not None])
    shown = []
    for group in groups:
        assert group.id is not None
        tallies = await group_tallies(ctx.session, group)
        planned = [s.starts_at for s in await store.sessions_of(ctx.session, group.id)]
        mine = [r for r in ratings if r.group_id == group.id]
        alive = alive_at_week_eight(tallies, planned, now)
        shown.append(
            {
                "number": group.number,
                "seated": len(await store.seated(ctx.session, group.id)),
                "sessions": [
                    {
                        "number": t.number,
                        "attendance": f"{t.attended}/{t.seated}",
                        "updates": f"{t.updates}/{t.seated}",
                        "commitments": t.commitments,
                        "followed_up": t.followed_up,
                        "kept": t.kept,
                    }
                    for t in tallies
                ],
                "rating": f"{sum(r.score for r in mine) / len(mine):.1f}" if mine else None,
                "ratings": len(mine),
                "continue": sum(1 for r in mine if r.continue_together),
                "alive": "–" if alive is None else ("yes" if alive else "no"),
            }
        )
    return ctx.runtime.templates.render(
        "mastermind/stats",
        name=cycle.name,
        state=cycle.state,
        applicants=len(applications),
        waiting=sum(1 for a in applications if a.status == ApplicationStatus.WAITING),
        groups=shown,
    )


# --- figures, actions and privacy (the Feature's hooks) ----------------------------


async def metrics(session: AsyncSession, period: Period) -> Figures:
    """Mastermind figures for the health report: sessions held in the period and
    how groups took part, commitments, ratings, and groups alive at week 8."""
    rows = await store.community_rows(
        session, period.platform, period.workspace_id, period.start, period.end
    )
    in_period = [s for s in rows.sessions if period.start <= s.starts_at < period.end and held(s)]
    tallies = [
        tally_of(s, [a for a in rows.seats if a.group_id == s.group_id], rows.entries)
        for s in in_period
    ]
    seated = sum(t.seated for t in tallies)
    made = [
        e for e in rows.entries if e.commitment_at and period.start <= e.commitment_at < period.end
    ]
    followed = [
        e
        for e in rows.entries
        if e.followed_up_at and period.start <= e.followed_up_at < period.end
    ]
    rated = [r for r in rows.ratings if period.start <= r.rated_at < period.end]
    reached = alive = 0
    for group in rows.groups:
        sessions = [s for s in rows.sessions if s.group_id == group.id]
        tallied = [
            tally_of(s, [a for a in rows.seats if a.group_id == group.id], rows.entries)
            for s in sessions
            if held(s) and s.starts_at < period.end
        ]
        verdict = alive_at_week_eight(tallied, [s.starts_at for s in sessions], period.end)
        if verdict is not None:
            reached += 1
            alive += verdict
    return {
        "groups": float(len(rows.groups)),
        "sessions_held": float(len(tallies)),
        "attendance_rate": share(sum(t.attended for t in tallies), seated),
        "update_rate": share(sum(t.updates for t in tallies), seated),
        "commitments_made": float(len(made)),
        "commitments_followed_up": float(len(followed)),
        "commitments_kept": float(sum(1 for e in followed if e.commitment_kept)),
        "ratings": float(len(rated)),
        "average_rating": sum(r.score for r in rated) / len(rated) if rated else None,
        "groups_reached_week_8": float(reached),
        "groups_alive_week_8": float(alive),
        "alive_week_8_rate": share(alive, reached),
    }


async def actions(session: AsyncSession, period: Period) -> list[MemberAction]:
    """Updates posted, commitments made and sessions attended; attending a session
    where a peer had the hot seat is help given to them."""
    rows = await store.community_rows(
        session, period.platform, period.workspace_id, period.start, period.end
    )
    sessions = {s.id: s for s in rows.sessions}
    done: list[MemberAction] = []
    for entry in rows.entries:
        if entry.update_at and period.start <= entry.update_at < period.end:
            done.append(MemberAction(entry.user_id, "mastermind_update", entry.update_at))
        if entry.commitment_at and period.start <= entry.commitment_at < period.end:
            done.append(MemberAction(entry.user_id, "mastermind_commitment", entry.commitment_at))
        meeting = sessions.get(entry.session_id)
        if entry.attended and meeting and period.start <= meeting.starts_at < period.end:
            helped = meeting.hot_seat_user_id not in (None, entry.user_id)
            done.append(
                MemberAction(
                    entry.user_id,
                    "mastermind_session",
                    meeting.starts_at,
                    contribution=helped,
                )
            )
    return sorted(done, key=lambda action: (action.at, action.user_id, action.kind))


async def stored_about(session: AsyncSession, member: Identity) -> Stored:
    """What masterminds keep about a member, for `/kindred privacy`."""
    kept = await store.stored_about(session, member.platform, member.workspace_id, member.user_id)
    return Stored(
        "mastermind/stored_about",
        {
            "applications": kept.applications,
            "updates": kept.updates,
            "commitments": kept.commitments,
            "ratings": kept.ratings,
        },
    )


async def forget_feedback(session: AsyncSession, member: Identity) -> int:
    return await store.forget_ratings(session, member.platform, member.workspace_id, member.user_id)
