"""Custom agents (the spec's ChittyRouter): a service registers one, and is told of changes in
its domains by signed webhooks (verified here by a loopback receiver, as any receiver would)
or over /ws with its own token; it calls the hub's tools like any client."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from yarl import URL

from hub.auth.errors import SignatureError
from hub.auth.principal import Role
from hub.auth.signing import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    new_nonce,
    sign_frame,
    signed_headers,
    verify_webhook,
)
from hub.auth.tokens import derive_signing_key
from tests.transports.cli_runs import cli, json_of, refused
from tests.transports.conftest import SESSION, Gateway
from tests.waiting import until
from transports.client import ChittyClient
from transports.gateway.agent_delivery import DeliverySettings
from transports.gateway.agents import DELIVERIES
from transports.tools import TOOLS


@dataclass
class Hook:
    """What one agent's endpoint answers, and what it accepted."""

    secret: str = ""
    status: int = 200
    retry_after: str | None = None
    accepted: list[dict[str, Any]] = field(default_factory=list)
    attempts: list[tuple[float, int]] = field(default_factory=list)  # (when, answered)
    forged: int = 0  # requests whose signature did not verify

    def ids(self) -> list[str]:
        return [e["eventId"] for e in self.accepted]

    def about(self, entity_id: str) -> list[dict[str, Any]]:
        return [e for e in self.accepted if e.get("entityId") == entity_id]


class Receiver:
    """A loopback webhook receiver that verifies every delivery's signature."""

    def __init__(self) -> None:
        self.hooks: dict[str, Hook] = {}

    def hook(self, name: str) -> Hook:
        return self.hooks.setdefault(name, Hook())

    async def handle(self, request: web.Request) -> web.Response:
        hook = self.hook(request.match_info["name"])
        body = await request.read()
        try:
            verify_webhook(
                hook.secret,
                request.headers.get(TIMESTAMP_HEADER),
                request.headers.get(SIGNATURE_HEADER),
                body,
            )
        except SignatureError:
            hook.forged += 1
            return web.Response(status=401)
        hook.attempts.append((time.monotonic(), hook.status))
        if hook.status != 200:
            headers = {"Retry-After": hook.retry_after} if hook.retry_after else {}
            return web.Response(status=hook.status, headers=headers)
        hook.accepted.extend(json.loads(body)["events"])
        return web.Response(status=204)


@dataclass
class World:
    gateway: Gateway
    receiver: Receiver
    url: str  # the receiver's
    service: str  # its token
    service_id: str
    member: str
    member_id: str

    def send(
        self, token: str, method: str, path: str, body: Any = None, sign: bool = True
    ) -> tuple[int, Any]:
        async def go() -> tuple[int, Any]:
            data = json.dumps(body).encode() if body is not None else b""
            headers = {"Content-Type": "application/json", "Authorization": f"Bearer {token}"}
            if sign and token == self.service:
                headers.update(signed_headers(derive_signing_key(token), method, path, data))
            async with (
                aiohttp.ClientSession() as session,
                session.request(
                    method,
                    URL(self.gateway.url + path, encoded=True),
                    data=data or None,
                    headers=headers,
                ) as response,
            ):
                text = await response.text()
                return response.status, json.loads(text) if text else None

        return self.gateway.call(go())

    def register(self, name: str, domains: list[str], webhook: bool = True) -> dict[str, Any]:
        body: dict[str, Any] = {"name": name, "subscribe": {"domains": domains}}
        if webhook:
            body["webhook"] = {"url": f"{self.url}/hook/{name}"}
        status, answer = self.send(self.service, "POST", "/api/v1/agents", body)
        assert status == 201, answer
        if webhook:
            self.receiver.hook(name).secret = answer["webhookSecret"]
        return dict(answer)

    def agent(self, agent_id: str) -> dict[str, Any]:
        status, answer = self.send(self.service, "GET", f"/api/v1/agents/{agent_id}")
        assert status == 200, answer
        return dict(answer)

    def todo(self, content: str, token: str | None = None, session: str = SESSION) -> str:
        status, answer = self.send(
            token or self.gateway.token,
            "POST",
            "/api/v1/todos",
            {"content": content, "sessionId": session},
        )
        assert status == 201, answer
        return str(answer["entity"]["chittyId"])


