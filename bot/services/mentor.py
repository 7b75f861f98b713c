"""Mentorship use cases (issue #13): offers and requests, rounds on the matching
engine's assignment solver, approval, intros, the follow-through (check-ins at day 14
and 42, "extend or close?" near the planned end, the end itself), no-fault endings,
feedback and re-matches, and the figures admins and the health report read.

Everything a member receives is queued in the outbox with an idempotency key, in the
transaction of the change that caused it. Rounds and timeline events run through
`runtime.claims`, so each happens once across replicas and restarts. The mentor's
capacity is a conditional update in storage (`take_seats`), so concurrent accepts can
never put a mentor over capacity.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.context import Context
from bot.core.errors import CommandError
from bot.core.figures import Figures, MemberAction, Period, Stored
from bot.core.formatting import channel_link, plural
from bot.core.mentions import mention
from bot.core.outbox import GroupMessage, Outbox
from bot.core.platform import Button, ButtonStyle, Identity, Message, Reply
from bot.core.runtime import Runtime
from bot.core.templates import Templates, Trusted
from bot.domain.matching import (
    AssignmentConfig,
    AssignmentResult,
    Mentee,
    Mentor,
    MentorMatch,
    assign_mentors,
)
from bot.domain.mentor import (
    BAD_RATING,
    CADENCES,
    DEFAULT_CADENCE,
    DEFAULT_DURATION_DAYS,
    END_REMINDER_BEFORE,
    EXTENSION,
    GOOD_RATING,
    MAX_FEEDBACK_LENGTH,
    MAX_GOAL_LENGTH,
    MAX_REASON_LENGTH,
    MAX_SUCCESS_LENGTH,
    MONTH,
    PRIVATE_RATINGS_MIN,
    RESPOND_WITHIN,
    ROUND_CADENCES,
    EventKind,
    MentorInputError,
    MentorshipStatus,
    Outcome,
    RequestStatus,
    TimelineEvent,
    clean_text,
    describe_days,
    describe_duration,
    describe_time,
    known_topics,
    median,
    next_event,
    normalised_company,
    one_sentence,
    parse_capacity,
    parse_choice,
    parse_duration,
    parse_rating,
    parse_topics,
    parse_yes_no,
    percent,
    seniority_level,
    share,
    top_decile_share,
    utc_offset_hours,
)
from bot.domain.profile import SENIORITIES
from storage import coffee, members
from storage import mentor as store
from storage.mentor import MentorOffer, MentorProgram, MentorRequest, MentorRound, Mentorship
from storage.models import Member

log = logging.getLogger(__name__)

WAITING = (RequestStatus.OPEN, RequestStatus.PROPOSED)
INTRO = "mentor/intro"
PROPOSAL = "mentor/proposal"
ANSWERS = {"good": "going well", "not_met": "haven't met yet", "not_fit": "not a fit"}
# `mentor end why:…` → the outcome recorded (completion rate counts "done").
OUTCOME_OF = {
    "done": Outcome.COMPLETED,
    "not-a-fit": Outcome.NOT_A_FIT,
    "other": Outcome.ENDED_EARLY,
}


def round_job(program_id: int) -> str:
    return f"mentor.round:{program_id}"


def manual_round_job(program_id: int) -> str:
    # Its own name: a run-now in the scheduled round's minute must not take its claim.
    return f"mentor.round-now:{program_id}"


def event_job(mentorship_id: int, event: TimelineEvent) -> str:
    return f"mentor.{event.kind}{event.day or ''}:{mentorship_id}"


def refuse(error: MentorInputError) -> CommandError:
    return CommandError(str(error))


def zone_of(member: Member | None, default: str) -> str:
    """Times are shown in the member's time zone, else the community's."""
    return (member.timezone if member is not None else None) or default


async def viewer_zone(ctx: Context) -> str:
    return zone_of(await ctx.member(), ctx.runtime.settings.timezone)


def name_of(people: Mapping[str, Member], user_id: str) -> str:
    member = people.get(user_id)
    return member.display_name if member is not None else user_id


# --- program ------------------------------------------------------------------------


async def require_program(ctx: Context) -> MentorProgram:
    program = await store.get_program(ctx.session, ctx.inbound.platform, ctx.inbound.workspace_id)
    if program is None:
        raise CommandError(
            "Mentorship isn't set up in this community yet; an admin starts it with "
            "`/kindred mentor setup` in the channel it should live in."
        )
    return program


async def set_up(ctx: Context, settings: Mapping[str, object]) -> str:
    """Create the community's program in this channel, or change its settings."""
    now = ctx.now()
    inbound = ctx.inbound
    program = await store.get_program(ctx.session, inbound.platform, inbound.workspace_id)
    created = program is None
    channel = settings.get("channel") or inbound.channel_id
    if program is None:
        if not channel:
            raise CommandError(
                "Run `/kindred mentor setup` in the channel mentorship should live in, or "
                "name it with channel=#mentoring."
            )
        program = MentorProgram(
            platform=inbound.platform,
            workspace_id=inbound.workspace_id,
            channel_id=str(channel),
            timezone=await viewer_zone(ctx),
            created_by=inbound.user_id,
            created_at=now,
        )
    if "channel" in settings:
        program.channel_id = str(settings["channel"])
    if "cadence" in settings:
        program.cadence = str(settings["cadence"])
        days = ROUND_CADENCES[program.cadence]
        program.next_round_at = now + timedelta(days=days) if days else None
    if "approval" in settings:
        program.approval = bool(settings["approval"])
    if "same_company" in settings:
        program.same_company_allowed = bool(settings["same_company"])
    if "max_requests" in settings:
        program.max_requests_per_month = int(str(settings["max_requests"]))
    program.updated_at = now
    ctx.session.add(program)
    await ctx.session.flush()
    if created:
        text = ctx.runtime.templates.render(
            "mentor/announce", channel=channel_link(program.channel_id)
        )
        await ctx.outbox.post(
            program.channel_id, Message(text), key=f"mentor.announce:{program.id}"
        )
    return program_text(ctx.runtime.templates, program, "created" if created else "updated")


def program_text(templates: Templates, program: MentorProgram, state: str) -> str:
    next_round = (
        Trusted(f"{describe_time(program.next_round_at, program.timezone)} ({program.timezone})")
        if program.next_round_at is not None
        else None
    )
    return templates.render(
        "mentor/program",
        state=state,
        channel=channel_link(program.channel_id),
        cadence=program.cadence,
        next_round=next_round,
        approval=program.approval,
        same_company=program.same_company_allowed,
        max_requests=program.max_requests_per_month,
    )


# --- offers -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OfferInput:
    topics: list[str]
    seniority: str
    capacity: int
    duration_days: int
    cadence: str


def parse_offer(
    values: Mapping[str, object], current: MentorOffer | None, profile: Member
) -> OfferInput:
    """A mentor's offer from the form or the command, every field checked before any
    is stored; fields left out keep their current (or default) value."""

    def given(name: str) -> str | None:
        value = values.get(name)
        return None if value is None or str(value).strip() == "" else str(value)

    try:
        topics_text = given("topics")
        if topics_text is not None:
            topics = parse_topics(topics_text)
        elif current is not None:
            topics = list(current.topics)
        else:
            topics = parse_topics(None)
        seniority = parse_choice(
            given("seniority"),
            "seniority",
            SENIORITIES,
            current.seniority if current else (profile.seniority or "senior"),
        )
        capacity_text = given("capacity")
        capacity = (
            parse_capacity(capacity_text)
            if capacity_text is not None
            else (current.capacity if current else 1)
        )
        duration_text = given("duration")
        duration = (
            parse_duration(duration_text)
            if duration_text is not None
            else (current.duration_days if current else DEFAULT_DURATION_DAYS)
        )
        cadence = parse_choice(
            given("cadence"), "cadence", CADENCES, current.cadence if current else DEFAULT_CADENCE
        )
    except MentorInputError as error:
        raise refuse(error) from None
    return OfferInput(topics, seniority, capacity, duration, cadence)


