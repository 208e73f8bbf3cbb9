"""Benchmark of the LMDB checkpoint store: durable appends vs raw lmdb, and replay speed."""

# Usage: python loadtests/bench_store.py [--dedupe] [--head-cache-size 0] ...  (defaults: ~10-20 s)
#
# Appends: `LmdbStore.append_batch` (one synced commit per batch) against a raw `lmdb` put loop
# writing the very same key/value bytes (read back from an untimed store run) with the same
# batch size and durability flags. Each round times both on fresh environments, in alternating
# order, so both see the same machine noise; the ratio is the median of the per-round ratios.
# Replay: `recovery.load` of one entity with 100k events, without and with a snapshot.
# The last line printed is `ratio_vs_raw_lmdb=<float>`.

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import lmdb
import msgpack

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # `python loadtests/bench_store.py` from anywhere
    sys.path.insert(0, str(ROOT))

from hub.store import (  # noqa: E402
    DedupeEntry,
    LmdbStore,
    NewEvent,
    StoredEvent,
    load,
    take_snapshot,
)

CLOCK_MS = 1_700_000_000_000
Batch = list[tuple[bytes, bytes, bytes]]  # (database name, key, value) in write order
Workload = list[tuple[list[NewEvent], list[DedupeEntry]]]


class SumReplayer:
    """Toy fold: the state is the total body length seen so far."""

    def initial(self, entity_id: str) -> int:
        return 0

    def apply(self, state: int, event: StoredEvent) -> int:
        return state + len(event.body)

    def encode_state(self, state: int) -> bytes:
        packed: bytes = msgpack.packb(state)
        return packed

    def decode_state(self, data: bytes) -> int:
        state: int = msgpack.unpackb(data)
        return state


def make_workload(args: argparse.Namespace) -> Workload:
    """Batches cycling over `entities` ids, with msgpack bodies like the domain's."""
    body: bytes = msgpack.packb({"op": "set", "field": "title", "value": "x" * args.body_bytes})
    workload: Workload = []
    for start in range(0, args.events, args.batch_size):
        size = min(args.batch_size, args.events - start)
        events = [
            NewEvent(f"topic-{(start + i) % args.entities:05d}", CLOCK_MS + start, body)
            for i in range(size)
        ]
        dedupe = [DedupeEntry(f"msg-{start + i:010d}", b"\x91\xa2ok") for i in range(size)]
        workload.append((events, dedupe if args.dedupe else []))
    return workload


def run_store(path: Path, workload: Workload, head_cache_size: int) -> float:
    with LmdbStore(path, now_ms=lambda: CLOCK_MS, head_cache_size=head_cache_size) as store:
        started = time.perf_counter()
        for events, dedupe in workload:
            store.append_batch(events, dedupe)
        return time.perf_counter() - started


def committed_items(path: Path, workload: Workload) -> list[Batch]:
    """Read back, batch by batch, exactly the key/value pairs the store committed."""
    env = lmdb.open(str(path), max_dbs=8, readonly=True, lock=True)
    dbs = {name: env.open_db(name, create=False) for name in (b"events", b"dedupe")}
    seqs: Counter[str] = Counter()
    batches: list[Batch] = []
    with env.begin() as txn:
        for events, dedupe in workload:
            batch: Batch = []
            for event in events:
                seqs[event.entity_id] += 1
                key = event.entity_id.encode() + b"\x00" + seqs[event.entity_id].to_bytes(8, "big")
                batch.append((b"events", key, txn.get(key, db=dbs[b"events"]) or b""))
            for entry in dedupe:
                key = entry.message_id.encode()
                batch.append((b"dedupe", key, txn.get(key, db=dbs[b"dedupe"]) or b""))
                batch.append((b"dedupe_expiry", CLOCK_MS.to_bytes(8, "big") + key, b""))
            batches.append(batch)
    env.close()
    return batches


def run_raw(path: Path, batches: list[Batch]) -> float:
    """The baseline: one default (synced) write transaction per batch, one put per item."""
    env = lmdb.open(str(path), map_size=1 << 30, max_dbs=8, subdir=True, lock=True)
    dbs = {name: env.open_db(name) for name in (b"events", b"dedupe", b"dedupe_expiry")}
    started = time.perf_counter()
    for batch in batches:
        with env.begin(write=True) as txn:
            for name, key, value in batch:
                txn.put(key, value, db=dbs[name])
    elapsed = time.perf_counter() - started
    env.close()
    return elapsed


