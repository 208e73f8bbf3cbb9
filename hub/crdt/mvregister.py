"""Multi-value register: keeps every concurrently written value until one is chosen."""

from __future__ import annotations

from collections.abc import Hashable
from functools import reduce
from typing import Generic, TypeVar

from hub.clocks.vector import VectorClock
from hub.record import record

T = TypeVar("T", bound=Hashable)


@record(slots=False)  # no slots: they break `MVRegister[T]()` on Python 3.11
class MVRegister(Generic[T]):
    """The set of (value, clock) writes that no other write causally supersedes."""

    entries: frozenset[tuple[T, VectorClock]] = frozenset()

    @classmethod
    def of(cls, value: T, clock: VectorClock) -> MVRegister[T]:
        return cls(frozenset({(value, clock)}))

    def assign(self, value: T, clock: VectorClock) -> MVRegister[T]:
        """A write made with causal knowledge `clock`: supersedes every entry it has seen."""
        if all(clock.dominates(theirs) for _, theirs in self.entries):
            # The common case (a write that has seen the whole register): it alone is left.
            # `merge` gives the same (tests/hub/test_crdt_fast_paths.py): nothing can dominate
            # a clock that dominates every other entry.
            return MVRegister.of(value, clock)
        return self.merge(MVRegister.of(value, clock))

    def merge(self, other: MVRegister[T]) -> MVRegister[T]:
        """Union of both, less every entry whose clock another entry's clock dominates."""
        union = self.entries | other.entries
        return MVRegister(
            frozenset(
                (value, clock)
                for value, clock in union
                if not any(theirs.dominates(clock) for _, theirs in union)
            )
        )

    @property
    def values(self) -> tuple[T, ...]:
        """The distinct current values, in a stable order."""
        return tuple(sorted({value for value, _ in self.entries}, key=repr))

    @property
    def conflicted(self) -> bool:
        """True when concurrent writes left more than one distinct value."""
        return len(self.values) > 1

    @property
    def clock(self) -> VectorClock:
        """Everything this register has seen."""
        return reduce(lambda acc, entry: acc.merge(entry[1]), self.entries, VectorClock())

    def resolve(self, value: T, node: str) -> MVRegister[T]:
        """Settle on `value` with a write by `node` that supersedes every current entry."""
        return MVRegister.of(value, self.clock.increment(node))
