"""The WebSocket endpoint /ws: subscriptions with resume, state updates acked when durable.

The frame protocol is `ws_frames` (pure), the fan-out is `stream.StreamFollower` (one per app);
this module holds a connection's life: a `WsSession` in an explicit state, one reader task that
answers the client's frames in order and one writer task that owns the socket's send side.

A batch of writes is answered with an `ack` or `error` frame per write, in order; a connection
opened with `X-Chitty-Acks: batch` (or `?acks=batch`) gets one `{"type": "acks", "items": [...]}`
frame per batch instead, the same frames as its items (fewer frames for a busy publisher).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Annotated, Any, assert_never

from aiohttp import WSCloseCode, WSMsgType, web
from pydantic import BaseModel, ConfigDict, Field

from hub.auth.errors import SignatureError
from hub.auth.principal import Principal
from hub.auth.scope import can_read, own_members
from hub.catalog import Query
from hub.domains import SyncDomain
from hub.entity import EntityView
from hub.envelope import Outcome
from hub.store.errors import CorruptEntityError
from hub.subscriptions import RELAYED, Published
from transports.gateway.auth import AUTH, Auth, Scope, bearer, must_sign, principal_of, stamp
from transports.gateway.errors import ApiError
from transports.gateway.hub_api import Writer, outcome_error
from transports.gateway.reads import page_of, run_command, state_of
from transports.gateway.references import References
from transports.gateway.stream import StreamFollower, Subscriber
from transports.gateway.targets import PRESENCE
from transports.gateway.ws_frames import (
    Ack,
    Acks,
    Answer,
    Batch,
    ClientFrame,
    FrameError,
    Noted,
    Origin,
    Ping,
    Pong,
    Read,
    Run,
    Subscribe,
    Unsubscribe,
    Unsubscribed,
    Write,
    encode,
    parse_text,
    short_field,
)
from transports.gateway.ws_outbox import Outbox, frames_of

log = logging.getLogger(__name__)


class WsSettings(BaseModel):
    """Knobs of /ws (defaults suit production; tests shrink the timers and queues)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_frame_bytes: Annotated[int, Field(ge=1024)] = 1 << 20  # larger: closed with 1009
    ping_s: Annotated[float, Field(gt=0)] = 20.0  # WebSocket ping; no pong in time closes
    idle_heartbeat_s: Annotated[float, Field(gt=0)] = 15.0  # a `heartbeat` frame when idle
    outbox_limit: Annotated[int, Field(ge=1)] = 1000  # frames queued per connection
    frame_events: Annotated[int, Field(ge=1)] = 256  # events per `batch` frame at most
    max_subscriptions: Annotated[int, Field(ge=1)] = 64  # per connection
    max_batch: Annotated[int, Field(ge=1)] = 1000  # state updates per client batch
    poll_wait_s: Annotated[float, Field(gt=0)] = 1.0  # the follower's long-poll wait
    close_timeout_s: Annotated[float, Field(gt=0)] = 5.0  # wait for the peer's close reply
    revalidate_s: Annotated[float, Field(gt=0)] = 1.0  # how often open credentials are checked


POLICY_VIOLATION = 1008  # the close code for a credential that stopped being valid


class SignedFrame(BaseModel):
    """A service's frame: the frame text as sent, and its HMAC-SHA256 signature."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    frame: str
    timestamp: str
    nonce: str
    signature: str


@dataclass(frozen=True, slots=True)
class Caller:
    """Who is on a connection, the credential they opened it with, and the gateway's auth."""

    auth: Auth
    principal: Principal
    credential: str


