"""Maximum-cardinality matching in general graphs (Edmonds' blossom algorithm).

The pair solver uses it to ask, tier by tier, "can everybody be paired using only pairs
without this defect?" and to reach that matching from the current one. Each search grows
an alternating tree with numpy operations over a vertex's whole neighbourhood at once.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable

import numpy as np

from bot.domain.matching.costs import BoolArray, IntArray

UNMATCHED = -1


def grow_matching(adjacent: BoolArray, mate: IntArray, roots: Iterable[int]) -> IntArray:
    """Augment the matching `mate` from each still-exposed root in turn and return it.

    `adjacent` is a symmetric boolean matrix with a False diagonal; `mate[v]` is v's partner
    or -1, and every matched pair must be adjacent. Augmenting never unmatches a vertex, so
    when not all roots can be matched the earlier ones win (the greedy algorithm on the
    matching matroid). A failed search leaves a Hungarian tree whose vertices can lie on no
    augmenting path ever again, so they are retired from later searches; that keeps the
    total work to about one numpy step per vertex per search that succeeds.
    """
    mate = mate.copy()
    retired = np.zeros(mate.size, dtype=bool)
    for root in roots:
        if mate[root] != UNMATCHED or retired[root]:
            continue
        tree = _AlternatingTree(adjacent, mate, int(root), retired)
        end = tree.find_augmenting_path()
        if end == UNMATCHED:
            retired |= tree.members()
        else:
            tree.augment(end)
    return mate


class _AlternatingTree:
    """One breadth-first search from an exposed root, shrinking blossoms as it meets them."""

    def __init__(self, adjacent: BoolArray, mate: IntArray, root: int, retired: BoolArray) -> None:
        size = mate.size
        self.adjacent = adjacent
        self.mate = mate
        self.retired = retired
        self.parent = np.full(size, UNMATCHED, dtype=np.int64)
        self.base = np.arange(size, dtype=np.int64)
        self.outer = np.zeros(size, dtype=bool)  # even distance from the root, or in a blossom
        self.outer[root] = True
        self.queue: deque[int] = deque([root])

    def members(self) -> BoolArray:
        return np.asarray(self.outer | (self.parent != UNMATCHED), dtype=bool)

    def find_augmenting_path(self) -> int:
        """The exposed vertex an augmenting path ends at, or -1 when there is none."""
        mate, parent, base, outer = self.mate, self.parent, self.base, self.outer
        while self.queue:
            v = self.queue.popleft()
            neighbours = np.flatnonzero(self.adjacent[v] & ~self.retired)
            neighbours = neighbours[(base[neighbours] != base[v]) & (neighbours != mate[v])]
            fresh = neighbours[(parent[neighbours] == UNMATCHED) & ~outer[neighbours]]
            exposed = fresh[mate[fresh] == UNMATCHED]
            if exposed.size:
                parent[exposed[0]] = v
                return int(exposed[0])
            # Label the fresh neighbours odd and their partners even. When two fresh
            # neighbours are partners, only one is labelled here: its partner turns even
            # and the edge to it closes a blossom just below.
            partners = mate[fresh]
            fresh = fresh[~(np.isin(partners, fresh) & (partners < fresh))]
            parent[fresh] = v
            newly_outer = mate[fresh]
            outer[newly_outer] = True
            self.queue.extend(newly_outer.tolist())
            closing = neighbours[outer[neighbours]]
            while closing.size:
                closing = closing[base[closing] != base[v]]
                if closing.size:
                    self._shrink_blossom(v, int(closing[0]))
                    closing = closing[1:]
        return UNMATCHED

    def augment(self, end: int) -> None:
        mate, parent = self.mate, self.parent
        v = end
        while v != UNMATCHED:
            previous = int(parent[v])
            next_v = int(mate[previous])
            mate[v] = previous
            mate[previous] = v
            v = next_v

    def _lowest_common_base(self, a: int, b: int) -> int:
        mate, parent, base = self.mate, self.parent, self.base
        on_path: set[int] = set()
        while True:
            a = int(base[a])
            on_path.add(a)
            if mate[a] == UNMATCHED:
                break
            a = int(parent[mate[a]])
        while True:
            b = int(base[b])
            if b in on_path:
                return b
            b = int(parent[mate[b]])

    def _mark_path(self, v: int, blossom_base: int, child: int, in_blossom: BoolArray) -> None:
        mate, parent, base = self.mate, self.parent, self.base
        while base[v] != blossom_base:
            in_blossom[base[v]] = True
            in_blossom[base[mate[v]]] = True
            parent[v] = child
            child = int(mate[v])
            v = int(parent[mate[v]])

    def _shrink_blossom(self, v: int, w: int) -> None:
        blossom_base = self._lowest_common_base(v, w)
        in_blossom = np.zeros(self.mate.size, dtype=bool)
        self._mark_path(v, blossom_base, w, in_blossom)
        self._mark_path(w, blossom_base, v, in_blossom)
        absorbed = in_blossom[self.base]
        self.base[absorbed] = blossom_base
        newly_outer = np.flatnonzero(absorbed & ~self.outer)
        self.outer[newly_outer] = True
        self.queue.extend(newly_outer.tolist())
