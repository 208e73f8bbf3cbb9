"""One definition of every hub tool, from which MCP, the ChatGPT Actions document, Gemini's
function declarations and the OpenAI and Anthropic tool schemas are all generated: adding a tool
here adds it everywhere.

A tool is a name, a description, a pydantic argument model (REST's camelCase names; the
snake_case names MCP took before still accepted for one release) and a handler doing the work
through a `ChittyClient`. That client carries the caller's credential, so the hub's scope checks
apply to a tool exactly as to the REST call it makes. Arguments are validated before anything is
sent, so a bad argument changed nothing.
"""

from __future__ import annotations

import copy
import inspect
import json
import re
import secrets
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Generic, TypeVar

import aiohttp
from google.genai import types as genai
from pydantic import AliasChoices, BaseModel, Field, JsonValue, ValidationError
from pydantic.alias_generators import to_camel

from hub.domains import SyncDomain
from hub.ids import ChittyIdStr, InvalidChittyId, ProjectId, SessionId, TodoId, parse
from hub.models import Breadcrumb, FileReference, Message, Platform, Priority, TodoStatus
from hub.models.todo import TodoContent
from hub.protocol import EntityRef, MessageMetadata, Source, StateDelta, StateUpdate, SyncPayload
from transports.client import (
    ChittyApiError,
    ChittyClient,
    ChittyError,
    ChittyUnreachable,
    Record,
)

Json = dict[str, JsonValue]
A = TypeVar("A", bound=BaseModel)
Handler = Callable[[ChittyClient, A], Awaitable[JsonValue]]

NAME = re.compile(r"^[a-zA-Z0-9_]{1,64}$")
SUMMARY_MAX = 300  # OpenAI's limit on an Actions operation's description
TOOL_USER = "CHITTY-USER-MCP"  # the writer named in the WebSocket messages a tool sends

_DOMAIN_OF_KIND = {
    "TODO": ("todos",),
    "PROJ": ("projects",),
    "SESSION": ("sessions",),
    "REPO": ("repos",),
    "SERVICE": ("services",),
    "CONTEXT": ("contexts", "topics"),
}


class ToolNotFound(LookupError):
    """No tool of that name; the error names the ones there are."""

    def __init__(self, name: str, known: tuple[str, ...]) -> None:
        super().__init__(f"no tool {name!r}: the tools are {', '.join(known)}")
        self.name = name
        self.known = known


class ToolArgumentsError(ValueError):
    """A tool's arguments were refused before anything was sent: the field at fault (None when
    the arguments as a whole are wrong) and why."""

    def __init__(self, field: str | None, detail: str) -> None:
        super().__init__(f"{field}: {detail}" if field else detail)
        self.field = field
        self.detail = detail

    @classmethod
    def of(cls, error: ValidationError) -> ToolArgumentsError:
        """The first thing pydantic refused, named by its wire path (`messages.0.role`)."""
        first = error.errors()[0]
        field = ".".join(str(part) for part in first["loc"]) or None
        return cls(field, str(first["msg"]).removeprefix("Value error, "))


@dataclass(frozen=True)
class Tool(Generic[A]):
    """One hub tool: what every model and protocol is told about it, and what it does."""

    name: str  # the MCP tool name and the Actions operationId
    description: str  # its first paragraph, at most 300 characters, stands alone
    args: type[A]
    handler: Handler[A]
    writes: bool  # changes hub state (x-openai-isConsequential)

    def __post_init__(self) -> None:
        if not NAME.fullmatch(self.name):
            raise ValueError(f"tool name {self.name!r} must match {NAME.pattern}")
        if len(self.summary) > SUMMARY_MAX:
            raise ValueError(f"{self.name}: the description's first paragraph is over 300 chars")

    @property
    def summary(self) -> str:
        """The description's first paragraph on one line (what a short slot shows)."""
        return " ".join(self.description.split("\n\n")[0].split())

    def schema(self) -> Json:
        """The argument model's JSON schema, as MCP lists it."""
        return self.args.model_json_schema(by_alias=True)

    def portable_schema(self) -> Json:
        """The argument schema with every `$ref` inlined and no titles: what any model's tool
        format takes (Gemini and the Actions document take no `$defs`)."""
        return portable(self.schema())


