"""The three model emulators (Anthropic Messages, OpenAI Chat Completions, Gemini
generateContent) running together on a loop of their own, and the hub environment that points
the official SDKs at them."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from tests.emulators import Background
from tests.emulators.anthropic import AnthropicEmulator
from tests.emulators.gemini import GeminiEmulator
from tests.emulators.llm import ScriptedModel
from tests.emulators.openai import OpenAIEmulator


@contextmanager
def three_models(
    timeout_s: float = 1.0,
) -> Iterator[tuple[dict[str, ScriptedModel], dict[str, str]]]:
    """The emulators by model name (claude, chatgpt, gemini) and the environment that
    configures all three (each call bounded by `timeout_s`). The emulators outlive any one
    test's loop: a hub started with this environment must know their URLs first."""
    loop = Background()
    emulators: dict[str, ScriptedModel] = {
        "claude": loop.call(AnthropicEmulator().start()),
        "chatgpt": loop.call(OpenAIEmulator().start()),
        "gemini": loop.call(GeminiEmulator().start()),
    }
    env = {"CHITTY_MODEL_TIMEOUT_S": str(timeout_s), "CHITTY_SUMMARIZER_TIMEOUT_S": str(timeout_s)}
    for emulator in emulators.values():
        env.update(emulator.env())  # type: ignore[attr-defined]
    try:
        yield emulators, env
    finally:
        for emulator in emulators.values():
            loop.call(emulator.stop())
        loop.close()
