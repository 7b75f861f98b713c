"""The kudos tick across replicas: two cores on one database tick at the same
moment, and the monthly review counts one month below the bar, not two (which
would drop the status at once); the daily sweep grants once."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime

from sqlalchemy import func, select

from bot.core.app import Kindred
from bot.core.platform import MemberInfo
from bot.core.settings import Settings
from bot.jobs import kudos as jobs
from storage.db import Database
from storage.kudos import Kudos, RecognisedContributor
from storage.models import JobClaim
from tests.conftest import Clock
from tests.driver import Community
from tests.fakes.platform import FakePlatform


async def test_two_replicas_review_and_sweep_once(
    settings: Settings,
    sqlite_db: Database,
    kindred: Kindred,
    community: Community,
    platform: FakePlatform,
    clock: Clock,
) -> None:
    platform.add_members("W1", *(MemberInfo(user, user.title()) for user in ("UANA", "UBEN")))
    await community.say("kudos setup givers=1 kudos=1 companies=0 days=0 evidence=0")
    await community.say("kudos <@UANA> for the onboarding call notes", "U1")
    await community.say("kudos <@UBEN> for the support macros he shared", "U1")
    async with sqlite_db.sessions() as session:
        granted = (await session.execute(select(RecognisedContributor))).scalars().all()
    assert sorted(row.user_id for row in granted) == ["UANA", "UBEN"]
    # Ana's only kudos is revoked: she is below the bar from now on.
    async with sqlite_db.transaction() as session:
        ana = (await session.execute(select(Kudos).where(Kudos.receiver_id == "UANA"))).scalar_one()
        ana.status = "revoked"

    other = Kindred(replace(settings, database_url=str(sqlite_db.url)), sqlite_db, clock=clock)
    other.attach(platform)
    review_at = datetime(2026, 12, 1, 0, 5, tzinfo=UTC)
    clock.now = review_at
    await asyncio.gather(jobs.tick(kindred, review_at), jobs.tick(other, review_at))
    await asyncio.gather(jobs.tick(kindred, review_at), jobs.tick(other, review_at))
    async with sqlite_db.sessions() as session:
        rows = {
            row.user_id: row
            for row in (await session.execute(select(RecognisedContributor))).scalars()
        }
        claims = (
            await session.execute(
                select(JobClaim.job, func.count()).group_by(JobClaim.job).order_by(JobClaim.job)
            )
        ).all()
    assert (rows["UANA"].active, rows["UANA"].months_below) == (True, 1)
    assert (rows["UBEN"].active, rows["UBEN"].months_below) == (True, 0)
    kudos_claims = [(job, count) for job, count in claims if job.startswith("kudos.")]
    assert [count for _, count in kudos_claims] == [1, 1]
    assert await jobs.next_due(kindred, review_at) == datetime(2026, 12, 2, 0, 0, tzinfo=UTC)
