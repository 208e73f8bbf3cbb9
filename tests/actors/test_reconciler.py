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
from hub.catalog import Page, Query
from hub.domains import SyncDomain
from hub.entity import EntityView
from hub.envelope import Envelope, Status
from hub.ids import IdGenerator, Kind
from hub.protocol import SyncMessage
from hub.store import MemoryStore
from tests.actors.conftest import settings_for
from tests.messages import create_todo, sync_message

ids = IdGenerator("reconciler-tests", now_ms=lambda: time.time_ns() // 1_000_000)


def todo(session: str, content: str, status: str, minute: int, **extra: Any) -> SyncMessage:
    """A todo made in a session (no projectId: the reconciler finds it through its session)."""
    data = {
        "content": content,
        "status": status,
        "sessionId": session,
        "metadata": {"created": f"2025-10-18T09:{minute:02d}:00Z"},
        **extra,
    }
    return sync_message(ids.new(Kind.TODO), "create", data, node="a")


def example_2() -> tuple[str, dict[str, str], list[SyncMessage]]:
    """The project, its three sessions (linked only by their projectId), and the messages that
    create them and their todos."""
    project = ids.new(Kind.PROJ)
    sessions = {name: ids.new(Kind.SESSION) for name in "ABC"}
    plan = {
        "A": [("Todo 1", "pending"), ("Todo 2", "in_progress")],
        "B": [("todo 2.", "completed"), ("Todo 3", "pending")],
        "C": [("Todo 4", "in_progress"), ("Todo 5", "pending")],
    }
    messages = [sync_message(project, "create", {"name": "P"}, domain="projects", node="a")]
    for name in "ABC":
        data = {"sessionId": f"sess-{name}", "platform": "claude-code", "projectId": project}
        messages.append(sync_message(sessions[name], "create", data, domain="sessions", node="a"))
    minute = 0
    for name in "ABC":
        for content, status in plan[name]:
            minute += 1
            messages.append(todo(sessions[name], content, status, minute))
    return project, sessions, messages


FIVE = ["Todo 1", "Todo 2", "Todo 3", "Todo 4", "Todo 5"]
FIVE_STATUSES = ["pending", "completed", "pending", "in_progress", "pending"]


async def listed(list_page: Any, session: str) -> list[tuple[str, str]]:
    """(content, status) of what a session lists now, by content."""
    page = await list_page(Query(SyncDomain.TODOS, session_id=session, limit=500))
    return sorted((str(r.entity["content"]), str(r.entity["status"])) for r in page.rows)


def check_the_same_five(lists: list[list[tuple[str, str]]]) -> None:
    for found in lists:
        assert [content.title().rstrip(".") for content, _ in found] == FIVE, found
        assert [status for _, status in found] == FIVE_STATUSES


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

    async def scenario() -> None:
        created = await local.router.route([Envelope.of(m) for m in messages])
        assert all(o.status is Status.APPLIED for o in created)
        report = await local.reconcile(project, "CHITTY-USER-1")
        assert [item.todo.content for item in report.mesh.todos][1] == "Todo 2"
        assert len(report.mesh.todos) == 5 and set(report.sessions) == set(sessions.values())
        merged = report.mesh.todos[1]
        assert merged.origin_sessions == tuple(sorted([sessions["A"], sessions["B"]]))
        assert report.outcomes and all(o.status is Status.APPLIED for o in report.outcomes.values())
        check_the_same_five([await listed(local.list, s) for s in sessions.values()])
        duplicate = next(i for i in merged.merged_ids if i != merged.chitty_id)
        kept = await local.router.get(duplicate)
        assert kept is not None and kept.entity["mergedInto"] == merged.chitty_id  # not deleted
        again = await local.reconcile(project, "CHITTY-USER-1")
        assert again.planned == () and again.outcomes == {}  # nothing left to write
        gist = [
            (i.chitty_id, i.todo.status, i.origin_sessions, i.merged_ids) for i in report.mesh.todos
        ]
        assert [
            (i.chitty_id, i.todo.status, i.origin_sessions, i.merged_ids) for i in again.mesh.todos
        ] == gist
        view = await local.router.get(project)  # the hub kept the project's sessions
        assert view is not None and sorted(view.entity["sessions"]) == sorted(sessions.values())  # type: ignore[arg-type]

    loop.run_until_complete(scenario())


def test_todos_a_session_only_listed_become_entities(
    hub: tuple[LocalHub, asyncio.AbstractEventLoop],
) -> None:
    """Sessions kept whole todo lists before todos were entities: reconciling creates them."""
    local, loop = hub
    project, session = ids.new(Kind.PROJ), ids.new(Kind.SESSION)
    kept = {"chittyId": ids.new(Kind.TODO), "content": "old", "sessionId": session}

    async def scenario() -> None:
        await local.router.route(
            [
                Envelope.of(sync_message(project, "create", {"name": "P"}, domain="projects")),
                Envelope.of(
                    sync_message(
                        session,
                        "create",
                        {
                            "sessionId": "s",
                            "platform": "cli",
                            "projectId": project,
                            "todos": [kept],
                        },
                        domain="sessions",
                    )
                ),
            ]
        )
        report = await local.reconcile(project, "CHITTY-USER-1")
        assert [(w.todo_id, w.create) for w in report.planned] == [(kept["chittyId"], True)]
        made = await local.router.get(str(kept["chittyId"]))
        assert made is not None and made.entity["projectId"] == project
        assert made.entity["createdBy"] == "CHITTY-USER-1"
        assert (await local.reconcile(project, "CHITTY-USER-1")).planned == ()

    loop.run_until_complete(scenario())


def test_a_dependency_cycle_is_reported_and_nothing_is_written(
    hub: tuple[LocalHub, asyncio.AbstractEventLoop],
) -> None:
    local, loop = hub
    project = ids.new(Kind.PROJ)
    session = ids.new(Kind.SESSION)
    first, second = ids.new(Kind.TODO), ids.new(Kind.TODO)

    async def scenario() -> None:
        await local.router.route(
            [
                Envelope.of(sync_message(project, "create", {"name": "P"}, domain="projects")),
                Envelope.of(
                    sync_message(
                        session,
                        "create",
                        {"sessionId": "s", "platform": "cli", "projectId": project},
                        domain="sessions",
                    )
                ),
                Envelope.of(create_todo(first, "one", session, data={"dependencies": [second]})),
                Envelope.of(create_todo(second, "two", session, data={"dependencies": [first]})),
            ]
        )
        with pytest.raises(ReconcileError, match="dependency cycle"):
            await local.reconcile(project, "CHITTY-USER-1")
        for todo_id in (first, second):
            view = await local.router.get(todo_id)
            assert view is not None and view.seq == 1

    loop.run_until_complete(scenario())


def test_the_call_depth_bound_stops_a_cycle() -> None:
    async def never(_: object) -> Any:
        raise AssertionError("must not be called past the depth bound")

    with pytest.raises(ReconcileError, match="call chain deeper than 4"):
        asyncio.run(
            reconcile_project(
                "CHITTY-PROJ-1",
                get=never,
                route=never,
                list_page=never,
                node_id="hub",
                caller="CHITTY-USER-1",
                timeout_s=1,
                depth=4,
                max_depth=4,
                message_id=str,
            )
        )


def test_a_session_that_does_not_answer_in_time_is_reported() -> None:
    project_view = EntityView(
        "CHITTY-PROJ-1", "projects", 1, {}, False, {"sessions": ["CHITTY-SESSION-1"]}, ()
    )

    async def get(entity_id: str) -> Any:
        if entity_id == "CHITTY-PROJ-1":
            return project_view
        await asyncio.sleep(10)

    async def route(envelopes: list[Any]) -> list[Any]:
        return []

    async def nothing(query: Query) -> Page:
        return Page((), None)

    report = asyncio.run(
        reconcile_project(
            "CHITTY-PROJ-1",
            get=get,
            route=route,
            list_page=nothing,
            node_id="hub",
            caller="CHITTY-USER-1",
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
        report = asyncio.run(runtime.reconcile(project, "CHITTY-USER-1"))
        assert len(report.mesh.todos) == 5 and report.outcomes
        check_the_same_five([asyncio.run(listed(runtime.list, s)) for s in sessions.values()])
        assert asyncio.run(runtime.reconcile(project, "CHITTY-USER-1")).planned == ()
    finally:
        runtime.shutdown()
