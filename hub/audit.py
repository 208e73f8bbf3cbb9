"""The audit trail: who changed what when (from the event log), and a verify of everything stored.

`audit_log` decodes an entity's event bodies (see `hub.replay.encode_event`: the applied
`SyncMessage` in wire form, plus what it changed); the principal is the message's
`source.chittyId`. Bodies are read as plain msgpack, not validated as messages, so redacted
(pseudonymized) bodies and tombstones still list. `audit_verify` walks the event store's
chains, recorded heads, snapshots and dedupe table, and the catalog's rows against the
entities' events (a row with no events, one ahead of the store, one that says other than the
events do), and names every break.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lmdb
import msgpack

from hub.domains import SyncDomain
from hub.entity import view
from hub.replay import EntityReplayer
from hub.store.codec import IdentityCodec, ValueCodec
from hub.store.errors import StoreError
from hub.store.lmdb_store import LmdbStore
from hub.store.protocol import CheckpointStore
from hub.store.recovery import state_at


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One event of an entity's log as the audit trail shows it."""

    seq: int
    timestamp_ms: int
    principal: str | None  # the writer's ChittyID (None: tombstone or undecodable body)
    operation: str | None  # create / update / delete (the message's), else the event kind
    changed: tuple[str, ...]  # the fields the event changed
    redacted: bool
    note: str = ""  # why principal/operation are missing, if they are


def audit_log(store: CheckpointStore, entity_id: str) -> list[AuditEntry]:
    """Every event of `entity_id`, oldest first: when, by whom, which operation, which fields."""
    return [
        _entry(event.seq, event.timestamp_ms, event.body, event.redacted)
        for event in store.events(entity_id)
    ]


def _entry(seq: int, timestamp_ms: int, body: bytes, redacted: bool) -> AuditEntry:
    if not body:
        return AuditEntry(seq, timestamp_ms, None, None, (), redacted, "body erased")
    try:
        decoded = msgpack.unpackb(body, raw=False, strict_map_key=False)
    except (ValueError, msgpack.UnpackException) as exc:
        return AuditEntry(seq, timestamp_ms, None, None, (), redacted, f"undecodable: {exc}")
    if not isinstance(decoded, Mapping) or not isinstance(decoded.get("message"), Mapping):
        return AuditEntry(seq, timestamp_ms, None, None, (), redacted, "not an entity event")
    message: Mapping[str, Any] = decoded["message"]
    source = message.get("source")
    principal = source.get("chittyId") if isinstance(source, Mapping) else None
    payload = message.get("payload")
    operation = payload.get("operation") if isinstance(payload, Mapping) else None
    if operation is None:
        operation = decoded.get("kind")
    changed = decoded.get("changed")
    fields = tuple(str(f) for f in changed) if isinstance(changed, list) else ()
    return AuditEntry(
        seq,
        timestamp_ms,
        principal if isinstance(principal, str) else None,
        operation if isinstance(operation, str) else None,
        fields,
        redacted,
    )


@dataclass(frozen=True, slots=True)
class AuditBreak:
    """One thing found wrong: where (`events`, `snapshots`, `dedupe`, `meta`, `catalog`...),
    which entity and seq when known, what kind of break, and the detail."""

    source: str
    entity_id: str | None
    seq: int | None
    kind: str
    detail: str


@dataclass(frozen=True, slots=True)
class AuditReport:
    """The result of `audit_verify`: what was walked and every break found."""

    entities: int
    events: int
    redacted_events: int
    catalog_rows: int
    breaks: tuple[AuditBreak, ...]

    @property
    def ok(self) -> bool:
        return not self.breaks


def audit_verify(
    store_path: str | os.PathLike[str],
    catalog_path: str | os.PathLike[str] | None = None,
    *,
    codec: ValueCodec | None = None,
) -> AuditReport:
    """Verify the event store at `store_path` (every chain, from the original digests of
    redacted events, every redaction record, snapshot and dedupe entry) and, if given, the
    catalog at `catalog_path` (every row decodes and belongs under its key); read-only."""
    codec = codec if codec is not None else IdentityCodec()
    breaks: list[AuditBreak] = []
    entities = events = redacted = rows = 0
    try:
        with LmdbStore(store_path, codec=codec, readonly=True) as store:
            report = store.verify()
            entities, events = report.entities, report.events
            for entity_id in store.entity_ids():
                redacted += sum(1 for event in store.events(entity_id) if event.redacted)
            breaks.extend(
                AuditBreak(c.database, c.entity_id, c.seq, c.kind.value, c.detail)
                for c in report.corruptions
            )
            if catalog_path is not None:
                damaged = {c.entity_id for c in report.corruptions}
                rows = _verify_catalog(Path(catalog_path), codec, breaks, store, damaged)
    except StoreError as exc:
        breaks.append(AuditBreak("store", None, None, "unreadable", str(exc)))
        if catalog_path is not None:
            rows = _verify_catalog(Path(catalog_path), codec, breaks, None)
    return AuditReport(entities, events, redacted, rows, tuple(breaks))


