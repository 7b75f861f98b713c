"""The dashboard page: the report's figures and charts on one web page served by
Kindred's own HTTP server, behind a link signed for one community that expires
after an hour, with a period selector and each table as CSV. The page shows
aggregates only: no member names, no user ids."""

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
from bot.domain.health import PERIODS, RETENTION_WEEKS, Report
from bot.services.health import (
    Drawn,
    draw,
    figure_labels,
    shown,
    shown_change,
    suggestion_lines,
)
from storage import health as store

PAGE_PATH = "/health/dashboard"
CSV_PATH = "/health/dashboard.csv"
LINK_LIFETIME = timedelta(hours=1)
TABLES = ("figures", "activation", "retention", "daily")
CONTENT_SECURITY = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"


def _signature(secret: str, community: str, expires: int) -> str:
    message = f"{community}|{expires}".encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def signed_query(settings: Settings, community: str, expires: int, period: str) -> dict[str, str]:
    return {
        "c": community,
        "e": str(expires),
        "p": period,
        "s": _signature(settings.dashboard_secret.value, community, expires),
    }


def signed_link(
    settings: Settings, platform: str, workspace_id: str, now: datetime, period: str
) -> str:
    """A link to the community's page, valid for LINK_LIFETIME from `now`."""
    if not settings.public_url or not settings.dashboard_secret:
        raise CommandError(
            "The dashboard page is not set up: the operator sets KINDRED_PUBLIC_URL (where "
            "Kindred's web server is reached) and KINDRED_DASHBOARD_SECRET (32 characters or "
            "more) and restarts Kindred."
        )
    expires = int((now + LINK_LIFETIME).timestamp())
    query = signed_query(settings, f"{platform}:{workspace_id}", expires, period)
    return f"{settings.public_url.rstrip('/')}{PAGE_PATH}?{urlencode(query)}"


