"""The hot path's shortcuts equal the slow paths they stand in for."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter

from hub.clocks import VectorClock
from hub.clocks.vector import Ordering
from hub.codec import from_wire
from hub.crdt import MVRegister
from hub.domains import DOMAINS
from hub.entity import (
    EntityState,
    RejectedMessage,
    _conflicts,
    apply,
    iso,
    view,
    view_uncached,
)
from hub.fields import canonical, policy_table
from hub.replay import decode_state, encode_state

TODO_ID = "CHITTY-TODO-1"
NODES = ["a", "b", "c"]
clocks = st.dictionaries(st.sampled_from(NODES), st.integers(0, 4)).map(VectorClock)


def _compare(mine: VectorClock, theirs: VectorClock) -> Ordering:
    """The textbook definition."""
    nodes = set(mine) | set(theirs)
    le = all(mine.get_count(n) <= theirs.get_count(n) for n in nodes)
    ge = all(mine.get_count(n) >= theirs.get_count(n) for n in nodes)
    if le and ge:
        return Ordering.EQUAL
    if le:
        return Ordering.BEFORE
    if ge:
        return Ordering.AFTER
    return Ordering.CONCURRENT


@given(clocks, clocks)
def test_compare_is_the_textbook_order(mine: VectorClock, theirs: VectorClock) -> None:
    assert mine.compare(theirs) is _compare(mine, theirs)


@given(
    st.lists(st.tuples(st.sampled_from("xyz"), clocks), max_size=5), st.sampled_from("xyz"), clocks
)
def test_assign_equals_merge_with_the_one_write(
    entries: list[tuple[str, VectorClock]], value: str, clock: VectorClock
) -> None:
    register = MVRegister[str]()
    for old_value, old_clock in entries:
        register = register.merge(MVRegister.of(old_value, old_clock))
    assert register.assign(value, clock) == register.merge(MVRegister.of(value, clock))


@given(st.integers(0, 4_102_444_800_000))
def test_iso_is_pydantics_form(ms: int) -> None:
    moment = datetime.fromtimestamp(ms / 1000, UTC)
    assert iso(ms) == TypeAdapter(datetime).dump_python(moment, mode="json")


STATUSES = st.sampled_from(["pending", "in_progress", "blocked", "completed"])
data = st.fixed_dictionaries(
    {},
    optional={
        "status": STATUSES,
        "activeForm": st.sampled_from(["", "x", "y"]),
        "content": st.sampled_from(["one", "two"]),
        "assignees": st.lists(st.sampled_from(["CHITTY-USER-1", "CHITTY-USER-2"]), unique=True),
        "metadata": st.fixed_dictionaries({"priority": st.sampled_from(["low", "high"])}),
        "deadline": st.sampled_from([None, "2025-02-01T00:00:00Z"]),
    },
)
# (node, clock entries or None for a blind write, data, second, operation)
writes = st.tuples(
    st.sampled_from(NODES),
    st.one_of(st.none(), st.dictionaries(st.sampled_from(NODES), st.integers(1, 5))),
    data,
    st.integers(0, 59),
    st.sampled_from(["update"] * 9 + ["delete"]),
)


def _message(n: int, node: str, clock: dict[str, int] | None, body: dict[str, Any], second: int,
             operation: str = "update") -> Any:  # fmt: skip
    if clock is not None:
        clock = {**clock, node: max(clock.get(node, 0), 1)}
    return from_wire(
        {
            "id": f"m{n}",
            "type": "state_update",
            "source": {"nodeId": node, "platform": "cli", "chittyId": "CHITTY-USER-1"},
            "payload": {
                "domain": "todos",
                "operation": operation,
                "entity": {"chittyId": TODO_ID, "data": body},
            },
            "metadata": {
                "timestamp": f"2025-01-01T00:00:{second:02d}Z",
                "vectorClock": clock or {},
            },
        }
    )


def _check(previous: EntityState, state: EntityState) -> None:
    assert view(state) == view_uncached(state)
    table = policy_table(DOMAINS[state.domain].model)
    full, *_ = _conflicts(table, state.entity_id, state.fields, previous.conflicts, None)
    assert dict(full) == dict(state.conflicts)


@settings(max_examples=200)
@given(st.lists(writes, max_size=12), st.integers(0, 12))
def test_remembered_views_and_conflicts_equal_the_full_computation(
    steps: list[tuple[str, dict[str, int] | None, dict[str, Any], int, str]], snap_at: int
) -> None:
    create = _message(
        0, "a", {"a": 1}, {"content": "c", "sessionId": "CHITTY-SESSION-1"}, 0, "create"
    )
    state = apply(None, create).state
    assert state is not None
    assert view(state) == view_uncached(state)
    for n, (node, clock, body, second, operation) in enumerate(steps, 1):
        if n == snap_at:  # a state back from a snapshot remembers nothing: computed afresh
            state = decode_state(encode_state(state))
        try:
            new = apply(state, _message(n, node, clock, body, second, operation)).state
        except RejectedMessage:
            continue
        assert new is not None
        _check(state, new)
        out = view(new)
        out["assignees"].append("mutated by a caller")  # type: ignore[union-attr]
        assert view(new) == view_uncached(new)  # the remembered view is not the caller's
        state = new


@given(clocks, clocks, st.sampled_from([*NODES, "z"]))
def test_increment_and_merge_build_what_the_checked_constructor_builds(
    a: VectorClock, b: VectorClock, node: str
) -> None:
    """`increment` and `merge` skip re-checking clean entries: the result is the same clock,
    in the same node order, whether the other side is a clock or a plain mapping."""
    for got, raw in (
        (a.increment(node), {**a.to_dict(), node: a.get_count(node) + 1}),
        (a.merge(b), {n: max(a.get_count(n), b.get_count(n)) for n in {*a, *b}}),
        (a.merge(b.to_dict()), {n: max(a.get_count(n), b.get_count(n)) for n in {*a, *b}}),
    ):
        want = VectorClock(raw)
        assert got == want and list(got.items()) == list(want.items())
        assert hash(got) == hash(want)


def test_increment_past_the_counter_range_is_still_refused() -> None:
    with pytest.raises(ValueError, match="from 0 to"):
        VectorClock({"a": 2**63 - 1}).increment("a")


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)


@given(json_values)
def test_canonical_is_the_sorted_compact_json_dump(value: Any) -> None:
    """`canonical` keeps one encoder instead of building one per call: the same text."""
    assert canonical(value) == json.dumps(value, sort_keys=True, separators=(",", ":"))
