"""Virtual coffee rounds and what follows them (issue #3).

One periodic tick per replica reads what is due (indexed columns) and runs each
piece of work through `run_claimed`, so it happens exactly once across replicas
and restarts:
- `coffee.resume:<membership>`: a timed pause ended; the member is told.
- `coffee.round:<program>`: a scheduled round. Reading members, pairing, storing
  the round and queueing every intro happen in the claim's transaction: if it
  commits the outbox delivers the intros, if it does not nothing exists and the
  next tick claims the occurrence again. A committed round is never re-paired.
- `coffee.reminder:<round>`: half-way through, groups that have not said they met
  are nudged in their conversation.
- `coffee.followup:<round>`: a day before the round ends, each member of a group
  that has not said it met gets "Did you meet?" with three buttons.
When the next round starts it closes the previous one: follow-ups left unanswered
count against their members, and whoever ignored `max_ignored` in a row is paused
with a friendly message saying how to come back.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from itertools import combinations
from pathlib import Path
from typing import TYPE_CHECKING

import yaml
from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.config_files import ConfigFileError, ConfigProblem, compose, string_list
from bot.core.mentions import mention
from bot.core.outbox import Outbox
from bot.core.platform import Button, ButtonStyle, MemberInfo, Message, PlatformError
from bot.core.scheduler import CATCH_UP_WINDOW, latest_occurrence
from bot.core.templates import TemplateProblem, Trusted
from bot.domain.coffee import (
    ProposerCandidate,
    Schedule,
    choose_proposer,
    choose_starter,
    local_time,
    normalised,
    round_seed,
    round_window,
    utc_offset_hours,
)
from bot.domain.matching import Candidate, History, PairingConfig, PairingResult, make_groups
from storage import coffee, members
from storage.coffee import CoffeeMembership, CoffeeProgram, CoffeeRound
from storage.models import Member

if TYPE_CHECKING:
    from bot.core.app import Kindred

log = logging.getLogger(__name__)

TICK = "coffee.tick"
TICK_SECONDS = 60.0
STARTERS_FILE = "coffee_starters.yml"
WHEN = "%a %d %b, %H:%M"


def round_job(program_id: int) -> str:
    return f"coffee.round:{program_id}"


def manual_round_job(program_id: int) -> str:
    # Its own job name: a run-now in the scheduled round's minute must not take the
    # scheduled occurrence's claim (the schedule would then never move on).
    return f"coffee.round-now:{program_id}"


def reminder_job(round_id: int) -> str:
    return f"coffee.reminder:{round_id}"


def followup_job(round_id: int) -> str:
    return f"coffee.followup:{round_id}"


def resume_job(membership_id: int) -> str:
    return f"coffee.resume:{membership_id}"


def program_schedule(program: CoffeeProgram) -> Schedule:
    return Schedule(
        program.cadence, program.weekday, program.hour, program.timezone, program.anchor_date
    )


def channel_link(program: CoffeeProgram) -> Trusted:
    return Trusted(f"<#{program.channel_id}>")


def when(moment: datetime, timezone: str) -> str:
    return local_time(timezone, moment, WHEN) or moment.strftime(f"{WHEN} UTC")


# Starters are printed as member text; a placeholder in one would print as typed.
_PLACEHOLDER_MARKS = ("{{", "{%", "{#")


def check_starters(document: yaml.Node | None, path: Path) -> list[ConfigProblem]:
    """config/coffee_starters.yml: a non-empty `starters:` list of plain text."""
    return _starters(document, path)[1]


def _starters(document: yaml.Node | None, path: Path) -> tuple[list[str], list[ConfigProblem]]:
    entries, problems = string_list(document, path, "starters")
    starters: list[str] = []
    for text, line in entries:
        if any(mark in text for mark in _PLACEHOLDER_MARKS):
            problems.append(
                ConfigProblem(path, line, "starters are plain text; placeholders are not filled in")
            )
        else:
            starters.append(text)
    return starters, problems


def load_starters(config_dir: Path) -> list[str]:
    """The organisers' conversation starters (config/coffee_starters.yml).

    `kindred run` refuses to start with a bad entry; one edited in afterwards is
    left out (and logged) rather than sent as something else, or stopping rounds."""
    path = config_dir / STARTERS_FILE
    try:
        starters, problems = _starters(compose(path), path)
    except ConfigFileError as error:
        raise TemplateProblem(str(error)) from error
    for problem in problems:
        log.warning("coffee starters: %s", problem.describe())
    if not starters:
        raise TemplateProblem(
            "; ".join(problem.describe() for problem in problems) or f"{path.name} has no starters"
        )
    return starters


async def platform_members(
    kindred: Kindred, program: CoffeeProgram
) -> dict[str, MemberInfo] | None:
    """Who the platform says is in the program's channel (to skip deactivated
    accounts and bots); None when it cannot be asked, and stored flags are used."""
    platform = kindred.platforms.get(program.platform)
    if platform is None:
        return None
    try:
        listed = await platform.list_members(program.workspace_id, program.channel_id)
    except (PlatformError, OSError, TimeoutError) as error:
        log.warning(
            "could not list members of %s/%s for coffee program %s (%s); using stored flags",
            program.platform,
            program.workspace_id,
            program.id,
            error,
        )
        return None
    return {info.user_id: info for info in listed}


# Who is paired -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Roster:
    """The opted-in members of a program and who of them the round would pair."""

    candidates: tuple[Candidate, ...]
    members: dict[str, Member]
    memberships: dict[str, CoffeeMembership]
    paused: tuple[str, ...]
    skipping: tuple[str, ...]
    unavailable: tuple[str, ...]


def _available(member: Member, info: MemberInfo | None) -> bool:
    if info is not None:
        return not (info.deactivated or info.is_bot)
    return not (member.deactivated or member.is_bot)


def candidate_for(member: Member, at: datetime) -> Candidate:
    return Candidate(
        member_id=member.user_id,
        company=normalised(member.company),
        industry=normalised(member.industry),
        utc_offset_hours=utc_offset_hours(member.timezone, at),
    )


async def read_roster(
    session: AsyncSession,
    program: CoffeeProgram,
    at: datetime,
    listed: Mapping[str, MemberInfo] | None,
) -> Roster:
    assert program.id is not None
    candidates: list[Candidate] = []
    people: dict[str, Member] = {}
    memberships: dict[str, CoffeeMembership] = {}
    paused: list[str] = []
    skipping: list[str] = []
    unavailable: list[str] = []
    for membership, member in await coffee.active_memberships(session, program.id):
        people[member.user_id] = member
        memberships[member.user_id] = membership
        if not _available(member, listed.get(member.user_id) if listed else None):
            unavailable.append(member.user_id)
        elif membership.paused:
            paused.append(member.user_id)
        elif membership.skip_next:
            skipping.append(member.user_id)
        else:
            candidates.append(candidate_for(member, at))
    return Roster(
        tuple(candidates), people, memberships, tuple(paused), tuple(skipping), tuple(unavailable)
    )


async def read_history(session: AsyncSession, program: CoffeeProgram) -> History:
    """Who met whom in this program (rounds ago), the previous round's trio and
    left-out members, and the community's blocks."""
    assert program.id is not None
    rounds = await coffee.recent_rounds(session, program.id)
    rounds_ago = {round_.id: ago for ago, round_ in enumerate(rounds, start=1)}
    last_met: dict[frozenset[str], int] = {}
    grouped = await coffee.grouped_members(session, [key for key in rounds_ago if key])
    for round_id, groups in grouped.items():
        ago = rounds_ago[round_id]
        for user_ids in groups.values():
            for pair in combinations(user_ids, 2):
                key = frozenset(pair)
                if ago < last_met.get(key, ago + 1):
                    last_met[key] = ago
    blocks = await coffee.community_blocks(session, program.platform, program.workspace_id)
    previous = rounds[0] if rounds else None
    return History(
        last_met=last_met,
        trio_last_round=frozenset(previous.in_trio) if previous else frozenset(),
        left_out_last_round=frozenset(previous.left_out) if previous else frozenset(),
        blocked=frozenset(frozenset(pair) for pair in blocks if pair[0] != pair[1]),
    )


