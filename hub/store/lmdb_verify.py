"""Integrity walk of an LMDB store: every chain, snapshot, dedupe entry and the schema stamp."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import lmdb

from hub.store.chain import snapshot_mismatch, verify_chain
from hub.store.codec import ValueCodec
from hub.store.errors import CorruptValueError, StoreError
from hub.store.layout import (
    HEAD_PREFIX,
    SEQ_BYTES,
    decode_event,
    decode_snapshot,
    decode_value,
    head_key,
    split_seq_key,
    unpack_dedupe,
    unpack_head,
)
from hub.store.records import (
    Corruption,
    CorruptionKind,
    EntityCheck,
    StoredEvent,
    VerifyReport,
)
from hub.store.schema import SCHEMA_VERSION, Databases, read_version


def verify_lmdb(txn: lmdb.Transaction[bytes], dbs: Databases, codec: ValueCodec) -> VerifyReport:
    """Walk the whole store in one read transaction and report each damaged record."""
    found: list[Corruption] = []
    entities, events = _verify_events(txn, dbs, codec, found)
    snapshots = _verify_snapshots(txn, dbs, codec, found)
    dedupe_entries = _verify_dedupe(txn, dbs, codec, found)
    try:
        version = read_version(txn, dbs)
    except StoreError as exc:
        version = None
        found.append(Corruption("meta", CorruptionKind.UNDECODABLE, None, None, str(exc)))
    if version != SCHEMA_VERSION:
        detail = f"schema version {version}, expected {SCHEMA_VERSION}"
        found.append(Corruption("meta", CorruptionKind.SCHEMA, None, None, detail))
    return VerifyReport(entities, events, snapshots, dedupe_entries, tuple(found))


def _verify_events(
    txn: lmdb.Transaction[bytes], dbs: Databases, codec: ValueCodec, found: list[Corruption]
) -> tuple[int, int]:
    events = 0

    def entries() -> Iterator[tuple[str, int, StoredEvent | CorruptValueError]]:
        nonlocal events
        for key, raw in txn.cursor(db=dbs.events):
            try:
                entity_id, seq = split_seq_key("events", key)
            except CorruptValueError as exc:
                found.append(Corruption("events", CorruptionKind.BAD_KEY, None, None, str(exc)))
                continue
            events += 1
            try:
                yield entity_id, seq, decode_event(codec, entity_id, key, raw)
            except CorruptValueError as exc:
                yield entity_id, seq, exc

    entities = 0
    versioned = _has_heads(txn, dbs)
    # Streams: one entity's events at a time, never the whole log in memory.
    for entity_id, group in itertools.groupby(entries(), key=lambda entry: entry[0]):
        entities += 1
        tail = _Tail(group)
        found.extend(verify_chain(entity_id, tail))
        if versioned and isinstance(tail.last, StoredEvent):
            found.extend(_head_problems(txn, dbs, entity_id, tail.last))
    found.extend(check_heads_lmdb(txn, dbs, missing_only=True))
    return entities, events


class _Tail:
    """One entity's (seq, event or decode error) pairs, remembering the last one given."""

    def __init__(self, group: Iterator[tuple[str, int, StoredEvent | CorruptValueError]]) -> None:
        self._group = group
        self.last: StoredEvent | CorruptValueError | None = None
        self.seq = 0  # of the last one

    def __iter__(self) -> Iterator[tuple[int, StoredEvent | CorruptValueError]]:
        for _, seq, item in self._group:
            self.last, self.seq = item, seq
            yield seq, item


def _has_heads(txn: lmdb.Transaction[bytes], dbs: Databases) -> bool:
    """Whether the store records heads (schema 3 and later; older ones are migrated at open)."""
    try:
        version = read_version(txn, dbs)
    except StoreError:
        return False
    return version is not None and version >= 3


