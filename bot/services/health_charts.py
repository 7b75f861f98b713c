"""The health report's charts as PNG images, drawn without a browser (matplotlib's
Agg backend) and without I/O: figures in, bytes out. Each chart has alt text
saying what it shows in words, from config/templates/health/chart_alt.j2."""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bot.core.figures import ACTIVATION_PATHS
from bot.core.mentions import strip_markup_for_plain_text
from bot.core.templates import Templates
from bot.domain.health import POST_PATH, RETENTION_WEEKS, Report

if TYPE_CHECKING:
    from matplotlib.figure import Figure

WIDTH, HEIGHT, DPI = 6.4, 3.4, 120
INK = "#1f3b57"
ACCENT = "#2f8f83"
MUTED = "#c9d3dc"


@dataclass(frozen=True, slots=True)
class Chart:
    name: str
    filename: str
    png: bytes
    alt: str


def _png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI)
    return buffer.getvalue()


def _figure() -> Figure:
    # Imported on first use: matplotlib costs ~0.4 s at start-up, which the console
    # and every replica would pay before anyone asks for a chart. A bare Figure (not
    # pyplot) draws on the Agg canvas: no display, no global state.
    from matplotlib.figure import Figure

    return Figure(figsize=(WIDTH, HEIGHT), dpi=DPI, layout="constrained")


def daily_chart(report: Report) -> bytes:
    figure = _figure()
    axes = figure.add_subplot()
    days = [day.strftime("%d %b") for day, _ in report.daily_posters]
    positions = list(range(len(days)))
    counts = [count for _, count in report.daily_posters]
    axes.plot(positions, counts, color=ACCENT, linewidth=2, marker="o" if len(days) <= 31 else None)
    axes.fill_between(positions, counts, color=ACCENT, alpha=0.15)
    axes.set_ylim(bottom=0)
    axes.set_title("Members who posted, per day", color=INK, loc="left")
    # A label every week at most, so a quarter's 91 days stay readable.
    every = max(1, len(days) // 12)
    axes.set_xticks(positions[::every], days[::every])
    axes.spines[["top", "right"]].set_visible(False)
    figure.autofmt_xdate()
    return _png(figure)


def activation_chart(report: Report) -> bytes:
    figure = _figure()
    axes = figure.add_subplot()
    paths = [POST_PATH, *ACTIVATION_PATHS]
    shares = [(report.activation.path_rate(path) or 0) * 100 for path in paths]
    axes.barh(paths, shares, color=ACCENT)
    axes.set_xlim(0, 100)
    axes.invert_yaxis()
    axes.set_xlabel("% of newcomers within 14 days")
    axes.set_title(
        f"Newcomer activation by path ({report.activation.joined} joined)", color=INK, loc="left"
    )
    axes.spines[["top", "right"]].set_visible(False)
    return _png(figure)


def retention_chart(report: Report) -> bytes:
    figure = _figure()
    axes = figure.add_subplot()
    months = [cohort.month for cohort in report.cohorts]
    width = 0.8 / len(RETENTION_WEEKS)
    colours = (ACCENT, INK, MUTED)
    for index, week in enumerate(RETENTION_WEEKS):
        values = [(cohort.retained.get(week) or 0) * 100 for cohort in report.cohorts]
        positions = [m + (index - 1) * width for m in range(len(months))]
        axes.bar(positions, values, width, label=f"week {week}", color=colours[index])
    axes.set_xticks(range(len(months)), months)
    axes.set_ylim(0, 100)
    axes.set_ylabel("% of the cohort active")
    axes.set_title("Retention by join month", color=INK, loc="left")
    axes.legend(frameon=False, ncols=3)
    axes.spines[["top", "right"]].set_visible(False)
    return _png(figure)


def nps_chart(report: Report) -> bytes:
    figure = _figure()
    axes = figure.add_subplot()
    colours = ["#c0392b"] * 7 + [MUTED] * 2 + [ACCENT] * 2
    axes.bar(range(11), report.score_counts, color=colours)
    axes.set_xticks(range(11))
    axes.set_xlabel("answer (0 = not at all likely, 10 = extremely likely)")
    score = report.nps.score
    axes.set_title(
        f"Community NPS {score:+.0f} ({report.nps.answers} answers)" if score is not None else "",
        color=INK,
        loc="left",
    )
    axes.spines[["top", "right"]].set_visible(False)
    return _png(figure)


def render(templates: Templates, report: Report) -> list[Chart]:
    """Every chart the report has data for, with its alt text."""
    charts = [("daily", daily_chart), ("activation", activation_chart)]
    if any(cohort.size for cohort in report.cohorts):
        charts.append(("retention", retention_chart))
    if report.nps.shown:
        charts.append(("nps", nps_chart))
    return [
        Chart(
            name,
            f"health-{report.kind}-{name}.png",
            draw(report),
            alt_text(templates, name, report),
        )
        for name, draw in charts
    ]


def alt_text(templates: Templates, name: str, report: Report) -> str:
    """The chart in words, from the bot's own values (numbers, months, path names)."""
    busiest = max(report.daily_posters, key=lambda pair: pair[1], default=None)

    def share(value: float | None) -> str:
        return "–" if value is None else f"{value * 100:.0f} %"

    # Alt text goes to the platform as is (Slack's alt_txt, Discord's description),
    # not through the adapters' rendering, so it leaves as plain text.
    return strip_markup_for_plain_text(
        templates.render(
            "health/chart_alt",
            chart=name,
            kind=report.kind,
            days=len(report.daily_posters),
            busiest_day=busiest[0].isoformat() if busiest else "",
            busiest=busiest[1] if busiest else 0,
            joined=report.activation.joined,
            paths=[
                (path, share(report.activation.path_rate(path)))
                for path in (POST_PATH, *ACTIVATION_PATHS)
            ],
            cohorts=[
                (
                    cohort.month,
                    cohort.size,
                    [(week, share(cohort.retained.get(week))) for week in RETENTION_WEEKS],
                )
                for cohort in report.cohorts
            ],
            nps=f"{report.nps.score:+.0f}" if report.nps.score is not None else "",
            answers=report.nps.answers,
            counts=list(report.score_counts),
        )
    )
