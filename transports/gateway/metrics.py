"""Prometheus `/metrics` of one gateway: requests, latencies, WebSocket connections, host actors."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from actors.host import HostMetrics
from actors.watcher import Checked
from hub.adapters import AdapterState, AdapterStatus
from hub.auth.principal import is_unrestricted
from hub.models.service import Health
from transports.gateway.agents import DELIVERIES
from transports.gateway.auth import principal_of
from transports.gateway.errors import ApiError
from transports.gateway.hub_api import Hub
from transports.gateway.ws import WS, WsGateway, open_connections

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

UNMATCHED = "unmatched"  # one label for every path no route matched: cardinality stays bounded
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
SCRAPE_TIMEOUT_S = 5.0
CLIENT_CLOSED = 499  # the client went away before the answer (nginx's convention)

# HostMetrics attribute -> help text; counters are cumulative since the host started.
HOST_COUNTERS: Mapping[str, str] = {
    "batches": "Message batches the host took from its mailbox",
    "messages": "Messages the host received",
    "applied": "Messages applied and committed",
    "duplicates": "Messages ignored as already applied",
    "rejected": "Messages refused by an entity",
    "expired": "Messages whose ttl ran out before they were applied",
    "activations": "Entity activations (snapshot load and event replay)",
    "passivations": "Entities passivated when idle or over the active limit",
    "snapshots": "Entity snapshots written",
    "publish_failures": "Events that could not be handed to the broker for fan-out",
    "corrupt_entities": "Entities whose stored data failed its integrity check as they loaded",
    "activation_seconds": "Seconds spent activating entities",
    "turn_seconds": "Seconds spent in entity turns",
    "commit_seconds": "Seconds spent in LMDB group commits",
}
HOST_GAUGES: Mapping[str, str] = {"active_entities": "Entities active in the host now"}
HOST_EXTRA_GAUGES: Mapping[str, str] = {
    "mailbox_max_depth": "Deepest the host's mailbox has been",
}
# WsCounters attribute -> (metric name, help text); cumulative since the app started.
WS_COUNTERS: Mapping[str, tuple[str, str]] = {
    "connections": ("chitty_websocket_accepted", "WebSocket connections accepted"),
    "frames_in": ("chitty_websocket_frames_received", "WebSocket frames received"),
    "frames_out": ("chitty_websocket_frames_sent", "WebSocket frames sent"),
    "errors": ("chitty_websocket_error_frames", "WebSocket error frames sent"),
    "acks": ("chitty_websocket_acks", "WebSocket acks sent"),
    "hub_failures": ("chitty_websocket_hub_failures", "WebSocket writes the hub failed to take"),
}


class ActorCollector(Collector):
    """The host actors' metrics of the scrape in progress (set just before rendering)."""

    def __init__(self) -> None:
        self.hosts: Mapping[str, HostMetrics] = {}
        self.up = False

    def collect(self) -> Iterable[Metric]:
        yield GaugeMetricFamily(
            "chitty_actor_metrics_up",
            "1 when every host answered this scrape, else 0",
            value=1.0 if self.up else 0.0,
        )
        hosts = sorted(self.hosts.items())
        for attr, text in HOST_COUNTERS.items():
            counter = CounterMetricFamily(f"chitty_host_{attr}", text, labels=["host"])
            for host, values in hosts:
                counter.add_metric([host], float(getattr(values, attr)))
            yield counter
        for attr, text in HOST_GAUGES.items():
            gauge = GaugeMetricFamily(f"chitty_host_{attr}", text, labels=["host"])
            for host, values in hosts:
                gauge.add_metric([host], float(getattr(values, attr)))
            yield gauge
        for key, text in HOST_EXTRA_GAUGES.items():
            gauge = GaugeMetricFamily(f"chitty_host_{key}", text, labels=["host"])
            for host, values in hosts:
                if key in values.extra:
                    gauge.add_metric([host], float(values.extra[key]))
            yield gauge