async def save_offer(ctx: Context, values: Mapping[str, object]) -> str:
    await require_program(ctx)
    inbound = ctx.inbound
    current = await store.get_offer(
        ctx.session, inbound.platform, inbound.workspace_id, inbound.user_id
    )
    parsed = parse_offer(values, current, await ctx.member())
    cooldown = values.get("cooldown")
    if current is not None and parsed.capacity < current.load:
        raise CommandError(
            f"You mentor {plural(current.load, 'person', 'people')} right now, so your capacity "
            f"can't go below {current.load}. Lower it once a mentorship ends."
        )
    offer = current or MentorOffer(
        platform=inbound.platform,
        workspace_id=inbound.workspace_id,
        user_id=inbound.user_id,
        seniority=parsed.seniority,
        cadence=parsed.cadence,
        created_at=ctx.now(),
    )
    offer.topics = parsed.topics
    offer.seniority = parsed.seniority
    offer.capacity = parsed.capacity
    offer.duration_days = parsed.duration_days
    offer.cadence = parsed.cadence
    if cooldown is not None:
        offer.cooldown_weeks = int(str(cooldown))
    offer.updated_at = ctx.now()
    ctx.session.add(offer)
    await ctx.session.flush()
    return ctx.runtime.templates.render(
        "mentor/offer_saved",
        new=current is None,
        topics=offer.topics,
        seniority=offer.seniority,
        capacity=offer.capacity,
        duration=describe_duration(offer.duration_days),
        cadence=offer.cadence,
        cooldown_weeks=offer.cooldown_weeks,
        paused=offer.paused,
    )


async def own_offer(ctx: Context) -> MentorOffer:
    inbound = ctx.inbound
    offer = await store.get_offer(
        ctx.session, inbound.platform, inbound.workspace_id, inbound.user_id
    )
    if offer is None:
        raise CommandError("You haven't offered to mentor yet; start with `/kindred mentor offer`.")
    return offer


async def pause_offer(ctx: Context, paused: bool) -> str:
    offer = await own_offer(ctx)
    if offer.paused == paused:
        return "You're already paused." if paused else "You're not paused; rounds include you."
    offer.paused = paused
    offer.updated_at = ctx.now()
    if paused:
        return (
            "Paused: rounds won't propose new mentees to you. Your current mentorships go on. "
            "Back with `/kindred mentor resume`."
        )
    return "Welcome back: the next round may propose a mentee to you."


# --- requests -----------------------------------------------------------------------


async def save_request(ctx: Context, values: Mapping[str, object]) -> str:
    program = await require_program(ctx)
    inbound = ctx.inbound
    now = ctx.now()
    mine = await store.mentee_requests(
        ctx.session, inbound.platform, inbound.workspace_id, inbound.user_id
    )
    waiting = [request for request in mine if request.status in WAITING]
    if waiting:
        raise CommandError(
            "You already have a request waiting (since "
            f"{describe_time(waiting[0].created_at, await viewer_zone(ctx))}); see "
            "`/kindred mentor status`, or withdraw it with `/kindred mentor end`."
        )
    this_month = [r for r in mine if r.rematch_of is None and r.created_at > now - MONTH]
    if len(this_month) >= program.max_requests_per_month:
        raise CommandError(
            f"This community allows {plural(program.max_requests_per_month, 'mentor request')} "
            "per member in 30 days, and you've made yours. Try again later."
        )
    offers = await store.community_offers(ctx.session, inbound.platform, inbound.workspace_id)
    try:
        goal = one_sentence(_text(values, "goal"), "goal", MAX_GOAL_LENGTH)
        topics = known_topics(
            parse_topics(_text(values, "topics")),
            [topic for offer in offers for topic in offer.topics],
        )
        success = clean_text(
            _text(values, "success"), "description of success", MAX_SUCCESS_LENGTH, required=False
        )
        cadence = parse_choice(_text(values, "cadence"), "cadence", CADENCES, DEFAULT_CADENCE)
    except MentorInputError as error:
        raise refuse(error) from None
    request = MentorRequest(
        platform=inbound.platform,
        workspace_id=inbound.workspace_id,
        mentee_user_id=inbound.user_id,
        goal=goal,
        topics=topics,
        success=success,
        cadence=cadence,
        status=RequestStatus.OPEN,
        created_at=now,
    )
    ctx.session.add(request)
    await ctx.session.flush()
    next_round = (
        Trusted(describe_time(program.next_round_at, await viewer_zone(ctx)))
        if program.next_round_at is not None
        else None
    )
    return ctx.runtime.templates.render(
        "mentor/request_saved", goal=goal, topics=topics, cadence=cadence, next_round=next_round
    )


def _text(values: Mapping[str, object], name: str) -> str | None:
    value = values.get(name)
    return None if value is None else str(value)


# --- rounds -------------------------------------------------------------------------


# A mentee waits rather than get a mentor for something they did not ask about. The
# solver treats a pair without a shared topic as excluded, like a block: it never spends
# a seat on one, so the seat goes to a mentee who does share a topic with that mentor,
# and a mentee nobody on topic can take is told "no mentor with a free seat works on
# their topics".
MIN_SHARED_TOPICS = 1


@dataclass(frozen=True, slots=True)
class Plan:
    """A round's matches, and who got none and why, as the solver made them."""

    requests: dict[str, MentorRequest]
    offers: dict[str, MentorOffer]
    people: dict[str, Member]
    result: AssignmentResult

    @property
    def matches(self) -> tuple[MentorMatch, ...]:
        return self.result.matches

    @property
    def unmatched(self) -> tuple[tuple[str, str], ...]:
        return self.result.unmatched

    @property
    def mean_score(self) -> float:
        return sum(m.score for m in self.matches) / len(self.matches) if self.matches else 0.0


