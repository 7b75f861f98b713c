"""`/kindred help [feature]`: an overview of the features, or one feature's commands,
generated from the feature declarations."""

from __future__ import annotations

from bot.core.context import Context
from bot.core.feature import Feature
from bot.core.platform import Reply
from bot.core.registry import Handlers, Param

handlers = Handlers("help")
feature = Feature(
    summary="What Kindred can do, and how to use each feature",
    handlers=handlers,
)


@handlers.command(
    "help",
    "List the features, or the commands of one feature",
    [Param("feature", help="Only this feature's commands, e.g. coffee")],
)
async def show_help(ctx: Context) -> Reply:
    name = ctx.args.get("feature")
    text = ctx.runtime.help_text(name)
    if text is None:
        known = ", ".join(sorted(ctx.runtime.feature_names))
        return Reply.text(f"There is no feature called `{name}`. Features: {known}.")
    return Reply.text(text)
