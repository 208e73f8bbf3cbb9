"""A local emulator of Discord's REST API and gateway on a loopback port, for `hikari` pointed at
it (its REST base URL is `api_url`; the gateway URL it gives out at `GET /gateway/bot` is its
own, so hikari's gateway client connects here too).

REST (`/api/v10`, `Authorization: Bot <token>`; webhooks by the token in their path): `GET
/users/@me`, `GET /gateway/bot`, `GET /channels/{id}`, `POST`/`PATCH`/`DELETE` channel messages
(JSON or multipart with `payload_json` and `files[n]`; `nonce` with `enforce_nonce` answers the
message that nonce made before instead of a second one), `POST
/channels/{id}/messages/{id}/threads` (a thread's id is its starter message's; a second thread
on one message is refused with code 160004), `GET`/`POST` a webhook (`?wait=true`,
`?thread_id=`) and `PATCH`/`DELETE` its messages. It answers as Discord does: 401 for a wrong
token, 404 with Discord's codes (10003 unknown channel, 10008 unknown message, 10015 unknown
webhook), 429 with `{"retry_after", "global"}` and `Retry-After` when told to rate-limit, and,
while `down`, a reset connection (or `down_with`, e.g. 503).

The gateway (`/gateway`, JSON, plain or `compress=zlib-stream`): HELLO (op 10) with
`heartbeat_interval`, IDENTIFY (op 2) checked against the token (else close 4004), READY with
`session_id` and `resume_gateway_url`, heartbeats (op 1) answered with ACK (op 11), RESUME (op 6)
replaying the dispatches after the client's `seq` (and `replay_overlap` already-sent ones more,
as an at-least-once service may) then RESUMED; an unknown session is answered INVALID_SESSION (op
9). `react(...)`, `say(...)` and `dispatch(...)` send MESSAGE_REACTION_ADD, MESSAGE_CREATE or any
event with the next sequence number (kept for a RESUME while no client is connected);
`reconnect()` sends op 7.

Run on its own (`python -m tests.emulators.discord`), it prints its API URL and serves until
stdin closes.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import sys
import time
import uuid
import zlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import aiohttp
from aiohttp import web

DISCORD_EPOCH_MS = 1_420_070_400_000
BOT_ID = "1100000000000000001"
GUILD_ID = "1200000000000000001"
WEBHOOK_ID = "1300000000000000001"
PERSON = "1400000000000000001"  # a person in the guild (reacts and replies in the tests)
CHECK = "✅"
THREAD_EXISTS = 160004


def bot_token(bot_id: str = BOT_ID, secret: str = "emulated-secret") -> str:
    """A token of Discord's shape: the bot's id in base64, a timestamp part, an HMAC part."""
    return f"{base64.b64encode(bot_id.encode()).decode().rstrip('=')}.GXyZ12.{secret}"


def _now_iso() -> str:
    return datetime.now(UTC).isoformat()


def _user(user_id: str, name: str, bot: bool = False) -> dict[str, Any]:
    return {
        "id": user_id,
        "username": name,
        "global_name": name,
        "discriminator": "0",
        "avatar": None,
        "bot": bot,
        "public_flags": 0,
    }


@dataclass
class Posted:
    """A message as the emulated guild holds it (`channel` is a thread's id for a message in a
    thread)."""

    id: str
    channel: str
    content: str
    author: dict[str, Any]
    embeds: list[dict[str, Any]]
    files: dict[str, str]  # attached files: name -> text
    received: float
    webhook_id: str | None = None
    reference: str | None = None  # the message it replies to
    nonce: str | None = None
    edits: list[str] = field(default_factory=list)  # earlier contents, oldest first
    edited: float | None = None
    deleted: bool = False

    @property
    def username(self) -> str:
        return str(self.author.get("username"))

    @property
    def described(self) -> str:
        """Its embeds' descriptions, joined."""
        return "\n".join(str(e.get("description") or "") for e in self.embeds)

    def wire(self, guild: str = GUILD_ID) -> dict[str, Any]:
        """As Discord's API and gateway show it."""
        out: dict[str, Any] = {
            "id": self.id,
            "channel_id": self.channel,
            "guild_id": guild,
            "author": self.author,
            "content": self.content,
            "timestamp": datetime.fromtimestamp(self.received, UTC).isoformat(),
            "edited_timestamp": (
                datetime.fromtimestamp(self.edited, UTC).isoformat() if self.edited else None
            ),
            "tts": False,
            "mention_everyone": False,
            "mentions": [],
            "mention_roles": [],
            "attachments": [
                {
                    "id": f"{self.id}{n}",
                    "filename": name,
                    "size": len(text.encode()),
                    "url": f"https://cdn.invalid/{self.id}/{name}",
                    "proxy_url": f"https://media.invalid/{self.id}/{name}",
                    "content_type": "text/plain; charset=utf-8",
                }
                for n, (name, text) in enumerate(self.files.items())
            ],
            "embeds": self.embeds,
            "pinned": False,
            "type": 19 if self.reference else 0,
            "flags": 0,
        }
        if self.webhook_id:
            out["webhook_id"] = self.webhook_id
        if self.nonce:
            out["nonce"] = self.nonce
        if self.reference:
            out["message_reference"] = {
                "type": 0,
                "message_id": self.reference,
                "channel_id": self.channel,
                "guild_id": guild,
            }
        return out


