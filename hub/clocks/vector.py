"""An immutable vector clock: one counter per node, compared by happened-before."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from enum import StrEnum
from typing import Any

from pydantic import GetCoreSchemaHandler
from pydantic_core import core_schema


class Ordering(StrEnum):
    """How one clock relates to another."""

    BEFORE = "before"
    AFTER = "after"
    EQUAL = "equal"
    CONCURRENT = "concurrent"


MAX_COUNT = 2**63  # counters fit a signed 64-bit integer (msgpack, LMDB records, clients)


class VectorClock(Mapping[str, int]):
    """Node id -> counter; absent nodes count as zero. Immutable and hashable."""

    __slots__ = ("_entries", "_hash")

    def __init__(self, entries: Mapping[str, int] | None = None) -> None:
        clean: dict[str, int] = {}
        for node, count in (entries or {}).items():
            if not isinstance(node, str) or not node:
                raise ValueError(f"vector clock node ids must be non-empty strings, got {node!r}")
            if isinstance(count, bool) or not isinstance(count, int) or not 0 <= count < MAX_COUNT:
                raise ValueError(
                    f"vector clock entry {node!r} must be an integer from 0 to {MAX_COUNT - 1}"
                )
            if count:
                clean[node] = count
        self._entries = dict(sorted(clean.items()))
        self._hash: int | None = None

    def __getitem__(self, node: str) -> int:
        return self._entries[node]

    def get_count(self, node: str) -> int:
        """The counter of `node` (zero when absent)."""
        return self._entries.get(node, 0)

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, VectorClock):
            return self._entries == other._entries
        return NotImplemented

    def __hash__(self) -> int:
        if self._hash is None:
            self._hash = hash(tuple(self._entries.items()))
        return self._hash

    def __repr__(self) -> str:
        return f"VectorClock({self._entries!r})"

    @classmethod
    def _of(cls, entries: dict[str, int]) -> VectorClock:
        """A clock of entries that are already clean (valid, non-zero) and sorted by node: the
        results of `increment` and `merge`, built on the entity's hot path without checking
        each entry again."""
        clock = object.__new__(cls)
        clock._entries = entries
        clock._hash = None
        return clock

    def increment(self, node: str) -> VectorClock:
        """This clock with `node`'s counter advanced by one."""
        count = self._entries.get(node, 0) + 1
        if count >= MAX_COUNT or node not in self._entries:
            return VectorClock({**self._entries, node: count})  # checked, and sorted anew
        return VectorClock._of({**self._entries, node: count})  # same nodes, same order

    def merge(self, other: Mapping[str, int]) -> VectorClock:
        """The least clock that is at or after both (entry-wise maximum)."""
        merged = dict(self._entries)
        grown = False
        theirs = other._entries if isinstance(other, VectorClock) else other
        for node, count in theirs.items():
            if count > merged.get(node, 0):
                grown = grown or node not in merged
                merged[node] = count
        if not isinstance(other, VectorClock):
            return VectorClock(merged)  # entries of a plain mapping are checked
        # Both sides are clean: only a node new to this clock needs the order restored.
        return VectorClock._of(dict(sorted(merged.items())) if grown else merged)

    def compare(self, other: VectorClock) -> Ordering:
        """Whether this clock happened before, after, equal to or concurrently with `other`."""
        mine, theirs = self._entries, other._entries
        less = greater = False
        for node in mine.keys() | theirs.keys():
            a, b = mine.get(node, 0), theirs.get(node, 0)
            if a < b:
                less = True
                if greater:
                    return Ordering.CONCURRENT
            elif a > b:
                greater = True
                if less:
                    return Ordering.CONCURRENT
        if less:
            return Ordering.BEFORE
        if greater:
            return Ordering.AFTER
        return Ordering.EQUAL

    def dominates(self, other: VectorClock) -> bool:
        """True when this clock has seen everything `other` has, and more (`compare` is
        AFTER): one pass over `other`'s entries, no set of nodes built."""
        return self.covers(other) and self._entries != other._entries

    def covers(self, other: VectorClock) -> bool:
        """True when this clock has seen everything `other` has (after or equal). Entries
        are never zero, so a node `other` lacks cannot make this clock smaller."""
        mine = self._entries
        return len(mine) >= len(other._entries) and all(
            mine.get(node, 0) >= count for node, count in other._entries.items()
        )

    def to_dict(self) -> dict[str, int]:
        """The wire form: `{nodeId: counter}`."""
        return dict(self._entries)

    @classmethod
    def __get_pydantic_core_schema__(
        cls, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        wire = core_schema.dict_schema(
            core_schema.str_schema(min_length=1, max_length=128),
            core_schema.int_schema(ge=0),
        )
        return core_schema.no_info_before_validator_function(
            _to_wire,
            core_schema.no_info_after_validator_function(VectorClock, wire),
            serialization=core_schema.plain_serializer_function_ser_schema(
                lambda clock: clock.to_dict()
            ),
        )


def _to_wire(value: object) -> object:
    return value.to_dict() if isinstance(value, VectorClock) else value
