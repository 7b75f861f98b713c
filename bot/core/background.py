"""Work a request starts and must not wait for (a dashboard page that takes seconds
to build): one task per key at a time in this process, its failure logged, and
cancelled when the core stops. The work itself must be safe to repeat on
another replica, since nothing here is shared between processes."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)


class Background:
    def __init__(self) -> None:
        self._tasks: dict[str, asyncio.Task[None]] = {}

    def start(self, key: str, work: Callable[[], Awaitable[None]]) -> bool:
        """Run `work` unless work under `key` is already running; True if started."""
        if key in self._tasks:
            return False
        self._tasks[key] = asyncio.create_task(self._run(key, work), name=f"background:{key}")
        return True

    async def _run(self, key: str, work: Callable[[], Awaitable[None]]) -> None:
        try:
            await work()
        except Exception:
            log.exception("background work %s failed", key)
        finally:
            self._tasks.pop(key, None)

    async def idle(self) -> None:
        """Wait until no work is running (work may start more work)."""
        while self._tasks:
            await asyncio.gather(*self._tasks.values(), return_exceptions=True)

    async def stop(self) -> None:
        for task in self._tasks.values():
            task.cancel()
        await asyncio.gather(*self._tasks.values(), return_exceptions=True)
        self._tasks.clear()
