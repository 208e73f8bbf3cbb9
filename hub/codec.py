"""Encoding of sync messages: msgpack between our processes, JSON at the HTTP edge."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, get_args

import msgpack
from pydantic import ValidationError

from hub.protocol import SYNC_MESSAGE, SyncMessage, SyncMessageType


class DecodeError(ValueError):
    """Bytes that are not a valid sync message; `field` is the dotted path of the fault."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}" if field else reason)
        self.field = field
        self.reason = reason


def field_path(error: ValidationError, variants: frozenset[str] = frozenset()) -> tuple[str, str]:
    """The dotted path and message of the first error, without union tags in the path (nor
    pydantic's "Value error, " before a validator's own sentence)."""
    first = error.errors(include_url=False)[0]
    loc = [str(part) for part in first["loc"]]
    if loc and loc[0] in variants:  # the discriminated union puts the tag first
        loc = loc[1:]
    if first["type"] in ("union_tag_invalid", "union_tag_not_found"):
        loc = ["type"]
    return ".".join(loc), first["msg"].removeprefix("Value error, ")


_VARIANTS = frozenset(get_args(SyncMessageType))


def _validate(raw: Any) -> SyncMessage:
    if not isinstance(raw, dict):
        raise DecodeError("", f"a sync message must be an object, got {type(raw).__name__}")
    try:
        return SYNC_MESSAGE.validate_python(raw)
    except ValidationError as error:
        raise DecodeError(*field_path(error, _VARIANTS)) from None


def to_wire(message: SyncMessage) -> dict[str, Any]:
    """The JSON-compatible dict form with the spec's camelCase names."""
    return message.model_dump(mode="json", by_alias=True, exclude_none=True)


INT_RANGE = (-(2**63), 2**64 - 1)  # what msgpack, and so the store, holds


def json_int(text: str) -> int:
    """A JSON integer the hub can store (`json.loads(..., parse_int=json_int)`); one out of
    the 64-bit range is refused as malformed input, never a failure at commit."""
    value = int(text)
    if not INT_RANGE[0] <= value <= INT_RANGE[1]:
        shown = text if len(text) <= 24 else f"{text[:24]}…"
        raise ValueError(f"the integer {shown} is outside the 64-bit range")
    return value


def from_wire(raw: Any) -> SyncMessage:
    """Validate a wire dict (already decoded from JSON or msgpack)."""
    return _validate(raw)


def write_message(
    *,
    message_id: str,
    node_id: str,
    platform: str,
    chitty_id: str,
    domain: str,
    operation: str,
    entity_id: str,
    data: Mapping[str, Any],
    timestamp: datetime,
    clock: Any = None,
    delta: Mapping[str, Any] | None = None,
    kind: str = "state_update",
    target: Any = None,
) -> SyncMessage:
    """The sync message every edge and actor builds for a write (a `state_update`, or `kind`:
    a `state_snapshot`, an `event` or a `command` about the entity), validated here, once:
    `chitty_id` is the principal it is attributed to; `clock` None is a blind write; `target`
    None reaches everyone."""
    payload: dict[str, Any] = {
        "domain": domain,
        "operation": operation,
        "entity": {"chittyId": entity_id, "type": domain[:-1], "data": dict(data)},
    }
    if delta is not None:
        payload["delta"] = dict(delta)
    return _validate(
        {
            "id": message_id,
            "type": kind,
            "source": {"nodeId": node_id, "platform": platform, "chittyId": chitty_id},
            "target": {"broadcast": True} if target is None else target,
            "payload": payload,
            "metadata": {"timestamp": timestamp, "vectorClock": {} if clock is None else clock},
        }
    )


def encode_msgpack(message: SyncMessage) -> bytes:
    packed: bytes = msgpack.packb(to_wire(message), use_bin_type=True)
    return packed


def decode_msgpack(data: bytes) -> SyncMessage:
    try:
        raw = msgpack.unpackb(data, raw=False, strict_map_key=True)
    except (ValueError, msgpack.UnpackException) as error:
        raise DecodeError("", f"not valid msgpack: {error}") from None
    return _validate(raw)


def encode_json(message: SyncMessage) -> bytes:
    return SYNC_MESSAGE.dump_json(message, by_alias=True, exclude_none=True)


def decode_json(data: bytes | str) -> SyncMessage:
    try:
        return SYNC_MESSAGE.validate_json(data)
    except ValidationError as error:
        path, reason = field_path(error, _VARIANTS)
        if error.errors()[0]["type"] == "json_invalid":
            raise DecodeError("", f"not valid JSON: {reason}") from None
        raise DecodeError(path, reason) from None
