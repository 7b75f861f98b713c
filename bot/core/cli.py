"""`kindred run|check|db upgrade|--version`: the operator's entry point."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Coroutine, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy.engine import make_url

from bot import __version__
from bot.core.errors import StartupRefused
from bot.core.feature import config_problems
from bot.core.settings import Settings, SettingsError, load_settings
from storage.db import Database, connection_problem
from storage.types import utcnow

if TYPE_CHECKING:
    from bot.core.app import Kindred

log = logging.getLogger("kindred")
PLATFORM_CHOICES = ("console", "slack", "discord", "all")


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        settings = load_settings()
    except SettingsError as error:
        print(error, file=sys.stderr)
        return 2
    _configure_logging(settings)
    try:
        if args.command == "run":
            return asyncio.run(run(settings, args.platform))
        if args.command == "check":
            return asyncio.run(check(settings))
        if args.command == "db":
            return asyncio.run(db_upgrade(settings))
        if args.command == "discord":
            from bot.adapters.discord import invite_url

            print(invite_url(settings))
            return 0
    except StartupRefused as refusal:
        print(settings.redacted(str(refusal)), file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    parser.print_help()
    return 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kindred", description="Community rituals for Slack and Discord."
    )
    parser.add_argument("--version", action="version", version=f"kindred {__version__}")
    commands = parser.add_subparsers(dest="command")
    run_parser = commands.add_parser("run", help="Run the bot")
    run_parser.add_argument(
        "--platform",
        choices=PLATFORM_CHOICES,
        default=None,
        help="Which platform(s) to serve (default: every configured one, console when none)",
    )
    commands.add_parser("check", help="Say what is configured and what is missing")
    db_parser = commands.add_parser("db", help="Database maintenance")
    db_commands = db_parser.add_subparsers(dest="db_command", required=True)
    db_commands.add_parser("upgrade", help="Apply database migrations")
    discord_parser = commands.add_parser("discord", help="Discord helpers")
    discord_commands = discord_parser.add_subparsers(dest="discord_command", required=True)
    discord_commands.add_parser("invite-url", help="Print the OAuth2 URL to add the bot")
    return parser


class _RedactSecrets(logging.Filter):
    def __init__(self, settings: Settings) -> None:
        super().__init__()
        self.settings = settings

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = self.settings.redacted(record.getMessage())
        record.args = None
        return True


def _configure_logging(settings: Settings) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(_RedactSecrets(settings))
    logging.basicConfig(level=settings.log_level, handlers=[handler], force=True)
    # Their INFO lines (each migration step, each job added) drown the console.
    for chatty in ("alembic", "apscheduler"):
        logging.getLogger(chatty).setLevel(max(logging.WARNING, logging.getLogger().level))


def choose_platforms(settings: Settings, requested: str | None) -> list[str]:
    if requested == "all":
        chosen = [
            name
            for name, configured in (
                ("slack", settings.slack_configured),
                ("discord", settings.discord_configured),
            )
            if configured
        ]
        if not chosen:
            raise StartupRefused(
                "--platform all needs Slack or Discord credentials; none are set. "
                "Run `kindred check` to see what is missing."
            )
        return chosen
    if requested is not None:
        if requested == "slack" and not settings.slack_configured:
            raise StartupRefused(
                "Slack is not configured: set SLACK_BOT_TOKEN and SLACK_SIGNING_SECRET "
                "(or SLACK_CLIENT_ID, SLACK_CLIENT_SECRET and SLACK_SIGNING_SECRET for OAuth)."
            )
        if requested == "discord" and not settings.discord_configured:
            raise StartupRefused("Discord is not configured: set DISCORD_BOT_TOKEN.")
        return [requested]
    chosen = choose_platforms(settings, "all") if _any_platform(settings) else ["console"]
    return chosen


def _any_platform(settings: Settings) -> bool:
    return settings.slack_configured or settings.discord_configured


async def ensure_schema(db: Database, settings: Settings) -> None:
    """Use a database only when its schema matches this code (DESIGN: never silently)."""
    try:
        state = await db.migration_state()
    except Exception as error:
        raise StartupRefused(
            f"Cannot reach the database ({db.url.render_as_string(hide_password=True)}): "
            f"{connection_problem(error, db.url)}"
        ) from error
    if state.status == "current":
        return
    if state.status == "ahead":
        raise StartupRefused(
            "The database was migrated by a newer Kindred (revision "
            f"{', '.join(sorted(state.current))}). Upgrade Kindred, or point DATABASE_URL "
            "at another database."
        )
    if not settings.auto_migrate:
        raise StartupRefused(
            f"The database schema is {state.status} (at {sorted(state.current) or 'nothing'}, "
            f"needs {sorted(state.heads)}). Run `kindred db upgrade` (back it up first), "
            "or set KINDRED_AUTO_MIGRATE=true."
        )
    log.info("database schema is %s; applying migrations", state.status)
    await db.upgrade()


async def run(settings: Settings, requested: str | None) -> int:
    from bot.commands import declared_features
    from bot.core.app import Kindred

    platforms = choose_platforms(settings, requested)
    features = declared_features()
    problems = config_problems(features, settings)
    if problems:
        raise StartupRefused(
            "Kindred will not start: fix these config files first.\n- " + "\n- ".join(problems)
        )
    db = Database(settings.database_url)
    try:
        await ensure_schema(db, settings)
        offset = [timedelta(0)]

        def clock() -> datetime:
            return utcnow() + offset[0]

        kindred = Kindred(settings, db, clock=clock, features=features)
        servers = []
        if "console" in platforms:
            from bot.adapters.console import serve_console

            def advance(by: timedelta) -> None:
                offset[0] += by

            servers.append(serve_console(kindred, settings, advance))
        if "slack" in platforms:
            from bot.adapters.slack import serve_slack

            servers.append(serve_slack(kindred, settings))
        if "discord" in platforms:
            from bot.adapters.discord import serve_discord

            servers.append(serve_discord(kindred, settings))
            if "slack" not in platforms:
                # Slack's adapter serves the web app with its endpoints; without it,
                # health checks and feeds still need a server.
                servers.append(serve_web(kindred, settings))
        await run_until_first_ends(servers)
    finally:
        await db.dispose()
    return 0


async def run_until_first_ends(servers: list[Coroutine[Any, Any, None]]) -> None:
    """Serve every platform; when one stops (the console reached the end of its
    input, a gateway refused us), stop the others and report the first error."""
    tasks = [asyncio.create_task(server) for server in servers]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    for task in done:
        task.result()


async def serve_web(kindred: Kindred, settings: Settings) -> None:
    from bot.core.web import start_web, web_application

    runner = await start_web(web_application(kindred), settings.http_host, settings.http_port)
    log.info("HTTP server on %s:%s (/healthz, feeds)", settings.http_host, settings.http_port)
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


async def check(settings: Settings) -> int:
    """Report what is configured; reads only: no file, folder or schema is created."""
    from bot.commands import declared_features

    print(f"Kindred {__version__}")
    ok = await _check_database(settings)
    problems = config_problems(declared_features(), settings)
    if problems:
        ok = False
        for problem in problems:
            print(f"✗ {problem}")
    else:
        print(f"✓ Config files in {settings.config_dir}: valid.")
    print(_platform_line("Slack", settings.slack_configured, _slack_missing(settings)))
    print(_platform_line("Discord", settings.discord_configured, ["DISCORD_BOT_TOKEN"]))
    if not _any_platform(settings):
        print("→ No platform is configured: `kindred run` starts the console adapter.")
    return 0 if ok else 1


async def _check_database(settings: Settings) -> bool:
    url = make_url(settings.database_url)
    where = url.render_as_string(hide_password=True)
    missing = _missing_sqlite_file(settings.database_url)
    if missing is not None:
        return _sqlite_to_be_created(where, missing)
    db = Database(settings.database_url, read_only=True)
    try:
        problem = await db.unreachable()
        if problem is not None:
            print(f"✗ Database {where}: not reachable. {problem[0].upper()}{problem[1:]}")
            return False
        state = await db.migration_state()
    finally:
        await db.dispose()
    if state.status == "current":
        print(f"✓ Database {where}: reachable, schema up to date.")
    elif state.status == "ahead":
        print(f"✗ Database {where}: migrated by a newer Kindred.")
        return False
    else:
        print(
            f"! Database {where}: reachable, schema {state.status}; "
            "`kindred db upgrade` (or the first `kindred run`) will migrate it."
        )
    return True


def _missing_sqlite_file(database_url: str) -> Path | None:
    """The SQLite file DATABASE_URL names, when it does not exist (yet)."""
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    path = Path(url.database)
    return None if path.exists() else path


def _sqlite_to_be_created(where: str, path: Path) -> bool:
    """A SQLite file that does not exist yet is fine if it can be created there."""
    folder = path.resolve().parent
    existing = folder
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        print(f"✗ Database {where}: the file does not exist and {existing} is not writable.")
        return False
    print(
        f"! Database {where}: reachable, schema empty; `kindred db upgrade` (or the first "
        f"`kindred run`) will create {path} and migrate it."
    )
    return True


def _slack_missing(settings: Settings) -> list[str]:
    missing = []
    if not settings.slack_bot_token and not settings.slack_oauth:
        missing.append("SLACK_BOT_TOKEN (or SLACK_CLIENT_ID + SLACK_CLIENT_SECRET)")
    if not settings.slack_signing_secret:
        missing.append("SLACK_SIGNING_SECRET")
    return missing


def _platform_line(name: str, configured: bool, missing: list[str]) -> str:
    if configured:
        return f"✓ {name}: configured."
    return f"- {name}: not configured (set {', '.join(missing)})."


async def db_upgrade(settings: Settings) -> int:
    db = Database(settings.database_url)
    try:
        before = await db.migration_state()
        after = await db.upgrade()
    except Exception as error:
        raise StartupRefused(f"Migration failed: {error}") from error
    finally:
        await db.dispose()
    if before.current == after.current:
        print(f"Database already up to date ({', '.join(sorted(after.current))}).")
    else:
        print(f"Database upgraded to {', '.join(sorted(after.current))}.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
