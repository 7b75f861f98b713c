from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from bot import __version__
from bot.core.cli import choose_platforms, ensure_schema
from bot.core.errors import StartupRefused
from bot.core.settings import load_settings
from storage.db import Database


def kindred(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "DISCORD_"))}
    environment.update(env)
    return subprocess.run(
        [sys.executable, "-m", "bot.core.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=environment,
        timeout=60,
        check=False,
    )


def test_version(tmp_path: Path) -> None:
    result = kindred("--version", cwd=tmp_path)
    assert result.stdout.strip() == f"kindred {__version__}"


def test_check_explains_what_is_configured_and_missing(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'k.db'}"
    before = kindred("check", cwd=tmp_path, DATABASE_URL=url)
    assert before.returncode == 0
    assert "reachable, schema empty; `kindred db upgrade`" in before.stdout
    assert "- Slack: not configured (set SLACK_BOT_TOKEN" in before.stdout
    assert "- Discord: not configured (set DISCORD_BOT_TOKEN)." in before.stdout
    assert "starts the console adapter" in before.stdout
    upgraded = kindred("db", "upgrade", cwd=tmp_path, DATABASE_URL=url)
    assert upgraded.stdout.startswith("Database upgraded to ")
    again = kindred("db", "upgrade", cwd=tmp_path, DATABASE_URL=url)
    assert again.stdout.startswith("Database already up to date")
    after = kindred(
        "check",
        cwd=tmp_path,
        DATABASE_URL=url,
        SLACK_BOT_TOKEN="xoxb-1-secret-value",
        SLACK_SIGNING_SECRET="signing-secret-value",
    )
    assert "schema up to date" in after.stdout
    assert "✓ Slack: configured." in after.stdout
    assert "secret-value" not in after.stdout + after.stderr


def test_unreachable_database_is_reported(tmp_path: Path) -> None:
    result = kindred(
        "check", cwd=tmp_path, DATABASE_URL="postgresql+asyncpg://nobody@127.0.0.1:1/none"
    )
    assert result.returncode == 1
    assert (
        "✗ Database postgresql+asyncpg://nobody@127.0.0.1:1/none: not reachable." in result.stdout
    )


def test_bad_settings_name_the_variable(tmp_path: Path) -> None:
    result = kindred("run", cwd=tmp_path, KINDRED_HTTP_PORT="http")
    assert result.returncode == 2
    assert "KINDRED_HTTP_PORT must be a port number" in result.stderr


def test_platform_choice() -> None:
    bare = load_settings({}, env_file=None)
    assert choose_platforms(bare, None) == ["console"]
    with pytest.raises(StartupRefused, match="Slack is not configured"):
        choose_platforms(bare, "slack")
    with pytest.raises(StartupRefused, match="needs Slack or Discord credentials"):
        choose_platforms(bare, "all")
    both = load_settings(
        {"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_SIGNING_SECRET": "s", "DISCORD_BOT_TOKEN": "d"},
        env_file=None,
    )
    assert choose_platforms(both, None) == ["slack", "discord"]
    assert choose_platforms(both, "console") == ["console"]


async def test_schema_older_than_code_is_refused_without_auto_migrate(tmp_path: Path) -> None:
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'old.db'}")
    settings = load_settings({"KINDRED_AUTO_MIGRATE": "false"}, env_file=None)
    try:
        with pytest.raises(StartupRefused, match="Run `kindred db upgrade`"):
            await ensure_schema(db, settings)
        await ensure_schema(db, load_settings({}, env_file=None))
        assert (await db.migration_state()).status == "current"
    finally:
        await db.dispose()


def test_check_has_no_side_effects(tmp_path: Path) -> None:
    """`kindred check` created a missing folder and an empty kindred.db (#18)."""
    result = kindred("check", cwd=tmp_path, DATABASE_URL="sqlite+aiosqlite:///./data/k.db")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "will create data/k.db and migrate it" in result.stdout
    assert list(tmp_path.iterdir()) == []
    url = f"sqlite+aiosqlite:///{tmp_path / 'k.db'}"
    assert kindred("db", "upgrade", cwd=tmp_path, DATABASE_URL=url).returncode == 0
    before = {path.name: path.read_bytes() for path in tmp_path.iterdir()}
    checked = kindred("check", cwd=tmp_path, DATABASE_URL=url)
    assert "reachable, schema up to date" in checked.stdout
    assert {path.name: path.read_bytes() for path in tmp_path.iterdir()} == before


def test_unreachable_postgres_says_why_naming_database_url(
    tmp_path: Path, postgres_schema: str
) -> None:
    from sqlalchemy.engine import make_url

    from tests.conftest import POSTGRES_URL

    server = make_url(POSTGRES_URL)
    cases = {
        server.set(database="kindred_no_such_db"): 'database "kindred_no_such_db" does not exist',
        server.set(username="kindred_no_such_role"): "authentication failed",
        server.set(host="127.0.0.1", port=1): "connection refused",
    }
    for url, reason in cases.items():
        shown = url.render_as_string(hide_password=False)
        result = kindred("check", cwd=tmp_path, DATABASE_URL=shown)
        assert result.returncode == 1
        line = next(line for line in result.stdout.splitlines() if "Database" in line)
        assert reason in line.lower() or reason in line, line
        assert "DATABASE_URL" in line, line