async def plan_round(
    session: AsyncSession,
    program: MentorProgram,
    at: datetime,
    only: Sequence[MentorRequest] | None = None,
) -> Plan:
    """The matches a round at `at` makes (reads only: preview uses it as is). `only`:
    match just these requests (a re-match) against every mentor with a free seat."""
    platform, workspace = program.platform, program.workspace_id
    waiting = (
        list(only)
        if only is not None
        else await store.requests_with_status(session, platform, workspace, [RequestStatus.OPEN])
    )
    requests: dict[str, MentorRequest] = {}
    for request in waiting:
        requests.setdefault(request.mentee_user_id, request)  # the oldest first
    pending = await store.pending_proposals(session, platform, workspace)
    offers: dict[str, MentorOffer] = {}
    free: dict[str, int] = {}
    for offer in await store.community_offers(session, platform, workspace):
        if offer.paused or (offer.cooldown_until is not None and offer.cooldown_until > at):
            continue
        seats = offer.capacity - offer.load - pending.get(offer.user_id, 0)
        if seats > 0:
            offers[offer.user_id] = offer
            free[offer.user_id] = seats
    people = await members.members_by_user_ids(
        session, platform, workspace, sorted({*requests, *offers})
    )
    spelling: dict[str, str] = {}
    for offer in offers.values():
        for topic in offer.topics:
            spelling.setdefault(topic.lower(), topic)

    def canonical(topics: Sequence[str]) -> frozenset[str]:
        return frozenset(spelling.get(topic.lower(), topic) for topic in topics)

    def profile(user_id: str) -> Member | None:
        member = people.get(user_id)
        return None if member is None or member.deactivated or member.is_bot else member

    mentees = []
    for user_id, request in requests.items():
        member = profile(user_id)
        if member is None:
            continue
        mentees.append(
            Mentee(
                member_id=user_id,
                name=member.display_name,
                topics=canonical(request.topics),
                company=normalised_company(member.company),
                seniority=seniority_level(member.seniority),
                utc_offset_hours=utc_offset_hours(member.timezone, at),
            )
        )
    mentors = []
    for user_id, offer in offers.items():
        member = profile(user_id)
        if member is None:
            continue
        mentors.append(
            Mentor(
                member_id=user_id,
                name=member.display_name,
                capacity=free[user_id],
                topics=canonical(offer.topics),
                company=normalised_company(member.company),
                seniority=seniority_level(offer.seniority),
                utc_offset_hours=utc_offset_hours(member.timezone, at),
            )
        )
    blocks = await coffee.community_blocks(session, platform, workspace)
    # Someone both asking and offering is never their own mentor.
    themselves = {frozenset({user_id}) for user_id in requests if user_id in offers}
    config = AssignmentConfig(
        same_company_allowed=program.same_company_allowed,
        blocked=frozenset({frozenset(pair) for pair in blocks} | themselves),
        ended_badly=frozenset(
            await store.pairs_kept_apart(session, platform, workspace, BAD_RATING)
        ),
        min_shared_topics=MIN_SHARED_TOPICS,
    )
    result = assign_mentors(mentees, mentors, config)
    return Plan(requests, offers, people, result)


async def run_round(
    runtime: Runtime,
    session: AsyncSession,
    program: MentorProgram,
    occurrence: datetime,
    *,
    manual: bool,
    only: Sequence[MentorRequest] | None = None,
) -> MentorRound:
    """Match, store the round and queue what it sends, in the caller's transaction:
    proposals to mentors when approval is on, else intros."""
    assert program.id is not None
    plan = await plan_round(session, program, occurrence, only)
    quality = plan.result.quality
    round_ = MentorRound(
        program_id=program.id,
        occurrence=occurrence,
        manual=manual,
        mentees=quality.mentees,
        mentors=quality.mentors,
        matched=len(plan.matches),
        mean_score=plan.mean_score,
        solver_ms=quality.solver_ms,
    )
    session.add(round_)
    await session.flush()
    outbox = Outbox(session, program.platform, program.workspace_id)
    matches = plan.matches
    seated: set[str] = set()
    if not program.approval:
        # Seats first, each mentor's new mentees at once: a mentor whose seats another
        # replica filled since the plan was read gets none, and their mentees wait.
        seated = await _seat_all(session, plan, [match.mentor_id for match in matches])
        matches = tuple(match for match in matches if match.mentor_id in seated)
    # Rows, not ORM objects: a round may create thousands, and each statement below
    # covers hundreds of them.
    rows = [
        {
            "platform": program.platform,
            "workspace_id": program.workspace_id,
            "request_id": plan.requests[match.mentee_id].id,
            "mentor_user_id": match.mentor_id,
            "mentee_user_id": match.mentee_id,
            "reasons": list(match.reasons),
            "score": match.score,
            "round_id": round_.id,
            "proposed_at": occurrence,
        }
        | (
            {
                "status": MentorshipStatus.PROPOSED,
                "respond_by": occurrence + RESPOND_WITHIN,
                "next_due_at": occurrence + RESPOND_WITHIN,
            }
            if program.approval
            else activation(plan.offers[match.mentor_id], occurrence)
        )
        for match in matches
    ]
    assert round_.id is not None
    ids = await store.add_round_mentorships(session, round_.id, rows)
    pairings = [
        Pairing(ids[match.mentee_id], match.mentor_id, match.mentee_id, match.reasons, row)
        for match, row in zip(matches, rows, strict=True)
    ]
    status = RequestStatus.PROPOSED if program.approval else RequestStatus.MATCHED
    await store.update_requests(
        session,
        [plan.requests[p.mentee_user_id].id or 0 for p in pairings],
        status=status,
        matched_at=None if program.approval else occurrence,
    )
    # Each template is read once per round, not once per message.
    if program.approval:
        proposal_source = runtime.templates.source(PROPOSAL)
        await outbox.dms(
            [
                (
                    p.mentor_user_id,
                    proposal(
                        runtime.templates,
                        p,
                        plan.requests[p.mentee_user_id],
                        plan.people,
                        program,
                        proposal_source,
                    ),
                    f"mentor.proposal:{p.id}",
                )
                for p in pairings
            ]
        )
    else:
        intro_source = runtime.templates.source(INTRO)
        await outbox.groups(
            [
                intro(
                    runtime.templates,
                    p,
                    plan.requests[p.mentee_user_id],
                    program,
                    plan.people,
                    intro_source,
                )
                for p in pairings
            ]
        )
    log.info(
        "mentor round %s of program %s: %d of %d mentees matched, %.1f ms",
        round_.id,
        program.id,
        len(plan.matches),
        quality.mentees,
        quality.solver_ms,
    )
    return round_


@dataclass(frozen=True, slots=True)
class Pairing:
    """What a proposal and an intro show of a mentorship; `times` holds its
    `respond_by`, `started_at` and `planned_end_at` as far as set."""

    id: int
    mentor_user_id: str
    mentee_user_id: str
    reasons: Sequence[str]
    times: Mapping[str, object]

    @classmethod
    def of(cls, mentorship: Mentorship) -> Pairing:
        assert mentorship.id is not None
        times = {
            "respond_by": mentorship.respond_by,
            "started_at": mentorship.started_at,
            "planned_end_at": mentorship.planned_end_at,
        }
        return cls(
            mentorship.id,
            mentorship.mentor_user_id,
            mentorship.mentee_user_id,
            mentorship.reasons,
            times,
        )

    def moment(self, name: str) -> datetime:
        value = self.times.get(name)
        assert isinstance(value, datetime), name
        return value


def activation(offer: MentorOffer, now: datetime) -> dict[str, object]:
    """A mentorship's values once its seat is taken: it runs from `now` for the mentor's
    default length, with its follow-through timeline."""
    planned_end = now + timedelta(days=offer.duration_days)
    following = next_event(now, planned_end, now)
    return {
        "status": MentorshipStatus.ACTIVE,
        "started_at": now,
        "planned_end_at": planned_end,
        "handled_until": now,
        "respond_by": None,
        "next_due_at": following.at if following is not None else None,
    }


async def _seat_all(session: AsyncSession, plan: Plan, mentors: Sequence[str]) -> set[str]:
    """The mentors (of `mentors`, one entry per new mentee) whose seats were taken."""
    wanted: dict[int, int] = {}
    for user_id in mentors:
        offer_id = plan.offers[user_id].id
        assert offer_id is not None
        wanted[offer_id] = wanted.get(offer_id, 0) + 1
    taken = await store.take_seats_of_many(session, wanted)
    return {offer.user_id for offer in plan.offers.values() if offer.id in taken}