class ToolRegistry:
    """A set of tools: invoke one by name, or describe them all in each target's format."""

    def __init__(self, tools: tuple[Tool[Any], ...]) -> None:
        names = [t.name for t in tools]
        if len(set(names)) != len(names):
            raise ValueError(f"tool names repeat: {names}")
        self.tools = tools
        self._by_name = {t.name: t for t in tools}

    def __iter__(self) -> Iterator[Tool[Any]]:
        return iter(self.tools)

    def with_tools(self, *more: Tool[Any]) -> ToolRegistry:
        """This registry plus `more` (a test, or a deployment with tools of its own)."""
        return ToolRegistry(self.tools + more)

    def named(self, name: str) -> Tool[Any]:
        try:
            return self._by_name[name]
        except KeyError:
            raise ToolNotFound(name, tuple(self._by_name)) from None

    async def invoke(
        self, client: ChittyClient, name: str, arguments: Mapping[str, object]
    ) -> JsonValue:
        """Run a tool as `client`'s credential. Raises ToolNotFound, ToolArgumentsError, or
        what the hub answered (ChittyApiError, ChittyUnreachable)."""
        tool = self.named(name)
        try:
            args = tool.args.model_validate(dict(arguments))
        except ValidationError as error:
            raise ToolArgumentsError.of(error) from None
        return await tool.handler(client, args)

    def openai_tools(self) -> list[Json]:
        """Chat Completions `tools=`: one function tool each."""
        return [
            {
                "type": "function",
                "function": {
                    "name": t.name,
                    "description": t.description,
                    "parameters": t.portable_schema(),
                },
            }
            for t in self.tools
        ]

    def anthropic_tools(self) -> list[Json]:
        """Messages API `tools=`: name, description and input_schema each."""
        return [
            {"name": t.name, "description": t.description, "input_schema": t.portable_schema()}
            for t in self.tools
        ]

    def gemini_declarations(self) -> list[genai.FunctionDeclaration]:
        """google-genai function declarations (`parameters_json_schema`, refs inlined)."""
        return [
            genai.FunctionDeclaration(
                name=t.name, description=t.description, parameters_json_schema=t.portable_schema()
            )
            for t in self.tools
        ]


def portable(schema: Json) -> Json:
    """`schema` with its `$ref`s into `$defs` replaced by their targets and `title`s dropped."""
    defs: Mapping[str, Any] = schema.get("$defs") or {}  # type: ignore[assignment]

    def walk(node: Any) -> Any:
        if isinstance(node, list):
            return [walk(item) for item in node]
        if not isinstance(node, dict):
            return node
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            target = walk(copy.deepcopy(defs[ref.removeprefix("#/$defs/")]))
            return {**target, **walk({k: v for k, v in node.items() if k != "$ref"})}
        out: dict[str, Any] = {}
        for key, value in node.items():
            if key in ("$defs", "title"):
                continue
            if key == "properties" and isinstance(value, dict):
                out[key] = {name: walk(sub) for name, sub in value.items()}
            else:
                out[key] = walk(value)
        return out

    walked: Json = walk(schema)
    return walked


def tool(args: type[A], *, writes: bool) -> Callable[[Handler[A]], Tool[A]]:
    """A Tool named after the decorated handler, described by its docstring."""

    def define(handler: Handler[A]) -> Tool[A]:
        description = inspect.cleandoc(handler.__doc__ or "")
        return Tool(handler.__name__, description, args, handler, writes)

    return define


def deprecated_names(args: type[BaseModel]) -> list[tuple[str, str]]:
    """(new, old) for every argument still taken under its old snake_case name."""
    pairs = []
    for field in args.model_fields.values():
        alias = field.validation_alias
        if isinstance(alias, AliasChoices) and len(alias.choices) > 1:
            new, old = alias.choices[0], alias.choices[1]
            pairs.append((str(new), str(old)))
    return pairs


def readable(error: ChittyError | ToolArgumentsError) -> str:
    """One sentence a model can act on, from a refusal or an unreachable hub."""
    if isinstance(error, ChittyApiError):
        where = f" (field {error.field})" if error.field else ""
        return f"hub refused ({error.status} {error.error}): {error.detail}{where}"
    if isinstance(error, ChittyUnreachable):
        return f"{error}. Is the hub running (`chitty up`)?"
    return str(error)


# -- argument types shared by the tools -------------------------------------------------------


def named(snake: str) -> Any:
    """An argument called by its REST name (camelCase), its old snake_case name still taken."""
    return Field(validation_alias=AliasChoices(to_camel(snake), snake))


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
Limit = Annotated[int, Field(ge=1, le=500, description="At most this many items.")]


