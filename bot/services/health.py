"""The community health report: activity recorded from message events, the
report built from Kindred's own counts plus every declared feature's figures and
member actions (read only through the Runtime's aggregations, never another
feature's tables), its text and charts queued through the outbox, and what the
report feature stores about one member."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.context import Context
from bot.core.figures import ACTIVATION_PATHS, MemberAction, Period, Stored
from bot.core.outbox import Outbox
from bot.core.platform import Attachment, Identity, Message
from bot.core.runtime import Runtime
from bot.core.templates import Templates, Trusted
from bot.domain.health import (
    HEADLINE,
    MIN_GROUP,
    POST_PATH,
    RETENTION_MONTHS,
    Activation,
    FirstReply,
    Nps,
    Report,
    Span,
    Suggestion,
    activation,
    active_members,
    csat,
    first_reply,
    is_share,
    nps,
    report_spans,
    retention,
    score_counts,
    suggestions,
    without_small_ratings,
    yet_to_start,
)
from bot.services import health_charts
from storage import health as store

# --- recording ----------------------------------------------------------------------


async def record_message(ctx: Context) -> None:
    """Count one message: the member, the channel, the day. Nothing of its text is
    kept. A newcomer's first post, and the first reply another member gives one,
    are noted for activation and time to first reply."""
    inbound = ctx.inbound
    if not inbound.channel_id or not inbound.user_id:
        return
    now = ctx.now()
    scope = (ctx.session, inbound.platform, inbound.workspace_id)
    await store.record_message(*scope, inbound.user_id, inbound.channel_id, now.date())
    await store.note_first_post(*scope, inbound.user_id, now)
    replied_to = inbound.options.get("reply_to")
    if isinstance(replied_to, str) and replied_to and replied_to != inbound.user_id:
        await store.note_first_reply(*scope, replied_to, now)


async def record_join(ctx: Context) -> None:
    inbound = ctx.inbound
    await store.record_join(
        ctx.session, inbound.platform, inbound.workspace_id, inbound.user_id, ctx.now()
    )


# --- the report ------------------------------------------------------------------------


def _by_user(
    actions: Mapping[str, Sequence[MemberAction]],
) -> dict[str, list[tuple[str, datetime]]]:
    found: dict[str, list[tuple[str, datetime]]] = {}
    for feature_actions in actions.values():
        for action in feature_actions:
            found.setdefault(action.user_id, []).append((action.kind, action.at))
    return found


def _actors(
    actions: Mapping[str, Sequence[tuple[str, datetime]]], since: datetime, until: datetime
) -> set[str]:
    return {user for user, done in actions.items() if any(since <= at < until for _, at in done)}


def _first_month(end: datetime) -> datetime:
    first = (end - timedelta(microseconds=1)).replace(
        day=1, hour=0, minute=0, second=0, microsecond=0
    )
    for _ in range(RETENTION_MONTHS - 1):
        first = (first - timedelta(days=1)).replace(day=1)
    return first


async def build_report(
    runtime: Runtime, session: AsyncSession, platform: str, workspace_id: str, kind: str
) -> Report:
    """The `kind` (week, month, quarter) report up to now, with the period before."""
    span, before = report_spans(kind, runtime.clock())
    horizon = min(_first_month(span.end), before.start, before.end - timedelta(days=30))
    actions = _by_user(
        await runtime.member_actions(session, Period(platform, workspace_id, horizon, span.end))
    )
    joined = await store.newcomers(session, platform, workspace_id, horizon, span.end)
    members = await store.member_count(session, platform, workspace_id)

    posted_now, posted_before = await store.last_posted(
        session, platform, workspace_id, [span.end.date(), before.end.date()], days=30
    )

    async def figures_of(
        period: Span, posted: Mapping[str, date]
    ) -> tuple[dict[str, float | None], Activation, FirstReply, Nps, list[int]]:
        end = period.end
        scope = (session, platform, workspace_id)
        week_start = (end - timedelta(days=7)).date()
        posted_7 = {user for user, day in posted.items() if day >= week_start}
        posted_30 = set(posted)
        active = active_members(
            members,
            posted_7 | _actors(actions, end - timedelta(days=7), end),
            posted_30 | _actors(actions, end - timedelta(days=30), end),
        )
        started = activation(joined, actions, period, ACTIVATION_PATHS)
        replies = first_reply(joined, period)
        answers = await store.scores(*scope, period.first_day, period.end_day)
        pulse = nps(answers)
        row: dict[str, float | None] = {
            "members": members,
            "active_7d": active.active_7d,
            "active_30d": active.active_30d,
            "weekly_return": active.ratio,
            "newcomers": started.joined,
            "activation_rate": started.rate,
            "first_reply_hours": replies.median_hours,
            "nps": pulse.score,
            "nps_answers": pulse.answers,
        }
        for path in (POST_PATH, *ACTIVATION_PATHS):
            row[f"activation.{path}_rate"] = started.path_rate(path)
        feature_figures = await runtime.figures(
            session, Period(platform, workspace_id, period.start, period.end)
        )
        for feature, figures in feature_figures.items():
            for name, value in figures.items():
                row[f"{feature}.{name}"] = value
        return without_small_ratings(row), started, replies, pulse, answers

    current, started, replies, pulse, scores = await figures_of(span, posted_now)
    previous, *_ = await figures_of(before, posted_before)
    # The member count has no history: only today's is known.
    previous["members"] = None
    activity = await store.newcomer_activity_days(
        session, platform, workspace_id, horizon, span.end_day
    )
    for user, done in actions.items():
        for _, at in done:
            activity.setdefault(user, set()).add(at.date())
    cohorts = retention(joined, activity, span.end)
    daily = await store.daily_posters(session, platform, workspace_id, span.first_day, span.end_day)
    days = [span.first_day + timedelta(days=offset) for offset in range(span.days)]
    return Report(
        kind=kind,
        span=span,
        previous_span=before,
        current=current,
        previous=previous,
        activation=started,
        first_reply=replies,
        cohorts=cohorts,
        nps=pulse,
        score_counts=score_counts(scores) if pulse.shown else [],
        # A day with fewer posters than MIN_GROUP is shown as 0: never a figure for
        # fewer than five members.
        daily_posters=[(day, c if (c := daily.get(day, 0)) >= MIN_GROUP else 0) for day in days],
        suggestions=suggestions(current, previous, started, cohorts),
        yet_to_start=yet_to_start(joined, actions, span),
    )


# --- the report in words and pictures ---------------------------------------------------


def shown(key: str, value: float | None) -> str:
    """A figure as the report prints it; "–" for a figure not shown (no data, or
    a group too small to show)."""
    if value is None:
        return "–"
    if is_share(key):
        return f"{value * 100:.0f} %"
    if key.endswith("_hours"):
        return f"{value:.1f} h"
    if key == "nps" or key.endswith("_score"):
        return f"{value:+.0f}"
    return f"{value:.0f}" if float(value).is_integer() else f"{value:.2f}"


def shown_change(key: str, value: float | None) -> str:
    if value is None or value == 0:
        return "" if value is None else "±0"
    if is_share(key):
        return f"{value * 100:+.0f} pts"
    if key.endswith("_hours"):
        return f"{value:+.1f} h"
    return f"{value:+.0f}" if float(value).is_integer() else f"{value:+.2f}"


def _suggestion_values(suggestion: Suggestion) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name, value in suggestion.numbers.items():
        if isinstance(value, float) and name in {"rate", "ratio"}:
            values[name] = shown("_rate", value)
        elif isinstance(value, float) and name == "was":
            values[name] = shown(
                "_hours"
                if suggestion.kind == "first_reply"
                else ("nps" if suggestion.kind == "nps" else "_rate"),
                value,
            )
        elif isinstance(value, float) and name == "hours":
            values[name] = shown("_hours", value)
        elif isinstance(value, float) and name == "score":
            values[name] = shown("nps", value)
        else:
            values[name] = (
                "–" if value is None else (int(value) if isinstance(value, float) else value)
            )
    return values


def suggestion_lines(templates: Templates, report: Report) -> list[str]:
    return [
        templates.render(
            "health/suggestion",
            kind=Trusted(s.kind),
            **{
                name: Trusted(value) if isinstance(value, str) else value
                for name, value in _suggestion_values(s).items()
            },
        )
        for s in report.suggestions
    ]


def figure_labels(templates: Templates) -> dict[str, str]:
    """Figure key → its name in the report (config/templates/health/labels.j2, one
    `key: label` a line); a figure without a label shows its key."""
    return templates.labels("health/labels")


def report_text(templates: Templates, report: Report) -> str:
    labels = figure_labels(templates)
    rows = [
        {
            "label": Trusted(labels.get(key, key)),
            "value": Trusted(shown(key, value)),
            "previous": Trusted(shown(key, was)),
            "change": Trusted(shown_change(key, delta)),
        }
        for key, value, was, delta in report.rows()
        # Chat keeps to what has happened: a ritual nobody used this period or the
        # one before is left out (the dashboard page lists every figure).
        if key in HEADLINE or value or was
    ]
    interval = report.nps.interval
    return templates.render(
        "health/report",
        kind=Trusted(report.kind),
        start=Trusted(report.span.first_day.isoformat()),
        last=Trusted((report.span.end_day - timedelta(days=1)).isoformat()),
        rows=rows,
        suggestions=[Trusted(line) for line in suggestion_lines(templates, report)],
        nps_answers=report.nps.answers,
        nps_interval=Trusted(f"{interval[0]:+.0f} to {interval[1]:+.0f}" if interval else ""),
        min_group=MIN_GROUP,
        csat=[
            {
                "label": Trusted(labels.get(line.key, line.key)),
                "value": Trusted(shown(line.key, line.value)),
                "answers": line.answers,
            }
            for line in csat(report.current)
        ],
    )


@dataclass(frozen=True, slots=True)
class Drawn:
    """A report with its charts, made before any transaction opens."""

    report: Report
    charts: Sequence[health_charts.Chart]


async def draw(runtime: Runtime, platform: str, workspace_id: str, kind: str) -> Drawn:
    """Build the report in a short read of its own, then draw its charts in a worker
    thread: the CPU-bound drawing holds no database connection (SQLite has one) and
    does not stall the event loop other members' acks run on."""
    async with runtime.db.sessions() as session:
        report = await build_report(runtime, session, platform, workspace_id, kind)
    charts = await asyncio.to_thread(health_charts.render, runtime.templates, report)
    return Drawn(report, charts)