def bench_appends(args: argparse.Namespace, workdir: Path) -> tuple[float, float, float]:
    """Median store rate, median raw rate and median per-round ratio (events/s)."""
    workload = make_workload(args)
    run_store(workdir / "untimed", workload, args.head_cache_size)
    raw_batches = committed_items(workdir / "untimed", workload)
    shutil.rmtree(workdir / "untimed")
    store_rates, raw_rates, ratios = [], [], []
    for round_no in range(args.rounds):
        store_path, raw_path = workdir / f"store-{round_no}", workdir / f"raw-{round_no}"
        if round_no % 2:
            raw_s = run_raw(raw_path, raw_batches)
            store_s = run_store(store_path, workload, args.head_cache_size)
        else:
            store_s = run_store(store_path, workload, args.head_cache_size)
            raw_s = run_raw(raw_path, raw_batches)
        store_rates.append(args.events / store_s)
        raw_rates.append(args.events / raw_s)
        ratios.append(raw_s / store_s)
        print(
            f"  round {round_no + 1}: store {store_rates[-1]:>9,.0f} ev/s   "
            f"raw {raw_rates[-1]:>9,.0f} ev/s   ratio {ratios[-1]:.3f}"
        )
        shutil.rmtree(store_path)
        shutil.rmtree(raw_path)
    return statistics.median(store_rates), statistics.median(raw_rates), statistics.median(ratios)


def bench_replay(args: argparse.Namespace, workdir: Path) -> tuple[float, float, int]:
    """Seconds to `load` one entity of `replay_events` events without and with a snapshot."""
    replayer = SumReplayer()
    body: bytes = msgpack.packb({"op": "set", "field": "title", "value": "x" * args.body_bytes})
    with LmdbStore(workdir / "replay") as store:
        for start in range(0, args.replay_events, 1000):
            count = min(1000, args.replay_events - start)
            store.append_batch([NewEvent("topic-replay", start + i, body) for i in range(count)])
        started = time.perf_counter()
        full_state, seq = load(store, "topic-replay", replayer)
        full_s = time.perf_counter() - started

        snapshot_seq = seq - args.tail
        take_snapshot(store, "topic-replay", snapshot_seq * len(body), snapshot_seq, replayer)
        started = time.perf_counter()
        recovered = load(store, "topic-replay", replayer)
        snapshot_s = time.perf_counter() - started
        assert recovered == (full_state, seq), "load from the snapshot disagrees with replay"
    return full_s, snapshot_s, seq


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--events", type=int, default=40_000, help="events appended per run")
    parser.add_argument("--batch-size", type=int, default=100, help="events per commit")
    parser.add_argument("--entities", type=int, default=100, help="distinct entities written")
    parser.add_argument("--body-bytes", type=int, default=200, help="approximate body size")
    parser.add_argument("--rounds", type=int, default=7, help="paired store/raw rounds")
    parser.add_argument("--dedupe", action="store_true", help="one dedupe entry per event too")
    parser.add_argument("--head-cache-size", type=int, default=100_000, help="0 disables it")
    parser.add_argument("--replay-events", type=int, default=100_000)
    parser.add_argument("--tail", type=int, default=50, help="events after the snapshot")
    parser.add_argument("--dir", type=Path, default=None, help="work directory (default: tmp)")
    args = parser.parse_args(argv)

    workdir = Path(tempfile.mkdtemp(prefix="bench_store-", dir=args.dir))
    try:
        print(
            f"appends: {args.events:,} events per run, batch {args.batch_size}, "
            f"{args.entities} entities, body ~{args.body_bytes} B, dedupe={args.dedupe}, "
            f"head cache {args.head_cache_size}; lmdb {lmdb.__version__} "
            f"(liblmdb {'.'.join(map(str, lmdb.version()))}), sync on"
        )
        store_rate, raw_rate, ratio = bench_appends(args, workdir)
        full_s, snapshot_s, seq = bench_replay(args, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    rows = [
        ("store append_batch, events/s (median)", f"{store_rate:,.0f}"),
        ("raw lmdb put loop, events/s (median)", f"{raw_rate:,.0f}"),
        ("store commits/s (median)", f"{store_rate / args.batch_size:,.0f}"),
        (f"replay {seq:,} events without snapshot, s", f"{full_s:.3f}"),
        ("replay without snapshot, events/s", f"{seq / full_s:,.0f}"),
        (f"load with snapshot (+{args.tail} events), ms", f"{snapshot_s * 1000:.2f}"),
        ("load with snapshot, speed-up over full replay", f"{full_s / snapshot_s:,.0f}x"),
    ]
    print()
    for label, value in rows:
        print(f"{label:<46}{value:>14}")
    print(f"ratio_vs_raw_lmdb={ratio:.3f}")


if __name__ == "__main__":
    main()
