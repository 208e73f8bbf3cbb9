"""Spec Example 3 on a real hub: a principal works in a Claude Code session, starts a ChatGPT
session, and the hub hands the Claude Code session's context over (summary, last 10 messages,
files, open todos), linked to its sources; the Actions endpoint answers it in one call."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hub.context_sources import session_context_id
from hub.handover import handover_context_id
from tests.actors.conftest import settings_for
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

    def recorded() -> Any:
        status, body = get(hub, f"/api/v1/contexts/{handover_context_id(gpt_session)}")
        return body if status == 200 else None

    context = until(recorded)
    assert context is not None, "no hand-over context was recorded for the ChatGPT session"
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
    status, body = post(
        hub,
        "/api/v1/contexts/propagate",
        {
            "source": "claude-code",
            "target": "chatgpt",
            "targets": ["gemini"],
            "contextId": "CHITTY-CONTEXT-789",
            "sessionId": session,
            "summary": "User working on ChittyChronicle legal timeline app",
        },
    )
    assert status == 404, body  # the context must exist: propagation writes to it
    status, body = post(hub, "/api/v1/contexts", {"type": "conversation"})
    context = body["entity"]["chittyId"]
    status, body = post(
        hub,
        "/api/v1/contexts/propagate",
        {
            "source": "claude-code",
            "target": "chatgpt",
            "targets": ["gemini"],
            "contextId": context,
            "sessionId": session,
            "summary": "User working on ChittyChronicle legal timeline app",
        },
    )
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
