"""Abuse limits and credentials on live connections: the per-principal rate (429 with an
integer Retry-After, on REST and on /ws frames), the body and frame size bounds (413, close
code 1009), WebSockets per principal (the upgrade answers 429), a revoked token closing an
open WebSocket (1008), and services' signed frames (unsigned, forged, stale and replayed
frames are 401 error frames that change nothing)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest

from hub.auth.principal import Role
from hub.auth.signing import new_nonce, sign_frame, signed_headers
from hub.auth.tokens import derive_signing_key
from tests.transports.conftest import Gateway
from transports.gateway import make_app
from transports.gateway.ws import POLICY_VIOLATION

SESSION = "CHITTY-SESSION-1"
MIB = 1 << 20


@dataclass
class Apps:
    gateway: Gateway
    limited: str  # rate 0.01/s, burst 3: the fourth request in a row is over the rate
    tight: str  # at most 2 WebSockets per principal


@pytest.fixture(scope="module")
def apps(gateway: Gateway) -> Iterator[Apps]:
    """Two more gateway apps on the module's hub and token store, with small limits."""
    runners = []
    urls = []
    for update in (
        {"rate_per_s": 0.01, "rate_burst": 3},
        {"max_ws_per_principal": 2},
    ):
        app = make_app(
            gateway.runtime, gateway.settings.model_copy(update=update), tokens=gateway.tokens
        )
        runner, url = gateway.serve(app)
        runners.append(runner)
        urls.append(url)
    yield Apps(gateway, *urls)
    for runner in runners:
        gateway.call(runner.cleanup())


def member(gateway: Gateway, name: str, role: Role = Role.MEMBER) -> tuple[str, str]:
    """A new principal's (token id, secret)."""
    record, secret = gateway.tokens.create(name, role)
    return record.token_id, secret


async def fetch(
    url: str, secret: str, method: str = "GET", data: bytes | None = None, **headers: str
) -> tuple[int, Any, dict[str, str]]:
    async with (
        aiohttp.ClientSession() as session,
        session.request(
            method,
            url,
            data=data,
            headers={
                "Authorization": f"Bearer {secret}",
                "Content-Type": "application/json",
                **headers,
            },
        ) as response,
    ):
        text = await response.text()
        return response.status, json.loads(text) if text else None, dict(response.headers)


def admin_get(gateway: Gateway, path: str) -> Any:
    status, body, _ = gateway.request("GET", path)
    assert status == 200, body
    return body


async def admin_view(gateway: Gateway, path: str) -> Any:
    """The entity as the admin sees it (inside a scenario on the gateway's loop)."""
    status, body, _ = await fetch(f"{gateway.url}{path}", gateway.token)
    assert status == 200, body
    return body


def new_todo(gateway: Gateway, **fields: Any) -> str:
    status, body, _ = gateway.request(
        "POST", "/api/v1/todos", {"content": "limits", "sessionId": SESSION, **fields}
    )
    assert status == 201, body
    return str(body["entity"]["chittyId"])


# -- rate -------------------------------------------------------------------------------------


async def closed_by_policy(socket: aiohttp.ClientWebSocketResponse) -> None:
    """Read until the hub closes `socket` with 1008; only heartbeats may come before."""
    while True:
        received = await socket.receive(30)
        if received.type is not aiohttp.WSMsgType.TEXT:
            break
        frame = json.loads(received.data)
        assert frame["type"] == "heartbeat", frame
    assert received.type is aiohttp.WSMsgType.CLOSE, received
    assert received.data == POLICY_VIOLATION, received
    await socket.close()


def test_over_the_rate_is_a_429_with_an_integer_retry_after(apps: Apps) -> None:
    _, secret = member(apps.gateway, "rate-rest")
    _, other = member(apps.gateway, "rate-other")

    async def scenario() -> None:
        url = f"{apps.limited}/api/v1/todos"
        for _ in range(3):  # the burst
            status, body, _ = await fetch(url, secret)
            assert status == 200, body
        status, body, headers = await fetch(url, secret)
        assert status == 429 and body["error"] == "rate_limited", body
        retry_after = headers["Retry-After"]
        assert retry_after.isdigit() and int(retry_after) >= 1, retry_after
        # Refused requests do not drain the bucket further, and other principals are untouched.
        status, _, headers = await fetch(url, secret)
        assert status == 429 and headers["Retry-After"].isdigit()
        status, _, _ = await fetch(url, other)
        assert status == 200

    apps.gateway.call(scenario())


