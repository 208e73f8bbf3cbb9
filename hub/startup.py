"""What a hub makes sure of before it starts: a private data dir, its encryption key, and
stored data that is whole and agrees with itself.

`prepare(settings)` creates the data dir (0700; files in it 0600), creates the user's
encryption key on a first start (encryption at rest is on by default), then checks that the
checkpoint store still has its databases, opens with the key, records every entity's head
where its last event is, and agrees with the catalog (no entity the catalog has seen has fewer
events in the store; no host's outbox holds fewer publications than the catalog took). Any
failure is a `StartRefused`: one line saying what is wrong and which command inspects or
repairs it. Nothing is written but the key, the directory modes and (for an older store) its
schema migration.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import lmdb
import msgpack

from hub.settings import HubSettings
from hub.store.codec import ValueCodec
from hub.store.crypto import EncryptionKeyError, generate_key
from hub.store.errors import SchemaVersionError, StoreError, StoreOpenError
from hub.store.lmdb_store import LmdbStore
from hub.store.schema import CODEC_CHECK_KEY, CODEC_CHECK_PLAINTEXT, DATABASE_NAMES
from hub.subscriptions import outbox_id

INSPECT = "`chitty audit verify` names what is damaged"
_FRESH_PAGES = 8  # an environment this small never held data (LMDB's meta pages and roots)


class StartRefused(Exception):
    """The hub must not start on this data dir: one line saying why and what to run."""


def prepare(settings: HubSettings) -> list[str]:
    """Make the data dir ready and check it (see the module); the notes to show once."""
    private_dir(settings.data_dir)
    notes = ensure_key(settings)
    check_store(settings)
    return notes


def private_dir(path: Path) -> None:
    """Create `path` (and its parents) 0700, and take group and other access from it and from
    what it holds (files 0600), so nothing of a hub is readable by other users."""
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        for item in (path, *_children(path)):
            mode = item.lstat().st_mode
            if stat.S_ISLNK(mode) or not mode & 0o077:
                continue
            item.chmod(0o700 if stat.S_ISDIR(mode) else 0o600)
    except OSError as error:
        raise StartRefused(f"cannot make the data dir {path} private: {error}") from None


def _children(path: Path) -> Iterator[Path]:
    """What the hub keeps in its data dir: its files and its environments' files."""
    for item in path.iterdir():
        yield item
        if item.is_dir() and not item.is_symlink():
            yield from item.iterdir()


def _stored(data_dir: Path) -> bool:
    """Whether the data dir holds a hub's stored data (any of its LMDB environments)."""
    return any((data_dir / name / "data.mdb").exists() for name in ("lmdb", "catalog", "auth"))


def store_is_plaintext(path: Path) -> bool:
    """Whether the checkpoint store at `path` was written unencrypted (its codec check value
    is stored as it is); False when it is encrypted, or is not (yet) a store."""
    if not (path / "data.mdb").exists():
        return False
    try:
        env = lmdb.open(str(path), max_dbs=8, readonly=True, lock=True)
    except lmdb.Error:
        return False
    try:
        with env.begin() as txn:
            try:
                meta = env.open_db(b"meta", txn=txn, create=False)
            except lmdb.Error:
                return False
            return txn.get(CODEC_CHECK_KEY, db=meta) == CODEC_CHECK_PLAINTEXT
    finally:
        env.close()


