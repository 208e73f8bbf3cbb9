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

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

import msgpack
from pydantic import JsonValue

from hub.clocks.vector import VectorClock
from hub.codec import DecodeError, from_wire, to_wire
from hub.domains import DOMAINS, SyncDomain
from hub.ids import InvalidChittyId, parse
from hub.protocol import DEFAULT_TTL_S, Source, SyncMessage
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
    ttl_s: int  # metadata.ttl
    causality: tuple[str, ...]  # metadata.causality
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
            metadata.get("ttl", DEFAULT_TTL_S),
            tuple(metadata.get("causality", ())),
            body,
        )
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise DecodeError("", f"not a canonical sync message: {error!r}") from None


def model_of(message: Message) -> SyncMessage:
    """The pydantic model of a lean message (validated again: for the rare paths that change
    a message, such as an edge attributing it to its principal)."""
    return from_wire(msgpack.unpackb(message.body, raw=False))


# What `MessageIdStr` allows, checked without pydantic.
_MESSAGE_ID = re.compile(r"[\x21-\x7e]{1,128}")
_OPERATIONS = frozenset({"create", "update", "delete"})


def canonical_write(
    *,
    message_id: str,
    node_id: str,
    platform: str,
    chitty_id: str,
    domain: SyncDomain,
    operation: str,
    entity_id: str,
    data: Mapping[str, JsonValue],
    timestamp: datetime,
    clock: object = None,
) -> Message | None:
    """A `state_update` built in its canonical form without pydantic: the very `Message`
    (body included, byte for byte) that `Message.of(codec.write_message(...))` gives for the
    same parts, with no target, the default ttl and no causality (tests/hub/test_message.py
    holds the two equal). None when a part is not plainly valid, or might not be: the caller
    then builds the message with `write_message`, whose validation names what is wrong.

    Checked here as the protocol's models check them: the message id, the entity id (a
    ChittyID of the domain's kind), the operation, `data` (JSON values under string keys),
    the clock (a `VectorClock`, empty: a blind write), and the source (checked by its model
    once per distinct source: a connection's origin writes many messages)."""
    if (
        type(message_id) is not str
        or not _MESSAGE_ID.fullmatch(message_id)
        or operation not in _OPERATIONS
        or not _source_valid(node_id, platform, chitty_id)
        or timestamp.tzinfo is not UTC
        or timestamp.year < 1000  # isoformat pads such years unlike pydantic
        or not _json_object(data)
    ):
        return None
    try:
        parse(entity_id, expect=DOMAINS[domain].kind)
        vector = VectorClock() if clock is None else VectorClock(clock)  # type: ignore[arg-type]
    except (InvalidChittyId, ValueError, TypeError, AttributeError):
        return None
    fields = dict(data)
    raw = {  # the order and the form of `to_wire`'s dump of the same message
        "id": message_id,
        "source": {"nodeId": node_id, "platform": platform, "chittyId": chitty_id},
        "target": {"broadcast": True},
        "metadata": {
            "timestamp": timestamp.isoformat()[:-6] + "Z",
            "vectorClock": vector.to_dict(),
            "causality": [],
            "ttl": DEFAULT_TTL_S,
        },
        "type": "state_update",
        "payload": {
            "domain": domain.value,
            "operation": operation,
            "entity": {"chittyId": entity_id, "type": domain.value[:-1], "data": fields},
        },
    }
    try:
        body: bytes = msgpack.packb(raw, use_bin_type=True)
    except (UnicodeEncodeError, OverflowError, TypeError, ValueError):
        return None
    # What `_lean(raw, body)` reads back, from the parts themselves (the text of a UTC time
    # keeps its microseconds, so its milliseconds are those of `timestamp`).
    return Message(
        message_id,
        "state_update",
        node_id,
        platform,
        chitty_id,
        domain,
        operation,
        entity_id,
        fields,
        None,
        int(timestamp.timestamp() * 1000),
        vector,
        True,
        None,
        None,
        DEFAULT_TTL_S,
        (),
        body,
    )


@lru_cache(maxsize=1024)
def _source_valid(node_id: str, platform: str, chitty_id: str) -> bool:
    try:
        Source(node_id=node_id, platform=platform, chitty_id=chitty_id)
    except ValueError:  # pydantic's ValidationError is one
        return False
    return True


JSON_SCALARS = frozenset({str, int, float, bool, type(None)})  # the types of JSON's scalars


def _json_object(value: object) -> bool:
    """Whether `value` is a dict of JSON values under string keys (what a JSON parser makes)."""
    if type(value) is not dict:
        return False
    pending: list[object] = [value]
    while pending:
        item = pending.pop()
        kind = type(item)
        if kind is dict:
            for key, inner in item.items():  # type: ignore[attr-defined]
                if type(key) is not str:
                    return False
                if type(inner) not in JSON_SCALARS:
                    pending.append(inner)
        elif kind is list:
            pending.extend(inner for inner in item if type(inner) not in JSON_SCALARS)  # type: ignore[attr-defined]
        elif kind not in JSON_SCALARS:
            return False
    return True