def _record(record: Record) -> Json:
    """A hub record as tool output: entity, vector clock, seq, open conflicts."""
    return record.model_dump(mode="json", by_alias=True)


# -- hub operations more than one REST call away ----------------------------------------------


def domains_of(entity_id: str) -> tuple[str, ...]:
    """The domain(s) a ChittyID can name an entity in (CONTEXT ids: contexts or topics)."""
    kind = parse(entity_id).kind.value
    if kind not in _DOMAIN_OF_KIND:
        raise ValueError(f"a {kind} id names no entity with state")
    return _DOMAIN_OF_KIND[kind]


async def entity(client: ChittyClient, entity_id: str, at: datetime | None = None) -> Json:
    """An entity by ChittyID (now, or as it was at `at`), searching its possible domains."""
    try:
        domains = domains_of(entity_id)
    except (InvalidChittyId, ValueError) as error:
        raise ToolArgumentsError("entityId", str(error)) from None
    for index, domain in enumerate(domains):
        try:
            if at is None:
                record = await client.get(domain, entity_id)
            else:
                record = await client.state_at(domain, entity_id, at)
        except ChittyApiError as error:
            if error.status != 404 or index == len(domains) - 1:
                raise
            continue
        return {"domain": domain, **record.model_dump(mode="json", by_alias=True)}
    raise AssertionError("unreachable")


async def session(client: ChittyClient, session_id: str) -> Json:
    """A session's wire entity."""
    return (await client.get("sessions", session_id)).entity


def open_todos(session: Json) -> list[Json]:
    """The todos a session lists that are not completed."""
    todos: list[Json] = session.get("todos") or []  # type: ignore[assignment]
    return [t for t in todos if t.get("status") != TodoStatus.COMPLETED]


async def append_context(
    client: ChittyClient, session_id: str, added: dict[str, list[JsonValue]]
) -> int:
    """Add items to a session's context lists, add-wins; the session's seq after it.

    A REST PUT of a list replaces what the writer had seen, so a concurrent append from
    another tool could be lost; a delta `add` over the WebSocket never removes anything.
    """
    update = StateUpdate(
        id=f"mcp-{secrets.token_hex(8)}",
        source=Source(node_id=client.node_id, platform="claude-code", chitty_id=TOOL_USER),
        metadata=MessageMetadata(timestamp=datetime.now(UTC), vector_clock={}),
        payload=SyncPayload(
            domain=SyncDomain.SESSIONS,
            operation="update",
            entity=EntityRef(chitty_id=session_id, type="session"),
            delta=StateDelta(add={f"context.{k}": v for k, v in added.items()}),
        ),
    )
    url = client.base_url.replace("http", "ws", 1) + "/ws"
    try:
        socket = await client.session.ws_connect(url, headers=client.auth_headers())
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
                field = frame.get("field")
                raise ChittyApiError(
                    int(frame.get("status") or 400),
                    str(frame.get("error") or "error"),
                    str(frame.get("detail") or ""),
                    field if isinstance(field, str) else None,
                )


# -- todos ------------------------------------------------------------------------------------


class CreateTodoArgs(BaseModel):
    content: TodoContent
    session_id: SessionArg
    project_id: ProjectArg = None
    active_form: ActiveForm = None
    status: TodoStatus = TodoStatus.PENDING
    priority: Priority = Priority.MEDIUM
    dependencies: list[TodoId] | None = None
    assignees: list[ChittyIdStr] | None = None
    deadline: datetime | None = None


@tool(CreateTodoArgs, writes=True)
async def create_todo(client: ChittyClient, args: CreateTodoArgs) -> Json:
    """Create a todo in a session (it takes the session's project); the hub gives it a
    CHITTY-TODO id and every subscriber of its stream receives it."""
    fields: Json = {
        "content": args.content,
        "sessionId": args.session_id,
        "activeForm": args.active_form or "",
        "status": args.status.value,
        "metadata": {"priority": args.priority.value},
        "dependencies": list(args.dependencies or []),
        "assignees": list(args.assignees or []),
    }
    if args.project_id is not None:
        fields["projectId"] = args.project_id
    if args.deadline is not None:
        fields["deadline"] = args.deadline.isoformat()
    return _record(await client.create("todos", fields))


