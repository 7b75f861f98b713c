"""The outbox on Slack across a crash: a replica dies mid-burst (after its posts,
before their marks), another takes over within the short lease and posts nothing
twice, because every post carries its outbox key in message metadata and a row
leased before is first looked for in the conversation's history."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy import func, select
from sqlmodel import col

from bot.adapters.slack_platform import OUTBOX_EVENT_TYPE, SlackPlatform, StaticToken
from bot.core.dispatcher import OutboxDispatcher
from bot.core.outbox import Outbox
from bot.core.platform import Message, MessageRef, PlatformError
from storage import outbox as outbox_rows
from storage.db import Database
from storage.models import OutboxMessage
from storage.types import utcnow
from tests.bot.adapters.slack_harness import CHANNEL, TEAM, TOKEN, populate
from tests.fakes.platform import FakePlatform
from tests.fakes.slack import FakeSlack

PAIRS = 20


@pytest.fixture
async def fake() -> AsyncIterator[FakeSlack]:
    slack = FakeSlack()
    await slack.start()
    populate(slack)
    for number in range(2 * PAIRS):
        slack.add_user(TEAM, f"UP{number:02d}", f"person{number}")
    yield slack
    await slack.close()


def _platform(fake: FakeSlack) -> SlackPlatform:
    return SlackPlatform(AsyncWebClient(base_url=fake.api_url), StaticToken(TOKEN), pace=100.0)


async def _queue_burst(db: Database) -> int:
    """A round's group intros, an announcement with a thread reply, and DMs."""
    async with db.transaction() as session:
        outbox = Outbox(session, "slack", TEAM)
        for pair in range(PAIRS):
            people = [f"UP{2 * pair:02d}", f"UP{2 * pair + 1:02d}"]
            await outbox.group(people, Message(f"Meet, pair {pair}"), key=f"intro:{pair}")
        post = await outbox.post(CHANNEL, Message("Round 1 is out"), key="announce")
        await outbox.thread_reply(post, Message("Pairs are in your DMs"), key="announce-reply")
        for number in range(5):
            await outbox.dm(f"UP{number:02d}", Message(f"Reminder {number}"), key=f"dm:{number}")
    return PAIRS + 2 + 5


def _posts_by_key(fake: FakeSlack) -> Counter[str]:
    posted: Counter[str] = Counter()
    for channel in fake.workspaces[TEAM].channels.values():
        for message in channel["messages"]:
            metadata: dict[str, Any] = message.get("metadata") or {}
            assert metadata.get("event_type") == OUTBOX_EVENT_TYPE
            posted[metadata["event_payload"]["key"]] += 1
    return posted


async def test_a_replica_killed_mid_burst_is_taken_over_and_nothing_is_posted_twice(
    fake: FakeSlack, db: Database
) -> None:
    rows = await _queue_burst(db)
    lease = timedelta(seconds=1)
    doomed = OutboxDispatcher(db, {"slack": _platform(fake)}, owner="replica-a", lease=lease)

    async def never_marked() -> None:
        """The process dies before any of its marks reach the database."""

    doomed._flush = never_marked  # type: ignore[method-assign]
    burst = asyncio.create_task(doomed.deliver_batch())
    await fake.wait_for(lambda: len(fake.calls_to("chat.postMessage")) >= 12, within=10)
    burst.cancel()  # kill -9: no flush, no heartbeat from now on
    with pytest.raises(asyncio.CancelledError):
        await burst
    killed_at = time.monotonic()
    await asyncio.sleep(0.2)  # a request already on the wire still reaches Slack
    posted_by_the_dead = len(fake.calls_to("chat.postMessage"))
    assert await outbox_rows.counts_by_status(db) == {"pending": rows}

    survivor = OutboxDispatcher(db, {"slack": _platform(fake)}, owner="replica-b", lease=lease)
    async with asyncio.timeout(20):
        await survivor.drain()
    taken_over_in = time.monotonic() - killed_at

    posted = _posts_by_key(fake)
    assert len(posted) == rows
    assert [key for key, count in posted.items() if count > 1] == []
    assert survivor.recovered_count == posted_by_the_dead
    assert await outbox_rows.counts_by_status(db) == {"sent": rows}
    # Within the short lease (and the survivor's own sends), not after minutes.
    assert taken_over_in < lease.total_seconds() + 5


