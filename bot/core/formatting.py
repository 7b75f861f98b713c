"""Small pieces of neutral markup every feature uses, and help generated from the
feature declarations (DESIGN.md §1: `/kindred help` lists them)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from bot.core.templates import Trusted

if TYPE_CHECKING:
    from bot.core.feature import Feature


class InChannel(Protocol):
    @property
    def channel_id(self) -> str: ...


def channel_link(channel: str | InChannel) -> Trusted:
    """A clickable channel reference (Slack and Discord both read `<#id>`), of a
    channel id or of anything that lives in a channel (a program, an AMA)."""
    channel_id = channel if isinstance(channel, str) else channel.channel_id
    return Trusted(f"<#{channel_id}>")


def channel_links(channel_ids: Iterable[str]) -> Trusted:
    """Several channel links as one trusted string: Jinja's `join` filter would turn
    a list of trusted links back into member text, which adapters escape."""
    return Trusted(", ".join(channel_link(channel) for channel in channel_ids))


def local_time(moment: datetime, *, time_only: bool = False) -> Trusted:
    """A moment every reader sees in their own time zone (see `mentions.LOCAL_TIME`):
    for channel posts, read by people in many zones at once."""
    return Trusted(f"<t:{int(moment.timestamp())}:{'t' if time_only else 'f'}>")


def plural(count: int, singular: str, plural_form: str | None = None) -> str:
    """`1 vote`, `2 votes`: the count with the word that fits it."""
    word = singular if count == 1 else (plural_form or f"{singular}s")
    return f"{count} {word}"


def help_overview(features: Sequence[Feature]) -> str:
    """One message on every platform (Discord's limit is 2,000 characters): each
    feature's one line and its most used commands."""
    lines = ["**Kindred commands**"]
    for feature in features:
        if not feature.handlers.commands:
            continue
        shown = ", ".join(f"`/kindred {name}`" for name in feature.highlights)
        lines.append(f"• **{feature.name}**: {feature.summary}" + (f" ({shown})" if shown else ""))
    lines.append("`/kindred help <feature>` lists every command of a feature.")
    return "\n".join(lines)


def feature_help(feature: Feature) -> str:
    lines = [f"**{feature.name}**: {feature.summary}"]
    for spec in feature.handlers.commands:
        admin = " _(admins)_" if spec.admin else ""
        lines.append(f"• `{spec.usage}`: {spec.summary}{admin}")
    return "\n".join(lines)


def find_feature(features: Sequence[Feature], word: str) -> Feature | None:
    """The feature called `word`, or the one whose commands start with it
    (`curate` and `digest` are curation's)."""
    word = word.lower()
    for feature in features:
        if feature.name == word or any(spec.path[0] == word for spec in feature.handlers.commands):
            return feature
    return None
