"""Kindred's cohort engine (groups of 5-7) against random grouping, on synthetic applicants.

    python bench/groups.py            # full run
    python bench/groups.py --quick    # smoke run

Timings are wall clock (the targets) and, beside them, the process time of the same call,
which depends far less on what else the machine runs.

Applicants: companies of Zipf sizes, three challenge tags each out of 12, a seniority level
0..4, and three free evenings a week (2 h, local time, in one of three regions). The random
baseline shuffles and cuts into the same group sizes. Re-forming: 8 cycles in a row, each
with every earlier cycle's groups as history.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.domain.matching import Applicant, CohortConfig, CohortResult, make_cohorts
from bot.domain.matching.groups import group_plan

TAGS = tuple(f"challenge-{k}" for k in range(12))
# UTC minute of 18:00 local in each region (UTC-5, UTC+1, UTC+8).
EVENING_UTC = (23 * 60, 17 * 60, 10 * 60)


def applicants(count: int, seed: int) -> list[Applicant]:
    rng = random.Random(seed)
    companies = max(8, count // 12)
    company_of = rng.choices(range(companies), [1 / (k + 1) for k in range(companies)], k=count)
    people = []
    for k in range(count):
        region = rng.randrange(3)
        spans = []
        for day in rng.sample(range(5), 3):
            start = (day * 1440 + EVENING_UTC[region] + rng.choice((0, 30, 60))) % 10080
            spans.append((start, start + 120))
        people.append(
            Applicant(
                f"a{k:06d}",
                company=f"company-{company_of[k]}",
                tags=frozenset(rng.sample(TAGS, 3)),
                seniority=rng.randrange(5),
                availability=tuple(spans),
            )
        )
    return people


def random_grouping(people: list[Applicant], config: CohortConfig, seed: int) -> dict[str, int]:
    """Figures of a shuffle cut into the engine's group sizes."""
    rng = random.Random(seed)
    order = people[:]
    rng.shuffle(order)
    past = {frozenset(p) for g in config.past_groups for p in _pairs(g)}
    same = before = no_tag = no_slot = 0
    at = 0
    for size in group_plan(len(people), config):
        group = order[at : at + size]
        at += size
        ids = [p.member_id for p in group]
        same += sum(a.company == b.company for a, b in _pairs(group))
        before += sum(frozenset(p) in past for p in _pairs(ids))
        no_tag += not frozenset.intersection(*(p.tags for p in group))
        no_slot += not _common_hour(group)
    return {"same_co": same, "before": before, "no_tag": no_tag, "no_slot": no_slot}


def _pairs(group):  # type: ignore[no-untyped-def]
    return [(a, b) for k, a in enumerate(group) for b in group[k + 1 :]]


def _common_hour(group: list[Applicant]) -> bool:
    free = None
    for person in group:
        minutes = set()
        for start, end in person.availability:
            minutes.update(m % 10080 for m in range(start, end))
        free = minutes if free is None else free & minutes
    return any(all((m + d) % 10080 in free for d in range(60)) for m in free or ())


def colleagues_forced(people: list[Applicant], groups: int) -> int:
    """Same-company pairs no grouping avoids: each company spread as evenly as possible."""
    sizes: dict[str, int] = {}
    for person in people:
        if person.company is not None:
            sizes[person.company] = sizes.get(person.company, 0) + 1
    forced = 0
    for size in sizes.values():
        each, extra = divmod(size, groups)
        forced += extra * (each + 1) * each // 2 + (groups - extra) * each * (each - 1) // 2
    return forced


def row(
    name: str, n: int, ms: float | str, figures: dict[str, int], groups: int, cpu: float | str
) -> None:
    ms_text = f"{ms:8.1f}" if isinstance(ms, float) else f"{ms:>8}"
    cpu_text = f"{cpu:8.1f}" if isinstance(cpu, float) else f"{cpu:>8}"
    print(
        f"{n:>7} {name:<8} {ms_text} {cpu_text} {groups:>7} {figures['same_co']:>8} "
        f"{figures['before']:>8} {figures['no_slot']:>8} {figures['no_tag']:>8}"
    )


