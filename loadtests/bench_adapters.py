"""Benchmark of a channel adapter: hub commit -> the service received it, at a steady rate.

A real hub (embedded Ray, LMDB) with the Slack adapter pointed at the Slack emulator, which
runs in a process of its own (as Slack would: it takes no CPU from the hub's processes but
what the machine shares) on a loopback port. Todos are created at `--rate` per second for
`--duration` seconds; each one's commit time (its write acked) and the time the emulator
received the post that shows it give the delivery latency (p50/p95/p99) and the adapter's
throughput. The same-run baseline is `slack_sdk` posting straight to the emulator with as many
posts in flight as the adapter keeps (`actors.adapter.LANES`), no hub: what one Slack client
on this machine can carry.

    python loadtests/bench_adapters.py --rate 1000 --duration 10
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # `python loadtests/bench_adapters.py` from anywhere
    sys.path.insert(0, str(ROOT))
TOKEN = "xoxb-test"  # the emulator's bot token

from slack_sdk.web.async_client import AsyncWebClient  # noqa: E402

from actors.adapter import LANES  # noqa: E402
from actors.ray_start import init_ray  # noqa: E402
from actors.runtime import Runtime  # noqa: E402
from hub.envelope import Status  # noqa: E402
from hub.ids import IdGenerator, Kind  # noqa: E402
from hub.settings import HubSettings  # noqa: E402
from hub.store.crypto import generate_key  # noqa: E402
from tests.messages import create_todo, sync_message  # noqa: E402
from transports.channels import CHANNELS  # noqa: E402


def percentiles(values: list[float]) -> str:
    if not values:
        return "none"
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return f"p50={cuts[49]:.0f} p95={cuts[94]:.0f} p99={cuts[98]:.0f} ms (n={len(values)})"


async def baseline(api_url: str, count: int) -> float:
    """slack_sdk posting straight to the emulator, `LANES` posts in flight: posts per second."""
    client = AsyncWebClient(token=TOKEN, base_url=api_url)
    lanes = asyncio.Semaphore(LANES)

    async def post(n: int) -> None:
        async with lanes:
            await client.chat_postMessage(channel="CBASE", text=f"baseline {n}")

    started = time.perf_counter()
    await asyncio.gather(*(post(n) for n in range(count)))
    return count / (time.perf_counter() - started)


class Emulator:
    """The Slack emulator in a process of its own (until its stdin closes)."""

    def __init__(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.emulators.slack"],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        self.url = self.process.stdout.readline().strip()
        assert self.url.startswith("http://127.0.0.1:"), "the emulator did not start"
        self.api_url = f"{self.url}/api/"

    def posts(self) -> list[tuple[str | None, float]]:
        with urllib.request.urlopen(f"{self.url}/_emulator/posts", timeout=30) as answer:
            return [(chitty, float(at)) for chitty, at in json.load(answer)]

    def stop(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.wait(30)


def run(rate: float, duration: float, batch: int) -> None:
    slack = Emulator()
    data = Path(tempfile.mkdtemp(prefix="chitty-bench-adapters-"))
    env = {
        "SLACK_BOT_TOKEN": TOKEN,
        "CHITTY_SLACK_CHANNEL": "CBENCH",
        "CHITTY_SLACK_API_URL": slack.api_url,
    }
    settings = HubSettings(
        data_dir=data,
        namespace="bench-adapters",
        hosts=1,
        adapter_env=env,
        encryption_key=generate_key().hex(),  # encrypted at rest, as by default
    )
    init_ray(num_cpus=2, namespace=settings.namespace)
    runtime = Runtime.start(settings, [s for s in CHANNELS if s.name == "slack"])
    ids = IdGenerator("bench", now_ms=lambda: time.time_ns() // 1_000_000)
    try:
        deadline = time.monotonic() + 60
        while asyncio.run(runtime.adapter_statuses())[0].state.value != "connected":
            assert time.monotonic() < deadline, "the adapter did not connect"
            time.sleep(0.1)
        session = ids.new(Kind.SESSION)
        data_ = {"sessionId": "bench", "platform": "cli"}
        [made] = asyncio.run(
            runtime.submit([sync_message(session, "create", data_, domain="sessions")])
        )
        assert made.status is Status.APPLIED
        committed: dict[str, float] = {}

        async def write() -> None:
            period = batch / rate
            start = time.monotonic()
            n = 0
            while time.monotonic() - start < duration:
                todos = [ids.new(Kind.TODO) for _ in range(batch)]
                messages = [create_todo(t, f"bench {n + i}", session) for i, t in enumerate(todos)]
                outcomes = await runtime.submit(messages)
                now = time.time()
                for todo, outcome in zip(todos, outcomes, strict=True):
                    if outcome.status is Status.APPLIED:
                        committed[todo] = now
                n += batch
                wait = start + (n / batch) * period - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)

        started = time.monotonic()
        asyncio.run(write())
        wrote = time.monotonic() - started
        print(
            f"[adapters] committed {len(committed)} todos in {wrote:.1f} s "
            f"({len(committed) / wrote:,.0f}/s asked {rate:,.0f}/s)"
        )
        posted: dict[str, float] = {}
        deadline = time.monotonic() + max(120.0, duration * 10)
        while len(posted) < len(committed) and time.monotonic() < deadline:
            for chitty, received in slack.posts():
                if chitty in committed and chitty not in posted:
                    posted[chitty] = received
            time.sleep(0.5)
        drained = time.monotonic() - started
        latencies = [(posted[t] - committed[t]) * 1000 for t in posted]
        first = min(posted.values(), default=0.0)
        last = max(posted.values(), default=0.0)
        throughput = (len(posted) - 1) / (last - first) if len(posted) > 1 else 0.0
        print(
            f"[adapters] posted {len(posted)} of {len(committed)} "
            f"(all delivered {drained:.1f} s after the first write)"
        )
        print(f"[adapters] delivery latency, commit -> emulator received: {percentiles(latencies)}")
        print(f"[adapters] adapter throughput: {throughput:,.0f} posts/s")
        direct = asyncio.run(baseline(slack.api_url, 5000))
        print(f"[baseline] slack_sdk to the emulator, {LANES} in flight: {direct:,.0f} posts/s")
        print(f"adapter/baseline throughput ratio: {throughput / direct:.2f}")
        lost = len(committed) - len(posted)
        p99 = statistics.quantiles(latencies, n=100)[98] if len(latencies) > 1 else 0.0
        print(f"delivered_per_s={throughput:.0f} p99_ms={p99:.0f} lost={lost}")
    finally:
        runtime.shutdown()
        slack.stop()
        shutil.rmtree(data, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rate", type=float, default=1000.0, help="hub changes per second")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds of writes")
    parser.add_argument("--batch", type=int, default=20, help="todos per write call")
    options = parser.parse_args()
    run(options.rate, options.duration, options.batch)


if __name__ == "__main__":
    main()
