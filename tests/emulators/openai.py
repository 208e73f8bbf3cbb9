"""A local emulator of OpenAI's Chat Completions API (`POST /v1/chat/completions`) on a
loopback port, for the official `openai` SDK pointed at it through `base_url`.

It checks the bearer key (401 `invalid_api_key`) and answers with text or `tool_calls`
(`finish_reason` `tool_calls`, arguments as a JSON string) from its script; `tool` role
messages continue the conversation."""

from __future__ import annotations

import itertools
import json
import secrets
import time
from typing import Any

from aiohttp import web

from tests.emulators.llm import ScriptedModel


def _error(status: int, code: str, message: str) -> web.Response:
    body = {"error": {"message": message, "type": "invalid_request_error", "code": code}}
    return web.json_response(body, status=status)


class OpenAIEmulator(ScriptedModel):
    def __init__(self) -> None:
        super().__init__("sk-" + secrets.token_hex(12))
        self._ids = itertools.count(1)

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/v1/chat/completions", self._completions)

    def env(self) -> dict[str, str]:
        return {"OPENAI_API_KEY": self.api_key, "CHITTY_OPENAI_API_URL": self.url + "/v1"}

    async def _completions(self, request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != f"Bearer {self.api_key}":
            return _error(401, "invalid_api_key", "Incorrect API key provided")
        body: dict[str, Any] = await request.json()
        if not body.get("model") or not body.get("messages"):
            return _error(400, "missing_required_parameter", "model and messages are required")
        if self.down:
            return _error(500, "server_error", "The server had an error")
        last = body["messages"][-1]
        turn = await self.next_turn(body, str(last.get("content") or ""))
        message: dict[str, Any] = {"role": "assistant", "content": turn.text or None}
        finish = "stop"
        if turn.tool is not None:
            message["tool_calls"] = [
                {
                    "id": f"call_{next(self._ids):04d}",
                    "type": "function",
                    "function": {"name": turn.tool, "arguments": json.dumps(turn.args)},
                }
            ]
            finish = "tool_calls"
        return web.json_response(
            {
                "id": f"chatcmpl-{next(self._ids):06d}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": body["model"],
                "choices": [{"index": 0, "message": message, "finish_reason": finish}],
                "usage": {"prompt_tokens": 10, "completion_tokens": 10, "total_tokens": 20},
            }
        )
