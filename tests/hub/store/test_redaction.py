"""Redaction (erasure with the chain intact), snapshot dropping, dedupe purging, and the
schema 1 -> 2 migration to chains over body digests."""

from __future__ import annotations

from hashlib import sha256
from pathlib import Path

import lmdb
import msgpack
import pytest

from hub.store import (
    GENESIS_CHECKSUM,
    SCHEMA_VERSION,
    CheckpointStore,
    CorruptionKind,
    DedupeEntry,
    LmdbStore,
    NewEvent,
    RedactedEvent,
    SchemaVersionError,
    Snapshot,
    StoredEvent,
    event_checksum,
)
from hub.store.chain import checksum_of_digest, legacy_event_checksum
from hub.store.redaction import holds
from tests.hub.store.conftest import FakeClock
from tests.hub.store.test_lmdb_store import XorCodec, raw_items, set_schema_version


def ev(entity_id: str, timestamp_ms: int, body: bytes) -> NewEvent:
    return NewEvent(entity_id, timestamp_ms, body)


def snapshot_of(event: StoredEvent, state: bytes = b"state") -> Snapshot:
    return Snapshot(event.entity_id, event.seq, event.timestamp_ms, state, event.checksum)


# -- the chain covers body digests ----------------------------------------------------------


def test_the_checksum_covers_the_digest_of_the_body(store: CheckpointStore) -> None:
    one, two = store.append_batch([ev("a", 5, b"first"), ev("a", 6, b"second")])

    digest = sha256(b"first").digest()
    assert one.checksum == checksum_of_digest(GENESIS_CHECKSUM, b"a\x00", 1, 5, digest)
    assert one.checksum == event_checksum(GENESIS_CHECKSUM, b"a\x00", 1, 5, b"first")
    assert one.checksum != legacy_event_checksum(GENESIS_CHECKSUM, b"a\x00", 1, 5, b"first")
    assert two.checksum == event_checksum(one.checksum, b"a\x00", 2, 6, b"second")
    assert not one.redacted and one.body_digest == digest


# -- redact ---------------------------------------------------------------------------------


def test_a_redacted_event_keeps_its_place_in_a_chain_that_still_verifies(
    store: CheckpointStore, clock: FakeClock
) -> None:
    before = store.append_batch(
        [ev("a", 1, b"alice wrote"), ev("a", 2, b"bob wrote"), ev("b", 3, b"alice too")]
    )
    clock.now += 500

    changed = store.redact({"a": lambda body: body.replace(b"alice", b"anon1")})

    assert changed == {"a": 1}
    after = list(store.events("a"))
    redacted = after[0]
    assert isinstance(redacted, RedactedEvent) and redacted.redacted
    assert (redacted.seq, redacted.timestamp_ms, redacted.checksum) == (1, 1, before[0].checksum)
    assert redacted.body == b"anon1 wrote"
    assert redacted.original_digest == sha256(b"alice wrote").digest()
    assert redacted.redacted_ms == clock.now
    assert after[1] == before[1] and not after[1].redacted
    assert list(store.events("b")) == [before[2]]  # only the named entities are touched
    report = store.verify()
    assert report.ok, report.corruptions


def test_none_is_a_tombstone_and_the_chain_continues_after_it(store: CheckpointStore) -> None:
    store.append_batch([ev("a", 1, b"x"), ev("a", 2, b"y")])

    assert store.redact({"a": lambda body: None}) == {"a": 2}
    store.append_batch([ev("a", 3, b"z")])

    events = list(store.events("a"))
    assert [e.body for e in events] == [b"", b"", b"z"]
    assert [isinstance(e, RedactedEvent) and e.tombstone for e in events] == [True, True, False]
    assert store.verify().ok


def test_redacting_twice_keeps_the_first_original_digest(
    store: CheckpointStore, clock: FakeClock
) -> None:
    store.append_batch([ev("a", 1, b"secret one")])
    store.redact({"a": lambda body: body.replace(b"secret", b"hidden")})
    clock.now += 10
    store.redact({"a": lambda body: None})

    (event,) = store.events("a")
    assert isinstance(event, RedactedEvent)
    assert event.original_digest == sha256(b"secret one").digest()
    assert (event.body, event.redacted_ms) == (b"", clock.now)
    assert store.verify().ok


def test_a_rewrite_back_to_the_original_body_is_a_plain_event_again(
    store: CheckpointStore,
) -> None:
    (original,) = store.append_batch([ev("a", 1, b"original")])
    store.redact({"a": lambda body: b"changed"})
    store.redact({"a": lambda body: b"original"})

    assert list(store.events("a")) == [original]
    assert store.verify().ok


