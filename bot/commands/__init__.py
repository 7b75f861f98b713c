"""Feature handlers, one module per feature, written once for every platform."""

from __future__ import annotations

from bot.commands import ama, coffee, curation, help, profile, welcome
from bot.core.registry import Registry

FEATURES = (
    help.handlers,
    profile.handlers,
    welcome.handlers,
    curation.handlers,
    coffee.handlers,
    ama.handlers,
)


def build_registry() -> Registry:
    return Registry.merge(FEATURES)
