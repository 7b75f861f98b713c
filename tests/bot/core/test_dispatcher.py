from __future__ import annotations

import asyncio
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, update

from bot.core.dispatcher import OutboxDispatcher, TokenBucket
from bot.core.outbox import Outbox
from bot.core.platform import (
    CalendarEvent,
    Message,
    MessageRef,
    PlatformError,
    RateLimit,
    RateLimited,
    TransientPlatformError,
)
from storage import outbox as outbox_rows
from storage.db import Database
from storage.models import OutboxMessage
from tests.fakes.platform import FakePlatform


async def queue_dms(db: Database, count: int, platform: str = "fake", start: int = 0) -> None:
    async with db.transaction() as session:
        outbox = Outbox(session, platform, "W1")
        for number in range(start, start + count):
            await outbox.dm(f"U{number}", Message(f"hello {number}"), key=f"hello:{number}")


async def statuses(db: Database) -> dict[str, int]:
    return await outbox_rows.counts_by_status(db)


async def test_delivers_every_kind_and_records_refs(db: Database) -> None:
    platform = FakePlatform()
    async with db.transaction() as session:
        outbox = Outbox(session, "fake", "W1")
        post = await outbox.post("C1", Message("announcement"))
        await outbox.thread_reply(post, Message("first reply"))
        await outbox.update(post, Message("announcement (edited)"))
        await outbox.group(["U1", "U2"], Message("meet each other"), channel_id="C1", title="t")
        await outbox.dm("U3", Message("hi"))
        await outbox.update(MessageRef("C9", "m99"), Message("direct update"))
    dispatcher = OutboxDispatcher(db, {"fake": platform})
    async with asyncio.timeout(10):
        await dispatcher.drain()
    kinds = [sent.kind for sent in platform.sent]
    assert sorted(kinds) == sorted(["post", "thread_reply", "update", "post", "dm", "update"])
    # The reply and the edit waited for the post they refer to.
    assert kinds.index("post") < kinds.index("thread_reply")
    assert platform.groups == {"G1": ["U1", "U2"]}
    assert await statuses(db) == {"sent": 6}
    async with db.sessions() as session:
        refs = [row.sent_ref for row in (await session.execute(select(OutboxMessage))).scalars()]
    assert all(ref and ref["message_id"] for ref in refs)


async def test_each_send_carries_its_rows_idempotency_key(db: Database) -> None:
    await queue_dms(db, 2)
    platform = FakePlatform()
    async with asyncio.timeout(10):
        await OutboxDispatcher(db, {"fake": platform}).drain()
    async with db.sessions() as session:
        ids = {
            row.target: row.id for row in (await session.execute(select(OutboxMessage))).scalars()
        }
    assert {sent.target: sent.message.idempotency_key for sent in platform.sent} == {
        target: f"kindred-{row_id}" for target, row_id in ids.items()
    }


async def test_same_key_queues_one_message(db: Database) -> None:
    await queue_dms(db, 3)
    await queue_dms(db, 3)
    platform = FakePlatform()
    async with asyncio.timeout(10):
        await OutboxDispatcher(db, {"fake": platform}).drain()
    assert len(platform.sent) == 3


async def test_rate_limited_call_waits_retry_after_and_is_sent_once(db: Database) -> None:
    await queue_dms(db, 3)
    platform = FakePlatform(failures=[RateLimited(0.3)])
    dispatcher = OutboxDispatcher(db, {"fake": platform}, concurrency=1)
    started = time.monotonic()
    async with asyncio.timeout(10):
        await dispatcher.drain()
    assert time.monotonic() - started >= 0.3
    assert sorted(sent.target for sent in platform.sent) == ["U0", "U1", "U2"]
    assert await statuses(db) == {"sent": 3}


async def test_transient_failures_back_off_then_succeed(db: Database) -> None:
    await queue_dms(db, 1)
    platform = FakePlatform(failures=[TransientPlatformError("502"), TransientPlatformError("502")])
    dispatcher = OutboxDispatcher(db, {"fake": platform}, base_backoff=0.01)
    async with asyncio.timeout(10):
        await dispatcher.drain()
    assert len(platform.sent) == 1
    async with db.sessions() as session:
        row = (await session.execute(select(OutboxMessage))).scalar_one()
    assert row.attempts == 2
    assert row.status == "sent"