def ours(result: CohortResult) -> dict[str, int]:
    q = result.quality
    return {
        "same_co": q.same_company_pairs,
        "before": q.grouped_before_pairs,
        "no_slot": q.without_common_slot,
        "no_tag": q.without_shared_tag,
    }


def run_sizes(sizes: tuple[int, ...], repeats: int, limits: dict[int, float]) -> list[str]:
    failures = []
    print(
        f"{'n':>7} {'engine':<8} {'med ms':>8} {'med cpu':>8} {'groups':>7} {'same co':>8} "
        f"{'before':>8} "
        f"{'no slot':>8} {'no tag':>8}"
    )
    for n in sizes:
        people = applicants(n, seed=n)
        config = CohortConfig(seed=1)
        times, cpu = [], []
        for _ in range(repeats):
            started, cpu_started = time.perf_counter(), time.process_time()
            result = make_cohorts(people, config)
            times.append((time.perf_counter() - started) * 1000.0)
            cpu.append((time.process_time() - cpu_started) * 1000.0)
        median = statistics.median(times)
        row("Kindred", n, median, ours(result), len(result.cohorts), statistics.median(cpu))
        if n <= 6000:  # the random baseline's slot check is slow in pure Python
            figures = random_grouping(people, config, n)
            row("random", n, "-", figures, len(result.cohorts), "-")
        print(
            f"{'':>7} left out {len(result.left_out)}, one-level groups "
            f"{result.quality.one_level_groups}, load average {os.getloadavg()[0]:.2f}"
        )
        if n in limits and median > limits[n]:
            failures.append(f"n={n}: median {median:.0f} ms > {limits[n]:.0f} ms")
        forced = colleagues_forced(people, len(result.cohorts))
        print(f"{'':>7} same-company pairs forced by the population: at least {forced}")
        if result.quality.same_company_pairs and not forced:
            failures.append(f"n={n}: {result.quality.same_company_pairs} avoidable colleagues")
        if result.left_out:
            failures.append(f"n={n}: {len(result.left_out)} left out")
    print()
    return failures


def run_reforming(n: int, cycles: int) -> list[str]:
    people = applicants(n, seed=7)
    past: tuple[tuple[str, ...], ...] = ()
    failures = []
    print(f"Re-forming {n} applicants, {cycles} cycles (history: every earlier cycle)")
    for cycle in range(cycles):
        config = CohortConfig(seed=cycle, past_groups=past)
        result = make_cohorts(people, config)
        baseline = random_grouping(people, config, cycle)
        q = result.quality
        print(
            f"  cycle {cycle + 1}: Kindred grouped before {q.grouped_before_pairs}, no slot "
            f"{q.without_common_slot}, no tag {q.without_shared_tag}, same co "
            f"{q.same_company_pairs}, {q.solver_ms:.0f} ms; random grouped before "
            f"{baseline['before']}"
        )
        if q.grouped_before_pairs:
            failures.append(
                f"re-forming n={n} cycle {cycle + 1}: {q.grouped_before_pairs} pairs again"
            )
        past += tuple(c.members for c in result.cohorts)
    print()
    return failures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    print(f"CPUs {os.cpu_count()}, load average at start {os.getloadavg()[0]:.2f}\n")
    limits = {6000: 200.0, 60000: 1500.0}
    if args.quick:
        failures = run_sizes((600, 6000), 1, limits) + run_reforming(600, 3)
    else:
        failures = run_sizes((600, 6000, 60000), 5, limits) + run_reforming(600, 8)
        failures += run_reforming(6000, 8)
    print(f"load average at end {os.getloadavg()[0]:.2f}")
    for failure in failures:
        print(f"TARGET MISSED: {failure}")
    if not failures:
        print("All targets met.")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