def test_an_unchanged_body_is_not_rewritten(store: CheckpointStore) -> None:
    before = store.append_batch([ev("a", 1, b"nothing personal")])
    store.save_snapshot(snapshot_of(before[0]))

    assert store.redact({"a": lambda body: body, "never-written": lambda body: None}) == {}
    assert list(store.events("a")) == before
    assert store.latest_snapshot("a") is not None


def test_redaction_drops_the_snapshots_of_rewritten_entities_only(store: CheckpointStore) -> None:
    a1, b1 = store.append_batch([ev("a", 1, b"alice"), ev("b", 1, b"carol")])
    store.save_snapshot(snapshot_of(a1, b"state with alice"))
    store.save_snapshot(snapshot_of(b1))

    store.redact({"a": lambda body: b"anon", "b": lambda body: body})

    assert store.latest_snapshot("a") is None
    assert store.latest_snapshot("b") is not None
    assert store.verify().ok


def test_drop_snapshots_removes_every_snapshot_of_one_entity(store: CheckpointStore) -> None:
    events = store.append_batch([ev("a", 1, b"1"), ev("a", 2, b"2"), ev("b", 3, b"3")])
    for event in events:
        store.save_snapshot(snapshot_of(event))

    assert store.drop_snapshots("a") == 2
    assert store.drop_snapshots("a") == 0
    assert store.latest_snapshot("a") is None
    assert store.latest_snapshot("b") is not None
    assert store.verify().snapshots == 1


def test_a_failing_rewrite_changes_nothing(store: CheckpointStore) -> None:
    before = store.append_batch([ev("a", 1, b"x"), ev("b", 1, b"y")])
    store.save_snapshot(snapshot_of(before[0]))

    def boom(body: bytes) -> bytes:
        raise RuntimeError("rewrite bug")

    with pytest.raises(RuntimeError, match="rewrite bug"):
        store.redact({"a": lambda body: b"changed", "b": boom})
    with pytest.raises(TypeError, match="bytes or None"):
        store.redact({"a": lambda body: "text"})  # type: ignore[arg-type,return-value]

    assert list(store.events("a")) + list(store.events("b")) == before
    assert store.latest_snapshot("a") is not None


def test_dedupe_purge_removes_the_entries_whose_outcome_contains_the_bytes(
    store: CheckpointStore,
) -> None:
    store.append_batch(
        [],
        [
            DedupeEntry("m1", b"created by CHITTY-PEO-ALICE"),
            DedupeEntry("m2", b"created by CHITTY-PEO-BOB"),
            DedupeEntry("m3", b"ALICE"),
        ],
    )

    assert store.dedupe_purge(b"PEO-ALICE") == 1
    assert store.dedupe_purge(b"PEO-ALICE") == 0
    assert store.dedupe_get_many(["m1", "m2", "m3"]) == [
        None,
        b"created by CHITTY-PEO-BOB",
        b"ALICE",
    ]
    assert store.verify().dedupe_entries == 2
    with pytest.raises(ValueError, match="non-empty"):
        store.dedupe_purge(b"")


def test_a_purge_with_a_confirmation_drops_only_what_it_confirms(store: CheckpointStore) -> None:
    longer = "CHITTY-USER-0" + "A" * 35  # 48 characters: msgpack's str8 length byte is "0"
    store.append_batch(
        [],
        [
            DedupeEntry("m1", msgpack.packb({"by": "CHITTY-USER-0"})),
            DedupeEntry("m2", msgpack.packb({"by": longer})),
            DedupeEntry("m3", msgpack.packb(["x", longer, "CHITTY-USER-0"])),
        ],
    )
    assert store.dedupe_purge(b"CHITTY-USER-0", lambda o: holds(o, "CHITTY-USER-0")) == 2
    assert store.dedupe_get("m2") is not None and store.dedupe_get("m1") is None


def test_holds_finds_whole_ids_only() -> None:
    longer = "CHITTY-USER-0" + "A" * 35
    assert holds(msgpack.packb({"by": longer}), longer)
    assert not holds(msgpack.packb({"by": longer}), "CHITTY-USER-0")
    assert holds(msgpack.packb({"note": "said CHITTY-USER-0, twice"}), "CHITTY-USER-0")
    assert not holds(msgpack.packb({"by": "CHITTY-USER-01"}), "CHITTY-USER-0")
    assert holds(b"\xc1 not msgpack CHITTY-USER-0", "CHITTY-USER-0")


def test_purged_dedupe_entries_leave_no_expiry_index_behind(
    tmp_path: Path, clock: FakeClock
) -> None:
    with LmdbStore(tmp_path, now_ms=clock) as store:
        store.append_batch([], [DedupeEntry("m1", b"alice"), DedupeEntry("m2", b"bob")])
        store.dedupe_purge(b"alice")
    assert [key[8:] for key, _ in raw_items(tmp_path, b"dedupe_expiry")] == [b"m2"]


