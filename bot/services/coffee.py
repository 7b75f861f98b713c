"""Virtual coffee rounds and what follows them (issue #3).

One periodic tick per replica reads what is due (indexed columns) and runs each
piece of work through `run_claimed`, so it happens exactly once across replicas
and restarts:
- `coffee.resume:<membership>`: a timed pause ended; the member is told.
- `coffee.round:<program>`: a scheduled round. Reading members, pairing, storing
  the round and queueing every intro happen in the claim's transaction: if it
  commits the outbox delivers the intros, if it does not nothing exists and the
  next tick claims the occurrence again. A committed round is never re-paired.
  The round also stores the program's history as arrays (`save_history`), so the next
  round reads one snapshot instead of every group member row of HISTORY_ROUNDS rounds
  (`load_history`; a snapshot not covering exactly the latest rounds is not used).
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
from datetime import datetime, timedelta
from itertools import combinations
from pathlib import Path

import numpy as np
import numpy.typing as npt
import yaml
from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.config_files import ConfigFileError, ConfigProblem, compose, string_list
from bot.core.errors import CommandError
from bot.core.figures import Figures, MemberAction, Period, Stored, as_member_actions
from bot.core.formatting import channel_link, plural
from bot.core.mentions import member_text, mention
from bot.core.outbox import Outbox
from bot.core.platform import (
    Button,
    ButtonStyle,
    Identity,
    MemberInfo,
    Message,
    MessageRef,
    PlatformError,
    Reply,
)
from bot.core.runtime import Runtime
from bot.core.templates import TemplateProblem, Templates, Trusted
from bot.domain.coffee import (
    ANSWERS,
    ProposerCandidate,
    RoundFigures,
    Schedule,
    choose_proposer,
    choose_starter,
    first_round_date,
    local_time,
    normalised,
    percent,
    rates,
    round_seed,
    round_window,
    utc_offset_hours,
)
from bot.domain.matching import Candidate, History, PairingConfig, PairingResult, make_groups
from storage import coffee, members
from storage.coffee import CoffeeMembership, CoffeeProgram, CoffeeRound
from storage.models import Member

log = logging.getLogger(__name__)

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
    runtime: Runtime, program: CoffeeProgram
) -> dict[str, MemberInfo] | None:
    """Who the platform says is in the program's channel (to skip deactivated
    accounts and bots); None when it cannot be asked, and stored flags are used."""
    platform = runtime.platforms.get(program.platform)
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


@dataclass(frozen=True, slots=True)
class ChannelMembers:
    """Who the platform listed in a program's channel, read before a command's
    transaction (`None` members: the platform could not be asked)."""

    program_id: int
    members: dict[str, MemberInfo] | None


def program_for(
    programs: list[CoffeeProgram], wanted: str | None, channel_id: str | None
) -> CoffeeProgram | None:
    """The program an admin command names (`channel=`), else the one of the channel
    it was typed in, else the community's only program; None when that is unclear
    (the command then explains, inside its transaction)."""
    by_channel = {program.channel_id: program for program in programs}
    if wanted is not None:
        return by_channel.get(wanted)
    if channel_id in by_channel:
        return by_channel[channel_id]
    return programs[0] if len(programs) == 1 else None


async def read_channel_members(
    runtime: Runtime, platform: str, workspace_id: str, wanted: str | None, channel_id: str | None
) -> ChannelMembers | None:
    """For `coffee preview` and `run-now`: find the program in a short read of its
    own, release the connection, then ask the platform, which may take seconds."""
    async with runtime.db.sessions() as session:
        programs = await coffee.community_programs(session, platform, workspace_id)
    program = program_for(programs, wanted, channel_id)
    if program is None or program.id is None:
        return None
    return ChannelMembers(program.id, await platform_members(runtime, program))


def members_read_for(
    prepared: ChannelMembers | None, program: CoffeeProgram
) -> dict[str, MemberInfo] | None:
    """What the preparation read for `program`; a program the preparation did not
    find (changed meanwhile) falls back to the stored flags, as when the platform
    cannot be reached, rather than asking the platform inside the transaction."""
    if prepared is None or prepared.program_id != program.id:
        return None
    return prepared.members


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


async def read_history(
    session: AsyncSession, program: CoffeeProgram, rounds: list[CoffeeRound] | None = None
) -> History:
    """Who met whom in this program (rounds ago), the previous round's trio and
    left-out members, and the community's blocks, from the group member rows of the
    latest `HISTORY_ROUNDS` rounds (`rounds`, when the caller read them already).

    Meetings go to the engine as arrays of member indices (`History` keeps each pair's
    latest meeting), so a big program's history costs no Python object per pair.
    """
    assert program.id is not None
    if rounds is None:
        rounds = await coffee.recent_rounds(session, program.id, limit=coffee.HISTORY_ROUNDS)
    rounds_ago = {round_.id: ago for ago, round_ in enumerate(rounds, start=1)}
    index: dict[str, int] = {}
    first: list[int] = []
    second: list[int] = []
    ages: list[int] = []
    grouped = await coffee.grouped_members(session, [key for key in rounds_ago if key])
    for round_id, groups in grouped.items():
        ago = rounds_ago[round_id]
        for user_ids in groups.values():
            at = [index.setdefault(user_id, len(index)) for user_id in user_ids]
            for a, b in combinations(at, 2):
                first.append(a)
                second.append(b)
            ages.extend([ago] * (len(at) * (len(at) - 1) // 2))
    return await _history(
        session,
        program,
        rounds,
        np.array(list(index), dtype=str),
        np.array(first, dtype=np.int64),
        np.array(second, dtype=np.int64),
        np.array(ages, dtype=np.int64),
    )


async def _history(
    session: AsyncSession,
    program: CoffeeProgram,
    rounds: list[CoffeeRound],
    member_ids: npt.NDArray[np.str_],
    first: npt.NDArray[np.int64],
    second: npt.NDArray[np.int64],
    rounds_ago: npt.NDArray[np.int64],
) -> History:
    blocks = await coffee.community_blocks(session, program.platform, program.workspace_id)
    previous = rounds[0] if rounds else None
    return History(
        member_ids=member_ids,
        first=first,
        second=second,
        rounds_ago=rounds_ago,
        trio_last_round=frozenset(previous.in_trio) if previous else frozenset(),
        left_out_last_round=frozenset(previous.left_out) if previous else frozenset(),
        blocked=frozenset(frozenset(pair) for pair in blocks if pair[0] != pair[1]),
    )


@dataclass(frozen=True, slots=True)
class LoadedHistory:
    """The history a round is made with, the rounds it covers (newest first), and
    whether it came from the stored snapshot rather than the group member rows."""

    history: History
    round_ids: list[int]
    from_snapshot: bool


async def load_history(session: AsyncSession, program: CoffeeProgram) -> LoadedHistory:
    """`read_history`, from the program's stored snapshot when it covers exactly the
    program's latest rounds (one read of those round rows decides), else from the group
    member rows (no snapshot yet, or rounds added or removed some other way)."""
    assert program.id is not None
    rounds = await coffee.recent_rounds(session, program.id, limit=coffee.HISTORY_ROUNDS)
    round_ids = [round_.id for round_ in rounds if round_.id is not None]
    snapshot = await coffee.history_snapshot(session, program.id)
    if snapshot is not None and snapshot.round_ids == round_ids:
        history = await _history(
            session,
            program,
            rounds,
            snapshot.member_ids,
            snapshot.first,
            snapshot.second,
            snapshot.rounds_ago,
        )
        return LoadedHistory(history, round_ids, from_snapshot=True)
    return LoadedHistory(await read_history(session, program, rounds), round_ids, False)


def within(history: History, rounds: int) -> History:
    """`history` with only the meetings of the last `rounds` rounds and the members
    they involve: what `read_history` reads from the rows of those rounds."""
    keep = history.rounds_ago <= rounds
    first, second, ago = history.first[keep], history.second[keep], history.rounds_ago[keep]
    used = np.zeros(history.member_ids.size, dtype=bool)
    used[first] = True
    used[second] = True
    ids = history.member_ids[used]
    if ids.size:
        # The width `read_history` gives them: that of the longest id.
        ids = ids.astype(f"<U{max(1, int(np.char.str_len(ids).max()))}")
    new_index = np.cumsum(used) - 1
    return History(member_ids=ids, first=new_index[first], second=new_index[second], rounds_ago=ago)


async def save_history(
    session: AsyncSession,
    program: CoffeeProgram,
    loaded: LoadedHistory,
    result: PairingResult,
    round_: CoffeeRound,
) -> bool:
    """In the round's transaction: store the history the next round needs, `loaded`
    carried forward by this round's groups (`History.after_round`) and cut to the last
    `HISTORY_ROUNDS` rounds. Only when the round is the program's latest on top of the
    ones `loaded` covered; otherwise the stale snapshot goes and the next round reads
    the rows. True when a snapshot was stored."""
    assert program.id is not None and round_.id is not None
    latest = await coffee.recent_rounds(session, program.id, limit=coffee.HISTORY_ROUNDS)
    round_ids = [row.id for row in latest if row.id is not None]
    if round_ids != [round_.id, *loaded.round_ids][: coffee.HISTORY_ROUNDS]:
        await coffee.drop_history_snapshot(session, program.id)
        return False
    carried = within(loaded.history.after_round(result), coffee.HISTORY_ROUNDS)
    arrays = coffee.HistoryArrays(
        round_ids, carried.member_ids, carried.first, carried.second, carried.rounds_ago
    )
    await coffee.save_history_snapshot(session, program.id, arrays, round_.created_at)
    return True


@dataclass(frozen=True, slots=True)
class Plan:
    roster: Roster
    result: PairingResult
    history: LoadedHistory


async def plan_round(
    session: AsyncSession,
    program: CoffeeProgram,
    occurrence: datetime,
    listed: Mapping[str, MemberInfo] | None,
) -> Plan:
    """The groups a round at `occurrence` makes; reads only (preview uses it as is)."""
    assert program.id is not None
    roster = await read_roster(session, program, occurrence, listed)
    loaded = await load_history(session, program)
    config = PairingConfig(
        group_size=program.group_size,
        repeat_window=program.repeat_window,
        seed=round_seed(program.id, occurrence),
    )
    return Plan(roster, make_groups(roster.candidates, loaded.history, config), loaded)


# A round ----------------------------------------------------------------------------


async def start_round(
    runtime: Runtime,
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
    starters = load_starters(runtime.settings.config_dir)
    outbox = Outbox(session, program.platform, program.workspace_id)
    await close_rounds(runtime, session, outbox, program, occurrence)
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
    if not manual:
        # A skip names the next scheduled round: an extra round an admin starts before
        # it leaves the member out too, but only the scheduled round uses the skip up.
        for user_id in plan.roster.skipping:
            plan.roster.memberships[user_id].skip_next = False
    await _store_groups(runtime, session, outbox, program, round_, plan, starters)
    await save_history(session, program, plan.history, plan.result, round_)
    for user_id in quality.left_out:
        text = runtime.templates.render(
            "coffee/left_out",
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
    runtime: Runtime,
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
        text = runtime.templates.render(
            "coffee/intro",
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
    runtime: Runtime,
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
            text = runtime.templates.render(
                "coffee/paused_for_silence",
                plural=plural,
                channel=channel_link(program),
                ignored=membership.ignored_followups,
            )
            await outbox.dm(user_id, Message(text), key=f"coffee:{round_id}:silence:{user_id}")


# Reminders, follow-ups, resumes -----------------------------------------------------------


async def send_reminder(
    runtime: Runtime, round_id: int, session: AsyncSession, occurrence: datetime
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
        text = runtime.templates.render(
            "coffee/reminder",
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
    runtime: Runtime, round_id: int, session: AsyncSession, occurrence: datetime
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
            text = runtime.templates.render(
                "coffee/followup", partners=partners, channel=channel_link(program)
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
    runtime: Runtime, membership_id: int, session: AsyncSession, occurrence: datetime
) -> None:
    membership = await session.get(CoffeeMembership, membership_id)
    if membership is None or membership.resume_at is None or membership.resume_at > occurrence:
        return
    coffee.resume(membership)
    program = await coffee.get_program(session, membership.program_id)
    assert program is not None
    if not membership.active:
        return
    text = runtime.templates.render(
        "coffee/resumed",
        channel=channel_link(program),
        next_round=when(program.next_round_at, program.timezone),
    )
    outbox = Outbox(session, program.platform, program.workspace_id)
    await outbox.dm(
        membership.user_id,
        Message(text),
        key=f"coffee:resumed:{membership_id}:{occurrence.isoformat()}",
    )


def _share(part: int, whole: int) -> float | None:
    return part / whole if whole else None


# What each coffee action means to the health report (DESIGN.md §7).
ACTION_MEANINGS = {"joined": ("coffee", False), "met": ("coffee_met", False)}


async def actions(session: AsyncSession, period: Period) -> list[MemberAction]:
    """Members opting into coffee for the first time, and saying they met."""
    rows = await coffee.member_actions(
        session, period.platform, period.workspace_id, period.start, period.end
    )
    return as_member_actions(rows, ACTION_MEANINGS)


async def stored_about(session: AsyncSession, member: Identity) -> Stored:
    """What coffee keeps about a member, for `/kindred privacy`."""
    stored = await coffee.stored_about(
        session, member.platform, member.workspace_id, member.user_id
    )
    return Stored(
        "coffee/stored_about",
        {
            "memberships": stored.memberships,
            "groups": stored.groups,
            "answers": stored.answers,
            "blocks": stored.blocks,
        },
    )


async def forget_feedback(session: AsyncSession, member: Identity) -> int:
    """Erase a member's "Did you meet?" answers (the groups stay: pairing history)."""
    return await coffee.forget_answers(
        session, member.platform, member.workspace_id, member.user_id
    )