@pytest.fixture(scope="module")
def world(gateway: Gateway) -> Iterator[World]:
    # Short retries, so the failure cases take seconds.
    gateway.app[DELIVERIES].settings = DeliverySettings(poll_s=0.1, backoff_s=0.2, max_backoff_s=1)
    receiver = Receiver()
    app = web.Application()
    app.router.add_post("/hook/{name}", receiver.handle)
    runner, url = gateway.serve(app)
    service, service_secret = gateway.tokens.create("triage-bot", Role.SERVICE)
    member, member_secret = gateway.tokens.create("a member", Role.MEMBER)
    yield World(
        gateway,
        receiver,
        url,
        service_secret,
        service.chitty_id,
        member_secret,
        member.chitty_id,
    )
    gateway.call(runner.cleanup())


def test_a_webhook_agent_receives_its_domains_signed(world: World) -> None:
    made = world.register("triage", ["todos", "contexts"])
    assert made["delivery"] == "webhook" and made["principal"] == world.service_id
    assert made["subscribe"]["domains"] == ["todos", "contexts"]
    hook = world.receiver.hook("triage")
    todo = world.todo("triage me")
    status, context = world.send(
        world.gateway.token, "POST", "/api/v1/contexts", {"type": "document"}
    )
    assert status == 201, context
    context_id = context["entity"]["chittyId"]
    status, _ = world.send(
        world.gateway.token,
        "PATCH",
        f"/api/v1/contexts/{context_id}",
        {"content": {"summary": "what we decided"}},
    )
    assert status == 200
    world.gateway.project("not subscribed")  # projects: not this agent's
    until(lambda: len(hook.about(context_id)) == 2, what="the context's two changes")
    [created] = until(lambda: hook.about(todo), what="the todo")
    assert created["type"] == "state_update" and created["operation"] == "create"
    assert created["entity"]["content"] == "triage me" and created["domain"] == "todos"
    assert [e["operation"] for e in hook.about(context_id)] == ["create", "update"]
    assert hook.about(context_id)[1]["entity"]["content"]["summary"] == "what we decided"
    assert {e["domain"] for e in hook.accepted} <= {"todos", "contexts"}
    assert len(set(hook.ids())) == len(hook.ids())  # each event once, each with its id
    assert hook.forged == 0
    shown = until(
        lambda: (a := world.agent(made["agentId"]))["lastDelivered"]["events"] >= 3 and a,
        what="the delivery record",
    )
    assert shown["state"] == "delivering" and not shown["failing"] and shown["pending"] == 0
    assert shown["lastDelivered"]["lastEventId"] in hook.ids()
    assert "webhookSecret" not in shown  # shown once, at registration


def test_a_members_private_todo_reaches_the_agent_as_services_read_everything(
    world: World,
) -> None:
    """Services are unrestricted (hub/auth/scope.py): an agent reads what its service reads."""
    made = world.register("everything", ["todos"])
    hook = world.receiver.hook("everything")
    status, session = world.send(
        world.member, "POST", "/api/v1/sessions", {"sessionId": "mine", "platform": "cli"}
    )
    assert status == 201, session
    private = world.todo("a private todo", world.member, session["entity"]["chittyId"])
    [seen] = until(lambda: hook.about(private), what="the member's todo")
    assert seen["entity"]["createdBy"] == world.member_id
    assert world.agent(made["agentId"])["subscribe"]["domains"] == ["todos"]


def test_a_receiver_down_loses_nothing_and_gets_it_in_order(world: World) -> None:
    made = world.register("flaky", ["todos"])
    hook = world.receiver.hook("flaky")
    hook.status = 503
    todos = [world.todo(f"while down {n}") for n in range(3)]
    failing = until(
        lambda: (a := world.agent(made["agentId"]))["failing"] and a, what="a failing state"
    )
    assert failing["state"] == "failing" and "503" in failing["error"] and failing["pending"] >= 1
    until(lambda: len(hook.attempts) >= 3, what="retries")
    assert not hook.accepted
    hook.status = 200
    until(lambda: all(hook.about(t) for t in todos), what="the todos after recovery")
    assert [e["entityId"] for e in hook.accepted] == todos  # in commit order, none lost
    recovered = until(lambda: (a := world.agent(made["agentId"]))["state"] == "delivering" and a)
    assert recovered["error"] is None and recovered["pending"] == 0
    status, metrics, _ = world.gateway.request("GET", "/metrics")
    assert status == 200
    label = '{agent="' + made["agentId"] + '"}'
    failures = next(
        line
        for line in metrics.splitlines()
        if line.startswith("chitty_agent_delivery_failures_total" + label)
    )
    assert float(failures.split()[-1]) >= 3, failures
    assert f"chitty_agent_failing{label} 0.0" in metrics


