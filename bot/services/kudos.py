"""Recognition's use cases, shared by its commands (bot/commands/kudos.py) and its
ticks (bot/jobs/kudos.py): giving kudos by command or reaction, withdrawing them
when the reaction or the message goes, the lists and boards, the written rule and
its explanation, granting the status the moment the rule is met, the daily sweep
that grants it when time or new evidence completes it, and the monthly review
with hysteresis.

Evidence beyond kudos comes only from other features' `actions` hooks
(`Runtime.member_actions`): their actions marked `contribution`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.context import Context
from bot.core.errors import CommandError
from bot.core.figures import Figures, MemberAction, Period, Stored
from bot.core.mentions import mention
from bot.core.outbox import Outbox
from bot.core.platform import Button, ButtonStyle, Identity, MemberInfo, Message
from bot.core.runtime import Runtime
from bot.core.templates import Templates, Trusted
from bot.domain.kudos import (
    DEFAULT_CATEGORIES,
    DEFAULT_EMOJI,
    STATUS_WINDOW,
    Assessment,
    Flags,
    Given,
    KudosError,
    Rule,
    assess,
    board,
    day_start,
    emoji_matches,
    flags,
    match_category,
    month_start,
    monthly_review,
    parse_reason,
    previous_month_start,
    rising,
)
from storage import kudos as store
from storage.kudos import ACTIVE, PENDING, REVOKED, WITHDRAWN, Kudos, KudosSettings
from storage.kudos import RecognisedContributor as Recognition
from storage.members import ensure_member, get_member, members_by_user_ids

FEATURE = "kudos"
# Claims of the daily grant sweep and the monthly review are named after these.
SWEEP_JOB = "kudos.sweep"
REVIEW_JOB = "kudos.review"
LIST_LIMIT = 10
BOARD_LIMIT = 10
REASON_ACTION = "kudos.reason"
REASON_SUBMIT = "kudos.reason_submit"


def refusal(templates: Templates, why: str, **values: Any) -> CommandError:
    return CommandError(templates.render("kudos/refused", why=why, **values))


def refused_input(templates: Templates, error: KudosError) -> CommandError:
    """A pure rule's refusal, in the words of the refusals template."""
    return refusal(templates, error.why, **error.values)


def rule_of(settings: KudosSettings) -> Rule:
    return Rule(
        min_kudos=settings.min_kudos,
        min_givers=settings.min_givers,
        min_companies=settings.min_companies,
        min_days=settings.min_days,
        min_evidence=settings.min_evidence,
    )


async def settings_for(
    session: AsyncSession, platform: str, workspace_id: str, timezone: str
) -> KudosSettings:
    """The community's settings, created with the default rule on first use."""
    existing = await store.get_settings(session, platform, workspace_id)
    if existing is not None:
        return existing
    fresh = KudosSettings(
        platform=platform,
        workspace_id=workspace_id,
        timezone=timezone,
        emoji=DEFAULT_EMOJI,
        categories=list(DEFAULT_CATEGORIES),
    )
    return await store.add_settings(session, fresh)


async def community_settings(ctx: Context) -> KudosSettings:
    return await settings_for(
        ctx.session, ctx.inbound.platform, ctx.inbound.workspace_id, ctx.runtime.settings.timezone
    )


async def member_timezone(session: AsyncSession, settings: KudosSettings, user_id: str) -> str:
    member = await get_member(session, settings.platform, settings.workspace_id, user_id)
    return (member.timezone if member else None) or settings.timezone


def local(moment: datetime, timezone: str) -> str:
    return f"{moment.astimezone(ZoneInfo(timezone)):%a %d %b %Y}"


# --- Giving ------------------------------------------------------------------------


async def check_allowance(
    session: AsyncSession, templates: Templates, settings: KudosSettings, giver: str, now: datetime
) -> datetime:
    """Refuse at the daily cap (midnight in the giver's time zone); returns the day."""
    timezone = await member_timezone(session, settings, giver)
    today = day_start(now, timezone)
    given = await store.given_since(session, settings.platform, settings.workspace_id, giver, today)
    if given >= settings.daily_allowance:
        raise refusal(
            templates,
            "cap",
            allowance=settings.daily_allowance,
            resets=Trusted(f"{today + timedelta(days=1):%H:%M} ({timezone})"),
        )
    return today


