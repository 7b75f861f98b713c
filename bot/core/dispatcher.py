"""Deliver outbox rows: paced under each platform's limits, `Retry-After`
honoured, transient failures retried with backoff, each row marked sent once,
and rows leased by a dispatcher that died picked up again (DESIGN.md §3)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
import uuid
from collections.abc import Mapping
from dataclasses import replace
from datetime import timedelta
from typing import Any

from bot.core.outbox import payload_to_message, ref_from_dict, ref_to_dict
from bot.core.platform import (
    Message,
    MessageRef,
    Platform,
    PlatformError,
    RateLimit,
    RateLimited,
    TransientPlatformError,
)
from storage import outbox as outbox_rows
from storage.db import Database
from storage.models import OutboxMessage
from storage.types import utcnow

log = logging.getLogger(__name__)


class TokenBucket:
    """Paces calls to `per_second` with bursts of `burst`; a 429 pauses it."""

    def __init__(self, limit: RateLimit) -> None:
        self.rate = limit.per_second
        self.capacity = float(limit.burst)
        self.tokens = float(limit.burst)
        self.updated = time.monotonic()
        self.paused_until = 0.0
        self._lock = asyncio.Lock()

    async def take(self) -> None:
        async with self._lock:
            while True:
                now = time.monotonic()
                if now < self.paused_until:
                    await asyncio.sleep(self.paused_until - now)
                    continue
                self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
                self.updated = now
                if self.tokens >= 1:
                    self.tokens -= 1
                    return
                await asyncio.sleep((1 - self.tokens) / self.rate)

    def pause(self, seconds: float) -> None:
        self.paused_until = max(self.paused_until, time.monotonic() + seconds)
        self.tokens = 0.0


class OutboxDispatcher:
    def __init__(
        self,
        db: Database,
        platforms: Mapping[str, Platform],
        *,
        owner: str | None = None,
        batch_size: int = 200,
        concurrency: int = 64,
        lease: timedelta = timedelta(seconds=120),
        poll_interval: float = 0.5,
        max_attempts: int = 8,
        base_backoff: float = 1.0,
    ) -> None:
        self.db = db
        self.platforms = dict(platforms)
        self.owner = owner or f"dispatcher-{uuid.uuid4().hex[:12]}"
        self.batch_size = batch_size
        self.concurrency = concurrency
        self.lease = lease
        self.poll_interval = poll_interval
        self.max_attempts = max_attempts
        self.base_backoff = base_backoff
        self.buckets: dict[str, TokenBucket] = {}
        self._wake = asyncio.Event()
        self._stopping = False
        self._delivered: list[tuple[int, dict[str, Any]]] = []
        self.sent_count = 0

    def add_platform(self, platform: Platform) -> None:
        self.platforms[platform.name] = platform

    def wake(self) -> None:
        """Called after a transaction that queued messages commits."""
        self._wake.set()

    async def run(self) -> None:
        while not self._stopping:
            try:
                delivered = await self.deliver_batch()
            except Exception:
                log.exception("outbox delivery round failed; retrying shortly")
                delivered = 0
            if delivered == 0 and not self._stopping:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.poll_interval)
                self._wake.clear()

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()

    async def drain(self) -> None:
        """Deliver until nothing is owed (tests and one-shot commands); callers bound
        the wait with `asyncio.timeout`."""
        while await outbox_rows.has_pending(self.db, list(self.platforms)):
            if await self.deliver_batch() == 0:
                await asyncio.sleep(0.02)

    async def deliver_batch(self) -> int:
        """Lease one batch of due rows and deliver them; returns how many were handled."""
        if not self.platforms:
            return 0
        leased_at = time.monotonic()
        claimed = await outbox_rows.claim_due(
            self.db,
            owner=self.owner,
            platforms=list(self.platforms),
            limit=self.batch_size,
            lease=self.lease,
        )
        if not claimed:
            return 0
        lease_deadline = leased_at + self.lease.total_seconds() * 0.8
        slots = asyncio.Semaphore(self.concurrency)
        flusher = asyncio.create_task(self._flush_continuously())

        async def deliver(item: outbox_rows.ClaimedRow) -> None:
            async with slots:
                await self._deliver(item.row, item.parent_ref, lease_deadline)

        try:
            await asyncio.gather(*(deliver(item) for item in claimed))
        finally:
            flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await flusher
            await self._flush()
        return len(claimed)

    async def _flush_continuously(self) -> None:
        # Marks land within ~20 ms of delivery, so a crash re-sends at most that window.
        while True:
            await asyncio.sleep(0.02)
            # Shielded: cancelling a flush mid-transaction would abandon a SQLite
            # connection that still holds the write lock ("database is locked").
            await asyncio.shield(self._flush())

    async def _flush(self) -> None:
        if not self._delivered:
            return
        batch, self._delivered = self._delivered, []
        try:
            await outbox_rows.mark_sent(self.db, batch)
        except BaseException:
            # Not recorded (the database failed, or shutdown cancelled us): the next
            # flush must record these, or they would be re-sent when their lease ends.
            self._delivered[:0] = batch
            raise
        self.sent_count += len(batch)

    async def _deliver(
        self, row: OutboxMessage, parent_ref: dict[str, Any] | None, lease_deadline: float
    ) -> None:
        assert row.id is not None
        platform = self.platforms[row.platform]
        message = replace(payload_to_message(row.payload), idempotency_key=f"kindred-{row.id}")
        buckets = [
            self._bucket(key, limit)
            for key, limit in platform.rate_limits(row.kind, row.workspace_id, row.target)
        ]
        while True:
            for bucket in buckets:
                await bucket.take()
            if time.monotonic() > lease_deadline:
                # Our lease is about to lapse; let whoever leases it next send it.
                await outbox_rows.reschedule(
                    self.db, row.id, at=utcnow(), error="lease ran out", count_attempt=False
                )
                return
            try:
                ref = await self._send(platform, row, message, parent_ref)
            except RateLimited as limited:
                # Pausing the row's buckets holds back every call that shares them.
                for bucket in buckets:
                    bucket.pause(limited.retry_after)
                if not buckets:
                    await asyncio.sleep(limited.retry_after)
                continue
            except TransientPlatformError as error:
                await self._retry_later(row, error)
                return
            except PlatformError as error:
                log.warning("outbox row %s failed for good: %s", row.id, error)
                await outbox_rows.mark_failed(self.db, row.id, str(error))
                return
            except Exception as error:
                log.exception("outbox row %s: unexpected error", row.id)
                await self._retry_later(row, error)
                return
            self._delivered.append((row.id, ref_to_dict(ref)))
            return

    async def _retry_later(self, row: OutboxMessage, error: Exception) -> None:
        assert row.id is not None
        if row.attempts + 1 >= self.max_attempts:
            await outbox_rows.mark_failed(self.db, row.id, f"gave up: {error}")
            return
        delay = self.base_backoff * 2**row.attempts * (0.5 + random.random())
        await outbox_rows.reschedule(
            self.db, row.id, at=utcnow() + timedelta(seconds=delay), error=str(error)
        )

    def _bucket(self, key: str, limit: RateLimit) -> TokenBucket:
        bucket = self.buckets.get(key)
        if bucket is None:
            bucket = self.buckets[key] = TokenBucket(limit)
        return bucket

    async def _send(
        self,
        platform: Platform,
        row: OutboxMessage,
        message: Message,
        parent_ref: dict[str, Any] | None,
    ) -> MessageRef:
        workspace = row.workspace_id
        if row.kind == "dm":
            return await platform.send_dm(workspace, row.target, message)
        if row.kind == "post":
            return await platform.post_channel(workspace, row.target, message)
        if row.kind == "group":
            channel_id = row.opened_channel
            if channel_id is None:
                details = row.details
                channel_id = await platform.open_group(
                    workspace, details["user_ids"], details.get("channel_id"), details["title"]
                )
                assert row.id is not None
                await outbox_rows.record_opened_channel(self.db, row.id, channel_id)
                row.opened_channel = channel_id
            return await platform.post_channel(workspace, channel_id, message)
        ref_data = parent_ref if row.after_id is not None else row.details.get("ref")
        if ref_data is None:
            raise PlatformError(f"{row.kind} has no message to act on")
        ref = ref_from_dict(ref_data)
        if row.kind == "thread_reply":
            return await platform.reply_in_thread(workspace, ref, message)
        if row.kind == "update":
            return await platform.update_message(workspace, ref, message)
        raise PlatformError(f"unknown outbox kind '{row.kind}'")
