"""What only the LMDB store does: persistence, on-disk layout, codec seam, schema, map growth."""

from __future__ import annotations

import re
import subprocess
import sys
import threading
from pathlib import Path

import lmdb
import msgpack
import pytest

from hub.store import (
    SCHEMA_VERSION,
    DedupeEntry,
    LmdbStore,
    MigrationContext,
    NewEvent,
    ReadOnlyStoreError,
    SchemaVersionError,
    Snapshot,
    StoreFullError,
    StoreOpenError,
)
from tests.hub.store.conftest import FakeClock

REPO_ROOT = Path(__file__).resolve().parents[3]


def ev(entity_id: str, timestamp_ms: int, body: bytes = b"body") -> NewEvent:
    return NewEvent(entity_id, timestamp_ms, body)


class XorCodec:
    """A stand-in for encryption: tagged, byte-scrambled values; refuses foreign bytes."""

    def __init__(self, key: int) -> None:
        self._tag = b"X" + bytes([key])
        self._key = key

    def encode(self, data: bytes) -> bytes:
        return self._tag + bytes(b ^ self._key for b in data)

    def decode(self, data: bytes) -> bytes:
        if not data.startswith(self._tag):
            raise ValueError("not encoded with this key")
        return bytes(b ^ self._key for b in data[2:])


def raw_items(path: Path, database: bytes) -> list[tuple[bytes, bytes]]:
    env = lmdb.open(str(path), max_dbs=8, readonly=True)
    try:
        db = env.open_db(database, create=False)
        with env.begin() as txn:
            return list(txn.cursor(db=db))
    finally:
        env.close()


def set_schema_version(path: Path, version: int) -> None:
    env = lmdb.open(str(path), max_dbs=8)
    try:
        meta = env.open_db(b"meta")
        with env.begin(write=True) as txn:
            txn.put(b"schema_version", msgpack.packb(version), db=meta)
    finally:
        env.close()


# -- persistence and layout ----------------------------------------------------------------


def test_everything_survives_a_reopen_and_the_chain_continues(
    tmp_path: Path, clock: FakeClock
) -> None:
    with LmdbStore(tmp_path, now_ms=clock) as store:
        written = store.append_batch([ev("a", 1), ev("a", 2)], [DedupeEntry("m", b"done")])
        store.save_snapshot(
            Snapshot("a", 2, 2, b"state", written[1].checksum),
        )

    with LmdbStore(tmp_path, now_ms=clock) as store:
        assert list(store.events("a")) == written
        snapshot = store.latest_snapshot("a")
        assert snapshot is not None and snapshot.state == b"state"
        assert store.dedupe_get("m") == b"done"
        (third,) = store.append_batch([ev("a", 3)])
        assert third.seq == 3
        assert store.verify().ok


def test_keys_are_entity_nul_big_endian_seq_and_values_msgpack(tmp_path: Path) -> None:
    with LmdbStore(tmp_path) as store:
        store.append_batch([ev("b", 5, b"x"), ev("a", 6, b"y"), ev("a", 7, b"z")])

    items = raw_items(tmp_path, b"events")
    assert [key for key, _ in items] == [
        b"a\x00" + (1).to_bytes(8, "big"),
        b"a\x00" + (2).to_bytes(8, "big"),
        b"b\x00" + (1).to_bytes(8, "big"),
    ]
    timestamp_ms, body, checksum = msgpack.unpackb(items[0][1])
    assert (timestamp_ms, body, len(checksum)) == (6, b"y", 32)
    assert dict(raw_items(tmp_path, b"meta"))[b"schema_version"] == msgpack.packb(SCHEMA_VERSION)


def test_range_scans_stay_ordered_past_255_and_65535(tmp_path: Path) -> None:
    with LmdbStore(tmp_path) as store:
        for start in range(0, 70_000, 10_000):
            store.append_batch([ev("a", t) for t in range(start, start + 10_000)])
        store.append_batch([ev("a\x01", 0), ev("`", 0)])  # neighbours on both sides of "a\0"

        assert store.last_seq("a") == 70_000
        seqs = [e.seq for e in store.events("a", after_seq=250, until_seq=65_600)]
        assert seqs == list(range(251, 65_601))
        assert store.seq_at_time("a", 65_535) == 65_536


# -- codec seam ----------------------------------------------------------------------------


