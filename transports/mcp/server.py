"""The hub as an MCP server: Claude (Desktop, Code) reads and writes todos, sessions and context.

Every tool and resource talks to a running hub through `ChittyClient`; arguments are checked by
the hub's own pydantic types before anything is sent, so a bad argument is an MCP tool error
that changed nothing, and a hub refusal arrives as a tool error carrying the hub's sentence.
"""

from __future__ import annotations

import inspect
import json
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Annotated, Any, TypeVar

import aiohttp
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ResourceError, ToolError
from pydantic import AliasChoices, Field, JsonValue
from pydantic.alias_generators import to_camel

from hub.domains import SyncDomain
from hub.ids import ChittyIdStr, InvalidChittyId, ProjectId, SessionId, TodoId, parse
from hub.models import Breadcrumb, FileReference, Message, Platform, Priority, TodoStatus
from hub.models.todo import TodoContent
from hub.protocol import (
    EntityRef,
    MessageMetadata,
    Source,
    StateDelta,
    StateUpdate,
    SyncPayload,
)
from transports.client import (
    ChittyApiError,
    ChittyClient,
    ChittyError,
    ChittyUnreachable,
    Record,
)

Json = dict[str, Any]
T = TypeVar("T")

MCP_USER = "CHITTY-USER-MCP"  # the writer named in WebSocket messages sent for Claude
INSTRUCTIONS = (
    "ChittyChat Hub keeps projects, sessions, todos and their context in one place for Claude, "
    "the CLI and any client subscribed to its WebSocket stream (no Slack, email or other "
    "channel adapter runs yet: a sync to one reports not_connected). Start (or resume) a "
    "session in a project, create todos in it, append what you read and said to its context so "
    "the next tool can pick the work up, and reconcile the project's todos when parallel "
    "sessions made duplicates."
)

_DOMAIN_OF_KIND = {
    "TODO": ("todos",),
    "PROJ": ("projects",),
    "SESSION": ("sessions",),
    "REPO": ("repos",),
    "SERVICE": ("services",),
    "CONTEXT": ("contexts", "topics"),
}

Limit = Annotated[int, Field(ge=1, le=500, description="At most this many items.")]
F = TypeVar("F", bound=Callable[..., Awaitable[Any]])


def named(snake: str) -> Any:
    """An argument called by its REST name (camelCase), its old snake_case name still taken."""
    return Field(validation_alias=AliasChoices(to_camel(snake), snake))


def deprecation_note(function: Callable[..., Any]) -> str:
    """What a tool's description says about the snake_case names it still accepts."""
    old = [name for name in inspect.signature(function).parameters if "_" in name]
    if not old:
        return ""
    pairs = ", ".join(f"{to_camel(name)} (was {name})" for name in old)
    return (
        f"\n\nArguments are named as in the REST API: {pairs}. The snake_case names are "
        "deprecated: still accepted in this release, removed in the next."
    )


def tool(server: MCPServer) -> Callable[[F], F]:
    """`server.tool()`, its description noting the deprecated argument names."""

    def register(function: F) -> F:
        description = (inspect.getdoc(function) or "") + deprecation_note(function)
        return server.tool(description=description)(function)

    return register


SessionArg = Annotated[
    SessionId, named("session_id"), Field(description="The session's CHITTY-SESSION id.")
]
ProjectArg = Annotated[
    ProjectId | None, named("project_id"), Field(description="The project's CHITTY-PROJ id.")
]
ActiveForm = Annotated[
    str | None,
    named("active_form"),
    Field(max_length=10_000, description="The present-continuous label (Writing the docs)."),
]
DryRunArg = Annotated[
    bool, named("dry_run"), Field(description="Only say what would be written; write nothing.")
]
Targets = Annotated[list[str], Field(description="Target names, e.g. web, slack, chatgpt.")]


def _readable(error: ChittyError) -> str:
    """One sentence a model can act on, from a hub refusal or an unreachable hub."""
    if isinstance(error, ChittyApiError):
        where = f" (field {error.field})" if error.field else ""
        return f"hub refused ({error.status} {error.error}): {error.detail}{where}"
    if isinstance(error, ChittyUnreachable):
        return f"{error}. Is the hub running (`chitty up`)?"
    return str(error)


