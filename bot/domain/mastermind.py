"""Mastermind rules, pure: reading what organisers and members type (group sizes,
cadence, deadlines, weekly slots in the member's own time zone), forming groups
with the hard rules on top of the engine's groups solver, the fair hot-seat
rotation, a group's health (participation, silence, alive at week 8).

Times cross this module as aware datetimes; weekly slots as UTC minutes of the
week (0 = Monday 00:00 UTC), the engine's unit (`bot.domain.matching.Applicant`).
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from itertools import combinations
from zoneinfo import ZoneInfo

from bot.core.mentions import member_text
from bot.domain.matching import Applicant, Cohort, CohortConfig, backfill_seat, make_cohorts

MINUTES_PER_DAY = 24 * 60
ECHO_LIMIT = 80
MINUTES_PER_WEEK = 7 * MINUTES_PER_DAY
DEFAULT_SIZE = (5, 7)
SMALLEST_GROUP = 3
# Slack's conversations.open opens a group DM of at most 8 users (too_many_users).
LARGEST_GROUP = 8
DEFAULT_SESSIONS = 6
MAX_SESSIONS = 24
DEFAULT_SESSION_MINUTES = 60
SESSION_MINUTES = (30, 180)
MAX_NAME_LENGTH = 100
MAX_CHALLENGE_LENGTH = 500
MAX_TAGS = 5
MAX_TAG_LENGTH = 40
MAX_SLOTS = 10
MAX_UPDATE_LENGTH = 400
MAX_UPDATE_LINES = 2
MAX_COMMITMENT_LENGTH = 300
MAX_COMMENT_LENGTH = 300
# The agenda goes out a day before a session, the commitment prompt two hours after
# it ends, and the group's figures are looked at a day after it started ("the
# organiser is alerted within a day").
AGENDA_LEAD = timedelta(hours=24)
FOLLOWUP_DELAY = timedelta(hours=2)
REVIEW_DELAY = timedelta(hours=24)
# A group forms at least this long before its first session, so the intro lands
# before the first agenda does.
FIRST_SESSION_NOTICE = timedelta(hours=48)
LOW_SHARE = 0.6
SILENT_FOR = timedelta(weeks=3)
SILENT_MEMBERS = 2
WEEK_EIGHT = timedelta(weeks=8)
ALIVE_SHARE = 0.5
_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_DAY_WORDS = {
    **{day: (index,) for index, day in enumerate(_DAYS)},
    **{
        name: (index,)
        for index, name in enumerate(
            ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
        )
    },
    "tues": (1,),
    "weds": (2,),
    "thur": (3,),
    "thurs": (3,),
    "weekdays": (0, 1, 2, 3, 4),
    "weekends": (5, 6),
}
_SLOT = re.compile(
    r"^(?P<days>[a-z]+(?:\s*-\s*[a-z]+)?)\s+"
    r"(?P<start>\d{1,2}(?::\d{2})?)\s*-\s*(?P<end>\d{1,2}(?::\d{2})?)$"
)
_TIME = re.compile(r"^(?P<hour>\d{1,2})(?::(?P<minute>\d{2}))?$")
_DURATION = re.compile(r"^(?:(?P<hours>\d+)h)?(?:(?P<minutes>\d+)m(?:in)?)?$")
SLOT_EXAMPLE = "Mon 18:00-20:00, Thu 12-14"


class MastermindInputError(ValueError):
    """What a person typed cannot be used; the message says why and how to fix it
    (in neutral markup: their own words in it are member text, so they cannot ping)."""


def _echo(text: str) -> str:
    """A member's words repeated in an answer: mention-safe, and not too long."""
    shown = text if len(text) <= ECHO_LIMIT else text[:ECHO_LIMIT] + "…"
    return member_text(shown)


class Cadence(StrEnum):
    WEEKLY = "weekly"
    BIWEEKLY = "biweekly"

    @property
    def days(self) -> int:
        return 7 if self is Cadence.WEEKLY else 14

    @property
    def words(self) -> str:
        return "every week" if self is Cadence.WEEKLY else "every 2 weeks"


CADENCE_ALIASES = {"every-2-weeks": "biweekly", "fortnightly": "biweekly", "2w": "biweekly"}


class CycleState(StrEnum):
    OPEN = "open"  # taking applications
    RUNNING = "running"  # groups formed, sessions under way
    ENDED = "ended"


