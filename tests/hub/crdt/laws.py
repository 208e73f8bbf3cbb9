"""The laws every state-based CRDT must satisfy, shared by the CRDT tests."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import reduce
from typing import TypeVar

from hypothesis import strategies as st

S = TypeVar("S")


def assert_semilattice(merge: Callable[[S, S], S], a: S, b: S, c: S) -> None:
    """Commutative, associative, idempotent."""
    assert merge(a, b) == merge(b, a)
    assert merge(merge(a, b), c) == merge(a, merge(b, c))
    assert merge(a, a) == a


def assert_converges(
    data: st.DataObject,
    merge: Callable[[S, S], S],
    empty: S,
    states: Sequence[S],
    replicas: int = 3,
) -> S:
    """Replicas that receive the same states in any order, with duplicates, end up equal."""
    results = []
    for _ in range(replicas):
        duplicates = data.draw(st.lists(st.sampled_from(states), max_size=3)) if states else []
        order = data.draw(st.permutations([*states, *duplicates]))
        results.append(reduce(merge, order, empty))
    assert all(result == results[0] for result in results)
    return results[0]
