"""The `CheckpointStore` contract shared by `LmdbStore` and its in-memory twin `MemoryStore`."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from types import TracebackType
from typing import Protocol, Self

from hub.store.records import (
    DedupeEntry,
    EntityCheck,
    NewEvent,
    NewSnapshot,
    Snapshot,
    StoredEvent,
    VerifyReport,
)

Clock = Callable[[], int]
"""Milliseconds since the epoch; injected into stores so tests control time."""

DEFAULT_SNAPSHOTS_KEPT = 3
DEFAULT_DEDUPE_RETENTION_MS = 7 * 24 * 60 * 60 * 1000


def system_clock_ms() -> int:
    """The wall clock in milliseconds (the default `Clock`)."""
    return time.time_ns() // 1_000_000


class CheckpointStore(Protocol):
    """An entity event log with chained checksums, snapshots and a message dedupe table."""

    # Writes are atomic (and, for LmdbStore, durable) when they return; reads see only
    # committed data.

    def append_batch(
        self,
        events: Sequence[NewEvent],
        dedupe: Sequence[DedupeEntry] = (),
        snapshots: Sequence[NewSnapshot] = (),
    ) -> list[StoredEvent]:
        """Append events (of any entities, in order), dedupe entries and snapshots in one
        commit.

        Per entity, seqs continue gap-free from the last one and timestamps must not go
        backwards. A snapshot is of its entity's state after that entity's last event in
        this batch (`SnapshotMismatchError` otherwise): a snapshot taken with the batch that
        made it costs no commit of its own. All or nothing: on any error nothing of the
        batch is stored.
        """
        ...

    def last_seq(self, entity_id: str) -> int:
        """The seq of the entity's last event, 0 if it has none."""
        ...

    def events(
        self, entity_id: str, after_seq: int = 0, until_seq: int | None = None
    ) -> Iterator[StoredEvent]:
        """The entity's events with `after_seq < seq <= until_seq`, in seq order."""
        ...

    def history(
        self, entity_id: str, since_ms: int | None = None, until_ms: int | None = None
    ) -> list[StoredEvent]:
        """The entity's events with `since_ms <= timestamp_ms <= until_ms` (both optional)."""
        ...

    def seq_at_time(self, entity_id: str, timestamp_ms: int) -> int:
        """The seq of the entity's last event at or before `timestamp_ms`, 0 if none."""
        ...

    def save_snapshot(self, snapshot: Snapshot) -> None:
        """Store a snapshot (it must match the event at its seq), keeping the newest K."""
        ...

    def latest_snapshot(
        self, entity_id: str, at_or_before_seq: int | None = None
    ) -> Snapshot | None:
        """The entity's newest kept snapshot, optionally the newest at or before a seq."""
        ...

    def redact(self, rewrites: Mapping[str, Callable[[bytes], bytes | None]]) -> dict[str, int]:
        """Rewrite the named entities' event bodies in one commit (erasure), chain intact.

        `rewrites[entity_id](body)` is the new body (None: a tombstone, stored empty; the
        same bytes: unchanged); it must be pure. A rewritten event keeps seq, timestamp and
        checksum, and records its original body digest and the rewrite time, so `verify()`
        still checks the chain (and reports inconsistent redaction records). The snapshots
        of every entity with a rewritten event are dropped. Returns rewrites per entity.
        """
        ...

    def drop_snapshots(self, entity_id: str) -> int:
        """Delete every snapshot of the entity; return how many."""
        ...

    def dedupe_get(self, message_id: str) -> bytes | None:
        """The recorded outcome of a message, None if unknown or older than the retention."""
        ...

    def dedupe_get_many(self, message_ids: Sequence[str]) -> list[bytes | None]:
        """`dedupe_get` of each id, read at one moment (one transaction where it matters)."""
        ...

    def dedupe_prune(self) -> int:
        """Delete dedupe entries older than the retention window; return how many."""
        ...

    def dedupe_purge(
        self, containing: bytes, confirm: Callable[[bytes], bool] | None = None
    ) -> int:
        """Delete every dedupe entry whose outcome bytes contain `containing` (and, given
        `confirm`, for which `confirm(outcome)` holds); return how many."""
        ...

    def entity_ids(self) -> Iterator[str]:
        """Every entity with at least one event, in UTF-8 byte order."""
        ...

    def verify(self) -> VerifyReport:
        """Walk every chain, snapshot and dedupe entry and report exactly what is damaged."""
        ...

    def check_entity(self, entity_id: str) -> EntityCheck:
        """One entity checked as it loads (its chain, head and newest snapshot), and its last
        event's seq and time (0 for an entity with no events)."""
        ...

    def close(self) -> None:
        """Release the store; later calls raise `StoreClosedError`."""
        ...

    def __enter__(self) -> Self: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...
