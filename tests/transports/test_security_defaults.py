"""Defaults of the gateway that cost a careless operator nothing: security headers on every
answer, /metrics for admins and services only, `X-Chitty-Node` checked on REST as on /ws, and
an Origin allowlist for WebSocket upgrades (a client that sends no Origin is no browser)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import aiohttp
import pytest

from hub.auth.principal import Role
from hub.auth.signing import signed_headers
from hub.auth.tokens import derive_signing_key
from tests.transports.conftest import SESSION, Gateway
from transports.gateway import make_app

SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}


@pytest.fixture(scope="module")
def allowing(gateway: Gateway) -> Iterator[str]:
    """A second app on the module's hub that also allows one configured browser origin."""
    settings = gateway.settings.model_copy(update={"ws_origins": ("https://app.example",)})
    runner, url = gateway.serve(make_app(gateway.runtime, settings, tokens=gateway.tokens))
    yield url
    gateway.call(runner.cleanup())


async def fetch(url: str, token: str | None = None, **headers: str) -> tuple[int, Any, Any]:
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    async with aiohttp.ClientSession() as session, session.get(url, headers=headers) as response:
        return response.status, await response.text(), response.headers


def test_every_answer_carries_the_security_headers(gateway: Gateway) -> None:
    async def scenario() -> list[tuple[str, int, Any]]:
        answers = []
        for path, token in (
            ("/health", None),
            ("/api/v1/todos", None),  # 401
            ("/api/v1/todos", gateway.token),
            ("/api/v1/todos/CHITTY-TODO-NONE", gateway.token),  # 404
            ("/no/such/route", gateway.token),
            ("/metrics", gateway.token),
            ("/api/v1/openapi.json", gateway.token),
            ("/ws", gateway.token),  # a GET that is no upgrade: 400
        ):
            status, _, headers = await fetch(gateway.url + path, token)
            answers.append((path, status, headers))
        async with (
            aiohttp.ClientSession() as session,
            session.ws_connect(
                gateway.url + "/ws", headers={"Authorization": f"Bearer {gateway.token}"}
            ) as socket,
        ):
            answers.append(("/ws upgrade", 101, socket._response.headers))
        return answers

    for path, status, headers in gateway.call(scenario()):
        for name, value in SECURITY_HEADERS.items():
            assert headers.get(name) == value, (path, status, name, dict(headers))
    status, _, headers = gateway.call(fetch(gateway.url + "/api/v1/todos", gateway.token))
    assert "default-src 'none'" in headers["Content-Security-Policy"]


def test_metrics_are_for_admins_and_services_only(gateway: Gateway) -> None:
    _, member = gateway.tokens.create("metrics-member", Role.MEMBER)
    _, viewer = gateway.tokens.create("metrics-viewer", Role.VIEWER)
    _, service = gateway.tokens.create("metrics-service", Role.SERVICE)
    for token in (member, viewer):
        status, body, _ = gateway.call(fetch(gateway.url + "/metrics", token))
        assert status == 403 and json.loads(body)["error"] == "forbidden", body
    status, body, _ = gateway.call(fetch(gateway.url + "/metrics", gateway.token))
    assert status == 200 and "chitty_http_requests_total" in body
    signed = signed_headers(derive_signing_key(service), "GET", "/metrics", b"")
    status, body, _ = gateway.call(fetch(gateway.url + "/metrics", service, **signed))
    assert status == 200 and "chitty_http_requests_total" in body


@pytest.mark.parametrize("node", ["has space", "rtl\u202eoverride", "x" * 129])
def test_x_chitty_node_is_checked_on_rest_as_on_ws(gateway: Gateway, node: str) -> None:
    async def scenario() -> tuple[int, Any, int]:
        # aiohttp's client sends header values as given; the server reads them as UTF-8.
        raw = node.encode()
        reader, writer = await asyncio.open_connection(*_host_port(gateway.url))
        body = json.dumps({"content": "from a node", "sessionId": SESSION}).encode()
        writer.write(
            b"POST /api/v1/todos HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
            + f"Authorization: Bearer {gateway.token}\r\n".encode()
            + b"Content-Type: application/json\r\nX-Chitty-Node: "
            + raw
            + f"\r\nContent-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        answer = (await reader.read()).decode()
        writer.close()
        head, _, text = answer.partition("\r\n\r\n")
        rest_status = int(head.split()[1])
        async with aiohttp.ClientSession() as session:
            try:
                async with session.ws_connect(
                    gateway.url + "/ws",
                    headers={"Authorization": f"Bearer {gateway.token}", "X-Chitty-Node": node},
                ):
                    ws_status = 101
            except aiohttp.WSServerHandshakeError as refused:
                ws_status = refused.status
        return rest_status, json.loads(text), ws_status

    status, body, ws_status = gateway.call(scenario())
    assert (status, ws_status) == (400, 400), (status, body)
    assert body["error"] == "bad_header" and body["field"] == "X-Chitty-Node", body


def _host_port(url: str) -> tuple[str, int]:
    host, port = url.removeprefix("http://").split(":")
    return host, int(port)


@pytest.mark.parametrize(
    ("origin", "allowed"),
    [
        (None, True),  # not a browser (the CLI, the client library)
        ("same", True),
        ("https://app.example", True),  # configured
        ("https://evil.example", False),
        ("null", False),
        ("http://127.0.0.1:1", False),  # another port is another origin
    ],
)
def test_websocket_upgrades_take_same_and_configured_origins_only(
    gateway: Gateway, allowing: str, origin: str | None, allowed: bool
) -> None:
    async def scenario() -> int:
        headers = {"Authorization": f"Bearer {gateway.token}"}
        if origin is not None:
            headers["Origin"] = allowing if origin == "same" else origin
        async with aiohttp.ClientSession() as session:
            try:
                async with session.ws_connect(allowing + "/ws", headers=headers) as socket:
                    await socket.send_str('{"type": "heartbeat"}')
                    assert json.loads((await socket.receive(10)).data)["type"] == "heartbeat"
                    return 101
            except aiohttp.WSServerHandshakeError as refused:
                return refused.status

    assert gateway.call(scenario()) == (101 if allowed else 403)
