"""Context intelligence on a real hub: `POST /contexts/{id}/enrich` summarizes a context's
sources offline or through an LLM (the official SDKs against local emulators), falls back
when the model times out without holding up a write, and the session summary job."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hub.context_sources import session_context_id
from hub.summarize import Line, Material
from tests.actors.conftest import settings_for
from tests.emulators.anthropic import AnthropicEmulator
from tests.emulators.llm import Turn, summary_json
from tests.emulators.openai import OpenAIEmulator
from tests.transports.conftest import Gateway
from transports.models.summarizers import summarizer_from

MESSAGES = [
    ("user", "We are building ChittyChronicle, a legal timeline app for court filings."),
    ("assistant", "The timeline renders events by date; src/timeline/render.py draws it."),
    ("user", "@bob says the PDF export depends on the timeline renderer."),
    ("assistant", "I fixed the date parser in https://github.com/chitty/chronicle/pull/42."),
    ("user", "Next we add a filter by court. Mail jane@example.com when it ships."),
]


def post(gateway: Gateway, path: str, body: Any = None) -> tuple[int, Any]:
    status, answer, _ = gateway.request("POST", path, body)
    return status, answer


def session_with_messages(gateway: Gateway, platform: str = "claude-code") -> str:
    messages = [
        {"role": role, "content": text, "author": "CHITTY-USER-ALICE"} for role, text in MESSAGES
    ]
    status, body = post(
        gateway,
        "/api/v1/sessions",
        {
            "platform": platform,
            "context": {"messages": messages, "files": [{"path": "src/timeline/render.py"}]},
        },
    )
    assert status == 201, body
    return str(body["entity"]["chittyId"])


def context_of(gateway: Gateway, sources: list[str]) -> str:
    status, body = post(gateway, "/api/v1/contexts", {"type": "session", "sources": sources})
    assert status == 201, body
    return str(body["entity"]["chittyId"])


def test_enrich_with_no_body_summarizes_the_sources_offline(gateway: Gateway) -> None:
    session = session_with_messages(gateway)
    status, body = post(
        gateway, "/api/v1/todos", {"content": "Add a court filter", "sessionId": session}
    )
    assert status == 201, body
    context = context_of(gateway, [session])
    status, body = post(gateway, f"/api/v1/contexts/{context}/enrich")
    assert status == 200, body
    content = body["entity"]["content"]
    assert content["summary"].startswith("5 message(s) by CHITTY-USER-ALICE")
    assert "Open todo: Add a court filter" in content["keyPoints"]
    found = {(e["name"], e["type"]) for e in content["entities"]}
    assert {
        ("@bob", "person"),
        ("jane@example.com", "email"),
        ("chitty/chronicle", "repo"),
    } <= found
    assert ("src/timeline/render.py", "file") in found
    assert all(0 < e["confidence"] <= 1 for e in content["entities"])
    links = {(r["source"], r["target"], r["type"]) for r in content["relationships"]}
    assert ("CHITTY-USER-ALICE", "@bob", "mentions") in links
    recorded = body["entity"]["enrichments"][-1]
    assert recorded["source"] == "chittychat/offline-textrank" and recorded["kind"] == "summary"
    assert recorded["content"]["version"] == "1"
    assert recorded["content"]["contentHash"] == body["summary"]["contentHash"]
    status, again = post(gateway, f"/api/v1/contexts/{context}/enrich", {})
    assert status == 200 and again["entity"]["content"]["summary"] == content["summary"]


def test_enrich_refuses_a_bad_enrichment_and_a_missing_context(gateway: Gateway) -> None:
    context = context_of(gateway, [])
    status, body = post(gateway, f"/api/v1/contexts/{context}/enrich", {"kind": "x"})
    assert status == 422 and body["field"] == "source"
    status, body = post(gateway, "/api/v1/contexts/CHITTY-CONTEXT-NOPE/enrich")
    assert status == 404 and body["field"] == "id"


@pytest.fixture(scope="module")
def claude(
    ray_cluster: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Gateway, AnthropicEmulator]]:
    """A hub whose summarizer is Claude through the Anthropic emulator (a 1 s timeout), and
    whose session job summarizes after 0.3 s of quiet. The emulator has a loop of its own:
    the hub must know its URL before it starts."""
    emulator = AnthropicEmulator()
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    asyncio.run_coroutine_threadsafe(emulator.start(), loop).result(30)
    env = {**emulator.env(), "CHITTY_SUMMARIZER_TIMEOUT_S": "1"}
    tmp: Path = tmp_path_factory.mktemp("claude")
    gateway = Gateway(
        settings_for(tmp, adapter_env=env, summarize_sessions=True, summary_quiet_s=0.3)
    )
    yield gateway, emulator
    gateway.close()
    asyncio.run_coroutine_threadsafe(emulator.stop(), loop).result(30)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)


def test_enrich_through_claude_records_the_model(claude: tuple[Gateway, AnthropicEmulator]) -> None:
    gateway, emulator = claude
    emulator.default = lambda prompt: Turn(
        text=summary_json("Alice builds ChittyChronicle's timeline.", ["Court filter next"])
    )
    context = context_of(gateway, [session_with_messages(gateway)])
    status, body = post(gateway, f"/api/v1/contexts/{context}/enrich")
    assert status == 200, body
    content = body["entity"]["content"]
    assert content["summary"] == "Alice builds ChittyChronicle's timeline."
    assert content["keyPoints"] == ["Court filter next"]
    assert ("@bob", "person") in {(e["name"], e["type"]) for e in content["entities"]}
    assert body["summary"]["summarizer"] == "anthropic"
    assert body["summary"]["version"] == "1/claude-sonnet-4-5"
    asked = emulator.requests[-1]
    assert "ChittyChronicle" in asked["messages"][0]["content"] and "JSON" in asked["system"]


def test_claude_timing_out_falls_back_and_never_holds_up_a_write(
    claude: tuple[Gateway, AnthropicEmulator],
) -> None:
    gateway, emulator = claude
    emulator.delay_s = 3.0  # past the 1 s timeout
    try:
        started = time.monotonic()
        session = session_with_messages(gateway)
        assert time.monotonic() - started < 1.0  # the write does not wait for any model
        context = context_of(gateway, [session])
        status, body = post(gateway, f"/api/v1/contexts/{context}/enrich")
        assert status == 200, body
        assert body["summary"]["summarizer"] == "offline-textrank"
        assert "anthropic: APITimeoutError" in body["summary"]["fallbackReason"]
        assert body["entity"]["content"]["summary"].startswith("5 message(s)")
    finally:
        emulator.delay_s = 0.0


def test_a_session_that_changed_enough_is_summarized_in_the_background(
    claude: tuple[Gateway, AnthropicEmulator],
) -> None:
    gateway, emulator = claude
    emulator.default = lambda prompt: Turn(text=summary_json("Background summary.", ["k"]))
    session = session_with_messages(gateway)
    context_id = session_context_id(session)
    deadline = time.monotonic() + 30
    while True:
        status, body, _ = gateway.request("GET", f"/api/v1/contexts/{context_id}")
        if status == 200 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert status == 200, body
    assert body["entity"]["sources"] == [session] and body["entity"]["type"] == "session"
    assert body["entity"]["content"]["summary"] == "Background summary."
    assert body["entity"]["enrichments"][-1]["content"]["summarizer"] == "anthropic"


def test_the_openai_summarizer_through_its_emulator(
    claude: tuple[Gateway, AnthropicEmulator],
) -> None:
    gateway, _ = claude
    emulator = gateway.call(OpenAIEmulator().start())
    try:
        assert isinstance(emulator, OpenAIEmulator)
        emulator.script = [Turn(text=summary_json("GPT's summary.", ["one", "two"]))]
        summarizer = summarizer_from(emulator.env())
        material = Material((Line("Fix the parser in api/parse.py.", "CHITTY-USER-A"),))
        summary = summarizer.summarize(material)
        assert (summary.summarizer, summary.summary) == ("openai", "GPT's summary.")
        assert summary.key_points == ("one", "two")
        assert ("api/parse.py", "file") in {(e.name, e.type) for e in summary.entities}
        assert emulator.requests[-1]["response_format"] == {"type": "json_object"}
        emulator.script = [Turn(text="no JSON here")]
        fallen = summarizer.summarize(material)
        assert fallen.summarizer == "offline-textrank"
        assert "answered no summary JSON" in (fallen.fallback_reason or "")
    finally:
        gateway.call(emulator.stop())


def test_no_key_means_the_offline_summarizer() -> None:
    assert summarizer_from({}).name == "offline-textrank"
