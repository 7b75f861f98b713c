from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import timedelta

from bot.core.app import Kindred
from bot.core.platform import Inbound
from bot.core.settings import Settings
from bot.jobs import welcome as jobs
from storage import members
from storage import welcome as welcome_rows
from storage.db import Database
from tests.conftest import Clock
from tests.fakes.platform import FakePlatform


def joined(user: str, event_id: str) -> Inbound:
    return Inbound(
        kind="member_joined", platform="fake", workspace_id="W1", user_id=user, event_id=event_id
    )


async def delay_welcomes(db: Database, delay: timedelta) -> None:
    async with db.transaction() as session:
        settings = await welcome_rows.ensure_settings(session, "fake", "W1")
        settings.delay_seconds = int(delay.total_seconds())


async def test_replicas_ticking_together_send_each_delayed_welcome_once(
    postgres_db: Database, settings: Settings, clock: Clock, platform: FakePlatform
) -> None:
    replicas = [
        Kindred(replace(settings, database_url=str(postgres_db.url)), postgres_db, clock=clock)
        for _ in range(3)
    ]
    for replica in replicas:
        replica.attach(platform)
    await delay_welcomes(postgres_db, timedelta(hours=1))
    for n in range(10):
        await replicas[n % 3].handle(joined(f"U{n}", f"ev{n}"))
    clock.advance(hours=1)
    ran = await asyncio.gather(*(jobs.run_due(replica, clock.now) for replica in replicas))
    assert sum(ran) == 10
    async with asyncio.timeout(20):
        for replica in replicas:
            await replica.dispatcher.drain()
    assert sorted(sent.target for sent in platform.sent) == sorted(f"U{n}" for n in range(10))


async def test_a_delayed_welcome_is_dropped_if_welcomes_are_off_or_the_account_is_gone(
    kindred: Kindred, platform: FakePlatform, clock: Clock
) -> None:
    await delay_welcomes(kindred.db, timedelta(minutes=30))
    await kindred.handle(joined("UGONE", "ev1"))
    await kindred.handle(joined("ULATER", "ev2"))
    async with kindred.db.transaction() as session:
        await members.ensure_member(session, "fake", "W1", "UGONE", deactivated=True)
    assert await jobs.run_due(kindred, clock.advance(minutes=30)) == 2
    async with kindred.db.transaction() as session:
        settings = await welcome_rows.ensure_settings(session, "fake", "W1")
        settings.enabled = False
    await kindred.handle(joined("UOFF", "ev3"))
    assert await jobs.run_due(kindred, clock.advance(hours=1)) == 0
    async with asyncio.timeout(20):
        await kindred.dispatcher.drain()
    assert [sent.target for sent in platform.sent] == ["ULATER"]
    async with kindred.db.sessions() as session:
        gone = await welcome_rows.get_welcome(session, "fake", "W1", "UGONE")
    assert gone is not None and gone.welcome_due_at is None and gone.welcomed_at is None
