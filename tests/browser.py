"""A real headless Chromium driven over the DevTools protocol (a websocket, with
aiohttp): enough to open a page, read it, click, download and take a screenshot,
with no browser-automation dependency. Debian's `chromium` package provides the
browser; tests that need it are skipped, saying why, when it is absent (CI
installs it: .ci/run)."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import re
import shutil
import tempfile
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
_LISTENING = re.compile(r"DevTools listening on (ws://\S+)")
# An awaited event: its method, the tab it comes from (None: any), a test of its
# parameters, and the future it resolves.
Waiting = tuple[
    str, "str | None", "Callable[[dict[str, Any]], bool]", "asyncio.Future[dict[str, Any]]"
]


class Page:
    """One tab: commands go to it through the browser's websocket (flat sessions)."""

    def __init__(self, browser: Browser, session_id: str) -> None:
        self.browser = browser
        self.session_id = session_id

    async def send(self, method: str, **params: Any) -> dict[str, Any]:
        return await self.browser.send(method, session_id=self.session_id, **params)

    async def open(self, url: str) -> int:
        """Navigate and wait for the load event; returns the document's HTTP status."""
        loaded = self.browser.expect("Page.loadEventFired", self.session_id)
        response = self.browser.expect(
            "Network.responseReceived",
            self.session_id,
            lambda event: event.get("type") == "Document",
        )
        await self.send("Page.navigate", url=url)
        status = int((await response)["response"]["status"])
        await loaded
        return status

    async def evaluate(self, expression: str) -> Any:
        result = await self.send(
            "Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True
        )
        if "exceptionDetails" in result:
            raise AssertionError(f"{expression!r} failed: {result['exceptionDetails']}")
        return result["result"].get("value")

    async def screenshot(self) -> bytes:
        """The whole page as a PNG."""
        shot = await self.send("Page.captureScreenshot", format="png", captureBeyondViewport=True)
        return base64.b64decode(shot["data"])


class Browser:
    def __init__(self, socket: aiohttp.ClientWebSocketResponse) -> None:
        self.socket = socket
        self._ids = itertools.count(1)
        self._answers: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._waiting: list[Waiting] = []
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for frame in self.socket:
            message = json.loads(frame.data)
            if "id" in message:
                future = self._answers.pop(message["id"])
                if "error" in message:
                    future.set_exception(AssertionError(str(message["error"])))
                else:
                    future.set_result(message.get("result", {}))
                continue
            params = message.get("params", {})
            for waiting in list(self._waiting):
                method, session_id, wanted, future = waiting
                if (
                    message.get("method") == method
                    and session_id in (None, message.get("sessionId"))
                    and wanted(params)
                ):
                    self._waiting.remove(waiting)
                    if not future.done():
                        future.set_result(params)

    def expect(
        self,
        method: str,
        session_id: str | None = None,
        wanted: Callable[[dict[str, Any]], bool] = lambda _: True,
    ) -> asyncio.Future[dict[str, Any]]:
        """A future for the next `method` event that is `wanted` (registered before
        the action that causes it)."""
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiting.append((method, session_id, wanted, future))
        return future

    async def send(
        self, method: str, session_id: str | None = None, **params: Any
    ) -> dict[str, Any]:
        message_id = next(self._ids)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._answers[message_id] = future
        message: dict[str, Any] = {"id": message_id, "method": method, "params": params}
        if session_id is not None:
            message["sessionId"] = session_id
        await self.socket.send_str(json.dumps(message))
        async with asyncio.timeout(30):
            return await future

    async def new_page(self, width: int = 1280, height: int = 900) -> Page:
        target = await self.send("Target.createTarget", url="about:blank")
        attached = await self.send(
            "Target.attachToTarget", targetId=target["targetId"], flatten=True
        )
        page = Page(self, attached["sessionId"])
        await page.send("Page.enable")
        await page.send("Network.enable")
        await page.send(
            "Emulation.setDeviceMetricsOverride",
            width=width,
            height=height,
            deviceScaleFactor=1,
            mobile=False,
        )
        return page

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.send("Browser.close")
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader


async def _discard(stream: asyncio.StreamReader) -> None:
    while await stream.read(65536):
        pass


@contextlib.asynccontextmanager
async def chromium(downloads: Path) -> AsyncIterator[Browser]:
    """A headless Chromium with its own profile, downloading into `downloads`."""
    assert CHROMIUM is not None, "no chromium on PATH"
    profile = tempfile.mkdtemp(prefix="kindred-chromium-")
    process = await asyncio.create_subprocess_exec(
        CHROMIUM,
        "--headless=new",
        "--no-sandbox",  # tests run as root in CI containers
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--no-default-browser-check",
        "--remote-debugging-port=0",
        f"--user-data-dir={profile}",
        "about:blank",
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    session = aiohttp.ClientSession()
    try:
        assert process.stderr is not None
        url = None
        async with asyncio.timeout(60):
            while url is None:
                line = (await process.stderr.readline()).decode()
                if not line:
                    raise AssertionError("chromium exited before it listened")
                if match := _LISTENING.search(line):
                    url = match.group(1)
        # Chromium keeps logging; an undrained pipe would block it once full.
        drain = asyncio.create_task(_discard(process.stderr))
        socket = await session.ws_connect(url, max_msg_size=0)
        browser = Browser(socket)
        await browser.send(
            "Browser.setDownloadBehavior",
            behavior="allow",
            downloadPath=str(downloads),
            eventsEnabled=True,
        )
        try:
            yield browser
        finally:
            await browser.close()
            drain.cancel()
    finally:
        await session.close()
        if process.returncode is None:
            process.kill()
        await process.wait()
        shutil.rmtree(profile, ignore_errors=True)