@dataclass(frozen=True, slots=True)
class Plan:
    roster: Roster
    result: PairingResult


async def plan_round(
    session: AsyncSession,
    program: CoffeeProgram,
    occurrence: datetime,
    listed: Mapping[str, MemberInfo] | None,
) -> Plan:
    """The groups a round at `occurrence` makes; reads only (preview uses it as is)."""
    assert program.id is not None
    roster = await read_roster(session, program, occurrence, listed)
    history = await read_history(session, program)
    config = PairingConfig(
        group_size=program.group_size,
        repeat_window=program.repeat_window,
        seed=round_seed(program.id, occurrence),
    )
    return Plan(roster, make_groups(roster.candidates, history, config))


# A round ----------------------------------------------------------------------------


async def start_round(
    kindred: Kindred,
    session: AsyncSession,
    program: CoffeeProgram,
    occurrence: datetime,
    listed: Mapping[str, MemberInfo] | None,
    *,
    manual: bool,
) -> CoffeeRound:
    """Close the previous round, pair, store the round and queue its intros, all in
    the caller's transaction."""
    assert program.id is not None
    starters = load_starters(kindred.settings.config_dir)
    outbox = Outbox(session, program.platform, program.workspace_id)
    await close_rounds(kindred, session, outbox, program, occurrence)
    _apply_platform_flags(listed, await coffee.active_memberships(session, program.id))
    plan = await plan_round(session, program, occurrence, listed)
    schedule = program_schedule(program)
    if manual and program.next_round_at > occurrence:
        ends = program.next_round_at
    else:
        ends = schedule.next_after(occurrence)
    window = round_window(occurrence, ends)
    quality = plan.result.quality
    round_ = CoffeeRound(
        program_id=program.id,
        occurrence=occurrence,
        manual=manual,
        ends_at=ends,
        reminder_due_at=window.reminder_at if plan.result.groups else None,
        followup_due_at=window.followup_at if plan.result.groups else None,
        members_checked=listed is not None,
        participants=quality.participants,
        groups=quality.groups,
        total_pairs=quality.total_pairs,
        repeat_pairs=quality.repeat_pairs,
        any_repeat_pairs=quality.any_repeat_pairs,
        same_company_pairs=quality.same_company_pairs,
        low_overlap_pairs=quality.low_overlap_pairs,
        in_trio=list(quality.in_trio),
        left_out=list(quality.left_out),
        solver_ms=quality.solver_ms,
    )
    session.add(round_)
    await session.flush()
    for user_id in plan.roster.skipping:
        plan.roster.memberships[user_id].skip_next = False
    await _store_groups(kindred, session, outbox, program, round_, plan, starters)
    for user_id in quality.left_out:
        text = kindred.templates.render(
            "coffee_left_out",
            channel=channel_link(program),
            next_round=when(ends, program.timezone),
            alone=quality.participants == 1,
        )
        await outbox.dm(user_id, Message(text), key=f"coffee:{round_.id}:left-out:{user_id}")
    log.info(
        "coffee program %s round %s: %d participants, %d groups, %.1f ms",
        program.id,
        round_.id,
        quality.participants,
        quality.groups,
        quality.solver_ms,
    )
    return round_


