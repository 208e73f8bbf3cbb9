"""Offline key rotation of real LMDB environments: the store, the catalog, any env by layout."""

from __future__ import annotations

import os
from pathlib import Path

import lmdb
import pytest

from hub.catalog import Catalog, Query
from hub.domains import SyncDomain
from hub.store import (
    AesGcmCodec,
    DedupeEntry,
    IdentityCodec,
    LmdbStore,
    NewEvent,
    RekeyError,
    Snapshot,
    StoreOpenError,
    ValueCodec,
    compact,
    generate_key,
    rekey,
)
from hub.store.rekey import ALL_VALUES, NO_VALUES, recover_interrupted_rekey
from tests.hub.store.conftest import FakeClock
from tests.hub.test_catalog import published, session_change

MARKER = b"MARKER-personal-data-7f3a"


class FailingCodec:
    """A real codec (AES-GCM) that breaks down after `good` encodes: a crash mid-copy."""

    def __init__(self, inner: ValueCodec, good: int) -> None:
        self._inner = inner
        self._left = good

    def encode(self, data: bytes) -> bytes:
        if self._left == 0:
            raise OSError("simulated crash while re-encrypting")
        self._left -= 1
        return self._inner.encode(data)

    def decode(self, data: bytes) -> bytes:
        return self._inner.decode(data)


def fill_store(path: Path, codec: ValueCodec, clock: FakeClock, entities: int = 30) -> None:
    with LmdbStore(path, codec=codec, now_ms=clock) as store:
        for batch in range(5):
            written = store.append_batch(
                [NewEvent(f"e{i}", batch, MARKER + b" %d" % i) for i in range(entities)],
                [DedupeEntry(f"m{batch}", b"outcome")],
            )
        last = written[0]
        store.save_snapshot(Snapshot("e0", last.seq, last.timestamp_ms, b"st", last.checksum))


def file_bytes(path: Path) -> bytes:
    return (path / "data.mdb").read_bytes()


def siblings(path: Path) -> list[str]:
    return sorted(p.name for p in path.parent.iterdir())


def test_rotating_to_a_new_key_reencrypts_every_value(tmp_path: Path, clock: FakeClock) -> None:
    old, new = AesGcmCodec(generate_key()), AesGcmCodec(generate_key())
    path = tmp_path / "lmdb"
    fill_store(path, old, clock)
    before = file_bytes(path)

    report = rekey(path, old, new)

    assert report.records["events"] == 150 and report.records["snapshots"] == 1
    assert report.kept_old is None
    assert siblings(path) == ["lmdb"]  # nothing left next to it
    assert file_bytes(path) != before
    with pytest.raises(StoreOpenError, match="wrong codec or key"):
        LmdbStore(path, codec=old)
    with LmdbStore(path, codec=new, now_ms=clock) as store:
        assert store.verify().ok
        assert [e.body for e in store.events("e3")] == [MARKER + b" 3"] * 5
        assert store.latest_snapshot("e0") is not None
        assert store.dedupe_get("m4") == b"outcome"
        store.append_batch([NewEvent("e3", 9, b"after")])  # the chain continues


def test_plaintext_to_encrypted_and_back(tmp_path: Path, clock: FakeClock) -> None:
    key = AesGcmCodec(generate_key())
    path = tmp_path / "lmdb"
    fill_store(path, IdentityCodec(), clock)
    assert MARKER in file_bytes(path)

    rekey(path, IdentityCodec(), key)
    assert MARKER not in file_bytes(path)
    with LmdbStore(path, codec=key) as store:
        assert store.verify().ok

    rekey(path, key, IdentityCodec())
    assert MARKER in file_bytes(path)
    with LmdbStore(path) as store:
        assert store.verify().ok


def test_the_old_environment_is_kept_only_when_asked(tmp_path: Path, clock: FakeClock) -> None:
    old, new = AesGcmCodec(generate_key()), AesGcmCodec(generate_key())
    path = tmp_path / "lmdb"
    fill_store(path, old, clock)

    report = rekey(path, old, new, keep_old=True)

    assert report.kept_old is not None and report.kept_old.name.startswith("lmdb.pre-rekey-")
    with LmdbStore(report.kept_old, codec=old) as backup:
        assert backup.verify().ok and backup.last_seq("e1") == 5


@pytest.mark.parametrize("good", [0, 7, 140])
def test_a_crash_midway_leaves_the_old_store_intact_and_usable(
    tmp_path: Path, clock: FakeClock, good: int
) -> None:
    old = AesGcmCodec(generate_key())
    path = tmp_path / "lmdb"
    fill_store(path, old, clock)
    before = file_bytes(path)

    with pytest.raises(OSError, match="simulated crash"):
        rekey(path, old, FailingCodec(AesGcmCodec(generate_key()), good))

    assert file_bytes(path) == before
    assert siblings(path) == ["lmdb"]
    with LmdbStore(path, codec=old, now_ms=clock) as store:
        assert store.verify().ok
        store.append_batch([NewEvent("e1", 10, b"still writable")])


def test_a_wrong_old_key_is_refused_before_anything_is_copied(
    tmp_path: Path, clock: FakeClock
) -> None:
    path = tmp_path / "lmdb"
    fill_store(path, AesGcmCodec(generate_key()), clock)

    with pytest.raises(RekeyError, match="wrong codec or key"):
        rekey(path, AesGcmCodec(generate_key()), IdentityCodec())
    assert siblings(path) == ["lmdb"]