async def metrics(session: AsyncSession, period: Period) -> Figures:
    """Coffee's figures for the health report: how many took part and how many met."""
    figures = await coffee.period_figures(
        session, period.platform, period.workspace_id, period.start, period.end
    )
    return {
        "rounds": figures.rounds,
        "participants": figures.participants,
        "distinct_participants": figures.distinct_participants,
        "groups": figures.groups,
        # Among groups that answered "Did you meet?"; unanswered groups are unknown.
        "meet_rate": _share(figures.groups_met, figures.groups_answered),
        "answer_rate": _share(figures.groups_answered, figures.groups),
        "repeat_rate": _share(figures.repeat_pairs, figures.total_pairs),
    }


# What members and admins ask for ------------------------------------------------------
# The commands parse, find the program and call these; the texts they return are the
# replies. Each runs in the caller's transaction and calls no platform.

MAX_PAUSE_WEEKS = 12
HOME_PAUSE_WEEKS = 2
STATS_ROUNDS = 8


def when_for(program: CoffeeProgram, moment: datetime, zone: str | None) -> str:
    """A time in the program's zone, plus the member's own (`zone`) when it differs."""
    text = f"{when(moment, program.timezone)} ({program.timezone})"
    if zone and zone != program.timezone:
        text += f", {when(moment, zone)} your time"
    return text


