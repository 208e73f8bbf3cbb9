"""The gateway's OpenAPI 3.1 document, built from the pydantic models and the app's named routes.

Every operation is looked up by its route's name, so the document cannot describe a route that
does not exist; a route without an entry here is left out, which the tests catch.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from typing import Any, Literal

from aiohttp import web
from pydantic import BaseModel, Field, JsonValue, TypeAdapter, create_model
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaMode
from pydantic_core import CoreSchema

from hub.clocks.vector import VectorClock
from hub.domains import DOMAINS, SyncDomain
from hub.entity import EventKind
from hub.envelope import Status
from hub.models import ConflictResolution, Enrichment, SessionContext, Todo
from hub.models.base import WireModel
from hub.protocol import SYNC_MESSAGE
from transports.gateway.entities import MAX_PAGE
from transports.gateway.sync import COUNT_CAP, ResolveRequest, SyncRequest
from transports.gateway.targets import TargetReport
from transports.gateway.workflows import (
    PropagateRequest,
    ReconcileRequest,
    SessionSyncRequest,
)

OPENAPI_VERSION = "3.1.0"
MAX_DESCRIPTION = 300  # ChatGPT Actions reject longer operation descriptions
JSON = "application/json"
REF = "#/components/schemas/{model}"
WEBSOCKET_PATHS = frozenset({"/ws"})  # OpenAPI has no WebSocket operation: see `x-websocket`
HTTP_METHODS = frozenset({"get", "put", "post", "delete", "options", "patch", "trace"})

Schema = dict[str, Any]


def ref(name: str) -> Schema:
    return {"$ref": REF.format(model=name)}


# -- the answers the handlers build as dicts, described by models of their own ---------------


class Error(WireModel):
    """The body of every 4xx/5xx answer."""

    error: str = Field(description="A short code: not_found, invalid, bad_json, busy, ...")
    detail: str = Field(description="What went wrong, in a sentence.")
    field: str | None = Field(description="The body, path or query field at fault, if one.")


class SyncReport(WireModel):
    """What a sync of a domain did (or, dry, would do) for each target."""

    domain: str = Field(description="The domain synced, or `all`.")
    dry_run: bool
    entities: int = Field(description=f"Entities in scope (counted up to {COUNT_CAP}).")
    targets: list[TargetReport]


class EntitySyncReport(WireModel):
    """What a sync of one entity did (or, dry, would do) for each target."""

    domain: SyncDomain
    entity_id: str
    dry_run: bool
    seq: int
    vector_clock: VectorClock
    targets: list[TargetReport]


class SyncState(WireModel):
    """The sync state of one entity; `synced` means no conflict is open."""

    entity_id: str
    domain: SyncDomain
    seq: int
    vector_clock: VectorClock
    deleted: bool
    open_conflicts: int
    synced: bool


class BroadcastResult(WireModel):
    """What became of a broadcast sync message."""

    id: str
    status: Status
    seq: int = Field(description="The entity's durable log position (0 when nothing applied).")
    vector_clock: VectorClock
    conflicts: list[ConflictResolution]


class ConflictList(WireModel):
    """Open conflicts."""

    conflicts: list[ConflictResolution]


class ResolvedEntity(WireModel):
    """The entity after a conflict was resolved, and the id of the conflict closed."""

    entity: dict[str, JsonValue] = Field(description="The entity (its domain's schema).")
    vector_clock: VectorClock
    seq: int
    conflicts: list[ConflictResolution]
    resolved: str


class HistoryEvent(WireModel):
    """One event of an entity's log."""

    seq: int
    timestamp_ms: int
    checksum: str = Field(description="Hex checksum chained to the previous event's.")
    kind: EventKind
    message: dict[str, JsonValue] = Field(description="The sync message applied.")
    changed: list[str] = Field(description="Wire paths whose value changed.")
    opened: list[str] = Field(description="Conflict ids opened or widened.")
    resolved: list[str] = Field(description="Conflict ids closed.")


class History(WireModel):
    """An entity's events in log order."""

    entity_id: str
    events: list[HistoryEvent]


class MeshEdge(WireModel):
    """A dependency: `from` depends on `to`."""

    from_: str = Field(alias="from")
    to: str


