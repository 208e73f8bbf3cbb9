"""`chitty ask` and `POST /api/v1/ask` on a real hub whose environment points at the Claude,
ChatGPT and Gemini emulators: the model calls the hub's tools (run as the caller), gets their
results or errors back, and answers; a model that fails, times out or never answers is a clear
error."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from typer.testing import CliRunner

from hub.auth.principal import Role
from hub.ids import IdGenerator, Kind
from tests.actors.conftest import settings_for
from tests.emulators.llm import ScriptedModel, Turn, summary_json
from tests.emulators.models import three_models
from tests.transports.conftest import SESSION, Gateway
from transports.cli import app
from transports.client import ChittyClient

runner = CliRunner(env={"COLUMNS": "250"})
MODELS = ("claude", "chatgpt", "gemini")
_ids = IdGenerator("test-ask", lambda: time.time_ns() // 1_000_000)


class Hub:
    """A hub with all three models configured, each answering from its emulator."""

    def __init__(self, gateway: Gateway, emulators: dict[str, ScriptedModel]) -> None:
        self.gateway = gateway
        self.emulators = emulators

    def model(self, name: str) -> ScriptedModel:
        """The emulator of `name`, its script and record cleared. Its script answers only the
        requests that offer tools (an agent's): the hub's summarizer (Claude here) asks the
        same emulator for summaries as it builds hand-over contexts."""
        emulator = self.emulators[name]
        emulator.script, emulator.requests = [], []
        emulator.delay_s, emulator.down = 0.0, False
        emulator.takes_script = lambda body: bool(body.get("tools"))
        emulator.default = lambda prompt: Turn(text=summary_json("A summary.", ["a point"]))
        return emulator

    def asked(self, name: str) -> list[dict[str, Any]]:
        """The requests an agent made of `name` (those offering tools), in order."""
        return [body for body in self.emulators[name].requests if body.get("tools")]

    def ask(self, body: Any, token: str | None = None) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {token}"} if token else None
        status, answer, _ = self.gateway.request("POST", "/api/v1/ask", body, headers=headers)
        return status, answer


@pytest.fixture(scope="module")
def hub(ray_cluster: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    with three_models() as (emulators, env):
        gateway = Gateway(settings_for(tmp_path_factory.mktemp("ask"), adapter_env=env))
        yield Hub(gateway, emulators)
        gateway.close()


@pytest.fixture(autouse=True)
def _token(hub: Hub, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHITTY_TOKEN", hub.gateway.token)


def seeded(hub: Hub, name: str) -> tuple[str, list[str]]:
    """A project with two open todos and a completed one: its id and the open ones' contents."""
    project = hub.gateway.project(f"Sync engine ({name})")
    contents = [f"Write the {name} merge step", f"Test the {name} replay"]
    for content, status in [
        *((c, "pending") for c in contents),
        (f"Old {name} spike", "completed"),
    ]:
        code, body, _ = hub.gateway.request(
            "POST",
            "/api/v1/todos",
            {"content": content, "status": status, "projectId": project, "sessionId": SESSION},
        )
        assert code == 201, body
    return project, contents


def system_prompt(name: str, body: dict[str, Any]) -> str:
    if name == "claude":
        return str(body.get("system") or "")
    if name == "chatgpt":
        first = body["messages"][0]
        return str(first["content"]) if first["role"] == "system" else ""
    return " ".join(p["text"] for p in (body.get("systemInstruction") or {}).get("parts") or [])


def offered(name: str, body: dict[str, Any]) -> set[str]:
    """The names of the tools a request offers the model."""
    if name == "claude":
        return {t["name"] for t in body["tools"]}
    if name == "chatgpt":
        return {t["function"]["name"] for t in body["tools"]}
    return {d["name"] for t in body["tools"] for d in t["functionDeclarations"]}


def tool_results(name: str, body: dict[str, Any]) -> list[tuple[str, bool]]:
    """The tool results a request hands back to the model: (the result as text, an error?)."""
    if name == "claude":
        last = body["messages"][-1]["content"]
        return [(b["content"], bool(b["is_error"])) for b in last if b["type"] == "tool_result"]
    if name == "chatgpt":
        found = []
        for message in reversed(body["messages"]):
            if message["role"] != "tool":
                break
            text = message["content"]
            found.insert(0, (text, text.startswith("error: ")))
        return found
    parts = body["contents"][-1]["parts"]
    responses = [p["functionResponse"]["response"] for p in parts if "functionResponse" in p]
    return [(json.dumps(r), "error" in r) for r in responses]


@pytest.mark.parametrize("name", MODELS)
def test_chitty_ask_answers_about_a_projects_todos_by_calling_a_hub_tool(
    hub: Hub, name: str
) -> None:
    project, contents = seeded(hub, name)
    emulator = hub.model(name)
    emulator.script = [
        Turn(tool="list_todos", args={"projectId": project, "status": "pending"}),
        Turn(text=f"Two todos are open: {contents[0]} and {contents[1]}."),
    ]
    result = runner.invoke(
        app,
        [
            *("ask", "what is open in the sync engine?", "--model", name),
            *("--project", project, "--hub", hub.gateway.url),
        ],
    )
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == f"Two todos are open: {contents[0]} and {contents[1]}."
    arguments = json.dumps({"projectId": project, "status": "pending"}, sort_keys=True)
    assert lines[1] == f"  tool list_todos {arguments} ok"
    first, second = hub.asked(name)
    assert "(The project asked about: " + project in json.dumps(first)
    assert {"list_todos", "create_todo", "current_context"} <= offered(name, first)
    status, current, _ = hub.gateway.request("GET", f"/api/v1/contexts/current?target={name}")
    context = current["text"] if status == 200 else f"project {project}. Its open todos:"
    assert context in system_prompt(name, first)
    # The hub tool really ran: its result, sent back to the model, holds the seeded todos.
    [(result_text, is_error)] = tool_results(name, second)
    assert not is_error
    assert all(content in result_text for content in contents)
    assert f"Old {name} spike" not in result_text  # status=pending was applied by the hub


@pytest.mark.parametrize("name", MODELS)
def test_a_tool_error_goes_back_to_the_model_and_the_loop_goes_on(hub: Hub, name: str) -> None:
    emulator = hub.model(name)
    nowhere = _ids.new(Kind.SESSION)
    emulator.script = [
        Turn(tool="get_session_context", args={"sessionId": nowhere}),
        Turn(tool="drop_everything", args={}),
        Turn(tool="list_todos", args={"projectId": "not-a-project"}),
        Turn(text="I could not find that session."),
    ]
    status, answer = hub.ask({"question": f"what happened in {nowhere}?", "model": name})
    assert status == 200, answer
    assert answer["answer"] == "I could not find that session."
    assert answer["steps"] == 4
    assert [(c["name"], c["ok"]) for c in answer["toolCalls"]] == [
        ("get_session_context", False),
        ("drop_everything", False),
        ("list_todos", False),
    ]
    errors = [tool_results(name, request) for request in hub.asked(name)[1:]]
    assert [[is_error for _, is_error in results] for results in errors] == [[True]] * 3
    assert "404" in errors[0][0][0] and nowhere in errors[0][0][0]  # the hub's refusal
    assert "no tool 'drop_everything'" in errors[1][0][0] and "list_todos" in errors[1][0][0]
    assert "projectId" in errors[2][0][0]  # the argument at fault


def test_a_model_that_never_answers_stops_at_the_step_limit(hub: Hub) -> None:
    emulator = hub.model("gemini")
    emulator.script = [Turn(tool="list_todos", args={})] * 10
    status, answer = hub.ask({"question": "loop for ever", "model": "gemini"})
    assert status == 502 and answer["error"] == "model_failed", answer
    assert "no answer within 8 steps" in answer["detail"] and "list_todos" in answer["detail"]
    assert len(hub.asked("gemini")) == 8 and len(emulator.script) == 2


def test_tools_run_as_the_caller(hub: Hub) -> None:
    """A member who is no member of the project sees none of its todos through the model."""
    project, contents = seeded(hub, "scoped")
    _, member = hub.gateway.tokens.create("outsider", Role.MEMBER)
    emulator = hub.model("claude")
    emulator.script = [Turn(tool="list_todos", args={"projectId": project}), Turn(text="none")]
    status, answer = hub.ask({"question": "what is open?", "model": "claude"}, token=member)
    assert status == 200, answer
    [(result_text, _)] = tool_results("claude", hub.asked("claude")[1])
    assert not any(content in result_text for content in contents), result_text


def test_a_service_asks_and_its_tools_run_signed_as_it(hub: Hub) -> None:
    """A custom agent (a service principal, which must sign every request) reaches a model
    the same way: the tools' loopback calls carry its credential and are signed too."""
    project, contents = seeded(hub, "service")
    _, token = hub.gateway.tokens.create("router", Role.SERVICE)
    emulator = hub.model("gemini")
    emulator.script = [Turn(tool="list_todos", args={"projectId": project}), Turn(text="done")]

    async def go() -> Any:
        async with ChittyClient(hub.gateway.url, token=token, sign=True) as client:
            return await client.ask("what is open?", "gemini", project_id=project)

    answer = asyncio.run(go())
    assert answer["answer"] == "done"
    called = {"name": "list_todos", "arguments": {"projectId": project}, "ok": True}
    assert answer["toolCalls"] == [called]
    [(result_text, _)] = tool_results("gemini", hub.asked("gemini")[1])
    assert all(content in result_text for content in contents)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"model": "claude"}, "question"),
        ({"question": "", "model": "claude"}, "question"),
        ({"question": "x" * 4001, "model": "claude"}, "question"),
        ({"question": "hi", "model": "llama"}, "model"),
        ({"question": "hi", "model": "claude", "projectId": "nope"}, "projectId"),
        ({"question": "hi", "model": "claude", "extra": 1}, "extra"),
    ],
)
def test_a_bad_body_is_a_422_naming_the_field(hub: Hub, body: Any, field: str) -> None:
    status, answer = hub.ask(body)
    assert status == 422 and answer["field"] == field, answer


