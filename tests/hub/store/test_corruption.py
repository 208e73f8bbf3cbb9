"""Damage done to the LMDB files behind the store's back is found and named by `verify()`."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import lmdb
import msgpack
import pytest

from hub.store import (
    CorruptionKind,
    CorruptValueError,
    DedupeEntry,
    LmdbStore,
    NewEvent,
    Snapshot,
    StoredEvent,
)


def key(entity_id: str, seq: int) -> bytes:
    return entity_id.encode() + b"\x00" + seq.to_bytes(8, "big")


def fill(path: Path) -> list[StoredEvent]:
    """Three entities with five events each, a snapshot of "b" at 3 and a dedupe entry."""
    with LmdbStore(path) as store:
        events = store.append_batch(
            [
                NewEvent(entity, t, f"{entity}-{t}".encode())
                for t in range(1, 6)
                for entity in "abc"
            ],
            [DedupeEntry("m", b"ok")],
        )
        third_of_b = next(e for e in events if (e.entity_id, e.seq) == ("b", 3))
        store.save_snapshot(Snapshot("b", 3, third_of_b.timestamp_ms, b"s", third_of_b.checksum))
    return events


def tamper(
    path: Path, database: bytes, change: Callable[[lmdb.Transaction[bytes], lmdb._Database], object]
) -> None:
    env = lmdb.open(str(path), max_dbs=8)
    try:
        db = env.open_db(database)
        with env.begin(write=True) as txn:
            change(txn, db)
    finally:
        env.close()


def flip_body_byte(txn: lmdb.Transaction[bytes], db: lmdb._Database) -> None:
    raw = txn.get(key("b", 4), db=db)
    assert raw is not None
    body_at = raw.index(b"b-4")  # flip a byte inside the body, keeping msgpack valid
    flipped = raw[:body_at] + bytes([raw[body_at] ^ 0x01]) + raw[body_at + 1 :]
    txn.put(key("b", 4), flipped, db=db)


def test_a_flipped_body_byte_is_named_by_entity_and_seq(tmp_path: Path) -> None:
    fill(tmp_path)
    tamper(tmp_path, b"events", flip_body_byte)

    with LmdbStore(tmp_path) as store:
        report = store.verify()
        assert [(c.database, c.kind, c.entity_id, c.seq) for c in report.corruptions] == [
            ("events", CorruptionKind.BAD_CHECKSUM, "b", 4)
        ]
        assert report.events == 15 and report.entities == 3
        assert [e.body for e in store.events("b")][3] == b"c-4"  # readable, but not trusted


def test_a_rewritten_checksum_is_named_with_the_link_it_breaks(tmp_path: Path) -> None:
    fill(tmp_path)

    def forge(txn: lmdb.Transaction[bytes], db: lmdb._Database) -> None:
        timestamp_ms, _, _ = msgpack.unpackb(txn.get(key("a", 2), db=db))
        txn.put(key("a", 2), msgpack.packb((timestamp_ms, b"forged", bytes(32))), db=db)

    tamper(tmp_path, b"events", forge)
    with LmdbStore(tmp_path) as store:
        named = {(c.kind, c.entity_id, c.seq) for c in store.verify().corruptions}
    # seq 2's own checksum is wrong, and seq 3 no longer links to what is stored at seq 2.
    assert named == {
        (CorruptionKind.BAD_CHECKSUM, "a", 2),
        (CorruptionKind.BAD_CHECKSUM, "a", 3),
    }


@pytest.mark.parametrize("garbage", [b"", b"\xc1", b"\x93\x01", msgpack.packb({"x": 1})])
def test_an_undecodable_event_is_named_and_reading_it_raises(
    tmp_path: Path, garbage: bytes
) -> None:
    fill(tmp_path)
    tamper(tmp_path, b"events", lambda txn, db: txn.put(key("c", 2), garbage, db=db))

    with LmdbStore(tmp_path) as store:
        corruptions = store.verify().corruptions
        assert [(c.kind, c.entity_id, c.seq) for c in corruptions] == [
            (CorruptionKind.UNDECODABLE, "c", 2)
        ]
        assert "events" in corruptions[0].detail
        with pytest.raises(CorruptValueError, match="events"):
            list(store.events("c"))
        assert [e.seq for e in store.events("c", after_seq=2)] == [3, 4, 5]


def test_a_missing_event_is_reported_as_a_gap(tmp_path: Path) -> None:
    fill(tmp_path)
    tamper(tmp_path, b"events", lambda txn, db: txn.delete(key("a", 3), db=db))

    with LmdbStore(tmp_path) as store:
        corruptions = store.verify().corruptions
    assert [(c.kind, c.entity_id, c.seq) for c in corruptions] == [(CorruptionKind.GAP, "a", 3)]
    assert "3..3 are missing" in corruptions[0].detail


def test_a_snapshot_that_no_longer_matches_its_event_is_named(tmp_path: Path) -> None:
    fill(tmp_path)

    def rewrite(txn: lmdb.Transaction[bytes], db: lmdb._Database) -> None:
        txn.put(key("b", 3), msgpack.packb((3, b"s", b"\x07" * 32)), db=db)

    tamper(tmp_path, b"snapshots", rewrite)
    with LmdbStore(tmp_path) as store:
        corruptions = store.verify().corruptions
    assert [(c.database, c.kind, c.entity_id, c.seq) for c in corruptions] == [
        ("snapshots", CorruptionKind.SNAPSHOT_MISMATCH, "b", 3)
    ]


def test_malformed_keys_and_dedupe_values_are_reported(tmp_path: Path) -> None:
    fill(tmp_path)
    tamper(tmp_path, b"events", lambda txn, db: txn.put(b"no-separator", b"x", db=db))
    tamper(tmp_path, b"dedupe", lambda txn, db: txn.put(b"m", b"\xc1", db=db))

    with LmdbStore(tmp_path) as store:
        found = {(c.database, c.kind) for c in store.verify().corruptions}
    assert found == {
        ("events", CorruptionKind.BAD_KEY),
        ("dedupe", CorruptionKind.UNDECODABLE),
    }


# -- recorded heads: what is cut off the end is noticed ----------------------------------------


def test_events_cut_off_the_end_of_a_chain_are_named(tmp_path: Path) -> None:
    fill(tmp_path)

    def cut(txn: lmdb.Transaction[bytes], db: lmdb._Database) -> None:
        txn.delete(key("a", 5), db=db)
        txn.delete(key("a", 4), db=db)
        for seq in range(1, 6):
            txn.delete(key("c", seq), db=db)

    tamper(tmp_path, b"events", cut)
    with LmdbStore(tmp_path) as store:
        corruptions = store.verify().corruptions
        assert [(c.kind, c.entity_id, c.seq) for c in corruptions] == [
            (CorruptionKind.TRUNCATED, "a", 4),
            (CorruptionKind.TRUNCATED, "c", 1),
        ]
        assert "4..5 are missing off the end" in corruptions[0].detail
        assert [(c.kind, c.entity_id) for c in store.check_heads()] == [
            (CorruptionKind.TRUNCATED, "a"),
            (CorruptionKind.TRUNCATED, "c"),
        ]
        assert not store.check_entity("a").ok and not store.check_entity("c").ok
        assert store.check_entity("b").ok


def test_an_entity_is_checked_whole_as_it_loads(tmp_path: Path) -> None:
    events = fill(tmp_path)
    with LmdbStore(tmp_path) as store:
        check = store.check_entity("b")
        last = max((e for e in events if e.entity_id == "b"), key=lambda e: e.seq)
        assert check.ok and (check.last_seq, check.last_timestamp_ms) == (5, last.timestamp_ms)
        assert store.check_entity("nobody").ok and store.check_entity("nobody").last_seq == 0
    tamper(tmp_path, b"events", flip_body_byte)
    with LmdbStore(tmp_path) as store:
        assert [(c.kind, c.seq) for c in store.check_entity("b").corruptions] == [
            (CorruptionKind.BAD_CHECKSUM, 4)
        ]
        assert store.check_entity("a").ok


def test_a_snapshot_state_damaged_on_disk_is_named(tmp_path: Path) -> None:
    fill(tmp_path)

    def damage(txn: lmdb.Transaction[bytes], db: lmdb._Database) -> None:
        timestamp_ms, _, checksum, digest = msgpack.unpackb(txn.get(key("b", 3), db=db))
        txn.put(key("b", 3), msgpack.packb((timestamp_ms, b"S", checksum, digest)), db=db)

    tamper(tmp_path, b"snapshots", damage)
    with LmdbStore(tmp_path) as store:
        [found] = store.check_entity("b").corruptions
        assert (found.database, found.kind, found.seq) == ("snapshots", "undecodable", 3)
        assert "does not match its digest" in found.detail
        assert [(c.kind, c.entity_id) for c in store.verify().corruptions] == [
            (CorruptionKind.UNDECODABLE, "b")
        ]
        with pytest.raises(CorruptValueError, match="digest"):
            store.latest_snapshot("b")