def _apply_platform_flags(
    listed: Mapping[str, MemberInfo] | None, rows: list[tuple[CoffeeMembership, Member]]
) -> None:
    """Remember what the platform said (deactivated, bot, name) on the member rows."""
    if listed is None:
        return
    for _, member in rows:
        info = listed.get(member.user_id)
        if info is None:
            continue
        member.deactivated = info.deactivated
        member.is_bot = info.is_bot
        if info.display_name:
            member.display_name = info.display_name


async def _store_groups(
    kindred: Kindred,
    session: AsyncSession,
    outbox: Outbox,
    program: CoffeeProgram,
    round_: CoffeeRound,
    plan: Plan,
    starters: list[str],
) -> None:
    assert program.id is not None and round_.id is not None
    people = plan.roster.members
    participants = [user_id for group in plan.result.groups for user_id in group]
    seen = await coffee.starters_seen(session, program.id, participants)
    proposals = await coffee.proposals_made(session, program.id)
    # A stable order (groups and members by id) so intros, stats and previews list
    # the same round the same way whatever order the solver returned.
    groups = sorted(tuple(sorted(group)) for group in plan.result.groups)
    for position, user_ids in enumerate(groups):
        offsets = {
            user_id: utc_offset_hours(people[user_id].timezone, round_.occurrence)
            for user_id in user_ids
        }
        sightings: Counter[str] = Counter()
        for user_id in user_ids:
            sightings.update(seen.get(user_id, {}))
        starter = choose_starter(
            starters, sightings, round_seed(program.id, round_.occurrence) + position
        )
        proposer = choose_proposer(
            [
                ProposerCandidate(user_id, proposals.get(user_id, 0), offsets[user_id])
                for user_id in user_ids
            ]
        )
        group = coffee.CoffeeGroup(
            round_id=round_.id,
            program_id=program.id,
            position=position,
            starter=starter,
            proposer_user_id=proposer,
        )
        session.add(group)
        await session.flush()
        assert group.id is not None
        session.add_all(
            coffee.CoffeeGroupMember(
                group_id=group.id, round_id=round_.id, program_id=program.id, user_id=user_id
            )
            for user_id in user_ids
        )
        text = kindred.templates.render(
            "coffee_intro",
            channel=channel_link(program),
            members=[_intro_member(people[user_id], round_.occurrence) for user_id in user_ids],
            starter=starter,
            proposer=Trusted(mention(proposer)),
            ends=when(round_.ends_at, program.timezone),
        )
        buttons = (
            Button("We met", "coffee.met", str(group.id), ButtonStyle.PRIMARY),
            Button("Skip next round", "coffee.skip", str(program.id)),
        )
        message = Message(text, buttons=buttons, mentions=tuple(user_ids))
        names = ", ".join(people[user_id].display_name for user_id in user_ids)
        group.intro_outbox_id = await outbox.group(
            user_ids,
            message,
            channel_id=program.channel_id,
            title=f"Virtual coffee: {names}"[:100],
            key=f"coffee:{round_.id}:{position}",
        )