def joined_text(
    templates: Templates, program: CoffeeProgram, zone: str | None, *, automatic: bool
) -> str:
    return templates.render(
        "coffee/joined",
        automatic=automatic,
        channel=channel_link(program),
        schedule=program_schedule(program).describe(),
        next_round=when_for(program, program.next_round_at, zone),
        has_timezone=bool(zone),
    )


async def join_program(
    session: AsyncSession,
    templates: Templates,
    program: CoffeeProgram,
    user_id: str,
    now: datetime,
    zone: str | None,
) -> str:
    assert program.id is not None
    _, changed = await coffee.join(session, program.id, user_id, now)
    if not changed:
        return (
            f"You're already in the virtual coffee of {channel_link(program)}. "
            f"The next round starts {when_for(program, program.next_round_at, zone)}."
        )
    return joined_text(templates, program, zone, automatic=False)


async def opt_in_on_channel_join(
    session: AsyncSession,
    outbox: Outbox,
    templates: Templates,
    program: CoffeeProgram,
    member: Member,
    now: datetime,
) -> None:
    """Joining a program's channel opts the member in when the program says so; the
    member is told by DM (the join itself has no reply)."""
    if not program.auto_join or member.is_bot:
        return
    assert program.id is not None
    existing = await coffee.get_membership(session, program.id, member.user_id)
    if existing is not None and existing.active:
        return
    membership, _ = await coffee.join(session, program.id, member.user_id, now)
    text = joined_text(templates, program, member.timezone, automatic=True)
    await outbox.dm(
        member.user_id,
        Message(text),
        key=f"coffee:auto-joined:{membership.id}:{membership.joined_at.isoformat()}",
    )