class MeshNode(WireModel):
    """A todo of the mesh, the sessions it came from and the duplicates merged into it."""

    todo: Todo
    origin_sessions: list[str]
    merged_ids: list[str]
    blocked: bool


class TodoMesh(WireModel):
    """A project's todo graph."""

    project_id: str
    nodes: list[MeshNode]
    edges: list[MeshEdge]
    order: list[str] = Field(description="Todo ids in dependency order.")
    blocked: list[str]
    missing_dependencies: dict[str, list[str]]


class ReconcileReport(TodoMesh):
    """The reconciled mesh and what became of each session's write."""

    sessions: dict[str, Status]
    unreachable: list[str]


class SessionContextBody(WireModel):
    """A session's context."""

    session_id: str
    context: SessionContext | None
    seq: int


class SessionSyncReport(WireModel):
    """How a session reaches each platform."""

    session_id: str
    seq: int
    vector_clock: VectorClock
    targets: list[TargetReport]


class HealthReport(WireModel):
    """Liveness and readiness, with the state of each actor."""

    status: Literal["ok", "degraded"]
    live: bool
    ready: bool
    actors: dict[str, bool] = Field(description="Actor name -> whether it answered.")


def entity_models(model: type[BaseModel]) -> list[type[BaseModel]]:
    """`<Model>Response` (an entity with its clock) and `<Model>Page` (a page of them)."""
    name = model.__name__
    response: type[BaseModel] = create_model(
        f"{name}Response",
        __base__=WireModel,
        __doc__=f"A {name.lower()} with its vector clock, log position and open conflicts.",
        entity=(model, ...),
        vector_clock=(VectorClock, ...),
        seq=(int, Field(description="The entity's durable log position.")),
        conflicts=(list[ConflictResolution], ...),
    )
    page: type[BaseModel] = create_model(
        f"{name}Page",
        __base__=WireModel,
        __doc__=f"A page of {name.lower()}s.",
        items=(list[response], ...),
        cursor=(
            str | None,
            Field(description="Pass as ?cursor= for the next page; null at the end."),
        ),
    )
    return [response, page]


# -- operations, by route name ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Operation:
    """How one named route is documented; schemas are named components."""

    tag: str
    summary: str
    description: str
    response: str | Schema  # a component name, or an inline schema
    status: int = 200
    body: str | None = None
    body_required: bool = True
    query: tuple[Schema, ...] = ()
    headers: tuple[Schema, ...] = ()
    errors: tuple[int, ...] = ()
    path: Mapping[str, Schema] = field(default_factory=dict)  # path parameters, by name
    media: str = JSON
    also: Mapping[int, str] = field(default_factory=dict)  # other statuses with the same body


def _param(
    where: str, name: str, description: str, schema: Schema, required: bool = False
) -> Schema:
    return {
        "name": name,
        "in": where,
        "required": required or where == "path",
        "description": description,
        "schema": schema,
    }


def _query(name: str, description: str, schema: Schema | None = None) -> Schema:
    return _param("query", name, description, schema or {"type": "string"})


LIST_QUERY = (
    _query("projectId", "Only entities of this project (a ChittyID)."),
    _query("sessionId", "Only entities of this session (a ChittyID)."),
    _query("topicId", "Only entities of this topic (a ChittyID)."),
    _query("status", "Only entities with this status."),
    _query("assignee", "Only entities assigned to this ChittyID."),
    _query("cursor", "The cursor of the previous page."),
    _query(
        "limit",
        "Page size.",
        {"type": "integer", "minimum": 1, "maximum": MAX_PAGE, "default": 50},
    ),
    _query("includeDeleted", "Include deleted entities.", {"type": "boolean", "default": False}),
)
AT_QUERY = _query(
    "at", "An ISO-8601 time: the state as it was then.", {"type": "string", "format": "date-time"}
)
HEADERS = (
    _param(
        "header",
        "Idempotency-Key",
        "1-100 printable characters; a retried write with the same key returns the first result.",
        {"type": "string", "minLength": 1, "maxLength": 100},
    ),
    _param("header", "X-Chitty-Node", "The writer's node id in vector clocks.", {"type": "string"}),
    _param("header", "X-Chitty-Platform", "The writer's platform.", {"type": "string"}),
)
DOMAIN_NAMES = [d.value for d in SyncDomain]
PATH_PARAMS: Mapping[str, Schema] = {
    "id": _param("path", "id", "The entity's ChittyID.", {"type": "string"}),
    "entityId": _param("path", "entityId", "The entity's ChittyID.", {"type": "string"}),
    "domain": _param("path", "domain", "A sync domain.", {"type": "string", "enum": DOMAIN_NAMES}),
}

