"""A local emulator of a BlueBubbles server's REST API on a loopback port, and of the webhooks it
posts, for the iMessage adapter to be pointed at (`CHITTY_BLUEBUBBLES_URL`).

REST (`/api/v1/...`, the password as the `password` query parameter of every call): `ping`,
`server/info` (with `private_api`), `message/text` (BlueBubbles' checks: `chatGuid`, a
`tempGuid` and a `message` for AppleScript; a `selectedMessageGuid` reply needs the Private
API), `message/{guid}/edit` (Private API only). It answers as BlueBubbles does,
`{"status", "message", "data"}` or `{"status", "message", "error": {"type", "message"}}`; a wrong
password is a 401; told to, it answers 429 (with `Retry-After`) or 500; while `down` it resets
every connection.

Towards the hub it posts `new-message` events (`webhook`), built by `reply`, `tapback` and
`text_message`, with the right secret in the URL or not.
"""

from __future__ import annotations

import asyncio
import itertools
import time
import urllib.parse
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web

from tests.emulators import serve

PERSON = "+15551234567"
CHAT = f"iMessage;-;{PERSON}"


@dataclass
class Sent:
    """A message as the emulated Messages database holds it."""

    chat: str
    guid: str
    text: str
    temp_guid: str | None
    method: str
    reply_to: str | None  # selectedMessageGuid
    received: float
    edits: list[str] = field(default_factory=list)  # earlier texts, oldest first


class BlueBubblesEmulator:
    """One BlueBubbles server on a loopback port (see the module)."""

    def __init__(self, password: str = "bb-password", private_api: bool = True) -> None:
        self.password = password
        self.private_api = private_api
        self.messages: list[Sent] = []
        self.by_guid: dict[str, Sent] = {}
        self.calls: list[str] = []  # paths called, in order
        self.down = False
        self.rate_limited = 0  # answer this many calls with 429
        self.retry_after: str | None = "1"
        self.failing = 0  # answer this many calls with 500 (an iMessage error)
        self._guids = itertools.count(1)
        self._runner: web.AppRunner | None = None
        self.url = ""
        self.changed = asyncio.Condition()

    async def start(self) -> BlueBubblesEmulator:
        app = web.Application(middlewares=[self._faults])
        app.router.add_get("/api/v1/ping", self._ping)
        app.router.add_get("/api/v1/server/info", self._info)
        app.router.add_post("/api/v1/message/text", self._send_text)
        app.router.add_post("/api/v1/message/{guid}/edit", self._edit)
        self._runner, self.url = await serve(app)
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    # -- the REST API -------------------------------------------------------------------------

    @web.middleware
    async def _faults(self, request: web.Request, handler: Any) -> web.StreamResponse:
        if self.down:  # as if nothing listened: the client sees a reset connection
            assert request.transport is not None
            request.transport.close()
            raise ConnectionResetError("bluebubbles emulator is down")
        self.calls.append(request.path)
        if request.query.get("password") != self.password:
            return _error(401, "Authentication Error", "You are not authorized to access this")
        if self.rate_limited > 0:
            self.rate_limited -= 1
            headers = {"Retry-After": self.retry_after} if self.retry_after else {}
            return web.json_response(
                {"status": 429, "message": "Too many requests"}, status=429, headers=headers
            )
        if self.failing > 0:
            self.failing -= 1
            return _error(500, "iMessage Error", "Failed to send message!")
        answer = await handler(request)
        async with self.changed:
            self.changed.notify_all()
        return answer  # type: ignore[no-any-return]

    async def _ping(self, request: web.Request) -> web.Response:
        return _ok("Ping received!", "pong")

    async def _info(self, request: web.Request) -> web.Response:
        return _ok(
            "Successfully fetched server info",
            {
                "os_version": "14.5",
                "server_version": "1.9.9",
                "private_api": self.private_api,
                "helper_connected": self.private_api,
                "detected_icloud": "hub@icloud.example",
            },
        )

    async def _send_text(self, request: web.Request) -> web.Response:
        body = await request.json()
        chat, text = body.get("chatGuid"), body.get("message")
        method = body.get("method") or "apple-script"
        reply_to = body.get("selectedMessageGuid")
        if reply_to:
            method = "private-api"  # as BlueBubbles: a reply implies the Private API
        if not isinstance(chat, str) or not chat:
            return _error(400, "Validation Error", "The chatGuid field is required.")
        if method == "apple-script" and not (body.get("tempGuid") and text):
            return _error(400, "Validation Error", "A 'tempGuid' and a 'message' are required")
        if method == "private-api" and not self.private_api:
            return _error(400, "Validation Error", "iMessage Private API is not enabled!")
        if reply_to and reply_to not in self.by_guid:
            return _error(400, "Validation Error", "Selected message does not exist!")
        sent = Sent(
            chat,
            f"EMU-{next(self._guids):06d}",
            str(text),
            body.get("tempGuid"),
            method,
            reply_to,
            time.time(),
        )
        self.messages.append(sent)
        self.by_guid[sent.guid] = sent
        data = {"guid": sent.guid, "text": sent.text, "isFromMe": True, "tempGuid": sent.temp_guid}
        return _ok("Message sent!", {**data, "chats": [{"guid": chat}]})

    async def _edit(self, request: web.Request) -> web.Response:
        if not self.private_api:
            return _error(400, "Validation Error", "iMessage Private API is not enabled!")
        body = await request.json()
        sent = self.by_guid.get(request.match_info["guid"])
        if sent is None:
            return _error(400, "Validation Error", "Selected message does not exist!")
        if not body.get("editedMessage") or not body.get("backwardsCompatibilityMessage"):
            return _error(400, "Validation Error", "The editedMessage field is required.")
        sent.edits.append(sent.text)
        sent.text = str(body["editedMessage"])
        return _ok("Message edited!", {"guid": sent.guid, "text": sent.text})

    # -- what the chat holds ------------------------------------------------------------------

    def top(self, chat: str | None = None) -> list[Sent]:
        """Messages that are not replies (in one chat), in sending order."""
        return [m for m in self.messages if m.reply_to is None and (chat is None or m.chat == chat)]

    def replies(self, to: Sent) -> list[Sent]:
        return [m for m in self.messages if m.reply_to == to.guid]

    async def wait_for(self, check: Any, timeout: float = 10.0) -> None:
        """Wait until `check()` is true (re-checked after every API call)."""
        async with self.changed:
            await asyncio.wait_for(self.changed.wait_for(check), timeout)

    # -- BlueBubbles calling the hub ----------------------------------------------------------

    def new_guid(self) -> str:
        return f"IN-{next(self._guids):06d}"

    async def webhook(
        self, url: str, message: dict[str, Any], secret: str | None
    ) -> tuple[int, Any]:
        """POST a `new-message` event to `url`, with `?secret=` when given."""
        if secret is not None:
            url += ("&" if "?" in url else "?") + urllib.parse.urlencode({"secret": secret})
        body = {"type": "new-message", "data": message}
        async with aiohttp.ClientSession() as session, session.post(url, json=body) as answer:
            try:
                return answer.status, await answer.json(content_type=None)
            except ValueError:
                return answer.status, await answer.text()