def leave_program(program: CoffeeProgram, membership: CoffeeMembership, now: datetime) -> str:
    membership.active = False
    membership.left_at = now
    membership.skip_next = False
    return (
        f"You've left the virtual coffee of {channel_link(program)}. Your past matches are "
        "remembered, so if you come back (`/kindred coffee join`) you'll meet new people."
    )


def end_memberships(
    mine: list[tuple[CoffeeProgram, CoffeeMembership]], channel_id: str | None, now: datetime
) -> None:
    """Leaving a program's channel (or the community, no channel) ends the membership;
    the history stays so a comeback still avoids repeats."""
    for program, membership in mine:
        if channel_id and program.channel_id != channel_id:
            continue
        if membership.active:
            membership.active = False
            membership.left_at = now


def pause_membership(
    program: CoffeeProgram,
    membership: CoffeeMembership,
    weeks: int,
    now: datetime,
    zone: str | None,
) -> str:
    membership.paused = True
    membership.pause_reason = "member"
    membership.resume_at = now + timedelta(weeks=weeks)
    membership.skip_next = False
    back = when_for(program, membership.resume_at, zone)
    return (
        f"Paused for {plural(weeks, 'week')} in {channel_link(program)}. You're back in on "
        f"{back}, and I'll message you then. Back sooner? `/kindred coffee resume`."
    )


