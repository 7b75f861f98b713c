"""Refusals that carry a message for a person: a member (`CommandError`) or the
operator starting Kindred (`StartupRefused`)."""

from __future__ import annotations


class CommandError(Exception):
    """A helpful, user-facing refusal; the transaction is rolled back."""


class StartupRefused(RuntimeError):
    """Kindred will not start; the message tells the operator what to do."""