@dataclass(frozen=True, slots=True)
class Receiver:
    """What the platform said about a command's receiver: `info` when it lists them
    among its people; `listed` False when it could not be asked."""

    listed: bool
    info: MemberInfo | None


async def give_by_command(
    ctx: Context, receiver_id: str, reason_text: str, category: str | None
) -> str:
    """`kudos @member <reason>`: recorded at once, or refused with nothing changed."""
    templates = ctx.runtime.templates
    giver = ctx.inbound.user_id
    if receiver_id == giver:
        raise refusal(templates, "self")
    prepared: Receiver = ctx.prepared
    target = prepared.info
    stored = await get_member(
        ctx.session, ctx.inbound.platform, ctx.inbound.workspace_id, receiver_id
    )
    if (stored is not None and stored.is_bot) or (target is not None and target.is_bot):
        raise refusal(templates, "bot")
    if target is None and prepared.listed and (stored is None or stored.deactivated):
        # Not among the people the platform lists: a bot, or an account that left.
        raise refusal(templates, "not_a_person", receiver=Trusted(mention(receiver_id)))
    settings = await community_settings(ctx)
    try:
        reason = parse_reason(reason_text)
        chosen = match_category(category, settings.categories) if category else None
    except KudosError as error:
        raise refused_input(templates, error) from None
    await check_allowance(ctx.session, templates, settings, giver, ctx.now())
    await ensure_member(
        ctx.session,
        ctx.inbound.platform,
        ctx.inbound.workspace_id,
        receiver_id,
        target.display_name if target else None,
    )
    kudos = Kudos(
        platform=settings.platform,
        workspace_id=settings.workspace_id,
        giver_id=giver,
        receiver_id=receiver_id,
        reason=reason,
        category=chosen,
        source="command",
        channel_id=ctx.inbound.channel_id,
        private=ctx.inbound.channel_is_private,
        status=ACTIVE,
        created_at=ctx.now(),
        active_at=ctx.now(),
    )
    added = await store.add_kudos(ctx.session, kudos)
    assert added is not None, "a command's kudos has no source key to collide on"
    granted = await activate(ctx.session, ctx.runtime, ctx.outbox, settings, added, ctx.now())
    left = settings.daily_allowance - await store.given_since(
        ctx.session,
        settings.platform,
        settings.workspace_id,
        giver,
        day_start(ctx.now(), await member_timezone(ctx.session, settings, giver)),
    )
    return templates.render(
        "kudos/given",
        receiver=Trusted(mention(receiver_id)),
        reason=reason,
        category=chosen,
        public=bool(settings.public_channel_id) and not added.private,
        left=left,
        granted=granted,
    )


async def activate(
    session: AsyncSession,
    runtime: Runtime,
    outbox: Outbox,
    settings: KudosSettings,
    kudos: Kudos,
    now: datetime,
) -> bool:
    """A kudos that now stands: the receiver's DM, the public post (when the community
    chose a channel and the kudos was not given in private), and the status if this
    completes the rule. Whether it did."""
    templates = runtime.templates
    assert kudos.id is not None
    kudos.status = ACTIVE
    kudos.active_at = now
    await outbox.dm(
        kudos.receiver_id,
        Message(
            templates.render(
                "kudos/received_dm",
                giver=Trusted(mention(kudos.giver_id)),
                reason=kudos.reason,
                category=kudos.category,
                link=kudos.message_link,
            )
        ),
        key=f"kudos:{kudos.id}:dm",
    )
    if settings.public_channel_id and not kudos.private:
        kudos.public_post_id = await outbox.post(
            settings.public_channel_id,
            await public_post(session, templates, settings, kudos),
            key=f"kudos:{kudos.id}:post",
        )
    await session.flush()
    return await grant_if_met(session, runtime, outbox, settings, kudos.receiver_id, now)