class ApplicationStatus(StrEnum):
    WAITING = "waiting"  # applied, not (yet) in a group: the backfill pool once formed
    GROUPED = "grouped"
    LEFT = "left"  # left the cycle (a group, or the waiting list)


class EventKind(StrEnum):
    """A session's steps, in order, each run once by the tick."""

    AGENDA = "agenda"
    FOLLOWUP = "followup"
    REVIEW = "review"


# --- reading what people type ------------------------------------------------------


def clean_name(text: str) -> str:
    name = " ".join(text.split())
    if not name:
        raise MastermindInputError('Give the cycle a name, e.g. `name="CX leaders, winter"`.')
    if len(name) > MAX_NAME_LENGTH:
        raise MastermindInputError(f"Keep the name under {MAX_NAME_LENGTH} characters.")
    return name


def parse_size(text: str) -> tuple[int, int]:
    """`5-7` (or one number for a fixed size) → (smallest, largest) group."""
    match = re.fullmatch(r"\s*(\d{1,3})\s*(?:-\s*(\d{1,3}))?\s*", text)
    if match is None:
        raise MastermindInputError(
            f"Give the group size as a range like `size=5-7`, not `{_echo(text.strip())}`."
        )
    low = int(match.group(1))
    high = int(match.group(2) or low)
    if low > high:
        raise MastermindInputError(f"The smallest size ({low}) is above the largest ({high}).")
    if low < SMALLEST_GROUP:
        raise MastermindInputError(
            f"A group of {low} is too small for a mastermind: at least {SMALLEST_GROUP} "
            f"(the usual is {DEFAULT_SIZE[0]}-{DEFAULT_SIZE[1]})."
        )
    if high > LARGEST_GROUP:
        raise MastermindInputError(
            f"A group of {high} is too big: at most {LARGEST_GROUP}, so everyone gets the "
            "hot seat and the group fits one group conversation "
            f"(the usual is {DEFAULT_SIZE[0]}-{DEFAULT_SIZE[1]})."
        )
    return low, high


def parse_session_minutes(text: str) -> int:
    """`45m`, `1h`, `1h30m`, `90` → minutes, within SESSION_MINUTES."""
    spoken = text.strip().lower().replace(" ", "")
    match = _DURATION.fullmatch(spoken)
    if spoken.isdigit():
        minutes = int(spoken)
    elif match is not None and spoken:
        minutes = int(match.group("hours") or 0) * 60 + int(match.group("minutes") or 0)
    else:
        raise MastermindInputError(
            "Give the session length like `length=1h` or `length=90m`, "
            f"not `{_echo(text.strip())}`."
        )
    low, high = SESSION_MINUTES
    if not low <= minutes <= high:
        raise MastermindInputError(f"A session lasts {low} minutes to {high // 60} hours.")
    return minutes


def parse_deadline(text: str, zone: ZoneInfo, now: datetime) -> datetime:
    """`2026-12-10` (the end of that day) or `2026-12-10 18:00`, in `zone`, or a
    lead from now (`7d`, `36h`) → UTC."""
    spoken = text.strip()
    lead = re.fullmatch(r"(\d{1,3})\s*([dh])", spoken.lower())
    if lead is not None:
        amount = int(lead.group(1))
        delta = timedelta(days=amount) if lead.group(2) == "d" else timedelta(hours=amount)
        if not delta:
            raise MastermindInputError("The application deadline has to be in the future.")
        return now + delta
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", spoken):
            local = datetime.combine(date.fromisoformat(spoken), time(23, 59), zone)
        else:
            local = datetime.strptime(spoken, "%Y-%m-%d %H:%M").replace(tzinfo=zone)
    except ValueError:
        raise MastermindInputError(
            f'Give the deadline as `deadline=2026-12-10`, `deadline="2026-12-10 18:00"` '
            f"(your time zone) or `deadline=7d`, not `{_echo(spoken)}`."
        ) from None
    moment = local.astimezone(UTC)
    if moment <= now:
        raise MastermindInputError("The application deadline has to be in the future.")
    return moment


def clean_challenge(text: str) -> str:
    challenge = text.strip()
    if not challenge:
        raise MastermindInputError(
            "Tell the group which challenge you want to work on, e.g. "
            '`challenge="Cut first-response time without burning out the team"`.'
        )
    if len(challenge) > MAX_CHALLENGE_LENGTH:
        raise MastermindInputError(
            f"Keep your challenge under {MAX_CHALLENGE_LENGTH} characters "
            f"(it is {len(challenge)}); the details are for the hot seat."
        )
    return challenge


