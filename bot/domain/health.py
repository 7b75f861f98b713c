"""The community health report's rules: what each figure means, the periods it
covers, the community NPS with its 95 % interval, the thresholds that turn
figures into suggested actions, and the small-group suppression (aggregates
only; no figure describes fewer than MIN_GROUP members).

Pure: the service gathers plain values (activity days, newcomers, pulse scores,
each feature's figures) and these functions compute from them."""

from __future__ import annotations

import math
import statistics
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

# No figure is shown for a group of fewer members than this (a share of 3 people
# tells who they are).
MIN_GROUP = 5
# The NPS is hidden until this many members answered.
MIN_NPS_ANSWERS = 10
ACTIVATION_WINDOW = timedelta(days=14)
# Retention: the weeks after joining in which a cohort's members are counted active.
RETENTION_WEEKS = (1, 4, 12)
RETENTION_MONTHS = 6
PERIOD_DAYS = {"week": 7, "month": 30, "quarter": 91}
PERIODS = tuple(PERIOD_DAYS)
# A newcomer's first post counts as the "post" path of activation, beside the
# feature paths (bot.core.figures.ACTIVATION_PATHS).
POST_PATH = "post"
NPS_Z = 1.96  # two-sided 95 %


# Headline figures in the order the report shows them; feature figures follow as
# `<feature>.<figure>`.
HEADLINE = (
    "members",
    "active_7d",
    "active_30d",
    "weekly_return",
    "newcomers",
    "activation_rate",
    "first_reply_hours",
    "nps",
    "nps_answers",
)
# Figures that are shares (0–1) and shown as percentages.
SHARE_SUFFIXES = ("_rate", "_ratio", "_share", "weekly_return")


# --- periods ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Span:
    """A half-open range [start, end) of whole UTC days."""

    start: datetime
    end: datetime

    @property
    def days(self) -> int:
        return (self.end - self.start).days

    @property
    def first_day(self) -> date:
        return self.start.date()

    @property
    def end_day(self) -> date:
        """The first day after the span."""
        return self.end.date()


def report_spans(kind: str, now: datetime) -> tuple[Span, Span]:
    """The period a `kind` report covers (the last 7, 30 or 91 whole days up to and
    including today) and the one before it, of the same length."""
    days = PERIOD_DAYS[kind]
    end = datetime.combine(now.astimezone(UTC).date() + timedelta(days=1), time(), tzinfo=UTC)
    current = Span(end - timedelta(days=days), end)
    return current, Span(current.start - timedelta(days=days), current.start)


def day_start(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=UTC)


# --- active members ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Active:
    members: int
    active_7d: int
    active_30d: int

    @property
    def ratio(self) -> float | None:
        """Of the members active in the last 30 days, the share also active in the
        last 7 (how many come back weekly)."""
        return self.active_7d / self.active_30d if self.active_30d >= MIN_GROUP else None


def active_members(
    members: int, last_7_days: Collection[str], last_30_days: Collection[str]
) -> Active:
    """Members who posted in a channel Kindred is in, or did something through a
    ritual, in the 7 and the 30 days before the end of the period."""
    return Active(members, len(set(last_7_days)), len(set(last_30_days) | set(last_7_days)))


# --- newcomers ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Newcomer:
    user_id: str
    joined_at: datetime
    first_post_at: datetime | None = None
    # When another member first replied to one of the newcomer's posts.
    first_reply_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Activation:
    joined: int
    activated: int
    # Path → how many joiners took that path within their first 14 days.
    by_path: Mapping[str, int] = field(default_factory=dict)

    @property
    def rate(self) -> float | None:
        return self.activated / self.joined if self.joined >= MIN_GROUP else None

    @property
    def never_acted(self) -> int:
        return self.joined - self.activated

    def path_rate(self, path: str) -> float | None:
        return self.by_path.get(path, 0) / self.joined if self.joined >= MIN_GROUP else None


