"""`/kindred mastermind …`: curated groups of 5-7 people from different companies
meeting on a shared challenge, with a rotating hot seat, written updates and
commitments followed up at the next session (#14).

Organisers set up a cycle, preview and form its groups and read the stats;
members apply, see their status, post updates and commitments and leave. Buttons
carry ids (a session's, a group's), never state, so they work after a restart.
"""

from __future__ import annotations

from bot.core.context import Context
from bot.core.errors import CommandError
from bot.core.feature import Feature, Tick
from bot.core.mentions import member_text
from bot.core.platform import Modal, ModalField, Reply
from bot.core.registry import Handlers, Param
from bot.domain.mastermind import (
    CADENCE_ALIASES,
    LARGEST_GROUP,
    MAX_CHALLENGE_LENGTH,
    MAX_COMMENT_LENGTH,
    MAX_COMMITMENT_LENGTH,
    MAX_SESSIONS,
    MAX_UPDATE_LENGTH,
    SLOT_EXAMPLE,
    SMALLEST_GROUP,
    Cadence,
    MastermindInputError,
    parse_score,
)
from bot.domain.profile import SENIORITIES
from bot.jobs import mastermind as jobs
from bot.services import mastermind as service
from storage import mastermind as store

handlers = Handlers("mastermind")
feature = Feature(
    summary="Mastermind groups: 5-7 peers from different companies, a shared challenge, "
    "a hot seat and commitments followed up",
    handlers=handlers,
    highlights=("mastermind apply", "mastermind status"),
    tables=store,
    ticks=(Tick(jobs.TICK, jobs.TICK_SECONDS, jobs.tick, next_due=jobs.next_due),),
    metrics=service.metrics,
    actions=service.actions,
    stored_about=service.stored_about,
    forget_feedback=service.forget_feedback,
)

_YES = {"yes", "y", "true", "on", "1"}
_NO = {"no", "n", "false", "off", "0", ""}


# --- organisers --------------------------------------------------------------------


@handlers.command(
    "mastermind setup",
    "Start a mastermind cycle taking applications",
    [
        Param("name", help='The cycle\'s name, in quotes: "CX leaders, winter"', required=True),
        Param(
            "deadline",
            help='Applications close: 2026-12-10, "2026-12-10 18:00" (your time zone) or 7d',
            required=True,
        ),
        Param(
            "size",
            help=f"Group size range (default 5-7, {SMALLEST_GROUP} to {LARGEST_GROUP})",
            positional=False,
        ),
        Param(
            "cadence",
            "choice",
            "How often groups meet (default weekly)",
            choices=tuple(Cadence),
            aliases=CADENCE_ALIASES,
            positional=False,
        ),
        Param("length", help="Session length: 45m, 1h, 90m (default 1h)", positional=False),
        Param(
            "sessions",
            "int",
            "Number of sessions (default 6)",
            min_value=2,
            max_value=MAX_SESSIONS,
            positional=False,
        ),
        Param("colleagues", "bool", "Allow colleagues in one group (default no)", positional=False),
        Param("channel", "channel", "Where the cycle lives (default: here)", positional=False),
    ],
    admin=True,
)
async def setup(ctx: Context) -> Reply:
    args = ctx.args
    choices = service.SetupChoices(
        name=args["name"],
        deadline=args["deadline"],
        size=args.get("size"),
        cadence=args.get("cadence"),
        length=args.get("length"),
        sessions=args.get("sessions"),
        allow_colleagues=args.get("colleagues", False),
        channel_id=args.get("channel"),
    )
    return Reply.text(await service.set_up(ctx, choices))


@handlers.command(
    "mastermind preview",
    "The groups that would form now, with shared challenge, slot and company mix (nothing sent)",
    admin=True,
)
async def preview(ctx: Context) -> Reply:
    return Reply.text(await service.preview(ctx))


@handlers.command(
    "mastermind form", "Form the cycle's groups and open their conversations", admin=True
)
async def form(ctx: Context) -> Reply:
    return Reply.text(await service.form(ctx))


@handlers.command(
    "mastermind stats",
    "Per group: attendance, updates, commitments, ratings, alive at week 8",
    admin=True,
)
async def stats(ctx: Context) -> Reply:
    return Reply.text(await service.stats(ctx))


