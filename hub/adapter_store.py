"""`AdapterStore`: one adapter's durable state in an LMDB environment of its own.

- where it stands in each host's outbox (`marks`: a new adapter begins at the newest entries),
  stored in the same transaction as the deliveries it queued from them (`jobs`), so a restart
  resumes exactly where it stopped: nothing skipped, nothing queued twice;
- its message map: entity -> the native message that shows it (and the thread it roots), with
  the reverse index native message -> entity (`map`, `native`), so an update edits the message
  that announced the entity, a reply stays in its thread, and an inbound reaction finds its
  todo, also after a restart;
- deliveries that failed for good (`failed`), kept visible until retried;
- what the service last said of each message it took (`statuses`: sent, delivered, read,
  failed), for a channel that reports it;
- posts that may have happened before a crash (`inflight`): looked for (by the delivery id
  each post carries) before posting again, so nothing is posted twice;
- its counters (`meta`).

Values pass through the hub's value codec (encrypted at rest like every other store).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import lmdb
import msgpack

from hub.adapters import NativeRef
from hub.store.codec import IdentityCodec, ValueCodec
from hub.subscriptions import Published

JobKind = Literal["state", "conflict", "relay"]
_COUNTERS = ("sent", "received", "retried", "failed", "skipped", "ignored", "withheld")
_NEXT_JOB = b"next-job"
_INSTANCE = b"instance"
_BEGAN = b"began"
_STATUS_RANK = {"sent": 1, "delivered": 2, "read": 3, "failed": 4}


@dataclass(frozen=True, slots=True)
class Job:
    """One delivery owed to the channel: a change of `entity_id` (its log position `seq`),
    as published (`body`: `encode_published` bytes), of `kind`: the entity's state, a
    conflict it opened, or a relayed event or command. `echo`: the change came from this very
    adapter (it may edit what shows the entity, never post anew)."""

    id: int
    entity_id: str
    seq: int
    kind: JobKind
    body: bytes
    echo: bool = False
    attempts: int = 0
    reason: str = ""  # why it failed (failed jobs)


@dataclass(frozen=True, slots=True)
class InFlight:
    """A post that may have happened before a crash: job `job_id`'s, about `entity_id`, on
    `channel`, at its top level or in the thread of `thread_root`, noted at `at_s` (epoch
    seconds)."""

    job_id: int
    entity_id: str
    channel: str
    thread_root: str | None
    at_s: float


@dataclass(frozen=True, slots=True)
class Shown:
    """How an entity shows on the channel: its message, the log position and digest of the
    state it shows (an unchanged state is not sent again)."""

    ref: NativeRef
    seq: int
    digest: str


def _native_key(channel: str, message_id: str) -> bytes:
    return f"{channel}\x00{message_id}".encode("utf-8", "surrogatepass")


class AdapterStore:
    """The durable state of one adapter (see the module)."""

    def __init__(
        self, path: Path, codec: ValueCodec | None = None, map_size: int = 1 << 30
    ) -> None:
        self._codec: ValueCodec = codec if codec is not None else IdentityCodec()
        path.mkdir(parents=True, exist_ok=True)
        self._env = lmdb.open(str(path), map_size=map_size, max_dbs=8, subdir=True)
        self._marks = self._env.open_db(b"marks")
        self._jobs = self._env.open_db(b"jobs")
        self._failed = self._env.open_db(b"failed")
        self._map = self._env.open_db(b"map")
        self._native = self._env.open_db(b"native")
        self._meta = self._env.open_db(b"meta")
        self._inflight = self._env.open_db(b"inflight")
        self._statuses = self._env.open_db(b"statuses")
        with self._env.begin(write=True, db=self._meta) as txn:
            instance = txn.get(_INSTANCE)
            if instance is None:
                instance = secrets.token_hex(8).encode()
                txn.put(_INSTANCE, instance)
        #: this store's own id, in the delivery id of each post: the posts found again after a
        #: crash are this adapter's, never another hub's on the same channel
        self.instance: str = bytes(instance).decode()

    def close(self) -> None:
        self._env.close()

    def _pack(self, value: object) -> bytes:
        return self._codec.encode(msgpack.packb(value, use_bin_type=True))

    def _unpack(self, raw: bytes) -> list[object]:
        value: list[object] = msgpack.unpackb(self._codec.decode(raw), raw=False)
        return value

    # -- where it stands in the hosts' outboxes ----------------------------------------------

    def mark(self, host: str) -> int:
        with self._env.begin(db=self._marks) as txn:
            raw = txn.get(host.encode())
        return int(raw) if raw is not None else 0

    def marks(self) -> dict[str, int]:
        with self._env.begin(db=self._marks) as txn:
            return {k.decode(): int(v) for k, v in txn.cursor()}

    def began(self) -> bool:
        """Whether the adapter has taken its starting marks (`begin`)."""
        with self._env.begin(db=self._meta) as txn:
            return txn.get(_BEGAN) is not None

    def begin(self, marks: dict[str, int]) -> None:
        """Take the starting marks of a new adapter, once (a host with no mark starts at 0)."""
        with self._env.begin(write=True) as txn:
            if txn.get(_BEGAN, db=self._meta) is not None:
                return
            for host, mark in marks.items():
                txn.put(host.encode(), str(mark).encode(), db=self._marks)
            txn.put(_BEGAN, b"1", db=self._meta)

    def take(
        self,
        host: str,
        items: Sequence[tuple[int, Published, bytes]],
        wanted: Callable[[Published], tuple[JobKind, ...]],
        echo: Callable[[Published], bool],
    ) -> int:
        """Queue the deliveries `wanted` says each new outbox entry owes (none, or several
        kinds), and move the host's mark past them, in one transaction; the new mark."""
        mark = self.mark(host)
        fresh = [(seq, item, body) for seq, item, body in items if seq > mark]
        if not fresh:
            return mark
        with self._env.begin(write=True) as txn:
            next_id = self._next_id(txn)
            for _, item, body in fresh:
                for kind in wanted(item):
                    job = [item.entity_id, item.seq, kind, body, echo(item), 0, ""]
                    txn.put(next_id.to_bytes(8, "big"), self._pack(job), db=self._jobs)
                    next_id += 1
            txn.put(_NEXT_JOB, str(next_id).encode(), db=self._meta)
            mark = fresh[-1][0]
            txn.put(host.encode(), str(mark).encode(), db=self._marks)
        return mark

    def _next_id(self, txn: lmdb.Transaction) -> int:
        raw = txn.get(_NEXT_JOB, db=self._meta)
        return int(raw) if raw is not None else 1

    # -- deliveries ---------------------------------------------------------------------------

    def _job(self, key: bytes, raw: bytes) -> Job:
        entity_id, seq, kind, body, echo, attempts, reason = self._unpack(raw)
        return Job(
            int.from_bytes(key, "big"),
            str(entity_id),
            int(seq),  # type: ignore[call-overload]
            kind,  # type: ignore[arg-type]
            bytes(body),  # type: ignore[call-overload]
            bool(echo),
            int(attempts),  # type: ignore[call-overload]
            str(reason),
        )

    def jobs(self, limit: int = 500) -> list[Job]:
        """The oldest queued deliveries, in the order they arose."""
        found = []
        with self._env.begin(db=self._jobs) as txn:
            for key, raw in txn.cursor():
                found.append(self._job(key, raw))
                if len(found) >= limit:
                    break
        return found

    def pending(self) -> int:
        with self._env.begin(db=self._jobs) as txn:
            count: int = txn.stat(self._jobs)["entries"]
        return count

    def posting(self, notes: Iterable[InFlight]) -> None:
        """Note, before a round of deliveries, each post it may make (a crash before `finish`
        leaves the notes: the next start looks for those posts before making them again)."""
        with self._env.begin(write=True, db=self._inflight) as txn:
            for note in notes:
                value = [note.entity_id, note.channel, note.thread_root, note.at_s]
                txn.put(note.job_id.to_bytes(8, "big"), self._pack(value))

    def in_flight(self) -> list[InFlight]:
        """Posts that may have happened (see `posting`)."""
        with self._env.begin(db=self._inflight) as txn:
            found = []
            for key, raw in txn.cursor():
                entity_id, channel, root, at_s = self._unpack(raw)
                found.append(
                    InFlight(
                        int.from_bytes(key, "big"),
                        str(entity_id),
                        str(channel),
                        None if root is None else str(root),
                        float(at_s),  # type: ignore[arg-type]
                    )
                )
            return found

    def finish(
        self,
        *,
        done: Iterable[int] = (),
        again: Iterable[int] = (),
        failed: dict[int, str] | None = None,
        noted: Iterable[int] = (),
        shown: dict[str, Shown] | None = None,
        links: Iterable[tuple[str, NativeRef]] = (),
        counts: dict[str, int] | None = None,
    ) -> None:
        """Settle deliveries in one transaction: forget the `done` jobs, count an attempt on
        the `again` ones (they stay queued), move the `failed` ones aside (with why), drop the
        in-flight notes of `noted` jobs; record what shows each entity now and the native
        messages that belong to one (`links`: thread replies it posted); add to the counters
        (`retried` and `failed` count themselves)."""
        failed = failed or {}
        again = list(again)
        with self._env.begin(write=True) as txn:
            for job_id in noted:
                txn.delete(job_id.to_bytes(8, "big"), db=self._inflight)
            for job_id in done:
                txn.delete(job_id.to_bytes(8, "big"), db=self._jobs)
            for job_id in [*again, *failed]:
                key = job_id.to_bytes(8, "big")
                raw = txn.get(key, db=self._jobs)
                if raw is None:
                    continue
                job = self._job(key, raw)
                value = [job.entity_id, job.seq, job.kind, job.body, job.echo, job.attempts + 1]
                if job_id in failed:
                    txn.delete(key, db=self._jobs)
                    txn.put(key, self._pack([*value, failed[job_id]]), db=self._failed)
                else:
                    txn.put(key, self._pack([*value, ""]), db=self._jobs)
            for entity_id, now in (shown or {}).items():
                self._show(txn, entity_id, now)
            for entity_id, ref in links:
                self._index(txn, entity_id, ref)
            counts = dict(counts or {})
            counts["failed"] = counts.get("failed", 0) + len(failed)
            counts["retried"] = counts.get("retried", 0) + len(again)
            self._count(txn, counts)

    def job(self, job_id: int) -> Job | None:
        with self._env.begin(db=self._jobs) as txn:
            raw = txn.get(job_id.to_bytes(8, "big"))
        return self._job(job_id.to_bytes(8, "big"), raw) if raw is not None else None

    def failed(self, limit: int = 500) -> list[Job]:
        found = []
        with self._env.begin(db=self._failed) as txn:
            for key, raw in txn.cursor():
                found.append(self._job(key, raw))
                if len(found) >= limit:
                    break
        return found

    def retry(self, ids: Iterable[int] | None = None) -> int:
        """Queue failed jobs again (all of them, or those of `ids`), in their old places;
        how many."""
        moved = 0
        with self._env.begin(write=True) as txn:
            keys = (
                [key for key, _ in txn.cursor(db=self._failed)]
                if ids is None
                else [i.to_bytes(8, "big") for i in ids]
            )
            for key in keys:
                raw = txn.pop(key, db=self._failed)
                if raw is None:
                    continue
                job = self._job(key, raw)
                again = [job.entity_id, job.seq, job.kind, job.body, job.echo, job.attempts, ""]
                txn.put(key, self._pack(again), db=self._jobs)
                moved += 1
        return moved

    # -- the message map -----------------------------------------------------------------------

    def _show(self, txn: lmdb.Transaction, entity_id: str, now: Shown) -> None:
        ref = now.ref
        value = [ref.channel, ref.message_id, ref.thread_root, now.seq, now.digest]
        txn.put(entity_id.encode(), self._pack(value), db=self._map)
        self._index(txn, entity_id, ref)

    def _index(self, txn: lmdb.Transaction, entity_id: str, ref: NativeRef) -> None:
        for message_id in (ref.message_id, *ref.aliases):
            txn.put(_native_key(ref.channel, message_id), entity_id.encode(), db=self._native)

    def shown(self, entity_id: str) -> Shown | None:
        """What shows the entity on the channel now, if anything."""
        with self._env.begin(db=self._map) as txn:
            raw = txn.get(entity_id.encode())
        if raw is None:
            return None
        channel, message_id, root, seq, digest = self._unpack(raw)
        ref = NativeRef(str(channel), str(message_id), None if root is None else str(root))
        return Shown(ref, int(seq), str(digest))  # type: ignore[call-overload]

    def entity_of(self, channel: str, message_id: str) -> str | None:
        """The entity a native message shows (or is a reply in the thread of), if any."""
        with self._env.begin(db=self._native) as txn:
            raw = txn.get(_native_key(channel, message_id))
        return raw.decode() if raw is not None else None

    def note_status(self, channel: str, message_id: str, status: str, reason: str = "") -> bool:
        """Record what the service says of a message it took: the furthest it got (sent,
        delivered, read; failed beyond all), so statuses that arrive late or twice change
        nothing; a first failure counts as a failed delivery. Whether it changed anything."""
        rank = _STATUS_RANK.get(status)
        if rank is None:
            return False
        key = _native_key(channel, message_id)
        with self._env.begin(write=True) as txn:
            raw = txn.get(key, db=self._statuses)
            if raw is not None and _STATUS_RANK[str(self._unpack(raw)[0])] >= rank:
                return False
            txn.put(key, self._pack([status, reason]), db=self._statuses)
            if status == "failed":
                self._count(txn, {"failed": 1})
        return True

    def status_of(self, channel: str, message_id: str) -> tuple[str, str] | None:
        """What the service last said of a message (`note_status`): its status and, when it
        failed, why."""
        with self._env.begin(db=self._statuses) as txn:
            raw = txn.get(_native_key(channel, message_id))
        if raw is None:
            return None
        status, reason = self._unpack(raw)
        return str(status), str(reason)

    # -- counters ----------------------------------------------------------------------------

    def _count(self, txn: lmdb.Transaction, counts: dict[str, int]) -> None:
        for name, add in counts.items():
            if add:
                key = f"count:{name}".encode()
                raw = txn.get(key, db=self._meta)
                txn.put(key, str((int(raw) if raw else 0) + add).encode(), db=self._meta)

    def count(self, **counts: int) -> None:
        with self._env.begin(write=True) as txn:
            self._count(txn, counts)

    def counters(self) -> dict[str, int]:
        with self._env.begin(db=self._meta) as txn:
            return {name: int(txn.get(f"count:{name}".encode()) or b"0") for name in _COUNTERS}
