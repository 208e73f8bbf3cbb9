"""Spec Example 2 between actors: a project reconciles its sessions' todos by messaging them."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from actors.local import LocalHub
from actors.reconciler import ReconcileError, reconcile_project
from hub.envelope import Status
from hub.ids import IdGenerator, Kind
from hub.store import MemoryStore
from tests.actors.conftest import settings_for
from tests.messages import sync_message

ids = IdGenerator("reconciler-tests", now_ms=lambda: time.time_ns() // 1_000_000)


def todo(session: str, content: str, status: str, minute: int, **extra: Any) -> dict[str, Any]:
    return {
        "chittyId": ids.new(Kind.TODO),
        "content": content,
        "status": status,
        "sessionId": session,
        "metadata": {"created": f"2025-10-18T09:{minute:02d}:00Z"},
        **extra,
    }


def example_2() -> tuple[str, dict[str, str], list[Any]]:
    """The project, its three sessions, and the messages that create them."""
    project = ids.new(Kind.PROJ)
    sessions = {name: ids.new(Kind.SESSION) for name in "ABC"}
    todos = {
        "A": [
            todo(sessions["A"], "Todo 1", "pending", 1),
            todo(sessions["A"], "Todo 2", "in_progress", 2),
        ],
        "B": [
            todo(sessions["B"], "todo 2.", "completed", 3),
            todo(sessions["B"], "Todo 3", "pending", 4),
        ],
        "C": [
            todo(sessions["C"], "Todo 4", "in_progress", 5),
            todo(sessions["C"], "Todo 5", "pending", 6),
        ],
    }
    messages = [
        sync_message(
            project,
            "create",
            {"name": "P", "sessions": list(sessions.values())},
            domain="projects",
            node="a",
        )
    ] + [
        sync_message(
            sessions[name],
            "create",
            {
                "sessionId": f"sess-{name}",
                "platform": "claude-code",
                "projectId": project,
                "todos": todos[name],
            },
            domain="sessions",
            node="a",
        )
        for name in "ABC"
    ]
    return project, sessions, messages


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[tuple[LocalHub, asyncio.AbstractEventLoop]]:
    loop = asyncio.new_event_loop()
    yield LocalHub(MemoryStore(), settings_for(tmp_path), tmp_path / "shards.json"), loop
    pending = asyncio.all_tasks(loop)
    for task in pending:
        task.cancel()
    if pending:
        loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
    loop.close()


def check_all_sessions_show_the_same_five(views: list[Any]) -> None:
    for view in views:
        # A set field: the same five everywhere (each session lists them in its own order).
        todos = sorted(view.entity["todos"], key=lambda t: t["content"])
        assert [t["content"] for t in todos] == ["Todo 1", "Todo 2", "Todo 3", "Todo 4", "Todo 5"]
        assert [t["status"] for t in todos] == [
            "pending",
            "completed",
            "pending",
            "in_progress",
            "pending",
        ]


def test_example_2_in_process(hub: tuple[LocalHub, asyncio.AbstractEventLoop]) -> None:
    local, loop = hub
    project, sessions, messages = example_2()

    async def scenario() -> list[Any]:
        from hub.envelope import Envelope

        created = await local.router.route([Envelope.of(m) for m in messages])
        assert all(o.status is Status.APPLIED for o in created)
        report = await local.reconcile(project)
        assert len(report.mesh.todos) == 5
        merged = report.mesh.todos[1]
        assert merged.origin_sessions == tuple(sorted([sessions["A"], sessions["B"]]))
        assert all(o.status is Status.APPLIED for o in report.sessions.values())
        return [await local.router.get(s) for s in sessions.values()]

    check_all_sessions_show_the_same_five(loop.run_until_complete(scenario()))


def test_a_dependency_cycle_is_reported_and_nothing_is_written(
    hub: tuple[LocalHub, asyncio.AbstractEventLoop],
) -> None:
    local, loop = hub
    project = ids.new(Kind.PROJ)
    session = ids.new(Kind.SESSION)
    first, second = ids.new(Kind.TODO), ids.new(Kind.TODO)
    todos = [
        {"chittyId": first, "content": "one", "sessionId": session, "dependencies": [second]},
        {"chittyId": second, "content": "two", "sessionId": session, "dependencies": [first]},
    ]

    async def scenario() -> None:
        from hub.envelope import Envelope

        await local.router.route(
            [
                Envelope.of(
                    sync_message(
                        project,
                        "create",
                        {"name": "P", "sessions": [session]},
                        domain="projects",
                        node="a",
                    )
                ),
                Envelope.of(
                    sync_message(
                        session,
                        "create",
                        {"sessionId": "s", "platform": "cli", "todos": todos},
                        domain="sessions",
                        node="a",
                    )
                ),
            ]
        )
        with pytest.raises(ReconcileError, match="dependency cycle"):
            await local.reconcile(project)
        view = await local.router.get(session)
        assert view is not None and view.seq == 1

    loop.run_until_complete(scenario())


def test_the_call_depth_bound_stops_a_cycle() -> None:
    async def never(_: str) -> None:
        raise AssertionError("must not be called past the depth bound")

    with pytest.raises(ReconcileError, match="call chain deeper than 4"):
        asyncio.run(
            reconcile_project(
                "CHITTY-PROJ-1",
                get=never,
                route=never,
                node_id="hub",
                timeout_s=1,  # type: ignore[arg-type]
                depth=4,
                max_depth=4,
                message_id=str,
            )
        )


def test_a_session_that_does_not_answer_in_time_is_reported() -> None:
    project_view = type(
        "View", (), {"deleted": False, "entity": {"sessions": ["CHITTY-SESSION-1"]}}
    )()

    async def get(entity_id: str) -> Any:
        if entity_id == "CHITTY-PROJ-1":
            return project_view
        await asyncio.sleep(10)

    async def route(envelopes: list[Any]) -> list[Any]:
        return []

    report = asyncio.run(
        reconcile_project(
            "CHITTY-PROJ-1",
            get=get,
            route=route,
            node_id="hub",
            timeout_s=0.2,
            message_id=str,
        )
    )
    assert report.unreachable == ("CHITTY-SESSION-1",) and report.mesh.todos == ()


@pytest.mark.slow
def test_example_2_between_ray_actors(ray_cluster: None, tmp_path: Path) -> None:
    from actors.runtime import Runtime

    runtime = Runtime.start(settings_for(tmp_path, hosts=2))
    try:
        project, sessions, messages = example_2()
        outcomes = asyncio.run(runtime.submit(messages))
        assert all(o.status is Status.APPLIED for o in outcomes)
        report = asyncio.run(runtime.reconcile(project))
        assert len(report.mesh.todos) == 5
        views = [asyncio.run(runtime.get(s)) for s in sessions.values()]
        check_all_sessions_show_the_same_five(views)
    finally:
        runtime.shutdown()