def _verify_catalog(
    path: Path,
    codec: ValueCodec,
    breaks: list[AuditBreak],
    store: LmdbStore | None,
    damaged: set[str | None] | None = None,
) -> int:
    """Every catalog row decodes and belongs under its key; with the store, each row against
    its entity's events (those of entities whose events are `damaged` are named already)."""
    if not (path / "data.mdb").is_file():
        breaks.append(AuditBreak("catalog", None, None, "unreadable", f"no catalog at {path}"))
        return 0
    rows = 0
    env = lmdb.open(str(path), max_dbs=4, readonly=True, lock=True)
    try:
        with env.begin() as txn:
            try:
                db = env.open_db(b"rows", txn=txn, create=False)
            except lmdb.NotFoundError:
                breaks.append(AuditBreak("catalog", None, None, "unreadable", "no rows database"))
                return 0
            for key, raw in txn.cursor(db=db):
                rows += 1
                problem, entity_id, row = _row_problem(key, raw, codec)
                if problem is not None:
                    kind, detail = problem
                    breaks.append(AuditBreak("catalog", entity_id, None, kind, detail))
                elif store is not None and row is not None and entity_id not in (damaged or ()):
                    breaks.extend(_row_against_events(row, store))
    finally:
        env.close()
    return rows


def _row_problem(
    key: bytes, raw: bytes, codec: ValueCodec
) -> tuple[tuple[str, str] | None, str | None, Mapping[str, Any] | None]:
    domain, sep, entity = key.decode("utf-8", "replace").partition("\x00")
    entity_id = entity if sep else None
    if not sep or domain not in {d.value for d in SyncDomain}:
        return ("bad_key", f"malformed row key {key!r}"), entity_id, None
    try:
        row = msgpack.unpackb(codec.decode(raw), raw=False)
    except (ValueError, msgpack.UnpackException) as exc:
        return ("undecodable", f"row {key!r}: {exc}"), entity_id, None
    if not isinstance(row, Mapping) or row.get("id") != entity or row.get("domain") != domain:
        return ("misplaced", f"row under {key!r} is not that entity's row"), entity_id, None
    return None, entity_id, row


def _row_against_events(row: Mapping[str, Any], store: LmdbStore) -> list[AuditBreak]:
    """A catalog row against the entity's events: there are some, as many as the row has
    seen, and replaying them to the row's seq gives the row's entity (never shown)."""
    entity_id, seq = str(row["id"]), row.get("seq")
    if not isinstance(seq, int) or seq < 1:
        return [AuditBreak("catalog", entity_id, None, "misplaced", f"row has seq {seq!r}")]
    last = store.last_seq(entity_id)
    if last == 0:
        detail = "the catalog lists it but the store holds no event of it"
        return [AuditBreak("catalog", entity_id, seq, "no_events", detail)]
    if last < seq:
        detail = f"the catalog has seen its event {seq}, the store's events end at {last}"
        return [AuditBreak("catalog", entity_id, seq, "ahead_of_store", detail)]
    try:
        state = state_at(store, entity_id, EntityReplayer(), seq=seq).state
    except (StoreError, ValueError):
        return []  # damaged events: named against the store itself
    if (
        state is None
        or state.domain.value != row.get("domain")
        or state.deleted != row.get("deleted")
        or _canonical(view(state)) != _canonical(row.get("entity"))
    ):
        detail = f"the row differs from what the entity's events say at seq {seq}"
        return [AuditBreak("catalog", entity_id, seq, "row_mismatch", detail)]
    return []


def _canonical(value: object) -> object:
    """`value` as msgpack gives it back, every list in a fixed order: a set field's elements
    keep the order of their ids, which an erasure's pseudonym may change in one and not the
    other; a changed element still differs."""
    plain = msgpack.unpackb(msgpack.packb(value, use_bin_type=True), raw=False)
    return _ordered(plain)


def _ordered(value: object) -> object:
    if isinstance(value, dict):
        return {key: _ordered(item) for key, item in value.items()}
    if isinstance(value, list):
        items = [_ordered(item) for item in value]
        return sorted(items, key=lambda item: msgpack.packb(item, use_bin_type=True))
    return value