# --- members -----------------------------------------------------------------------


def _apply_modal() -> Modal:
    return Modal(
        callback_id="mastermind.apply_submit",
        title="Apply for a mastermind group",
        fields=(
            ModalField(
                "challenge",
                "The challenge you want to work on",
                multiline=True,
                max_length=MAX_CHALLENGE_LENGTH,
                placeholder="Cut first-response time without burning out the team",
            ),
            ModalField("tags", "Tags, comma-separated", placeholder="support ops, burnout"),
            ModalField(
                "seniority",
                "Your seniority",
                required=False,
                placeholder=", ".join(SENIORITIES),
            ),
            ModalField(
                "slots",
                "When you're free each week (your time zone)",
                placeholder=SLOT_EXAMPLE,
            ),
        ),
        submit_label="Apply",
    )


async def _apply(
    ctx: Context, challenge: str, tags: str, slots: str, seniority: str | None
) -> Reply:
    form = service.ApplicationForm(challenge=challenge, tags=tags, slots=slots, seniority=seniority)
    return Reply.text(await service.apply(ctx, form))


@handlers.command(
    "mastermind apply",
    "Apply for a group: your challenge, tags, seniority and weekly slots (no options: a form)",
    [
        Param("challenge", help="The challenge you want to work on, in quotes", positional=False),
        Param("tags", help='Comma-separated, e.g. "onboarding, churn"', positional=False),
        Param(
            "seniority",
            "choice",
            "Your seniority (default: your profile's)",
            choices=SENIORITIES,
            positional=False,
        ),
        Param("slots", help=f'Weekly slots in your time zone: "{SLOT_EXAMPLE}"', positional=False),
    ],
)
async def apply(ctx: Context) -> Reply:
    args = ctx.args
    if not args:
        await service.open_cycle(ctx)
        return Reply(modal=_apply_modal())
    missing = [name for name in ("challenge", "tags", "slots") if not args.get(name)]
    if missing:
        raise CommandError(
            f"Also give {', '.join(f'`{name}=…`' for name in missing)}, or run "
            "`/kindred mastermind apply` alone for a form."
        )
    return await _apply(ctx, args["challenge"], args["tags"], args["slots"], args.get("seniority"))


@handlers.action("mastermind.apply_submit")
async def apply_submitted(ctx: Context) -> Reply:
    options = ctx.inbound.options
    return await _apply(
        ctx,
        str(options.get("challenge") or ""),
        str(options.get("tags") or ""),
        str(options.get("slots") or ""),
        str(options.get("seniority") or "") or None,
    )


@handlers.action("mastermind.apply_open")
async def apply_pressed(ctx: Context) -> Reply:
    await service.open_cycle(ctx)
    return Reply(modal=_apply_modal())


@handlers.event("home_opened")
async def home_section(ctx: Context) -> Reply | None:
    return await service.home_section(ctx)


@handlers.command("mastermind status", "Your group, next session and open commitments")
async def status(ctx: Context) -> Reply:
    return Reply.text(await service.status(ctx))


@handlers.command("mastermind leave", "Leave your group (or withdraw your application)")
async def leave(ctx: Context) -> Reply:
    return Reply.text(await service.leave(ctx))


@handlers.command(
    "mastermind update",
    "Post your two-line update for the next session in your group",
    [
        Param(
            "text",
            "rest",
            "What moved, and what's next",
            required=True,
            max_length=MAX_UPDATE_LENGTH,
        )
    ],
)
async def update(ctx: Context) -> Reply:
    return Reply.text(await service.record_update(ctx, ctx.args["text"]))


@handlers.command(
    "mastermind commit",
    'Your commitment: "by next time I will …"',
    [Param("text", "rest", "One concrete step", required=True, max_length=MAX_COMMITMENT_LENGTH)],
)
async def commit(ctx: Context) -> Reply:
    return Reply.text(await service.record_commitment(ctx, ctx.args["text"]))