def proposal(
    templates: Templates,
    mentorship: Pairing,
    request: MentorRequest,
    people: Mapping[str, Member],
    program: MentorProgram,
    source: str | None = None,
) -> Message:
    """The mentor's proposal: the mentee's goal, why them, Accept and Decline."""
    text = templates.render_source(
        source or templates.source(PROPOSAL),
        mentee=Trusted(mention(mentorship.mentee_user_id)),
        goal=request.goal,
        topics=request.topics,
        success=request.success,
        cadence=request.cadence,
        reasons=mentorship.reasons,
        respond_by=Trusted(
            describe_time(
                mentorship.moment("respond_by"),
                zone_of(people.get(mentorship.mentor_user_id), program.timezone),
            )
        ),
    )
    value = str(mentorship.id)
    buttons = (
        Button("Accept", "mentor.accept", value, ButtonStyle.PRIMARY),
        Button("Decline", "mentor.decline", value),
    )
    return Message(text, buttons, mentions=(mentorship.mentor_user_id,))


# --- a mentorship starts ------------------------------------------------------------


def intro(
    templates: Templates,
    mentorship: Pairing,
    request: MentorRequest,
    program: MentorProgram,
    people: Mapping[str, Member],
    source: str | None = None,
) -> GroupMessage:
    """The pair's intro in a group conversation (Slack group DM, Discord private thread
    in the program's channel): goal, first agenda, how to end well."""
    started, planned_end = mentorship.moment("started_at"), mentorship.moment("planned_end_at")
    pair = (mentorship.mentor_user_id, mentorship.mentee_user_id)
    text = templates.render_source(
        source or templates.source(INTRO),
        mentor=Trusted(mention(mentorship.mentor_user_id)),
        mentee=Trusted(mention(mentorship.mentee_user_id)),
        goal=request.goal,
        topics=request.topics,
        success=request.success,
        cadence=request.cadence,
        reasons=mentorship.reasons,
        duration=describe_duration((planned_end - started).days),
        planned_end=Trusted(describe_time(planned_end, program.timezone)),
        timezone=program.timezone,
    )
    names = " & ".join(name_of(people, user_id) for user_id in pair)
    return GroupMessage(
        pair,
        Message(text, mentions=pair),
        key=f"mentor.intro:{mentorship.id}",
        channel_id=program.channel_id,
        title=f"Mentorship: {names}"[:100],
    )


async def mentorship_from_button(ctx: Context) -> Mentorship:
    """The mentorship a button or form carries, checked to be the member's own."""
    try:
        mentorship_id = int(ctx.inbound.value.split(":")[0])
    except ValueError:
        raise CommandError("That button is out of date. Try `/kindred mentor status`.") from None
    found = await store.get_mentorship(
        ctx.session, ctx.inbound.platform, ctx.inbound.workspace_id, mentorship_id
    )
    if found is None:
        raise CommandError("That mentorship no longer exists.")
    if ctx.inbound.user_id not in (found.mentor_user_id, found.mentee_user_id):
        raise CommandError("That button belongs to someone else's mentorship.")
    return found


async def accept(ctx: Context) -> Reply:
    mentorship = await mentorship_from_button(ctx)
    if ctx.inbound.user_id != mentorship.mentor_user_id:
        raise CommandError("Only the proposed mentor can accept.")
    assert mentorship.id is not None
    if mentorship.status != MentorshipStatus.PROPOSED:
        return Reply.text(_already(mentorship))
    program = await require_program(ctx)
    offer = await own_offer(ctx)
    assert offer.id is not None
    # The proposal first (a double click or a second replica stops here), then the
    # seat: the conditional update is what keeps the mentor within capacity.
    if not await store.change_status(
        ctx.session, mentorship.id, [MentorshipStatus.PROPOSED], MentorshipStatus.ACTIVE
    ):
        return Reply.text(_already(mentorship))
    if not await store.take_seats(ctx.session, offer.id):
        await store.change_status(
            ctx.session,
            mentorship.id,
            [MentorshipStatus.ACTIVE],
            MentorshipStatus.DECLINED,
            next_due_at=None,
        )
        await store.set_request_status(
            ctx.session, mentorship.request_id, [RequestStatus.PROPOSED], RequestStatus.OPEN
        )
        return Reply(
            update_original=Message(
                f"You're at capacity ({offer.capacity} of {offer.capacity}), so this proposal "
                "goes back to the next round; the mentee isn't told."
            )
        )
    request = await store.get_request(ctx.session, mentorship.request_id)
    assert request is not None
    people = await members.members_by_user_ids(
        ctx.session,
        mentorship.platform,
        mentorship.workspace_id,
        [mentorship.mentor_user_id, mentorship.mentee_user_id],
    )
    for name, value in activation(offer, ctx.now()).items():
        setattr(mentorship, name, value)
    request.status = RequestStatus.MATCHED
    request.matched_at = ctx.now()
    await ctx.outbox.groups(
        [intro(ctx.runtime.templates, Pairing.of(mentorship), request, program, people)]
    )
    return Reply(
        update_original=Message(
            f"✅ Accepted: you're mentoring {mention(mentorship.mentee_user_id)}. "
            "The intro is in a group conversation with you both."
        )
    )


async def decline(ctx: Context) -> Reply:
    mentorship = await mentorship_from_button(ctx)
    if ctx.inbound.user_id != mentorship.mentor_user_id:
        raise CommandError("Only the proposed mentor can decline.")
    assert mentorship.id is not None
    if not await store.change_status(
        ctx.session,
        mentorship.id,
        [MentorshipStatus.PROPOSED],
        MentorshipStatus.DECLINED,
        next_due_at=None,
    ):
        return Reply.text(_already(mentorship))
    await store.set_request_status(
        ctx.session, mentorship.request_id, [RequestStatus.PROPOSED], RequestStatus.OPEN
    )
    return Reply(
        update_original=Message(
            "Declined, no problem. The mentee isn't told; the next round finds them "
            "someone else, and won't propose them to you again."
        )
    )


def _already(mentorship: Mentorship) -> str:
    return {
        MentorshipStatus.ACTIVE: "You've accepted this one already; the intro is on its way.",
        MentorshipStatus.DECLINED: "This proposal was declined already.",
        MentorshipStatus.EXPIRED: "This proposal expired and went back to the next round.",
        MentorshipStatus.ENDED: "This mentorship has ended.",
    }.get(MentorshipStatus(mentorship.status), "This proposal is no longer open.")


# --- the follow-through -------------------------------------------------------------


def due_event(mentorship: Mentorship) -> TimelineEvent | None:
    """What the mentorship waits for next: a proposal's expiry, or the next timeline
    event of an active mentorship."""
    if mentorship.status == MentorshipStatus.PROPOSED and mentorship.respond_by is not None:
        return TimelineEvent(EventKind.EXPIRE, mentorship.respond_by)
    if (
        mentorship.status == MentorshipStatus.ACTIVE
        and mentorship.started_at is not None
        and mentorship.planned_end_at is not None
    ):
        return next_event(
            mentorship.started_at,
            mentorship.planned_end_at,
            mentorship.handled_until or mentorship.started_at,
        )
    return None