def _intro_member(member: Member, at: datetime) -> dict[str, object]:
    return {
        "mention": Trusted(mention(member.user_id)),
        "name": member.display_name,
        "role": member.role,
        "company": member.company,
        "topics": member.topics,
        "local_time": local_time(member.timezone, at),
        "timezone": member.timezone,
    }


async def close_rounds(
    kindred: Kindred,
    session: AsyncSession,
    outbox: Outbox,
    program: CoffeeProgram,
    now: datetime,
) -> None:
    """End the program's open rounds: cancel what they still owed, count unanswered
    follow-ups, and pause members who ignored `max_ignored` of them in a row."""
    assert program.id is not None
    open_rounds = await coffee.unclosed_rounds(session, program.id)
    if not open_rounds:
        return
    grouped = await coffee.round_groups(session, [round_.id for round_ in open_rounds if round_.id])
    unanswered: list[tuple[str, int]] = []
    for round_ in open_rounds:
        assert round_.id is not None
        round_.reminder_due_at = None
        round_.followup_due_at = None
        round_.closed_at = now
        if round_.followup_sent_at is None:
            continue
        for _, group_members in grouped.get(round_.id, []):
            unanswered += [
                (entry.user_id, round_.id)
                for entry in group_members
                if entry.asked_at is not None and entry.answer is None
            ]
    for user_id, round_id in unanswered:
        membership = await coffee.get_membership(session, program.id, user_id)
        if membership is None:
            continue
        membership.ignored_followups += 1
        if (
            membership.active
            and not membership.paused
            and membership.ignored_followups >= program.max_ignored
        ):
            membership.paused = True
            membership.pause_reason = "silence"
            membership.resume_at = None
            text = kindred.templates.render(
                "coffee_paused_for_silence",
                channel=channel_link(program),
                ignored=membership.ignored_followups,
            )
            await outbox.dm(user_id, Message(text), key=f"coffee:{round_id}:silence:{user_id}")


