"""Multi-workspace installs: bolt's installation-store and OAuth-state-store
interfaces, backed by Kindred's database (storage/slack_installations.py), so
every replica sees every workspace and any replica can finish an install another
one started.

The store is also the `BotTokens` source of `SlackPlatform`: outbound messages
use the token of the workspace they go to. Tokens are cached briefly in memory
and never logged.
"""

from __future__ import annotations

import logging
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

from slack_bolt.authorization import AuthorizeResult
from slack_bolt.authorization.async_authorize import AsyncAuthorize
from slack_bolt.context.async_context import AsyncBoltContext
from slack_sdk.oauth.installation_store.async_installation_store import AsyncInstallationStore
from slack_sdk.oauth.installation_store.models.bot import Bot
from slack_sdk.oauth.installation_store.models.installation import Installation
from slack_sdk.oauth.state_store.async_state_store import AsyncOAuthStateStore

from bot.adapters.slack_platform import ExpiringCache
from bot.core.platform import PlatformError
from storage import members, slack_installations
from storage.db import Database
from storage.slack_installations import SlackInstallation

log = logging.getLogger(__name__)

TOKEN_CACHE_SECONDS = 300.0
STATE_LIFETIME = timedelta(minutes=10)


class DatabaseInstallationStore(AsyncInstallationStore):
    """Bot installations, one per workspace (Kindred asks for no user tokens)."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._tokens: ExpiringCache[str, str] = ExpiringCache(TOKEN_CACHE_SECONDS)
        self._installations: ExpiringCache[str, SlackInstallation] = ExpiringCache(
            TOKEN_CACHE_SECONDS
        )

    @property
    def logger(self) -> logging.Logger:
        return log

    async def async_save(self, installation: Installation) -> None:
        if installation.bot_token is None:
            log.warning("ignoring an install of %s without a bot token", installation.team_id)
            return
        await self._store(installation.to_bot(), installer_user_id=installation.user_id)

    async def async_save_bot(self, bot: Bot) -> None:
        await self._store(bot, installer_user_id=None)

    async def _store(self, bot: Bot, installer_user_id: str | None) -> None:
        if not bot.team_id:
            raise PlatformError("Kindred supports workspace installs, not org-wide installs")
        row = SlackInstallation(
            team_id=bot.team_id,
            team_name=bot.team_name or "",
            enterprise_id=bot.enterprise_id,
            app_id=bot.app_id,
            bot_token=bot.bot_token,
            bot_id=bot.bot_id,
            bot_user_id=bot.bot_user_id,
            bot_scopes=",".join(bot.bot_scopes or []),
            installer_user_id=installer_user_id or None,
            installed_at=datetime.fromtimestamp(bot.installed_at, tz=UTC),
        )
        async with self.db.transaction() as session:
            await slack_installations.save(session, row)
            # Welcomes and digests name the community.
            await members.ensure_community(session, "slack", bot.team_id, bot.team_name or "")
        self._tokens.put(bot.team_id, bot.bot_token)
        self._installations.put(bot.team_id, row)
        log.info("stored the Slack installation of %s (%s)", bot.team_name, bot.team_id)

    async def async_find_bot(
        self,
        *,
        enterprise_id: str | None,
        team_id: str | None,
        is_enterprise_install: bool | None = False,
    ) -> Bot | None:
        row = await self._find(team_id)
        if row is None:
            return None
        return Bot(**_bot_fields(row))

    async def async_find_installation(
        self,
        *,
        enterprise_id: str | None,
        team_id: str | None,
        user_id: str | None = None,
        is_enterprise_install: bool | None = False,
    ) -> Installation | None:
        row = await self._find(team_id)
        if row is None or (user_id is not None and user_id != row.installer_user_id):
            return None
        return Installation(**_bot_fields(row), user_id=row.installer_user_id or "")

    async def async_delete_bot(self, *, enterprise_id: str | None, team_id: str | None) -> None:
        if not team_id:
            return
        async with self.db.transaction() as session:
            removed = await slack_installations.remove(session, team_id)
        self.forget(team_id)
        if removed:
            log.info("removed the Slack installation of %s", team_id)

    async def async_delete_installation(
        self,
        *,
        enterprise_id: str | None,
        team_id: str | None,
        user_id: str | None = None,
    ) -> None:
        # Only the bot installation is stored; a user's revoked token changes nothing.
        if user_id is None:
            await self.async_delete_bot(enterprise_id=enterprise_id, team_id=team_id)

    async def _find(self, team_id: str | None) -> SlackInstallation | None:
        if not team_id:
            return None
        async with self.db.transaction() as session:
            return await slack_installations.find(session, team_id)

    # BotTokens, for SlackPlatform.

    async def bot_token(self, workspace_id: str) -> str:
        token = self._tokens.get(workspace_id)
        if token is not None:
            return token
        row = await self._find(workspace_id)
        if row is None:
            raise PlatformError(f"Kindred is not installed in Slack workspace {workspace_id}")
        return self._tokens.put(workspace_id, row.bot_token)

    def forget(self, workspace_id: str) -> None:
        self._tokens.drop(workspace_id)
        self._installations.drop(workspace_id)

    # For bolt's authorization, before each ack.

    async def authorized(self, team_id: str | None, user_id: str | None) -> AuthorizeResult | None:
        """What bolt needs to handle a request from `team_id`, from the stored
        installation: bolt's own `AsyncInstallationStoreAuthorize` asks Slack's
        auth.test for each workspace's first request, before its ack."""
        if not team_id:
            return None
        row = self._installations.get(team_id)
        if row is None:
            row = await self._find(team_id)
            if row is None:
                return None
            self._installations.put(team_id, row)
        return AuthorizeResult(
            enterprise_id=row.enterprise_id,
            team_id=row.team_id,
            team=row.team_name,
            bot_id=row.bot_id,
            bot_user_id=row.bot_user_id,
            bot_scopes=row.bot_scopes,
            bot_token=row.bot_token,
            user_id=user_id,
        )