def resume_membership(
    program: CoffeeProgram, membership: CoffeeMembership, zone: str | None
) -> str:
    next_round = when_for(program, program.next_round_at, zone)
    if not membership.paused and not membership.skip_next:
        return (
            f"You're not paused in {channel_link(program)}: you're in the next round, {next_round}."
        )
    coffee.resume(membership)
    membership.skip_next = False
    return f"Welcome back! You're in the next round of {channel_link(program)}, {next_round}."


def skip_next_round(program: CoffeeProgram, membership: CoffeeMembership, zone: str | None) -> str:
    if membership.paused:
        raise CommandError(
            f"You're paused in {channel_link(program)} already; `/kindred coffee resume` "
            "brings you back."
        )
    membership.skip_next = True
    next_round = when_for(program, program.next_round_at, zone)
    return (
        f"You'll sit out the round of {next_round} in {channel_link(program)} (and any extra "
        "round an organiser starts before it) and be back for the one after. "
        "Changed your mind? `/kindred coffee resume`."
    )


async def block_member(
    session: AsyncSession, platform: str, workspace_id: str, user_id: str, other: str
) -> str:
    if other == user_id:
        raise CommandError("You can't block yourself. Mention someone else, like @ana.")
    person = await members.get_member(session, platform, workspace_id, other)
    if person is None:
        # Saying "Done" would promise a block against an id nobody here has.
        raise CommandError(
            f"I don't know {mention(other)} in this community, so there's nobody to block. "
            "Check the mention, or try again once they've used Kindred."
        )
    added = await coffee.add_block(session, platform, workspace_id, user_id, other)
    already = "" if added else " (you had already asked)"
    return (
        f"Done{already}: you and {member_text(person.display_name)} will never be paired in "
        "any virtual coffee program here. Nobody is told, and only you can see this. Undo it with "
        f"`/kindred coffee unblock {mention(other)}`."
    )