async def run_event(
    templates: Templates,
    mentorship_id: int,
    event: TimelineEvent,
    session: AsyncSession,
    _occurrence: datetime,
) -> None:
    """Do one timeline event (claimed by the tick). Nothing happens when the mentorship
    moved on meanwhile (accepted, ended, extended)."""
    mentorship = await session.get(Mentorship, mentorship_id, with_for_update=True)
    if mentorship is None or due_event(mentorship) != event or mentorship.next_due_at != event.at:
        return
    program = await store.get_program(session, mentorship.platform, mentorship.workspace_id)
    outbox = Outbox(session, mentorship.platform, mentorship.workspace_id)
    people = await members.members_by_user_ids(
        session,
        mentorship.platform,
        mentorship.workspace_id,
        [mentorship.mentor_user_id, mentorship.mentee_user_id],
    )
    default_zone = program.timezone if program is not None else "UTC"
    if event.kind == EventKind.EXPIRE:
        assert mentorship.id is not None
        await store.change_status(
            session,
            mentorship.id,
            [MentorshipStatus.PROPOSED],
            MentorshipStatus.EXPIRED,
            next_due_at=None,
        )
        await store.set_request_status(
            session, mentorship.request_id, [RequestStatus.PROPOSED], RequestStatus.OPEN
        )
        await outbox.dm(
            mentorship.mentor_user_id,
            Message(
                templates.render(
                    "mentor/expired", mentee=name_of(people, mentorship.mentee_user_id)
                )
            ),
            key=f"mentor.expired:{mentorship.id}",
        )
        return
    if event.kind == EventKind.END:
        await end_mentorship(templates, outbox, mentorship, Outcome.COMPLETED, None, None, event.at)
        return
    mentorship.handled_until = event.at
    assert mentorship.started_at is not None and mentorship.planned_end_at is not None
    following = next_event(mentorship.started_at, mentorship.planned_end_at, event.at)
    mentorship.next_due_at = following.at if following is not None else None
    for user_id, other in (
        (mentorship.mentor_user_id, mentorship.mentee_user_id),
        (mentorship.mentee_user_id, mentorship.mentor_user_id),
    ):
        zone = zone_of(people.get(user_id), default_zone)
        buttons: tuple[Button, ...]
        if event.kind == EventKind.CHECKIN:
            text = templates.render("mentor/checkin", day=event.day, other=name_of(people, other))
            value = f"{mentorship.id}:{event.day}"
            buttons = (
                Button("Going well", "mentor.checkin_good", value, ButtonStyle.PRIMARY),
                Button("Haven't met yet", "mentor.checkin_not_met", value),
                Button("Not a fit", "mentor.checkin_not_fit", value, ButtonStyle.DANGER),
            )
        else:
            text = templates.render(
                "mentor/end_reminder",
                other=name_of(people, other),
                planned_end=Trusted(describe_time(mentorship.planned_end_at, zone)),
                extension_weeks=EXTENSION.days // 7,
            )
            value = str(mentorship.id)
            buttons = (
                Button(
                    f"Extend {EXTENSION.days // 7} weeks",
                    "mentor.extend",
                    value,
                    ButtonStyle.PRIMARY,
                ),
                Button("Close as planned", "mentor.close", value),
            )
        await outbox.dm(
            user_id,
            Message(text, buttons),
            # An extension brings a second reminder: the key names its moment.
            key=f"{event_job(mentorship_id, event)}:{user_id}:{event.at:%Y%m%d%H%M}",
        )


async def answer_checkin(ctx: Context, answer: str) -> Reply:
    mentorship = await mentorship_from_button(ctx)
    assert mentorship.id is not None
    try:
        day = int(ctx.inbound.value.split(":")[1])
    except (IndexError, ValueError):
        raise CommandError("That button is out of date. Try `/kindred mentor status`.") from None
    await store.record_checkin(
        ctx.session, mentorship.id, ctx.inbound.user_id, day, answer, ctx.now()
    )
    if answer == "not_fit" and mentorship.status == MentorshipStatus.ACTIVE:
        await end_mentorship(
            ctx.runtime.templates,
            ctx.outbox,
            mentorship,
            Outcome.NOT_A_FIT,
            ctx.inbound.user_id,
            None,
            ctx.now(),
        )
        return Reply(
            update_original=Message(
                "Thanks for saying so. I've closed this mentorship, no fault on anyone; "
                "you'll find what comes next in a DM."
            )
        )
    thanks = {
        "good": "Glad to hear it. Keep going!",
        "not_met": "Noted. A short first call is enough: propose two times in your intro.",
        "not_fit": "Noted, thank you.",
    }[answer]
    return Reply(update_original=Message(f"Day {day} check-in: {ANSWERS[answer]}. {thanks}"))


async def extend(ctx: Context) -> Reply:
    """ "Extend" on the end reminder: once per reminder, whichever of the two presses."""
    mentorship = await mentorship_from_button(ctx)
    if mentorship.status != MentorshipStatus.ACTIVE or mentorship.planned_end_at is None:
        return Reply.text(_already(mentorship))
    assert mentorship.started_at is not None
    zone = await viewer_zone(ctx)
    reminded_at = mentorship.planned_end_at - END_REMINDER_BEFORE
    if mentorship.handled_until != reminded_at:
        return Reply(
            update_original=Message(
                "Already extended: the mentorship runs until "
                f"{describe_time(mentorship.planned_end_at, zone)}."
            )
        )
    mentorship.planned_end_at = mentorship.planned_end_at + EXTENSION
    following = next_event(mentorship.started_at, mentorship.planned_end_at, reminded_at)
    mentorship.next_due_at = following.at if following is not None else None
    return Reply(
        update_original=Message(
            f"Extended by {EXTENSION.days // 7} weeks: the mentorship now runs until "
            f"{describe_time(mentorship.planned_end_at, zone)}."
        )
    )


async def close(ctx: Context) -> Reply:
    mentorship = await mentorship_from_button(ctx)
    if mentorship.status != MentorshipStatus.ACTIVE:
        return Reply.text(_already(mentorship))
    await end_mentorship(
        ctx.runtime.templates,
        ctx.outbox,
        mentorship,
        Outcome.COMPLETED,
        ctx.inbound.user_id,
        None,
        ctx.now(),
    )
    return Reply(update_original=Message("Closed as planned. Thank you both!"))


# --- endings ------------------------------------------------------------------------


async def end_mentorship(
    templates: Templates,
    outbox: Outbox,
    mentorship: Mentorship,
    outcome: Outcome,
    ended_by: str | None,
    reason: str | None,
    now: datetime,
    *,
    departed: str | None = None,
) -> bool:
    """End an active mentorship (no fault either way): the seat frees, a cooldown
    starts if the mentor wants one, the mentee is asked for feedback (and offered a
    re-match after "not a fit"), the mentor thanked. The reason stays private.
    `departed`: the one who left the community, who gets no note."""
    session = outbox.session
    assert mentorship.id is not None
    if not await store.change_status(
        session,
        mentorship.id,
        [MentorshipStatus.ACTIVE],
        MentorshipStatus.ENDED,
        ended_at=now,
        ended_by=ended_by,
        outcome=outcome,
        end_reason=reason or None,
        next_due_at=None,
    ):
        return False
    offer = await store.get_offer(
        session, mentorship.platform, mentorship.workspace_id, mentorship.mentor_user_id
    )
    cooldown_weeks = 0
    if offer is not None and offer.id is not None:
        await store.free_seat(session, offer.id)
        cooldown_weeks = offer.cooldown_weeks
        if cooldown_weeks:
            offer.cooldown_until = now + timedelta(weeks=cooldown_weeks)
    people = await members.members_by_user_ids(
        session,
        mentorship.platform,
        mentorship.workspace_id,
        [mentorship.mentor_user_id, mentorship.mentee_user_id],
    )
    value = str(mentorship.id)
    buttons = [Button("Give feedback", "mentor.feedback", value, ButtonStyle.PRIMARY)]
    if outcome == Outcome.NOT_A_FIT:
        buttons.append(Button("Find me another mentor", "mentor.rematch", value))
    if departed != mentorship.mentee_user_id:
        await outbox.dm(
            mentorship.mentee_user_id,
            Message(
                templates.render(
                    "mentor/ended_mentee",
                    mentor=name_of(people, mentorship.mentor_user_id),
                    not_a_fit=outcome == Outcome.NOT_A_FIT,
                    left=departed is not None,
                ),
                tuple(buttons),
            ),
            key=f"mentor.ended:{mentorship.id}:mentee",
        )
    if departed != mentorship.mentor_user_id:
        await outbox.dm(
            mentorship.mentor_user_id,
            Message(
                templates.render(
                    "mentor/ended_mentor",
                    mentee=name_of(people, mentorship.mentee_user_id),
                    not_a_fit=outcome == Outcome.NOT_A_FIT,
                    cooldown_weeks=cooldown_weeks,
                    left=departed is not None,
                )
            ),
            key=f"mentor.ended:{mentorship.id}:mentor",
        )
    return True


