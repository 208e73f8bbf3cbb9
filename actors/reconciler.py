"""A project actor reconciles the todos of its session actors (spec Example 2).

It runs as a conversation, not as one turn: it reads the project, asks each session for its
todos, merges them (`hub.reconcile`), and sends every session the reconciled list. No turn is
held while it waits, every call has a timeout, and the call chain carries a depth that the
router refuses past the limit, so a cycle of actors asking each other cannot deadlock.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from hub.codec import from_wire
from hub.entity import EntityView
from hub.envelope import Envelope, Outcome
from hub.models import Todo
from hub.reconcile import DependencyCycle, MixedProjects, TodoMesh, reconcile

Get = Callable[[str], Awaitable[EntityView | None]]
Route = Callable[[list[Envelope]], Awaitable[list[Outcome]]]


class ReconcileError(RuntimeError):
    """Reconciliation could not be done; `reason` says why (nothing was written)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class ReconcileReport:
    """The reconciled mesh and what became of sending it to each session."""

    project_id: str
    mesh: TodoMesh
    sessions: dict[str, Outcome] = field(default_factory=dict)
    unreachable: tuple[str, ...] = ()  # sessions that did not answer in time


async def reconcile_project(
    project_id: str,
    *,
    get: Get,
    route: Route,
    node_id: str,
    timeout_s: float,
    depth: int = 0,
    max_depth: int = 4,
    message_id: Callable[[str], str],
) -> ReconcileReport:
    """Merge the todos of every session of `project_id` and send each the merged list."""
    if depth >= max_depth:
        raise ReconcileError(f"call chain deeper than {max_depth}")
    project = await asyncio.wait_for(get(project_id), timeout_s)
    if project is None or project.deleted:
        raise ReconcileError(f"{project_id} does not exist")
    session_ids = [str(s) for s in project.entity.get("sessions") or []]  # type: ignore[union-attr]
    answers = await asyncio.gather(
        *(asyncio.wait_for(get(s), timeout_s) for s in session_ids), return_exceptions=True
    )
    sessions: dict[str, EntityView] = {}
    unreachable = []
    for session_id, answer in zip(session_ids, answers, strict=True):
        if isinstance(answer, EntityView) and not answer.deleted:
            sessions[session_id] = answer
        elif isinstance(answer, BaseException):
            unreachable.append(session_id)
    todos = [
        Todo.model_validate(todo)
        for view in sessions.values()
        for todo in view.entity.get("todos") or []  # type: ignore[union-attr]
    ]
    try:
        mesh = reconcile(todos)
    except (DependencyCycle, MixedProjects) as error:
        raise ReconcileError(str(error)) from None
    merged = [item.todo.model_dump(mode="json") for item in mesh.todos]
    envelopes = [
        Envelope.of(_set_todos(view, merged, node_id, message_id(session_id)), depth=depth + 1)
        for session_id, view in sessions.items()
    ]
    outcomes = await asyncio.wait_for(route(envelopes), timeout_s) if envelopes else []
    return ReconcileReport(
        project_id,
        mesh,
        {e.entity_id: o for e, o in zip(envelopes, outcomes, strict=True)},
        tuple(unreachable),
    )


def _set_todos(view: EntityView, todos: list[Any], node_id: str, message_id: str) -> Any:
    clock = dict(view.clock)
    clock[node_id] = clock.get(node_id, 0) + 1  # has seen the session, and counts this write
    return from_wire(
        {
            "id": message_id,
            "type": "state_update",
            "source": {"nodeId": node_id, "platform": "hub", "chittyId": view.entity_id},
            "payload": {
                "domain": "sessions",
                "operation": "update",
                "entity": {"chittyId": view.entity_id, "data": {"todos": todos}},
            },
            "metadata": {"timestamp": datetime.now(UTC).isoformat(), "vectorClock": clock},
        }
    )