async def unblock_member(
    session: AsyncSession, platform: str, workspace_id: str, user_id: str, other: str
) -> str:
    person = await members.ensure_member(session, platform, workspace_id, other)
    if not await coffee.remove_block(session, platform, workspace_id, user_id, other):
        return f"You hadn't blocked {member_text(person.display_name)}; nothing to undo."
    return f"Unblocked: you and {member_text(person.display_name)} may be paired again."


def membership_state(membership: CoffeeMembership, program: CoffeeProgram) -> str:
    if membership.paused and membership.resume_at is not None:
        return f"paused until {when(membership.resume_at, program.timezone)}"
    if membership.paused:
        return "paused (`/kindred coffee resume` to come back)"
    if membership.skip_next:
        return "skipping the next round"
    return "in"


async def member_status(
    session: AsyncSession,
    templates: Templates,
    platform: str,
    workspace_id: str,
    user_id: str,
    zone: str | None,
) -> str:
    """`coffee status`: the member's programs, states, next rounds, last partners and
    blocks (blocks are shown only to the member who made them)."""
    mine = await coffee.member_memberships(session, platform, workspace_id, user_id)
    shown = []
    for program, membership in mine:
        if not membership.active:
            continue
        assert program.id is not None
        partners = await coffee.last_partners(session, program.id, user_id)
        people = await members.members_by_user_ids(
            session, platform, workspace_id, [user for _, users in partners for user in users]
        )
        shown.append(
            {
                "channel": channel_link(program),
                "state": membership_state(membership, program),
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
        for blocker, blocked_id in await coffee.community_blocks(session, platform, workspace_id)
        if blocker == user_id
    ]
    blocked_people = await members.members_by_user_ids(session, platform, workspace_id, blocked)
    joined = {program.id for program, membership in mine if membership.active}
    programs = await coffee.community_programs(session, platform, workspace_id)
    return templates.render(
        "coffee/status",
        programs=shown,
        available=[channel_link(program) for program in programs if program.id not in joined],
        blocked=[blocked_people[u].display_name for u in blocked if u in blocked_people],
    )


async def home_section(
    session: AsyncSession,
    templates: Templates,
    platform: str,
    workspace_id: str,
    user_id: str,
    zone: str | None,
) -> Reply:
    """The member's coffee on the home tab, with Skip/Pause or Resume per program,
    or a Join button when the community has a program the member is not in."""
    mine = [
        (program, membership)
        for program, membership in await coffee.member_memberships(
            session, platform, workspace_id, user_id
        )
        if membership.active
    ]
    programs = []
    buttons: list[Button] = []
    for number, (program, membership) in enumerate(mine, start=1):
        suffix = f" ({number})" if len(mine) > 1 else ""
        programs.append(
            {
                "channel": channel_link(program),
                "state": membership_state(membership, program),
                "next_round": when(program.next_round_at, zone or program.timezone),
            }
        )
        value = str(program.id)
        if membership.paused or membership.skip_next:
            buttons.append(Button(f"Resume{suffix}", "coffee.resume", value, ButtonStyle.PRIMARY))
        else:
            buttons.append(Button(f"Skip next round{suffix}", "coffee.skip", value))
            buttons.append(Button(f"Pause {HOME_PAUSE_WEEKS} weeks{suffix}", "coffee.pause", value))
    available = not mine and bool(await coffee.community_programs(session, platform, workspace_id))
    if available:
        # "" lets the member pick when the community has several programs.
        buttons = [Button("Join virtual coffee", "coffee.join", "", ButtonStyle.PRIMARY)]
    text = templates.render("coffee/home", programs=programs, available=available)
    return Reply.text(text, *buttons)


def join_choices(programs: list[CoffeeProgram]) -> Reply:
    """Welcome's "Join virtual coffee" in a community with several programs."""
    lines = ["Which virtual coffee would you like to join?"]
    buttons = []
    for number, program in enumerate(programs, start=1):
        lines.append(f"{number}. {channel_link(program)}: {program_schedule(program).describe()}")
        buttons.append(Button(f"Join {number}", "coffee.join", str(program.id)))
    return Reply.text("\n".join(lines), *buttons)


async def record_answer(
    session: AsyncSession,
    templates: Templates,
    group_id: int,
    member: Member,
    answer: str,
    clicked: MessageRef | None,
    now: datetime,
) -> Reply:
    """Record a member's "Did you meet?" answer (the last one counts)."""
    found = await coffee.group_with_members(session, group_id)
    if found is None:
        raise CommandError("That coffee round no longer exists.")
    group, group_members = found
    entry = next((m for m in group_members if m.user_id == member.user_id), None)
    if entry is None:
        return Reply.text("This button belongs to another coffee group.")
    entry.answer = answer
    entry.answered_at = now
    membership = await coffee.get_membership(session, group.program_id, member.user_id)
    if membership is not None:
        membership.ignored_followups = 0
    thanks = Message(f"Thanks, noted: {ANSWERS[answer]}.")
    if clicked is not None and clicked.message_id == await coffee.intro_message_id(session, group):
        # The intro keeps its buttons and text: the group still needs who's who.
        return Reply(message=thanks)
    text = templates.render("coffee/answered", answer=answer, name=member.display_name)
    # "Not yet" keeps a Met button so the member can report the meeting later.
    buttons = answer_buttons(group.id)[:1] if answer == "not_yet" else ()
    return Reply(message=thanks, update_original=Message(text, buttons=buttons))


# Admins ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SetupRequest:
    """Who runs `coffee setup` where, with which (already parsed) settings."""

    platform: str
    workspace_id: str
    channel_id: str
    user_id: str
    zone: str | None
    settings: Mapping[str, object]


async def show_setup(
    runtime: Runtime, session: AsyncSession, request: SetupRequest, now: datetime
) -> str:
    """`coffee setup` with nothing to change: the channel's settings, or, with no
    program here, what creating one would set up and how."""
    program = await coffee.program_in_channel(
        session, request.platform, request.workspace_id, request.channel_id
    )
    if program is not None:
        return await program_text(runtime.templates, session, program, request.zone, "current")
    # Not added to the session: it only shows the defaults a new program gets.
    defaults = CoffeeProgram(
        platform=request.platform,
        workspace_id=request.workspace_id,
        channel_id=request.channel_id,
        timezone=request.zone or runtime.settings.timezone,
        anchor_date=now.date(),
        next_round_at=now,
        created_by=request.user_id,
    )
    defaults.anchor_date = first_round_date(defaults.weekday, defaults.hour, defaults.timezone, now)
    first = program_schedule(defaults).next_after(now)
    return runtime.templates.render(
        "coffee/setup_hint",
        plural=plural,
        channel=channel_link(defaults),
        schedule=program_schedule(defaults).describe(),
        next_round=when_for(defaults, first, request.zone),
        group_size=defaults.group_size,
        auto_join=defaults.auto_join,
        repeat_window=defaults.repeat_window,
        max_ignored=defaults.max_ignored,
    )


async def set_up(
    runtime: Runtime,
    session: AsyncSession,
    outbox: Outbox,
    request: SetupRequest,
    now: datetime,
) -> str:
    """Create the channel's program (announcing it) or change its settings."""
    program = await coffee.program_in_channel(
        session, request.platform, request.workspace_id, request.channel_id
    )
    created = program is None
    if program is None:
        program = CoffeeProgram(
            platform=request.platform,
            workspace_id=request.workspace_id,
            channel_id=request.channel_id,
            timezone=request.zone or runtime.settings.timezone,
            anchor_date=now.date(),
            next_round_at=now,
            created_by=request.user_id,
        )
    before = program_schedule(program)
    for name, value in request.settings.items():
        setattr(program, name, value)
    if created or program_schedule(program) != before:
        program.anchor_date = first_round_date(program.weekday, program.hour, program.timezone, now)
        program.next_round_at = program_schedule(program).next_after(now)
    program.updated_at = now
    session.add(program)
    await session.flush()
    assert program.id is not None
    if created:
        announcement = runtime.templates.render(
            "coffee/announce",
            channel=channel_link(program),
            schedule=program_schedule(program).describe(),
            next_round=f"{when(program.next_round_at, program.timezone)} ({program.timezone})",
            auto_join=program.auto_join,
        )
        button = Button("Join virtual coffee", "coffee.join", str(program.id), ButtonStyle.PRIMARY)
        await outbox.post(
            program.channel_id,
            Message(announcement, buttons=(button,)),
            key=f"coffee:announce:{program.id}",
        )
    state = "created" if created else "updated"
    return await program_text(runtime.templates, session, program, request.zone, state)


async def program_text(
    templates: Templates,
    session: AsyncSession,
    program: CoffeeProgram,
    zone: str | None,
    state: str,
) -> str:
    """A program's settings; `state` is "created", "updated" or "current"."""
    assert program.id is not None
    return templates.render(
        "coffee/program",
        plural=plural,
        channel=channel_link(program),
        state=state,
        schedule=program_schedule(program).describe(),
        next_round=when_for(program, program.next_round_at, zone),
        group_size=program.group_size,
        auto_join=program.auto_join,
        repeat_window=program.repeat_window,
        max_ignored=program.max_ignored,
        members=len(await coffee.active_memberships(session, program.id)),
    )


def preview_text(templates: Templates, program: CoffeeProgram, plan: Plan, zone: str | None) -> str:
    names = {user_id: member.display_name for user_id, member in plan.roster.members.items()}
    quality = plan.result.quality
    return templates.render(
        "coffee/preview",
        plural=plural,
        channel=channel_link(program),
        next_round=when_for(program, program.next_round_at, zone),
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


async def run_now(
    runtime: Runtime,
    session: AsyncSession,
    program: CoffeeProgram,
    now: datetime,
    listed: Mapping[str, MemberInfo] | None,
    zone: str | None,
) -> str:
    """An admin's extra round now, claimed like a scheduled one (`listed` was read
    from the platform before the transaction)."""
    assert program.id is not None
    # Claimed per minute: a double click (or two admins at once) makes one round.
    occurrence = now.replace(second=0, microsecond=0)
    already = CommandError(
        f"A round of {channel_link(program)} started at {when(occurrence, program.timezone)} "
        "already; its intros are on their way."
    )
    if not await runtime.claims.claim_in(session, manual_round_job(program.id), occurrence):
        raise already
    if await coffee.round_at(session, program.id, occurrence) is not None:
        raise already
    round_ = await start_round(runtime, session, program, occurrence, listed, manual=True)
    if round_.groups == 0:
        return (
            f"Round started in {channel_link(program)}, but with "
            f"{plural(round_.participants, 'eligible member')} there was nobody to pair. "
            "Members join with `/kindred coffee join`."
        )
    return (
        f"Round started in {channel_link(program)}: {plural(round_.participants, 'member')} in "
        f"{plural(round_.groups, 'group')} (solved in {round_.solver_ms:.1f} ms). Intros are on "
        "their way; the scheduled round after it is "
        f"{when_for(program, program.next_round_at, zone)}."
    )


async def stats_text(
    session: AsyncSession, templates: Templates, program: CoffeeProgram, zone: str | None
) -> str:
    """`coffee stats`: totals over every round and the latest rounds one by one."""
    assert program.id is not None
    # A round nobody was in (a run-now with no members) is not a round to report.
    rounds = [
        round_
        for round_ in await coffee.recent_rounds(session, program.id, limit=None)
        if round_.participants
    ]
    outcomes = await coffee.round_outcomes(session, program.id)
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
        if figure.asked:
            met = f"{figure.met_groups}/{figure.groups} ({figure.answered_groups} answered)"
        elif figure.met_groups:
            met = f"{figure.met_groups}/{figure.groups} so far (not asked yet)"
        else:
            met = "not asked yet"
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
        "members": await coffee.distinct_participants(session, program.id),
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
    return templates.render(
        "coffee/stats",
        plural=plural,
        channel=channel_link(program),
        next_round=when_for(program, program.next_round_at, zone),
        rounds=rows,
        totals=totals,
    )