def parse_tags(text: str) -> tuple[str, ...]:
    """Comma-separated challenge tags, lower case, without repeats."""
    tags: list[str] = []
    for raw in text.split(","):
        tag = " ".join(raw.split()).lower()
        if not tag or tag in tags:
            continue
        if len(tag) > MAX_TAG_LENGTH:
            raise MastermindInputError(f"Keep each tag under {MAX_TAG_LENGTH} characters.")
        tags.append(tag)
    if not tags:
        raise MastermindInputError(
            'Give at least one tag for your challenge, e.g. `tags="onboarding, churn"`.'
        )
    if len(tags) > MAX_TAGS:
        raise MastermindInputError(f"That's {len(tags)} tags; pick your top {MAX_TAGS}.")
    return tuple(tags)


def _minute_of_day(text: str, *, end: bool) -> int:
    match = _TIME.fullmatch(text)
    assert match is not None  # _SLOT only lets times of this shape through
    hour, minute = int(match.group("hour")), int(match.group("minute") or 0)
    if minute >= 60 or hour > 24 or (hour == 24 and (minute or not end)):
        raise MastermindInputError(f"`{_echo(text)}` is not a time of day.")
    return hour * 60 + minute


def _days(text: str) -> tuple[int, ...]:
    words = [word.strip() for word in text.split("-")]
    if len(words) == 1:
        days = _DAY_WORDS.get(words[0])
        if days is None:
            raise MastermindInputError(f"`{_echo(words[0])}` is not a day.")
        return days
    first, last = (_DAY_WORDS.get(word) for word in words)
    if first is None or last is None or len(first) != 1 or len(last) != 1:
        raise MastermindInputError(f"`{_echo(text)}` is not a range of days like `Mon-Fri`.")
    return tuple((first[0] + step) % 7 for step in range((last[0] - first[0]) % 7 + 1))


@dataclass(frozen=True, slots=True)
class LocalSlot:
    """A weekly stretch in the member's own time: day 0 = Monday, minutes of the day."""

    day: int
    start: int
    end: int

    def describe(self) -> str:
        return f"{_DAYS[self.day].title()} {clock_time(self.start)}-{clock_time(self.end)}"