async def public_post(
    session: AsyncSession, templates: Templates, settings: KudosSettings, kudos: Kudos
) -> Message:
    """The public thank-you. Names, never mentions: it pings nobody."""
    names = await display_names(session, settings, [kudos.giver_id, kudos.receiver_id])
    return Message(
        templates.render(
            "kudos/public_post",
            giver=names[kudos.giver_id],
            receiver=names[kudos.receiver_id],
            reason=kudos.reason,
            category=kudos.category,
        )
    )


async def display_names(
    session: AsyncSession, settings: KudosSettings, user_ids: Sequence[str]
) -> dict[str, str]:
    """Members' names as stored, shown as member text (never a mention). A member
    whose name Kindred has not learnt yet is shown by an inert mention instead:
    listed in no message's `mentions`, it renders as their name and pings nobody."""
    found = await members_by_user_ids(session, settings.platform, settings.workspace_id, user_ids)
    names: dict[str, str] = {}
    for user_id in user_ids:
        member = found.get(user_id)
        known = member is not None and member.display_name not in {"", user_id}
        names[user_id] = member.display_name if known and member else Trusted(mention(user_id))
    return names


def reaction_key(channel_id: str, message_id: str, giver: str) -> str:
    return f"reaction:{channel_id}:{message_id}:{giver}"


async def give_by_reaction(ctx: Context) -> None:
    """The kudos reaction on someone's message records kudos for that message; if the
    community wants reasons, the giver is asked for one by DM first."""
    inbound = ctx.inbound
    templates = ctx.runtime.templates
    if inbound.message is None or not inbound.reaction:
        return
    existing = await store.get_settings(ctx.session, inbound.platform, inbound.workspace_id)
    if not emoji_matches(existing.emoji if existing else DEFAULT_EMOJI, inbound.reaction):
        return
    receiver, giver = inbound.message_author_id, inbound.user_id
    if not receiver:
        # Unknown author (or Kindred's own message): nobody to thank.
        return
    settings = existing or await community_settings(ctx)
    message = inbound.message
    key = reaction_key(message.channel_id, message.message_id, giver)
    earlier = await store.by_source(ctx.session, settings.platform, settings.workspace_id, key)
    if earlier is not None:
        if earlier.status == WITHDRAWN:
            await restore_withdrawn(ctx, settings, earlier)
        return
    if receiver == giver:
        await ctx.outbox.dm(
            giver, Message(templates.render("kudos/refused", why="self")), key=f"{key}:self"
        )
        return
    author = await get_member(ctx.session, settings.platform, settings.workspace_id, receiver)
    if author is not None and author.deactivated:
        # The author has left the community: nobody to thank any more.
        return
    if author is not None and author.is_bot:
        await ctx.outbox.dm(
            giver, Message(templates.render("kudos/refused", why="bot")), key=f"{key}:bot"
        )
        return
    try:
        await check_allowance(ctx.session, templates, settings, giver, ctx.now())
    except CommandError as capped:
        # One note per giver and day (their day), however many reactions follow.
        day = day_start(ctx.now(), await member_timezone(ctx.session, settings, giver))
        await ctx.outbox.dm(giver, Message(str(capped)), key=f"kudos-cap:{giver}:{day:%Y-%m-%d}")
        return
    kudos = await store.add_kudos(
        ctx.session,
        Kudos(
            platform=settings.platform,
            workspace_id=settings.workspace_id,
            giver_id=giver,
            receiver_id=receiver,
            source="reaction",
            source_key=key,
            emoji=inbound.reaction,
            channel_id=message.channel_id,
            message_id=message.message_id,
            message_link=message.permalink,
            private=inbound.channel_is_private,
            status=PENDING,
            created_at=ctx.now(),
        ),
    )
    if kudos is None:
        return
    if settings.reaction_needs_reason:
        await ctx.outbox.dm(
            giver,
            Message(
                templates.render(
                    "kudos/ask_reason", receiver=Trusted(mention(receiver)), link=message.permalink
                ),
                buttons=(Button("Say why", REASON_ACTION, str(kudos.id), ButtonStyle.PRIMARY),),
            ),
            key=f"kudos:{kudos.id}:ask",
        )
        return
    await activate(ctx.session, ctx.runtime, ctx.outbox, settings, kudos, ctx.now())


