"""The hub as an MCP server: Claude (Desktop, Code) reads and writes todos, sessions and context.

Its tools are the hub's tool registry (`transports/tools.py`), each listed with its argument
model's JSON schema; resources and prompts are defined here. Every call goes through one
`ChittyClient`; a bad argument is an MCP tool error that changed nothing, and a hub refusal
arrives as a tool error carrying the hub's sentence.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from typing import Annotated, Any, TypeVar

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ResourceError, ToolError
from mcp.server.mcpserver.tools import Tool as McpTool
from mcp.server.mcpserver.utilities.func_metadata import ArgModelBase, FuncMetadata
from mcp_types import ToolAnnotations
from pydantic import BaseModel, Field

from hub.ids import InvalidChittyId, parse
from transports import tools as hub
from transports.client import ChittyClient, ChittyError
from transports.tools import TOOLS, Tool, ToolArgumentsError, ToolRegistry, readable

Json = dict[str, Any]
T = TypeVar("T")

INSTRUCTIONS = (
    "ChittyChat Hub keeps projects, sessions, todos and their context in one place for Claude, "
    "the CLI and any client subscribed to its WebSocket stream (no Slack, email or other "
    "channel adapter runs yet: a sync to one reports not_connected). Start (or resume) a "
    "session in a project, create todos in it, append what you read and said to its context so "
    "the next tool can pick the work up, and reconcile the project's todos when parallel "
    "sessions made duplicates. Work begun elsewhere (another platform or model) is handed over "
    "by the current_context tool, resource and the continue_from_handover prompt."
)


def deprecation_note(tool: Tool[Any]) -> str:
    """What a tool's MCP description says about the snake_case names it still accepts."""
    old = hub.deprecated_names(tool.args)
    if not old:
        return ""
    pairs = ", ".join(f"{new} (was {was})" for new, was in old)
    return (
        f"\n\nArguments are named as in the REST API: {pairs}. The snake_case names are "
        "deprecated: still accepted in this release, removed in the next."
    )


def mcp_tool(tool: Tool[Any], client: ChittyClient) -> McpTool:
    """`tool` as the SDK's tool: its input schema is the argument model's, and the SDK
    validates with that model and hands the validated value to the handler."""

    class Arguments(tool.args, ArgModelBase):  # type: ignore[name-defined,misc]
        def model_dump_one_level(self) -> dict[str, Any]:
            return {"arguments": self}

    Arguments.__name__ = Arguments.__qualname__ = f"{tool.name}Arguments"

    async def run(arguments: BaseModel) -> Json:
        try:
            return await tool.handler(client, arguments)  # type: ignore[return-value]
        except (ChittyError, ToolArgumentsError) as error:
            raise ToolError(readable(error)) from None

    return McpTool(
        fn=run,
        name=tool.name,
        description=tool.description + deprecation_note(tool),
        parameters=tool.schema(),
        fn_metadata=FuncMetadata(arg_model=Arguments, output_model=dict[str, Any]),
        is_async=True,
        annotations=ToolAnnotations(read_only_hint=not tool.writes),
    )


async def _resource_call(work: Awaitable[T]) -> T:
    """Await a hub call; its failures become MCP resource errors with the hub's sentence."""
    try:
        return await work
    except (ChittyError, ToolArgumentsError) as error:
        raise ResourceError(readable(error)) from None


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


def build_server(client: ChittyClient, registry: ToolRegistry = TOOLS) -> MCPServer:
    """An MCP server serving `registry`'s tools, and resources and prompts, all through `client`."""
    server: MCPServer = MCPServer(
        "chittychat",
        instructions=INSTRUCTIONS,
        version="0.1.0",
        tools=[mcp_tool(t, client) for t in registry],
    )

    # -- resources ---------------------------------------------------------------------------

    @server.resource(
        "chitty://sessions/{sessionId}/context",
        name="session_context",
        mime_type="application/json",
    )
    async def session_context(sessionId: str) -> Json:
        """A session's context: messages, files, state and breadcrumbs."""
        session = await _resource_call(hub.session(client, _checked(sessionId, "SESSION")))
        return {"sessionId": sessionId, "context": session.get("context") or {}}

    @server.resource(
        "chitty://projects/{projectId}/todos", name="todo_mesh", mime_type="application/json"
    )
    async def todo_mesh(projectId: str) -> Json:
        """A project's todo mesh: deduplicated todos, dependency edges and order."""
        return await _resource_call(client.mesh(_checked(projectId, "PROJ")))

    @server.resource("chitty://entities/{chittyId}", name="entity", mime_type="application/json")
    async def entity(chittyId: str) -> Json:
        """Any entity by ChittyID, with its vector clock and open conflicts."""
        return await _resource_call(hub.entity(client, chittyId))

    @server.resource(
        "chitty://context/current", name="current_context", mime_type="application/json"
    )
    async def handover() -> Json:
        """Your hand-over context from where you last worked (any platform or model)."""
        return await _resource_call(client.current_context(target="claude"))

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
        session = await _resource_call(hub.session(client, _checked(wanted, "SESSION")))
        return _summary(session, hub.open_todos(session))

    @server.prompt(name="continue_from_handover")
    async def continue_from_handover(
        sessionId: Annotated[
            str | None,
            Field(description="Hand over this session; default: your most recently active one."),
        ] = None,
    ) -> str:
        """Continue the work you were doing elsewhere: the hand-over context, ready to go on."""
        session_id = _checked(sessionId, "SESSION") if sessionId else None
        context = await _resource_call(client.current_context(session_id, target="claude"))
        return (
            f"{context.get('text') or ''}\n\nThis is where the work stands (session "
            f"{context.get('sessionId')}). Continue from here; append new messages, files and "
            "crumbs to your session with append_session_context."
        )

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
