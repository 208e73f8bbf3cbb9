"""Sync messages: every variant round-trips through msgpack and JSON; bad input names the field."""

from __future__ import annotations

import json
from typing import Any, get_args

import msgpack
import pytest

from hub.codec import (
    DecodeError,
    decode_json,
    decode_msgpack,
    encode_json,
    encode_msgpack,
    from_wire,
    to_wire,
)
from hub.protocol import StateUpdate, SyncMessageType


def wire(kind: str = "state_update", **overrides: Any) -> dict[str, Any]:
    message: dict[str, Any] = {
        "id": "CHITTY-MSG-01JABCDEF",
        "type": kind,
        "source": {"nodeId": "node-a", "platform": "claude-code", "chittyId": "CHITTY-USER-1"},
        "target": {"broadcast": False, "platforms": ["web", "slack"]},
        "payload": {
            "domain": "todos",
            "operation": "update",
            "entity": {
                "chittyId": "CHITTY-TODO-67890",
                "type": "todo",
                "data": {"status": "completed"},
            },
            "delta": {"add": {"assignees": ["CHITTY-USER-2"]}},
        },
        "metadata": {
            "timestamp": "2025-10-18T12:00:00Z",
            "vectorClock": {"node-a": 3, "hub": 7},
            "causality": ["CHITTY-MSG-01JABCDE0"],
            "ttl": 60,
        },
    }
    message.update(overrides)
    return message


@pytest.mark.parametrize("kind", get_args(SyncMessageType))
def test_every_message_type_round_trips(kind: str) -> None:
    message = from_wire(wire(kind))
    assert message.type == kind
    assert decode_msgpack(encode_msgpack(message)) == message
    assert decode_json(encode_json(message)) == message
    assert from_wire(to_wire(message)) == message


def test_the_wire_form_uses_the_spec_names() -> None:
    out = to_wire(from_wire(wire()))
    assert out["source"]["nodeId"] == "node-a"
    assert out["metadata"]["vectorClock"] == {"hub": 7, "node-a": 3}
    assert out["payload"]["entity"]["chittyId"] == "CHITTY-TODO-67890"


def test_the_type_selects_the_variant() -> None:
    assert isinstance(from_wire(wire()), StateUpdate)


def test_heartbeats_need_no_payload() -> None:
    beat = wire("heartbeat")
    del beat["payload"]
    assert from_wire(beat).payload is None


def _broken(path: list[str], value: Any) -> dict[str, Any]:
    message = wire()
    node = message
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return message


@pytest.mark.parametrize(
    ("path", "value", "field"),
    [
        (["type"], "gossip", "type"),
        (["payload", "domain"], "emails", "payload.domain"),
        (["payload", "operation"], "upsert", "payload.operation"),
        (["payload", "entity", "chittyId"], "TODO-1", "payload.entity.chittyId"),
        (["metadata", "vectorClock"], {"a": -1}, "metadata.vectorClock.a"),
        (["metadata", "timestamp"], "yesterday", "metadata.timestamp"),
        (["metadata", "ttl"], -5, "metadata.ttl"),
        (["source", "nodeId"], "", "source.nodeId"),
        (["id"], "has space", "id"),
        (["payload", "entity", "surprise"], 1, "payload.entity.surprise"),
    ],
)
def test_bad_input_names_the_field(path: list[str], value: Any, field: str) -> None:
    bad = _broken(path, value)
    for decode in (
        from_wire,
        lambda m: decode_json(json.dumps(m)),
        lambda m: decode_msgpack(msgpack.packb(m)),
    ):
        with pytest.raises(DecodeError) as caught:
            decode(bad)
        assert caught.value.field == field, caught.value


def test_missing_required_field_is_named() -> None:
    message = wire()
    del message["metadata"]
    with pytest.raises(DecodeError) as caught:
        from_wire(message)
    assert caught.value.field == "metadata"


@pytest.mark.parametrize("garbage", [b"\xc1", b"\x93\x01\x02"])
def test_garbage_bytes_are_a_decode_error(garbage: bytes) -> None:
    with pytest.raises(DecodeError):
        decode_msgpack(garbage)


def test_invalid_json_is_a_decode_error() -> None:
    with pytest.raises(DecodeError, match="not valid JSON"):
        decode_json(b"{not json")
