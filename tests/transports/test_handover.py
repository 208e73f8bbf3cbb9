"""Spec Example 3 on a real hub: a principal works in a Claude Code session, starts a ChatGPT
session, and the hub hands the Claude Code session's context over (summary, last 10 messages,
files, open todos), linked to its sources; the Actions endpoint answers it in one call."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hub.context_sources import session_context_id
from hub.handover import handover_context_id
from tests.actors.conftest import settings_for
from tests.emulators.llm import ScriptedModel, Turn, summary_json
from tests.emulators.models import three_models
from tests.transports.conftest import Gateway
from tests.transports.test_contexts import MESSAGES, post


@pytest.fixture(scope="module")
def hub(ray_cluster: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    """A hub whose background jobs run (session summaries, hand-overs on a switch)."""
    tmp: Path = tmp_path_factory.mktemp("handover")
    gateway = Gateway(settings_for(tmp, summarize_sessions=True, summary_quiet_s=0.2))
    yield gateway
    gateway.close()


def get(gateway: Gateway, path: str) -> tuple[int, Any]:
    status, body, _ = gateway.request("GET", path)
    return status, body


def claude_code_session(gateway: Gateway) -> str:
    """Twelve messages (so the last ten are a choice), two files, three todos (one done)."""
    messages = [
        {
            "role": role,
            "content": f"{n}: {text}",
            "author": "CHITTY-USER-ALICE",
            "timestamp": f"2026-12-05T09:{n:02d}:00Z",
        }
        for n, (role, text) in enumerate(MESSAGES * 3, 1)
    ][:12]
    files = [{"path": "src/timeline/render.py"}, {"path": "src/export/pdf.py"}]
    status, body = post(
        gateway,
        "/api/v1/sessions",
        {"platform": "claude-code", "context": {"messages": messages, "files": files}},
    )
    assert status == 201, body
    session = str(body["entity"]["chittyId"])
    for content, state in [("Court filter", "pending"), ("PDF export", "in_progress")]:
        status, body = post(
            gateway, "/api/v1/todos", {"content": content, "sessionId": session, "status": state}
        )
        assert status == 201, body
    status, body = post(
        gateway,
        "/api/v1/todos",
        {"content": "Date parser", "sessionId": session, "status": "completed"},
    )
    assert status == 201, body
    return session


def until(check: Any, timeout_s: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        found = check()
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


def recorded_handover(hub: Gateway, session: str) -> dict[str, Any]:
    """The hand-over context the switch job records for `session`, once it is there."""

    def recorded() -> Any:
        status, body = get(hub, f"/api/v1/contexts/{handover_context_id(session)}")
        return body if status == 200 else None

    context = until(recorded)
    assert context is not None, f"no hand-over context was recorded for {session}"
    return dict(context)


def assert_handover_of(body: dict[str, Any], session: str) -> None:
    assert body["sessionId"] == session and body["platform"] == "claude-code"
    assert body["summary"], body
    assert [m["content"][:3] for m in body["lastMessages"]] == [f"{n}: " for n in range(3, 10)] + [
        "10:",
        "11:",
        "12:",
    ]
    assert sorted(body["files"]) == ["src/export/pdf.py", "src/timeline/render.py"]
    assert sorted(t["content"] for t in body["openTodos"]) == ["Court filter", "PDF export"]
    assert "Court filter" in body["text"] and body["lastMessages"][-1]["content"] in body["text"]


def test_example_3_switching_to_chatgpt_hands_the_context_over(hub: Gateway) -> None:
    session = claude_code_session(hub)
    status, body = post(hub, "/api/v1/sessions", {"platform": "chatgpt"})
    assert status == 201, body
    gpt_session = body["entity"]["chittyId"]
    context = recorded_handover(hub, gpt_session)
    assert set(context["entity"]["sources"]) == {
        session,
        session_context_id(session),
        gpt_session,
    }
    assert context["entity"]["content"]["summary"]
    [record] = [e for e in context["entity"]["enrichments"] if e["kind"] == "handover"]
    assert record["content"]["target"] == "chatgpt"
    assert len(record["content"]["lastMessages"]) == 10
    [delivery] = record["content"]["deliveries"]
    assert (delivery["status"], delivery["via"]) == ("available", "actions")

    # What the GPT's Action reads: the Claude Code session's hand-over, in one call.
    status, body = get(hub, "/api/v1/contexts/current?target=chatgpt")
    assert status == 200, body
    assert_handover_of(body, session)


def test_propagate_records_the_handover_and_links_its_session(hub: Gateway) -> None:
    session = claude_code_session(hub)
    wanted = {
        "source": "claude-code",
        "target": "chatgpt",
        "targets": ["gemini"],
        "contextId": "CHITTY-CONTEXT-789",
        "sessionId": session,
        "summary": "User working on ChittyChronicle legal timeline app",
    }
    status, body = post(hub, "/api/v1/contexts/propagate", wanted)
    assert status == 404, body  # the context must exist: propagation writes to it
    status, body = post(hub, "/api/v1/contexts", {"type": "conversation"})
    wanted["contextId"] = body["entity"]["chittyId"]
    status, body = post(hub, "/api/v1/contexts/propagate", wanted)
    assert status == 200, body
    assert session in body["entity"]["sources"]
    assert body["entity"]["content"]["summary"].startswith("User working on ChittyChronicle")
    assert_handover_of({**body["handover"], "summary": "x"}, session)
    assert [(d["target"], d["status"]) for d in body["deliveries"]] == [
        ("chatgpt", "available"),
        ("gemini", "not_configured"),
    ]
    [record] = [e for e in body["entity"]["enrichments"] if e["kind"] == "handover"]
    assert record["content"]["deliveries"] == body["deliveries"]


def test_current_context_errors_name_the_field(hub: Gateway) -> None:
    status, body = get(hub, "/api/v1/contexts/current?target=hal9000")
    assert status == 422 and body["field"] == "target"
    status, body = get(hub, "/api/v1/contexts/current?sessionId=CHITTY-TODO-1")
    assert status == 422 and body["field"] == "sessionId"
    status, body = get(hub, "/api/v1/contexts/current?sessionId=CHITTY-SESSION-NOPE")
    assert status == 404 and body["field"] == "sessionId"


def test_the_gpt_action_and_the_tool_answer_the_same_handover(hub: Gateway) -> None:
    session = claude_code_session(hub)
    _, document, _ = hub.request("GET", "/api/v1/openapi.actions.json")
    operation = document["paths"]["/api/v1/contexts/current"]["get"]
    assert operation["operationId"] == "current_context"
    assert {p["name"] for p in operation["parameters"]} == {"sessionId", "target"}
    answer = operation["responses"]["200"]["content"]["application/json"]["schema"]
    assert {"summary", "lastMessages", "openTodos", "text"} <= set(answer["properties"])
    status, body = post(hub, "/api/v1/tools/current_context", {"target": "chatgpt"})
    assert status == 200, body
    assert_handover_of(body["result"], session)


@pytest.fixture(scope="module")
def with_models(
    ray_cluster: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Gateway, dict[str, ScriptedModel]]]:
    """A hub with Claude, ChatGPT and Gemini configured (each through its emulator) and its
    background jobs running."""
    with three_models() as (emulators, env):
        settings = settings_for(
            tmp_path_factory.mktemp("models"),
            adapter_env=env,
            summarize_sessions=True,
            summary_quiet_s=0.2,
        )
        gateway = Gateway(settings)
        yield gateway, emulators
        gateway.close()


def received(emulator: ScriptedModel, text: str) -> bool:
    """Whether any request the emulator received carried `text`."""
    return any(text in json.dumps(body) for body in emulator.requests)


def test_propagate_pushes_the_handover_to_every_configured_model(
    with_models: tuple[Gateway, dict[str, ScriptedModel]],
) -> None:
    hub, emulators = with_models
    for emulator in emulators.values():
        emulator.requests.clear()
        emulator.default = lambda prompt: Turn(text=summary_json("Timeline work.", ["Filter"]))
    session = claude_code_session(hub)
    status, body = post(hub, "/api/v1/contexts", {"type": "session", "sources": [session]})
    context = body["entity"]["chittyId"]
    status, body = post(
        hub,
        "/api/v1/contexts/propagate",
        {
            "source": "claude-code",
            "target": "chatgpt",
            "targets": ["gemini", "claude"],
            "contextId": context,
        },
    )
    assert status == 200, body
    by_target = {d["target"]: d for d in body["deliveries"]}
    for name in ("chatgpt", "gemini", "claude"):
        delivery = by_target[name]
        assert (delivery["status"], delivery["via"]) == ("delivered", "push"), delivery
        assert delivery["responseId"], delivery
        # The model really received the hand-over: its last message and its open todo.
        assert received(emulators[name], "12: "), name
        assert received(emulators[name], "PDF export"), name
    assert body["handover"]["sessionId"] == session  # found through the context's sources

    emulators["gemini"].down = True  # a model that fails is reported as failed, not delivered
    try:
        status, body = post(
            hub,
            "/api/v1/contexts/propagate",
            {"source": "claude-code", "target": "gemini", "contextId": context},
        )
    finally:
        emulators["gemini"].down = False
    assert status == 200 and body["propagation"]["status"] == "failed", body
    assert body["propagation"]["detail"].startswith("the push to gemini failed")


def test_starting_a_gemini_session_pushes_the_handover_to_gemini(
    with_models: tuple[Gateway, dict[str, ScriptedModel]],
) -> None:
    hub, emulators = with_models
    session = claude_code_session(hub)
    emulators["gemini"].requests.clear()
    status, body = post(hub, "/api/v1/sessions", {"platform": "gemini"})
    assert status == 201, body
    gemini_session = body["entity"]["chittyId"]
    context = recorded_handover(hub, gemini_session)
    [record] = [e for e in context["entity"]["enrichments"] if e["kind"] == "handover"]
    [delivery] = record["content"]["deliveries"]
    assert (delivery["target"], delivery["status"]) == ("gemini", "delivered"), delivery
    assert record["content"]["sessionId"] == session
    assert received(emulators["gemini"], "12: ")