def verified(runtime: Runtime, request: web.Request) -> tuple[str, str, dict[str, str]]:
    """The (platform, workspace) a request's link was signed for, and its query;
    403 for a missing, tampered or expired link."""
    settings = runtime.settings
    query = request.query
    community, expires, signature = query.get("c", ""), query.get("e", ""), query.get("s", "")
    if not settings.dashboard_secret or not expires.isdigit() or ":" not in community:
        raise web.HTTPForbidden(text="This link is not valid. Ask Kindred for a new one.")
    expected = _signature(settings.dashboard_secret.value, community, int(expires))
    if not hmac.compare_digest(expected.encode(), signature.encode()):
        raise web.HTTPForbidden(text="This link is not valid. Ask Kindred for a new one.")
    if runtime.clock().timestamp() >= int(expires):
        raise web.HTTPForbidden(text="This link has expired. Ask Kindred for a new one.")
    platform, workspace_id = community.split(":", 1)
    return platform, workspace_id, {"c": community, "e": expires, "s": signature}


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The page of one community and period as built: what the page and its CSV
    exports show (aggregates only), stored in the database so any replica serves it
    without rebuilding the report (seconds in a large community)."""

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
# older than LINK_REBUILD_AFTER before sending the link, so every view through a
# link (valid LINK_LIFETIME) finds its page fresh; a page older than PAGE_FRESH_FOR
# (a period picked in the selector that no one opened lately, or a link that
# never warmed it) is rebuilt in the request that finds it so.
LINK_REBUILD_AFTER = timedelta(minutes=5)
PAGE_FRESH_FOR = LINK_LIFETIME + LINK_REBUILD_AFTER + timedelta(minutes=5)


def built(runtime: Runtime, now: datetime, drawn: Drawn) -> Snapshot:
    report = drawn.report
    return Snapshot(
        built_at=now,
        kind=report.kind,
        first_day=report.span.first_day.isoformat(),
        last_day=(report.span.end_day - timedelta(days=1)).isoformat(),
        tables=tables(runtime, report),
        suggestions=suggestion_lines(runtime.templates, report),
        charts=[
            (chart.name, base64.b64encode(chart.png).decode("ascii"), chart.alt)
            for chart in drawn.charts
        ],
        nps_answers=report.nps.answers,
    )


async def keep(
    runtime: Runtime, platform: str, workspace_id: str, period: str, drawn: Drawn
) -> Snapshot:
    """Store the page of a report just drawn (the weekly report's, or a rebuild),
    in a short transaction of its own."""
    page = built(runtime, runtime.clock(), drawn)
    async with runtime.db.transaction() as session:
        await store.store_page_snapshot(
            session, platform, workspace_id, period, page.built_at, page.encoded()
        )
    return page


async def snapshot(
    runtime: Runtime,
    platform: str,
    workspace_id: str,
    period: str,
    *,
    fresh_for: timedelta = PAGE_FRESH_FOR,
) -> Snapshot:
    """The stored page if it is younger than `fresh_for`, else a new one: the report
    is drawn in its own short read (no transaction is held while it builds, which
    takes seconds in a large community), then stored for every replica."""
    async with runtime.db.sessions() as session:
        found = await store.page_snapshot(session, platform, workspace_id, period)
    if found is not None and runtime.clock() - found[0] < fresh_for:
        return Snapshot.decoded(*found)
    drawn = await draw(runtime, platform, workspace_id, period)
    return await keep(runtime, platform, workspace_id, period, drawn)


async def _snapshot(runtime: Runtime, request: web.Request) -> tuple[Snapshot, dict[str, str]]:
    platform, workspace_id, query = verified(runtime, request)
    period = request.query.get("p", "month")
    if period not in PERIODS:
        raise web.HTTPBadRequest(text=f"The period is one of {', '.join(PERIODS)}.")
    return await snapshot(runtime, platform, workspace_id, period), {**query, "p": period}


def tables(runtime: Runtime, report: Report) -> dict[str, list[list[str]]]:
    """Each table of the page, header row first, as the CSV export has it."""
    labels = figure_labels(runtime.templates)
    figures = [["figure", "this period", "period before", "change"]]
    for key, value, was, delta in report.rows():
        figures.append(
            [labels.get(key, key), shown(key, value), shown(key, was), shown_change(key, delta)]
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
    return {"figures": figures, "activation": activation, "retention": retention, "daily": daily}


def code_spans(line: str) -> list[tuple[bool, str]]:
    """A chat line's `code` spans as (is code, text) pieces, for the page to show
    commands as code rather than between backticks."""
    return [(index % 2 == 1, piece) for index, piece in enumerate(line.split("`")) if piece]


_environment = SandboxedEnvironment(undefined=StrictUndefined, autoescape=True)


async def page(runtime: Runtime, request: web.Request) -> web.Response:
    shown_page, query = await _snapshot(runtime, request)
    values: dict[str, Any] = {
        "kind": shown_page.kind,
        "start": shown_page.first_day,
        "last": shown_page.last_day,
        "periods": [
            (period, f"{PAGE_PATH}?{urlencode({**query, 'p': period})}") for period in PERIODS
        ],
        "tables": shown_page.tables,
        "csv": {name: f"{CSV_PATH}?{urlencode({**query, 'table': name})}" for name in TABLES},
        "suggestions": [code_spans(line) for line in shown_page.suggestions],
        "charts": shown_page.charts,
        "nps_answers": shown_page.nps_answers,
    }
    source = runtime.templates.source("health/dashboard_page")
    html = _environment.from_string(source).render(**values)
    return web.Response(
        text=html,
        content_type="text/html",
        charset="utf-8",
        headers={
            "Cache-Control": "no-store",
            "Referrer-Policy": "no-referrer",
            # Charts are inline images and the page runs no script.
            "Content-Security-Policy": CONTENT_SECURITY,
        },
    )


async def csv_download(runtime: Runtime, request: web.Request) -> web.Response:
    name = request.query.get("table", "")
    if name not in TABLES:
        raise web.HTTPBadRequest(text=f"The table is one of {', '.join(TABLES)}.")
    shown_page, _ = await _snapshot(runtime, request)
    buffer = io.StringIO()
    csv.writer(buffer).writerows(shown_page.tables[name])
    filename = f"kindred-health-{shown_page.kind}-{name}-{shown_page.first_day}.csv"
    return web.Response(
        text=buffer.getvalue(),
        content_type="text/csv",
        charset="utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="{filename}"',
            "Cache-Control": "no-store",
        },
    )
