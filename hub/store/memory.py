"""`MemoryStore`: the in-memory twin of `LmdbStore`, same contract and rules, nothing on disk."""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Callable, Iterator, Mapping, Sequence
from types import TracebackType
from typing import Self

from hub.store.chain import (
    GENESIS,
    Head,
    plan_batch,
    planned_snapshot,
    purge_needle,
    rewritten_event,
    snapshot_mismatch,
    verify_chain,
)
from hub.store.errors import SnapshotMismatchError, StoreClosedError
from hub.store.layout import (
    MAX_SEQ,
    MAX_TIMESTAMP_MS,
    check_seq,
    entity_key_prefix,
    message_key,
)
from hub.store.protocol import (
    DEFAULT_DEDUPE_RETENTION_MS,
    DEFAULT_SNAPSHOTS_KEPT,
    Clock,
    system_clock_ms,
)
from hub.store.records import (
    Corruption,
    CorruptionKind,
    DedupeEntry,
    EntityCheck,
    NewEvent,
    NewSnapshot,
    Snapshot,
    StoredEvent,
    VerifyReport,
)


class MemoryStore:
    """A `CheckpointStore` held in dicts: for fast tests of the layers above the store."""

    def __init__(
        self,
        *,
        now_ms: Clock = system_clock_ms,
        snapshots_kept: int = DEFAULT_SNAPSHOTS_KEPT,
        dedupe_retention_ms: int = DEFAULT_DEDUPE_RETENTION_MS,
    ) -> None:
        if snapshots_kept < 1:
            raise ValueError(f"snapshots_kept must be >= 1, got {snapshots_kept}")
        if dedupe_retention_ms < 1:
            raise ValueError(f"dedupe_retention_ms must be >= 1, got {dedupe_retention_ms}")
        self._now_ms = now_ms
        self._snapshots_kept = snapshots_kept
        self._retention_ms = dedupe_retention_ms
        self._logs: dict[str, list[StoredEvent]] = {}
        self._snapshots: dict[str, list[Snapshot]] = {}  # per entity, ascending seq
        self._dedupe: dict[str, tuple[int, bytes]] = {}
        self._closed = False

    def close(self) -> None:
        """Mark the store closed; idempotent."""
        self._closed = True

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _check_open(self) -> None:
        if self._closed:
            raise StoreClosedError("memory checkpoint store is closed")

    def _log(self, entity_id: str) -> list[StoredEvent]:
        entity_key_prefix(entity_id)
        self._check_open()
        return self._logs.get(entity_id, [])

    # -- event log -------------------------------------------------------------------------

    def append_batch(
        self,
        events: Sequence[NewEvent],
        dedupe: Sequence[DedupeEntry] = (),
        snapshots: Sequence[NewSnapshot] = (),
    ) -> list[StoredEvent]:
        """Append `events`, `dedupe` entries and `snapshots` atomically (validated before any
        change)."""
        self._check_open()
        if not events and not dedupe and not snapshots:
            return []
        for entry in dedupe:
            message_key(entry.message_id)
            if type(entry.outcome) is not bytes:
                raise TypeError(f"dedupe outcome must be bytes, got {type(entry.outcome)}")
        recorded_ms = self._now_ms() if dedupe else 0
        if recorded_ms < 0:
            raise ValueError(f"the clock returned a negative time: {recorded_ms}")

        def head_of(entity_id: str, prefix: bytes) -> Head:
            log = self._logs.get(entity_id)
            return log[-1] if log else GENESIS

        plan = plan_batch(events, head_of)
        planned = [planned_snapshot(new, plan.heads) for new in snapshots]
        for event in plan.events:
            self._logs.setdefault(event.entity_id, []).append(event)
        for entry in dedupe:
            self._dedupe[entry.message_id] = (recorded_ms, entry.outcome)
        for snapshot in planned:
            self._keep(snapshot)
        return plan.events

    def last_seq(self, entity_id: str) -> int:
        """The seq of the entity's last event, 0 if it has none."""
        return len(self._log(entity_id))

    def events(
        self, entity_id: str, after_seq: int = 0, until_seq: int | None = None
    ) -> Iterator[StoredEvent]:
        """The entity's events with `after_seq < seq <= until_seq`."""
        log = self._log(entity_id)
        check_seq(after_seq, "after_seq")
        if until_seq is not None:
            check_seq(until_seq, "until_seq")
        return iter(log[after_seq : MAX_SEQ if until_seq is None else until_seq])

    def seq_at_time(self, entity_id: str, timestamp_ms: int) -> int:
        """The seq of the entity's last event at or before `timestamp_ms`."""
        return bisect.bisect_right(self._log(entity_id), timestamp_ms, key=_timestamp)

    def history(
        self, entity_id: str, since_ms: int | None = None, until_ms: int | None = None
    ) -> list[StoredEvent]:
        """The entity's events with `since_ms <= timestamp_ms <= until_ms` (both optional)."""
        log = self._log(entity_id)
        low = 0 if since_ms is None else bisect.bisect_left(log, since_ms, key=_timestamp)
        high = bisect.bisect_right(
            log, MAX_TIMESTAMP_MS if until_ms is None else until_ms, key=_timestamp
        )
        return log[low:high]

    # -- redaction -------------------------------------------------------------------------

    def redact(self, rewrites: Mapping[str, Callable[[bytes], bytes | None]]) -> dict[str, int]:
        """Rewrite the bodies of each named entity's events atomically (see `LmdbStore`)."""
        for entity_id in rewrites:
            entity_key_prefix(entity_id)
        self._check_open()
        now_ms = self._now_ms()
        planned: dict[str, dict[int, StoredEvent]] = {}
        for entity_id, rewrite in rewrites.items():  # every rewrite runs before any change
            for event in self._logs.get(entity_id, []):
                rewritten = rewritten_event(event, rewrite, now_ms)
                if rewritten is not None:
                    planned.setdefault(entity_id, {})[event.seq] = rewritten
        for entity_id, updates in planned.items():
            log = self._logs[entity_id]
            for seq, event in updates.items():
                log[seq - 1] = event
            self._snapshots.pop(entity_id, None)
        return {entity_id: len(updates) for entity_id, updates in planned.items()}

    def drop_snapshots(self, entity_id: str) -> int:
        """Delete every snapshot of the entity."""
        self._log(entity_id)
        return len(self._snapshots.pop(entity_id, []))

    # -- snapshots -------------------------------------------------------------------------

    def save_snapshot(self, snapshot: Snapshot) -> None:
        """Store a snapshot that matches the event at its seq; keep the newest K per entity."""
        log = self._log(snapshot.entity_id)
        check_seq(snapshot.seq)
        if snapshot.seq == 0:
            raise SnapshotMismatchError("a snapshot follows an event: seq must be >= 1")
        if type(snapshot.state) is not bytes:
            raise TypeError(f"snapshot state must be bytes, got {type(snapshot.state)}")
        event = log[snapshot.seq - 1] if snapshot.seq <= len(log) else None
        problem = snapshot_mismatch(snapshot, event)
        if problem is not None:
            raise SnapshotMismatchError(f"snapshot of {snapshot.entity_id!r}: {problem}")
        self._keep(snapshot)

    def _keep(self, snapshot: Snapshot) -> None:
        """Keep a snapshot that matches its event; drop the entity's oldest beyond K."""
        kept = [s for s in self._snapshots.get(snapshot.entity_id, []) if s.seq != snapshot.seq]
        kept.append(snapshot)
        kept.sort(key=lambda s: s.seq)
        self._snapshots[snapshot.entity_id] = kept[-self._snapshots_kept :]

    def latest_snapshot(
        self, entity_id: str, at_or_before_seq: int | None = None
    ) -> Snapshot | None:
        """The entity's newest kept snapshot, optionally the newest at or before a seq."""
        self._log(entity_id)
        limit = MAX_SEQ if at_or_before_seq is None else at_or_before_seq
        check_seq(limit, "at_or_before_seq")
        for snapshot in reversed(self._snapshots.get(entity_id, [])):
            if snapshot.seq <= limit:
                return snapshot
        return None

    # -- dedupe ----------------------------------------------------------------------------

    def dedupe_get(self, message_id: str) -> bytes | None:
        """The outcome recorded for a message, None if unknown or past the retention window."""
        message_key(message_id)
        self._check_open()
        found = self._dedupe.get(message_id)
        if found is None or self._now_ms() - found[0] >= self._retention_ms:
            return None
        return found[1]

    def dedupe_get_many(self, message_ids: Sequence[str]) -> list[bytes | None]:
        """`dedupe_get` of each id."""
        return [self.dedupe_get(m) for m in message_ids]

    def dedupe_prune(self) -> int:
        """Delete dedupe entries past the retention window; return how many."""
        self._check_open()
        cutoff = self._now_ms() - self._retention_ms
        expired = [key for key, (recorded_ms, _) in self._dedupe.items() if recorded_ms <= cutoff]
        for key in expired:
            del self._dedupe[key]
        return len(expired)

    def dedupe_purge(
        self, containing: bytes, confirm: Callable[[bytes], bool] | None = None
    ) -> int:
        """Delete every dedupe entry whose outcome contains `containing` (and passes
        `confirm`, if given); return how many."""
        needle = purge_needle(containing)
        self._check_open()
        doomed = [
            key
            for key, (_, outcome) in self._dedupe.items()
            if needle in outcome and (confirm is None or confirm(outcome))
        ]
        for key in doomed:
            del self._dedupe[key]
        return len(doomed)

    # -- whole-store scans -----------------------------------------------------------------

    def entity_ids(self) -> Iterator[str]:
        """Every entity with at least one event, in UTF-8 byte order (as LMDB orders them)."""
        self._check_open()
        return iter(sorted(self._logs, key=str.encode))

    def check_entity(self, entity_id: str) -> EntityCheck:
        """One entity's chain and newest snapshot, as `LmdbStore.check_entity` checks them."""
        log = self._log(entity_id)
        found = verify_chain(entity_id, ((event.seq, event) for event in log))
        snapshots = self._snapshots.get(entity_id, [])
        if snapshots:
            newest = snapshots[-1]
            event = log[newest.seq - 1] if newest.seq <= len(log) else None
            problem = snapshot_mismatch(newest, event)
            if problem is not None:
                kind = CorruptionKind.SNAPSHOT_MISMATCH
                found.append(Corruption("snapshots", kind, entity_id, newest.seq, problem))
        last = log[-1] if log else None
        return EntityCheck(last.seq if last else 0, last.timestamp_ms if last else 0, tuple(found))

    def verify(self) -> VerifyReport:
        """Walk every chain and snapshot (catches damage done to the held records)."""
        self._check_open()
        found: list[Corruption] = []
        for entity_id, log in self._logs.items():
            found.extend(verify_chain(entity_id, ((event.seq, event) for event in log)))
        snapshots = list(itertools.chain.from_iterable(self._snapshots.values()))
        for snapshot in snapshots:
            log = self._logs.get(snapshot.entity_id, [])
            event = log[snapshot.seq - 1] if snapshot.seq <= len(log) else None
            problem = snapshot_mismatch(snapshot, event)
            if problem is not None:
                found.append(
                    Corruption(
                        "snapshots",
                        CorruptionKind.SNAPSHOT_MISMATCH,
                        snapshot.entity_id,
                        snapshot.seq,
                        problem,
                    )
                )
        return VerifyReport(
            len(self._logs),
            sum(map(len, self._logs.values())),
            len(snapshots),
            len(self._dedupe),
            tuple(found),
        )


def _timestamp(event: StoredEvent) -> int:
    return event.timestamp_ms