async def test_permanent_failure_is_recorded_and_not_retried(db: Database) -> None:
    await queue_dms(db, 1)
    platform = FakePlatform(failures=[PlatformError("channel_not_found")])
    async with asyncio.timeout(10):
        await OutboxDispatcher(db, {"fake": platform}).drain()
    async with db.sessions() as session:
        row = (await session.execute(select(OutboxMessage))).scalar_one()
    assert (row.status, row.last_error) == ("failed", "channel_not_found")
    assert platform.calls == 1


async def test_gives_up_after_max_attempts(db: Database) -> None:
    await queue_dms(db, 1)
    platform = FakePlatform(failures=[TransientPlatformError("timeout")] * 5)
    dispatcher = OutboxDispatcher(db, {"fake": platform}, max_attempts=3, base_backoff=0.001)
    async with asyncio.timeout(10):
        await dispatcher.drain()
    assert await statuses(db) == {"failed": 1}
    assert platform.calls == 3


async def test_crash_mid_batch_resumes_without_loss_or_double(db: Database) -> None:
    """A dispatcher dies holding a lease: the rows it had not marked are delivered
    by the next one once the lease runs out, and sent rows are never re-sent."""
    await queue_dms(db, 10)
    first = FakePlatform()
    # A lease long enough that a loaded machine still checks it before it runs out.
    crashing = OutboxDispatcher(db, {"fake": first}, lease=timedelta(seconds=3), batch_size=10)
    claimed = await outbox_rows.claim_due(
        db, owner=crashing.owner, platforms=["fake"], limit=10, lease=crashing.lease
    )
    # It delivered and marked the first four, then the process died.
    for item in claimed[:4]:
        assert item.row.id is not None
        ref = await first.send_dm("W1", item.row.target, Message(item.row.payload["text"]))
        await outbox_rows.mark_sent(
            db, [(item.row.id, {"channel_id": ref.channel_id, "message_id": ref.message_id})]
        )
    second = FakePlatform()
    survivor = OutboxDispatcher(db, {"fake": second})
    assert await survivor.deliver_batch() == 0  # the lease is still held
    await asyncio.sleep(3.1)
    async with asyncio.timeout(10):
        await survivor.drain()
    delivered = sorted(sent.target for sent in first.sent + second.sent)
    assert delivered == sorted(f"U{n}" for n in range(10))
    assert len(second.sent) == 6
    assert await statuses(db) == {"sent": 10}


async def test_group_conversation_is_opened_once_across_retries(db: Database) -> None:
    async with db.transaction() as session:
        await Outbox(session, "fake", "W1").group(["U1", "U2", "U3"], Message("intro"), title="x")
    # Opening works, posting into it fails transiently once.
    platform = FakePlatform(failures=[TransientPlatformError("503")])
    async with asyncio.timeout(10):
        await OutboxDispatcher(db, {"fake": platform}, base_backoff=0.01).drain()
    assert list(platform.groups) == ["G1"]
    assert [sent.target for sent in platform.sent] == ["G1"]


@pytest.mark.parametrize("dispatchers", [2, 3])
async def test_parallel_dispatchers_on_postgres_never_send_twice(
    postgres_db: Database, dispatchers: int
) -> None:
    await queue_dms(postgres_db, 300)
    platforms = [FakePlatform() for _ in range(dispatchers)]
    workers = [
        OutboxDispatcher(postgres_db, {"fake": platform}, batch_size=20) for platform in platforms
    ]
    async with asyncio.timeout(30):
        await asyncio.gather(*(worker.drain() for worker in workers))
    targets = [sent.target for platform in platforms for sent in platform.sent]
    assert len(targets) == 300
    assert len(set(targets)) == 300
    # Each took part: SKIP LOCKED let them share the queue instead of waiting in line.
    assert all(platform.sent for platform in platforms)


async def test_rows_for_platforms_not_served_here_are_left_alone(db: Database) -> None:
    await queue_dms(db, 2, platform="slack")
    platform = FakePlatform()
    dispatcher = OutboxDispatcher(db, {"fake": platform})
    assert await dispatcher.deliver_batch() == 0
    assert await statuses(db) == {"pending": 2}