def activation(
    newcomers: Iterable[Newcomer],
    actions: Mapping[str, Sequence[tuple[str, datetime]]],
    span: Span,
    paths: Sequence[str],
) -> Activation:
    """Of the members who joined in `span`, those who acted within 14 days of
    joining (and before the span's end): posted, or took a ritual's first step
    (`actions`: user → (kind, moment) of their member actions)."""
    joined = activated = 0
    by_path = dict.fromkeys((POST_PATH, *paths), 0)
    for newcomer in newcomers:
        if not span.start <= newcomer.joined_at < span.end:
            continue
        joined += 1
        closes = min(newcomer.joined_at + ACTIVATION_WINDOW, span.end)
        taken = {
            kind
            for kind, at in actions.get(newcomer.user_id, ())
            if newcomer.joined_at <= at < closes
        }
        if newcomer.first_post_at is not None and newcomer.first_post_at < closes:
            taken.add(POST_PATH)
        for path in taken & by_path.keys():
            by_path[path] += 1
        activated += bool(taken)
    return Activation(joined, activated, by_path)


def yet_to_start(
    newcomers: Iterable[Newcomer],
    actions: Mapping[str, Sequence[tuple[str, datetime]]],
    span: Span,
) -> list[Newcomer]:
    """The members who joined in `span` and have neither posted nor taken any
    ritual's first step since (up to the span's end), earliest joiner first: whom
    an organiser might welcome in person."""
    waiting = [
        newcomer
        for newcomer in newcomers
        if span.start <= newcomer.joined_at < span.end
        and (newcomer.first_post_at is None or newcomer.first_post_at >= span.end)
        and not any(
            newcomer.joined_at <= at < span.end for _, at in actions.get(newcomer.user_id, ())
        )
    ]
    return sorted(waiting, key=lambda newcomer: (newcomer.joined_at, newcomer.user_id))


@dataclass(frozen=True, slots=True)
class FirstReply:
    posted: int
    answered: int
    median_hours: float | None


def first_reply(newcomers: Iterable[Newcomer], span: Span) -> FirstReply:
    """For newcomers whose first post fell in `span`: how long, in the median, until
    another member first replied to them (among those who got a reply by the span's
    end; the rest are counted as unanswered)."""
    posted = 0
    waits: list[float] = []
    for newcomer in newcomers:
        first = newcomer.first_post_at
        if first is None or not span.start <= first < span.end:
            continue
        posted += 1
        reply = newcomer.first_reply_at
        if reply is not None and reply < span.end:
            waits.append((reply - first).total_seconds() / 3600)
    median = statistics.median(waits) if len(waits) >= MIN_GROUP else None
    return FirstReply(posted, len(waits), median)


@dataclass(frozen=True, slots=True)
class Cohort:
    """Members who joined in one month, and the share active in weeks 1, 4 and 12
    after joining (None: that week has not ended yet, or the cohort is too small)."""

    month: str
    size: int
    retained: Mapping[int, float | None]


def retention(
    newcomers: Iterable[Newcomer],
    activity_days: Mapping[str, Collection[date]],
    end: datetime,
    months: int = RETENTION_MONTHS,
) -> list[Cohort]:
    """Cohorts by join month, for the `months` months up to the one `end` falls in.
    A member is retained in week k when they were active on a day in
    [join day + 7(k-1), join day + 7k)."""
    last = (end - timedelta(microseconds=1)).date().replace(day=1)
    firsts = [last]
    for _ in range(months - 1):
        firsts.append((firsts[-1] - timedelta(days=1)).replace(day=1))
    by_month: dict[str, list[Newcomer]] = {first.strftime("%Y-%m"): [] for first in firsts}
    for newcomer in newcomers:
        key = newcomer.joined_at.strftime("%Y-%m")
        if key in by_month and newcomer.joined_at < end:
            by_month[key].append(newcomer)
    cohorts = []
    for month in sorted(by_month):
        members = by_month[month]
        retained: dict[int, float | None] = {}
        for week in RETENTION_WEEKS:
            begins = timedelta(days=7 * (week - 1))
            finishes = timedelta(days=7 * week)
            # Only members whose week k is over count; a cohort is reported once all are.
            if len(members) < MIN_GROUP or any(
                day_start(m.joined_at.date()) + finishes > end for m in members
            ):
                retained[week] = None
                continue
            kept = 0
            for member in members:
                joined = member.joined_at.date()
                days = activity_days.get(member.user_id, ())
                kept += any(joined + begins <= day < joined + finishes for day in days)
            retained[week] = kept / len(members)
        cohorts.append(Cohort(month, len(members), retained))
    return cohorts


