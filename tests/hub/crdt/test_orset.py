"""Add-wins observed-remove set: laws, add wins over a concurrent remove."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from hub.clocks import VectorClock
from hub.crdt import ORSet, Tag
from tests.hub.crdt.laws import assert_converges, assert_semilattice

ELEMS = st.sampled_from(["t1", "t2", "t3"])


@st.composite
def replica_histories(draw: st.DrawFn) -> list[ORSet[str]]:
    """States of three replicas after random local adds, removes and gossip."""
    nodes = ["a", "b", "c"]
    states: list[ORSet[str]] = [ORSet(), ORSet(), ORSet()]
    clocks = [VectorClock(), VectorClock(), VectorClock()]
    for _ in range(draw(st.integers(0, 12))):
        i = draw(st.integers(0, 2))
        action = draw(st.sampled_from(["add", "remove", "gossip"]))
        if action == "add":
            clocks[i] = clocks[i].increment(nodes[i])
            tag = Tag(draw(st.integers(0, 9)), nodes[i], clocks[i].get_count(nodes[i]))
            states[i] = states[i].add(draw(ELEMS), tag)
        elif action == "remove":
            clocks[i] = clocks[i].increment(nodes[i])
            by = Tag(draw(st.integers(0, 9)), nodes[i], clocks[i].get_count(nodes[i]))
            states[i] = states[i].remove(draw(ELEMS), by, clocks[i])
        else:
            j = draw(st.integers(0, 2))
            states[i] = states[i].merge(states[j])
            clocks[i] = clocks[i].merge(clocks[j])
    return states


def merge(a: ORSet[str], b: ORSet[str]) -> ORSet[str]:
    return a.merge(b)


@given(replica_histories())
def test_merge_is_a_semilattice(states: list[ORSet[str]]) -> None:
    assert_semilattice(merge, *states)


@given(replica_histories(), st.data())
def test_replicas_converge(states: list[ORSet[str]], data: st.DataObject) -> None:
    result = assert_converges(data, merge, ORSet(), states)
    assert result.elements() == assert_converges(data, merge, ORSet(), states).elements()


def test_add_wins_over_a_concurrent_remove() -> None:
    seen_by_remover = VectorClock({"a": 1})
    base = ORSet[str]().add("x", Tag(1, "a", 1))
    removed = base.remove("x", Tag(2, "a", 2), seen_by_remover)
    re_added = base.add("x", Tag(2, "b", 1))  # concurrent with the remove
    assert "x" not in removed
    assert "x" in removed.merge(re_added)
    assert "x" in re_added.merge(removed)


def test_remove_only_cancels_observed_adds() -> None:
    s: ORSet[str] = ORSet()
    s = s.add("x", Tag(1, "a", 1)).add("x", Tag(2, "b", 1))
    s = s.remove("x", Tag(3, "a", 2), VectorClock({"a": 1}))  # never saw b's add
    assert s.elements() == ("x",)
    assert s.remove("x", Tag(4, "a", 3)).elements() == ()


def test_replace_keeps_unseen_adds_and_orders_by_first_add() -> None:
    s: ORSet[str] = ORSet()
    s = s.add("late", Tag(5, "a", 2)).add("early", Tag(1, "a", 1)).add("other", Tag(3, "b", 1))
    # A writer who saw only a's adds sets the set to ["early"]: b's concurrent add survives.
    s = s.replace(["early", "new"], Tag(9, "c", 1), VectorClock({"a": 2, "c": 1}))
    assert s.elements() == ("early", "other", "new")


def test_removing_one_of_several_elements_added_together_keeps_the_others() -> None:
    together = Tag(1, "a", 1)
    s = ORSet[str]().add("x", together).add("y", together)
    s = s.remove("x", Tag(2, "a", 2), VectorClock({"a": 1}))
    assert s.elements() == ("y",)
    assert s.replace(["y", "z"], Tag(3, "b", 1), VectorClock({"a": 2, "b": 1})).elements() == (
        "y",
        "z",
    )
