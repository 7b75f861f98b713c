"""The dashboard page: the report's figures and charts on one web page served by
Kindred's own HTTP server, behind a link signed for one community that expires
after an hour, with a period selector and each table as CSV. The page shows
aggregates only, never a user id; member names (newcomers yet to start, the most
active members) only when the organiser asked for them, and the link's signature
covers that choice.

A view never builds the report (seconds in a large community): it shows the
stored page, and when that is missing or old, starts a rebuild in the background
and says so."""

from __future__ import annotations

import base64
import csv
import hashlib
import hmac
import io
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from aiohttp import web
from jinja2 import StrictUndefined
from jinja2.sandbox import SandboxedEnvironment

from bot.core.errors import CommandError
from bot.core.runtime import Runtime
from bot.core.settings import Settings
from bot.domain.health import PERIODS, RETENTION_WEEKS, Report, csat
from bot.services.health import (
    Drawn,
    draw,
    figure_labels,
    shown,
    shown_change,
    suggestion_lines,
)
from storage import health as store
from storage.members import members_by_user_ids

PAGE_PATH = "/health/dashboard"
CSV_PATH = "/health/dashboard.csv"
LINK_LIFETIME = timedelta(hours=1)
# Tables with member names: built, stored and shown only for a link that asked.
NAMED_TABLES = ("newcomers", "contributors")
TABLES = ("figures", "after_session", "activation", "retention", "daily", *NAMED_TABLES)
TOP_CONTRIBUTORS = 10
CONTENT_SECURITY = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"
# How soon the page that says it is being prepared asks again.
PREPARING_RELOAD_SECONDS = 5


def _signature(secret: str, community: str, expires: int, names: bool) -> str:
    message = f"{community}|{expires}{'|names' if names else ''}".encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def signed_query(
    settings: Settings, community: str, expires: int, period: str, *, names: bool = False
) -> dict[str, str]:
    query = {
        "c": community,
        "e": str(expires),
        "p": period,
        "s": _signature(settings.dashboard_secret.value, community, expires, names),
    }
    if names:
        query["n"] = "1"
    return query


def signed_link(
    settings: Settings,
    platform: str,
    workspace_id: str,
    now: datetime,
    period: str,
    *,
    names: bool = False,
) -> str:
    """A link to the community's page, valid for LINK_LIFETIME from `now`; with
    `names`, the page lists members by name."""
    if not settings.public_url or not settings.dashboard_secret:
        raise CommandError(
            "The dashboard page is not set up: the operator sets KINDRED_PUBLIC_URL (where "
            "Kindred's web server is reached) and KINDRED_DASHBOARD_SECRET (32 characters or "
            "more) and restarts Kindred."
        )
    expires = int((now + LINK_LIFETIME).timestamp())
    query = signed_query(settings, f"{platform}:{workspace_id}", expires, period, names=names)
    return f"{settings.public_url.rstrip('/')}{PAGE_PATH}?{urlencode(query)}"


@dataclass(frozen=True, slots=True)
class Link:
    """What a valid link was signed for, and its signed parameters (which the
    period selector and CSV links carry on)."""

    platform: str
    workspace_id: str
    names: bool
    signed: dict[str, str]


def verified(runtime: Runtime, request: web.Request) -> Link:
    """The link a request carries; 403 for a missing, tampered or expired one."""
    settings = runtime.settings
    query = request.query
    community, expires, signature = query.get("c", ""), query.get("e", ""), query.get("s", "")
    names = query.get("n") == "1"
    if not settings.dashboard_secret or not expires.isdigit() or ":" not in community:
        raise web.HTTPForbidden(text="This link is not valid. Ask Kindred for a new one.")
    expected = _signature(settings.dashboard_secret.value, community, int(expires), names)
    if not hmac.compare_digest(expected.encode(), signature.encode()):
        raise web.HTTPForbidden(text="This link is not valid. Ask Kindred for a new one.")
    if runtime.clock().timestamp() >= int(expires):
        raise web.HTTPForbidden(text="This link has expired. Ask Kindred for a new one.")
    platform, workspace_id = community.split(":", 1)
    signed = {"c": community, "e": expires, "s": signature, **({"n": "1"} if names else {})}
    return Link(platform, workspace_id, names, signed)


