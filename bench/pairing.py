"""Kindred's pairing engine against a plain random shuffle, on synthetic communities.

    python bench/pairing.py            # full run, a few minutes
    python bench/pairing.py --quick    # smoke run, well under 30 s

A community has companies of Zipf sizes (each with a home region and an industry) and
members in three timezone regions. Between rounds 10% of members leave and newcomers join,
and every other round has an odd count. Both engines see the same membership every round
and each keeps its own history, so repeats reflect each engine's own past choices. The
random baseline is what peers do: shuffle, pair neighbours, the odd one joins the last pair.

The job keeps between rounds what a big community's coffee job would keep per process: the
candidates as a `CandidateTable` (updated with who joined and who left) and each engine's
history as arrays (`History.after`). Timings run with the garbage collector on, as in the
bot, and cover the whole job of a round: the table update, the engine call and the history
update. The targets are on wall-clock time; the process time of the same work ("cpu")
is printed beside it, as it depends far less on what else the machine runs.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

# Runnable from a source checkout without installing the package.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.domain.matching import (
    Candidate,
    CandidateTable,
    History,
    PairingConfig,
    PairingResult,
    make_groups,
    shared_working_hours,
)

ROUNDS = 20
CHURN = 0.10
REPEAT_WINDOW = PairingConfig().repeat_window
MIN_SHARED_HOURS = PairingConfig().min_shared_hours
# UTC offsets per region; half-hour offsets (India, Adelaide) included.
REGIONS: tuple[tuple[float, ...], ...] = (
    (-8.0, -7.0, -6.0, -5.0, -4.0),
    (0.0, 1.0, 2.0, 3.0),
    (5.0, 5.5, 6.0, 7.0, 8.0, 9.0, 9.5, 10.0),
)
REGION_NAMES = ("Americas UTC-8..-4", "Europe/Africa UTC+0..+3", "Asia-Pacific UTC+5..+10")
DAY_STARTS = (8.0, 8.5, 9.0, 9.0, 9.0, 10.0)
INDUSTRIES = 10
HOME_REGION_SHARE = 0.7

Groups = tuple[tuple[str, ...], ...]
Grouper = Callable[[CandidateTable, History, int], Groups | PairingResult]


class Community:
    """A membership that churns between rounds."""

    def __init__(self, size: int, seed: int, *, attributes: bool = True) -> None:
        self.size = size
        self.rng = random.Random(seed)
        self.attributes = attributes
        self.next_id = 0
        company_count = max(8, size // 10)
        self.company_weights = [1.0 / (k + 1) for k in range(company_count)]
        self.company_home = [self.rng.randrange(len(REGIONS)) for _ in range(company_count)]
        self.company_industry = [self.rng.randrange(INDUSTRIES) for _ in range(company_count)]
        self.profiles: dict[str, Candidate] = {}  # member id -> profile as stored
        self.cached: dict[str, Candidate] = {}  # member id -> candidate, the job's cache
        for _ in range(size):
            self._join()
        self.joined: list[Candidate] = []  # since the table was last brought up to date
        self.table = CandidateTable.from_candidates(list(self.cached.values()))

    def _join(self) -> None:
        member_id = f"u{self.next_id:07d}"
        self.next_id += 1
        if not self.attributes:
            self.profiles[member_id] = self.cached[member_id] = Candidate(member_id)
            if hasattr(self, "joined"):
                self.joined.append(self.cached[member_id])
            return
        rng = self.rng
        company = rng.choices(range(len(self.company_weights)), self.company_weights)[0]
        home = self.company_home[company]
        region = home if rng.random() < HOME_REGION_SHARE else rng.randrange(len(REGIONS))
        start = rng.choice(DAY_STARTS)
        self.profiles[member_id] = Candidate(
            member_id,
            company=f"Company-{company}",
            industry=f"Industry-{self.company_industry[company]}",
            utc_offset_hours=rng.choice(REGIONS[region]),
            work_start_hour=start,
            work_end_hour=start + 8.0,
        )
        self.cached[member_id] = self.candidate_for(self.profiles[member_id])
        if hasattr(self, "joined"):
            self.joined.append(self.cached[member_id])

    @staticmethod
    def candidate_for(profile: Candidate) -> Candidate:
        """A member's candidate, normalised like `coffee.candidate_for`."""
        return Candidate(
            profile.member_id,
            company=profile.company.lower() if profile.company else None,
            industry=profile.industry.lower() if profile.industry else None,
            utc_offset_hours=profile.utc_offset_hours,
            work_start_hour=profile.work_start_hour,
            work_end_hour=profile.work_end_hour,
        )

    def candidates(self) -> list[Candidate]:
        """This round's candidates, from the job's cache."""
        return list(self.cached.values())

    def update_table(self, leaving: Sequence[str]) -> CandidateTable:
        """The job's table brought up to date with who joined and who left (timed)."""
        self.table = self.table.changed(self.joined, removed=leaving)
        self.joined = []
        return self.table

    def churn(self, round_index: int) -> list[str]:
        """10% leave, newcomers join; odd rounds have one member more. Returns who left."""
        leaving = self.rng.sample(sorted(self.profiles), round(CHURN * len(self.profiles)))
        for member_id in leaving:
            del self.profiles[member_id]
            del self.cached[member_id]
        target = self.size + round_index % 2
        while len(self.profiles) < target:
            self._join()
        return leaving