class StoredInstallationAuthorize(AsyncAuthorize):
    """bolt's authorize step from `DatabaseInstallationStore.authorized`."""

    def __init__(self, store: DatabaseInstallationStore) -> None:
        self.store = store

    async def __call__(
        self,
        *,
        context: AsyncBoltContext,
        enterprise_id: str | None,
        team_id: str | None,
        user_id: str | None,
        actor_enterprise_id: str | None = None,
        actor_team_id: str | None = None,
        actor_user_id: str | None = None,
    ) -> AuthorizeResult | None:
        return await self.store.authorized(team_id, user_id)


class DatabaseOAuthStateStore(AsyncOAuthStateStore):
    """One-time `state` values for the install flow, shared by every replica."""

    def __init__(self, db: Database, lifetime: timedelta = STATE_LIFETIME) -> None:
        self.db = db
        self.lifetime = lifetime

    @property
    def logger(self) -> logging.Logger:
        return log

    async def async_issue(self, *args: object, **kwargs: object) -> str:
        state = secrets.token_urlsafe(32)
        async with self.db.transaction() as session:
            await slack_installations.issue_state(session, state, self.lifetime)
        return state

    async def async_consume(self, state: str) -> bool:
        async with self.db.transaction() as session:
            return await slack_installations.consume_state(session, state)


def _bot_fields(row: SlackInstallation) -> dict[str, Any]:
    """What bolt's `Bot` and `Installation` share, from our stored row."""
    return {
        "app_id": row.app_id,
        "enterprise_id": row.enterprise_id,
        "team_id": row.team_id,
        "team_name": row.team_name,
        "bot_token": row.bot_token,
        "bot_id": row.bot_id,
        "bot_user_id": row.bot_user_id,
        "bot_scopes": row.bot_scopes,
        "installed_at": row.installed_at.timestamp(),
    }