def _head_problems(
    txn: lmdb.Transaction[bytes], dbs: Databases, entity_id: str, last: StoredEvent
) -> list[Corruption]:
    """The entity's last event against the head recorded when it was appended."""
    raw = txn.get(head_key(entity_id.encode() + b"\x00"), db=dbs.meta)
    if raw is None:
        detail = f"events up to {last.seq} but no recorded head"
        return [Corruption("meta", CorruptionKind.HEAD_MISMATCH, entity_id, last.seq, detail)]
    try:
        seq, checksum = unpack_head(raw)
    except CorruptValueError as exc:
        return [Corruption("meta", CorruptionKind.UNDECODABLE, entity_id, None, str(exc))]
    if seq > last.seq:
        detail = f"events {last.seq + 1}..{seq} are missing off the end (the head is {seq})"
        return [Corruption("events", CorruptionKind.TRUNCATED, entity_id, last.seq + 1, detail)]
    if seq < last.seq:
        detail = f"events {seq + 1}..{last.seq} are past the recorded head {seq}"
        return [Corruption("events", CorruptionKind.HEAD_MISMATCH, entity_id, seq + 1, detail)]
    if checksum != last.checksum:
        detail = f"event {seq} is not the event recorded as the head"
        return [Corruption("events", CorruptionKind.HEAD_MISMATCH, entity_id, seq, detail)]
    return []


def check_heads_lmdb(
    txn: lmdb.Transaction[bytes], dbs: Databases, missing_only: bool = False
) -> list[Corruption]:
    """Every recorded head against its entity's last event (a seek each); `missing_only`:
    only heads whose entity has no event at all."""
    found: list[Corruption] = []
    events = txn.cursor(db=dbs.events)
    cursor = txn.cursor(db=dbs.meta)
    present = cursor.set_range(HEAD_PREFIX)
    while present and cursor.key().startswith(HEAD_PREFIX):
        prefix = cursor.key()[len(HEAD_PREFIX) :]
        entity_id = prefix[:-1].decode("utf-8", "replace")
        try:
            seq = unpack_head(cursor.value())[0]
        except CorruptValueError as exc:
            found.append(Corruption("meta", CorruptionKind.UNDECODABLE, entity_id, None, str(exc)))
            present = cursor.next()
            continue
        after = prefix[:-1] + b"\x01"
        last = events.prev() if events.set_range(after) else events.last()
        key = events.key() if last else b""
        if not (last and key.startswith(prefix) and len(key) == len(prefix) + SEQ_BYTES):
            detail = f"the recorded head is event {seq} but the entity has no events"
            found.append(Corruption("events", CorruptionKind.TRUNCATED, entity_id, 1, detail))
        elif not missing_only:
            stored = int.from_bytes(key[-SEQ_BYTES:], "big")
            if stored < seq:
                detail = f"events {stored + 1}..{seq} are missing off the end (the head is {seq})"
                found.append(
                    Corruption("events", CorruptionKind.TRUNCATED, entity_id, stored + 1, detail)
                )
            elif stored > seq:
                detail = f"events {seq + 1}..{stored} are past the recorded head {seq}"
                found.append(
                    Corruption("events", CorruptionKind.HEAD_MISMATCH, entity_id, seq + 1, detail)
                )
        present = cursor.next()
    return found


