"""Encryption at rest: AES-256-GCM through the codec seam; no plaintext reaches the LMDB file."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from hub.catalog import Catalog, Query
from hub.domains import SyncDomain
from hub.store import (
    AesGcmCodec,
    EncryptionKeyError,
    LmdbStore,
    NewEvent,
    StoreError,
    generate_key,
    load_key,
)
from hub.subscriptions import Published

SECRET = b"the settlement figure is 1,234,567"


def lmdb_bytes(directory: Path) -> bytes:
    return b"".join(p.read_bytes() for p in directory.rglob("*.mdb"))


def test_values_round_trip_and_a_nonce_is_never_reused() -> None:
    codec = AesGcmCodec(generate_key())
    sealed = {codec.encode(SECRET) for _ in range(100)}
    assert len(sealed) == 100
    assert all(codec.decode(s) == SECRET for s in sealed)
    with pytest.raises(ValueError, match="wrong key"):
        AesGcmCodec(generate_key()).decode(next(iter(sealed)))
    tampered = bytearray(next(iter(sealed)))
    tampered[-1] ^= 1
    with pytest.raises(ValueError):
        codec.decode(bytes(tampered))


def test_the_store_file_holds_no_plaintext_and_the_wrong_key_is_refused(tmp_path: Path) -> None:
    key = generate_key()
    with LmdbStore(tmp_path / "db", codec=AesGcmCodec(key)) as store:
        store.append_batch([NewEvent("CHITTY-TODO-1", 1, SECRET)])
    assert SECRET not in lmdb_bytes(tmp_path / "db")
    with LmdbStore(tmp_path / "db", codec=AesGcmCodec(key)) as store:
        assert [e.body for e in store.events("CHITTY-TODO-1")] == [SECRET]
        assert store.verify().ok
    with pytest.raises(StoreError):
        LmdbStore(tmp_path / "db", codec=AesGcmCodec(generate_key()))


def test_the_catalog_is_sealed_too(tmp_path: Path) -> None:
    codec = AesGcmCodec(generate_key())
    catalog = Catalog(tmp_path / "catalog", codec=codec)
    item = Published(
        0,
        SyncDomain.TODOS,
        "CHITTY-TODO-1",
        "created",
        1,
        "m1",
        "web",
        "n",
        None,
        None,
        None,
        {"n": 1},
        ("content",),
        {"content": SECRET.decode(), "status": "pending"},
        (),
        1,
    )
    catalog.take("h", [(1, item)])
    assert catalog.query(Query(SyncDomain.TODOS)).rows[0].entity["content"] == SECRET.decode()
    catalog.close()
    assert SECRET not in lmdb_bytes(tmp_path / "catalog")


@pytest.mark.parametrize("form", ["raw", "hex", "base64"])
def test_key_files_in_every_form(tmp_path: Path, form: str) -> None:
    key = generate_key()
    text = {"raw": key, "hex": key.hex().encode(), "base64": base64.b64encode(key) + b"\n"}[form]
    path = tmp_path / "key"
    path.write_bytes(text)
    assert load_key(path) == key


def test_bad_key_files_say_what_is_wrong(tmp_path: Path) -> None:
    with pytest.raises(EncryptionKeyError, match="cannot read"):
        load_key(tmp_path / "missing")
    short = tmp_path / "short"
    short.write_bytes(b"abc")
    with pytest.raises(EncryptionKeyError, match="256-bit"):
        load_key(short)
