"""The gateway's OpenAPI 3.1 document, built from the pydantic models and the app's named routes.

Every operation is looked up by its route's name, so the document cannot describe a route that
does not exist; a route without an entry here is left out, which the tests catch.
"""

from __future__ import annotations

import copy
import inspect
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from importlib.metadata import PackageNotFoundError, version
from typing import Any, Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, JsonValue, RootModel, TypeAdapter, create_model
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaMode
from pydantic_core import CoreSchema, core_schema

from hub.adapters import AdapterState
from hub.auth.principal import Role
from hub.auth.signing import NONCE_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER
from hub.clocks.vector import VectorClock
from hub.domains import DOMAINS, SyncDomain
from hub.entity import EventKind
from hub.envelope import Status
from hub.ids import _MAX_BODY as MAX_ID_BODY
from hub.ids import Kind
from hub.models import ConflictResolution, Enrichment, SessionContext, Todo
from hub.models.base import DEFAULT_ON_CREATE, WireModel
from hub.protocol import SYNC_MESSAGE
from transports.channels import CHANNELS
from transports.gateway.agents import (
    AgentInfo,
    AgentList,
    AgentRegistered,
    AgentRegistration,
    AgentRemoved,
)
from transports.gateway.ask import AskAnswer, AskRequest
from transports.gateway.auth import PUBLIC, STATIC, WEBHOOKS
from transports.gateway.contexts import SummaryProvenance
from transports.gateway.entities import MAX_PAGE
from transports.gateway.handover import (
    CurrentContext,
    DeliveryReport,
    HandOverBody,
    PropagateRequest,
)
from transports.gateway.sync import COUNT_CAP, ResolveRequest, SyncRequest
from transports.gateway.targets import KNOWN, TargetReport
from transports.gateway.tool_routes import ACTIONS_PATH
from transports.gateway.workflows import (
    ReconcileRequest,
    SessionSyncRequest,
)
from transports.tools import TOOLS

OPENAPI_VERSION = "3.1.0"
MAX_DESCRIPTION = 300  # ChatGPT Actions reject longer operation descriptions
JSON = "application/json"
REF = "#/components/schemas/{model}"
WEBSOCKET_PATHS = frozenset({"/ws"})  # OpenAPI has no WebSocket operation: see `x-websocket`
HTTP_METHODS = frozenset({"get", "put", "post", "delete", "options", "patch", "trace"})

Schema = dict[str, Any]


def ref(name: str) -> Schema:
    return {"$ref": REF.format(model=name)}


def chitty_id_pattern(*kinds: Kind) -> str:
    """The pattern of a ChittyID of one of `kinds` (none: any), as `hub.ids.parse` takes it."""
    names = [k.value for k in kinds or Kind]
    alternatives = names[0] if len(names) == 1 else "(" + "|".join(names) + ")"
    return f"^CHITTY-{alternatives}-[0-9A-Za-z]{{1,{MAX_ID_BODY}}}$"


# -- the answers the handlers build as dicts, described by models of their own ---------------


class Error(WireModel):
    """The body of every 4xx/5xx answer."""

    error: str = Field(description="A short code: not_found, invalid, bad_json, busy, ...")
    detail: str = Field(description="What went wrong, in a sentence.")
    field: str | None = Field(description="The body, path or query field at fault, if one.")


class Checked(WireModel):
    """What reading a repo (git) or checking a service (its health check) found just now."""

    entity_id: str
    domain: Literal["repos", "services"]
    name: str = Field(description="The repo's path (or URL), or the service's name.")
    state: str = Field(
        description="A repo's working tree (clean, dirty; `error` when unreadable), a "
        "service's health (healthy, degraded, down, unknown)."
    )
    detail: str = Field(description="Branch, HEAD, changes and ahead/behind; or the latency.")
    error: str | None = Field(description="Why the read or the check failed, if it did.")
    written: bool = Field(description="Whether what was found changed the entity.")
    latency_ms: float | None


_CHECKED = (
    "Repos are read and services checked first (not on a dry run): `checked` says what each "
    "found; what changed is an ordinary update, which subscribers receive."
)


class SyncReport(WireModel):
    """What a sync of a domain did (or, dry, would do) for each target."""

    domain: str = Field(description="The domain synced, or `all`.")
    dry_run: bool
    entities: int = Field(description=f"Entities in scope (counted up to {COUNT_CAP}).")
    targets: list[TargetReport]
    checked: list[Checked] | None = Field(
        default=None, description="For repos, services and all: " + _CHECKED
    )


class EntitySyncReport(WireModel):
    """What a sync of one entity did (or, dry, would do) for each target."""

    domain: SyncDomain
    entity_id: str
    dry_run: bool
    seq: int
    vector_clock: VectorClock
    targets: list[TargetReport]
    checked: list[Checked] | None = Field(
        default=None, description="For a repo or service: " + _CHECKED
    )


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
    """What became of a broadcast sync message. A write, event or relayed command: its status
    (applied, duplicate, ignored) with the entity's log position, clock and any conflict it
    opened. A state_request, query, heartbeat or hub-run command: status `answered` and what
    it asked for (an entity, a page of items, the stream's position, a command's result)."""

    id: str | None
    status: Status | Literal["answered"]
    seq: int | None = Field(
        default=None, description="The entity's durable log position (0: nothing applied)."
    )
    vector_clock: VectorClock | None = None
    conflicts: list[ConflictResolution] | None = None
    domain: SyncDomain | None = None
    entity_id: str | None = None
    entity: dict[str, JsonValue] | None = Field(default=None, description="A state_request's.")
    items: list[dict[str, JsonValue]] | None = Field(default=None, description="A query's page.")
    cursor: str | None = Field(default=None, description="A query's next page, if any.")
    epoch: str | None = Field(default=None, description="A heartbeat's: the stream's epoch.")
    offset: int | None = Field(default=None, description="A heartbeat's: the stream's head.")
    command: str | None = None
    result: dict[str, JsonValue] | None = Field(default=None, description="A command's answer.")


