"""Chaos: writers at a steady rate over REST and /ws, a subscriber on /ws, and every few seconds
for a minute a SIGKILL of a host actor, the router actor, the broker actor or the whole
`chitty up`; then every acknowledged write is there, every chain verifies, and the subscriber
saw every acknowledged write on its stream or was told, by a gap frame, to reload (and did).

Figures (writes acked, kills by kind, recovery time p50/p99: from a kill to the first write
sent after it that is acknowledged) are printed on the `CHAOS` line; BENCHMARKS.md reports
a run. `CHITTY_CHAOS_S` sets the length of the chaos (60 s), `CHITTY_CHAOS_SEED` its dice.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.transports.test_restart import ADMIN, crash, free_port, launch, start

ROOT = Path(__file__).resolve().parents[2]
RATE_PER_S = 10  # each writer's
KINDS = ("host", "router", "broker", "hub")
ACTOR_TITLES = {
    "host": b"ray::HostActor",
    "router": b"ray::RouterActor",
    "broker": b"ray::BrokerActor",
}
HEADERS = {"Authorization": f"Bearer {ADMIN}"}


@dataclass
class Acked:
    entity_id: str
    content: str
    sent: float
    acked: float


@dataclass
class Chaos:
    data: Path
    port: int
    hub: subprocess.Popen[bytes]
    session: str = ""
    stop_writing: bool = False
    acked: dict[str, Acked] = field(default_factory=dict)  # by content
    kills: list[tuple[float, str]] = field(default_factory=list)
    server_errors: list[Any] = field(default_factory=list)  # every 500 answer: none expected
    refused: list[Any] = field(default_factory=list)  # 4xx answers: none expected
    gave_up: int = 0
    streamed: dict[str, str] = field(default_factory=dict)  # entity id -> content seen
    reloaded: set[str] = field(default_factory=set)  # entity ids a reload after a gap listed
    gaps: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def session_ids(hub_pid: int, title: bytes) -> list[int]:
    """The processes of `hub` (its own session) whose title starts with `title`."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if (entry / "cmdline").read_bytes().startswith(title) and os.getsid(
                int(entry.name)
            ) == hub_pid:
                found.append(int(entry.name))
        except (OSError, ValueError):
            continue
    return found


async def rest_write(chaos: Chaos, http: aiohttp.ClientSession, n: int) -> None:
    """One create over REST, retried with its Idempotency-Key until acknowledged."""
    content, sent = f"rest {n}", time.monotonic()
    headers = {**HEADERS, "Idempotency-Key": f"chaos-rest-{n}"}
    body = {"content": content, "sessionId": chaos.session}
    while time.monotonic() < sent + 120:
        try:
            async with http.post(
                chaos.url + "/api/v1/todos",
                json=body,
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=15),
            ) as answer:
                text = await answer.text()
                if answer.status == 201:
                    made = json.loads(text)["entity"]["chittyId"]
                    chaos.acked[content] = Acked(made, content, sent, time.monotonic())
                    return
                if answer.status >= 500 and answer.status != 503:
                    chaos.server_errors.append((answer.status, text))
                elif answer.status not in (429, 503):
                    chaos.refused.append((answer.status, text))
                    return
        except (aiohttp.ClientError, TimeoutError, ValueError):
            pass  # the hub is restarting: the same key again
        await asyncio.sleep(0.5)
    chaos.gave_up += 1


async def rest_writer(chaos: Chaos) -> None:
    async with aiohttp.ClientSession() as http:
        tasks: set[asyncio.Task[None]] = set()
        n = 0
        while not chaos.stop_writing:
            n += 1
            task = asyncio.create_task(rest_write(chaos, http, n))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            await asyncio.sleep(1 / RATE_PER_S)
        await asyncio.gather(*tasks)


