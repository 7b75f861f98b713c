"""Value types of the pairing engine: what goes in, what comes out (DESIGN.md §5)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from operator import attrgetter
from typing import Any

import numpy as np
import numpy.typing as npt

IntArray = npt.NDArray[np.int64]
StrArray = npt.NDArray[np.str_]
FloatArray = npt.NDArray[np.float64]

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
class CandidateTable:
    """A round's candidates as columns, sorted by id: what a job keeps between rounds of a
    big community and updates with `changed`, instead of building one `Candidate` per
    member every round (at 50,000 members those objects cost more than the search).

    `company` and `industry` are codes into `companies` and `industries` (-1 for None);
    NaN offsets are unknown. `make_groups` accepts a table wherever it takes candidates and
    groups it exactly as it would the same candidates as objects.
    """

    member_ids: StrArray
    company: IntArray
    industry: IntArray
    utc_offset_hours: FloatArray
    work_start_hour: FloatArray
    work_end_hour: FloatArray
    companies: tuple[str, ...] = ()
    industries: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        ids = np.asarray(self.member_ids)
        if ids.size > 1 and not (ids[1:] > ids[:-1]).all():
            raise ValueError("CandidateTable.member_ids must be sorted and unique")
        size = ids.size
        columns = (
            self.company,
            self.industry,
            self.utc_offset_hours,
            self.work_start_hour,
            self.work_end_hour,
        )
        if any(np.shape(column) != (size,) for column in columns):
            raise ValueError("every CandidateTable column needs one entry per member")
        for start, end in ((self.work_start_hour, self.work_end_hour),):
            if (
                size
                and ((start < 0) | (start > 24) | (end < 0) | (end > 24) | (start == end)).any()
            ):
                raise ValueError("working hours must lie in 0..24 and not be empty")
        offset = self.utc_offset_hours[~np.isnan(self.utc_offset_hours)]
        if offset.size and (np.abs(offset) > _OFFSET_LIMIT_HOURS).any():
            raise ValueError("UTC offsets must lie in -14..14")

    @property
    def size(self) -> int:
        return int(self.member_ids.size)

    @classmethod
    def from_candidates(cls, candidates: Sequence[Candidate]) -> CandidateTable:
        return cls.empty().changed(candidates)

    @classmethod
    def empty(cls) -> CandidateTable:
        none = np.zeros(0, dtype=np.int64)
        hours = np.zeros(0, dtype=np.float64)
        return cls(np.zeros(0, dtype=str), none, none, hours, hours, hours)

    def changed(
        self, candidates: Sequence[Candidate] = (), *, removed: Iterable[str] = ()
    ) -> CandidateTable:
        """This table with `removed` members gone and `candidates` added or replaced; the
        work is in proportion to the change, plus linear array copies."""
        new_ids = np.array(list(map(attrgetter("member_id"), candidates)), dtype=str)
        order = np.argsort(new_ids, kind="stable")
        inserted = new_ids[order]
        if (inserted[1:] == inserted[:-1]).any():
            raise ValueError("member ids must be unique")
        keep = np.ones(self.size, dtype=bool)
        at = find_ids(
            self.member_ids, np.concatenate([np.array(list(removed), dtype=str), inserted])
        )
        keep[at[at >= 0]] = False
        companies, company = _codes(self.companies, list(map(attrgetter("company"), candidates)))
        industries, industry = _codes(
            self.industries, list(map(attrgetter("industry"), candidates))
        )
        base_ids = self.member_ids[keep]
        where = np.searchsorted(base_ids, inserted)
        wide = np.result_type(base_ids, inserted)

        def merge(old: npt.NDArray[Any], new: npt.NDArray[Any]) -> npt.NDArray[Any]:
            return np.insert(old[keep], where, new[order])

        return CandidateTable(
            member_ids=np.insert(base_ids.astype(wide), where, inserted),
            company=merge(self.company, company),
            industry=merge(self.industry, industry),
            utc_offset_hours=merge(self.utc_offset_hours, floats(candidates, "utc_offset_hours")),
            work_start_hour=merge(self.work_start_hour, floats(candidates, "work_start_hour")),
            work_end_hour=merge(self.work_end_hour, floats(candidates, "work_end_hour")),
            companies=companies,
            industries=industries,
        )


def floats(candidates: Sequence[Candidate], name: str) -> FloatArray:
    """A float attribute of every candidate, in order; NaN for None."""
    try:
        return np.fromiter(map(attrgetter(name), candidates), np.float64, len(candidates))
    except TypeError:  # some values are None
        column = map(attrgetter(name), candidates)
        return np.array([math.nan if v is None else v for v in column], dtype=np.float64)


def _codes(
    vocabulary: tuple[str, ...], values: list[str | None]
) -> tuple[tuple[str, ...], IntArray]:
    """Codes of `values` in `vocabulary`, extended by the values it lacks; None is -1."""
    known: dict[str | None, int] = dict(zip(vocabulary, range(len(vocabulary)), strict=True))
    # dict.fromkeys keeps first appearances in order: new values get codes in that order.
    new = [value for value in dict.fromkeys(values) if value is not None and value not in known]
    known.update(zip(new, range(len(vocabulary), len(vocabulary) + len(new)), strict=True))
    known[None] = -1
    codes = np.fromiter(map(known.__getitem__, values), np.int64, len(values))
    return (*vocabulary, *new), codes


def find_ids(sorted_ids: StrArray, wanted: StrArray) -> IntArray:
    """Position of each wanted id in `sorted_ids` (sorted, unique), -1 when absent."""
    if not sorted_ids.size or not wanted.size:
        return np.full(wanted.size, -1, dtype=np.int64)
    order = None
    if _merges(sorted_ids, wanted) and not (wanted[1:] >= wanted[:-1]).all():
        order = np.argsort(wanted, kind="stable")
        wanted = wanted[order]
    at = np.minimum(search_sorted_ids(sorted_ids, wanted), sorted_ids.size - 1)
    found = np.where(sorted_ids[at] == wanted, at, -1).astype(np.int64)
    if order is None:
        return found
    unsorted = np.empty_like(found)
    unsorted[order] = found
    return unsorted


def search_sorted_ids(sorted_ids: StrArray, wanted: StrArray) -> IntArray:
    """`np.searchsorted(sorted_ids, wanted)`, by merging when `wanted` is many and sorted.

    A binary search costs a score of string comparisons per id; a stable sort of the two
    sorted arrays laid end to end (a timsort merges the two runs in one linear pass) costs
    about one. Stability puts each wanted id before equal ids of `sorted_ids`, so its place
    in the merge minus its own index counts the ids of `sorted_ids` before it.
    """
    if not _merges(sorted_ids, wanted) or not (wanted[1:] >= wanted[:-1]).all():
        return np.searchsorted(sorted_ids, wanted).astype(np.int64)
    merged = np.argsort(np.concatenate([wanted, sorted_ids]), kind="stable")
    return np.flatnonzero(merged < wanted.size) - np.arange(wanted.size)


def _merges(sorted_ids: StrArray, wanted: StrArray) -> bool:
    """Whether a merge beats binary searches: from one wanted id per ten sorted ids."""
    return bool(wanted.size * 10 >= sorted_ids.size)


@dataclass(frozen=True, slots=True)
class History:
    """What earlier rounds left behind, as arrays.

    `member_ids` is the index space of the meetings: meeting k is between
    `member_ids[first[k]]` and `member_ids[second[k]]`, `rounds_ago[k]` rounds ago (1 = the
    previous round). Arrays cross the boundary because at 50,000 members a community carries
    about half a million met pairs, and one Python object per pair costs more than the whole
    search. Construction normalises: ids sorted, `first < second`, each pair once at its most
    recent meeting, meetings sorted by pair, so later look-ups need no sort. Building from
    already normal arrays (what `after` returns) costs a few linear passes. Ids of members
    absent this round are ignored everywhere.
    """

    member_ids: StrArray = field(default_factory=lambda: np.zeros(0, dtype=str))
    first: IntArray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    second: IntArray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    rounds_ago: IntArray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    trio_last_round: frozenset[str] = frozenset()
    left_out_last_round: frozenset[str] = frozenset()
    blocked: frozenset[frozenset[str]] = frozenset()

    def __post_init__(self) -> None:
        ids = np.asarray(self.member_ids)
        if ids.size == 0:
            ids = np.zeros(0, dtype=str)
        first = np.asarray(self.first, dtype=np.int64)
        second = np.asarray(self.second, dtype=np.int64)
        ago = np.asarray(self.rounds_ago, dtype=np.int64)
        if not first.shape == second.shape == ago.shape or first.ndim != 1:
            raise ValueError("History.first, second and rounds_ago must be equal-length 1-d")
        if first.size and (
            min(first.min(), second.min()) < 0 or max(first.max(), second.max()) >= ids.size
        ):
            raise ValueError("History meetings must index into member_ids")
        if first.size and ago.min() < 1:
            raise ValueError("History.rounds_ago must be at least 1")
        if (first == second).any():
            raise ValueError("a member cannot have met themself")
        if ids.size > 1 and not (ids[1:] > ids[:-1]).all():
            order = np.argsort(ids, kind="stable")
            ids = ids[order]
            if (ids[1:] == ids[:-1]).any():
                raise ValueError("History.member_ids must be unique")
            rank = np.empty(order.size, dtype=np.int64)
            rank[order] = np.arange(order.size)
            first, second = rank[first], rank[second]
        low, high = np.minimum(first, second), np.maximum(first, second)
        keys = (low << 32) | high
        if keys.size > 1 and not (keys[1:] > keys[:-1]).all():
            # Most recent meeting first within each pair, then keep each pair's first row.
            order = np.lexsort((ago, keys))
            keys, low, high, ago = keys[order], low[order], high[order], ago[order]
            keep = np.append(True, keys[1:] != keys[:-1])
            low, high, ago = low[keep], high[keep], ago[keep]
        for name, value in (
            ("member_ids", ids),
            ("first", low),
            ("second", high),
            ("rounds_ago", ago),
        ):
            value.setflags(write=False)
            object.__setattr__(self, name, value)

    @classmethod
    def from_pairs(
        cls,
        last_met: Mapping[frozenset[str], int],
        *,
        trio_last_round: frozenset[str] = frozenset(),
        left_out_last_round: frozenset[str] = frozenset(),
        blocked: frozenset[frozenset[str]] = frozenset(),
    ) -> History:
        """A history from a mapping of each met pair to rounds ago; for small communities."""
        pairs = [tuple(pair) for pair in last_met]
        if any(len(pair) != 2 for pair in pairs):
            raise ValueError("History keys must be pairs of two member ids")
        ids = sorted({member for pair in pairs for member in pair})
        position = {member: k for k, member in enumerate(ids)}
        return cls(
            member_ids=np.array(ids, dtype=str),
            first=np.array([position[pair[0]] for pair in pairs], dtype=np.int64),
            second=np.array([position[pair[1]] for pair in pairs], dtype=np.int64),
            rounds_ago=np.fromiter(last_met.values(), np.int64, len(pairs)),
            trio_last_round=trio_last_round,
            left_out_last_round=left_out_last_round,
            blocked=blocked,
        )

    @property
    def last_met(self) -> dict[frozenset[str], int]:
        """The meetings as a mapping of pair to rounds ago (one object per pair: slow at scale)."""
        ids = self.member_ids.tolist()
        return {
            frozenset((ids[a], ids[b])): ago
            for a, b, ago in zip(
                self.first.tolist(), self.second.tolist(), self.rounds_ago.tolist(), strict=True
            )
        }

    def after(
        self,
        groups: Sequence[Sequence[str]],
        *,
        in_trio: Iterable[str] = (),
        forget: Iterable[str] = (),
    ) -> History:
        """The history one round later: every meeting a round older, these groups met 1 round
        ago, `in_trio` made the trio, members in `forget` (who left) dropped. Blocks carry
        over; who was left out is the caller's to say, so that starts empty.

        Linear in the history plus a sort of the round's own pairs: old meetings stay sorted
        and the new ones are merged in.
        """
        flat = [member for group in groups for member in group]
        new_ids = np.array(flat, dtype=str) if flat else np.zeros(0, dtype=str)
        entry = np.arange(len(flat))
        first, second = _group_pairs(entry, list(map(len, groups)))
        found_at = find_ids(self.member_ids, new_ids)
        newcomers, newcomer_of = np.unique(new_ids[found_at < 0], return_inverse=True)
        return self._advance(
            found_at, newcomers, newcomer_of.ravel(), first, second, in_trio, forget
        )

    def after_round(self, result: PairingResult, *, forget: Iterable[str] = ()) -> History:
        """`after` for a round `make_groups` made with this history, from its arrays: no
        group tuples, and only newcomers' ids are looked at as strings."""
        valid = result.slots >= 0
        members = result.slots[valid]
        entry = np.full(result.slots.shape, -1, dtype=np.int64)
        entry[valid] = np.arange(members.size)
        firsts, seconds = [np.zeros(0, dtype=np.int64)], [np.zeros(0, dtype=np.int64)]
        for s in range(result.slots.shape[1]):
            for t in range(s + 1, result.slots.shape[1]):
                both = valid[:, s] & valid[:, t]
                firsts.append(entry[both, s])
                seconds.append(entry[both, t])
        if result.history_ids is self.member_ids:
            found_at = result.history_index[members]
            moved = self._advance_in_place(result, members, found_at, forget)
            if moved is not None:
                ids, old_to_new = moved
                return self._carry(
                    ids,
                    old_to_new,
                    members,
                    np.concatenate(firsts),
                    np.concatenate(seconds),
                    result.quality.in_trio,
                )
        else:
            ids = np.array(result.member_ids, dtype=str)
            found_at = find_ids(self.member_ids, ids[members] if members.size else ids[:0])
        # Round members are indices into the round's sorted ids: sorting the newcomers'
        # indices sorts their ids, with no string comparison.
        new_members = members[found_at < 0]
        newcomer_members = np.sort(new_members)
        newcomers = np.array([result.member_ids[m] for m in newcomer_members.tolist()], dtype=str)
        return self._advance(
            found_at,
            newcomers,
            np.searchsorted(newcomer_members, new_members),
            np.concatenate(firsts),
            np.concatenate(seconds),
            result.quality.in_trio,
            forget,
        )

    def _advance(
        self,
        found_at: IntArray,
        newcomers: StrArray,
        newcomer_of: IntArray,
        pair_first: IntArray,
        pair_second: IntArray,
        in_trio: Iterable[str],
        forget: Iterable[str],
    ) -> History:
        """The next history: round entry k is old member `found_at[k]`, or (where that is
        -1) the newcomer given by the next entry of `newcomer_of`, an index into the sorted
        and unique `newcomers`; the round's pairs are entries (`pair_first`,
        `pair_second`)."""
        old_ids = self.member_ids
        # Sorting strings is what costs at 50,000 members, so only the few newcomers and
        # leavers are sorted; everyone else keeps their order, found by binary search.
        kept = np.ones(old_ids.size, dtype=bool)
        gone_at = find_ids(old_ids, np.array(list(forget), dtype=str))
        kept[gone_at[gone_at >= 0]] = False
        kept[found_at[found_at >= 0]] = True  # in this round: not gone after all
        base = old_ids[kept]
        inserted_at = np.searchsorted(base, newcomers)
        # Widen first: insert casts to the array's own width and would cut longer ids.
        wide = np.result_type(base, newcomers)
        ids = np.insert(base.astype(wide, copy=False), inserted_at, newcomers)
        # Old index -> new index: rank among the kept, plus newcomers sorted before it.
        rank = np.cumsum(kept) - 1
        old_to_new = np.where(kept, rank + np.searchsorted(inserted_at, rank, side="right"), -1)
        newcomer_at = inserted_at + np.arange(newcomers.size)
        round_at = np.empty(found_at.size, dtype=np.int64)
        known = found_at >= 0
        round_at[known] = old_to_new[found_at[known]]
        round_at[~known] = newcomer_at[newcomer_of]
        return self._carry(ids, old_to_new, round_at, pair_first, pair_second, in_trio)

    def _advance_in_place(
        self, result: PairingResult, members: IntArray, found_at: IntArray, forget: Iterable[str]
    ) -> tuple[StrArray, IntArray] | None:
        """When the round placed all its members and everyone of this history not in it
        is forgotten, the next history's ids are the round's: (those ids, old index -> new
        index). None otherwise."""
        round_ids = result.member_id_array
        if round_ids is None or members.size != round_ids.size:
            return None
        gone_at = find_ids(self.member_ids, np.array(list(forget), dtype=str))
        kept = np.ones(self.member_ids.size, dtype=bool)
        kept[gone_at[gone_at >= 0]] = False
        known = found_at >= 0
        if int(kept.sum()) != int(known.sum()) or not kept[found_at[known]].all():
            return None
        old_to_new = np.full(self.member_ids.size, -1, dtype=np.int64)
        old_to_new[found_at[known]] = members[known]
        return round_ids.view(), old_to_new

    def _carry(
        self,
        ids: StrArray,
        old_to_new: IntArray,
        round_at: IntArray,
        pair_first: IntArray,
        pair_second: IntArray,
        in_trio: Iterable[str],
    ) -> History:
        """The next history over `ids`: old meetings moved by `old_to_new` (-1: dropped)
        and a round older, then the round's pairs of entries (`pair_first`,
        `pair_second`), entry k being new index `round_at[k]`, met 1 round ago."""
        keep = (old_to_new[self.first] >= 0) & (old_to_new[self.second] >= 0)
        if keep.all():
            first, second = old_to_new[self.first], old_to_new[self.second]
            ago = self.rounds_ago + 1
        else:
            first, second = old_to_new[self.first[keep]], old_to_new[self.second[keep]]
            ago = self.rounds_ago[keep] + 1
        new_first, new_second = round_at[pair_first], round_at[pair_second]
        new_keys = np.sort(
            (np.minimum(new_first, new_second) << 32) | np.maximum(new_first, new_second)
        )
        if new_keys.size:  # a round with no groups has no pairs to deduplicate
            new_keys = new_keys[np.append(True, new_keys[1:] != new_keys[:-1])]
        keys = (first << 32) | second
        at = np.searchsorted(keys, new_keys)
        again = at < keys.size
        again[again] = keys[at[again]] == new_keys[again]
        ago[at[again]] = 1
        fresh, fresh_at = new_keys[~again], at[~again]
        keys = np.insert(keys, fresh_at, fresh)
        ago = np.insert(ago, fresh_at, 1)
        # Normal by construction (ids sorted, pairs ordered, sorted and unique): no pass
        # of `__post_init__` checking and normalising them again.
        return History._normal(
            ids, keys >> 32, keys & 0xFFFFFFFF, ago, frozenset(in_trio), self.blocked
        )

    @classmethod
    def _normal(
        cls,
        member_ids: StrArray,
        first: IntArray,
        second: IntArray,
        rounds_ago: IntArray,
        trio_last_round: frozenset[str],
        blocked: frozenset[frozenset[str]],
    ) -> History:
        """A history from arrays already as `__post_init__` leaves them."""
        history = object.__new__(cls)
        for name, value in (
            ("member_ids", member_ids),
            ("first", first),
            ("second", second),
            ("rounds_ago", rounds_ago),
        ):
            value.setflags(write=False)
            object.__setattr__(history, name, value)
        object.__setattr__(history, "trio_last_round", trio_last_round)
        object.__setattr__(history, "left_out_last_round", frozenset())
        object.__setattr__(history, "blocked", blocked)
        return history


