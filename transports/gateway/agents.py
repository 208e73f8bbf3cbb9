"""Custom agents (the spec's ChittyRouter): `/api/v1/agents`, register, list, show, remove.

A service registers an agent with its own (signed) service token: what it subscribes to, and
either a webhook URL (signed deliveries, `agent_delivery`) or nothing (it follows /ws with
the same token, as any client does). An admin may register one on a service's behalf by
naming its `principal`. A service sees and removes only its own agents, an admin every one;
members and viewers are refused (403). The webhook secret is answered once, at registration.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Annotated, Literal

from aiohttp import web
from pydantic import Field, HttpUrl

from hub.agent_store import AgentRecord, AgentStore
from hub.auth.principal import Principal, Role
from hub.domains import SyncDomain
from hub.ids import ServiceId
from hub.models.base import WireModel
from hub.settings import HubSettings
from transports.gateway.agent_delivery import AgentDeliveries, DeliverySettings
from transports.gateway.auth import AUTH, principal_of
from transports.gateway.errors import ApiError, read_json
from transports.gateway.hub_api import Hub
from transports.gateway.ws import WS
from transports.gateway.ws_frames import Filters


class AgentWebhook(WireModel):
    """Where the hub POSTs the agent's changes, signed with its secret."""

    url: Annotated[HttpUrl, Field(max_length=2048)]


class AgentSubscription(WireModel):
    """The domains an agent follows, narrowed by the filters /ws takes."""

    domains: Annotated[list[SyncDomain], Field(min_length=1)]
    filters: Filters = Field(default_factory=Filters)


class AgentRegistration(WireModel):
    """`POST /api/v1/agents`: register (or update: same name, same service) an agent."""

    name: Annotated[str, Field(pattern=r"^[a-z0-9-]{1,64}$")]
    description: Annotated[str, Field(max_length=500)] = ""
    subscribe: AgentSubscription
    webhook: AgentWebhook | None = None
    principal: ServiceId | None = Field(
        None, description="Admins only: the service (CHITTY-SERVICE id) the agent belongs to."
    )


class LastDelivered(WireModel):
    """What a webhook agent's receiver acknowledged: events, the last one's id, when."""

    events: int
    last_event_id: str | None
    at: str | None


class AgentInfo(WireModel):
    """A registered agent and, honestly, how its delivery stands now."""

    agent_id: str
    name: str
    description: str
    principal: str
    subscribe: AgentSubscription
    delivery: Literal["websocket", "webhook"]
    webhook_url: str | None
    state: Literal["connected", "delivering", "failing", "idle"]
    connected: int = Field(description="Open /ws connections of the agent's service.")
    pending: int = Field(description="Events in the batch awaiting the receiver's 2xx.")
    failing: bool
    error: str | None = Field(description="Why the last delivery attempt failed.")
    retry_at: str | None
    last_delivered: LastDelivered | None
    created_at: str
    updated_at: str


class AgentRegistered(AgentInfo):
    """The agent as registered; `webhookSecret` only when made now (shown once)."""

    webhook_secret: str | None = None


class AgentList(WireModel):
    """The agents the caller may see (a service: its own; an admin: every one)."""

    agents: list[AgentInfo]


class AgentRemoved(WireModel):
    """An agent was removed: its deliveries stopped, its secret and marks are gone."""

    agent_id: str
    removed: bool


AGENTS = web.AppKey("agents", AgentStore)
DELIVERIES = web.AppKey("agent_deliveries", AgentDeliveries)


def _iso(seconds: float | None) -> str | None:
    return None if seconds is None else datetime.fromtimestamp(seconds, UTC).isoformat()


def _owner(caller: Principal, wanted: AgentRegistration) -> str:
    """The service the agent belongs to: the caller, or (an admin) the one it names."""
    if caller.role is Role.SERVICE:
        if wanted.principal not in (None, caller.chitty_id):
            raise ApiError(403, "forbidden", "a service registers agents for itself", "principal")
        return caller.chitty_id
    if caller.role is Role.ADMIN:
        if wanted.principal is None:
            detail = "an admin names the service the agent belongs to (CHITTY-SERVICE id)"
            raise ApiError(422, "invalid", detail, "principal")
        return wanted.principal
    raise ApiError(403, "forbidden", "registering an agent needs a service token")


def _may_see(request: web.Request) -> str | None:
    """The service whose agents the caller sees (None: an admin, every one); 403 otherwise."""
    caller = principal_of(request)
    if caller.role is Role.ADMIN:
        return None
    if caller.role is Role.SERVICE:
        return caller.chitty_id
    raise ApiError(403, "forbidden", "agents are a service's: use a service or admin token")


