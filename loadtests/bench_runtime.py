"""Benchmark of the Ray runtime: sharded hosts vs dedicated actors vs one naive actor per entity."""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections import Counter, deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import ray

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # `python loadtests/bench_runtime.py` from anywhere
    sys.path.insert(0, str(ROOT))

from actors.ray_start import init_ray  # noqa: E402
from actors.runtime import Runtime  # noqa: E402
from hub.codec import DecodeError  # noqa: E402
from hub.entity import EntityState, RejectedMessage, apply  # noqa: E402
from hub.envelope import Envelope, Outcome, Status  # noqa: E402
from hub.ids import IdGenerator, Kind  # noqa: E402
from hub.message import decode  # noqa: E402
from hub.replay import encode_event  # noqa: E402
from hub.settings import HubSettings  # noqa: E402
from hub.store import LmdbStore, NewEvent, generate_key  # noqa: E402
from hub.subscriptions import Filter  # noqa: E402
from tests.messages import create_todo, sync_message  # noqa: E402

MAP_SIZE = 1 << 32  # the hub's default `lmdb_map_size`, used by the naive actors too
ids = IdGenerator("bench-runtime", now_ms=lambda: time.time_ns() // 1_000_000)  # probes


def seeded_ids(seed: int) -> IdGenerator:
    """Reproducible entity ids, so every run shards the workload over the hosts alike."""
    return IdGenerator("bench-runtime", lambda: 1_700_000_000_000, random.Random(seed).getrandbits)


def log(text: str) -> None:
    print(f"[bench] {text}", file=sys.stderr, flush=True)


def now_ms() -> int:
    return time.time_ns() // 1_000_000


# -- workload -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Workload:
    """The same pre-built envelopes for every placement.

    `lanes` split the entities into disjoint groups; a lane sends its batches one after another,
    so each entity's messages arrive in order while `len(lanes)` batches are in flight.
    """

    entity_ids: tuple[str, ...]
    per_entity: dict[str, list[Envelope]]  # create, then updates, in causal order
    lanes: tuple[tuple[tuple[Envelope, ...], ...], ...]  # lane -> batches -> envelopes

    @property
    def messages(self) -> int:
        return sum(len(v) for v in self.per_entity.values())


def entity_messages(entity_id: str, updates: int) -> list[Envelope]:
    """Create by node `a`, then `updates` LWW writes by node `w` (each counts its own write)."""
    out = [Envelope.of(create_todo(entity_id, "step 0", node="a"))]
    for n in range(1, updates + 1):
        data = {"content": f"step {n}", "activeForm": f"doing step {n}"}
        out.append(
            Envelope.of(sync_message(entity_id, "update", data, node="w", clock={"a": 1, "w": n}))
        )
    return out


def build_workload(entities: int, updates: int, batch: int, lanes: int, seed: int) -> Workload:
    made = seeded_ids(seed)
    entity_ids = tuple(made.new(Kind.TODO) for _ in range(entities))
    per_entity = {e: entity_messages(e, updates) for e in entity_ids}
    lane_count = max(1, min(lanes, entities))
    lane_batches = []
    for lane in range(lane_count):
        owned = entity_ids[lane::lane_count]
        # Round-robin over the lane's entities: message n of every entity, then n + 1, ...
        flat = [per_entity[e][n] for n in range(updates + 1) for e in owned]
        lane_batches.append(tuple(tuple(flat[i : i + batch]) for i in range(0, len(flat), batch)))
    return Workload(entity_ids, per_entity, tuple(lane_batches))


# -- results --------------------------------------------------------------------------------


@dataclass(slots=True)
class Result:
    """One placement's figures."""

    name: str
    entities: int
    messages: int
    statuses: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0
    latencies_s: list[float] = field(default_factory=list)  # one per acked message
    setup_s: float = 0.0  # start-up and placement, outside the timed section
    activation_ms: float | None = None  # mean in-host activation (HostMetrics), or actor start
    first_ack_ms: float | None = None  # p50: first message to a fresh entity, until its ack
    reactivate_ms: float | None = None  # p50: read of a passivated entity (snapshot + replay)
    received: int | None = None  # events the subscriber got; None: no stream
    gaps: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def acked(self) -> int:
        return self.statuses[Status.APPLIED.value]

    @property
    def rate(self) -> float:
        return self.acked / self.seconds if self.seconds else 0.0


def percentile(values: Sequence[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def median_ms(values: Sequence[float]) -> float | None:
    return statistics.median(values) * 1000 if values else None


# -- the subscriber -------------------------------------------------------------------------


@dataclass(slots=True)
class Subscriber:
    """Follows the whole stream from the head at start until `expected` events arrived."""

    runtime: Runtime
    epoch: str = ""
    offset: int = 0
    received: int = 0
    gaps: int = 0
    expected: int | None = None
    deadline: float = float("inf")

    async def start(self) -> None:
        first = await self.runtime.poll(None, 0, Filter())
        self.epoch, self.offset = first.epoch, first.offset

    async def follow(self) -> None:
        wanted = Filter()
        while True:
            got = await self.runtime.poll(self.epoch, self.offset, wanted, 10_000, 0.2)
            self.gaps += int(got.gap)
            self.received += len(got.events)
            self.epoch, self.offset = got.epoch, got.offset
            done = self.expected is not None and self.received >= self.expected
            if done or time.monotonic() > self.deadline:
                return


# -- hosted placements (sharded, dedicated) -------------------------------------------------


async def send_lanes(runtime: Runtime, workload: Workload, result: Result) -> None:
    async def lane(batches: Sequence[Sequence[Envelope]]) -> None:
        for batch in batches:
            started = time.perf_counter()
            outcomes = await runtime.route(list(batch))
            took = time.perf_counter() - started
            for outcome in outcomes:
                result.statuses[outcome.status.value] += 1
                if outcome.status is Status.APPLIED:
                    result.latencies_s.append(took)

    started = time.perf_counter()
    await asyncio.gather(*(lane(batches) for batches in workload.lanes))
    result.seconds = time.perf_counter() - started


def hub_settings(data_dir: Path, name: str, args: argparse.Namespace, **extra: Any) -> HubSettings:
    return HubSettings(
        data_dir=data_dir,
        encryption_key=generate_key().hex(),  # encrypted at rest, as by default
        namespace=f"bench-{name}-{os.getpid()}",
        hosts=args.hosts,
        call_timeout_s=120.0,
        **extra,
    )


def run_hosted(name: str, args: argparse.Namespace, workload: Workload, base: Path) -> Result:
    dedicated = name == "dedicated"
    result = Result(name, len(workload.entity_ids), workload.messages)
    started = time.perf_counter()
    runtime = Runtime.start(hub_settings(base / name, name, args))
    try:
        if dedicated:
            for entity_id in workload.entity_ids:
                runtime.place_dedicated(entity_id)
        result.setup_s = time.perf_counter() - started
        log(f"{name}: {len(runtime.hosts)} host actors ready in {result.setup_s:.1f} s")
        asyncio.run(_hosted_scenario(runtime, workload, result, args, dedicated))
    finally:
        runtime.shutdown()
    return result


async def _hosted_scenario(
    runtime: Runtime, workload: Workload, result: Result, args: argparse.Namespace, dedicated: bool
) -> None:
    subscriber = Subscriber(runtime)
    await subscriber.start()
    following = asyncio.ensure_future(subscriber.follow())
    await send_lanes(runtime, workload, result)
    subscriber.expected = result.acked
    subscriber.deadline = time.monotonic() + args.drain_timeout
    await following
    result.received, result.gaps = subscriber.received, subscriber.gaps
    metrics = await runtime.metrics()
    applied = sorted(((m.applied, name) for name, m in metrics.items()), reverse=True)
    if len(applied) <= 4:
        split = ", ".join(f"{name} {n:,}" for n, name in applied)
    else:
        split = f"{len(applied)} hosts, {applied[-1][0]:,} to {applied[0][0]:,} each"
    result.notes.append(f"applied per host: {split}")
    count = sum(m.activations for m in metrics.values())
    seconds = sum(m.activation_seconds for m in metrics.values())
    result.activation_ms = seconds / count * 1000 if count else None
    log(f"{result.name}: {result.rate:,.0f} msgs/s; subscriber {result.received}/{result.acked}")

    # First message to a fresh entity (dedicated: its actor is placed first), one at a time.
    firsts = []
    for _ in range(args.probes):
        entity_id = ids.new(Kind.TODO)
        begun = time.perf_counter()
        if dedicated:
            runtime.place_dedicated(entity_id)
        [outcome] = await runtime.submit([create_todo(entity_id, node="a")])
        firsts.append(time.perf_counter() - begun)
        assert outcome.status is Status.APPLIED, outcome
    result.first_ack_ms = median_ms(firsts)

    # Re-activation: passivate everything (snapshot), then read each entity back.
    await asyncio.gather(*(h.passivate() for h in runtime.hosts.values()))
    reads = []
    for entity_id in workload.entity_ids:
        begun = time.perf_counter()
        found = await runtime.get(entity_id)
        reads.append(time.perf_counter() - begun)
        assert found is not None and found.seq == len(workload.per_entity[entity_id]), found
    result.reactivate_ms = median_ms(reads)


# -- the naive baseline: one Ray actor per entity, one call per message --------------------


@ray.remote(num_cpus=0)
class NaiveEntity:
    """One entity in a Ray actor of its own; each call applies one message and commits it."""

    def __init__(self, lmdb_dir: str) -> None:
        self._store = LmdbStore(lmdb_dir, map_size=MAP_SIZE)  # one environment per process
        self._state: EntityState | None = None
        self._last_ms = 0

    def pid(self) -> int:
        return os.getpid()

    def handle(self, envelope: Envelope) -> Outcome:
        """The same `apply` and the same durable `append_batch` as a host, for one message."""
        try:
            result = apply(self._state, decode(envelope.body))
        except (DecodeError, RejectedMessage) as error:
            return Outcome(
                envelope.message_id, Status.REJECTED, envelope.entity_id, reason=str(error)
            )
        if not result.events or result.state is None:
            return Outcome(envelope.message_id, Status.DUPLICATE, envelope.entity_id)
        self._last_ms = max(self._last_ms, now_ms())
        stored = self._store.append_batch(
            [NewEvent(envelope.entity_id, self._last_ms, encode_event(e)) for e in result.events]
        )
        self._state = result.state
        return Outcome(
            envelope.message_id,
            Status.APPLIED,
            envelope.entity_id,
            stored[-1].seq,
            result.state.clock.to_dict(),
        )


async def drive_one(actor: Any, envelopes: Sequence[Envelope], window: int, result: Result) -> None:
    """Send one entity's messages, one call each, at most `window` outstanding, in order."""
    pending: deque[tuple[Any, float]] = deque()

    async def settle() -> None:
        ref, sent = pending.popleft()
        outcome: Outcome = await ref
        result.statuses[outcome.status.value] += 1
        if outcome.status is Status.APPLIED:
            result.latencies_s.append(time.perf_counter() - sent)

    for envelope in envelopes:
        if len(pending) >= window:
            await settle()
        pending.append((actor.handle.remote(envelope), time.perf_counter()))
    while pending:
        await settle()


def run_naive(args: argparse.Namespace, workload: Workload, base: Path) -> Result:
    result = Result("naive", len(workload.entity_ids), workload.messages)
    lmdb_dir = str(base / "naive" / "lmdb")
    started = time.perf_counter()
    actors = {e: NaiveEntity.remote(lmdb_dir) for e in workload.entity_ids}  # type: ignore[attr-defined]
    ray.get([a.pid.remote() for a in actors.values()])
    result.setup_s = time.perf_counter() - started
    result.activation_ms = result.setup_s / len(actors) * 1000  # amortised actor start-up
    log(f"naive: {len(actors)} actors ready in {result.setup_s:.1f} s")
    try:

        async def scenario() -> None:
            begun = time.perf_counter()
            await asyncio.gather(
                *(
                    drive_one(actors[e], workload.per_entity[e], args.window, result)
                    for e in workload.entity_ids
                )
            )
            result.seconds = time.perf_counter() - begun
            log(f"naive: {result.rate:,.0f} msgs/s")
            firsts = []
            for _ in range(args.probes):  # a fresh entity: start its actor, send its create
                entity_id = ids.new(Kind.TODO)
                begun = time.perf_counter()
                actor = NaiveEntity.remote(lmdb_dir)  # type: ignore[attr-defined]
                outcome = await actor.handle.remote(Envelope.of(create_todo(entity_id, node="a")))
                firsts.append(time.perf_counter() - begun)
                assert outcome.status is Status.APPLIED, outcome
                ray.kill(actor)
            result.first_ack_ms = median_ms(firsts)

        asyncio.run(scenario())
    finally:
        for actor in actors.values():
            ray.kill(actor)
    return result


# -- memory for many hosted entities ---------------------------------------------------------


@dataclass(slots=True)
class MemoryResult:
    entities: int
    hosts: int
    build_s: float = 0.0
    create_s: float = 0.0
    read_s: float = 0.0
    sample: int = 0
    sample_ok: int = 0
    applied: int = 0
    active: int = 0
    rss_before: int = 0
    rss_after: int = 0
    anon_before: int = 0
    anon_after: int = 0
    lmdb_bytes: int = 0
    shutdown_s: float = 0.0
    shutdown_error: str = ""
    total_s: float = 0.0  # the whole part, start-up and shutdown included


def host_memory(pids: Sequence[int]) -> tuple[int, int]:
    """Summed RSS, and summed RSS minus file-backed shared pages (the LMDB map), of `pids`."""
    infos = [psutil.Process(p).memory_info() for p in pids]
    return sum(i.rss for i in infos), sum(i.rss - i.shared for i in infos)


def run_memory(args: argparse.Namespace, base: Path) -> MemoryResult:
    count = args.memory_entities
    out = MemoryResult(count, args.hosts)
    begun = time.perf_counter()
    made = seeded_ids(args.seed + 1)
    entity_ids = [made.new(Kind.TODO) for _ in range(count)]
    envelopes = [
        Envelope.of(create_todo(e, f"todo {i}", node="a")) for i, e in enumerate(entity_ids)
    ]
    out.build_s = time.perf_counter() - begun
    log(f"memory: built {count:,} create messages in {out.build_s:.1f} s")
    # Every entity may stay active, so the RSS is that of `count` hosted entities.
    settings = hub_settings(base / "memory", "memory", args, max_active_entities=count)
    runtime = Runtime.start(settings)
    try:
        pids = [ray.get(h.pid()) for h in runtime.hosts.values()]
        out.rss_before, out.anon_before = host_memory(pids)
        batches = [envelopes[i : i + args.memory_batch] for i in range(0, count, args.memory_batch)]

        async def create() -> None:
            async def lane(mine: Sequence[Sequence[Envelope]]) -> None:
                for batch in mine:
                    outcomes = await runtime.route(list(batch))
                    out.applied += sum(o.status is Status.APPLIED for o in outcomes)

            await asyncio.gather(*(lane(batches[i :: args.lanes]) for i in range(args.lanes)))

        begun = time.perf_counter()
        asyncio.run(create())
        out.create_s = time.perf_counter() - begun
        log(f"memory: created {out.applied:,}/{count:,} in {out.create_s:.1f} s")
        out.rss_after, out.anon_after = host_memory(pids)
        out.active = sum(m.active_entities for m in asyncio.run(runtime.metrics()).values())
        sample = random.Random(7).sample(range(count), min(args.sample, count))

        async def read() -> None:
            for start in range(0, len(sample), 50):
                chunk = sample[start : start + 50]
                views = await asyncio.gather(*(runtime.get(entity_ids[i]) for i in chunk))
                for i, view in zip(chunk, views, strict=True):
                    out.sample_ok += int(view is not None and view.entity["content"] == f"todo {i}")

        begun = time.perf_counter()
        asyncio.run(read())
        out.read_s = time.perf_counter() - begun
        out.sample = len(sample)
        lmdb = settings.data_dir / "lmdb"
        out.lmdb_bytes = sum(f.stat().st_size for f in lmdb.iterdir())
    finally:
        begun = time.perf_counter()
        try:
            runtime.shutdown()  # snapshots every active entity first
        except Exception as error:  # reported, not hidden: the actors are killed regardless
            out.shutdown_error = f"{type(error).__name__}: {error}"
        out.shutdown_s = time.perf_counter() - begun
        log(f"memory: shutdown took {out.shutdown_s:.1f} s {out.shutdown_error}")
    return out


# -- report -----------------------------------------------------------------------------------


def fmt(value: float | None, spec: str = ".1f") -> str:
    return "n/a" if value is None else format(value, spec)


def table(results: Sequence[Result]) -> list[str]:
    header = (
        f"{'placement':<10} {'entities':>8} {'msgs':>7} {'acked':>7} {'secs':>7} {'msgs/s':>8} "
        f"{'p50 ms':>8} {'p99 ms':>8} {'activ ms':>9} {'1st ack ms':>10} {'react ms':>9} "
        f"{'setup s':>8} {'received':>9} {'match':>5}"
    )
    lines = [header, "-" * len(header)]
    for r in results:
        match = "n/a" if r.received is None else ("yes" if r.received == r.acked else "NO")
        lines.append(
            f"{r.name:<10} {r.entities:>8} {r.messages:>7} {r.acked:>7} {r.seconds:>7.2f} "
            f"{r.rate:>8.0f} {percentile(r.latencies_s, 0.5) * 1000:>8.1f} "
            f"{percentile(r.latencies_s, 0.99) * 1000:>8.1f} {fmt(r.activation_ms, '.3f'):>9} "
            f"{fmt(r.first_ack_ms):>10} {fmt(r.reactivate_ms):>9} {r.setup_s:>8.1f} "
            f"{'n/a' if r.received is None else r.received:>9} {match:>5}"
        )
    for r in results:
        other = {k: v for k, v in r.statuses.items() if k != Status.APPLIED.value}
        if other or r.gaps:
            lines.append(f"! {r.name}: non-applied outcomes {other}, subscriber gaps {r.gaps}")
        lines.extend(f"  {r.name}: {note}" for note in r.notes)
    return lines


def memory_lines(m: MemoryResult) -> list[str]:
    mib = 1 << 20
    grew, anon = m.rss_after - m.rss_before, m.anon_after - m.anon_before
    return [
        f"memory: {m.entities:,} todo entities on {m.hosts} sharded hosts "
        f"({m.active:,} active after creation, {m.applied:,} applied), {m.total_s:.0f} s in all",
        f"  build {m.build_s:.1f} s (driver), create {m.create_s:.1f} s "
        f"({m.applied / m.create_s if m.create_s else 0:,.0f} entities/s), read back "
        f"{m.sample_ok}/{m.sample} sampled in {m.read_s:.2f} s, shutdown {m.shutdown_s:.1f} s"
        + (f" ({m.shutdown_error})" if m.shutdown_error else ""),
        f"  host RSS {m.rss_before / mib:.0f} MiB -> {m.rss_after / mib:.0f} MiB "
        f"(+{grew / mib:.0f} MiB, {grew / max(m.entities, 1):,.0f} bytes/entity); "
        f"without file-backed pages +{anon / mib:.0f} MiB ({anon / max(m.entities, 1):,.0f} "
        f"bytes/entity); LMDB files {m.lmdb_bytes / mib:.0f} MiB",
    ]


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__,
        epilog="The last line printed is `sharded_msgs_per_s=<n> naive_msgs_per_s=<n> "
        "speedup=<float>`; progress goes to stderr.",
    )
    parser.add_argument("--entities", type=int, default=32, help="entities in the 3-way workload")
    parser.add_argument("--updates", type=int, default=500, help="updates per entity (+1 create)")
    parser.add_argument("--batch", type=int, default=500, help="messages per route call")
    parser.add_argument("--lanes", type=int, default=4, help="batches in flight at once")
    parser.add_argument("--window", type=int, default=4, help="naive: outstanding calls per actor")
    parser.add_argument("--hosts", type=int, default=2, help="sharded host actors")
    parser.add_argument("--probes", type=int, default=5, help="fresh entities for first-ack time")
    parser.add_argument("--drain-timeout", type=float, default=20.0, help="subscriber catch-up, s")
    parser.add_argument("--memory-entities", type=int, default=100_000)
    parser.add_argument("--memory-batch", type=int, default=1000)
    parser.add_argument("--sample", type=int, default=1000, help="entities read back")
    parser.add_argument("--skip-memory", action="store_true", help="skip the many-entity part")
    parser.add_argument(
        "--placements", default="sharded,dedicated,naive", help="comma-separated subset"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the entity ids")
    parser.add_argument("--keep-data", action="store_true", help="keep the tmp data dirs")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    wanted = [p.strip() for p in args.placements.split(",") if p.strip()]
    base = Path(tempfile.mkdtemp(prefix="bench-runtime-"))
    log(f"data under {base}; cpus {os.cpu_count()}")
    begun = time.perf_counter()
    workload = build_workload(args.entities, args.updates, args.batch, args.lanes, args.seed)
    log(f"workload: {workload.messages:,} messages built in {time.perf_counter() - begun:.1f} s")
    results: list[Result] = []
    memory: MemoryResult | None = None
    memory_error = ""
    init_ray()  # never attach to someone else's cluster on this shared machine
    try:
        for name in wanted:
            begun = time.perf_counter()
            if name == "naive":
                results.append(run_naive(args, workload, base))
            else:
                results.append(run_hosted(name, args, workload, base))
            log(f"{name}: done in {time.perf_counter() - begun:.1f} s")
        if not args.skip_memory:
            begun = time.perf_counter()
            try:
                memory = run_memory(args, base)
                memory.total_s = time.perf_counter() - begun
            except Exception as error:
                memory_error = f"{type(error).__name__}: {error}"
            log(f"memory: done in {time.perf_counter() - begun:.1f} s")
    finally:
        ray.shutdown()
        if not args.keep_data:
            shutil.rmtree(base, ignore_errors=True)
    print(
        f"workload: {args.entities} entities x (1 create + {args.updates} updates), "
        f"batches of {args.batch}, {args.lanes} in flight; naive window {args.window}; "
        f"{args.hosts} sharded hosts; durable acks; one subscriber on the whole stream"
    )
    for line in table(results):
        print(line)
    if memory is not None:
        for line in memory_lines(memory):
            print(line)
    elif memory_error:
        print(f"memory: FAILED {memory_error}")
    by_name = {r.name: r for r in results}
    sharded = by_name["sharded"].rate if "sharded" in by_name else 0.0
    naive = by_name["naive"].rate if "naive" in by_name else 0.0
    speedup = sharded / naive if naive else 0.0
    print(f"sharded_msgs_per_s={sharded:.0f} naive_msgs_per_s={naive:.0f} speedup={speedup:.2f}")


if __name__ == "__main__":
    main()
