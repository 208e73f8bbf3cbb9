"""One tool registry: a tool defined once reaches MCP, the ChatGPT Actions document, Gemini,
OpenAI and Anthropic, and runs over HTTP as its caller (scope applies)."""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import anthropic
import openai
import pytest
from aiohttp import web
from google.genai import types as genai
from jsonschema import Draft202012Validator
from mcp import Client
from openapi_spec_validator import validate
from pydantic import BaseModel

from hub.auth.principal import Role
from tests.emulators.anthropic import AnthropicEmulator
from tests.emulators.llm import Turn
from tests.emulators.openai import OpenAIEmulator
from tests.transports.conftest import SESSION, Gateway
from tests.transports.test_mcp import call, run_client
from transports.client import ChittyClient
from transports.gateway.as_caller import add_loopback
from transports.gateway.auth import AUTH, Auth, authenticate
from transports.gateway.errors import json_errors
from transports.gateway.tool_routes import (
    MAX_FIELD_DESCRIPTION,
    MAX_OPERATIONS,
    add_tool_routes,
)
from transports.mcp.http import add_mcp_routes
from transports.tools import TOOLS, Json, SessionArg, tool

ACTIONS = "/api/v1/openapi.actions.json"


class CountTodosArgs(BaseModel):
    session_id: SessionArg


@tool(CountTodosArgs, writes=False)
async def count_todos(client: ChittyClient, args: CountTodosArgs) -> Json:
    """Count a session's todos."""
    page = await client.list("todos", session_id=args.session_id, limit=500)
    return {"sessionId": args.session_id, "count": len(page.items)}


EXTENDED = TOOLS.with_tools(count_todos)


def get(url: str, token: str | None = None) -> tuple[int, str, str]:
    """GET `url` (with `token` as the bearer credential): status, content type, body."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=30) as r:
            return r.status, r.headers["Content-Type"], r.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.headers["Content-Type"], error.read().decode()


def run(gateway: Gateway, name: str, body: Any = None, token: str | None = None) -> Any:
    """POST /api/v1/tools/<name> on the gateway (as the admin, or as `token`)."""
    headers = {"Authorization": f"Bearer {token}"} if token else None
    status, answer, _ = gateway.request("POST", f"/api/v1/tools/{name}", body, headers)
    return status, answer


@pytest.fixture(scope="module")
def extended(gateway: Gateway) -> Iterator[str]:
    """An app serving the tools route, the Actions document and MCP from EXTENDED (the hub's
    tools plus count_todos), its tools calling the gateway; its URL."""
    app = web.Application(middlewares=[json_errors, authenticate])
    app[AUTH] = gateway.app[AUTH]
    add_loopback(app, gateway.url, None)
    add_tool_routes(app, EXTENDED)
    add_mcp_routes(app, gateway.url, registry=EXTENDED)
    runner, url = gateway.serve(app)
    yield url
    gateway.call(runner.cleanup())


def argument_names(schema: Json) -> set[str]:
    return set(schema.get("properties") or {})  # type: ignore[arg-type]


def actions_arguments(document: Json) -> dict[str, set[str]]:
    """Each operation's argument names: its body's properties, or its query parameters."""
    found = {}
    for item in document["paths"].values():  # type: ignore[union-attr]
        for op in item.values():
            if "requestBody" in op:
                found[op["operationId"]] = argument_names(
                    op["requestBody"]["content"]["application/json"]["schema"]
                )
            else:
                found[op["operationId"]] = {p["name"] for p in op.get("parameters", [])}
    return found


def test_a_tool_added_once_appears_everywhere(gateway: Gateway, extended: str) -> None:
    wanted = {t.name: argument_names(t.schema()) for t in EXTENDED}
    assert wanted["count_todos"] == {"sessionId"}
    listed: dict[str, set[str]] = {}
    counted: dict[str, Any] = {}

    async def scenario(client: Client) -> None:
        tools = (await client.list_tools()).tools
        listed.update({t.name: set(t.input_schema["properties"]) for t in tools})
        counted.update(await call(client, "count_todos", sessionId=SESSION))

    run_client(f"{extended}/mcp", scenario, gateway.token)
    assert listed == wanted
    assert counted["sessionId"] == SESSION and counted["count"] >= 0

    status, _, body = get(f"{extended}{ACTIONS}")
    assert status == 200
    document = json.loads(body)
    validate(document)
    assert actions_arguments(document) == wanted
    assert document["paths"]["/api/v1/tools/count_todos"]["post"]["operationId"] == "count_todos"

    openai_tools = {t["function"]["name"]: t["function"] for t in EXTENDED.openai_tools()}
    assert {n: argument_names(f["parameters"]) for n, f in openai_tools.items()} == wanted
    anthropic_tools = {t["name"]: t for t in EXTENDED.anthropic_tools()}
    assert {n: argument_names(t["input_schema"]) for n, t in anthropic_tools.items()} == wanted
    gemini = {d.name: d for d in EXTENDED.gemini_declarations()}
    assert {n: argument_names(d.parameters_json_schema) for n, d in gemini.items()} == wanted
    assert gemini["count_todos"].description == "Count a session's todos."
    assert "count_todos" not in {t.name for t in TOOLS}  # the hub's own set is unchanged

    async def over_http() -> Any:
        async with (
            ChittyClient(extended, token=gateway.token) as client,
            client.session.post(
                f"{extended}/api/v1/tools/count_todos",
                json={"sessionId": SESSION},
                headers=client.auth_headers(),
            ) as answer,
        ):
            return answer.status, await answer.json()

    status, answer = gateway.call(over_http())
    assert status == 200 and answer["tool"] == "count_todos", answer
    assert answer["result"]["count"] == counted["count"]


def walk_descriptions(node: Any) -> Iterator[str]:
    """Every `description` value anywhere in `node`."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "description" and isinstance(value, str):
                yield value
            else:
                yield from walk_descriptions(value)
    elif isinstance(node, list):
        for item in node:
            yield from walk_descriptions(item)


