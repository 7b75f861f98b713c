"""The operator's config files, checked at start and by `kindred check` (DESIGN.md §3).

Every `config/*.yml` must parse as YAML and every template under
`config/templates/` as Jinja; a feature that reads a YAML file declares a check
for its content (`Handlers.config_file`). Each problem names the file and line,
because an organiser editing a list of forty entries needs to know which one.

Checks work on PyYAML's node graph (`yaml.compose`), not on loaded values: nodes
keep their position in the file, and they tell a quoted string from a line that
YAML read as a mapping (an unquoted `: ` inside an entry).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import yaml
from jinja2 import TemplateSyntaxError
from jinja2.sandbox import SandboxedEnvironment


@dataclass(frozen=True, slots=True)
class ConfigProblem:
    """One thing wrong in one file; `line` counts from 1 (None: the whole file)."""

    path: Path
    line: int | None
    message: str

    def describe(self, root: Path | None = None) -> str:
        shown = self.path
        if root is not None and self.path.is_relative_to(root):
            shown = self.path.relative_to(root)
        where = f"{shown}" if self.line is None else f"{shown}, line {self.line}"
        return f"{where}: {self.message}"


class ConfigFileError(ValueError):
    """A config file a feature needs cannot be used; the message lists each problem."""

    def __init__(self, problems: list[ConfigProblem]) -> None:
        super().__init__("\n".join(problem.describe() for problem in problems))
        self.problems = problems


# A feature's check of one YAML file's content: the composed document (None when
# the file is empty) and the file, returning what is wrong with it.
FileCheck = Callable[[yaml.Node | None, Path], list[ConfigProblem]]


def line_of(node: yaml.Node) -> int:
    return node.start_mark.line + 1


def compose(path: Path) -> yaml.Node | None:
    """The YAML document of `path` as nodes; unreadable or unparsable files raise
    ConfigFileError naming the line."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigFileError([ConfigProblem(path, None, f"cannot be read ({error})")]) from error
    try:
        return yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line = None if mark is None else mark.line + 1
        reason = error.problem or error.context or "invalid YAML"
        raise ConfigFileError(
            [ConfigProblem(path, line, f"is not valid YAML: {reason}")]
        ) from error
    except yaml.YAMLError as error:
        raise ConfigFileError([ConfigProblem(path, None, f"is not valid YAML: {error}")]) from error


def mapping_value(node: yaml.Node | None, key: str) -> yaml.Node | None:
    """The value under `key` of a top-level mapping node, if there is one."""
    if not isinstance(node, yaml.MappingNode):
        return None
    for key_node, value_node in node.value:
        if isinstance(key_node, yaml.ScalarNode) and key_node.value == key:
            return cast(yaml.Node, value_node)
    return None


def string_list(
    node: yaml.Node | None, path: Path, key: str
) -> tuple[list[tuple[str, int]], list[ConfigProblem]]:
    """The entries of the list under top-level `key` with their lines, each text.

    An entry such as `- What's your approach: reaching out?` is a mapping in YAML,
    not text; it is refused with its line and how to fix it."""
    entries = mapping_value(node, key)
    if not isinstance(entries, yaml.SequenceNode) or not entries.value:
        line = None if entries is None else line_of(entries)
        return [], [ConfigProblem(path, line, f"needs a non-empty `{key}:` list")]
    texts: list[tuple[str, int]] = []
    problems: list[ConfigProblem] = []
    for entry in entries.value:
        if isinstance(entry, yaml.ScalarNode) and entry.tag == "tag:yaml.org,2002:str":
            text = " ".join(entry.value.split())
            if text:
                texts.append((text, line_of(entry)))
            else:
                problems.append(ConfigProblem(path, line_of(entry), "this entry is empty"))
        elif isinstance(entry, yaml.MappingNode):
            problems.append(
                ConfigProblem(
                    path,
                    line_of(entry),
                    'this entry reads as a "key: value" pair because it contains ": "; '
                    "put the whole entry in double quotes",
                )
            )
        elif isinstance(entry, yaml.ScalarNode):
            problems.append(
                ConfigProblem(
                    path, line_of(entry), f"this entry is not text (`{entry.value}`); quote it"
                )
            )
        else:
            problems.append(ConfigProblem(path, line_of(entry), "this entry is a list, not text"))
    return texts, problems


def check_templates(directory: Path) -> list[ConfigProblem]:
    """Every `*.j2` under `directory` parses as Jinja (the environment's syntax)."""
    environment = SandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    problems: list[ConfigProblem] = []
    for path in sorted(directory.rglob("*.j2")):
        try:
            environment.parse(path.read_text(encoding="utf-8"))
        except TemplateSyntaxError as error:
            problems.append(ConfigProblem(path, error.lineno, f"template error: {error.message}"))
        except (OSError, UnicodeDecodeError) as error:
            problems.append(ConfigProblem(path, None, f"cannot be read ({error})"))
    return problems


def check_config_dir(
    config_dir: Path, checks: Mapping[str, Iterable[FileCheck]]
) -> list[ConfigProblem]:
    """Every problem in `config_dir`: each `*.yml` parses and passes the checks its
    features declared (a declared file that is missing is a problem too), and each
    template parses."""
    problems: list[ConfigProblem] = []
    names = {path.name for path in config_dir.glob("*.yml")} | set(checks)
    for name in sorted(names):
        path = config_dir / name
        if not path.is_file():
            problems.append(ConfigProblem(path, None, "is missing"))
            continue
        try:
            document = compose(path)
        except ConfigFileError as error:
            problems.extend(error.problems)
            continue
        for check in checks.get(name, ()):
            problems.extend(check(document, path))
    problems.extend(check_templates(config_dir / "templates"))
    return problems
