"""Slack workspaces that installed Kindred through OAuth (multi-workspace mode), and
the one-time `state` values that protect the install flow from forged callbacks.

Bot tokens are secrets: nothing here logs them, and `SlackInstallation.__repr__`
leaves them out.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Column, Text, delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import Field, SQLModel, col

from storage.db import rowcount
from storage.types import UTCDateTime, utcnow


class SlackInstallation(SQLModel, table=True):
    """The latest bot installation of one workspace (team ids are unique across Slack)."""

    __tablename__ = "slack_installation"

    id: int | None = Field(default=None, primary_key=True)
    team_id: str = Field(max_length=32, unique=True)
    team_name: str = Field(default="", max_length=200)
    enterprise_id: str | None = Field(default=None, max_length=32)
    app_id: str | None = Field(default=None, max_length=32)
    bot_token: str = Field(sa_column=Column(Text, nullable=False), repr=False)
    bot_id: str = Field(max_length=32)
    bot_user_id: str = Field(max_length=32)
    # Comma-separated, as Slack reports them.
    bot_scopes: str = Field(default="", sa_column=Column(Text, nullable=False))
    installer_user_id: str | None = Field(default=None, max_length=32)
    installed_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class SlackOAuthState(SQLModel, table=True):
    """A `state` handed to one browser starting the install; consumed once."""

    __tablename__ = "slack_oauth_state"

    state: str = Field(primary_key=True, max_length=64)
    expires_at: datetime = Field(sa_type=UTCDateTime)


async def find(session: AsyncSession, team_id: str) -> SlackInstallation | None:
    query = select(SlackInstallation).where(col(SlackInstallation.team_id) == team_id)
    return (await session.execute(query)).scalar_one_or_none()


async def save(session: AsyncSession, installation: SlackInstallation) -> SlackInstallation:
    """Insert the workspace's installation or replace the one it had (re-installs
    bring new scopes or a new token)."""
    for _ in range(2):
        existing = await find(session, installation.team_id)
        if existing is None:
            try:
                async with session.begin_nested():
                    session.add(installation)
                    await session.flush()
            except IntegrityError:
                # Another replica stored this workspace a moment ago: update theirs.
                continue
            return installation
        for name in (
            "team_name",
            "enterprise_id",
            "app_id",
            "bot_token",
            "bot_id",
            "bot_user_id",
            "bot_scopes",
            "installed_at",
        ):
            setattr(existing, name, getattr(installation, name))
        # A token refresh does not say who installed; keep the installer we know.
        if installation.installer_user_id is not None:
            existing.installer_user_id = installation.installer_user_id
        return existing
    raise RuntimeError(f"could not store the installation of {installation.team_id}")


async def remove(session: AsyncSession, team_id: str) -> bool:
    result = await session.execute(
        delete(SlackInstallation).where(col(SlackInstallation.team_id) == team_id)
    )
    return bool(rowcount(result))


async def issue_state(session: AsyncSession, state: str, lifetime: timedelta) -> None:
    session.add(SlackOAuthState(state=state, expires_at=utcnow() + lifetime))
    await session.flush()


async def consume_state(session: AsyncSession, state: str) -> bool:
    """True once for a state issued within its lifetime (one atomic delete, so two
    replicas can never both accept it); expired states are purged on the way."""
    now = utcnow()
    consumed = await session.execute(
        delete(SlackOAuthState).where(
            col(SlackOAuthState.state) == state, col(SlackOAuthState.expires_at) >= now
        )
    )
    await session.execute(delete(SlackOAuthState).where(col(SlackOAuthState.expires_at) < now))
    return rowcount(consumed) == 1