def test_a_429_waits_its_retry_after(world: World) -> None:
    made = world.register("limited", ["todos"])
    hook = world.receiver.hook("limited")
    hook.status, hook.retry_after = 429, "2"
    todo = world.todo("rate limited")
    until(lambda: hook.attempts, what="the first attempt")
    shown = until(lambda: (a := world.agent(made["agentId"]))["failing"] and a)
    assert "429" in shown["error"] and "2 s" in shown["error"]
    time.sleep(1.0)
    assert len(hook.attempts) == 1  # backoff alone (0.2 s, 0.4 s ...) would have retried
    hook.status = 200
    until(lambda: hook.about(todo), what="the todo after Retry-After")
    first, second = hook.attempts[0][0], hook.attempts[1][0]
    assert second - first >= 1.9


def test_a_user_token_is_refused_and_bodies_are_checked(world: World) -> None:
    body = {"name": "mine", "subscribe": {"domains": ["todos"]}}
    status, answer = world.send(world.member, "POST", "/api/v1/agents", body)
    assert status == 403 and "service token" in answer["detail"], answer
    bad = [
        ({"name": "Bad Name", "subscribe": {"domains": ["todos"]}}, "name"),
        ({"name": "ok", "subscribe": {"domains": ["nope"]}}, "subscribe.domains.0"),
        ({"name": "ok", "subscribe": {"domains": []}}, "subscribe.domains"),
        ({"name": "ok"}, "subscribe"),
        ({**body, "webhook": {"url": "ftp://x.test/"}}, "webhook.url"),
        (
            {**body, "subscribe": {"domains": ["todos"], "filters": {"projectId": "x"}}},
            "subscribe.filters.projectId",
        ),
        ({**body, "principal": "CHITTY-SERVICE-X"}, "principal"),
    ]
    for wrong, field_name in bad:
        status, answer = world.send(world.service, "POST", "/api/v1/agents", wrong)
        assert status in (403, 422) and answer["field"] == field_name, (wrong, answer)
    status, answer = world.send(world.gateway.token, "POST", "/api/v1/agents", body)
    assert status == 422 and answer["field"] == "principal", answer  # an admin names whose


def test_registering_again_updates_and_the_secret_is_shown_once(world: World) -> None:
    made = world.register("again", ["todos"])
    body = {
        "name": "again",
        "description": "now with contexts",
        "subscribe": {"domains": ["todos", "contexts"]},
        "webhook": {"url": f"{world.url}/hook/again"},
    }
    status, updated = world.send(world.service, "POST", "/api/v1/agents", body)
    assert status == 200 and updated["agentId"] == made["agentId"], updated
    assert updated["webhookSecret"] is None and updated["description"] == "now with contexts"
    status, listed = world.send(world.service, "GET", "/api/v1/agents")
    assert status == 200
    assert made["webhookSecret"] not in json.dumps(listed)
    assert all(a["principal"] == world.service_id for a in listed["agents"])
    # An admin sees every agent and may register one for a service.
    admin_body = {**body, "name": "on-behalf", "principal": world.service_id}
    status, behalf = world.send(world.gateway.token, "POST", "/api/v1/agents", admin_body)
    assert status == 201 and behalf["principal"] == world.service_id, behalf
    status, everything = world.send(world.gateway.token, "GET", "/api/v1/agents")
    assert {a["agentId"] for a in everything["agents"]} >= {made["agentId"], behalf["agentId"]}
    # Another service sees none of them.
    _, other = world.gateway.tokens.create("another-bot", Role.SERVICE)
    world.service, mine = other, world.service
    try:
        status, theirs = world.send(other, "GET", "/api/v1/agents")
        assert status == 200 and theirs["agents"] == []
        status, _ = world.send(other, "GET", f"/api/v1/agents/{made['agentId']}")
        assert status == 404
        status, _ = world.send(other, "DELETE", f"/api/v1/agents/{made['agentId']}")
        assert status == 404
    finally:
        world.service = mine
    status, gone = world.send(world.service, "DELETE", f"/api/v1/agents/{behalf['agentId']}")
    assert status == 200 and gone["removed"]
    status, _ = world.send(world.service, "GET", f"/api/v1/agents/{behalf['agentId']}")
    assert status == 404


