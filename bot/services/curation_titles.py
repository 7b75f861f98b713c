"""Fetch the title of a curated page: a short timeout, a size cap, HTML only, and
public addresses only unless told otherwise.

Never called on a handler's path: the curation feature stores an item with a
provisional title and fetches in the background (`bot.commands.curation`).

Server-side request forgery: links come from members, so by default the fetch
refuses loopback, private, link-local and other non-global addresses, checked
on every redirect hop, for IP literals and for every address a host name
resolves to (the connection only ever uses the checked addresses). Tests and
intranet deployments construct `TitleFetcher(allow_private=True)`.
"""

from __future__ import annotations

import asyncio
import codecs
import ipaddress
import logging
import re
import socket
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from html.parser import HTMLParser
from typing import Any, Protocol
from weakref import WeakKeyDictionary

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession
from yarl import URL

from bot.core.runtime import Runtime
from bot.domain.curation import clean_text
from storage import curation as store
from storage.db import Database

log = logging.getLogger(__name__)

REDIRECTS = frozenset({301, 302, 303, 307, 308})
HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})
MAX_STORED_TITLE = 300
_END_OF_HEAD = re.compile(rb"</head\s*>|<body[\s>]", re.IGNORECASE)
_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_.:\-]+)""", re.I)


class UnsafeTarget(Exception):
    """The link points somewhere the bot must not fetch from."""


@dataclass(frozen=True, slots=True)
class TitleResult:
    title: str | None
    # Worth another try later (timeout, connection trouble, 5xx) rather than final.
    retry: bool
    reason: str = ""


def is_public_address(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


class _PublicOnlyResolver(AbstractResolver):
    """Resolves with aiohttp's default resolver and drops non-public addresses, so
    the connector can only connect to addresses that passed the check."""

    def __init__(self) -> None:
        self._resolver = DefaultResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await self._resolver.resolve(host, port, family)
        public = [result for result in results if is_public_address(result["host"])]
        if not public:
            raise UnsafeTarget(f"{host} resolves only to non-public addresses")
        return public

    async def close(self) -> None:
        await self._resolver.close()


class TitleFetcher:
    def __init__(
        self,
        *,
        timeout: float = 3.0,
        max_bytes: int = 256 * 1024,
        allow_private: bool = False,
        max_redirects: int = 5,
    ) -> None:
        self.timeout = timeout
        self.max_bytes = max_bytes
        self.allow_private = allow_private
        self.max_redirects = max_redirects

    async def fetch(self, url: str) -> TitleResult:
        """The page's title (og:title first, then <title>); never raises."""
        try:
            async with asyncio.timeout(self.timeout):
                return await self._fetch(URL(url))
        except TimeoutError:
            return TitleResult(None, retry=True, reason=f"no answer within {self.timeout:g}s")
        except UnsafeTarget as refusal:
            return TitleResult(None, retry=False, reason=str(refusal))
        except (aiohttp.ClientError, OSError, ValueError) as error:
            return TitleResult(None, retry=True, reason=f"{error.__class__.__name__}: {error}")

    async def _fetch(self, url: URL) -> TitleResult:
        resolver = None if self.allow_private else _PublicOnlyResolver()
        connector = aiohttp.TCPConnector(resolver=resolver, limit=4)
        headers = {
            "User-Agent": "Mozilla/5.0 (compatible; Kindred link preview)",
            "Accept": "text/html,application/xhtml+xml;q=0.9,*/*;q=0.1",
        }
        async with aiohttp.ClientSession(connector=connector, headers=headers) as session:
            for _ in range(self.max_redirects + 1):
                self._check_target(url)
                async with session.get(url, allow_redirects=False) as response:
                    if response.status in REDIRECTS:
                        location = response.headers.get("Location")
                        if not location:
                            return TitleResult(None, retry=False, reason="redirect nowhere")
                        url = url.join(URL(location))
                        continue
                    if response.status == 429 or response.status >= 500:
                        return TitleResult(None, retry=True, reason=f"HTTP {response.status}")
                    if response.status >= 400:
                        return TitleResult(None, retry=False, reason=f"HTTP {response.status}")
                    if response.content_type not in HTML_TYPES:
                        reason = f"not an HTML page ({response.content_type})"
                        return TitleResult(None, retry=False, reason=reason)
                    head = await self._read_head(response)
                    title = extract_title(head, response.charset)
                    return TitleResult(title, retry=False, reason="" if title else "no title")
        return TitleResult(None, retry=False, reason="too many redirects")

    def _check_target(self, url: URL) -> None:
        if url.scheme not in {"http", "https"} or not url.host:
            raise UnsafeTarget(f"not an http(s) link: {url.scheme}:")
        if self.allow_private:
            return
        try:
            public = is_public_address(url.host)
        except ValueError:
            return  # a host name: the resolver checks what it resolves to
        if not public:
            raise UnsafeTarget(f"{url.host} is not a public address")

    async def _read_head(self, response: aiohttp.ClientResponse) -> bytes:
        """Read until the end of <head> or `max_bytes`, whichever comes first."""
        body = bytearray()
        async for chunk in response.content.iter_chunked(16 * 1024):
            searched_from = max(len(body) - 16, 0)
            body += chunk
            if len(body) >= self.max_bytes or _END_OF_HEAD.search(body, searched_from):
                break
        return bytes(body[: self.max_bytes])


