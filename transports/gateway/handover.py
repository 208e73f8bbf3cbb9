"""Example 3 at the gateway: the caller's hand-over context (`GET /api/v1/contexts/current`),
propagating a context to a model or platform with a truthful report per target, and the job that
hands a session's context over when its principal starts a session somewhere else.

Delivery per target: Claude reads the hand-over over MCP (resource `chitty://context/current`)
and ChatGPT through the Actions endpoint when they ask, so both are `available`, never
`delivered`, unless a model adapter is configured for them: then the hub pushes the text to the
model in one real API call and reports `delivered` with the model's response id, or `failed`
with its reason. Gemini has no pull path: it is pushed or `not_configured`, naming the variable."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Literal

from aiohttp import web
from pydantic import Field, JsonValue

from actors.linker import HUB_PRINCIPAL
from actors.summaries import (
    ContextSummaries,
    HubReads,
    SessionFollower,
    last_hash,
    session_todos,
)
from hub.adapters import DeliveryError
from hub.catalog import Query
from hub.codec import write_message
from hub.context_sources import material_of, session_context_id
from hub.domains import SyncDomain
from hub.entity import EntityView
from hub.envelope import Status
from hub.handover import (
    HandOver,
    LatestSessions,
    hand_over,
    handover_context_id,
    latest_elsewhere,
)
from hub.ids import ContextId, InvalidChittyId, Kind, SessionId, parse
from hub.models.base import WireModel
from hub.settings import HubSettings
from hub.subscriptions import Published
from transports.gateway.auth import principal_of, scope_of, visible_to
from transports.gateway.contexts import SUMMARIES, run_beside
from transports.gateway.entities import written_body
from transports.gateway.errors import ApiError, read_json
from transports.gateway.hub_api import Hub, Writer
from transports.gateway.targets import KNOWN, PRESENCE, Presence
from transports.models.agents import model_adapter, unconfigured

log = logging.getLogger(__name__)
SESSIONS_SCANNED = 2_000  # a principal's sessions looked at to find the latest one

Via = Literal["mcp", "actions", "push", "ws"]
DeliveryStatus = Literal[
    "delivered", "available", "live", "not_connected", "not_configured", "failed"
]


@dataclass(frozen=True, slots=True)
class Delivery:
    """What a hand-over did for one target."""

    target: str
    via: Via
    status: DeliveryStatus
    detail: str
    response_id: str | None = None

    def to_wire(self) -> dict[str, object]:
        return {
            "target": self.target,
            "via": self.via,
            "status": self.status,
            "detail": self.detail,
            "responseId": self.response_id,
        }


PULLED = {
    "claude": (
        "mcp",
        "Claude reads it over MCP when it asks (resource chitty://context/current, prompt "
        "continue_from_handover); nothing was pushed",
    ),
    "chatgpt": (
        "actions",
        "the GPT reads it through its Actions (GET /api/v1/contexts/current, operation "
        "current_context) when it asks; nothing was pushed",
    ),
}


async def deliver(
    target: str, handover: HandOver, env: Mapping[str, str], subscribers: int
) -> Delivery:
    """Hand `handover` to `target`: pushed through its model adapter when the hub's
    environment `env` configures one, else what is true of it (readable on request, live
    subscribers, or not connected)."""
    adapter = model_adapter(env, target)
    if adapter is not None:
        try:
            sent = await adapter.send_context(handover.text())
        except DeliveryError as error:
            return Delivery(target, "push", "failed", f"the push to {target} failed: {error}")
        detail = (
            f"pushed to {target} ({sent.model}) in one API call; it answered {sent.response_id}"
        )
        return Delivery(target, "push", "delivered", detail, sent.response_id)
    if target in PULLED:
        via, detail = PULLED[target]
        return Delivery(target, via, "available", detail)
    if target in KNOWN["models"]:
        variable = unconfigured(env)[target]
        detail = f"no {target} model adapter is configured (set {variable}); nothing was sent"
        return Delivery(target, "push", "not_configured", detail)
    if subscribers:
        detail = (
            f"{subscribers} connected {target} subscriber(s) received the context as it committed"
        )
        return Delivery(target, "ws", "live", detail)
    detail = (
        f"no {target} subscriber is connected; it reads GET /api/v1/contexts/current when it asks"
    )
    return Delivery(target, "ws", "not_connected", detail)


async def sessions_of(
    hub: HubReads, principal: str, visible: str | None
) -> list[Mapping[str, Any]]:
    """The sessions `principal` may read (`visible`: narrowed to theirs), up to a bound."""
    sessions: list[Mapping[str, Any]] = []
    cursor = None
    while len(sessions) < SESSIONS_SCANNED:
        page = await hub.list(
            Query(SyncDomain.SESSIONS, cursor=cursor, limit=500, visible_to=visible or principal)
        )
        sessions += [row.entity for row in page.rows]
        cursor = page.cursor
        if cursor is None:
            break
    return sessions


async def latest_session(
    hub: HubReads, principal: str, visible: str | None, not_on: str | None
) -> Mapping[str, Any] | None:
    """The principal's most recently active session not on `not_on` (spec Example 3's
    "detects a context switch": the work carried over is where the principal was last)."""
    return latest_elsewhere(await sessions_of(hub, principal, visible), principal, not_on)


async def build(
    hub: HubReads,
    summaries: ContextSummaries,
    session: Mapping[str, Any],
    visible: str | None,
) -> HandOver:
    """The hand-over of `session`: its summary is its own context's when that was made from
    what the session holds now, else made now (offline, or by the configured model)."""
    session_id = str(session["chittyId"])
    todos = await session_todos(hub, session_id, visible)
    context_id = session_context_id(session_id)
    material = material_of([{**session, "todos": todos}], datetime.now(UTC))
    context = await hub.get(context_id)
    if (
        context is not None
        and not context.deleted
        and last_hash(context.entity) == material.digest()
    ):
        content = context.entity.get("content")
    else:
        content = (await summaries.summarize(material)).content()
    return hand_over(session, todos, context_id, content)


def handover_enrichment(
    handover: HandOver, target: str, deliveries: Sequence[Delivery]
) -> dict[str, Any]:
    """The record a hand-over leaves on its context: to whom, from which session, what it said
    and what reached the target."""
    body = handover.wire()
    body.pop("text")
    return {
        "source": "chittychat/handover",
        "kind": "handover",
        "content": {
            "target": target,
            **body,
            "deliveries": [d.to_wire() for d in deliveries],
        },
    }


class HandOverJob(SessionFollower):
    """When a principal starts a session on a platform other than the one they last worked
    on, records the hand-over of that last session in a context linked to both
    (`hub.handover.handover_context_id` of the new one) and pushes it to the new session's
    model when an adapter for it is configured. Off the write path."""

    def __init__(
        self,
        hub: HubReads,
        summaries: ContextSummaries,
        env: Mapping[str, str],
        presence: Presence,
        tick_s: float = 1.0,
    ) -> None:
        super().__init__(hub, tick_s)
        self.summaries = summaries
        self.env = env
        self.presence = presence
        self.handed = 0
        self.latest = LatestSessions()

    async def seen(self, events: Sequence[Published]) -> None:
        for event in events:
            if event.kind == "deleted":
                continue
            if event.kind == "created":
                await self.started(dict(event.entity))
            self.latest.note(event.entity)

    async def started(self, session: Mapping[str, Any]) -> Delivery | None:
        """Hand over to a just-started `session`; None when its principal has no session on
        another platform to carry on from."""
        principal = session.get("createdBy")
        if not isinstance(principal, str) or principal == HUB_PRINCIPAL:
            return None
        platform = str(session.get("platform"))
        if not self.latest.known(principal):  # first seen: its sessions so far, once
            self.latest.learn(principal, await sessions_of(self.hub, principal, principal))
        before_id = self.latest.elsewhere(principal, platform)
        before_view = None if before_id is None else await self.hub.get(before_id)
        if before_view is None or before_view.deleted:
            return None
        before = before_view.entity
        handover = await build(self.hub, self.summaries, before, principal)
        subscribers = self.presence.subscribers(platform, [SyncDomain.CONTEXTS])
        delivery = await deliver(platform, handover, self.env, subscribers)
        new_id = str(session["chittyId"])
        context_id = handover_context_id(new_id)
        data = {
            "type": "session",
            "content": {
                "summary": handover.summary,
                "keyPoints": list(handover.key_points),
                "entities": [dict(e) for e in handover.entities],
            },
            "sources": [str(before["chittyId"]), handover.context_id, new_id],
            "createdBy": principal,
            "sharedWith": list(session.get("sharedWith") or []),
        }
        key = f"{context_id}\x00{handover.digest()}"
        message = write_message(
            message_id="hand-" + hashlib.sha256(key.encode()).hexdigest()[:40],
            node_id="hub-handovers",
            platform="hub",
            chitty_id=HUB_PRINCIPAL,
            domain=SyncDomain.CONTEXTS.value,
            operation="create",
            entity_id=context_id,
            data=data,
            timestamp=datetime.now(UTC),
            delta={"add": {"enrichments": [handover_enrichment(handover, platform, [delivery])]}},
        )
        [outcome] = await self.hub.submit([message])
        if outcome.status in (Status.APPLIED, Status.DUPLICATE):
            self.handed += 1
        else:
            self.failed += 1
            log.warning("hand-over to %s not recorded: %s", new_id, outcome)
        return delivery


class DeliveryReport(WireModel):
    """What a hand-over did for one target: `delivered` (pushed to the model in a real API call,
    `responseId` its answer), `available` (Claude over MCP, ChatGPT through its Actions: read
    when they ask), `live` (connected subscribers received it), `not_connected`,
    `not_configured` (no key for the model: the detail names the variable), `failed`."""

    target: str
    via: Via
    status: DeliveryStatus
    detail: str
    response_id: str | None


class HandOverMessage(WireModel):
    role: str
    author: str | None
    content: str
    timestamp: str | None


class HandOverTodo(WireModel):
    chitty_id: str
    content: str
    status: str


class HandOverBody(WireModel):
    """A hand-over context (spec Example 3): the session's summary, key points and entities,
    its last 10 messages, the files it touched, its open todos, and all of it as one
    prompt-ready `text`."""

    context_id: str = Field(description="The context holding the session's summary.")
    session_id: str | None
    platform: str
    project_id: str | None
    summary: str
    key_points: list[str]
    entities: list[dict[str, Any]]
    last_messages: list[HandOverMessage]
    files: list[str]
    open_todos: list[HandOverTodo]
    text: str


class CurrentContext(HandOverBody):
    """The caller's hand-over context now, and the position of its session."""

    seq: int