def test_a_websocket_agent_follows_ws_and_calls_tools_with_its_token(world: World) -> None:
    made = world.register("listener", ["todos", "contexts"], webhook=False)
    assert made["delivery"] == "websocket" and made["webhookSecret"] is None
    assert made["state"] == "idle" and made["connected"] == 0
    key = derive_signing_key(world.service)

    def signed(frame: dict[str, Any]) -> str:
        text = json.dumps(frame)
        stamp, nonce = str(int(time.time())), new_nonce()
        signature = sign_frame(key, stamp, nonce, text)
        return json.dumps(
            {"frame": text, "timestamp": stamp, "nonce": nonce, "signature": signature}
        )

    async def scenario() -> list[dict[str, Any]]:
        headers = {"Authorization": f"Bearer {world.service}"}
        upgrade = {**headers, **signed_headers(key, "GET", "/ws", b"")}
        async with (
            aiohttp.ClientSession() as session,
            session.ws_connect(world.gateway.url + "/ws", headers=upgrade) as ws,
        ):
            await ws.send_str(signed({"type": "subscribe", "domains": ["todos", "contexts"]}))
            subscribed = await ws.receive_json(timeout=10)
            assert subscribed["type"] == "subscribed", subscribed
            connected = await _agent(world, made["agentId"])
            assert connected["state"] == "connected" and connected["connected"] == 1
            # The agent calls a hub tool (the registry MCP and the models use) as itself.
            async with ChittyClient(world.gateway.url, token=world.service, sign=True) as agent:
                made_todo = await TOOLS.invoke(
                    agent, "create_todo", {"content": "from the agent", "sessionId": SESSION}
                )
                assert isinstance(made_todo, dict), made_todo
                todo = made_todo["entity"]["chittyId"]
                listed = await TOOLS.invoke(agent, "list_todos", {"sessionId": SESSION})
                assert todo in json.dumps(listed)
            # ... and the same tool over HTTP, as a GPT's Action or any agent without MCP does.
            path, body = "/api/v1/tools/list_todos", json.dumps({"sessionId": SESSION}).encode()
            call = {**headers, "Content-Type": "application/json"}
            call.update(signed_headers(key, "POST", path, body))
            async with session.post(world.gateway.url + path, data=body, headers=call) as answer:
                assert answer.status == 200, await answer.text()
                over_http = await answer.json()
            assert over_http["tool"] == "list_todos" and todo in json.dumps(over_http["result"])
            status, context = await _admin_post(world, "/api/v1/contexts", {"type": "conversation"})
            assert status == 201
            seen: list[dict[str, Any]] = []
            deadline = time.monotonic() + 15
            wanted = {todo, context["entity"]["chittyId"]}
            while wanted - {e.get("entityId") for e in seen}:
                assert time.monotonic() < deadline, seen
                frame = await ws.receive_json(timeout=10)
                seen.extend(frame["events"] if frame["type"] == "batch" else [frame])
            return seen

    seen = world.gateway.call(scenario())
    kinds = {(e.get("domain"), e.get("operation")) for e in seen if e["type"] == "state_update"}
    assert {("todos", "create"), ("contexts", "create")} <= kinds
    until(lambda: world.agent(made["agentId"])["state"] == "idle", what="disconnected")


