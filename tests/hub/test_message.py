"""The lean message: validated once at the edge, decoded as trusted by the host and replay."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hub.clocks.vector import VectorClock
from hub.codec import DecodeError, encode_msgpack, from_wire, to_wire, write_message
from hub.domains import SyncDomain
from hub.envelope import Envelope
from hub.message import Delta, Message, canonical_write, decode, model_of
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


# -- canonical_write: a short write built without pydantic ---------------------------------------

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats()
    | st.text(st.characters(codec=None), max_size=5),  # lone surrogates too
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3)
    ),
    max_leaves=8,
)
ENTITY_OF = {
    SyncDomain.TODOS: TODO_ID,
    SyncDomain.PROJECTS: "CHITTY-PROJ-1",
    SyncDomain.SESSIONS: "CHITTY-SESSION-1",
}


@st.composite
def parts(draw: st.DrawFn, plain: bool = False) -> dict[str, Any]:
    """The parts of a short write; `plain`: every part valid (the fast path's every day)."""
    domain = draw(st.sampled_from(list(ENTITY_OF)))
    good = {
        "message_id": st.sampled_from(["m-1", "x" * 128, "idem:abc", "!~"]),
        "node_id": st.just("hub:ws"),
        "platform": st.just("ws"),
        "chitty_id": st.just("CHITTY-USER-1"),
        "operation": st.sampled_from(["create", "update", "delete"]),
        "entity_id": st.just(ENTITY_OF[domain]),
        "data": st.dictionaries(
            st.text(max_size=4),
            st.recursive(
                st.none() | st.booleans() | st.integers(-(2**63), 2**63) | st.text(max_size=4),
                lambda inner: (
                    st.lists(inner, max_size=3)
                    | st.dictionaries(st.text(max_size=3), inner, max_size=3)
                ),
                max_leaves=6,
            ),
            max_size=3,
        ),
        "timestamp": st.one_of(
            st.datetimes(min_value=datetime(1000, 1, 1), timezones=st.just(UTC)),
            st.datetimes(min_value=datetime(1000, 1, 1), timezones=st.just(UTC)).map(
                lambda d: d.replace(microsecond=0)
            ),
        ),
        "clock": st.one_of(
            st.none(),
            st.just({}),
            st.dictionaries(st.sampled_from(["a", "b", "hub:ws"]), st.integers(0, 9), max_size=3),
        ),
    }
    bad = {
        "message_id": st.one_of(st.sampled_from(["x" * 129, "", "has space", "é"]), st.text()),
        "node_id": st.sampled_from(["", "n" * 129]),
        "platform": st.sampled_from(["", "p" * 65]),
        "chitty_id": st.just("not-an-id"),
        "operation": st.sampled_from(["query", "other"]),
        "entity_id": st.sampled_from([*ENTITY_OF.values(), "bad", "CHITTY-TODO-"]),
        "data": st.dictionaries(st.text(max_size=3), json_values, max_size=3),
        "timestamp": st.datetimes(),  # naive, and years before 1000
        "clock": st.dictionaries(st.text(max_size=3), json_values, max_size=2),
    }
    part: dict[str, Any] = {"domain": domain}
    for name, valid in good.items():
        odd = not plain and draw(st.integers(0, 5)) == 0  # one part in six, of each, is odd
        part[name] = draw(bad[name] if odd else valid)
    return part


@settings(max_examples=400)
@given(st.one_of(parts(), parts(plain=True)))
def test_a_canonical_write_is_the_message_the_validated_path_makes(part: dict[str, Any]) -> None:
    """Whenever `canonical_write` builds a message, the model path accepts the same parts and
    makes the same lean message, body byte for byte; where it declines, it builds nothing."""
    fast = canonical_write(**part)
    if fast is None:
        return
    slow = write_message(**{**part, "domain": part["domain"].value})
    assert fast == Message.of(slow)
    assert fast.body == encode_msgpack(slow)
    assert Envelope.of(fast) == Envelope.of(slow)
    assert model_of(fast) == slow


@given(parts(plain=True))
def test_every_plainly_valid_short_write_is_built_canonically(part: dict[str, Any]) -> None:
    assert canonical_write(**part) is not None


# The parts of a plain short write of a todo (each test changes what it is about).
PLAIN: dict[str, Any] = {
    "message_id": "m-1",
    "node_id": "hub:ws",
    "platform": "ws",
    "chitty_id": "CHITTY-USER-1",
    "domain": SyncDomain.TODOS,
    "operation": "update",
    "entity_id": TODO_ID,
    "data": {"activeForm": "doing"},
    "timestamp": datetime(2025, 3, 4, tzinfo=UTC),
}


def test_a_plain_short_write_is_built_canonically() -> None:
    part = {
        **PLAIN,
        "data": {"activeForm": "doing", "tags": [1, {"b": None, "a": 2.5}]},
        "timestamp": datetime(2025, 3, 4, 5, 6, 7, 891234, tzinfo=UTC),
    }
    for clock in (None, {}, {"b": 2, "a": 1, "c": 0}):
        fast = canonical_write(**part, clock=clock)
        assert fast is not None
        slow = write_message(**{**part, "domain": "todos"}, clock=clock)
        assert fast == Message.of(slow) and fast.body == encode_msgpack(slow)
        assert decode(fast.body) == fast  # what the host reads back


@pytest.mark.parametrize(
    "change",
    [
        {"message_id": "has space"},
        {"message_id": "x" * 129},
        {"entity_id": "CHITTY-PROJ-1"},  # not a todo's id
        {"operation": "query"},
        {"chitty_id": "not-an-id"},
        {"clock": {"a": -1}},
        {"clock": {"a": True}},
        {"data": {"when": datetime(2025, 1, 1, tzinfo=UTC)}},  # not a JSON value
        {"data": {"text": "\ud800"}},  # msgpack cannot hold a lone surrogate
        {"timestamp": datetime(2025, 1, 1)},  # naive: the model's own rule applies
    ],
)
def test_a_part_that_is_not_plainly_valid_leaves_the_write_to_the_model(
    change: dict[str, Any],
) -> None:
    assert canonical_write(**{**PLAIN, **change}) is None
