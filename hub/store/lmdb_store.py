"""`LmdbStore`: the durable `CheckpointStore` on one LMDB environment (a directory)."""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Self

import lmdb

from hub.store.chain import (
    GENESIS,
    Head,
    PlannedBatch,
    plan_batch,
    planned_snapshot,
    purge_needle,
    rewritten_event,
    snapshot_mismatch,
)
from hub.store.codec import IdentityCodec, ValueCodec
from hub.store.errors import CorruptValueError, SnapshotMismatchError
from hub.store.head_cache import HeadCache
from hub.store.layout import (
    MAX_SEQ,
    MAX_TIMESTAMP_MS,
    MIN_TIMESTAMP_MS,
    SEQ_BYTES,
    check_seq,
    decode_event,
    decode_snapshot,
    decode_value,
    entity_id_of_prefix,
    entity_key_prefix,
    entry_packer,
    expiry_key,
    head_key,
    message_key,
    pack_dedupe,
    pack_event,
    pack_head,
    pack_snapshot,
    split_expiry_key,
    unpack_dedupe,
)
from hub.store.lmdb_env import LmdbEnvironment
from hub.store.lmdb_verify import check_entity_lmdb, check_heads_lmdb, verify_lmdb
from hub.store.protocol import (
    DEFAULT_DEDUPE_RETENTION_MS,
    DEFAULT_SNAPSHOTS_KEPT,
    Clock,
    system_clock_ms,
)
from hub.store.records import (
    Corruption,
    DedupeEntry,
    EntityCheck,
    NewEvent,
    NewSnapshot,
    Snapshot,
    StoredEvent,
    VerifyReport,
)
from hub.store.rekey import recover_interrupted_rekey
from hub.store.schema import DATABASE_NAMES, MIGRATIONS, Databases, Migration, prepare

# Layout: `events` and `snapshots` are keyed by entity id + NUL + 8-byte big-endian seq, so one
# entity's records are one ordered key range; `dedupe` maps message id -> outcome and its
# expiry index `dedupe_expiry` is keyed by recorded time + message id; `meta` holds the schema
# version and codec check. Values are msgpack through the `ValueCodec`; commits are synced.
_READ_CHUNK = 1024  # records per read transaction when streaming: no long-lived readers


def _after_prefix(prefix: bytes) -> bytes:
    """The smallest key above every key starting with `prefix` (which ends in NUL)."""
    return prefix[:-1] + b"\x01"


