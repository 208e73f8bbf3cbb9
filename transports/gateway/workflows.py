"""The spec's workflow endpoints: todo reconciliation and mesh, session context, context
enrichment and propagation."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from pydantic import Field, JsonValue

from actors.reconciler import ReconcileError
from hub.catalog import Query
from hub.domains import SyncDomain
from hub.entity import EntityView
from hub.ids import ContextId, ProjectId
from hub.models import Enrichment, Todo
from hub.models.base import WireModel
from hub.reconcile import DependencyCycle, MixedProjects, TodoMesh, reconcile
from transports.gateway.auth import scope_of, visible_to
from transports.gateway.entities import entity_id_of, written_body
from transports.gateway.errors import ApiError, read_json
from transports.gateway.hub_api import Hub, Writer
from transports.gateway.targets import DEFAULT_PLATFORMS, KNOWN, TargetKind, check_targets, report


class ReconcileRequest(WireModel):
    project_id: ProjectId


class SessionSyncRequest(WireModel):
    """Platforms to sync a session to (default web, cli, mobile); dryRun changes nothing."""

    platforms: list[str] | None = None
    dry_run: bool = False


class PropagateRequest(WireModel):
    """The spec's Example 3 body: carry a context from one model or platform to another."""

    source: str = Field(min_length=1, max_length=64)
    target: str = Field(min_length=1, max_length=64)
    context_id: ContextId
    summary: str | None = Field(default=None, max_length=100_000)


def mesh_body(mesh: TodoMesh) -> dict[str, Any]:
    blocked = set(mesh.blocked)
    return {
        "nodes": [
            {
                "todo": item.todo.model_dump(mode="json"),
                "originSessions": list(item.origin_sessions),
                "mergedIds": list(item.merged_ids),
                "blocked": item.todo.chitty_id in blocked,
            }
            for item in mesh.todos
        ],
        "edges": [{"from": a, "to": b} for a, b in mesh.edges],
        "order": [item.todo.chitty_id for item in mesh.todos],
        "blocked": list(mesh.blocked),
        "missingDependencies": {k: list(v) for k, v in mesh.missing_dependencies.items()},
    }


