"""Mastermind forming (`bot.domain.mastermind.form_groups`: the engine's groups solver
with colleagues, blocked pairs and a common slot made hard rules) against the bare
solver (`make_cohorts`) on the same synthetic applicants, measured in the same run.

    python bench/mastermind.py            # 300 and 3,000 applicants
    python bench/mastermind.py --quick    # 300 only

Applicants: companies of Zipf sizes (so colleagues are common), two challenge tags
out of 8, seniority 0..4, three free evenings a week in one of three regions; one in
twenty has blocked someone. Prints the time of each (median of the runs, GC on),
their ratio, what the bare solver lets through that the hard rules forbid, who
waits because of them, and the load average.
"""

from __future__ import annotations

import argparse
import gc
import os
import random
import statistics
import sys
import time
from collections.abc import Callable
from functools import partial
from itertools import combinations
from pathlib import Path
from typing import TypeVar

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.domain.mastermind import FormingRules, form_groups
from bot.domain.matching import Applicant, make_cohorts

TAGS = tuple(f"challenge-{k}" for k in range(8))
EVENING_UTC = (23 * 60, 17 * 60, 10 * 60)
Result = TypeVar("Result")
RULES = FormingRules(min_size=5, max_size=7, session_minutes=60, allow_colleagues=False)


def population(count: int, seed: int) -> tuple[list[Applicant], list[tuple[str, str]]]:
    rng = random.Random(seed)
    companies = max(8, count // 10)
    company_of = rng.choices(range(companies), [1 / (k + 1) for k in range(companies)], k=count)
    people = []
    for k in range(count):
        region = rng.randrange(3)
        spans = []
        for day in rng.sample(range(5), 3):
            start = (day * 1440 + EVENING_UTC[region]) % 10080
            spans.append((start, start + 120))
        people.append(
            Applicant(
                f"a{k:06d}",
                company=f"company-{company_of[k]}",
                tags=frozenset(rng.sample(TAGS, 2)),
                seniority=rng.randrange(5),
                availability=tuple(spans),
            )
        )
    ids = [p.member_id for p in people]
    blocks = [(rng.choice(ids), rng.choice(ids)) for _ in range(count // 20)]
    return people, [(one, other) for one, other in blocks if one != other]


def timed(call: Callable[[], Result], runs: int) -> tuple[float, Result]:
    """The median time of `runs` calls in milliseconds, and the last result."""
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        result = call()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times), result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    options = parser.parse_args()
    gc.enable()
    sizes = (300,) if options.quick else (300, 3000)
    runs = 3 if options.quick else 5
    print(f"load average before: {os.getloadavg()}")
    for count in sizes:
        people, blocks = population(count, seed=count)
        company = {p.member_id: p.company for p in people}
        blocked = {tuple(sorted(pair)) for pair in blocks}
        bare_ms, bare = timed(partial(make_cohorts, people, RULES.config()), runs)
        hard_ms, plan = timed(partial(form_groups, people, RULES, blocked_pairs=blocks), runs)
        bare_groups = [c.members for c in bare.cohorts]
        colleagues = sum(
            company[a] == company[b] for g in bare_groups for a, b in combinations(g, 2)
        )
        together = sum(tuple(sorted(p)) in blocked for g in bare_groups for p in combinations(g, 2))
        grouped = sum(len(g.members) for g in plan.groups)
        print(
            f"{count} applicants: bare solver {bare_ms:.1f} ms, with hard rules {hard_ms:.1f} ms "
            f"(ratio {hard_ms / bare_ms:.2f}); bare solver: {colleagues} colleague pairs, "
            f"{together} blocked pairs together, {len(bare.left_out)} waiting; "
            f"with hard rules: 0 of either, {grouped} grouped, {count - grouped} waiting"
        )
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
