"""Multi-value register: laws, concurrent values kept, resolution."""

from __future__ import annotations

from functools import reduce

from hypothesis import given
from hypothesis import strategies as st

from hub.clocks import VectorClock
from hub.crdt import MVRegister
from tests.hub.crdt.laws import assert_converges, assert_semilattice

clocks = st.dictionaries(st.sampled_from(["a", "b", "c"]), st.integers(0, 3)).map(VectorClock)
writes = st.builds(MVRegister.of, st.sampled_from(["x", "y", "z"]), clocks)
registers = st.lists(writes, max_size=4).map(
    lambda ws: reduce(MVRegister.merge, ws, MVRegister[str]())
)


def merge(a: MVRegister[str], b: MVRegister[str]) -> MVRegister[str]:
    return a.merge(b)


@given(registers, registers, registers)
def test_merge_is_a_semilattice(a: MVRegister[str], b: MVRegister[str], c: MVRegister[str]) -> None:
    assert_semilattice(merge, a, b, c)


@given(st.lists(writes, max_size=8), st.data())
def test_replicas_converge_and_keep_exactly_the_undominated_writes(
    ws: list[MVRegister[str]], data: st.DataObject
) -> None:
    result = assert_converges(data, merge, MVRegister(), ws)
    entries = {entry for w in ws for entry in w.entries}
    assert result.entries == {
        (v, c) for v, c in entries if not any(other.dominates(c) for _, other in entries)
    }


def test_concurrent_writes_are_all_kept_until_resolved() -> None:
    base = MVRegister.of("pending", VectorClock({"a": 1}))
    left = base.assign("in_progress", VectorClock({"a": 1, "b": 1}))
    right = base.assign("completed", VectorClock({"a": 1, "c": 1}))
    merged = left.merge(right)
    assert merged.conflicted
    assert merged.values == ("completed", "in_progress")
    resolved = merged.resolve("completed", "r")
    assert resolved.values == ("completed",)
    assert not resolved.conflicted
    assert resolved.clock.dominates(merged.clock)
    # The resolution supersedes both sides wherever it is merged.
    assert resolved.merge(left).values == ("completed",)
    assert right.merge(resolved).values == ("completed",)


def test_a_causally_later_write_replaces_the_earlier_one() -> None:
    reg = MVRegister.of("a", VectorClock({"n": 1}))
    assert reg.assign("b", VectorClock({"n": 2})).values == ("b",)
