"""Model adapters over the official SDKs (`anthropic`, `openai`, `google-genai`), each its
provider's base URL honoured, with a timeout and no retries, and the agent loop `ask` that gives
a model the hub's tools and the hand-over context.

An adapter is one conversation kept in its provider's own message format (`hub.adapters
.ModelAdapter`): building one is cheap, so each ask or delivery builds its own and nothing of
one caller's conversation can reach another's. A provider's refusal becomes the hub's delivery
errors: `BadCredentials` (the key is refused), `RateLimited`, `TransientFailure` (timed out:
`ModelTimedOut`; unreachable; a 5xx), `PermanentFailure` (any other refusal)."""

from __future__ import annotations

import itertools
import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp
from pydantic import JsonValue

from hub.adapters import (
    BadCredentials,
    Delivered,
    DeliveryError,
    ModelAdapter,
    PermanentFailure,
    RateLimited,
    Reply,
    ToolBox,
    ToolFailed,
    ToolOutcome,
    ToolUse,
    TransientFailure,
)
from transports.client import ChittyClient, ChittyError
from transports.models.providers import CHATGPT, CLAUDE, GEMINI, PROVIDERS, Provider
from transports.tools import ToolArgumentsError, ToolNotFound, ToolRegistry, readable

DEFAULT_TIMEOUT_S = 60.0
MAX_TOKENS = 2048
MAX_STEPS = 8  # model calls one question may take before the loop gives up
ACKNOWLEDGE = (
    "The system prompt is the hand-over context of the work this user did elsewhere. Confirm in "
    "one sentence that you have it and say what the user was working on."
)


class ModelTimedOut(TransientFailure):
    """The provider did not answer within the timeout."""


class StepLimit(DeliveryError):
    """The model still wanted tools after `MAX_STEPS` calls: no answer."""


class _Conversation:
    """What every adapter keeps: the context, the tools offered, and the tools' outcomes
    waiting to go back to the model with the next call."""

    spec: Provider
    supports_mcp = False
    supports_actions = False
    supports_extensions = False

    def __init__(self, env: Mapping[str, str]) -> None:
        self.id = f"model:{self.spec.name}"
        self.model = self.spec.name
        self.provider = self.spec.vendor
        self.vendor_model = self.spec.model(env)  # the provider's name of the model
        self.context = ""
        self._tools: ToolBox | None = None

    async def get_context(self) -> str:
        return self.context

    async def register_tools(self, tools: ToolBox) -> None:
        self._tools = tools

    async def invoke_tool(self, use: ToolUse) -> ToolOutcome:
        if self._tools is None:
            outcome = ToolOutcome(use, f"no tools were given: {use.name} cannot run", False)
        elif use.problem:
            outcome = ToolOutcome(use, use.problem, False)
        else:
            try:
                outcome = ToolOutcome(use, await self._tools.run(use.name, use.arguments), True)
            except ToolFailed as failed:
                outcome = ToolOutcome(use, str(failed), False)
        self._answer(outcome)
        return outcome

    def _answer(self, outcome: ToolOutcome) -> None:
        """Keep the outcome in the provider's form for the next call."""
        raise NotImplementedError

    def _schemas(self) -> list[Any]:
        return list(self._tools.schemas(self.provider)) if self._tools else []


def _as_text(outcome: ToolOutcome) -> str:
    return outcome.result if isinstance(outcome.result, str) else json.dumps(outcome.result)


async def _calling(
    call: Awaitable[Any], errors: Callable[[Exception], DeliveryError | None]
) -> Any:
    """Await a provider call; its failure as the hub's delivery error."""
    try:
        return await call
    except Exception as error:
        failure = errors(error) or _network(error)
        if failure is None:
            raise
        raise failure from None


def _network(error: Exception) -> DeliveryError | None:
    """Google's SDK lets its transport's errors through (aiohttp's, for its async client)."""
    if isinstance(error, TimeoutError):
        return ModelTimedOut("the model did not answer in time")
    if isinstance(error, OSError | aiohttp.ClientError):
        return TransientFailure(f"the model could not be reached: {type(error).__name__}: {error}")
    return None


def _by_status(status: int, reason: str, retry_after: str | None) -> DeliveryError:
    if status in (401, 403):
        return BadCredentials(f"the provider refused the key ({status}): {reason}")
    if status == 429:
        try:
            return RateLimited(float(retry_after or 1))
        except ValueError:
            return RateLimited(1.0)
    if status >= 500:
        return TransientFailure(f"the provider failed ({status}): {reason}")
    return PermanentFailure(f"the provider refused the request ({status}): {reason}")


# -- Claude -------------------------------------------------------------------------------------