@dataclass
class Ledger:
    """One engine's history (as the job keeps it) and measurements over a run."""

    history: History = field(default_factory=History)
    repeats: int = 0
    window_repeats: int = 0
    same_company: int = 0
    low_overlap: int = 0
    pairs: int = 0
    trio_twice: int = 0
    extra_trios: int = 0
    left_out: int = 0
    first_repeat_round: int | None = None
    times_ms: list[float] = field(default_factory=list)
    cpu_ms: list[float] = field(default_factory=list)  # process time of the same work

    def update(self, groups: Groups | PairingResult, leaving: Sequence[str]) -> None:
        """The job's bookkeeping after a round (timed)."""
        if isinstance(groups, PairingResult):
            self.history = self.history.after_round(groups, forget=leaving)
            return
        trios = [group for group in groups if len(group) > 2]
        in_trio = [member for group in trios for member in group]
        self.history = self.history.after(groups, in_trio=in_trio, forget=leaving)

    def record(self, groups: Groups, members: dict[str, Candidate], round_index: int) -> None:
        """Count what the round did against the history before it (untimed)."""
        placed = [member for group in groups for member in group]
        if len(set(placed)) != len(placed) or not set(placed) <= members.keys():
            raise RuntimeError("an engine placed someone twice or placed a stranger")
        self.left_out += len(members) - len(placed)
        trios = [group for group in groups if len(group) > 2]
        self.extra_trios += max(0, len(trios) - 1)
        in_trio = frozenset(member for group in trios for member in group)
        self.trio_twice += len(in_trio & self.history.trio_last_round)
        pairs = [(a, b) for group in groups for k, a in enumerate(group) for b in group[k + 1 :]]
        ages = rounds_ago(self.history, pairs)
        self.pairs += len(pairs)
        self.repeats += int((ages > 0).sum())
        self.window_repeats += int(((ages > 0) & (ages <= REPEAT_WINDOW)).sum())
        if self.first_repeat_round is None and (ages > 0).any():
            self.first_repeat_round = round_index + 1
        for a, b in pairs:
            first, second = members[a], members[b]
            self.same_company += first.company is not None and first.company == second.company
            self.low_overlap += shared_working_hours(first, second) < MIN_SHARED_HOURS