def clock_time(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def parse_slots(text: str) -> tuple[LocalSlot, ...]:
    """`Mon 18:00-20:00, Thu 12-14`, `weekdays 12-13`, `Tue-Thu 9:30-11` → weekly slots."""
    slots: list[LocalSlot] = []
    for raw in re.split(r"[,;\n]", text):
        spoken = " ".join(raw.lower().split())
        if not spoken:
            continue
        match = _SLOT.fullmatch(spoken)
        if match is None:
            raise MastermindInputError(
                f"I can't read `{_echo(raw.strip())}` as a weekly slot. Give a day and a time "
                f"range in your own time zone, e.g. `{SLOT_EXAMPLE}`."
            )
        start = _minute_of_day(match.group("start"), end=False)
        end = _minute_of_day(match.group("end"), end=True)
        if end <= start:
            raise MastermindInputError(
                f"In `{_echo(raw.strip())}` the slot ends before it starts; "
                "a slot past midnight is two slots, one per day."
            )
        slots.extend(LocalSlot(day, start, end) for day in _days(match.group("days")))
    if not slots:
        raise MastermindInputError(
            f'Tell me when you are free each week, e.g. `slots="{SLOT_EXAMPLE}"`.'
        )
    if len(slots) > MAX_SLOTS:
        raise MastermindInputError(f"That's {len(slots)} slots; {MAX_SLOTS} at most.")
    return tuple(slots)


def reference_monday(moment: datetime, zone: ZoneInfo) -> date:
    """The Monday (in `zone`) of the week after `moment`: the week whose UTC offsets
    turn local slots into UTC ones (the offset of the cycle's own weeks)."""
    local = moment.astimezone(zone).date()
    return local + timedelta(days=7 - local.weekday())


def to_utc_week(
    slots: Iterable[LocalSlot], zone: ZoneInfo, monday: date
) -> tuple[tuple[int, int], ...]:
    """Local weekly slots as UTC minutes of the week `(start, end)`; a slot that
    wraps past Sunday midnight UTC keeps `end` above MINUTES_PER_WEEK (the engine's form)."""
    week_start = datetime.combine(monday, time(0), UTC)
    spans: list[tuple[int, int]] = []
    for slot in slots:
        local = datetime.combine(monday + timedelta(days=slot.day), time(0), zone)
        start = local + timedelta(minutes=slot.start)
        minute = int((start.astimezone(UTC) - week_start).total_seconds() // 60) % MINUTES_PER_WEEK
        spans.append((minute, minute + slot.end - slot.start))
    return tuple(sorted(spans))


def next_weekly(minute: int, after: datetime) -> datetime:
    """The first moment at or after `after` that falls on UTC minute-of-week `minute`."""
    utc = after.astimezone(UTC)
    week_start = datetime.combine(utc.date() - timedelta(days=utc.weekday()), time(0), UTC)
    moment = week_start + timedelta(minutes=minute % MINUTES_PER_WEEK)
    while moment < utc:
        moment += timedelta(weeks=1)
    return moment


def local_when(moment: datetime, zone: ZoneInfo) -> str:
    """`Tue 1 Dec, 18:00`: a session time as its reader reads it."""
    local = moment.astimezone(zone)
    return f"{local:%a} {local.day} {local:%b}, {local:%H:%M}"


def local_weekly(moment: datetime, zone: ZoneInfo) -> str:
    """`Tue 18:00`: the weekly slot of a session, in the reader's time zone."""
    return f"{moment.astimezone(zone):%a %H:%M}"


def session_times(first: datetime, cadence: Cadence, count: int) -> list[datetime]:
    return [first + timedelta(days=cadence.days * number) for number in range(count)]


def event_at(kind: EventKind, starts_at: datetime, minutes: int) -> datetime:
    if kind is EventKind.AGENDA:
        return starts_at - AGENDA_LEAD
    if kind is EventKind.FOLLOWUP:
        return starts_at + timedelta(minutes=minutes) + FOLLOWUP_DELAY
    return starts_at + REVIEW_DELAY


def next_event(kind: EventKind | None) -> EventKind | None:
    """The step after `kind` (None: the session's first step is the agenda)."""
    order = list(EventKind)
    if kind is None:
        return order[0]
    position = order.index(kind) + 1
    return order[position] if position < len(order) else None


def clean_update(text: str) -> str:
    """A two-line written update: what moved since last time, what's next."""
    lines = [" ".join(line.split()) for line in text.strip().splitlines()]
    lines = [line for line in lines if line]
    if not lines:
        raise MastermindInputError(
            "Write your update in two lines: what moved since last time, and what's next."
        )
    if len(lines) > MAX_UPDATE_LINES:
        raise MastermindInputError(
            f"Keep your update to {MAX_UPDATE_LINES} lines (it has {len(lines)}); "
            "the details are for the session."
        )
    update = "\n".join(lines)
    if len(update) > MAX_UPDATE_LENGTH:
        raise MastermindInputError(f"Keep your update under {MAX_UPDATE_LENGTH} characters.")
    return update


def clean_commitment(text: str) -> str:
    commitment = " ".join(text.split())
    commitment = re.sub(r"^(by next time,? )?i will\s*", "", commitment, flags=re.IGNORECASE)
    if not commitment:
        raise MastermindInputError(
            'Finish the sentence "By next time I will …", e.g. '
            '`/kindred mastermind commit "draft the escalation playbook"`.'
        )
    if len(commitment) > MAX_COMMITMENT_LENGTH:
        raise MastermindInputError(
            f"Keep your commitment under {MAX_COMMITMENT_LENGTH} characters: one concrete step."
        )
    return commitment


def parse_score(text: str) -> int:
    spoken = text.strip()
    if not spoken.isdigit() or not 1 <= int(spoken) <= 5:
        raise MastermindInputError(
            f"Rate the cycle from 1 (poor) to 5 (great), not `{_echo(spoken)}`."
        )
    return int(spoken)


def clean_comment(text: str) -> str:
    comment = " ".join(text.split())
    if len(comment) > MAX_COMMENT_LENGTH:
        raise MastermindInputError(
            f"Keep it to one sentence (under {MAX_COMMENT_LENGTH} characters)."
        )
    return comment


# --- forming -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FormingRules:
    min_size: int
    max_size: int
    session_minutes: int
    allow_colleagues: bool
    seed: int = 0

    def config(self, past_groups: Sequence[Sequence[str]] = ()) -> CohortConfig:
        target = (self.min_size + self.max_size + 1) // 2
        return CohortConfig(
            target_size=target,
            min_size=self.min_size,
            max_size=self.max_size,
            min_slot_minutes=self.session_minutes,
            past_groups=tuple(tuple(group) for group in past_groups),
            seed=self.seed,
        )


@dataclass(frozen=True, slots=True)
class PlannedGroup:
    members: tuple[str, ...]
    shared_tags: tuple[str, ...]
    # The first common weekly stretch, UTC minutes of the week (end may pass a week).
    slot: tuple[int, int]
    companies: tuple[tuple[str, int], ...]


@dataclass(frozen=True, slots=True)
class FormingPlan:
    groups: tuple[PlannedGroup, ...]
    left_out: tuple[tuple[str, str], ...]


# The solver runs again on whoever the hard rules took out, at most this often.
FORMING_PASSES = 4
HARD_RULES_REASON = "no group fitted without a colleague or a blocked pair"
NO_SLOT_REASON = "no weekly hour the whole group shares"


def _pair(one: str, other: str) -> tuple[str, str]:
    return (one, other) if one < other else (other, one)


def _violations(
    members: Sequence[str],
    company: Mapping[str, str | None],
    blocked: set[tuple[str, str]],
    allow_colleagues: bool,
) -> dict[str, int]:
    """How many hard-rule breaks each member of a would-be group is part of."""
    count = dict.fromkeys(members, 0)
    for one, other in combinations(members, 2):
        colleagues = (
            not allow_colleagues
            and company.get(one) is not None
            and company.get(one) == company.get(other)
        )
        if colleagues or _pair(one, other) in blocked:
            count[one] += 1
            count[other] += 1
    return count


def forming_history(past: Iterable[tuple[Sequence[str], Collection[str]]]) -> list[tuple[str, ...]]:
    """Earlier groups as the solver's "grouped before" history, `(members, who asked
    to go on together)` each: two members who both asked to go on are not held
    apart (the solver has no "keep together", so they are not forced together)."""
    history: list[tuple[str, ...]] = []
    for members, continuing in past:
        staying = set(continuing) & set(members)
        if len(staying) < 2:
            history.append(tuple(members))
            continue
        history.extend(
            (one, other)
            for one, other in combinations(sorted(members), 2)
            if not {one, other} <= staying
        )
    return history


def form_groups(
    applicants: Sequence[Applicant],
    rules: FormingRules,
    *,
    blocked_pairs: Iterable[tuple[str, str]] = (),
    past_groups: Sequence[Sequence[str]] = (),
) -> FormingPlan:
    """Groups from the engine's solver, with the rules the solver keeps only as costs
    made hard: no colleagues unless allowed, no blocked pair, a common weekly slot
    of a session's length. Blocked pairs reach the solver as groups "met before"
    (its second tier), so it steers clear of them. Whoever still breaks a hard rule
    is taken out of the group, and a group that falls below its smallest size or has
    no common slot is not formed; those people go into the solver again (a few
    passes), and whoever is left waits (the backfill pool)."""
    blocked = {_pair(one, other) for one, other in blocked_pairs if one != other}
    company = {applicant.member_id: applicant.company for applicant in applicants}
    groups: list[PlannedGroup] = []
    pool = list(applicants)
    left: list[tuple[str, str]] = []
    for _ in range(FORMING_PASSES):
        formed, left = _one_pass(pool, rules, company, blocked, past_groups)
        groups.extend(formed)
        if not formed or len(left) < rules.min_size:
            break
        waiting = {member for member, _ in left}
        pool = [applicant for applicant in pool if applicant.member_id in waiting]
    by_id = {applicant.member_id: applicant for applicant in applicants}
    groups, left = _fill_open_seats(groups, left, by_id, rules, blocked)
    return FormingPlan(tuple(groups), tuple(sorted(left)))


def _fill_open_seats(
    groups: list[PlannedGroup],
    left: list[tuple[str, str]],
    by_id: Mapping[str, Applicant],
    rules: FormingRules,
    blocked: set[tuple[str, str]],
) -> tuple[list[PlannedGroup], list[tuple[str, str]]]:
    """Seat whoever waits in a formed group with room, where the hard rules allow
    it and the group keeps a common slot of a session's length; a group that keeps
    a shared tag and has the fewest members goes first."""
    partners: dict[str, set[str]] = {}
    for one, other in blocked:
        partners.setdefault(one, set()).add(other)
        partners.setdefault(other, set()).add(one)
    companies = [{by_id[m].company for m in group.members} - {None} for group in groups]
    still_waiting: list[tuple[str, str]] = []
    for member, reason in sorted(left):
        newcomer = by_id[member]
        avoid = partners.get(member, set())
        best: tuple[tuple[bool, int], int, PlannedGroup] | None = None
        for index, group in enumerate(groups):
            if len(group.members) >= rules.max_size or avoid.intersection(group.members):
                continue
            if not rules.allow_colleagues and newcomer.company in companies[index]:
                continue
            shared = tuple(sorted(set(group.shared_tags) & newcomer.tags))
            fit = (not shared, len(group.members))
            if best is not None and fit >= best[0]:
                continue
            slot = _slot_with(group.slot, newcomer.availability, rules.session_minutes)
            if slot is not None:
                seated = PlannedGroup(
                    members=(*group.members, member),
                    shared_tags=shared,
                    slot=slot,
                    companies=_with_company(group.companies, newcomer.company),
                )
                best = (fit, index, seated)
        if best is None:
            still_waiting.append((member, reason))
            continue
        groups[best[1]] = best[2]
        if newcomer.company is not None:
            companies[best[1]].add(newcomer.company)
    return groups, still_waiting


def _slot_with(
    slot: tuple[int, int], availability: Iterable[tuple[int, int]], minutes: int
) -> tuple[int, int] | None:
    """The part of a group's weekly slot a newcomer is also free in, when it still
    lasts `minutes` (weekly minutes, intervals that wrap read modulo the week)."""
    start, end = slot
    for free_start, free_end in availability:
        for shift in (-MINUTES_PER_WEEK, 0, MINUTES_PER_WEEK):
            low, high = max(start, free_start + shift), min(end, free_end + shift)
            if high - low >= minutes:
                return low % MINUTES_PER_WEEK, low % MINUTES_PER_WEEK + high - low
    return None


def _with_company(
    companies: tuple[tuple[str, int], ...], company: str | None
) -> tuple[tuple[str, int], ...]:
    counts = dict(companies)
    if company is not None:
        counts[company] = counts.get(company, 0) + 1
    return tuple(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def _one_pass(
    applicants: Sequence[Applicant],
    rules: FormingRules,
    company: Mapping[str, str | None],
    blocked: set[tuple[str, str]],
    past_groups: Sequence[Sequence[str]],
) -> tuple[list[PlannedGroup], list[tuple[str, str]]]:
    present = {applicant.member_id for applicant in applicants}
    steering = [*past_groups, *(pair for pair in blocked if set(pair) <= present)]
    result = make_cohorts(applicants, rules.config(steering))
    left: list[tuple[str, str]] = list(result.left_out)
    groups: list[PlannedGroup] = []
    for solved in result.cohorts:
        members = list(solved.members)
        cohort = solved
        while True:
            breaks = _violations(members, company, blocked, rules.allow_colleagues)
            worst = max(members, key=lambda member: (breaks[member], member))
            if not breaks[worst]:
                break
            members.remove(worst)
            left.append((worst, HARD_RULES_REASON))
        if len(members) < rules.min_size:
            reason = f"the group fell below {rules.min_size} under the hard rules"
            left.extend((member, reason) for member in members)
            continue
        if len(members) != len(solved.members):
            cohort = describe_group(members, applicants, rules.session_minutes)
        if cohort.common_slot is None:
            left.extend((member, NO_SLOT_REASON) for member in members)
            continue
        groups.append(
            PlannedGroup(
                members=tuple(members),
                shared_tags=tuple(sorted(cohort.shared_tags)),
                slot=cohort.common_slot,
                companies=cohort.companies,
            )
        )
    return groups, left


def describe_group(
    members: Sequence[str], applicants: Sequence[Applicant], session_minutes: int
) -> Cohort:
    """The engine's description of a given set of members (shared tags, common slot,
    company mix): the group without its last member, backfilled with that member."""
    chosen = [applicant for applicant in applicants if applicant.member_id in set(members)]
    size = len(chosen)
    config = CohortConfig(
        target_size=size, min_size=2, max_size=size, min_slot_minutes=session_minutes
    )
    result = backfill_seat([a.member_id for a in chosen[:-1]], chosen, config)
    assert result.cohort is not None  # one seat open, one applicant outside it
    return result.cohort


def choose_backfill(
    group: Sequence[Applicant],
    waiting: Sequence[Applicant],
    rules: FormingRules,
    *,
    blocked_pairs: Iterable[tuple[str, str]] = (),
) -> str | None:
    """The waiting applicant who best fills a leaver's seat (the engine's
    `backfill_seat`), among those the hard rules allow: no colleague unless allowed,
    no blocked pair, and the group keeps a common slot of a session's length."""
    blocked = {_pair(one, other) for one, other in blocked_pairs}
    members = [applicant.member_id for applicant in group]
    if len(members) >= rules.max_size:
        return None
    company = {applicant.member_id: applicant.company for applicant in (*group, *waiting)}
    allowed = [
        candidate
        for candidate in waiting
        if candidate.member_id not in members
        and not any(
            _violations([member, candidate.member_id], company, blocked, rules.allow_colleagues)[
                member
            ]
            for member in members
        )
    ]
    while allowed:
        config = CohortConfig(
            target_size=rules.max_size,
            min_size=2,
            max_size=rules.max_size,
            min_slot_minutes=rules.session_minutes,
        )
        result = backfill_seat(members, [*group, *allowed], config)
        if result.chosen is None or result.cohort is None:
            return None
        if result.cohort.common_slot is not None:
            return result.chosen
        # The best by the engine's tiers leaves no common hour: nobody fits the slot.
        allowed = [c for c in allowed if c.member_id != result.chosen]
    return None


# --- the hot seat ------------------------------------------------------------------


def next_hot_seat(members: Sequence[str], past_holders: Sequence[str]) -> str:
    """Whose challenge is in focus next: whoever of the current members has had the
    hot seat least often, the earliest seated among them first (`members` in seating
    order). Nobody has it twice before every current member has had it once."""
    if not members:
        raise ValueError("a group without members has no hot seat")
    turns = {member: 0 for member in members}
    for holder in past_holders:
        if holder in turns:
            turns[holder] += 1
    return min(members, key=lambda member: (turns[member], members.index(member)))


# --- a group's health --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SessionTally:
    """What one session's members did: seated is who was in the group then."""

    number: int
    starts_at: datetime
    seated: int
    attended: int
    updates: int
    commitments: int
    followed_up: int
    kept: int

    @property
    def attendance(self) -> float | None:
        return self.attended / self.seated if self.seated else None

    @property
    def update_share(self) -> float | None:
        return self.updates / self.seated if self.seated else None

    @property
    def low(self) -> bool:
        """Updates or attendance below the alert line (LOW_SHARE)."""
        return any(
            share is not None and share < LOW_SHARE
            for share in (self.attendance, self.update_share)
        )


def low_two_running(tallies: Sequence[SessionTally]) -> bool:
    """The last two sessions both fell below the line (updates or attendance)."""
    return len(tallies) >= 2 and tallies[-1].low and tallies[-2].low


def silent_members(
    last_seen: Mapping[str, datetime], now: datetime, *, quiet_for: timedelta = SILENT_FOR
) -> list[str]:
    """Members who have done nothing in the group (update, commitment, attendance)
    for `quiet_for`; `last_seen` holds when each did something last, else when
    they joined."""
    return sorted(member for member, seen in last_seen.items() if now - seen >= quiet_for)


def alive_at_week_eight(
    tallies: Sequence[SessionTally], planned: Sequence[datetime], now: datetime
) -> bool | None:
    """Whether the group was still meeting eight weeks after its first session: a
    session in weeks 7 and 8 that at least half attended or wrote an update for. A
    cycle whose sessions all fall before week 8 counts as alive when its last session
    went that way. None until that is known. `tallies` are the sessions held so far,
    `planned` every session's start."""
    if not planned:
        return None
    week_eight = min(planned) + WEEK_EIGHT

    def lively(tally: SessionTally) -> bool:
        return tally.seated > 0 and max(tally.attended, tally.updates) >= ALIVE_SHARE * tally.seated

    if max(planned) < week_eight:
        if len(tallies) < len(planned):
            return None
        return lively(max(tallies, key=lambda tally: tally.starts_at))
    if now < week_eight:
        return None
    window_start = week_eight - timedelta(weeks=2)
    return any(lively(t) for t in tallies if window_start <= t.starts_at < week_eight)


def share(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def percent(value: float | None) -> str:
    return "–" if value is None else f"{round(value * 100)} %"
