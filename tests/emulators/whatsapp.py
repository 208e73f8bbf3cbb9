"""A local emulator of the WhatsApp Cloud API on a loopback port, for the adapter's Graph API
calls (`CHITTY_WHATSAPP_API_URL` pointed at `api_url`).

Graph API (`Authorization: Bearer <token>`, else 401 with error 190): `GET /v21.0/<number>`
(the phone number), `POST /v21.0/<number>/messages` (a `text` or a `template` message, with an
optional `context.message_id`), answered as Meta does with a new wamid. It keeps each
recipient's 24-hour customer service window, opened by an inbound message the test sends
(`message`, `reaction`): a free-form text outside it is refused with error 131047
("Re-engagement message"), a template is taken only if approved (`templates`). Texts over 4096
characters and template parameters with a line break are refused (error 100, 132018).
`rate_limited` answers that many calls with HTTP 429, error `rate_code` and `Retry-After`;
`down` resets every connection.

Towards the hub it plays Meta: `message`, `reaction` and `status` build webhook bodies for one
number, `signed` gives a body with its `X-Hub-Signature-256` header, `post` sends one to a URL
(with a wrong signature if asked), `verify` makes the GET handshake.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import itertools
import json
import secrets
import time
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp import web

from tests.emulators import serve

WINDOW_S = 24 * 3600


@dataclass
class Sent:
    """A message the emulated Cloud API accepted."""

    wamid: str
    to: str
    type: str  # text / template
    text: str  # the text's body, or the template's body parameter
    template: str | None
    quoted: str | None
    received: float  # time.monotonic() when it arrived


class WhatsAppEmulator:
    """One WhatsApp Business number on a loopback port (see the module)."""

    def __init__(
        self,
        token: str = "EAAG-test",
        phone_number_id: str = "1000001",
        app_secret: str = "test-app-secret",
    ) -> None:
        self.token = token
        self.phone_number_id = phone_number_id
        self.app_secret = app_secret
        self.templates = {"chitty_update"}
        self.sent: list[Sent] = []
        self.refused: list[tuple[int, dict[str, Any]]] = []  # (error code, request body)
        self.windows: dict[str, float] = {}  # wa_id -> when they last wrote (epoch s)
        self.down = False
        self.rate_limited = 0
        self.rate_code = 130429
        self.retry_after: float | None = 1  # None: no Retry-After header
        self.url = ""
        self._ids = itertools.count(1)
        self._runner: web.AppRunner | None = None
        self.changed = asyncio.Condition()

    @property
    def api_url(self) -> str:
        return f"{self.url}/v21.0"

    async def start(self) -> WhatsAppEmulator:
        app = web.Application(middlewares=[self._faults])
        app.router.add_get("/v21.0/{number}", self._number)
        app.router.add_post("/v21.0/{number}/messages", self._messages)
        self._runner, self.url = await serve(app)
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    # -- the Graph API ------------------------------------------------------------------------

    @web.middleware
    async def _faults(self, request: web.Request, handler: Any) -> web.StreamResponse:
        if self.down:  # as if nothing listened: the client sees a reset connection
            assert request.transport is not None
            request.transport.close()
            raise ConnectionResetError("whatsapp emulator is down")
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            return _error(401, 190, "Invalid OAuth access token - Cannot parse access token")
        if request.match_info["number"] != self.phone_number_id:
            return _error(400, 100, "Unsupported request: the object does not exist")
        if self.rate_limited > 0:
            self.rate_limited -= 1
            answer = _error(429, self.rate_code, "Rate limit hit")
            if self.retry_after is not None:
                answer.headers["Retry-After"] = f"{self.retry_after:g}"
            return answer
        return await handler(request)  # type: ignore[no-any-return]

    async def _number(self, request: web.Request) -> web.Response:
        return web.json_response({"id": self.phone_number_id, "display_phone_number": "+1 555"})

    async def _messages(self, request: web.Request) -> web.Response:
        body = await request.json()
        to = str(body.get("to", "")).removeprefix("+")
        kind = body.get("type")
        if body.get("messaging_product") != "whatsapp" or not to:
            return self._refuse(100, "Invalid parameter", body)
        if kind == "text":
            text, template = str((body.get("text") or {}).get("body", "")), None
            if len(text) > 4096:
                return self._refuse(100, "Param text['body'] must be at most 4096", body)
            if time.time() - self.windows.get(to, -1e12) >= WINDOW_S:
                return self._refuse(131047, "Re-engagement message", body)
        elif kind == "template":
            template = body.get("template") or {}
            if template.get("name") not in self.templates or not template.get("language"):
                return self._refuse(132001, "Template name does not exist", body)
            [component] = template["components"]
            [parameter] = component["parameters"]
            text = str(parameter["text"])
            if "\n" in text or "\t" in text or "    " in text:
                return self._refuse(132018, "Param text cannot have new-line/tab", body)
            template = str(template["name"])
        else:
            return self._refuse(100, f"unsupported type {kind!r}", body)
        quoted = (body.get("context") or {}).get("message_id")
        wamid = f"wamid.{next(self._ids):04d}{secrets.token_hex(6)}"
        self.sent.append(Sent(wamid, to, kind, text, template, quoted, time.monotonic()))
        async with self.changed:
            self.changed.notify_all()
        return web.json_response(
            {
                "messaging_product": "whatsapp",
                "contacts": [{"input": body["to"], "wa_id": to}],
                "messages": [{"id": wamid}],
            }
        )

    def _refuse(self, code: int, message: str, body: dict[str, Any]) -> web.Response:
        self.refused.append((code, body))
        return _error(400, code, message)

    # -- what the number holds ----------------------------------------------------------------

    def to(self, wa_id: str) -> list[Sent]:
        return [s for s in self.sent if s.to == wa_id]

    def by_id(self, wamid: str) -> Sent:
        [found] = [s for s in self.sent if s.wamid == wamid]
        return found

    async def wait_for(self, check: Any, timeout: float = 10.0) -> None:
        async with self.changed:
            await asyncio.wait_for(self.changed.wait_for(check), timeout)

    # -- Meta calling the hub -----------------------------------------------------------------

    def _envelope(self, value: dict[str, Any]) -> dict[str, Any]:
        value = {
            "messaging_product": "whatsapp",
            "metadata": {
                "display_phone_number": "15550000000",
                "phone_number_id": self.phone_number_id,
            },
            **value,
        }
        return {
            "object": "whatsapp_business_account",
            "entry": [{"id": "WABA1", "changes": [{"field": "messages", "value": value}]}],
        }

    def _inbound(self, sender: str, at: float | None, message: dict[str, Any]) -> dict[str, Any]:
        """A person's message: it opens their window (as of `at`, now by default)."""
        at = time.time() if at is None else at
        self.windows[sender] = max(self.windows.get(sender, -1e12), at)
        message = {
            "from": sender,
            "id": f"wamid.IN{next(self._ids):04d}{secrets.token_hex(4)}",
            "timestamp": str(int(at)),
            **message,
        }
        contact = {"profile": {"name": "Tester"}, "wa_id": sender}
        return self._envelope({"contacts": [contact], "messages": [message]})

    def message(
        self, sender: str, text: str, quoted: str | None = None, at: float | None = None
    ) -> dict[str, Any]:
        """The webhook body of `sender` writing `text` (quoting `quoted`)."""
        message: dict[str, Any] = {"type": "text", "text": {"body": text}}
        if quoted is not None:
            message["context"] = {"from": "15550000000", "id": quoted}
        return self._inbound(sender, at, message)

    def reaction(self, sender: str, wamid: str, emoji: str = "✅") -> dict[str, Any]:
        reaction = {"message_id": wamid, "emoji": emoji}
        return self._inbound(sender, None, {"type": "reaction", "reaction": reaction})

    def status(
        self, *statuses: tuple[str, str], error: tuple[int, str] = (131026, "Message undeliverable")
    ) -> dict[str, Any]:
        """The webhook body of (wamid, status) pairs; a `failed` one carries Meta's `error`."""
        found = []
        for wamid, state in statuses:
            sent = next((s for s in self.sent if s.wamid == wamid), None)
            item: dict[str, Any] = {
                "id": wamid,
                "status": state,
                "timestamp": str(int(time.time())),
                "recipient_id": sent.to if sent else "",
            }
            if state == "failed":
                item["errors"] = [{"code": error[0], "title": error[1]}]
            found.append(item)
        return self._envelope({"statuses": found})

    def signed(self, payload: dict[str, Any]) -> tuple[bytes, dict[str, str]]:
        """The body Meta would POST, and its headers (`X-Hub-Signature-256`)."""
        body = json.dumps(payload).encode()
        return body, self.sign(body)

    def sign(self, body: bytes) -> dict[str, str]:
        """The headers Meta sends `body` with (HMAC-SHA256 with the app secret)."""
        digest = hmac.new(self.app_secret.encode(), body, hashlib.sha256).hexdigest()
        return {"Content-Type": "application/json", "X-Hub-Signature-256": f"sha256={digest}"}

    async def post(
        self, url: str, payload: dict[str, Any], signature: str | None = None
    ) -> tuple[int, Any]:
        body, headers = self.signed(payload)
        if signature is not None:
            headers["X-Hub-Signature-256"] = signature
        async with (
            aiohttp.ClientSession() as session,
            session.post(url, data=body, headers=headers) as answer,
        ):
            text = await answer.text()
            try:
                return answer.status, json.loads(text)
            except ValueError:
                return answer.status, text

    async def verify(self, url: str, token: str, challenge: str) -> tuple[int, str]:
        query = {"hub.mode": "subscribe", "hub.verify_token": token, "hub.challenge": challenge}
        async with aiohttp.ClientSession() as session, session.get(url, params=query) as answer:
            return answer.status, await answer.text()


def _error(status: int, code: int, message: str) -> web.Response:
    error = {"message": message, "type": "OAuthException", "code": code, "fbtrace_id": "Aemu"}
    return web.json_response({"error": error}, status=status)