def rounds_ago(history: History, pairs: Sequence[tuple[str, str]]) -> np.ndarray:
    """How many rounds ago each pair last met in `history` (0 = never)."""
    if not pairs or not history.first.size:
        return np.zeros(len(pairs), dtype=np.int64)
    ids = history.member_ids
    names = np.array(pairs, dtype=str)
    at = np.minimum(np.searchsorted(ids, names), ids.size - 1)
    known = (ids[at] == names).all(axis=1)
    low, high = at.min(axis=1), at.max(axis=1)
    keys = (history.first << 32) | history.second
    asked = (low << 32) | high
    found = np.minimum(np.searchsorted(keys, asked), keys.size - 1)
    return np.where(known & (keys[found] == asked), history.rounds_ago[found], 0)


def kindred_engine(seed: int) -> Grouper:
    """The engine as the coffee job calls it."""

    def group(candidates: CandidateTable, history: History, round_index: int) -> PairingResult:
        config = PairingConfig(seed=seed * 1000 + round_index)
        return make_groups(candidates, history, config)

    return group


def random_engine(seed: int) -> Grouper:
    rng = random.Random(seed)

    def group(candidates: CandidateTable, history: History, round_index: int) -> Groups:
        ids = candidates.member_ids.tolist()
        rng.shuffle(ids)
        pairs = [ids[k : k + 2] for k in range(0, len(ids) - 1, 2)]
        if len(ids) % 2 and pairs:
            pairs[-1].append(ids[-1])
        return tuple(tuple(pair) for pair in pairs)

    return group


@dataclass
class Floors:
    """Lower bounds, summed over rounds, of defects the population itself forces."""

    low_overlap: int = 0
    same_company: int = 0


def simulate(
    community: Community, engines: dict[str, Grouper], rounds: int, *, stop_at_repeat: bool = False
) -> tuple[dict[str, Ledger], Floors]:
    ledgers = {name: Ledger() for name in engines}
    floors = Floors()
    for round_index in range(rounds):
        leaving = community.churn(round_index) if round_index else []
        # The collector stays on: the bot runs with it.
        started, cpu_started = time.perf_counter(), time.process_time()
        table = community.update_table(leaving)
        table_s = time.perf_counter() - started
        table_cpu_s = time.process_time() - cpu_started
        for name, engine in engines.items():
            ledger = ledgers[name]
            if stop_at_repeat and ledger.first_repeat_round is not None:
                continue
            # The table update counts for each engine.
            started = time.perf_counter() - table_s
            cpu_started = time.process_time() - table_cpu_s
            made = engine(table, ledger.history, round_index)
            elapsed = time.perf_counter() - started
            cpu_elapsed = time.process_time() - cpu_started
            groups = made.groups if isinstance(made, PairingResult) else made
            ledger.record(groups, community.cached, round_index)
            started, cpu_started = time.perf_counter(), time.process_time()
            ledger.update(made, leaving)
            ledger.times_ms.append((elapsed + time.perf_counter() - started) * 1000.0)
            ledger.cpu_ms.append((cpu_elapsed + time.process_time() - cpu_started) * 1000.0)
        candidates = community.candidates()
        floors.low_overlap += timezone_clusters_odd(candidates) // 2
        floors.same_company += colleagues_forced(candidates)
    return ledgers, floors