class MergeSuggestion(WireModel):
    """A value that would settle the conflict and why; `by` is `rule` (hub/suggest.py) or the
    configured model that suggested it (claude, chatgpt, gemini). Accept it with
    `{"acceptSuggestion": true}` on the resolve route."""

    value: JsonValue
    reason: str
    by: str


class ListedConflict(ConflictResolution):
    """An open conflict and its merge suggestion (null: no rule applies; choose a value)."""

    suggestion: MergeSuggestion | None


class ConflictList(WireModel):
    """Open conflicts, each with its merge suggestion."""

    conflicts: list[ListedConflict]


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
    merged_ids: list[str] = Field(description="Every todo id merged into this one, its own too.")
    merged_from: list[str] = Field(description="The duplicates merged into it (not its own id).")
    blocked: bool


class TodoGraph(WireModel):
    """A project's todo graph."""

    project_id: str
    nodes: list[MeshNode]
    edges: list[MeshEdge]
    order: list[str] = Field(description="Todo ids in dependency order.")
    blocked: list[str]
    missing_dependencies: dict[str, list[str]]


class TodoMesh(TodoGraph):
    """A project's todos as a reconciliation leaves them (nothing written)."""

    reconciled: bool = Field(description="Whether the stored todos already agree with it.")


class ReconcileWrite(WireModel):
    """One todo reconciliation wrote back (or, dry, would write)."""

    todo_id: str
    operation: Literal["create", "update"]
    fields: list[str] = Field(description="The wire fields written.")
    status: Status | Literal["planned"] = Field(description="planned: a dry run's.")
    reason: str | None = None


class ReconcileReport(TodoGraph):
    """The reconciled mesh, the project's sessions and each write back."""

    dry_run: bool
    sessions: list[str] = Field(description="Every session of the project.")
    writes: list[ReconcileWrite]
    unreachable: list[str] = Field(description="Sessions the project names that did not answer.")


class SessionContextBody(WireModel):
    """A session's context."""

    session_id: str
    context: SessionContext | None
    seq: int


class SessionSyncReport(WireModel):
    """How a session reaches each platform."""

    session_id: str
    dry_run: bool
    seq: int
    vector_clock: VectorClock
    targets: list[TargetReport]


class AdapterHealth(WireModel):
    """An adapter's state, as /health shows it."""

    name: str
    state: AdapterState
    detail: str


class HealthReport(WireModel):
    """Liveness and readiness, with the state of each actor and adapter."""

    status: Literal["ok", "degraded"]
    live: bool
    ready: bool
    version: str = Field(description="The hub's version (what its own service check records).")
    actors: dict[str, bool] = Field(description="Actor name -> whether it answered.")
    adapters: list[AdapterHealth] = Field(
        description="Each adapter's state (a disconnected one does not make the hub unready)."
    )


class AdapterInfo(WireModel):
    """An adapter: its state, the settings it lacks (if any), its counters."""

    name: str
    kind: Literal["channel", "platform", "model"]
    state: AdapterState
    configured: bool
    needs: list[str]
    detail: str
    sent: int
    received: int
    retried: int
    failed: int
    pending: int
    lag: int
    ignored: int
    withheld: int


class AdapterList(WireModel):
    """Every adapter the hub knows."""

    adapters: list[AdapterInfo]


class FailedDelivery(WireModel):
    """A delivery an adapter could not make, and why."""

    id: int
    entity_id: str
    seq: int
    kind: str
    reason: str


class AdapterFailures(WireModel):
    adapter: str
    failed: list[FailedDelivery]


class AdapterRetried(WireModel):
    adapter: str
    retried: int = Field(description="Deliveries queued again.")


class AdapterTested(WireModel):
    adapter: str
    sent: bool
    message_id: str = Field(description="The service's id of the test message.")


class WebhookAnswer(BaseModel):
    """What the hub answers a service's webhook (Slack: an event, a url_verification)."""

    model_config = ConfigDict(extra="allow")


class SignInForm(BaseModel):
    """The web UI's sign-in form (application/x-www-form-urlencoded)."""

    model_config = ConfigDict(extra="forbid")

    csrf: str = Field(description="The form's CSRF token, as the sign-in page set it.")
    token: str = Field(description="A hub token (or, with an OIDC issuer, an ID token).")


class SignOutForm(BaseModel):
    """The web UI's sign-out form (application/x-www-form-urlencoded)."""

    model_config = ConfigDict(extra="forbid")

    csrf: str = Field(description="The browser session's CSRF token.")


class TokenInfo(BaseModel):
    """A token of the principal, as `chitty token list` shows it: never its secret."""

    model_config = ConfigDict(extra="forbid")

    token_id: str
    name: str
    role: Role
    chitty_id: str
    created_at: float = Field(description="Unix seconds.")
    expires_at: float | None = Field(description="Unix seconds; null: never expires.")
    revoked_at: float | None
    rotated_to: str | None = Field(description="The token that replaced this one, if rotated.")
    overlap_until: float | None = Field(description="A rotated token is refused after this.")