def check_entity_lmdb(
    txn: lmdb.Transaction[bytes],
    dbs: Databases,
    codec: ValueCodec,
    entity_id: str,
    prefix: bytes,
) -> EntityCheck:
    """One entity as it loads: every event against the chain, the last against the recorded
    head, the newest snapshot against its event (and its state against its digest). Streams:
    one event at a time, never the whole log in memory."""

    def entries() -> Iterator[tuple[str, int, StoredEvent | CorruptValueError]]:
        cursor = txn.cursor(db=dbs.events)
        present = cursor.set_range(prefix)
        while present:
            key = cursor.key()
            if not key.startswith(prefix) or len(key) != len(prefix) + SEQ_BYTES:
                return
            seq = int.from_bytes(key[-SEQ_BYTES:], "big")
            try:
                yield entity_id, seq, decode_event(codec, entity_id, key, cursor.value())
            except CorruptValueError as exc:
                yield entity_id, seq, exc
            present = cursor.next()

    tail = _Tail(entries())
    found = verify_chain(entity_id, tail)
    last = tail.last
    if isinstance(last, StoredEvent):
        found.extend(_head_problems(txn, dbs, entity_id, last))
    elif last is None and txn.get(head_key(prefix), db=dbs.meta) is not None:
        detail = "a head is recorded but the entity has no events"
        found.append(Corruption("events", CorruptionKind.TRUNCATED, entity_id, 1, detail))
    snapshots = txn.cursor(db=dbs.snapshots)
    after = prefix[:-1] + b"\x01"
    newest = snapshots.prev() if snapshots.set_range(after) else snapshots.last()
    if newest and snapshots.key().startswith(prefix):
        key = snapshots.key()
        seq = int.from_bytes(key[-SEQ_BYTES:], "big")
        try:
            snapshot = decode_snapshot(codec, entity_id, key, snapshots.value())
            raw = txn.get(key, db=dbs.events)  # the event it follows: same key layout
            event = None if raw is None else decode_event(codec, entity_id, key, raw)
        except CorruptValueError as exc:
            kind = CorruptionKind.UNDECODABLE
            found.append(Corruption("snapshots", kind, entity_id, seq, str(exc)))
        else:
            problem = snapshot_mismatch(snapshot, event)
            if problem is not None:
                kind = CorruptionKind.SNAPSHOT_MISMATCH
                found.append(Corruption("snapshots", kind, entity_id, seq, problem))
    if isinstance(last, StoredEvent):
        return EntityCheck(last.seq, last.timestamp_ms, tuple(found))
    return EntityCheck(tail.seq, 0, tuple(found))


def _verify_snapshots(
    txn: lmdb.Transaction[bytes], dbs: Databases, codec: ValueCodec, found: list[Corruption]
) -> int:
    snapshots = 0
    for key, raw in txn.cursor(db=dbs.snapshots):
        snapshots += 1
        try:
            entity_id, seq = split_seq_key("snapshots", key)
        except CorruptValueError as exc:
            found.append(Corruption("snapshots", CorruptionKind.BAD_KEY, None, None, str(exc)))
            continue
        try:
            snapshot = decode_snapshot(codec, entity_id, key, raw)
        except CorruptValueError as exc:
            kind = CorruptionKind.UNDECODABLE
            found.append(Corruption("snapshots", kind, entity_id, seq, str(exc)))
            continue
        event_raw = txn.get(key, db=dbs.events)  # same key layout as the event at that seq
        try:
            event = None if event_raw is None else decode_event(codec, entity_id, key, event_raw)
        except CorruptValueError:
            continue  # reported against the event itself
        problem = snapshot_mismatch(snapshot, event)
        if problem is not None:
            kind = CorruptionKind.SNAPSHOT_MISMATCH
            found.append(Corruption("snapshots", kind, entity_id, seq, problem))
    return snapshots


def _verify_dedupe(
    txn: lmdb.Transaction[bytes], dbs: Databases, codec: ValueCodec, found: list[Corruption]
) -> int:
    entries = 0
    for key, raw in txn.cursor(db=dbs.dedupe):
        entries += 1
        try:
            unpack_dedupe(key, decode_value(codec, "dedupe", key, raw))
        except CorruptValueError as exc:
            found.append(Corruption("dedupe", CorruptionKind.UNDECODABLE, None, None, str(exc)))
    for key in txn.cursor(db=dbs.dedupe_expiry).iternext(values=False):
        if len(key) < 9:
            detail = f"malformed key {key!r}"
            found.append(Corruption("dedupe_expiry", CorruptionKind.BAD_KEY, None, None, detail))
    return entries
