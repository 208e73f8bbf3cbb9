"""A local emulator of Anthropic's Messages API (`POST /v1/messages`) on a loopback port, for
the official `anthropic` SDK pointed at it through `base_url`.

It checks the key (`x-api-key`, or `Authorization: Bearer` as SDK 2.x sends it) and
`anthropic-version` as the service does (401 `authentication_error`, 400
`invalid_request_error`), and answers a message with text or a `tool_use` block
(`stop_reason` `tool_use`) from its script; a request carrying `tool_result` blocks continues
the conversation."""

from __future__ import annotations

import itertools
import secrets
from typing import Any

from aiohttp import web

from tests.emulators.llm import ScriptedModel


def _error(status: int, kind: str, message: str) -> web.Response:
    body = {"type": "error", "error": {"type": kind, "message": message}}
    return web.json_response(body, status=status)


class AnthropicEmulator(ScriptedModel):
    def __init__(self) -> None:
        super().__init__("sk-ant-" + secrets.token_hex(8))
        self._ids = itertools.count(1)

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/v1/messages", self._messages)

    def env(self) -> dict[str, str]:
        return {"ANTHROPIC_API_KEY": self.api_key, "CHITTY_ANTHROPIC_API_URL": self.url}

    async def _messages(self, request: web.Request) -> web.Response:
        keys = (request.headers.get("x-api-key"), request.headers.get("Authorization"))
        if self.api_key not in keys and f"Bearer {self.api_key}" not in keys:
            return _error(401, "authentication_error", "invalid x-api-key")
        if not request.headers.get("anthropic-version"):
            return _error(400, "invalid_request_error", "anthropic-version header is required")
        body: dict[str, Any] = await request.json()
        for name in ("model", "max_tokens", "messages"):
            if name not in body:
                return _error(400, "invalid_request_error", f"{name}: Field required")
        if self.down:
            return _error(500, "api_error", "Internal server error")
        turn = await self.next_turn(body, _last_text(body["messages"]))
        if turn.tool is not None:
            block: dict[str, Any] = {
                "type": "tool_use",
                "id": f"toolu_{next(self._ids):04d}",
                "name": turn.tool,
                "input": turn.args,
            }
            content, stop = [block], "tool_use"
        else:
            content, stop = [{"type": "text", "text": turn.text}], "end_turn"
        return web.json_response(
            {
                "id": f"msg_{next(self._ids):06d}",
                "type": "message",
                "role": "assistant",
                "model": body["model"],
                "content": content,
                "stop_reason": stop,
                "stop_sequence": None,
                "usage": {"input_tokens": 10, "output_tokens": 10},
            }
        )


def _last_text(messages: list[dict[str, Any]]) -> str:
    """The text of the last message (a string, or its text and tool_result blocks)."""
    content = messages[-1]["content"] if messages else ""
    if isinstance(content, str):
        return content
    parts = []
    for block in content:
        if block.get("type") == "text":
            parts.append(block["text"])
        elif block.get("type") == "tool_result":
            inner = block.get("content")
            parts.append(inner if isinstance(inner, str) else str(inner))
    return "\n".join(parts)
