"""The hub's tools over HTTP, the ChatGPT Actions document that lists them, and the privacy page
a public GPT links to.

`POST /api/v1/tools/{name}` runs a registry tool as the caller (`as_caller`): the body is its
arguments, the answer `{"tool", "result"}`; bad arguments are a 422 naming the field, a hub
refusal keeps its status and field. `GET /api/v1/openapi.actions.json` and `GET /privacy` hold
no data and need no token: ChatGPT imports the first by URL and shows the second to users.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from pydantic import BaseModel, Field

from transports.client import ChittyApiError, ChittyUnreachable
from transports.gateway.as_caller import as_caller
from transports.gateway.auth import AUTH
from transports.gateway.errors import RETRY_AFTER_S, ApiError, read_json
from transports.tools import TOOLS, Json, ToolArgumentsError, ToolNotFound, ToolRegistry

REGISTRY = web.AppKey("tool_registry", ToolRegistry)
ACTIONS_PATH = "/api/v1/openapi.actions.json"
PRIVACY_PATH = "/privacy"
MAX_OPERATIONS = 30  # a GPT takes at most 30 actions
MAX_FIELD_DESCRIPTION = 700  # OpenAI's limit on a parameter's (or property's) description
# Tools whose own REST route a GPT calls instead of POST /api/v1/tools/<name>.
OWN_ROUTES = {"current_context": ("get", "/api/v1/contexts/current")}
SECURITY_SCHEME = "bearerAuth"


async def run_tool(request: web.Request) -> web.Response:
    """POST /api/v1/tools/{name}: run one tool as the caller."""
    registry = request.app[REGISTRY]
    name = request.match_info["name"]
    try:
        registry.named(name)
    except ToolNotFound as error:
        raise ApiError(404, "not_found", str(error), "name") from None
    arguments = await read_json(request) if request.body_exists else {}
    if not isinstance(arguments, dict):
        raise ApiError(422, "invalid", "the body must be a JSON object: the tool's arguments")
    client = as_caller(request, node_id="tools")
    try:
        result = await registry.invoke(client, name, arguments)
    except ToolArgumentsError as error:
        raise ApiError(422, "invalid", error.detail, error.field) from None
    except ChittyApiError as error:
        raise ApiError(error.status, error.error, error.detail, error.field) from None
    except ChittyUnreachable as error:
        raise ApiError(503, "unavailable", str(error), None, RETRY_AFTER_S) from None
    return web.json_response({"tool": name, "result": result})


# -- the ChatGPT Actions document -------------------------------------------------------------


class HandOver(BaseModel):
    """The caller's hand-over context: where the work stands, ready to continue."""

    contextId: str
    sessionId: str
    projectId: str | None
    platform: str = Field(description="The platform the work was done on.")
    summary: str
    keyPoints: list[str]
    entities: list[Any]
    lastMessages: list[dict[str, Any]] = Field(description="The last (up to 10) messages.")
    files: list[Any]
    openTodos: list[dict[str, Any]]
    text: str = Field(description="The whole hand-over as one text, ready to read.")
    seq: int


ERROR = {
    "type": "object",
    "properties": {
        "error": {"type": "string", "description": "A short code: not_found, invalid, ..."},
        "detail": {"type": "string", "description": "What went wrong, in a sentence."},
        "field": {"type": ["string", "null"], "description": "The argument at fault, if one."},
    },
    "required": ["error", "detail", "field"],
}
ERRORS = {
    "401": "No credential, or one the hub does not accept.",
    "403": "The caller may not change this.",
    "404": "No such entity, or one the caller may not see.",
    "422": "An argument is invalid: `field` names it.",
}


def _first_sentence(text: str) -> str:
    """The operation's summary: its description up to the first full stop or semicolon."""
    return text.split(". ")[0].split("; ")[0].rstrip(".")


def _operation(name: str, summary: str, description: str, writes: bool, answer: Json) -> Json:
    responses: Json = {
        "200": {"description": summary, "content": {"application/json": {"schema": answer}}}
    }
    for status, text in ERRORS.items():
        error: Json = {"schema": {"$ref": "#/components/schemas/Error"}}
        responses[status] = {"description": text, "content": {"application/json": error}}
    return {
        "operationId": name,
        "summary": summary,
        "description": description,
        "x-openai-isConsequential": writes,
        "responses": responses,
    }