def page_key(period: str, names: bool) -> str:
    """The stored page's key: a page with names is stored apart from the one without."""
    return f"{period}:names" if names else period


@dataclass(frozen=True, slots=True)
class PageOf:
    """Which page: one community's, for one period, with member names or without."""

    platform: str
    workspace_id: str
    period: str
    names: bool = False

    @property
    def key(self) -> str:
        return page_key(self.period, self.names)


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The page of one community and period as built: what the page and its CSV
    exports show (aggregates; names only in a page built for a link that asked),
    stored in the database so any replica serves it without rebuilding the report
    (seconds in a large community)."""

    built_at: datetime
    kind: str
    first_day: str
    last_day: str
    tables: dict[str, list[list[str]]]
    suggestions: list[str]
    # (name, PNG as base64, alt text) per chart.
    charts: list[tuple[str, str, str]]
    nps_answers: int

    def encoded(self) -> bytes:
        fields = {
            "kind": self.kind,
            "first_day": self.first_day,
            "last_day": self.last_day,
            "tables": self.tables,
            "suggestions": self.suggestions,
            "charts": self.charts,
            "nps_answers": self.nps_answers,
        }
        return json.dumps(fields, separators=(",", ":")).encode()

    @classmethod
    def decoded(cls, built_at: datetime, page: bytes) -> Snapshot:
        fields = json.loads(page)
        return cls(
            built_at=built_at,
            kind=fields["kind"],
            first_day=fields["first_day"],
            last_day=fields["last_day"],
            tables=fields["tables"],
            suggestions=fields["suggestions"],
            charts=[(name, png, alt) for name, png, alt in fields["charts"]],
            nps_answers=fields["nps_answers"],
        )


# A stored page younger than this is served as it is. `report link` rebuilds one
# older than LINK_REBUILD_AFTER before sending the link (and the other periods in
# the background), so every view through a link (valid LINK_LIFETIME) finds its
# page fresh; a view that finds a page older than PAGE_FRESH_FOR, or none, starts
# a rebuild in the background and shows what is stored meanwhile.
LINK_REBUILD_AFTER = timedelta(minutes=5)
PAGE_FRESH_FOR = LINK_LIFETIME + LINK_REBUILD_AFTER + timedelta(minutes=5)


async def named_tables(runtime: Runtime, page: PageOf, drawn: Drawn) -> dict[str, list[list[str]]]:
    """The tables that name members: the period's newcomers yet to take a first
    step (whom to welcome in person) and the members who posted on the most days."""
    report = drawn.report
    async with runtime.db.sessions() as session:
        posters = await store.top_posters(
            session,
            page.platform,
            page.workspace_id,
            report.span.first_day,
            report.span.end_day,
            # Bots and deactivated accounts are dropped below; ask for a few more so
            # the table stays full.
            TOP_CONTRIBUTORS * 2,
        )
        ids = sorted({n.user_id for n in report.yet_to_start} | {user for user, _, _ in posters})
        people = {}
        for first in range(0, len(ids), 1000):
            chunk = ids[first : first + 1000]
            people.update(
                await members_by_user_ids(session, page.platform, page.workspace_id, chunk)
            )

    def name(user_id: str) -> str:
        member = people.get(user_id)
        return member.display_name if member is not None and member.display_name else "(no name)"

    def gone(user_id: str) -> bool:
        """A deactivated account, or a bot: nobody to welcome or to thank."""
        member = people.get(user_id)
        return member is not None and (member.deactivated or member.is_bot)

    now = runtime.clock()
    newcomers = [["member", "joined", "days since joining"]]
    newcomers.extend(
        [name(n.user_id), n.joined_at.date().isoformat(), str((now - n.joined_at).days)]
        for n in report.yet_to_start
        if not gone(n.user_id)
    )
    contributors = [["member", "days posted", "messages"]]
    humans = [p for p in posters if not gone(p[0])]
    contributors.extend(
        [name(user), str(days), str(messages)] for user, days, messages in humans[:TOP_CONTRIBUTORS]
    )
    return {"newcomers": newcomers, "contributors": contributors}


def built(
    runtime: Runtime, now: datetime, drawn: Drawn, named: dict[str, list[list[str]]] | None = None
) -> Snapshot:
    report = drawn.report
    return Snapshot(
        built_at=now,
        kind=report.kind,
        first_day=report.span.first_day.isoformat(),
        last_day=(report.span.end_day - timedelta(days=1)).isoformat(),
        tables={**tables(runtime, report), **(named or {})},
        suggestions=suggestion_lines(runtime.templates, report),
        charts=[
            (chart.name, base64.b64encode(chart.png).decode("ascii"), chart.alt)
            for chart in drawn.charts
        ],
        nps_answers=report.nps.answers,
    )


async def keep(runtime: Runtime, page: PageOf, drawn: Drawn) -> Snapshot:
    """Store the page of a report just drawn (the weekly report's, or a rebuild),
    in a short transaction of its own."""
    named = await named_tables(runtime, page, drawn) if page.names else None
    built_page = built(runtime, runtime.clock(), drawn, named)
    async with runtime.db.transaction() as session:
        await store.store_page_snapshot(
            session,
            page.platform,
            page.workspace_id,
            page.key,
            built_page.built_at,
            built_page.encoded(),
        )
    return built_page


async def stored(runtime: Runtime, page: PageOf) -> Snapshot | None:
    async with runtime.db.sessions() as session:
        found = await store.page_snapshot(session, page.platform, page.workspace_id, page.key)
    return Snapshot.decoded(*found) if found is not None else None


async def snapshot(
    runtime: Runtime, page: PageOf, *, fresh_for: timedelta = PAGE_FRESH_FOR
) -> Snapshot:
    """The stored page if it is younger than `fresh_for`, else a new one: the report
    is drawn in its own short read (no transaction is held while it builds, which
    takes seconds in a large community), then stored for every replica."""
    found = await stored(runtime, page)
    if found is not None and runtime.clock() - found.built_at < fresh_for:
        return found
    drawn = await draw(runtime, page.platform, page.workspace_id, page.period)
    return await keep(runtime, page, drawn)


async def forget_named_pages(runtime: Runtime, now: datetime) -> int:
    """Delete every page with names once no link can show it any more (a view after
    that rebuilds it), so member names are kept no longer than a link lives."""
    keys = [page_key(period, True) for period in PERIODS]
    async with runtime.db.transaction() as session:
        return await store.drop_page_snapshots(session, keys, now - PAGE_FRESH_FOR)


def rebuild_in_background(
    runtime: Runtime, page: PageOf, *, fresh_for: timedelta = PAGE_FRESH_FOR
) -> bool:
    """Make sure the page is fresh without waiting for it; a rebuild already
    running in this process is not started twice (True: started)."""

    async def rebuild() -> None:
        await snapshot(runtime, page, fresh_for=fresh_for)

    return runtime.in_background(
        f"health.page:{page.platform}:{page.workspace_id}:{page.key}", rebuild
    )


@dataclass(frozen=True, slots=True)
class Viewed:
    """What a view shows: the stored page (None: none yet), and whether a fresher
    one is being built."""

    page: Snapshot | None
    rebuilding: bool
    link: Link
    period: str


async def viewed(runtime: Runtime, request: web.Request) -> Viewed:
    link = verified(runtime, request)
    period = request.query.get("p", "month")
    if period not in PERIODS:
        raise web.HTTPBadRequest(text=f"The period is one of {', '.join(PERIODS)}.")
    page = PageOf(link.platform, link.workspace_id, period, link.names)
    found = await stored(runtime, page)
    fresh = found is not None and runtime.clock() - found.built_at < PAGE_FRESH_FOR
    if not fresh:
        rebuild_in_background(runtime, page)
    return Viewed(found, not fresh, link, period)


def tables(runtime: Runtime, report: Report) -> dict[str, list[list[str]]]:
    """Each aggregate table of the page, header row first, as the CSV export has it."""
    labels = figure_labels(runtime.templates)
    figures = [["figure", "this period", "period before", "change"]]
    for key, value, was, delta in report.rows():
        figures.append(
            [labels.get(key, key), shown(key, value), shown(key, was), shown_change(key, delta)]
        )
    after_session = [["after a session", "rating", "answers"]]
    after_session.extend(
        [labels.get(line.key, line.key), shown(line.key, line.value), str(line.answers)]
        for line in csat(report.current)
    )
    activation = [["path", "newcomers who took it", "share"]]
    for path, count in report.activation.by_path.items():
        rate = report.activation.path_rate(path)
        activation.append([path, str(count) if rate is not None else "–", shown("_rate", rate)])
    retention = [["join month", "members", *(f"week {week}" for week in RETENTION_WEEKS)]]
    for cohort in report.cohorts:
        retention.append(
            [
                cohort.month,
                str(cohort.size),
                *(shown("_rate", cohort.retained.get(week)) for week in RETENTION_WEEKS),
            ]
        )
    daily = [["day", "members who posted"]]
    daily.extend([day.isoformat(), str(count)] for day, count in report.daily_posters)
    return {
        "figures": figures,
        "after_session": after_session,
        "activation": activation,
        "retention": retention,
        "daily": daily,
    }


def code_spans(line: str) -> list[tuple[bool, str]]:
    """A chat line's `code` spans as (is code, text) pieces, for the page to show
    commands as code rather than between backticks."""
    return [(index % 2 == 1, piece) for index, piece in enumerate(line.split("`")) if piece]


def spreadsheet_safe(cell: str) -> str:
    """A CSV cell a spreadsheet shows as text: a member's name starting with `=`,
    `+`, `-` or `@` would otherwise run as a formula (a figure such as `+3` or
    `-2 pts` stays as it is)."""
    if cell[:1] in ("=", "@", "\t", "\r") or (cell[:1] in ("+", "-") and not cell[1:2].isdigit()):
        return "'" + cell
    return cell


_environment = SandboxedEnvironment(undefined=StrictUndefined, autoescape=True)

_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    # Charts are inline images and the page runs no script.
    "Content-Security-Policy": CONTENT_SECURITY,
}


async def page(runtime: Runtime, request: web.Request) -> web.Response:
    view = await viewed(runtime, request)
    query = {**view.link.signed, "p": view.period}
    shown_page = view.page
    values: dict[str, Any] = {
        "kind": view.period,
        "periods": [
            (period, f"{PAGE_PATH}?{urlencode({**query, 'p': period})}") for period in PERIODS
        ],
        "names": view.link.names,
        "rebuilding": view.rebuilding,
        "reload_seconds": PREPARING_RELOAD_SECONDS,
    }
    if shown_page is None:
        source = runtime.templates.source("health/dashboard_preparing")
        html = _environment.from_string(source).render(**values)
        # 202: accepted, the page is being built; the page reloads itself.
        return web.Response(
            status=202, text=html, content_type="text/html", charset="utf-8", headers=_HEADERS
        )
    values |= {
        "start": shown_page.first_day,
        "last": shown_page.last_day,
        "built_at": f"{shown_page.built_at:%Y-%m-%d %H:%M} UTC",
        "tables": shown_page.tables,
        "csv": {
            name: f"{CSV_PATH}?{urlencode({**query, 'table': name})}"
            for name in TABLES
            if name in shown_page.tables
        },
        "suggestions": [code_spans(line) for line in shown_page.suggestions],
        "charts": shown_page.charts,
        "nps_answers": shown_page.nps_answers,
    }
    source = runtime.templates.source("health/dashboard_page")
    html = _environment.from_string(source).render(**values)
    return web.Response(text=html, content_type="text/html", charset="utf-8", headers=_HEADERS)


async def csv_download(runtime: Runtime, request: web.Request) -> web.Response:
    name = request.query.get("table", "")
    if name not in TABLES:
        raise web.HTTPBadRequest(text=f"The table is one of {', '.join(TABLES)}.")
    view = await viewed(runtime, request)
    if view.page is None:
        return web.Response(
            status=503,
            text="The page is being prepared. Try again in a few seconds.",
            headers={"Retry-After": str(PREPARING_RELOAD_SECONDS), "Cache-Control": "no-store"},
        )
    if name not in view.page.tables:
        raise web.HTTPForbidden(text="This table names members: ask for a link with names.")
    buffer = io.StringIO()
    csv.writer(buffer).writerows(
        [spreadsheet_safe(cell) for cell in row] for row in view.page.tables[name]
    )
    filename = f"kindred-health-{view.page.kind}-{name}-{view.page.first_day}.csv"
    return web.Response(
        text=buffer.getvalue(),
        content_type="text/csv",
        charset="utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="{filename}"',
            "Cache-Control": "no-store",
        },
    )