async def _tool_call(work: Awaitable[T]) -> T:
    """Await a hub call; its failures become MCP tool errors (is_error results)."""
    try:
        return await work
    except ChittyError as error:
        raise ToolError(_readable(error)) from None


async def _resource_call(work: Awaitable[T]) -> T:
    """Await a hub call; its failures become MCP resource errors with the hub's sentence."""
    try:
        return await work
    except ChittyError as error:
        raise ResourceError(_readable(error)) from None


def _domains_of(entity_id: str) -> tuple[str, ...]:
    """The domain(s) a ChittyID can name an entity in (CONTEXT ids: contexts or topics)."""
    try:
        kind = parse(entity_id).kind.value
    except InvalidChittyId as error:
        raise ToolError(str(error)) from None
    if kind not in _DOMAIN_OF_KIND:
        raise ToolError(f"a {kind} id names no entity with state")
    return _DOMAIN_OF_KIND[kind]


class HubTools:
    """The hub operations MCP exposes, each a thin typed call through one `ChittyClient`."""

    def __init__(self, client: ChittyClient) -> None:
        self.client = client

    async def entity(self, entity_id: str, at: datetime | None = None) -> Json:
        """An entity by ChittyID (now, or as it was at `at`), searching its possible domains."""
        domains = _domains_of(entity_id)
        for index, domain in enumerate(domains):
            try:
                if at is None:
                    record = await self.client.get(domain, entity_id)
                else:
                    record = await self.client.state_at(domain, entity_id, at)
            except ChittyApiError as error:
                if error.status != 404 or index == len(domains) - 1:
                    raise
                continue
            return {"domain": domain, **record.model_dump(mode="json", by_alias=True)}
        raise AssertionError("unreachable")

    async def session(self, session_id: str) -> Json:
        """A session's wire entity."""
        return (await self.client.get("sessions", session_id)).entity

    async def append_context(self, session_id: str, added: dict[str, list[JsonValue]]) -> int:
        """Add items to a session's context lists, add-wins; the session's seq after it.

        A REST PUT of a list replaces what the writer had seen, so a concurrent append from
        another tool could be lost; a delta `add` over the WebSocket never removes anything.
        """
        update = StateUpdate(
            id=f"mcp-{secrets.token_hex(8)}",
            source=Source(node_id=self.client.node_id, platform="claude-code", chitty_id=MCP_USER),
            metadata=MessageMetadata(timestamp=datetime.now(UTC), vector_clock={}),
            payload=SyncPayload(
                domain=SyncDomain.SESSIONS,
                operation="update",
                entity=EntityRef(chitty_id=session_id, type="session"),
                delta=StateDelta(add={f"context.{k}": v for k, v in added.items()}),
            ),
        )
        url = self.client.base_url.replace("http", "ws", 1) + "/ws"
        try:
            socket = await self.client.session.ws_connect(url, headers=self.client.auth_headers())
        except (aiohttp.ClientError, OSError) as error:
            raise ChittyUnreachable(f"no hub answers at {url}: {error}") from None
        async with socket:
            await socket.send_str(update.model_dump_json())
            while True:
                received = await socket.receive(timeout=30)
                if received.type is not aiohttp.WSMsgType.TEXT:
                    raise ChittyUnreachable(f"the hub closed the stream ({received.type.name})")
                frame = json.loads(received.data)
                if frame.get("type") == "ack" and frame.get("id") == update.id:
                    return int(frame["seq"])
                if frame.get("type") == "error":
                    status = int(frame.get("status") or 400)
                    field = frame.get("field")
                    raise ChittyApiError(
                        status,
                        str(frame.get("error") or "error"),
                        str(frame.get("detail") or ""),
                        field if isinstance(field, str) else None,
                    )

    async def mesh(self, project_id: str) -> Json:
        """A project's reconciled todo mesh (read only)."""
        return await self.client.mesh(project_id)

    @staticmethod
    def open_todos(session: Json) -> list[Json]:
        """The todos a session lists that are not completed."""
        todos: list[Json] = session.get("todos") or []
        return [t for t in todos if t.get("status") != TodoStatus.COMPLETED]