class WsScope:
    """What a restricted principal may see on the stream, kept current from the stream itself.

    The principal's parents: the projects it is an own member of, and for each session it
    knows of, whether it is an own member and which project the session is in. An event's
    entity is judged by `can_read` with these, so every membership change (a project's
    sharedWith, team or owner, a session's participants or project) counts from the next
    event on: `observe` sees each event before any subscriber is offered it."""

    def __init__(
        self,
        principal: Principal,
        projects: set[str],
        sessions: dict[str, tuple[bool, str | None]],
    ) -> None:
        self.principal = principal
        self.projects = projects
        self.sessions = sessions

    @classmethod
    def of(cls, principal: Principal, views: Iterable[EntityView]) -> WsScope:
        """The scope given the projects and sessions the principal may read now."""
        scope = cls(principal, set(), {})
        for view in views:
            scope.note(SyncDomain(view.domain), view.entity_id, view.entity, view.deleted)
        return scope

    def _parent(self, entity_id: str) -> dict[str, object] | None:
        if entity_id in self.projects:
            return {"sharedWith": [self.principal.chitty_id]}
        known = self.sessions.get(entity_id)
        if known is None:
            return None
        own, project = known
        return {"sharedWith": [self.principal.chitty_id] if own else [], "projectId": project}

    def note(
        self, domain: SyncDomain, entity_id: str, entity: Mapping[str, Any], deleted: bool
    ) -> None:
        """Take a project's or session's membership as it is now."""
        who = self.principal.chitty_id
        if domain is SyncDomain.PROJECTS:
            if not deleted and who in own_members(domain.value, entity):
                self.projects.add(entity_id)
            else:
                self.projects.discard(entity_id)
        elif domain is SyncDomain.SESSIONS:
            own = who in own_members(domain.value, entity)
            project = entity.get("projectId")
            project = project if isinstance(project, str) else None
            if deleted or not (own or project in self.projects):
                self.sessions.pop(entity_id, None)  # a session it cannot read holds nothing
            else:
                self.sessions[entity_id] = (own, project)

    def observe(self, event: Published) -> None:
        if event.kind not in RELAYED:
            self.note(event.domain, event.entity_id, event.entity, event.kind == "deleted")

    def visible(self, event: Published) -> bool:
        return can_read(self.principal, event.domain.value, event.entity, self._parent)


class WsState(StrEnum):
    """A connection's life: upgraded, serving, closing, closed (no way back)."""

    CONNECTING = "connecting"
    OPEN = "open"
    CLOSING = "closing"
    CLOSED = "closed"


_NEXT = {
    WsState.CONNECTING: frozenset({WsState.OPEN, WsState.CLOSED}),
    WsState.OPEN: frozenset({WsState.CLOSING}),
    WsState.CLOSING: frozenset({WsState.CLOSED}),
    WsState.CLOSED: frozenset[WsState](),
}


class IllegalTransition(RuntimeError):
    """A session asked to move to a state its current state cannot reach."""


@dataclass(slots=True)
class WsCounters:
    """What /ws has done, for /metrics."""

    connections: int = 0  # accepted since start
    frames_in: int = 0
    frames_out: int = 0
    errors: int = 0  # error frames sent
    acks: int = 0
    hub_failures: int = 0  # submits that raised
    failures: int = 0  # frames or sessions that failed on our side (bugs)


class WsSession:
    """One /ws connection."""

    def __init__(
        self,
        socket: web.WebSocketResponse,
        ws: WsGateway,
        origin: Origin,
        caller: Caller,
        scope: WsScope | None = None,
        batch_acks: bool = False,
        declared: str | None = None,
    ) -> None:
        self.socket = socket
        self.declared = declared  # the platform the client said it is, if it said
        self.batch_acks = batch_acks  # a batch frame is answered by one `acks` frame
        self.ws = ws
        self.origin = origin
        self.caller = caller
        self.state = WsState.CONNECTING
        self.outbox = Outbox(ws.settings.outbox_limit)
        self.subscriber = Subscriber(self.outbox, scope, origin.node_id, declared)
        self._sub_ids = itertools.count(1)

    def _move(self, to: WsState) -> None:
        if to not in _NEXT[self.state]:
            raise IllegalTransition(f"a {self.state} WebSocket session cannot become {to}")
        self.state = to

    async def open(self, request: web.Request) -> None:
        await self.socket.prepare(request)
        self._move(WsState.OPEN)
        self.ws.sessions.add(self)
        self.ws.counters.connections += 1
        self.ws.follower.attach(self.subscriber)

    async def run(self) -> None:
        """Serve until the client leaves, the socket fails, or the app shuts down."""
        tasks = [
            asyncio.create_task(self._read(), name="ws-read"),
            asyncio.create_task(self._write(), name="ws-write"),
        ]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            code = WSCloseCode.OK
            for result in await asyncio.gather(*tasks, return_exceptions=True):
                if isinstance(result, Exception):
                    self.ws.counters.failures += 1
                    log.error("a /ws session failed", exc_info=result)
                    code = WSCloseCode.INTERNAL_ERROR
            await self.close(code)

    async def close(self, code: int = WSCloseCode.OK, message: bytes = b"") -> None:
        if self.state in (WsState.CLOSING, WsState.CLOSED):
            return
        if self.state is WsState.OPEN:
            self._move(WsState.CLOSING)
            self.ws.follower.detach(self.subscriber)
            self.ws.sessions.discard(self)
            try:
                await self.socket.close(code=code, message=message)
            finally:
                self._move(WsState.CLOSED)
        else:
            self._move(WsState.CLOSED)

    # -- client -> hub ----------------------------------------------------------------------

    async def _read(self) -> None:
        settings = self.ws.settings
        async for received in self.socket:
            if received.type is WSMsgType.TEXT:
                await self.outbox.room()  # a client that never reads stops being read
                if not await self.caller.auth.still_valid(self.caller.credential):
                    await self.close(POLICY_VIOLATION, b"credential revoked or expired")
                    return
                text = self._admitted(received.data)
                if text is None:
                    continue
                frame = parse_text(text, self.origin, settings.max_batch)
                try:
                    await self.handle(frame)
                except Exception:  # our bug: answer it, count it, keep the connection
                    self.ws.counters.failures += 1
                    log.exception("a /ws frame failed")
                    detail = "the hub failed to answer this frame; this is our bug"
                    self._reply_error(FrameError("internal", detail, status=500))
            elif received.type is WSMsgType.BINARY:
                detail = "frames are JSON text, not binary"
                self._reply_error(FrameError("bad_frame", detail, status=400))
            else:  # ERROR: aiohttp already closed the socket (1009 for an oversized frame)
                return

    def _admitted(self, text: str) -> str | None:
        """The frame's text if its principal is within its rate and (for a service) it is
        signed; else answer the error and return None."""
        caller = self.caller
        wait = caller.auth.rates.take(caller.principal.chitty_id)
        if wait > 0:
            detail = f"too many frames; retry in {wait:.2f} s"
            self._reply_error(FrameError("rate_limited", detail, status=429))
            return None
        key = caller.principal.signing_key
        if not must_sign(caller.principal):
            return text
        if key is None:
            detail = "this credential cannot sign frames"
            self._reply_error(FrameError("unauthenticated", detail, "signature", status=401))
            return None
        try:
            signed = SignedFrame.model_validate_json(text)
            caller.auth.signatures.verify_frame(
                key, signed.timestamp, signed.nonce, signed.signature, signed.frame
            )
        except SignatureError as error:
            detail = f"bad signature: {error.reason}: {error.detail}"
            self._reply_error(FrameError("unauthenticated", detail, "signature", status=401))
            return None
        except ValueError:
            detail = (
                "a service signs every frame: send "
                '{"frame": "<frame text>", "timestamp", "nonce", "signature"}'
            )
            self._reply_error(FrameError("unauthenticated", detail, "frame", status=401))
            return None
        return signed.frame

    async def handle(self, frame: ClientFrame) -> None:
        """Answer one client frame; replies go out in the order frames came in."""
        self.ws.counters.frames_in += 1
        follower = self.ws.follower
        if isinstance(frame, FrameError):
            self._reply_error(frame)
        elif isinstance(frame, Ping):
            self.outbox.reply(Pong(follower.epoch, follower.offset, frame.id))
        elif isinstance(frame, Subscribe):
            self._subscribe(frame)
        elif isinstance(frame, Unsubscribe):
            if follower.unsubscribe(self.subscriber, frame.subscription):
                self.outbox.reply(Unsubscribed(frame.subscription))
            else:
                detail = f"no subscription {frame.subscription!r} on this connection"
                self._reply_error(FrameError("not_found", detail, "subscription", status=404))
        elif isinstance(frame, Write):
            await self._submit([frame])
        elif isinstance(frame, Batch):
            await self._submit(list(frame.items), batched=self.batch_acks)
        elif isinstance(frame, Read | Run):
            await self._reply_to(frame)
        elif isinstance(frame, Noted):
            pass  # a client's ack: it resumes from its own offset; nothing to answer
        else:
            assert_never(frame)

    async def _reply_to(self, frame: Read | Run) -> None:
        """Answer a `state_request`, `query` or hub-run `command` to this connection alone."""
        hub = self.ws.writer.hub
        scope = Scope(self.caller.principal, hub.get)
        visible = None if scope.unrestricted else self.caller.principal.chitty_id
        try:
            if isinstance(frame, Run):
                body = await run_command(hub, scope, frame.domain, frame.entity_id, frame.command)
                self.outbox.reply(Answer("command_result", frame.id, body))
            elif frame.filters is None:
                assert frame.entity_id is not None
                body = await state_of(hub, scope, visible, frame.domain, frame.entity_id)
                self.outbox.reply(Answer("state_snapshot", frame.id, body))
            else:
                body = await page_of(
                    hub, visible, frame.domain, frame.filters, frame.limit, frame.cursor
                )
                self.outbox.reply(Answer("query_result", frame.id, body))
        except ApiError as error:
            self._reply_error(
                FrameError(error.error, error.detail, error.field, frame.id, status=error.status)
            )
        except CorruptEntityError as error:  # damaged on disk: named, never served
            detail = str(getattr(error, "cause", error))
            self._reply_error(FrameError("corrupt", detail, None, frame.id, status=500))

    def _subscribe(self, frame: Subscribe) -> None:
        open_now = self.subscriber.subscriptions
        sub_id = frame.id
        while sub_id is None or (sub_id in open_now and frame.id is None):
            sub_id = f"sub-{next(self._sub_ids)}"  # the next id the client has not taken
        if sub_id in open_now:
            detail = f"subscription {sub_id!r} is already open on this connection"
            self._reply_error(FrameError("exists", detail, "id", sub_id, status=409))
        elif len(open_now) >= self.ws.settings.max_subscriptions:
            detail = f"at most {self.ws.settings.max_subscriptions} subscriptions per connection"
            self._reply_error(FrameError("too_many", detail, None, sub_id, status=429))
        else:
            self.ws.follower.subscribe(self.subscriber, sub_id, frame.wanted(), frame.resume)

    async def _submit(self, items: list[Write | FrameError], batched: bool = False) -> None:
        """Submit every write of a frame in one hub call; answer each item in order (`batched`:
        all of them in one `acks` frame)."""
        writes: list[Write] = []
        refused: dict[int, FrameError] = {}
        hub = self.ws.writer.hub
        scope = Scope(self.caller.principal, hub.get)  # parents read once a frame
        references = References(hub.get)  # and what the writes name
        for position, item in enumerate(items):
            if isinstance(item, Write):
                checked = await self._check(item, scope, references)
                if isinstance(checked, Write):
                    writes.append(checked)
                else:
                    refused[position] = checked
        outcomes: list[Outcome] | None = []
        if writes:
            try:
                principal = self.caller.principal
                outcomes = await self.ws.writer.hub.submit(
                    [stamp(w.message, principal) for w in writes]
                )
            except Exception as error:  # the hub did not answer: nothing is known durable
                self.ws.counters.hub_failures += 1
                log.warning("submit of %d ws writes failed: %r", len(writes), error)
                outcomes = None
        answers = iter(outcomes or ())
        replies: list[Ack | FrameError] = []
        for position, item in enumerate(items):
            if position in refused:
                replies.append(refused[position])
            elif isinstance(item, FrameError):
                replies.append(item)
            elif outcomes is None:
                detail = "the hub did not answer; the write may or may not apply: retry it"
                replies.append(
                    FrameError("unavailable", detail, None, item.message.id, item.index, 503)
                )
            else:
                replies.append(self._answer(item, next(answers)))
        acked = sum(isinstance(reply, Ack) for reply in replies)
        self.ws.counters.acks += acked
        self.ws.counters.errors += len(replies) - acked
        if batched:
            self.outbox.reply(Acks(tuple(replies)))
        else:
            for reply in replies:
                self.outbox.reply(reply)

    async def _check(
        self, write: Write, scope: Scope, references: References
    ) -> Write | FrameError:
        """The write as it goes to the hub if it is in the principal's scope and what it names
        exists (`References`), else the error that answers it."""
        try:
            if not scope.unrestricted:
                await scope.check_message(write.message)
            prefix = "entity." if write.short else "payload.entity.data."
            checked = await references.message(write.message, prefix)
        except ApiError as error:
            return FrameError(
                error.error, error.detail, error.field, write.message.id, write.index, error.status
            )
        return write if checked is write.message else replace(write, message=checked)

    def _answer(self, write: Write, outcome: Outcome) -> Ack | FrameError:
        if outcome.durable:
            return Ack.of(outcome, write.index)
        api = outcome_error(outcome)
        field = short_field(outcome.field) if write.short else (outcome.field or None)
        return FrameError(api.error, api.detail, field, outcome.message_id, write.index, api.status)

    def _reply_error(self, error: FrameError) -> None:
        self.ws.counters.errors += 1
        self.outbox.reply(error)

    # -- hub -> client ----------------------------------------------------------------------

    async def _write(self) -> None:
        settings = self.ws.settings
        follower = self.ws.follower
        while True:
            items = await self.outbox.take(settings.frame_events, settings.idle_heartbeat_s)
            idle = [Pong(follower.epoch, follower.offset).to_wire()]
            frames = frames_of(items) if items else idle
            for wire in frames:
                text = encode(wire)
                try:
                    await self.socket.send_str(text)
                except UnicodeEncodeError:  # a lone surrogate the client sent, echoed back
                    await self.socket.send_str(json.dumps(json.loads(text), ensure_ascii=True))
                except (ConnectionError, RuntimeError):
                    return  # the peer is gone; the reader sees it too
                self.ws.counters.frames_out += 1