class ExportedEntity(WireModel):
    """An entity the principal is a member of, with its domain, clock and log position."""

    domain: SyncDomain
    entity: dict[str, JsonValue] = Field(description="The entity (its domain's schema).")
    vector_clock: VectorClock
    seq: int
    conflicts: list[ConflictResolution]


class ExportedChange(HistoryEvent):
    """A change the principal made: one event of an entity's log."""

    entity_id: str


class PrincipalExport(WireModel):
    """Everything the hub stores about a principal (GDPR export)."""

    principal: str
    exported_at: datetime
    tokens: list[TokenInfo]
    entities: list[ExportedEntity]
    changes: list[ExportedChange] = Field(description="Every change the principal made.")
    agents: list[AgentInfo] = Field(
        default_factory=list, description="The custom agents of a service (never secrets)."
    )


class ErasureReport(WireModel):
    """What an erasure did: the principal's own entities erased whole, its ChittyID replaced
    by `pseudonym` everywhere else (the audit chains still verify), its tokens deleted."""

    principal: str
    pseudonym: str
    erased_entities: list[str]
    rewritten_events: int
    dropped_snapshots: int
    dropped_outcomes: int
    rewritten_rows: int
    deleted_tokens: int
    deleted_agents: int = 0
    compaction: str = Field(description="What stays on disk until `chitty compact`.")


class Me(WireModel):
    """Who the credential names."""

    chitty_id: str
    role: Role
    kind: Literal["user", "service"]
    token_id: str | None = Field(description="The hub token's id; null for an OIDC JWT.")
    expires_at: datetime | None = Field(
        description="When the hub token stops being accepted; null: never, or a JWT."
    )


class RotatedToken(WireModel):
    """The caller's new hub token (shown once); the old one works until previousValidUntil."""

    token: str = Field(description="The new secret: send it as the bearer credential.")
    token_id: str
    expires_at: datetime | None
    previous_valid_until: datetime | None


class ToolArguments(RootModel[dict[str, JsonValue]]):
    """A tool's arguments by name (camelCase), as its schema in the Actions document (or MCP's
    tools/list) says; a tool without required arguments takes `{}` or no body."""


class ToolAnswer(WireModel):
    """What a tool answered."""

    tool: str = Field(description="The tool's name.")
    result: JsonValue = Field(description="Its answer: the same JSON MCP's tool call returns.")


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
    body_media: str = JSON
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
    _query(
        "sessionId",
        "Only entities of this session (a ChittyID): for todos, those made in it and those a "
        "reconciliation listed in it.",
    ),
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
    _query(
        "includeMerged",
        "Include todos a reconciliation merged into another (`mergedInto`).",
        {"type": "boolean", "default": False},
    ),
    _query(
        "fields",
        "Comma-separated entity fields to answer (`chittyId` always); the others are left out. "
        "A session's `todos` are filled in only when asked for (or with no `fields`).",
    ),
)
AT_QUERY = _query(
    "at", "An ISO-8601 time: the state as it was then.", {"type": "string", "format": "date-time"}
)
HEADERS = (
    _param(
        "header",
        "Idempotency-Key",
        "1-100 printable characters; a retried write with the same key and body returns the "
        "first result (a 503 with Retry-After while its host restarts); the same key with "
        "another body is a 422 naming the key, and writes nothing.",
        {"type": "string", "minLength": 1, "maxLength": 100, "pattern": "^[!-~]+$"},
    ),
    _param(
        "header",
        "X-Chitty-Node",
        "The writer's node id in vector clocks: 1-128 printable characters, no space.",
        {"type": "string", "minLength": 1, "maxLength": 128},
    ),
    _param(
        "header",
        "X-Chitty-Platform",
        "The writer's platform.",
        {"type": "string", "minLength": 1, "maxLength": 64},
    ),
)
DOMAIN_NAMES = [d.value for d in SyncDomain]
PATH_PARAMS: Mapping[str, Schema] = {
    "id": _param("path", "id", "The entity's ChittyID.", {"type": "string"}),
    "entityId": _param("path", "entityId", "The entity's ChittyID.", {"type": "string"}),
    "domain": _param("path", "domain", "A sync domain.", {"type": "string", "enum": DOMAIN_NAMES}),
}

