"""`POST /api/v1/ask`: a question to Claude, ChatGPT or Gemini, which answers with the hub's
tools (the app's registry, `transports.tools.TOOLS`) run as the caller and the caller's
hand-over context as its system prompt. The keys stay in the hub's environment: a CLI or a
custom agent reaches a model only through here."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from aiohttp import web
from pydantic import Field, JsonValue

from hub.adapters import DeliveryError, RateLimited
from hub.ids import ProjectId
from hub.models.base import WireModel
from transports.client import ChittyApiError, ChittyClient, ChittyError
from transports.gateway.as_caller import as_caller
from transports.gateway.errors import ApiError, read_json
from transports.gateway.tool_routes import REGISTRY
from transports.models.agents import ModelTimedOut, ask, model_adapter, unconfigured

OPEN_TODOS_SHOWN = 20  # todos the fallback context lists


class AskRequest(WireModel):
    """A question for a model; `projectId` says which project it is about, `sessionId` whose
    hand-over context the model gets (default: the caller's most recently active session)."""

    question: str = Field(min_length=1, max_length=4000)
    model: Literal["claude", "chatgpt", "gemini"]
    project_id: ProjectId | None = None
    session_id: str | None = Field(default=None, min_length=1, max_length=200)


class AskToolCall(WireModel):
    """A tool the model called, with what arguments, and whether it ran."""

    name: str
    arguments: dict[str, JsonValue]
    ok: bool


class AskAnswer(WireModel):
    """The model's answer, the tools it called on the way, and how many model calls it took."""

    model: str
    answer: str
    tool_calls: list[AskToolCall]
    steps: int


ASK_ENV = web.AppKey("ask_env", dict[str, str])  # the hub's adapter variables


async def context_text(client: ChittyClient, wanted: AskRequest) -> str:
    """The caller's hand-over context as text (`GET /api/v1/contexts/current`); where the
    caller has no session yet, what is open in the project asked about."""
    try:
        context = await client.current_context(wanted.session_id, target=wanted.model)
        return str(context.get("text") or "")
    except ChittyApiError as error:
        if error.error != "no_context":  # a session asked for that is not there: say so
            raise
    if wanted.project_id is None:
        return "No hand-over context: the user has no session on the hub yet."
    page = await client.list("todos", project_id=wanted.project_id, limit=OPEN_TODOS_SHOWN)
    todos = [todo.entity for todo in page.items if todo.entity.get("status") != "completed"]
    lines = [f"- {t.get('content')} [{t.get('status')}] ({t.get('chittyId')})" for t in todos]
    return f"The user works on project {wanted.project_id}. Its open todos:\n" + (
        "\n".join(lines) or "(none)"
    )


def _refusal(error: DeliveryError, model: str) -> ApiError:
    if isinstance(error, ModelTimedOut):
        return ApiError(504, "model_timeout", f"{model}: {error}", "model")
    retry = round(error.retry_after_s) or 1 if isinstance(error, RateLimited) else None
    return ApiError(502, "model_failed", f"{model}: {error}", "model", retry_after=retry)


async def ask_model(request: web.Request) -> web.Response:
    """Answer the question through the model named, with the caller's tools and context."""
    wanted = AskRequest.model_validate(await read_json(request))
    env: Mapping[str, str] = request.app[ASK_ENV]
    adapter = model_adapter(env, wanted.model)
    if adapter is None:
        variable = unconfigured(env)[wanted.model]
        detail = f"{wanted.model} is not configured: set {variable} in the hub's environment"
        raise ApiError(409, "not_configured", detail, "model")
    question = wanted.question
    if wanted.project_id is not None:
        question += f"\n\n(The project asked about: {wanted.project_id}.)"
    client = as_caller(request, "ask")
    try:
        context = await context_text(client, wanted)
        answer = await ask(adapter, client, request.app[REGISTRY], question, context)
    except DeliveryError as error:
        raise _refusal(error, wanted.model) from None
    except ChittyApiError as error:
        raise ApiError(error.status, error.error, error.detail, error.field) from None
    except ChittyError as error:
        raise ApiError(503, "unavailable", str(error)) from None
    body: dict[str, Any] = {
        "model": answer.model,
        "answer": answer.answer,
        "toolCalls": [
            {"name": c.name, "arguments": dict(c.arguments), "ok": c.ok} for c in answer.tool_calls
        ],
        "steps": answer.steps,
    }
    return web.json_response(body)


def add_ask_routes(app: web.Application, env: Mapping[str, str]) -> None:
    """`POST /api/v1/ask` with the models `env` (the hub's adapter variables) configures; the
    app's tool registry (`tool_routes.REGISTRY`) runs through its loopback (`as_caller`), both
    added before."""
    app[ASK_ENV] = dict(env)
    app.router.add_post("/api/v1/ask", ask_model, name="ask")
