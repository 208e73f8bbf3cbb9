"""The model adapters over the official SDKs, each against its provider's emulator: a hand-over
context reaches the model in one call, and a provider's refusal, slowness or failure is the
hub's delivery error."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import pytest

from hub.adapters import BadCredentials, TransientFailure
from tests.emulators.anthropic import AnthropicEmulator
from tests.emulators.gemini import GeminiEmulator
from tests.emulators.llm import ScriptedModel, Turn
from tests.emulators.openai import OpenAIEmulator
from transports.models.agents import ModelTimedOut, model_adapters, unconfigured

EMULATORS: dict[str, Callable[[], ScriptedModel]] = {
    "claude": AnthropicEmulator,
    "chatgpt": OpenAIEmulator,
    "gemini": GeminiEmulator,
}
CONTEXT = "Hand-over: the user was writing the sync engine (CHITTY-PROJ-7); 2 todos open."


def with_emulator(name: str, scenario: Callable[[Any], Awaitable[None]]) -> None:
    async def run() -> None:
        emulator = await EMULATORS[name]().start()
        try:
            await scenario(emulator)
        finally:
            await emulator.stop()

    asyncio.run(run())


def system_text(name: str, body: dict[str, Any]) -> str:
    """The system prompt of a request as each API carries it."""
    if name == "claude":
        return str(body["system"])
    if name == "chatgpt":
        return (
            str(body["messages"][0]["content"]) if body["messages"][0]["role"] == "system" else ""
        )
    return " ".join(part["text"] for part in body["systemInstruction"]["parts"])


@pytest.mark.parametrize("name", sorted(EMULATORS))
def test_send_context_hands_the_model_the_context_in_one_call(name: str) -> None:
    async def scenario(emulator: ScriptedModel) -> None:
        emulator.script = [Turn(text="Got it: you were writing the sync engine.")]
        adapter = model_adapters(emulator.env())[name]
        delivered = await adapter.send_context(CONTEXT)
        assert len(emulator.requests) == 1
        assert system_text(name, emulator.requests[0]) == CONTEXT
        assert delivered.acknowledged_text == "Got it: you were writing the sync engine."
        assert delivered.response_id and delivered.model
        assert await adapter.get_context() == CONTEXT
        assert (adapter.model, adapter.provider) == (
            name,
            {"claude": "anthropic", "chatgpt": "openai", "gemini": "google"}[name],
        )

    with_emulator(name, scenario)


@pytest.mark.parametrize("name", sorted(EMULATORS))
def test_a_refused_key_is_bad_credentials(name: str) -> None:
    async def scenario(emulator: ScriptedModel) -> None:
        env = {k: (v + "-wrong" if k.endswith("_KEY") else v) for k, v in emulator.env().items()}
        adapter = model_adapters(env)[name]
        with pytest.raises(BadCredentials, match="refused the key"):
            await adapter.send_context(CONTEXT)
        assert emulator.requests == []  # refused before the model saw anything

    with_emulator(name, scenario)


@pytest.mark.parametrize("name", sorted(EMULATORS))
def test_a_slow_model_times_out_and_a_failing_one_is_transient(name: str) -> None:
    async def scenario(emulator: ScriptedModel) -> None:
        adapter = model_adapters({**emulator.env(), "CHITTY_MODEL_TIMEOUT_S": "0.5"})[name]
        emulator.delay_s = 3.0
        started = asyncio.get_running_loop().time()
        with pytest.raises(ModelTimedOut):
            await adapter.send_context(CONTEXT)
        assert asyncio.get_running_loop().time() - started < 2.5  # no retries
        emulator.delay_s = 0.0
        emulator.down = True
        with pytest.raises(TransientFailure, match="500") as failed:
            await adapter.send_context(CONTEXT)
        assert not isinstance(failed.value, ModelTimedOut)

    with_emulator(name, scenario)


@pytest.mark.parametrize("name", sorted(EMULATORS))
def test_an_unreachable_model_is_transient(name: str) -> None:
    async def scenario(emulator: ScriptedModel) -> None:
        env = emulator.env()
        await emulator.stop()
        with pytest.raises(TransientFailure, match="could not be reached"):
            await model_adapters(env)[name].send_context(CONTEXT)

    with_emulator(name, scenario)


def test_only_configured_models_have_adapters_and_the_others_say_what_to_set() -> None:
    env = {"GOOGLE_AI_API_KEY": "AIza-x", "CHITTY_GEMINI_API_URL": "http://127.0.0.1:9"}
    assert sorted(model_adapters(env)) == ["gemini"]
    assert unconfigured(env) == {"claude": "ANTHROPIC_API_KEY", "chatgpt": "OPENAI_API_KEY"}
    assert model_adapters({}) == {}
    picked = model_adapters({**env, "CHITTY_GEMINI_MODEL": "gemini-2.5-pro"})["gemini"]
    assert picked.vendor_model == "gemini-2.5-pro"  # type: ignore[attr-defined]


def test_the_gemini_emulator_refuses_like_google() -> None:
    async def scenario(emulator: ScriptedModel) -> None:
        url = f"{emulator.url}/v1beta/models/gemini-2.5-flash:generateContent"
        async with aiohttp.ClientSession() as http:
            async with http.post(url, json={"contents": [{"parts": [{"text": "hi"}]}]}) as r:
                assert r.status == 403
                assert (await r.json())["error"]["status"] == "PERMISSION_DENIED"
            headers = {"x-goog-api-key": emulator.api_key}
            async with http.post(url, json={"contents": []}, headers=headers) as r:
                assert r.status == 400
                assert "contents" in (await r.json())["error"]["message"]

    with_emulator("gemini", scenario)
