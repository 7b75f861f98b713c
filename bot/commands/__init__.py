"""Feature handlers, one module per feature, written once for every platform."""

from __future__ import annotations

from bot.commands import help, profile
from bot.registry import Registry

FEATURES = (help.handlers, profile.handlers)


def build_registry() -> Registry:
    return Registry.merge(FEATURES)
