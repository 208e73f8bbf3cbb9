"""What the model emulators answer: a script of turns, then a default; shared by the Anthropic,
OpenAI and Gemini emulators, which only differ in their wire formats."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web


@dataclass(frozen=True)
class Turn:
    """One answer of the model: text, or a call of a tool with arguments."""

    text: str = ""
    tool: str | None = None
    args: dict[str, Any] = field(default_factory=dict)


def summary_json(summary: str, points: list[str]) -> str:
    """What a model asked to summarize answers (the shape our summarizers ask for)."""
    body = {"summary": summary, "keyPoints": points, "entities": [], "relationships": []}
    return json.dumps(body)


class ScriptedModel:
    """A loopback HTTP server answering with `script`'s turns in order, then `default(prompt)`;
    `delay_s` holds each answer back (timeouts), `down` refuses with a 500. `requests` keeps
    every JSON body received. `takes_script(body)` says which requests the script answers
    (default: all); the others get `default` (a hub whose summarizer shares the model)."""

    def __init__(self, api_key: str) -> None:
        self.api_key = api_key
        self.script: list[Turn] = []
        self.default: Callable[[str], Turn] = lambda prompt: Turn(text=f"echo: {prompt[-200:]}")
        self.takes_script: Callable[[dict[str, Any]], bool] = lambda body: True
        self.delay_s = 0.0
        self.down = False
        self.requests: list[dict[str, Any]] = []
        self.url = ""
        self._runner: web.AppRunner | None = None

    def routes(self, app: web.Application) -> None:
        raise NotImplementedError

    async def start(self) -> ScriptedModel:
        app = web.Application()
        self.routes(app)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def next_turn(self, body: dict[str, Any], prompt: str) -> Turn:
        self.requests.append(body)
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        if self.script and self.takes_script(body):
            return self.script.pop(0)
        return self.default(prompt)