# --- NPS -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Nps:
    answers: int
    promoters: int
    passives: int
    detractors: int

    @property
    def shown(self) -> bool:
        return self.answers >= MIN_NPS_ANSWERS

    @property
    def score(self) -> float | None:
        """% of 9–10 answers minus % of 0–6 answers, from -100 to 100."""
        if not self.shown:
            return None
        return 100 * (self.promoters - self.detractors) / self.answers

    @property
    def interval(self) -> tuple[float, float] | None:
        """The 95 % interval (normal approximation): each answer is +1 (promoter),
        0 (passive) or -1 (detractor); the NPS is 100 × their mean, whose variance is
        (p + d - (p - d)²) / n for shares p and d."""
        if not self.shown:
            return None
        n = self.answers
        promoters, detractors = self.promoters / n, self.detractors / n
        variance = (promoters + detractors - (promoters - detractors) ** 2) / n
        half = NPS_Z * 100 * math.sqrt(variance)
        score = 100 * (promoters - detractors)
        return max(-100.0, score - half), min(100.0, score + half)


def nps(scores: Iterable[int]) -> Nps:
    values = list(scores)
    if any(not 0 <= score <= 10 for score in values):
        raise ValueError("NPS answers are 0 to 10")
    promoters = sum(score >= 9 for score in values)
    detractors = sum(score <= 6 for score in values)
    return Nps(len(values), promoters, len(values) - promoters - detractors, detractors)


def score_counts(scores: Iterable[int]) -> list[int]:
    """How many answered 0, 1, … 10."""
    counts = [0] * 11
    for score in scores:
        counts[score] += 1
    return counts


# --- suggested actions -----------------------------------------------------------------

# Thresholds an organiser would act on; each suggestion carries the numbers that
# triggered it, and its wording lives in config/templates/health/suggestion.j2.
ACTIVATION_LOW = 0.5
ACTIVATION_DROP = 0.10
WEEKLY_RETURN_LOW = 0.4
MEET_RATE_LOW = 0.6
FIRST_REPLY_SLOW_HOURS = 24.0
ANSWER_RATE_LOW = 0.7
NPS_LOW = 0.0
RETENTION_WEEK_4_LOW = 0.3


@dataclass(frozen=True, slots=True)
class Suggestion:
    kind: str
    numbers: Mapping[str, float | int | str | None]


Row = Mapping[str, float | None]


def suggestions(
    current: Row,
    previous: Row,
    first_activation: Activation,
    cohorts: Sequence[Cohort],
) -> list[Suggestion]:
    """The actions the figures call for, most pressing first. `current` and
    `previous` are the headline figures of this period and the one before
    (bot.services.health.headline's keys)."""
    found: list[Suggestion] = []
    rate, was = current.get("activation_rate"), previous.get("activation_rate")
    if rate is not None and (
        rate < ACTIVATION_LOW or (was is not None and was - rate >= ACTIVATION_DROP)
    ):
        found.append(
            Suggestion(
                "activation",
                {
                    "rate": rate,
                    "was": was,
                    "never_acted": first_activation.never_acted,
                    "joined": first_activation.joined,
                },
            )
        )
    ratio = current.get("weekly_return")
    if ratio is not None and ratio < WEEKLY_RETURN_LOW:
        found.append(
            Suggestion(
                "weekly_return",
                {
                    "ratio": ratio,
                    "active_7d": current.get("active_7d"),
                    "active_30d": current.get("active_30d"),
                },
            )
        )
    hours = current.get("first_reply_hours")
    if hours is not None and hours > FIRST_REPLY_SLOW_HOURS:
        found.append(
            Suggestion("first_reply", {"hours": hours, "was": previous.get("first_reply_hours")})
        )
    meet = current.get("coffee.meet_rate")
    if meet is not None and meet < MEET_RATE_LOW:
        found.append(
            Suggestion("meet_rate", {"rate": meet, "was": previous.get("coffee.meet_rate")})
        )
    answered = current.get("ama.answer_rate")
    if answered is not None and answered < ANSWER_RATE_LOW:
        found.append(
            Suggestion(
                "ama_answers",
                {
                    "rate": answered,
                    "asked": current.get("ama.questions_asked"),
                    "answered": current.get("ama.questions_answered"),
                },
            )
        )
    score = current.get("nps")
    if score is not None and score < NPS_LOW:
        found.append(
            Suggestion(
                "nps",
                {"score": score, "was": previous.get("nps"), "answers": current.get("nps_answers")},
            )
        )
    for cohort in reversed(cohorts):
        kept = cohort.retained.get(4)
        if kept is not None:
            if kept < RETENTION_WEEK_4_LOW:
                found.append(
                    Suggestion(
                        "retention", {"month": cohort.month, "rate": kept, "size": cohort.size}
                    )
                )
            break
    return found