async def restore_withdrawn(ctx: Context, settings: KudosSettings, kudos: Kudos) -> None:
    """The reaction came back: the kudos stands again if it had its reason. Its DM is
    not repeated; its public post, which said it was withdrawn, thanks again."""
    kudos.ended_at = None
    if settings.reaction_needs_reason and not kudos.reason:
        kudos.status = PENDING
        return
    kudos.status = ACTIVE
    if kudos.public_post_id is not None:
        await ctx.outbox.update(
            kudos.public_post_id,
            await public_post(ctx.session, ctx.runtime.templates, settings, kudos),
            key=f"kudos:{kudos.id}:restored:{ctx.now().isoformat()}",
        )


async def pending_kudos(ctx: Context, value: str) -> Kudos:
    """The kudos a reason button points at: the giver's own, still waiting."""
    kudos = None
    if value.strip().isdigit():
        kudos = await store.get_kudos(
            ctx.session, ctx.inbound.platform, ctx.inbound.workspace_id, int(value)
        )
    if kudos is None or kudos.giver_id != ctx.inbound.user_id:
        raise refusal(ctx.runtime.templates, "gone")
    if kudos.status != PENDING:
        raise refusal(ctx.runtime.templates, "not_pending", status=kudos.status)
    return kudos


async def add_reason(ctx: Context, value: str, reason_text: str, category: str | None) -> str:
    """The giver's reason for a reaction's kudos: now it stands and counts."""
    kudos = await pending_kudos(ctx, value)
    settings = await community_settings(ctx)
    try:
        kudos.reason = parse_reason(reason_text)
        kudos.category = match_category(category, settings.categories) if category else None
    except KudosError as error:
        raise refused_input(ctx.runtime.templates, error) from None
    granted = await activate(ctx.session, ctx.runtime, ctx.outbox, settings, kudos, ctx.now())
    return ctx.runtime.templates.render(
        "kudos/given",
        receiver=Trusted(mention(kudos.receiver_id)),
        reason=kudos.reason,
        category=kudos.category,
        public=bool(settings.public_channel_id) and not kudos.private,
        left=None,
        granted=granted,
    )


# --- Withdrawing -------------------------------------------------------------------


async def withdraw(ctx: Context, rows: Sequence[Kudos]) -> int:
    """Kudos whose reaction or message went: they stop counting at once, and a
    public post says so instead of thanking."""
    for kudos in rows:
        kudos.status = WITHDRAWN
        kudos.ended_at = ctx.now()
        if kudos.public_post_id is not None:
            await ctx.outbox.update(
                kudos.public_post_id,
                Message(ctx.runtime.templates.render("kudos/withdrawn_post")),
                key=f"kudos:{kudos.id}:withdrawn:{ctx.now().isoformat()}",
            )
    return len(rows)


async def reaction_removed(ctx: Context) -> None:
    inbound = ctx.inbound
    if inbound.message is None or not inbound.reaction:
        return
    settings = await store.get_settings(ctx.session, inbound.platform, inbound.workspace_id)
    if settings is None or not emoji_matches(settings.emoji, inbound.reaction):
        return
    key = reaction_key(inbound.message.channel_id, inbound.message.message_id, inbound.user_id)
    kudos = await store.by_source(ctx.session, settings.platform, settings.workspace_id, key)
    if kudos is not None and kudos.status in {ACTIVE, PENDING}:
        await withdraw(ctx, [kudos])


async def message_deleted(ctx: Context) -> None:
    inbound = ctx.inbound
    if inbound.message is None:
        return
    rows = await store.on_message(
        ctx.session,
        inbound.platform,
        inbound.workspace_id,
        inbound.message.channel_id,
        inbound.message.message_id,
    )
    await withdraw(ctx, rows)


# --- Admins: revoke ----------------------------------------------------------------


