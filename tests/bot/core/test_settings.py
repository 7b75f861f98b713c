from __future__ import annotations

import re
from pathlib import Path

import pytest

from bot.core.settings import DEFAULT_DATABASE_URL, SettingsError, load_settings


def test_defaults_need_no_configuration() -> None:
    settings = load_settings({}, env_file=None)
    assert settings.database_url == DEFAULT_DATABASE_URL
    assert settings.http_port == 3000
    assert (settings.config_dir / "templates" / "welcome" / "dm.j2").is_file()
    assert not settings.slack_configured and not settings.discord_configured


def test_env_file_is_read_and_environment_wins(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("KINDRED_HTTP_PORT=4000\nKINDRED_TIMEZONE=Europe/Berlin\n")
    settings = load_settings({"KINDRED_HTTP_PORT": "5000"}, env_file=env_file)
    assert settings.http_port == 5000
    assert settings.timezone == "Europe/Berlin"


def test_every_bad_variable_is_named_and_secrets_are_not_echoed() -> None:
    with pytest.raises(SettingsError) as error:
        load_settings(
            {
                "DATABASE_URL": "mysql://user:pw@host/db",
                "KINDRED_HTTP_PORT": "99999",
                "KINDRED_TIMEZONE": "Mars/Olympus",
                "SLACK_BOT_TOKEN": "not-a-token-supersecret",
                "SLACK_APP_TOKEN": "bad-app-secret",
                "DISCORD_API_URL": "ftp://x",
            },
            env_file=None,
        )
    message = str(error.value)
    for name in (
        "DATABASE_URL",
        "KINDRED_HTTP_PORT",
        "KINDRED_TIMEZONE",
        "SLACK_BOT_TOKEN",
        "SLACK_APP_TOKEN",
        "SLACK_SIGNING_SECRET",
        "DISCORD_API_URL",
    ):
        assert name in message
    assert "supersecret" not in message and "bad-app-secret" not in message
    assert "pw@" not in message


def test_config_dir_can_live_outside_the_checkout(tmp_path: Path) -> None:
    (tmp_path / "templates").mkdir()
    assert (
        load_settings({"KINDRED_CONFIG_DIR": str(tmp_path)}, env_file=None).config_dir == tmp_path
    )
    with pytest.raises(SettingsError, match="KINDRED_CONFIG_DIR must be a folder"):
        load_settings({"KINDRED_CONFIG_DIR": str(tmp_path / "missing")}, env_file=None)


def test_secrets_never_print() -> None:
    settings = load_settings(
        {
            "SLACK_BOT_TOKEN": "xoxb-123-secret",
            "SLACK_SIGNING_SECRET": "shh",
            "DISCORD_BOT_TOKEN": "d.t",
        },
        env_file=None,
    )
    assert "xoxb-123-secret" not in repr(settings)
    assert "shh" not in str(settings)
    assert settings.slack_configured and settings.discord_configured
    assert settings.redacted("token xoxb-123-secret and d.t") == "token *** and ***"


def test_env_example_lists_every_variable_the_settings_read() -> None:
    repo = Path(__file__).resolve().parents[3]
    source = (repo / "bot" / "core" / "settings.py").read_text()
    read = set(re.findall(r'get\("([A-Z_]+)"', source))
    listed = set(re.findall(r"^# ([A-Z_]+)=", (repo / ".env.example").read_text(), re.M))
    assert read == listed


@pytest.mark.parametrize(
    ("name", "value", "accepted"),
    [
        ("KINDRED_LOG_LEVEL", "LOUD", "DEBUG, INFO, WARNING, ERROR, CRITICAL"),
        ("KINDRED_AUTO_MIGRATE", "maybe", "true/false, yes/no, on/off, 1/0"),
        ("DISCORD_SHARDED", "perhaps", "true/false, yes/no, on/off, 1/0"),
        ("KINDRED_HTTP_HOST", "http://0.0.0.0", "host name or IP address"),
    ],
)
def test_a_bad_value_is_refused_naming_the_variable_and_what_it_accepts(
    name: str, value: str, accepted: str
) -> None:
    with pytest.raises(SettingsError) as error:
        load_settings({name: value}, env_file=None)
    assert name in str(error.value) and accepted in str(error.value)
    assert f"'{value}'" in str(error.value)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("yes", True), ("ON", True), ("1", True), ("true", True), ("no", False), ("Off", False)],
)
def test_booleans_read_every_common_spelling(text: str, expected: bool) -> None:
    settings = load_settings({"DISCORD_SHARDED": text, "KINDRED_AUTO_MIGRATE": text}, None)
    assert settings.discord_sharded is expected and settings.auto_migrate is expected


def test_bad_log_level_at_the_command_line_is_a_message_not_a_traceback(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    from bot.core.cli import main

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("KINDRED_LOG_LEVEL", "LOUD")
    assert main(["check"]) == 2
    assert "KINDRED_LOG_LEVEL must be one of" in capsys.readouterr().err


def test_the_dashboard_needs_a_public_url_and_a_long_enough_secret() -> None:
    secret = "x" * 40
    settings = load_settings(
        {"KINDRED_PUBLIC_URL": "https://kindred.example.com", "KINDRED_DASHBOARD_SECRET": secret},
        env_file=None,
    )
    assert settings.public_url == "https://kindred.example.com"
    assert settings.dashboard_secret.value == secret
    assert settings.redacted(f"signed with {secret}") == "signed with ***"
    with pytest.raises(SettingsError) as refused:
        load_settings(
            {"KINDRED_PUBLIC_URL": "kindred.example.com", "KINDRED_DASHBOARD_SECRET": "short"},
            env_file=None,
        )
    message = str(refused.value)
    assert "KINDRED_PUBLIC_URL must be the http(s) address" in message
    assert "KINDRED_DASHBOARD_SECRET must be at least 32 characters (got 5)" in message
    assert "short" not in message
    with pytest.raises(SettingsError, match="KINDRED_DASHBOARD_SECRET is required too"):
        load_settings({"KINDRED_PUBLIC_URL": "https://k.example"}, env_file=None)
