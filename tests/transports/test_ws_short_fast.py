"""The short `state_update` validated once (`_plain_short`, and `canonical_write` for a plain
one) gives exactly what validating the short form first gives: the same message for a good frame
(compared in its lean form, which holds its canonical encoding), the same error for a bad one."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from hub.codec import DecodeError, field_path, from_wire
from hub.domains import DOMAINS
from hub.ids import InvalidChittyId, Kind, parse
from hub.message import Message
from transports.gateway.ws_frames import (
    FrameError,
    Origin,
    ShortUpdate,
    Write,
    _id_of,
    _plain,
    _plain_short,
    _short_write,
    parse_text,
    short_field,
)

NOW = datetime(2026, 11, 25, 1, 2, 3, 456789, tzinfo=UTC)
ORIGIN = Origin("node-1", "ws", lambda kind: f"CHITTY-{kind}-NEW1", lambda: NOW, "CHITTY-USER-ME")


def _slow(raw: dict[str, Any], origin: Origin, index: int | None) -> Write | FrameError:
    """The short form's path as it was before the fast path: `ShortUpdate`, then the message."""
    try:
        short = ShortUpdate.model_validate(raw)
    except ValidationError as error:
        path, reason = field_path(error)
        return FrameError("invalid", _plain(reason), path or None, _id_of(raw), index=index)
    data = dict(short.entity)
    entity_id = data.pop("chittyId", None)
    kind = DOMAINS[short.domain].kind
    # No operation: an update of the entity it names, else a create (the spec's "send update").
    operation = short.operation or ("update" if "chittyId" in short.entity else "create")
    if entity_id is None:
        if operation != "create":
            detail = "required to update or delete"
            return FrameError("invalid", detail, "entity.chittyId", short.id, index=index)
        entity_id = origin.new_id(kind)
    if not isinstance(entity_id, str):
        return FrameError("invalid", "must be a string", "entity.chittyId", short.id, index=index)
    try:
        parse(entity_id, expect=kind)
    except InvalidChittyId as error:
        return FrameError("invalid", str(error), "entity.chittyId", short.id, index=index)
    message_id = short.id or origin.new_id(Kind.MSG)
    wire = {
        "id": message_id,
        "type": "state_update",
        "source": {
            "nodeId": origin.node_id,
            "platform": origin.platform,
            "chittyId": origin.chitty_id,
        },
        "payload": {
            "domain": short.domain.value,
            "operation": operation,
            "entity": {"chittyId": entity_id, "type": short.domain.value[:-1], "data": data},
        },
        "metadata": {
            "timestamp": origin.now(),
            "vectorClock": {} if short.vector_clock is None else short.vector_clock,
        },
    }
    try:
        return Write(from_wire(wire), short=True, index=index)
    except DecodeError as error:
        return FrameError(
            "invalid", _plain(error.reason), short_field(error.field), message_id, index=index
        )


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=6,
)
ids = st.sampled_from(
    [
        "CHITTY-TODO-A1",
        "CHITTY-TODO-B2",
        "CHITTY-PROJ-P1",
        "CHITTY-SESSION-S1",
        "bad id",
        "",
        "CHITTY-TODO-",
    ]
)
field_values = {
    "content": st.text(max_size=6) | json_values,
    "activeForm": st.text(max_size=6),
    "status": st.sampled_from(["pending", "in_progress", "completed", "nope"]) | json_values,
    "projectId": ids | json_values,
    "sessionId": ids,
    "createdBy": ids,
    "chittyId": ids | json_values,
    "unknownField": json_values,
}
entities = (
    st.fixed_dictionaries({}, optional={key: values for key, values in field_values.items()})
    | json_values
)
clocks = (
    st.none()
    | st.dictionaries(
        st.text(max_size=3), st.integers(-1, 2**64 - 1) | st.booleans() | json_values, max_size=2
    )
    | json_values
)
frames = st.fixed_dictionaries(
    {"type": st.just("state_update")},
    optional={
        "domain": st.sampled_from(["todos", "projects", "sessions", "topics", "nope", "Todos"])
        | json_values,
        "operation": st.sampled_from(["create", "update", "delete", "query", "Update"])
        | json_values,
        "entity": entities,
        "vectorClock": clocks,
        "vector_clock": clocks,
        "id": st.sampled_from(["m1", "", "a b", "x" * 129]) | json_values,
        "extra": json_values,
    },
)


def _lean(item: object) -> object:
    """A write with its message in the lean form (a plain short write is built that way; the
    lean form holds the canonical encoding, so equal lean forms are equal messages)."""
    if isinstance(item, Write) and not isinstance(item.message, Message):
        return replace(item, message=Message.of(item.message))
    return item


def _same(raw: dict[str, Any]) -> None:
    text = json.dumps(raw)
    fast = parse_text(text, ORIGIN)
    slow = _slow(json.loads(text), ORIGIN, None)
    assert _lean(fast) == _lean(slow)
    batch = parse_text(f"[{text},{text}]", ORIGIN)
    slow_items = (_slow(json.loads(text), ORIGIN, 0), _slow(json.loads(text), ORIGIN, 1))
    assert [_lean(i) for i in batch.items] == [_lean(i) for i in slow_items]  # type: ignore[union-attr]


@settings(max_examples=600, deadline=None)
@given(frames)
def test_fast_short_equals_validating_path(raw: dict[str, Any]) -> None:
    _same(raw)


def test_fast_short_cases() -> None:
    good = {
        "type": "state_update",
        "domain": "todos",
        "entity": {"chittyId": "CHITTY-TODO-A1", "activeForm": "x"},
    }
    for raw in [
        good,
        {**good, "id": "m7", "operation": "update", "vectorClock": {"n": 3}},
        {**good, "operation": "create", "entity": {"content": "c", "activeForm": "a"}},
        {**good, "id": ""},
        {**good, "id": None},
        {**good, "id": 5},
        {**good, "vectorClock": None},
        {**good, "vectorClock": {"n": -1}},
        {**good, "vectorClock": {"n": True}},
        {**good, "vector_clock": {"n": 1}},
        {**good, "operation": None},
        {**good, "domain": ["todos"]},
        {**good, "entity": {"activeForm": "x"}},
        {**good, "entity": {"chittyId": "CHITTY-PROJ-A1"}},
        {**good, "entity": {"chittyId": 7}},
        {**good, "entity": {"chittyId": "CHITTY-TODO-A1", "status": "nope"}},
        {**good, "extra": 1},
    ]:
        _same(raw)
    fields = _plain_short(good)  # the good frame takes the one-validation path
    assert fields is not None
    fast = _short_write(fields, ORIGIN, None, checked=True)
    assert isinstance(fast, Write) and isinstance(fast.message, Message)  # built lean
    assert fast == _lean(_slow(good, ORIGIN, None))
    assert _plain_short({**good, "vector_clock": {}}) is None
