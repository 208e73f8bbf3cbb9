"""Entities in the checkpoint store: snapshots round-trip; replay and `state_at` match apply."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgpack
from hypothesis import given, settings
from hypothesis import strategies as st

from hub.codec import from_wire, to_wire
from hub.crdt import TextField
from hub.entity import EntityState, RejectedMessage, apply, view
from hub.replay import (
    EntityReplayer,
    decode_event,
    decode_event_message,
    decode_state,
    encode_event,
    encode_state,
)
from hub.store import LmdbStore, MemoryStore, NewEvent, load, state_at, take_snapshot
from tests.hub.test_entity import TODO_ID, created, message, on_project, project, step

NODES = ["a", "b", "c"]
updates = st.lists(
    st.tuples(
        st.sampled_from(NODES),
        st.fixed_dictionaries(
            {},
            optional={
                "status": st.sampled_from(["pending", "in_progress", "blocked", "completed"]),
                "content": st.sampled_from(["one", "two", "three"]),
                "assignees": st.lists(st.sampled_from(["CHITTY-USER-1", "CHITTY-USER-2"])),
                "activeForm": st.text(max_size=5),
            },
        ),
        st.booleans(),  # concurrent with the previous write, or after everything
    ),
    max_size=12,
)


def run(writes: list[tuple[str, dict[str, Any], bool]]) -> list[tuple[EntityState, Any]]:
    """Apply a random history; return (state after, event) for each accepted write."""
    state = created()
    history = []
    counters = {"a": 1, "b": 0, "c": 0}
    bases = [dict(counters)]  # what was seen before each accepted write
    for second, (node, data, concurrent) in enumerate(writes, start=1):
        # Concurrent: based on what was seen before the previous write, so it missed that one.
        base = bases[-2] if concurrent and len(bases) > 1 else bases[-1]
        clock = {**base, node: max(base.get(node, 0), counters[node]) + 1}
        try:
            result = apply(state, message(node, clock, data=data, second=second))
        except RejectedMessage:
            continue
        if result.state is None or not result.events:
            continue
        counters[node] = clock[node]
        state = result.state
        history.append((state, result.events[0]))
        bases.append(state.clock.to_dict())
    return history


def test_snapshot_round_trip_keeps_every_crdt() -> None:
    history = run(
        [
            ("b", {"status": "in_progress", "assignees": ["CHITTY-USER-1"]}, False),
            ("c", {"status": "blocked", "assignees": []}, True),
        ]
    )
    state = history[-1][0]
    assert state.conflicts  # a conflict is part of what must survive
    assert decode_state(encode_state(state)) == state


def text_state() -> EntityState:
    state = project()
    for msg in [
        on_project("b", {"a": 1, "b": 1}, {"description": "the quick brown fox"}),
        on_project("c", {"a": 1, "c": 1}, {"description": "the quick fox jumps"}),
    ]:
        state = step(state, msg)
    return state


def test_a_snapshot_keeps_a_text_fields_edits() -> None:
    state = text_state()
    restored = decode_state(encode_state(state))
    assert restored == state
    field, again = state.fields["description"], restored.fields["description"]
    assert isinstance(field, TextField) and isinstance(again, TextField)
    assert again.edits == field.edits and len(field.edits) == 3
    # Restored, it merges a concurrent write as the live state does.
    late = on_project("d", {"a": 1, "b": 1, "d": 1}, {"description": "The quick brown fox"})
    assert step(restored, late) == step(state, late)
    assert view(step(state, late))["description"] == "The quick brown fox jumps"


def test_a_text_field_from_an_old_snapshot_still_decodes_and_merges() -> None:
    state = text_state()
    raw = msgpack.unpackb(encode_state(state), raw=False, strict_map_key=False)
    field = state.fields["description"]
    assert isinstance(field, TextField)
    raw["fields"]["description"] = ["t", field.update]  # the format before edits were recorded
    old = decode_state(msgpack.packb(raw, use_bin_type=True))
    decoded = old.fields["description"]
    assert isinstance(decoded, TextField) and decoded.edits == ()
    assert view(old) == view(state)
    # Its text counts as seen by every later writer: concurrent writes still keep both edits.
    one = on_project(
        "d", {"a": 1, "b": 1, "c": 1, "d": 1}, {"description": "a quick brown fox jumps"}
    )
    two = on_project(
        "e", {"a": 1, "b": 1, "c": 1, "e": 1}, {"description": "the quick brown fox jumps!"}
    )
    ab, ba = step(step(old, one), two), step(step(old, two), one)
    assert view(ab)["description"] == "a quick brown fox jumps!"
    assert ab == ba


@settings(max_examples=40)
@given(updates, st.integers(1, 4))
def test_load_and_state_at_equal_the_live_states(
    writes: list[tuple[str, dict[str, Any], bool]], snapshot_every: int
) -> None:
    created_state = created()
    history = [
        (
            created_state,
            apply(
                None,
                message(
                    "a",
                    {"a": 1},
                    "create",
                    {"content": "Write tests", "sessionId": "CHITTY-SESSION-1"},
                ),
            ).events[0],
        )
    ]
    history += run(writes)
    store = MemoryStore()
    replayer = EntityReplayer()
    for seq, (state, event) in enumerate(history, start=1):
        store.append_batch([NewEvent(TODO_ID, seq * 1000, encode_event(event))])
        if seq % snapshot_every == 0:
            take_snapshot(store, TODO_ID, state, seq, replayer)
    recovered = load(store, TODO_ID, replayer)
    assert recovered.seq == len(history)
    assert recovered.state == history[-1][0]
    for seq, (state, _) in enumerate(history, start=1):
        assert state_at(store, TODO_ID, replayer, seq=seq).state == state
        at_time = state_at(store, TODO_ID, replayer, timestamp_ms=seq * 1000 + 500).state
        assert at_time is not None and view(at_time) == view(state)


def test_an_lmdb_store_recovers_an_entity_after_reopening(tmp_path: Path) -> None:
    history = run([("b", {"content": "persisted"}, False), ("c", {"status": "completed"}, False)])
    first = apply(
        None,
        message(
            "a", {"a": 1}, "create", {"content": "Write tests", "sessionId": "CHITTY-SESSION-1"}
        ),
    ).events[0]
    with LmdbStore(str(tmp_path / "db")) as store:
        store.append_batch(
            [
                NewEvent(TODO_ID, i, encode_event(e))
                for i, e in enumerate([first] + [e for _, e in history], 1)
            ]
        )
    with LmdbStore(str(tmp_path / "db")) as store:
        state = load(store, TODO_ID, EntityReplayer()).state
    assert state is not None and view(state)["content"] == "persisted"
    assert state == history[-1][0]


@settings(max_examples=60, deadline=None)
@given(updates)
def test_an_event_stores_its_message_as_the_canonical_encoding_it_arrived_in(
    writes: list[tuple[str, dict[str, Any], bool]],
) -> None:
    # The host stores the envelope's msgpack as it arrived instead of dumping the message again;
    # an event body written by the hub before (the message dumped into the dict) reads the same.
    for _, event in run(writes):
        stored = encode_event(event)
        message = from_wire(msgpack.unpackb(event.message.body))
        dumped = msgpack.packb({**decode_event(stored), "message": to_wire(message)})
        assert decode_event(stored) == decode_event(dumped)
        assert decode_event_message(stored) == decode_event_message(dumped) == event.message
