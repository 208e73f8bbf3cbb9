"""What a hub checks before it starts (`hub.startup.prepare`), on real data dirs: a private
data dir and the user's key made on a first start; a store that lost its databases (one
flipped bit of LMDB's root pointer), lost events off the end of its chains, disagrees with the
catalog, or does not open with the key is refused with one line saying what to run."""

from __future__ import annotations

import struct
from pathlib import Path

import lmdb
import pytest

from hub.catalog import Catalog
from hub.entity import apply
from hub.settings import HubSettings
from hub.startup import StartRefused, prepare
from hub.store import AesGcmCodec, LmdbStore, NewEvent, generate_key, load_key
from hub.subscriptions import encode_published, outbox_id, publication
from tests.messages import create_todo


def settings(tmp: Path, **overrides: object) -> HubSettings:
    """A hub on `tmp/data` whose user's config dir (the default key's home) is `tmp/config`."""
    return HubSettings(data_dir=tmp / "data", config_dir=tmp / "config", **overrides)


def fill(hub: HubSettings, todos: int = 3) -> list[str]:
    """Todos stored as a host stores them (events and outbox entries in one commit) and taken
    into the catalog, as a running hub leaves them."""
    codec = hub.value_codec()
    ids = [f"CHITTY-TODO-START{n}" for n in range(todos)]
    with LmdbStore(hub.data_dir / "lmdb", codec=codec) as store:
        published = []
        for n, todo in enumerate(ids):
            result = apply(None, create_todo(todo, f"todo {n}", node="a"))
            assert result.state is not None
            published += [publication(e, result.state, 1) for e in result.events]
            store.append_batch([NewEvent(todo, 1000 + n, b"\x80") for _ in result.events])
        outbox = store.append_batch(
            [NewEvent(outbox_id("host-0"), 2000, encode_published(p)) for p in published]
        )
    catalog = Catalog(hub.data_dir / "catalog", codec=codec)
    try:
        catalog.take("host-0", [(e.seq, p) for e, p in zip(outbox, published, strict=True)])
    finally:
        catalog.close()
    return ids


def refused(hub: HubSettings) -> str:
    with pytest.raises(StartRefused) as caught:
        prepare(hub)
    line = str(caught.value)
    assert "\n" not in line and "Traceback" not in line
    return line


def test_a_first_start_makes_the_key_and_a_private_data_dir(tmp_path: Path) -> None:
    hub = settings(tmp_path)
    notes = prepare(hub)
    key = tmp_path / "config" / "encryption.key"
    assert notes == [
        f"created an encryption key at {key} (mode 0600): everything stored is encrypted with "
        "it; back it up with the data dir, without it the data cannot be read"
    ]
    assert key.stat().st_mode & 0o777 == 0o600 and len(load_key(key)) == 32
    assert hub.data_dir.stat().st_mode & 0o777 == 0o700
    assert prepare(hub) == []  # said once
    fill(hub)
    assert prepare(hub) == []
    for path in hub.data_dir.rglob("*"):
        wanted = 0o700 if path.is_dir() else 0o600
        assert path.stat().st_mode & 0o777 == wanted, path
    assert b"todo 1" not in (hub.data_dir / "lmdb" / "data.mdb").read_bytes()


def test_an_old_data_dir_is_made_private(tmp_path: Path) -> None:
    hub = settings(tmp_path, encryption=False)
    fill(hub)
    hub.data_dir.chmod(0o755)
    (hub.data_dir / "lmdb" / "data.mdb").chmod(0o644)
    prepare(hub)
    assert hub.data_dir.stat().st_mode & 0o777 == 0o700
    assert (hub.data_dir / "lmdb" / "data.mdb").stat().st_mode & 0o777 == 0o600


def flip_the_root_pointer(data_mdb: Path) -> None:
    """One bit of the main database's root page number, in LMDB's current meta page."""
    raw = bytearray(data_mdb.read_bytes())
    current = max((0, 1), key=lambda page: struct.unpack_from("<Q", raw, page * 4096 + 144)[0])
    raw[current * 4096 + 128] ^= 0x01
    data_mdb.write_bytes(bytes(raw))


@pytest.mark.parametrize("encryption", [True, False], ids=["encrypted", "plaintext"])
def test_a_store_that_lost_its_databases_refuses_to_start(tmp_path: Path, encryption: bool) -> None:
    hub = settings(tmp_path, encryption=encryption)
    prepare(hub)
    fill(hub, todos=40)
    flip_the_root_pointer(hub.data_dir / "lmdb" / "data.mdb")
    line = refused(hub)
    assert str(hub.data_dir / "lmdb") in line and "chitty audit verify" in line, line
    assert "lost its databases" in line or "cannot be read" in line, line
    with pytest.raises(StartRefused):  # refused again: nothing was recreated meanwhile
        prepare(hub)


def test_a_store_that_is_gone_while_the_catalog_lists_entities_refuses_to_start(
    tmp_path: Path,
) -> None:
    hub = settings(tmp_path)
    prepare(hub)
    fill(hub)
    for path in (hub.data_dir / "lmdb").iterdir():
        path.unlink()
    (hub.data_dir / "lmdb").rmdir()
    line = refused(hub)
    assert "is missing, but the catalog lists 3 entities" in line, line


def test_events_cut_off_the_end_refuse_to_start(tmp_path: Path) -> None:
    hub = settings(tmp_path)
    prepare(hub)
    [todo, *_] = fill(hub)
    env = lmdb.open(str(hub.data_dir / "lmdb"), max_dbs=8)
    with env.begin(write=True, db=env.open_db(b"events")) as txn:
        assert txn.delete(todo.encode() + b"\x00" + (1).to_bytes(8, "big"))
    env.close()
    line = refused(hub)
    assert "has lost events" in line and todo in line, line


def test_a_catalog_ahead_of_the_store_refuses_to_start(tmp_path: Path) -> None:
    hub = settings(tmp_path)
    prepare(hub)
    fill(hub)
    env = lmdb.open(str(hub.data_dir / "lmdb"), max_dbs=8)
    with env.begin(write=True) as txn:  # the store loses the end of a host's outbox, heads too
        events, meta = env.open_db(b"events", txn=txn), env.open_db(b"meta", txn=txn)
        prefix = outbox_id("host-0").encode() + b"\x00"
        assert txn.delete(prefix + (3).to_bytes(8, "big"), db=events)
        assert txn.delete(b"head\x00" + prefix, db=meta)
    env.close()
    line = refused(hub)
    assert "the catalog and the checkpoint store" in line and "host-0 holds 2" in line, line


def test_a_wrong_key_refuses_to_start_in_one_line(tmp_path: Path) -> None:
    hub = settings(tmp_path)
    prepare(hub)
    fill(hub)
    other = tmp_path / "other.key"
    other.write_bytes(generate_key())
    line = refused(settings(tmp_path, encryption_key_file=other))
    assert f"does not open with the key {other}" in line, line
    line = refused(settings(tmp_path, encryption=False))
    assert "is encrypted: start without --no-encryption" in line, line
    assert AesGcmCodec(load_key(tmp_path / "config" / "encryption.key"))  # still there


def test_unencrypted_data_from_before_is_not_silently_encrypted(tmp_path: Path) -> None:
    fill(settings(tmp_path, encryption=False))
    line = refused(settings(tmp_path))
    assert "holds data stored unencrypted" in line and "chitty keys rotate" in line, line
    assert not (tmp_path / "config" / "encryption.key").exists()
    assert prepare(settings(tmp_path, encryption=False)) == []
