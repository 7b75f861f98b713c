"""User-facing text lives in editable Jinja templates under `config/templates/`.

Templates run sandboxed (organisers edit them) with strict undefined variables.
Every value printed by `{{ … }}` is treated as member-written text and made
mention-safe, unless it is `Trusted` (the bot's own markup, such as a mention
of the person a message is meant to ping).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from jinja2 import StrictUndefined, Template, TemplateError, meta
from jinja2.sandbox import SandboxedEnvironment

from bot.core.mentions import member_text


class Trusted(str):
    """Text the bot produced itself; printed as is."""

    __slots__ = ()


class TemplateProblem(ValueError):
    """An organiser's template cannot be used; the message says why."""


def _finalize(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, Trusted | int | float):
        return value
    return member_text(str(value))


class Templates:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.environment = SandboxedEnvironment(
            undefined=StrictUndefined,
            finalize=_finalize,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=False,
            autoescape=False,
        )
        self._cache: dict[str, Template] = {}

    def source(self, template: str) -> str:
        return (self.directory / f"{template}.j2").read_text(encoding="utf-8")

    def render(self, template: str, /, **values: Any) -> str:
        return self.render_source(self.source(template), **values)

    def lines(self, template: str, /, **values: Any) -> list[Trusted]:
        """A template that shows one item a line (a list): its non-blank lines, each
        the bot's own text now (the values in it were escaped as they printed)."""
        return [
            Trusted(line.strip())
            for line in self.render(template, **values).splitlines()
            if line.strip()
        ]

    def labels(self, template: str) -> dict[str, str]:
        """A template of `key: label` lines as a mapping (a line without a label,
        or a blank one, is left out)."""
        found = {}
        for line in self.render(template).splitlines():
            key, _, label = line.partition(":")
            if label.strip():
                found[key.strip()] = label.strip()
        return found

    def render_source(self, source: str, /, **values: Any) -> str:
        try:
            return self._compiled(source).render(**values).strip()
        except TemplateError as error:
            raise TemplateProblem(f"The template could not be rendered: {error}") from error

    def _compiled(self, source: str) -> Template:
        # Compiling costs far more than rendering; sources are few and small.
        template = self._cache.get(source)
        if template is None:
            template = self._cache[source] = self.environment.from_string(source)
        return template

    def check(self, source: str, allowed: Iterable[str]) -> None:
        """Refuse a template at setup time rather than at send time."""
        if not source.strip():
            raise TemplateProblem("The template is empty.")
        try:
            parsed = self.environment.parse(source)
        except TemplateError as error:
            raise TemplateProblem(f"The template has a syntax error: {error}") from error
        unknown = sorted(meta.find_undeclared_variables(parsed) - set(allowed))
        if unknown:
            names = ", ".join(f"{{{{ {name} }}}}" for name in unknown)
            known = ", ".join(f"{{{{ {name} }}}}" for name in sorted(allowed))
            raise TemplateProblem(f"Unknown placeholder(s): {names}. Available: {known}.")
