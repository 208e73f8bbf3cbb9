"""`tune_gc` makes collections rarer, never absent: garbage cycles are still freed."""

from __future__ import annotations

import gc
import weakref

from hub.gc_tuning import YOUNG_THRESHOLD, tune_gc


class _Node:
    def __init__(self) -> None:
        self.other: _Node | None = None


def test_tuned_collector_still_frees_cycles() -> None:
    before = gc.get_threshold()
    try:
        tune_gc()
        assert gc.get_threshold()[0] == YOUNG_THRESHOLD
        assert gc.isenabled()
        a, b = _Node(), _Node()
        a.other, b.other = b, a
        gone = weakref.ref(a)
        del a, b
        gc.collect()
        assert gone() is None
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
