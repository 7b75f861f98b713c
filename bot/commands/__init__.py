"""Feature handlers, one module per feature, written once for every platform."""

from __future__ import annotations

from bot.commands import ama, coffee, curate, help, profile, welcome
from bot.registry import Registry

FEATURES = (
    help.handlers,
    profile.handlers,
    welcome.handlers,
    curate.handlers,
    coffee.handlers,
    ama.handlers,
)


def build_registry() -> Registry:
    return Registry.merge(FEATURES)