ERRORS: Mapping[int, tuple[str, str]] = {
    400: (
        "BadRequest",
        "Malformed: not JSON (or nested deeper than 64 levels), an unknown query parameter or "
        "a bad header.",
    ),
    401: (
        "Unauthenticated",
        "No credential, an unknown, revoked or expired one, or (for a service) a missing, stale, "
        "replayed or wrong request signature.",
    ),
    403: (
        "Forbidden",
        "The principal may not do this: a write outside its scope, a role that may not "
        "(viewers change nothing), /metrics for a member or viewer, or a WebSocket upgrade "
        "from a browser origin not allowed. A read it may not see answers 404 instead.",
    ),
    404: ("NotFound", "No such entity, conflict or domain, or one the principal may not see."),
    409: ("Conflict", "Refused by the entity's state: exists already, illegal transition, ..."),
    413: ("TooLarge", "The body is larger than the gateway accepts (1 MiB)."),
    422: ("Invalid", "A value is invalid; `field` names it."),
    429: (
        "TooManyRequests",
        "Over the principal's rate limit (Retry-After says in how many seconds to retry), or "
        "the entity's mailbox is full (retry shortly).",
    ),
    500: (
        "Internal",
        "The hub failed to answer (a bug), or (`corrupt`) the entity's stored data failed its "
        "integrity check and is not served.",
    ),
    502: (
        "BadGateway",
        "The service behind an adapter (or the model asked) refused or failed the request.",
    ),
    503: ("Unavailable", "No host could take the request; retry after Retry-After seconds."),
    504: ("GatewayTimeout", "The model asked did not answer within the hub's timeout."),
}
# Headers of the shared error responses, by status.
ERROR_HEADERS: Mapping[int, Mapping[str, Schema]] = {
    401: {
        "WWW-Authenticate": {
            "description": 'The scheme to authenticate with: `Bearer realm="chittychat"`.',
            "required": True,
            "schema": {"type": "string"},
        }
    },
    429: {
        "Retry-After": {
            "description": "Seconds to wait before retrying (sent when the rate limit is hit).",
            "schema": {"type": "integer", "minimum": 1},
        }
    },
}
# Every authenticated operation may answer these (the authentication middleware does).
AUTHENTICATED = (401, 429)
READ = (404, 422, 500, 503)
WRITE = (400, 403, 404, 409, 413, 422, 429, 500, 503)

SECURITY_SCHEME = "bearerAuth"
SIGNING = (
    f"Service principals also sign every request: `{TIMESTAMP_HEADER}` (integer Unix seconds, "
    f"within the hub's window), `{NONCE_HEADER}` (16-128 characters of A-Z a-z 0-9 _ -, never "
    f"reused) and `{SIGNATURE_HEADER}`, the hex HMAC-SHA256 with the service's signing key of "
    "`METHOD\\npath?query\\ntimestamp\\nnonce\\nhex(sha256(body))`; a missing, stale, "
    "replayed or wrong signature is a 401. Other principals need not send these headers (they "
    "are ignored). On /ws a service sends each frame as `{frame, timestamp, nonce, signature}`, "
    "signed with method `WS` and path `/ws`."
)


def _id_param(domain: SyncDomain) -> Mapping[str, Schema]:
    """The `{id}` of a route under one domain: a ChittyID of its kind (any other: a 422)."""
    schema = {"type": "string", "pattern": chitty_id_pattern(DOMAINS[domain].kind)}
    return {"id": _param("path", "id", f"The {domain.value[:-1]}'s ChittyID.", schema)}


def _crud(domain: SyncDomain) -> dict[str, Operation]:
    many, one = domain.value, domain.value[:-1]
    model = DOMAINS[domain].model.__name__
    tag = many
    path = _id_param(domain)
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
            path=path,
            errors=READ,
        ),
        f"update_{many}": Operation(
            tag,
            f"Update a {one}",
            update,
            f"{model}Response",
            body=f"{model}Update",
            headers=HEADERS,
            path=path,
            errors=WRITE,
        ),
        f"patch_{many}": Operation(
            tag,
            f"Patch a {one}",
            update,
            f"{model}Response",
            body=f"{model}Update",
            headers=HEADERS,
            path=path,
            errors=WRITE,
        ),
        f"delete_{many}": Operation(
            tag,
            "End a session" if domain is SyncDomain.SESSIONS else f"Delete a {one}",
            delete,
            f"{model}Response",
            headers=HEADERS,
            path=path,
            errors=WRITE,
        ),
        f"history_{many}": Operation(
            tag,
            f"History of a {one}",
            f"Returns every event of this {one} in log order: sequence number, time, a checksum "
            "chained to the previous event, the sync message applied and what it changed.",
            "History",
            path=path,
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
            "one domain, with each version, the vector clock of the write that made it, and a "
            "merge suggestion with its reason (a todo's most advanced status, the highest "
            "priority, the earliest deadline, the longer text).",
            "ConflictList",
            query=(
                _query("domain", "Only this domain.", {"type": "string", "enum": DOMAIN_NAMES}),
            ),
            errors=(404, 500, 503),
        ),
        "resolve_conflict": Operation(
            "sync",
            "Resolve a conflict",
            "Settles an open conflict by writing `value` (or, with `acceptSuggestion`, its "
            "suggestion) to its field; the write supersedes every concurrent version and closes "
            "the conflict. Returns the entity. 409 no_suggestion when no rule suggests one.",
            "ResolvedEntity",
            body="ResolveRequest",
            path={"id": _param("path", "id", "The conflict id.", {"type": "string"})},
            headers=HEADERS,
            errors=WRITE,
        ),
        "broadcast": Operation(
            "sync",
            "Broadcast a sync message",
            "Submits one whole SyncMessage; its type says what it does (as on /ws): a write, event "
            "or relayed command returns what became of it, its `target` says who receives it; a "
            "state_request, query, heartbeat or hub-run command (reconcile) returns its answer.",
            "BroadcastResult",
            body="SyncMessage",
            errors=WRITE,
        ),
        "sync_domain": Operation(
            "sync",
            "Sync a domain",
            "Reports, per named target, whether the domain's entities (optionally of one project "
            "or session) reach it: live only when a subscriber of it is connected now. A dry run "
            "answers the same." + targets,
            "SyncReport",
            body="SyncRequest",
            body_required=False,
            path={"domain": any_domain},
            errors=(400, 404, 413, 422, 500, 503),
        ),
        "sync_entity": Operation(
            "sync",
            "Sync an entity",
            "Reports, per named target, whether one entity reaches it (live only when a "
            "subscriber of it is connected now), with its log position and vector clock." + targets,
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
            errors=(404, 422, 500, 503),
        ),
    }


