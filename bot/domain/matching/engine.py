"""`make_groups`: who is placed, which solver runs, and what the round achieved."""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np

from bot.domain.matching.costs import (
    ArrayHistory,
    FloatArray,
    IntArray,
    Problem,
    build_problem,
    group_sizes,
    history_cost,
)
from bot.domain.matching.dense import solve_dense
from bot.domain.matching.matching import UNMATCHED, grow_matching
from bot.domain.matching.model import (
    Candidate,
    CandidateTable,
    History,
    PairingConfig,
    PairingResult,
    RoundQuality,
)
from bot.domain.matching.sparse import solve_sparse

EMPTY = -1
# Up to this many members a full cost matrix (8 MB) and the matching-based solver are
# cheap; beyond it the matrix grows quadratically while the sparse search stays linear.
DENSE_LIMIT = 1000


def make_groups(
    candidates: Sequence[Candidate] | CandidateTable, history: History, config: PairingConfig
) -> PairingResult:
    """Group one round's candidates (DESIGN.md §5).

    Hard rules: blocked pairs never share a group, and every candidate lands in exactly one
    group unless blocks (or a count of one) make that impossible; then members left out
    last round are placed first. With pairs, an odd count makes exactly one trio.

    Then, in strict priority order, it minimises: members of last round's trio in the trio
    again; pairs with less than `min_shared_hours` of shared working time; pairs that met
    within `repeat_window` rounds (the more recent, the worse); pairs that met before that
    (less and less with age); same-company pairs; same-industry pairs.

    The result depends only on the candidates (not their order), the history and the
    config, seed included (for big communities: as long as the search converges within
    `time_budget_ms`, which it normally does with room to spare).
    """
    started = time.perf_counter()
    problem = build_problem(candidates, history, config)
    rng = np.random.default_rng(config.seed)
    dense = problem.size <= DENSE_LIMIT
    index = ArrayHistory(problem, history)
    placed = np.ones(problem.size, dtype=bool)
    if not problem.has_blocks:
        slots = _solve(problem, index, np.flatnonzero(placed), config, rng)
        return _result(problem, index, slots, config, started)
    placement_order = _placement_order(problem, rng)
    placement_rank = np.empty(problem.size, dtype=np.int64)
    placement_rank[placement_order] = np.arange(problem.size)
    if dense and config.group_size == 2:
        placed[_blocked_out(problem, placement_order)] = False
    while True:
        slots = _solve(problem, index, np.flatnonzero(placed), config, rng)
        offender = _member_to_drop(problem, slots, placement_rank)
        if offender == EMPTY:
            return _result(problem, index, slots, config, started)
        placed[offender] = False


def _placement_order(problem: Problem, rng: np.random.Generator) -> IntArray:
    """Who gets placed first when not everyone can be: last round's left-out, then by seed."""
    return np.lexsort((rng.random(problem.size), ~problem.left_out_last_round))


def _blocked_out(problem: Problem, placement_order: IntArray) -> IntArray:
    """Members no block-free pairing (with at most one trio) can place.

    A maximum matching over the unblocked pairs, grown in placement order, places the most
    members possible and prefers earlier ones; one exposed member can still join a matched
    pair as the trio if neither of them blocks them.
    """
    everyone = np.arange(problem.size)
    adjacent = ~problem.blocked(everyone[:, None], everyone[None, :])
    np.fill_diagonal(adjacent, False)
    mate = grow_matching(
        adjacent, np.full(problem.size, UNMATCHED, dtype=np.int64), placement_order.tolist()
    )
    exposed = [int(v) for v in placement_order if mate[v] == UNMATCHED]
    first = np.flatnonzero(mate > everyone)
    joiner = next(
        (m for m in exposed if (adjacent[m, first] & adjacent[m, mate[first]]).any()), EMPTY
    )
    return np.array([m for m in exposed if m != joiner], dtype=np.int64)


def _solve(
    problem: Problem,
    index: ArrayHistory,
    members: IntArray,
    config: PairingConfig,
    rng: np.random.Generator,
) -> IntArray:
    """Groups as rows of member indices, EMPTY-padded at the end, largest groups first."""
    sizes = group_sizes(members.size, config.group_size)
    if not sizes:
        return np.zeros((0, 2), dtype=np.int64)
    if len(sizes) == 1:
        return members[None, :]
    if problem.size <= DENSE_LIMIT:
        cost = _cost_matrix(problem, index, members)
        local = solve_dense(cost, problem.oversize_penalty[members], config.group_size, rng)
        return np.where(local != EMPTY, members[local], EMPTY)
    pair_count = sizes.count(2) if config.group_size == 3 else 0
    return solve_sparse(
        problem,
        index,
        members,
        config.group_size,
        pair_count,
        rng,
        config.time_budget_ms / 1000.0,
    )


def _cost_matrix(problem: Problem, index: ArrayHistory, members: IntArray) -> FloatArray:
    cost = problem.attribute_cost_matrix(members)
    position = np.full(problem.size, EMPTY, dtype=np.int64)
    position[members] = np.arange(members.size)
    first, second = position[index.first], position[index.second]
    present = (first != EMPTY) & (second != EMPTY)
    first, second = first[present], second[present]
    met = history_cost(index.ages[present], problem.repeat_window)
    cost[first, second] += met
    cost[second, first] += met
    np.fill_diagonal(cost, 0.0)
    return cost


def _within_group_pairs(slots: IntArray) -> tuple[IntArray, IntArray]:
    firsts, seconds = [], []
    width = slots.shape[1]
    for s in range(width):
        for t in range(s + 1, width):
            both = (slots[:, s] != EMPTY) & (slots[:, t] != EMPTY)
            firsts.append(slots[both, s])
            seconds.append(slots[both, t])
    if not firsts:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    return np.concatenate(firsts), np.concatenate(seconds)


def _member_to_drop(problem: Problem, slots: IntArray, placement_rank: IntArray) -> int:
    """The last-to-place member of a blocked pair the solver could not avoid, else EMPTY."""
    first, second = _within_group_pairs(slots)
    blocked = problem.blocked(first, second)
    if not blocked.any():
        return EMPTY
    involved = np.concatenate([first[blocked], second[blocked]])
    return int(involved[np.argmax(placement_rank[involved])])


def _result(
    problem: Problem,
    index: ArrayHistory,
    slots: IntArray,
    config: PairingConfig,
    started: float,
) -> PairingResult:
    first, second = _within_group_pairs(slots)
    ages = index.rounds_ago(first, second)
    widths = (slots != EMPTY).sum(axis=1)
    ids = problem.ids
    placed = np.zeros(problem.size, dtype=bool)
    placed[slots[slots != EMPTY]] = True
    oversize = slots[widths > config.group_size]
    quality = RoundQuality(
        participants=int(placed.sum()),
        groups=len(slots),
        repeat_pairs=int(((ages >= 1) & (ages <= config.repeat_window)).sum()),
        any_repeat_pairs=int((ages >= 1).sum()),
        same_company_pairs=int(problem.same_company(first, second).sum()),
        low_overlap_pairs=int(problem.low_overlap(first, second).sum()),
        total_pairs=int(first.size),
        in_trio=tuple(map(ids.__getitem__, np.sort(oversize[oversize != EMPTY]).tolist())),
        left_out=tuple(map(ids.__getitem__, np.flatnonzero(~placed).tolist())),
        solver_ms=(time.perf_counter() - started) * 1000.0,
    )
    return PairingResult(
        member_ids=ids,
        slots=slots,
        quality=quality,
        history_ids=index.history_ids,
        history_index=index.history_index,
        member_id_array=problem.id_array,
    )
