"""The MCP server over stdio (`chitty mcp` subprocess) and streamable HTTP, via the SDK client."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from mcp import Client
from mcp.client.stdio import StdioServerParameters
from mcp.client.streamable_http import create_mcp_http_client, streamable_http_client
from mcp.types import CallToolResult, TextResourceContents

from tests.transports.conftest import Gateway
from tests.transports.test_ws import Peer
from transports.claude_code_bridge import hub_session_id
from transports.claude_code_bridge import run as bridge_run
from transports.gateway.auth import AUTH, authenticate
from transports.mcp.http import add_mcp_routes

ROOT = Path(__file__).resolve().parents[2]
TOOLS = {
    "create_todo",
    "list_todos",
    "update_todo",
    "reconcile_todos",
    "start_session",
    "resume_session",
    "end_session",
    "get_session_context",
    "append_session_context",
    "current_context",
    "list_conflicts",
    "resolve_conflict",
    "entity_state_at",
    "sync_domain",
}
TEMPLATES = {
    "chitty://sessions/{sessionId}/context",
    "chitty://projects/{projectId}/todos",
    "chitty://entities/{chittyId}",
}


Scenario = Callable[[Client], Awaitable[None]]


@pytest.fixture(scope="module")
def mcp_http(gateway: Gateway) -> Iterator[str]:
    """A second aiohttp app on the gateway's loop serving only `/mcp`; its MCP URL."""
    app = web.Application(middlewares=[authenticate])  # /mcp is authenticated like REST
    app[AUTH] = gateway.app[AUTH]
    add_mcp_routes(app, gateway.url)
    runner, url = gateway.serve(app)
    yield f"{url}/mcp"
    gateway.call(runner.cleanup())


@pytest.fixture(params=["stdio", "http"])
def over(request: pytest.FixtureRequest, gateway: Gateway) -> Callable[[Scenario], None]:
    """Run a scenario over stdio (`chitty mcp` subprocess) or streamable HTTP (`/mcp`)."""
    if request.param == "stdio":
        return lambda scenario: over_stdio(gateway, scenario)
    url = request.getfixturevalue("mcp_http")
    return lambda scenario: run_client(url, scenario, gateway.token)


def over_stdio(gateway: Gateway, scenario: Scenario) -> None:
    """Run `scenario` against a fresh `python -m transports.cli mcp` talking to `gateway`."""
    server = StdioServerParameters(
        command=sys.executable,
        args=["-m", "transports.cli", "mcp"],
        env={"CHITTY_HUB_URL": gateway.url, "PYTHONPATH": str(ROOT), "CHITTY_TOKEN": gateway.token},
        cwd=ROOT,
    )
    run_client(server, scenario)


def run_client(
    server: StdioServerParameters | str, scenario: Scenario, token: str | None = None
) -> None:
    """Connect the SDK's client to `server` (a URL: with `token` as its bearer credential),
    run `scenario`, surface its failure plainly."""

    async def run() -> None:
        target: Any = server
        if isinstance(server, str):
            headers = {"Authorization": f"Bearer {token}"} if token else None
            target = streamable_http_client(
                server, http_client=create_mcp_http_client(headers=headers)
            )
        async with Client(target, read_timeout_seconds=30) as client:
            await scenario(client)

    try:
        asyncio.run(asyncio.wait_for(run(), 60))
    except BaseExceptionGroup as group:  # the client's task groups wrap a failed assert
        raise _leaf(group) from None


def _leaf(error: BaseException) -> BaseException:
    while isinstance(error, BaseExceptionGroup) and len(error.exceptions) == 1:
        error = error.exceptions[0]
    return error


async def call(client: Client, tool: str, **arguments: Any) -> dict[str, Any]:
    """Call a tool that must succeed; its structured result."""
    result = await client.call_tool(tool, arguments)
    assert isinstance(result, CallToolResult)
    assert not result.is_error, result.content
    assert isinstance(result.structured_content, dict)
    return dict(result.structured_content)