def test_websocket_frames_count_against_the_rate(apps: Apps) -> None:
    _, secret = member(apps.gateway, "rate-ws")

    async def scenario() -> None:
        async with aiohttp.ClientSession() as session:
            socket = await session.ws_connect(  # the upgrade is the first of the three
                f"{apps.limited}/ws", headers={"Authorization": f"Bearer {secret}"}
            )
            answers = []
            for n in range(3):
                await socket.send_str(json.dumps({"type": "heartbeat", "id": f"p{n}"}))
                answers.append(json.loads((await socket.receive(10)).data))
            assert [a["type"] for a in answers[:2]] == ["heartbeat", "heartbeat"], answers
            assert answers[2]["type"] == "error" and answers[2]["status"] == 429, answers
            assert answers[2]["error"] == "rate_limited"
            await socket.close()

    apps.gateway.call(scenario())


# -- sizes ------------------------------------------------------------------------------------


@pytest.mark.parametrize("role", [Role.MEMBER, Role.SERVICE])
def test_a_body_over_one_mib_is_a_413(gateway: Gateway, role: Role) -> None:
    _, secret = member(gateway, f"big-{role}", role)
    body = json.dumps({"content": "x" * MIB, "sessionId": SESSION}).encode()
    headers = {}
    if role is Role.SERVICE:  # a signed request: the signature check reads the body first
        headers = signed_headers(derive_signing_key(secret), "POST", "/api/v1/todos", body)
    status, answer, _ = gateway.call(
        fetch(f"{gateway.url}/api/v1/todos", secret, "POST", body, **headers)
    )
    assert status == 413 and answer["error"] == "too_large", answer


@pytest.mark.parametrize("role", [Role.MEMBER, Role.SERVICE])
def test_a_frame_over_the_limit_closes_with_1009(gateway: Gateway, role: Role) -> None:
    _, secret = member(gateway, f"big-frame-{role}", role)
    key = derive_signing_key(secret)

    async def scenario() -> None:
        async with aiohttp.ClientSession() as session:
            headers = {"Authorization": f"Bearer {secret}"}
            if role is Role.SERVICE:
                headers |= signed_headers(key, "GET", "/ws", b"")
            socket = await session.ws_connect(f"{gateway.url}/ws", headers=headers)
            await socket.send_str("x" * (MIB + 1))
            received = await socket.receive(30)
            assert received.type is aiohttp.WSMsgType.CLOSE and received.data == 1009, received
            await socket.close()

    gateway.call(scenario())


# -- connections ------------------------------------------------------------------------------


def test_more_websockets_than_allowed_per_principal_is_a_429(apps: Apps) -> None:
    _, secret = member(apps.gateway, "many-sockets")
    _, other = member(apps.gateway, "other-sockets")

    async def scenario() -> None:
        async with aiohttp.ClientSession() as session:

            async def connect(token: str) -> aiohttp.ClientWebSocketResponse:
                socket = await session.ws_connect(
                    f"{apps.tight}/ws", headers={"Authorization": f"Bearer {token}"}
                )
                await socket.send_str(json.dumps({"type": "heartbeat", "id": "up"}))
                assert json.loads((await socket.receive(10)).data)["type"] == "heartbeat"
                return socket

            first, second = await connect(secret), await connect(secret)
            with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                await connect(secret)
            assert refused.value.status == 429
            elsewhere = await connect(other)  # the limit is per principal
            await first.close()
            # The slot comes back once the server has finished with the closed socket.
            third = None
            for _ in range(200):
                try:
                    third = await connect(secret)
                    break
                except aiohttp.WSServerHandshakeError as error:
                    assert error.status == 429
                    await asyncio.sleep(0.05)
            assert third is not None, "a closed socket's slot was never given back"
            for socket in (second, third, elsewhere):
                await socket.close()

    apps.gateway.call(scenario())


# -- revocation -------------------------------------------------------------------------------


def test_revoking_a_token_closes_its_open_websocket_with_1008(gateway: Gateway) -> None:
    token_id, secret = member(gateway, "revoked-live")

    async def scenario() -> None:
        async with aiohttp.ClientSession() as session:
            socket = await session.ws_connect(
                f"{gateway.url}/ws", headers={"Authorization": f"Bearer {secret}"}
            )
            await socket.send_str(json.dumps({"type": "heartbeat", "id": "alive"}))
            assert json.loads((await socket.receive(10)).data)["id"] == "alive"
            gateway.tokens.revoke(token_id)
            # the gateway re-checks open credentials: nothing but a close comes
            await closed_by_policy(socket)

    gateway.call(scenario())