async def test_the_first_copy_is_found_in_threads_and_dms_too(
    fake: FakeSlack, db: Database
) -> None:
    platform = _platform(fake)
    parent = await platform.post_channel(TEAM, CHANNEL, Message("parent", idempotency_key="k-1"))
    since = utcnow() - timedelta(seconds=1)
    reply = await platform.reply_in_thread(TEAM, parent, Message("r", idempotency_key="k-2"))
    dm = await platform.send_dm(TEAM, "UP01", Message("hi", idempotency_key="k-3"))
    found = await platform.find_sent(TEAM, "thread_reply", "", parent, "k-2", since)
    assert found is not None and found.message_id == reply.message_id
    found = await platform.find_sent(TEAM, "dm", "UP01", None, "k-3", since)
    assert found is not None and found.message_id == dm.message_id
    found = await platform.find_sent(TEAM, "post", CHANNEL, None, "k-1", since)
    assert found is not None and found.message_id == parent.message_id
    assert await platform.find_sent(TEAM, "post", CHANNEL, None, "k-9", since) is None


async def _leased_by(db: Database, owner: str) -> int:
    async with db.sessions() as session:
        query = select(func.count()).where(col(OutboxMessage.lease_owner) == owner)
        return int((await session.execute(query)).scalar_one())


async def test_a_history_slack_will_not_show_means_sending_not_failing(
    fake: FakeSlack, db: Database
) -> None:
    async with db.transaction() as session:
        await Outbox(session, "slack", TEAM).post(CHANNEL, Message("Hello"), key="hello")
    lease = timedelta(seconds=0.3)
    claimed = await outbox_rows.claim_due(
        db, owner="replica-a", platforms=["slack"], limit=10, lease=lease
    )
    assert len(claimed) == 1  # leased, then replica-a died before sending
    await asyncio.sleep(0.4)
    platform = _platform(fake)

    async def refused(
        workspace_id: str,
        kind: str,
        target: str,
        parent: MessageRef | None,
        key: str,
        since: datetime,
    ) -> MessageRef | None:
        raise PlatformError("conversations.history failed in T1: missing_scope")

    platform.find_sent = refused  # type: ignore[method-assign]
    async with asyncio.timeout(10):
        await OutboxDispatcher(db, {"slack": platform}, lease=lease).drain()
    assert await outbox_rows.counts_by_status(db) == {"sent": 1}
    assert [m["text"] for m in fake.messages(TEAM, CHANNEL)] == ["Hello"]


class SlowPlatform(FakePlatform):
    def __init__(self, seconds: float) -> None:
        super().__init__()
        self.seconds = seconds

    async def send_dm(self, workspace_id: str, user_id: str, message: Message) -> MessageRef:
        await asyncio.sleep(self.seconds)
        return await super().send_dm(workspace_id, user_id, message)


async def test_renewed_leases_keep_a_slow_batch_from_being_taken_over(db: Database) -> None:
    async with db.transaction() as session:
        outbox = Outbox(session, "fake", "W1")
        for number in range(3):
            await outbox.dm(f"U{number}", Message(f"hello {number}"), key=f"hello:{number}")
    # The batch outlasts its lease by half (a busy machine may delay a renewal by
    # a second, so the lease is not shorter).
    lease = timedelta(seconds=2)
    slow = SlowPlatform(1.0)
    busy = OutboxDispatcher(db, {"fake": slow}, lease=lease, concurrency=1, owner="busy")
    other = FakePlatform()
    rival = OutboxDispatcher(db, {"fake": other}, lease=lease, owner="rival")
    batch = asyncio.create_task(busy.deliver_batch())
    async with asyncio.timeout(5):
        while not await _leased_by(db, "busy"):
            await asyncio.sleep(0.01)
    taken = 0
    while not batch.done():
        taken += await rival.deliver_batch()
        await asyncio.sleep(0.05)
    assert await batch == 3
    assert taken == 0
    assert other.sent == []
    assert sorted(sent.target for sent in slow.sent) == ["U0", "U1", "U2"]
    assert await outbox_rows.counts_by_status(db) == {"sent": 3}