async def fails(client: Client, tool: str, **arguments: Any) -> str:
    """Call a tool that must fail; the error text the model would read."""
    result = await client.call_tool(tool, arguments)
    assert isinstance(result, CallToolResult) and result.is_error, result
    return " ".join(getattr(part, "text", "") for part in result.content)


async def read(client: Client, uri: str) -> Any:
    result = await client.read_resource(uri)
    [content] = result.contents
    assert isinstance(content, TextResourceContents)
    return json.loads(content.text)


def make(gateway: Gateway, domain: str, body: dict[str, Any]) -> dict[str, Any]:
    status, answer, _ = gateway.request("POST", f"/api/v1/{domain}", body)
    assert status == 201, answer
    return answer["entity"]  # type: ignore[no-any-return]


def todos_of(gateway: Gateway, session: str) -> list[dict[str, Any]]:
    status, body, _ = gateway.request("GET", f"/api/v1/todos?sessionId={session}&limit=500")
    assert status == 200, body
    return [item["entity"] for item in body["items"]]


def test_lists_tools_resources_and_prompts(over: Callable[[Scenario], None]) -> None:
    async def scenario(client: Client) -> None:
        tools = {t.name: t for t in (await client.list_tools()).tools}
        assert set(tools) == TOOLS
        assert all(t.description for t in tools.values())
        assert tools["create_todo"].input_schema["required"] == ["content", "sessionId"]
        for t in tools.values():  # REST's names; the old ones are noted as deprecated
            names = set(t.input_schema["properties"])
            assert not any("_" in name for name in names), (t.name, names)
            old = {"sessionId": "session_id", "projectId": "project_id", "dryRun": "dry_run"}
            for new, was in old.items():
                if new in names:
                    assert f"{new} (was {was})" in (t.description or ""), t.name
        templates = (await client.list_resource_templates()).resource_templates
        assert {t.uri_template for t in templates} == TEMPLATES
        prompts = {p.name: p for p in (await client.list_prompts()).prompts}
        assert set(prompts) == {"resume_session", "continue_from_handover"}
        prompt = prompts["resume_session"]
        assert [a.name for a in prompt.arguments or []] == ["sessionId", "session_id"]

    over(scenario)


