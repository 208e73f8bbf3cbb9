"""Recovery and replay: an entity's state from its newest snapshot plus the events after it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, NamedTuple, Protocol, TypeVar

from hub.store.errors import SnapshotMismatchError
from hub.store.protocol import CheckpointStore
from hub.store.records import Snapshot, StoredEvent

S = TypeVar("S")


class Replayer(Protocol[S]):
    """The domain's fold over stored events, and how its state is encoded in snapshots."""

    # The store never learns what an event means: the live host keeps state in memory and
    # calls `load` on activation, `state_at` for temporal queries and `take_snapshot`.

    def initial(self, entity_id: str) -> S:
        """The state before any event."""
        ...

    def apply(self, state: S, event: StoredEvent) -> S:
        """Fold one stored event (total: every event in the log was accepted once)."""
        ...

    def encode_state(self, state: S) -> bytes: ...

    def decode_state(self, data: bytes) -> S: ...


class Recovered(NamedTuple, Generic[S]):
    """A rebuilt state and the seq of the last event folded into it (0: none)."""

    state: S
    seq: int


def _replay(
    store: CheckpointStore,
    entity_id: str,
    replayer: Replayer[S],
    snapshot: Snapshot | None,
    until_seq: int | None,
) -> Recovered[S]:
    if snapshot is None:
        state, seq = replayer.initial(entity_id), 0
    else:
        state, seq = replayer.decode_state(snapshot.state), snapshot.seq
    apply = replayer.apply
    for event in store.events(entity_id, after_seq=seq, until_seq=until_seq):
        state = apply(state, event)
        seq = event.seq
    return Recovered(state, seq)


def load(store: CheckpointStore, entity_id: str, replayer: Replayer[S]) -> Recovered[S]:
    """The entity's current state: newest snapshot plus a replay of the events after it."""
    return _replay(store, entity_id, replayer, store.latest_snapshot(entity_id), None)


def state_at(
    store: CheckpointStore,
    entity_id: str,
    replayer: Replayer[S],
    *,
    timestamp_ms: int | None = None,
    seq: int | None = None,
) -> Recovered[S]:
    """The entity's state as of a timestamp (events at or before it) or a seq (exactly one).

    Uses the newest kept snapshot at or before the target. A seq past the end gives the
    current state; the returned `seq` says which event the state is after.
    """
    if (timestamp_ms is None) == (seq is None):
        raise ValueError("pass exactly one of timestamp_ms= or seq=")
    if timestamp_ms is not None:
        target = store.seq_at_time(entity_id, timestamp_ms)
    elif seq is not None and seq >= 0:
        target = min(seq, store.last_seq(entity_id))
    else:
        raise ValueError(f"seq must be >= 0, got {seq}")
    if target == 0:
        return Recovered(replayer.initial(entity_id), 0)
    snapshot = store.latest_snapshot(entity_id, at_or_before_seq=target)
    return _replay(store, entity_id, replayer, snapshot, target)


def take_snapshot(
    store: CheckpointStore, entity_id: str, state: S, seq: int, replayer: Replayer[S]
) -> Snapshot:
    """Encode `state` (the state after event `seq`) and save it as a snapshot tied to the chain."""
    event = next(store.events(entity_id, after_seq=max(seq - 1, 0), until_seq=seq), None)
    if event is None or event.seq != seq:
        raise SnapshotMismatchError(f"entity {entity_id!r} has no event {seq} to snapshot after")
    snapshot = Snapshot(
        entity_id, seq, event.timestamp_ms, replayer.encode_state(state), event.checksum
    )
    store.save_snapshot(snapshot)
    return snapshot


@dataclass(frozen=True, slots=True)
class SnapshotPolicy:
    """Snapshot whenever an entity's seq crosses a multiple of `every`."""

    every: int = 100

    def __post_init__(self) -> None:
        if self.every < 1:
            raise ValueError(f"SnapshotPolicy.every must be >= 1, got {self.every}")

    def due(self, seq: int, previous_seq: int | None = None) -> bool:
        """Whether moving from `previous_seq` (default seq - 1) to `seq` crossed a multiple.

        Pass `previous_seq` after a group commit, where seq advances by several at once.
        """
        before = seq - 1 if previous_seq is None else previous_seq
        return seq // self.every > before // self.every
