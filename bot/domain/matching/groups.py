"""`make_cohorts` and `backfill_seat`: groups of min..max members (masterminds, 5-7).

A group's cost comes in strict tiers, each 100 times the worst the tier below can add within
one group: same-company pairs, pairs grouped together before, no common weekly slot of
`min_slot_minutes` for the whole group, no challenge tag every member shares, everyone at
one seniority level.

Both "whole group" tests reduce to an AND of per-member bit masks, so they compose member by
member and a swap is priced without looking at the rest of the group again:
- tags: bit t set when the member has tag t; the group shares a tag iff the AND is non-zero;
- time: the week in 15-minute cells; bit c set when the member is free for the `cells`
  consecutive cells starting at c (wrapping round the week); the group has a common slot
  iff the AND is non-zero. Cells count only when wholly free, so a slot found is real.

The search: members in (tag, first free cell) order are dealt into groups chunk by chunk,
colleagues spread across the chunk's groups; then batched swaps between groups, costliest
groups first, each with partner groups near in that order and anywhere.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import compress
from operator import attrgetter

import numpy as np
import numpy.typing as npt

MINUTES_PER_WEEK = 7 * 24 * 60
CELL_MINUTES = 15
CELLS = MINUTES_PER_WEEK // CELL_MINUTES  # 672
SAME_COMPANY = 1e8  # per pair
GROUPED_BEFORE = 1e6  # per pair
NO_COMMON_SLOT = 1e4
NO_SHARED_TAG = 1e2
ONE_LEVEL = 1.0
EMPTY = -1
_IMPROVEMENT = 0.5
_GROUPS_PER_CHUNK = 8
_NEAR_PARTNERS = 4
_FAR_PARTNERS = 4
_REACH = 12
_MAX_ITERATIONS = 20
_MAX_STALLS = 3
_MAX_BATCH = 4096

IntArray = npt.NDArray[np.int64]
WordArray = npt.NDArray[np.uint64]
FloatArray = npt.NDArray[np.float64]
ALL_ONES = np.uint64(0xFFFFFFFFFFFFFFFF)


@dataclass(frozen=True, slots=True)
class Applicant:
    """Someone who wants a group. `availability` is weekly UTC minute intervals
    `(start, end)` with 0 = Monday 00:00 UTC and `end` up to 10080; an interval may wrap
    past the week's end (`end > 10080` is read modulo the week). `seniority` None is
    unknown and never makes a group one-level."""

    member_id: str
    company: str | None = None
    tags: frozenset[str] = frozenset()
    seniority: int | None = None
    availability: tuple[tuple[int, int], ...] = ()

    def __post_init__(self) -> None:
        for start, end in self.availability:
            if not 0 <= start < MINUTES_PER_WEEK or not start < end <= start + MINUTES_PER_WEEK:
                raise ValueError(f"bad availability ({start}, {end}) of {self.member_id}")


@dataclass(frozen=True, slots=True)
class CohortConfig:
    """Sizes and the history: `past_groups` lists groups of earlier cycles (any order);
    members who shared one count as grouped before."""

    target_size: int = 6
    min_size: int = 5
    max_size: int = 7
    min_slot_minutes: int = 60
    past_groups: tuple[tuple[str, ...], ...] = ()
    seed: int = 0
    time_budget_ms: float = 1000.0

    def __post_init__(self) -> None:
        if not 2 <= self.min_size <= self.target_size <= self.max_size:
            raise ValueError("sizes must satisfy 2 <= min_size <= target_size <= max_size")
        if not 0 < self.min_slot_minutes <= 24 * 60:
            raise ValueError("min_slot_minutes must lie in 1..1440")


@dataclass(frozen=True, slots=True)
class Cohort:
    """One group; `common_slot` is the first common free stretch of at least the minimum
    (weekly UTC minutes, `end` may pass 10080 when it wraps), None when there is none;
    `companies` counts members per known company."""

    members: tuple[str, ...]
    shared_tags: frozenset[str]
    common_slot: tuple[int, int] | None
    companies: tuple[tuple[str, int], ...]
    same_company_pairs: int
    grouped_before_pairs: int
    one_level: bool


@dataclass(frozen=True, slots=True)
class CohortQuality:
    applicants: int
    grouped: int
    groups: int
    same_company_pairs: int
    grouped_before_pairs: int
    without_common_slot: int
    without_shared_tag: int
    one_level_groups: int
    solver_ms: float


@dataclass(frozen=True, slots=True)
class CohortResult:
    """Every applicant is in exactly one cohort or in `left_out` with the reason."""

    cohorts: tuple[Cohort, ...]
    left_out: tuple[tuple[str, str], ...]
    quality: CohortQuality


@dataclass(frozen=True, slots=True)
class BackfillResult:
    """The applicant chosen for the open seat (None when nobody fits) and the group then."""

    chosen: str | None
    cohort: Cohort | None


# --- encoding --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Encoded:
    ids: list[str]
    company: IntArray  # -1 unknown
    level: IntArray  # -1 unknown
    masks: WordArray  # rows: slot-start words, then tag words
    slot_words: int
    tag_names: list[str]
    past_keys: IntArray  # sorted pair keys (low << 32 | high) of pairs grouped before
    first_cell: IntArray  # first slot-start cell, CELLS when none
    free: WordArray  # wholly free cells
    padded_masks: WordArray  # `masks` and an all-ones row, for EMPTY seats
    padded_free: WordArray  # `free` and an all-ones row
    past_bits: WordArray | None  # row a, bit b: a and b grouped before (None: use keys)


def _encode(applicants: Sequence[Applicant], config: CohortConfig) -> _Encoded:
    ids = [a.member_id for a in applicants]
    if len(set(ids)) != len(ids):
        raise ValueError("member ids must be unique")
    companies: dict[str, int] = {}
    company = np.array(
        [
            -1 if a.company is None else companies.setdefault(a.company, len(companies))
            for a in applicants
        ],
        dtype=np.int64,
    )
    level = np.array(
        [-1 if a.seniority is None else a.seniority for a in applicants], dtype=np.int64
    )
    tag_names = sorted({t for a in applicants for t in a.tags})
    tag_at = {t: k for k, t in enumerate(tag_names)}
    tag_bits = np.zeros((len(applicants), max(1, len(tag_names))), dtype=bool)
    rows = [k for k, a in enumerate(applicants) for _ in a.tags]
    cols = [tag_at[t] for a in applicants for t in a.tags]
    tag_bits[rows, cols] = True
    available = _free_cells(applicants)
    cells = -(-config.min_slot_minutes // CELL_MINUTES)
    starts = available.copy()
    for shift in range(1, cells):
        starts &= np.roll(available, -shift, axis=1)
    first_cell = np.where(starts.any(axis=1), starts.argmax(axis=1), CELLS)
    slot_masks = _pack(starts)
    masks = np.concatenate([slot_masks, _pack(tag_bits)], axis=1)
    position = {m: k for k, m in enumerate(ids)}
    low: list[int] = []
    high: list[int] = []
    for group in config.past_groups:
        present = sorted(position[m] for m in group if m in position)
        for seat, one in enumerate(present):
            for other in present[seat + 1 :]:
                low.append(one)
                high.append(other)
    keys = (
        np.unique((np.array(low, dtype=np.int64) << 32) | np.array(high, dtype=np.int64))
        if low
        else np.zeros(0, dtype=np.int64)
    )
    free = _pack(available)
    return _Encoded(
        ids,
        company,
        level,
        masks,
        slot_masks.shape[1],
        tag_names,
        keys,
        first_cell,
        free,
        _with_ones_row(masks),
        _with_ones_row(free),
        _past_bits(keys, len(ids)),
    )


# Up to this many applicants, pairs grouped before are also kept as one bit per pair
# (4.5 MB at 6,000): a look-up is then one gather instead of a binary search.
_PAST_BITS_LIMIT = 8192


def _past_bits(keys: IntArray, count: int) -> WordArray | None:
    if not keys.size or count > _PAST_BITS_LIMIT:
        return None
    words = -(-count // 64)
    low, high = keys >> 32, keys & 0xFFFFFFFF
    rows, cols = np.concatenate([low, high]), np.concatenate([high, low])
    bits = np.zeros(count * words, dtype=np.uint64)
    np.bitwise_or.at(
        bits, rows * words + (cols >> 6), np.uint64(1) << (cols & 63).astype(np.uint64)
    )
    return bits.reshape(count, words)


def _with_ones_row(words: WordArray) -> WordArray:
    return np.concatenate([words, np.full((1, words.shape[1]), ALL_ONES, dtype=np.uint64)])


def _free_cells(applicants: Sequence[Applicant]) -> npt.NDArray[np.bool_]:
    """Which 15-minute cells of the week each applicant is wholly free in (rows)."""
    owner = np.array([k for k, a in enumerate(applicants) for _ in a.availability], dtype=np.int64)
    spans = np.array([span for a in applicants for span in a.availability], dtype=np.int64)
    spans = spans.reshape(-1, 2)
    # Only wholly free cells count: round the start up and the end down.
    first = -(-spans[:, 0] // CELL_MINUTES)
    last = spans[:, 1] // CELL_MINUTES
    whole = last - first >= CELLS
    first, last = np.where(whole, 0, first), np.where(whole, CELLS, last)
    keep = last > first
    owner, first, last = owner[keep], first[keep], last[keep]
    wraps = last > CELLS
    # A wrapping interval is two: first..end of week and start of week..last - CELLS.
    owner = np.concatenate([owner, owner[wraps]])
    first = np.concatenate([first, np.zeros(int(wraps.sum()), dtype=np.int64)])
    last = np.concatenate([np.minimum(last, CELLS), last[wraps] - CELLS])
    # Mark every covered cell directly: a few hundred thousand cells against a dense
    # running sum over applicants x 672.
    length = last - first
    begin = np.repeat(owner * CELLS + first - (np.cumsum(length) - length), length)
    free = np.zeros(len(applicants) * CELLS, dtype=bool)
    free[begin + np.arange(int(length.sum()))] = True
    return free.reshape(len(applicants), CELLS)


def _pack(bits: npt.NDArray[np.bool_]) -> WordArray:
    """Rows of bits as rows of uint64 words."""
    width = -(-bits.shape[1] // 64) * 64
    padded = np.zeros((bits.shape[0], width), dtype=bool)
    padded[:, : bits.shape[1]] = bits
    packed = np.packbits(padded, axis=1, bitorder="little")
    return packed.view(np.uint64).reshape(bits.shape[0], -1).copy()


# --- pricing ---------------------------------------------------------------------------


class _Groups:
    """Groups as rows of member indices (EMPTY-padded) with what pricing needs per row."""

    def __init__(self, enc: _Encoded, slots: IntArray) -> None:
        self.enc = enc
        self.slots = slots
        self.width = slots.shape[1]
        self.cost = self.row_cost(slots)

    def row_cost(self, slots: IntArray) -> FloatArray:
        """Cost of each row of member indices (EMPTY where a seat is free)."""
        enc = self.enc
        valid = slots >= 0
        safe = np.where(valid, slots, 0)
        level = np.where(valid, enc.level[safe], -1)
        same, before = _pair_counts(enc, slots)
        acc = _common_masks(enc.padded_masks, slots)
        no_slot = ~acc[:, : enc.slot_words].any(axis=1)
        no_tag = ~acc[:, enc.slot_words :].any(axis=1)
        one_level = _one_level(level)
        return np.asarray(
            SAME_COMPANY * same
            + GROUPED_BEFORE * before
            + NO_COMMON_SLOT * no_slot
            + NO_SHARED_TAG * no_tag
            + ONE_LEVEL * one_level,
            dtype=np.float64,
        )

    def improve(self, rng: np.random.Generator, deadline: float) -> None:
        """Batched swaps between groups until no costly group finds an improving one."""
        stalls = 0
        count = len(self.slots)
        if count < 2:
            return
        width = self.width
        for iteration in range(_MAX_ITERATIONS):
            if stalls >= _MAX_STALLS or (iteration >= 4 and time.perf_counter() > deadline):
                return
            rows = np.flatnonzero(self.cost >= _IMPROVEMENT)
            if not rows.size:
                return
            if rows.size > _MAX_BATCH:
                rows = rows[np.argsort(-self.cost[rows], kind="stable")[:_MAX_BATCH]]
            steps = rng.integers(1, _REACH + 1, (rows.size, _NEAR_PARTNERS))
            steps *= rng.choice(np.array([-1, 1]), steps.shape)
            near = np.mod(rows[:, None] + steps, count)
            far = rng.integers(0, count, (rows.size, _FAR_PARTNERS))
            partners = np.concatenate([near, far], axis=1)
            # Each (row, partner): one seat of the row against every seat of the partner;
            # half the partners get the row's most conflicted seat (a colleague or an old
            # groupmate), half a random one.
            seats = rng.integers(0, width, (rows.size, partners.shape[1]))
            seats[:, ::2] = self._worst_seat(rows, rng)[:, None]
            g = np.repeat(rows, partners.shape[1] * width)
            h = np.repeat(partners.ravel(), width)
            s = np.repeat(seats.ravel(), width)
            t = np.tile(np.arange(width), rows.size * partners.shape[1])
            keep = (g != h) & (self.slots[g, s] != EMPTY) & (self.slots[h, t] != EMPTY)
            g, h, s, t = g[keep], h[keep], s[keep], t[keep]
            gain = self._swap_gain(g, s, h, t)
            applied = self._apply(g, s, h, t, gain)
            stalls = 0 if applied else stalls + 1

    def _worst_seat(self, rows: IntArray, rng: np.random.Generator) -> IntArray:
        """Per row, the seat with the most colleagues and old groupmates (ties at random)."""
        slots = self.slots[rows]
        valid = slots >= 0
        safe = np.where(valid, slots, 0)
        company = np.where(valid, self.enc.company[safe], -1)
        conflict = rng.random(slots.shape)  # below 1: only breaks ties
        for s in range(self.width):
            for t in range(s + 1, self.width):
                both = valid[:, s] & valid[:, t]
                bad = both & (company[:, s] == company[:, t]) & (company[:, s] >= 0)
                bad = bad | (both & _grouped_before(self.enc, safe[:, s], safe[:, t]))
                conflict[:, s] += bad
                conflict[:, t] += bad
        conflict[~valid] = -1.0
        return np.asarray(conflict.argmax(axis=1), dtype=np.int64)

    def _swap_gain(self, g: IntArray, s: IntArray, h: IntArray, t: IntArray) -> FloatArray:
        new_g = self.slots[g].copy()
        new_h = self.slots[h].copy()
        leaving, arriving = new_g[np.arange(g.size), s], new_h[np.arange(h.size), t]
        new_g[np.arange(g.size), s] = arriving
        new_h[np.arange(h.size), t] = leaving
        return np.asarray(
            self.row_cost(new_g) + self.row_cost(new_h) - self.cost[g] - self.cost[h],
            dtype=np.float64,
        )

    def _apply(self, g: IntArray, s: IntArray, h: IntArray, t: IntArray, gain: FloatArray) -> int:
        touched = np.zeros(len(self.slots), dtype=bool)
        applied = 0
        order = np.argsort(gain, kind="stable")
        for k in order[: np.searchsorted(gain[order], -_IMPROVEMENT)].tolist():
            gk, hk = int(g[k]), int(h[k])
            if touched[gk] or touched[hk]:
                continue
            touched[gk] = touched[hk] = True
            sk, tk = int(s[k]), int(t[k])
            self.slots[gk, sk], self.slots[hk, tk] = self.slots[hk, tk], self.slots[gk, sk]
            applied += 1
        if applied:
            rows = np.flatnonzero(touched)
            self.cost[rows] = self.row_cost(self.slots[rows])
        return applied


# --- sizes and placement ---------------------------------------------------------------


def group_plan(count: int, config: CohortConfig) -> list[int]:
    """Sizes of the groups for `count` applicants, largest first: as many placed as the
    bounds allow, then as close to the target size as possible."""
    best: tuple[int, float, int] | None = None
    for groups in range(1, count // config.min_size + 1):
        placed = min(count, groups * config.max_size)
        key = (placed, -abs(placed / groups - config.target_size), -groups)
        if best is None or key > (best[0], best[1], -best[2]):
            best = (placed, key[1], groups)
    if best is None:
        return []
    placed, _, groups = best
    base, extra = divmod(placed, groups)
    return [base + 1] * extra + [base] * (groups - extra)


def make_cohorts(applicants: Sequence[Applicant], config: CohortConfig) -> CohortResult:
    """Groups of `min_size`..`max_size` (about `target_size`) from `applicants` (DESIGN.md §5).

    Minimises, in strict priority order: same-company pairs, pairs grouped before (from
    `past_groups`, so re-forming a cycle is a call with last cycles' groups), groups with no
    common slot, groups with no shared tag, one-level groups. Nobody is left out unless the
    count cannot be split into groups within the bounds; then `left_out` says who and why
    (members of the largest companies first, the hardest to mix). Deterministic for a seed
    when the search converges inside `time_budget_ms`.
    """
    started = time.perf_counter()
    # Input order never matters: everything below works in id order.
    applicants = sorted(applicants, key=attrgetter("member_id"))
    enc = _encode(applicants, config)
    rng = np.random.default_rng(config.seed)
    sizes = group_plan(len(applicants), config)
    placed_count = sum(sizes)
    by_id = np.arange(len(applicants))
    company_size = np.bincount(np.maximum(enc.company, 0), minlength=1)
    colleagues = np.where(enc.company >= 0, company_size[np.maximum(enc.company, 0)], 0)
    jitter = rng.random(len(applicants))
    out_order = by_id[np.lexsort((jitter[by_id], -colleagues[by_id]))]
    left = out_order[: len(applicants) - placed_count]
    chosen = np.setdiff1d(by_id, left)  # stays in id order
    slots = _bucketed(enc, chosen, config, rng) if len(sizes) > 1 else None
    if slots is None:
        slots = _deal(enc, chosen, sizes, rng)
    groups = _Groups(enc, slots)
    groups.improve(rng, started + config.time_budget_ms / 1000.0)
    reason = (
        f"{len(applicants)} applicants cannot all fit groups of "
        f"{config.min_size}-{config.max_size}; waiting for the next cycle"
    )
    left_out = tuple((enc.ids[k], reason) for k in sorted(left.tolist(), key=enc.ids.__getitem__))
    cohorts = tuple(_describe(enc, applicants, groups.slots))
    quality = CohortQuality(
        applicants=len(applicants),
        grouped=placed_count,
        groups=len(cohorts),
        same_company_pairs=sum(c.same_company_pairs for c in cohorts),
        grouped_before_pairs=sum(c.grouped_before_pairs for c in cohorts),
        without_common_slot=sum(c.common_slot is None for c in cohorts),
        without_shared_tag=sum(not c.shared_tags for c in cohorts),
        one_level_groups=sum(c.one_level for c in cohorts),
        solver_ms=(time.perf_counter() - started) * 1000.0,
    )
    return CohortResult(cohorts, left_out, quality)


def _bucketed(
    enc: _Encoded, chosen: IntArray, config: CohortConfig, rng: np.random.Generator
) -> IntArray | None:
    """Initial groups from buckets of members who share a slot start and a tag.

    Buckets go most popular first; each forms as many groups of the target size as its
    still-free members fill, colleagues dealt apart. Whoever is left is dealt into groups
    of their own or takes a free seat (groups stay below `max_size` here). None when that
    would place fewer members than plain dealing, so the count rule always holds.
    """
    width = config.max_size
    tag_count = len(enc.tag_names)
    starts = _unpack(enc.masks[chosen, : enc.slot_words])[:, :CELLS]
    tags = _unpack(enc.masks[chosen, enc.slot_words :])[:, :tag_count]
    rows, cells = np.nonzero(starts)
    members, keys = [], []
    for tag in range(tag_count):
        has = tags[rows, tag]
        members.append(rows[has])
        keys.append(cells[has] * tag_count + tag)
    if not members:
        return None
    member = np.concatenate(members)
    key = np.concatenate(keys)
    # Keys are small: as 16-bit integers the stable sort is a radix sort.
    narrow = key.astype(np.uint16) if CELLS * tag_count <= np.iinfo(np.uint16).max else key
    order = np.argsort(narrow, kind="stable")
    member, key = member[order], key[order]
    bounds = np.flatnonzero(np.diff(key, prepend=-1, append=CELLS * tag_count + 1))
    counts = np.diff(bounds)
    popular = np.lexsort((rng.random(counts.size), -counts))
    free = np.ones(chosen.size, dtype=bool)
    rows_out: list[list[int]] = []
    target = config.target_size
    for k in popular.tolist():
        if counts[k] < target:
            break
        bucket = member[bounds[k] : bounds[k + 1]]
        bucket = bucket[free[bucket]]
        groups = bucket.size // target
        if not groups:
            continue
        bucket = rng.permutation(bucket)[: groups * target]
        bucket = bucket[np.argsort(enc.company[chosen[bucket]], kind="stable")]
        free[bucket] = False
        dealt = bucket.reshape(target, groups).T
        rows_out.extend(dealt.tolist())
    rest = np.flatnonzero(free)
    sizes = group_plan(rest.size, config)
    if sizes:
        extra = _deal(enc, chosen[rest], sizes, rng)
        # _deal works in applicant indices; map back to positions in `chosen`.
        position = np.full(len(enc.ids), EMPTY, dtype=np.int64)
        position[chosen] = np.arange(chosen.size)
        rows_out.extend([[int(position[m]) for m in row if m != EMPTY] for row in extra])
        placed_rest = np.zeros(chosen.size, dtype=bool)
        placed_rest[[m for row in rows_out[-len(sizes) :] for m in row]] = True
        rest = rest[~placed_rest[rest]]
    slots = np.full((len(rows_out), width), EMPTY, dtype=np.int64)
    for g, row in enumerate(rows_out):
        slots[g, : len(row)] = chosen[np.array(row, dtype=np.int64)]
    grouped = _Groups(enc, slots)
    for m in rest.tolist():
        size = (slots != EMPTY).sum(axis=1)
        room = np.flatnonzero(size < width)
        if not room.size:
            return None
        trial = slots[room].copy()
        trial[np.arange(room.size), size[room]] = chosen[m]
        best = int(room[int(np.argmin(grouped.row_cost(trial) - grouped.cost[room]))])
        slots[best, size[best]] = chosen[m]
        grouped.cost[best] = grouped.row_cost(slots[best : best + 1])[0]
    return slots


def _deal(enc: _Encoded, chosen: IntArray, sizes: list[int], rng: np.random.Generator) -> IntArray:
    """Initial groups: members ordered by (rarest-first tag, first free cell), cut in chunks
    of a few groups, each chunk dealt round-robin in company order so colleagues split up."""
    width = max(sizes, default=1)
    slots = np.full((len(sizes), width), EMPTY, dtype=np.int64)
    if not sizes:
        return slots
    tags = enc.masks[:, enc.slot_words :]
    # Each member's first tag (lowest bit set) as the cluster key; untagged last.
    first_tag = np.full(len(enc.ids), 64 * tags.shape[1], dtype=np.int64)
    for word in range(tags.shape[1] - 1, -1, -1):
        w = tags[:, word]
        has = w != 0
        lowest = w & (~w + np.uint64(1))
        bit = np.zeros(len(w), dtype=np.int64)
        bit[has] = np.log2(lowest[has].astype(np.float64)).astype(np.int64)
        first_tag = np.where(has, 64 * word + bit, first_tag)
    order = chosen[np.lexsort((rng.random(chosen.size), enc.first_cell[chosen], first_tag[chosen]))]
    position = 0
    for begin in range(0, len(sizes), _GROUPS_PER_CHUNK):
        chunk_sizes = sizes[begin : begin + _GROUPS_PER_CHUNK]
        members = order[position : position + sum(chunk_sizes)]
        position += members.size
        members = members[np.argsort(enc.company[members], kind="stable")]
        seats = [
            (k, seat) for seat in range(width) for k, size in enumerate(chunk_sizes) if seat < size
        ]
        for member, (k, seat) in zip(members.tolist(), seats, strict=True):
            slots[begin + k, seat] = member
    return slots


def _describe(enc: _Encoded, applicants: Sequence[Applicant], slots: IntArray) -> list[Cohort]:
    """Each row of member indices as a `Cohort`, the figures computed for all rows at once."""
    if not len(slots):
        return []
    valid = slots >= 0
    safe = np.where(valid, slots, 0)
    acc = _common_masks(enc.padded_masks, slots)
    free = _common_masks(enc.padded_free, slots)
    starts = _unpack(acc[:, : enc.slot_words])[:, :CELLS]
    tags = _unpack(acc[:, enc.slot_words :])[:, : len(enc.tag_names)]
    free_cells = _unpack(free)[:, :CELLS]
    has_slot = [bool(v) for v in np.asarray(starts.any(axis=1), dtype=bool).tolist()]
    first = starts.argmax(axis=1)
    # The free run from `first` on, around the week: the first busy cell at or after it in
    # the week laid twice end to end.
    busy = ~np.concatenate([free_cells, free_cells], axis=1)
    busy &= np.arange(2 * CELLS) >= first[:, None]
    length = np.where(busy.any(axis=1), busy.argmax(axis=1) - first, CELLS)
    length = np.minimum(length, CELLS)
    same, before = _pair_counts(enc, slots)
    one_level = _one_level(np.where(valid, enc.level[safe], -1))
    tag_rows = tags.tolist()
    cohorts = []
    for g, row in enumerate(slots.tolist()):
        members = [m for m in row if m != EMPTY]
        counts: dict[str, int] = {}
        for m in members:
            name = applicants[m].company
            if name is not None:
                counts[name] = counts.get(name, 0) + 1
        slot = None
        if has_slot[g]:
            begin = int(first[g]) * CELL_MINUTES
            slot = (begin, begin + int(length[g]) * CELL_MINUTES)
        cohorts.append(
            Cohort(
                members=tuple(sorted(enc.ids[m] for m in members)),
                shared_tags=frozenset(compress(enc.tag_names, tag_rows[g])),
                common_slot=slot,
                companies=tuple(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))),
                same_company_pairs=int(same[g]),
                grouped_before_pairs=int(before[g]),
                one_level=bool(one_level[g]),
            )
        )
    return cohorts


def _unpack(words: WordArray) -> npt.NDArray[np.bool_]:
    rows = np.ascontiguousarray(words).view(np.uint8).reshape(len(words), -1)
    return np.unpackbits(rows, axis=1, bitorder="little").astype(bool)


def _pair_counts(enc: _Encoded, slots: IntArray) -> tuple[IntArray, IntArray]:
    """Per row: same-company pairs and pairs grouped before, EMPTY seats in no pair.

    All pairs of seats are compared in one go, (rows, pairs) arrays instead of a loop.
    """
    width = slots.shape[1]
    first, second = np.triu_indices(width, 1)
    valid = slots >= 0
    # An unknown company or an empty seat gets a code of its own per seat: never equal.
    code = np.where(valid, enc.company[np.where(valid, slots, 0)], -1)
    code = np.where(code >= 0, code, -1 - np.arange(width))
    same = (code[:, first] == code[:, second]).sum(axis=1)
    if not enc.past_keys.size:
        return same, np.zeros(len(slots), dtype=np.int64)
    both = valid[:, first] & valid[:, second]
    met = _grouped_before(enc, slots[:, first], slots[:, second]) & both
    return same, met.sum(axis=1)


def _common_masks(masks: WordArray, slots: IntArray) -> WordArray:
    """AND of the member masks of each row; EMPTY seats take the all-ones row `masks`
    ends with."""
    seats = np.where(slots >= 0, slots, len(masks) - 1)
    acc = masks[seats[:, 0]]
    for seat in range(1, seats.shape[1]):
        acc &= masks[seats[:, seat]]
    return acc


def _grouped_before(enc: _Encoded, a: IntArray, b: IntArray) -> npt.NDArray[np.bool_]:
    """Whether each pair (a, b) was grouped before; False where either is EMPTY."""
    keys = enc.past_keys
    if enc.past_bits is not None:
        ok = (a >= 0) & (b >= 0)
        a, b = np.where(ok, a, 0), np.where(ok, b, 0)
        word = enc.past_bits[a, b >> 6] >> (b & 63).astype(np.uint64)
        return np.asarray((word & np.uint64(1)).astype(bool) & ok, dtype=bool)
    if not keys.size:
        return np.zeros(np.broadcast_shapes(a.shape, b.shape), dtype=bool)
    key = (np.minimum(a, b) << 32) | np.maximum(a, b)
    at = np.minimum(np.searchsorted(keys, key), keys.size - 1)
    return np.asarray(keys[at] == key, dtype=bool)


def _one_level(level: IntArray) -> npt.NDArray[np.bool_]:
    """Rows with at least two known levels (-1 unknown), all equal."""
    known = level >= 0
    high = np.where(known, level, -1).max(axis=1)
    low = np.where(known, level, np.iinfo(np.int64).max).min(axis=1)
    return np.asarray((known.sum(axis=1) >= 2) & (high == low), dtype=bool)


def backfill_seat(
    group: Sequence[str], applicants: Sequence[Applicant], config: CohortConfig
) -> BackfillResult:
    """The applicant who best fills one open seat of `group` (members given as applicants
    too, listed in `applicants`), by the same tiers; None when the group is full or no
    applicant is outside it. Ties go to the lowest id."""
    enc = _encode(applicants, config)
    position = {m: k for k, m in enumerate(enc.ids)}
    missing = [m for m in group if m not in position]
    if missing:
        raise ValueError(f"group members must be among the applicants: {missing}")
    members = np.array([position[m] for m in group], dtype=np.int64)
    outside = np.setdiff1d(np.arange(len(enc.ids)), members)
    if len(group) >= config.max_size or not outside.size:
        return BackfillResult(None, None)
    rows = np.concatenate(
        [np.broadcast_to(members, (outside.size, members.size)), outside[:, None]], axis=1
    )
    cost = _Groups(enc, rows[:1]).row_cost(rows)
    best = min(range(outside.size), key=lambda k: (cost[k], enc.ids[int(outside[k])]))
    row = rows[best]
    return BackfillResult(enc.ids[int(outside[best])], _describe(enc, applicants, row[None, :])[0])