def test_every_tool_resource_and_the_prompt(
    gateway: Gateway, over: Callable[[Scenario], None]
) -> None:
    """A Claude session's whole life through MCP, checked against the hub over REST."""
    project = make(gateway, "projects", {"name": "MCP tour"})["chittyId"]

    async def scenario(client: Client) -> None:
        made = await call(client, "start_session", projectId=project)
        session = made["entity"]["chittyId"]
        assert made["entity"]["platform"] == "claude-code"
        todo = await call(
            client, "create_todo", content="Write MCP docs", sessionId=session, projectId=project
        )
        todo_id = todo["entity"]["chittyId"]
        assert todo["entity"]["status"] == "pending" and todo["vectorClock"] == {"mcp": 1}
        await asyncio.sleep(0.01)
        before_update = datetime.now(UTC)
        await asyncio.sleep(0.01)
        listed = await call(client, "list_todos", sessionId=session)
        assert [t["chittyId"] for t in listed["todos"]] == [todo_id]
        changed = await call(client, "update_todo", todoId=todo_id, status="in_progress")
        assert changed["entity"]["status"] == "in_progress"
        session_now = await call(client, "entity_state_at", entityId=session)
        assert [t["chittyId"] for t in session_now["entity"]["todos"]] == [todo_id]  # it lists it
        # one session, one todo: nothing to merge, nothing to write back
        mesh = await call(client, "reconcile_todos", projectId=project)
        assert mesh["projectId"] == project and [n["todo"]["chittyId"] for n in mesh["nodes"]] == [
            todo_id
        ]
        assert mesh["writes"] == []
        assert "no project CHITTY-PROJ-MISSING" in await fails(
            client, "reconcile_todos", projectId="CHITTY-PROJ-MISSING"
        )

        appended = await call(
            client,
            "append_session_context",
            sessionId=session,
            messages=[{"role": "user", "content": "document the MCP server"}],
            files=[{"path": "README.md"}],
            crumbs=[{"label": "docs", "location": "README.md#claude-over-mcp"}],
        )
        assert appended["context"]["messages"][0]["content"] == "document the MCP server"
        again = await call(
            client,
            "append_session_context",
            sessionId=session,
            messages=[{"role": "assistant", "content": "on it"}],
        )
        assert [m["role"] for m in again["context"]["messages"]] == ["user", "assistant"]
        context = await call(client, "get_session_context", sessionId=session)
        assert [f["path"] for f in context["context"]["files"]] == ["README.md"]

        past = await call(client, "entity_state_at", entityId=todo_id, at=before_update.isoformat())
        now = await call(client, "entity_state_at", entityId=todo_id)
        assert now["entity"]["status"] == "in_progress" and now["domain"] == "todos"
        assert past["entity"]["status"] == "pending" and past["domain"] == "todos"
        report = await call(client, "sync_domain", domain="todos", models=["claude"], dryRun=True)
        assert report["targets"][0]["status"] == "not_connected"  # Claude asks; nothing is pushed

        # a conflict made by two writers that had not seen each other, settled through MCP
        gateway.request(
            "PUT",
            f"/api/v1/todos/{todo_id}",
            {"status": "completed", "vectorClock": {"mcp": 2, "phone": 1}},
            {"X-Chitty-Node": "phone"},
        )
        gateway.request(
            "PUT",
            f"/api/v1/todos/{todo_id}",
            {"status": "blocked", "vectorClock": {"mcp": 2, "web": 1}},
            {"X-Chitty-Node": "web"},
        )
        conflicts = (await call(client, "list_conflicts", domain="todos"))["conflicts"]
        [mine] = [c for c in conflicts if c["entityId"] == todo_id]
        settled = await call(
            client, "resolve_conflict", conflictId=mine["conflictId"], value="completed"
        )
        assert settled["entity"]["status"] == "completed" and settled["conflicts"] == []

        assert (await read(client, f"chitty://sessions/{session}/context"))["context"]["crumbs"]
        assert todo_id in (await read(client, f"chitty://projects/{project}/todos"))["order"]
        entity = await read(client, f"chitty://entities/{todo_id}")
        assert entity["entity"]["status"] == "completed"
        prompt = await client.get_prompt("resume_session", {"sessionId": session})
        text = prompt.messages[0].content.text  # type: ignore[union-attr]
        assert session in text and "document the MCP server" in text and "README.md" in text

        assert (await call(client, "end_session", sessionId=session))["entity"]["status"] == (
            "ended"
        )
        ended = await fails(client, "resume_session", sessionId=session)
        assert "hub refused" in ended

    over(scenario)


def test_example_2_over_mcp(gateway: Gateway, over: Callable[[Scenario], None]) -> None:
    """Three Claude sessions on one project make todos over MCP; reconcile_todos merges the
    duplicate, every session lists the same five, and a second run writes nothing."""
    project = make(gateway, "projects", {"name": "Example 2 over MCP"})["chittyId"]
    plan = {
        "A": [("Todo 1", "pending"), ("Todo 2", "in_progress")],
        "B": [("todo 2!", "completed"), ("Todo 3", "pending")],
        "C": [("Todo 4", "in_progress"), ("Todo 5", "pending")],
    }

    async def scenario(client: Client) -> None:
        sessions = {}
        for name, todos in plan.items():
            made = await call(client, "start_session", projectId=project)
            sessions[name] = made["entity"]["chittyId"]
            for content, status in todos:
                await call(
                    client, "create_todo", content=content, status=status, sessionId=sessions[name]
                )
        mesh = await call(client, "reconcile_todos", projectId=project)
        assert [n["todo"]["status"] for n in mesh["nodes"]] == [
            "pending",
            "completed",
            "pending",
            "in_progress",
            "pending",
        ]
        assert sorted(mesh["nodes"][1]["originSessions"]) == sorted([sessions["A"], sessions["B"]])
        assert mesh["writes"] and {w["status"] for w in mesh["writes"]} == {"applied"}
        for session in sessions.values():
            listed = await call(client, "entity_state_at", entityId=session)
            assert len(listed["entity"]["todos"]) == 5
        assert (await call(client, "reconcile_todos", projectId=project))["writes"] == []

    over(scenario)


