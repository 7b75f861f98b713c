"""`assign_mentors`: mentees to mentors with capacities, over sparse top-k candidates.

Every mentee is scored against every mentor in chunks (never the full matrix at once), only
each mentee's `top_k` best mentors are kept, and the assignment is an exact minimum-cost
full matching of that sparse graph over capacity slots: mentor m with capacity c becomes c
slots, slot s costing `spread * s` more than slot 0, so a mentor's third mentee must be
worth more than their first. That convex load cost is the spread term: a much-requested
mentor takes another strong mentee only when nobody else comes close. Each mentee also has
a private "no mentor" slot of score 0, so the matching always exists and a mentee whose
every candidate is excluded or scores nothing stays unmatched.

The top-k cut can leave a mentee out while a mentor they fit, outside their top k, still has
a seat (their candidates all went to mentees they fit better), and the spread term can
leave a seat empty rather than spend it on a weak pair. A second pass takes the mentees
left out and the mentors with seats left, scores just those pairs (each mentee's `top_k`
best among the free mentors, round after round until none is left) and seats as many of
them as it can, best objective among those: nobody stays unmatched while a mentor they may
have, scoring above `min_score`, has a free seat, which is what makes "the mentors who fit
were all taken" true when they are told it.

Hard rules (same company unless allowed, blocked, ended badly, fewer shared topics than
`min_shared_topics`) make a pair's score -inf before the top-k cut, so the candidates are
feasible pairs only and no seat is ever spent on a pair a rule forbids.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from bot.domain.matching.costs import arc_overlap, utc_window
from bot.domain.matching.model import HOURS_PER_DAY

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

MAX_CAPACITY = 5
# Score parts; the reasons name the parts that apply.
TOPIC_SCORE = 2.0  # per shared topic or goal, up to _MAX_TOPICS_SCORED
_MAX_TOPICS_SCORED = 3
GAP_SCORE = (0.0, 1.5, 2.0, 1.5, 0.5, 0.0)  # mentor this many levels above the mentee (5+: 0)
WRONG_WAY_SCORE = -2.0  # mentor below the mentee
OTHER_COMPANY_SCORE = 1.0
OVERLAP_SCORE = 2.0  # at a full working day of overlap, pro rata below
_FULL_OVERLAP_HOURS = 8.0
_CHUNK_PAIRS = 2_000_000  # mentee x mentor scores computed at once (16 MB of float64)
_LEVEL_WORDS = ("", "one level", "two levels", "three levels", "four levels")


@dataclass(frozen=True, slots=True)
class Mentee:
    """Someone looking for a mentor. `topics` are what they want to work on; `seniority` is a
    small level (0 = new, higher = more senior); hours as in `Candidate`."""

    member_id: str
    name: str = ""
    topics: frozenset[str] = frozenset()
    company: str | None = None
    seniority: int = 0
    utc_offset_hours: float | None = None
    work_start_hour: float = 9.0
    work_end_hour: float = 17.0


@dataclass(frozen=True, slots=True)
class Mentor:
    """Someone offering to mentor up to `capacity` (1..5) mentees at once."""

    member_id: str
    name: str = ""
    capacity: int = 1
    topics: frozenset[str] = frozenset()
    company: str | None = None
    seniority: int = 0
    utc_offset_hours: float | None = None
    work_start_hour: float = 9.0
    work_end_hour: float = 17.0

    def __post_init__(self) -> None:
        if not 1 <= self.capacity <= MAX_CAPACITY:
            raise ValueError(f"capacity must lie in 1..5, got {self.capacity} ({self.member_id})")


@dataclass(frozen=True, slots=True)
class AssignmentConfig:
    """How to assign. `blocked` and `ended_badly` are (mentee id, mentor id) pairs, as
    frozensets, never matched; `same_company_allowed` False excludes colleagues; a pair
    sharing fewer than `min_shared_topics` topics is never matched (0: topics only score)."""

    same_company_allowed: bool = False
    blocked: frozenset[frozenset[str]] = frozenset()
    ended_badly: frozenset[frozenset[str]] = frozenset()
    top_k: int = 20
    spread: float = 0.5
    min_score: float = 0.0
    min_shared_topics: int = 0

    def __post_init__(self) -> None:
        if self.top_k < 1:
            raise ValueError("top_k must be at least 1")
        if self.min_shared_topics < 0:
            raise ValueError("min_shared_topics must not be negative")
        if self.spread < 0:
            raise ValueError("spread must not be negative")


@dataclass(frozen=True, slots=True)
class MentorMatch:
    mentee_id: str
    mentor_id: str
    score: float
    reasons: tuple[str, ...]

    @property
    def explanation(self) -> str:
        """The reasons as one line a member can read."""
        return "; ".join(self.reasons)


@dataclass(frozen=True, slots=True)
class AssignmentQuality:
    """`objective` is the total score less the spread term, what the solver maximises;
    `load` is mentees per mentor in input order."""

    mentees: int
    mentors: int
    matched: int
    total_score: float
    objective: float
    over_capacity: int
    excluded_pairs_used: int
    load: tuple[int, ...]
    solver_ms: float

    @property
    def mean_score(self) -> float:
        return self.total_score / self.matched if self.matched else 0.0


@dataclass(frozen=True, slots=True)
class AssignmentResult:
    """Matches in mentee input order; `unmatched` names who got no mentor and why."""

    matches: tuple[MentorMatch, ...]
    unmatched: tuple[tuple[str, str], ...]
    quality: AssignmentQuality


@dataclass(frozen=True, slots=True)
class _People:
    """One side as arrays."""

    ids: list[str]
    topics: npt.NDArray[np.uint64]  # rows of bit words
    company: IntArray  # -1 unknown
    seniority: IntArray
    window: IntArray  # distinct working-window code, -1 when the offset is unknown


def _encode(
    mentees: Sequence[Mentee], mentors: Sequence[Mentor]
) -> tuple[_People, _People, FloatArray]:
    """Both sides as arrays, plus shared hours between every pair of distinct windows."""
    vocabulary: dict[str, int] = {}
    companies: dict[str, int] = {}
    windows: dict[tuple[float, float, float], int] = {}
    everyone: list[Mentee | Mentor] = [*mentees, *mentors]
    for person in everyone:
        for topic in sorted(person.topics):
            vocabulary.setdefault(topic, len(vocabulary))
    words = max(1, -(-len(vocabulary) // 64))
    bits = np.zeros((len(everyone), words), dtype=np.uint64)
    company = np.full(len(everyone), -1, dtype=np.int64)
    window = np.full(len(everyone), -1, dtype=np.int64)
    for row, person in enumerate(everyone):
        for topic in person.topics:
            code = vocabulary[topic]
            bits[row, code // 64] |= np.uint64(1 << (code % 64))
        if person.company is not None:
            company[row] = companies.setdefault(person.company, len(companies))
        if person.utc_offset_hours is not None:
            key = (person.utc_offset_hours, person.work_start_hour, person.work_end_hour)
            window[row] = windows.setdefault(key, len(windows))
    seniority = np.fromiter((p.seniority for p in everyone), np.int64, len(everyone))
    table = np.array(list(windows) or [(0.0, 9.0, 17.0)], dtype=np.float64)
    start, length = utc_window(table[:, 0], table[:, 1], table[:, 2])
    overlap = arc_overlap(start[:, None], length[:, None], start[None, :], length[None, :])
    cut = len(mentees)

    def side(people: Sequence[Mentee | Mentor], rows: slice) -> _People:
        return _People(
            [p.member_id for p in people], bits[rows], company[rows], seniority[rows], window[rows]
        )

    return side(mentees, slice(0, cut)), side(mentors, slice(cut, None)), overlap


@dataclass(frozen=True, slots=True)
class _FitTable:
    """Seniority gap and time overlap scores depend on (level, window) alone: a few dozen
    codes a side, so they are one table look-up per pair instead of arithmetic per pair."""

    mentee_code: IntArray
    mentor_code: IntArray
    table: npt.NDArray[np.float32]


def _fit_table(mentees: _People, mentors: _People, overlap: FloatArray) -> _FitTable:
    windows = overlap.shape[0]
    levels = np.unique(np.concatenate([mentees.seniority, mentors.seniority]))

    # Code = level rank * (windows + 1) + window, the last window standing for unknown.
    def codes(people: _People) -> IntArray:
        window = np.where(people.window >= 0, people.window, windows)
        rank = np.searchsorted(levels, people.seniority)
        return np.asarray(rank * (windows + 1) + window, dtype=np.int64)

    level_of = np.repeat(levels, windows + 1)
    window_of = np.tile(np.arange(windows + 1), levels.size)
    gap = level_of[None, :] - level_of[:, None]  # mentor (column) above mentee (row)
    gap_table = np.array(GAP_SCORE)
    table = np.where(gap < 0, WRONG_WAY_SCORE, gap_table[np.clip(gap, 0, len(GAP_SCORE) - 1)])
    known = np.append(np.ones(windows, dtype=bool), False)
    padded = np.zeros((windows + 1, windows + 1))
    padded[:windows, :windows] = overlap
    a, b = window_of[:, None], window_of[None, :]
    hours = np.where(known[a] & known[b], padded[a, b], _FULL_OVERLAP_HOURS / 2)
    table = table + OVERLAP_SCORE * np.minimum(hours, _FULL_OVERLAP_HOURS) / _FULL_OVERLAP_HOURS
    return _FitTable(codes(mentees), codes(mentors), table.astype(np.float32))


def _topic_table(min_shared_topics: int) -> npt.NDArray[np.float32]:
    """Score by shared topic count (the last entry stands for that many or more): -inf
    below `min_shared_topics`, so the topic rule costs no pass of its own."""
    shared = np.arange(max(_MAX_TOPICS_SCORED, min_shared_topics) + 1)
    table = TOPIC_SCORE * np.minimum(shared, _MAX_TOPICS_SCORED)
    return np.where(shared < min_shared_topics, -np.inf, table).astype(np.float32)


def _shared_topics(
    mentees: _People, rows: slice | IntArray, mentors: _People
) -> npt.NDArray[np.uint8]:
    """How many topics each of mentees[rows] shares with each mentor."""
    shared: npt.NDArray[np.uint8] = np.bitwise_count(
        mentees.topics[rows, 0, None] & mentors.topics[None, :, 0]
    )
    for word in range(1, mentees.topics.shape[1]):
        shared += np.bitwise_count(mentees.topics[rows, word, None] & mentors.topics[None, :, word])
    return shared


def _scores(
    mentees: _People,
    rows: slice | IntArray,
    mentors: _People,
    fit: _FitTable,
    config: AssignmentConfig,
) -> npt.NDArray[np.float32]:
    """Fit of mentees[rows] with every mentor; -inf where excluded by company or by too
    few shared topics."""
    score = fit.table[fit.mentee_code[rows, None], fit.mentor_code[None, :]]
    topic = _topic_table(config.min_shared_topics)
    score += topic[np.minimum(_shared_topics(mentees, rows, mentors), topic.size - 1)]
    mine, theirs = mentees.company[rows, None], mentors.company[None, :]
    same = (mine == theirs) & (mine >= 0)
    score += np.float32(OTHER_COMPANY_SCORE)
    if config.same_company_allowed:
        score[same] -= np.float32(OTHER_COMPANY_SCORE)
    else:
        score[same] = -np.inf
    return score


def _subset(people: _People, rows: IntArray) -> _People:
    """people[rows] as a side of its own: the second pass scores just those."""
    return _People(
        [people.ids[k] for k in rows.tolist()],
        people.topics[rows],
        people.company[rows],
        people.seniority[rows],
        people.window[rows],
    )


def _excluded(
    mentees: _People, mentors: _People, pairs: Iterable[frozenset[str]]
) -> tuple[IntArray, IntArray]:
    mentee_at = {m: k for k, m in enumerate(mentees.ids)}
    mentor_at = {m: k for k, m in enumerate(mentors.ids)}
    rows, cols = [], []
    for pair in pairs:
        for a in pair:
            for b in pair:
                if a in mentee_at and b in mentor_at:
                    rows.append(mentee_at[a])
                    cols.append(mentor_at[b])
    return np.array(rows, dtype=np.int64), np.array(cols, dtype=np.int64)


def candidate_scores(
    mentees: Sequence[Mentee], mentors: Sequence[Mentor], config: AssignmentConfig
) -> tuple[IntArray, IntArray, FloatArray]:
    """Each mentee's top-k mentors as (mentee index, mentor index, score), hard exclusions
    and scores below `min_score` dropped. Public for the bench's dense reference."""
    left, right, overlap = _encode(mentees, mentors)
    return _top_k(left, right, overlap, config, config.top_k)