def _record(record: Record) -> Json:
    """A hub record as tool output: entity, vector clock, seq, open conflicts."""
    return record.model_dump(mode="json", by_alias=True)


def _summary(session: Json, todos: list[Json], last: int = 10) -> str:
    """A compact resume note: what the session is, its last messages, files and open todos."""
    context = session.get("context") or {}
    lines = [
        f"Session {session.get('chittyId')} on {session.get('platform')} "
        f"({session.get('status')}), project {session.get('projectId') or 'none'}.",
    ]
    messages = (context.get("messages") or [])[-last:]
    if messages:
        lines.append(f"Last {len(messages)} message(s):")
        lines += [f"- {m.get('role')}: {str(m.get('content'))[:300]}" for m in messages]
    files = context.get("files") or []
    if files:
        lines.append("Files: " + ", ".join(str(f.get("path")) for f in files[-20:]))
    crumbs = context.get("crumbs") or []
    if crumbs:
        lines.append("Trail: " + " > ".join(str(c.get("label")) for c in crumbs[-10:]))
    if todos:
        lines.append(f"Open todos ({len(todos)}):")
        lines += [f"- [{t.get('status')}] {t.get('content')} ({t.get('chittyId')})" for t in todos]
    else:
        lines.append("No open todos.")
    lines.append("Continue from here; append new messages, files and crumbs to this session.")
    return "\n".join(lines)