# Reminders, follow-ups, resumes -----------------------------------------------------------


async def send_reminder(
    kindred: Kindred, round_id: int, session: AsyncSession, occurrence: datetime
) -> None:
    round_ = await session.get(CoffeeRound, round_id)
    if round_ is None or round_.reminder_due_at is None:
        return
    round_.reminder_due_at = None
    program = await coffee.get_program(session, round_.program_id)
    assert program is not None
    groups = (await coffee.round_groups(session, [round_id])).get(round_id, [])
    conversations = await coffee.intro_conversations(
        session, [group.intro_outbox_id for group, _ in groups if group.intro_outbox_id]
    )
    outbox = Outbox(session, program.platform, program.workspace_id)
    for group, group_members in groups:
        conversation = conversations.get(group.intro_outbox_id or -1)
        if conversation is None or any(entry.answer == "met" for entry in group_members):
            continue
        text = kindred.templates.render(
            "coffee_reminder",
            proposer=Trusted(mention(group.proposer_user_id)),
            ends=when(round_.ends_at, program.timezone),
            starter=group.starter,
        )
        button = Button("We met", "coffee.met", str(group.id), ButtonStyle.PRIMARY)
        await outbox.post(
            conversation,
            Message(text, buttons=(button,), mentions=(group.proposer_user_id,)),
            key=f"coffee:{round_id}:reminder:{group.position}",
        )


async def send_followups(
    kindred: Kindred, round_id: int, session: AsyncSession, occurrence: datetime
) -> None:
    round_ = await session.get(CoffeeRound, round_id)
    if round_ is None or round_.followup_due_at is None:
        return
    round_.followup_due_at = None
    round_.followup_sent_at = occurrence
    program = await coffee.get_program(session, round_.program_id)
    assert program is not None and program.id is not None
    groups = (await coffee.round_groups(session, [round_id])).get(round_id, [])
    conversations = await coffee.intro_conversations(
        session, [group.intro_outbox_id for group, _ in groups if group.intro_outbox_id]
    )
    opted_in = {
        membership.user_id for membership, _ in await coffee.active_memberships(session, program.id)
    }
    people = await members.members_by_user_ids(
        session,
        program.platform,
        program.workspace_id,
        [entry.user_id for _, group_members in groups for entry in group_members],
    )
    outbox = Outbox(session, program.platform, program.workspace_id)
    for group, group_members in groups:
        # Groups whose intro never arrived were not introduced; groups that said they
        # met need no asking.
        delivered = (group.intro_outbox_id or -1) in conversations
        if not delivered or any(entry.answer == "met" for entry in group_members):
            continue
        for entry in group_members:
            if entry.user_id not in opted_in:
                continue
            partners = [
                people[other.user_id].display_name if other.user_id in people else other.user_id
                for other in group_members
                if other.user_id != entry.user_id
            ]
            text = kindred.templates.render(
                "coffee_followup", partners=partners, channel=channel_link(program)
            )
            await outbox.dm(
                entry.user_id,
                Message(text, buttons=answer_buttons(group.id)),
                key=f"coffee:{round_id}:followup:{entry.user_id}",
            )
            entry.asked_at = occurrence


def answer_buttons(group_id: int | None) -> tuple[Button, ...]:
    value = str(group_id)
    return (
        Button("Met", "coffee.met", value, ButtonStyle.PRIMARY),
        Button("Not yet", "coffee.not_yet", value),
        Button("Didn't happen", "coffee.didnt_happen", value),
    )