async def queue_charts(
    outbox: Outbox,
    drawn: Drawn,
    *,
    key: str,
    dm_to: str | None = None,
    channel: str | None = None,
) -> int:
    """One message per chart (a PNG with its alt text) to a member's DMs or a
    channel; `key` makes a repeated run queue nothing new. Returns how many."""
    for chart in drawn.charts:
        message = Message(
            text=chart.alt,
            attachment=Attachment(chart.filename, chart.png, "image/png", alt_text=chart.alt),
        )
        if dm_to is not None:
            await outbox.dm(dm_to, message, key=f"{key}:{chart.name}")
        else:
            assert channel is not None
            await outbox.post(channel, message, key=f"{key}:{chart.name}")
    return len(drawn.charts)


# --- the weekly report --------------------------------------------------------------------

WEEKLY = timedelta(days=7)


async def schedule_report(
    session: AsyncSession, platform: str, workspace_id: str, channel: str, now: datetime
) -> datetime:
    """Send the weekly report to `channel`, the first one a minute from now."""
    settings = await store.settings_for(session, platform, workspace_id)
    settings.report_channel_id = channel
    settings.report_next_at = now.replace(second=0, microsecond=0) + timedelta(minutes=1)
    return settings.report_next_at


async def unschedule_report(session: AsyncSession, platform: str, workspace_id: str) -> None:
    settings = await store.settings_for(session, platform, workspace_id)
    settings.report_channel_id = None
    settings.report_next_at = None


