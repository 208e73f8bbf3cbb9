"""Scope follows membership live on /ws: when a member loses an entity (a project's sharedWith,
team or owner, a session's participants or project), their open subscription stops receiving
what they may no longer read before the next event is delivered, and gets it again when the
membership comes back."""

from __future__ import annotations

from typing import Any

import pytest

from hub.auth.principal import Role
from tests.transports.conftest import Gateway
from tests.transports.test_ws import Frame, Peer


async def call(gateway: Gateway, token: str, method: str, path: str, body: Any = None) -> Any:
    headers = {"Authorization": f"Bearer {token}"}
    async with gateway.session.request(method, path, json=body, headers=headers) as response:
        answer = await response.json()
        assert response.status in (200, 201), (method, path, answer)
        return answer


async def offset_of(watcher: Peer, entity_id: str, seq: int) -> int:
    """The stream offset of `entity_id`'s event `seq`, as an admin subscriber sees it."""
    while True:
        frame = await watcher.next()
        for event in frame["events"] if frame["type"] == "batch" else [frame]:
            if event.get("entityId") == entity_id and event.get("seq") == seq:
                return int(event["offset"])


async def seen_until(peer: Peer, offset: int) -> list[Frame]:
    """Every event `peer` receives until the hub has fanned out the stream up to `offset`: a
    heartbeat is answered after every event the hub queued for the connection before it."""
    seen: list[Frame] = []
    while True:
        await peer.send({"type": "heartbeat"})
        while True:
            frame = await peer.next(skip=())
            if frame["type"] == "heartbeat":
                break
            seen.extend(frame["events"] if frame["type"] == "batch" else [frame])
        if frame["offset"] >= offset:
            return seen


def revoke_and_grant(case: str, alice: str, bob: str) -> tuple[Any, Any, Any]:
    """(what gives alice the todo through its parents, what takes it away, what gives it back)
    as (domain, fields) writes of bob's."""
    if case == "sharedWith":
        return {"sharedWith": [alice]}, {"sharedWith": []}, {"sharedWith": [alice]}
    if case == "team":
        return (
            {"metadata": {"team": [alice]}},
            {"metadata": {"team": []}},
            {"metadata": {"team": [bob, alice]}},
        )
    return {"metadata": {"owner": alice}}, {"metadata": {"owner": bob}}, {}


@pytest.mark.parametrize("case", ["sharedWith", "team", "owner"])
def test_a_member_removed_from_a_project_stops_receiving_its_todos(
    gateway: Gateway, case: str
) -> None:
    alice, alice_token = gateway.tokens.create(f"alice-{case}", Role.MEMBER)
    bob, bob_token = gateway.tokens.create(f"bob-{case}", Role.MEMBER)
    give, take, back = revoke_and_grant(case, alice.chitty_id, bob.chitty_id)

    async def scenario() -> None:
        project = await call(gateway, bob_token, "POST", "/api/v1/projects", {"name": case, **give})
        p = project["entity"]["chittyId"]
        session = await call(
            gateway,
            bob_token,
            "POST",
            "/api/v1/sessions",
            {"sessionId": case, "platform": "cli", "projectId": p},
        )
        s = session["entity"]["chittyId"]
        todo = await call(
            gateway, bob_token, "POST", "/api/v1/todos", {"content": "plan", "sessionId": s}
        )
        t = todo["entity"]["chittyId"]
        watcher = await Peer.connect(gateway.url, "watcher", gateway.token)
        peer = await Peer.connect(gateway.url, "alice", alice_token)
        try:
            await watcher.subscribe(domains=["todos"])
            await peer.subscribe(domains=["todos"])

            async def change(n: int) -> int:
                answer = await call(
                    gateway, bob_token, "PUT", f"/api/v1/todos/{t}", {"activeForm": f"step {n}"}
                )
                return await offset_of(watcher, t, answer["seq"])

            last = await change(1)
            assert [e["entity"]["activeForm"] for e in await seen_until(peer, last)] == ["step 1"]

            await call(gateway, bob_token, "PUT", f"/api/v1/projects/{p}", take)
            async with gateway.session.get(
                f"/api/v1/todos/{t}", headers={"Authorization": f"Bearer {alice_token}"}
            ) as response:
                assert response.status == 404  # REST already says she may not read it
            for n in range(2, 9):
                last = await change(n)
            leaked = [e for e in await seen_until(peer, last) if e.get("entityId") == t]
            assert leaked == [], [e["entity"].get("activeForm") for e in leaked]

            if back:  # membership given back: she receives the todo's changes again
                await call(gateway, bob_token, "PUT", f"/api/v1/projects/{p}", back)
                last = await change(9)
                got = [e["entity"]["activeForm"] for e in await seen_until(peer, last)]
                assert got == ["step 9"], got
        finally:
            await peer.close()
            await watcher.close()

    gateway.call(scenario())


def test_a_session_moved_to_another_project_takes_its_todos_out_of_scope(
    gateway: Gateway,
) -> None:
    alice, alice_token = gateway.tokens.create("alice-moved", Role.MEMBER)
    _, bob_token = gateway.tokens.create("bob-moved", Role.MEMBER)

    async def scenario() -> None:
        shared = await call(
            gateway,
            bob_token,
            "POST",
            "/api/v1/projects",
            {"name": "shared", "sharedWith": [alice.chitty_id]},
        )
        private = await call(gateway, bob_token, "POST", "/api/v1/projects", {"name": "private"})
        p, q = shared["entity"]["chittyId"], private["entity"]["chittyId"]
        session = await call(
            gateway,
            bob_token,
            "POST",
            "/api/v1/sessions",
            {"sessionId": "moved", "platform": "cli", "projectId": p},
        )
        s = session["entity"]["chittyId"]
        watcher = await Peer.connect(gateway.url, "watcher", gateway.token)
        peer = await Peer.connect(gateway.url, "alice", alice_token)
        try:
            await watcher.subscribe(domains=["sessions"])
            await peer.subscribe(domains=["sessions"])
            moved = await call(gateway, bob_token, "PUT", f"/api/v1/sessions/{s}", {"projectId": q})
            last = await offset_of(watcher, s, moved["seq"])
            for n in range(3):
                state = {"context": {"state": {"step": n}}}
                answer = await call(gateway, bob_token, "PUT", f"/api/v1/sessions/{s}", state)
                last = await offset_of(watcher, s, answer["seq"])
            leaked = [e for e in await seen_until(peer, last) if e.get("entityId") == s]
            assert leaked == [], leaked
        finally:
            await peer.close()
            await watcher.close()

    gateway.call(scenario())
