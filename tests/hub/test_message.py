"""The lean message: validated once at the edge, decoded as trusted by the host and replay."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hub.clocks.vector import VectorClock
from hub.codec import DecodeError, encode_msgpack, from_wire, to_wire
from hub.domains import SyncDomain
from hub.message import Delta, Message, decode
from hub.protocol import SyncMessage
from tests.hub.test_entity import TODO_ID


def wire(**changes: Any) -> dict[str, Any]:
    raw: dict[str, Any] = {
        "id": "m-1",
        "type": "state_update",
        "source": {"nodeId": "laptop", "platform": "cli", "chittyId": "CHITTY-USER-1"},
        "target": {"broadcast": False, "platforms": ["slack"]},
        "payload": {
            "domain": "todos",
            "operation": "update",
            "entity": {"chittyId": TODO_ID, "data": {"status": "blocked", "tags": [1, 2.5]}},
            "delta": {"add": {"assignees": ["CHITTY-USER-2"]}, "yUpdates": {}},
        },
        "metadata": {"timestamp": "2025-03-04T05:06:07.891234Z", "vectorClock": {"laptop": 3}},
    }
    raw.update(changes)
    return raw


def test_the_lean_form_holds_what_the_validated_message_says() -> None:
    validated = from_wire(wire())
    lean = decode(encode_msgpack(validated))
    assert lean == Message.of(validated)
    assert lean.body == encode_msgpack(validated)  # the canonical bytes, kept as they came
    assert (lean.id, lean.type, lean.node_id, lean.platform, lean.principal) == (
        "m-1",
        "state_update",
        "laptop",
        "cli",
        "CHITTY-USER-1",
    )
    assert (lean.domain, lean.operation, lean.entity_id) == (SyncDomain.TODOS, "update", TODO_ID)
    assert lean.data == {"status": "blocked", "tags": [1, 2.5]}
    assert lean.delta == Delta({"assignees": ["CHITTY-USER-2"]}, {}, {})
    assert lean.clock == VectorClock({"laptop": 3})
    assert lean.timestamp_ms == int(validated.metadata.timestamp.timestamp() * 1000)
    assert (lean.broadcast, lean.node_ids, lean.platforms) == (False, None, ("slack",))
    assert lean.writes


def test_a_message_without_a_payload_is_lean_too_and_writes_nothing() -> None:
    lean = Message.of(from_wire({**wire(type="heartbeat"), "payload": None}))
    assert lean.domain is None and lean.entity_id == "" and not lean.writes
    assert not Message.of(from_wire(wire(type="query"))).writes


@settings(max_examples=200, deadline=None)
@given(
    st.datetimes(
        min_value=datetime(1, 1, 2),
        max_value=datetime(9999, 12, 30),
        timezones=st.sampled_from([UTC, None]),
    )
)
def test_its_milliseconds_are_those_of_the_validated_timestamp(moment: datetime) -> None:
    validated = from_wire(wire(metadata={"timestamp": moment.isoformat(), "vectorClock": {}}))
    expected = int(validated.metadata.timestamp.timestamp() * 1000)
    assert Message.of(validated).timestamp_ms == expected


def test_text_msgpack_cannot_hold_leaves_no_body_and_is_refused_before_it_is_stored() -> None:
    payload = {**wire()["payload"], "entity": {"chittyId": TODO_ID, "data": {"content": "x\ud800"}}}
    validated: SyncMessage = from_wire(wire(payload=payload))
    assert Message.of(validated).body == b""  # (apply refuses the value: tests/hub/test_entity.py)


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (b"\xc1", "not valid msgpack"),
        (msgpack.packb([1, 2]), "not a canonical sync message"),
        (msgpack.packb({k: v for k, v in wire().items() if k != "source"}), "'source'"),
        (msgpack.packb(wire(metadata={"timestamp": "soon", "vectorClock": {}})), "soon"),
        (msgpack.packb(wire(metadata={"timestamp": 5, "vectorClock": {}})), "not a canonical"),
        (
            msgpack.packb(
                wire(metadata={"timestamp": "2025-01-01T00:00:00Z", "vectorClock": {"a": -1}})
            ),
            "vector clock",
        ),
        (msgpack.packb(wire(payload={**wire()["payload"], "domain": "nope"})), "nope"),
    ],
)
def test_bytes_that_are_no_canonical_message_are_a_decode_error(body: bytes, says: str) -> None:
    with pytest.raises(DecodeError) as caught:
        decode(body)
    assert says in str(caught.value)


values = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 5) | st.text("ab", max_size=3),
    lambda inner: st.lists(inner, max_size=2) | st.dictionaries(st.text("ab", max_size=2), inner),
    max_leaves=4,
)
parts = st.sampled_from(["id", "type", "source", "target", "payload", "metadata"])


@settings(max_examples=300, deadline=None)
@given(
    st.binary(max_size=64)
    | st.builds(lambda damage: msgpack.packb({**wire(), **damage}), st.dictionaries(parts, values))
)
def test_no_bytes_make_decode_fail_otherwise(body: bytes) -> None:
    try:
        decoded = decode(body)
    except DecodeError as error:
        assert error.reason  # says what is wrong
    else:
        assert decoded.body is body


def test_an_old_timestamp_and_a_blind_write_decode_as_validated() -> None:
    old = datetime(999, 1, 1, tzinfo=UTC) + timedelta(microseconds=1500)
    validated = from_wire(wire(metadata={"timestamp": old, "vectorClock": {}}))
    lean = decode(msgpack.packb(to_wire(validated)))
    assert lean.timestamp_ms == int(validated.metadata.timestamp.timestamp() * 1000)
    assert lean.clock == VectorClock()
