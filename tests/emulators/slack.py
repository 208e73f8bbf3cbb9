"""A local emulator of Slack's wire protocol on a loopback port, for `slack_sdk` pointed at it.

Web API (`POST /api/<method>`, JSON or form bodies, `Authorization: Bearer <token>`):
`auth.test`, `chat.postMessage`, `chat.update`, `chat.delete`, `reactions.add`,
`conversations.history` and `conversations.replies` (paged by `cursor`, from `oldest`),
`conversations.members` (paged), `apps.connections.open` (Socket Mode: a `ws://` URL served here).
It answers as Slack does: `{"ok": true, ...}` or `{"ok": false, "error": ...}`, HTTP 429 with
`Retry-After` when told to rate-limit, 401-ish `invalid_auth` for an unknown token, and nothing
at all while `down` (connections are reset).

Towards the hub it plays Slack too: `event(...)` POSTs a signed Events API request (v0 HMAC
signature, `X-Slack-Request-Timestamp`), `command(...)` a signed slash command, and `push(...)`
sends an envelope to the connected Socket Mode client and waits for its ack.

Run on its own (`python -m tests.emulators.slack`, for a benchmark: its own process, its own
GIL), it prints its URL and serves until stdin closes; `GET /_emulator/posts` lists what it
received, with when.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import itertools
import json
import sys
import time
import urllib.parse
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web

from tests.emulators import serve


@dataclass
class Posted:
    """A message as the emulated workspace holds it."""

    channel: str
    ts: str
    text: str
    blocks: Any
    thread_ts: str | None
    metadata: Any
    received: float  # time.time() when it arrived (for latency measurements)
    edits: list[str] = field(default_factory=list)  # earlier texts, oldest first
    edited: float | None = None
    deleted: bool = False


def reaction_added(posted: Posted, user: str = "U1", reaction: str = "white_check_mark") -> Any:
    """The Events API event of `user` reacting to a message (a ✅ by default)."""
    return {
        "type": "reaction_added",
        "user": user,
        "reaction": reaction,
        "item": {"type": "message", "channel": posted.channel, "ts": posted.ts},
    }


class SlackEmulator:
    """One Slack workspace on a loopback port (see the module)."""

    def __init__(
        self,
        token: str = "xoxb-test",
        app_token: str = "xapp-test",
        signing_secret: str = "test-signing-secret",
    ) -> None:
        self.token = token
        self.app_token = app_token
        self.signing_secret = signing_secret
        self.messages: list[Posted] = []
        self.by_ts: dict[tuple[str, str], Posted] = {}
        self.members: dict[str, list[str]] = {}
        self.reactions: list[tuple[str, str, str]] = []
        self.calls: list[str] = []  # methods called, in order
        self.down = False
        self.rate_limited = 0  # answer this many calls with 429
        self.retry_after = 1
        self.fail_with: dict[str, str] = {}  # method -> Slack error to answer
        self.missing_channels: set[str] = set()  # posting there: channel_not_found
        self._ts = itertools.count(1)
        self._runner: web.AppRunner | None = None
        self.url = ""
        self.socket: web.WebSocketResponse | None = None
        self.socket_connected = asyncio.Event()
        self._acks: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self.changed = asyncio.Condition()

    @property
    def api_url(self) -> str:
        """What `AsyncWebClient(base_url=...)` (and CHITTY_SLACK_API_URL) is set to."""
        return f"{self.url}/api/"

    async def start(self) -> SlackEmulator:
        app = web.Application(middlewares=[self._faults])
        app.router.add_post("/api/{method}", self._api)
        app.router.add_get("/api/{method}", self._api)  # conversations.history and other reads
        app.router.add_get("/socket-mode", self._socket)
        app.router.add_get("/_emulator/posts", self._posts)
        self._runner, self.url = await serve(app)
        return self

    async def stop(self) -> None:
        if self.socket is not None:
            await self.socket.close()
        if self._runner is not None:
            await self._runner.cleanup()

    async def _posts(self, request: web.Request) -> web.Response:
        """Every post received: its metadata's chittyId and when it arrived (epoch s)."""
        return web.json_response(
            [
                [((m.metadata or {}).get("event_payload") or {}).get("chittyId"), m.received]
                for m in self.messages
            ]
        )

    # -- the Web API --------------------------------------------------------------------------

    @web.middleware
    async def _faults(self, request: web.Request, handler: Any) -> web.StreamResponse:
        if self.down:  # as if nothing listened: the client sees a reset connection
            assert request.transport is not None
            request.transport.close()
            raise ConnectionResetError("slack emulator is down")
        return await handler(request)  # type: ignore[no-any-return]

    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        self.calls.append(method)
        if request.method == "GET":
            args: dict[str, Any] = dict(request.query)
        elif request.content_type == "application/json":
            args = await request.json()
        else:
            args = dict(await request.post())
        token = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        token = token or str(args.get("token", ""))
        wanted = self.app_token if method == "apps.connections.open" else self.token
        if token != wanted:
            return web.json_response({"ok": False, "error": "invalid_auth"})
        if self.rate_limited > 0:
            self.rate_limited -= 1
            return web.json_response(
                {"ok": False, "error": "ratelimited"},
                status=429,
                headers={"Retry-After": str(self.retry_after)},
            )
        if method in self.fail_with:
            return web.json_response({"ok": False, "error": self.fail_with[method]})
        try:
            answer = await getattr(self, "_" + method.replace(".", "_"))(args)
        except _SlackError as error:
            return web.json_response({"ok": False, "error": error.code})
        async with self.changed:
            self.changed.notify_all()
        return web.json_response({"ok": True, **answer})

    def _new_ts(self) -> str:
        return f"{int(time.time())}.{next(self._ts):06d}"

    async def _auth_test(self, args: dict[str, Any]) -> dict[str, Any]:
        return {"team": "emulated", "team_id": "T1", "user": "chitty", "user_id": "UBOT"}

    async def _chat_postMessage(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = str(args["channel"])
        if channel in self.missing_channels:
            raise _SlackError("channel_not_found")
        posted = Posted(
            channel,
            self._new_ts(),
            str(args.get("text", "")),
            _json(args.get("blocks")),
            args.get("thread_ts"),
            _json(args.get("metadata")),
            time.time(),
        )
        self.messages.append(posted)
        self.by_ts[(channel, posted.ts)] = posted
        return {"channel": channel, "ts": posted.ts, "message": {"text": posted.text}}

    async def _chat_update(self, args: dict[str, Any]) -> dict[str, Any]:
        posted = self.by_ts.get((str(args["channel"]), str(args["ts"])))
        if posted is None or posted.deleted:
            raise _SlackError("message_not_found")
        posted.edits.append(posted.text)
        posted.text = str(args.get("text", ""))
        posted.blocks = _json(args.get("blocks"))
        posted.edited = time.time()
        return {"channel": posted.channel, "ts": posted.ts}

    async def _chat_delete(self, args: dict[str, Any]) -> dict[str, Any]:
        posted = self.by_ts.get((str(args["channel"]), str(args["ts"])))
        if posted is not None:
            posted.deleted = True
        return {"channel": args["channel"], "ts": args["ts"]}

    async def _reactions_add(self, args: dict[str, Any]) -> dict[str, Any]:
        self.reactions.append((str(args["channel"]), str(args["timestamp"]), str(args["name"])))
        return {}

    async def _conversations_history(self, args: dict[str, Any]) -> dict[str, Any]:
        """A channel's top-level messages (a thread's replies are not in it, as in Slack),
        newest first, from `oldest`, a page of `limit` after `cursor`."""
        channel = str(args["channel"])
        return self._page(
            [m for m in self.live(channel) if m.thread_ts in (None, m.ts)][::-1], args
        )

    async def _conversations_replies(self, args: dict[str, Any]) -> dict[str, Any]:
        """A thread: its root, then its replies, oldest first (as in Slack)."""
        channel, root = str(args["channel"]), str(args["ts"])
        if (channel, root) not in self.by_ts:
            raise _SlackError("thread_not_found")
        return self._page([m for m in self.live(channel) if root in (m.ts, m.thread_ts)], args)

    @staticmethod
    def _page(messages: list[Posted], args: dict[str, Any]) -> dict[str, Any]:
        oldest = float(args.get("oldest") or 0)
        messages = [m for m in messages if float(m.ts) >= oldest]
        start = int(args.get("cursor") or 0)
        limit = int(args.get("limit") or 100)
        page = messages[start : start + limit]
        more = start + limit < len(messages)
        return {
            "messages": [
                {"ts": m.ts, "text": m.text, "thread_ts": m.thread_ts, "metadata": m.metadata}
                for m in page
            ],
            "has_more": more,
            "response_metadata": {"next_cursor": str(start + limit) if more else ""},
        }

    async def _conversations_members(self, args: dict[str, Any]) -> dict[str, Any]:
        """A channel's member ids, a page of `limit` after `cursor` (as in Slack)."""
        everyone = self.members.get(str(args["channel"]), [])
        start = int(args.get("cursor") or 0)
        limit = int(args.get("limit") or 100)
        more = start + limit < len(everyone)
        return {
            "members": everyone[start : start + limit],
            "response_metadata": {"next_cursor": str(start + limit) if more else ""},
        }

    async def _apps_connections_open(self, args: dict[str, Any]) -> dict[str, Any]:
        return {"url": self.url.replace("http", "ws", 1) + "/socket-mode"}

    # -- what the workspace holds -------------------------------------------------------------

    def live(self, channel: str | None = None) -> list[Posted]:
        """Messages not deleted (of one channel), in posting order."""
        return [
            m for m in self.messages if not m.deleted and (channel is None or m.channel == channel)
        ]

    async def wait_for(self, check: Any, timeout: float = 10.0) -> None:
        """Wait until `check()` is true (re-checked after every API call)."""
        async with self.changed:
            await asyncio.wait_for(self.changed.wait_for(check), timeout)

    # -- Slack calling the hub ----------------------------------------------------------------

    def sign(self, body: bytes, timestamp: int | None = None) -> dict[str, str]:
        """The headers Slack signs a request to an app with (v0 HMAC-SHA256)."""
        stamp = str(timestamp if timestamp is not None else int(time.time()))
        base = b"v0:" + stamp.encode() + b":" + body
        digest = hmac.new(self.signing_secret.encode(), base, hashlib.sha256).hexdigest()
        return {"X-Slack-Request-Timestamp": stamp, "X-Slack-Signature": f"v0={digest}"}

    async def event(
        self,
        url: str,
        event: dict[str, Any],
        event_id: str | None = None,
        timestamp: int | None = None,
        signature: str | None = None,
    ) -> tuple[int, Any]:
        """POST an Events API `event_callback` wrapping `event` to the app at `url`."""
        body = {
            "type": "event_callback",
            "team_id": "T1",
            "api_app_id": "A1",
            "event": event,
            "event_id": event_id or f"Ev{next(self._ts):08d}",
            "event_time": int(time.time()),
        }
        return await self.post_signed(url, json.dumps(body).encode(), timestamp, signature)

    async def command(self, url: str, text: str, channel: str, user: str = "U1") -> tuple[int, Any]:
        """POST a `/chitty` slash command, form-encoded, signed."""
        form = {
            "command": "/chitty",
            "text": text,
            "channel_id": channel,
            "user_id": user,
            "team_id": "T1",
            "trigger_id": f"t{next(self._ts)}",
        }
        return await self.post_signed(url, urllib.parse.urlencode(form).encode(), form=True)

    async def post_signed(
        self,
        url: str,
        body: bytes,
        timestamp: int | None = None,
        signature: str | None = None,
        form: bool = False,
    ) -> tuple[int, Any]:
        headers = self.sign(body, timestamp)
        if signature is not None:
            headers["X-Slack-Signature"] = signature
        headers["Content-Type"] = (
            "application/x-www-form-urlencoded" if form else "application/json"
        )
        async with (
            aiohttp.ClientSession() as session,
            session.post(url, data=body, headers=headers) as answer,
        ):
            text = await answer.text()
            try:
                return answer.status, json.loads(text)
            except ValueError:
                return answer.status, text

    # -- Socket Mode --------------------------------------------------------------------------

    async def _socket(self, request: web.Request) -> web.WebSocketResponse:
        socket = web.WebSocketResponse()
        await socket.prepare(request)
        self.socket = socket
        await socket.send_json({"type": "hello", "num_connections": 1})
        self.socket_connected.set()
        async for received in socket:
            if received.type is aiohttp.WSMsgType.TEXT:
                ack = json.loads(received.data)
                future = self._acks.pop(str(ack.get("envelope_id")), None)
                if future is not None and not future.done():
                    future.set_result(ack)
        self.socket_connected.clear()
        return socket

    async def push(self, event: dict[str, Any], event_id: str | None = None) -> dict[str, Any]:
        """Send an `events_api` envelope over Socket Mode; the client's ack."""
        await asyncio.wait_for(self.socket_connected.wait(), 10)
        assert self.socket is not None
        envelope_id = f"env-{next(self._ts)}"
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._acks[envelope_id] = future
        await self.socket.send_json(
            {
                "envelope_id": envelope_id,
                "type": "events_api",
                "accepts_response_payload": False,
                "retry_attempt": 0,
                "payload": {
                    "type": "event_callback",
                    "team_id": "T1",
                    "event": event,
                    "event_id": event_id or f"Ev{next(self._ts):08d}",
                    "event_time": int(time.time()),
                },
            }
        )
        return await asyncio.wait_for(future, 10)


class _SlackError(Exception):
    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


def _json(value: Any) -> Any:
    """Blocks and metadata arrive as JSON objects (json body) or JSON text (form body)."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


async def _serve_until_stdin_closes() -> None:
    slack = await SlackEmulator().start()
    print(slack.url, flush=True)
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.read)
    await slack.stop()


if __name__ == "__main__":
    asyncio.run(_serve_until_stdin_closes())
