"""A project actor reconciles the todos of its sessions (spec Example 2).

It runs as a conversation, not as one turn: it reads the project, lists the project's sessions
and every todo of them from the catalog (todos are entities of their own; sessions only name
them), merges them (`hub.reconcile`), and writes back what differs: merged duplicates point at
the todo they were merged into, every todo of the project is listed in every session of it.
No turn is held while it waits, every call has a timeout, and the call chain carries a depth
that the router refuses past the limit, so a cycle of actors asking each other cannot deadlock.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from pydantic import ValidationError

from hub.catalog import Page, Query
from hub.clocks.vector import VectorClock
from hub.codec import write_message
from hub.domains import SyncDomain
from hub.entity import EntityView
from hub.envelope import Envelope, Outcome
from hub.models import Todo
from hub.protocol import SyncMessage
from hub.reconcile import (
    DependencyCycle,
    MixedProjects,
    TodoMesh,
    TodoWrite,
    reconcile,
    write_back,
    written,
)

Get = Callable[[str], Awaitable[EntityView | None]]
Route = Callable[[list[Envelope]], Awaitable[list[Outcome]]]
List = Callable[[Query], Awaitable[Page]]
PLATFORM = "hub"  # the source platform of the writes reconciliation makes


class ReconcileError(RuntimeError):
    """Reconciliation could not be done; `reason` says why (nothing was written)."""

    def __init__(self, reason: str, missing: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.missing = missing  # the project does not exist


@dataclass(frozen=True, slots=True)
class ReconcileReport:
    """The reconciled mesh (as the writes back leave it), the sessions it covers, the writes
    back it made (or, dry, would make) and what became of each."""

    project_id: str
    mesh: TodoMesh
    sessions: tuple[str, ...] = ()
    planned: tuple[TodoWrite, ...] = ()
    outcomes: dict[str, Outcome] = field(default_factory=dict)  # by todo id; none when dry
    unreachable: tuple[str, ...] = ()  # sessions that did not answer in time
    dry_run: bool = False


async def reconcile_project(
    project_id: str,
    *,
    get: Get,
    route: Route,
    list_page: List,
    node_id: str,
    caller: str,
    timeout_s: float,
    depth: int = 0,
    max_depth: int = 4,
    message_id: Callable[[str], str],
    dry_run: bool = False,
) -> ReconcileReport:
    """Merge the todos of every session of `project_id` and write the result back, as `caller`
    (`dry_run`: only say what would be written).

    `message_id(todo_id)` names each write; a second run over what the first wrote changes
    nothing (no writes)."""
    if depth >= max_depth:
        raise ReconcileError(f"call chain deeper than {max_depth}")
    project = await asyncio.wait_for(get(project_id), timeout_s)
    if project is None or project.deleted or project.domain != SyncDomain.PROJECTS.value:
        raise ReconcileError(f"{project_id} does not exist", missing=True)

    async def every(query: Query) -> list[EntityView]:
        return await asyncio.wait_for(_all(list_page, query), timeout_s)

    sessions = {
        v.entity_id: v for v in await every(Query(SyncDomain.SESSIONS, project_id=project_id))
    }
    named: list[object] = project.entity.get("sessions") or []  # type: ignore[assignment]
    listed = [str(s) for s in named if s not in sessions]  # sessions a client listed by hand
    answers = await asyncio.gather(
        *(asyncio.wait_for(get(s), timeout_s) for s in listed), return_exceptions=True
    )
    unreachable = []
    for session_id, answer in zip(listed, answers, strict=True):
        if isinstance(answer, EntityView) and not answer.deleted:
            sessions[session_id] = answer
        elif isinstance(answer, BaseException):
            unreachable.append(session_id)
    views = {v.entity_id: v for v in await every(Query(SyncDomain.TODOS, project_id=project_id))}
    for session_id in sessions:
        of_session = await every(Query(SyncDomain.TODOS, session_id=session_id))
        views.update((v.entity_id, v) for v in of_session)
    current = {todo_id: _todo(view.entity) for todo_id, view in views.items()}
    for view in sessions.values():  # lists sessions kept before todos were entities
        kept: list[object] = view.entity.get("todos") or []  # type: ignore[assignment]
        for item in kept:
            todo = _todo(item)
            current.setdefault(todo.chitty_id, todo)
    try:
        mesh = reconcile(current.values())
    except (DependencyCycle, MixedProjects) as error:
        raise ReconcileError(str(error)) from None
    writes = write_back(mesh, current, views.keys(), sessions.keys(), project_id)
    after = reconcile(written(current, writes).values())
    if dry_run:
        return ReconcileReport(
            project_id, after, tuple(sorted(sessions)), tuple(writes), {}, tuple(unreachable), True
        )
    now = datetime.now(UTC)
    envelopes = [
        Envelope.of(
            _message(w, views.get(w.todo_id), node_id, caller, message_id(w.todo_id), now),
            depth=depth + 1,
        )
        for w in writes
    ]
    outcomes = await asyncio.wait_for(route(envelopes), timeout_s) if envelopes else []
    return ReconcileReport(
        project_id,
        after,
        tuple(sorted(sessions)),
        tuple(writes),
        {e.entity_id: o for e, o in zip(envelopes, outcomes, strict=True)},
        tuple(unreachable),
    )


async def _all(list_page: List, query: Query) -> list[EntityView]:
    rows: list[EntityView] = []
    cursor: str | None = None
    while True:
        page = await list_page(
            Query(
                query.domain,
                project_id=query.project_id,
                session_id=query.session_id,
                cursor=cursor,
                limit=500,
                include_merged=True,  # a merged duplicate still counts: it names its todo
            )
        )
        rows += page.rows
        cursor = page.cursor
        if cursor is None:
            return rows


def _todo(wire: object) -> Todo:
    try:
        return Todo.model_validate(wire)
    except ValidationError as error:  # stored by this hub, so valid: a bug if not
        raise ReconcileError(f"a stored todo does not validate: {error}") from None


def _message(
    write: TodoWrite,
    read: EntityView | None,
    node_id: str,
    caller: str,
    message_id: str,
    now: datetime,
) -> SyncMessage:
    """The write as a sync message: an update has seen the version it was computed from (so it
    supersedes it, and only it); a create is new."""
    data = dict(write.fields)
    clock = None
    if write.create:
        data.pop("chittyId", None)
        data["createdBy"] = caller
    elif read is not None:
        clock = VectorClock(read.clock).increment(node_id).to_dict()
    return write_message(
        message_id=message_id,
        node_id=node_id,
        platform=PLATFORM,
        chitty_id=caller,
        domain=SyncDomain.TODOS.value,
        operation="create" if write.create else "update",
        entity_id=write.todo_id,
        data=data,
        timestamp=now,
        clock=clock,
    )
