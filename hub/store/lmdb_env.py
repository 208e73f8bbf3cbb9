"""`LmdbEnvironment`: durable LMDB transactions whose memory map grows on demand."""

from __future__ import annotations

import errno
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

import lmdb

from hub.store.errors import (
    ReadOnlyStoreError,
    StoreClosedError,
    StoreError,
    StoreFullError,
    StoreOpenError,
    StoreWriteError,
)
from hub.store.gate import ResizeGate

T = TypeVar("T")

_MAX_DBS = 8
PRIVATE = 0o700  # an environment's directory; LMDB makes its files 0600 from it
# LMDB reports a short write (a full disk or file-size limit) as EIO.
_DISK_FULL_CODES = frozenset({errno.EIO, errno.ENOSPC, errno.EFBIG, errno.EDQUOT})


class LmdbEnvironment:
    """One LMDB environment (a directory) with retrying read and write transactions."""

    # Writes abort, double the map and retry on MapFullError; reads and writes adopt a map
    # another process has grown (MapResizedError). Every LMDB failure surfaces as a
    # `StoreError` that names the directory.

    def __init__(
        self,
        path: str,
        *,
        map_size: int,
        max_map_size: int,
        readonly: bool,
        max_readers: int,
    ) -> None:
        if not 0 < map_size <= max_map_size:
            raise ValueError(f"need 0 < map_size <= max_map_size, got {map_size}, {max_map_size}")
        self.path = path
        self.readonly = readonly
        self._max_map_size = max_map_size
        self._gate = ResizeGate()
        # LMDB serialises writers itself; this lock also keeps each commit and its
        # after_commit bookkeeping together when threads of this process write.
        self._write_lock = threading.Lock()
        self._closed = False
        where = Path(path)
        if where.exists() and not where.is_dir():
            raise StoreOpenError(f"checkpoint store path {path} exists and is not a directory")
        if not readonly:
            try:
                where.mkdir(mode=PRIVATE, parents=True, exist_ok=True)
            except OSError as exc:
                raise StoreOpenError(
                    f"cannot create checkpoint store directory {path}: {exc}"
                ) from exc
        try:
            # sync and metasync stay on (the LMDB defaults): an ack must mean "on disk".
            self._env = lmdb.open(
                path,
                map_size=map_size,
                subdir=True,
                readonly=readonly,
                create=not readonly,
                max_dbs=_MAX_DBS,
                max_readers=max_readers,
                lock=True,
                mode=PRIVATE,
            )
        except lmdb.Error as exc:
            raise StoreOpenError(f"cannot open checkpoint store at {path}: {exc}") from exc

    @property
    def map_size(self) -> int:
        """The current size of the memory map in bytes."""
        self.check_open()
        return self._env.info()["map_size"]

    def close(self) -> None:
        """Close the environment; idempotent."""
        if not self._closed:
            self._closed = True
            self._env.close()

    def check_open(self) -> None:
        if self._closed:
            raise StoreClosedError(f"checkpoint store at {self.path} is closed")

    def open_databases(
        self,
        names: Sequence[str],
        setup: Callable[[lmdb.Transaction[bytes], list[lmdb._Database]], None],
    ) -> list[lmdb._Database]:
        """Open (creating unless read-only) the named databases, then run `setup` in the
        same transaction (a write transaction unless read-only)."""
        if self.readonly:
            handles = []
            for name in names:
                try:
                    handles.append(self._env.open_db(name.encode(), create=False))
                except lmdb.NotFoundError as exc:
                    raise StoreOpenError(
                        f"{self.path} is not a checkpoint store (no {name!r} database)"
                    ) from exc
            self.read(lambda txn: setup(txn, handles))
            return handles

        def create(txn: lmdb.Transaction[bytes]) -> list[lmdb._Database]:
            created = [self._env.open_db(name.encode(), txn=txn) for name in names]
            setup(txn, created)
            return created

        return self.write(create)

    def read(self, work: Callable[[lmdb.Transaction[bytes]], T]) -> T:
        """Run `work` in a read transaction (keep it short: a resize waits for it)."""
        self.check_open()
        while True:
            with self._gate.shared():
                try:
                    with self._env.begin() as txn:
                        return work(txn)
                except lmdb.MapResizedError:
                    self._gate.want_exclusive()
                except lmdb.Error as exc:
                    raise StoreError(
                        f"read from checkpoint store at {self.path} failed: {exc}"
                    ) from exc
            self._resize(full_at=None)

    def write(
        self,
        work: Callable[[lmdb.Transaction[bytes]], T],
        after_commit: Callable[[T], None] | None = None,
    ) -> T:
        """Run `work` in one write transaction and commit it durably.

        On MapFullError the transaction is aborted, the map doubled and `work` run again from
        scratch (so `work` must not mutate anything outside `txn`); on any other failure the
        transaction is aborted and nothing of it is written. `after_commit(result)` runs
        after a successful commit, still holding this process's write lock.
        """
        self.check_open()
        if self.readonly:
            raise ReadOnlyStoreError(f"checkpoint store at {self.path} is open read-only")
        while True:
            with self._gate.shared(), self._write_lock:
                full_at: int | None = None
                try:
                    txn = self._env.begin(write=True)
                except lmdb.MapResizedError:
                    self._gate.want_exclusive()
                except lmdb.Error as exc:
                    raise StoreWriteError(
                        f"cannot start a write to checkpoint store at {self.path}: {exc}"
                    ) from exc
                else:
                    try:
                        result = work(txn)
                        txn.commit()
                    except lmdb.MapFullError:
                        # Announce the resize before aborting: busy reader threads otherwise
                        # starve the abort of py-lmdb's internal environment lock.
                        self._gate.want_exclusive()
                        try:
                            full_at = self._env.info()["map_size"]
                            txn.abort()
                        except BaseException:
                            self._gate.withdraw()
                            raise
                    except lmdb.Error as exc:
                        txn.abort()
                        hint = " (is the disk full?)" if exc.code in _DISK_FULL_CODES else ""
                        raise StoreWriteError(
                            f"write to checkpoint store at {self.path} failed, nothing of it "
                            f"was committed: {exc}{hint}"
                        ) from exc
                    except BaseException:
                        txn.abort()
                        raise
                    else:
                        if after_commit is not None:
                            after_commit(result)
                        return result
            self._resize(full_at=full_at)

    def _resize(self, *, full_at: int | None) -> None:
        """Double a map that was full at `full_at` bytes, or (None) adopt another process's."""
        with self._gate.exclusive():
            if full_at is None:
                self._env.set_mapsize(0)  # adopt the size another process grew the map to
                return
            current = self._env.info()["map_size"]
            if current > full_at:
                return  # another thread of this process has grown it already
            if current >= self._max_map_size:
                raise StoreFullError(
                    f"checkpoint store at {self.path} is full: the map is {current} bytes, "
                    "the max_map_size"
                )
            try:
                self._env.set_mapsize(min(current * 2, self._max_map_size))
            except lmdb.Error as exc:
                raise StoreWriteError(
                    f"cannot grow the map of checkpoint store at {self.path}: {exc}"
                ) from exc