def text_message(
    text: str, guid: str, sender: str = PERSON, chat: str = CHAT, **fields: Any
) -> dict[str, Any]:
    """A message someone sent, as a webhook's `data`."""
    return {
        "guid": guid,
        "text": text,
        "isFromMe": False,
        "handle": {"address": sender, "service": "iMessage"},
        "chats": [{"guid": chat}],
        "dateCreated": int(time.time() * 1000),
        "associatedMessageGuid": None,
        "associatedMessageType": None,
        "threadOriginatorGuid": None,
        **fields,
    }


def reply(to: Sent, text: str, guid: str, sender: str = PERSON) -> dict[str, Any]:
    """A reply under `to` (iMessage's inline reply)."""
    return text_message(text, guid, sender, to.chat, threadOriginatorGuid=to.guid)


def tapback(to: Sent, guid: str, kind: int | str = 2000, sender: str = PERSON) -> dict[str, Any]:
    """A tapback on `to` (2000 Loved, 2001 Liked, ... 3000+ removals), as Messages stores it."""
    return text_message(
        "Loved “…”",
        guid,
        sender,
        to.chat,
        associatedMessageGuid=f"p:0/{to.guid}",
        associatedMessageType=kind,
    )


def _ok(message: str, data: Any) -> web.Response:
    return web.json_response({"status": 200, "message": message, "data": data})


def _error(status: int, kind: str, message: str) -> web.Response:
    return web.json_response(
        {
            "status": status,
            "message": message,
            "error": {"type": kind, "message": message},
        },
        status=status,
    )