def test_a_todo_made_over_mcp_reaches_a_subscriber_and_rest(
    gateway: Gateway, over: Callable[[Scenario], None]
) -> None:
    """Spec Example 1 from Claude: MCP create, WebSocket fan-out, REST read."""
    session = make(gateway, "sessions", {"sessionId": "mcp-ex1", "platform": "claude-code"})
    session_id = session["chittyId"]

    async def subscribe() -> Peer:
        peer = await Peer.connect(gateway.url, token=gateway.token)
        await peer.subscribe(domains=["todos"], filters={"sessionId": session_id})
        return peer

    peer = gateway.call(subscribe())
    made: dict[str, Any] = {}

    async def scenario(client: Client) -> None:
        made.update(await call(client, "create_todo", content="ex1", sessionId=session_id))

    over(scenario)
    todo_id = made["entity"]["chittyId"]
    [event] = gateway.call(peer.events(lambda e: True))
    assert event["operation"] == "create" and event["entityId"] == todo_id
    assert event["entity"] == made["entity"]
    gateway.call(peer.close())
    status, body, _ = gateway.request("GET", f"/api/v1/todos/{todo_id}")
    assert status == 200 and body["entity"]["content"] == "ex1"


def test_bad_arguments_are_tool_errors_and_change_nothing(
    gateway: Gateway, over: Callable[[Scenario], None]
) -> None:
    session = make(gateway, "sessions", {"sessionId": "mcp-bad", "platform": "claude-code"})
    session_id = session["chittyId"]
    before = todos_of(gateway, session_id)

    async def scenario(client: Client) -> None:
        text = await fails(client, "create_todo", content="x", sessionId="SESSION-1")
        assert "is not a ChittyID" in text
        text = await fails(client, "create_todo", content="", sessionId=session_id)
        assert "content" in text
        text = await fails(
            client, "create_todo", content="x", sessionId=session_id, status="done-ish"
        )
        assert "status" in text
        text = await fails(
            client, "append_session_context", sessionId=session_id, messages=[{"text": "x"}]
        )
        assert "role" in text
        note = [{"role": "user", "content": "hi"}]
        text = await fails(
            client, "append_session_context", sessionId="CHITTY-SESSION-NOPE", messages=note
        )
        assert "hub refused" in text
        text = await fails(client, "update_todo", todoId="CHITTY-TODO-NOPE", status="completed")
        assert "hub refused (404" in text
        text = await fails(client, "entity_state_at", entityId="CHITTY-MSG-1")
        assert "no entity" in text
        context = await call(client, "get_session_context", sessionId=session_id)
        assert context["context"]["messages"] == []

    over(scenario)
    assert todos_of(gateway, session_id) == before


def test_the_old_snake_case_arguments_are_still_accepted(
    gateway: Gateway, over: Callable[[Scenario], None]
) -> None:
    """One release of grace: the names the tools took before they took REST's."""
    project = make(gateway, "projects", {"name": "snake case"})["chittyId"]

    async def scenario(client: Client) -> None:
        made = await call(
            client, "start_session", project_id=project, platform_session_id="claude-snake"
        )
        session = made["entity"]["chittyId"]
        assert made["entity"]["sessionId"] == "claude-snake"  # the platform's own session id
        todo = await call(
            client, "create_todo", content="old names", session_id=session, active_form="Naming"
        )
        assert todo["entity"]["sessionId"] == session and todo["entity"]["activeForm"] == "Naming"
        todo_id = todo["entity"]["chittyId"]
        listed = await call(client, "list_todos", session_id=session)
        assert [t["chittyId"] for t in listed["todos"]] == [todo_id]
        assert (await call(client, "update_todo", todo_id=todo_id, status="completed"))["entity"][
            "status"
        ] == "completed"
        assert (await call(client, "reconcile_todos", project_id=project, dry_run=True))["dryRun"]
        assert (await call(client, "entity_state_at", entity_id=todo_id))["domain"] == "todos"
        prompt = await client.get_prompt("resume_session", {"session_id": session})
        assert session in prompt.messages[0].content.text  # type: ignore[union-attr]
        # no platform id given: the hub takes the session's own ChittyID for it
        bare = (await call(client, "start_session"))["entity"]
        assert bare["sessionId"] == bare["chittyId"]

    over(scenario)


