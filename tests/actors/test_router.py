"""The router, in-process: causality, ttl, call depth, retries while a host restarts."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from actors.local import LocalHub
from actors.router import Router
from hub.envelope import Envelope, Status
from hub.ids import IdGenerator, Kind
from hub.store import MemoryStore
from tests.actors.conftest import settings_for
from tests.messages import create_todo, sync_message

T = TypeVar("T")
ids = IdGenerator("router-tests", now_ms=lambda: time.time_ns() // 1_000_000)


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    """One event loop per test: the hub's mailboxes and conditions belong to it."""
    running = asyncio.new_event_loop()
    yield running
    pending = asyncio.all_tasks(running)  # the mailboxes' workers
    for task in pending:
        task.cancel()
    if pending:
        running.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
    running.close()


@pytest.fixture
def hub(tmp_path: Path, loop: asyncio.AbstractEventLoop) -> LocalHub:
    local = LocalHub(
        MemoryStore(),
        settings_for(tmp_path, causality_wait_s=0.5, call_timeout_s=1.0),
        tmp_path / "shards.json",
    )
    local.loop = loop  # type: ignore[attr-defined]
    return local


def run(hub: LocalHub, work: Coroutine[Any, Any, T]) -> T:
    return hub.loop.run_until_complete(work)  # type: ignore[attr-defined,no-any-return]


def route(hub: LocalHub, *messages: object, router: Router | None = None) -> list[object]:
    envelopes = [Envelope.of(m) for m in messages]  # type: ignore[arg-type]
    return run(hub, (router or hub.router).route(envelopes))  # type: ignore[arg-type]


def test_a_message_waits_for_its_cause_in_the_same_batch(hub: LocalHub) -> None:
    todo = ids.new(Kind.TODO)
    create = create_todo(todo, node="a")
    update = sync_message(
        todo, data={"content": "after"}, node="b", clock={"a": 1, "b": 1}, causality=[create.id]
    )
    # The dependent message comes first in the batch; it still applies after its cause.
    outcomes = route(hub, update, create)
    assert [o.status for o in outcomes] == [Status.APPLIED, Status.APPLIED]  # type: ignore[attr-defined]


def test_a_missing_cause_becomes_a_causal_violation_after_the_bound(hub: LocalHub) -> None:
    todo = ids.new(Kind.TODO)
    route(hub, create_todo(todo, node="a"))
    started = time.monotonic()
    [outcome] = route(
        hub, sync_message(todo, node="b", clock={"a": 1, "b": 1}, causality=["never-sent"])
    )
    assert outcome.status is Status.CAUSAL_VIOLATION  # type: ignore[attr-defined]
    assert "never-sent" in outcome.reason  # type: ignore[attr-defined]
    assert time.monotonic() - started >= 0.5


def test_a_cause_applied_before_the_router_started_is_found_in_the_hosts(
    hub: LocalHub, tmp_path: Path
) -> None:
    todo = ids.new(Kind.TODO)
    create = create_todo(todo, node="a")
    route(hub, create)
    fresh = Router(tmp_path / "shards.json", hub.settings, hub.client)  # knows nothing yet
    update = sync_message(todo, node="b", clock={"a": 1, "b": 1}, causality=[create.id])
    [outcome] = route(hub, update, router=fresh)
    assert outcome.status is Status.APPLIED  # type: ignore[attr-defined]


def test_two_routers_on_one_table_reach_the_same_hosts(hub: LocalHub, tmp_path: Path) -> None:
    other = Router(tmp_path / "shards.json", hub.settings, hub.client)
    todo = ids.new(Kind.TODO)
    create = create_todo(todo, node="a")
    assert route(hub, create)[0].status is Status.APPLIED  # type: ignore[attr-defined]
    assert route(hub, create, router=other)[0].status is Status.DUPLICATE  # type: ignore[attr-defined]


def test_calls_deeper_than_the_limit_are_refused(hub: LocalHub) -> None:
    todo = ids.new(Kind.TODO)
    envelope = Envelope.of(create_todo(todo), depth=hub.settings.max_call_depth + 1)
    [outcome] = run(hub, hub.router.route([envelope]))
    assert outcome.status is Status.REJECTED and "call chain" in outcome.reason


def test_a_host_that_comes_back_gets_the_retry(hub: LocalHub) -> None:
    todo = ids.new(Kind.TODO)
    host = hub.host_of(todo)
    host.down = True

    async def restart_soon() -> None:
        await asyncio.sleep(0.2)
        host.down = False

    async def scenario() -> list[object]:
        back = asyncio.create_task(restart_soon())
        result = await hub.router.route([Envelope.of(create_todo(todo))])
        await back
        return result  # type: ignore[return-value]

    [outcome] = run(hub, scenario())
    assert outcome.status is Status.APPLIED  # type: ignore[attr-defined]
    assert hub.router.retries >= 1


def test_a_host_that_stays_down_gives_unavailable_within_the_timeout(hub: LocalHub) -> None:
    todo = ids.new(Kind.TODO)
    hub.host_of(todo).down = True
    [outcome] = route(hub, create_todo(todo))
    assert outcome.status is Status.UNAVAILABLE  # type: ignore[attr-defined]


def test_a_full_mailbox_answers_busy(tmp_path: Path, loop: asyncio.AbstractEventLoop) -> None:
    hub = LocalHub(
        MemoryStore(), settings_for(tmp_path, mailbox_limit=3, hosts=1), tmp_path / "shards.json"
    )
    hub.loop = loop  # type: ignore[attr-defined]
    todo = ids.new(Kind.TODO)
    route(hub, create_todo(todo, node="a"))
    updates = [
        sync_message(todo, data={"activeForm": str(n)}, node="b", clock={"a": 1, "b": n})
        for n in range(1, 6)
    ]

    async def scenario() -> list[object]:
        host = hub.host_of(todo)
        # Two batches arrive together: the second finds the mailbox full.
        first, second = await asyncio.gather(
            host.submit([Envelope.of(m) for m in updates[:3]]),
            host.submit([Envelope.of(m) for m in updates[3:]]),
        )
        return [*first, *second]

    outcomes = run(hub, scenario())
    statuses = [o.status for o in outcomes]  # type: ignore[attr-defined]
    assert statuses[:3] == [Status.APPLIED] * 3
    assert statuses[3:] == [Status.BUSY] * 2
