"""Recovery and replay: load, state_at and snapshots agree with folding the log from the start."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hub.store import (
    CheckpointStore,
    LmdbStore,
    MemoryStore,
    NewEvent,
    SnapshotMismatchError,
    SnapshotPolicy,
    StoredEvent,
    load,
    state_at,
    take_snapshot,
)

State = tuple[int, ...]


class ListReplayer:
    """Toy domain: an event body is a msgpack int, the state is every int seen, in order."""

    def initial(self, entity_id: str) -> State:
        return ()

    def apply(self, state: State, event: StoredEvent) -> State:
        return (*state, msgpack.unpackb(event.body))

    def encode_state(self, state: State) -> bytes:
        packed: bytes = msgpack.packb(list(state))
        return packed

    def decode_state(self, data: bytes) -> State:
        return tuple(msgpack.unpackb(data))


REPLAYER = ListReplayer()


def body(value: int) -> bytes:
    packed: bytes = msgpack.packb(value)
    return packed


@contextmanager
def memory_store() -> Iterator[CheckpointStore]:
    with MemoryStore() as store:
        yield store


@contextmanager
def lmdb_store() -> Iterator[CheckpointStore]:
    with tempfile.TemporaryDirectory() as path, LmdbStore(path) as store:
        yield store


STORES = {"memory": memory_store, "lmdb": lmdb_store}


# -- examples ------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", STORES)
def test_load_uses_the_newest_snapshot_and_replays_the_rest(kind: str) -> None:
    with STORES[kind]() as store:
        store.append_batch([NewEvent("e", t, body(t)) for t in range(1, 8)])
        take_snapshot(store, "e", (1, 2, 3), 3, REPLAYER)
        # A deliberately "wrong" snapshot state proves load starts from the snapshot.
        take_snapshot(store, "e", (-5,), 5, REPLAYER)

        assert load(store, "e", REPLAYER) == ((-5, 6, 7), 7)
        assert state_at(store, "e", REPLAYER, seq=4) == ((1, 2, 3, 4), 4)
        assert state_at(store, "e", REPLAYER, timestamp_ms=2) == ((1, 2), 2)


@pytest.mark.parametrize("kind", STORES)
def test_an_unknown_entity_recovers_to_its_initial_state(kind: str) -> None:
    with STORES[kind]() as store:
        assert load(store, "nobody", REPLAYER) == ((), 0)
        assert state_at(store, "nobody", REPLAYER, timestamp_ms=10**12) == ((), 0)
        assert state_at(store, "nobody", REPLAYER, seq=3) == ((), 0)


@pytest.mark.parametrize("kind", STORES)
def test_state_at_clamps_past_the_end_and_checks_its_arguments(kind: str) -> None:
    with STORES[kind]() as store:
        store.append_batch([NewEvent("e", 10, body(1)), NewEvent("e", 20, body(2))])

        assert state_at(store, "e", REPLAYER, seq=99) == ((1, 2), 2)
        assert state_at(store, "e", REPLAYER, timestamp_ms=9) == ((), 0)
        with pytest.raises(ValueError, match="exactly one"):
            state_at(store, "e", REPLAYER)
        with pytest.raises(ValueError, match="exactly one"):
            state_at(store, "e", REPLAYER, seq=1, timestamp_ms=1)
        with pytest.raises(ValueError):
            state_at(store, "e", REPLAYER, seq=-1)


@pytest.mark.parametrize("kind", STORES)
def test_take_snapshot_ties_the_snapshot_to_the_event(kind: str) -> None:
    with STORES[kind]() as store:
        events = store.append_batch([NewEvent("e", 10, body(1)), NewEvent("e", 20, body(2))])
        snapshot = take_snapshot(store, "e", (1,), 1, REPLAYER)

        assert (snapshot.seq, snapshot.timestamp_ms, snapshot.checksum) == (
            1,
            10,
            events[0].checksum,
        )
        assert store.latest_snapshot("e") == snapshot
        with pytest.raises(SnapshotMismatchError):
            take_snapshot(store, "e", (1, 2, 3), 3, REPLAYER)
        with pytest.raises(SnapshotMismatchError):
            take_snapshot(store, "e", (), 0, REPLAYER)


def test_snapshot_policy_fires_when_a_multiple_is_crossed() -> None:
    policy = SnapshotPolicy(every=100)

    assert [seq for seq in range(1, 401) if policy.due(seq)] == [100, 200, 300, 400]
    assert policy.due(105, previous_seq=95)  # a group commit jumped over 100
    assert not policy.due(150, previous_seq=100)
    assert policy.due(300, previous_seq=0)
    assert SnapshotPolicy().every == 100
    with pytest.raises(ValueError):
        SnapshotPolicy(every=0)


# -- properties ----------------------------------------------------------------------------

ENTITIES = ("alpha", "beta", "gamma")

logs = st.lists(
    st.tuples(
        st.sampled_from(ENTITIES),
        st.integers(0, 3),  # time step since the entity's previous event
        st.integers(-1000, 1000),  # payload
        st.booleans(),  # snapshot after this event?
        st.booleans(),  # end the batch after this event?
    ),
    max_size=40,
)


def write(store: CheckpointStore, log: list[tuple[str, int, int, bool, bool]]) -> None:
    """Append `log` in the drawn batches, snapshotting where drawn like a live host would."""
    clocks = dict.fromkeys(ENTITIES, 1000)
    states: dict[str, State] = dict.fromkeys(ENTITIES, ())
    batch: list[NewEvent] = []
    wanted: list[tuple[str, int, State]] = []
    seqs = dict.fromkeys(ENTITIES, 0)
    for entity_id, step, payload, snapshot, end_batch in log:
        clocks[entity_id] += step
        batch.append(NewEvent(entity_id, clocks[entity_id], body(payload)))
        states[entity_id] = (*states[entity_id], payload)
        seqs[entity_id] += 1
        if snapshot:
            wanted.append((entity_id, seqs[entity_id], states[entity_id]))
        if end_batch:
            store.append_batch(batch)
            batch = []
            for entity, seq, state in wanted:
                take_snapshot(store, entity, state, seq, REPLAYER)
            wanted = []
    store.append_batch(batch)
    for entity, seq, state in wanted:
        take_snapshot(store, entity, state, seq, REPLAYER)


def check_replay_laws(store: CheckpointStore) -> None:
    for entity_id in ENTITIES:
        events = list(store.events(entity_id))
        full: State = ()
        for event in events:
            full = REPLAYER.apply(full, event)

        assert load(store, entity_id, REPLAYER) == (full, len(events))
        for seq in range(len(events) + 1):
            assert state_at(store, entity_id, REPLAYER, seq=seq) == (full[:seq], seq)
        times = {t for e in events for t in (e.timestamp_ms - 1, e.timestamp_ms)} | {0}
        for t in times:
            prefix = [e for e in events if e.timestamp_ms <= t]
            assert state_at(store, entity_id, REPLAYER, timestamp_ms=t) == (
                tuple(msgpack.unpackb(e.body) for e in prefix),
                len(prefix),
            )


@given(logs)
def test_replay_laws_hold_on_the_memory_store(log: list[tuple[str, int, int, bool, bool]]) -> None:
    with memory_store() as store:
        write(store, log)
        check_replay_laws(store)


@settings(max_examples=50)  # every batch is a real synced commit
@given(logs)
def test_replay_laws_hold_on_the_lmdb_store(log: list[tuple[str, int, int, bool, bool]]) -> None:
    with lmdb_store() as store:
        write(store, log)
        check_replay_laws(store)
        assert store.verify().ok
