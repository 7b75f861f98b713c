"""Settings from the environment and `.env`, validated once at start.

Every error names the variable and what is wrong with it, and never repeats a
secret's value.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dotenv import dotenv_values

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./kindred.db"
DEFAULT_CONFIG_DIR = Path(__file__).resolve().parents[2] / "config"
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
_TRUE = ("true", "yes", "on", "1")
_FALSE = ("false", "no", "off", "0")
MIN_SECRET_LENGTH = 32


class SettingsError(ValueError):
    """One or more variables are invalid; the message lists each by name."""


@dataclass(frozen=True, slots=True)
class Secret:
    """A value that prints as `***` so it cannot leak into logs or tracebacks."""

    value: str = field(repr=False)

    def __str__(self) -> str:
        return "***"

    def __repr__(self) -> str:
        return "Secret('***')"

    def __bool__(self) -> bool:
        return bool(self.value)


@dataclass(frozen=True, slots=True)
class Settings:
    database_url: str = DEFAULT_DATABASE_URL
    slack_bot_token: Secret = Secret("")
    slack_signing_secret: Secret = Secret("")
    slack_app_token: Secret = Secret("")
    slack_client_id: str = ""
    slack_client_secret: Secret = Secret("")
    slack_api_url: str = "https://slack.com/api/"
    discord_bot_token: Secret = Secret("")
    discord_api_url: str = ""
    discord_gateway_url: str = ""
    discord_dev_guild_ids: tuple[int, ...] = ()
    discord_sharded: bool = False
    http_host: str = "0.0.0.0"
    http_port: int = 3000
    timezone: str = "UTC"
    auto_migrate: bool = True
    log_level: str = "INFO"
    config_dir: Path = DEFAULT_CONFIG_DIR
    # Where members reach Kindred's web server (links to the dashboard page), and
    # the key those links are signed with.
    public_url: str = ""
    dashboard_secret: Secret = Secret("")

    @property
    def slack_configured(self) -> bool:
        return bool(self.slack_bot_token and self.slack_signing_secret) or bool(
            self.slack_client_id and self.slack_client_secret and self.slack_signing_secret
        )

    @property
    def slack_oauth(self) -> bool:
        return bool(self.slack_client_id and self.slack_client_secret)

    @property
    def discord_configured(self) -> bool:
        return bool(self.discord_bot_token)

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def redacted(self, text: str) -> str:
        """`text` with every configured secret value replaced by `***`."""
        for secret in (
            self.slack_bot_token,
            self.slack_signing_secret,
            self.slack_app_token,
            self.slack_client_secret,
            self.discord_bot_token,
            self.dashboard_secret,
        ):
            if secret.value:
                text = text.replace(secret.value, "***")
        return text


def load_settings(
    environ: Mapping[str, str] | None = None, env_file: Path | None = Path(".env")
) -> Settings:
    """Merge `.env` (lower priority) with the environment and validate the result."""
    values: dict[str, str] = {}
    if env_file is not None and env_file.is_file():
        values.update({k: v for k, v in dotenv_values(env_file).items() if v is not None})
    values.update(os.environ if environ is None else environ)
    return _validate({k: v.strip() for k, v in values.items()})


def _validate(values: Mapping[str, str]) -> Settings:
    errors: list[str] = []

    def get(name: str, default: str = "") -> str:
        return values.get(name, "") or default

    database_url = get("DATABASE_URL", DEFAULT_DATABASE_URL)
    if not database_url.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
        scheme = database_url.split("://", 1)[0] if "://" in database_url else "(no scheme)"
        errors.append(
            f"DATABASE_URL must start with sqlite+aiosqlite:// or postgresql+asyncpg:// "
            f"(got scheme '{scheme}')"
        )

    for name in ("SLACK_API_URL", "DISCORD_API_URL", "DISCORD_GATEWAY_URL"):
        url = get(name)
        if url and urlparse(url).scheme not in {"http", "https", "ws", "wss"}:
            errors.append(f"{name} must be an http(s) or ws(s) URL")

    bot_token = get("SLACK_BOT_TOKEN")
    if bot_token and not bot_token.startswith("xoxb-"):
        errors.append("SLACK_BOT_TOKEN must be a bot token starting with 'xoxb-'")
    app_token = get("SLACK_APP_TOKEN")
    if app_token and not app_token.startswith("xapp-"):
        errors.append("SLACK_APP_TOKEN must be an app-level token starting with 'xapp-'")
    if (bot_token or get("SLACK_CLIENT_ID")) and not get("SLACK_SIGNING_SECRET"):
        errors.append("SLACK_SIGNING_SECRET is required when Slack is configured")

    port_text = get("KINDRED_HTTP_PORT", "3000")
    port = 3000
    try:
        port = int(port_text)
        if not 0 <= port <= 65535:
            raise ValueError
    except ValueError:
        errors.append(f"KINDRED_HTTP_PORT must be a port number 0-65535 (got '{port_text}')")

    timezone = get("KINDRED_TIMEZONE", "UTC")
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        errors.append(
            f"KINDRED_TIMEZONE must be an IANA time zone like Europe/Berlin (got '{timezone}')"
        )

    guild_ids: list[int] = []
    for part in get("DISCORD_DEV_GUILD_IDS").split(","):
        if part.strip():
            if part.strip().isdigit():
                guild_ids.append(int(part.strip()))
            else:
                errors.append("DISCORD_DEV_GUILD_IDS must be comma-separated numeric guild ids")
                break

    config_dir = DEFAULT_CONFIG_DIR
    if get("KINDRED_CONFIG_DIR"):
        config_dir = Path(get("KINDRED_CONFIG_DIR")).expanduser()
        if not (config_dir / "templates").is_dir():
            errors.append(
                "KINDRED_CONFIG_DIR must be a folder with a templates/ folder inside "
                f"(a copy of Kindred's config/); got '{config_dir}'"
            )

    def boolean(name: str, text: str) -> bool:
        if text.lower() in _TRUE:
            return True
        if text.lower() not in _FALSE:
            errors.append(
                f"{name} must be true or false (accepted: true/false, yes/no, on/off, 1/0; "
                f"got '{text}')"
            )
        return False

    discord_sharded = boolean("DISCORD_SHARDED", get("DISCORD_SHARDED", "false"))
    auto_migrate = boolean("KINDRED_AUTO_MIGRATE", get("KINDRED_AUTO_MIGRATE", "true"))

    log_level = get("KINDRED_LOG_LEVEL", "INFO").upper()
    if log_level not in LOG_LEVELS:
        errors.append(
            f"KINDRED_LOG_LEVEL must be one of {', '.join(LOG_LEVELS)} "
            f"(got '{get('KINDRED_LOG_LEVEL')}')"
        )

    http_host = get("KINDRED_HTTP_HOST", "0.0.0.0")
    if any(character.isspace() for character in http_host) or "/" in http_host:
        errors.append(
            "KINDRED_HTTP_HOST must be a host name or IP address to listen on, like 0.0.0.0 "
            f"(got '{http_host}')"
        )

    public_url = get("KINDRED_PUBLIC_URL")
    parsed_public = urlparse(public_url)
    if public_url and (parsed_public.scheme not in {"http", "https"} or not parsed_public.netloc):
        errors.append(
            "KINDRED_PUBLIC_URL must be the http(s) address members reach Kindred's web "
            f"server at, like https://kindred.example.com (got '{public_url}')"
        )
    dashboard_secret = get("KINDRED_DASHBOARD_SECRET")
    if dashboard_secret and len(dashboard_secret) < MIN_SECRET_LENGTH:
        errors.append(
            f"KINDRED_DASHBOARD_SECRET must be at least {MIN_SECRET_LENGTH} characters "
            f"(got {len(dashboard_secret)}); `openssl rand -hex 32` makes one"
        )
    if bool(public_url) != bool(dashboard_secret):
        missing = "KINDRED_DASHBOARD_SECRET" if public_url else "KINDRED_PUBLIC_URL"
        errors.append(
            f"{missing} is required too: the dashboard page needs both KINDRED_PUBLIC_URL "
            "and KINDRED_DASHBOARD_SECRET"
        )

    if errors:
        raise SettingsError("Invalid settings:\n- " + "\n- ".join(errors))

    api_url = get("SLACK_API_URL", "https://slack.com/api/")
    return Settings(
        database_url=database_url,
        slack_bot_token=Secret(bot_token),
        slack_signing_secret=Secret(get("SLACK_SIGNING_SECRET")),
        slack_app_token=Secret(app_token),
        slack_client_id=get("SLACK_CLIENT_ID"),
        slack_client_secret=Secret(get("SLACK_CLIENT_SECRET")),
        slack_api_url=api_url if api_url.endswith("/") else api_url + "/",
        discord_bot_token=Secret(get("DISCORD_BOT_TOKEN")),
        discord_api_url=get("DISCORD_API_URL"),
        discord_gateway_url=get("DISCORD_GATEWAY_URL"),
        discord_dev_guild_ids=tuple(guild_ids),
        discord_sharded=discord_sharded,
        http_host=http_host,
        http_port=port,
        timezone=timezone,
        auto_migrate=auto_migrate,
        log_level=log_level,
        config_dir=config_dir,
        public_url=public_url,
        dashboard_secret=Secret(dashboard_secret),
    )
