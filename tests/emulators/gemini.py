"""A local emulator of Google's Gemini API `generateContent` (`POST /{version}/models/{model}
:generateContent`, v1 or v1beta) on a loopback port, for the official `google-genai` SDK pointed
at it through `HttpOptions(base_url=...)`.

It checks the key as the service does (`x-goog-api-key`, or `?key=`): none is 403
`PERMISSION_DENIED`, a wrong one 400 `INVALID_ARGUMENT` with reason `API_KEY_INVALID`; a body
without `contents` is 400 `INVALID_ARGUMENT`. It answers with a text part or a `functionCall`
part (`args` an object) from its script; a request whose last content carries
`functionResponse` parts continues the conversation."""

from __future__ import annotations

import itertools
import json
import secrets
from typing import Any

from aiohttp import web

from tests.emulators.llm import ScriptedModel

_STATUS = {400: "INVALID_ARGUMENT", 403: "PERMISSION_DENIED", 500: "INTERNAL"}


def _error(code: int, message: str, reason: str | None = None) -> web.Response:
    error: dict[str, Any] = {"code": code, "message": message, "status": _STATUS[code]}
    if reason is not None:
        error["details"] = [
            {
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": reason,
                "domain": "googleapis.com",
            }
        ]
    return web.json_response({"error": error}, status=code)


class GeminiEmulator(ScriptedModel):
    def __init__(self) -> None:
        super().__init__("AIza" + secrets.token_hex(16))
        self._ids = itertools.count(1)

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/{version}/models/{call}", self._generate)

    def env(self) -> dict[str, str]:
        return {"GOOGLE_AI_API_KEY": self.api_key, "CHITTY_GEMINI_API_URL": self.url}

    async def _generate(self, request: web.Request) -> web.Response:
        model, _, method = request.match_info["call"].partition(":")
        if request.match_info["version"] not in ("v1", "v1beta") or method != "generateContent":
            return web.json_response({"error": {"code": 404, "status": "NOT_FOUND"}}, status=404)
        key = request.headers.get("x-goog-api-key") or request.query.get("key")
        if not key:
            return _error(403, "Method doesn't allow unregistered callers", "API_KEY_MISSING")
        if key != self.api_key:
            return _error(400, "API key not valid. Please pass a valid API key.", "API_KEY_INVALID")
        try:
            body: dict[str, Any] = await request.json()
        except json.JSONDecodeError:
            return _error(400, "Invalid JSON payload received.")
        if not isinstance(body, dict) or not body.get("contents"):
            return _error(400, "* GenerateContentRequest.contents: contents is not specified")
        if self.down:
            return _error(500, "An internal error has occurred.")
        turn = await self.next_turn(body, _last_text(body["contents"]))
        if turn.tool is not None:
            part: dict[str, Any] = {"functionCall": {"name": turn.tool, "args": turn.args}}
        else:
            part = {"text": turn.text}
        return web.json_response(
            {
                "candidates": [
                    {
                        "content": {"role": "model", "parts": [part]},
                        "finishReason": "STOP",
                        "index": 0,
                    }
                ],
                "usageMetadata": {
                    "promptTokenCount": 10,
                    "candidatesTokenCount": 10,
                    "totalTokenCount": 20,
                },
                "modelVersion": model,
                "responseId": f"resp-{next(self._ids):06d}",
            }
        )


def _last_text(contents: list[dict[str, Any]]) -> str:
    """The text of the last content: its text parts and function responses."""
    parts = []
    for part in contents[-1].get("parts") or []:
        if "text" in part:
            parts.append(str(part["text"]))
        elif "functionResponse" in part:
            parts.append(json.dumps(part["functionResponse"].get("response")))
    return "\n".join(parts)