ERRORS: Mapping[int, tuple[str, str]] = {
    400: ("BadRequest", "Malformed: not JSON, an unknown query parameter or a bad header."),
    404: ("NotFound", "No such entity, conflict or domain."),
    409: ("Conflict", "Refused by the entity's state: exists already, illegal transition, ..."),
    413: ("TooLarge", "The body is larger than the gateway accepts."),
    422: ("Invalid", "A value is invalid; `field` names it."),
    429: ("Busy", "The entity's mailbox is full; retry shortly."),
    500: ("Internal", "The hub failed to answer (a bug)."),
    503: ("Unavailable", "No host could take the request; retry shortly."),
}
READ = (404, 422, 500, 503)
WRITE = (400, 404, 409, 413, 422, 429, 500, 503)


def _crud(domain: SyncDomain) -> dict[str, Operation]:
    many, one = domain.value, domain.value[:-1]
    model = DOMAINS[domain].model.__name__
    tag = many
    if domain is SyncDomain.SESSIONS:
        delete = (
            "Ends this session: its status becomes ended. The session and its history stay "
            "readable."
        )
    else:
        delete = f"Deletes this {one}. Later reads answer 404; its history stays readable."
    update = (
        f"Changes the fields sent of this {one}; fields not sent keep their value. Send the "
        "vectorClock you last saw: a concurrent write is merged per field, and a conflict it "
        "opens comes back in `conflicts`."
    )
    return {
        f"list_{many}": Operation(
            tag,
            f"List {many}",
            f"Lists {many} a page at a time, filtered by projectId, sessionId, topicId, status "
            "or assignee. Pass the returned cursor for the next page; deleted ones only with "
            "includeDeleted=true.",
            f"{model}Page",
            query=LIST_QUERY,
            errors=(400, 422, 500, 503),
        ),
        f"create_{many}": Operation(
            tag,
            f"Create a {one}",
            f"Creates a {one} and returns it with its chittyId, vector clock and log position. "
            "The chittyId is generated unless given. An Idempotency-Key header makes a retry "
            "return the first result.",
            f"{model}Response",
            status=201,
            body=f"{model}Create",
            headers=HEADERS,
            errors=WRITE,
        ),
        f"get_{many}": Operation(
            tag,
            f"Get a {one}",
            f"Returns this {one} with its vector clock, log position and open conflicts. With "
            "at=<ISO-8601 time> returns its state as it was at that time.",
            f"{model}Response",
            query=(AT_QUERY,),
            errors=READ,
        ),
        f"update_{many}": Operation(
            tag,
            f"Update a {one}",
            update,
            f"{model}Response",
            body=f"{model}Update",
            headers=HEADERS,
            errors=WRITE,
        ),
        f"patch_{many}": Operation(
            tag,
            f"Patch a {one}",
            update,
            f"{model}Response",
            body=f"{model}Update",
            headers=HEADERS,
            errors=WRITE,
        ),
        f"delete_{many}": Operation(
            tag,
            "End a session" if domain is SyncDomain.SESSIONS else f"Delete a {one}",
            delete,
            f"{model}Response",
            headers=HEADERS,
            errors=WRITE,
        ),
        f"history_{many}": Operation(
            tag,
            f"History of a {one}",
            f"Returns every event of this {one} in log order: sequence number, time, a checksum "
            "chained to the previous event, the sync message applied and what it changed.",
            "History",
            errors=READ,
        ),
    }


