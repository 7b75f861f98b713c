"""The title fetch against a real HTTP server on 127.0.0.1: titles, charsets,
redirects, a server that never answers, an endless page, and the refusal to
reach private addresses unless allowed."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from bot.services.curation_titles import TitleFetcher, extract_title, is_public_address

ENDLESS_STARTED = web.AppKey("endless_started", asyncio.Event)
CHUNK = b"<p>" + b"filler " * 9000 + b"</p>\n"


async def endless_page(request: web.Request) -> web.StreamResponse:
    """A page that never ends (and never has a title): only a size cap stops a reader."""
    response = web.StreamResponse(headers={"Content-Type": "text/html; charset=utf-8"})
    await response.prepare(request)
    request.app[ENDLESS_STARTED].set()
    await response.write(b"<html><head><meta name='x' content='y'>")
    while True:
        await response.write(CHUNK)


async def huge_page_with_early_title(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": "text/html"})
    await response.prepare(request)
    await response.write(b"<html><head><title>Found early</title></head><body>")
    while True:
        await response.write(CHUNK)


async def slow_page(request: web.Request) -> web.Response:
    await asyncio.sleep(30)
    return web.Response(text="<title>Too late</title>", content_type="text/html")


def html(body: str | bytes, content_type: str = "text/html; charset=utf-8") -> web.Response:
    data = body.encode("utf-8") if isinstance(body, str) else body
    return web.Response(body=data, headers={"Content-Type": content_type})


async def title_far_down(request: web.Request) -> web.Response:
    padding = "<meta name='filler' content='" + "x" * 300_000 + "'>"
    return html(f"<html><head>{padding}<title>Too far</title></head></html>")


def routes() -> web.Application:
    app = web.Application()
    app[ENDLESS_STARTED] = asyncio.Event()
    pages = {
        "/plain": lambda _: html(
            "<!doctype html><html><head>\n<title>\n  Journey  mapping &amp; NPS\n</title>"
            "</head><body><svg><title>icon</title></svg></body></html>"
        ),
        "/og": lambda _: html(
            '<html><head><title>Site | Article</title><meta property="og:title" '
            'content="The Article Itself"></head></html>'
        ),
        "/latin1": lambda _: html(
            "<title>Café crème</title>".encode("iso-8859-1"), "text/html; charset=iso-8859-1"
        ),
        "/meta-charset": lambda _: html(
            '<head><meta charset="windows-1252"><title>Na\xefve “quotes”</title>'.encode("cp1252"),
            "text/html",
        ),
        "/svg-only": lambda _: html("<body><svg><title>icon</title></svg><p>hi</p></body>"),
        "/image": lambda _: web.Response(body=b"\x89PNG....", content_type="image/png"),
        "/missing": lambda _: web.Response(status=404, text="nope"),
        "/broken": lambda _: web.Response(status=503, text="down"),
    }
    redirects = {"/redirect": "/og", "/loop": "/loop", "/to-ftp": "ftp://127.0.0.1/file"}
    for path, target in redirects.items():

        async def redirect(request: web.Request, target: str = target) -> web.StreamResponse:
            raise web.HTTPFound(target)

        app.router.add_get(path, redirect)
    for path, page in pages.items():

        async def handler(request: web.Request, page=page) -> web.StreamResponse:  # type: ignore[no-untyped-def]
            return page(request)

        app.router.add_get(path, handler)
    app.router.add_get("/endless", endless_page)
    app.router.add_get("/early-title", huge_page_with_early_title)
    app.router.add_get("/slow", slow_page)
    app.router.add_get("/far", title_far_down)
    return app


@pytest.fixture
async def server() -> AsyncIterator[TestServer]:
    test_server = TestServer(routes(), host="127.0.0.1")
    await test_server.start_server()
    yield test_server
    await test_server.close()


@pytest.fixture
def fetcher() -> TitleFetcher:
    return TitleFetcher(allow_private=True, timeout=2.0, max_bytes=128 * 1024)


def url(server: TestServer, path: str) -> str:
    return str(server.make_url(path))


@pytest.mark.parametrize(
    ("path", "title"),
    [
        ("/plain", "Journey mapping & NPS"),
        ("/og", "The Article Itself"),
        ("/latin1", "Café crème"),
        ("/meta-charset", "Naïve “quotes”"),
        ("/redirect", "The Article Itself"),
    ],
)
async def test_titles(server: TestServer, fetcher: TitleFetcher, path: str, title: str) -> None:
    result = await fetcher.fetch(url(server, path))
    assert result.title == title
    assert not result.retry


@pytest.mark.parametrize(
    ("path", "retry", "reason"),
    [
        ("/svg-only", False, "no title"),
        ("/image", False, "not an HTML page"),
        ("/missing", False, "HTTP 404"),
        ("/broken", True, "HTTP 503"),
        ("/loop", False, "too many redirects"),
        ("/to-ftp", False, "not an http(s) link"),
    ],
)
async def test_pages_without_a_usable_title(
    server: TestServer, fetcher: TitleFetcher, path: str, retry: bool, reason: str
) -> None:
    result = await fetcher.fetch(url(server, path))
    assert result.title is None
    assert result.retry is retry
    assert reason in result.reason


async def test_a_server_that_never_answers_times_out_quickly(server: TestServer) -> None:
    started = time.monotonic()
    result = await TitleFetcher(allow_private=True, timeout=0.3).fetch(url(server, "/slow"))
    elapsed = time.monotonic() - started
    assert result.title is None and result.retry
    assert "no answer within 0.3s" in result.reason
    assert elapsed < 1.5


async def test_an_endless_page_is_read_only_up_to_the_cap(
    server: TestServer, fetcher: TitleFetcher
) -> None:
    # Reading everything would never finish: returning at all (and not by timing out)
    # shows the cap stopped the read.
    started = time.monotonic()
    result = await fetcher.fetch(url(server, "/endless"))
    assert server.app is not None and server.app[ENDLESS_STARTED].is_set()
    assert result.title is None
    assert result.reason == "no title"
    assert time.monotonic() - started < 2.0


async def test_a_huge_page_with_an_early_title_stops_at_the_head(
    server: TestServer, fetcher: TitleFetcher
) -> None:
    result = await fetcher.fetch(url(server, "/early-title"))
    assert result.title == "Found early"


async def test_a_title_beyond_the_cap_is_not_read(server: TestServer) -> None:
    capped = TitleFetcher(allow_private=True, max_bytes=64 * 1024)
    assert (await capped.fetch(url(server, "/far"))).title is None
    roomy = TitleFetcher(allow_private=True, max_bytes=512 * 1024)
    assert (await roomy.fetch(url(server, "/far"))).title == "Too far"


async def test_private_addresses_are_refused_by_default(server: TestServer) -> None:
    guarded = TitleFetcher(timeout=2.0)
    by_address = await guarded.fetch(url(server, "/plain"))
    assert by_address.title is None and not by_address.retry
    assert "127.0.0.1 is not a public address" in by_address.reason
    by_name = await guarded.fetch(f"http://localhost:{server.port}/plain")
    assert by_name.title is None and not by_name.retry
    assert "localhost resolves only to non-public addresses" in by_name.reason


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("127.0.0.1", False),
        ("10.1.2.3", False),
        ("172.16.0.9", False),
        ("192.168.1.1", False),
        ("169.254.169.254", False),
        ("100.64.0.1", False),
        ("0.0.0.0", False),
        ("::1", False),
        ("fe80::1%eth0", False),
        ("fd00::1", False),
        ("::ffff:127.0.0.1", False),
        ("224.0.0.1", False),
        ("93.184.215.14", True),
        ("2606:4700::1111", True),
    ],
)
def test_public_addresses(address: str, public: bool) -> None:
    assert is_public_address(address) is public


def test_title_extraction_prefers_og_then_twitter_then_title() -> None:
    assert extract_title(b"<meta name='twitter:title' content='Tw'><title>T</title>") == "Tw"
    assert extract_title(b"<title>\x00Ctrl\x07 chars</title>") == "Ctrl chars"
    assert extract_title("\ufeff<title>BOM</title>".encode()) == "BOM"
    assert extract_title(b"<title>x</title>", "no-such-charset") == "x"
    assert extract_title(b"<p>none</p>") is None