def test_the_next_frame_of_a_revoked_token_is_refused_and_changes_nothing(
    gateway: Gateway,
) -> None:
    token_id, secret = member(gateway, "revoked-writer")
    record = gateway.tokens.get(token_id)
    todo = new_todo(gateway, sharedWith=[record.chitty_id])
    seq = admin_get(gateway, f"/api/v1/todos/{todo}")["seq"]

    async def scenario() -> None:
        async with aiohttp.ClientSession() as session:
            socket = await session.ws_connect(
                f"{gateway.url}/ws", headers={"Authorization": f"Bearer {secret}"}
            )
            gateway.tokens.revoke(token_id)
            write = {
                "type": "state_update",
                "domain": "todos",
                "entity": {"chittyId": todo, "activeForm": "after revocation"},
            }
            # (if the periodic re-check closed it first, the send fails: refused all the same)
            with contextlib.suppress(ConnectionError):
                await socket.send_str(json.dumps(write))
            await closed_by_policy(socket)  # never an ack

    gateway.call(scenario())
    assert admin_get(gateway, f"/api/v1/todos/{todo}")["seq"] == seq
    status, _, _ = gateway.call(fetch(f"{gateway.url}/api/v1/todos", secret))
    assert status == 401


# -- signed frames ----------------------------------------------------------------------------


class ServicePeer:
    def __init__(self, socket: aiohttp.ClientWebSocketResponse, key: bytes) -> None:
        self.socket = socket
        self.key = key

    def signed(self, frame: Any, stamp: int | None = None, key: bytes | None = None) -> str:
        text = json.dumps(frame)
        timestamp = str(int(time.time()) if stamp is None else stamp)
        nonce = new_nonce()
        signature = sign_frame(key or self.key, timestamp, nonce, text)
        return json.dumps(
            {"frame": text, "timestamp": timestamp, "nonce": nonce, "signature": signature}
        )

    async def answer(self, text: str) -> dict[str, Any]:
        await self.socket.send_str(text)
        while True:
            frame: dict[str, Any] = json.loads((await self.socket.receive(30)).data)
            if frame["type"] != "heartbeat" or frame.get("id") is not None:
                return frame


def test_a_service_signs_its_frames_and_cannot_replay_them(gateway: Gateway) -> None:
    _, secret = member(gateway, "ws-service", Role.SERVICE)
    key = derive_signing_key(secret)
    todo = new_todo(gateway)
    path = f"/api/v1/todos/{todo}"

    def write(label: str) -> dict[str, Any]:
        return {
            "type": "state_update",
            "domain": "todos",
            "id": f"svc-{label}-{time.time_ns()}",
            "entity": {"chittyId": todo, "activeForm": label},
        }

    async def scenario() -> None:
        async with aiohttp.ClientSession() as session:
            unsigned_upgrade = {"Authorization": f"Bearer {secret}"}
            with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                await session.ws_connect(f"{gateway.url}/ws", headers=unsigned_upgrade)
            assert refused.value.status == 401
            socket = await session.ws_connect(
                f"{gateway.url}/ws",
                headers=unsigned_upgrade | signed_headers(key, "GET", "/ws", b""),
            )
            peer = ServicePeer(socket, key)
            seq = (await admin_view(gateway, path))["seq"]

            frame = await peer.answer(json.dumps(write("unsigned")))
            assert frame["type"] == "error" and frame["status"] == 401, frame
            assert (await admin_view(gateway, path))["seq"] == seq

            forged = peer.signed(write("forged"), key=derive_signing_key("not the secret"))
            frame = await peer.answer(forged)
            assert frame["status"] == 401 and "bad_signature" in frame["detail"], frame

            stale = peer.signed(write("stale"), stamp=int(time.time()) - 3600)
            frame = await peer.answer(stale)
            assert frame["status"] == 401 and "stale" in frame["detail"], frame
            assert (await admin_view(gateway, path))["seq"] == seq

            good = peer.signed(write("signed"))
            frame = await peer.answer(good)
            assert frame["type"] == "ack" and frame["status"] == "applied", frame
            after = await admin_view(gateway, path)
            assert after["seq"] == seq + 1 and after["entity"]["activeForm"] == "signed"

            frame = await peer.answer(good)  # the same bytes again: same nonce
            assert frame["type"] == "error" and frame["status"] == 401, frame
            assert "replayed" in frame["detail"], frame
            assert (await admin_view(gateway, path))["seq"] == seq + 1
            await socket.close()

    gateway.call(scenario())