async def revoke(ctx: Context, kudos_id: int, reason_text: str) -> str:
    templates = ctx.runtime.templates
    kudos = await store.get_kudos(
        ctx.session, ctx.inbound.platform, ctx.inbound.workspace_id, kudos_id
    )
    if kudos is None:
        raise refusal(templates, "no_such", kudos_id=kudos_id)
    if kudos.status == REVOKED:
        raise refusal(templates, "already_revoked", kudos_id=kudos_id)
    try:
        reason = parse_reason(reason_text)
    except KudosError as error:
        raise refused_input(templates, error) from None
    kudos.status = REVOKED
    kudos.ended_at = ctx.now()
    kudos.revoked_by = ctx.inbound.user_id
    kudos.revoke_reason = reason
    if kudos.public_post_id is not None:
        await ctx.outbox.update(
            kudos.public_post_id,
            Message(templates.render("kudos/withdrawn_post")),
            key=f"kudos:{kudos.id}:revoked",
        )
    await ctx.outbox.dm(
        kudos.receiver_id,
        Message(templates.render("kudos/revoked_dm", original=kudos.reason, reason=reason)),
        key=f"kudos:{kudos.id}:revoked:dm",
    )
    return templates.render(
        "kudos/revoked",
        kudos_id=kudos_id,
        giver=Trusted(mention(kudos.giver_id)),
        receiver=Trusted(mention(kudos.receiver_id)),
    )


# --- Status ------------------------------------------------------------------------


def as_given(rows: Sequence[Kudos]) -> list[Given]:
    return [
        Given(
            kudos_id=row.id or 0,
            giver=row.giver_id,
            receiver=row.receiver_id,
            at=row.created_at,
            has_reason=bool(row.reason),
        )
        for row in rows
    ]


@dataclass(frozen=True, slots=True)
class Standing:
    """The community's standing kudos in the status window, with their flags."""

    kudos: list[Given]
    flags: Flags


async def standing(session: AsyncSession, settings: KudosSettings, now: datetime) -> Standing:
    rows = await store.standing(
        session, settings.platform, settings.workspace_id, now - STATUS_WINDOW
    )
    given = as_given(rows)
    return Standing(given, flags(given))


async def evidence(
    session: AsyncSession, runtime: Runtime, settings: KudosSettings, now: datetime
) -> dict[str, list[str]]:
    """Each member's contributions recorded by other features in the status window,
    in words ("answered an AMA question as host")."""
    period = Period(settings.platform, settings.workspace_id, now - STATUS_WINDOW, now)
    # How recognition names each kind (a kind without a line shows as itself).
    labels = runtime.templates.labels("kudos/contributions")
    found: dict[str, list[str]] = {}
    for feature, actions in (await runtime.member_actions(session, period)).items():
        if feature == FEATURE:
            continue
        for action in actions:
            if action.contribution:
                found.setdefault(action.user_id, []).append(labels.get(action.kind, action.kind))
    return found


async def assessment(
    session: AsyncSession,
    runtime: Runtime,
    settings: KudosSettings,
    user_id: str,
    now: datetime,
    known: Standing | None = None,
    contributions: dict[str, list[str]] | None = None,
) -> Assessment:
    known = known or await standing(session, settings, now)
    contributions = (
        contributions
        if contributions is not None
        else await evidence(session, runtime, settings, now)
    )
    givers = sorted({given.giver for given in known.kudos if given.receiver == user_id})
    profiles = await members_by_user_ids(session, settings.platform, settings.workspace_id, givers)
    companies = {giver: profiles[giver].company if giver in profiles else None for giver in givers}
    return assess(
        user_id,
        known.kudos,
        companies,
        contributions.get(user_id, []),
        rule_of(settings),
        now,
        known.flags,
    )


