"""Add-wins observed-remove set: a remove only cancels the adds it has observed."""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from typing import Generic, TypeVar

from hub.clocks.vector import VectorClock
from hub.record import record

T = TypeVar("T", bound=Hashable)


@record(order=True)
class Tag:
    """The unique identity of one write: the writing node's counter, plus when (for ordering)."""

    wall_ms: int
    node: str
    counter: int

    def seen_by(self, clock: VectorClock) -> bool:
        """Whether a writer with causal knowledge `clock` had observed this write."""
        return clock.get_count(self.node) >= self.counter


@record(slots=False)  # no slots: they break `ORSet[T]()` on Python 3.11
class ORSet(Generic[T]):
    """Tagged adds, and the removes that cancelled them; present while one add is live."""

    adds: frozenset[tuple[T, Tag]] = frozenset()
    # (element, tag of the cancelled add, tag of the remove): one write may add many elements
    # under one tag, so a cancellation names the element too.
    removed: frozenset[tuple[T, Tag, Tag]] = frozenset()

    def add(self, element: T, tag: Tag) -> ORSet[T]:
        return ORSet(self.adds | {(element, tag)}, self.removed)

    def remove(self, element: T, by: Tag, seen: VectorClock | None = None) -> ORSet[T]:
        """Cancel the adds of `element` the remover saw (all of them when `seen` is None)."""
        return ORSet(
            self.adds,
            self.removed
            | {
                (value, tag, by)
                for value, tag in self.adds
                if value == element and (seen is None or tag.seen_by(seen))
            },
        )

    def visible_to(self, element: T, seen: VectorClock) -> bool:
        """Whether a writer who had observed `seen` saw `element` in the set."""
        cancelled = {(value, tag) for value, tag, by in self.removed if by.seen_by(seen)}
        return any(
            value == element and tag.seen_by(seen) and (value, tag) not in cancelled
            for value, tag in self.adds
        )

    def replace(self, elements: Iterable[T], tag: Tag, seen: VectorClock) -> ORSet[T]:
        """Make the set `elements` as a writer who had observed `seen` sees it.

        What the writer drops is removed where the writer saw it added; what the writer lists but
        did not see is added. Both decisions depend on `seen` alone, never on what arrived
        first, so concurrent writers commute, and a concurrent add survives (add wins).
        """
        wanted = set(elements)
        result = self
        for element in {value for value, _ in self.adds} - wanted:
            result = result.remove(element, tag, seen)
        for element in wanted:
            if not self.visible_to(element, seen):
                result = result.add(element, tag)
        return result

    def merge(self, other: ORSet[T]) -> ORSet[T]:
        return ORSet(self.adds | other.adds, self.removed | other.removed)

    def elements(self) -> tuple[T, ...]:
        """Present elements, ordered by their earliest live add."""
        cancelled = {(value, tag) for value, tag, _ in self.removed}
        first: dict[T, Tag] = {}
        for value, tag in self.adds:
            if (value, tag) not in cancelled and (value not in first or tag < first[value]):
                first[value] = tag
        return tuple(sorted(first, key=lambda value: (first[value], repr(value))))

    def __contains__(self, element: object) -> bool:
        return element in self.elements()