def _workflows() -> dict[str, Operation]:
    return {
        "reconcile_todos": Operation(
            "todos",
            "Reconcile a project's todos",
            "Spec Example 2: duplicates merge (most advanced status wins; the others are marked "
            "mergedInto it) and every session of the project lists every todo. Writes only what "
            "differs (a rerun writes nothing); dryRun writes nothing. Returns the mesh and each "
            "write.",
            "ReconcileReport",
            body="ReconcileRequest",
            errors=(400, 403, 404, 409, 413, 422, 500, 503),
        ),
        "todo_mesh": Operation(
            "todos",
            "Todo mesh of a project",
            "Returns a project's todo graph as a reconciliation would leave it, changing "
            "nothing: todos with their origin sessions and merged duplicates, dependency edges, "
            "a dependency order, blocked todos, missing dependencies, and whether the stored "
            "todos already agree.",
            "TodoMesh",
            query=(
                _param(
                    "query",
                    "projectId",
                    "The project.",
                    {"type": "string", "pattern": chitty_id_pattern(Kind.PROJ)},
                    True,
                ),
            ),
            errors=(404, 409, 422, 500, 503),
        ),
        "session_context": Operation(
            "sessions",
            "Context of a session",
            "Returns a session's context: its messages, files, free-form state and breadcrumbs.",
            "SessionContextBody",
            path=_id_param(SyncDomain.SESSIONS),
            errors=(404, 422, 500, 503),
        ),
        "sync_session": Operation(
            "sessions",
            "Sync a session to platforms",
            "Reports how a session reaches each named platform (default web, cli, mobile): live "
            "when a subscriber of that platform is connected on /ws (it receives every change), "
            "else not_connected with what would connect one. A dry run answers the same.",
            "SessionSyncReport",
            body="SessionSyncRequest",
            body_required=False,
            path=_id_param(SyncDomain.SESSIONS),
            errors=(400, 404, 413, 422, 500, 503),
        ),
        "current_context": Operation(
            "contexts",
            "The caller's current context",
            "Spec Example 3 in one call: the hand-over of the caller's most recently active "
            "session (not on `target`, when named; `sessionId` picks one): summary, key points, "
            "entities, last 10 messages, files, open todos and one prompt-ready text. 404 "
            "no_context when the caller has no session.",
            "CurrentContext",
            query=(
                _query("target", "The platform or model asking (its own sessions are skipped)."),
                _query("sessionId", "Hand over this session (CHITTY-SESSION id)."),
            ),
            errors=(401, 403, 404, 422, 500, 503),
        ),
        "propagate_context": Operation(
            "contexts",
            "Propagate a context",
            "Hands a context from one model or platform to others (Example 3): builds the "
            "hand-over of the session it comes from, records it on the context (linked to that "
            "session) with the summary if given, pushes it to every target a model adapter is "
            "configured for, and says per target what was delivered.",
            "PropagationReport",
            body="PropagateRequest",
            headers=HEADERS,
            errors=WRITE,
        ),
        "enrich_context": Operation(
            "contexts",
            "Enrich a context",
            "No body: summarizes the context's sources (summary, key points, entities, "
            "relationships) offline, or by Claude/GPT when configured, recording which "
            "summarizer and version did. An enrichment body (source, kind, content, "
            "confidence): adds what a model or service produced.",
            "EnrichReport",
            body="Enrichment",
            body_required=False,
            path=_id_param(SyncDomain.CONTEXTS),
            headers=HEADERS,
            errors=WRITE,
        ),
    }


def _principals() -> dict[str, Operation]:
    who = (
        " An admin may name anyone, any other principal only itself (anyone else is a 404, as "
        "for an unknown principal)."
    )
    about = "The principal's ChittyID (a user or service)."
    schema = {"type": "string", "pattern": chitty_id_pattern(Kind.USER, Kind.SERVICE)}
    principal = {"id": _param("path", "id", about, schema)}
    return {
        "auth_me": Operation(
            "principals",
            "Who am I",
            "Returns the principal the credential names: ChittyID, role, kind (user or service) "
            "and, for a hub token, its id and until when it is accepted.",
            "Me",
            errors=(500,),
        ),
        "auth_rotate": Operation(
            "principals",
            "Rotate my token",
            "Replaces the caller's hub token with a new one, shown once. The old token keeps "
            "working for the overlap window, so clients rotate without a gap. 409 for an OIDC "
            "JWT or a token rotated already.",
            "RotatedToken",
            errors=(409, 500),
        ),
        "export_principal": Operation(
            "principals",
            "Export a principal's data",
            "Returns everything stored about a principal as JSON: its tokens (never secrets), "
            "every entity it is a member of and every change it made." + who,
            "PrincipalExport",
            path=principal,
            errors=(404, 500, 503),
        ),
        "erase_principal": Operation(
            "principals",
            "Erase a principal",
            "Erases a principal: entities only it owns are erased whole, its ChittyID is "
            "pseudonymized everywhere else (audit chains still verify), its tokens are deleted."
            + who,
            "ErasureReport",
            path=principal,
            errors=(404, 500, 503),
        ),
    }


