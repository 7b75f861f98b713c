"""Solver for big communities (thousands to tens of thousands of members).

No cost matrix: every cost is computed for the arrays of pairs being priced.

1. Cost-aware start. Members are ordered around the clock by the middle of their working
   day (the clock cut where it is emptiest) and cut into chunks of neighbours in time. Inside a
   chunk, members are ordered by industry and company blocks and member k joins member
   k + chunk/g (g = group size), so nobody meets their own company or industry unless it
   fills more than 1/g of the chunk.
2. Batched randomized swap search on attribute costs (blocks, timezone, company): each
   group with a defect is priced against random groups nearby in time, a few anywhere and
   other defective groups, all at once; the best swaps touching disjoint groups are applied
   together.
3. History is looked up only for the pairs formed. The same search then repairs repeats
   (and same-industry pairs), pricing swaps on attributes and looking up the history of
   just the few most promising new pairs per group before applying them.
4. Odd-sized groups move through stand-ins, placeholder members every group with a defect
   may swap with, so they drift to where the remainder is unavoidable (a timezone cluster
   whose count does not divide evenly). With pairs and an odd count, one stand-in is
   paired at first with a random member who was not in a trio last round; it costs
   nothing next to anyone but last round's trio members, and its final partner joins the
   pair they fit best, forming the round's only trio. With trios, each remainder pair is
   a trio with a stand-in, which costs nothing next to anyone. One swap moves one
   stand-in, so a remainder that needs both pairs of a round of trios moved at once may
   stay put: at most a pair or two among thousands, where the small-community solver
   restarts its search instead.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from bot.domain.matching.costs import (
    BLOCKED,
    IMPROVEMENT_EPS,
    LOW_OVERLAP,
    SAME_COMPANY,
    FloatArray,
    HistoryIndex,
    IntArray,
    Problem,
    history_cost,
)
from bot.domain.matching.model import HOURS_PER_DAY

EMPTY = -1
STAND_IN = -2
_GROUPS_PER_CHUNK = 64
_REACH = 64  # how far (in groups, along the clock order) a nearby partner may sit
_NEARBY_PARTNERS = 12
_ANYWHERE_PARTNERS = 4
# Groups still carrying a timezone gap or worse after the search are normally a handful;
# each is then priced against up to this many groups anywhere, fewer when they are many.
_WIDE_PARTNERS = 2048
_WIDE_WORK = 65536  # groups x partners per step of that wider search
_DEFECTIVE_PARTNERS = 4
_MAX_BATCH = 4096
_SHORTLIST = 4
_MAX_STALLS = 3
_GUARANTEED_ITERATIONS = 4
_MAX_ITERATIONS = 200
_TRIO_CHOICES = 16


def solve_sparse(
    problem: Problem,
    history: HistoryIndex,
    members: IntArray,
    group_size: int,
    pair_count: int,
    rng: np.random.Generator,
    time_budget_s: float,
) -> IntArray:
    """Groups of `group_size` (plus `pair_count` pairs, for trios) over `members`, as rows.

    With pairs and an odd count, one extra member joins a pair as the round's only trio,
    which comes first; rows are EMPTY-padded at the end.
    """
    deadline = time.perf_counter() + time_budget_s
    odd_pairs = group_size == 2 and members.size % 2 == 1
    if odd_pairs:
        eligible = members[~problem.trio_last_round[members]]
        pool = eligible if eligible.size else members
        first_partner = int(pool[rng.integers(pool.size)])
        members = members[members != first_partner]
    ordered = _clock_order(problem, members, rng)
    slots = _chunked_groups(problem, ordered, group_size, pair_count, rng)
    if odd_pairs:
        slots = np.concatenate([slots, [[first_partner, STAND_IN]]])
    search = _SwapSearch(problem, history, slots, rng, deadline)
    # Timezone, company and block defects first, on attributes alone; history is looked up
    # only once the pairs have settled, then repeats and the rest are repaired.
    search.improve(floor=SAME_COMPANY)
    search.add_history()
    search.improve(floor=IMPROVEMENT_EPS)
    if group_size == 3:
        return _pairs_last(np.where(search.slots == STAND_IN, EMPTY, search.slots))
    if not odd_pairs:
        return search.slots
    stand_in_row = int(np.flatnonzero((search.slots == STAND_IN).any(axis=1))[0])
    joiner = int(search.slots[stand_in_row].max())
    pairs = np.delete(search.slots, stand_in_row, axis=0)
    host = _best_host_pair(problem, history, pairs, joiner)
    trio = np.append(pairs[host], joiner)
    rest = np.pad(np.delete(pairs, host, axis=0), ((0, 0), (0, 1)), constant_values=EMPTY)
    return np.concatenate([trio[None, :], rest])


def _pairs_last(slots: IntArray) -> IntArray:
    """Rows with their EMPTY slots at the end, fuller rows first."""
    slots = np.take_along_axis(slots, np.argsort(slots == EMPTY, axis=1, kind="stable"), axis=1)
    return slots[np.argsort((slots == EMPTY).sum(axis=1), kind="stable")]


def _clock_order(problem: Problem, members: IntArray, rng: np.random.Generator) -> IntArray:
    """Members sorted by the middle of their working day, the clock cut where it is emptiest."""
    middle = np.mod(
        problem.window_start[members] + problem.window_length[members] / 2, HOURS_PER_DAY
    )
    known = ~np.isnan(middle)
    key = np.empty(members.size)
    if known.any():
        # Cut the clock in the middle of its longest empty stretch, on a grid of minutes.
        minutes = int(HOURS_PER_DAY * 60)
        busy = np.bincount((middle[known] * 60).astype(np.int64) % minutes, minlength=minutes)
        busy_at = np.flatnonzero(busy)
        gaps = np.diff(np.append(busy_at, busy_at[0] + minutes))
        longest = int(np.argmax(gaps))
        cut = (busy_at[longest] + gaps[longest] / 2) / 60
        key[known] = np.mod(middle[known] - cut, HOURS_PER_DAY)
    # Members of unknown offset fit anywhere; scattering them keeps chunks balanced.
    key[~known] = rng.uniform(0.0, HOURS_PER_DAY, int((~known).sum()))
    # A jitter far below any real difference (offsets and hours come in minutes) breaks
    # ties by seed.
    key += rng.uniform(0.0, 1e-6, members.size)
    return members[np.argsort(key)]


def _chunked_groups(
    problem: Problem,
    ordered: IntArray,
    group_size: int,
    pair_count: int,
    rng: np.random.Generator,
) -> IntArray:
    """Initial groups, one row each; with trios, the remainder pairs come last, each
    completed by a stand-in."""
    chunk = group_size * _GROUPS_PER_CHUNK
    industry_rank = np.append(rng.permutation(problem.industry_count), problem.industry_count)
    company_rank = np.append(rng.permutation(problem.company_count), problem.company_count)
    # Unknown codes (-1) pick the appended last rank; two unknowns never cost anything.
    spread = (
        industry_rank[problem.industry[ordered]] * (problem.company_count + 1.0)
        + company_rank[problem.company[ordered]]
        + rng.random(ordered.size)
    )
    in_trios = ordered.size - 2 * pair_count
    rows = [_split_chunks(ordered[:in_trios], spread[:in_trios], group_size, chunk)]
    if pair_count:
        tail = _split_chunks(ordered[in_trios:], spread[in_trios:], 2, 2 * pair_count)
        rows.append(np.pad(tail, ((0, 0), (0, 1)), constant_values=STAND_IN))
    return np.concatenate(rows)


def _split_chunks(members: IntArray, spread: FloatArray, width: int, chunk: int) -> IntArray:
    full = members.size // chunk * chunk
    parts = []
    for part, part_spread, part_chunk in (
        (members[:full], spread[:full], chunk),
        (members[full:], spread[full:], members.size - full),
    ):
        if not part.size:
            continue
        block = part.reshape(-1, part_chunk)
        block = np.take_along_axis(
            block, np.argsort(part_spread.reshape(-1, part_chunk), axis=1), axis=1
        )
        # Row k of a chunk takes members k, k + chunk/width, k + 2*chunk/width...
        rows = block.reshape(len(block), width, part_chunk // width).transpose(0, 2, 1)
        parts.append(rows.reshape(-1, width))
    return np.concatenate(parts)


class _SwapSearch:
    """Member swaps between groups, priced from each member's cost to the rest of its group.

    Work goes to the costliest groups first, and the first few rounds of each phase run
    whatever the time budget says, so the budget only ever trims the lowest priorities.
    """

    def __init__(
        self,
        problem: Problem,
        history: HistoryIndex,
        slots: IntArray,
        rng: np.random.Generator,
        deadline: float,
    ) -> None:
        self.problem = problem
        self.history = history
        self.slots = slots
        self.rng = rng
        self.deadline = deadline
        self.width = slots.shape[1]
        # Swapping slot 0 with either slot of the other pair covers both re-pairings.
        self.moves = (
            [(0, 0), (0, 1)]
            if self.width == 2
            else [(s, t) for s in range(self.width) for t in range(self.width)]
        )
        self.with_history = False
        self.stand_in_rows = np.flatnonzero((slots == STAND_IN).any(axis=1))
        # Next to a stand-in, a member costs what the stand-in stands for: sitting in the
        # trio of an odd round of pairs, or nothing in the pair of a round of trios.
        self.stand_in_cost = problem.oversize_penalty if self.width == 2 else np.zeros(problem.size)
        self.member_cost = np.zeros(slots.shape, dtype=np.float64)
        self._price_rows(np.arange(len(slots)))

    def pair_cost(self, i: IntArray, j: IntArray) -> FloatArray:
        """Attribute cost per pair (0 where a slot is empty); history comes separately.

        Two stand-ins never share a group.
        """
        present = (i >= 0) & (j >= 0)
        cost = self.problem.attribute_cost(np.where(present, i, 0), np.where(present, j, 0))
        cost = np.where(present, cost, 0.0)
        if self.stand_in_rows.size:
            stand_in_cost = self.stand_in_cost
            cost += np.where((i == STAND_IN) & (j >= 0), stand_in_cost[np.maximum(j, 0)], 0.0)
            cost += np.where((j == STAND_IN) & (i >= 0), stand_in_cost[np.maximum(i, 0)], 0.0)
            cost += np.where((i == STAND_IN) & (j == STAND_IN), BLOCKED, 0.0)
        return cost

    def history_cost(self, i: IntArray, j: IntArray) -> FloatArray:
        """History cost per pair once history is on (0 where a slot is empty or stand-in)."""
        cost = np.zeros(np.shape(i))
        if not self.with_history:
            return cost
        present = (i >= 0) & (j >= 0)
        ages = self.history.rounds_ago(i[present], j[present])
        cost[present] = history_cost(ages, self.problem.repeat_window)
        return cost

    def _price_rows(self, rows: IntArray) -> None:
        self.member_cost[rows] = self._member_costs(self.slots[rows], self.pair_cost)
        if self.with_history:
            self.member_cost[rows] += self._member_costs(self.slots[rows], self.history_cost)

    def _member_costs(
        self, slots: IntArray, pair_cost: Callable[[IntArray, IntArray], FloatArray]
    ) -> FloatArray:
        """Each member's cost to the rest of its group."""
        cost = np.zeros(slots.shape)
        for s in range(self.width):
            for t in range(s + 1, self.width):
                pair = pair_cost(slots[:, s], slots[:, t])
                cost[:, s] += pair
                cost[:, t] += pair
        return cost

    def add_history(self) -> None:
        self.with_history = True
        self.member_cost += self._member_costs(self.slots, self.history_cost)

    def _partners(self, rows: IntArray, anywhere: int = _ANYWHERE_PARTNERS) -> IntArray:
        """Candidate groups to swap with: near in clock order, anywhere, other defective
        groups (two defects often cancel out, like two pairs straddling the same two
        timezones) and the stand-ins' groups."""
        count = len(self.slots)
        steps = self.rng.integers(1, _REACH + 1, (rows.size, _NEARBY_PARTNERS))
        steps *= self.rng.choice(np.array([-1, 1]), (rows.size, _NEARBY_PARTNERS))
        near = np.clip(rows[:, None] + steps, 0, count - 1)
        far = self.rng.integers(0, count, (rows.size, anywhere))
        defective = rows[self.rng.integers(0, rows.size, (rows.size, _DEFECTIVE_PARTNERS))]
        stand_ins = np.broadcast_to(self.stand_in_rows, (rows.size, self.stand_in_rows.size))
        return np.concatenate([near, far, defective, stand_ins], axis=1)

    def _attribute_gains(self, rows: IntArray, partners: IntArray) -> FloatArray:
        """Change of total cost per (row, partner, move), inf when invalid, counting only
        the attribute costs of the new pairs: with history on, a lower bound."""
        slots, g, h = self.slots, rows[:, None], partners
        gains = np.full((*partners.shape, len(self.moves)), np.inf)
        for k, (s, t) in enumerate(self.moves):
            leaving, arriving = slots[g, s], slots[h, t]
            change = -self.member_cost[g, s] - self.member_cost[h, t]
            for other in range(self.width):
                if other != s:
                    change = change + self.pair_cost(arriving, slots[g, other])
                if other != t:
                    change = change + self.pair_cost(leaving, slots[h, other])
            valid = (leaving != EMPTY) & (arriving != EMPTY) & (h != g)
            gains[..., k] = np.where(valid, change, np.inf)
        return gains

    def _history_of_new_pairs(
        self, g: IntArray, s: IntArray, h: IntArray, t: IntArray
    ) -> FloatArray:
        """History cost of the pairs the swaps would form."""
        slots = self.slots
        leaving, arriving = slots[g, s], slots[h, t]
        extra = np.zeros(g.size)
        for other in range(self.width):
            joins_g, joins_h = s != other, t != other
            extra[joins_g] += self.history_cost(arriving[joins_g], slots[g[joins_g], other])
            extra[joins_h] += self.history_cost(leaving[joins_h], slots[h[joins_h], other])
        return extra

    def improve(self, floor: float) -> None:
        """Swap until no group costing at least `floor` finds an improving swap.

        Then the groups left with a timezone gap or worse search much wider: mending a
        repeat of the previous round may have traded it for a gap that only a swap with
        a group far away in clock order mends (two steps that each make things worse
        within the usual neighbourhood). Nothing to do, and no cost, in most rounds.
        """
        self._search(floor, lambda rows: _ANYWHERE_PARTNERS)
        self._search(
            max(floor, LOW_OVERLAP),
            lambda rows: max(_ANYWHERE_PARTNERS, min(_WIDE_PARTNERS, _WIDE_WORK // rows)),
        )

    def _search(self, floor: float, anywhere: Callable[[int], int]) -> None:
        stalls = 0
        for iteration in range(_MAX_ITERATIONS):
            if stalls >= _MAX_STALLS:
                return
            if iteration >= _GUARANTEED_ITERATIONS and time.perf_counter() >= self.deadline:
                return
            group_cost = self.member_cost.sum(axis=1)
            rows = np.flatnonzero(group_cost >= floor)
            if not rows.size:
                return
            if rows.size > _MAX_BATCH:
                rows = np.sort(rows[np.argsort(-group_cost[rows], kind="stable")[:_MAX_BATCH]])
            partners = self._partners(rows, anywhere(rows.size))
            gains = self._attribute_gains(rows, partners).reshape(rows.size, -1)
            # A few best candidates per group: with history on, the best by attributes
            # may turn out to be a meeting again.
            shortlist = np.argsort(gains, axis=1, kind="stable")[:, :_SHORTLIST]
            owner = np.repeat(np.arange(rows.size), shortlist.shape[1])
            choice = shortlist.ravel()
            gain = gains[owner, choice]
            hopeful = gain < -IMPROVEMENT_EPS
            owner, choice, gain = owner[hopeful], choice[hopeful], gain[hopeful]
            g = rows[owner]
            h = partners[owner, choice // len(self.moves)]
            move = np.array(self.moves, dtype=np.int64)[choice % len(self.moves)]
            s, t = move[:, 0], move[:, 1]
            if self.with_history:
                gain = gain + self._history_of_new_pairs(g, s, h, t)
            applied = self._apply(g, s, h, t, gain)
            stalls = 0 if applied else stalls + 1

    def _apply(self, g: IntArray, s: IntArray, h: IntArray, t: IntArray, gain: FloatArray) -> int:
        """Apply improving swaps best first, each group at most once; returns how many."""
        touched = np.zeros(len(self.slots), dtype=bool)
        applied = 0
        for k in np.argsort(gain, kind="stable"):
            if gain[k] >= -IMPROVEMENT_EPS:
                break
            gk, hk = int(g[k]), int(h[k])
            if touched[gk] or touched[hk]:
                continue
            touched[gk] = touched[hk] = True
            sk, tk = int(s[k]), int(t[k])
            self.slots[gk, sk], self.slots[hk, tk] = self.slots[hk, tk], self.slots[gk, sk]
            applied += 1
        if applied:
            self._price_rows(np.flatnonzero(touched))
        return applied


def _best_host_pair(problem: Problem, history: HistoryIndex, slots: IntArray, joiner: int) -> int:
    """Index of the pair the extra member of an odd round fits best."""
    first, second = slots[:, 0], slots[:, 1]
    penalty = problem.oversize_penalty
    joiner_arr = np.full(first.size, joiner)
    cost = (
        problem.attribute_cost(joiner_arr, first)
        + problem.attribute_cost(joiner_arr, second)
        + penalty[first]
        + penalty[second]
    )
    choices = min(_TRIO_CHOICES, first.size)
    shortlist = np.argpartition(cost, choices - 1)[:choices]
    shortlist = shortlist[np.argsort(cost[shortlist], kind="stable")]
    joiner_short = np.full(shortlist.size, joiner)
    full = (
        cost[shortlist]
        + history_cost(history.rounds_ago(joiner_short, first[shortlist]), problem.repeat_window)
        + history_cost(history.rounds_ago(joiner_short, second[shortlist]), problem.repeat_window)
    )
    return int(shortlist[int(np.argmin(full))])