async def grant_if_met(
    session: AsyncSession,
    runtime: Runtime,
    outbox: Outbox,
    settings: KudosSettings,
    user_id: str,
    now: datetime,
    known: Standing | None = None,
    contributions: dict[str, list[str]] | None = None,
) -> bool:
    """Grant the status the moment the rule is met; whether it was granted now."""
    current = await store.recognition(session, settings.platform, settings.workspace_id, user_id)
    if current is not None and current.active:
        return False
    known = known or await standing(session, settings, now)
    if contributions is None:
        # Every feature's actions over a year cost more than the kudos: ask for them
        # only when the kudos alone already meet the rule.
        from_kudos = await assessment(session, runtime, settings, user_id, now, known, {})
        if set(from_kudos.missing) - {"evidence"}:
            return False
    found = await assessment(session, runtime, settings, user_id, now, known, contributions)
    if not found.met:
        return False
    if current is None:
        row = await store.add_recognition(
            session,
            Recognition(
                platform=settings.platform,
                workspace_id=settings.workspace_id,
                user_id=user_id,
                granted_at=now,
            ),
        )
        if row is None:
            return False
        times = 1
    else:
        current.active = True
        current.granted_at = now
        current.months_below = 0
        current.dropped_at = None
        current.times_granted += 1
        times = current.times_granted
    templates = runtime.templates
    key = f"kudos-status:{user_id}:{times}"
    await outbox.dm(
        user_id,
        Message(templates.render("kudos/granted_dm", assessment=found, role=settings.role)),
        key=f"{key}:dm",
    )
    if settings.announce and settings.public_channel_id:
        names = await display_names(session, settings, [user_id])
        await outbox.post(
            settings.public_channel_id,
            Message(
                templates.render("kudos/granted_post", member=names[user_id], assessment=found)
            ),
            key=f"{key}:post",
        )
    if settings.role and platform_has_roles(runtime, settings.platform):
        await outbox.role(user_id, settings.role, granted=True, key=f"{key}:role")
    return True


def platform_has_roles(runtime: Runtime, platform: str) -> bool:
    attached = runtime.platforms.get(platform)
    return attached is not None and attached.supports_roles


async def sweep(
    session: AsyncSession, runtime: Runtime, settings: KudosSettings, now: datetime
) -> int:
    """Grant the status to every member the rule now fits (time passed, evidence
    arrived); how many were granted."""
    known = await standing(session, settings, now)
    contributions = await evidence(session, runtime, settings, now)
    outbox = Outbox(session, settings.platform, settings.workspace_id)
    granted = 0
    for user_id in sorted({given.receiver for given in known.kudos}):
        if await grant_if_met(
            session, runtime, outbox, settings, user_id, now, known, contributions
        ):
            granted += 1
    return granted


async def review(
    session: AsyncSession, runtime: Runtime, settings: KudosSettings, now: datetime
) -> int:
    """The monthly review: a member below the bar two reviews in a row loses the
    status (a DM says so, and the role goes); how many lost it."""
    known = await standing(session, settings, now)
    contributions = await evidence(session, runtime, settings, now)
    outbox = Outbox(session, settings.platform, settings.workspace_id)
    dropped = 0
    for row in await store.recognised(session, settings.platform, settings.workspace_id):
        found = await assessment(session, runtime, settings, row.user_id, now, known, contributions)
        outcome = monthly_review(row.months_below, found.met)
        row.months_below = outcome.months_below
        row.reviewed_at = now
        if outcome.keep:
            continue
        row.active = False
        row.dropped_at = now
        dropped += 1
        key = f"kudos-status:{row.user_id}:{row.times_granted}:dropped"
        await outbox.dm(
            row.user_id,
            Message(runtime.templates.render("kudos/dropped_dm", assessment=found)),
            key=f"{key}:dm",
        )
        if settings.role and platform_has_roles(runtime, settings.platform):
            await outbox.role(row.user_id, settings.role, granted=False, key=f"{key}:role")
    return dropped


async def why_text(ctx: Context, user_id: str) -> str:
    settings = await community_settings(ctx)
    found = await assessment(ctx.session, ctx.runtime, settings, user_id, ctx.now())
    current = await store.recognition(
        ctx.session, settings.platform, settings.workspace_id, user_id
    )
    timezone = await member_timezone(ctx.session, settings, ctx.inbound.user_id)
    return ctx.runtime.templates.render(
        "kudos/why",
        member=Trusted(mention(user_id)),
        own=user_id == ctx.inbound.user_id,
        recognised=current is not None and current.active,
        since=local(current.granted_at, timezone) if current else None,
        months_below=current.months_below if current else 0,
        assessment=found,
        rule=found.rule,
    )


