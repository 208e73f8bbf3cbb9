"""The `CheckpointStore` contract, run against both `MemoryStore` and `LmdbStore`."""

from __future__ import annotations

import pytest

from hub.store import (
    GENESIS_CHECKSUM,
    CheckpointStore,
    DedupeEntry,
    InvalidKeyError,
    LmdbStore,
    MemoryStore,
    NewEvent,
    NewSnapshot,
    Snapshot,
    SnapshotMismatchError,
    StoreClosedError,
    StoredEvent,
    TimestampOrderError,
    event_checksum,
)
from hub.store.layout import MAX_ENTITY_ID_BYTES, MAX_MESSAGE_ID_BYTES
from tests.hub.store.conftest import FakeClock, StoreFactory


def ev(entity_id: str, timestamp_ms: int, body: bytes = b"body") -> NewEvent:
    return NewEvent(entity_id, timestamp_ms, body)


def snapshot_of(event: StoredEvent, state: bytes = b"state") -> Snapshot:
    return Snapshot(event.entity_id, event.seq, event.timestamp_ms, state, event.checksum)


# -- appending ------------------------------------------------------------------------------


def test_sequences_are_gap_free_per_entity_across_batches(store: CheckpointStore) -> None:
    first = store.append_batch([ev("a", 1), ev("b", 1), ev("a", 2)])
    second = store.append_batch([ev("b", 3), ev("a", 3)])

    assert [(e.entity_id, e.seq) for e in first + second] == [
        ("a", 1),
        ("b", 1),
        ("a", 2),
        ("b", 2),
        ("a", 3),
    ]
    assert store.last_seq("a") == 3
    assert store.last_seq("b") == 2
    assert store.last_seq("never-written") == 0


def test_returned_events_are_exactly_what_is_stored(store: CheckpointStore) -> None:
    appended = store.append_batch([ev("a", 10, b"x"), ev("a", 11, b""), ev("a", 11, b"z" * 5000)])

    assert list(store.events("a")) == appended
    assert [e.body for e in appended] == [b"x", b"", b"z" * 5000]
    assert [e.timestamp_ms for e in appended] == [10, 11, 11]


def test_checksums_chain_from_the_genesis_checksum(store: CheckpointStore) -> None:
    one, two = store.append_batch([ev("topic/1", 5, b"first"), ev("topic/1", 6, b"second")])

    prefix = b"topic/1\x00"
    assert one.checksum == event_checksum(GENESIS_CHECKSUM, prefix, 1, 5, b"first")
    assert two.checksum == event_checksum(one.checksum, prefix, 2, 6, b"second")


def test_both_implementations_compute_identical_logs(tmp_path: object, clock: FakeClock) -> None:
    batches = [[ev("x", 1), ev("y", 2)], [ev("x", 2, b"more"), ev("x", 9)]]
    memory = MemoryStore(now_ms=clock)
    with LmdbStore(f"{tmp_path}/store", now_ms=clock) as durable:
        for batch in batches:
            assert memory.append_batch(batch) == durable.append_batch(batch)
        assert list(durable.events("x")) == list(memory.events("x"))


def test_a_rejected_batch_stores_nothing_at_all(store: CheckpointStore) -> None:
    store.append_batch([ev("a", 1)])

    with pytest.raises(InvalidKeyError):
        store.append_batch([ev("a", 2), ev("bad\x00id", 2)], [DedupeEntry("m1", b"ok")])
    with pytest.raises(TimestampOrderError):
        store.append_batch([ev("a", 3), ev("b", 5), ev("b", 4)], [DedupeEntry("m2", b"ok")])
    with pytest.raises(TypeError):
        store.append_batch([ev("a", 3), NewEvent("a", 4, "not bytes")])  # type: ignore[arg-type]

    assert store.last_seq("a") == 1
    assert store.last_seq("b") == 0
    assert store.dedupe_get("m1") is None
    assert store.dedupe_get("m2") is None
    assert store.append_batch([ev("a", 3)])[0].seq == 2