def _sync() -> dict[str, Operation]:
    any_domain = _param(
        "path",
        "domain",
        "A sync domain, or all of them.",
        {"type": "string", "enum": ["all", *DOMAIN_NAMES]},
    )
    targets = (
        " Targets: platforms, channels, models; an unknown one is a 422 listing the known ones."
    )
    return {
        "list_conflicts": Operation(
            "sync",
            "List open conflicts",
            "Lists every open conflict (concurrent differing values of one field), optionally of "
            "one domain, with each version and the vector clock of the write that made it.",
            "ConflictList",
            query=(
                _query("domain", "Only this domain.", {"type": "string", "enum": DOMAIN_NAMES}),
            ),
            errors=(404, 500, 503),
        ),
        "resolve_conflict": Operation(
            "sync",
            "Resolve a conflict",
            "Settles an open conflict by writing `value` to its field; the write supersedes every "
            "concurrent version and closes the conflict. Returns the entity.",
            "ResolvedEntity",
            body="ResolveRequest",
            path={"id": _param("path", "id", "The conflict id.", {"type": "string"})},
            headers=HEADERS,
            errors=WRITE,
        ),
        "broadcast": Operation(
            "sync",
            "Broadcast a sync message",
            "Submits one full SyncMessage as is; its `target` says who receives it. Returns what "
            "became of it (applied, duplicate, ignored) with the entity's log position, vector "
            "clock and any conflict opened.",
            "BroadcastResult",
            body="SyncMessage",
            errors=WRITE,
        ),
        "sync_domain": Operation(
            "sync",
            "Sync a domain",
            "Syncs a domain (or all) to named targets, optionally narrowed to a project or "
            "session, and reports per target. dryRun reports without changing anything." + targets,
            "SyncReport",
            body="SyncRequest",
            body_required=False,
            path={"domain": any_domain},
            errors=(400, 404, 413, 422, 500, 503),
        ),
        "sync_entity": Operation(
            "sync",
            "Sync an entity",
            "Syncs one entity to named targets and reports per target with its log position and "
            "vector clock. dryRun reports without changing anything." + targets,
            "EntitySyncReport",
            body="SyncRequest",
            body_required=False,
            errors=(400, 404, 413, 422, 500, 503),
        ),
        "sync_status": Operation(
            "sync",
            "Sync status of an entity",
            "Returns the sync state of one entity: log position, vector clock, whether it is "
            "deleted and how many conflicts are open (synced means none).",
            "SyncState",
            errors=(404, 500, 503),
        ),
    }


def _workflows() -> dict[str, Operation]:
    return {
        "reconcile_todos": Operation(
            "todos",
            "Reconcile a project's todos",
            "Reconciles the todos of every session of a project: merges duplicates, orders them "
            "by dependency, marks blocked ones and writes the result back to each session. "
            "Returns the todo mesh and what became of each session.",
            "ReconcileReport",
            body="ReconcileRequest",
            errors=(400, 404, 409, 413, 422, 500, 503),
        ),
        "todo_mesh": Operation(
            "todos",
            "Todo mesh of a project",
            "Returns a project's todo graph, changing nothing: todos with their origin sessions "
            "and merged duplicates, dependency edges, a dependency order, blocked todos and "
            "missing dependencies.",
            "TodoMesh",
            query=(_param("query", "projectId", "The project.", {"type": "string"}, True),),
            errors=(409, 422, 500, 503),
        ),
        "session_context": Operation(
            "sessions",
            "Context of a session",
            "Returns a session's context: its messages, files, free-form state and breadcrumbs.",
            "SessionContextBody",
            errors=(404, 500, 503),
        ),
        "sync_session": Operation(
            "sessions",
            "Sync a session to platforms",
            "Reports how a session reaches each named platform (default web, cli, mobile): live "
            "platforms receive every change over their WebSocket. dryRun changes nothing.",
            "SessionSyncReport",
            body="SessionSyncRequest",
            body_required=False,
            errors=(400, 404, 413, 422, 500, 503),
        ),
        "propagate_context": Operation(
            "contexts",
            "Propagate a context",
            "Hands a context from one model or platform to another: records the summary, if "
            "given, on the context and reports what reached the target.",
            "PropagationReport",
            body="PropagateRequest",
            headers=HEADERS,
            errors=WRITE,
        ),
        "enrich_context": Operation(
            "contexts",
            "Enrich a context",
            "Adds an enrichment (source, kind, content, confidence) that a model or service "
            "produced to a context and returns the context. The hub calls no AI itself.",
            "ContextResponse",
            body="Enrichment",
            headers=HEADERS,
            errors=WRITE,
        ),
    }


