"""Checksum chaining: each event's sha256 covers its predecessor's and its body's digest."""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable, Mapping, Sequence
from hashlib import sha256
from typing import NamedTuple, Protocol

from hub.record import record
from hub.store.errors import CorruptValueError, SnapshotMismatchError, TimestampOrderError
from hub.store.layout import MAX_TIMESTAMP_MS, MIN_TIMESTAMP_MS, entity_key_prefix
from hub.store.records import (
    Corruption,
    CorruptionKind,
    NewEvent,
    NewSnapshot,
    RedactedEvent,
    Snapshot,
    StoredEvent,
)

GENESIS_CHECKSUM = bytes(32)
_SEQ_AND_TIME = struct.Struct(">Qq")


def event_checksum(
    previous: bytes, entity_key_prefix: bytes, seq: int, timestamp_ms: int, body: bytes
) -> bytes:
    """sha256(previous checksum, entity id + NUL, seq, timestamp, sha256(body)).

    The chain covers the body's digest, not the body, so a body can later be redacted
    (rewritten, its original digest kept) without breaking the chain. The NUL after the id
    (ids never contain one) and the fixed-width fields keep the hashed encoding unambiguous.
    """
    return checksum_of_digest(previous, entity_key_prefix, seq, timestamp_ms, sha256(body).digest())


def checksum_of_digest(
    previous: bytes, entity_key_prefix: bytes, seq: int, timestamp_ms: int, body_digest: bytes
) -> bytes:
    """`event_checksum` given the body's sha256 instead of the body."""
    return sha256(
        previous + entity_key_prefix + _SEQ_AND_TIME.pack(seq, timestamp_ms) + body_digest
    ).digest()


def legacy_event_checksum(
    previous: bytes, entity_key_prefix: bytes, seq: int, timestamp_ms: int, body: bytes
) -> bytes:
    """The schema-1 formula, sha256 over the body itself: only the migration uses it."""
    return sha256(
        previous + entity_key_prefix + _SEQ_AND_TIME.pack(seq, timestamp_ms) + body
    ).digest()


class Head(Protocol):
    """What appending needs of an entity's last event (a `StoredEvent` is one)."""

    @property
    def seq(self) -> int: ...

    @property
    def checksum(self) -> bytes: ...

    @property
    def timestamp_ms(self) -> int: ...


class ChainHead(NamedTuple):
    """A `Head` on its own: the start of every chain (`GENESIS`) or a decoded last event."""

    seq: int
    checksum: bytes
    timestamp_ms: int


GENESIS = ChainHead(0, GENESIS_CHECKSUM, MIN_TIMESTAMP_MS)


@record
class PlannedBatch:
    """The stored form of a batch plus, per entity, its key prefix and new head."""

    events: list[StoredEvent]
    prefixes: dict[str, bytes]
    heads: dict[str, Head]


# Both store implementations plan appends and verify logs with the two functions below, so
# they agree exactly on seqs, checksums and what counts as damage.
def plan_batch(
    events: Sequence[NewEvent],
    head_of: Callable[[str, bytes], Head],
    known: Mapping[str, Head] | None = None,
) -> PlannedBatch:
    """Assign seqs and checksums to `events` in order.

    An entity's current head comes from `known` (a cache) or else `head_of(id, key prefix)`.
    Raises `InvalidKeyError`, `TimestampOrderError`, `ValueError` or `TypeError` before
    anything is written.
    """
    known = known or {}
    # The latest head per entity: the current one, then the last event planned (the hot
    # loop builds no head objects of its own).
    last: dict[str, Head] = {}
    prefixes: dict[str, bytes] = {}
    stored: list[StoredEvent] = []
    append = stored.append
    pack = _SEQ_AND_TIME.pack
    for event in events:
        entity_id = event.entity_id
        head = last.get(entity_id)
        if head is None:
            prefix = entity_key_prefix(entity_id)
            prefixes[entity_id] = prefix
            head = known.get(entity_id)
            if head is None:
                head = head_of(entity_id, prefix)
        else:
            prefix = prefixes[entity_id]
        timestamp_ms = event.timestamp_ms
        body = event.body
        if type(timestamp_ms) is not int or type(body) is not bytes:
            raise TypeError(
                f"timestamp_ms must be an int and body bytes, got {type(timestamp_ms).__name__} "
                f"and {type(body).__name__}"
            )
        if timestamp_ms < head.timestamp_ms or timestamp_ms > MAX_TIMESTAMP_MS:
            if timestamp_ms > MAX_TIMESTAMP_MS or timestamp_ms < MIN_TIMESTAMP_MS:
                raise ValueError(f"timestamp_ms {timestamp_ms} does not fit in 64 bits")
            raise TimestampOrderError(
                f"entity {entity_id!r}: event timestamp {timestamp_ms} is older than the "
                f"previous event's {head.timestamp_ms} (seq {head.seq})"
            )
        seq = head.seq + 1
        # Inlined event_checksum: this loop is the append hot path.
        checksum = sha256(
            head.checksum + prefix + pack(seq, timestamp_ms) + sha256(body).digest()
        ).digest()
        event_out = StoredEvent(entity_id, seq, timestamp_ms, body, checksum)
        append(event_out)
        last[entity_id] = event_out
    return PlannedBatch(stored, prefixes, last)


