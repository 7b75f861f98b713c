"""Kindred's mentor assignment against greedy and the dense optimum, on synthetic people.

    python bench/assignment.py            # full run (10,000 mentees x 3,500 mentors)
    python bench/assignment.py --quick    # smaller smoke run

Mentees want 2-4 of 30 topics at levels 0-3; mentors offer 2-5 topics at levels 1-6 with a
capacity of 1-5; companies of Zipf sizes; three timezone regions. Some mentors are
"stars" who offer many popular topics, so they are everyone's first choice. The dense
optimum is `scipy.optimize.linear_sum_assignment` over every capacity slot (plus a
"no mentor" slot per mentee) of a slice, with the same objective; greedy gives each mentee
in turn their best mentor with a seat left. Both are measured twice: topics only scored
(`min_shared_topics=0`) and with the rule mentorship rounds use, a pair sharing no topic
excluded (`min_shared_topics=1`). "Unmatched with a free allowed mentor" counts mentees left
out while some mentor they may have (any mentor, not only their top k) has a seat left: a
target of 0.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
import tracemalloc
from dataclasses import replace
from pathlib import Path

import numpy as np
from scipy.optimize import linear_sum_assignment

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.domain.matching import (
    AssignmentConfig,
    AssignmentResult,
    Mentee,
    Mentor,
    assign_mentors,
)
from bot.domain.matching.assignment import candidate_scores, slot_layout

TOPICS = tuple(f"topic-{k}" for k in range(30))
OFFSETS = ((-8.0, -5.0), (0.0, 2.0), (5.5, 9.0))


def population(mentees: int, mentors: int, seed: int) -> tuple[list[Mentee], list[Mentor]]:
    rng = random.Random(seed)
    companies = max(8, (mentees + mentors) // 15)
    weights = [1 / (k + 1) for k in range(companies)]
    company = rng.choices(range(companies), weights, k=mentees + mentors)
    topic_weights = [1 / (k + 1) ** 0.5 for k in range(len(TOPICS))]

    def topics(count: int) -> frozenset[str]:
        return frozenset(rng.choices(TOPICS, topic_weights, k=count))

    def offset() -> float:
        return rng.choice(OFFSETS[rng.randrange(3)])

    people = [
        Mentee(
            f"e{k:05d}",
            topics=topics(rng.randint(2, 4)),
            company=f"c{company[k]}",
            seniority=rng.randint(0, 3),
            utc_offset_hours=offset(),
        )
        for k in range(mentees)
    ]
    guides = []
    for k in range(mentors):
        star = rng.random() < 0.05
        guides.append(
            Mentor(
                f"r{k:05d}",
                name=f"Mentor {k}",
                capacity=rng.randint(1, 5),
                topics=frozenset(TOPICS[:8]) if star else topics(rng.randint(2, 5)),
                company=f"c{company[mentees + k]}",
                seniority=rng.randint(1, 6),
                utc_offset_hours=offset(),
            )
        )
    return people, guides


def dense_optimum(mentees: list[Mentee], mentors: list[Mentor], config: AssignmentConfig) -> float:
    """The best objective over every pair, by linear_sum_assignment over capacity slots."""
    rows, cols, scores = candidate_scores(mentees, mentors, replace(config, top_k=len(mentors)))
    capacities = np.array([m.capacity for m in mentors])
    owner, rank = slot_layout(capacities)
    score = np.full((len(mentees), len(mentors)), -np.inf)
    score[rows, cols] = scores
    value = score[:, owner] - config.spread * rank[None, :]
    value = np.where(np.isfinite(value), value, -1e9)
    value = np.concatenate([value, np.where(np.eye(len(mentees)) > 0, 0.0, -1e9)], axis=1)
    picked_rows, picked_cols = linear_sum_assignment(value, maximize=True)
    return float(value[picked_rows, picked_cols].sum())


def greedy(
    mentees: list[Mentee], mentors: list[Mentor], config: AssignmentConfig
) -> tuple[float, float, list[int]]:
    rows, cols, scores = candidate_scores(mentees, mentors, config)
    seats = [m.capacity for m in mentors]
    load = [0] * len(mentors)
    order = np.lexsort((-scores, rows))
    total = 0.0
    done = set()
    for k in order.tolist():
        e, r = int(rows[k]), int(cols[k])
        if e in done or seats[r] == 0:
            continue
        done.add(e)
        seats[r] -= 1
        load[r] += 1
        total += float(scores[k])
    spread = config.spread * sum(n * (n - 1) / 2 for n in load)
    return total, total - spread, load


def left_with_a_free_seat(
    mentees: list[Mentee], mentors: list[Mentor], config: AssignmentConfig, result: AssignmentResult
) -> int:
    """Unmatched mentees with a mentor they may have (every hard rule, above `min_score`,
    any mentor, not only the top k) who still has a free seat: 0 unless a seat is wasted."""
    index = {m.member_id: k for k, m in enumerate(mentees)}
    left = [mentees[index[who]] for who, _ in result.unmatched]
    if not left or not mentors:
        return 0
    rows, cols, _ = candidate_scores(left, mentors, replace(config, top_k=len(mentors)))
    capacities = np.array([m.capacity for m in mentors])
    free = np.array(result.quality.load) < capacities
    return int(np.unique(rows[free[cols]]).size)


def popular_share(
    load: list[int] | tuple[int, ...], requests: np.ndarray
) -> tuple[float, float, float]:
    """(mean load of the 10 % most requested mentors, median load, their max load)."""
    top = np.argsort(-requests, kind="stable")[: max(1, len(requests) // 10)]
    loads = np.array(load)
    return (
        float(loads[top].mean()),
        float(statistics.median(loads.tolist())),
        float(loads[top].max()),
    )


def measure(
    mentees: list[Mentee], mentors: list[Mentor], config: AssignmentConfig, quick: bool
) -> list[str]:
    """Time, quality and the dense gap for one config; the targets it misses."""
    failures = []
    times = []
    for _ in range(1 if quick else 3):
        started = time.perf_counter()
        result = assign_mentors(mentees, mentors, config)
        times.append((time.perf_counter() - started) * 1000.0)
    tracemalloc.start()
    assign_mentors(mentees, mentors, config)
    peak_mb = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    q = result.quality
    _rows, cols, _ = candidate_scores(mentees, mentors, config)
    requests = np.bincount(cols, minlength=len(mentors))
    top_mean, median_load, top_max = popular_share(q.load, requests)
    g_total, g_objective, g_load = greedy(mentees, mentors, config)
    g_top, g_median, g_max = popular_share(g_load, requests)
    capacity = sum(m.capacity for m in mentors)
    print(
        f"{len(mentees)} mentees x {len(mentors)} mentors, {capacity} seats, "
        f"top-{config.top_k} candidates, min_shared_topics={config.min_shared_topics}"
    )
    print(
        f"{'engine':<8} {'med ms':>8} {'peak MB':>8} {'matched':>8} {'score':>10} "
        f"{'objective':>10} {'top10% mean':>11} {'max':>4} {'median':>6}"
    )
    print(
        f"{'Kindred':<8} {statistics.median(times):8.1f} {peak_mb:8.1f} {q.matched:>8} "
        f"{q.total_score:10.1f} {q.objective:10.1f} {top_mean:11.2f} {top_max:4.0f} "
        f"{median_load:6.1f}"
    )
    print(
        f"{'greedy':<8} {'':>8} {'':>8} {sum(g_load):>8} {g_total:10.1f} {g_objective:10.1f} "
        f"{g_top:11.2f} {g_max:4.0f} {g_median:6.1f}"
    )
    wasted = left_with_a_free_seat(mentees, mentors, config, result)
    print(
        f"over capacity {q.over_capacity}, excluded pairs used {q.excluded_pairs_used}, "
        f"unmatched with a free allowed mentor {wasted}, load average {os.getloadavg()[0]:.2f}"
    )
    print(
        f"example: {result.matches[0].mentee_id} -> {result.matches[0].mentor_id}: "
        f"{result.matches[0].explanation}"
    )
    # Dense reference on a slice, same objective.
    slice_mentees, slice_mentors = mentees[:2000], mentors[:700]
    sparse = assign_mentors(slice_mentees, slice_mentors, config).quality.objective
    started = time.perf_counter()
    optimum = dense_optimum(slice_mentees, slice_mentors, config)
    dense_ms = (time.perf_counter() - started) * 1000.0
    gap = (optimum - sparse) / optimum if optimum else 0.0
    _, slice_greedy, _ = greedy(slice_mentees, slice_mentors, config)
    print(
        f"slice 2000 x 700: sparse objective {sparse:.1f}, dense optimum {optimum:.1f} "
        f"({dense_ms:.0f} ms), gap {100 * gap:.3f} %, greedy {slice_greedy:.1f} "
        f"({100 * (optimum - slice_greedy) / optimum:.2f} % below)"
    )
    label = f"min_shared_topics={config.min_shared_topics}: "
    if not quick and statistics.median(times) > 1000.0:
        failures.append(f"{label}median {statistics.median(times):.0f} ms > 1000 ms")
    if peak_mb > 300.0:
        failures.append(f"{label}peak {peak_mb:.0f} MB > 300 MB")
    if gap > 0.005:
        failures.append(f"{label}gap to the dense optimum {100 * gap:.2f} % > 0.5 %")
    if q.over_capacity:
        failures.append(f"{label}{q.over_capacity} mentors over capacity")
    if wasted:
        failures.append(f"{label}{wasted} unmatched mentees with a free allowed mentor")
    if q.excluded_pairs_used:
        failures.append(f"{label}{q.excluded_pairs_used} excluded pairs used")
    if top_mean > 2 * median_load:
        failures.append(
            f"{label}most requested mentors' mean load {top_mean:.2f} > 2x median {median_load}"
        )
    return failures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    size = (2_000, 700) if args.quick else (10_000, 3_500)
    print(f"CPUs {os.cpu_count()}, load average at start {os.getloadavg()[0]:.2f}")
    mentees, mentors = population(*size, seed=1)
    failures = measure(mentees, mentors, AssignmentConfig(), args.quick)
    print()
    failures += measure(mentees, mentors, AssignmentConfig(min_shared_topics=1), args.quick)
    print(f"load average at end {os.getloadavg()[0]:.2f}")
    for failure in failures:
        print(f"TARGET MISSED: {failure}")
    if not failures:
        print("All targets met.")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