# -- the Claude Code TodoWrite hook -------------------------------------------------------------


def hook_event(claude_session: str, *todos: tuple[str, str]) -> str:
    """A PostToolUse hook event as Claude Code sends it for a TodoWrite call."""
    return json.dumps(
        {
            "session_id": claude_session,
            "transcript_path": "/tmp/transcript.jsonl",
            "cwd": str(ROOT),
            "permission_mode": "default",
            "hook_event_name": "PostToolUse",
            "tool_name": "TodoWrite",
            "tool_input": {
                "todos": [{"content": c, "status": s, "activeForm": f"Doing {c}"} for c, s in todos]
            },
            "tool_response": {"oldTodos": [], "newTodos": []},
        }
    )


def run_hook(gateway: Gateway, event: str, project: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "CHITTY_HUB_URL": gateway.url,
        "CHITTY_PROJECT_ID": project,
        "CHITTY_TOKEN": gateway.token,
    }
    return subprocess.run(
        [sys.executable, "-m", "transports.claude_code_bridge"],
        input=event,
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_todowrite_hook_forwards_claude_code_todos(gateway: Gateway) -> None:
    """Spec Example 1 from a real Claude Code session: TodoWrite -> hook -> hub -> everyone."""
    project = make(gateway, "projects", {"name": "Hooked"})["chittyId"]
    claude_session = "5f2c1e9a-0b7d-4c1e-9a7f-3d2b1c0e9f8a"
    session = hub_session_id(claude_session)

    async def subscribe() -> Peer:
        peer = await Peer.connect(gateway.url, token=gateway.token)
        await peer.subscribe(domains=["todos"], filters={"projectId": project})
        return peer

    peer = gateway.call(subscribe())
    first = run_hook(gateway, hook_event(claude_session, ("Write docs", "in_progress")), project)
    assert first.returncode == 0, first.stderr
    [event] = gateway.call(peer.events(lambda e: True))
    assert event["operation"] == "create" and event["entity"]["content"] == "Write docs"
    gateway.call(peer.close())

    second = hook_event(claude_session, ("Write docs", "completed"), ("Add tests", "pending"))
    assert run_hook(gateway, second, project).returncode == 0
    seq = gateway.request("GET", f"/api/v1/sessions/{session}")[1]["seq"]
    assert run_hook(gateway, second, project).returncode == 0
    assert gateway.request("GET", f"/api/v1/sessions/{session}")[1]["seq"] == seq  # no change
    by_content = {t["content"]: t for t in todos_of(gateway, session)}
    assert {c: t["status"] for c, t in by_content.items()} == {
        "Write docs": "completed",
        "Add tests": "pending",
    }
    assert by_content["Add tests"]["activeForm"] == "Doing Add tests"
    status, body, _ = gateway.request("GET", f"/api/v1/sessions/{session}")
    assert status == 200 and body["entity"]["platform"] == "claude-code"
    assert body["entity"]["sessionId"] == claude_session and body["entity"]["projectId"] == project
    assert sorted(t["content"] for t in body["entity"]["todos"]) == ["Add tests", "Write docs"]
    status, mesh, _ = gateway.request("GET", f"/api/v1/todos/mesh?projectId={project}")
    assert status == 200 and len(mesh["nodes"]) == 2


def test_the_hook_ignores_other_tools_and_reports_an_unreachable_hub() -> None:
    other = json.dumps({"session_id": "s", "tool_name": "Read", "tool_input": {"path": "x"}})
    assert asyncio.run(bridge_run(other, "http://127.0.0.1:1", None)) == 0
    todo_write = hook_event("s", ("x", "pending"))
    assert asyncio.run(bridge_run(todo_write, "http://127.0.0.1:1", None)) == 1
    assert asyncio.run(bridge_run("{not json", "http://127.0.0.1:1", None)) == 1