ADAPTER_COUNTERS: Mapping[str, str] = {
    "sent": "Messages an adapter delivered to its service (posts and edits)",
    "received": "Inbound events an adapter turned into hub changes",
    "retried": "Deliveries an adapter tried again (rate limits, outages)",
    "failed": "Deliveries that failed for good (listed by GET /api/v1/adapters/{name}/failed)",
    "ignored": "Inbound events an adapter would not act on (a sender not on its allowlist)",
    "withheld": "Deliveries an adapter withheld: someone on the channel may not see the entity",
}
ADAPTER_GAUGES: Mapping[str, str] = {
    "pending": "Deliveries an adapter has queued",
    "lag": "Committed changes an adapter has not taken yet (a lower bound)",
}


class AdapterCollector(Collector):
    """Each adapter's state and counters as of the scrape in progress."""

    def __init__(self) -> None:
        self.statuses: list[AdapterStatus] = []

    def collect(self) -> Iterable[Metric]:
        state = GaugeMetricFamily(
            "chitty_adapter_state",
            "1 for each adapter's current state",
            labels=["adapter", "state"],
        )
        for status in self.statuses:
            for each in AdapterState:
                state.add_metric([status.name, each.value], float(each is status.state))
        yield state
        for attr, text in ADAPTER_COUNTERS.items():
            counter = CounterMetricFamily(f"chitty_adapter_{attr}", text, labels=["adapter"])
            for status in self.statuses:
                counter.add_metric([status.name], float(getattr(status, attr)))
            yield counter
        for attr, text in ADAPTER_GAUGES.items():
            gauge = GaugeMetricFamily(f"chitty_adapter_{attr}", text, labels=["adapter"])
            for status in self.statuses:
                gauge.add_metric([status.name], float(getattr(status, attr)))
            yield gauge


class WatchCollector(Collector):
    """Each service's health and check latency, and each repo's state, as the watcher's latest
    checks found them."""

    def __init__(self) -> None:
        self.latest: list[Checked] = []

    def collect(self) -> Iterable[Metric]:
        health = GaugeMetricFamily(
            "chitty_service_health",
            "1 for each service's current health",
            labels=["service", "name", "health"],
        )
        latency = GaugeMetricFamily(
            "chitty_service_check_latency_seconds",
            "How long each service's latest health check took",
            labels=["service", "name"],
        )
        repos = GaugeMetricFamily(
            "chitty_repo_state",
            "1 for each repo's working tree as last read (error: the read failed)",
            labels=["repo", "name", "state"],
        )
        for c in self.latest:
            if c.domain == "services":
                for each in Health:
                    health.add_metric([c.entity_id, c.name, each.value], float(c.state == each))
                if c.latency_ms is not None:
                    latency.add_metric([c.entity_id, c.name], c.latency_ms / 1000)
            else:
                for each in ("clean", "dirty", "error"):
                    repos.add_metric([c.entity_id, c.name, each], float(c.state == each))
        yield from (health, latency, repos)


class WebSocketCollector(Collector):
    """Open /ws connections and the /ws counters, read from the app's `WsGateway` at scrape time."""

    def __init__(self, app: web.Application) -> None:
        self.app = app

    def collect(self) -> Iterable[Metric]:
        ws: WsGateway | None = self.app.get(WS)
        yield GaugeMetricFamily(
            "chitty_websocket_connections",
            "Open WebSocket connections",
            value=float(open_connections(self.app)) if ws is not None else 0.0,
        )
        for attr, (name, text) in WS_COUNTERS.items():
            counter = CounterMetricFamily(name, text)
            if ws is not None:
                counter.add_metric([], float(getattr(ws.counters, attr)))
            yield counter


class AgentCollector(Collector):
    """Custom agents' webhook deliveries, read from the app's `AgentDeliveries` at scrape time."""

    def __init__(self, app: web.Application) -> None:
        self.app = app

    def collect(self) -> Iterable[Metric]:
        failing = GaugeMetricFamily(
            "chitty_agent_failing", "1 while a webhook agent's deliveries fail", labels=["agent"]
        )
        pending = GaugeMetricFamily(
            "chitty_agent_pending_events",
            "Events in a webhook agent's batch awaiting its receiver's 2xx",
            labels=["agent"],
        )
        failures = CounterMetricFamily(
            "chitty_agent_delivery_failures",
            "Failed webhook delivery attempts since the gateway started",
            labels=["agent"],
        )
        deliveries = self.app.get(DELIVERIES)
        for agent in deliveries.running() if deliveries is not None else ():
            name = [agent.record.agent_id]
            failing.add_metric(name, float(agent.status.state == "failing"))
            pending.add_metric(name, float(agent.status.pending))
            failures.add_metric(name, float(agent.failures))
        yield from (failing, pending, failures)