def test_the_actions_document_validates_fits_openai_limits_and_needs_no_token(
    gateway: Gateway,
) -> None:
    status, kind, body = get(f"{gateway.url}{ACTIONS}")  # no token
    assert status == 200 and kind.startswith("application/json")
    document = json.loads(body)
    validate(document)
    assert document["openapi"] == "3.1.0"
    assert document["servers"] == [{"url": gateway.url}]
    scheme = document["components"]["securitySchemes"]["bearerAuth"]
    assert (scheme["type"], scheme["scheme"]) == ("http", "bearer")
    assert document["security"] == [{"bearerAuth": []}]

    operations = {
        op["operationId"]: (method, path, op)
        for path, item in document["paths"].items()
        for method, op in item.items()
    }
    assert set(operations) == {t.name for t in TOOLS} and len(operations) <= MAX_OPERATIONS
    for t in TOOLS:
        method, path, op = operations[t.name]
        assert re.fullmatch(r"^[a-zA-Z0-9_-]+$", t.name)
        assert 0 < len(op["description"]) <= 300, t.name
        assert op["summary"] and len(op["summary"]) <= 300, t.name
        assert op["x-openai-isConsequential"] is t.writes, t.name
        if t.name != "current_context":
            assert (method, path) == ("post", f"/api/v1/tools/{t.name}")
        assert "$ref" not in json.dumps(op.get("requestBody", {}))  # inlined for the GPT
    assert operations["current_context"][:2] == ("get", "/api/v1/contexts/current")
    assert {p["name"] for p in operations["current_context"][2]["parameters"]} == {"sessionId"}
    writes = {n for n, (_, _, op) in operations.items() if op["x-openai-isConsequential"]}
    assert writes == {"create_todo", "update_todo", "reconcile_todos", "start_session"} | {
        "resume_session",
        "end_session",
        "append_session_context",
        "resolve_conflict",
        "sync_domain",
    }
    for text in walk_descriptions(document["paths"]):
        assert len(text) <= MAX_FIELD_DESCRIPTION, text

    status, answer = run(gateway, "list_todos", {}, token="chitty_0123456789abcdef_" + "A" * 43)
    assert status == 401 and answer["error"] == "unauthenticated", answer
    request = urllib.request.Request(f"{gateway.url}/api/v1/tools/list_todos", b"{}", method="POST")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=30)
    assert refused.value.code == 401

    status, kind, page = get(f"{gateway.url}/privacy")  # the page a public GPT links to
    assert status == 200 and kind.startswith("text/html")
    assert "OpenAI" in page and "sends nothing else" in page