class ClaudeAdapter(_Conversation):
    """Claude through the Messages API; tool results go back as `tool_result` blocks
    (`is_error` for a failure). Claude also reaches the hub over MCP."""

    spec = CLAUDE
    supports_mcp = True

    def __init__(self, env: Mapping[str, str], timeout_s: float) -> None:
        import anthropic

        super().__init__(env)
        self._sdk = anthropic
        self._client = anthropic.AsyncAnthropic(
            api_key=CLAUDE.api_key(env),
            base_url=CLAUDE.base_url(env),
            timeout=timeout_s,
            max_retries=0,
        )
        self._messages: list[dict[str, Any]] = []
        self._results: list[dict[str, Any]] = []

    def _errors(self, error: Exception) -> DeliveryError | None:
        if isinstance(error, self._sdk.APITimeoutError):
            return ModelTimedOut("Claude did not answer in time")
        if isinstance(error, self._sdk.APIConnectionError):
            return TransientFailure(f"Claude could not be reached: {error}")
        if isinstance(error, self._sdk.APIStatusError):
            retry = error.response.headers.get("retry-after")
            return _by_status(error.status_code, _reason(error.body, error.message), retry)
        return None

    async def _create(self, messages: list[dict[str, Any]], tools: list[Any]) -> Any:
        extra: dict[str, Any] = {"system": self.context} if self.context else {}
        if tools:
            extra["tools"] = tools
        call = self._client.messages.create(
            model=self.vendor_model, max_tokens=MAX_TOKENS, messages=messages, **extra
        )
        return await _calling(call, self._errors)

    async def send_context(self, text: str) -> Delivered:
        self.context = text
        answer = await self._create([{"role": "user", "content": ACKNOWLEDGE}], [])
        return Delivered(answer.model, answer.id, _claude_text(answer.content))

    async def sync_conversation(self, messages: Sequence[str]) -> Reply:
        content = [*self._results, *({"type": "text", "text": m} for m in messages)]
        self._results = []
        self._messages.append({"role": "user", "content": content})
        answer = await self._create(self._messages, self._schemas())
        blocks: list[dict[str, Any]] = []
        uses = []
        for block in answer.content:
            if block.type == "text":
                blocks.append({"type": "text", "text": block.text})
            elif block.type == "tool_use":
                blocks.append(
                    {"type": "tool_use", "id": block.id, "name": block.name, "input": block.input}
                )
                arguments = block.input if isinstance(block.input, dict) else {}
                uses.append(ToolUse(block.id, block.name, arguments))
        self._messages.append({"role": "assistant", "content": blocks})
        return Reply(_claude_text(answer.content), tuple(uses), answer.id)

    def _answer(self, outcome: ToolOutcome) -> None:
        self._results.append(
            {
                "type": "tool_result",
                "tool_use_id": outcome.use.call_id,
                "content": _as_text(outcome),
                "is_error": not outcome.ok,
            }
        )


def _claude_text(blocks: Sequence[Any]) -> str:
    return "".join(getattr(block, "text", "") for block in blocks)


def _reason(body: object, fallback: str) -> str:
    """The provider's own sentence from an error body ({"error": {"message": ...}})."""
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and inner.get("message"):
            return str(inner["message"])
    return fallback


# -- ChatGPT ------------------------------------------------------------------------------------


class ChatGPTAdapter(_Conversation):
    """A GPT model through Chat Completions; tool results go back as `tool` messages (an error
    as its text: the API has no error flag). ChatGPT also reaches the hub through Actions."""

    spec = CHATGPT
    supports_actions = True

    def __init__(self, env: Mapping[str, str], timeout_s: float) -> None:
        import openai

        super().__init__(env)
        self._sdk = openai
        self._client = openai.AsyncOpenAI(
            api_key=CHATGPT.api_key(env),
            base_url=CHATGPT.base_url(env),
            timeout=timeout_s,
            max_retries=0,
        )
        self._messages: list[dict[str, Any]] = []

    def _errors(self, error: Exception) -> DeliveryError | None:
        if isinstance(error, self._sdk.APITimeoutError):
            return ModelTimedOut("ChatGPT did not answer in time")
        if isinstance(error, self._sdk.APIConnectionError):
            return TransientFailure(f"ChatGPT could not be reached: {error}")
        if isinstance(error, self._sdk.APIStatusError):
            retry = error.response.headers.get("retry-after")
            return _by_status(error.status_code, _reason(error.body, error.message), retry)
        return None

    async def _create(self, messages: list[dict[str, Any]], tools: list[Any]) -> Any:
        system = [{"role": "system", "content": self.context}] if self.context else []
        extra: dict[str, Any] = {"tools": tools} if tools else {}
        call = self._client.chat.completions.create(
            model=self.vendor_model, messages=[*system, *messages], **extra
        )
        answer = await _calling(call, self._errors)
        if not answer.choices:
            raise PermanentFailure("ChatGPT answered no choices")
        return answer

    async def send_context(self, text: str) -> Delivered:
        self.context = text
        answer = await self._create([{"role": "user", "content": ACKNOWLEDGE}], [])
        return Delivered(answer.model, answer.id, answer.choices[0].message.content or "")

    async def sync_conversation(self, messages: Sequence[str]) -> Reply:
        self._messages += [{"role": "user", "content": m} for m in messages]
        answer = await self._create(self._messages, self._schemas())
        message = answer.choices[0].message
        said: dict[str, Any] = {"role": "assistant", "content": message.content}
        uses = []
        if message.tool_calls:
            said["tool_calls"] = []
            for call in message.tool_calls:
                raw = call.function.arguments
                said["tool_calls"].append(
                    {
                        "id": call.id,
                        "type": "function",
                        "function": {"name": call.function.name, "arguments": raw},
                    }
                )
                uses.append(_openai_use(call.id, call.function.name, raw))
        self._messages.append(said)
        return Reply(message.content or "", tuple(uses), answer.id)

    def _answer(self, outcome: ToolOutcome) -> None:
        text = _as_text(outcome) if outcome.ok else f"error: {_as_text(outcome)}"
        self._messages.append(
            {"role": "tool", "tool_call_id": outcome.use.call_id, "content": text}
        )