def _group_pairs(members: IntArray, sizes: Sequence[int]) -> tuple[IntArray, IntArray]:
    """Every pair inside every group of `members`, laid out group after group."""
    size_of = np.array(sizes, dtype=np.int64)
    starts = np.cumsum(size_of) - size_of
    firsts, seconds = [np.zeros(0, dtype=np.int64)], [np.zeros(0, dtype=np.int64)]
    for size in np.unique(size_of).tolist():
        begin = starts[size_of == size]
        for s in range(size):
            for t in range(s + 1, size):
                firsts.append(members[begin + s])
                seconds.append(members[begin + t])
    return np.concatenate(firsts), np.concatenate(seconds)


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


@dataclass(frozen=True, slots=True, eq=False)
class PairingResult:
    """The groups of a round; every candidate is in exactly one group or in `left_out`.

    The groups are also arrays: row k of `slots` holds indices into `member_ids` (the
    round's ids, sorted), -1 where a seat is empty. `groups` builds the tuples on first
    use; `History.after_round` uses the arrays, so a big community's job need not build
    25,000 tuples to carry the round forward. `history_index` maps each round member to
    their index in the history the round was made with (-1 for newcomers).
    """

    member_ids: list[str]
    slots: IntArray
    quality: RoundQuality
    history_ids: StrArray
    history_index: IntArray
    _groups: list[tuple[tuple[str, ...], ...]] = field(default_factory=list, repr=False)
    # `member_ids` as an array, when the engine has one at hand (`History.after_round`
    # then carries a round that placed everyone forward with no string work).
    member_id_array: StrArray | None = field(default=None, repr=False)

    @property
    def groups(self) -> tuple[tuple[str, ...], ...]:
        if not self._groups:
            self._groups.append(_group_tuples(self.member_ids, self.slots))
        return self._groups[0]


def _group_tuples(ids: list[str], slots: IntArray) -> tuple[tuple[str, ...], ...]:
    widths = (slots >= 0).sum(axis=1)
    groups: list[tuple[str, ...]] = []
    # Rows come in runs of equal width (largest groups first); each run becomes its tuples
    # straight from one id column per seat, with no list per row.
    run_starts = np.flatnonzero(np.diff(widths, prepend=-1))
    run_stops = np.append(run_starts, widths.size)[1:]
    for start, stop in zip(run_starts.tolist(), run_stops.tolist(), strict=True):
        seats = [
            map(ids.__getitem__, slots[start:stop, seat].tolist())
            for seat in range(int(widths[start]))
        ]
        groups.extend(zip(*seats, strict=True))
    return tuple(groups)
