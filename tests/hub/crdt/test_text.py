"""Collaborative text: concurrent edits from several nodes merge and converge."""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from hub.clocks import VectorClock
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


def test_concurrent_full_values_are_diffed_against_what_their_writers_saw() -> None:
    base = TextField.of("the quick fox", "origin")
    left = ("the quick brown fox", "alice", VectorClock({"alice": 1}))
    right = ("the quick fox jumps", "bob", VectorClock({"bob": 1}))
    one = base.edit(*left).edit(*right)
    two = base.edit(*right).edit(*left)
    assert one.text == two.text == "the quick brown fox jumps"
    assert one == two and one.edits == two.edits  # the same edits, byte for byte
    # A writer that had seen both edits it on top of both.
    after = one.edit(
        "the brown fox jumps", "carol", VectorClock({"alice": 1, "bob": 1, "carol": 1})
    )
    assert after.text == "the brown fox jumps"


def test_the_same_edit_made_concurrently_by_two_writers_is_kept_once() -> None:
    # An echo: two writers set the same new value on the same text.
    base = TextField.of("the quick fox", "origin")
    one = base.edit("the quick brown fox", "alice", VectorClock({"alice": 1}))
    both = one.edit("the quick brown fox", "bob", VectorClock({"bob": 1}))
    assert both.text == "the quick brown fox"
    alice, bob = (next(e for e in both.edits if e.node == node) for node in ("alice", "bob"))
    assert alice.key == bob.key  # named alike: made of the same Y items


def test_concurrent_writes_that_share_a_dot_do_not_clash_in_the_document() -> None:
    # Two writers behind one node id ("api") both send {"api": 2} on the same text: their Y items
    # must not get the same ids, or the document would silently lose one (or break).
    base = TextField.of("the quick fox", "origin")
    clock = VectorClock({"api": 2})
    left = base.edit("the quick red fox", "api", clock)
    right = base.edit("the lazy quick fox", "api", clock)
    one, two = (
        left.edit("the lazy quick fox", "api", clock),
        right.edit("the quick red fox", "api", clock),
    )
    assert one.text == two.text == "the lazy quick red fox"
    assert one == two == left.merge(right)


def test_a_field_without_recorded_edits_counts_its_text_as_seen_by_every_writer() -> None:
    # What an old snapshot decodes to: a document and no edits.
    old = TextField(TextField.of("the quick fox", "origin").update)
    assert old.edits == () and old.text == "the quick fox"
    one = old.edit("the quick brown fox", "alice", VectorClock({"alice": 1}))
    both = one.edit("the quick fox jumps", "bob", VectorClock({"bob": 1}))
    assert both.text == "the quick brown fox jumps"
    assert both == old.edit("the quick fox jumps", "bob", VectorClock({"bob": 1})).edit(
        "the quick brown fox", "alice", VectorClock({"alice": 1})
    )


def test_raw_y_updates_are_recorded_under_their_writers_dot() -> None:
    base = TextField.of("hello", "a")
    external = base.edit("hello world", "editor").update
    applied = base.apply(external, "e", VectorClock({"e": 3}))
    assert applied.text == "hello world"
    assert [(e.node, e.count) for e in applied.edits if e.node == "e"] == [("e", 3)]
    # A writer that had not seen it diffs against the text before it: both changes stay.
    later = applied.edit("oh hello", "f", VectorClock({"f": 1}))
    assert later.text == "oh hello world"


@st.composite
def concurrent_edits(draw: st.DrawFn) -> tuple[str, list[tuple[str, str, VectorClock]]]:
    """2-4 writers, each editing the text of the writes before it it had seen (a causal prefix)
    by deleting a slice and inserting its own marker letter."""
    start = draw(st.text("abc ", max_size=8))
    writes: list[tuple[str, str, VectorClock]] = []
    for i in range(draw(st.integers(2, 4))):
        seen = draw(st.integers(0, i))  # it saw the writes before `seen`
        text = start_field(start, writes[:seen]).text
        cut = sorted(draw(st.lists(st.integers(0, len(text)), min_size=2, max_size=2)))
        text = text[: cut[0]] + text[cut[1] :]
        at = draw(st.integers(0, len(text)))
        new = text[:at] + "WXYZ"[i] + text[at:]
        clock = VectorClock({f"n{j}": 1 for j in range(seen)} | {f"n{i}": 1})
        writes.append((new, f"n{i}", clock))
    return start, writes


def start_field(start: str, writes: list[tuple[str, str, VectorClock]]) -> TextField:
    field = TextField.of(start, "origin")
    for write in writes:
        field = field.edit(*write)
    return field


def causal(order: tuple[tuple[str, str, VectorClock], ...]) -> bool:
    """Whether every write arrives after the writes it had seen (an entity drops a write its
    clock already covers, so no other order reaches a text field)."""
    arrived: set[str] = set()
    for _, node, clock in order:
        if not set(clock) - {node} <= arrived:
            return False
        arrived.add(node)
    return True


@settings(max_examples=80, deadline=None)
@given(concurrent_edits())
def test_concurrent_full_values_converge_in_every_causal_order_and_keep_every_insert(
    case: tuple[str, list[tuple[str, str, VectorClock]]],
) -> None:
    start, writes = case
    results = []
    for order in itertools.permutations(writes):
        if causal(order):
            results.append(start_field(start, list(order)))
    assert all(result == results[0] for result in results)
    text = results[0].text
    for i, (_, node, _) in enumerate(writes):
        marker = "WXYZ"[i]
        # Kept unless a writer that had seen it wrote a text without it.
        if not any(w[2].get_count(node) and marker not in w[0] for w in writes):
            assert marker in text


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
