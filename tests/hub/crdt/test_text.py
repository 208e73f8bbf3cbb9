"""Collaborative text: concurrent edits from several nodes merge and converge."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from hub.crdt import TextField
from tests.hub.crdt.laws import assert_converges, assert_semilattice


def test_concurrent_edits_at_different_places_are_both_kept() -> None:
    base = TextField.of("the quick fox", "origin")
    left = base.edit("the quick brown fox", "alice")
    right = base.edit("THE quick fox jumps", "bob")
    assert left.merge(right).text == "THE quick brown fox jumps"
    assert right.merge(left) == left.merge(right)


def test_apply_folds_in_an_external_update() -> None:
    base = TextField.of("hello", "a")
    edited = base.edit("hello world", "b")
    assert base.apply(edited.update).text == "hello world"


def test_editing_to_the_same_text_changes_nothing() -> None:
    base = TextField.of("same", "a")
    assert base.edit("same", "b") is base


@st.composite
def histories(draw: st.DrawFn) -> list[TextField]:
    """Three replicas editing a shared text and gossiping in random order."""
    nodes = ["alice", "bob", "carol"]
    start = TextField.of(draw(st.text("abc ", max_size=6)), "origin")
    states = [start, start, start]
    for _ in range(draw(st.integers(0, 8))):
        i = draw(st.integers(0, 2))
        if draw(st.booleans()):
            states[i] = states[i].edit(draw(st.text("abcxyz ", max_size=10)), nodes[i])
        else:
            states[i] = states[i].merge(states[draw(st.integers(0, 2))])
    return states


@settings(max_examples=60)
@given(histories())
def test_merge_is_a_semilattice(states: list[TextField]) -> None:
    assert_semilattice(lambda a, b: a.merge(b), *states)


@settings(max_examples=60)
@given(histories(), st.data())
def test_replicas_converge(states: list[TextField], data: st.DataObject) -> None:
    assert_converges(data, lambda a, b: a.merge(b), TextField(), states)