# --- Reading -----------------------------------------------------------------------


async def list_text(ctx: Context, user_id: str, *, received: bool) -> str:
    settings = await community_settings(ctx)
    rows = await store.listed(
        ctx.session,
        settings.platform,
        settings.workspace_id,
        receiver_id=user_id if received else None,
        giver_id=None if received else user_id,
        limit=LIST_LIMIT,
        # Kudos given in private are for the two people: others see the public ones.
        include_private=user_id == ctx.inbound.user_id,
    )
    timezone = await member_timezone(ctx.session, settings, ctx.inbound.user_id)
    return ctx.runtime.templates.render(
        "kudos/list",
        received=received,
        own=user_id == ctx.inbound.user_id,
        member=Trusted(mention(user_id)),
        items=[
            {
                "id": row.id,
                "other": Trusted(mention(row.giver_id if received else row.receiver_id)),
                "reason": row.reason,
                "category": row.category,
                "when": local(row.created_at, timezone),
                "link": row.message_link,
            }
            for row in rows
        ],
    )


BOARDS = ("month", "rising", "category")


async def board_text(ctx: Context, which: str, category: str | None) -> str:
    settings = await community_settings(ctx)
    start = month_start(ctx.now(), settings.timezone)
    this_month = as_given(
        await store.standing(ctx.session, settings.platform, settings.workspace_id, start)
    )
    hidden = await store.opted_out(ctx.session, settings.platform, settings.workspace_id)
    chosen = None
    if which == "category" or category:
        if not category:
            raise refusal(ctx.runtime.templates, "category_needed", categories=settings.categories)
        try:
            chosen = match_category(category, settings.categories)
        except KudosError as error:
            raise refused_input(ctx.runtime.templates, error) from None
        rows = await store.standing(ctx.session, settings.platform, settings.workspace_id, start)
        entries = board(
            as_given([row for row in rows if row.category == chosen]), hidden, BOARD_LIMIT
        )
        which = "category"
    elif which == "rising":
        before = previous_month_start(start)
        last_month = as_given(
            await store.standing(
                ctx.session, settings.platform, settings.workspace_id, before, start
            )
        )
        entries = rising(this_month, last_month, hidden, BOARD_LIMIT)
    else:
        entries = board(this_month, hidden, BOARD_LIMIT)
    names = await display_names(ctx.session, settings, [entry.user_id for entry in entries])
    return ctx.runtime.templates.render(
        "kudos/board",
        which=which,
        category=chosen,
        month=f"{start:%B %Y}",
        # Names, never mentions: a board pings nobody.
        entries=[
            {"name": names[entry.user_id], "givers": entry.givers, "change": entry.change}
            for entry in entries
        ],
        opted_out=ctx.inbound.user_id in hidden,
    )


async def set_boards(ctx: Context, *, shown: bool) -> str:
    changed = await store.set_opt_out(
        ctx.session,
        ctx.inbound.platform,
        ctx.inbound.workspace_id,
        ctx.inbound.user_id,
        out=not shown,
    )
    return ctx.runtime.templates.render("kudos/boards", shown=shown, changed=changed)


async def profile_lines(
    templates: Templates, session: AsyncSession, platform: str, workspace_id: str, user_id: str
) -> str:
    """A member's recognition for their profile card and home tab: distinct givers,
    categories and the badge; empty when they have none."""
    summary = await store.received_summary(session, platform, workspace_id, user_id)
    current = await store.recognition(session, platform, workspace_id, user_id)
    recognised = current is not None and current.active
    if not summary.kudos and not recognised:
        return ""
    return templates.render(
        "kudos/profile",
        recognised=recognised,
        givers=summary.givers,
        kudos=summary.kudos,
        categories=summary.categories,
    )


# --- Settings ----------------------------------------------------------------------

SETTINGS_FIELDS = {
    "emoji": "emoji",
    "reasons": "reaction_needs_reason",
    "categories": "categories",
    "channel": "public_channel_id",
    "announce": "announce",
    "allowance": "daily_allowance",
    "kudos": "min_kudos",
    "givers": "min_givers",
    "companies": "min_companies",
    "days": "min_days",
    "evidence": "min_evidence",
    "role": "role",
    "timezone": "timezone",
}