def test_timestamps_may_repeat_but_never_go_back(store: CheckpointStore) -> None:
    store.append_batch([ev("a", 100), ev("a", 100)])
    store.append_batch([ev("other", 1)])  # other entities have their own order

    with pytest.raises(TimestampOrderError, match="older than the previous event"):
        store.append_batch([ev("a", 99)])
    with pytest.raises(ValueError, match="64 bits"):
        store.append_batch([ev("a", 2**63)])
    assert store.last_seq("a") == 2


@pytest.mark.parametrize(
    "bad_id",
    ["", "a\x00b", "x" * (MAX_ENTITY_ID_BYTES + 1), "é" * (MAX_ENTITY_ID_BYTES // 2 + 1), "\ud800"],
)
def test_entity_ids_the_key_layout_cannot_hold_are_rejected(
    store: CheckpointStore, bad_id: str
) -> None:
    with pytest.raises(InvalidKeyError):
        store.append_batch([ev(bad_id, 1)])
    with pytest.raises(InvalidKeyError):
        store.last_seq(bad_id)


def test_longest_and_unicode_entity_ids_round_trip(store: CheckpointStore) -> None:
    longest = "x" * MAX_ENTITY_ID_BYTES
    store.append_batch([ev(longest, 1), ev("тема-🙂", 1)])

    assert [e.entity_id for e in store.events(longest)] == [longest]
    assert [e.entity_id for e in store.events("тема-🙂")] == ["тема-🙂"]


def test_an_empty_batch_writes_nothing(store: CheckpointStore) -> None:
    assert store.append_batch([]) == []
    assert list(store.entity_ids()) == []
    assert store.verify().events == 0


# -- reading -------------------------------------------------------------------------------


def test_events_reads_a_seq_range(store: CheckpointStore) -> None:
    store.append_batch([ev("a", t) for t in range(1, 11)])

    assert [e.seq for e in store.events("a", after_seq=3)] == list(range(4, 11))
    assert [e.seq for e in store.events("a", after_seq=3, until_seq=5)] == [4, 5]
    assert [e.seq for e in store.events("a", until_seq=2)] == [1, 2]
    assert list(store.events("a", after_seq=10)) == []
    assert list(store.events("a", after_seq=5, until_seq=5)) == []
    with pytest.raises(ValueError):
        store.events("a", after_seq=-1)


def test_entities_sharing_a_prefix_never_see_each_others_events(store: CheckpointStore) -> None:
    ids = ["a", "a b", "ab", "a\x01", "b", "é", "A"]
    store.append_batch([ev(entity_id, 1, entity_id.encode()) for entity_id in ids])
    store.append_batch([ev("a", 2, b"a")])

    for entity_id in ids:
        assert {e.body for e in store.events(entity_id)} == {entity_id.encode()}
        assert store.latest_snapshot(entity_id) is None
    assert store.last_seq("a") == 2
    assert list(store.entity_ids()) == sorted(ids, key=str.encode)


def test_history_filters_by_inclusive_time_bounds(store: CheckpointStore) -> None:
    store.append_batch([ev("a", t) for t in (10, 20, 20, 30, 40)])

    def seqs(since: int | None, until: int | None) -> list[int]:
        return [e.seq for e in store.history("a", since_ms=since, until_ms=until)]

    assert seqs(None, None) == [1, 2, 3, 4, 5]
    assert seqs(20, 30) == [2, 3, 4]
    assert seqs(21, 39) == [4]
    assert seqs(None, 19) == [1]
    assert seqs(41, None) == []
    assert seqs(30, 20) == []
    assert store.history("unknown") == []


def test_seq_at_time_finds_the_last_event_at_or_before(store: CheckpointStore) -> None:
    store.append_batch([ev("a", t) for t in (10, 20, 20, 30)])

    assert [store.seq_at_time("a", t) for t in (9, 10, 19, 20, 29, 30, 10**15)] == [
        0,
        1,
        1,
        3,
        3,
        4,
        4,
    ]
    assert store.seq_at_time("unknown", 10**15) == 0


# -- snapshots -----------------------------------------------------------------------------


def test_latest_snapshot_and_at_or_before(store: CheckpointStore) -> None:
    events = store.append_batch([ev("a", t) for t in range(1, 6)])
    store.save_snapshot(snapshot_of(events[1], b"after 2"))
    store.save_snapshot(snapshot_of(events[3], b"after 4"))

    latest = store.latest_snapshot("a")
    assert latest is not None
    assert (latest.seq, latest.state, latest.checksum) == (4, b"after 4", events[3].checksum)
    older = store.latest_snapshot("a", at_or_before_seq=3)
    assert older is not None and older.state == b"after 2"
    assert store.latest_snapshot("a", at_or_before_seq=1) is None
    assert store.latest_snapshot("b") is None


def test_only_the_newest_k_snapshots_are_kept(store: CheckpointStore) -> None:
    events = store.append_batch([ev("a", t) for t in range(1, 6)] + [ev("b", 1)])
    store.save_snapshot(snapshot_of(events[5]))
    for event in events[:5]:
        store.save_snapshot(snapshot_of(event))

    assert store.latest_snapshot("a", at_or_before_seq=3) is None  # K = 2: only 4 and 5 left
    kept = store.latest_snapshot("a", at_or_before_seq=4)
    assert kept is not None and kept.seq == 4
    assert store.latest_snapshot("b") is not None  # another entity's snapshots are untouched
    assert store.verify().snapshots == 3


def test_the_default_keeps_three_snapshots(make_store: StoreFactory) -> None:
    store = make_store()
    events = store.append_batch([ev("a", t) for t in range(1, 6)])
    for event in events:
        store.save_snapshot(snapshot_of(event))

    assert store.latest_snapshot("a", at_or_before_seq=2) is None
    assert store.verify().snapshots == 3


def test_saving_a_snapshot_again_replaces_it(store: CheckpointStore) -> None:
    (event,) = store.append_batch([ev("a", 1)])
    store.save_snapshot(snapshot_of(event, b"old"))
    store.save_snapshot(snapshot_of(event, b"new"))

    latest = store.latest_snapshot("a")
    assert latest is not None and latest.state == b"new"
    assert store.verify().snapshots == 1


def test_a_snapshot_must_match_its_event(store: CheckpointStore) -> None:
    (event,) = store.append_batch([ev("a", 7)])
    wrong = [
        Snapshot("a", 1, 7, b"s", b"\x01" * 32),  # another checksum
        Snapshot("a", 1, 8, b"s", event.checksum),  # another timestamp
        Snapshot("a", 2, 7, b"s", event.checksum),  # no such event yet
        Snapshot("b", 1, 7, b"s", event.checksum),  # another entity
        Snapshot("a", 0, 7, b"s", GENESIS_CHECKSUM),  # before any event
    ]
    for snapshot in wrong:
        with pytest.raises(SnapshotMismatchError):
            store.save_snapshot(snapshot)
    assert store.latest_snapshot("a") is None
    assert store.latest_snapshot("b") is None


def test_a_snapshot_commits_with_the_batch_that_made_it(store: CheckpointStore) -> None:
    store.append_batch([ev("a", 1), ev("a", 2)])
    events = store.append_batch(
        [ev("a", 3), ev("b", 4), ev("a", 5)],
        snapshots=[NewSnapshot("a", 4, b"after 4"), NewSnapshot("b", 1, b"b after 1")],
    )
    latest = store.latest_snapshot("a")
    assert latest == Snapshot("a", 4, 5, b"after 4", events[2].checksum)  # a's last of the batch
    assert store.latest_snapshot("b") == Snapshot("b", 1, 4, b"b after 1", events[1].checksum)
    store.append_batch([ev("a", 6)], snapshots=[NewSnapshot("a", 5, b"after 5")])
    store.append_batch([ev("a", 7)], snapshots=[NewSnapshot("a", 6, b"after 6")])
    assert store.latest_snapshot("a", at_or_before_seq=4) is None  # K = 2, as saved one by one
    assert store.verify().corruptions == ()


def test_a_batch_whose_snapshot_is_not_of_its_last_event_stores_nothing(
    store: CheckpointStore,
) -> None:
    store.append_batch([ev("a", 1)])
    wrong = [
        (NewSnapshot("a", 2, b"s"), SnapshotMismatchError),  # a's last in the batch is 3
        (NewSnapshot("a", 1, b"s"), SnapshotMismatchError),  # before the batch
        (NewSnapshot("b", 1, b"s"), SnapshotMismatchError),  # no event of b in it
        (NewSnapshot("a", 3, "s"), TypeError),  # type: ignore[arg-type]
    ]
    for snapshot, error in wrong:
        with pytest.raises(error):
            store.append_batch(
                [ev("a", 2), ev("a", 3)], [DedupeEntry("m1", b"x")], snapshots=[snapshot]
            )
    assert store.last_seq("a") == 1 and store.dedupe_get("m1") is None
    assert store.latest_snapshot("a") is None


# -- dedupe --------------------------------------------------------------------------------


def test_dedupe_outcomes_are_recorded_with_the_batch(
    store: CheckpointStore, clock: FakeClock
) -> None:
    store.append_batch([ev("a", 1)], [DedupeEntry("msg-1", b"applied"), DedupeEntry("m2", b"")])
    store.append_batch([], [DedupeEntry("msg-3", b"rejected: stale")])  # outcome without events

    assert store.dedupe_get("msg-1") == b"applied"
    assert store.dedupe_get("m2") == b""
    assert store.dedupe_get("msg-3") == b"rejected: stale"
    assert store.dedupe_get("never-seen") is None
    assert store.dedupe_get_many(["msg-3", "never-seen", "msg-1"]) == [
        b"rejected: stale",
        None,
        b"applied",
    ]
    with pytest.raises(InvalidKeyError):
        store.dedupe_get("x" * (MAX_MESSAGE_ID_BYTES + 1))


def test_dedupe_entries_expire_after_the_retention_window(
    store: CheckpointStore, clock: FakeClock
) -> None:
    store.append_batch([], [DedupeEntry("old", b"1")])
    clock.now += 600
    store.append_batch([], [DedupeEntry("new", b"2")])

    clock.now += 399  # "old" is 999 ms old, retention is 1000 ms
    assert store.dedupe_get("old") == b"1"
    assert store.dedupe_prune() == 0
    clock.now += 1
    assert store.dedupe_get("old") is None  # expired even before it is pruned
    assert store.dedupe_get("new") == b"2"
    assert store.dedupe_prune() == 1
    assert store.verify().dedupe_entries == 1
    clock.now += 600
    assert store.dedupe_prune() == 1
    assert store.dedupe_prune() == 0
    assert store.verify().dedupe_entries == 0


def test_recording_a_message_again_restarts_its_window(
    store: CheckpointStore, clock: FakeClock
) -> None:
    store.append_batch([], [DedupeEntry("m", b"first")])
    clock.now += 800
    store.append_batch([], [DedupeEntry("m", b"second")])
    clock.now += 500

    assert store.dedupe_prune() == 0  # the first recording's expiry does not delete it
    assert store.dedupe_get("m") == b"second"


def test_the_default_retention_is_seven_days(make_store: StoreFactory, clock: FakeClock) -> None:
    store = make_store()
    store.append_batch([], [DedupeEntry("m", b"ok")])

    clock.now += 7 * 24 * 3600 * 1000 - 1
    assert store.dedupe_get("m") == b"ok"
    clock.now += 1
    assert store.dedupe_get("m") is None


# -- whole store ---------------------------------------------------------------------------


def test_verify_counts_a_healthy_store(store: CheckpointStore) -> None:
    events = store.append_batch([ev("a", 1), ev("b", 1), ev("a", 2)], [DedupeEntry("m", b"")])
    store.save_snapshot(snapshot_of(events[2]))

    report = store.verify()
    assert report.ok
    assert (report.entities, report.events, report.snapshots, report.dedupe_entries) == (
        2,
        3,
        1,
        1,
    )


def test_a_closed_store_refuses_work(make_store: StoreFactory) -> None:
    with make_store() as store:
        store.append_batch([ev("a", 1)])
    store.close()  # idempotent

    with pytest.raises(StoreClosedError):
        store.append_batch([ev("a", 2)])
    with pytest.raises(StoreClosedError):
        store.last_seq("a")
    with pytest.raises(StoreClosedError):
        list(store.events("a"))
    with pytest.raises(StoreClosedError):
        store.verify()
