"""The cost of putting two members together, as arrays (DESIGN.md §5).

Costs come in strict priority tiers. Each tier weighs 100 times the next one down and the
grading inside a tier stays within 1.25x, so within any move the solvers consider (at most
eight pairs change) one higher-priority defect outweighs every lower one it could trade.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import count, islice
from operator import attrgetter, eq, lt
from typing import Protocol

import numpy as np
import numpy.typing as npt

from bot.domain.matching.model import (
    HOURS_PER_DAY,
    Candidate,
    CandidateTable,
    History,
    PairingConfig,
    StrArray,
    search_sorted_ids,
)

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

BLOCKED = 1e15
TRIO_AGAIN = 1e13  # per member who was in the trio last round too
# The announcement promises "never the same person twice in a row": a partner from the
# previous round outranks every other soft defect (#18).
PREVIOUS_PARTNER = 1e11
LOW_OVERLAP = 1e9
RECENT_REPEAT = 1e7  # met within the repeat window
OLD_REPEAT = 1e5  # met before the repeat window
SAME_COMPANY = 1e3
SAME_INDUSTRY = 1.0
# Differences below this are float noise or the decay of meetings long ago; ignoring them
# keeps the searches from cycling on ties.
IMPROVEMENT_EPS = 0.5
# How fast an old meeting fades: each further round ago keeps this share of the in-tier extra.
_OLD_MEETING_FADE = 0.8


def utc_window(
    offset: FloatArray, start: FloatArray, end: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """(UTC hour in 0..24 a local working day starts, its length in hours), elementwise.

    A day whose end is before its start crosses local midnight.
    """
    length = np.where(end > start, end - start, end - start + HOURS_PER_DAY)
    return np.mod(start - offset, HOURS_PER_DAY), length


def arc_overlap(
    start_a: FloatArray, length_a: FloatArray, start_b: FloatArray, length_b: FloatArray
) -> FloatArray:
    """Hours two arcs of the 24-hour circle share (elementwise, broadcasting)."""
    # Rotate so that arc a starts at 0; arc b then starts at `gap` and may wrap past 24.
    gap = np.mod(start_b - start_a, HOURS_PER_DAY)
    before_midnight = np.maximum(np.minimum(length_a, gap + length_b) - gap, 0.0)
    after_midnight = np.maximum(np.minimum(length_a, gap + length_b - HOURS_PER_DAY), 0.0)
    return np.asarray(before_midnight + after_midnight, dtype=np.float64)


def shared_working_hours(a: Candidate, b: Candidate) -> float:
    """Hours both members are inside their working day, on a 24-hour circle.

    Returns `math.inf` when either UTC offset is unknown: such a pair is never penalised.
    """
    if a.utc_offset_hours is None or b.utc_offset_hours is None:
        return math.inf
    start_a, length_a = utc_window(
        np.array(a.utc_offset_hours, dtype=np.float64),
        np.array(a.work_start_hour, dtype=np.float64),
        np.array(a.work_end_hour, dtype=np.float64),
    )
    start_b, length_b = utc_window(
        np.array(b.utc_offset_hours, dtype=np.float64),
        np.array(b.work_start_hour, dtype=np.float64),
        np.array(b.work_end_hour, dtype=np.float64),
    )
    return float(arc_overlap(start_a, length_a, start_b, length_b))


def too_little(shared_hours: FloatArray, min_shared_hours: float) -> BoolArray:
    """Whether shared hours fall short; exactly the minimum (up to float noise) is enough."""
    return shared_hours < min_shared_hours - 1e-9


def history_cost(rounds_ago: IntArray, repeat_window: int) -> FloatArray:
    """Cost of having met `rounds_ago` rounds ago (0 = never): recent worst, then fading."""
    ago = rounds_ago.astype(np.float64)
    window = max(repeat_window, 1)
    recent = RECENT_REPEAT * (1.0 + 0.25 * (repeat_window - ago) / window)
    old = OLD_REPEAT * (1.0 + 0.25 * _OLD_MEETING_FADE ** np.maximum(ago - repeat_window - 1, 0))
    cost = np.where(ago <= repeat_window, recent, old)
    cost = np.where(rounds_ago == 1, PREVIOUS_PARTNER, cost)
    return np.where(rounds_ago > 0, cost, 0.0)


@dataclass(frozen=True, slots=True)
class Problem:
    """The candidates of one round as arrays, indexed by position in id order."""

    ids: list[str]
    id_array: StrArray  # the same ids as an array
    window_start: FloatArray  # UTC hour the working day starts; NaN when the offset is unknown
    window_length: FloatArray
    company: IntArray  # code per member, -1 when unknown
    industry: IntArray
    company_count: int
    industry_count: int
    trio_last_round: BoolArray
    left_out_last_round: BoolArray
    blocked_keys: IntArray  # sorted pair keys, see `pair_key`
    min_shared_hours: float
    repeat_window: int

    @property
    def size(self) -> int:
        return len(self.ids)

    @property
    def has_blocks(self) -> bool:
        return self.blocked_keys.size > 0

    @property
    def oversize_penalty(self) -> FloatArray:
        """Extra cost of each member sitting in a trio that absorbs an odd count."""
        return np.where(self.trio_last_round, TRIO_AGAIN, 0.0)

    def pair_key(self, i: IntArray, j: IntArray) -> IntArray:
        """One integer per unordered pair, for sorted lookups."""
        return np.minimum(i, j) * self.size + np.maximum(i, j)

    def shared_hours(self, i: IntArray, j: IntArray) -> FloatArray:
        """Shared working hours per pair; infinite when an offset is unknown."""
        overlap = arc_overlap(
            self.window_start[i], self.window_length[i], self.window_start[j], self.window_length[j]
        )
        return np.where(np.isnan(overlap), np.inf, overlap)

    def low_overlap(self, i: IntArray, j: IntArray) -> BoolArray:
        return too_little(self.shared_hours(i, j), self.min_shared_hours)

    def same_company(self, i: IntArray, j: IntArray) -> BoolArray:
        return np.asarray((self.company[i] == self.company[j]) & (self.company[i] >= 0), dtype=bool)

    def same_industry(self, i: IntArray, j: IntArray) -> BoolArray:
        return np.asarray(
            (self.industry[i] == self.industry[j]) & (self.industry[i] >= 0), dtype=bool
        )

    def blocked(self, i: IntArray, j: IntArray) -> BoolArray:
        if not self.has_blocks:
            return np.zeros(np.broadcast_shapes(np.shape(i), np.shape(j)), dtype=bool)
        keys = self.pair_key(i, j)
        at = np.minimum(np.searchsorted(self.blocked_keys, keys), self.blocked_keys.size - 1)
        return np.asarray(self.blocked_keys[at] == keys, dtype=bool)

    def attribute_cost(self, i: IntArray, j: IntArray) -> FloatArray:
        """Every cost of a pair except meeting history, which lives in a `HistoryIndex`."""
        cost = LOW_OVERLAP * self.low_overlap(i, j)
        cost += SAME_COMPANY * self.same_company(i, j)
        cost += SAME_INDUSTRY * self.same_industry(i, j)
        if self.has_blocks:
            cost += BLOCKED * self.blocked(i, j)
        return np.asarray(cost, dtype=np.float64)

    def attribute_cost_matrix(self, members: IntArray) -> FloatArray:
        """`attribute_cost` of every pair of `members` (rows and columns in that order).

        Shared hours are computed once per distinct working window: a community has a few
        dozen of them, against hundreds of thousands of pairs.
        """
        start = self.window_start[members]
        unknown = np.isnan(start)
        windows = np.stack([np.where(unknown, -1.0, start), self.window_length[members]], axis=1)
        distinct, window_of = np.unique(windows, axis=0, return_inverse=True)
        window_of = window_of.ravel()
        overlap = arc_overlap(
            distinct[:, 0, None], distinct[:, 1, None], distinct[None, :, 0], distinct[None, :, 1]
        )
        never_low = distinct[:, 0] < 0  # unknown offset
        low = too_little(overlap, self.min_shared_hours)
        low &= ~never_low[:, None] & ~never_low[None, :]
        cost = LOW_OVERLAP * low[window_of[:, None], window_of[None, :]]
        for codes, weight in ((self.company, SAME_COMPANY), (self.industry, SAME_INDUSTRY)):
            code = codes[members]
            cost += weight * ((code[:, None] == code[None, :]) & (code >= 0)[:, None])
        if self.has_blocks:
            cost += BLOCKED * self.blocked(members[:, None], members[None, :])
        return np.asarray(cost, dtype=np.float64)


def _column_codes(
    candidates: Sequence[Candidate], name: str, into_id_order: IntArray
) -> tuple[IntArray, int]:
    """An integer code per member (in id order) for a text attribute, -1 for None, and an
    upper bound of the codes.

    Codes number values by their first appearance in id order, so they depend neither on
    the input order nor on the process's string hashing.
    """
    first_seen: dict[str | None, int] = {}
    # One pass over the objects: each member gets the input position where its value
    # first appeared.
    seen_at = np.fromiter(
        map(first_seen.setdefault, map(attrgetter(name), candidates), count()),
        np.int64,
        len(candidates),
    )[into_id_order]
    distinct, first_at, inverse = np.unique(seen_at, return_index=True, return_inverse=True)
    rank = np.empty(distinct.size, dtype=np.int64)
    rank[np.argsort(first_at, kind="stable")] = np.arange(distinct.size)
    codes = rank[inverse]
    if None in first_seen:
        codes[seen_at == first_seen[None]] = -1
    return codes, distinct.size


def _column_floats(candidates: Sequence[Candidate], name: str) -> FloatArray:
    """A float attribute of every member, in input order; NaN for None."""
    values = map(attrgetter(name), candidates)
    try:
        return np.fromiter(values, np.float64, len(candidates))
    except TypeError:  # some values are None
        column = map(attrgetter(name), candidates)
        return np.array([math.nan if v is None else v for v in column], dtype=np.float64)


def _positions(ids: list[str], members: Iterable[str]) -> IntArray:
    """Positions in the sorted `ids` of those `members` that are present."""
    found = []
    for member in members:
        at = bisect.bisect_left(ids, member)
        if at < len(ids) and ids[at] == member:
            found.append(at)
    return np.array(found, dtype=np.int64)


def _table_codes(codes: IntArray) -> tuple[IntArray, int]:
    """A table's codes renumbered by first appearance in id order, as `_column_codes` does,
    so a table and the same candidates as objects make the same problem."""
    if codes.size and codes.min() >= -1:
        # Codes are small: the first appearance of each comes from one pass, no sort.
        first_at = np.full(int(codes.max()) + 2, codes.size, dtype=np.int64)
        np.minimum.at(first_at, codes + 1, np.arange(codes.size))
        used = np.flatnonzero(first_at < codes.size)
        rank_of = np.empty(first_at.size, dtype=np.int64)
        rank_of[used[np.argsort(first_at[used], kind="stable")]] = np.arange(used.size)
        return np.where(codes == -1, -1, rank_of[codes + 1]), int(used.size)
    distinct, first_at, inverse = np.unique(codes, return_index=True, return_inverse=True)
    rank = np.empty(distinct.size, dtype=np.int64)
    rank[np.argsort(first_at, kind="stable")] = np.arange(distinct.size)
    renumbered = rank[inverse.ravel()]
    if distinct.size and distinct[0] == -1:
        renumbered[codes == -1] = -1
    return renumbered, int(distinct.size)


def _problem_from_table(
    table: CandidateTable,
) -> tuple[list[str], StrArray, FloatArray, FloatArray, IntArray, int, IntArray, int]:
    window_start, window_length = utc_window(
        table.utc_offset_hours, table.work_start_hour, table.work_end_hour
    )
    company, company_count = _table_codes(table.company)
    industry, industry_count = _table_codes(table.industry)
    return (
        table.member_ids.tolist(),
        table.member_ids,
        window_start,
        window_length,
        company,
        company_count,
        industry,
        industry_count,
    )


def build_problem(
    candidates: Sequence[Candidate] | CandidateTable, history: History, config: PairingConfig
) -> Problem:
    """Sort candidates by id (so input order never matters) and lay them out as arrays."""
    if isinstance(candidates, CandidateTable):
        return _finish_problem(*_problem_from_table(candidates), history, config)
    raw_ids = list(map(attrgetter("member_id"), candidates))
    size = len(raw_ids)
    if all(map(lt, raw_ids, islice(raw_ids, 1, None))):
        # Already in strictly increasing id order (say, from an ORDER BY): no sorting, and
        # no duplicates either.
        ids, into_id_order = raw_ids, np.arange(size)
    else:
        order = sorted(range(size), key=raw_ids.__getitem__)
        ids = list(map(raw_ids.__getitem__, order))
        if any(map(eq, ids, islice(ids, 1, None))):
            raise ValueError("member ids must be unique")
        into_id_order = np.array(order, dtype=np.int64)
    # Attributes are read in input order (a sequential pass over the objects each) and
    # then permuted into id order as arrays.
    offset = _column_floats(candidates, "utc_offset_hours")[into_id_order]
    starts = _column_floats(candidates, "work_start_hour")[into_id_order]
    ends = _column_floats(candidates, "work_end_hour")[into_id_order]
    window_start, window_length = utc_window(offset, starts, ends)
    company, company_count = _column_codes(candidates, "company", into_id_order)
    industry, industry_count = _column_codes(candidates, "industry", into_id_order)
    return _finish_problem(
        ids,
        np.array(ids, dtype=str) if ids else np.zeros(0, dtype=str),
        window_start,
        window_length,
        company,
        company_count,
        industry,
        industry_count,
        history,
        config,
    )


def _finish_problem(
    ids: list[str],
    id_array: StrArray,
    window_start: FloatArray,
    window_length: FloatArray,
    company: IntArray,
    company_count: int,
    industry: IntArray,
    industry_count: int,
    history: History,
    config: PairingConfig,
) -> Problem:
    size = len(ids)
    trio_last_round = np.zeros(size, dtype=bool)
    trio_last_round[_positions(ids, history.trio_last_round)] = True
    left_out_last_round = np.zeros(size, dtype=bool)
    left_out_last_round[_positions(ids, history.left_out_last_round)] = True
    blocked = [_positions(ids, pair) for pair in history.blocked]
    blocked_pairs = np.array([found for found in blocked if found.size == 2], dtype=np.int64)
    blocked_keys = (
        np.unique(blocked_pairs.min(axis=1) * size + blocked_pairs.max(axis=1))
        if blocked_pairs.size
        else np.zeros(0, dtype=np.int64)
    )
    return Problem(
        ids=ids,
        id_array=id_array,
        window_start=window_start,
        window_length=window_length,
        company=company,
        industry=industry,
        company_count=company_count,
        industry_count=industry_count,
        trio_last_round=trio_last_round,
        left_out_last_round=left_out_last_round,
        blocked_keys=blocked_keys,
        min_shared_hours=config.min_shared_hours,
        repeat_window=config.repeat_window,
    )


# From this many pairs, `ArrayHistory.rounds_ago` sorts them first.
_SORTED_LOOKUP = 512


class HistoryIndex(Protocol):
    """Answers "how many rounds ago did these two last meet" for arrays of pairs."""

    def rounds_ago(self, i: IntArray, j: IntArray) -> IntArray:
        """0 for pairs that never met."""
        ...


class ArrayHistory:
    """The round's share of the history as sorted pair keys in problem positions.

    Both id spaces are sorted, so mapping history indices to problem positions is monotonic
    and the history's sorted meetings stay sorted: no per-pair Python object, no sort.
    """

    def __init__(self, problem: Problem, history: History) -> None:
        ids = problem.id_array
        known = history.member_ids
        at = search_sorted_ids(ids, known)
        inside = at < ids.size
        found = np.zeros(known.size, dtype=bool)
        found[inside] = ids[at[inside]] == known[inside]
        position = np.where(found, at, -1)
        # Each round member's index in the history's ids (-1 for newcomers), so the round
        # can be carried into the history without looking ids up again.
        self.history_index = np.full(problem.size, -1, dtype=np.int64)
        self.history_index[at[found]] = np.flatnonzero(found)
        self.history_ids = known
        first, second = position[history.first], position[history.second]
        present = (first >= 0) & (second >= 0)
        self.first = first[present]
        self.second = second[present]
        self.ages = history.rounds_ago[present]
        self._keys = problem.pair_key(self.first, self.second)
        self._size = problem.size

    def rounds_ago(self, i: IntArray, j: IntArray) -> IntArray:
        if not self._keys.size:
            return np.zeros(np.broadcast_shapes(np.shape(i), np.shape(j)), dtype=np.int64)
        keys = np.minimum(i, j) * self._size + np.maximum(i, j)
        if keys.size < _SORTED_LOOKUP:
            at = np.minimum(np.searchsorted(self._keys, keys), self._keys.size - 1)
            return np.where(self._keys[at] == keys, self.ages[at], 0)
        # Many pairs at once (every pair of a round): binary searches in key order walk
        # the sorted keys forward, several times faster than in random order.
        order = np.argsort(keys.ravel())
        wanted = keys.ravel()[order]
        at = np.minimum(np.searchsorted(self._keys, wanted), self._keys.size - 1)
        ages = np.empty(keys.size, dtype=np.int64)
        ages[order] = np.where(self._keys[at] == wanted, self.ages[at], 0)
        return ages.reshape(keys.shape)


def group_sizes(member_count: int, group_size: int) -> list[int]:
    """Group sizes for `member_count` members, largest first; [] when nobody can be grouped."""
    if member_count < 2:
        return []
    if group_size == 2:
        return (
            [3] + [2] * ((member_count - 3) // 2) if member_count % 2 else [2] * (member_count // 2)
        )
    remainder = member_count % 3
    pairs = {0: 0, 1: 2, 2: 1}[remainder]
    return [3] * ((member_count - 2 * pairs) // 3) + [2] * pairs