def change(current: float | None, previous: float | None) -> float | None:
    if current is None or previous is None:
        return None
    return current - previous


# --- satisfaction after a session ------------------------------------------------------------

# The one-tap questions the rituals already ask after a session, read from their
# own figures: (ritual, the figure, the figure that counts its answers). Coffee's
# "Did you meet?" is answered per group: its count is the groups that answered.
CSAT_SIGNALS = (
    ("coffee", "coffee.meet_rate", "coffee.answer_rate"),
    ("mentor", "mentor.median_rating", "mentor.ratings"),
    ("events", "events.average_rating", "events.ratings"),
    ("mastermind", "mastermind.average_rating", "mastermind.ratings"),
)


@dataclass(frozen=True, slots=True)
class Csat:
    ritual: str
    key: str
    # None below MIN_GROUP answers.
    value: float | None
    answers: int


def _answers(current: Mapping[str, float | None], ritual: str, count_key: str) -> int:
    """How many answered a ritual's question after a session."""
    if ritual == "coffee":
        # Coffee asks each group once: answered groups are a share of the groups.
        groups, rate = current.get("coffee.groups"), current.get(count_key)
        return round(groups * rate) if groups and rate is not None else 0
    return round(current.get(count_key) or 0)


def csat(current: Mapping[str, float | None]) -> list[Csat]:
    """One line per ritual that asked after a session this period, with its figure
    (hidden below MIN_GROUP answers) and how many answered."""
    lines = []
    for ritual, key, count_key in CSAT_SIGNALS:
        if answers := _answers(current, ritual, count_key):
            value = current.get(key) if answers >= MIN_GROUP else None
            lines.append(Csat(ritual, key, value, answers))
    return lines


def without_small_ratings(figures: Mapping[str, float | None]) -> dict[str, float | None]:
    """The figures with each ritual's rating hidden (None) when fewer than
    MIN_GROUP answered: a rating of two people tells what each of them said."""
    hidden = dict(figures)
    for ritual, key, count_key in CSAT_SIGNALS:
        if key in hidden and _answers(figures, ritual, count_key) < MIN_GROUP:
            hidden[key] = None
    return hidden


# --- the report ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Report:
    kind: str
    span: Span
    previous_span: Span
    current: Mapping[str, float | None]
    previous: Mapping[str, float | None]
    activation: Activation
    first_reply: FirstReply
    cohorts: Sequence[Cohort]
    nps: Nps
    score_counts: Sequence[int]
    daily_posters: Sequence[tuple[date, int]]
    suggestions: Sequence[Suggestion]
    # Newcomers of the period yet to take a first step (ids: the page names them
    # only when the organiser asks).
    yet_to_start: Sequence[Newcomer] = ()

    def rows(self) -> list[tuple[str, float | None, float | None, float | None]]:
        """(figure, this period, the period before, change), headline first."""
        keys = [*HEADLINE, *sorted(k for k in self.current if k not in HEADLINE)]
        return [
            (
                key,
                self.current.get(key),
                self.previous.get(key),
                change(self.current.get(key), self.previous.get(key)),
            )
            for key in keys
        ]


def is_share(key: str) -> bool:
    return key.endswith(SHARE_SUFFIXES)
