"""Work started in the background: once per key at a time, failures logged and
forgotten, cancelled at shutdown."""

from __future__ import annotations

import asyncio

import pytest

from bot.core.background import Background


async def test_one_key_runs_once_at_a_time_and_again_once_done() -> None:
    background = Background()
    release = asyncio.Event()
    runs: list[str] = []

    async def work() -> None:
        runs.append("started")
        await release.wait()

    assert background.start("page:month", work)
    assert not background.start("page:month", work)
    assert background.start("page:week", work)
    await asyncio.sleep(0)
    assert runs == ["started", "started"]
    release.set()
    await background.idle()
    assert background.start("page:month", work)
    await background.idle()
    assert runs == ["started"] * 3


async def test_a_failure_is_logged_and_frees_its_key(caplog: pytest.LogCaptureFixture) -> None:
    background = Background()

    async def failing() -> None:
        raise RuntimeError("database went away")

    assert background.start("page:month", failing)
    await background.idle()
    assert "background work page:month failed" in caplog.text
    assert "database went away" in caplog.text
    assert background.start("page:month", failing)
    await background.idle()


async def test_stop_cancels_what_is_still_running() -> None:
    background = Background()
    cancelled = asyncio.Event()

    async def endless() -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise

    background.start("page:quarter", endless)
    await asyncio.sleep(0)
    await background.stop()
    assert cancelled.is_set()
    assert background.start("page:quarter", endless)
    await background.stop()
