"""Config files are checked at start and by `kindred check`, naming file and line (#18)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from bot.commands import declared_features
from bot.core.config_files import check_config_dir
from bot.core.templates import TemplateProblem
from bot.services.coffee import load_starters
from tests.bot.core.test_cli import kindred
from tests.conftest import REPO

STARTERS = """\
# starters
starters:
  - A fine question?
  - What's your approach to proactive support: reaching out before customers ask?
  - 42
  - Hello {{ name }}, what brings you here?
  - "Quoted: fine"
"""


@pytest.fixture
def config(tmp_path: Path) -> Path:
    copy = tmp_path / "config"
    shutil.copytree(REPO / "config", copy)
    return copy


def problems(config: Path) -> list[str]:
    declared = {
        name: [check]
        for f in declared_features()
        for name, check in f.config_files.items()
        for feature in declared_features()
        for name, check in feature.config_files.items()
    }
    found = check_config_dir(config, declared)
    return [problem.describe(config.parent) for problem in found]


def test_the_bundled_config_is_valid() -> None:
    assert problems(REPO / "config") == []


def test_each_bad_starter_is_named_with_its_line(config: Path) -> None:
    (config / "coffee_starters.yml").write_text(STARTERS)
    assert problems(config) == [
        'config/coffee_starters.yml, line 4: this entry reads as a "key: value" pair because '
        'it contains ": "; put the whole entry in double quotes',
        "config/coffee_starters.yml, line 5: this entry is not text (`42`); quote it",
        "config/coffee_starters.yml, line 6: starters are plain text; placeholders are not "
        "filled in",
    ]
    # A round still goes out, with the good entries only, never a mapping printed.
    assert load_starters(config) == ["A fine question?", "Quoted: fine"]


def test_broken_yaml_a_missing_declared_file_and_a_broken_template(config: Path) -> None:
    (config / "console.yml").write_text("workspace: W\nchannels:\n  - id: [unclosed\n")
    (config / "coffee_starters.yml").unlink()
    (config / "templates" / "coffee_intro.j2").write_text("Hi\n{% if x %}\nno end\n")
    found = problems(config)
    assert found[0] == "config/coffee_starters.yml: is missing"
    assert found[1].startswith("config/console.yml, line 4: is not valid YAML")
    assert found[2].startswith("config/templates/coffee_intro.j2, line 3: template error")
    assert len(found) == 3
    with pytest.raises(TemplateProblem, match="cannot be read"):
        load_starters(config)


def test_check_and_run_report_the_file_and_line(config: Path, tmp_path: Path) -> None:
    (config / "coffee_starters.yml").write_text(STARTERS)
    url = f"sqlite+aiosqlite:///{tmp_path / 'k.db'}"
    checked = kindred("check", cwd=tmp_path, DATABASE_URL=url, KINDRED_CONFIG_DIR=str(config))
    assert checked.returncode == 1
    assert "✗ config/coffee_starters.yml, line 4: this entry reads as" in checked.stdout
    ran = kindred("run", cwd=tmp_path, DATABASE_URL=url, KINDRED_CONFIG_DIR=str(config))
    assert ran.returncode == 1
    assert "fix these config files first" in ran.stderr
    assert "config/coffee_starters.yml, line 6: starters are plain text" in ran.stderr
