from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import timedelta

from bot.core.app import Kindred
from bot.core.settings import Settings
from bot.jobs import welcome as jobs
from storage import members
from storage import welcome as welcome_rows
from storage.db import Database
from tests.conftest import Clock
from tests.driver import Community
from tests.fakes.platform import FakePlatform


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
    communities = [Community(replica, platform, clock) for replica in replicas]
    await delay_welcomes(postgres_db, timedelta(hours=1))
    for n in range(10):
        await communities[n % 3].join(f"U{n}")
    clock.advance(hours=1)
    ran = await asyncio.gather(*(jobs.run_due(replica, clock.now) for replica in replicas))
    assert sum(ran) == 10
    for community in communities:
        await community.deliver()
    assert sorted(sent.target for sent in platform.sent) == sorted(f"U{n}" for n in range(10))


async def test_a_delayed_welcome_is_dropped_if_welcomes_are_off_or_the_account_is_gone(
    community: Community, platform: FakePlatform, clock: Clock
) -> None:
    kindred = community.kindred
    await delay_welcomes(kindred.db, timedelta(minutes=30))
    await community.join("UGONE")
    await community.join("ULATER")
    async with kindred.db.transaction() as session:
        await members.ensure_member(session, "fake", "W1", "UGONE", deactivated=True)
    assert await jobs.run_due(kindred, clock.advance(minutes=30)) == 2
    async with kindred.db.transaction() as session:
        settings = await welcome_rows.ensure_settings(session, "fake", "W1")
        settings.enabled = False
    await community.join("UOFF")
    assert await jobs.run_due(kindred, clock.advance(hours=1)) == 0
    await community.deliver()
    assert [sent.target for sent in platform.sent] == ["ULATER"]
    async with kindred.db.sessions() as session:
        gone = await welcome_rows.get_welcome(session, "fake", "W1", "UGONE")
    assert gone is not None and gone.welcome_due_at is None and gone.welcomed_at is None