# -- verify on disk -------------------------------------------------------------------------


def rewrite_value(path: Path, key: bytes, value: bytes) -> None:
    env = lmdb.open(str(path), max_dbs=8)
    try:
        db = env.open_db(b"events")
        with env.begin(write=True) as txn:
            txn.put(key, value, db=db)
    finally:
        env.close()


def event_key(entity_id: str, seq: int) -> bytes:
    return entity_id.encode() + b"\x00" + seq.to_bytes(8, "big")


def findings(path: Path) -> list[tuple[CorruptionKind, str | None, int | None]]:
    with LmdbStore(path) as store:
        return [(c.kind, c.entity_id, c.seq) for c in store.verify().corruptions]


def test_a_redacted_record_is_stored_with_its_original_digest_and_time(
    tmp_path: Path, clock: FakeClock
) -> None:
    with LmdbStore(tmp_path, now_ms=clock) as store:
        (event,) = store.append_batch([ev("a", 1, b"alice")])
        store.redact({"a": lambda body: b"anon"})

    ((_, raw),) = raw_items(tmp_path, b"events")
    assert msgpack.unpackb(raw) == [
        1,
        b"anon",
        event.checksum,
        sha256(b"alice").digest(),
        clock.now,
    ]
    assert b"alice" not in raw


def test_verify_reports_tampering_with_plain_and_redacted_records(
    tmp_path: Path, clock: FakeClock
) -> None:
    with LmdbStore(tmp_path, now_ms=clock) as store:
        events = store.append_batch([ev("a", t, f"body {t}".encode()) for t in range(1, 6)])
        store.redact({"a": lambda body: b"anon" if body in (b"body 2", b"body 4") else body})
    assert findings(tmp_path) == []

    e1, _, e3, _, e5 = events
    # A plain event's body changed behind the store's back.
    rewrite_value(tmp_path, event_key("a", 1), msgpack.packb((1, b"forged", e1.checksum)))
    # A redacted record whose "original digest" was swapped for another.
    rewrite_value(
        tmp_path,
        event_key("a", 2),
        msgpack.packb((2, b"anon", events[1].checksum, sha256(b"other").digest(), clock.now)),
    )
    # Flagged redacted, yet the body is the original: nothing was really redacted.
    rewrite_value(
        tmp_path,
        event_key("a", 3),
        msgpack.packb((3, b"body 3", e3.checksum, sha256(b"body 3").digest(), clock.now)),
    )
    # Flagged redacted with a digest that cannot be a sha256.
    rewrite_value(
        tmp_path,
        event_key("a", 5),
        msgpack.packb((5, b"anon", e5.checksum, b"short", clock.now)),
    )

    assert findings(tmp_path) == [
        (CorruptionKind.BAD_CHECKSUM, "a", 1),
        (CorruptionKind.BAD_CHECKSUM, "a", 2),
        (CorruptionKind.REDACTION, "a", 3),
        (CorruptionKind.REDACTION, "a", 5),
        (CorruptionKind.BAD_CHECKSUM, "a", 5),
    ]


def test_redaction_goes_through_the_codec(tmp_path: Path, clock: FakeClock) -> None:
    with LmdbStore(tmp_path, now_ms=clock, codec=XorCodec(0x21)) as store:
        store.append_batch([ev("a", 1, b"alice"), ev("a", 2, b"bob")])
        store.redact({"a": lambda body: body.replace(b"alice", b"anon")})
    with LmdbStore(tmp_path, now_ms=clock, codec=XorCodec(0x21)) as store:
        assert [e.body for e in store.events("a")] == [b"anon", b"bob"]
        assert store.verify().ok


# -- schema 1 -> 2 ---------------------------------------------------------------------------


def downgrade_to_version_1(path: Path, codec: object | None = None) -> None:
    """Rewrite a fresh store as a version-1 build would have written it (no recorded heads,
    snapshots without state digests)."""
    xor = codec if isinstance(codec, XorCodec) else None
    decode = xor.decode if xor else (lambda data: data)
    encode = xor.encode if xor else (lambda data: data)
    env = lmdb.open(str(path), max_dbs=8)
    try:
        events, snapshots = env.open_db(b"events"), env.open_db(b"snapshots")
        with env.begin(write=True) as txn:
            legacy: dict[bytes, bytes] = {}
            previous, entity = GENESIS_CHECKSUM, b""
            for key, raw in list(txn.cursor(db=events)):
                prefix, seq = key[:-8], int.from_bytes(key[-8:], "big")
                if prefix != entity:
                    previous, entity = GENESIS_CHECKSUM, prefix
                timestamp_ms, body, _ = msgpack.unpackb(decode(raw))
                previous = legacy_event_checksum(previous, prefix, seq, timestamp_ms, body)
                legacy[key] = previous
                txn.put(key, encode(msgpack.packb((timestamp_ms, body, previous))), db=events)
            for key, raw in list(txn.cursor(db=snapshots)):
                timestamp_ms, state = msgpack.unpackb(decode(raw))[:2]
                value = msgpack.packb((timestamp_ms, state, legacy[key]))
                txn.put(key, encode(value), db=snapshots)
            meta = env.open_db(b"meta", txn=txn)
            for key in [k for k in txn.cursor(db=meta).iternext(values=False)]:
                if key.startswith(b"head\x00"):
                    txn.delete(key, db=meta)
    finally:
        env.close()
    set_schema_version(path, 1)


