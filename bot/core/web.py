"""Kindred's HTTP server: health, feature routes (feeds) and, when Slack runs in
HTTP mode, the Slack endpoints the adapter adds to the same application."""

from __future__ import annotations

import functools

from aiohttp import web

from bot.core.app import Kindred

KINDRED_KEY = web.AppKey("kindred", Kindred)


def web_application(kindred: Kindred) -> web.Application:
    app = web.Application()
    app[KINDRED_KEY] = kindred
    app.router.add_get("/healthz", health)
    for (method, path), handler in kindred.registry.routes.items():
        app.router.add_route(method, path, functools.partial(handler, kindred))
    return app


async def health(request: web.Request) -> web.Response:
    kindred = request.app[KINDRED_KEY]
    if await kindred.db.ping():
        return web.json_response({"status": "ok"})
    return web.json_response({"status": "database unreachable"}, status=503)


async def start_web(app: web.Application, host: str, port: int) -> web.AppRunner:
    """Start serving; the caller keeps the runner and calls `cleanup()` to stop."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner
