"""Every SyncMessage type over /ws (and POST /sync/broadcast): each does its job, and the
`target` forms decide who receives what."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from tests.transports.conftest import SESSION, Gateway
from tests.transports.test_ws import Peer

Frame = dict[str, Any]


def full(
    kind: str,
    domain: str,
    entity: str,
    data: dict[str, Any] | None = None,
    *,
    target: dict[str, Any] | None = None,
    operation: str = "update",
    node: str = "peer",
    clock: dict[str, int] | None = None,
) -> Frame:
    """A whole SyncMessage of `kind` about `entity`."""
    return {
        "id": f"{kind}-{time.monotonic_ns()}",
        "type": kind,
        "source": {"nodeId": node, "platform": "web", "chittyId": "CHITTY-USER-ANY"},
        "target": target or {"broadcast": True},
        "payload": {
            "domain": domain,
            "operation": operation,
            "entity": {"chittyId": entity, "data": data or {}},
        },
        "metadata": {"timestamp": datetime.now(UTC).isoformat(), "vectorClock": clock or {}},
    }


async def reply(peer: Peer, frame: Frame | str, *types: str) -> Frame:
    """Send a frame; the next frame of one of `types` (anything else in between is held)."""
    await peer.send(frame)
    return await until(peer, *types)


async def until(peer: Peer, *types: str, timeout: float = 10.0) -> Frame:
    """The next frame (or batched event) of one of `types`; others are skipped."""
    deadline = time.monotonic() + timeout
    while True:
        frame = await peer.next(deadline - time.monotonic(), skip=())
        for item in frame["events"] if frame["type"] == "batch" else [frame]:
            if item["type"] in types:
                return item  # type: ignore[no-any-return]


async def quiet(peer: Peer, *types: str, for_s: float = 1.0) -> list[Frame]:
    """Frames of `types` that arrive within `for_s` (none expected, usually)."""
    seen = []
    try:
        while True:
            seen.append(await until(peer, *types, timeout=for_s))
    except TimeoutError:
        return seen


def todo(gateway: Gateway, **fields: Any) -> str:
    status, body, _ = gateway.request(
        "POST", "/api/v1/todos", {"content": "message types", "sessionId": SESSION, **fields}
    )
    assert status == 201, body
    return str(body["entity"]["chittyId"])


def test_state_request_answers_the_entity_to_the_asker(gateway: Gateway) -> None:
    made = todo(gateway, content="asked for")

    async def scenario() -> None:
        peer = await Peer.connect(gateway.url, token=gateway.token)
        short = await reply(
            peer,
            {"type": "state_request", "domain": "todos", "entityId": made, "id": "r1"},
            "state_snapshot",
            "error",
        )
        assert short["id"] == "r1" and short["entity"]["content"] == "asked for", short
        assert short["seq"] == 1 and short["vectorClock"] == {"api": 1}
        whole = await reply(peer, full("state_request", "todos", made), "state_snapshot", "error")
        assert whole["entity"]["chittyId"] == made
        missing = await reply(
            peer, full("state_request", "todos", "CHITTY-TODO-NOSUCH"), "state_snapshot", "error"
        )
        assert missing["type"] == "error" and missing["status"] == 404
        await peer.close()

    gateway.call(scenario())


def test_query_answers_a_filtered_page_to_the_asker(gateway: Gateway) -> None:
    project = gateway.project("queried")
    made = {todo(gateway, projectId=project, content=f"q{n}") for n in range(3)}

    async def scenario() -> None:
        peer = await Peer.connect(gateway.url, token=gateway.token)
        short = {"type": "query", "domain": "todos", "filters": {"projectId": project}}
        first = await reply(peer, {**short, "limit": 2, "id": "q1"}, "query_result", "error")
        assert first["id"] == "q1" and len(first["items"]) == 2 and first["cursor"], first
        rest = await reply(peer, {**short, "cursor": first["cursor"]}, "query_result", "error")
        found = {i["entity"]["chittyId"] for i in first["items"] + rest["items"]}
        assert found == made
        whole = await reply(
            peer, full("query", "todos", project, {"limit": 10}), "query_result", "error"
        )
        assert {i["entity"]["chittyId"] for i in whole["items"]} == made
        bad = await reply(peer, full("query", "todos", next(iter(made))), "query_result", "error")
        assert bad["type"] == "error" and bad["field"] == "payload.entity.chittyId"
        await peer.close()

    gateway.call(scenario())


def test_a_state_snapshot_replaces_the_entity(gateway: Gateway) -> None:
    made = todo(gateway, assignees=["CHITTY-USER-1"], activeForm="Working")

    async def scenario() -> None:
        peer = await Peer.connect(gateway.url, token=gateway.token, node="snap")
        short = {
            "type": "state_snapshot",
            "domain": "todos",
            "entity": {"chittyId": made, "content": "replaced", "sessionId": SESSION},
        }
        ack = await reply(peer, short, "ack", "error")
        assert ack["type"] == "ack" and ack["status"] == "applied", ack
        await peer.close()

    gateway.call(scenario())
    _, body, _ = gateway.request("GET", f"/api/v1/todos/{made}")
    entity = body["entity"]
    assert entity["content"] == "replaced" and entity["assignees"] == []  # what it omitted
    assert entity["activeForm"] == "" and entity["sessionId"] == SESSION


def test_events_and_relayed_commands_reach_subscribers_and_change_nothing(
    gateway: Gateway,
) -> None:
    made = todo(gateway, content="announced")

    async def scenario() -> None:
        watcher = await Peer.connect(gateway.url, token=gateway.token, node="watcher")
        await watcher.subscribe(domains=["todos"], filters={"entityId": made})
        sender = await Peer.connect(gateway.url, token=gateway.token, node="sender")
        data = {"kind": "reviewed", "note": "looks good"}
        ack = await reply(sender, full("event", "todos", made, data, node="sender"), "ack", "error")
        assert ack["status"] == "applied" and ack["seq"] == 1, ack  # no state changed
        event = await until(watcher, "event")
        assert event["entityId"] == made and event["data"] == data
        assert event["source"]["nodeId"] == "sender"
        short = {"type": "command", "domain": "todos", "entityId": made}
        ack = await reply(sender, {**short, "data": {"command": "refresh"}}, "ack", "error")
        assert ack["type"] == "ack", ack
        command = await until(watcher, "command")
        assert command["data"] == {"command": "refresh"}
        unknown = await reply(sender, {**short, "data": {"command": "reboot"}}, "ack", "error")
        assert unknown["error"] == "unknown_command" and unknown["field"] == "data.command"
        assert "refresh" in unknown["detail"]
        nowhere = full("event", "todos", "CHITTY-TODO-NOSUCH", data)
        missing = await reply(sender, nowhere, "ack", "error")
        assert missing["type"] == "error" and missing["status"] == 404, missing
        for peer in (watcher, sender):
            await peer.close()

    gateway.call(scenario())
    status, body, _ = gateway.request("GET", f"/api/v1/todos/{made}")
    assert status == 200 and body["seq"] == 1


def test_the_hub_runs_reconcile_and_answers_the_asker(gateway: Gateway) -> None:
    project = gateway.project("reconciled by command")
    fields = {"sessionId": "cmd", "platform": "cli", "projectId": project}
    _, session, _ = gateway.request("POST", "/api/v1/sessions", fields)
    for content in ("same", "Same!"):
        todo(gateway, content=content, sessionId=session["entity"]["chittyId"])

    async def scenario() -> None:
        peer = await Peer.connect(gateway.url, token=gateway.token)
        frame = {"type": "command", "domain": "projects", "entityId": project, "id": "c1"}
        answer = await reply(peer, {**frame, "data": {"command": "reconcile"}}, "command_result")
        assert answer["id"] == "c1" and answer["command"] == "reconcile"
        assert len(answer["result"]["nodes"]) == 1 and answer["result"]["writes"]
        wrong = {**frame, "domain": "todos", "entityId": "CHITTY-TODO-1"}
        refused = await reply(peer, {**wrong, "data": {"command": "reconcile"}}, "error")
        assert "applies to projects" in refused["detail"]
        await peer.close()

    gateway.call(scenario())


def test_heartbeats_never_fail_and_client_acks_are_taken_quietly(gateway: Gateway) -> None:
    async def scenario() -> None:
        peer = await Peer.connect(gateway.url, token=gateway.token)
        pong = await reply(peer, {"type": "heartbeat", "id": "h1"}, "heartbeat")
        assert pong["id"] == "h1" and "offset" in pong
        whole = full("heartbeat", "todos", "CHITTY-TODO-1")
        del whole["payload"]  # a heartbeat needs none
        pong = await reply(peer, whole, "heartbeat", "error")
        assert pong["type"] == "heartbeat" and pong["id"] == whole["id"], pong
        await peer.send({"type": "ack", "id": "a1"})
        await peer.send({**full("ack", "todos", "CHITTY-TODO-1"), "id": "a2"})
        pong = await reply(peer, {"type": "heartbeat", "id": "h2"}, "heartbeat", "error", "ack")
        assert pong == {**pong, "type": "heartbeat", "id": "h2"}  # nothing answered the acks
        refused = await reply(peer, full("conflict", "todos", "CHITTY-TODO-1"), "error")
        assert "resolve" in refused["detail"]
        await peer.close()

    gateway.call(scenario())


def test_subscribers_receive_a_conflict_when_it_opens_and_when_it_is_resolved(
    gateway: Gateway,
) -> None:
    made = todo(gateway, content="contested")

    async def scenario() -> None:
        watcher = await Peer.connect(gateway.url, token=gateway.token)
        await watcher.subscribe(domains=["todos"], filters={"entityId": made})
        writer = await Peer.connect(gateway.url, token=gateway.token, node="w1")
        for node, status in (("w1", "completed"), ("w2", "blocked")):
            frame = {
                "type": "state_update",
                "domain": "todos",
                "entity": {"chittyId": made, "status": status},
                "vectorClock": {"api": 1, node: 1},
            }
            other = (
                writer
                if node == "w1"
                else await Peer.connect(gateway.url, token=gateway.token, node=node)
            )
            assert (await reply(other, frame, "ack", "error"))["type"] == "ack"
        opened = await until(watcher, "conflict")
        assert opened["status"] == "opened" and opened["entityId"] == made
        conflict = opened["conflict"]
        assert conflict["conflictType"] == "concurrent_update" and conflict["field"] == "status"
        assert {v["value"] for v in conflict["versions"]} == {"completed", "blocked"}
        assert conflict["resolution"]["strategy"] == "mvr"
        assert conflict["resolution"]["pending"] is True
        path = f"/api/v1/sync/conflicts/{conflict['conflictId']}/resolve"
        async with gateway.session.post(path, json={"value": "completed"}) as answer:
            assert answer.status == 200, await answer.text()
        resolved = await until(watcher, "conflict")
        assert resolved["status"] == "resolved"
        assert resolved["conflict"]["conflictId"] == conflict["conflictId"]
        assert resolved["conflict"]["resolution"]["pending"] is False
        assert resolved["conflict"]["resolution"]["mergedState"] == "completed"
        await watcher.close()
        await writer.close()

    gateway.call(scenario())


def test_the_target_decides_who_receives(gateway: Gateway) -> None:
    """broadcast (everyone), broadcast false (no one), nodeIds, platforms; the write applies
    whoever receives it."""
    made = todo(gateway, content="targeted")

    async def scenario() -> None:
        web = await Peer.connect(
            gateway.url, token=gateway.token, node="n-web", query="?platform=web"
        )
        cli = await Peer.connect(
            gateway.url, token=gateway.token, node="n-cli", query="?platform=cli"
        )
        plain = await Peer.connect(gateway.url, token=gateway.token, node="n-plain")
        peers = {"web": web, "cli": cli, "plain": plain}
        for peer in peers.values():
            await peer.subscribe(domains=["todos"], filters={"entityId": made})
        sender = await Peer.connect(gateway.url, token=gateway.token, node="sender")
        forms = [
            ({"broadcast": True}, {"web", "cli", "plain"}),
            ({"broadcast": False}, set()),
            ({"broadcast": False, "nodeIds": ["n-cli"]}, {"cli"}),
            ({"broadcast": True, "platforms": ["web"]}, {"web"}),  # plain declared none
            ({"broadcast": False, "nodeIds": ["n-plain"], "platforms": ["web"]}, {"web", "plain"}),
        ]
        for n, (target, expected) in enumerate(forms):
            form = f"form {n}"
            frame = full("state_update", "todos", made, {"activeForm": form}, target=target)
            assert (await reply(sender, frame, "ack", "error"))["type"] == "ack"
            event = full("event", "todos", made, {"form": form}, target=target)
            assert (await reply(sender, event, "ack", "error"))["type"] == "ack"
            for name, peer in peers.items():
                got = [
                    f
                    for f in await quiet(peer, "state_update", "event", for_s=0.6)
                    if form
                    in (f.get("entity", {}).get("activeForm"), (f.get("data") or {}).get("form"))
                ]
                kinds = sorted(f["type"] for f in got)
                assert kinds == (["event", "state_update"] if name in expected else []), (
                    target,
                    name,
                    got,
                )
        for peer in [*peers.values(), sender]:
            await peer.close()

    gateway.call(scenario())
    _, body, _ = gateway.request("GET", f"/api/v1/todos/{made}")
    assert body["entity"]["activeForm"] == "form 4"  # every form applied


def test_broadcast_does_what_each_type_says(gateway: Gateway) -> None:
    project = gateway.project("broadcast types")
    made = todo(gateway, projectId=project, content="over broadcast")

    def post(frame: Frame) -> tuple[int, Any]:
        status, body, _ = gateway.request("POST", "/api/v1/sync/broadcast", frame)
        return status, body

    status, body = post(full("state_request", "todos", made))
    assert status == 200 and body["status"] == "answered" and body["entity"]["chittyId"] == made
    status, body = post(full("query", "todos", project))
    assert status == 200 and [i["entity"]["chittyId"] for i in body["items"]] == [made]
    heartbeat = full("heartbeat", "todos", made)
    del heartbeat["payload"]
    status, body = post(heartbeat)
    assert status == 200 and body["status"] == "answered" and "offset" in body
    status, body = post(full("event", "todos", made, {"kind": "seen"}))
    assert status == 200 and body["status"] == "applied" and body["seq"] == 1
    status, body = post(full("command", "todos", made, {"command": "nope"}))
    assert status == 422 and body["field"] == "payload.entity.data.command"
    status, body = post(full("command", "projects", project, {"command": "reconcile"}))
    assert status == 200 and body["command"] == "reconcile" and body["result"]["nodes"]
    status, body = post(full("ack", "todos", made))
    assert status == 200 and body["status"] == "ignored"
    status, body = post(full("conflict", "todos", made))
    assert status == 422 and body["field"] == "type"


def test_a_session_made_over_ws_without_the_platform_s_own_id_takes_its_chitty_id(
    gateway: Gateway,
) -> None:
    async def scenario() -> tuple[str, dict[str, Any]]:
        peer = await Peer.connect(gateway.url, token=gateway.token)
        frame = {"type": "state_update", "domain": "sessions", "entity": {"platform": "web"}}
        ack = await reply(peer, frame, "ack", "error")
        long = {**frame, "entity": {"platform": "web", "sessionId": "x" * 501}}
        refused = await reply(peer, long, "ack", "error")
        await peer.close()
        assert ack["type"] == "ack" and ack["status"] == "applied", ack
        return str(ack["entityId"]), refused

    made, refused = gateway.call(scenario())
    assert gateway.request("GET", f"/api/v1/sessions/{made}")[1]["entity"]["sessionId"] == made
    assert refused["type"] == "error" and "platform's own session id" in refused["detail"], refused


def test_the_spec_s_send_update_frame_creates_the_entity_and_acks_its_new_id(
    gateway: Gateway,
) -> None:
    """spec §ChittyChat WebSocket API: {"type": "state_update", "domain": "todos", "entity":
    {todo data}}, no operation, no chittyId."""

    async def scenario() -> str:
        peer = await Peer.connect(gateway.url, token=gateway.token)
        frame = {
            "type": "state_update",
            "domain": "todos",
            "entity": {"content": "from the spec's frame", "sessionId": SESSION},
        }
        ack = await reply(peer, frame, "ack", "error")
        await peer.close()
        assert ack["type"] == "ack" and ack["status"] == "applied", ack
        assert ack["entityId"].startswith("CHITTY-TODO-") and ack["seq"] == 1
        return str(ack["entityId"])

    made = gateway.call(scenario())
    status, body, _ = gateway.request("GET", f"/api/v1/todos/{made}")
    assert status == 200 and body["entity"]["content"] == "from the spec's frame"