def test_the_actions_server_is_the_public_url_when_set(gateway: Gateway) -> None:
    settings = gateway.settings.model_copy(update={"public_url": "https://hub.example.com/"})
    app = web.Application(middlewares=[json_errors, authenticate])
    app[AUTH] = Auth(settings, gateway.tokens)
    add_tool_routes(app)
    runner, url = gateway.serve(app)
    try:
        status, _, body = get(f"{url}{ACTIONS}")
    finally:
        gateway.call(runner.cleanup())
    assert status == 200
    assert json.loads(body)["servers"] == [{"url": "https://hub.example.com"}]


def test_tools_over_http_run_as_the_caller(gateway: Gateway) -> None:
    project = gateway.project("tools over HTTP")
    status, started = run(gateway, "start_session", {"projectId": project, "platform": "web"})
    assert status == 200 and started["tool"] == "start_session", started
    session = started["result"]["entity"]["chittyId"]
    status, made = run(gateway, "create_todo", {"content": "from a GPT", "sessionId": session})
    assert status == 200, made
    todo = made["result"]["entity"]
    assert todo["projectId"] == project and made["result"]["vectorClock"] == {"tools": 1}
    status, listed = run(gateway, "list_todos", {"sessionId": session})
    assert status == 200 and [t["chittyId"] for t in listed["result"]["todos"]] == [
        todo["chittyId"]
    ]
    assert run(gateway, "list_todos")[0] == 200  # no body: no arguments

    # bad arguments: a 422 naming the field, and nothing written
    status, bad = run(gateway, "create_todo", {"content": "x", "sessionId": "SESSION-1"})
    assert (status, bad["error"], bad["field"]) == (422, "invalid", "sessionId"), bad
    assert "is not a ChittyID" in bad["detail"]
    status, bad = run(gateway, "create_todo", {"sessionId": session})
    assert (status, bad["field"]) == (422, "content"), bad
    note = {"sessionId": session, "messages": [{"text": "hi"}]}
    status, bad = run(gateway, "append_session_context", note)
    assert (status, bad["field"]) == (422, "messages.0.role"), bad
    status, bad = run(gateway, "update_todo", {"todoId": todo["chittyId"]})
    assert (status, bad["detail"]) == (422, "nothing to update: give at least one field"), bad
    status, bad = run(gateway, "create_todo", ["not", "an", "object"])
    assert status == 422 and "JSON object" in bad["detail"], bad
    status, listed = run(gateway, "list_todos", {"sessionId": session})
    assert len(listed["result"]["todos"]) == 1

    # an unknown tool names the known ones; a hub refusal keeps its status
    status, unknown = run(gateway, "make_coffee", {})
    assert (status, unknown["error"], unknown["field"]) == (404, "not_found", "name"), unknown
    assert "create_todo" in unknown["detail"] and "current_context" in unknown["detail"]
    status, refused = run(
        gateway, "update_todo", {"todoId": "CHITTY-TODO-NOPE", "status": "blocked"}
    )
    assert (status, refused["error"]) == (404, "not_found"), refused