class ListTodosArgs(BaseModel):
    project_id: ProjectArg = None
    session_id: Annotated[
        SessionId | None, named("session_id"), Field(description="Only this session's.")
    ] = None
    status: TodoStatus | None = None
    limit: Limit = 50
    cursor: str | None = None


@tool(ListTodosArgs, writes=False)
async def list_todos(client: ChittyClient, args: ListTodosArgs) -> Json:
    """List todos, filtered by project, session or status; pass `cursor` for the next page."""
    page = await client.list(
        "todos",
        project_id=args.project_id,
        session_id=args.session_id,
        status=args.status.value if args.status else None,
        limit=args.limit,
        cursor=args.cursor,
    )
    return {"todos": [r.entity for r in page.items], "cursor": page.cursor}


class UpdateTodoArgs(BaseModel):
    todo_id: Annotated[TodoId, named("todo_id"), Field(description="The CHITTY-TODO id.")]
    content: TodoContent | None = None
    active_form: ActiveForm = None
    status: TodoStatus | None = None
    priority: Priority | None = None
    dependencies: list[TodoId] | None = None
    assignees: list[ChittyIdStr] | None = None
    deadline: datetime | None = None


@tool(UpdateTodoArgs, writes=True)
async def update_todo(client: ChittyClient, args: UpdateTodoArgs) -> Json:
    """Change some fields of a todo (only those given); concurrent edits may open conflicts."""
    fields: Json = {}
    if args.content is not None:
        fields["content"] = args.content
    if args.active_form is not None:
        fields["activeForm"] = args.active_form
    if args.status is not None:
        fields["status"] = args.status.value
    if args.priority is not None:
        fields["metadata"] = {"priority": args.priority.value}
    if args.dependencies is not None:
        fields["dependencies"] = list(args.dependencies)
    if args.assignees is not None:
        fields["assignees"] = list(args.assignees)
    if args.deadline is not None:
        fields["deadline"] = args.deadline.isoformat()
    if not fields:
        raise ToolArgumentsError(None, "nothing to update: give at least one field")
    return _record(await client.update("todos", args.todo_id, fields))


class ReconcileTodosArgs(BaseModel):
    project_id: Annotated[
        ProjectId, named("project_id"), Field(description="The project's CHITTY-PROJ id.")
    ]
    dry_run: DryRunArg = False


@tool(ReconcileTodosArgs, writes=True)
async def reconcile_todos(client: ChittyClient, args: ReconcileTodosArgs) -> Json:
    """Reconcile a project's todos (duplicates merge, the most advanced status wins, every
    session lists the same todos) and write the result back; dryRun only says what would
    be written. Returns the mesh and each write."""
    return await client.reconcile(args.project_id, dry_run=args.dry_run)


# -- sessions ---------------------------------------------------------------------------------


class StartSessionArgs(BaseModel):
    platform: Platform = Platform.CLAUDE_CODE
    platform_session_id: Annotated[
        str | None,
        named("platform_session_id"),
        Field(
            min_length=1,
            max_length=500,
            description="The platform's own session id (e.g. Claude Code's); default: "
            "the new session's CHITTY-SESSION id. Sent to REST as the session's sessionId.",
        ),
    ] = None
    project_id: ProjectArg = None


@tool(StartSessionArgs, writes=True)
async def start_session(client: ChittyClient, args: StartSessionArgs) -> Json:
    """Start a session (a unit of work on one platform) and return it with its CHITTY id
    (its chittyId: the sessionId every other tool takes)."""
    fields: Json = {"platform": args.platform.value}
    if args.platform_session_id is not None:
        fields["sessionId"] = args.platform_session_id
    if args.project_id is not None:
        fields["projectId"] = args.project_id
    return _record(await client.create("sessions", fields))


class SessionArgs(BaseModel):
    session_id: SessionArg


@tool(SessionArgs, writes=True)
async def resume_session(client: ChittyClient, args: SessionArgs) -> Json:
    """Mark a paused or crashed session active again; returns it with its context."""
    return _record(await client.update("sessions", args.session_id, {"status": "active"}))


@tool(SessionArgs, writes=True)
async def end_session(client: ChittyClient, args: SessionArgs) -> Json:
    """End a session (it cannot be resumed afterwards)."""
    return _record(await client.update("sessions", args.session_id, {"status": "ended"}))


@tool(SessionArgs, writes=False)
async def get_session_context(client: ChittyClient, args: SessionArgs) -> Json:
    """A session's context: messages, files, free-form state and breadcrumbs."""
    found = await session(client, args.session_id)
    return {"sessionId": args.session_id, "context": found.get("context") or {}}


