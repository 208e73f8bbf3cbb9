"""Child processes for the multi-process store tests.

Run as `python -m tests.hub.store.store_processes <role> <path> [args]` from the repo root.
"""

from __future__ import annotations

import json
import resource
import signal
import sys
import time

import msgpack

from hub.store import DedupeEntry, LmdbStore, NewEvent, StoreWriteError


def crash_batch(n: int) -> list[NewEvent]:
    """Batch `n` of the crash test: 1..7 events over 5 entities, bodies up to ~3 KB."""
    return [
        NewEvent(f"entity-{(n + j) % 5}", n, msgpack.packb([n, j, b"x" * ((n * 31 + j) % 3000)]))
        for j in range(1 + n % 7)
    ]


def crash_writer(path: str, first_batch: int) -> None:
    """Append numbered batches forever, printing each batch number once it is committed."""
    with LmdbStore(path, map_size=256 * 1024) as store:
        n = first_batch
        while True:
            store.append_batch(crash_batch(n), [DedupeEntry(f"batch-{n}", msgpack.packb(n))])
            sys.stdout.write(f"{n}\n")
            sys.stdout.flush()
            n += 1


def fill_disk(path: str, headroom: int) -> None:
    """Write until the file-size limit (a stand-in for a full disk) stops a commit; report."""
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # get EFBIG from write() instead of dying
    with LmdbStore(path) as store:
        data_file = f"{path}/data.mdb"
        with open(data_file, "rb") as data:
            limit = data.seek(0, 2) + headroom
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
        committed = store.last_seq("big")
        error = ""
        try:
            for _ in range(10_000):
                store.append_batch([NewEvent("big", 2, b"y" * 4000) for _ in range(10)])
                committed += 10
        except StoreWriteError as exc:
            error = str(exc)
        report = {
            "error": error,
            "committed": committed,
            "last_seq_after_error": store.last_seq("big"),
            "readable": sum(1 for _ in store.events("big")),
            "verify_ok": store.verify().ok,
        }
    print(json.dumps(report))


def reader(path: str, map_size: int) -> None:
    """Read while another process writes: seqs must stay gap-free and never go backwards."""
    with LmdbStore(path, readonly=True, map_size=map_size) as store:
        first_map = store.map_size
        print("ready", flush=True)
        reads = verifies = 0
        last = 0
        errors: list[str] = []
        while store.last_seq("done") == 0:
            seq = store.last_seq("log")
            if seq < last:
                errors.append(f"last_seq went back from {last} to {seq}")
            last = seq
            tail = [e.seq for e in store.events("log", after_seq=max(seq - 20, 0))]
            if tail and tail != list(range(tail[0], tail[0] + len(tail))):
                errors.append(f"gap in {tail}")
            reads += 1
            if reads % 25 == 0:
                verifies += 1
                if not store.verify().ok:
                    errors.append("verify failed")
            time.sleep(0.001)
        result = {
            "reads": reads,
            "verifies": verifies,
            "last": store.last_seq("log"),
            "first_map": first_map,
            "final_map": store.map_size,
            "errors": errors,
        }
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    role, store_path, *rest = sys.argv[1:]
    if role == "crash-writer":
        crash_writer(store_path, int(rest[0]))
    elif role == "fill-disk":
        fill_disk(store_path, int(rest[0]))
    elif role == "reader":
        reader(store_path, int(rest[0]))
    else:
        raise SystemExit(f"unknown role {role!r}")
