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
import weakref
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
from bot.services import health_charts
from bot.services.health import draw, figure_labels, shown, shown_change, suggestion_lines

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
    built_at: datetime
    report: Report
    charts: list[health_charts.Chart]


# Built reports by runtime, then (platform, workspace, period): the page, its period
# selector and its CSV exports show one snapshot for SNAPSHOT_LIFETIME instead of
# rebuilding the report (seconds in a large community) on every request.
_snapshots: weakref.WeakKeyDictionary[Runtime, dict[tuple[str, str, str], Snapshot]] = (
    weakref.WeakKeyDictionary()
)
SNAPSHOT_LIFETIME = timedelta(minutes=5)
MAX_SNAPSHOTS = 64


async def snapshot(runtime: Runtime, platform: str, workspace_id: str, period: str) -> Snapshot:
    now = runtime.clock()
    kept = _snapshots.setdefault(runtime, {})
    key = (platform, workspace_id, period)
    found = kept.get(key)
    if found is not None and now - found.built_at < SNAPSHOT_LIFETIME:
        return found
    drawn = await draw(runtime, platform, workspace_id, period)
    found = Snapshot(now, drawn.report, list(drawn.charts))
    kept.pop(key, None)
    kept[key] = found
    while len(kept) > MAX_SNAPSHOTS:
        del kept[next(iter(kept))]
    return found


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
    built, query = await _snapshot(runtime, request)
    report, charts = built.report, built.charts
    values: dict[str, Any] = {
        "kind": report.kind,
        "start": report.span.first_day.isoformat(),
        "last": (report.span.end_day - timedelta(days=1)).isoformat(),
        "periods": [
            (period, f"{PAGE_PATH}?{urlencode({**query, 'p': period})}") for period in PERIODS
        ],
        "tables": tables(runtime, report),
        "csv": {name: f"{CSV_PATH}?{urlencode({**query, 'table': name})}" for name in TABLES},
        "suggestions": [code_spans(line) for line in suggestion_lines(runtime.templates, report)],
        "charts": [
            (chart.name, base64.b64encode(chart.png).decode("ascii"), chart.alt) for chart in charts
        ],
        "nps_answers": report.nps.answers,
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
    built, _ = await _snapshot(runtime, request)
    report = built.report
    buffer = io.StringIO()
    csv.writer(buffer).writerows(tables(runtime, report)[name])
    filename = f"kindred-health-{report.kind}-{name}-{report.span.first_day.isoformat()}.csv"
    return web.Response(
        text=buffer.getvalue(),
        content_type="text/csv",
        charset="utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="{filename}"',
            "Cache-Control": "no-store",
        },
    )
