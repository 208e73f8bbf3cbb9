"""Chain heads this process has committed, so an append need not seek each entity's last event."""

from __future__ import annotations

from collections.abc import Mapping

from hub.store.chain import Head


class HeadCache:
    """Entity id -> `Head` as of our last commit; use only under the write lock."""

    def __init__(self, capacity: int) -> None:
        self._heads: dict[str, Head] = {}
        self._capacity = capacity
        self._valid_after = -1  # id of the write transaction whose result the cache reflects

    def view(self, txn_id: int) -> Mapping[str, Head]:
        """The heads as seen by write transaction `txn_id` (emptied if someone else wrote)."""
        # LMDB numbers write transactions consecutively (an empty commit uses no number), so
        # an id other than "our last commit + 1" proves another process wrote in between.
        if txn_id - 1 != self._valid_after:
            self._heads.clear()
        return self._heads

    def appended(self, txn_id: int, heads: Mapping[str, Head]) -> None:
        """Record the committed transaction `txn_id`, which moved these heads."""
        if txn_id - 1 != self._valid_after:
            self._heads.clear()
        if len(self._heads) + len(heads) > self._capacity:
            self._heads.clear()  # crude bound; a miss costs one cursor seek
        if self._capacity > 0:
            self._heads.update(heads)
        self._valid_after = txn_id

    def committed_elsewhere(self, txn_id: int) -> None:
        """Record a committed transaction of ours that changed no event (snapshot, prune)."""
        if txn_id - 1 == self._valid_after:
            self._valid_after = txn_id