def actions_document(registry: ToolRegistry, server: str) -> Json:
    """An OpenAPI 3.1 document a GPT imports: one operation per tool, within OpenAI's limits
    (operation descriptions <= 300 characters, at most 30 operations)."""
    if len(registry.tools) > MAX_OPERATIONS:
        raise ValueError(f"a GPT takes at most {MAX_OPERATIONS} actions")
    paths: dict[str, Json] = {}
    for tool in registry:
        method, path = OWN_ROUTES.get(tool.name, ("post", f"/api/v1/tools/{tool.name}"))
        arguments = tool.portable_schema()
        if tool.name == "current_context":
            answer: Json = HandOver.model_json_schema()
        else:
            answer = {
                "type": "object",
                "properties": {
                    "tool": {"type": "string", "const": tool.name},
                    "result": {"description": "What the tool answered."},
                },
                "required": ["tool", "result"],
            }
        operation = _operation(
            tool.name, _first_sentence(tool.summary), tool.summary, tool.writes, answer
        )
        if method == "get":
            required = set(arguments.get("required") or [])  # type: ignore[arg-type]
            operation["parameters"] = [
                {
                    "name": prop,
                    "in": "query",
                    "required": prop in required,
                    "description": schema.get("description", ""),
                    "schema": {k: v for k, v in schema.items() if k != "description"},
                }
                for prop, schema in arguments.get("properties", {}).items()  # type: ignore[union-attr]
            ]
        else:
            operation["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": arguments}},
            }
        paths[path] = {method: operation}
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "ChittyChat Hub",
            "version": "1",
            "description": "Your projects, sessions, todos and hand-over context on a "
            "ChittyChat hub, shared with Claude, Gemini and your other tools.",
        },
        "servers": [{"url": server}],
        "paths": paths,
        "components": {
            "schemas": {"Error": ERROR},
            "securitySchemes": {
                SECURITY_SCHEME: {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "A hub token: `chitty token create chatgpt --role member`.",
                }
            },
        },
        "security": [{SECURITY_SCHEME: []}],
    }


def public_origin(request: web.Request) -> str:
    """CHITTY_PUBLIC_URL when set, else this request's own origin."""
    public = request.app[AUTH].settings.public_url
    return public.rstrip("/") if public else f"{request.scheme}://{request.host}"


async def serve_actions(request: web.Request) -> web.Response:
    """GET /api/v1/openapi.actions.json (no token: it holds no data)."""
    return web.json_response(actions_document(request.app[REGISTRY], public_origin(request)))


PRIVACY = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>ChittyChat Hub: privacy</title></head>
<body>
<h1>Privacy policy</h1>
<p>This ChittyChat hub is run by its operator, on a machine the operator chooses. It stores what
its users and their tools write to it: projects, sessions (their messages, file references and
breadcrumbs), todos, contexts and their summaries, the history of every change, and for each
access token only a hash of it. That data stays on this hub (encrypted at rest when the operator
configured a key) and is shown only to the principals allowed to see it.</p>
<p>A GPT that uses this hub's actions sends it only the calls the GPT makes, with the token you
gave it; the hub answers those calls and sends nothing else to OpenAI. What ChatGPT does with an
answer is governed by OpenAI's own privacy policy.</p>
<p>You may export everything the hub holds about you
(<code>GET /api/v1/principals/&lt;your id&gt;/export</code>) and ask the hub's operator to erase
it.</p>
</body></html>
"""


async def privacy(request: web.Request) -> web.Response:
    """GET /privacy: the privacy policy a public GPT links to (no token)."""
    return web.Response(text=PRIVACY, content_type="text/html")


def add_tool_routes(app: web.Application, registry: ToolRegistry = TOOLS) -> None:
    """Register the tools route, the Actions document and the privacy page."""
    app[REGISTRY] = registry
    app.router.add_post("/api/v1/tools/{name}", run_tool, name="run_tool")
    app.router.add_get(ACTIONS_PATH, serve_actions, name="openapi_actions")
    app.router.add_get(PRIVACY_PATH, privacy, name="privacy")