def test_a_refused_slow_or_failing_model_is_a_clear_gateway_error(hub: Hub) -> None:
    emulator = hub.model("chatgpt")
    emulator.delay_s = 3.0  # past the hub's 1 s timeout
    status, answer = hub.ask({"question": "hi", "model": "chatgpt"})
    assert status == 504 and answer["error"] == "model_timeout", answer
    emulator = hub.model("chatgpt")
    emulator.down = True
    status, answer = hub.ask({"question": "hi", "model": "chatgpt"})
    assert status == 502 and "500" in answer["detail"], answer
    emulator = hub.model("claude")
    key, emulator.api_key = emulator.api_key, "sk-ant-rotated"
    try:
        status, answer = hub.ask({"question": "hi", "model": "claude"})
    finally:
        emulator.api_key = key
    assert status == 502 and "refused the key" in answer["detail"], answer
    assert "invalid x-api-key" in answer["detail"]  # the provider's own reason


def test_cli_errors_are_one_line_without_a_traceback(hub: Hub) -> None:
    hub.model("gemini").down = True
    failed = runner.invoke(app, ["ask", "hi", "--model", "gemini", "--hub", hub.gateway.url])
    assert failed.exit_code == 1 and "error 502" in failed.output, failed.output
    assert "Traceback" not in failed.output and len(failed.output.strip().splitlines()) == 1
    hub.model("gemini")
    unknown = runner.invoke(app, ["ask", "hi", "--model", "llama", "--hub", hub.gateway.url])
    assert unknown.exit_code == 2 and "llama" in unknown.output
    bad = runner.invoke(app, ["ask", "hi", "--model", "gemini", "--project", "P"])
    assert bad.exit_code == 2 and "CHITTY-PROJ-" in bad.output