async def run_weekly_report(
    runtime: Runtime,
    settings_id: int,
    due: datetime,
    drawn: Drawn,
    session: AsyncSession,
    _occurrence: datetime,
) -> None:
    """One weekly report (claimed by the caller, drawn before the claim): queue its
    text and charts in the organisers' channel and move the schedule on."""
    settings = await session.get(store.HealthSettings, settings_id)
    if settings is None or settings.report_channel_id is None or settings.report_next_at != due:
        return
    outbox = Outbox(session, settings.platform, settings.workspace_id)
    key = f"health.weekly:{due.isoformat()}"
    channel = settings.report_channel_id
    text = report_text(runtime.templates, drawn.report)
    await outbox.post(channel, Message(text=text), key=f"{key}:text")
    await queue_charts(outbox, drawn, key=key, channel=channel)
    await store.advance_report(session, settings_id, due, due + WEEKLY)


# --- privacy -----------------------------------------------------------------------------


async def stored_about(session: AsyncSession, member: Identity) -> Stored:
    """What the health feature keeps about a member, for `/kindred privacy`."""
    counts = await store.stored_counts(
        session, member.platform, member.workspace_id, member.user_id
    )
    return Stored("health/stored_about", counts)


async def forget_feedback(session: AsyncSession, member: Identity) -> int:
    return await store.forget_answers(session, member.platform, member.workspace_id, member.user_id)
