"""`/kindred profile set|show|clear`: what members share so pairings and intros fit."""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

from bot.core.context import Context
from bot.core.errors import CommandError
from bot.core.feature import Feature
from bot.core.mentions import mention
from bot.core.platform import Reply
from bot.core.registry import Handlers, Param
from bot.core.templates import Trusted
from bot.domain.profile import (
    FIELDS,
    MAX_BIO_LENGTH,
    SENIORITIES,
    canonical_timezone,
    parse_topics,
)
from bot.services import kudos
from storage.models import Member

handlers = Handlers("profile")
feature = Feature(
    summary="Your profile: company, role, time zone and topics, so matches fit",
    handlers=handlers,
    highlights=("profile set", "profile show"),
)

PROFILE_PARAMS = (
    Param("company", help="Where you work", max_length=100, positional=False),
    Param("industry", help="Your industry, e.g. SaaS", max_length=100, positional=False),
    Param("role", help="Your role, e.g. Head of Support", max_length=100, positional=False),
    Param("seniority", "choice", "Your seniority", choices=SENIORITIES, positional=False),
    Param("timezone", help="IANA time zone, e.g. Europe/Berlin", positional=False),
    Param("topics", help='Comma-separated, e.g. "NPS, journey mapping"', positional=False),
    Param("bio", help="A few words about you", max_length=MAX_BIO_LENGTH, positional=False),
)


def validated_changes(args: dict[str, Any]) -> dict[str, Any]:
    """Check every field before changing any, so nothing is stored half-way."""
    changes: dict[str, Any] = {}
    for name, value in args.items():
        if name == "timezone":
            changes[name] = canonical_timezone(value)
        elif name == "topics":
            changes[name] = parse_topics(value)
        else:
            changes[name] = " ".join(str(value).split()) if name != "bio" else value.strip()
    return changes


@handlers.command("profile set", "Share your company, role, time zone and topics", PROFILE_PARAMS)
async def set_profile(ctx: Context) -> Reply:
    if not ctx.args:
        raise CommandError(
            "Tell me what to set, for example: `/kindred profile set company=Acme "
            'timezone=Europe/Berlin topics="journey mapping, NPS"`'
        )
    changes = validated_changes(ctx.args)
    member = await ctx.member()
    for name, value in changes.items():
        setattr(member, name, value)
    member.profile_updated_at = ctx.now()
    updated = ", ".join(sorted(changes))
    return Reply.text(f"Saved your {updated}.\n\n{await render_profile(ctx, member)}")


@handlers.command(
    "profile show",
    "Show your profile, or another member's",
    [Param("member", "user", "Whose profile to show")],
)
async def show_profile(ctx: Context) -> Reply:
    member = await ctx.member(ctx.args.get("member"))
    return Reply.text(await render_profile(ctx, member))


@handlers.command(
    "profile clear",
    "Remove one field of your profile, or all of it",
    [Param("field", "choice", "Which field, or all of them", choices=(*FIELDS, "all"))],
)
async def clear_profile(ctx: Context) -> Reply:
    field = ctx.args.get("field")
    if field is None:
        # Clearing everything is one word away; without one, nothing is cleared.
        return Reply.text(
            f"Which field should I clear? One of {', '.join(FIELDS)}, or `all` for your "
            "whole profile, e.g. `/kindred profile clear company`."
        )
    member = await ctx.member()
    for name in FIELDS if field == "all" else (field,):
        setattr(member, name, [] if name == "topics" else None)
    member.profile_updated_at = ctx.now()
    what = "your whole profile" if field == "all" else f"your {field}"
    return Reply.text(f"Cleared {what}.")


async def render_profile(ctx: Context, member: Member) -> str:
    """The profile card, with the member's recognition (kudos from how many members,
    the recognised-contributor badge) read through the kudos service: on Slack and
    the console, where no role can show it, this card and the home tab are the badge."""
    recognition = await kudos.profile_lines(
        ctx.runtime.templates, ctx.session, member.platform, member.workspace_id, member.user_id
    )
    local_time = None
    if member.timezone:
        local_time = ctx.now().astimezone(ZoneInfo(member.timezone)).strftime("%H:%M")
    return ctx.runtime.templates.render(
        "profile/card",
        member=Trusted(mention(member.user_id)),
        name=member.display_name,
        company=member.company,
        industry=member.industry,
        role=member.role,
        seniority=member.seniority,
        timezone=member.timezone,
        local_time=local_time,
        topics=member.topics,
        bio=member.bio,
        recognition=Trusted(recognition),
    )


@handlers.event("home_opened")
async def profile_home_section(ctx: Context) -> Reply:
    """The member's profile on their home tab (Slack App Home; console `:home`)."""
    return Reply.text(await render_profile(ctx, await ctx.member()))