async def _agent(world: World, agent_id: str) -> dict[str, Any]:
    path = f"/api/v1/agents/{agent_id}"
    headers = {"Authorization": f"Bearer {world.service}"}
    headers.update(signed_headers(derive_signing_key(world.service), "GET", path, b""))
    async with (
        aiohttp.ClientSession() as session,
        session.get(world.gateway.url + path, headers=headers) as answer,
    ):
        return dict(await answer.json())


async def _admin_post(world: World, path: str, body: dict[str, Any]) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {world.gateway.token}"}
    async with (
        aiohttp.ClientSession() as session,
        session.post(world.gateway.url + path, json=body, headers=headers) as answer,
    ):
        return answer.status, await answer.json()


def test_revoking_the_services_token_stops_its_webhooks(world: World) -> None:
    record, token = world.gateway.tokens.create("short-lived-bot", Role.SERVICE)
    world.service, mine = token, world.service
    try:
        made = world.register("revoked", ["todos"])
    finally:
        world.service = mine
    hook = world.receiver.hook("revoked")
    world.gateway.tokens.revoke(record.token_id)
    todo = world.todo("after the revocation")
    path = f"/api/v1/agents/{made['agentId']}"
    shown = until(
        lambda: (a := world.send(world.gateway.token, "GET", path)[1])["failing"] and a,
        what="a failing state",
    )
    assert "no usable token" in shown["error"]
    assert not hook.about(todo) and not hook.attempts


def test_chitty_agents_list_register_remove(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHITTY_TOKEN", world.service)
    monkeypatch.setenv("CHITTY_SIGN", "1")  # a service signs every request
    hook_url = f"{world.url}/hook/from-cli"
    made = cli(
        world.gateway, "agents", "register", "from-cli", "--domains", "todos", "--webhook", hook_url
    )
    secret = made.split("shown once", 1)[1].split()[-1]
    assert secret.startswith("whsec_"), made
    world.receiver.hook("from-cli").secret = secret
    todo = world.todo("for the cli's agent")
    until(lambda: world.receiver.hook("from-cli").about(todo), what="the delivery")
    listed = until(
        lambda: "delivering" in (out := cli(world.gateway, "agents", "list")) and out,
        what="a delivering agent",
    )
    row = next(line for line in listed.splitlines() if "from-cli" in line)
    assert "webhook" in row and "delivering" in row and "todos" in row, listed
    assert secret not in listed
    agent_id = next(word for word in row.split() if word.startswith("agent-"))
    world.receiver.hook("from-cli").status = 500
    world.todo("while it fails")
    failing = until(
        lambda: "failing: HTTP 500" in (out := cli(world.gateway, "agents", "list")) and out,
        what="a failing agent",
    )
    assert "from-cli" in failing
    [shown] = [a for a in json_of(world.gateway, "agents", "list") if a["agentId"] == agent_id]
    assert shown["failing"] and shown["pending"] == 1
    assert "removed" in cli(world.gateway, "agents", "remove", agent_id)
    assert agent_id not in cli(world.gateway, "agents", "list")
    # Errors are one line, never a traceback.
    assert "404" in refused(world.gateway, "agents", "remove", agent_id)
    assert "domains are" in refused(
        world.gateway, "agents", "register", "x", "--domains", "nope", code=2
    )
    monkeypatch.setenv("CHITTY_TOKEN", world.member)
    monkeypatch.delenv("CHITTY_SIGN")
    assert "service token" in refused(
        world.gateway, "agents", "register", "x", "--domains", "todos"
    )


def test_a_services_agents_are_exported_and_erased_with_it(world: World) -> None:
    record, token = world.gateway.tokens.create("erased-bot", Role.SERVICE)
    world.service, mine = token, world.service
    try:
        made = world.register("erased", ["todos"])
    finally:
        world.service = mine
    admin = world.gateway.token
    status, export = world.send(admin, "GET", f"/api/v1/principals/{record.chitty_id}/export")
    assert status == 200 and [a["agentId"] for a in export["agents"]] == [made["agentId"]]
    assert made["webhookSecret"] not in json.dumps(export)
    status, erased = world.send(admin, "DELETE", f"/api/v1/principals/{record.chitty_id}")
    assert status == 200 and erased["deletedAgents"] == 1, erased
    status, _ = world.send(admin, "GET", f"/api/v1/agents/{made['agentId']}")
    assert status == 404