async def member_left(ctx: Context) -> None:
    """Someone left the community: their offer pauses, their waiting requests are
    withdrawn, and their mentorships end (ended early, nobody's fault) with a note to
    the one who stays, so nothing keeps checking in on a departed member."""
    inbound = ctx.inbound
    offer = await store.get_offer(
        ctx.session, inbound.platform, inbound.workspace_id, inbound.user_id
    )
    if offer is not None:
        offer.paused = True
    for request in await store.mentee_requests(
        ctx.session, inbound.platform, inbound.workspace_id, inbound.user_id
    ):
        if request.status in WAITING:
            await _withdraw(ctx.session, request)
    for mentorship in await store.mentorships_of(
        ctx.session, inbound.platform, inbound.workspace_id, inbound.user_id
    ):
        if mentorship.status == MentorshipStatus.PROPOSED and mentorship.id is not None:
            await store.change_status(
                ctx.session,
                mentorship.id,
                [MentorshipStatus.PROPOSED],
                MentorshipStatus.EXPIRED,
                next_due_at=None,
            )
            await store.set_request_status(
                ctx.session, mentorship.request_id, [RequestStatus.PROPOSED], RequestStatus.OPEN
            )
        elif mentorship.status == MentorshipStatus.ACTIVE:
            await end_mentorship(
                ctx.runtime.templates,
                ctx.outbox,
                mentorship,
                Outcome.ENDED_EARLY,
                None,
                None,
                ctx.now(),
                departed=inbound.user_id,
            )


async def end_by_command(ctx: Context) -> str:
    """`mentor end`: end the member's mentorship (the one with `with`, when several),
    or withdraw their waiting request when they have no mentorship."""
    inbound = ctx.inbound
    active = await store.mentorships_of(
        ctx.session,
        inbound.platform,
        inbound.workspace_id,
        inbound.user_id,
        [MentorshipStatus.ACTIVE],
    )
    other = ctx.args.get("with")
    if other is not None:
        active = [m for m in active if other in (m.mentor_user_id, m.mentee_user_id)]
    try:
        reason = clean_text(ctx.args.get("reason"), "reason", MAX_REASON_LENGTH, required=False)
    except MentorInputError as error:
        raise refuse(error) from None
    if not active:
        if other is not None:
            raise CommandError(f"You have no active mentorship with {mention(other)}.")
        mine = await store.mentee_requests(
            ctx.session, inbound.platform, inbound.workspace_id, inbound.user_id
        )
        waiting = [request for request in mine if request.status in WAITING]
        if not waiting:
            raise CommandError("You have no active mentorship and no waiting request to end.")
        for request in waiting:
            assert request.id is not None
            await _withdraw(ctx.session, request)
        return "Withdrew your mentor request. Ask again any time with `/kindred mentor request`."
    if len(active) > 1:
        others = ", ".join(
            mention(m.mentee_user_id if m.mentor_user_id == inbound.user_id else m.mentor_user_id)
            for m in active
        )
        raise CommandError(
            f"You have several mentorships ({others}); say which: `/kindred mentor end with:@name`."
        )
    outcome = OUTCOME_OF[ctx.args.get("why", "done")]
    mentorship = active[0]
    await end_mentorship(
        ctx.runtime.templates, ctx.outbox, mentorship, outcome, inbound.user_id, reason, ctx.now()
    )
    partner = (
        mentorship.mentee_user_id
        if mentorship.mentor_user_id == inbound.user_id
        else mentorship.mentor_user_id
    )
    note = " Your reason stays private (only admins see it)." if reason else ""
    return (
        f"Ended your mentorship with {mention(partner)}, no fault on anyone.{note} "
        "You'll each get a short note."
    )


async def _withdraw(session: AsyncSession, request: MentorRequest) -> None:
    assert request.id is not None
    request.status = RequestStatus.WITHDRAWN
    for mentorship in await store.mentorships_of(
        session,
        request.platform,
        request.workspace_id,
        request.mentee_user_id,
        [MentorshipStatus.PROPOSED],
    ):
        if mentorship.request_id == request.id and mentorship.id is not None:
            await store.change_status(
                session,
                mentorship.id,
                [MentorshipStatus.PROPOSED],
                MentorshipStatus.EXPIRED,
                next_due_at=None,
            )


async def rematch(ctx: Context) -> Reply:
    """After "not a fit", the mentee asks for another mentor: a new request (not
    counted against the monthly limit) matched at once against free seats, else
    first in the next round."""
    mentorship = await mentorship_from_button(ctx)
    if ctx.inbound.user_id != mentorship.mentee_user_id or mentorship.outcome != Outcome.NOT_A_FIT:
        raise CommandError(
            "Only the mentee of a mentorship that was not a fit can ask for a re-match."
        )
    program = await require_program(ctx)
    inbound = ctx.inbound
    mine = await store.mentee_requests(
        ctx.session, inbound.platform, inbound.workspace_id, inbound.user_id
    )
    if any(request.status in WAITING for request in mine) or any(
        request.rematch_of == mentorship.request_id for request in mine
    ):
        return Reply.text("I'm on it already; see `/kindred mentor status`.")
    previous = await store.get_request(ctx.session, mentorship.request_id)
    assert previous is not None
    request = MentorRequest(
        platform=previous.platform,
        workspace_id=previous.workspace_id,
        mentee_user_id=previous.mentee_user_id,
        goal=previous.goal,
        topics=list(previous.topics),
        success=previous.success,
        cadence=previous.cadence,
        status=RequestStatus.OPEN,
        rematch_of=previous.id,
        created_at=ctx.now(),
    )
    ctx.session.add(request)
    await ctx.session.flush()
    round_ = await run_round(
        ctx.runtime, ctx.session, program, ctx.now(), manual=True, only=[request]
    )
    if not round_.matched:
        text = "No mentor with a free seat fits right now; you're first in line for the next round."
    elif program.approval:
        text = "I've asked a mentor who fits; you'll get an intro as soon as they accept."
    else:
        text = "Found you another mentor: the intro is on its way."
    return Reply(update_original=Message(text))


# --- feedback -----------------------------------------------------------------------