def ensure_key(settings: HubSettings) -> list[str]:
    """Create the user's encryption key on a first start; refuse a key that is missing for
    data written with one, and data written without one."""
    key_file = settings.key_file
    if key_file is None or key_file.exists():
        return []
    store = settings.data_dir / "lmdb"
    if settings.encryption_key_file is not None:
        raise StartRefused(
            f"the encryption key file {key_file} does not exist: make one with "
            f"`chitty keys generate {key_file}`, or set CHITTY_ENCRYPTION_KEY_FILE to the key "
            "the data was written with"
        )
    if store_is_plaintext(store):
        raise StartRefused(
            f"{settings.data_dir} holds data stored unencrypted (encryption at rest is now on "
            f"by default): encrypt it with `chitty keys generate {key_file} && chitty keys "
            f"rotate --to {key_file}` (hub stopped), or start with --no-encryption"
        )
    if _stored(settings.data_dir):
        raise StartRefused(
            f"{settings.data_dir} holds encrypted data but there is no key at {key_file}: "
            "set CHITTY_ENCRYPTION_KEY_FILE to the key it was written with"
        )
    try:
        key_file.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        descriptor = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "wb") as out:
            out.write(generate_key())
            out.flush()
            os.fsync(out.fileno())
    except FileExistsError:
        return []  # another process made it just now: use that one
    except OSError as error:
        raise StartRefused(f"cannot create the encryption key {key_file}: {error}") from None
    return [
        f"created an encryption key at {key_file} (mode 0600): everything stored is encrypted "
        "with it; back it up with the data dir, without it the data cannot be read"
    ]


def check_store(settings: HubSettings) -> None:
    """The checkpoint store has its databases, opens with the key, and agrees with its
    recorded heads and with the catalog (see the module)."""
    store_path = settings.data_dir / "lmdb"
    catalog = _catalog_marks(settings, rows=False)
    if not (store_path / "data.mdb").exists():
        if catalog.seen:
            raise StartRefused(
                f"the checkpoint store {store_path} is missing, but the catalog lists "
                f"{catalog.rows} entities it held: restore {store_path} from a backup "
                f"({INSPECT})"
            )
        return
    _check_databases(store_path, catalog.seen)
    try:
        codec = settings.value_codec()
    except EncryptionKeyError as error:
        raise StartRefused(str(error)) from None
    try:
        store = LmdbStore(store_path, codec=codec, map_size=settings.lmdb_map_size)
    except StoreOpenError as error:
        if "wrong codec or key" in str(error):
            raise StartRefused(_wrong_key(settings, store_path)) from None
        raise StartRefused(f"cannot open the checkpoint store {store_path}: {error}") from None
    except SchemaVersionError as error:
        raise StartRefused(str(error)) from None
    except StoreError as error:
        raise StartRefused(f"the checkpoint store {store_path}: {error} ({INSPECT})") from None
    try:
        _check_heads(store, store_path)
        if settings.ray_address is None:  # on a cluster, other nodes hold other entities
            _check_catalog(store, _catalog_marks(settings, rows=True), settings.data_dir)
    finally:
        store.close()


def _wrong_key(settings: HubSettings, store_path: Path) -> str:
    if not settings.encryption:
        return (
            f"{settings.data_dir} is encrypted: start without --no-encryption, with the key "
            "it was written with"
        )
    if store_is_plaintext(store_path):
        return (
            f"{settings.data_dir} holds data stored unencrypted: encrypt it with `chitty keys "
            "rotate --to <key file>` (hub stopped), or start with --no-encryption"
        )
    where = settings.key_file or "CHITTY_ENCRYPTION_KEY"
    return (
        f"the data in {settings.data_dir} does not open with the key {where} (a wrong key?): "
        "set CHITTY_ENCRYPTION_KEY_FILE to the key it was written with"
    )


def _check_databases(store_path: Path, catalog_seen: bool) -> None:
    """Refuse a store whose named databases are gone (a damaged root page reads as empty)."""
    try:
        env = lmdb.open(str(store_path), max_dbs=8, readonly=True, lock=True)
    except lmdb.Error as error:
        raise StartRefused(
            f"the checkpoint store {store_path} cannot be read ({error}): restore it from a "
            f"backup ({INSPECT})"
        ) from None
    try:
        with env.begin() as txn:
            names = {
                bytes(key).decode("utf-8", "replace") for key in txn.cursor().iternext(values=False)
            }
        pages = int(env.info()["last_pgno"])
    except lmdb.Error as error:
        raise StartRefused(
            f"the checkpoint store {store_path} cannot be read ({error}): restore it from a "
            f"backup ({INSPECT})"
        ) from None
    finally:
        env.close()
    missing = [name for name in DATABASE_NAMES if name not in names]
    if not missing or (
        len(missing) == len(DATABASE_NAMES) and not catalog_seen and pages <= _FRESH_PAGES
    ):
        return  # whole, or an environment that never held anything
    raise StartRefused(
        f"the checkpoint store {store_path} has lost its databases ({', '.join(missing)} "
        f"missing): restore it from a backup ({INSPECT})"
    )


