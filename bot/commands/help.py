"""`/kindred help [feature]`: an overview of the features, or one feature's commands,
generated from the feature declarations."""

from __future__ import annotations

from bot.core.context import Context
from bot.core.feature import Feature
from bot.core.formatting import feature_help, find_feature, help_overview
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
    features = ctx.runtime.features
    name = ctx.args.get("feature")
    if name is None:
        return Reply.text(help_overview(features))
    found = find_feature(features, name)
    if found is None:
        known = ", ".join(sorted(f.name for f in features if f.handlers.commands))
        return Reply.text(f"There is no feature called `{name}`. Features: {known}.")
    return Reply.text(feature_help(found))