class WorkflowRoutes:
    def __init__(self, hub: Hub, writer: Writer) -> None:
        self.hub = hub
        self.writer = writer

    async def reconcile(self, request: web.Request) -> web.Response:
        wanted = ReconcileRequest.model_validate(await read_json(request))
        scope = scope_of(request, self.hub.get)
        project = await self.hub.get(wanted.project_id)
        if project is not None:
            await scope.check_read(project, f"project {wanted.project_id}")
            await scope.check_write(project, f"project {wanted.project_id}")
        try:
            result = await self.hub.reconcile(wanted.project_id)
        except ReconcileError as error:
            status = 404 if "does not exist" in error.reason else 409
            raise ApiError(status, "reconcile_failed", error.reason, "projectId") from None
        return web.json_response(
            {
                "projectId": wanted.project_id,
                **mesh_body(result.mesh),
                "sessions": {sid: o.status.value for sid, o in result.sessions.items()},
                "unreachable": list(result.unreachable),
            }
        )

    async def _all(self, query: Query, visible: str | None) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        cursor = None
        while True:
            page = await self.hub.list(
                Query(
                    query.domain,
                    project_id=query.project_id,
                    cursor=cursor,
                    limit=500,
                    visible_to=visible,
                )
            )
            rows += [row.entity for row in page.rows]
            cursor = page.cursor
            if cursor is None:
                return rows

    async def mesh(self, request: web.Request) -> web.Response:
        project = request.query.get("projectId")
        if not project:
            raise ApiError(422, "invalid", "a projectId query parameter is required", "projectId")
        ReconcileRequest.model_validate({"projectId": project})
        view = await self.hub.get(project)
        if view is not None:
            scope = scope_of(request, self.hub.get)
            await scope.check_read(view, f"project {project}", "projectId")
        visible = visible_to(request)
        todos = await self._all(Query(SyncDomain.TODOS, project_id=project), visible)
        for session in await self._all(Query(SyncDomain.SESSIONS, project_id=project), visible):
            todos += session.get("todos") or []
        try:
            mesh = reconcile(Todo.model_validate(t) for t in todos)
        except (DependencyCycle, MixedProjects) as error:
            raise ApiError(409, "conflict", str(error), "projectId") from None
        return web.json_response({"projectId": project, **mesh_body(mesh)})

    async def _session(self, request: web.Request) -> EntityView:
        session_id = entity_id_of(request, SyncDomain.SESSIONS)
        what = f"session {session_id}"
        scope = scope_of(request, self.hub.get)
        view = await scope.check_read_of(session_id, what, SyncDomain.SESSIONS.value)
        if view.deleted:
            raise ApiError(404, "not_found", f"no {what}", "id")
        return view

    async def _check_write(self, request: web.Request, entity_id: str) -> None:
        scope = scope_of(request, self.hub.get)
        await scope.check_write_to(entity_id, f"context {entity_id}")

    async def session_context(self, request: web.Request) -> web.Response:
        view = await self._session(request)
        return web.json_response(
            {"sessionId": view.entity_id, "context": view.entity.get("context"), "seq": view.seq}
        )

    async def session_sync(self, request: web.Request) -> web.Response:
        view = await self._session(request)
        session_id = view.entity_id
        wanted = (
            SessionSyncRequest.model_validate(await read_json(request))
            if request.body_exists
            else SessionSyncRequest()
        )
        dry = wanted.dry_run
        targets = check_targets({"platforms": wanted.platforms or list(DEFAULT_PLATFORMS)})
        return web.json_response(
            {
                "sessionId": session_id,
                "seq": view.seq,
                "vectorClock": view.clock,
                "targets": [report(k, n, 1, dry).to_wire() for k, n in targets],
            }
        )

    async def enrich(self, request: web.Request) -> web.Response:
        """Add an enrichment a model or service produced (the hub itself calls no AI)."""
        context_id = entity_id_of(request, SyncDomain.CONTEXTS)
        await self._check_write(request, context_id)
        enrichment = Enrichment.model_validate(await read_json(request))
        delta: dict[str, JsonValue] = {"add": {"enrichments": [enrichment.model_dump(mode="json")]}}
        message = self.writer.message(
            request, SyncDomain.CONTEXTS, "update", context_id, {}, delta=delta
        )
        outcome, first = await self.writer.write(message)
        return web.json_response(written_body(outcome, first))

    async def propagate(self, request: web.Request) -> web.Response:
        """Record a context hand-over (Example 3) and report what reached the target."""
        wanted = PropagateRequest.model_validate(await read_json(request))
        known = KNOWN["platforms"] | KNOWN["models"]
        if wanted.target not in known:
            raise ApiError(422, "unknown_target", f"known: {', '.join(sorted(known))}", "target")
        await self._check_write(request, wanted.context_id)
        data: dict[str, JsonValue] = {}
        if wanted.summary is not None:
            data["content"] = {"summary": wanted.summary}
        message = self.writer.message(
            request, SyncDomain.CONTEXTS, "update", wanted.context_id, data
        )
        outcome, first = await self.writer.write(message)
        kind: TargetKind = "models" if wanted.target in KNOWN["models"] else "platforms"
        return web.json_response(
            {
                **written_body(outcome, first),
                "propagation": report(kind, wanted.target, 1, False).to_wire(),
            }
        )


def add_workflow_routes(app: web.Application, hub: Hub, writer: Writer) -> None:
    routes = WorkflowRoutes(hub, writer)
    add = app.router
    add.add_post("/api/v1/todos/reconcile", routes.reconcile, name="reconcile_todos")
    add.add_get("/api/v1/todos/mesh", routes.mesh, name="todo_mesh")
    add.add_get("/api/v1/sessions/{id}/context", routes.session_context, name="session_context")
    add.add_post("/api/v1/sessions/{id}/sync", routes.session_sync, name="sync_session")
    add.add_post("/api/v1/contexts/propagate", routes.propagate, name="propagate_context")
    add.add_post("/api/v1/contexts/{id}/enrich", routes.enrich, name="enrich_context")
