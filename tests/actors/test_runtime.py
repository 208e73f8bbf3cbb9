"""The hub on Ray: a SIGKILLed host loses no acked message, subscribers resume, placement moves."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import ray

from actors.host import EntityHost
from actors.ray_shell import open_store
from actors.runtime import RESTARTING, Runtime
from hub.catalog import Query
from hub.domains import SyncDomain
from hub.envelope import Envelope, Status
from hub.ids import IdGenerator, Kind
from hub.protocol import StateDelta
from hub.subscriptions import Filter
from tests.actors.conftest import settings_for
from tests.messages import create_todo, sync_message

ids = IdGenerator("runtime-tests", now_ms=lambda: time.time_ns() // 1_000_000)


@pytest.fixture
def runtime(ray_cluster: None, tmp_path: Path) -> Iterator[Runtime]:
    started = Runtime.start(settings_for(tmp_path, hosts=2, call_timeout_s=60))
    yield started
    started.shutdown()


@pytest.mark.slow
def test_a_host_killed_mid_stream_loses_no_acked_message(runtime: Runtime) -> None:
    todos = [ids.new(Kind.TODO) for _ in range(8)]
    outcomes = asyncio.run(runtime.submit([create_todo(t, node="a") for t in todos]))
    assert all(o.status is Status.APPLIED for o in outcomes)
    victim = runtime.table.host_of(todos[0])
    pid = ray.get(runtime.hosts[victim].pid())
    acked: dict[str, list[int]] = {t: [] for t in todos}

    async def stream() -> None:
        for n in range(1, 61):
            if n == 20:
                os.kill(pid, signal.SIGKILL)  # mid-load, with batches in flight
            batch = [_add(t, n) for t in todos]
            for todo, outcome in zip(todos, await runtime.submit(batch), strict=True):
                if outcome.durable:
                    acked[todo].append(n)

    asyncio.run(stream())
    assert ray.get(runtime.hosts[victim].pid()) != pid  # it was restarted
    for todo in todos:
        view = asyncio.run(runtime.get(todo))
        assert view is not None
        present = set(view.entity["assignees"])  # type: ignore[arg-type]
        assert {f"CHITTY-USER-{n}" for n in acked[todo]} <= present
        assert len(acked[todo]) == 60  # the router retried through the restart


def _add(todo: str, n: int) -> Any:
    """Add one assignee: the state then shows exactly which messages were applied."""
    base = sync_message(todo, node="writer", clock={"a": 1, "writer": n})
    assert base.payload is not None
    delta = StateDelta(add={"assignees": [f"CHITTY-USER-{n}"]})
    return base.model_copy(update={"payload": base.payload.model_copy(update={"delta": delta})})


def test_a_subscriber_resumes_from_its_offset_after_a_disconnect(runtime: Runtime) -> None:
    todo = ids.new(Kind.TODO)
    wanted = Filter(entity_id=todo)

    async def scenario() -> None:
        start = await runtime.poll(None, 0, wanted)
        await runtime.submit([create_todo(todo, node="a")])
        first = await runtime.poll(start.epoch, start.offset, wanted, wait_s=5)
        assert [e.kind for e in first.events] == ["created"]
        # Disconnected: 7 changes happen.
        for n in range(1, 8):
            await runtime.submit(
                [sync_message(todo, data={"activeForm": str(n)}, node="b", clock={"a": 1, "b": n})]
            )
        events: list[Any] = []
        offset = first.offset
        while len(events) < 7:
            got = await runtime.poll(first.epoch, offset, wanted, wait_s=5)
            assert not got.gap
            events += got.events
            offset = got.offset
        assert [e.seq for e in events] == list(range(2, 9))
        assert [e.entity["activeForm"] for e in events] == [str(n) for n in range(1, 8)]

    asyncio.run(scenario())


def test_a_dedicated_entity_keeps_its_state_on_its_own_actor(runtime: Runtime) -> None:
    todo = ids.new(Kind.TODO)
    asyncio.run(runtime.submit([create_todo(todo, "hot", node="a")]))
    name = runtime.place_dedicated(todo)
    assert runtime.table.host_of(todo) == name
    [outcome] = asyncio.run(
        runtime.submit(
            [sync_message(todo, data={"content": "hotter"}, node="b", clock={"a": 1, "b": 1})]
        )
    )
    assert outcome.status is Status.APPLIED and outcome.seq == 2
    view = asyncio.run(runtime.get(todo))
    assert view is not None and view.entity["content"] == "hotter"
    metrics = asyncio.run(runtime.metrics())
    assert metrics[name].applied == 1


def test_a_restarted_router_recovers_its_shard_table(runtime: Runtime) -> None:
    todo = ids.new(Kind.TODO)
    name = runtime.place_dedicated(todo)
    ray.kill(runtime.router.actor, no_restart=False)
    deadline = time.monotonic() + 60
    while True:
        try:
            table = ray.get(runtime.router.table(), timeout=10)
            break
        except (*RESTARTING, ray.exceptions.GetTimeoutError):
            assert time.monotonic() < deadline
            time.sleep(0.5)
    assert table.version == runtime.table.version and table.host_of(todo) == name
    [outcome] = asyncio.run(runtime.submit([create_todo(todo, node="a")]))
    assert outcome.status is Status.APPLIED


def test_the_catalog_lists_what_was_just_written_with_filters_and_pages(runtime: Runtime) -> None:
    project = ids.new(Kind.PROJ)
    todos = [ids.new(Kind.TODO) for _ in range(12)]
    messages = [
        create_todo(t, f"todo {i}", node="a", data={"projectId": project if i % 2 else None})
        for i, t in enumerate(todos)
    ]
    asyncio.run(runtime.submit(messages))
    seen: list[str] = []
    cursor = None
    while True:
        page = asyncio.run(
            runtime.list(Query(SyncDomain.TODOS, project_id=project, limit=4, cursor=cursor))
        )
        seen += [row.entity_id for row in page.rows]
        cursor = page.cursor
        if cursor is None:
            break
    assert seen == sorted(t for i, t in enumerate(todos) if i % 2)


def test_the_stream_carries_every_committed_change_under_concurrent_batches(
    runtime: Runtime,
) -> None:
    """Ray may reorder a host's publish calls; the broker must still miss nothing."""
    todos = [ids.new(Kind.TODO) for _ in range(40)]

    async def scenario() -> tuple[int, int]:
        start = await runtime.poll(None, 0, Filter())
        batches = [
            [create_todo(t, node="a") for t in todos[i : i + 4]] for i in range(0, len(todos), 4)
        ]
        results = await asyncio.gather(*(runtime.submit(b) for b in batches))
        applied = sum(o.status is Status.APPLIED for batch in results for o in batch)
        seen: set[str] = set()
        offset = start.offset
        deadline = time.monotonic() + 30
        while len(seen) < applied and time.monotonic() < deadline:
            got = await runtime.poll(start.epoch, offset, Filter(), wait_s=1)
            assert not got.gap
            seen |= {e.entity_id for e in got.events if e.entity_id in todos}
            offset = got.offset
        return applied, len(seen)

    applied, received = asyncio.run(scenario())
    assert applied == received == 40


