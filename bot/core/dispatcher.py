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
from datetime import datetime, timedelta
from typing import Any, Protocol, runtime_checkable

from bot.core.outbox import (
    calendar_event_from_dict,
    payload_to_message,
    ref_from_dict,
    ref_to_dict,
)
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

# A dispatcher renews the leases of the rows it holds every LEASE / RENEWALS while
# it sends, so a live one keeps even a long, paced batch, and a dead one's rows
# are taken over soon after LEASE (plus a poll).
LEASE = timedelta(seconds=20)
RENEWALS = 4


@runtime_checkable
class FindsEarlierSends(Protocol):
    """A platform without an enforced idempotency key (Slack) that can look for a
    message it sent with one: the dispatcher asks it about rows leased before, so a
    crash between a send and its mark does not post the message again."""

    async def find_sent(
        self,
        workspace_id: str,
        kind: str,
        target: str,
        parent: MessageRef | None,
        key: str,
        since: datetime,
    ) -> MessageRef | None: ...


class _Held:
    """The rows one batch holds, and until when (locally) their lease is sure."""

    def __init__(self, ids: set[int], lease: timedelta) -> None:
        self.ids = ids
        # A margin under the database's lease, for clock differences and the time
        # a send takes once started.
        self.margin = lease.total_seconds() * 0.8
        self.until = time.monotonic() + self.margin
        # One renewal at a time: the heartbeat, or a send that found the lease stale.
        self.renewing = asyncio.Lock()

    def holds(self, row_id: int) -> bool:
        return row_id in self.ids and time.monotonic() < self.until


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
        lease: timedelta = LEASE,
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
        self._held: _Held | None = None
        self.sent_count = 0
        # Rows found already posted (by a dispatcher that died before marking them).
        self.recovered_count = 0

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
        claimed = await outbox_rows.claim_due(
            self.db,
            owner=self.owner,
            platforms=list(self.platforms),
            limit=self.batch_size,
            lease=self.lease,
        )
        if not claimed:
            return 0
        held = self._held = _Held({item.row.id for item in claimed if item.row.id}, self.lease)
        slots = asyncio.Semaphore(self.concurrency)
        flusher = asyncio.create_task(self._flush_continuously())
        heartbeat = asyncio.create_task(self._renew_continuously(held))

        async def deliver(item: outbox_rows.ClaimedRow) -> None:
            async with slots:
                await self._deliver(item, held)

        try:
            await asyncio.gather(*(deliver(item) for item in claimed))
        finally:
            for task in (flusher, heartbeat):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await self._flush()
            self._held = None
        return len(claimed)

    async def _renew_continuously(self, held: _Held) -> None:
        interval = self.lease.total_seconds() / RENEWALS
        while held.ids:
            await asyncio.sleep(interval)
            try:
                await self._renew(held)
            except Exception:
                # Sending goes on until the last sure lease runs out, then stops.
                log.exception("could not renew outbox leases; they lapse in %.0f s", held.margin)

    async def _renew(self, held: _Held) -> None:
        async with held.renewing:
            started = time.monotonic()
            # Shielded for the same reason as the flush.
            renewed = await asyncio.shield(
                outbox_rows.renew(self.db, owner=self.owner, ids=held.ids, lease=self.lease)
            )
            lost = held.ids - renewed
            if lost:
                log.warning("outbox rows %s were taken over; not sending them", sorted(lost))
            held.ids &= renewed
            held.until = started + held.margin

    async def _still_held(self, held: _Held, row_id: int) -> bool:
        """Whether the row may be sent now. When the local deadline has passed (a
        heartbeat came late: a busy machine, a slow database), the database says."""
        if held.holds(row_id):
            return True
        if row_id not in held.ids:
            return False
        try:
            await self._renew(held)
        except Exception:
            log.exception("could not renew outbox leases; leaving row %s to its next lease", row_id)
            return False
        return held.holds(row_id)

    def _release(self, row_id: int) -> None:
        if self._held is not None:
            self._held.ids.discard(row_id)

    async def _flush_continuously(self) -> None:
        # Marks land within ~20 ms of delivery; a crash in that window is covered by
        # the next lease looking for the message before sending it (FindsEarlierSends).
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
        for row_id, _ in batch:
            self._release(row_id)

    async def _deliver(self, item: outbox_rows.ClaimedRow, held: _Held) -> None:
        row = item.row
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
            if not await self._still_held(held, row.id):
                # Taken over by another dispatcher, or our lease cannot be renewed:
                # whoever leases it next sends it (and first looks for it if needed).
                held.ids.discard(row.id)
                return
            try:
                ref = await self._send(platform, item, message)
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
                self._release(row.id)
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
            self._release(row.id)
            return
        delay = self.base_backoff * 2**row.attempts * (0.5 + random.random())
        await outbox_rows.reschedule(
            self.db, row.id, at=utcnow() + timedelta(seconds=delay), error=str(error)
        )
        self._release(row.id)

    def _bucket(self, key: str, limit: RateLimit) -> TokenBucket:
        bucket = self.buckets.get(key)
        if bucket is None:
            bucket = self.buckets[key] = TokenBucket(limit)
        return bucket

    async def _send(
        self, platform: Platform, item: outbox_rows.ClaimedRow, message: Message
    ) -> MessageRef:
        row, parent_ref = item.row, item.parent_ref
        workspace = row.workspace_id
        if item.leased_before is not None and isinstance(platform, FindsEarlierSends):
            try:
                earlier = await self._earlier_copy(platform, item, message)
            except TransientPlatformError:
                raise
            except PlatformError as error:
                # The history cannot be read (a scope not granted, a channel Kindred
                # is not in): a possible second copy beats a lost message.
                log.warning("outbox row %s: cannot look for a first copy: %s", row.id, error)
                earlier = None
            if earlier is not None:
                log.info("outbox row %s was already posted; recording it, not re-sending", row.id)
                self.recovered_count += 1
                return earlier
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
        if row.kind == "role":
            details = row.details
            await platform.set_role(
                workspace, row.target, details["role"], granted=bool(details["granted"])
            )
            # A role change has no message; the member it changed stands in for one.
            return MessageRef(channel_id="", message_id=f"role:{row.target}")
        if row.kind == "calendar_event":
            # The row it comes after created the event (or last edited it): its id.
            existing = ref_from_dict(parent_ref).message_id if parent_ref is not None else None
            event = calendar_event_from_dict(row.details["event"])
            return await platform.save_scheduled_event(workspace, event, existing)
        ref = self._ref_to_act_on(row, parent_ref)
        if row.kind == "calendar_cancel":
            return await platform.cancel_scheduled_event(workspace, ref.message_id)
        if row.kind == "thread_reply":
            return await platform.reply_in_thread(workspace, ref, message)
        if row.kind == "update":
            return await platform.update_message(workspace, ref, message)
        raise PlatformError(f"unknown outbox kind '{row.kind}'")

    async def _earlier_copy(
        self, platform: FindsEarlierSends, item: outbox_rows.ClaimedRow, message: Message
    ) -> MessageRef | None:
        """The copy a previous lease may have posted. Updates need no search (editing
        twice leaves one message), nor do files (they carry no metadata), nor a group
        whose conversation was never opened (it is opened before its post)."""
        row, since, key = item.row, item.leased_before, message.idempotency_key
        assert since is not None and key is not None
        if message.attachment is not None:
            return None
        if row.kind in {"dm", "post"}:
            return await platform.find_sent(
                row.workspace_id, row.kind, row.target, None, key, since
            )
        if row.kind == "group" and row.opened_channel is not None:
            return await platform.find_sent(
                row.workspace_id, "post", row.opened_channel, None, key, since
            )
        if row.kind == "thread_reply":
            parent = self._ref_to_act_on(row, item.parent_ref)
            return await platform.find_sent(row.workspace_id, row.kind, "", parent, key, since)
        return None

    @staticmethod
    def _ref_to_act_on(row: OutboxMessage, parent_ref: dict[str, Any] | None) -> MessageRef:
        ref_data = parent_ref if row.after_id is not None else row.details.get("ref")
        if ref_data is None:
            raise PlatformError(f"{row.kind} has no message to act on")
        return ref_from_dict(ref_data)