def verify_chain(
    entity_id: str,
    entries: Iterable[tuple[int, StoredEvent | CorruptValueError]],
    checksum: Callable[[bytes, bytes, int, StoredEvent], bytes] | None = None,
) -> list[Corruption]:
    """Check one entity's log, given as (seq, event or decode error) in key order.

    Each event's checksum is checked against its stored predecessor, so a damaged event is
    named alone; after an undecodable event or a gap the next link cannot be checked. A
    redacted event is checked from its stored original digest, and its redaction record for
    consistency. `checksum(previous, prefix, seq, event)` replaces the formula (migrations).
    """
    found: list[Corruption] = []
    prefix = entity_id.encode() + b"\x00"
    previous: Head = GENESIS
    expected = 1
    linked = True
    for seq, item in entries:
        if seq != expected:
            found.append(
                Corruption(
                    "events",
                    CorruptionKind.GAP,
                    entity_id,
                    expected,
                    f"events {expected}..{seq - 1} are missing (next present is {seq})",
                )
            )
            linked = False
        expected = seq + 1
        if isinstance(item, CorruptValueError):
            found.append(
                Corruption("events", CorruptionKind.UNDECODABLE, entity_id, seq, str(item))
            )
            linked = False
            continue
        if isinstance(item, RedactedEvent):
            problem = redaction_problem(item)
            if problem is not None:
                found.append(
                    Corruption("events", CorruptionKind.REDACTION, entity_id, seq, problem)
                )
        if linked:
            if checksum is None:
                want = checksum_of_digest(
                    previous.checksum, prefix, seq, item.timestamp_ms, item.body_digest
                )
            else:
                want = checksum(previous.checksum, prefix, seq, item)
            if want != item.checksum:
                found.append(
                    Corruption(
                        "events",
                        CorruptionKind.BAD_CHECKSUM,
                        entity_id,
                        seq,
                        f"stored checksum {item.checksum.hex()[:16]}… "
                        f"!= computed {want.hex()[:16]}…",
                    )
                )
            elif item.timestamp_ms < previous.timestamp_ms:
                found.append(
                    Corruption(
                        "events",
                        CorruptionKind.TIMESTAMP_ORDER,
                        entity_id,
                        seq,
                        f"timestamp {item.timestamp_ms} < previous {previous.timestamp_ms}",
                    )
                )
        previous = item
        linked = True
    return found


def redaction_problem(event: RedactedEvent) -> str | None:
    """Why a redacted event's redaction record is inconsistent, or None if it is not."""
    if len(event.original_digest) != 32:
        return f"flagged redacted with a {len(event.original_digest)}-byte original digest"
    if sha256(event.body).digest() == event.original_digest:
        return "flagged redacted but the body is the original (nothing was redacted)"
    if event.redacted_ms < 0:
        return f"flagged redacted at a negative time {event.redacted_ms}"
    return None


def planned_snapshot(new: NewSnapshot, heads: Mapping[str, Head]) -> Snapshot:
    """The snapshot `new` stands for, given a planned batch's new heads: its entity's last
    event in the batch must be the one at `new.seq`. Raises before anything is written."""
    if type(new.state) is not bytes:
        raise TypeError(f"snapshot state must be bytes, got {type(new.state)}")
    head = heads.get(new.entity_id)
    if head is None or head.seq != new.seq:
        last = "no event" if head is None else f"its last event is {head.seq}"
        raise SnapshotMismatchError(
            f"snapshot of {new.entity_id!r} at seq {new.seq}: in this batch {last}"
        )
    return Snapshot(new.entity_id, new.seq, head.timestamp_ms, new.state, head.checksum)


def snapshot_mismatch(snapshot: Snapshot, event: StoredEvent | None) -> str | None:
    """Why `snapshot` does not belong to the chain at its seq, or None if it does."""
    if event is None:
        return f"no event at seq {snapshot.seq}"
    if event.checksum != snapshot.checksum:
        return (
            f"checksum {snapshot.checksum.hex()[:16]}… is not the checksum of event "
            f"{snapshot.seq} ({event.checksum.hex()[:16]}…)"
        )
    if event.timestamp_ms != snapshot.timestamp_ms:
        return (
            f"timestamp {snapshot.timestamp_ms} is not the timestamp of event "
            f"{snapshot.seq} ({event.timestamp_ms})"
        )
    return None


def rewritten_event(
    event: StoredEvent, rewrite: Callable[[bytes], bytes | None], now_ms: int
) -> StoredEvent | None:
    """`event` with its body rewritten (None from `rewrite`: a tombstone, an empty body), or
    None when the rewrite leaves the body as it is.

    The result keeps the seq, timestamp and checksum, and as a `RedactedEvent` the digest of
    the body as first appended; a rewrite back to that very body is a plain event again.
    """
    new = rewrite(event.body)
    body = b"" if new is None else new
    if type(body) is not bytes:
        raise TypeError(f"a rewrite must return bytes or None, got {type(new).__name__}")
    if body == event.body:
        return None
    original = event.body_digest
    if sha256(body).digest() == original:
        return StoredEvent(event.entity_id, event.seq, event.timestamp_ms, body, event.checksum)
    return RedactedEvent(
        event.entity_id, event.seq, event.timestamp_ms, body, event.checksum, original, now_ms
    )


def purge_needle(containing: bytes) -> bytes:
    """Check the byte string `dedupe_purge` looks for: non-empty bytes."""
    if type(containing) is not bytes or not containing:
        raise ValueError("dedupe_purge needs a non-empty bytes string to look for")
    return containing