class _TitleParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.title: list[str] = []
        self.meta: dict[str, str] = {}
        self._in_title = False
        self._title_done = False
        self._svg_depth = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "svg":
            self._svg_depth += 1
        elif tag == "title" and not self._title_done and self._svg_depth == 0:
            self._in_title = True
        elif tag == "meta":
            values = {name.lower(): value or "" for name, value in attrs}
            key = (values.get("property") or values.get("name") or "").lower()
            if key in {"og:title", "twitter:title"} and values.get("content"):
                self.meta.setdefault(key, values["content"])

    def handle_endtag(self, tag: str) -> None:
        if tag == "svg":
            self._svg_depth = max(self._svg_depth - 1, 0)
        elif tag == "title" and self._in_title:
            self._in_title = False
            self._title_done = True

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title.append(data)


def extract_title(head: bytes, charset: str | None = None) -> str | None:
    """og:title, twitter:title or <title>, decoded with the declared charset."""
    parser = _TitleParser()
    parser.feed(head.decode(_encoding(head, charset), errors="replace"))
    for candidate in (
        parser.meta.get("og:title"),
        parser.meta.get("twitter:title"),
        "".join(parser.title),
    ):
        cleaned = clean_text(candidate or "")
        if cleaned:
            return cleaned[:MAX_STORED_TITLE]
    return None


def _encoding(head: bytes, charset: str | None) -> str:
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    declared = charset
    if declared is None:
        match = _META_CHARSET.search(head[:4096])
        declared = match.group(1).decode("ascii") if match else None
    if declared:
        try:
            return codecs.lookup(declared).name
        except LookupError:
            pass
    return "utf-8"


# --- Background fetching -----------------------------------------------------------

MAX_ATTEMPTS = 3
RETRY_AFTER = timedelta(minutes=10)
BATCH = 16


class Fetcher(Protocol):
    async def fetch(self, url: str) -> TitleResult: ...


class TitleFetchQueue:
    """Fetches the titles of newly curated items outside any handler.

    Items are stored with a provisional title and `title_status='pending'`; right
    after the nominating transaction commits, a task fetches them, and a periodic
    tick picks up whatever is left (another replica's items, retries). A lease on
    each row keeps replicas from fetching the same page at once."""

    def __init__(
        self, db: Database, clock: Callable[[], datetime], fetcher: Fetcher | None = None
    ) -> None:
        self.db = db
        self.clock = clock
        self.fetcher: Fetcher = fetcher or TitleFetcher()
        # The lease must outlast a fetch, or a second replica could start the same one.
        self.lease = timedelta(minutes=1)
        self._tasks: set[asyncio.Task[Any]] = set()

    def fetch_after_commit(self, session: AsyncSession) -> None:
        """Start fetching once `session`'s transaction has committed (never before:
        the new item would not be visible yet, and a rollback means no item)."""
        loop = asyncio.get_running_loop()

        def committed(_session: object) -> None:
            task = loop.create_task(self._run_logged())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

        event.listen(session.sync_session, "after_commit", committed, once=True)

    async def _run_logged(self) -> None:
        try:
            await self.run_due()
        except Exception:
            log.exception("fetching titles failed; the next tick retries")

    async def run_due(self, now: datetime | None = None) -> int:
        """Fetch every due title (a batch); returns how many pages were tried."""
        now = now or self.clock()
        async with self.db.transaction() as session:
            leased = await store.lease_title_fetches(session, now, now + self.lease, BATCH)
        if not leased:
            return 0
        results = await asyncio.gather(*(self.fetcher.fetch(url) for _, url, _ in leased))
        retry_at = self.clock() + RETRY_AFTER
        async with self.db.transaction() as session:
            for (item_id, url, attempts), result in zip(leased, results, strict=True):
                if result.title is None:
                    log.info("no title for %s (attempt %d): %s", url, attempts, result.reason)
                again = result.retry and attempts < MAX_ATTEMPTS
                title = clean_text(result.title or "")[:MAX_STORED_TITLE] or None
                await store.record_title(
                    session, item_id, title, retry_at=retry_at if again else None
                )
        return len(leased)

    async def wait_idle(self) -> None:
        """Until the fetches started after commits have finished (tests, shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)


_QUEUES: WeakKeyDictionary[Runtime, TitleFetchQueue] = WeakKeyDictionary()


def title_fetches(runtime: Runtime) -> TitleFetchQueue:
    """The title fetch queue of one Kindred core (tests swap its `fetcher`)."""
    queue = _QUEUES.get(runtime)
    if queue is None:
        queue = _QUEUES[runtime] = TitleFetchQueue(runtime.db, runtime.clock)
    return queue