def _openai_use(call_id: str, name: str, raw: str) -> ToolUse:
    """A tool call whose arguments came as a JSON string."""
    try:
        arguments = json.loads(raw or "{}")
    except ValueError:
        arguments = None
    if not isinstance(arguments, dict):
        return ToolUse(call_id, name, {}, "the arguments are not a JSON object")
    return ToolUse(call_id, name, arguments)


# -- Gemini -------------------------------------------------------------------------------------


class GeminiAdapter(_Conversation):
    """Gemini through `generateContent`; tool results go back as `functionResponse` parts
    (`{"output": ...}`, or `{"error": ...}` for a failure, as Google's docs ask)."""

    spec = GEMINI  # function calling; Gemini Extensions are not built

    def __init__(self, env: Mapping[str, str], timeout_s: float) -> None:
        from google import genai
        from google.genai import errors, types

        super().__init__(env)
        self._types = types
        self._api_error = errors.APIError
        options = types.HttpOptions(
            base_url=GEMINI.base_url(env),
            timeout=int(timeout_s * 1000),  # milliseconds
            retry_options=types.HttpRetryOptions(attempts=1),  # no retries of its own
        )
        self._client = genai.Client(api_key=GEMINI.api_key(env), http_options=options)
        self._contents: list[Any] = []
        self._results: list[Any] = []
        self._ids = itertools.count(1)

    def _errors(self, error: Exception) -> DeliveryError | None:
        if not isinstance(error, self._api_error):
            return None
        body = error.details if isinstance(error.details, dict) else {}
        reasons = [
            d.get("reason")
            for d in (body.get("error") or {}).get("details") or []
            if isinstance(d, dict)
        ]
        reason = error.message or str(error)
        if "API_KEY_INVALID" in reasons:  # Google answers a wrong key with a 400
            return BadCredentials(f"the provider refused the key ({error.code}): {reason}")
        response = getattr(error, "response", None)
        headers = getattr(response, "headers", None) or {}
        return _by_status(error.code, reason, headers.get("retry-after"))

    async def _create(self, contents: list[Any], tools: list[Any]) -> Any:
        types = self._types
        config = types.GenerateContentConfig(
            system_instruction=self.context or None,
            tools=[types.Tool(function_declarations=tools)] if tools else None,
            max_output_tokens=MAX_TOKENS,
        )
        call = self._client.aio.models.generate_content(
            model=self.vendor_model, contents=contents, config=config
        )
        answer = await _calling(call, self._errors)
        if not answer.candidates or answer.candidates[0].content is None:
            raise PermanentFailure("Gemini answered no candidate")
        return answer

    async def send_context(self, text: str) -> Delivered:
        self.context = text
        ask = self._types.Content(role="user", parts=[self._types.Part(text=ACKNOWLEDGE)])
        answer = await self._create([ask], [])
        model = answer.model_version or self.vendor_model
        return Delivered(model, answer.response_id or "", _gemini_text(answer))

    async def sync_conversation(self, messages: Sequence[str]) -> Reply:
        parts = [*self._results, *(self._types.Part(text=m) for m in messages)]
        self._results = []
        self._contents.append(self._types.Content(role="user", parts=parts))
        answer = await self._create(self._contents, self._schemas())
        said = answer.candidates[0].content
        self._contents.append(said)
        uses = [
            ToolUse(call.id or f"{call.name}-{next(self._ids)}", call.name or "", call.args or {})
            for call in answer.function_calls or []
        ]
        return Reply(_gemini_text(answer), tuple(uses), answer.response_id or "")

    def _answer(self, outcome: ToolOutcome) -> None:
        key = "output" if outcome.ok else "error"
        self._results.append(
            self._types.Part.from_function_response(
                name=outcome.use.name, response={key: outcome.result}
            )
        )


