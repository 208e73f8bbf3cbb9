"""The spec's workflow endpoints: todo reconciliation and mesh, session context, context
enrichment and propagation."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from pydantic import Field, JsonValue

from actors.reconciler import ReconcileError, ReconcileReport
from hub.domains import SyncDomain
from hub.entity import EntityView
from hub.ids import ProjectId
from hub.models import Enrichment
from hub.models.base import WireModel
from hub.reconcile import TodoMesh
from transports.gateway.auth import principal_of, scope_of
from transports.gateway.contexts import summarize_context
from transports.gateway.entities import entity_id_of, written_body
from transports.gateway.errors import ApiError, read_json
from transports.gateway.hub_api import Hub, Writer
from transports.gateway.targets import (
    DEFAULT_PLATFORMS,
    check_targets,
    reports,
)


class ReconcileRequest(WireModel):
    """Reconcile a project's todos (spec Example 2); dryRun only says what would be written."""

    project_id: ProjectId
    dry_run: bool = False


class SessionSyncRequest(WireModel):
    """Platforms (default web, cli, mobile) and channels to sync a session to; dryRun sends
    nothing."""

    platforms: list[str] | None = None
    channels: list[str] = Field(default_factory=list)
    dry_run: bool = False


def mesh_body(mesh: TodoMesh) -> dict[str, Any]:
    blocked = set(mesh.blocked)
    return {
        "nodes": [
            {
                "todo": item.todo.model_dump(mode="json"),
                "originSessions": list(item.origin_sessions),
                "mergedIds": list(item.merged_ids),
                "mergedFrom": [i for i in item.merged_ids if i != item.chitty_id],
                "blocked": item.todo.chitty_id in blocked,
            }
            for item in mesh.todos
        ],
        "edges": [{"from": a, "to": b} for a, b in mesh.edges],
        "order": [item.todo.chitty_id for item in mesh.todos],
        "blocked": list(mesh.blocked),
        "missingDependencies": {k: list(v) for k, v in mesh.missing_dependencies.items()},
    }


def report_body(report: ReconcileReport) -> dict[str, Any]:
    """A reconciliation as answered: the mesh, the sessions, each write back and its fate."""
    writes = []
    for write in report.planned:
        outcome = report.outcomes.get(write.todo_id)
        writes.append(
            {
                "todoId": write.todo_id,
                "operation": "create" if write.create else "update",
                "fields": sorted(write.fields),
                "status": "planned" if outcome is None else outcome.status.value,
                **({"reason": outcome.reason} if outcome is not None and outcome.reason else {}),
            }
        )
    return {
        "projectId": report.project_id,
        "dryRun": report.dry_run,
        **mesh_body(report.mesh),
        "sessions": list(report.sessions),
        "writes": writes,
        "unreachable": list(report.unreachable),
    }


async def reconcile(hub: Hub, project: str, caller: str, dry_run: bool) -> ReconcileReport:
    """Example 2 by the project's actor, as `caller`; a refusal as the ApiError answering it
    (the caller has checked it may read, and unless dry, write the project)."""
    try:
        return await hub.reconcile(project, caller, dry_run)
    except ReconcileError as error:
        status = 404 if error.missing else 409
        raise ApiError(status, "reconcile_failed", error.reason, "projectId") from None


class WorkflowRoutes:
    def __init__(self, hub: Hub, writer: Writer) -> None:
        self.hub = hub
        self.writer = writer

    async def reconcile(self, request: web.Request) -> web.Response:
        wanted = ReconcileRequest.model_validate(await read_json(request))
        scope = scope_of(request, self.hub.get)
        project = await self.hub.get(wanted.project_id)
        await scope.check_read(project, f"project {wanted.project_id}", "projectId")
        if not wanted.dry_run:
            await scope.check_write(project, f"project {wanted.project_id}")
        report = await self._reconcile(request, wanted.project_id, wanted.dry_run)
        return web.json_response(report_body(report))

    async def _reconcile(self, request: web.Request, project: str, dry: bool) -> ReconcileReport:
        return await reconcile(self.hub, project, principal_of(request).chitty_id, dry)

    async def mesh(self, request: web.Request) -> web.Response:
        """The project's todo mesh as a reconciliation would leave it (nothing is written);
        `reconciled` says whether the stored todos already agree with it."""
        project = request.query.get("projectId")
        if not project:
            raise ApiError(422, "invalid", "a projectId query parameter is required", "projectId")
        ReconcileRequest.model_validate({"projectId": project})
        scope = scope_of(request, self.hub.get)
        await scope.check_read(await self.hub.get(project), f"project {project}", "projectId")
        report = await self._reconcile(request, project, True)
        return web.json_response(
            {"projectId": project, **mesh_body(report.mesh), "reconciled": not report.planned}
        )

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
        platforms = wanted.platforms or ([] if wanted.channels else list(DEFAULT_PLATFORMS))
        targets = check_targets({"platforms": platforms, "channels": wanted.channels})
        found = await reports(
            request, self.hub, targets, [session_id], [SyncDomain.SESSIONS], wanted.dry_run
        )
        return web.json_response(
            {
                "sessionId": session_id,
                "dryRun": wanted.dry_run,
                "seq": view.seq,
                "vectorClock": view.clock,
                "targets": found,
            }
        )

    async def enrich(self, request: web.Request) -> web.Response:
        """With no body (or `{}`): summarize the context's sources with the hub's summarizer.
        With an enrichment: add what a model or service produced."""
        context_id = entity_id_of(request, SyncDomain.CONTEXTS)
        await self._check_write(request, context_id)
        body = await read_json(request) if request.content_length or request.body_exists else {}
        if body == {}:
            scope = scope_of(request, self.hub.get)
            summarized = await summarize_context(request, self.hub, self.writer, scope, context_id)
            return web.json_response(summarized)
        enrichment = Enrichment.model_validate(body)
        delta: dict[str, JsonValue] = {"add": {"enrichments": [enrichment.model_dump(mode="json")]}}
        message = self.writer.message(
            request, SyncDomain.CONTEXTS, "update", context_id, {}, delta=delta
        )
        outcome, first = await self.writer.write(message)
        return web.json_response(written_body(outcome, first))


def add_workflow_routes(app: web.Application, hub: Hub, writer: Writer) -> None:
    routes = WorkflowRoutes(hub, writer)
    add = app.router
    add.add_post("/api/v1/todos/reconcile", routes.reconcile, name="reconcile_todos")
    add.add_get("/api/v1/todos/mesh", routes.mesh, name="todo_mesh")
    add.add_get("/api/v1/sessions/{id}/context", routes.session_context, name="session_context")
    add.add_post("/api/v1/sessions/{id}/sync", routes.session_sync, name="sync_session")
    add.add_post("/api/v1/contexts/{id}/enrich", routes.enrich, name="enrich_context")
