"""Immutable values the checkpoint store reads and writes; bodies and states are opaque bytes."""

from __future__ import annotations

from enum import StrEnum
from hashlib import sha256

from hub.record import record


@record
class NewEvent:
    """An event to append: the store assigns its sequence number and checksum."""

    entity_id: str
    timestamp_ms: int
    body: bytes


@record
class StoredEvent:
    """An event in an entity's log: `seq` is 1-based and gap-free, `checksum` chains to seq-1."""

    entity_id: str
    seq: int
    timestamp_ms: int
    body: bytes
    checksum: bytes

    @property
    def body_digest(self) -> bytes:
        """The sha256 of the body the chain covers: of this body, unless it was redacted."""
        return sha256(self.body).digest()

    @property
    def redacted(self) -> bool:
        """Whether the body was rewritten after it was appended (see `RedactedEvent`)."""
        return False


@record
class RedactedEvent(StoredEvent):
    """An event whose body was rewritten (erasure): the chain still covers the original.

    `original_digest` is the sha256 of the body as appended, which the checksum covers, so
    the chain verifies without the original bytes; `redacted_ms` is when it was rewritten.
    An empty body is a tombstone (the rewrite removed the body altogether).
    """

    original_digest: bytes
    redacted_ms: int

    @property
    def body_digest(self) -> bytes:
        return self.original_digest

    @property
    def redacted(self) -> bool:
        return True

    @property
    def tombstone(self) -> bool:
        """Whether the body was removed rather than rewritten."""
        return not self.body


@record
class Snapshot:
    """An entity's encoded state after event `seq`; `checksum` is that event's checksum."""

    entity_id: str
    seq: int
    timestamp_ms: int
    state: bytes
    checksum: bytes


@record
class NewSnapshot:
    """An entity's encoded state after its last event of the batch that carries it
    (`append_batch`): stored as that event's snapshot, with its timestamp and checksum."""

    entity_id: str
    seq: int
    state: bytes


@record
class DedupeEntry:
    """The outcome of a processed message, remembered so a retry is applied at most once."""

    message_id: str
    outcome: bytes


class CorruptionKind(StrEnum):
    """What `verify()` found wrong with one stored record."""

    UNDECODABLE = "undecodable"
    BAD_KEY = "bad_key"
    BAD_CHECKSUM = "bad_checksum"
    GAP = "gap"
    TIMESTAMP_ORDER = "timestamp_order"
    SNAPSHOT_MISMATCH = "snapshot_mismatch"
    SCHEMA = "schema"
    REDACTION = "redaction_inconsistent"
    TRUNCATED = "truncated"  # events the recorded head counts are gone (off the end, or all)
    HEAD_MISMATCH = "head_mismatch"  # the last event is not the head recorded with it


@record
class Corruption:
    """One damaged record: the database, the entity and sequence (when known) and why."""

    database: str
    kind: CorruptionKind
    entity_id: str | None
    seq: int | None
    detail: str


@record
class VerifyReport:
    """The result of walking every chain, snapshot and dedupe entry of a store."""

    entities: int
    events: int
    snapshots: int
    dedupe_entries: int
    corruptions: tuple[Corruption, ...]

    @property
    def ok(self) -> bool:
        """True when nothing was found wrong."""
        return not self.corruptions


@record
class EntityCheck:
    """One entity checked as it loads: its last event (seq 0: none) and what is damaged."""

    last_seq: int
    last_timestamp_ms: int
    corruptions: tuple[Corruption, ...]

    @property
    def ok(self) -> bool:
        return not self.corruptions