def _operations() -> dict[str, Operation]:
    ops: dict[str, Operation] = {
        "health": Operation(
            "operations",
            "Health",
            "Liveness and readiness: 200 when the router, broker, catalog and every host "
            "answer, 503 (degraded) otherwise, with the state of each actor.",
            "HealthReport",
            also={503: "Degraded: some actor did not answer."},
        ),
        "metrics": Operation(
            "operations",
            "Prometheus metrics",
            "Prometheus metrics: request counts and latencies by route, open WebSocket "
            "connections and the counters of every host actor.",
            {"type": "string"},
            media="text/plain",
        ),
        "openapi": Operation(
            "operations",
            "This document",
            "This OpenAPI 3.1 document, generated from the hub's pydantic models and the "
            "gateway's routes.",
            {"type": "object"},
        ),
        **_sync(),
        **_workflows(),
    }
    for domain in SyncDomain:
        ops.update(_crud(domain))
    return ops


OPERATIONS: Mapping[str, Operation] = _operations()


# -- components ------------------------------------------------------------------------------


def _models() -> list[Any]:
    models: list[Any] = [
        Error,
        ConflictResolution,
        SyncRequest,
        ResolveRequest,
        ReconcileRequest,
        PropagateRequest,
        Enrichment,
        SessionSyncRequest,
        SyncReport,
        EntitySyncReport,
        SyncState,
        BroadcastResult,
        ConflictList,
        ResolvedEntity,
        History,
        TodoMesh,
        ReconcileReport,
        SessionContextBody,
        SessionSyncReport,
        HealthReport,
    ]
    for spec in DOMAINS.values():
        models += [spec.model, *entity_models(spec.model)]
    context_response = next(m for m in models if m.__name__ == "ContextResponse")
    models.append(
        create_model(
            "PropagationReport",
            __base__=context_response,
            __doc__="The context after the hand-over and what reached the target.",
            propagation=(TargetReport, ...),
        )
    )
    return models


class _SchemaGenerator(GenerateJsonSchema):
    """Pydantic's generator without a title per field ("Chittyid"): the names say it."""

    def field_title_should_be_set(self, schema: CoreSchema) -> bool:
        return False


def _write_schemas(schemas: dict[str, Schema], model: type[BaseModel]) -> None:
    """`<Model>Create` (chittyId optional) and `<Model>Update` (every field optional), each
    with the client's `vectorClock`, derived from the model's own schema."""
    name, one = model.__name__, model.__name__.lower()
    create = copy.deepcopy(schemas[name])
    create["title"] = f"{name}Create"
    create["description"] = f"A new {one}'s fields; its chittyId is generated when omitted."
    create["properties"]["vectorClock"] = {
        **ref("VectorClock"),
        "description": "The entity's vector clock as you last saw it; omit for a blind write.",
    }
    required = [f for f in create.get("required", []) if f != "chittyId"]
    create.pop("required", None)
    if required:
        create["required"] = required
    update = copy.deepcopy(create)
    update.pop("required", None)
    update["title"] = f"{name}Update"
    update["description"] = f"The {one} fields to change; fields not sent keep their value."
    schemas[f"{name}Create"] = create
    schemas[f"{name}Update"] = update


def components() -> dict[str, Any]:
    """Schemas of every model the operations name, and one response per error status."""
    inputs: list[tuple[Any, JsonSchemaMode, TypeAdapter[Any]]] = [
        (m, "validation", TypeAdapter(m)) for m in _models()
    ]
    inputs.append(("SyncMessage", "validation", SYNC_MESSAGE))
    keys, defs = TypeAdapter.json_schemas(
        inputs, by_alias=True, ref_template=REF, schema_generator=_SchemaGenerator
    )
    schemas: dict[str, Schema] = dict(defs.get("$defs", {}))
    schemas["SyncMessage"] = {
        **keys[("SyncMessage", "validation")],
        "description": "Any sync message; `type` picks the variant.",
    }
    schemas["VectorClock"] = {
        **TypeAdapter(VectorClock).json_schema(),
        "description": "Node id -> counter (absent nodes count as zero).",
    }
    for spec in DOMAINS.values():
        _write_schemas(schemas, spec.model)
    responses = {
        title: {"description": text, "content": {JSON: {"schema": ref("Error")}}}
        for title, text in ERRORS.values()
    }
    return {"schemas": dict(sorted(schemas.items())), "responses": responses}


