"""The database-backed installation and OAuth-state stores, on SQLite and PostgreSQL."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from slack_sdk.oauth.installation_store.models.installation import Installation

from bot.adapters.slack_oauth import DatabaseInstallationStore, DatabaseOAuthStateStore
from bot.core.platform import PlatformError
from storage import slack_installations
from storage.db import Database


def _installation(token: str, scopes: str, installer: str = "UINSTALLER") -> Installation:
    return Installation(
        app_id="AKINDRED",
        team_id="T1",
        team_name="CX Guild",
        bot_token=token,
        bot_id="B1",
        bot_user_id="UKINDRED",
        bot_scopes=scopes,
        user_id=installer,
        installed_at=time.time(),
    )


async def test_a_reinstall_replaces_the_token_and_an_uninstall_forgets_it(db: Database) -> None:
    store = DatabaseInstallationStore(db)
    await store.async_save(_installation("xoxb-old", "commands,chat:write"))
    await store.async_save(_installation("xoxb-new", "commands,chat:write,users:read"))
    bot = await store.async_find_bot(enterprise_id=None, team_id="T1")
    assert bot is not None
    assert (bot.bot_token, bot.bot_scopes) == ("xoxb-new", ["commands", "chat:write", "users:read"])
    found = await store.async_find_installation(enterprise_id=None, team_id="T1")
    assert found is not None
    assert (found.user_id, found.team_name) == ("UINSTALLER", "CX Guild")
    assert (
        await store.async_find_installation(enterprise_id=None, team_id="T1", user_id="U2") is None
    )
    # A fresh process (no cache) reads the token from the database.
    assert await DatabaseInstallationStore(db).bot_token("T1") == "xoxb-new"
    async with db.transaction() as session:
        row = await slack_installations.find(session, "T1")
    assert "xoxb-new" not in repr(row)

    await store.async_delete_installation(enterprise_id=None, team_id="T1", user_id="UOTHER")
    assert await store.async_find_bot(enterprise_id=None, team_id="T1") is not None
    await store.async_delete_all(enterprise_id=None, team_id="T1")
    assert await store.async_find_bot(enterprise_id=None, team_id="T1") is None
    with pytest.raises(PlatformError, match="not installed in Slack workspace T1"):
        await store.bot_token("T1")


async def test_org_wide_installs_are_refused(db: Database) -> None:
    org_wide = _installation("xoxb-org", "commands")
    org_wide.team_id = None
    with pytest.raises(PlatformError, match="org-wide"):
        await DatabaseInstallationStore(db).async_save(org_wide)


async def test_oauth_states_are_single_use_and_expire(db: Database) -> None:
    store = DatabaseOAuthStateStore(db)
    state = await store.async_issue()
    assert await store.async_consume(state) is True
    assert await store.async_consume(state) is False
    assert await store.async_consume("forged") is False
    expired = DatabaseOAuthStateStore(db, lifetime=timedelta(seconds=-1))
    assert await expired.async_consume(await expired.async_issue()) is False