def colleagues_forced(members: Sequence[Candidate]) -> int:
    """Same-company pairs no pairing avoids: a company larger than everyone else together
    must pair its surplus among itself (timezones ignored, so a lower bound)."""
    sizes: dict[str, int] = {}
    for member in members:
        if member.company is not None:
            sizes[member.company] = sizes.get(member.company, 0) + 1
    largest = max(sizes.values(), default=0)
    return max(0, (largest - (len(members) - largest)) // 2)


class FixedCommunity(Community):
    """Same members every round, no companies, no timezones."""

    def __init__(self, size: int, seed: int) -> None:
        super().__init__(size, seed, attributes=False)

    def churn(self, round_index: int) -> list[str]:
        return []


def allows(reached: int, forced: int) -> str:
    if reached == 0:
        return "yes (Kindred reached 0)"
    if reached <= forced:
        return f"no ({forced} forced over the run, Kindred {reached})"
    return f"unknown (Kindred {reached}, at least {forced} forced)"


def percent(part: int, whole: int) -> str:
    return f"{100.0 * part / whole:.2f}%" if whole else "-"


def ratio(kindred: float, baseline: float) -> str:
    if baseline == 0:
        return "-"
    return f"{kindred / baseline:.3f}x"


def timezone_clusters_odd(members: Sequence[Candidate]) -> int:
    """Clusters of timezones linked by enough shared hours that have an odd count.

    Any pair across clusters lacks shared hours. An odd cluster needs a trio inside it or a
    pair leaving it, and a pair mends two clusters at most, so at least half this number
    (rounded down) of pairs lack shared hours, whatever the pairing.
    """
    by_window: dict[tuple[float | None, float, float], int] = {}
    for member in members:
        window = (member.utc_offset_hours, member.work_start_hour, member.work_end_hour)
        by_window[window] = by_window.get(window, 0) + 1
    windows = list(by_window)
    cluster = list(range(len(windows)))

    def root(k: int) -> int:
        while cluster[k] != k:
            k = cluster[k]
        return k

    for k, a in enumerate(windows):
        for m in range(k + 1, len(windows)):
            b = windows[m]
            hours = shared_working_hours(
                Candidate("a", utc_offset_hours=a[0], work_start_hour=a[1], work_end_hour=a[2]),
                Candidate("b", utc_offset_hours=b[0], work_start_hour=b[1], work_end_hour=b[2]),
            )
            if hours >= MIN_SHARED_HOURS:
                cluster[root(k)] = root(m)
    sizes: dict[int, int] = {}
    for k, window in enumerate(windows):
        sizes[root(k)] = sizes.get(root(k), 0) + by_window[window]
    return sum(size % 2 for size in sizes.values())


def run_sizes(sizes: Sequence[int], rounds: int) -> list[str]:
    failures = []
    header = (
        f"{'n':>7} {'engine':<8} {'repeats':>8} {f'in {REPEAT_WINDOW} rds':>8} {'same co':>8} "
        f"{'<2h':>8} {'pairs':>8} {'med ms':>8} {'max ms':>8} {'med cpu':>8} {'max cpu':>8}"
    )
    print(f"Churning communities, {rounds} rounds, 10% churn, odd count every other round")
    print(header)
    print("-" * len(header))
    for size in sizes:
        community = Community(size, seed=size)
        ledgers, floors = simulate(
            community, {"Kindred": kindred_engine(size), "random": random_engine(size)}, rounds
        )
        for name, ledger in ledgers.items():
            print(
                f"{size:>7} {name:<8} {ledger.repeats:>8} {ledger.window_repeats:>8} "
                f"{percent(ledger.same_company, ledger.pairs):>8} "
                f"{percent(ledger.low_overlap, ledger.pairs):>8} {ledger.pairs:>8} "
                f"{statistics.median(ledger.times_ms):>8.1f} {max(ledger.times_ms):>8.1f} "
                f"{statistics.median(ledger.cpu_ms):>8.1f} {max(ledger.cpu_ms):>8.1f}"
            )
        ours, theirs = ledgers["Kindred"], ledgers["random"]
        print(
            f"{size:>7} {'ratio':<8} {ratio(ours.repeats, theirs.repeats):>8} "
            f"{ratio(ours.window_repeats, theirs.window_repeats):>8} "
            f"{ratio(ours.same_company, theirs.same_company):>8} "
            f"{ratio(ours.low_overlap, theirs.low_overlap):>8} {'':>8} "
            f"{ratio(statistics.median(ours.times_ms), statistics.median(theirs.times_ms)):>8} "
            f"{'':>8} {ratio(statistics.median(ours.cpu_ms), statistics.median(theirs.cpu_ms)):>8}"
        )
        print(
            f"{'':>7} Kindred: trio twice {ours.trio_twice}, extra trios {ours.extra_trios}, "
            f"left out {ours.left_out}"
        )
        print(
            f"{'':>7} does the population allow zero? <2h pairs: "
            f"{allows(ours.low_overlap, floors.low_overlap)}; same company: "
            f"{allows(ours.same_company, floors.same_company)}; repeats: "
            f"{allows(ours.repeats, 0)}"
        )
        if size >= 50_000:
            median = statistics.median(ours.times_ms)
            if median > 60.0:
                failures.append(f"n={size}: median {median:.1f} ms > 60 ms")
            if max(ours.times_ms) > 150.0:
                failures.append(f"n={size}: max {max(ours.times_ms):.1f} ms > 150 ms")
            if (
                ours.repeats
                or ours.same_company > floors.same_company
                or ours.low_overlap > floors.low_overlap
            ):
                failures.append(f"n={size}: avoidable repeats, colleagues or timezone gaps")
    print()
    return failures


def run_small_seeds(seeds: int, rounds: int) -> list[str]:
    totals: dict[str, list[int]] = {"Kindred": [], "random": []}
    window_totals: dict[str, list[int]] = {"Kindred": [], "random": []}
    for seed in range(seeds):
        community = Community(50, seed=seed)
        ledgers, _ = simulate(
            community, {"Kindred": kindred_engine(seed), "random": random_engine(seed)}, rounds
        )
        for name, ledger in ledgers.items():
            totals[name].append(ledger.repeats)
            window_totals[name].append(ledger.window_repeats)
    print(f"n = 50, {seeds} seeds x {rounds} rounds (churn, companies, timezones)")
    for name, repeats in totals.items():
        print(
            f"  {name:<8} mean repeats {statistics.mean(repeats):6.2f} "
            f"(within {REPEAT_WINDOW} rounds {statistics.mean(window_totals[name]):6.2f}); "
            f"per seed {repeats}"
        )
    mean_ours = statistics.mean(totals["Kindred"])
    print(f"  ratio    {ratio(mean_ours, statistics.mean(totals['random']))}")
    print()
    return [f"n=50: mean repeats {mean_ours:.2f} > 1.0"] if mean_ours > 1.0 else []


def run_fixed(sizes: Sequence[int], seeds: int) -> list[str]:
    failures = []
    print("Fixed membership, no companies, no timezones: round of the first repeat")
    print("  (n members allow n - 1 repeat-free rounds; target: no earlier than n - 2)")
    for size in sizes:
        for seed in range(seeds):
            ledgers, _ = simulate(
                FixedCommunity(size, seed),
                {"Kindred": kindred_engine(seed), "random": random_engine(seed)},
                size,
                stop_at_repeat=True,
            )
            ours = ledgers["Kindred"].first_repeat_round
            theirs = ledgers["random"].first_repeat_round
            print(f"  n={size:<4} seed {seed}: Kindred round {ours}, random round {theirs}")
            if ours is not None and ours < size - 2:
                failures.append(f"fixed n={size} seed {seed}: first repeat in round {ours}")
    print()
    return failures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small smoke run")
    args = parser.parse_args()
    started = time.perf_counter()
    print(f"Timezone regions: {'; '.join(REGION_NAMES)}")
    print(f"CPUs {os.cpu_count()}, load average at start {os.getloadavg()[0]:.2f}")
    print()
    if args.quick:
        failures = run_sizes((50, 500, 5_000, 50_000), rounds=4)
        failures += run_small_seeds(seeds=2, rounds=10)
        failures += run_fixed((50,), seeds=1)
    else:
        failures = run_sizes((50, 500, 5_000, 50_000), rounds=ROUNDS)
        failures += run_small_seeds(seeds=10, rounds=ROUNDS)
        failures += run_fixed((50, 100), seeds=3)
    print(
        f"Total bench time {time.perf_counter() - started:.1f} s, "
        f"load average at end {os.getloadavg()[0]:.2f}"
    )
    for failure in failures:
        print(f"TARGET MISSED: {failure}")
    if not failures:
        print("All targets met.")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
