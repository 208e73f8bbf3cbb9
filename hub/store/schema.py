"""Schema versioning of an LMDB store: stamp new stores, migrate older ones, refuse the rest."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

import lmdb
import msgpack

from hub.store.codec import ValueCodec
from hub.store.errors import SchemaVersionError, StoreOpenError
from hub.store.migrations import chain_over_body_digests, record_heads

SCHEMA_VERSION = 3
# 1: event checksums chained over the body. 2: chained over sha256(body), so a body can be
# redacted (rewritten, its original digest kept in the record) and the chain still verify.
# 3: every entity's head (last seq and checksum) recorded in `meta` with each append.
SCHEMA_KEY = b"schema_version"
CODEC_CHECK_KEY = b"codec_check"
# Encoded with the store's codec at creation: a wrong codec (say, a wrong key) fails clearly
# at open instead of as a corrupt event later.
CODEC_CHECK_PLAINTEXT = b"chittychat checkpoint store"


@dataclass(frozen=True, slots=True)
class Databases:
    """The named LMDB databases of a store."""

    events: lmdb._Database
    snapshots: lmdb._Database
    dedupe: lmdb._Database
    dedupe_expiry: lmdb._Database
    meta: lmdb._Database


DATABASE_NAMES = ("events", "snapshots", "dedupe", "dedupe_expiry", "meta")


@dataclass(frozen=True, slots=True)
class MigrationContext:
    """What a migration step gets: the open write transaction, the databases and the codec."""

    txn: lmdb.Transaction[bytes]
    dbs: Databases
    codec: ValueCodec
    path: str = ""


Migration = Callable[[MigrationContext], None]
"""Upgrades a store in place from version v to v + 1 (registered under v)."""

MIGRATIONS: Mapping[int, Migration] = MappingProxyType(
    {1: chain_over_body_digests, 2: record_heads}
)
"""The migrations this code ships: 1 -> 2 re-chains events over their body digests, 2 -> 3
records every entity's head."""


def read_version(txn: lmdb.Transaction[bytes], dbs: Databases) -> int | None:
    """The schema version stamped in `meta`, None for a store that was never stamped."""
    raw = txn.get(SCHEMA_KEY, db=dbs.meta)
    if raw is None:
        return None
    try:
        version = msgpack.unpackb(raw)
    except (ValueError, msgpack.UnpackException) as exc:
        raise SchemaVersionError(f"meta schema_version is undecodable: {raw!r}") from exc
    if type(version) is not int:
        raise SchemaVersionError(f"meta schema_version is not an int: {raw!r}")
    return version


def write_version(txn: lmdb.Transaction[bytes], dbs: Databases, version: int) -> None:
    """Stamp `version` in `meta` (kept out of the codec so any build can read it)."""
    txn.put(SCHEMA_KEY, msgpack.packb(version), db=dbs.meta)


def prepare(
    txn: lmdb.Transaction[bytes],
    dbs: Databases,
    codec: ValueCodec,
    *,
    path: str,
    readonly: bool,
    migrations: Mapping[int, Migration],
) -> None:
    """Stamp a new store, migrate an older one (in `txn`, atomically) or refuse clearly."""
    version = read_version(txn, dbs)
    if version is None:
        has_data = any(txn.stat(db)["entries"] for db in (dbs.events, dbs.snapshots, dbs.dedupe))
        if has_data:
            raise SchemaVersionError(f"checkpoint store at {path} has data but no schema version")
        if readonly:
            raise StoreOpenError(f"checkpoint store at {path} was never initialised")
        write_version(txn, dbs, SCHEMA_VERSION)
        txn.put(CODEC_CHECK_KEY, codec.encode(CODEC_CHECK_PLAINTEXT), db=dbs.meta)
        return
    if version > SCHEMA_VERSION:
        raise SchemaVersionError(
            f"checkpoint store at {path} has schema version {version}, newer than this code's "
            f"{SCHEMA_VERSION}: upgrade chittychat to open it"
        )
    if version < SCHEMA_VERSION:
        missing = [v for v in range(version, SCHEMA_VERSION) if v not in migrations]
        if missing:
            raise SchemaVersionError(
                f"checkpoint store at {path} has schema version {version}, older than this "
                f"code's {SCHEMA_VERSION}, and there is no migration from version {missing[0]}"
            )
        if readonly:
            raise SchemaVersionError(
                f"checkpoint store at {path} has schema version {version} and needs migrating "
                f"to {SCHEMA_VERSION}: open it once read-write"
            )
        # The codec is checked first: a wrong key must not read as a broken chain.
        check_codec(txn, dbs, codec, path=path)
        context = MigrationContext(txn, dbs, codec, path)
        for step_from in range(version, SCHEMA_VERSION):
            migrations[step_from](context)
            write_version(txn, dbs, step_from + 1)
    check_codec(txn, dbs, codec, path=path)


def check_codec(
    txn: lmdb.Transaction[bytes], dbs: Databases, codec: ValueCodec, *, path: str
) -> None:
    """Refuse a codec that cannot read the store's codec check value."""
    raw = txn.get(CODEC_CHECK_KEY, db=dbs.meta)
    if raw is None:
        raise SchemaVersionError(f"checkpoint store at {path} has no codec check value in meta")
    try:
        plain = codec.decode(raw)
    except ValueError as exc:
        raise StoreOpenError(
            f"checkpoint store at {path}: the value codec cannot decode this store ({exc}); "
            "wrong codec or key?"
        ) from exc
    if plain != CODEC_CHECK_PLAINTEXT:
        raise StoreOpenError(
            f"checkpoint store at {path}: the value codec does not match this store's "
            "(wrong codec or key?)"
        )