async def ws_writer(chaos: Chaos) -> None:
    """Creates over /ws at a steady rate; a write not acknowledged is sent again (same id)
    after a reconnect or an `unavailable` answer, until acknowledged."""
    pending: dict[str, tuple[str, float]] = {}  # message id -> (content, first sent)
    n = 0

    def frame(message_id: str) -> str:
        content = pending[message_id][0]
        entity = {"content": content, "sessionId": chaos.session}
        return json.dumps(
            {"type": "state_update", "domain": "todos", "entity": entity, "id": message_id}
        )

    async with aiohttp.ClientSession() as http:
        while not chaos.stop_writing or pending:
            try:
                async with http.ws_connect(
                    chaos.url + "/ws", headers=HEADERS, heartbeat=5
                ) as socket:
                    for message_id in list(pending):
                        await socket.send_str(frame(message_id))

                    async def read() -> None:
                        async for received in socket:
                            if received.type is not aiohttp.WSMsgType.TEXT:
                                return
                            answer = json.loads(received.data)
                            message_id = answer.get("id")
                            if answer["type"] == "ack" and message_id in pending:
                                content, sent = pending.pop(message_id)
                                chaos.acked[content] = Acked(
                                    answer["entityId"], content, sent, time.monotonic()
                                )
                            elif answer["type"] == "error" and message_id in pending:
                                if answer.get("status") in (429, 503):
                                    await asyncio.sleep(0.5)
                                    await socket.send_str(frame(message_id))
                                elif answer.get("status", 0) >= 500:
                                    # Failed at the end with this answer (waiting on it would
                                    # only hang the run).
                                    chaos.server_errors.append(answer)
                                    pending.pop(message_id)
                                else:
                                    chaos.refused.append(answer)
                                    pending.pop(message_id)

                    reader = asyncio.create_task(read())
                    while not reader.done():
                        if not chaos.stop_writing:
                            n += 1
                            message_id = f"chaos-ws-{n}"
                            pending[message_id] = (f"ws {n}", time.monotonic())
                            await socket.send_str(frame(message_id))
                        elif not pending:
                            break
                        await asyncio.sleep(1 / RATE_PER_S)
                    reader.cancel()
            except (aiohttp.ClientError, ConnectionError, TimeoutError, RuntimeError):
                pass
            await asyncio.sleep(0.5)


async def todos(chaos: Chaos, http: aiohttp.ClientSession) -> dict[str, str]:
    """The session's todos over REST, every page (id -> content); retried until it answers."""
    while True:
        found: dict[str, str] = {}
        cursor = ""
        try:
            while True:
                query = f"sessionId={chaos.session}&limit=500" + (
                    f"&cursor={cursor}" if cursor else ""
                )
                async with http.get(f"{chaos.url}/api/v1/todos?{query}", headers=HEADERS) as answer:
                    if answer.status != 200:
                        raise aiohttp.ClientError(f"list answered {answer.status}")
                    page = await answer.json()
                found |= {i["entity"]["chittyId"]: i["entity"]["content"] for i in page["items"]}
                cursor = page.get("cursor") or ""
                if not cursor:
                    return found
        except (aiohttp.ClientError, TimeoutError, ValueError):
            await asyncio.sleep(0.5)


async def reload(chaos: Chaos, http: aiohttp.ClientSession) -> None:
    """What a gap frame asks: read the session's todos again over REST."""
    chaos.reloaded |= (await todos(chaos, http)).keys()


async def subscriber(chaos: Chaos, done: asyncio.Event) -> None:
    """Follows the session's todos; resumes from its offset after a disconnect; reloads over
    REST on a gap frame."""
    at: dict[str, Any] | None = None
    async with aiohttp.ClientSession() as http:
        while not done.is_set():
            try:
                async with http.ws_connect(
                    chaos.url + "/ws", headers=HEADERS, heartbeat=5
                ) as socket:
                    wanted: dict[str, Any] = {
                        "type": "subscribe",
                        "domains": ["todos"],
                        "filters": {"sessionId": chaos.session},
                    }
                    if at is not None:
                        wanted["resume"] = at
                    await socket.send_str(json.dumps(wanted))
                    while not done.is_set():
                        try:
                            received = await socket.receive(timeout=1)
                        except TimeoutError:
                            continue
                        if received.type is not aiohttp.WSMsgType.TEXT:
                            break
                        frame = json.loads(received.data)
                        events = frame["events"] if frame["type"] == "batch" else [frame]
                        for event in events:
                            if event["type"] == "subscribed" and at is None:
                                at = {"epoch": event["epoch"], "offset": event["offset"]}
                            elif event["type"] == "state_update":
                                chaos.streamed[event["entityId"]] = event["entity"]["content"]
                                at = {"epoch": event["epoch"], "offset": event["offset"]}
                            elif event["type"] == "gap":
                                chaos.gaps += 1
                                at = {"epoch": event["epoch"], "offset": event["offset"]}
                                await reload(chaos, http)
                                if event.get("ended"):
                                    break
            except (aiohttp.ClientError, ConnectionError, TimeoutError, RuntimeError):
                pass
            await asyncio.sleep(0.5)


async def kill(chaos: Chaos, kind: str) -> None:
    chaos.kills.append((time.monotonic(), kind))
    if kind == "hub":
        await asyncio.to_thread(crash, chaos.hub)
        chaos.hub = await asyncio.to_thread(
            start,
            chaos.data,
            chaos.port,
            launch(chaos.data, chaos.port, f"chaos-{chaos.port}", "--hosts", "2"),
        )
        return
    victims = session_ids(chaos.hub.pid, ACTOR_TITLES[kind])
    assert victims, f"no {kind} actor process found"
    os.kill(random.choice(victims), signal.SIGKILL)