def test_with_a_key_file_no_lmdb_file_holds_plaintext(ray_cluster: None, tmp_path: Path) -> None:
    from hub.store import generate_key

    key_file = tmp_path / "key"
    key_file.write_bytes(generate_key().hex().encode())
    data = tmp_path / "data"
    secret = "privileged: settlement 1,234,567"
    sealed = Runtime.start(settings_for(data, hosts=1, encryption_key_file=key_file))
    try:
        todo = ids.new(Kind.TODO)
        [outcome] = asyncio.run(sealed.submit([create_todo(todo, secret, node="a")]))
        assert outcome.status is Status.APPLIED
        page = asyncio.run(sealed.list(Query(SyncDomain.TODOS)))
        assert [row.entity["content"] for row in page.rows] == [secret]
        view = asyncio.run(sealed.get(todo))
        assert view is not None and view.entity["content"] == secret
    finally:
        sealed.shutdown()
    stored = b"".join(p.read_bytes() for p in data.rglob("*.mdb"))
    assert stored and secret.encode() not in stored


@pytest.mark.slow
def test_what_a_host_committed_but_never_published_reaches_the_stream_after_a_crash(
    runtime: Runtime,
) -> None:
    """A host that dies between its commit and its publish: after the restart, its next publish
    brings the stream what the outbox holds and the broker never got, as stored there."""
    first, lost = ids.new(Kind.TODO), ids.new(Kind.TODO)
    victim = runtime.table.host_of(first)

    async def scenario() -> None:
        start = await runtime.poll(None, 0, Filter())
        assert [o.status for o in await runtime.submit([create_todo(first, node="a")])] == [
            Status.APPLIED
        ]
        # The victim's commit of `lost`, made in its outbox while no call of its own runs, as
        # if it had died right after committing: then it dies.
        store = open_store(runtime.settings)
        try:
            committed = EntityHost(victim, store, runtime.settings).handle(
                [Envelope.of(create_todo(lost, node="a"))]
            )
        finally:
            store.close()
        assert [o.status for o in committed.outcomes] == [Status.APPLIED]
        pid = ray.get(runtime.hosts[victim].pid())
        os.kill(pid, signal.SIGKILL)
        update = sync_message(first, data={"activeForm": "after"}, node="a", clock={"a": 2})
        assert [o.status for o in await runtime.submit([update])] == [Status.APPLIED]
        seen: list[tuple[str, str]] = []
        offset = start.offset
        deadline = time.monotonic() + 30
        while len(seen) < 3 and time.monotonic() < deadline:
            got = await runtime.poll(start.epoch, offset, Filter(), wait_s=2)
            assert not got.gap
            seen += [(e.entity_id, e.kind) for e in got.events]
            offset = got.offset
        assert sorted(seen) == sorted([(first, "created"), (lost, "created"), (first, "updated")])

    asyncio.run(scenario())