# -- the document ----------------------------------------------------------------------------


def _operation(name: str, op: Operation, template: str) -> Schema:
    params = [
        op.path.get(p) or PATH_PARAMS.get(p) or _param("path", p, p, {"type": "string"})
        for p in re.findall(r"\{(\w+)", template)
    ]
    params += [*op.query, *op.headers]
    schema = ref(op.response) if isinstance(op.response, str) else op.response
    content = {op.media: {"schema": schema}}
    responses: dict[str, Schema] = {str(op.status): {"description": op.summary, "content": content}}
    for status, text in op.also.items():
        responses[str(status)] = {"description": text, "content": content}
    for status in op.errors:
        responses[str(status)] = {"$ref": f"#/components/responses/{ERRORS[status][0]}"}
    out: Schema = {
        "operationId": name,
        "tags": [op.tag],
        "summary": op.summary,
        "description": op.description,
    }
    if params:
        out["parameters"] = params
    if op.body is not None:
        out["requestBody"] = {
            "required": op.body_required,
            "content": {JSON: {"schema": ref(op.body)}},
        }
    out["responses"] = responses
    return out


def _websocket(name: str | None) -> Schema:
    return {
        "name": name,
        "description": (
            "Upgrade with GET. Subscribe with domains and filters, send and receive "
            "state_update frames (SyncMessage), get acks carrying the durable offset, "
            "heartbeats, and resume from an offset after a reconnect."
        ),
        "message": ref("SyncMessage"),
    }


def _version() -> str:
    try:
        return version("chittychat")
    except PackageNotFoundError:
        return "0.0.0"


def build_document(app: web.Application) -> dict[str, Any]:
    """The document of `app`'s routes, without `servers` (those are each request's own)."""
    paths: dict[str, dict[str, Schema]] = {}
    websockets: dict[str, Schema] = {}
    for resource in app.router.resources():
        template = resource.canonical
        for route in resource:
            method = route.method.lower()
            if method not in HTTP_METHODS:
                continue  # HEAD mirrors GET; `*` routes have no single operation
            op = OPERATIONS.get(route.name or "")
            if op is not None:
                paths.setdefault(template, {})[method] = _operation(route.name or "", op, template)
            elif template in WEBSOCKET_PATHS and method == "get":
                websockets[template] = _websocket(route.name)
    info = (
        "ChittyChat Hub: one state for topics, projects, sessions, todos, contexts, repos and "
        "services across platforms and models. Writes carry vector clocks; concurrent writes "
        "merge per field and open conflicts where they differ. Errors are JSON "
        "{error, detail, field}."
    )
    if websockets:
        info += " Live updates over the WebSocket " + ", ".join(websockets) + " (x-websocket)."
    document: dict[str, Any] = {
        "openapi": OPENAPI_VERSION,
        "info": {"title": "ChittyChat Hub", "version": _version(), "description": info},
        "tags": [{"name": t} for t in sorted({op.tag for op in OPERATIONS.values()})],
        "paths": paths,
        "components": components(),
    }
    if websockets:
        document["x-websocket"] = websockets
    return document


class OpenApiEndpoint:
    """Serves one app's document, built on first request (the router is frozen by then)."""

    def __init__(self) -> None:
        self._document: dict[str, Any] | None = None

    async def serve(self, request: web.Request) -> web.Response:
        if self._document is None:
            self._document = build_document(request.app)
        servers = [{"url": f"{request.scheme}://{request.host}"}]
        return web.json_response({**self._document, "servers": servers})


def add_openapi(app: web.Application) -> None:
    """Register GET /api/v1/openapi.json."""
    app.router.add_get("/api/v1/openapi.json", OpenApiEndpoint().serve, name="openapi")