def _gemini_text(answer: Any) -> str:
    parts = answer.candidates[0].content.parts or []
    return "".join(part.text for part in parts if part.text and not part.thought)


# -- which adapters a hub has ---------------------------------------------------------------------

_ADAPTERS: dict[str, type[ClaudeAdapter | ChatGPTAdapter | GeminiAdapter]] = {
    CLAUDE.name: ClaudeAdapter,
    CHATGPT.name: ChatGPTAdapter,
    GEMINI.name: GeminiAdapter,
}


def timeout_of(env: Mapping[str, str]) -> float:
    return float(env.get("CHITTY_MODEL_TIMEOUT_S") or DEFAULT_TIMEOUT_S)


def model_adapters(env: Mapping[str, str]) -> dict[str, ModelAdapter]:
    """A fresh adapter (a new conversation) for each model whose key `env` holds, by name
    (claude, chatgpt, gemini). CHITTY_MODEL_TIMEOUT_S bounds each call (default 60 s)."""
    return {p.name: _ADAPTERS[p.name](env, timeout_of(env)) for p in PROVIDERS if p.api_key(env)}


def model_adapter(env: Mapping[str, str], name: str) -> ModelAdapter | None:
    """A fresh adapter for the model `name`, None when its key is not set (or no such model)."""
    provider = next((p for p in PROVIDERS if p.name == name), None)
    if provider is None or not provider.api_key(env):
        return None
    return _ADAPTERS[name](env, timeout_of(env))


def unconfigured(env: Mapping[str, str]) -> dict[str, str]:
    """The models `env` gives no key for: name -> the variable to set."""
    return {p.name: p.key_var for p in PROVIDERS if not p.api_key(env)}


# -- the agent loop -----------------------------------------------------------------------------


@dataclass(frozen=True)
class ToolCall:
    name: str
    arguments: Mapping[str, JsonValue]
    ok: bool


@dataclass(frozen=True)
class AgentAnswer:
    model: str
    answer: str
    tool_calls: tuple[ToolCall, ...]
    steps: int  # model calls made


async def converse(
    adapter: ModelAdapter,
    tools: ToolBox,
    question: str,
    context_text: str,
    max_steps: int = MAX_STEPS,
) -> AgentAnswer:
    """Ask `adapter`'s model `question` with `context_text` as its system prompt and `tools` to
    call: each tool it asks for runs and its outcome (an error too) goes back, until it answers
    in text; `StepLimit` after `max_steps` calls without an answer. Delivery errors propagate."""
    adapter.context = context_text
    await adapter.register_tools(tools)
    calls: list[ToolCall] = []
    reply = await adapter.sync_conversation([question])
    for step in itertools.count(1):
        if not reply.tool_uses:
            return AgentAnswer(adapter.model, reply.text, tuple(calls), step)
        if step >= max_steps:
            break
        for use in reply.tool_uses:
            outcome = await adapter.invoke_tool(use)
            calls.append(ToolCall(use.name, use.arguments, outcome.ok))
        reply = await adapter.sync_conversation([])
    names = ", ".join(call.name for call in calls[-3:])
    raise StepLimit(
        f"{adapter.model} gave no answer within {max_steps} steps (still calling tools: {names})"
    )


class CallerTools:
    """`registry`'s tools run through `client`, which carries the caller's credential: a tool
    can do what its caller could do over REST, nothing more."""

    def __init__(self, registry: ToolRegistry, client: ChittyClient) -> None:
        self.registry = registry
        self.client = client

    def schemas(self, provider: str) -> Sequence[object]:
        if provider == "anthropic":
            return self.registry.anthropic_tools()
        if provider == "openai":
            return self.registry.openai_tools()
        return self.registry.gemini_declarations()

    async def run(self, name: str, arguments: Mapping[str, JsonValue]) -> JsonValue:
        try:
            return await self.registry.invoke(self.client, name, arguments)
        except ToolNotFound as error:
            raise ToolFailed(str(error)) from None
        except (ToolArgumentsError, ChittyError) as error:
            raise ToolFailed(readable(error)) from None


async def ask(
    adapter: ModelAdapter,
    client: ChittyClient,
    registry: ToolRegistry,
    question: str,
    context_text: str,
) -> AgentAnswer:
    """`converse` with `registry`'s tools run as `client`'s caller."""
    return await converse(adapter, CallerTools(registry, client), question, context_text)