@handlers.command(
    "mastermind rate",
    "Rate the cycle 1-5 with one sentence; continue=yes to go on with your group",
    [
        Param("score", "int", "1 (poor) to 5 (great)", required=True, min_value=1, max_value=5),
        Param("comment", "rest", "One sentence", max_length=MAX_COMMENT_LENGTH),
        Param("continue", "bool", "Go on with the same group", positional=False),
    ],
)
async def rate(ctx: Context) -> Reply:
    args = ctx.args
    return Reply.text(
        await service.rate(ctx, args["score"], args.get("comment", ""), args.get("continue", False))
    )


# --- buttons in the group's conversation -------------------------------------------


def _button_id(ctx: Context) -> int:
    if not ctx.inbound.value.isdigit():
        raise CommandError("That button has lost its session; use the command instead.")
    return int(ctx.inbound.value)


@handlers.action("mastermind.update")
async def update_pressed(ctx: Context) -> Reply:
    return Reply(
        modal=Modal(
            callback_id="mastermind.update_submit",
            title="Your update",
            value=str(_button_id(ctx)),
            fields=(
                ModalField(
                    "update",
                    "Two lines: what moved, what's next",
                    multiline=True,
                    max_length=MAX_UPDATE_LENGTH,
                ),
            ),
            submit_label="Post",
        )
    )


@handlers.action("mastermind.update_submit")
async def update_submitted(ctx: Context) -> Reply:
    text = str(ctx.inbound.options.get("update") or "")
    return Reply.text(await service.record_update(ctx, text, _button_id(ctx)))


@handlers.action("mastermind.commit")
async def commit_pressed(ctx: Context) -> Reply:
    return Reply(
        modal=Modal(
            callback_id="mastermind.commit_submit",
            title="Your commitment",
            value=str(_button_id(ctx)),
            fields=(
                ModalField(
                    "commitment",
                    "By next time I will …",
                    multiline=True,
                    max_length=MAX_COMMITMENT_LENGTH,
                ),
            ),
            submit_label="Commit",
        )
    )


@handlers.action("mastermind.commit_submit")
async def commit_submitted(ctx: Context) -> Reply:
    text = str(ctx.inbound.options.get("commitment") or "")
    return Reply.text(await service.record_commitment(ctx, text, _button_id(ctx)))


@handlers.action("mastermind.attended")
async def attended(ctx: Context) -> Reply:
    return Reply.text(await service.record_attendance(ctx, _button_id(ctx), attended=True))


@handlers.action("mastermind.missed")
async def missed(ctx: Context) -> Reply:
    return Reply.text(await service.record_attendance(ctx, _button_id(ctx), attended=False))


@handlers.action("mastermind.kept")
async def kept(ctx: Context) -> Reply:
    return Reply.text(await service.record_kept(ctx, _button_id(ctx), kept=True))


@handlers.action("mastermind.not_kept")
async def not_kept(ctx: Context) -> Reply:
    return Reply.text(await service.record_kept(ctx, _button_id(ctx), kept=False))


@handlers.action("mastermind.rate")
async def rate_pressed(ctx: Context) -> Reply:
    return Reply(
        modal=Modal(
            callback_id="mastermind.rate_submit",
            title="Rate your mastermind",
            value=str(_button_id(ctx)),
            fields=(
                ModalField("score", "1 (poor) to 5 (great)", max_length=1),
                ModalField(
                    "comment",
                    "One sentence about it",
                    required=False,
                    max_length=MAX_COMMENT_LENGTH,
                ),
                ModalField(
                    "continue",
                    "Go on with the same group? (yes/no)",
                    required=False,
                    placeholder="no",
                ),
            ),
            submit_label="Rate",
        )
    )


@handlers.action("mastermind.rate_submit")
async def rate_submitted(ctx: Context) -> Reply:
    options = ctx.inbound.options
    try:
        score = parse_score(str(options.get("score") or ""))
    except MastermindInputError as error:
        raise CommandError(str(error)) from None
    answer = str(options.get("continue") or "").strip().lower()
    if answer not in _YES | _NO:
        raise CommandError(f"Go on with the group: yes or no, not `{member_text(answer)}`.")
    comment = str(options.get("comment") or "")
    return Reply.text(
        await service.rate(ctx, score, comment, answer in _YES, group_id=_button_id(ctx))
    )