class AppendSessionContextArgs(BaseModel):
    session_id: SessionArg
    messages: list[Message] | None = None
    files: list[FileReference] | None = None
    crumbs: list[Breadcrumb] | None = None


@tool(AppendSessionContextArgs, writes=True)
async def append_session_context(client: ChittyClient, args: AppendSessionContextArgs) -> Json:
    """Append messages, file references and/or breadcrumbs to a session's context."""
    added: dict[str, list[JsonValue]] = {
        "messages": [m.model_dump(mode="json") for m in args.messages or []],
        "files": [f.model_dump(mode="json") for f in args.files or []],
        "crumbs": [c.model_dump(mode="json") for c in args.crumbs or []],
    }
    added = {k: v for k, v in added.items() if v}
    if not added:
        raise ToolArgumentsError(None, "nothing to append: give messages, files or crumbs")
    seq = await append_context(client, args.session_id, added)
    found = await session(client, args.session_id)
    return {"sessionId": args.session_id, "context": found.get("context") or {}, "seq": seq}


class CurrentContextArgs(BaseModel):
    session_id: Annotated[
        SessionId | None,
        named("session_id"),
        Field(description="This session's hand-over; default: your most recently active one."),
    ] = None


@tool(CurrentContextArgs, writes=False)
async def current_context(client: ChittyClient, args: CurrentContextArgs) -> Json:
    """Your current context, handed over from where you last worked (any platform or model):
    summary, key points, last messages, files, open todos, and the whole as one text."""
    return await client.current_context(args.session_id)


# -- conflicts, time, sync --------------------------------------------------------------------


class ListConflictsArgs(BaseModel):
    domain: SyncDomain | None = None


@tool(ListConflictsArgs, writes=False)
async def list_conflicts(client: ChittyClient, args: ListConflictsArgs) -> Json:
    """Open conflicts (concurrent edits the hub could not merge), of one domain or all."""
    found = await client.conflicts(args.domain.value if args.domain else None)
    return {"conflicts": list(found)}


class ResolveConflictArgs(BaseModel):
    conflict_id: Annotated[
        str, named("conflict_id"), Field(pattern=r"^CHITTY-CONFLICT-[0-9A-Za-z]+$")
    ]
    value: JsonValue


@tool(ResolveConflictArgs, writes=True)
async def resolve_conflict(client: ChittyClient, args: ResolveConflictArgs) -> Json:
    """Settle a conflict on `value` (one of the competing values, or a new one)."""
    return _record(await client.resolve(args.conflict_id, args.value))


class EntityStateAtArgs(BaseModel):
    entity_id: Annotated[ChittyIdStr, named("entity_id"), Field(description="Any ChittyID.")]
    at: Annotated[datetime | None, Field(description="ISO-8601 time; omit for now.")] = None


@tool(EntityStateAtArgs, writes=False)
async def entity_state_at(client: ChittyClient, args: EntityStateAtArgs) -> Json:
    """An entity by ChittyID as it is now, or as it was at a past time."""
    return await entity(client, args.entity_id, args.at)


class SyncDomainArgs(BaseModel):
    domain: SyncDomain | None = None
    platforms: Targets | None = None
    channels: Targets | None = None
    models: Targets | None = None
    project_id: ProjectArg = None
    session_id: Annotated[
        SessionId | None, named("session_id"), Field(description="Only this session.")
    ] = None
    dry_run: DryRunArg = False


@tool(SyncDomainArgs, writes=True)
async def sync_domain(client: ChittyClient, args: SyncDomainArgs) -> Json:
    """Report per platform, channel and model whether a domain (omit for all) reaches it:
    live only while a subscriber of it is connected; no channel or model adapter runs yet."""
    return await client.sync(
        args.domain.value if args.domain else "all",
        platforms=args.platforms or (),
        channels=args.channels or (),
        models=args.models or (),
        project_id=args.project_id,
        session_id=args.session_id,
        dry_run=args.dry_run,
    )


TOOLS = ToolRegistry(
    (
        create_todo,
        list_todos,
        update_todo,
        reconcile_todos,
        start_session,
        resume_session,
        end_session,
        get_session_context,
        append_session_context,
        current_context,
        list_conflicts,
        resolve_conflict,
        entity_state_at,
        sync_domain,
    )
)
