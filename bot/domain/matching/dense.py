"""Solver for communities small enough for a full cost matrix (up to ~1,000 members).

1. Greedy start: each group is seeded by the next free member and filled with the members
   who add the least cost.
2. Swap search: every member swap between two groups is priced at once as one matrix; the
   best swaps touching disjoint groups are applied together, until no swap helps.
3. For pairs, tier by tier (block, timezone, recent meeting, any meeting, company,
   industry): if some pairs carry the defect, Edmonds' algorithm grows a maximum matching
   over the pairs free of it, starting from the current pairs, and the swap search
   polishes the result. The proposal is kept only if the total cost drops. Swaps alone
   stall when the good pairs get scarce (late rounds of a stable community); augmenting
   paths do not: whenever pairs free of a defect can cover everyone, this step finds them.
4. Odd-sized groups (the trio of an odd round of pairs, the pairs of a round of trios) are
   placed through stand-ins, see `_pairs_with_trio` and `_trios`.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from bot.domain.matching.costs import (
    BLOCKED,
    IMPROVEMENT_EPS,
    LOW_OVERLAP,
    OLD_REPEAT,
    PREVIOUS_PARTNER,
    RECENT_REPEAT,
    SAME_COMPANY,
    SAME_INDUSTRY,
    FloatArray,
    IntArray,
    group_sizes,
)
from bot.domain.matching.matching import UNMATCHED, grow_matching

EMPTY = -1
# Thresholds of the tiers the matching step tries to clear, most important first: a pair is
# free of the tier when its cost is below the threshold.
_MATCHING_TIERS = (
    BLOCKED,
    PREVIOUS_PARTNER,
    LOW_OVERLAP,
    RECENT_REPEAT,
    OLD_REPEAT,
    SAME_COMPANY,
    SAME_INDUSTRY,
)
# Each pass of the tier loop either lowers the total cost or ends it; this only bounds
# pathological inputs.
_MAX_TIER_PASSES = 8
_MAX_SWAP_ROUNDS = 500
# Up to this many members, the cheapest trios are also tried outright (a cube of trio
# costs, 262k entries at the limit).
_TRIO_ENUMERATION_LIMIT = 64
_TRIOS_TRIED = 8
# Groups of three search from up to this many starts, fewer as members times starts
# reaches the work limit.
_MAX_TRIO_STARTS = 8
_TRIO_SEARCH_WORK = 1000


def solve_dense(
    cost: FloatArray, oversize_penalty: FloatArray, group_size: int, rng: np.random.Generator
) -> IntArray:
    """Groups as rows of row indices of `cost`, EMPTY-padded, largest groups first.

    `cost` is the symmetric pair-cost matrix of at least four members; `oversize_penalty[v]`
    is added when v sits in a group larger than `group_size`.
    """
    count = cost.shape[0]
    # Work on a shuffled copy so that ties (equal costs everywhere in a community without
    # history) are broken by the seed rather than by id order.
    shuffle = rng.permutation(count)
    cost = cost[np.ix_(shuffle, shuffle)]
    penalty = oversize_penalty[shuffle]
    if group_size == 2:
        slots = _pairs_with_trio(cost, penalty) if count % 2 else _pairs(cost)
    else:
        slots = _trios(cost, rng)
    return np.where(slots != EMPTY, shuffle[slots], EMPTY)


def _trios(cost: FloatArray, rng: np.random.Generator) -> IntArray:
    """Trios, plus one or two pairs for the remainder.

    Each pair is a trio completed by a stand-in who costs nothing next to anyone (two
    stand-ins never share a group), so plain member swaps move the pairs to wherever the
    remainder is unavoidable, such as a timezone cluster whose count is not a multiple of
    three. Trios have no matching step to escape local optima, so small communities search
    from several starts and keep the cheapest.
    """
    count = cost.shape[0]
    stand_ins = group_sizes(count, 3).count(2)
    size = count + stand_ins
    extended = np.zeros((size, size))
    extended[:count, :count] = cost
    extended[count:, count:] = BLOCKED
    np.fill_diagonal(extended, 0.0)
    no_penalty = np.zeros(size)
    best, best_total = np.zeros((0, 3), dtype=np.int64), np.inf
    for start in range(min(_MAX_TRIO_STARTS, max(1, _TRIO_SEARCH_WORK // size))):
        order = np.arange(size) if start == 0 else rng.permutation(size)
        shuffled = extended[np.ix_(order, order)]
        start_slots = _greedy_start(shuffled, no_penalty, [3] * (size // 3), 3)
        slots = order[_swap_search(shuffled, no_penalty, start_slots, 3)]
        total = _total_cost(extended, no_penalty, slots, 3)
        if total < best_total - IMPROVEMENT_EPS:
            best, best_total = slots, total
    best = np.where(best >= count, EMPTY, best)
    # Real members first in each row, and the pairs last.
    best = np.take_along_axis(best, np.argsort(best == EMPTY, axis=1, kind="stable"), axis=1)
    return best[np.argsort((best == EMPTY).sum(axis=1), kind="stable")]


def _pairs(cost: FloatArray) -> IntArray:
    no_penalty = np.zeros(cost.shape[0])
    sizes = [2] * (cost.shape[0] // 2)
    slots = _swap_search(cost, no_penalty, _greedy_start(cost, no_penalty, sizes, 2), 2)
    return _clear_tiers(cost, no_penalty, slots)


def _pairs_with_trio(cost: FloatArray, penalty: FloatArray) -> IntArray:
    """Pairs plus one trio for an odd count.

    Where the trio goes matters twice over. If one timezone cluster has an odd count, only
    a trio inside it avoids a pair across clusters; so the members are first paired
    together with a stand-in whose partner becomes the trio's third member. The stand-in
    costs nothing next to anyone but last round's trio members, so the matching step moves
    it to wherever an odd one out is unavoidable; its partner then joins the pair it fits
    best. And the trio itself holds three pairs, which local moves rarely rebuild; so small
    communities also try each of the cheapest trios outright, pairing everyone else around
    it, and keep the cheapest round overall.
    """
    count = cost.shape[0]
    with_stand_in = np.zeros((count + 1, count + 1))
    with_stand_in[:count, :count] = cost
    with_stand_in[count, :count] = with_stand_in[:count, count] = penalty
    pairs = _pairs(with_stand_in)
    joiner_row = int(np.flatnonzero((pairs == count).any(axis=1))[0])
    joiner = int(pairs[joiner_row][pairs[joiner_row] != count][0])
    pairs = np.delete(pairs, joiner_row, axis=0)
    first, second = pairs[:, 0], pairs[:, 1]
    fit = cost[joiner, first] + cost[joiner, second] + penalty[first] + penalty[second]
    host = int(np.argmin(fit))
    best = _polish_with_trio(
        cost, penalty, np.append(pairs[host], joiner), np.delete(pairs, host, axis=0)
    )
    best_total = _total_cost(cost, penalty, best, 2)
    if count > _TRIO_ENUMERATION_LIMIT:
        return best
    for trio in _cheapest_trios(cost, penalty, _TRIOS_TRIED):
        others = np.setdiff1d(np.arange(count), trio)
        local_pairs = _pairs(cost[np.ix_(others, others)])
        slots = _polish_with_trio(cost, penalty, trio, others[local_pairs])
        total = _total_cost(cost, penalty, slots, 2)
        if total < best_total - IMPROVEMENT_EPS:
            best, best_total = slots, total
    return best


def _polish_with_trio(
    cost: FloatArray, penalty: FloatArray, trio: IntArray, pairs: IntArray
) -> IntArray:
    rest = np.pad(pairs, ((0, 0), (0, 1)), constant_values=EMPTY)
    slots = np.concatenate([trio[None, :], rest])
    return _clear_tiers(cost, penalty, _swap_search(cost, penalty, slots, 2))


def _cheapest_trios(cost: FloatArray, penalty: FloatArray, limit: int) -> IntArray:
    """The `limit` cheapest trios (as rows of three members), penalties included."""
    count = cost.shape[0]
    member = np.arange(count)
    trio_cost = (
        cost[:, :, None]
        + cost[:, None, :]
        + cost[None, :, :]
        + penalty[:, None, None]
        + penalty[None, :, None]
        + penalty[None, None, :]
    )
    ordered = (member[:, None, None] < member[None, :, None]) & (
        member[None, :, None] < member[None, None, :]
    )
    trio_cost[~ordered] = np.inf
    flat = trio_cost.ravel()
    limit = min(limit, int(ordered.sum()))
    cheapest = np.argpartition(flat, limit - 1)[:limit]
    cheapest = cheapest[np.argsort(flat[cheapest], kind="stable")]
    return np.stack(np.unravel_index(cheapest, trio_cost.shape), axis=1)


def _is_oversize(slots: IntArray, group_size: int) -> npt.NDArray[np.bool_]:
    return np.asarray((slots != EMPTY).sum(axis=1) > group_size, dtype=bool)


def _total_cost(cost: FloatArray, penalty: FloatArray, slots: IntArray, group_size: int) -> float:
    """Sum of the pair costs inside every group plus the oversize penalties."""
    width = slots.shape[1]
    total = 0.0
    for s in range(width):
        for t in range(s + 1, width):
            both = (slots[:, s] != EMPTY) & (slots[:, t] != EMPTY)
            total += float(cost[slots[both, s], slots[both, t]].sum())
    oversize_members = slots[_is_oversize(slots, group_size)]
    total += float(penalty[oversize_members[oversize_members != EMPTY]].sum())
    return total


def _greedy_start(
    cost: FloatArray, penalty: FloatArray, sizes: list[int], group_size: int
) -> IntArray:
    count = cost.shape[0]
    free = np.ones(count, dtype=bool)
    slots = np.full((len(sizes), max(sizes)), EMPTY, dtype=np.int64)
    for g, size in enumerate(sizes):
        oversize = size > group_size
        seeds = np.flatnonzero(free & (penalty == 0)) if oversize else np.zeros(0, np.int64)
        seed = int(seeds[0]) if seeds.size else int(np.flatnonzero(free)[0])
        slots[g, 0] = seed
        free[seed] = False
        added_cost = cost[seed].copy()
        for s in range(1, size):
            score = added_cost + penalty if oversize else added_cost.copy()
            score[~free] = np.inf
            pick = int(np.argmin(score))
            slots[g, s] = pick
            free[pick] = False
            added_cost += cost[pick]
    return slots


def _swap_search(
    cost: FloatArray, penalty: FloatArray, slots: IntArray, group_size: int
) -> IntArray:
    """Apply improving member swaps between groups until none is left."""
    slots = slots.copy()
    count = cost.shape[0]
    groups = np.arange(slots.shape[0])
    # A zero column for empty slots lets one gather price every group at once.
    padded = np.zeros((count, count + 1))
    padded[:, :count] = cost
    oversize = _is_oversize(slots, group_size)
    everyone = np.arange(count)
    for _ in range(_MAX_SWAP_ROUNDS):
        group_of = np.empty(count, dtype=np.int64)
        filled = slots != EMPTY
        group_of[slots[filled]] = np.broadcast_to(groups[:, None], slots.shape)[filled]
        # to_group[v, g]: what v costs next to the members of group g.
        to_group = padded[:, np.where(filled, slots, count)].sum(axis=2)
        own = to_group[everyone, group_of]
        joins = to_group[:, group_of]  # joins[v, w]: v next to the members of w's group
        in_oversize = oversize[group_of].astype(np.float64)
        # Swapping v and w: each leaves its group and joins the other's, minus the cost of
        # the pair itself, which neither keeps.
        gain = joins + joins.T - own[:, None] - own[None, :] - 2.0 * cost
        gain += (penalty[:, None] - penalty[None, :]) * (
            in_oversize[None, :] - in_oversize[:, None]
        )
        gain[group_of[:, None] == group_of[None, :]] = np.inf
        partner = np.argmin(gain, axis=1)
        best = gain[everyone, partner]
        movers = np.flatnonzero(best < -IMPROVEMENT_EPS)
        if not movers.size:
            break
        touched = np.zeros(slots.shape[0], dtype=bool)
        for v in movers[np.argsort(best[movers], kind="stable")]:
            w = partner[v]
            gv, gw = group_of[v], group_of[w]
            if touched[gv] or touched[gw]:
                continue
            touched[gv] = touched[gw] = True
            slots[gv, slots[gv] == v] = w
            slots[gw, slots[gw] == w] = v
    return slots


def _clear_tiers(cost: FloatArray, penalty: FloatArray, slots: IntArray) -> IntArray:
    """Run the matching step tier by tier while it lowers the total cost (pairs only)."""
    total = _total_cost(cost, penalty, slots, 2)
    for _ in range(_MAX_TIER_PASSES):
        improved = False
        for threshold in _MATCHING_TIERS:
            proposal = _rematch_pairs(cost, slots, threshold)
            if proposal is None:
                continue
            proposal = _swap_search(cost, penalty, proposal, 2)
            proposal_total = _total_cost(cost, penalty, proposal, 2)
            if proposal_total < total - IMPROVEMENT_EPS:
                slots, total, improved = proposal, proposal_total, True
        if not improved:
            break
    return slots


def _rematch_pairs(cost: FloatArray, slots: IntArray, threshold: float) -> IntArray | None:
    """Re-pair the members of the pairs to minimise pairs costing `threshold` or more.

    Returns None when no pair has that defect or the current pairs are already a maximum
    matching over the pairs free of it. The trio, if any, is left as it is.
    """
    is_pair = slots[:, -1] == EMPTY if slots.shape[1] > 2 else np.ones(len(slots), dtype=bool)
    first, second = slots[is_pair, 0], slots[is_pair, 1]
    defective = cost[first, second] >= threshold
    if not defective.any():
        return None
    count = cost.shape[0]
    in_pairs = np.zeros(count, dtype=bool)
    in_pairs[first] = in_pairs[second] = True
    adjacent = (cost < threshold) & in_pairs[:, None] & in_pairs[None, :]
    np.fill_diagonal(adjacent, False)
    mate = np.full(count, UNMATCHED, dtype=np.int64)
    mate[first[~defective]] = second[~defective]
    mate[second[~defective]] = first[~defective]
    roots = np.concatenate([first[defective], second[defective]])
    mate = grow_matching(adjacent, mate, roots.tolist())
    leftover = np.flatnonzero(in_pairs & (mate == UNMATCHED))
    if leftover.size == roots.size:
        return None
    matched = np.flatnonzero(in_pairs & (mate > np.arange(count)))
    new_pairs = [np.stack([matched, mate[matched]], axis=1), _cheapest_pairs(cost, leftover)]
    pairs = np.concatenate(new_pairs)
    if slots.shape[1] > 2:
        pairs = np.concatenate([pairs, np.full((len(pairs), 1), EMPTY, dtype=np.int64)], axis=1)
        return np.concatenate([slots[~is_pair], pairs])
    return pairs


def _cheapest_pairs(cost: FloatArray, members: IntArray) -> IntArray:
    """Pair `members` greedily, each in turn with the cheapest one still free."""
    pairs = np.empty((members.size // 2, 2), dtype=np.int64)
    free = list(members)
    for k in range(members.size // 2):
        first = free.pop(0)
        pick = int(np.argmin(cost[first, free]))
        pairs[k] = first, free.pop(pick)
    return pairs