async def feedback_form_allowed(ctx: Context) -> Mentorship:
    mentorship = await mentorship_from_button(ctx)
    if ctx.inbound.user_id != mentorship.mentee_user_id:
        raise CommandError("Feedback is the mentee's to give.")
    if mentorship.status != MentorshipStatus.ENDED:
        raise CommandError("Feedback opens once the mentorship has ended.")
    assert mentorship.id is not None
    if await store.feedback_for(ctx.session, mentorship.id) is not None:
        raise CommandError("You've given feedback on this mentorship already. Thank you!")
    return mentorship


async def save_feedback(ctx: Context) -> Reply:
    mentorship = await feedback_form_allowed(ctx)
    options = ctx.inbound.options
    try:
        rating = parse_rating(_text(options, "rating"))
        text = clean_text(_text(options, "text"), "feedback", MAX_FEEDBACK_LENGTH, required=False)
        recommend = parse_yes_no(_text(options, "recommend"), "whether you'd recommend this mentor")
    except MentorInputError as error:
        raise refuse(error) from None
    assert mentorship.id is not None
    ctx.session.add(
        store.MentorFeedback(
            mentorship_id=mentorship.id,
            platform=mentorship.platform,
            workspace_id=mentorship.workspace_id,
            mentee_user_id=mentorship.mentee_user_id,
            mentor_user_id=mentorship.mentor_user_id,
            rating=rating,
            text=text,
            recommend=recommend,
            created_at=ctx.now(),
        )
    )
    await ctx.session.flush()
    return Reply.text(
        "Thank you! Your feedback is private: your mentor only ever sees an average, once "
        f"{PRIVATE_RATINGS_MIN} mentees have rated them, and only admins read what you wrote."
    )


# --- status, preview, stats ---------------------------------------------------------


async def status_text(ctx: Context) -> str:
    inbound = ctx.inbound
    session = ctx.session
    zone = await viewer_zone(ctx)
    offer = await store.get_offer(session, inbound.platform, inbound.workspace_id, inbound.user_id)
    mentorships = await store.mentorships_of(
        session, inbound.platform, inbound.workspace_id, inbound.user_id
    )
    requests = await store.mentee_requests(
        session, inbound.platform, inbound.workspace_id, inbound.user_id
    )
    people = await members.members_by_user_ids(
        session,
        inbound.platform,
        inbound.workspace_id,
        sorted({m.mentor_user_id for m in mentorships} | {m.mentee_user_id for m in mentorships}),
    )
    as_mentor = [m for m in mentorships if m.mentor_user_id == inbound.user_id]
    as_mentee = [m for m in mentorships if m.mentee_user_id == inbound.user_id]

    def shown(m: Mentorship, other: str) -> dict[str, object]:
        return {
            "other": Trusted(mention(other)),
            "name": name_of(people, other),
            "planned_end": Trusted(describe_time(m.planned_end_at, zone))
            if m.planned_end_at
            else None,
        }

    mentoring = [
        shown(m, m.mentee_user_id) for m in as_mentor if m.status == MentorshipStatus.ACTIVE
    ]
    proposals = [
        shown(m, m.mentee_user_id) for m in as_mentor if m.status == MentorshipStatus.PROPOSED
    ]
    mentors = [shown(m, m.mentor_user_id) for m in as_mentee if m.status == MentorshipStatus.ACTIVE]
    waiting = [
        {
            "goal": r.goal,
            "since": Trusted(describe_time(r.created_at, zone)),
            "proposed": r.status == RequestStatus.PROPOSED,
        }
        for r in requests
        if r.status in WAITING
    ]
    ratings = None
    if offer is not None:
        rated = await store.ratings_of_mentor(
            session, inbound.platform, inbound.workspace_id, inbound.user_id
        )
        if len({mentee for mentee, _ in rated}) >= PRIVATE_RATINGS_MIN:
            ratings = {
                "count": len(rated),
                "average": f"{sum(r for _, r in rated) / len(rated):.1f}",
            }
    cooling = (
        Trusted(describe_time(offer.cooldown_until, zone))
        if offer is not None
        and offer.cooldown_until is not None
        and offer.cooldown_until > ctx.now()
        else None
    )
    return ctx.runtime.templates.render(
        "mentor/status",
        offer=offer is not None,
        paused=offer.paused if offer else False,
        cooldown_until=cooling,
        capacity=offer.capacity if offer else 0,
        seats_left=max(0, offer.capacity - offer.load - len(proposals)) if offer else 0,
        topics=offer.topics if offer else [],
        mentoring=mentoring,
        proposals=proposals,
        mentors=mentors,
        waiting=waiting,
        ratings=ratings,
        private_min=PRIVATE_RATINGS_MIN,
    )


async def home_section(ctx: Context) -> Reply | None:
    inbound = ctx.inbound
    program = await store.get_program(ctx.session, inbound.platform, inbound.workspace_id)
    if program is None:
        return None
    offer = await store.get_offer(
        ctx.session, inbound.platform, inbound.workspace_id, inbound.user_id
    )
    active = await store.mentorships_of(
        ctx.session,
        inbound.platform,
        inbound.workspace_id,
        inbound.user_id,
        [MentorshipStatus.ACTIVE],
    )
    requests = await store.mentee_requests(
        ctx.session, inbound.platform, inbound.workspace_id, inbound.user_id
    )
    text = ctx.runtime.templates.render(
        "mentor/home",
        mentoring=[
            Trusted(mention(m.mentee_user_id))
            for m in active
            if m.mentor_user_id == inbound.user_id
        ],
        mentors=[
            Trusted(mention(m.mentor_user_id))
            for m in active
            if m.mentee_user_id == inbound.user_id
        ],
        offering=offer is not None and not offer.paused,
        waiting=any(r.status in WAITING for r in requests),
    )
    buttons = [
        Button("Update my offer" if offer else "Offer to mentor", "mentor.offer_form"),
        Button("Find a mentor", "mentor.request_form"),
    ]
    return Reply.text(text, *buttons)


async def preview_text(ctx: Context) -> str:
    program = await require_program(ctx)
    plan = await plan_round(ctx.session, program, ctx.now())
    quality = plan.result.quality
    names = {user_id: member.display_name for user_id, member in plan.people.items()}
    loads = Counter(m.mentor_id for m in plan.matches)
    return ctx.runtime.templates.render(
        "mentor/preview",
        plural=plural,
        matches=[
            {
                "mentee": names.get(m.mentee_id, m.mentee_id),
                "mentor": names.get(m.mentor_id, m.mentor_id),
                "reasons": m.explanation,
                "score": f"{m.score:.1f}",
            }
            for m in plan.matches
        ],
        unmatched=[
            {"mentee": names.get(user_id, user_id), "why": why} for user_id, why in plan.unmatched
        ],
        mentees=quality.mentees,
        mentors=quality.mentors,
        matched=len(plan.matches),
        mean_score=f"{plan.mean_score:.1f}",
        max_load=max(loads.values(), default=0),
        solver_ms=f"{quality.solver_ms:.1f}",
        approval=program.approval,
    )


async def run_now(ctx: Context) -> str:
    program = await require_program(ctx)
    assert program.id is not None
    occurrence = ctx.now().replace(second=0, microsecond=0)
    if not await ctx.runtime.claims.claim_in(ctx.session, manual_round_job(program.id), occurrence):
        raise CommandError("A round started this minute already; its messages are on their way.")
    round_ = await run_round(ctx.runtime, ctx.session, program, occurrence, manual=True)
    if not round_.mentees:
        return "Round run: there are no open requests to match."
    what = (
        "proposals went to the mentors to approve"
        if program.approval
        else "intros are on their way"
    )
    return (
        f"Round run: {round_.matched} of {plural(round_.mentees, 'open request')} matched "
        f"(solved in {round_.solver_ms:.1f} ms); {what}."
    )