async def test_not_before_delays_delivery(db: Database) -> None:
    async with db.transaction() as session:
        from storage.types import utcnow

        await Outbox(session, "fake", "W1").dm(
            "U1", Message("later"), not_before=utcnow() + timedelta(hours=1)
        )
    platform = FakePlatform()
    assert await OutboxDispatcher(db, {"fake": platform}).deliver_batch() == 0
    async with db.transaction() as session:
        await session.execute(update(OutboxMessage).values(next_attempt_at=utcnow()))
    assert await OutboxDispatcher(db, {"fake": platform}).deliver_batch() == 1


async def test_run_loop_wakes_on_notify_and_stops(sqlite_db: Database) -> None:
    platform = FakePlatform()
    dispatcher = OutboxDispatcher(sqlite_db, {"fake": platform}, poll_interval=30)
    task = asyncio.create_task(dispatcher.run())
    await asyncio.sleep(0.05)
    await queue_dms(sqlite_db, 2)
    dispatcher.wake()
    async with asyncio.timeout(5):
        while len(platform.sent) < 2:
            await asyncio.sleep(0.01)
    dispatcher.stop()
    async with asyncio.timeout(5):
        await task


async def test_token_bucket_paces_to_its_rate() -> None:
    bucket = TokenBucket(RateLimit(per_second=50, burst=5))
    started = time.monotonic()
    for _ in range(30):
        await bucket.take()
    elapsed = time.monotonic() - started
    # 5 from the burst, 25 at 50/s: about half a second.
    assert 0.4 <= elapsed <= 1.0


async def test_paced_platform_is_not_exceeded(sqlite_db: Database) -> None:
    await queue_dms(sqlite_db, 40)
    platform = FakePlatform(limits=[("fake:W1", RateLimit(per_second=100, burst=10))])
    started = time.monotonic()
    async with asyncio.timeout(10):
        await OutboxDispatcher(sqlite_db, {"fake": platform}).drain()
    assert time.monotonic() - started >= 0.25
    assert len(platform.sent) == 40


async def test_rows_waiting_for_a_failed_row_fail_too(db: Database) -> None:
    async with db.transaction() as session:
        outbox = Outbox(session, "fake", "W1")
        post = await outbox.post("C-gone", Message("question"))
        reply = await outbox.thread_reply(post, Message("answer"))
        await outbox.update(reply, Message("answer (edited)"))
        await outbox.dm("U1", Message("unrelated"))
    platform = FakePlatform(failures=[PlatformError("channel_not_found")])
    async with asyncio.timeout(10):
        await OutboxDispatcher(db, {"fake": platform}).drain()
    assert await statuses(db) == {"failed": 3, "sent": 1}
    assert platform.texts() == ["unrelated"]


async def test_scheduled_events_are_created_then_edited_then_cancelled_in_order(
    db: Database,
) -> None:
    platform = FakePlatform(scheduled_events=True)
    start = datetime(2026, 12, 1, 15, 0, tzinfo=UTC)
    event = CalendarEvent("Clinic", start, start + timedelta(hours=1), "https://m.example")
    async with db.transaction() as session:
        outbox = Outbox(session, "fake", "W1")
        created = await outbox.scheduled_event(event)
        edited = await outbox.scheduled_event(replace(event, title="Clinic, moved"), after=created)
        await outbox.cancel_scheduled_event(edited)
    dispatcher = OutboxDispatcher(db, {"fake": platform})
    async with asyncio.timeout(10):
        await dispatcher.drain()
    assert platform.calendar_calls == [("create", "E1"), ("edit", "E1"), ("cancel", "E1")]
    assert platform.calendar["E1"].title == "Clinic, moved"
    assert platform.calendar["E1"].starts_at == start
    assert await statuses(db) == {"sent": 3}


async def test_a_scheduled_event_on_a_platform_without_them_fails_and_is_not_retried(
    db: Database,
) -> None:
    platform = FakePlatform()  # like Slack: no scheduled events
    start = datetime(2026, 12, 1, 15, 0, tzinfo=UTC)
    async with db.transaction() as session:
        outbox = Outbox(session, "fake", "W1")
        created = await outbox.scheduled_event(
            CalendarEvent("Clinic", start, start + timedelta(hours=1), "https://m.example")
        )
        await outbox.cancel_scheduled_event(created)
    dispatcher = OutboxDispatcher(db, {"fake": platform})
    async with asyncio.timeout(10):
        await dispatcher.drain()
    assert platform.calendar_calls == []
    assert await statuses(db) == {"failed": 2}