@dataclass
class Thread:
    id: str
    parent: str
    name: str
    owner: str


@dataclass
class _Session:
    """A gateway session: its dispatches (for RESUME) and the socket it is on, if any."""

    id: str
    seq: int = 0
    sent: list[tuple[int, str, Any]] = field(default_factory=list)
    socket: _Socket | None = None


class _Socket:
    """One gateway connection, with its transport compression."""

    def __init__(self, ws: web.WebSocketResponse, compress: str | None) -> None:
        self.ws = ws
        self.zlib = zlib.compressobj() if compress == "zlib-stream" else None
        self.lock = asyncio.Lock()

    async def send(self, payload: dict[str, Any]) -> None:
        data = json.dumps(payload)
        async with self.lock:
            if self.ws.closed:
                return
            if self.zlib is None:
                await self.ws.send_str(data)
            else:  # a zlib stream, each payload ending in a sync flush (Discord's framing)
                raw = self.zlib.compress(data.encode()) + self.zlib.flush(zlib.Z_SYNC_FLUSH)
                await self.ws.send_bytes(raw)


class DiscordEmulator:
    """One Discord guild on a loopback port (see the module)."""

    def __init__(self, token: str | None = None, heartbeat_interval_ms: int = 2500) -> None:
        self.token = token or bot_token()
        self.bot = _user(BOT_ID, "chitty", bot=True)
        self.webhook_token = "emulated-webhook-token"
        self.webhook_channel = "2100000000000000001"
        self.heartbeat_interval_ms = heartbeat_interval_ms
        self.messages: list[Posted] = []
        self.by_id: dict[str, Posted] = {}
        self.threads: dict[str, Thread] = {}
        self.calls: list[str] = []  # "METHOD /path" of every REST call, in order
        self.down = False
        self.down_with: int | None = None  # None: reset connections; else answer this status
        self.rate_limited = 0  # answer this many REST calls with 429
        self.retry_after = 1.0
        self.rate_limit_global = False
        self.missing_channels: set[str] = set()  # unknown channels (404, code 10003)
        self.identified: list[dict[str, Any]] = []  # IDENTIFY payloads (token withheld)
        self.resumed: list[dict[str, Any]] = []  # RESUME payloads: session_id, seq
        self.heartbeats = 0
        self.replay_overlap = 0  # dispatches already sent that a RESUME replays again
        self.sessions: dict[str, _Session] = {}
        self.session: _Session | None = None  # the newest
        self._ids = itertools.count(1)
        self._runner: web.AppRunner | None = None
        self._sockets: set[web.WebSocketResponse] = set()
        self.url = ""
        self.changed = asyncio.Condition()

    @property
    def api_url(self) -> str:
        """What hikari's `rest_url` (and CHITTY_DISCORD_API_URL) is set to."""
        return f"{self.url}/api/v10"

    @property
    def webhook_url(self) -> str:
        """The channel webhook's URL (CHITTY_DISCORD_WEBHOOK_URL)."""
        return f"{self.api_url}/webhooks/{WEBHOOK_ID}/{self.webhook_token}"

    async def start(self) -> DiscordEmulator:
        app = web.Application(middlewares=[self._faults])
        api = "/api/v10"
        app.router.add_get(f"{api}/users/@me", self._me)
        app.router.add_get(f"{api}/gateway/bot", self._gateway_bot)
        app.router.add_get(f"{api}/channels/{{channel}}", self._channel)
        app.router.add_post(f"{api}/channels/{{channel}}/messages", self._post)
        app.router.add_patch(f"{api}/channels/{{channel}}/messages/{{message}}", self._edit)
        app.router.add_delete(f"{api}/channels/{{channel}}/messages/{{message}}", self._delete)
        app.router.add_post(
            f"{api}/channels/{{channel}}/messages/{{message}}/threads", self._start_thread
        )
        hook = f"{api}/webhooks/{{webhook}}/{{token}}"
        app.router.add_get(hook, self._webhook)
        app.router.add_post(hook, self._execute)
        app.router.add_patch(f"{hook}/messages/{{message}}", self._webhook_edit)
        app.router.add_delete(f"{hook}/messages/{{message}}", self._webhook_delete)
        app.router.add_get("/gateway", self._gateway)
        app.router.add_get("/gateway-resume", self._gateway)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def stop(self) -> None:
        for ws in list(self._sockets):
            await ws.close()
        if self._runner is not None:
            await self._runner.cleanup()

    # -- what the guild holds -----------------------------------------------------------------

    def live(self, channel: str | None = None) -> list[Posted]:
        """Messages not deleted (of one channel or thread), in posting order."""
        return [
            m for m in self.messages if not m.deleted and (channel is None or m.channel == channel)
        ]

    def in_thread(self, starter: Posted) -> list[Posted]:
        """The messages in the thread started from `starter`."""
        return self.live(starter.id) if starter.id in self.threads else []

    async def wait_for(self, check: Any, timeout: float = 10.0) -> None:
        """Wait until `check()` is true (re-checked after every change)."""
        async with self.changed:
            await asyncio.wait_for(self.changed.wait_for(check), timeout)

    async def _changed(self) -> None:
        async with self.changed:
            self.changed.notify_all()

    def _snowflake(self) -> str:
        ms = int(time.time() * 1000) - DISCORD_EPOCH_MS
        return str((ms << 22) | (next(self._ids) & 0x3FFFFF))

    # -- REST ---------------------------------------------------------------------------------

    @web.middleware
    async def _faults(self, request: web.Request, handler: Any) -> web.StreamResponse:
        if self.down:
            if self.down_with is not None:
                return _error(self.down_with, 0, "Service Unavailable")
            assert request.transport is not None  # as if nothing listened: a reset connection
            request.transport.close()
            raise ConnectionResetError("discord emulator is down")
        if request.path.startswith("/api/"):
            self.calls.append(f"{request.method} {request.path.removeprefix('/api/v10')}")
            hook = request.match_info.get("webhook")
            if hook is None and request.headers.get("Authorization") != f"Bot {self.token}":
                return _error(401, 0, "401: Unauthorized")
            if hook is not None and hook != WEBHOOK_ID:
                return _error(404, 10015, "Unknown Webhook")
            if hook is not None and request.match_info.get("token") != self.webhook_token:
                return _error(401, 50027, "Invalid Webhook Token")
            if self.rate_limited > 0 and not request.path.endswith(("/gateway/bot", "/@me")):
                self.rate_limited -= 1
                return web.json_response(
                    {
                        "message": "You are being rate limited.",
                        "retry_after": self.retry_after,
                        "global": self.rate_limit_global,
                    },
                    status=429,
                    headers={
                        "Retry-After": str(self.retry_after),
                        **({"X-RateLimit-Global": "true"} if self.rate_limit_global else {}),
                    },
                )
        answer: web.StreamResponse = await handler(request)
        if request.method != "GET":
            await self._changed()
        return answer

    async def _me(self, request: web.Request) -> web.Response:
        return web.json_response({**self.bot, "mfa_enabled": False, "verified": True, "flags": 0})

    async def _gateway_bot(self, request: web.Request) -> web.Response:
        return web.json_response(
            {
                "url": self.url.replace("http", "ws", 1) + "/gateway",
                "shards": 1,
                "session_start_limit": {
                    "total": 1000,
                    "remaining": 1000,
                    "reset_after": 86_400_000,
                    "max_concurrency": 1,
                },
            }
        )

    async def _channel(self, request: web.Request) -> web.Response:
        channel = request.match_info["channel"]
        if channel in self.missing_channels:
            return _error(404, 10003, "Unknown Channel")
        thread = self.threads.get(channel)
        if thread is not None:
            return web.json_response(self._thread_wire(thread))
        return web.json_response(
            {
                "id": channel,
                "type": 0,
                "guild_id": GUILD_ID,
                "name": f"channel-{channel[-4:]}",
                "position": 0,
                "permission_overwrites": [],
                "topic": None,
                "nsfw": False,
                "parent_id": None,
            }
        )

    def _thread_wire(self, thread: Thread) -> dict[str, Any]:
        return {
            "id": thread.id,
            "type": 11,
            "guild_id": GUILD_ID,
            "parent_id": thread.parent,
            "name": thread.name,
            "owner_id": thread.owner,
            "member_count": 1,
            "message_count": len(self.live(thread.id)),
            "rate_limit_per_user": 0,
            "flags": 0,
            "thread_metadata": {
                "archived": False,
                "auto_archive_duration": 1440,
                "archive_timestamp": _now_iso(),
                "locked": False,
                "create_timestamp": _now_iso(),
            },
        }

    def _known(self, channel: str) -> bool:
        return channel not in self.missing_channels

    async def _post(self, request: web.Request) -> web.Response:
        channel = request.match_info["channel"]
        if not self._known(channel):
            return _error(404, 10003, "Unknown Channel")
        body, files = await _message_body(request)
        if body.get("nonce") and body.get("enforce_nonce"):
            for earlier in self.messages:  # the same author's same nonce: that message again
                if earlier.nonce == body["nonce"] and earlier.author["id"] == BOT_ID:
                    return web.json_response(earlier.wire())
        refused = _refusal(body, files)
        if refused is not None:
            return refused
        reference = (body.get("message_reference") or {}).get("message_id")
        posted = self._add(channel, body, files, self.bot, reference=reference)
        posted.nonce = body.get("nonce")
        return web.json_response(posted.wire())

    def _add(
        self,
        channel: str,
        body: dict[str, Any],
        files: dict[str, str],
        author: dict[str, Any],
        webhook_id: str | None = None,
        reference: str | None = None,
    ) -> Posted:
        posted = Posted(
            self._snowflake(),
            channel,
            str(body.get("content") or ""),
            author,
            list(body.get("embeds") or []),
            files,
            time.time(),
            webhook_id,
            str(reference) if reference else None,
        )
        self.messages.append(posted)
        self.by_id[posted.id] = posted
        return posted

    def _editable(self, channel: str, message: str) -> Posted | web.Response:
        posted = self.by_id.get(message)
        if posted is None or posted.deleted or posted.channel != channel:
            return _error(404, 10008, "Unknown Message")
        return posted

    async def _edit(self, request: web.Request) -> web.Response:
        posted = self._editable(request.match_info["channel"], request.match_info["message"])
        if isinstance(posted, web.Response):
            return posted
        if posted.webhook_id is not None or posted.author["id"] != BOT_ID:
            return _error(403, 50005, "Cannot edit a message authored by another user")
        return await self._apply_edit(request, posted)

    async def _apply_edit(self, request: web.Request, posted: Posted) -> web.Response:
        body, files = await _message_body(request)
        refused = _refusal({"content": posted.content, **body}, files)
        if refused is not None:
            return refused
        if "content" in body:
            posted.edits.append(posted.content)
            posted.content = str(body["content"] or "")
        if "embeds" in body:
            posted.embeds = list(body["embeds"] or [])
        if "attachments" in body:  # the files it keeps (ours: none) and the new ones
            posted.files = files
        posted.edited = time.time()
        return web.json_response(posted.wire())

    async def _delete(self, request: web.Request) -> web.Response:
        posted = self._editable(request.match_info["channel"], request.match_info["message"])
        if isinstance(posted, web.Response):
            return posted
        posted.deleted = True
        return web.Response(status=204)

    async def _start_thread(self, request: web.Request) -> web.Response:
        channel, message = request.match_info["channel"], request.match_info["message"]
        starter = self._editable(channel, message)
        if isinstance(starter, web.Response):
            return starter
        if message in self.threads:
            return _error(400, THREAD_EXISTS, "A thread has already been created for this message")
        body = await request.json()
        name = str(body.get("name") or "")
        if not 1 <= len(name) <= 100:
            return _error(400, 50035, "Invalid Form Body: name")
        thread = Thread(message, channel, name, BOT_ID)  # a thread's id is its starter's id
        self.threads[message] = thread
        wire = self._thread_wire(thread)
        await self.dispatch("THREAD_CREATE", {**wire, "newly_created": True})
        return web.json_response(wire, status=201)

    async def _webhook(self, request: web.Request) -> web.Response:
        return web.json_response(
            {
                "id": WEBHOOK_ID,
                "type": 1,
                "guild_id": GUILD_ID,
                "channel_id": self.webhook_channel,
                "name": "ChittyChat",
                "avatar": None,
                "token": self.webhook_token,
                "application_id": None,
            }
        )

    def _webhook_place(self, request: web.Request) -> str | web.Response:
        """Where a webhook call acts: its channel, or `thread_id` (a thread under it)."""
        thread = request.query.get("thread_id")
        if thread is None:
            return self.webhook_channel
        known = self.threads.get(thread)
        if known is None or known.parent != self.webhook_channel:
            return _error(400, 220001, "Target thread is not in the webhook's channel")
        return thread

    async def _execute(self, request: web.Request) -> web.Response:
        place = self._webhook_place(request)
        if isinstance(place, web.Response):
            return place
        body, files = await _message_body(request)
        refused = _refusal(body, files)
        if refused is not None:
            return refused
        username = str(body.get("username") or "ChittyChat")
        if not 1 <= len(username) <= 80 or any(w in username.lower() for w in ("discord", "clyde")):
            return _error(400, 50035, "Invalid Form Body: username")
        author = {**_user(WEBHOOK_ID, username, bot=True), "discriminator": "0000"}
        posted = self._add(place, body, files, author, webhook_id=WEBHOOK_ID)
        if request.query.get("wait") not in ("true", "True", "1"):
            return web.Response(status=204)
        return web.json_response(posted.wire())

    async def _webhook_edit(self, request: web.Request) -> web.Response:
        place = self._webhook_place(request)
        if isinstance(place, web.Response):
            return place
        posted = self._editable(place, request.match_info["message"])
        if isinstance(posted, web.Response) or posted.webhook_id != WEBHOOK_ID:
            return _error(404, 10008, "Unknown Message")  # a webhook sees only its own
        return await self._apply_edit(request, posted)

    async def _webhook_delete(self, request: web.Request) -> web.Response:
        place = self._webhook_place(request)
        if isinstance(place, web.Response):
            return place
        posted = self._editable(place, request.match_info["message"])
        if isinstance(posted, web.Response) or posted.webhook_id != WEBHOOK_ID:
            return _error(404, 10008, "Unknown Message")
        posted.deleted = True
        return web.Response(status=204)

    # -- the gateway --------------------------------------------------------------------------

    async def _gateway(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self._sockets.add(ws)
        socket = _Socket(ws, request.query.get("compress"))
        session: _Session | None = None
        await socket.send({"op": 10, "d": {"heartbeat_interval": self.heartbeat_interval_ms}})
        try:
            async for received in ws:
                if received.type not in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY):
                    continue  # JSON either way (hikari sends it as binary frames)
                payload = json.loads(received.data)
                op, data = payload.get("op"), payload.get("d")
                if op == 1:
                    self.heartbeats += 1
                    await socket.send({"op": 11})
                elif op == 2:
                    if data.get("token") != self.token:
                        await ws.close(code=4004, message=b"Authentication failed.")
                        break
                    self.identified.append({k: v for k, v in data.items() if k != "token"})
                    session = _Session(uuid.uuid4().hex)
                    self.sessions[session.id] = self.session = session
                    session.socket = socket
                    await self._send(session, "READY", self._ready(session))
                elif op == 6:
                    session = self.sessions.get(str(data.get("session_id")))
                    if session is None or data.get("token") != self.token:
                        await socket.send({"op": 9, "d": False})
                        continue
                    self.resumed.append({"session_id": session.id, "seq": data.get("seq")})
                    session.socket = socket
                    after = int(data.get("seq") or 0)
                    replay = [s for s in session.sent if s[0] > after]
                    again = [s for s in session.sent if s[0] <= after][-self.replay_overlap :]
                    for seq, name, event in (again if self.replay_overlap else []) + replay:
                        await socket.send({"op": 0, "s": seq, "t": name, "d": event})
                    await self._send(session, "RESUMED", {})
                await self._changed()
        finally:
            self._sockets.discard(ws)
            if session is not None and session.socket is socket:
                session.socket = None
            await self._changed()
        return ws

    def _ready(self, session: _Session) -> dict[str, Any]:
        return {
            "v": 10,
            "user": {**self.bot, "mfa_enabled": False, "verified": True, "flags": 0},
            "guilds": [{"id": GUILD_ID, "unavailable": True}],
            "session_id": session.id,
            "resume_gateway_url": self.url.replace("http", "ws", 1) + "/gateway-resume",
            "shard": [0, 1],
            "application": {"id": BOT_ID, "flags": 0},
        }

    async def _send(self, session: _Session, name: str, event: Any) -> int:
        session.seq += 1
        session.sent.append((session.seq, name, event))
        if session.socket is not None:
            await session.socket.send({"op": 0, "s": session.seq, "t": name, "d": event})
        return session.seq

    @property
    def connected(self) -> bool:
        """Whether a client's gateway session is connected now."""
        return self.session is not None and self.session.socket is not None

    async def dispatch(self, name: str, event: Any) -> int:
        """Send a dispatch to the newest session (kept for its RESUME if it is not connected
        now); its sequence number (0: no session yet)."""
        if self.session is None:
            return 0
        return await self._send(self.session, name, event)

    async def reconnect(self) -> None:
        """Ask the connected client to reconnect (op 7): it should RESUME."""
        assert self.session is not None and self.session.socket is not None
        await self.session.socket.send({"op": 7, "d": None})

    async def invalidate(self, resumable: bool = False) -> None:
        """Send INVALID_SESSION (op 9)."""
        assert self.session is not None and self.session.socket is not None
        await self.session.socket.send({"op": 9, "d": resumable})

    async def react(
        self, posted: Posted, emoji: str = CHECK, user: str = PERSON, name: str = "alice"
    ) -> int:
        """`user` adds a reaction to `posted` (MESSAGE_REACTION_ADD); its sequence number."""
        return await self.dispatch(
            "MESSAGE_REACTION_ADD",
            {
                "user_id": user,
                "channel_id": posted.channel,
                "message_id": posted.id,
                "guild_id": GUILD_ID,
                "member": {"user": _user(user, name), "roles": [], "joined_at": _now_iso()},
                "emoji": {"id": None, "name": emoji},
                "message_author_id": posted.author["id"],
                "burst": False,
                "type": 0,
            },
        )

    async def say(
        self,
        channel: str,
        text: str,
        *,
        reply_to: Posted | None = None,
        user: str = PERSON,
        name: str = "alice",
        bot: bool = False,
    ) -> Posted:
        """`user` posts `text` in a channel or thread (MESSAGE_CREATE), as a reply to
        `reply_to` if given."""
        reference = reply_to.id if reply_to is not None else None
        posted = self._add(channel, {"content": text}, {}, _user(user, name, bot), None, reference)
        wire = posted.wire()
        wire["member"] = {"roles": [], "joined_at": _now_iso()}
        await self.dispatch("MESSAGE_CREATE", wire)
        await self._changed()
        return posted