async def resume_member(
    kindred: Kindred, membership_id: int, session: AsyncSession, occurrence: datetime
) -> None:
    membership = await session.get(CoffeeMembership, membership_id)
    if membership is None or membership.resume_at is None or membership.resume_at > occurrence:
        return
    coffee.resume(membership)
    program = await coffee.get_program(session, membership.program_id)
    assert program is not None
    if not membership.active:
        return
    text = kindred.templates.render(
        "coffee_resumed",
        channel=channel_link(program),
        next_round=when(program.next_round_at, program.timezone),
    )
    outbox = Outbox(session, program.platform, program.workspace_id)
    await outbox.dm(
        membership.user_id,
        Message(text),
        key=f"coffee:resumed:{membership_id}:{occurrence.isoformat()}",
    )


# The tick ---------------------------------------------------------------------------


async def run_scheduled_round(kindred: Kindred, program: CoffeeProgram, now: datetime) -> bool:
    """Run the program's due round unless a replica already did; True if this one did."""
    assert program.id is not None
    program_id = program.id
    occurrence = latest_occurrence(program_schedule(program).trigger(), now)
    # (A fortnightly trigger counts from its anchor, so the window is checked here too.)
    if (
        occurrence is None
        or occurrence < program.next_round_at
        or occurrence < now - CATCH_UP_WINDOW
    ):
        await _skip_missed_round(kindred, program_id, now)
        return False
    listed = await platform_members(kindred, program)

    async def work(session: AsyncSession, occurrence: datetime) -> None:
        current = await coffee.get_program(session, program_id)
        if current is None or current.next_round_at > occurrence:
            return  # rescheduled by an admin meanwhile
        # A run-now in the same minute already made this occurrence's round.
        if await coffee.round_at(session, program_id, occurrence) is None:
            await start_round(kindred, session, current, occurrence, listed, manual=False)
        current.next_round_at = program_schedule(current).next_after(occurrence)

    return await kindred.scheduler.run_claimed(round_job(program_id), occurrence, work)


async def _skip_missed_round(kindred: Kindred, program_id: int, now: datetime) -> None:
    """The round time passed longer ago than the scheduler's catch-up window (the bot
    was down): pairing people days late would overlap the next round, so move on."""
    async with kindred.db.transaction() as session:
        program = await coffee.get_program(session, program_id)
        if program is None or program.next_round_at > now:
            return
        log.warning(
            "coffee program %s missed its round of %s; next round moved to the schedule",
            program_id,
            program.next_round_at.isoformat(),
        )
        program.next_round_at = program_schedule(program).next_after(now)


async def tick(kindred: Kindred, now: datetime) -> None:
    """Everything due now, in an order that keeps rounds consistent: resumes first
    (a member whose pause ends at round time is paired), then rounds (which close
    their predecessors), then reminders and follow-ups of the rounds still open."""
    platforms = list(kindred.platforms)
    if not platforms:
        return
    async with kindred.db.sessions() as session:
        resumes = [
            (membership.id, membership.resume_at)
            for membership in await coffee.memberships_to_resume(session, now, platforms)
        ]
        programs = await coffee.programs_due(session, now, platforms)
    scheduler = kindred.scheduler
    for membership_id, resume_at in resumes:
        assert membership_id is not None and resume_at is not None
        work = partial(resume_member, kindred, membership_id)
        await scheduler.run_claimed(resume_job(membership_id), resume_at, work)
    for program in programs:
        await run_scheduled_round(kindred, program, now)
    async with kindred.db.sessions() as session:
        reminders = [
            (round_.id, round_.reminder_due_at)
            for round_ in await coffee.rounds_due(session, "reminder_due_at", now, platforms)
        ]
        followups = [
            (round_.id, round_.followup_due_at)
            for round_ in await coffee.rounds_due(session, "followup_due_at", now, platforms)
        ]
    for round_id, due in reminders:
        assert round_id is not None and due is not None
        await scheduler.run_claimed(
            reminder_job(round_id), due, partial(send_reminder, kindred, round_id)
        )
    for round_id, due in followups:
        assert round_id is not None and due is not None
        await scheduler.run_claimed(
            followup_job(round_id), due, partial(send_followups, kindred, round_id)
        )


def schedule_tick(kindred: Kindred) -> None:
    kindred.scheduler.every(TICK, TICK_SECONDS, partial(tick, kindred))