async def chaos_run(chaos: Chaos, seconds: float) -> None:
    done = asyncio.Event()
    writers = [asyncio.create_task(rest_writer(chaos)), asyncio.create_task(ws_writer(chaos))]
    following = asyncio.create_task(subscriber(chaos, done))
    order = list(KINDS)
    random.shuffle(order)  # every kind at least once
    end = time.monotonic() + seconds
    await asyncio.sleep(3)
    while time.monotonic() < end:
        began = time.monotonic()
        kind = order.pop() if order else random.choices(KINDS, (4, 2, 2, 1))[0]
        await kill(chaos, kind)
        if kind == "hub":  # the time a whole hub takes to start again is not chaos time
            end += time.monotonic() - began
        await asyncio.sleep(random.uniform(3, 6))
    chaos.stop_writing = True
    await asyncio.wait_for(asyncio.gather(*writers), 180)
    deadline = time.monotonic() + 60
    ids = {a.entity_id for a in chaos.acked.values()}
    while time.monotonic() < deadline and not ids <= chaos.streamed.keys() | chaos.reloaded:
        await asyncio.sleep(0.5)
    done.set()
    await following


def listed(chaos: Chaos) -> dict[str, str]:
    async def go() -> dict[str, str]:
        async with aiohttp.ClientSession() as http:
            return await todos(chaos, http)

    return asyncio.run(go())


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


@pytest.mark.slow
def test_nothing_acknowledged_is_lost_under_sigkills(tmp_path: Path) -> None:
    seconds = float(os.environ.get("CHITTY_CHAOS_S", "60"))
    seed = int(os.environ.get("CHITTY_CHAOS_SEED", str(time.time_ns() % 100_000)))
    random.seed(seed)
    data, port = tmp_path / "data", free_port()
    chaos = Chaos(
        data, port, start(data, port, launch(data, port, f"chaos-{port}", "--hosts", "2"))
    )
    try:
        answer = asyncio.run(_create_session(chaos))
        chaos.session = answer
        asyncio.run(chaos_run(chaos, seconds))
        everything = listed(chaos)
    finally:
        chaos.hub.send_signal(signal.SIGINT)  # a clean stop, then the audit reads the files
        try:
            chaos.hub.wait(120)
        except subprocess.TimeoutExpired:
            crash(chaos.hub)

    recoveries = []
    for at, _ in chaos.kills:
        after = [a.acked for a in chaos.acked.values() if a.sent > at]
        if after:
            recoveries.append(min(after) - at)
    kinds = {kind: sum(1 for _, k in chaos.kills if k == kind) for kind in KINDS}
    print(
        f"\nCHAOS seed={seed} seconds={seconds:g} writes_acked={len(chaos.acked)} "
        f"(rest {sum(c.startswith('rest') for c in chaos.acked)}, ws "
        f"{sum(c.startswith('ws') for c in chaos.acked)}) kills={len(chaos.kills)} {kinds} "
        f"recovery_p50={statistics.median(recoveries):.2f}s "
        f"recovery_p99={percentile(recoveries, 0.99):.2f}s gaps={chaos.gaps} "
        f"gave_up={chaos.gave_up} stored={len(everything)}"
    )
    assert not chaos.server_errors, chaos.server_errors[:5]
    assert not chaos.refused, chaos.refused[:5]
    assert len(chaos.kills) >= max(4, int(seconds / 8)) and all(kinds.values()), chaos.kills
    lost = {c: a.entity_id for c, a in chaos.acked.items() if everything.get(a.entity_id) != c}
    assert not lost, f"{len(lost)} acknowledged writes missing: {list(lost.items())[:5]}"
    unseen = {a.entity_id for a in chaos.acked.values()} - chaos.streamed.keys() - chaos.reloaded
    assert not unseen, f"{len(unseen)} acknowledged writes neither streamed nor reloaded"
    assert all(everything[i] == c for i, c in chaos.streamed.items() if i in everything)
    assert chaos.gaps >= kinds["hub"]  # a new stream each time the whole hub restarts
    audit = subprocess.run(
        [sys.executable, "-m", "transports.cli", "audit", "verify"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={
            **os.environ,
            "CHITTY_DATA_DIR": str(data),
            "CHITTY_CONFIG_DIR": str(data.with_name(data.name + "-config")),
        },
    )
    assert audit.returncode == 0 and "every chain verifies" in audit.stdout, audit


async def _create_session(chaos: Chaos) -> str:
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            chaos.url + "/api/v1/sessions",
            json={"sessionId": "chaos", "platform": "cli"},
            headers=HEADERS,
        ) as answer,
    ):
        body = await answer.json()
        assert answer.status == 201, body
        return str(body["entity"]["chittyId"])