async def change_settings(ctx: Context, changes: dict[str, Any]) -> str:
    settings = await community_settings(ctx)
    if changes.get("role") and not ctx.platform.supports_roles:
        raise refusal(ctx.runtime.templates, "no_roles", platform=ctx.inbound.platform)
    for option, value in changes.items():
        setattr(settings, SETTINGS_FIELDS[option], value)
    return ctx.runtime.templates.render(
        "kudos/settings",
        saved=bool(changes),
        settings=settings,
        emoji=settings.emoji,
        channel=Trusted(f"<#{settings.public_channel_id}>") if settings.public_channel_id else None,
        rule=rule_of(settings),
        roles=ctx.platform.supports_roles,
    )


# --- Admins: stats -----------------------------------------------------------------


async def stats_text(ctx: Context) -> str:
    settings = await community_settings(ctx)
    start = month_start(ctx.now(), settings.timezone)
    figures = await metrics(
        ctx.session, Period(settings.platform, settings.workspace_id, start, ctx.now())
    )
    known = await standing(ctx.session, settings, ctx.now())
    return ctx.runtime.templates.render(
        "kudos/stats",
        month=f"{start:%B %Y}",
        figures=figures,
        pairs=[
            Trusted(" ↔ ".join(mention(user) for user in sorted(pair)))
            for pair in known.flags.pairs
        ],
        rings=[
            Trusted(", ".join(mention(user) for user in sorted(ring))) for ring in known.flags.rings
        ],
    )


# --- Hooks for the health report, recognition's own evidence and privacy -----------


async def metrics(session: AsyncSession, period: Period) -> Figures:
    """Kudos in the period: how many stand, givers, receivers, the share with
    reasons, withdrawals and revocations, flagged pairs and rings (over the status
    window up to the period's end) and the recognised contributors now."""
    rows = await store.in_period(
        session, period.platform, period.workspace_id, period.start, period.end
    )
    active = [row for row in rows if row.status == ACTIVE]
    window = await store.standing(
        session, period.platform, period.workspace_id, period.end - STATUS_WINDOW, period.end
    )
    found = flags(as_given(window))
    recognised = await store.recognised(session, period.platform, period.workspace_id)
    return {
        "kudos": len(active),
        "givers": len({row.giver_id for row in active}),
        "receivers": len({row.receiver_id for row in active}),
        "with_reason_share": (
            sum(1 for row in active if row.reason) / len(active) if active else None
        ),
        "withdrawn": sum(1 for row in rows if row.status == WITHDRAWN),
        "revoked": sum(1 for row in rows if row.status == REVOKED),
        "waiting_for_reason": sum(1 for row in rows if row.status == PENDING),
        "flagged_pairs": len(found.pairs),
        "flagged_rings": len(found.rings),
        "recognised_contributors": len(recognised),
    }


async def actions(session: AsyncSession, period: Period) -> list[MemberAction]:
    """Each kudos given (and standing) is the giver's action of kind "kudos", one of
    the activation paths; thanking is not itself a contribution."""
    rows = await store.in_period(
        session, period.platform, period.workspace_id, period.start, period.end
    )
    return [
        MemberAction(user_id=row.giver_id, kind="kudos", at=row.created_at)
        for row in rows
        if row.status == ACTIVE
    ]


async def stored_about(session: AsyncSession, member: Identity) -> Stored:
    """What kudos keep about a member, for `/kindred privacy`."""
    given, received = await store.counts_about(
        session, member.platform, member.workspace_id, member.user_id
    )
    current = await store.recognition(session, member.platform, member.workspace_id, member.user_id)
    opted_out = await store.opted_out(session, member.platform, member.workspace_id)
    return Stored(
        "kudos/stored_about",
        {
            "given": given,
            "received": received,
            "recognised": None
            if current is None
            else {
                "active": current.active,
                "since": Trusted(f"{current.granted_at:%Y-%m-%d}"),
            },
            "off_boards": member.user_id in opted_out,
        },
    )