def test_values_pass_through_the_codec(tmp_path: Path, clock: FakeClock) -> None:
    secret = b"top secret body"
    with LmdbStore(tmp_path, now_ms=clock, codec=XorCodec(0x5A)) as store:
        (event,) = store.append_batch([ev("a", 1, secret)], [DedupeEntry("m", b"outcome")])
        store.save_snapshot(Snapshot("a", 1, 1, b"secret state", event.checksum))

    for database in (b"events", b"snapshots", b"dedupe"):
        for _, value in raw_items(tmp_path, database):
            assert value.startswith(b"X\x5a")
            assert secret not in value and b"secret state" not in value

    with LmdbStore(tmp_path, now_ms=clock, codec=XorCodec(0x5A)) as store:
        assert [e.body for e in store.events("a")] == [secret]
        assert store.dedupe_get("m") == b"outcome"
        assert store.verify().ok


def test_a_store_refuses_a_codec_that_cannot_read_it(tmp_path: Path) -> None:
    LmdbStore(tmp_path, codec=XorCodec(1)).close()

    with pytest.raises(StoreOpenError, match="wrong codec or key"):
        LmdbStore(tmp_path, codec=XorCodec(2))
    with pytest.raises(StoreOpenError, match="wrong codec or key"):
        LmdbStore(tmp_path)


# -- schema versions -----------------------------------------------------------------------


def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    LmdbStore(tmp_path).close()
    set_schema_version(tmp_path, SCHEMA_VERSION + 1)

    with pytest.raises(SchemaVersionError, match="newer than this code's"):
        LmdbStore(tmp_path)


def test_an_older_schema_without_a_migration_is_refused(tmp_path: Path) -> None:
    LmdbStore(tmp_path).close()
    set_schema_version(tmp_path, SCHEMA_VERSION - 1)

    with pytest.raises(SchemaVersionError, match="no migration from version"):
        LmdbStore(tmp_path, migrations={})


def test_an_older_schema_is_migrated_once_in_one_transaction(tmp_path: Path) -> None:
    with LmdbStore(tmp_path) as store:
        store.append_batch([ev("a", 1)])
    set_schema_version(tmp_path, SCHEMA_VERSION - 1)
    runs: list[int] = []

    def step(context: MigrationContext) -> None:
        runs.append(context.txn.stat(context.dbs.events)["entries"])
        context.txn.put(b"migrated", b"yes", db=context.dbs.meta)

    migrations = {SCHEMA_VERSION - 1: step}
    with pytest.raises(SchemaVersionError, match="open it once read-write"):
        LmdbStore(tmp_path, readonly=True, migrations=migrations)
    with LmdbStore(tmp_path, migrations=migrations) as store:
        assert store.last_seq("a") == 1
        assert store.verify().ok
    LmdbStore(tmp_path, migrations=migrations).close()

    assert runs == [1]
    meta = dict(raw_items(tmp_path, b"meta"))
    assert meta[b"migrated"] == b"yes"
    assert meta[b"schema_version"] == msgpack.packb(SCHEMA_VERSION)


def test_a_failed_migration_leaves_the_old_store_untouched(tmp_path: Path) -> None:
    with LmdbStore(tmp_path) as store:
        store.append_batch([ev("a", 1)])
    set_schema_version(tmp_path, SCHEMA_VERSION - 1)

    def broken(context: MigrationContext) -> None:
        context.txn.put(b"half", b"done", db=context.dbs.meta)
        raise RuntimeError("migration bug")

    with pytest.raises(RuntimeError, match="migration bug"):
        LmdbStore(tmp_path, migrations={SCHEMA_VERSION - 1: broken})
    meta = dict(raw_items(tmp_path, b"meta"))
    assert b"half" not in meta
    assert meta[b"schema_version"] == msgpack.packb(SCHEMA_VERSION - 1)


def test_an_lmdb_environment_that_is_not_a_store_is_refused(tmp_path: Path) -> None:
    env = lmdb.open(str(tmp_path), max_dbs=8)
    events = env.open_db(b"events")
    with env.begin(write=True) as txn:
        txn.put(b"a\x00" + bytes(8), b"junk", db=events)
    env.close()

    with pytest.raises(SchemaVersionError, match="has data but no schema version"):
        LmdbStore(tmp_path)


# -- opening -------------------------------------------------------------------------------


def test_a_path_that_is_a_file_gives_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("I am a file")

    with pytest.raises(StoreOpenError, match=r"not-a-dir exists and is not a directory"):
        LmdbStore(blocker)
    with pytest.raises(StoreOpenError, match="cannot create checkpoint store directory"):
        LmdbStore(blocker / "below")


def test_a_directory_without_a_store_cannot_be_opened_read_only(tmp_path: Path) -> None:
    with pytest.raises(StoreOpenError, match=re.escape(str(tmp_path / "missing"))):
        LmdbStore(tmp_path / "missing", readonly=True)


