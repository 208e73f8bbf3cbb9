"""The schema migrations this code ships, each registered under the version it upgrades from."""

from __future__ import annotations

from typing import TYPE_CHECKING

from hub.store.chain import GENESIS_CHECKSUM, checksum_of_digest, legacy_event_checksum
from hub.store.errors import CorruptValueError, SchemaVersionError
from hub.store.layout import (
    SEQ_BYTES,
    decode_event,
    decode_snapshot,
    head_key,
    pack_entry,
    pack_head,
    split_seq_key,
)

if TYPE_CHECKING:
    from hub.store.schema import MigrationContext

_CHUNK = 1024  # event rewrites buffered before they are put (never while a cursor walks)
_SHOWN = 10  # problems named in the refusal


def chain_over_body_digests(context: MigrationContext) -> None:
    """Version 1 -> 2: re-chain every event over sha256(body) instead of the body.

    Every chain is first checked under the version-1 formula (seqs gap-free from 1,
    checksums, timestamp order) and every snapshot against its event; any break refuses the
    migration with a `SchemaVersionError` naming it, and since all of this runs in the one
    opening transaction, the store is left exactly as it was. Snapshots get the new checksum
    of the event they follow.
    """
    txn, dbs, codec = context.txn, context.dbs, context.codec
    problems: list[str] = []
    wanted = set(txn.cursor(db=dbs.snapshots).iternext(values=False))
    new_checksums: dict[bytes, tuple[bytes, bytes]] = {}  # snapshot key -> (old, new)

    entity: str | None = None
    old_previous = new_previous = GENESIS_CHECKSUM
    previous_ms = expected = 0
    prefix = b""
    cursor = txn.cursor(db=dbs.events)
    found = cursor.first()
    while found:
        rewrites: list[tuple[bytes, bytes]] = []
        while found and len(rewrites) < _CHUNK:
            key, raw = cursor.item()
            found = cursor.next()
            try:
                entity_id, seq = split_seq_key("events", key)
                event = decode_event(codec, entity_id, key, raw)
            except CorruptValueError as exc:
                problems.append(str(exc))
                continue
            if entity_id != entity:
                entity, prefix = entity_id, key[:-SEQ_BYTES]
                old_previous = new_previous = GENESIS_CHECKSUM
                previous_ms, expected = event.timestamp_ms, 1
            where = f"entity {entity_id!r} seq {seq}"
            if seq != expected:
                problems.append(f"{where}: events {expected}..{seq - 1} are missing")
            if event.redacted:
                problems.append(f"{where}: a redaction record in a version-1 store")
            old = legacy_event_checksum(old_previous, prefix, seq, event.timestamp_ms, event.body)
            if seq == expected and old != event.checksum:
                problems.append(f"{where}: checksum does not match the version-1 chain")
            if event.timestamp_ms < previous_ms:
                problems.append(f"{where}: timestamp {event.timestamp_ms} < {previous_ms}")
            new = checksum_of_digest(
                new_previous, prefix, seq, event.timestamp_ms, event.body_digest
            )
            if key in wanted:
                new_checksums[key] = (event.checksum, new)
            rewrites.append((key, codec.encode(pack_entry(event.timestamp_ms, event.body, new))))
            old_previous, new_previous = event.checksum, new
            previous_ms, expected = event.timestamp_ms, seq + 1
        if problems:
            break  # refused anyway: stop walking
        resume = cursor.key() if found else None
        for key, value in rewrites:
            txn.put(key, value, db=dbs.events)
        found = resume is not None and cursor.set_range(resume)

    if not problems:
        for key, stored in list(txn.cursor(db=dbs.snapshots)):
            try:
                entity_id, seq = split_seq_key("snapshots", key)
                snapshot = decode_snapshot(codec, entity_id, key, stored)
            except CorruptValueError as exc:
                problems.append(str(exc))
                continue
            checksums = new_checksums.get(key)
            if checksums is None or checksums[0] != snapshot.checksum:
                problems.append(
                    f"snapshot of entity {entity_id!r} at seq {seq} does not match its event"
                )
                continue
            value = pack_entry(snapshot.timestamp_ms, snapshot.state, checksums[1])
            txn.put(key, codec.encode(value), db=dbs.snapshots)

    if problems:
        shown = "; ".join(problems[:_SHOWN])
        more = f" (and {len(problems) - _SHOWN} more)" if len(problems) > _SHOWN else ""
        raise SchemaVersionError(
            f"checkpoint store at {context.path} cannot be migrated from schema version 1 to 2: "
            f"its chains do not verify: {shown}{more}. Nothing was changed; restore the store "
            "from a backup or repair it with a version-1 build first"
        )


def record_heads(context: MigrationContext) -> None:
    """Version 2 -> 3: record every entity's head (last seq and checksum) in `meta`, as every
    append does from now on, so events lost off the end of a chain are noticed."""
    txn, dbs, codec = context.txn, context.dbs, context.codec
    heads: list[tuple[bytes, bytes]] = []
    cursor = txn.cursor(db=dbs.events)
    found = cursor.last()
    while found:
        key = cursor.key()
        prefix = key[:-SEQ_BYTES]
        try:
            entity_id, _ = split_seq_key("events", key)
            event = decode_event(codec, entity_id, key, cursor.value())
        except CorruptValueError as exc:
            raise SchemaVersionError(
                f"checkpoint store at {context.path} cannot be migrated from schema version 2 "
                f"to 3: {exc}. Nothing was changed; `chitty audit verify` names the damage"
            ) from exc
        heads.append((head_key(prefix), pack_head(event.seq, event.checksum)))
        found = cursor.set_range(prefix) and cursor.prev()  # the previous entity's last event
    for key, value in heads:
        txn.put(key, value, db=dbs.meta)