class PropagateRequest(WireModel):
    """The spec's Example 3 body: carry a context from one model or platform to others. The
    hand-over is of `sessionId`, else of the session the context summarizes, else of the
    caller's latest session elsewhere, else of the context alone."""

    source: str = Field(min_length=1, max_length=64)
    target: str = Field(min_length=1, max_length=64)
    targets: list[str] = Field(default_factory=list, max_length=8)
    context_id: ContextId
    session_id: SessionId | None = None
    summary: str | None = Field(default=None, max_length=100_000)


class HandOverRoutes:
    """`env`: the hub's adapter environment, where the models' keys are."""

    def __init__(self, hub: Hub, writer: Writer, env: Mapping[str, str]) -> None:
        self.hub = hub
        self.writer = writer
        self.env = env

    async def current(self, request: web.Request) -> web.Response:
        """The caller's hand-over context in one call (what a GPT's Action reads)."""
        target = request.query.get("target")
        if target is not None and target not in KNOWN["platforms"] | KNOWN["models"]:
            known = ", ".join(sorted(KNOWN["platforms"] | KNOWN["models"]))
            raise ApiError(422, "unknown_target", f"known: {known}", "target")
        session = await self._session(request, request.query.get("sessionId"), target)
        if session is None:
            detail = "no session yet: start one (POST /api/v1/sessions, or `chitty session start`)"
            raise ApiError(404, "no_context", detail)
        summaries = request.app[SUMMARIES]
        handover = await build(self.hub, summaries, session.entity, visible_to(request))
        return web.json_response({**handover.wire(), "seq": session.seq})

    async def propagate(self, request: web.Request) -> web.Response:
        """Record a context hand-over (Example 3), deliver it, and say per target what
        reached it."""
        wanted = PropagateRequest.model_validate(await read_json(request))
        known = KNOWN["platforms"] | KNOWN["models"]
        targets = list(dict.fromkeys([wanted.target, *wanted.targets]))
        for name in targets:
            if name not in known:
                field = "target" if name == wanted.target else "targets"
                raise ApiError(422, "unknown_target", f"known: {', '.join(sorted(known))}", field)
        scope = scope_of(request, self.hub.get)
        await scope.check_write_to(wanted.context_id, f"context {wanted.context_id}")
        context = await self.hub.get(wanted.context_id)
        session = await self._source_session(request, wanted, context)
        if session is not None:
            handover = await build(
                self.hub, request.app[SUMMARIES], session.entity, visible_to(request)
            )
        else:
            content = context.entity.get("content") if context is not None else None
            handover = hand_over(None, (), wanted.context_id, content, wanted.source)
        if wanted.summary is not None:
            handover = replace(handover, summary=wanted.summary)
        presence = request.app[PRESENCE]
        deliveries = [
            await deliver(
                name,
                handover,
                self.env,
                presence.subscribers(name, [SyncDomain.CONTEXTS]),
            )
            for name in targets
        ]
        data: dict[str, JsonValue] = {}
        if wanted.summary is not None:
            data["content"] = {"summary": wanted.summary}
        sources: list[JsonValue] = [handover.session_id] if handover.session_id else []
        enrichment = handover_enrichment(handover, ",".join(targets), deliveries)
        delta: dict[str, JsonValue] = {"add": {"enrichments": [enrichment], "sources": sources}}
        message = self.writer.message(
            request, SyncDomain.CONTEXTS, "update", wanted.context_id, data, delta=delta
        )
        outcome, first = await self.writer.write(message)
        return web.json_response(
            {
                **written_body(outcome, first),
                "handover": handover.wire(),
                "propagation": deliveries[0].to_wire(),
                "deliveries": [d.to_wire() for d in deliveries],
            }
        )

    async def _session(
        self, request: web.Request, session_id: str | None, not_on: str | None
    ) -> EntityView | None:
        scope = scope_of(request, self.hub.get)
        if session_id is not None:
            try:
                parse(session_id, expect=Kind.SESSION)
            except InvalidChittyId as error:
                raise ApiError(422, "invalid", str(error), "sessionId") from None
            return await scope.check_read_of(
                session_id, f"session {session_id}", "sessions", "sessionId"
            )
        principal = principal_of(request).chitty_id
        found = await latest_session(self.hub, principal, visible_to(request), not_on)
        return None if found is None else await self.hub.get(str(found["chittyId"]))

    async def _source_session(
        self, request: web.Request, wanted: PropagateRequest, context: EntityView | None
    ) -> EntityView | None:
        if wanted.session_id is not None:
            return await self._session(request, wanted.session_id, None)
        scope = scope_of(request, self.hub.get)
        for source in (context.entity.get("sources") or []) if context is not None else []:
            view = await self.hub.get(str(source))
            if view is None or view.deleted or view.domain != SyncDomain.SESSIONS.value:
                continue  # a source gone, or not a session: the context's other sources
            if await scope.readable(view.domain, view.entity):
                return view
        return await self._session(request, None, wanted.target)


def add_handover(app: web.Application, hub: Hub, writer: Writer, settings: HubSettings) -> None:
    """The hand-over routes and, unless sessions are not summarized in the background, the
    job that hands over on a switch of platform. Needs `add_context_intelligence` and the /ws
    routes (their presence) first."""
    routes = HandOverRoutes(hub, writer, settings.adapter_env)
    app.router.add_get("/api/v1/contexts/current", routes.current, name="current_context")
    app.router.add_post("/api/v1/contexts/propagate", routes.propagate, name="propagate_context")
    if not settings.summarize_sessions:
        return
    run_beside(app, HandOverJob(hub, app[SUMMARIES], settings.adapter_env, app[PRESENCE]))