def _top_k(
    left: _People, right: _People, overlap: FloatArray, config: AssignmentConfig, k: int
) -> tuple[IntArray, IntArray, FloatArray]:
    bad_rows, bad_cols = _excluded(left, right, config.blocked | config.ended_badly)
    fit = _fit_table(left, right, overlap)
    k = min(k, len(right.ids))
    step = max(1, _CHUNK_PAIRS // max(1, len(right.ids)))
    rows_out, cols_out, scores_out = [], [], []
    for begin in range(0, len(left.ids), step):
        rows = slice(begin, min(begin + step, len(left.ids)))
        score = _scores(left, rows, right, fit, config)
        inside = (bad_rows >= rows.start) & (bad_rows < rows.stop)
        score[bad_rows[inside] - rows.start, bad_cols[inside]] = -np.inf
        best = np.argpartition(-score, k - 1, axis=1)[:, :k] if k < score.shape[1] else None
        if best is None:
            best = np.broadcast_to(np.arange(score.shape[1]), score.shape)
        picked = np.take_along_axis(score, best, axis=1)
        keep = picked > config.min_score
        mentee = np.broadcast_to(np.arange(rows.start, rows.stop)[:, None], best.shape)
        rows_out.append(mentee[keep])
        cols_out.append(best[keep])
        scores_out.append(picked[keep])
    if not rows_out:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, np.zeros(0)
    scores = np.concatenate(scores_out).astype(np.float64)
    return np.concatenate(rows_out), np.concatenate(cols_out), scores


def slot_layout(capacities: IntArray) -> tuple[IntArray, IntArray]:
    """(mentor of each slot, rank of the slot within its mentor, 0-based)."""
    owner = np.repeat(np.arange(capacities.size), capacities)
    first = np.cumsum(capacities) - capacities
    return owner, np.arange(owner.size) - first[owner]


def assign_mentors(
    mentees: Sequence[Mentee], mentors: Sequence[Mentor], config: AssignmentConfig
) -> AssignmentResult:
    """Each mentee at most one mentor, each mentor at most `capacity` mentees, maximising
    total fit less the spread term over each mentee's `top_k` candidates (DESIGN.md §5),
    then seating whoever that leaves out at the mentors with seats left, over every mentor.

    Deterministic: no randomness at all; ties go the way the exact solver takes them.
    """
    started = time.perf_counter()
    if len({m.member_id for m in mentees}) != len(mentees) or len(
        {m.member_id for m in mentors}
    ) != len(mentors):
        raise ValueError("member ids must be unique on each side")
    left, right, overlap = _encode(mentees, mentors)
    rows, cols, scores = _top_k(left, right, overlap, config, config.top_k)
    capacities = np.fromiter((m.capacity for m in mentors), np.int64, len(mentors))
    mentor_of = np.full(len(mentees), -1, dtype=np.int64)
    score_of = np.zeros(len(mentees))
    if rows.size:
        taken = np.zeros(len(mentors), dtype=np.int64)
        who, where, score = _seat(rows, cols, scores, taken, capacities, config.spread)
        mentor_of[who], score_of[who] = where, score
    _fill_free_seats(left, right, overlap, config, capacities, mentor_of, score_of)
    return _result(mentees, mentors, config, left, right, overlap, mentor_of, score_of, started)


def _fill_free_seats(
    left: _People,
    right: _People,
    overlap: FloatArray,
    config: AssignmentConfig,
    capacities: IntArray,
    mentor_of: IntArray,
    score_of: FloatArray,
) -> None:
    """The second pass, in place: the mentees the main solve left out, over the mentors with
    a seat still free, every one of them rather than the top k of all mentors. Each round
    scores just those pairs, keeps each mentee's `top_k` best free mentors (so memory stays
    that of the main solve however many are left out) and seats as many mentees as it can,
    best objective among those: leaving one out costs more than any set of matches, and the
    seats left cost `spread` times their rank among the mentor's mentees, as in the main
    solve. Only free seats are slots, so no capacity is exceeded. A mentee a round leaves
    out found every candidate full, and the next looks further; every round seats someone,
    and the pass ends when nobody left out has a mentor they may have, scoring above
    `min_score`, with a free seat."""
    while True:
        missing = np.flatnonzero(mentor_of < 0)
        load = np.bincount(mentor_of[mentor_of >= 0], minlength=capacities.size)
        free = np.flatnonzero(load < capacities)
        if not missing.size or not free.size:
            return
        mentees, mentors = _subset(left, missing), _subset(right, free)
        rows, cols, scores = _top_k(mentees, mentors, overlap, config, config.top_k)
        if not rows.size:
            return
        who, where, score = _seat(
            rows,
            cols,
            scores,
            load[free],
            capacities[free] - load[free],
            config.spread,
            seat_all=True,
        )
        mentor_of[missing[who]], score_of[missing[who]] = free[where], score


def _seat(
    rows: IntArray,
    cols: IntArray,
    scores: FloatArray,
    taken: IntArray,
    seats: IntArray,
    spread: float,
    *,
    seat_all: bool = False,
) -> tuple[IntArray, IntArray, FloatArray]:
    """Mentees (rows) matched to mentors (cols, unique per row) with `seats` seats left
    and `taken` already taken, maximising total score less the spread term (a seat costs
    `spread` times its rank among its mentor's mentees): one edge per (mentee, seat of a
    candidate), then one private "no mentor" slot per mentee. That slot is worth a pair of
    score 0, or with `seat_all`, less than every set of matches, so that as many mentees as
    possible are seated. Returns the matched (rows, cols) and their scores."""
    mentees = int(rows.max()) + 1
    slot_start = np.cumsum(seats) - seats
    per_edge = seats[cols]
    within = _ranks_within(per_edge)
    edge_rows = np.repeat(rows, per_edge)
    edge_slot = np.repeat(slot_start[cols], per_edge) + within
    edge_score = np.repeat(scores, per_edge) - spread * (np.repeat(taken[cols], per_edge) + within)
    # Costs are shifted positive (at least 1): the matching is full on the mentee side,
    # so a constant per mentee changes nothing.
    shift = float(edge_score.max()) + 1.0
    cost = shift - edge_score
    left_out = float(cost.max()) * mentees + 1.0 if seat_all else shift
    slots = int(seats.sum())
    # Imported here: scipy.sparse costs every process ~0.2 s and ~15 MB at start, and
    # only a mentor assignment needs it.
    from scipy.sparse import csr_array  # type: ignore[import-untyped]
    from scipy.sparse.csgraph import (  # type: ignore[import-untyped]
        min_weight_full_bipartite_matching,
    )

    graph = csr_array(
        (
            np.concatenate([cost, np.full(mentees, left_out)]),
            (
                np.concatenate([edge_rows, np.arange(mentees)]),
                np.concatenate([edge_slot, slots + np.arange(mentees)]),
            ),
        ),
        shape=(mentees, slots + mentees),
    )
    matched_rows, matched_slots = min_weight_full_bipartite_matching(graph)
    real = matched_slots < slots
    who = matched_rows[real]
    where = np.repeat(np.arange(seats.size), seats)[matched_slots[real]]
    # Pairs are unique per (mentee, mentor): find each match's score.
    keys = rows * seats.size + cols
    order = np.argsort(keys, kind="stable")
    at = order[np.searchsorted(keys[order], who * seats.size + where)]
    return who, where, scores[at]


def _ranks_within(counts: IntArray) -> IntArray:
    """0..c-1 for each count c, concatenated."""
    starts = np.cumsum(counts) - counts
    return np.arange(int(counts.sum())) - np.repeat(starts, counts)


def _result(
    mentees: Sequence[Mentee],
    mentors: Sequence[Mentor],
    config: AssignmentConfig,
    left: _People,
    right: _People,
    overlap: FloatArray,
    mentor_of: IntArray,
    score_of: FloatArray,
    started: float,
) -> AssignmentResult:
    excluded = config.blocked | config.ended_badly
    load = np.bincount(mentor_of[mentor_of >= 0], minlength=len(mentors))
    matches: list[MentorMatch] = []
    unmatched: list[tuple[str, str]] = []
    bad = 0
    allowed = _allowed_mentors(left, right, config)
    missing = np.flatnonzero(mentor_of < 0)
    on_topic, feasible, fitting = _topic_counts(left, right, overlap, config, missing)
    why = {
        int(row): _why_unmatched(
            int(allowed[row]),
            int(topical),
            int(allowed_on_topic),
            int(fits),
            len(mentors),
            config.min_shared_topics,
        )
        for row, topical, allowed_on_topic, fits in zip(
            missing, on_topic, feasible, fitting, strict=True
        )
    }
    mine = left.window[np.arange(len(mentees))]
    theirs = right.window[np.maximum(mentor_of, 0)] if mentors else np.full(len(mentees), -1)
    hours = np.where(
        (mine >= 0) & (theirs >= 0), overlap[np.maximum(mine, 0), np.maximum(theirs, 0)], np.nan
    ).tolist()
    for k, (mentee, m, score) in enumerate(
        zip(mentees, mentor_of.tolist(), score_of.tolist(), strict=True)
    ):
        if m < 0:
            unmatched.append((mentee.member_id, why[k]))
            continue
        mentor = mentors[m]
        bad += frozenset((mentee.member_id, mentor.member_id)) in excluded
        bad += not config.same_company_allowed and _same_company(mentee, mentor)
        bad += len(mentee.topics & mentor.topics) < config.min_shared_topics
        said = reasons(mentee, mentor, None if hours[k] != hours[k] else hours[k])
        matches.append(MentorMatch(mentee.member_id, mentor.member_id, score, said))
    total = float(score_of[mentor_of >= 0].sum())
    capacities = np.fromiter((m.capacity for m in mentors), np.int64, len(mentors))
    spread_cost = config.spread * float(sum(n * (n - 1) / 2 for n in load.tolist()))
    quality = AssignmentQuality(
        mentees=len(mentees),
        mentors=len(mentors),
        matched=len(matches),
        total_score=total,
        objective=total - spread_cost,
        over_capacity=int((load > capacities).sum()),
        excluded_pairs_used=bad,
        load=tuple(load.tolist()),
        solver_ms=(time.perf_counter() - started) * 1000.0,
    )
    return AssignmentResult(tuple(matches), tuple(unmatched), quality)


def _same_company(a: Mentee, b: Mentor) -> bool:
    return a.company is not None and a.company == b.company


def _allowed_mentors(left: _People, right: _People, config: AssignmentConfig) -> IntArray:
    """How many mentors no hard exclusion rules out, per mentee."""
    count = np.full(len(left.ids), len(right.ids), dtype=np.int64)
    colleagues = np.bincount(right.company[right.company >= 0], minlength=1)
    known = (left.company >= 0) & (left.company < colleagues.size)
    if not config.same_company_allowed:
        count[known] -= colleagues[left.company[known]]
    rows, cols = _excluded(left, right, config.blocked | config.ended_badly)
    if rows.size:
        pair = np.unique(rows * len(right.ids) + cols)
        rows, cols = pair // len(right.ids), pair % len(right.ids)
        same = (left.company[rows] == right.company[cols]) & (left.company[rows] >= 0)
        counted = config.same_company_allowed | ~same  # colleagues are already taken off
        count -= np.bincount(rows[counted], minlength=len(left.ids))
    return count


def _topic_counts(
    left: _People, right: _People, overlap: FloatArray, config: AssignmentConfig, rows: IntArray
) -> tuple[IntArray, IntArray, IntArray]:
    """For mentees[rows] (ascending): how many mentors share `min_shared_topics` topics,
    how many of those no other hard rule excludes either, and how many of those score
    above `min_score`. Scored the way `_top_k` scores, so a reason never disagrees with
    the rule; only the unmatched are scored."""
    if not rows.size:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, empty
    bad_rows, bad_cols = _excluded(left, right, config.blocked | config.ended_badly)
    at = np.searchsorted(rows, bad_rows)
    hit = at < rows.size
    hit[hit] = rows[at[hit]] == bad_rows[hit]
    at, bad_cols = at[hit], bad_cols[hit]
    fit = _fit_table(left, right, overlap)
    step = max(1, _CHUNK_PAIRS // max(1, len(right.ids)))
    on_topic, feasible, fitting = [], [], []
    for begin in range(0, rows.size, step):
        chunk = rows[begin : begin + step]
        shared = _shared_topics(left, chunk, right)
        on_topic.append((shared >= config.min_shared_topics).sum(axis=1))
        score = _scores(left, chunk, right, fit, config)
        inside = (at >= begin) & (at < begin + chunk.size)
        score[at[inside] - begin, bad_cols[inside]] = -np.inf
        feasible.append(np.isfinite(score).sum(axis=1))
        fitting.append((score > config.min_score).sum(axis=1))
    return np.concatenate(on_topic), np.concatenate(feasible), np.concatenate(fitting)


def _why_unmatched(
    allowed: int, on_topic: int, feasible: int, fitting: int, mentors: int, topics: int
) -> str:
    """`allowed`: mentors no company, block or past-pair rule excludes; `on_topic`: mentors
    sharing `topics` topics; `feasible`: mentors both count; `fitting`: feasible mentors
    scoring above the minimum. The second pass leaves nobody out while a fitting mentor
    has a free seat, so "taken" is said only when every fitting mentor is full."""
    words = "works on their topics" if topics <= 1 else f"shares {topics} of their topics"
    if not mentors:
        return "no mentors this cycle"
    if on_topic <= 0:
        return f"no mentor with a free seat {words}"
    if allowed <= 0:
        return "every mentor is excluded (same company, blocked or a past pair)"
    if feasible <= 0:
        return f"every mentor who {words} is excluded (same company, blocked or a past pair)"
    if fitting <= 0:
        return "no mentor they could have fits them well enough"
    return "the mentors who fit were all taken by mentees they fit better"


def reasons(mentee: Mentee, mentor: Mentor, hours: float | None) -> tuple[str, ...]:
    """Why a match fits, in words a member can read; `hours` of shared working time, None
    when unknown."""
    said: list[str] = []
    common = sorted(mentee.topics & mentor.topics)
    if common:
        said.append("both work on " + _and(common))
    if hours is not None and hours > 0:
        shown = f"{hours:g}" if hours < HOURS_PER_DAY else "24"
        said.append(f"{shown} h overlap")
    gap = mentor.seniority - mentee.seniority
    who = mentor.name or mentor.member_id
    if 0 < gap < len(_LEVEL_WORDS):
        said.append(f"{who} is {_LEVEL_WORDS[gap]} senior")
    elif gap >= len(_LEVEL_WORDS):
        said.append(f"{who} is {gap} levels senior")
    known = mentee.company is not None and mentor.company is not None
    if known and mentee.company != mentor.company:
        said.append("different companies")
    return tuple(said)


def _and(words: Sequence[str]) -> str:
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]