def build_server(client: ChittyClient) -> MCPServer:
    """An MCP server whose tools, resources and prompt all go through `client`."""
    hub = HubTools(client)
    server: MCPServer = MCPServer("chittychat", instructions=INSTRUCTIONS, version="0.1.0")

    # -- todos -------------------------------------------------------------------------------

    @tool(server)
    async def create_todo(
        content: TodoContent,
        session_id: SessionArg,
        project_id: ProjectArg = None,
        active_form: ActiveForm = None,
        status: TodoStatus = TodoStatus.PENDING,
        priority: Priority = Priority.MEDIUM,
        dependencies: list[TodoId] | None = None,
        assignees: list[ChittyIdStr] | None = None,
        deadline: datetime | None = None,
    ) -> Json:
        """Create a todo in a session (it takes the session's project); the hub gives it a
        CHITTY-TODO id and every subscriber of its stream receives it."""
        fields: Json = {
            "content": content,
            "sessionId": session_id,
            "activeForm": active_form or "",
            "status": status.value,
            "metadata": {"priority": priority.value},
            "dependencies": dependencies or [],
            "assignees": assignees or [],
        }
        if project_id is not None:
            fields["projectId"] = project_id
        if deadline is not None:
            fields["deadline"] = deadline.isoformat()
        return _record(await _tool_call(client.create("todos", fields)))

    @tool(server)
    async def list_todos(
        project_id: ProjectArg = None,
        session_id: Annotated[
            SessionId | None, named("session_id"), Field(description="Only this session's.")
        ] = None,
        status: TodoStatus | None = None,
        limit: Limit = 50,
        cursor: str | None = None,
    ) -> Json:
        """List todos, filtered by project, session or status; pass `cursor` for the next page."""
        page = await _tool_call(
            client.list(
                "todos",
                project_id=project_id,
                session_id=session_id,
                status=status.value if status else None,
                limit=limit,
                cursor=cursor,
            )
        )
        return {"todos": [r.entity for r in page.items], "cursor": page.cursor}

    @tool(server)
    async def update_todo(
        todo_id: Annotated[TodoId, named("todo_id"), Field(description="The CHITTY-TODO id.")],
        content: TodoContent | None = None,
        active_form: ActiveForm = None,
        status: TodoStatus | None = None,
        priority: Priority | None = None,
        dependencies: list[TodoId] | None = None,
        assignees: list[ChittyIdStr] | None = None,
        deadline: datetime | None = None,
    ) -> Json:
        """Change some fields of a todo (only those given); concurrent edits may open conflicts."""
        fields: Json = {}
        if content is not None:
            fields["content"] = content
        if active_form is not None:
            fields["activeForm"] = active_form
        if status is not None:
            fields["status"] = status.value
        if priority is not None:
            fields["metadata"] = {"priority": priority.value}
        if dependencies is not None:
            fields["dependencies"] = dependencies
        if assignees is not None:
            fields["assignees"] = assignees
        if deadline is not None:
            fields["deadline"] = deadline.isoformat()
        if not fields:
            raise ToolError("nothing to update: give at least one field")
        return _record(await _tool_call(client.update("todos", todo_id, fields)))

    @tool(server)
    async def reconcile_todos(
        project_id: Annotated[
            ProjectId, named("project_id"), Field(description="The project's CHITTY-PROJ id.")
        ],
        dry_run: DryRunArg = False,
    ) -> Json:
        """Reconcile a project's todos (duplicates merge, the most advanced status wins, every
        session lists the same todos) and write the result back; dryRun only says what would
        be written. Returns the mesh and each write."""
        return await _tool_call(client.reconcile(project_id, dry_run=dry_run))

    # -- sessions ----------------------------------------------------------------------------

    @tool(server)
    async def start_session(
        platform: Platform = Platform.CLAUDE_CODE,
        platform_session_id: Annotated[
            str | None,
            named("platform_session_id"),
            Field(
                min_length=1,
                max_length=500,
                description="The platform's own session id (e.g. Claude Code's); default: "
                "the new session's CHITTY-SESSION id. Sent to REST as the session's sessionId.",
            ),
        ] = None,
        project_id: ProjectArg = None,
    ) -> Json:
        """Start a session (a unit of work on one platform) and return it with its CHITTY id
        (its chittyId: the sessionId every other tool takes)."""
        fields: Json = {"platform": platform.value}
        if platform_session_id is not None:
            fields["sessionId"] = platform_session_id
        if project_id is not None:
            fields["projectId"] = project_id
        return _record(await _tool_call(client.create("sessions", fields)))

    @tool(server)
    async def resume_session(session_id: SessionArg) -> Json:
        """Mark a paused or crashed session active again; returns it with its context."""
        return _record(
            await _tool_call(client.update("sessions", session_id, {"status": "active"}))
        )

    @tool(server)
    async def end_session(session_id: SessionArg) -> Json:
        """End a session (it cannot be resumed afterwards)."""
        return _record(await _tool_call(client.update("sessions", session_id, {"status": "ended"})))

    @tool(server)
    async def get_session_context(session_id: SessionArg) -> Json:
        """A session's context: messages, files, free-form state and breadcrumbs."""
        session = await _tool_call(hub.session(session_id))
        return {"sessionId": session_id, "context": session.get("context") or {}}

    @tool(server)
    async def append_session_context(
        session_id: SessionArg,
        messages: list[Message] | None = None,
        files: list[FileReference] | None = None,
        crumbs: list[Breadcrumb] | None = None,
    ) -> Json:
        """Append messages, file references and/or breadcrumbs to a session's context."""
        added: dict[str, list[JsonValue]] = {
            "messages": [m.model_dump(mode="json") for m in messages or []],
            "files": [f.model_dump(mode="json") for f in files or []],
            "crumbs": [c.model_dump(mode="json") for c in crumbs or []],
        }
        added = {k: v for k, v in added.items() if v}
        if not added:
            raise ToolError("nothing to append: give messages, files or crumbs")
        seq = await _tool_call(hub.append_context(session_id, added))
        session = await _tool_call(hub.session(session_id))
        return {"sessionId": session_id, "context": session.get("context") or {}, "seq": seq}

    # -- conflicts, time, sync ---------------------------------------------------------------

    @tool(server)
    async def list_conflicts(domain: SyncDomain | None = None) -> Json:
        """Open conflicts (concurrent edits the hub could not merge), of one domain or all."""
        found = await _tool_call(client.conflicts(domain.value if domain else None))
        return {"conflicts": list(found)}

    @tool(server)
    async def resolve_conflict(
        conflict_id: Annotated[
            str, named("conflict_id"), Field(pattern=r"^CHITTY-CONFLICT-[0-9A-Za-z]+$")
        ],
        value: JsonValue,
    ) -> Json:
        """Settle a conflict on `value` (one of the competing values, or a new one)."""
        return _record(await _tool_call(client.resolve(conflict_id, value)))

    @tool(server)
    async def entity_state_at(
        entity_id: Annotated[ChittyIdStr, named("entity_id"), Field(description="Any ChittyID.")],
        at: Annotated[datetime | None, Field(description="ISO-8601 time; omit for now.")] = None,
    ) -> Json:
        """An entity by ChittyID as it is now, or as it was at a past time."""
        return await _tool_call(hub.entity(entity_id, at))

    @tool(server)
    async def sync_domain(
        domain: SyncDomain | None = None,
        platforms: Targets | None = None,
        channels: Targets | None = None,
        models: Targets | None = None,
        project_id: ProjectArg = None,
        session_id: Annotated[
            SessionId | None, named("session_id"), Field(description="Only this session.")
        ] = None,
        dry_run: DryRunArg = False,
    ) -> Json:
        """Report per platform, channel and model whether a domain (omit for all) reaches it:
        live only while a subscriber of it is connected; no channel or model adapter runs yet."""
        return await _tool_call(
            client.sync(
                domain.value if domain else "all",
                platforms=platforms or (),
                channels=channels or (),
                models=models or (),
                project_id=project_id,
                session_id=session_id,
                dry_run=dry_run,
            )
        )

    # -- resources ---------------------------------------------------------------------------

    @server.resource(
        "chitty://sessions/{sessionId}/context",
        name="session_context",
        mime_type="application/json",
    )
    async def session_context(sessionId: str) -> Json:
        """A session's context: messages, files, state and breadcrumbs."""
        session = await _resource_call(hub.session(_checked(sessionId, "SESSION")))
        return {"sessionId": sessionId, "context": session.get("context") or {}}

    @server.resource(
        "chitty://projects/{projectId}/todos", name="todo_mesh", mime_type="application/json"
    )
    async def todo_mesh(projectId: str) -> Json:
        """A project's todo mesh: deduplicated todos, dependency edges and order."""
        return await _resource_call(hub.mesh(_checked(projectId, "PROJ")))

    @server.resource("chitty://entities/{chittyId}", name="entity", mime_type="application/json")
    async def entity(chittyId: str) -> Json:
        """Any entity by ChittyID, with its vector clock and open conflicts."""
        try:
            return await _resource_call(hub.entity(chittyId))
        except ToolError as error:
            raise ResourceError(str(error)) from None

    # -- prompts -----------------------------------------------------------------------------

    @server.prompt(name="resume_session")
    async def resume_session_prompt(
        sessionId: Annotated[
            str | None, Field(description="The session's CHITTY-SESSION id.")
        ] = None,
        session_id: Annotated[
            str | None,
            Field(description="Deprecated: sessionId (accepted until the next release)."),
        ] = None,
    ) -> str:
        """Resume a session: a compact summary of its context and open todos."""
        wanted = sessionId or session_id
        if wanted is None:
            raise ValueError("give sessionId: the session's CHITTY-SESSION id")
        session = await _resource_call(hub.session(_checked(wanted, "SESSION")))
        return _summary(session, hub.open_todos(session))

    return server


def _checked(entity_id: str, kind: str) -> str:
    """`entity_id` if it is a ChittyID of `kind`, else a resource error saying why."""
    try:
        parse(entity_id)
    except InvalidChittyId as error:
        raise ResourceError(str(error)) from None
    if not entity_id.startswith(f"CHITTY-{kind}-"):
        raise ResourceError(f"{entity_id!r} is not a CHITTY-{kind} id")
    return entity_id


@asynccontextmanager
async def hub_client(hub_url: str, token: str | None = None) -> AsyncIterator[ChittyClient]:
    """A client whose writes are marked as coming from Claude over MCP."""
    async with ChittyClient(hub_url, node_id="mcp", platform="claude-code", token=token) as client:
        yield client


async def serve_stdio(hub_url: str, token: str | None = None) -> None:
    """Serve MCP on stdin/stdout until the client hangs up; `token` is the hub credential."""
    async with hub_client(hub_url, token) as client:
        await build_server(client).run_stdio_async()
