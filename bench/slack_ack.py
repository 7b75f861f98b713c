"""How fast Kindred's Slack adapter acks a slash command (issue #4).

Signed `/kindred help` requests, 50 at a time, over real HTTP; time from sending
to the HTTP response (Slack's 3-second ack). Kindred's adapter and a bare bolt
AsyncApp that only acks run side by side in the same run, in alternating rounds.

Three processes, so nobody's CPU is billed to somebody else:
- this one sends the load and measures;
- the fake Slack (answers auth.test, receives the response_url posts: Slack's work);
- the servers under test: Kindred (SQLite, every feature registered, answering each
  help through the response_url after the ack) and the bare app.
Kindred's answers (the help text reaching the response_url) are timed too.

Run: python bench/slack_ack.py [--requests 400] [--rounds 5] [--concurrency 50]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import replace
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from aiohttp import ClientSession, TCPConnector, web  # noqa: E402
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request  # noqa: E402
from slack_bolt.app.async_app import AsyncApp  # noqa: E402
from slack_bolt.context.ack.async_ack import AsyncAck  # noqa: E402
from slack_sdk.web.async_client import AsyncWebClient  # noqa: E402

from bot.adapters.slack import EVENTS_PATH, serve_slack  # noqa: E402
from bot.core.app import Kindred  # noqa: E402
from bot.core.settings import Secret, Settings  # noqa: E402
from bot.core.web import start_web  # noqa: E402
from storage.db import Database  # noqa: E402
from tests.fakes.slack import (  # noqa: E402
    SIGNING_SECRET,
    FakeSlack,
    signature_headers,
    slash_command,
)

TEAM = "TBENCH"
TOKEN = "xoxb-bench"
USER = "UBENCH"
TARGET_RATIO = 1.5


# -- child processes ------------------------------------------------------------------


async def serve_fake() -> None:
    fake = FakeSlack()
    await fake.start()
    fake.add_workspace(TEAM, TOKEN, name="Bench")
    fake.add_user(TEAM, USER, "bench")
    fake.add_channel(TEAM, "CGENERAL", [USER])
    print(json.dumps({"port": fake.port}), flush=True)
    await _until_stdin_closes()
    await fake.close()


async def serve_apps(fake_url: str) -> None:
    """Kindred through `serve_slack` (what `kindred run --platform slack` runs) and
    the bare app, in one process."""
    with tempfile.TemporaryDirectory() as directory:
        db = Database(f"sqlite+aiosqlite:///{directory}/bench.db")
        await db.upgrade()
        settings = replace(
            Settings(),
            database_url=str(db.url),
            slack_bot_token=Secret(TOKEN),
            slack_signing_secret=Secret(SIGNING_SECRET),
            slack_api_url=f"{fake_url}/api/",
            http_host="127.0.0.1",
            http_port=_free_port(),
            log_level="WARNING",
        )
        served = asyncio.create_task(serve_slack(Kindred(settings, db), settings))
        bare_runner, bare_session = await _serve_bare_app(fake_url)
        await _until_healthy(settings.http_port)
        ports = {"kindred": settings.http_port, "bare": bare_runner.addresses[0][1]}
        print(json.dumps(ports), flush=True)
        await _until_stdin_closes()
        served.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await served
        await bare_runner.cleanup()
        await bare_session.close()
        await db.dispose()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def _until_healthy(port: int) -> None:
    async with ClientSession() as session:
        for _ in range(500):
            with contextlib.suppress(OSError):
                async with session.get(f"http://127.0.0.1:{port}/healthz") as health:
                    if health.status == 200:
                        return
            await asyncio.sleep(0.02)
    raise RuntimeError("Kindred's Slack adapter did not come up")


async def _serve_bare_app(fake_url: str) -> tuple[web.AppRunner, ClientSession]:
    """The baseline: bolt's AsyncApp with one listener that only acks, served the
    same way (aiohttp, /slack/events) as Kindred."""
    session = ClientSession()
    client = AsyncWebClient(
        token=TOKEN, base_url=f"{fake_url}/api/", session=session, retry_handlers=[]
    )
    bolt = AsyncApp(name="bare", signing_secret=SIGNING_SECRET, client=client)

    @bolt.command("/kindred")
    async def ack_only(ack: AsyncAck) -> None:
        await ack()

    async def dispatch(request: web.Request) -> web.Response:
        return await to_aiohttp_response(await bolt.async_dispatch(await to_bolt_request(request)))

    app = web.Application()
    app.router.add_post(EVENTS_PATH, dispatch)
    return await start_web(app, "127.0.0.1", 0), session


async def _until_stdin_closes() -> None:
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)


# -- the load --------------------------------------------------------------------------


async def send_round(
    session: ClientSession, url: str, fake_url: str, count: int, concurrency: int
) -> list[tuple[float, float, str]]:
    """`count` signed /kindred help requests, `concurrency` in flight; returns
    (seconds to the HTTP response, wall-clock send time, response_url key)."""
    slots = asyncio.Semaphore(concurrency)

    async def one() -> tuple[float, float, str]:
        key = uuid.uuid4().hex
        body = slash_command(
            "help", team_id=TEAM, user_id=USER, response_url=f"{fake_url}/respond/{key}"
        )
        headers = {**signature_headers(body), "Content-Type": "application/x-www-form-urlencoded"}
        async with slots:
            sent_at = time.time()
            started = time.perf_counter()
            async with session.post(url, data=body, headers=headers) as response:
                await response.read()
                if response.status != 200:
                    raise RuntimeError(f"{url} answered HTTP {response.status}")
            return time.perf_counter() - started, sent_at, key

    return await asyncio.gather(*(one() for _ in range(count)))


async def answered(session: ClientSession, fake_url: str, keys: set[str]) -> dict[str, float]:
    """Wait until every key got its response_url post; their arrival times."""
    deadline = time.monotonic() + 60
    while True:
        async with session.get(f"{fake_url}/respond") as response:
            times: dict[str, float] = await response.json()
        if keys <= times.keys():
            return {key: times[key] for key in keys}
        if time.monotonic() > deadline:
            raise RuntimeError(f"{len(keys - times.keys())} answers never arrived")
        await asyncio.sleep(0.1)


def percentiles(samples: list[float]) -> tuple[float, float, float]:
    ordered = sorted(samples)
    cuts = statistics.quantiles(ordered, n=100, method="inclusive")
    return cuts[49] * 1000, cuts[98] * 1000, ordered[-1] * 1000


async def measure(args: argparse.Namespace) -> dict[str, Any]:
    fake = _spawn("fake")
    fake_url = f"http://127.0.0.1:{json.loads(fake.stdout.readline())['port']}"  # type: ignore[union-attr]
    apps = _spawn("apps", "--fake-url", fake_url)
    ports = json.loads(apps.stdout.readline())  # type: ignore[union-attr]
    urls = {name: f"http://127.0.0.1:{ports[name]}{EVENTS_PATH}" for name in ("bare", "kindred")}
    latencies: dict[str, list[float]] = {"bare": [], "kindred": []}
    answers: list[float] = []
    try:
        async with ClientSession(connector=TCPConnector(limit=args.concurrency)) as session:
            for name in ("bare", "kindred"):  # warm up connections, caches, auth.test
                await send_round(session, urls[name], fake_url, 100, args.concurrency)
            for _ in range(args.rounds):
                for name in ("bare", "kindred"):
                    # The measuring process must not add its own collector pauses.
                    gc.collect()
                    gc.disable()
                    try:
                        results = await send_round(
                            session, urls[name], fake_url, args.requests, args.concurrency
                        )
                    finally:
                        gc.enable()
                    latencies[name] += [seconds for seconds, _, _ in results]
                    if name == "kindred":
                        # Let Kindred finish answering before the next round starts.
                        arrived = await answered(session, fake_url, {k for _, _, k in results})
                        answers += [arrived[key] - sent for _, sent, key in results]
    finally:
        for child in (apps, fake):
            child.stdin.close()  # type: ignore[union-attr]
            child.wait(timeout=30)
    return {"latencies": latencies, "answers": answers}


def _spawn(role: str, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, __file__, "--role", role, *extra],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )


def report(args: argparse.Namespace, results: dict[str, Any]) -> None:
    total = args.requests * args.rounds
    print(
        f"Slack ack latency: signed `/kindred help`, {args.concurrency} concurrent, "
        f"{total} requests per app in {args.rounds} alternating rounds (after a warm-up)"
    )
    print(f"{'':28}{'p50':>10}{'p99':>10}{'max':>10}")
    figures = {}
    for name, label in (("bare", "bare bolt AsyncApp (ack)"), ("kindred", "Kindred adapter")):
        p50, p99, worst = percentiles(results["latencies"][name])
        figures[name] = p99
        print(f"{label:28}{p50:>8.1f}ms{p99:>8.1f}ms{worst:>8.1f}ms")
    ratio = figures["kindred"] / figures["bare"]
    verdict = "meets" if ratio <= TARGET_RATIO else "MISSES"
    print(f"Kindred p99 / bare p99 = {ratio:.2f} ({verdict} the ≤ {TARGET_RATIO} target)")
    p50, p99, worst = percentiles(results["answers"])
    print(
        f"Kindred's help text reaching the response_url: p50 {p50:.1f} ms, "
        f"p99 {p99:.1f} ms, max {worst:.1f} ms (after the ack; a response_url stays valid "
        "for 30 minutes)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=400, help="requests per app per round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--role", choices=("fake", "apps"), help=argparse.SUPPRESS)
    parser.add_argument("--fake-url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.role == "fake":
        asyncio.run(serve_fake())
    elif args.role == "apps":
        asyncio.run(serve_apps(args.fake_url))
    else:
        report(args, asyncio.run(measure(args)))


if __name__ == "__main__":
    main()