def _check_heads(store: LmdbStore, store_path: Path) -> None:
    cut = store.check_heads()
    if cut:
        first = cut[0]
        raise StartRefused(
            f"the checkpoint store {store_path} has lost events: {len(cut)} entities end before "
            f"their recorded heads (first: {first.entity_id}: {first.detail}); restore it from "
            f"a backup ({INSPECT})"
        )


class _Catalog:
    """What the catalog has taken: each entity's newest seq, each host's outbox mark."""

    def __init__(self, seqs: dict[str, int], marks: dict[str, int], rows: int) -> None:
        self.seqs = seqs
        self.marks = marks
        self.rows = rows

    @property
    def seen(self) -> bool:
        return bool(self.rows) or any(self.marks.values())


def _catalog_marks(settings: HubSettings, rows: bool) -> _Catalog:
    """The catalog's host marks and row count, and (`rows`: decoded with the key) each row's
    entity and seq."""
    path = settings.data_dir / "catalog"
    if not (path / "data.mdb").exists():
        return _Catalog({}, {}, 0)
    codec: ValueCodec | None = None
    seqs: dict[str, int] = {}
    marks: dict[str, int] = {}
    count = 0
    try:
        env = lmdb.open(str(path), max_dbs=4, readonly=True, lock=True)
    except lmdb.Error as error:
        raise StartRefused(f"the catalog {path} cannot be read ({error}): {_REBUILD}") from None
    try:
        with env.begin() as txn:
            for name, into in ((b"rows", seqs), (b"marks", marks)):
                try:
                    db = env.open_db(name, txn=txn, create=False)
                except lmdb.NotFoundError:
                    continue
                if name == b"rows":
                    count = int(txn.stat(db)["entries"])
                    if not rows:
                        continue
                for key, raw in txn.cursor(db=db):
                    if name == b"marks":
                        into[bytes(key).decode()] = int(raw)
                        continue
                    if codec is None:
                        codec = _catalog_codec(settings)
                    try:
                        row = msgpack.unpackb(codec.decode(raw), raw=False)
                        into[str(row["id"])] = int(row["seq"])
                    except (ValueError, KeyError, TypeError, msgpack.UnpackException):
                        raise StartRefused(
                            f"a row of the catalog {path} cannot be read with this key: {_REBUILD}"
                        ) from None
    except lmdb.Error as error:
        raise StartRefused(f"the catalog {path} cannot be read ({error}): {_REBUILD}") from None
    finally:
        env.close()
    return _Catalog(seqs, marks, count)


_REBUILD = (
    "if the checkpoint store is right (`chitty audit verify`), remove the catalog directory "
    "and the hub rebuilds it from the store"
)


def _catalog_codec(settings: HubSettings) -> ValueCodec:
    try:
        return settings.value_codec()
    except EncryptionKeyError as error:
        raise StartRefused(str(error)) from None


def _check_catalog(store: LmdbStore, catalog: _Catalog, data_dir: Path) -> None:
    behind = [
        (entity_id, seq, store.last_seq(entity_id))
        for entity_id, seq in catalog.seqs.items()
        if store.last_seq(entity_id) < seq
    ]
    outboxes = [
        (host, mark, store.last_seq(outbox_id(host)))
        for host, mark in catalog.marks.items()
        if store.last_seq(outbox_id(host)) < mark
    ]
    if not behind and not outboxes:
        return
    if behind:
        entity_id, seq, held = behind[0]
        what = (
            f"{len(behind)} entities the catalog lists have fewer events in the store (first: "
            f"{entity_id}, {held} of {seq})"
        )
    else:
        host, mark, held = outboxes[0]
        what = f"the outbox of {host} holds {held} publications, the catalog took {mark}"
    raise StartRefused(
        f"the catalog and the checkpoint store in {data_dir} disagree: {what}; the store has "
        f"lost data: restore {data_dir / 'lmdb'} from a backup ({INSPECT})"
    )