def _error(status: int, code: int, message: str) -> web.Response:
    return web.json_response({"message": message, "code": code}, status=status)


async def _message_body(request: web.Request) -> tuple[dict[str, Any], dict[str, str]]:
    """A message body: JSON, or multipart with `payload_json` and `files[n]` (as text)."""
    if request.content_type == "application/json":
        return dict(await request.json()), {}
    form = await request.post()
    body: dict[str, Any] = {}
    files: dict[str, str] = {}
    for name, value in form.items():
        raw = value.file.read() if isinstance(value, web.FileField) else value
        text = raw if isinstance(raw, str) else bytes(raw).decode("utf-8")
        if name == "payload_json":
            body = json.loads(text)
        elif isinstance(value, web.FileField):
            files[value.filename] = text
    return body, files


def _refusal(body: dict[str, Any], files: dict[str, str]) -> web.Response | None:
    """Discord's limits on a message: 2000 characters of content, 4096 per embed description,
    6000 in all embeds, 10 embeds, and something to show."""
    content = str(body.get("content") or "")
    embeds = list(body.get("embeds") or [])
    if len(content) > 2000:
        return _error(400, 50035, "Invalid Form Body: content: Must be 2000 or fewer in length.")
    if len(embeds) > 10:
        return _error(400, 50035, "Invalid Form Body: embeds: Must be 10 or fewer in length.")
    total = 0
    for embed in embeds:
        description = str(embed.get("description") or "")
        if len(description) > 4096:
            return _error(400, 50035, "Invalid Form Body: embeds.description: 4096 or fewer")
        total += len(description) + len(str(embed.get("title") or ""))
    if total > 6000:
        return _error(400, 50035, "Invalid Form Body: embeds: 6000 characters in all")
    if not content and not embeds and not files:
        return _error(400, 50006, "Cannot send an empty message")
    return None


async def _serve_until_stdin_closes() -> None:
    discord = await DiscordEmulator().start()
    print(discord.api_url, flush=True)
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.read)
    with contextlib.suppress(Exception):
        await discord.stop()


if __name__ == "__main__":
    asyncio.run(_serve_until_stdin_closes())
