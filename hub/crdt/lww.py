"""Last-writer-wins registers: the value with the highest hybrid timestamp wins."""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import field
from functools import reduce
from typing import Generic, TypeVar

from hub.clocks.hlc import HybridTimestamp
from hub.clocks.vector import VectorClock
from hub.crdt.mvregister import MVRegister
from hub.record import record

T = TypeVar("T")


@record(slots=False)  # no slots: they break `LWWRegister[T]()` on Python 3.11
class LWWRegister(Generic[T]):
    """A value stamped with the hybrid timestamp of its write."""

    value: T
    stamp: HybridTimestamp

    def assign(self, value: T, stamp: HybridTimestamp) -> LWWRegister[T]:
        """Write `value` at `stamp` (kept only if it is the latest write)."""
        return self.merge(LWWRegister(value, stamp))

    def merge(self, other: LWWRegister[T]) -> LWWRegister[T]:
        """The later of the two writes; equal stamps fall back to a stable order of values."""
        if other.stamp != self.stamp:
            return other if other.stamp > self.stamp else self
        return other if repr(other.value) > repr(self.value) else self


H = TypeVar("H", bound=Hashable)


@record(slots=False)
class CausalLWW(Generic[H]):
    """LWW that respects causality: a write replaces every write its vector clock has seen,
    whatever the wall clocks say; among concurrent writes the highest stamp wins.

    The spec's rule ("vector clocks for causality, highest timestamp wins, id as tie-break"):
    a multi-value register of stamped values, read through the LWW merge.
    """

    versions: MVRegister[LWWRegister[H]] = field(default_factory=MVRegister)

    def assign(self, value: H, stamp: HybridTimestamp, clock: VectorClock) -> CausalLWW[H]:
        return CausalLWW(self.versions.assign(LWWRegister(value, stamp), clock))

    def merge(self, other: CausalLWW[H]) -> CausalLWW[H]:
        return CausalLWW(self.versions.merge(other.versions))

    @property
    def winner(self) -> LWWRegister[H] | None:
        registers = [register for register, _ in self.versions.entries]
        return reduce(LWWRegister.merge, registers) if registers else None
