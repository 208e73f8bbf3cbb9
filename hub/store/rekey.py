"""Offline key rotation: re-encode every value of an LMDB environment under a new codec.

`rekey(path, old, new)` copies the environment into `<name>.rekey-partial` next to it, every
codec-encoded value decoded with `old` and encoded with `new` (other values as they are),
verifies the copy (same keys, every value decodes with `new` to the same bytes, and for a
checkpoint store every chain), renames it `<name>.rekey-new`, then swaps it in:
`<name>` -> `<name>.pre-rekey-<time>`, `<name>.rekey-new` -> `<name>`. At every moment one
complete environment exists: a crash before the swap leaves the old one at `<name>` (a
`.rekey-partial` or `.rekey-new` left behind is cleared by the next `rekey`), and a crash
between the two renames is finished by `recover_interrupted_rekey`, which `LmdbStore` and
`Catalog` run before opening. The hub must be stopped: nothing may write meanwhile.

A fresh copy holds only live pages, so `compact(path, codec)` (a rekey to the same codec)
also removes what redaction rewrote from the file for good.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import lmdb

from hub.store.codec import ValueCodec
from hub.store.errors import StoreError
from hub.store.lmdb_env import PRIVATE
from hub.store.schema import CODEC_CHECK_KEY, DATABASE_NAMES

Encoded = Callable[[bytes], bool]
"""Given a key, whether its value passes through the codec."""

_CHUNK = 1000  # records per write transaction of the copy
_MAX_DBS = 16


def _always(key: bytes) -> bool:
    return True


def _never(key: bytes) -> bool:
    return False


def _codec_check_only(key: bytes) -> bool:
    return key == CODEC_CHECK_KEY


ALL_VALUES: Encoded = _always
NO_VALUES: Encoded = _never

STORE_LAYOUT: Mapping[str, Encoded] = {
    "events": ALL_VALUES,
    "snapshots": ALL_VALUES,
    "dedupe": ALL_VALUES,
    "dedupe_expiry": NO_VALUES,
    "meta": _codec_check_only,
}
"""The checkpoint store (`<data>/lmdb`)."""

CATALOG_LAYOUT: Mapping[str, Encoded] = {
    "rows": ALL_VALUES,
    "marks": NO_VALUES,
    "links": ALL_VALUES,
}
"""The catalog (`<data>/catalog`); one made before link notes existed has no `links`."""


class RekeyError(StoreError):
    """Key rotation refused or failed; the environment at the path is the old one, intact."""


@dataclass(frozen=True, slots=True)
class RekeyReport:
    """What `rekey` did: records copied per database, and where the old environment is."""

    path: Path
    records: Mapping[str, int]
    kept_old: Path | None


def _sibling(path: Path, suffix: str) -> Path:
    return path.with_name(path.name + suffix)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def recover_interrupted_rekey(path: str | os.PathLike[str]) -> bool:
    """Finish a rekey that stopped between its two renames; True if it did anything.

    Only acts when `path` is missing and a verified `<name>.rekey-new` exists next to it.
    """
    where = Path(path)
    ready = _sibling(where, ".rekey-new")
    if where.exists() or not ready.is_dir():
        return False
    os.rename(ready, where)
    _fsync_dir(where.parent)
    return True


def detect_layout(path: Path) -> Mapping[str, Encoded]:
    """The layout of a checkpoint store or catalog, from its named databases."""
    names = set(_database_names(path))
    if names == set(DATABASE_NAMES):
        return STORE_LAYOUT
    if {"rows", "marks"} <= names <= set(CATALOG_LAYOUT):
        return {name: CATALOG_LAYOUT[name] for name in sorted(names)}
    raise RekeyError(
        f"{path}: databases {sorted(names)} are neither a checkpoint store's nor a catalog's; "
        "pass layout= naming which values of each database are encoded"
    )


def _database_names(path: Path) -> list[str]:
    if not (path / "data.mdb").is_file():
        raise RekeyError(f"{path} is not an LMDB environment (no data.mdb)")
    env = lmdb.open(str(path), max_dbs=_MAX_DBS, readonly=True, lock=True)
    try:
        with env.begin() as txn:
            return [key.decode() for key in txn.cursor().iternext(values=False)]
    finally:
        env.close()


def rekey(
    path: str | os.PathLike[str],
    old_codec: ValueCodec,
    new_codec: ValueCodec,
    *,
    keep_old: bool = False,
    layout: Mapping[str, Encoded] | None = None,
) -> RekeyReport:
    """Re-encode every value of the (offline) environment at `path` from `old_codec` to
    `new_codec`, verify the copy and swap it in; see the module docstring.

    `layout` maps each named database to which of its values are encoded (detected for a
    checkpoint store and a catalog; required for anything else, e.g. a token store); a
    database it does not name is refused rather than copied blindly. Either codec may be
    `IdentityCodec` (no encryption). The old environment is kept as
    `<name>.pre-rekey-<time>` if `keep_old`, else removed. Raises `RekeyError` (the old
    environment untouched) on a value `old_codec` cannot decode, a copy that does not verify,
    or a checkpoint store whose chains do not verify to begin with.
    """
    where = Path(path)
    recover_interrupted_rekey(where)
    if not where.is_dir():
        raise RekeyError(f"no LMDB environment at {where}")
    partial, ready = _sibling(where, ".rekey-partial"), _sibling(where, ".rekey-new")
    for leftover in (partial, ready):  # a previous run that stopped before its swap
        shutil.rmtree(leftover, ignore_errors=True)
    layout = detect_layout(where) if layout is None else layout
    names = _database_names(where)
    unknown = sorted(set(names) - set(layout))
    if unknown:
        raise RekeyError(f"{where}: the layout does not say how to copy databases {unknown}")
    is_store = set(names) == set(DATABASE_NAMES)
    if is_store:
        _check_store(where, old_codec, "before rekeying")
    try:
        records = _copy(where, partial, names, layout, old_codec, new_codec)
        _compare(where, partial, names, layout, old_codec, new_codec)
        if is_store:
            _check_store(partial, new_codec, "after copying")
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    os.rename(partial, ready)
    _fsync_dir(where.parent)
    stamp = time.strftime("%Y%m%dT%H%M%S") + f"{time.time_ns() % 1_000_000_000:09d}"
    backup = _sibling(where, f".pre-rekey-{stamp}")
    os.rename(where, backup)
    os.rename(ready, where)
    _fsync_dir(where.parent)
    if not keep_old:
        shutil.rmtree(backup)
    return RekeyReport(where, records, backup if keep_old else None)


def compact(
    path: str | os.PathLike[str],
    codec: ValueCodec,
    *,
    keep_old: bool = False,
    layout: Mapping[str, Encoded] | None = None,
) -> RekeyReport:
    """Rewrite the (offline) environment into a fresh file holding only its live data (after
    a redaction, the old bodies are then gone from disk, not just unreachable)."""
    return rekey(path, codec, codec, keep_old=keep_old, layout=layout)


def _check_store(path: Path, codec: ValueCodec, when: str) -> None:
    from hub.store.lmdb_store import LmdbStore  # the store module imports this one

    try:
        with LmdbStore(path, codec=codec, readonly=True) as store:
            report = store.verify()
    except StoreError as exc:
        raise RekeyError(f"checkpoint store at {path} {when}: {exc}") from exc
    if not report.ok:
        shown = "; ".join(
            f"{c.database} {c.kind.value} entity {c.entity_id!r} seq {c.seq}: {c.detail}"
            for c in report.corruptions[:10]
        )
        raise RekeyError(f"checkpoint store at {path} does not verify {when}: {shown}")


def _copy(
    source: Path,
    target: Path,
    names: list[str],
    layout: Mapping[str, Encoded],
    old_codec: ValueCodec,
    new_codec: ValueCodec,
) -> dict[str, int]:
    records: dict[str, int] = {}
    src = lmdb.open(str(source), max_dbs=_MAX_DBS, readonly=True, lock=True)
    try:
        map_size = src.info()["map_size"]
        target.mkdir(mode=PRIVATE)
        dst = lmdb.open(str(target), map_size=map_size, max_dbs=_MAX_DBS, subdir=True, mode=PRIVATE)
        try:
            for name in names:
                records[name] = _copy_database(src, dst, name, layout[name], old_codec, new_codec)
            dst.sync(True)
        finally:
            dst.close()
    finally:
        src.close()
    return records


def _copy_database(
    src: lmdb.Environment,
    dst: lmdb.Environment,
    name: str,
    encoded: Encoded,
    old_codec: ValueCodec,
    new_codec: ValueCodec,
) -> int:
    src_db = src.open_db(name.encode(), create=False)
    with dst.begin(write=True) as txn:
        dst_db = dst.open_db(name.encode(), txn=txn)
    copied = 0
    start: bytes | None = None
    while True:
        with src.begin(db=src_db) as txn:
            cursor = txn.cursor()
            found = cursor.first() if start is None else cursor.set_range(start)
            chunk: list[tuple[bytes, bytes]] = []
            while found and len(chunk) < _CHUNK:
                key, value = cursor.item()
                if encoded(key):
                    try:
                        plain = old_codec.decode(value)
                    except ValueError as exc:
                        raise RekeyError(
                            f"{name}: the old codec cannot decode key {key!r} ({exc}); "
                            "wrong old key?"
                        ) from exc
                    value = new_codec.encode(plain)
                chunk.append((key, value))
                found = cursor.next()
            start = cursor.key() if found else None
        _put_chunk(dst, dst_db, chunk)
        copied += len(chunk)
        if start is None:
            return copied


def _put_chunk(dst: lmdb.Environment, db: lmdb._Database, chunk: list[tuple[bytes, bytes]]) -> None:
    while True:
        try:
            with dst.begin(write=True, db=db) as txn:
                cursor = txn.cursor()
                cursor.putmulti(chunk, append=True)
            return
        except lmdb.MapFullError:
            dst.set_mapsize(dst.info()["map_size"] * 2)


def _compare(
    source: Path,
    target: Path,
    names: list[str],
    layout: Mapping[str, Encoded],
    old_codec: ValueCodec,
    new_codec: ValueCodec,
) -> None:
    """Every key of the source is in the copy and nothing else; every value matches."""
    src = lmdb.open(str(source), max_dbs=_MAX_DBS, readonly=True, lock=True)
    dst = lmdb.open(str(target), max_dbs=_MAX_DBS, readonly=True, lock=True)
    try:
        with src.begin() as src_txn, dst.begin() as dst_txn:
            for name in names:
                encoded = layout[name]
                src_db = src.open_db(name.encode(), txn=src_txn, create=False)
                dst_db = dst.open_db(name.encode(), txn=dst_txn, create=False)
                theirs = dst_txn.cursor(db=dst_db)
                has_theirs = theirs.first()
                for key, value in src_txn.cursor(db=src_db):
                    if not has_theirs or theirs.key() != key:
                        raise RekeyError(f"{name}: key {key!r} is missing from the copy")
                    copied = theirs.value()
                    if encoded(key):
                        try:
                            same = new_codec.decode(copied) == old_codec.decode(value)
                        except ValueError as exc:
                            raise RekeyError(
                                f"{name}: the new codec cannot decode key {key!r} of the copy "
                                f"({exc})"
                            ) from exc
                    else:
                        same = copied == value
                    if not same:
                        raise RekeyError(f"{name}: the copy of key {key!r} differs")
                    has_theirs = theirs.next()
                if has_theirs:
                    raise RekeyError(f"{name}: the copy has a key {theirs.key()!r} too many")
    finally:
        dst.close()
        src.close()