def test_a_read_only_store_reads_but_refuses_writes(tmp_path: Path) -> None:
    with LmdbStore(tmp_path) as store:
        store.append_batch([ev("a", 1)])

    with LmdbStore(tmp_path, readonly=True) as reader:
        assert reader.last_seq("a") == 1
        assert reader.verify().ok
        with pytest.raises(ReadOnlyStoreError):
            reader.append_batch([ev("a", 2)])
        with pytest.raises(ReadOnlyStoreError):
            reader.dedupe_prune()


def test_the_same_store_cannot_be_opened_twice_in_one_process(tmp_path: Path) -> None:
    with LmdbStore(tmp_path), pytest.raises(StoreOpenError, match="already open"):
        LmdbStore(tmp_path)


# -- map growth ----------------------------------------------------------------------------


def test_the_map_grows_when_full_and_the_batch_is_retried(tmp_path: Path) -> None:
    with LmdbStore(tmp_path, map_size=64 * 1024) as store:
        assert store.map_size == 64 * 1024
        written = []
        for batch in range(20):
            written += store.append_batch([ev(f"e{i % 7}", batch, b"x" * 2000) for i in range(50)])
        assert store.map_size >= 2 * 1024 * 1024
        assert sum(1 for e in written if e.entity_id == "e0") == store.last_seq("e0")
        assert [e.body for e in store.events("e3")] == [b"x" * 2000] * store.last_seq("e3")
        assert store.verify().ok

    with LmdbStore(tmp_path, map_size=64 * 1024) as store:  # a grown map is kept on reopen
        assert store.map_size >= 2 * 1024 * 1024


def test_a_map_at_its_maximum_gives_a_clear_error_and_keeps_old_data(tmp_path: Path) -> None:
    with LmdbStore(tmp_path, map_size=128 * 1024, max_map_size=256 * 1024) as store:
        store.append_batch([ev("a", 0)])
        with pytest.raises(StoreFullError, match="max_map_size"):
            store.append_batch([ev("a", 1, b"y" * 4000) for _ in range(200)])
        assert store.last_seq("a") == 1
        assert store.append_batch([ev("a", 2)])[0].seq == 2
        assert store.verify().ok


# -- concurrency ---------------------------------------------------------------------------


@pytest.mark.timeout(30)  # a starved map resize would otherwise hang here
def test_threads_may_append_and_read_while_the_map_grows(tmp_path: Path) -> None:
    errors: list[BaseException] = []
    done = threading.Event()

    with LmdbStore(tmp_path, map_size=64 * 1024) as store:

        def writer(name: str) -> None:
            try:
                for batch in range(40):
                    store.append_batch([ev(name, batch, b"w" * 500), ev("shared", 0, b"s")])
            except BaseException as exc:
                errors.append(exc)

        def reader() -> None:
            try:
                while not done.is_set():
                    seqs = [e.seq for e in store.events("shared")]
                    assert seqs == list(range(1, len(seqs) + 1))
            except BaseException as exc:
                errors.append(exc)

        writers = [threading.Thread(target=writer, args=(f"w{i}",)) for i in range(4)]
        readers = [threading.Thread(target=reader) for _ in range(2)]
        for thread in writers + readers:
            thread.start()
        for thread in writers:
            thread.join()
        done.set()
        for thread in readers:
            thread.join()

        assert errors == []
        assert store.last_seq("shared") == 160
        assert [store.last_seq(f"w{i}") for i in range(4)] == [40] * 4
        assert store.map_size > 64 * 1024
        assert store.verify().ok


@pytest.mark.parametrize("head_cache_size", [100_000, 0])
def test_appends_continue_the_chain_after_another_process_wrote(
    tmp_path: Path, head_cache_size: int
) -> None:
    other_process = (
        "import sys\n"
        "from hub.store import LmdbStore, NewEvent\n"
        "with LmdbStore(sys.argv[1]) as store:\n"
        "    store.append_batch([NewEvent('a', 5, b'from the other process')] * 3)\n"
    )
    with LmdbStore(tmp_path, head_cache_size=head_cache_size) as store:
        store.append_batch([ev("a", 1)])  # this process now has "a" at seq 1 cached
        subprocess.run(
            [sys.executable, "-c", other_process, str(tmp_path)], check=True, cwd=REPO_ROOT
        )
        (event,) = store.append_batch([ev("a", 9)])

        assert event.seq == 5
        assert [e.body for e in store.events("a")][1:4] == [b"from the other process"] * 3
        assert store.verify().ok


def test_a_paused_event_stream_holds_no_reader_slot(tmp_path: Path) -> None:
    with LmdbStore(tmp_path, max_readers=1) as store:
        store.append_batch([ev("a", t) for t in range(3000)])
        stream = store.events("a")
        assert next(stream).seq == 1  # the stream is paused inside its first chunk

        assert store.last_seq("a") == 3000  # needs the only reader slot
        assert sum(1 for _ in stream) == 2999