def _adapters() -> dict[str, Operation]:
    name = {"name": _param("path", "name", "The adapter, e.g. slack.", {"type": "string"})}
    operator = " Admins and services only."
    return {
        "list_adapters": Operation(
            "adapters",
            "List adapters",
            "Every adapter the hub knows: its state (connected, transient_disconnect, "
            "bad_credentials, disabled), the settings it lacks, and its counters.",
            "AdapterList",
            errors=(500, 503),
        ),
        "adapter_failed": Operation(
            "adapters",
            "Failed deliveries",
            "The deliveries an adapter could not make, and why." + operator,
            "AdapterFailures",
            path=name,
            errors=(403, 404, 409, 500, 503),
        ),
        "retry_adapter": Operation(
            "adapters",
            "Retry failed deliveries",
            "Queues an adapter's failed deliveries again, in their old places." + operator,
            "AdapterRetried",
            path=name,
            errors=(403, 404, 409, 500, 503),
        ),
        "test_adapter": Operation(
            "adapters",
            "Send a test message",
            "Posts a test message through an adapter to its default channel." + operator,
            "AdapterTested",
            path=name,
            errors=(403, 404, 409, 500, 502, 503),
        ),
        **{
            hook.name: Operation(
                "adapters",
                hook.summary,
                f"{hook.description} Authenticated by {hook.auth}.",
                "WebhookAnswer" if hook.answers == JSON else {"type": "string"},
                media=hook.answers,
                errors=(400, 401, 403, 404, 409, 413, 500, 503),
            )
            for spec in CHANNELS
            for hook in spec.hooks
        },
    }


def _ask() -> dict[str, Operation]:
    return {
        "ask": Operation(
            "models",
            "Ask a model",
            "Asks Claude, ChatGPT or Gemini a question with the caller's hand-over context "
            "and the hub's tools, run as the caller. 409 `not_configured` names the key the hub "
            "lacks; 502 when the model refused, failed or gave no answer in 8 steps, 504 when "
            "it timed out (`detail` says why).",
            "AskAnswer",
            body="AskRequest",
            errors=(400, 409, 413, 422, 500, 502, 503, 504),
        )
    }


def _tools() -> dict[str, Operation]:
    name = _param("path", "name", "The tool.", {"type": "string", "enum": [t.name for t in TOOLS]})
    return {
        "run_tool": Operation(
            "tools",
            "Run a tool",
            "Runs one of the hub's tools (those MCP serves) as the caller: scope applies as for "
            "the REST call it makes. Bad arguments: 422 naming the field; an unknown tool: 404 "
            f"naming the tools. Each tool's arguments: {ACTIONS_PATH}.",
            "ToolAnswer",
            body="ToolArguments",
            body_required=False,
            path={"name": name},
            errors=WRITE,
        ),
        "openapi_actions": Operation(
            "tools",
            "The ChatGPT Actions document",
            "An OpenAPI 3.1 document a GPT imports by URL: one operation per hub tool, within "
            "OpenAI's limits, writes marked x-openai-isConsequential (no credential needed).",
            {"type": "object"},
        ),
        "privacy": Operation(
            "tools",
            "Privacy policy",
            "What the hub stores and sends, the page a public GPT links to (no credential).",
            {"type": "string"},
            media="text/html",
        ),
    }


def _agents() -> dict[str, Operation]:
    agent = {"id": _param("path", "id", "The agent's id (agent-...).", {"type": "string"})}
    whose = " A service sees its own agents, an admin every one; anyone else is a 403."
    return {
        "register_agent": Operation(
            "agents",
            "Register a custom agent",
            "A service registers an agent (an admin: naming its `principal`): domains, filters "
            "and a webhook URL, or none to follow /ws. 201 new, 200 updated. `webhookSecret` is "
            "answered once; deliveries carry X-Chitty-Signature: v1=hex HMAC-SHA256(secret, "
            "timestamp.body).",
            "AgentRegistered",
            status=201,
            body="AgentRegistration",
            also={200: "An existing agent was updated (its secret is kept, not shown again)."},
            errors=(400, 403, 413, 422, 500),
        ),
        "list_agents": Operation(
            "agents",
            "List custom agents",
            "Registered agents with their delivery state: connected (a /ws is open), "
            "delivering, failing (with the error, pending events and next retry) or idle." + whose,
            "AgentList",
            errors=(403, 500),
        ),
        "get_agent": Operation(
            "agents",
            "Show a custom agent",
            "One agent and its delivery state." + whose + " Another's agent is a 404.",
            "AgentInfo",
            path=agent,
            errors=(403, 404, 500),
        ),
        "remove_agent": Operation(
            "agents",
            "Remove a custom agent",
            "Stops the agent's deliveries and forgets it, its secret and where it stood."
            + whose
            + " Another's agent is a 404.",
            "AgentRemoved",
            path=agent,
            errors=(403, 404, 500),
        ),
    }


