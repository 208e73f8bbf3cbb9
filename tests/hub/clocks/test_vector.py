"""Vector clocks: comparison and the lattice laws of merge."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError

from hub.clocks import Ordering, VectorClock

NODES = st.sampled_from(["a", "b", "c", "d"])
clocks = st.dictionaries(NODES, st.integers(0, 5)).map(VectorClock)


def test_compare_covers_all_four_orderings() -> None:
    a = VectorClock({"a": 1})
    assert a.compare(a.increment("b")) is Ordering.BEFORE
    assert a.increment("b").compare(a) is Ordering.AFTER
    assert a.compare(VectorClock({"a": 1, "b": 0})) is Ordering.EQUAL
    assert a.compare(VectorClock({"b": 1})) is Ordering.CONCURRENT


def test_increment_and_merge_leave_the_original_unchanged() -> None:
    a = VectorClock({"a": 1})
    a.increment("a")
    a.merge({"b": 3})
    assert a.to_dict() == {"a": 1}


def test_bad_entries_are_refused() -> None:
    with pytest.raises(ValueError, match="from 0 to"):
        VectorClock({"a": -1})
    with pytest.raises(ValueError, match="from 0 to"):  # past what int64 wire forms hold
        VectorClock({"a": 2**63})
    assert VectorClock({"a": 2**63 - 1})["a"] == 2**63 - 1
    with pytest.raises(ValueError, match="non-empty"):
        VectorClock({"": 1})


def test_pydantic_reads_the_wire_form_and_writes_it_back() -> None:
    adapter = TypeAdapter(VectorClock)
    clock = adapter.validate_python({"n1": 2, "n2": 0})
    assert clock == VectorClock({"n1": 2})
    assert adapter.dump_python(clock, mode="json") == {"n1": 2}
    with pytest.raises(ValidationError):
        adapter.validate_python({"n1": "x"})


@given(clocks, clocks)
def test_merge_is_commutative(a: VectorClock, b: VectorClock) -> None:
    assert a.merge(b) == b.merge(a)


@given(clocks, clocks, clocks)
def test_merge_is_associative(a: VectorClock, b: VectorClock, c: VectorClock) -> None:
    assert a.merge(b).merge(c) == a.merge(b.merge(c))


@given(clocks)
def test_merge_is_idempotent(a: VectorClock) -> None:
    assert a.merge(a) == a


@given(clocks, clocks)
def test_merge_is_an_upper_bound_and_compare_is_antisymmetric(
    a: VectorClock, b: VectorClock
) -> None:
    joined = a.merge(b)
    assert joined.covers(a) and joined.covers(b)
    flipped = {
        Ordering.BEFORE: Ordering.AFTER,
        Ordering.AFTER: Ordering.BEFORE,
        Ordering.EQUAL: Ordering.EQUAL,
        Ordering.CONCURRENT: Ordering.CONCURRENT,
    }
    assert b.compare(a) is flipped[a.compare(b)]


@given(clocks, NODES)
def test_increment_happens_after(a: VectorClock, node: str) -> None:
    assert a.increment(node).dominates(a)
