"""/metrics: request counts and latencies by route, WebSocket connections, host actor metrics."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import aiohttp
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from tests.transports.conftest import Gateway
from transports.gateway import make_app
from transports.gateway.hub_api import Hub
from transports.gateway.metrics import METRICS, UNMATCHED, GatewayMetrics

SESSION = "CHITTY-SESSION-1"


def scrape(gateway: Gateway) -> list[Sample]:
    status, text, headers = gateway.request("GET", "/metrics")
    assert status == 200 and headers["Content-Type"].startswith("text/plain")
    return [s for family in text_string_to_metric_families(text) for s in family.samples]


def value(samples: list[Sample], name: str, **labels: str) -> float | None:
    found = [s.value for s in samples if s.name == name and labels.items() <= s.labels.items()]
    return sum(found) if found else None


def test_requests_are_counted_and_timed_by_method_route_and_status(gateway: Gateway) -> None:
    for _ in range(2):
        body = {"content": "count me", "sessionId": SESSION}
        assert gateway.request("POST", "/api/v1/todos", body)[0] == 201
    assert gateway.request("GET", "/api/v1/todos/CHITTY-TODO-NOSUCH")[0] == 404
    for path in ("/no/such/path", "/another/one"):
        assert gateway.request("GET", path)[0] == 404
    samples = scrape(gateway)
    requests = "chitty_http_requests_total"
    created = value(samples, requests, method="POST", route="create_todos", status="201")
    assert created is not None and created >= 2
    assert value(samples, requests, method="GET", route="get_todos", status="404") == 1
    assert value(samples, requests, route=UNMATCHED, status="404") == 2
    assert not any(s.labels.get("route", "").startswith("/no") for s in samples)
    latency = "chitty_http_request_duration_seconds"
    assert value(samples, latency + "_count", route="create_todos") == created
    assert (value(samples, latency + "_sum", route="create_todos") or 0) > 0
    buckets = [
        s for s in samples if s.name == latency + "_bucket" and s.labels["route"] == "get_todos"
    ]
    assert buckets and buckets[-1].labels["le"] == "+Inf" and buckets[-1].value == 1


def test_host_actor_metrics_are_read_at_scrape_time(gateway: Gateway) -> None:
    before = value(scrape(gateway), "chitty_host_messages_total") or 0
    for n in range(6):  # rendezvous hashing spreads these over both hosts
        gateway.request("POST", "/api/v1/todos", {"content": f"todo {n}", "sessionId": SESSION})
    samples = scrape(gateway)
    assert value(samples, "chitty_actor_metrics_up") == 1
    assert (value(samples, "chitty_host_messages_total") or 0) >= before + 6
    assert {s.labels["host"] for s in samples if s.name == "chitty_host_applied_total"} == {
        "host-0",
        "host-1",
    }
    for name in (
        "chitty_host_applied_total",
        "chitty_host_rejected_total",
        "chitty_host_activations_total",
        "chitty_host_passivations_total",
        "chitty_host_active_entities",
        "chitty_host_commit_seconds_total",
        "chitty_host_turn_seconds_total",
        "chitty_host_mailbox_max_depth",
        "chitty_host_publish_failures_total",
    ):
        assert value(samples, name, host="host-0") is not None, name


def test_open_websocket_connections_are_a_gauge_and_upgrades_are_not_timed(
    gateway: Gateway,
) -> None:
    before = scrape(gateway)
    assert value(before, "chitty_websocket_connections") == 0

    async def connect() -> aiohttp.ClientWebSocketResponse:
        return await gateway.session.ws_connect("/ws", headers={"X-Chitty-Node": "metrics"})

    socket = gateway.call(connect())
    try:
        during = scrape(gateway)
        assert value(during, "chitty_websocket_connections") == 1
        accepted = value(during, "chitty_websocket_accepted_total") or 0
        assert accepted >= (value(before, "chitty_websocket_accepted_total") or 0) + 1
    finally:
        gateway.call(socket.close())
    for _ in range(50):  # the server notices the close frame asynchronously
        after = scrape(gateway)
        if value(after, "chitty_websocket_connections") == 0:
            break
    assert value(after, "chitty_websocket_connections") == 0
    assert value(after, "chitty_http_requests_total", route="ws", status="101") == 1
    assert value(after, "chitty_http_request_duration_seconds_count", route="ws") is None


def test_two_apps_in_one_process_have_registries_of_their_own(gateway: Gateway) -> None:
    first, second = (
        make_app(gateway.runtime, gateway.settings, tokens=gateway.tokens)[METRICS]
        for _ in range(2)
    )
    first.observe("GET", "health", 200, 0.01)
    assert first.registry.get_sample_value(
        "chitty_http_requests_total", {"method": "GET", "route": "health", "status": "200"}
    )
    assert second.registry.get_sample_value("chitty_http_request_duration_seconds_count") is None


class Unreachable:
    """A hub whose hosts do not answer."""

    async def metrics(self) -> dict[str, Any]:
        raise ConnectionError("no host answered")


def test_a_hub_that_does_not_answer_still_yields_the_gateway_metrics() -> None:
    metrics = GatewayMetrics(cast(Hub, Unreachable()))
    metrics.observe("BREW", "health", 200, 0.01)
    text, content_type = asyncio.run(metrics.scrape("application/openmetrics-text"))
    assert content_type.startswith("application/openmetrics-text")
    assert b'chitty_http_requests_total{method="OTHER",route="health",status="200"} 1.0' in text
    assert b"chitty_actor_metrics_up 0.0" in text
    assert b"chitty_actor_scrape_failures_total 1.0" in text