def test_a_member_cannot_run_a_tool_on_another_members_session(gateway: Gateway) -> None:
    _, owner = gateway.tokens.create("tools-owner", Role.MEMBER)
    _, stranger = gateway.tokens.create("tools-stranger", Role.MEMBER)
    status, started = run(gateway, "start_session", {"platform": "web"}, token=owner)
    assert status == 200, started
    session = started["result"]["entity"]["chittyId"]
    status, made = run(gateway, "create_todo", {"content": "mine", "sessionId": session}, owner)
    assert status == 200, made

    status, refused = run(gateway, "create_todo", {"content": "x", "sessionId": session}, stranger)
    assert status == 403, refused  # as POST /api/v1/todos into someone else's session
    status, hidden = run(gateway, "get_session_context", {"sessionId": session}, stranger)
    assert status == 404, hidden  # a read of what it may not see
    status, listed = run(gateway, "list_todos", {"sessionId": session}, stranger)
    assert status == 200 and listed["result"]["todos"] == [], listed
    status, listed = run(gateway, "list_todos", {"sessionId": session}, owner)
    assert [t["content"] for t in listed["result"]["todos"]] == ["mine"], listed


def test_the_openai_sdk_sends_openai_tools_and_their_calls_run(gateway: Gateway) -> None:
    for entry in TOOLS.openai_tools():
        Draft202012Validator.check_schema(entry["function"]["parameters"])
    emulator = gateway.call(OpenAIEmulator().start())
    emulator.script = [
        Turn(tool="create_todo", args={"content": "asked by GPT", "sessionId": SESSION})
    ]

    async def scenario() -> Any:
        model = openai.AsyncOpenAI(api_key=emulator.api_key, base_url=emulator.url + "/v1")
        completion = await model.chat.completions.create(
            model="gpt-4o",
            messages=[{"role": "user", "content": "add a todo"}],
            tools=TOOLS.openai_tools(),  # type: ignore[arg-type]
        )
        await model.close()
        [called] = completion.choices[0].message.tool_calls or []
        async with ChittyClient(gateway.url, token=gateway.token) as hub:
            return await TOOLS.invoke(
                hub,
                called.function.name,  # type: ignore[union-attr]
                json.loads(called.function.arguments),  # type: ignore[union-attr]
            )

    try:
        made = gateway.call(scenario())
    finally:
        gateway.call(emulator.stop())
    [sent] = emulator.requests
    assert sent["tools"] == TOOLS.openai_tools()
    status, body, _ = gateway.request("GET", f"/api/v1/todos/{made['entity']['chittyId']}")
    assert status == 200 and body["entity"]["content"] == "asked by GPT"


def test_the_anthropic_sdk_sends_anthropic_tools_and_their_calls_run(gateway: Gateway) -> None:
    for entry in TOOLS.anthropic_tools():
        Draft202012Validator.check_schema(entry["input_schema"])
    emulator = gateway.call(AnthropicEmulator().start())
    emulator.script = [Turn(tool="list_todos", args={"sessionId": SESSION, "limit": 5})]

    async def scenario() -> Any:
        model = anthropic.AsyncAnthropic(api_key=emulator.api_key, base_url=emulator.url)
        message = await model.messages.create(
            model="claude-sonnet-4-5",
            max_tokens=256,
            messages=[{"role": "user", "content": "what is on my list?"}],
            tools=TOOLS.anthropic_tools(),  # type: ignore[arg-type]
        )
        await model.close()
        [used] = [b for b in message.content if b.type == "tool_use"]
        async with ChittyClient(gateway.url, token=gateway.token) as hub:
            return await TOOLS.invoke(hub, used.name, used.input)

    try:
        listed = gateway.call(scenario())
    finally:
        gateway.call(emulator.stop())
    [sent] = emulator.requests
    assert sent["tools"] == TOOLS.anthropic_tools()
    assert isinstance(listed, dict) and len(listed["todos"]) <= 5


def test_gemini_declarations_are_the_sdk_s_own_type_without_refs() -> None:
    declarations = TOOLS.gemini_declarations()
    tool_decl = genai.Tool(function_declarations=declarations)
    wire = json.dumps(tool_decl.model_dump(mode="json", exclude_none=True))
    assert "$ref" not in wire and "$defs" not in wire
    by_name = {d.name: d for d in declarations}
    schema = by_name["append_session_context"].parameters_json_schema
    message = schema["properties"]["messages"]["anyOf"][0]["items"]
    assert message["required"] == ["role", "content"]  # the Message model, inlined
    for d in declarations:
        Draft202012Validator.check_schema(d.parameters_json_schema)