def test_a_fresh_store_is_stamped_with_schema_3() -> None:
    assert SCHEMA_VERSION == 3


@pytest.mark.parametrize("codec", [None, XorCodec(0x33)], ids=["plain", "codec"])
def test_a_version_1_store_is_migrated_to_digest_chains(
    tmp_path: Path, clock: FakeClock, codec: XorCodec | None
) -> None:
    with LmdbStore(tmp_path, now_ms=clock, codec=codec) as store:
        written = store.append_batch(
            [ev("a", 1, b"a1"), ev("b", 2, b"b1"), ev("a", 3, b"a2"), ev("a", 4, b"a3")]
        )
        store.save_snapshot(snapshot_of(written[2], b"a after 2"))
        store.append_batch([], [DedupeEntry("m", b"done")])
    downgrade_to_version_1(tmp_path, codec)
    with pytest.raises(SchemaVersionError, match="no migration from version 1"):
        LmdbStore(tmp_path, migrations={}, codec=codec)
    with LmdbStore(tmp_path, now_ms=clock, codec=codec) as store:
        assert [(e.entity_id, e.seq, e.body, e.checksum) for e in store.events("a")] + [
            (e.entity_id, e.seq, e.body, e.checksum) for e in store.events("b")
        ] == [
            (e.entity_id, e.seq, e.body, e.checksum)
            for e in sorted(written, key=lambda e: (e.entity_id, e.seq))
        ]
        snapshot = store.latest_snapshot("a")
        assert snapshot is not None and snapshot.checksum == written[2].checksum
        assert snapshot.state == b"a after 2"
        assert store.dedupe_get("m") == b"done"
        assert store.verify().ok
        (next_event,) = store.append_batch([ev("a", 5, b"a4")])
        assert next_event.checksum == event_checksum(written[3].checksum, b"a\x00", 4, 5, b"a4")
    meta = dict(raw_items(tmp_path, b"meta"))
    assert meta[b"schema_version"] == msgpack.packb(3)  # 1 -> 2 -> 3: heads recorded
    assert meta[b"head\x00a\x00"][:8] == (4).to_bytes(8, "big")


def test_a_broken_version_1_chain_is_refused_and_left_as_it_was(
    tmp_path: Path, clock: FakeClock
) -> None:
    with LmdbStore(tmp_path, now_ms=clock) as store:
        store.append_batch([ev("a", 1, b"a1"), ev("a", 2, b"a2"), ev("b", 3, b"b1")])
    downgrade_to_version_1(tmp_path)
    ((key, raw), *_) = raw_items(tmp_path, b"events")
    timestamp_ms, _, checksum = msgpack.unpackb(raw)
    rewrite_value(tmp_path, key, msgpack.packb((timestamp_ms, b"forged", checksum)))
    before = {name: raw_items(tmp_path, name) for name in (b"events", b"snapshots", b"meta")}

    with pytest.raises(SchemaVersionError, match=r"cannot be migrated .* entity 'a' seq 1"):
        LmdbStore(tmp_path, now_ms=clock)

    assert {name: raw_items(tmp_path, name) for name in before} == before


def test_a_migration_of_more_events_than_one_rewrite_chunk(tmp_path: Path) -> None:
    with LmdbStore(tmp_path) as store:
        for start in range(0, 3000, 500):
            written = store.append_batch(
                [ev(f"e{n % 3}", start + n, b"%d" % n) for n in range(start, start + 500)]
            )
        store.save_snapshot(snapshot_of(written[-1]))
        heads = {e: store.last_seq(e) for e in ("e0", "e1", "e2")}
    downgrade_to_version_1(tmp_path)

    with LmdbStore(tmp_path) as store:
        report = store.verify()
        assert report.ok and report.events == 3000 and report.snapshots == 1
        assert {e: store.last_seq(e) for e in heads} == heads
        assert next(reversed(list(store.events("e2")))).checksum == written[-1].checksum
