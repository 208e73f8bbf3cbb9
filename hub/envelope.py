"""What travels between the edge, the router and the hosts: envelopes in, outcomes back.

Between processes a batch travels as one msgpack blob (`pack_envelopes`, `pack_outcomes`): Ray
then ships a single `bytes` object instead of pickling dataclasses one field at a time.
"""

from __future__ import annotations

import hashlib
from dataclasses import field
from enum import StrEnum
from typing import Any

import msgpack
from pydantic import JsonValue

from hub.codec import encode_msgpack, to_wire
from hub.message import Message
from hub.protocol import SyncMessage
from hub.record import record

IDEMPOTENCY_PREFIX = "idem-"
"""Message ids a client's idempotency key made (`idem-` + a digest of principal, method, path
and key): a retry carries the same id, and its body must be the first one's."""


def request_fingerprint(message: SyncMessage | Message) -> str:
    """A digest of what a message asks (type, payload, target, clock), not of when it was
    sent: two sends of one request have the same; a key reused for another has not."""
    wire: dict[str, Any] = (
        msgpack.unpackb(message.body, raw=False)
        if isinstance(message, Message)
        else to_wire(message)
    )
    wire.pop("id", None)
    metadata = dict(wire.get("metadata") or {})
    metadata.pop("timestamp", None)
    wire["metadata"] = metadata
    return hashlib.sha256(msgpack.packb(wire, use_bin_type=True)).hexdigest()[:32]


class Status(StrEnum):
    """What became of one message."""

    APPLIED = "applied"  # durable: committed to the entity's log
    DUPLICATE = "duplicate"  # seen before (same id, or a clock the entity already covers)
    IGNORED = "ignored"  # not a state change (query, heartbeat, …)
    REJECTED = "rejected"  # invalid for the entity; `field` and `reason` say why
    EXPIRED = "expired"  # its ttl ran out before it could be applied
    BUSY = "busy"  # the entity's mailbox is full: retry later
    CAUSAL_VIOLATION = "causal_violation"  # a message it depends on never arrived
    UNAVAILABLE = "unavailable"  # no host could take it (retry later)
    KEY_REUSED = "key_reused"  # its id came with another request before: nothing applied
    CORRUPT = "corrupt"  # the entity's stored data fails its integrity check: not served


@record
class Envelope:
    """A validated sync message with the routing facts pulled out; `body` is its msgpack."""

    message_id: str
    entity_id: str
    causality: tuple[str, ...]
    deadline_ms: int  # metadata.timestamp + ttl
    body: bytes
    depth: int = 0  # actor-to-actor call chain depth
    with_entity: bool = False  # answer with the entity's view (REST does; streams need not)
    fingerprint: str = ""  # of an idempotency-keyed request (`request_fingerprint`), else ""

    @classmethod
    def of(
        cls, message: SyncMessage | Message, depth: int = 0, with_entity: bool = False
    ) -> Envelope:
        """The envelope of a validated message, in either form: a lean one carries its
        canonical encoding already (`hub.message.canonical_write`)."""
        keyed = message.id.startswith(IDEMPOTENCY_PREFIX)
        fingerprint = request_fingerprint(message) if keyed else ""
        if isinstance(message, Message):
            return cls(
                message.id,
                message.entity_id,
                message.causality,
                message.timestamp_ms + message.ttl_s * 1000,
                message.body,
                depth,
                with_entity,
                fingerprint,
            )
        meta = message.metadata
        entity = message.payload.entity.chitty_id if message.payload is not None else ""
        return cls(
            message.id,
            entity,
            tuple(meta.causality),
            int(meta.timestamp.timestamp() * 1000) + meta.ttl * 1000,
            encode_msgpack(message),
            depth,
            with_entity,
            fingerprint,
        )

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        # Pickled as a plain tuple: the slotted dataclass default walks `fields()` every time.
        return (Envelope, self.row())

    def row(self) -> tuple[str, str, tuple[str, ...], int, bytes, int, bool, str]:
        return (
            self.message_id,
            self.entity_id,
            self.causality,
            self.deadline_ms,
            self.body,
            self.depth,
            self.with_entity,
            self.fingerprint,
        )

    def reused_by(self, first: Outcome) -> bool:
        """Whether this envelope reuses the id of `first`'s message for another request."""
        return bool(
            self.fingerprint and first.fingerprint and self.fingerprint != first.fingerprint
        )

    def key_reused(self) -> Outcome:
        """The answer to a reused id: refused, nothing applied (and nothing remembered)."""
        reason = "this id was sent before with another request: nothing was applied"
        return Outcome(
            self.message_id, Status.KEY_REUSED, self.entity_id, field="id", reason=reason
        )


def pack_envelopes(envelopes: list[Envelope]) -> bytes:
    """A batch of envelopes as one msgpack value."""
    packed: bytes = msgpack.packb([e.row() for e in envelopes], use_bin_type=True)
    return packed


def unpack_envelopes(data: bytes) -> list[Envelope]:
    rows: list[list[Any]] = msgpack.unpackb(data, raw=False)
    return [
        Envelope(r[0], r[1], tuple(r[2]), r[3], r[4], r[5], r[6], r[7] if len(r) > 7 else "")
        for r in rows
    ]


@record
class Outcome:
    """The answer to one envelope; `seq` is the entity's durable log position when applied."""

    message_id: str
    status: Status
    entity_id: str = ""
    seq: int = 0
    clock: dict[str, int] = field(default_factory=dict)
    field: str = ""
    reason: str = ""
    conflicts: tuple[dict[str, JsonValue], ...] = ()
    entity: dict[str, JsonValue] | None = None  # the entity's wire view after the message
    refusal: str = ""  # for `rejected`: hub.entity.Refusal (invalid, not_found, …)
    fingerprint: str = ""  # the envelope's, when its id was an idempotency key

    def row(self) -> list[Any]:
        """The outcome as a list of plain values (msgpack-ready)."""
        return [
            self.message_id,
            self.status.value,
            self.entity_id,
            self.seq,
            self.clock,
            self.field,
            self.reason,
            list(self.conflicts),
            self.entity,
            self.refusal,
            self.fingerprint,
        ]

    @classmethod
    def from_row(cls, raw: list[Any]) -> Outcome:
        return cls(
            raw[0],
            _STATUS[raw[1]],
            raw[2],
            raw[3],
            raw[4],
            raw[5],
            raw[6],
            tuple(raw[7]),
            raw[8],
            raw[9],
            raw[10] if len(raw) > 10 else "",  # recorded before outcomes kept fingerprints
        )

    def to_bytes(self) -> bytes:
        packed: bytes = msgpack.packb(self.row(), use_bin_type=True)
        return packed

    @classmethod
    def from_bytes(cls, data: bytes) -> Outcome:
        return cls.from_row(msgpack.unpackb(data, raw=False))

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        return (_outcome_of_row, (self.row(),))

    @property
    def durable(self) -> bool:
        """Whether the message's effect is committed (now or by an earlier delivery)."""
        return self.status in (Status.APPLIED, Status.DUPLICATE)


_STATUS = {status.value: status for status in Status}


def _outcome_of_row(raw: list[Any]) -> Outcome:
    return Outcome.from_row(raw)


def pack_outcomes(outcomes: list[Outcome]) -> bytes:
    """A batch of outcomes as one msgpack value."""
    packed: bytes = msgpack.packb([o.row() for o in outcomes], use_bin_type=True)
    return packed


def unpack_outcomes(data: bytes) -> list[Outcome]:
    rows: list[list[Any]] = msgpack.unpackb(data, raw=False)
    return [Outcome.from_row(r) for r in rows]
