"""Where one write's CPU goes, stage by stage, in one process (no Ray, no sockets).

Runs the path a /ws write takes through the hub's own code, with a real LMDB store under a temp
dir: the gateway parses a batch frame of short `state_update`s (as `loadtests/locustfile.py`'s
publishers send them: creates until each publisher has its pool of todos, then updates) and
builds envelopes; the host unpacks them and runs its turn (`EntityHost.handle`: apply, commit,
publications) and packs outcomes and publications; the broker takes and serves them; the
gateway decodes the poll and writes every event's frame for each subscriber. Prints
microseconds per write for each stage, beside the floor measured in the same run (`Floor`: the
least Python work a durable write must do) and the ratio of the two. The Ray calls, the sockets
and the thread hand-offs of the real hub are not in it: `loadtests/run.py` measures the whole.

    python loadtests/bench_pipeline.py --rounds 100
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import lmdb
import msgpack
import orjson

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # `python loadtests/bench_pipeline.py` from anywhere
    sys.path.insert(0, str(ROOT))

from actors.broker import Broker, decode_poll, pack_encoded, unpack_published  # noqa: E402
from actors.host import EntityHost  # noqa: E402
from actors.ray_shell import open_store  # noqa: E402
from hub.envelope import (  # noqa: E402
    Envelope,
    Status,
    pack_envelopes,
    pack_outcomes,
    unpack_envelopes,
    unpack_outcomes,
)
from hub.gc_tuning import tune_gc  # noqa: E402
from hub.ids import IdGenerator, Kind  # noqa: E402
from hub.settings import HubSettings  # noqa: E402
from hub.store import generate_key  # noqa: E402
from hub.subscriptions import Filter  # noqa: E402
from transports.gateway.ws_frames import Batch, Origin, Write, encode, parse_text  # noqa: E402
from transports.gateway.ws_outbox import Delivery, Outgoing, frames_of  # noqa: E402

STAGES = ("gateway parse", "gateway envelopes", "host turn", "host pack", "broker", "fan-out")
FLOOR_OF = {"gateway parse": "parse", "host turn": "commit", "fan-out": "encode"}  # Floor's parts


class Pipeline:
    """One gateway, one host on a fresh LMDB store, one broker, `subscribers` subscribers."""

    def __init__(self, data_dir: Path, publishers: int, pool: int, batch: int, subscribers: int):
        # Encrypted at rest, as a hub is by default, with a key of its own.
        settings = HubSettings(data_dir=data_dir, encryption_key=generate_key().hex())
        self.host = EntityHost("host-0", open_store(settings), settings)
        self.broker = Broker(100_000)
        ids = IdGenerator("bench-pipeline", now_ms=lambda: time.time_ns() // 1_000_000)
        self.origin = Origin("hub:bench", "ws", ids.new, chitty_id="CHITTY-USER-BENCH")
        self.projects = [ids.new(Kind.PROJ) for _ in range(4)]
        self.sessions = [ids.new(Kind.SESSION) for _ in range(publishers)]
        self.pools: list[list[str]] = [[] for _ in range(publishers)]
        self.sent = [itertools.count() for _ in range(publishers)]
        self.pool, self.batch, self.subscribers = pool, batch, subscribers
        self.offset = self.broker.head
        self.seconds = dict.fromkeys(STAGES, 0.0)
        self.writes = 0

    def frame_text(self, publisher: int) -> str:
        pool = self.pools[publisher]
        creating = min(self.pool - len(pool), self.batch)
        frames: list[dict[str, Any]] = []
        for _ in range(creating if creating > 0 else self.batch):
            i = next(self.sent[publisher])
            form = str(time.time_ns())
            if creating > 0:
                entity = {
                    "content": f"bench {publisher}-{i}",
                    "activeForm": form,
                    "sessionId": self.sessions[publisher],
                    "projectId": self.projects[i % len(self.projects)],
                }
                frame = {"operation": "create", "entity": entity}
            else:
                entity = {"chittyId": pool[i % len(pool)], "activeForm": form}
                frame = {"operation": "update", "entity": entity}
            frame.update(type="state_update", domain="todos", id=f"m{publisher}x{i}")
            frames.append(frame)
        return orjson.dumps(frames).decode()

    def step(self, publisher: int, timed: bool = True) -> None:
        text = self.frame_text(publisher)
        marks = [time.perf_counter()]

        def mark() -> None:
            marks.append(time.perf_counter())

        frame = parse_text(text, self.origin)
        assert isinstance(frame, Batch), frame
        messages = [item.message for item in frame.items if isinstance(item, Write)]
        mark()
        packed = pack_envelopes([Envelope.of(message) for message in messages])
        mark()
        turn = self.host.handle(unpack_envelopes(packed))
        mark()
        first = self.host.outbox_seq - len(turn.published) + 1
        outcomes = pack_outcomes(turn.outcomes)
        published = pack_encoded(
            [
                (first + n, item, body)
                for n, (item, body) in enumerate(zip(turn.published, turn.encoded, strict=True))
            ]
        )
        mark()
        self.broker.publish_encoded("host-0", unpack_published(published))
        answer = self.broker.poll_encoded(self.broker.epoch, self.offset, Filter(), 10_000)
        mark()
        poll = decode_poll(answer)
        self.offset = poll.offset
        for n in range(self.subscribers):
            sub = f"sub-{n}"
            deliveries: list[Outgoing] = [Delivery(sub, poll.epoch, e) for e in poll.events]
            for wire in frames_of(deliveries):
                encode(wire)
        acks = unpack_outcomes(outcomes)
        mark()
        for outcome in acks:
            if outcome.status is not Status.APPLIED:
                raise RuntimeError(f"a write was not applied: {outcome}")
            if outcome.seq == 1:
                self.pools[publisher].append(outcome.entity_id)
        if timed:
            for stage, (start, end) in zip(STAGES, itertools.pairwise(marks), strict=True):
                self.seconds[stage] += end - start
            self.writes += len(messages)


class Floor:
    """The least Python work a durable write must do, on the same frames, in the same run:
    parse the frame; per write one msgpack encode, one sha256 and one LMDB put, the batch in
    one synced LMDB transaction (a fresh environment with the hub's settings: sync and
    metasync on); one JSON encode of the outgoing event, shared by every subscriber. (The
    hub also encrypts every value at rest by default; the floor does not, so the ratio is if
    anything flattering to the floor.) Its three parts stand beside the hub's stages they
    correspond to: the gateway's parse, the host's turn and the fan-out."""

    def __init__(self, data_dir: Path) -> None:
        self.env = lmdb.open(str(data_dir / "floor"), map_size=1 << 30, max_dbs=2)
        self.db = self.env.open_db(b"events")
        self.seconds = dict.fromkeys(FLOOR_OF.values(), 0.0)
        self.seq = itertools.count()

    def step(self, text: str) -> None:
        started = time.perf_counter()
        frames = orjson.loads(text)
        parsed = time.perf_counter()
        events = []
        with self.env.begin(write=True, db=self.db) as txn:
            for frame in frames:
                body = msgpack.packb(frame)
                digest = hashlib.sha256(body).digest()
                txn.put(next(self.seq).to_bytes(8, "big"), digest + body)
                events.append(frame)
        committed = time.perf_counter()
        for event in events:
            orjson.dumps(event)
        encoded = time.perf_counter()
        self.seconds["parse"] += parsed - started
        self.seconds["commit"] += committed - parsed
        self.seconds["encode"] += encoded - committed


def run(options: argparse.Namespace, out: Callable[[str], None] = print) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="chitty-bench-pipeline-") as data_dir:
        pipeline = Pipeline(
            Path(data_dir), options.publishers, options.pool, options.batch, options.subscribers
        )
        floor = Floor(Path(data_dir))
        tune_gc()  # as every hub process does once it has started
        for publisher in range(options.publishers):  # each pool created before timing
            while len(pipeline.pools[publisher]) < options.pool:
                pipeline.step(publisher, timed=False)
        for _ in range(options.rounds):
            for publisher in range(options.publishers):
                text = pipeline.frame_text(publisher)
                floor.step(text)  # the same kind of frame, in the same minute
                pipeline.step(publisher)
        writes = pipeline.writes
        per_write = {k: v / writes * 1e6 for k, v in pipeline.seconds.items()}
        floor_us = {k: v / writes * 1e6 for k, v in floor.seconds.items()}
        floor.env.close()
    out(f"{'stage':18s} {'hub':>9s} {'floor':>9s} {'ratio':>7s}   (us per write)")
    for stage, us in per_write.items():
        part = FLOOR_OF.get(stage)
        beside = floor_us[part] if part else 0.0
        ratio = f"{us / beside:6.1f}x" if beside else "      -"
        out(f"{stage:18s} {us:9.1f} {beside:9.1f} {ratio}")
    total, least = sum(per_write.values()), sum(floor_us.values())
    out(f"{'total':18s} {total:9.1f} {least:9.1f} {total / least:6.1f}x   ({writes} writes)")
    per_write["floor"] = least
    return per_write


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=100, help="batches per publisher, timed")
    parser.add_argument("--publishers", type=int, default=4)
    parser.add_argument("--pool", type=int, default=64, help="todos per publisher")
    parser.add_argument("--batch", type=int, default=100, help="writes per batch frame")
    parser.add_argument("--subscribers", type=int, default=2, help="each sees every event")
    return parser.parse_args(argv)


if __name__ == "__main__":
    run(parse())