@dataclass(frozen=True, slots=True)
class StatsFigures:
    """`mentor stats`, computed from rows so a test can check them by hand."""

    open_requests: int
    median_wait_days: float | None
    active: int
    ended: int
    completion_rate: float | None
    median_rating: float | None
    # Among mentees who answered "would you recommend this mentor?".
    recommend_rate: float | None
    top_decile_share: float | None
    load: list[tuple[str, int, int]]  # (mentor, active, capacity)


def stats_figures(
    requests: Sequence[MentorRequest],
    mentorships: Sequence[Mentorship],
    offers: Sequence[MentorOffer],
    feedback: Sequence[store.MentorFeedback],
    now: datetime,
) -> StatsFigures:
    waiting = [r for r in requests if r.status in WAITING]
    waits = [(now - r.created_at).total_seconds() / 86400 for r in waiting]
    ended = [m for m in mentorships if m.status == MentorshipStatus.ENDED]
    completed = [m for m in ended if m.outcome == Outcome.COMPLETED]
    asked: dict[str, int] = {offer.user_id: 0 for offer in offers}
    for m in mentorships:
        asked[m.mentor_user_id] = asked.get(m.mentor_user_id, 0) + 1
    active = {offer.user_id: 0 for offer in offers}
    for m in mentorships:
        if m.status == MentorshipStatus.ACTIVE:
            active[m.mentor_user_id] = active.get(m.mentor_user_id, 0) + 1
    capacity = {offer.user_id: offer.capacity for offer in offers}
    return StatsFigures(
        open_requests=len(waiting),
        median_wait_days=median(waits),
        active=sum(active.values()),
        ended=len(ended),
        completion_rate=share(len(completed), len(ended)),
        median_rating=median([float(f.rating) for f in feedback]),
        recommend_rate=share(
            sum(1 for f in feedback if f.recommend),
            sum(1 for f in feedback if f.recommend is not None),
        ),
        top_decile_share=top_decile_share(list(asked.values())),
        load=sorted(
            ((user_id, count, capacity.get(user_id, 0)) for user_id, count in active.items()),
            key=lambda row: (-row[1], row[0]),
        ),
    )


async def stats_text(ctx: Context) -> str:
    inbound = ctx.inbound
    session = ctx.session
    platform, workspace = inbound.platform, inbound.workspace_id
    requests = await store.requests_with_status(
        session, platform, workspace, [s.value for s in RequestStatus]
    )
    mentorships = await store.community_mentorships(session, platform, workspace)
    offers = await store.community_offers(session, platform, workspace)
    feedback = await store.community_feedback(session, platform, workspace)
    figures = stats_figures(requests, mentorships, offers, feedback, ctx.now())
    people = await members.members_by_user_ids(
        session, platform, workspace, sorted({row[0] for row in figures.load})
    )
    comments = [
        {"rating": f.rating, "text": f.text, "mentor": name_of(people, f.mentor_user_id)}
        for f in feedback[-5:]
        if f.text
    ]
    reasons = [m.end_reason for m in mentorships if m.end_reason][-5:]
    return ctx.runtime.templates.render(
        "mentor/stats",
        open_requests=figures.open_requests,
        median_wait=describe_days(figures.median_wait_days),
        active=figures.active,
        ended=figures.ended,
        completion_rate=percent(figures.completion_rate),
        median_rating="–" if figures.median_rating is None else f"{figures.median_rating:g}",
        ratings=len(feedback),
        recommend_rate=percent(figures.recommend_rate),
        recommend_answers=sum(1 for f in feedback if f.recommend is not None),
        top_share=percent(figures.top_decile_share),
        load=[
            {"name": name_of(people, user_id), "active": count, "capacity": capacity}
            for user_id, count, capacity in figures.load[:15]
        ],
        comments=comments,
        reasons=reasons,
    )


# --- hooks: figures, actions, privacy -----------------------------------------------


async def metrics(session: AsyncSession, period: Period) -> Figures:
    """Mentorship figures for the health report over the period."""
    platform, workspace = period.platform, period.workspace_id
    rows = await store.mentorships_in_period(session, platform, workspace, period.start, period.end)
    feedback = await store.feedback_in_period(
        session, platform, workspace, period.start, period.end
    )
    _, requests = await store.offers_and_requests_in_period(
        session, platform, workspace, period.start, period.end
    )

    def within(moment: datetime | None) -> bool:
        return moment is not None and period.start <= moment < period.end

    started = [m for m in rows if within(m.started_at)]
    ended = [m for m in rows if within(m.ended_at)]
    completed = [m for m in ended if m.outcome == Outcome.COMPLETED]
    proposed: dict[str, int] = {}
    for m in rows:
        if within(m.proposed_at):
            proposed[m.mentor_user_id] = proposed.get(m.mentor_user_id, 0) + 1
    return {
        "requests": len(requests),
        "mentorships_started": len(started),
        "mentorships_ended": len(ended),
        "completion_rate": share(len(completed), len(ended)),
        "median_rating": median([float(f.rating) for f in feedback]),
        "ratings": len(feedback),
        "top_decile_share": top_decile_share(list(proposed.values())),
    }


async def actions(session: AsyncSession, period: Period) -> list[MemberAction]:
    """Offers, requests and feedback in the period; a mentor's completed mentorship
    rated 4 or 5 counts as help given to others."""
    platform, workspace = period.platform, period.workspace_id
    offers, requests = await store.offers_and_requests_in_period(
        session, platform, workspace, period.start, period.end
    )
    found = [MemberAction(o.user_id, "mentor_offer", o.created_at) for o in offers]
    found += [MemberAction(r.mentee_user_id, "mentor_request", r.created_at) for r in requests]
    feedback = await store.community_feedback(session, platform, workspace)
    found += [
        MemberAction(f.mentee_user_id, "mentor_feedback", f.created_at)
        for f in feedback
        if period.start <= f.created_at < period.end
    ]
    ratings = {f.mentorship_id: f.rating for f in feedback}
    for m in await store.mentorships_in_period(
        session, platform, workspace, period.start, period.end
    ):
        if (
            m.ended_at is not None
            and period.start <= m.ended_at < period.end
            and m.outcome == Outcome.COMPLETED
            and ratings.get(m.id or -1, 0) >= GOOD_RATING
        ):
            found.append(
                MemberAction(
                    m.mentor_user_id,
                    "mentorship",
                    m.ended_at,
                    contribution=True,
                )
            )
    return found


async def stored_about(session: AsyncSession, member: Identity) -> Stored:
    """What mentorship keeps about a member, for `/kindred privacy`."""
    stored = await store.stored_about(session, member.platform, member.workspace_id, member.user_id)
    offer = stored.offer
    return Stored(
        "mentor/stored_about",
        {
            "offer": None
            if offer is None
            else {"topics": list(offer.topics), "capacity": offer.capacity},
            "requests": [
                {
                    "date": Trusted(f"{request.created_at:%Y-%m-%d}"),
                    "status": Trusted(request.status),
                }
                for request in stored.requests
            ],
            "mentorships": stored.mentorships,
            "feedback_given": stored.feedback_given,
            "checkins": stored.checkins,
        },
    )


async def forget_feedback(session: AsyncSession, member: Identity) -> int:
    return await store.forget_feedback(
        session, member.platform, member.workspace_id, member.user_id
    )
