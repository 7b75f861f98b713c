"""Kindred: community rituals for Slack and Discord from one codebase."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("kindred")
except PackageNotFoundError:  # running from a source tree without an install
    __version__ = "0.0.0+source"