def _operations() -> dict[str, Operation]:
    ops: dict[str, Operation] = {
        "health": Operation(
            "operations",
            "Health",
            "Liveness and readiness: 200 when the router, broker, catalog and every host "
            "answer, 503 (degraded) otherwise, with the state of each actor and adapter.",
            "HealthReport",
            also={503: "Degraded: some actor did not answer."},
        ),
        "index": Operation(
            "web",
            "Web UI",
            "The web UI for a signed-in browser; else its sign-in page, which also points at "
            "this API, its OpenAPI document, the CLI and the docs (no credential needed).",
            {"type": "string"},
            media="text/html",
        ),
        "signin": Operation(
            "web",
            "Sign in a browser",
            "Exchanges a hub token for an HttpOnly, SameSite=Strict session cookie and answers "
            "303 to /. A wrong token: 401, a bad CSRF token: 403 (each the sign-in page).",
            {"type": "string"},
            status=303,
            body="SignInForm",
            body_media="application/x-www-form-urlencoded",
            media="text/html",
            also={401: "The token is not accepted.", 403: "The form's CSRF token is wrong."},
        ),
        "signout": Operation(
            "web",
            "Sign out a browser",
            "Ends the browser session its cookie names (the token stays valid); 303 to /.",
            {"type": "string"},
            status=303,
            body="SignOutForm",
            body_media="application/x-www-form-urlencoded",
            media="text/html",
            errors=(403,),
        ),
        "signin_oidc": Operation(
            "web",
            "Sign in a browser with the OIDC issuer",
            "303 to the issuer's authorization endpoint (code flow with PKCE, a state bound to "
            "this browser by a cookie, a nonce). 404 when the hub has no OIDC issuer, 503 when the "
            "issuer's discovery document cannot be read.",
            {"type": "string"},
            status=303,
            media="text/html",
            errors=(404, 503),
        ),
        "signin_oidc_callback": Operation(
            "web",
            "The OIDC issuer's answer",
            "Exchanges the issuer's code for an ID token, checks it as any bearer JWT is and for "
            "this sign-in's state and nonce, and opens a browser session (an HttpOnly cookie). "
            "A refused sign-in answers the sign-in page with 400 or 401 naming why.",
            {"type": "string"},
            media="text/html",
            query=(
                _query("code", "The authorization code the issuer gave."),
                _query("state", "The state this hub sent to the issuer."),
                _query("error", "The issuer's error, when it refused."),
            ),
            also={
                400: "The answer does not match this sign-in (state, code).",
                401: "The issuer refused, or its ID token is not accepted.",
                502: "The issuer's token endpoint failed or answered no ID token.",
            },
            errors=(404, 503),
        ),
        "static": Operation(
            "web",
            "Web UI files",
            "The web UI's scripts, styles and vendored libraries (no credential, no data).",
            {"type": "string"},
            media="application/octet-stream",
            errors=(404,),
        ),
        "metrics": Operation(
            "operations",
            "Prometheus metrics",
            "Prometheus metrics: request counts and latencies by route, open WebSocket "
            "connections and the counters of every host actor. For admin and service "
            "principals only (the whole hub's counters): 403 for anyone else.",
            {"type": "string"},
            media="text/plain",
            errors=(403,),
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
        **_principals(),
        **_adapters(),
        **_ask(),
        **_tools(),
        **_agents(),
    }
    for domain in SyncDomain:
        ops.update(_crud(domain))
    return ops


OPERATIONS: Mapping[str, Operation] = _operations()


# -- components ------------------------------------------------------------------------------


def _models() -> list[Any]:
    models: list[Any] = [
        Error,
        SignInForm,
        SignOutForm,
        ConflictResolution,
        SyncRequest,
        ResolveRequest,
        ReconcileRequest,
        PropagateRequest,
        CurrentContext,
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
        PrincipalExport,
        ErasureReport,
        AdapterList,
        AdapterFailures,
        AdapterRetried,
        AdapterTested,
        WebhookAnswer,
        Me,
        RotatedToken,
        AskRequest,
        AskAnswer,
        ToolArguments,
        ToolAnswer,
        AgentRegistration,
        AgentRegistered,
        AgentInfo,
        AgentList,
        AgentRemoved,
    ]
    for spec in DOMAINS.values():
        models += [spec.model, *entity_models(spec.model)]
    context_response = next(m for m in models if m.__name__ == "ContextResponse")
    models.append(
        create_model(
            "PropagationReport",
            __base__=context_response,
            __doc__="The context after the hand-over, the hand-over, and what reached each "
            "target (`propagation`: the first target's, as before `targets` existed).",
            handover=(HandOverBody, ...),
            propagation=(DeliveryReport, ...),
            deliveries=(list[DeliveryReport], ...),
        )
    )
    models.append(
        create_model(
            "EnrichReport",
            __base__=context_response,
            __doc__="The context after the enrichment; `summary` when the hub summarized it.",
            summary=(SummaryProvenance | None, None),
        )
    )
    return models


def _chitty_id_kind(function: object) -> Kind | bool | None:
    """The kind a `hub.ids` ChittyID validator checks (None: any kind); False if `function`
    is no such validator. (Its schema is a plain string; the pattern is added here.)"""
    try:
        function = inspect.unwrap(function)  # type: ignore[arg-type]  # e.g. an lru_cache
        name = (getattr(function, "__module__", ""), getattr(function, "__qualname__", ""))
        if name != ("hub.ids", "_validator.<locals>.check"):
            return False
        kind = inspect.getclosurevars(function).nonlocals.get("kind")  # type: ignore[arg-type]
    except (TypeError, ValueError):  # not a plain function: no pattern, never a failure
        return False
    return kind if isinstance(kind, Kind) else None


class _SchemaGenerator(GenerateJsonSchema):
    """Pydantic's generator without a title per field ("Chittyid"): the names say it; and
    ChittyID strings carry their pattern."""

    def field_title_should_be_set(self, schema: CoreSchema) -> bool:
        return False

    def function_after_schema(self, schema: core_schema.AfterValidatorFunctionSchema) -> Schema:
        out = super().function_after_schema(schema)
        kind = _chitty_id_kind(schema["function"]["function"])
        if kind is not False and out.get("type") == "string":
            out = {**out, "pattern": chitty_id_pattern(*([kind] if kind else []))}
        return out


def _known_targets(schemas: dict[str, Schema]) -> None:
    """Target names are checked against the known ones (an unknown one is a 422): say which."""
    sync = schemas["SyncRequest"]["properties"]
    for kind in ("platforms", "channels", "models"):
        sync[kind]["items"] = {"type": "string", "enum": sorted(KNOWN[kind])}
    platforms = schemas["SessionSyncRequest"]["properties"]["platforms"]["anyOf"][0]
    platforms["items"] = {"type": "string", "enum": sorted(KNOWN["platforms"])}
    target = schemas["PropagateRequest"]["properties"]["target"]
    target["enum"] = sorted(KNOWN["platforms"] | KNOWN["models"])


CREATED_BY, SHARED_WITH = "createdBy", "sharedWith"


def _access_fields(schema: Schema) -> None:
    """Describe the access fields every domain model carries (scope isolation)."""
    properties = schema["properties"]
    properties[CREATED_BY] = {
        **properties[CREATED_BY],
        "readOnly": True,
        "description": (
            "The ChittyID of the principal who created the entity; set by the hub from the "
            "creator's credential (whatever a client sends), never changed. The creator owns it."
        ),
    }
    properties[SHARED_WITH] = {
        **properties[SHARED_WITH],
        "description": (
            "ChittyIDs granted access explicitly, besides the owner, participants and team members."
        ),
    }


def _write_schemas(schemas: dict[str, Schema], model: type[BaseModel]) -> None:
    """`<Model>Create` (chittyId optional) and `<Model>Update` (every field optional), each
    with the client's `vectorClock`, derived from the model's own schema."""
    name, one = model.__name__, model.__name__.lower()
    create = copy.deepcopy(schemas[name])
    create["title"] = f"{name}Create"
    create["description"] = f"A new {one}'s fields; its chittyId is generated when omitted."
    del create["properties"][CREATED_BY]  # the hub sets it; clients cannot
    create["properties"]["vectorClock"] = {
        **ref("VectorClock"),
        "description": "The entity's vector clock as you last saw it; omit for a blind write.",
    }
    properties = create["properties"]
    required = [
        f
        for f in create.get("required", [])
        if f != "chittyId" and DEFAULT_ON_CREATE not in properties.get(f, {})
    ]
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
    _known_targets(schemas)
    for spec in DOMAINS.values():
        _access_fields(schemas[spec.model.__name__])
    for spec in DOMAINS.values():
        _write_schemas(schemas, spec.model)
    responses: dict[str, Schema] = {}
    for status, (title, text) in ERRORS.items():
        response: Schema = {"description": text}
        if status in ERROR_HEADERS:
            response["headers"] = dict(ERROR_HEADERS[status])
        response["content"] = {JSON: {"schema": ref("Error")}}
        responses[title] = response
    return {
        "schemas": dict(sorted(schemas.items())),
        "responses": responses,
        "securitySchemes": {
            SECURITY_SCHEME: {
                "type": "http",
                "scheme": "bearer",
                "description": (
                    "A hub token (`chitty token create`, or the admin token `chitty up` prints on "
                    "first start) or, when the hub has an OIDC issuer, a user's JWT. Every "
                    "operation but /health needs one. " + SIGNING
                ),
            }
        },
    }


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
    public = template in PUBLIC or template.startswith((WEBHOOKS, STATIC))
    errors = set(op.errors) if public else {*op.errors, *AUTHENTICATED}
    for status in sorted(errors):
        responses[str(status)] = {"$ref": f"#/components/responses/{ERRORS[status][0]}"}
    out: Schema = {
        "operationId": name,
        "tags": [op.tag],
        "summary": op.summary,
        "description": op.description,
    }
    if public:
        out["security"] = []  # no credential: it holds no data
    if params:
        out["parameters"] = params
    if op.body is not None:
        out["requestBody"] = {
            "required": op.body_required,
            "content": {op.body_media: {"schema": ref(op.body)}},
        }
    out["responses"] = responses
    return out


def _websocket(name: str | None) -> Schema:
    return {
        "name": name,
        "description": (
            "Upgrade with GET. Subscribe with domains and filters, send and receive "
            "state_update frames (SyncMessage), get acks carrying the durable offset, "
            "heartbeats, and resume from an offset after a reconnect. The upgrade needs a "
            "credential like every operation: `Authorization: Bearer <token>`, or "
            "`?access_token=<token>` where a browser cannot set headers (401 without one, 429 "
            "over the principal's connection limit). A batch of writes (a JSON array, or "
            "`{type: batch, frames}`) is answered per write, in order; with `X-Chitty-Acks: "
            "batch` (or `?acks=batch`) by one `{type: acks, items}` frame per batch (any other "
            "mode: 400). A bad frame is answered with an `error` "
            "frame and changes nothing; a frame over the size limit closes with 1009, a "
            "credential revoked or expired while open with 1008."
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
    info += (
        " Every operation but /, /health and this document needs `Authorization: Bearer <token>` "
        "(401 otherwise, with "
        "WWW-Authenticate); a write outside the principal's scope is a 403, a read of what it "
        "may not see a 404; over its rate limit a 429 with Retry-After."
    )
    document: dict[str, Any] = {
        "openapi": OPENAPI_VERSION,
        "info": {"title": "ChittyChat Hub", "version": _version(), "description": info},
        "tags": [{"name": t} for t in sorted({op.tag for op in OPERATIONS.values()})],
        "security": [{SECURITY_SCHEME: []}],
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