class WsGateway:
    """The /ws side of one gateway app: settings, the stream follower, the open sessions."""

    def __init__(self, settings: WsSettings, writer: Writer | None = None) -> None:
        self.settings = settings
        self._writer = writer
        self._follower: StreamFollower | None = None
        self.sessions: set[WsSession] = set()
        self.counters = WsCounters()

    @property
    def writer(self) -> Writer:
        assert self._writer is not None, "the /ws gateway has not started"
        return self._writer

    @property
    def follower(self) -> StreamFollower:
        assert self._follower is not None, "the /ws gateway has not started"
        return self._follower

    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        """GET /ws: upgrade and serve one connection (the middleware authenticated it)."""
        caller = Caller(request.app[AUTH], principal_of(request), bearer(request))
        _check_origin(request, caller.auth.settings.ws_origins)
        origin = Origin(
            _origin_part(request, "X-Chitty-Node", "node", "ws", 128),
            _origin_part(request, "X-Chitty-Platform", "platform", "web", 64),
            self.writer.ids.new,
            chitty_id=caller.principal.chitty_id,
        )
        batch_acks = _acks_mode(request) == "batch"
        declared = request.headers.get("X-Chitty-Platform") or request.query.get("platform")
        who = caller.principal.chitty_id
        if not caller.auth.connections.acquire(who):
            most = caller.auth.settings.max_ws_per_principal
            raise ApiError(429, "too_many_connections", f"at most {most} WebSockets per principal")
        try:
            return await self._serve(request, origin, caller, batch_acks, declared)
        finally:
            caller.auth.connections.release(who)

    async def _serve(
        self,
        request: web.Request,
        origin: Origin,
        caller: Caller,
        batch_acks: bool,
        declared: str | None,
    ) -> web.WebSocketResponse:
        scope = await self._scope(caller.principal)
        socket = web.WebSocketResponse(
            timeout=self.settings.close_timeout_s,
            heartbeat=self.settings.ping_s,
            max_msg_size=self.settings.max_frame_bytes,
        )
        session = WsSession(socket, self, origin, caller, scope, batch_acks, declared)
        await session.open(request)
        await session.run()
        return socket

    def subscribers(self, platform: str, domains: Iterable[SyncDomain]) -> int:
        """Open connections that declared `platform` and have a subscription to any of
        `domains` (what makes a sync target `live`)."""
        wanted = set(domains)
        return sum(
            1
            for session in self.sessions
            if session.declared == platform
            and any(
                wanted.intersection(sub.wanted.domains)
                for sub in session.subscriber.subscriptions.values()
            )
        )

    def connections_of(self, chitty_id: str) -> int:
        """Open connections of one principal (a custom agent is `connected` while it has one)."""
        return sum(1 for s in self.sessions if s.caller.principal.chitty_id == chitty_id)

    async def _scope(self, principal: Principal) -> WsScope | None:
        """A restricted principal's stream scope, starting from the projects and sessions it
        may read now (listed through the catalog's own scope filter)."""
        if Scope(principal, self.writer.hub.get).unrestricted:
            return None
        readable: list[EntityView] = []
        for domain in (SyncDomain.PROJECTS, SyncDomain.SESSIONS):  # projects first
            cursor = None
            while True:
                query = Query(domain, cursor=cursor, limit=500, visible_to=principal.chitty_id)
                page = await self.writer.hub.list(query)
                readable.extend(page.rows)
                cursor = page.cursor
                if cursor is None:
                    break
        return WsScope.of(principal, readable)

    async def _revalidate(self) -> None:
        """Close every connection whose credential was revoked or expired since it opened."""
        while True:
            await asyncio.sleep(self.settings.revalidate_s)
            for session in list(self.sessions):
                caller = session.caller
                if not await caller.auth.still_valid(caller.credential):
                    await session.close(POLICY_VIOLATION, b"credential revoked or expired")

    async def lifecycle(self, app: web.Application) -> AsyncIterator[None]:
        """cleanup_ctx: follow the hub's stream while the app runs."""
        if self._writer is None:
            raise RuntimeError("add_ws_routes needs the gateway's Writer")
        # One poll never hands a reading connection more events than its outbox holds.
        most = self.settings.outbox_limit
        self._follower = StreamFollower(
            self._writer.hub,
            wait_s=self.settings.poll_wait_s,
            batch=min(1000, most),
            catch_up_chunk=min(500, most),
        )
        await self._follower.start()
        revalidate = asyncio.create_task(self._revalidate(), name="ws-revalidate")
        yield
        revalidate.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await revalidate
        await self._follower.stop()

    async def close_all(self, app: web.Application | None = None) -> None:
        """Close every open connection (on shutdown); clients reconnect and resume."""
        await asyncio.gather(
            *(s.close(WSCloseCode.GOING_AWAY, b"server shutdown") for s in list(self.sessions)),
            return_exceptions=True,
        )