class AgentRoutes:
    def __init__(self, store: AgentStore) -> None:
        self.store = store

    def info(self, request: web.Request, record: AgentRecord) -> AgentInfo:
        return AgentInfo.model_validate(self._info(request, record))

    def _info(self, request: web.Request, record: AgentRecord) -> dict[str, object]:
        connected = request.app[WS].connections_of(record.principal)
        status = request.app[DELIVERIES].status(record.agent_id)
        delivered = self.store.delivered(record.agent_id) if record.webhook_url else None
        if record.webhook_url is None:
            state = "connected" if connected else "idle"
        elif status is None:
            state = "idle"
        else:
            state = status.state
        return {
            "agentId": record.agent_id,
            "name": record.name,
            "description": record.description,
            "principal": record.principal,
            "subscribe": {"domains": list(record.domains), "filters": dict(record.filters)},
            "delivery": record.delivery,
            "webhookUrl": record.webhook_url,
            "state": state,
            "connected": connected,
            "pending": status.pending if status else 0,
            "failing": state == "failing",
            "error": status.error if status and state == "failing" else None,
            "retryAt": _iso(status.retry_at) if status and state == "failing" else None,
            "lastDelivered": None
            if delivered is None
            else {
                "events": delivered.events,
                "lastEventId": delivered.last_event_id,
                "at": _iso(delivered.at),
            },
            "createdAt": _iso(record.created_at),
            "updatedAt": _iso(record.updated_at),
        }

    def _known(self, request: web.Request) -> AgentRecord:
        agent_id = request.match_info["id"]
        owner = _may_see(request)
        record = self.store.get(agent_id)
        if record is None or owner not in (None, record.principal):
            raise ApiError(404, "not_found", f"no agent {agent_id[:80]!r} you may see", "id")
        return record

    async def register(self, request: web.Request) -> web.Response:
        caller = principal_of(request)
        if caller.role not in (Role.SERVICE, Role.ADMIN):
            raise ApiError(403, "forbidden", "registering an agent needs a service token")
        wanted = AgentRegistration.model_validate(await read_json(request))
        owner = _owner(caller, wanted)
        if caller.role is Role.ADMIN and not any(
            r.chitty_id == owner for r in request.app[AUTH].tokens.list()
        ):
            raise ApiError(422, "invalid", f"no service token names {owner}", "principal")
        filters = wanted.subscribe.filters.model_dump(exclude_none=True)
        record, secret, new = self.store.register(
            owner,
            wanted.name,
            wanted.description,
            tuple(d.value for d in dict.fromkeys(wanted.subscribe.domains)),
            filters,
            str(wanted.webhook.url) if wanted.webhook is not None else None,
            caller.chitty_id,
        )
        await request.app[DELIVERIES].refresh(record)
        body = {**self._info(request, record), "webhookSecret": secret}
        shown = AgentRegistered.model_validate(body)
        return web.json_response(shown.model_dump(mode="json"), status=201 if new else 200)

    async def list(self, request: web.Request) -> web.Response:
        records = self.store.list(_may_see(request))
        body = AgentList(agents=[self.info(request, r) for r in records])
        return web.json_response(body.model_dump(mode="json"))

    async def get(self, request: web.Request) -> web.Response:
        return web.json_response(self.info(request, self._known(request)).model_dump(mode="json"))

    async def remove(self, request: web.Request) -> web.Response:
        record = self._known(request)
        request.app[DELIVERIES].forget(record.agent_id)
        self.store.remove(record.agent_id)
        removed = AgentRemoved(agent_id=record.agent_id, removed=True)
        return web.json_response(removed.model_dump(mode="json"))


def agents_of(request: web.Request, principal: str) -> list[dict[str, object]]:
    """A principal's agents as the API shows them (a data export: never the secrets)."""
    routes = AgentRoutes(request.app[AGENTS])
    found = [routes.info(request, r) for r in request.app[AGENTS].list(principal)]
    return [info.model_dump(mode="json") for info in found]


def forget_agents_of(app: web.Application, principal: str) -> int:
    """Stop and remove every agent of `principal` (erasure); how many."""
    store = app[AGENTS]
    records = store.list(principal)
    for record in records:
        app[DELIVERIES].forget(record.agent_id)
        store.remove(record.agent_id)
    return len(records)


def add_agent_routes(
    app: web.Application,
    hub: Hub,
    settings: HubSettings,
    delivery: DeliverySettings | None = None,
) -> None:
    """The agents' routes, their store (beside the tokens, <data dir>/auth) and their webhook
    deliveries, which follow the hub's stream (`Hub.stream`, caught up from `Hub.outboxes`)."""
    store = AgentStore(app[AUTH].tokens.environment, settings.value_codec())
    app[AGENTS] = store
    outboxes = hub.outboxes()

    def authorized(principal: str) -> bool:
        return app[AUTH].tokens.usable(principal)

    deliveries = AgentDeliveries(
        store, outboxes, hub.stream(), delivery or DeliverySettings(), authorized
    )
    app[DELIVERIES] = deliveries

    async def lifecycle(_: web.Application) -> AsyncIterator[None]:
        await deliveries.start()
        yield
        await deliveries.stop()

    app.cleanup_ctx.append(lifecycle)
    routes = AgentRoutes(store)
    app.router.add_post("/api/v1/agents", routes.register, name="register_agent")
    app.router.add_get("/api/v1/agents", routes.list, name="list_agents")
    app.router.add_get("/api/v1/agents/{id}", routes.get, name="get_agent")
    app.router.add_delete("/api/v1/agents/{id}", routes.remove, name="remove_agent")
