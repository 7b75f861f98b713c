"""Value types of the pairing engine: what goes in, what comes out (DESIGN.md §5)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

HOURS_PER_DAY = 24.0
# Real-world UTC offsets run from -12:00 to +14:00; the check is symmetric.
_OFFSET_LIMIT_HOURS = 14.0


@dataclass(frozen=True, slots=True)
class Candidate:
    """One member who can be grouped this round.

    `company` and `industry` are compared as given, so callers normalise them (lowercase).
    The working day is local time; `work_end_hour < work_start_hour` means it crosses
    midnight, and 0 to 24 means always available. An unknown `utc_offset_hours` never
    counts against a pair.
    """

    member_id: str
    company: str | None = None
    industry: str | None = None
    utc_offset_hours: float | None = None
    work_start_hour: float = 9.0
    work_end_hour: float = 17.0

    def __post_init__(self) -> None:
        for hour in (self.work_start_hour, self.work_end_hour):
            if not 0.0 <= hour <= HOURS_PER_DAY:
                raise ValueError(f"working hours must lie in 0..24, got {hour} ({self.member_id})")
        if self.work_start_hour == self.work_end_hour:
            raise ValueError(f"working day of {self.member_id} is empty")
        offset = self.utc_offset_hours
        if offset is not None and not -_OFFSET_LIMIT_HOURS <= offset <= _OFFSET_LIMIT_HOURS:
            raise ValueError(f"UTC offset must lie in -14..14, got {offset} ({self.member_id})")


@dataclass(frozen=True, slots=True)
class History:
    """What earlier rounds left behind.

    `last_met` maps each unordered pair that met to how many rounds ago they last met
    (1 = the previous round). Ids of members absent this round are ignored everywhere.
    """

    last_met: Mapping[frozenset[str], int]
    trio_last_round: frozenset[str] = frozenset()
    left_out_last_round: frozenset[str] = frozenset()
    blocked: frozenset[frozenset[str]] = frozenset()


@dataclass(frozen=True, slots=True)
class PairingConfig:
    """How to group a round.

    `group_size` 2 makes pairs; an odd count adds exactly one trio. `group_size` 3 makes
    trios; a remainder of one becomes two pairs and a remainder of two becomes one pair
    (never a group of four). `time_budget_ms` caps the local search for communities too big
    for the exact-leaning small-community solver; results are deterministic for a seed
    whenever that search converges inside the budget, which it does with room to spare on
    realistic communities.
    """

    group_size: int = 2
    repeat_window: int = 6
    min_shared_hours: float = 2.0
    seed: int = 0
    time_budget_ms: float = 80.0

    def __post_init__(self) -> None:
        if self.group_size not in (2, 3):
            raise ValueError(f"group_size must be 2 or 3, got {self.group_size}")
        if self.repeat_window < 0:
            raise ValueError("repeat_window must not be negative")
        if not 0.0 <= self.min_shared_hours <= HOURS_PER_DAY:
            raise ValueError("min_shared_hours must lie in 0..24")
        if self.time_budget_ms <= 0:
            raise ValueError("time_budget_ms must be positive")


@dataclass(frozen=True, slots=True)
class RoundQuality:
    """What a round achieved; pair counts cover every pair inside every group.

    `in_trio` lists the members of groups larger than `group_size` (the trio of an odd
    round with pairs). `solver_ms` is the wall time of the whole `make_groups` call.
    """

    participants: int
    groups: int
    repeat_pairs: int
    any_repeat_pairs: int
    same_company_pairs: int
    low_overlap_pairs: int
    total_pairs: int
    in_trio: tuple[str, ...]
    left_out: tuple[str, ...]
    solver_ms: float

    @property
    def repeat_rate(self) -> float:
        """Share of pairs that met within the repeat window."""
        return self.repeat_pairs / self.total_pairs if self.total_pairs else 0.0

    @property
    def cross_company_rate(self) -> float:
        """Share of pairs from different (or unknown) companies."""
        return 1.0 - self.same_company_pairs / self.total_pairs if self.total_pairs else 1.0

    @property
    def timezone_fit(self) -> float:
        """Share of pairs with at least `min_shared_hours` of shared working time."""
        return 1.0 - self.low_overlap_pairs / self.total_pairs if self.total_pairs else 1.0


@dataclass(frozen=True, slots=True)
class PairingResult:
    """The groups of a round; every candidate is in exactly one group or in `left_out`."""

    groups: tuple[tuple[str, ...], ...]
    quality: RoundQuality
