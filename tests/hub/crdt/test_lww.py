"""Last-writer-wins register laws."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from hub.clocks import HybridTimestamp, VectorClock
from hub.crdt import CausalLWW, LWWRegister
from tests.hub.crdt.laws import assert_converges, assert_semilattice

stamps = st.builds(
    HybridTimestamp, st.integers(0, 20), st.integers(0, 3), st.sampled_from(["a", "b", "c"])
)
registers = st.builds(LWWRegister, st.integers(0, 5) | st.text(max_size=3), stamps)


def merge(a: LWWRegister[object], b: LWWRegister[object]) -> LWWRegister[object]:
    return a.merge(b)


@given(registers, registers, registers)
def test_merge_is_a_semilattice(
    a: LWWRegister[object], b: LWWRegister[object], c: LWWRegister[object]
) -> None:
    assert_semilattice(merge, a, b, c)


@given(st.lists(registers, min_size=1, max_size=8), st.data())
def test_replicas_converge_to_the_latest_write(
    writes: list[LWWRegister[object]], data: st.DataObject
) -> None:
    result = assert_converges(data, merge, writes[0], writes)
    assert result.stamp == max(write.stamp for write in writes)


def test_later_stamp_wins_and_node_breaks_ties() -> None:
    first = LWWRegister("old", HybridTimestamp(1, 0, "a"))
    assert first.assign("new", HybridTimestamp(2, 0, "a")).value == "new"
    assert first.assign("stale", HybridTimestamp(0, 9, "z")).value == "old"
    assert first.assign("b wins", HybridTimestamp(1, 0, "b")).value == "b wins"


clocks = st.dictionaries(st.sampled_from(["a", "b", "c"]), st.integers(0, 3)).map(VectorClock)
causal_writes = st.builds(
    lambda value, stamp, clock: CausalLWW[str]().assign(value, stamp, clock),
    st.sampled_from(["x", "y", "z"]),
    stamps,
    clocks,
)


def merge_causal(a: CausalLWW[str], b: CausalLWW[str]) -> CausalLWW[str]:
    return a.merge(b)


@given(causal_writes, causal_writes, causal_writes)
def test_causal_lww_merge_is_a_semilattice(
    a: CausalLWW[str], b: CausalLWW[str], c: CausalLWW[str]
) -> None:
    assert_semilattice(merge_causal, a, b, c)


@given(st.lists(causal_writes, max_size=8), st.data())
def test_causal_lww_replicas_converge(writes: list[CausalLWW[str]], data: st.DataObject) -> None:
    result = assert_converges(data, merge_causal, CausalLWW(), writes)
    assert (result.winner is None) == (not writes)


def test_causal_lww_lets_a_later_write_win_over_a_skewed_wall_clock() -> None:
    first = CausalLWW[str]().assign("first", HybridTimestamp(9_000, 0, "a"), VectorClock({"a": 1}))
    second = first.assign("second", HybridTimestamp(1_000, 0, "b"), VectorClock({"a": 1, "b": 1}))
    assert second.winner is not None and second.winner.value == "second"
    concurrent = first.merge(
        CausalLWW[str]().assign("other", HybridTimestamp(1_000, 0, "c"), VectorClock({"c": 1}))
    )
    assert concurrent.winner is not None and concurrent.winner.value == "first"
