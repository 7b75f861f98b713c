"""APScheduler's AsyncIOScheduler, wrapped so every scheduled run claims its
occurrence first (exactly once across replicas and restarts, DESIGN.md §3)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from datetime import datetime, timedelta

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy.ext.asyncio import AsyncSession

from storage import claims
from storage.db import Database

log = logging.getLogger(__name__)

ClaimedWork = Callable[[AsyncSession, datetime], Awaitable[None]]
Tick = Callable[[datetime], Awaitable[object]]
# A tick's answer to "when after `now` do you next have work?" (None: nothing planned).
NextDue = Callable[[datetime], Awaitable[datetime | None]]

# How far back a trigger's most recent fire time is looked for: a replica that
# was down at the scheduled moment still runs the occurrence when it comes back.
CATCH_UP_WINDOW = timedelta(hours=12)

# How long `shutdown` lets a job that is mid-transaction finish before cancelling it.
SHUTDOWN_GRACE_SECONDS = 30.0


def latest_occurrence(trigger: BaseTrigger, now: datetime) -> datetime | None:
    """The most recent scheduled fire time at or before `now` (within the window)."""
    start = now - CATCH_UP_WINDOW
    fire = trigger.get_next_fire_time(None, start)
    latest = None
    while fire is not None and fire <= now:
        latest = fire
        fire = trigger.get_next_fire_time(fire, fire + timedelta(microseconds=1))
    return latest


async def run_once(
    db: Database, job: str, occurrence: datetime, owner: str, work: ClaimedWork
) -> bool:
    """Claim `(job, occurrence)` and do the work in the same transaction.

    Claim, work and the work's outbox rows commit together, so a crash before the
    commit leaves nothing behind (the occurrence can be claimed again) and a crash
    after it leaves the finished work for the dispatcher to deliver."""
    key = occurrence.isoformat()
    async with db.transaction() as session:
        if not await claims.claim(session, job, key, owner):
            return False
        await work(session, occurrence)
        await claims.finish(session, job, key)
    return True


class JobScheduler:
    def __init__(
        self,
        db: Database,
        owner: str,
        clock: Callable[[], datetime],
        on_committed: Callable[[], None] = lambda: None,
    ) -> None:
        self.db = db
        self.owner = owner
        self.clock = clock
        self.on_committed = on_committed
        self.scheduler = AsyncIOScheduler()
        self.triggers: dict[str, tuple[BaseTrigger, ClaimedWork]] = {}
        self.ticks: dict[str, Tick] = {}
        # Occurrences this replica ran, so callers can tell whether anything happened.
        self.runs = 0
        # Runs APScheduler started: `shutdown` waits for them, so none outlives the
        # database it writes to (or the event loop it runs on).
        self._running: set[asyncio.Task[object]] = set()
        self._stopping = False

    def schedule(self, job: str, trigger: BaseTrigger, work: ClaimedWork) -> None:
        """(Re)schedule `job`; each of its occurrences runs exactly once."""
        self.triggers[job] = (trigger, work)
        self.scheduler.add_job(
            self._scheduled_fire,
            trigger,
            args=[job],
            id=job,
            replace_existing=True,
            coalesce=True,
            misfire_grace_time=int(CATCH_UP_WINDOW.total_seconds()),
            max_instances=1,
        )

    def every(self, name: str, seconds: float, tick: Tick) -> None:
        """Call `tick(now)` periodically on every replica (not claimed).

        Features whose schedules live in the database (one per program, created at
        run time, possibly on another replica) use a tick that works out which
        occurrences are due and runs each through `run_claimed`."""
        self.ticks[name] = tick
        self.scheduler.add_job(
            self._scheduled_tick,
            IntervalTrigger(seconds=seconds),
            args=[name],
            id=name,
            replace_existing=True,
            coalesce=True,
            max_instances=1,
        )

    async def run_claimed(self, job: str, occurrence: datetime, work: ClaimedWork) -> bool:
        """Do `work` for this occurrence unless a replica already did; errors are logged
        and the occurrence stays unclaimed, so the next tick retries it."""
        try:
            ran = await run_once(self.db, job, occurrence, self.owner, work)
        except Exception:
            log.exception("job %s (%s) failed; it will be retried", job, occurrence)
            return False
        if ran:
            log.info("job %s ran for %s", job, occurrence.isoformat())
            self.runs += 1
            self.on_committed()
        return ran

    async def claim_in(self, session: AsyncSession, job: str, occurrence: datetime) -> bool:
        """Claim `(job, occurrence)` inside the caller's transaction and mark it done
        there too: the claim commits with the caller's work or rolls back with it."""
        key = occurrence.isoformat()
        if not await claims.claim(session, job, key, self.owner):
            return False
        await claims.finish(session, job, key)
        return True

    async def fire(self, job: str) -> bool:
        """Run the job's latest due occurrence, if no replica has claimed it yet."""
        scheduled = self.triggers.get(job)
        if scheduled is None:
            return False
        trigger, work = scheduled
        occurrence = latest_occurrence(trigger, self.clock() + timedelta(seconds=1))
        if occurrence is None:
            return False
        return await self.run_claimed(job, occurrence, work)

    async def _tick(self, name: str) -> None:
        tick = self.ticks.get(name)
        if tick is None:
            return
        try:
            await tick(self.clock())
        except Exception:
            log.exception("periodic %s failed; it runs again next period", name)

    async def _scheduled_fire(self, job: str) -> None:
        await self._tracked(self.fire(job))

    async def _scheduled_tick(self, name: str) -> None:
        await self._tracked(self._tick(name))

    async def _tracked(self, work: Coroutine[object, object, object]) -> None:
        """Run one APScheduler-started run as a task of our own.

        APScheduler's shutdown cancels the runs it started and cannot wait for them;
        a run cancelled mid-transaction can leave aiosqlite's worker thread waiting
        on a connection the test (or `kindred run`) is disposing, and the event
        loop's final task cancellation then never returns. The shield keeps the
        work from being cancelled under a transaction; `shutdown` awaits it."""
        if self._stopping:
            work.close()
            return
        task: asyncio.Task[object] = asyncio.ensure_future(work)
        self._running.add(task)
        task.add_done_callback(self._running.discard)
        await asyncio.shield(task)

    async def catch_up(self) -> None:
        """Run everything due now: missed occurrences (already-claimed ones are skipped)
        and every tick. Called at start, and by tests and the console's `:advance`."""
        for job in list(self.triggers):
            await self.fire(job)
        for name in list(self.ticks):
            await self._tick(name)

    async def next_due(
        self, now: datetime, hooks: Mapping[str, NextDue], unhooked: timedelta
    ) -> datetime | None:
        """The earliest moment after `now` at which a scheduled job or a tick has work
        (None: nothing is planned), so a simulated clock can jump straight there.

        `hooks` are the ticks' `next_due` answers by tick name. A tick without one
        (or whose answer failed) may have work at any time: it counts as due
        `unhooked` after `now`, so a caller stepping by this never skips its work
        by more than that."""
        after = now + timedelta(microseconds=1)
        candidates = []
        for trigger, _ in self.triggers.values():
            fire = trigger.get_next_fire_time(None, after)
            if fire is not None:
                candidates.append(fire)
        for name in self.ticks:
            hook = hooks.get(name)
            if hook is None:
                candidates.append(now + unhooked)
                continue
            try:
                due = await hook(now)
            except Exception:
                log.exception("next due time of %s failed; stepping instead", name)
                candidates.append(now + unhooked)
                continue
            if due is not None and due > now:
                candidates.append(due)
        return min(candidates, default=None)

    def start(self) -> None:
        self._stopping = False
        if not self.scheduler.running:
            self.scheduler.start()

    async def shutdown(self, grace: float = SHUTDOWN_GRACE_SECONDS) -> None:
        """Stop firing, wait for the runs in flight (cancelling any still going after
        `grace` seconds), then stop APScheduler: no run outlives the scheduler."""
        self._stopping = True
        running = list(self._running)
        if running:
            _, late = await asyncio.wait(running, timeout=grace)
            for task in late:
                log.warning("a scheduled run did not finish within %.0f s; cancelling it", grace)
                task.cancel()
            await asyncio.gather(*running, return_exceptions=True)
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)
            # AsyncIOScheduler stops in a callback queued on this loop: yield once so
            # it runs, so `start` may follow `shutdown` and no timer fires after it.
            await asyncio.sleep(0)