class LmdbStore:
    """The durable checkpoint store: group-committed, checksum-chained, crash-safe."""

    # One instance per environment per process (LMDB forbids opening it twice in a process);
    # other processes may open it too, e.g. `readonly=True` readers. Safe to share between
    # threads.

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        now_ms: Clock = system_clock_ms,
        snapshots_kept: int = DEFAULT_SNAPSHOTS_KEPT,
        dedupe_retention_ms: int = DEFAULT_DEDUPE_RETENTION_MS,
        codec: ValueCodec | None = None,
        map_size: int = 1 << 30,
        max_map_size: int = 1 << 40,
        readonly: bool = False,
        max_readers: int = 126,
        migrations: Mapping[int, Migration] = MIGRATIONS,
        head_cache_size: int = 100_000,
    ) -> None:
        if snapshots_kept < 1:
            raise ValueError(f"snapshots_kept must be >= 1, got {snapshots_kept}")
        if dedupe_retention_ms < 1:
            raise ValueError(f"dedupe_retention_ms must be >= 1, got {dedupe_retention_ms}")
        self._now_ms = now_ms
        self._snapshots_kept = snapshots_kept
        self._retention_ms = dedupe_retention_ms
        self._codec: ValueCodec = codec if codec is not None else IdentityCodec()
        # Chain heads of recently appended entities; 0 disables (one cursor seek per entity
        # per batch instead: ~20% fewer appends/s with 100 entities per batch, see BENCHMARKS).
        self._heads = HeadCache(head_cache_size)
        if not readonly:
            recover_interrupted_rekey(path)  # else a fresh empty store would take its place
        self._env = LmdbEnvironment(
            str(Path(path)),
            map_size=map_size,
            max_map_size=max_map_size,
            readonly=readonly,
            max_readers=max_readers,
        )
        try:
            self._dbs = self._open(migrations)
        except BaseException:
            self._env.close()
            raise

    def _open(self, migrations: Mapping[int, Migration]) -> Databases:
        def setup(txn: lmdb.Transaction[bytes], handles: list[lmdb._Database]) -> None:
            prepare(
                txn,
                Databases(*handles),
                self._codec,
                path=self._env.path,
                readonly=self._env.readonly,
                migrations=migrations,
            )

        return Databases(*self._env.open_databases(DATABASE_NAMES, setup))

    @property
    def path(self) -> str:
        """The environment directory."""
        return self._env.path

    @property
    def map_size(self) -> int:
        """The current size of the memory map in bytes (doubles whenever it is full)."""
        return self._env.map_size

    def close(self) -> None:
        """Close the environment; idempotent."""
        self._env.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- event log -------------------------------------------------------------------------

    def append_batch(
        self,
        events: Sequence[NewEvent],
        dedupe: Sequence[DedupeEntry] = (),
        snapshots: Sequence[NewSnapshot] = (),
    ) -> list[StoredEvent]:
        """Append `events`, `dedupe` entries and `snapshots` in one durable commit (group
        commit)."""
        if not events and not dedupe and not snapshots:
            self._env.check_open()
            return []
        dedupe_keys = [message_key(entry.message_id) for entry in dedupe]
        for entry in dedupe:
            if type(entry.outcome) is not bytes:
                raise TypeError(f"dedupe outcome must be bytes, got {type(entry.outcome)}")
        recorded_ms = self._now_ms() if dedupe else 0
        if recorded_ms < 0:
            raise ValueError(f"the clock returned a negative time: {recorded_ms}")
        # Skipping the identity codec's call is worth ~5% of append throughput.
        encode = None if isinstance(self._codec, IdentityCodec) else self._codec.encode
        dbs = self._dbs

        def work(txn: lmdb.Transaction[bytes]) -> tuple[int, PlannedBatch]:
            cursor = txn.cursor(db=dbs.events)
            txn_id = txn.id()

            def head_of(entity_id: str, prefix: bytes) -> Head:
                return self._head(cursor, entity_id, prefix)

            plan = plan_batch(events, head_of, self._heads.view(txn_id))
            prefixes = plan.prefixes
            pack = entry_packer()  # per call: Packer is not thread-safe
            values = [pack((e.timestamp_ms, e.body, e.checksum)) for e in plan.events]
            if encode is not None:
                values = [encode(value) for value in values]
            cursor.putmulti(
                [
                    (prefixes[event.entity_id] + event.seq.to_bytes(SEQ_BYTES, "big"), value)
                    for event, value in zip(plan.events, values, strict=True)
                ]
            )
            meta = dbs.meta
            for entity_id, head in plan.heads.items():  # what a truncated chain is noticed by
                txn.put(head_key(prefixes[entity_id]), pack_head(head.seq, head.checksum), db=meta)
            for key, entry in zip(dedupe_keys, dedupe, strict=True):
                value = pack_dedupe(recorded_ms, entry.outcome)
                txn.put(key, value if encode is None else encode(value), db=dbs.dedupe)
                txn.put(expiry_key(recorded_ms, key), b"", db=dbs.dedupe_expiry)
            for new in snapshots:
                self._put_snapshot(txn, planned_snapshot(new, plan.heads))
            return txn_id, plan

        def committed(result: tuple[int, PlannedBatch]) -> None:
            self._heads.appended(result[0], result[1].heads)

        return self._env.write(work, committed)[1].events

    def _head(self, cursor: lmdb.Cursor[bytes], entity_id: str, prefix: bytes) -> Head:
        """The entity's last event, found with one reverse seek (no separate index to keep)."""
        found = cursor.prev() if cursor.set_range(_after_prefix(prefix)) else cursor.last()
        if not found:
            return GENESIS
        key = cursor.key()
        if len(key) != len(prefix) + SEQ_BYTES or not key.startswith(prefix):
            return GENESIS
        return decode_event(self._codec, entity_id, key, cursor.value())

    def last_seq(self, entity_id: str) -> int:
        """The seq of the entity's last event, 0 if it has none."""
        prefix = entity_key_prefix(entity_id)
        return self._env.read(lambda txn: self._last_seq_in(txn, prefix))

    def _last_seq_in(self, txn: lmdb.Transaction[bytes], prefix: bytes) -> int:
        cursor = txn.cursor(db=self._dbs.events)
        found = cursor.prev() if cursor.set_range(_after_prefix(prefix)) else cursor.last()
        if not found:
            return 0
        key = cursor.key()
        if len(key) != len(prefix) + SEQ_BYTES or not key.startswith(prefix):
            return 0
        return int.from_bytes(key[-SEQ_BYTES:], "big")

    def events(
        self, entity_id: str, after_seq: int = 0, until_seq: int | None = None
    ) -> Iterator[StoredEvent]:
        """The entity's events with `after_seq < seq <= until_seq`, read in short transactions."""
        prefix = entity_key_prefix(entity_id)
        check_seq(after_seq, "after_seq")
        if until_seq is not None:
            check_seq(until_seq, "until_seq")
        self._env.check_open()
        last = MAX_SEQ if until_seq is None else until_seq
        if after_seq >= last:
            return iter(())
        return self._iter_events(entity_id, prefix, after_seq, last)

    def _iter_events(
        self, entity_id: str, prefix: bytes, after_seq: int, until_seq: int
    ) -> Iterator[StoredEvent]:
        end = prefix + until_seq.to_bytes(SEQ_BYTES, "big")
        while after_seq < until_seq:
            start = prefix + (after_seq + 1).to_bytes(SEQ_BYTES, "big")

            def chunk(txn: lmdb.Transaction[bytes], start: bytes = start) -> list[StoredEvent]:
                cursor = txn.cursor(db=self._dbs.events)
                if not cursor.set_range(start):
                    return []
                out: list[StoredEvent] = []
                for key, raw in cursor.iternext():
                    if key > end or len(out) == _READ_CHUNK:
                        break
                    out.append(decode_event(self._codec, entity_id, key, raw))
                return out

            batch = self._env.read(chunk)
            yield from batch
            if len(batch) < _READ_CHUNK:
                return
            after_seq = batch[-1].seq

    def seq_at_time(self, entity_id: str, timestamp_ms: int) -> int:
        """The seq of the entity's last event at or before `timestamp_ms` (binary search)."""
        prefix = entity_key_prefix(entity_id)

        def work(txn: lmdb.Transaction[bytes]) -> int:
            def time_of(seq: int) -> int:
                key = prefix + seq.to_bytes(SEQ_BYTES, "big")
                raw = txn.get(key, db=self._dbs.events)
                if raw is None:
                    raise CorruptValueError(f"events: entity {entity_id!r} has no event {seq}")
                return decode_event(self._codec, entity_id, key, raw).timestamp_ms

            low, high = 0, self._last_seq_in(txn, prefix)
            if high and time_of(high) <= timestamp_ms:
                return high
            while low < high:  # invariant: time(low) <= t < time(high + 1)
                middle = (low + high + 1) // 2
                if time_of(middle) <= timestamp_ms:
                    low = middle
                else:
                    high = middle - 1
            return low

        return self._env.read(work)

    def history(
        self, entity_id: str, since_ms: int | None = None, until_ms: int | None = None
    ) -> list[StoredEvent]:
        """The entity's events with `since_ms <= timestamp_ms <= until_ms` (both optional)."""
        after = 0
        if since_ms is not None and since_ms > MIN_TIMESTAMP_MS:
            after = self.seq_at_time(entity_id, since_ms - 1)
        limit = MAX_TIMESTAMP_MS if until_ms is None else until_ms
        return list(
            itertools.takewhile(lambda e: e.timestamp_ms <= limit, self.events(entity_id, after))
        )

    # -- redaction -------------------------------------------------------------------------

    def redact(self, rewrites: Mapping[str, Callable[[bytes], bytes | None]]) -> dict[str, int]:
        """Rewrite the bodies of each named entity's events, all in one durable commit.

        `rewrites[entity_id](body)` gives the new body, None for a tombstone (stored as an
        empty body), or the same bytes to leave the event alone; it sees the current body
        (already redacted, if it was) and must be pure: a commit retried after the map grew
        calls it again. A rewritten event keeps its seq, timestamp and checksum and records
        the digest of the body as first appended and the time of the rewrite, so `verify()`
        still checks its chain. Each entity with a rewritten event loses its snapshots (they
        were built from the old bodies). Returns, per entity, how many events were rewritten.
        An undecodable event or a rewrite that raises aborts it all: nothing is changed.
        """
        prefixes = {entity_id: entity_key_prefix(entity_id) for entity_id in rewrites}
        now_ms = self._now_ms()
        codec = self._codec
        dbs = self._dbs

        def work(txn: lmdb.Transaction[bytes]) -> tuple[dict[str, int], int | None]:
            changed: dict[str, int] = {}
            for entity_id, rewrite in rewrites.items():
                prefix = prefixes[entity_id]
                updates: list[tuple[bytes, bytes]] = []
                cursor = txn.cursor(db=dbs.events)
                found = cursor.set_range(prefix)
                while found:
                    key, raw = cursor.item()
                    if not key.startswith(prefix):
                        break
                    event = decode_event(codec, entity_id, key, raw)
                    rewritten = rewritten_event(event, rewrite, now_ms)
                    if rewritten is not None:
                        updates.append((key, codec.encode(pack_event(rewritten))))
                    found = cursor.next()
                for key, value in updates:
                    txn.put(key, value, db=dbs.events)
                if updates:
                    changed[entity_id] = len(updates)
                    self._drop_snapshots_in(txn, prefix)
            return changed, txn.id() if changed else None

        def committed(result: tuple[dict[str, int], int | None]) -> None:
            if result[1] is not None:
                self._heads.committed_elsewhere(result[1])

        return self._env.write(work, committed)[0]

    def drop_snapshots(self, entity_id: str) -> int:
        """Delete every snapshot of the entity (say, built from bodies since redacted)."""
        prefix = entity_key_prefix(entity_id)

        def work(txn: lmdb.Transaction[bytes]) -> tuple[int, int | None]:
            dropped = self._drop_snapshots_in(txn, prefix)
            return dropped, txn.id() if dropped else None

        def committed(result: tuple[int, int | None]) -> None:
            if result[1] is not None:
                self._heads.committed_elsewhere(result[1])

        return self._env.write(work, committed)[0]

    def _drop_snapshots_in(self, txn: lmdb.Transaction[bytes], prefix: bytes) -> int:
        cursor = txn.cursor(db=self._dbs.snapshots)
        keys: list[bytes] = []
        found = cursor.set_range(prefix)
        while found and cursor.key().startswith(prefix):
            keys.append(cursor.key())
            found = cursor.next()
        for key in keys:
            txn.delete(key, db=self._dbs.snapshots)
        return len(keys)

    # -- snapshots -------------------------------------------------------------------------

    def save_snapshot(self, snapshot: Snapshot) -> None:
        """Store a snapshot that matches the event at its seq; keep the newest K per entity."""
        check_seq(snapshot.seq)
        if snapshot.seq == 0:
            raise SnapshotMismatchError("a snapshot follows an event: seq must be >= 1")
        if type(snapshot.state) is not bytes:
            raise TypeError(f"snapshot state must be bytes, got {type(snapshot.state)}")
        key = entity_key_prefix(snapshot.entity_id) + snapshot.seq.to_bytes(SEQ_BYTES, "big")

        def work(txn: lmdb.Transaction[bytes]) -> int:
            raw = txn.get(key, db=self._dbs.events)
            event = None if raw is None else decode_event(self._codec, snapshot.entity_id, key, raw)
            problem = snapshot_mismatch(snapshot, event)
            if problem is not None:
                raise SnapshotMismatchError(f"snapshot of {snapshot.entity_id!r}: {problem}")
            self._put_snapshot(txn, snapshot)
            return txn.id()

        self._env.write(work, self._heads.committed_elsewhere)

    def _put_snapshot(self, txn: lmdb.Transaction[bytes], snapshot: Snapshot) -> None:
        """Put a snapshot that matches its event; drop the entity's oldest beyond K."""
        prefix = entity_key_prefix(snapshot.entity_id)
        key = prefix + snapshot.seq.to_bytes(SEQ_BYTES, "big")
        value = self._codec.encode(
            pack_snapshot(snapshot.timestamp_ms, snapshot.state, snapshot.checksum)
        )
        txn.put(key, value, db=self._dbs.snapshots)
        cursor = txn.cursor(db=self._dbs.snapshots)
        found = cursor.prev() if cursor.set_range(_after_prefix(prefix)) else cursor.last()
        stale: list[bytes] = []
        kept = 0
        while found:
            old = cursor.key()
            if len(old) != len(key) or not old.startswith(prefix):
                break
            kept += 1
            if kept > self._snapshots_kept:
                stale.append(old)
            found = cursor.prev()
        for old in stale:
            txn.delete(old, db=self._dbs.snapshots)

    def latest_snapshot(
        self, entity_id: str, at_or_before_seq: int | None = None
    ) -> Snapshot | None:
        """The entity's newest kept snapshot, optionally the newest at or before a seq."""
        prefix = entity_key_prefix(entity_id)
        if at_or_before_seq is None or at_or_before_seq >= MAX_SEQ:
            seek = _after_prefix(prefix)
        else:
            check_seq(at_or_before_seq, "at_or_before_seq")
            seek = prefix + (at_or_before_seq + 1).to_bytes(SEQ_BYTES, "big")

        def work(txn: lmdb.Transaction[bytes]) -> Snapshot | None:
            cursor = txn.cursor(db=self._dbs.snapshots)
            found = cursor.prev() if cursor.set_range(seek) else cursor.last()
            if not found:
                return None
            key = cursor.key()
            if len(key) != len(prefix) + SEQ_BYTES or not key.startswith(prefix):
                return None
            return decode_snapshot(self._codec, entity_id, key, cursor.value())

        return self._env.read(work)

    # -- dedupe ----------------------------------------------------------------------------

    def dedupe_get(self, message_id: str) -> bytes | None:
        """The outcome recorded for a message, None if unknown or past the retention window."""
        return self.dedupe_get_many([message_id])[0]

    def dedupe_get_many(self, message_ids: Sequence[str]) -> list[bytes | None]:
        """`dedupe_get` of each id, in one read transaction."""
        keys = [message_key(m) for m in message_ids]
        found = self._env.read(lambda txn: [txn.get(k, db=self._dbs.dedupe) for k in keys])
        now = self._now_ms()
        outcomes: list[bytes | None] = []
        for key, raw in zip(keys, found, strict=True):
            if raw is None:
                outcomes.append(None)
                continue
            recorded_ms, outcome = unpack_dedupe(key, decode_value(self._codec, "dedupe", key, raw))
            outcomes.append(outcome if now - recorded_ms < self._retention_ms else None)
        return outcomes

    def dedupe_prune(self) -> int:
        """Delete dedupe entries past the retention window (walks the expiry index only)."""
        cutoff = self._now_ms() - self._retention_ms
        dbs = self._dbs

        def work(txn: lmdb.Transaction[bytes]) -> tuple[int, int | None]:
            cursor = txn.cursor(db=dbs.dedupe_expiry)
            expired: list[tuple[bytes, bytes]] = []
            for index_key in cursor.iternext(values=False):
                recorded_ms, key = split_expiry_key(index_key)
                if recorded_ms > cutoff:
                    break
                expired.append((index_key, key))
            removed = 0
            for index_key, key in expired:
                txn.delete(index_key, db=dbs.dedupe_expiry)
                raw = txn.get(key, db=dbs.dedupe)
                if raw is None:
                    continue
                current_ms, _ = unpack_dedupe(key, decode_value(self._codec, "dedupe", key, raw))
                if current_ms <= cutoff:  # else re-recorded later; a newer index entry exists
                    txn.delete(key, db=dbs.dedupe)
                    removed += 1
            # An empty commit does not use up a transaction id, so only report real writes.
            return removed, txn.id() if expired else None

        def committed(result: tuple[int, int | None]) -> None:
            if result[1] is not None:
                self._heads.committed_elsewhere(result[1])

        return self._env.write(work, committed)[0]

    def dedupe_purge(
        self, containing: bytes, confirm: Callable[[bytes], bool] | None = None
    ) -> int:
        """Delete every dedupe entry whose outcome contains `containing` (and passes
        `confirm`, if given); return how many."""
        needle = purge_needle(containing)
        dbs = self._dbs

        def work(txn: lmdb.Transaction[bytes]) -> tuple[int, int | None]:
            doomed: list[tuple[bytes, int]] = []
            for key, raw in txn.cursor(db=dbs.dedupe):
                recorded_ms, outcome = unpack_dedupe(
                    key, decode_value(self._codec, "dedupe", key, raw)
                )
                if needle in outcome and (confirm is None or confirm(outcome)):
                    doomed.append((key, recorded_ms))
            for key, recorded_ms in doomed:
                txn.delete(key, db=dbs.dedupe)
                txn.delete(expiry_key(recorded_ms, key), db=dbs.dedupe_expiry)
            return len(doomed), txn.id() if doomed else None

        def committed(result: tuple[int, int | None]) -> None:
            if result[1] is not None:
                self._heads.committed_elsewhere(result[1])

        return self._env.write(work, committed)[0]

    # -- whole-store scans -----------------------------------------------------------------

    def entity_ids(self) -> Iterator[str]:
        """Every entity with at least one event, in UTF-8 byte order."""
        self._env.check_open()
        return self._iter_entity_ids()

    def _iter_entity_ids(self) -> Iterator[str]:
        start: bytes | None = None
        while True:

            def chunk(txn: lmdb.Transaction[bytes], start: bytes | None = start) -> list[bytes]:
                cursor = txn.cursor(db=self._dbs.events)
                found = cursor.first() if start is None else cursor.set_range(start)
                out: list[bytes] = []
                while found and len(out) < _READ_CHUNK:
                    prefix = cursor.key()[:-SEQ_BYTES]
                    out.append(prefix)
                    found = cursor.set_range(_after_prefix(prefix))
                return out

            prefixes = self._env.read(chunk)
            for prefix in prefixes:
                yield entity_id_of_prefix("events", prefix)
            if len(prefixes) < _READ_CHUNK:
                return
            start = _after_prefix(prefixes[-1])

    def verify(self) -> VerifyReport:
        """Walk every chain, snapshot, recorded head and dedupe entry in one read transaction."""
        return self._env.read(lambda txn: verify_lmdb(txn, self._dbs, self._codec))

    def check_entity(self, entity_id: str) -> EntityCheck:
        """Check one entity as it loads: its chain, its recorded head, its newest snapshot."""
        prefix = entity_key_prefix(entity_id)
        return self._env.read(
            lambda txn: check_entity_lmdb(txn, self._dbs, self._codec, entity_id, prefix)
        )

    def check_heads(self) -> list[Corruption]:
        """Every recorded head against the entity's last event (one seek each; what a start
        checks: events cut off the end, or gone with their databases, are named)."""
        return self._env.read(lambda txn: check_heads_lmdb(txn, self._dbs))
