"""Integrity walk of an LMDB store: every chain, snapshot, dedupe entry and the schema stamp."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import lmdb

from hub.store.chain import snapshot_mismatch, verify_chain
from hub.store.codec import ValueCodec
from hub.store.errors import CorruptValueError, StoreError
from hub.store.layout import (
    decode_event,
    decode_snapshot,
    decode_value,
    split_seq_key,
    unpack_dedupe,
)
from hub.store.records import Corruption, CorruptionKind, StoredEvent, VerifyReport
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
    # Streams: one entity's events at a time, never the whole log in memory.
    for entity_id, group in itertools.groupby(entries(), key=lambda entry: entry[0]):
        entities += 1
        found.extend(verify_chain(entity_id, ((seq, item) for _, seq, item in group)))
    return entities, events


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