def test_a_store_that_does_not_verify_is_not_rekeyed(tmp_path: Path, clock: FakeClock) -> None:
    path = tmp_path / "lmdb"
    fill_store(path, IdentityCodec(), clock)
    env = lmdb.open(str(path), max_dbs=8)
    events = env.open_db(b"events")
    with env.begin(write=True) as txn:
        txn.delete(b"e2\x00" + (3).to_bytes(8, "big"), db=events)
    env.close()

    with pytest.raises(RekeyError, match=r"does not verify before rekeying.*gap entity 'e2'"):
        rekey(path, IdentityCodec(), AesGcmCodec(generate_key()))


def test_a_crash_between_the_renames_is_finished_on_the_next_open(
    tmp_path: Path, clock: FakeClock
) -> None:
    # The state rekey leaves if it stops right after moving the old environment aside:
    # no <name>, a verified <name>.rekey-new and the <name>.pre-rekey-* backup.
    old, new = AesGcmCodec(generate_key()), AesGcmCodec(generate_key())
    path = tmp_path / "lmdb"
    fill_store(path, old, clock)
    report = rekey(path, old, new, keep_old=True)
    assert report.kept_old is not None
    os.rename(path, path.with_name("lmdb.rekey-new"))

    with LmdbStore(path, codec=new) as store:  # recovers instead of creating an empty store
        assert store.last_seq("e0") == 5 and store.verify().ok
    assert not recover_interrupted_rekey(path)
    assert sorted(siblings(path)) == sorted(["lmdb", report.kept_old.name])


def test_leftovers_of_a_run_that_stopped_before_its_swap_are_cleared(
    tmp_path: Path, clock: FakeClock
) -> None:
    path = tmp_path / "lmdb"
    fill_store(path, IdentityCodec(), clock)
    (tmp_path / "lmdb.rekey-partial").mkdir()
    (tmp_path / "lmdb.rekey-partial" / "data.mdb").write_bytes(b"half a copy")

    key = AesGcmCodec(generate_key())
    rekey(path, IdentityCodec(), key)
    assert siblings(path) == ["lmdb"]


def test_compaction_drops_the_bytes_redaction_rewrote(tmp_path: Path, clock: FakeClock) -> None:
    path = tmp_path / "lmdb"
    with LmdbStore(path, now_ms=clock) as store:
        store.append_batch([NewEvent("a", 1, MARKER), NewEvent("b", 1, b"other")])
        store.redact({"a": lambda body: None})
    assert MARKER in file_bytes(path)  # freed pages still hold it

    compact(path, IdentityCodec())

    assert MARKER not in file_bytes(path)
    with LmdbStore(path) as store:
        assert store.verify().ok and next(store.events("a")).redacted


def test_the_catalog_is_rekeyed_too(tmp_path: Path) -> None:
    old, new = AesGcmCodec(generate_key()), AesGcmCodec(generate_key())
    path = tmp_path / "catalog"
    catalog = Catalog(path, codec=old)
    catalog.take("host-1", [(n, published(n)) for n in range(1, 21)])
    catalog.take("host-1", [(21, session_change("CHITTY-SESSION-1", 1, "CHITTY-PROJ-1"))])
    catalog.close()

    report = rekey(path, old, new)

    assert report.records == {"links": 1, "marks": 1, "rows": 21}
    catalog = Catalog(path, codec=new)
    try:
        page = catalog.query(Query(SyncDomain.TODOS, limit=100))
        assert len(page.rows) == 20
        assert catalog.marks() == {"host-1": 21}
        [link] = catalog.links()  # the link note is sealed by the new key too
        assert (link.project, link.session, link.add) == ("CHITTY-PROJ-1", "CHITTY-SESSION-1", True)
    finally:
        catalog.close()


def test_any_environment_is_rekeyed_by_its_layout(tmp_path: Path) -> None:
    old, new = AesGcmCodec(generate_key()), AesGcmCodec(generate_key())
    path = tmp_path / "auth"
    env = lmdb.open(str(path), max_dbs=4)
    tokens, plain = env.open_db(b"tokens"), env.open_db(b"plain")
    with env.begin(write=True) as txn:
        for n in range(2500):  # more than one copy chunk
            txn.put(b"t%05d" % n, old.encode(b"secret %d" % n), db=tokens)
        txn.put(b"version", b"1", db=plain)
    env.close()

    with pytest.raises(RekeyError, match="neither a checkpoint store's nor a catalog's"):
        rekey(path, old, new)
    with pytest.raises(RekeyError, match=r"does not say how to copy databases \['plain'\]"):
        rekey(path, old, new, layout={"tokens": ALL_VALUES})
    rekey(path, old, new, layout={"tokens": ALL_VALUES, "plain": NO_VALUES})

    env = lmdb.open(str(path), max_dbs=4, readonly=True)
    try:
        with env.begin() as txn:
            values = list(txn.cursor(db=env.open_db(b"tokens", txn=txn, create=False)))
            version = txn.get(b"version", db=env.open_db(b"plain", txn=txn, create=False))
    finally:
        env.close()
    assert len(values) == 2500 and version == b"1"
    assert new.decode(values[1234][1]) == b"secret 1234"
    with pytest.raises(ValueError):
        old.decode(values[0][1])
