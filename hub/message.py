"""A sync message as the entity's turn reads it: validated once, at the edge, then trusted.

The edge that receives a message validates it into its pydantic model (`hub.protocol`) and
encodes that, once, as its canonical msgpack (`codec.encode_msgpack`: the wire dict, camelCase,
JSON values). Only that encoding travels on: an envelope's body, an event's stored message.
The host's turn and replay read it back with `decode`, which unpacks it into a `Message` (a
few slotted fields, no pydantic) without validating it again: a body the hub made is valid by
construction, and a store's events are checked by their checksum chain before they are read.
What `decode` cannot read (not msgpack, a part missing or of the wrong type) is a
`DecodeError`, never a crash; the entity's own field rules still apply in `apply`.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import msgpack
from pydantic import JsonValue

from hub.clocks.vector import VectorClock
from hub.codec import DecodeError, to_wire
from hub.domains import SyncDomain
from hub.protocol import SyncMessage
from hub.record import record

WRITES = frozenset({"state_update", "state_snapshot"})
"""Message types that change an entity's state."""


@record
class Delta:
    """A message's incremental change: set elements to add or remove, Y updates by path."""

    add: Mapping[str, list[JsonValue]]
    remove: Mapping[str, list[JsonValue]]
    y_updates: Mapping[str, str]


@record
class Message:
    """A validated sync message, lean: what `apply`, events and publications read of it, and
    `body`, its canonical msgpack (what is stored and forwarded, never encoded again)."""

    id: str
    type: str
    node_id: str  # source.nodeId
    platform: str  # source.platform
    principal: str  # source.chittyId
    domain: SyncDomain | None  # None: a message with no payload (a heartbeat, an ack)
    operation: str  # "" without a payload
    entity_id: str  # "" without a payload
    data: Mapping[str, JsonValue]
    delta: Delta | None
    timestamp_ms: int
    clock: VectorClock  # metadata.vectorClock; empty: a blind write
    broadcast: bool  # target.broadcast, narrowed by node_ids and platforms when given
    node_ids: tuple[str, ...] | None
    platforms: tuple[str, ...] | None
    body: bytes

    @property
    def writes(self) -> bool:
        """Whether it asks to change its entity (a create, update or delete)."""
        return self.type in WRITES and self.domain is not None and self.operation != "query"

    @classmethod
    def of(cls, message: SyncMessage) -> Message:
        """The lean form of a validated message: what a host decodes from the envelope the
        edge would send. Text msgpack cannot encode (a lone surrogate) leaves `body` empty:
        `apply` refuses such a value, naming its field, before anything is stored."""
        raw = to_wire(message)
        try:
            body: bytes = msgpack.packb(raw, use_bin_type=True)
        except UnicodeEncodeError:
            body = b""
        return _lean(raw, body)


def _ms(timestamp: str) -> int:
    # The same milliseconds as `int(datetime.timestamp() * 1000)` of pydantic's parse: the
    # canonical text is pydantic's own dump of a UTC datetime.
    return int(datetime.fromisoformat(timestamp).timestamp() * 1000)


def _names(raw: Any) -> tuple[str, ...] | None:
    return None if raw is None else tuple(raw)


def decode(body: bytes) -> Message:
    """The `Message` a canonical msgpack encodes (trusted: see the module's docstring)."""
    try:
        raw = msgpack.unpackb(body, raw=False, strict_map_key=True)
    except (ValueError, msgpack.UnpackException) as error:
        raise DecodeError("", f"not valid msgpack: {error}") from None
    return _lean(raw, body)


def _lean(raw: Any, body: bytes) -> Message:
    try:
        source = raw["source"]
        metadata = raw["metadata"]
        target = raw.get("target") or {}
        payload = raw.get("payload")
        delta = None
        if payload is None:
            domain, operation, entity_id, data = None, "", "", {}
        else:
            entity = payload["entity"]
            domain = SyncDomain(payload["domain"])
            operation, entity_id, data = payload["operation"], entity["chittyId"], entity["data"]
            if type(data) is not dict:
                raise TypeError(f"payload.entity.data is a {type(data).__name__}")
            wanted = payload.get("delta")
            if wanted is not None:
                delta = Delta(
                    wanted.get("add", {}), wanted.get("remove", {}), wanted.get("yUpdates", {})
                )
        return Message(
            raw["id"],
            raw["type"],
            source["nodeId"],
            source["platform"],
            source["chittyId"],
            domain,
            operation,
            entity_id,
            data,
            delta,
            _ms(metadata["timestamp"]),
            VectorClock(metadata["vectorClock"]),
            target.get("broadcast", True),
            _names(target.get("nodeIds")),
            _names(target.get("platforms")),
            body,
        )
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise DecodeError("", f"not a canonical sync message: {error!r}") from None