class GatewayMetrics:
    """The metrics of one app in a registry of its own, so two apps in a process never collide."""

    def __init__(self, hub: Hub, app: web.Application | None = None) -> None:
        self.hub = hub
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "chitty_http_requests",
            "HTTP requests answered, by method, route name and status",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "chitty_http_request_duration_seconds",
            "Time to answer an HTTP request, by route name",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.scrape_failures = Counter(
            "chitty_actor_scrape_failures",
            "Scrapes in which the host actors' metrics could not be read",
            registry=self.registry,
        )
        self.actors = ActorCollector()
        self.registry.register(self.actors)
        self.adapters = AdapterCollector()
        self.registry.register(self.adapters)
        self.watched = WatchCollector()
        self.registry.register(self.watched)
        if app is not None:
            self.registry.register(WebSocketCollector(app))
            self.registry.register(AgentCollector(app))

    def observe(self, method: str, route: str, status: int, seconds: float | None) -> None:
        """Count one answered request; `seconds` None leaves the latency out (a WebSocket)."""
        method = method if method in METHODS else "OTHER"
        self.requests.labels(method, route, str(status)).inc()
        if seconds is not None:
            self.latency.labels(route).observe(seconds)

    async def scrape(self, accept: str | None) -> tuple[bytes, str]:
        """Read the hosts' metrics now, then render every metric for the `Accept`ed format."""
        try:
            hosts = await asyncio.wait_for(self.hub.metrics(), SCRAPE_TIMEOUT_S)
            up = True
        except Exception as error:  # a dead or slow host must not take /metrics down with it
            log.warning("host metrics unavailable: %r", error)
            self.scrape_failures.inc()
            hosts, up = {}, False
        try:
            adapters = await asyncio.wait_for(self.hub.adapter_statuses(), SCRAPE_TIMEOUT_S)
        except Exception as error:
            log.warning("adapter states unavailable: %r", error)
            adapters, up = [], False
        try:
            watched = await asyncio.wait_for(self.hub.watched(), SCRAPE_TIMEOUT_S)
        except Exception as error:
            log.warning("service and repo checks unavailable: %r", error)
            watched, up = [], False
        encoder, content_type = choose_encoder(accept or "")
        # No await from here on: concurrent scrapes cannot interleave their host snapshots.
        self.actors.hosts, self.actors.up = hosts, up
        self.adapters.statuses = adapters
        self.watched.latest = watched
        return encoder(self.registry), content_type


METRICS = web.AppKey("metrics", GatewayMetrics)


def route_label(request: web.Request) -> str:
    """The matched route's name (its path template if unnamed); UNMATCHED for a 404 or 405."""
    match = request.match_info
    if match.http_exception is not None:
        return UNMATCHED
    route = match.route
    if route.name:
        return route.name
    return route.resource.canonical if route.resource is not None else UNMATCHED


@web.middleware
async def request_metrics(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Count and time every request by route name (outermost, so it sees the final status)."""
    metrics = request.app.get(METRICS)
    if metrics is None:
        return await handler(request)
    started = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as error:
        status = error.status
        raise
    except asyncio.CancelledError:
        status = CLIENT_CLOSED
        raise
    finally:
        # A WebSocket's handler lasts as long as the connection: no request latency to record.
        seconds = None if status == 101 else time.perf_counter() - started
        metrics.observe(request.method, route_label(request), status, seconds)


async def metrics_endpoint(request: web.Request) -> web.Response:
    """Prometheus exposition (text, or OpenMetrics when the scraper asks for it), for admins
    and services only: the counters are the whole hub's, not one member's."""
    if not is_unrestricted(principal_of(request).role):
        raise ApiError(403, "forbidden", "/metrics is for admin and service principals")
    body, content_type = await request.app[METRICS].scrape(request.headers.get("Accept"))
    return web.Response(body=body, headers={"Content-Type": content_type})


def add_metrics(app: web.Application, hub: Hub) -> None:
    """Give `app` its own metrics and the /metrics route (`request_metrics` must be installed)."""
    app[METRICS] = GatewayMetrics(hub, app)
    app.router.add_get("/metrics", metrics_endpoint, name="metrics")
