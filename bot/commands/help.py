"""`/kindred help`: every subcommand with its one-line description, from the registry."""

from __future__ import annotations

from bot.core.context import Context
from bot.core.platform import Reply
from bot.core.registry import Handlers, Param

handlers = Handlers("help")


@handlers.command(
    "help",
    "List every command, or the commands of one feature",
    [Param("feature", help="Only this feature's commands, e.g. coffee")],
)
async def show_help(ctx: Context) -> Reply:
    groups = ctx.kindred.registry.groups()
    feature = ctx.args.get("feature")
    if feature is not None and feature.lower() not in groups:
        known = ", ".join(sorted(groups))
        return Reply.text(f"There is no feature called `{feature}`. Features: {known}.")
    lines = ["**Kindred commands**"]
    for name in sorted(groups) if feature is None else [feature.lower()]:
        for spec in groups[name]:
            admin = " _(admins)_" if spec.admin else ""
            lines.append(f"• `{spec.usage}`: {spec.summary}{admin}")
    return Reply.text("\n".join(lines))