def _check_origin(request: web.Request, allowed: tuple[str, ...]) -> None:
    """Refuse (403) an upgrade from a browser page of another origin than the hub's own or a
    configured one (`ws_origins`): a page elsewhere must not ride a user's credentials."""
    origin = request.headers.get("Origin")
    if origin is None:
        return  # not a browser: browsers always send Origin on a WebSocket upgrade
    own = f"{request.scheme}://{request.host}"
    if origin.rstrip("/") in (own, *allowed):
        return
    raise ApiError(
        403,
        "forbidden_origin",
        f"WebSocket upgrades from {origin[:100]!r} are not allowed",
        "Origin",
    )


def _origin_part(request: web.Request, header: str, query: str, default: str, most: int) -> str:
    """Who writes: a header, or a query parameter (browsers cannot set WebSocket headers)."""
    value = request.headers.get(header) or request.query.get(query) or default
    if not (len(value) <= most and value.isprintable() and " " not in value):
        raise ApiError(400, "bad_header", f"must be 1-{most} printable characters", header)
    return value


def _acks_mode(request: web.Request) -> str:
    """How batch frames are answered: `each` (an `ack`/`error` frame per write, the default) or
    `batch` (one `acks` frame per batch), from `X-Chitty-Acks` or `?acks=`."""
    value = request.headers.get("X-Chitty-Acks") or request.query.get("acks") or "each"
    if value not in ("each", "batch"):
        raise ApiError(400, "bad_header", f"must be 'each' or 'batch', got {value[:64]!r}", "acks")
    return value


WS = web.AppKey("ws", WsGateway)


def add_ws_routes(app: web.Application, writer: Writer, settings: WsSettings | None = None) -> None:
    """Register /ws; `writer` is the hub and the source of message ids."""
    ws = WsGateway(settings or WsSettings(), writer)
    app[WS] = ws
    app[PRESENCE] = ws  # who is connected, for sync reports
    app.router.add_get("/ws", ws.handle, name="ws")
    app.cleanup_ctx.append(ws.lifecycle)
    app.on_shutdown.append(ws.close_all)


def open_connections(app: web.Application) -> int:
    """How many /ws connections are open now (for /metrics)."""
    return len(app[WS].sessions)
