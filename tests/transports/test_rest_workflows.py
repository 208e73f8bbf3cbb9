"""The spec's workflow endpoints over a live hub: sync reports, conflicts, Example 2, contexts."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from tests.transports.conftest import SESSION, Gateway


def post(gateway: Gateway, path: str, body: Any, **headers: str) -> tuple[int, Any]:
    status, answer, _ = gateway.request("POST", path, body, headers or None)
    return status, answer


def make(gateway: Gateway, domain: str, body: dict[str, Any]) -> dict[str, Any]:
    status, answer = post(gateway, f"/api/v1/{domain}", body)
    assert status == 201, answer
    return answer["entity"]  # type: ignore[no-any-return]


async def declared_subscriber(gateway: Gateway, platform: str, domains: list[str]) -> Any:
    """A /ws connection that says it is `platform` and subscribes to `domains`."""
    headers = {"Authorization": f"Bearer {gateway.token}", "X-Chitty-Platform": platform}
    socket = await gateway.session.ws_connect("/ws", headers=headers)
    await socket.send_json({"type": "subscribe", "domains": domains})
    while (await socket.receive_json(timeout=10))["type"] != "subscribed":
        pass
    return socket


def test_sync_reports_live_only_for_a_connected_subscriber_and_dry_runs_alike(
    gateway: Gateway,
) -> None:
    project = gateway.project("Sync me")
    make(gateway, "todos", {"content": "a", "sessionId": SESSION, "projectId": project})
    request = {"platforms": ["web", "cli"], "channels": ["slack"], "projectId": project}

    def statuses(dry: bool) -> dict[str, str]:
        status, body = post(gateway, "/api/v1/sync/todos", {**request, "dryRun": dry})
        assert status == 200 and body["entities"] == 1 and body["dryRun"] is dry, body
        return {t["target"]: t["status"] for t in body["targets"]}

    nobody = {"web": "not_connected", "cli": "not_connected", "slack": "not_connected"}
    assert statuses(False) == statuses(True) == nobody  # nothing is connected: nothing claimed
    web = gateway.call(declared_subscriber(gateway, "web", ["todos"]))
    elsewhere = gateway.call(declared_subscriber(gateway, "cli", ["sessions"]))  # not todos
    try:
        live = {**nobody, "web": "live"}
        assert statuses(False) == statuses(True) == live
        status, body = post(gateway, "/api/v1/sync/todos", request)
        web_report = next(t for t in body["targets"] if t["target"] == "web")
        assert web_report["subscribers"] == 1 and "nothing else was sent" in web_report["detail"]
    finally:
        gateway.call(web.close())
        gateway.call(elsewhere.close())
    deadline = time.monotonic() + 5
    while statuses(False) != nobody:  # the gateway notices the close
        assert time.monotonic() < deadline
        time.sleep(0.05)
    status, body = post(gateway, "/api/v1/sync/todos", {"channels": ["fax"]})
    assert status == 422 and body["field"] == "channels" and "slack" in body["detail"]
    status, body = post(gateway, "/api/v1/sync/all", {"models": ["claude"], "dryRun": True})
    assert status == 200 and body["targets"][0]["status"] == "not_connected"
    assert "MCP" in body["targets"][0]["detail"]
    assert post(gateway, "/api/v1/sync/emails", {})[0] == 404


def test_entity_sync_and_status(gateway: Gateway) -> None:
    todo = make(gateway, "todos", {"content": "b", "sessionId": SESSION})["chittyId"]
    status, body = post(gateway, f"/api/v1/sync/todos/{todo}", {"platforms": ["cli"]})
    assert status == 200 and body["seq"] == 1 and body["targets"][0]["target"] == "cli"
    status, body, _ = gateway.request("GET", f"/api/v1/sync/todos/{todo}/status")
    assert status == 200 and body["synced"] is True and body["vectorClock"] == {"api": 1}
    assert gateway.request("GET", "/api/v1/sync/todos/CHITTY-TODO-NONE/status")[0] == 404


def test_conflicts_are_listed_and_resolved(gateway: Gateway) -> None:
    created = make(gateway, "todos", {"content": "c", "sessionId": SESSION})
    todo = created["chittyId"]
    gateway.request(
        "PUT",
        f"/api/v1/todos/{todo}",
        {"status": "completed", "vectorClock": {"api": 1, "phone": 1}},
        {"X-Chitty-Node": "phone"},
    )
    gateway.request(
        "PUT",
        f"/api/v1/todos/{todo}",
        {"status": "blocked", "vectorClock": {"api": 1, "web": 1}},
        {"X-Chitty-Node": "web"},
    )
    status, body, _ = gateway.request("GET", "/api/v1/sync/conflicts")
    mine = [c for c in body["conflicts"] if c["entityId"] == todo]
    assert status == 200 and len(mine) == 1
    conflict = mine[0]["conflictId"]
    assert {v["value"] for v in mine[0]["versions"]} == {"completed", "blocked"}
    suggestion = mine[0]["suggestion"]
    assert suggestion["value"] == "completed" and suggestion["by"] == "rule"
    assert "most advanced status" in suggestion["reason"]
    path = f"/api/v1/sync/conflicts/{conflict}/resolve"
    status, body = post(gateway, path, {})
    assert status == 422 and "acceptSuggestion" in body["detail"], body
    status, body = post(gateway, path, {"value": "blocked", "acceptSuggestion": True})
    assert status == 422 and "acceptSuggestion" in body["detail"], body
    status, body = post(
        gateway, f"/api/v1/sync/conflicts/{conflict}/resolve", {"value": "nonsense"}
    )
    assert status == 422 and body["field"] == "value"
    status, body = post(
        gateway, f"/api/v1/sync/conflicts/{conflict}/resolve", {"value": "completed"}
    )
    assert status == 200 and body["resolved"] == conflict
    assert body["entity"]["status"] == "completed" and body["conflicts"] == []
    _, listed, _ = gateway.request("GET", "/api/v1/sync/conflicts")
    assert all(c["entityId"] != todo for c in listed["conflicts"])
    assert (
        post(gateway, f"/api/v1/sync/conflicts/{conflict}/resolve", {"value": "completed"})[0]
        == 404
    )


def test_accepting_a_suggestion_resolves_like_any_resolve(gateway: Gateway) -> None:
    todo = make(gateway, "todos", {"content": "s", "sessionId": SESSION})["chittyId"]
    for node, priority in (("phone", "high"), ("web", "critical")):
        gateway.request(
            "PUT",
            f"/api/v1/todos/{todo}",
            {"metadata": {"priority": priority}, "vectorClock": {"api": 1, node: 1}},
            {"X-Chitty-Node": node},
        )
    _, listed, _ = gateway.request("GET", "/api/v1/sync/conflicts?domain=todos")
    [mine] = [c for c in listed["conflicts"] if c["entityId"] == todo]
    assert mine["field"] == "metadata.priority" and mine["suggestion"]["value"] == "critical"
    path = f"/api/v1/sync/conflicts/{mine['conflictId']}/resolve"
    status, body = post(gateway, path, {"acceptSuggestion": True})
    assert status == 200 and body["resolved"] == mine["conflictId"], body
    assert body["entity"]["metadata"]["priority"] == "critical" and body["conflicts"] == []


FIVE = ["Todo 1", "Todo 2", "Todo 3", "Todo 4", "Todo 5"]
FIVE_STATUSES = ["pending", "completed", "pending", "in_progress", "pending"]


def example_2(gateway: Gateway) -> tuple[str, dict[str, str]]:
    """Spec Example 2 as a user does it: a project, three sessions that name it, and todos
    made with POST /todos (the second session's duplicate of Todo 2 completed)."""
    project = gateway.project("Example 2")
    plan = {
        "A": [("Todo 1", "pending"), ("Todo 2", "in_progress")],
        "B": [("todo 2!", "completed"), ("Todo 3", "pending")],
        "C": [("Todo 4", "in_progress"), ("Todo 5", "pending")],
    }
    sessions = {}
    for name in "ABC":
        fields = {"sessionId": f"sess-{name}", "platform": "claude-code", "projectId": project}
        sessions[name] = make(gateway, "sessions", fields)["chittyId"]
        for content, status in plan[name]:
            todo = make(
                gateway,
                "todos",
                {"content": content, "status": status, "sessionId": sessions[name]},
            )
            assert todo["projectId"] == project  # the session's project, inherited
    return project, sessions


def listed(gateway: Gateway, session: str) -> list[tuple[str, str]]:
    status, body, _ = gateway.request("GET", f"/api/v1/sessions/{session}")
    assert status == 200, body
    return sorted((t["content"].title().rstrip("!"), t["status"]) for t in body["entity"]["todos"])


def test_example_2_over_rest(gateway: Gateway) -> None:
    project, sessions = example_2(gateway)
    assert listed(gateway, sessions["A"]) == [("Todo 1", "pending"), ("Todo 2", "in_progress")]
    status, mesh, _ = gateway.request("GET", f"/api/v1/todos/mesh?projectId={project}")
    assert status == 200 and len(mesh["nodes"]) == 5 and mesh["reconciled"] is False
    status, dry = post(gateway, "/api/v1/todos/reconcile", {"projectId": project, "dryRun": True})
    assert status == 200 and dry["writes"] and {w["status"] for w in dry["writes"]} == {"planned"}
    assert listed(gateway, sessions["C"]) == [("Todo 4", "in_progress"), ("Todo 5", "pending")]

    status, body = post(gateway, "/api/v1/todos/reconcile", {"projectId": project})
    assert status == 200, body
    assert [n["todo"]["content"] for n in body["nodes"]] == FIVE
    assert [n["todo"]["status"] for n in body["nodes"]] == FIVE_STATUSES
    merged = body["nodes"][1]
    assert sorted(merged["originSessions"]) == sorted([sessions["A"], sessions["B"]])
    [duplicate] = merged["mergedFrom"]
    assert sorted(body["sessions"]) == sorted(sessions.values())
    assert body["writes"] and {w["status"] for w in body["writes"]} == {"applied"}
    for sid in sessions.values():  # every session lists the same five, with the same statuses
        assert listed(gateway, sid) == list(zip(FIVE, FIVE_STATUSES, strict=True))
    status, kept, _ = gateway.request("GET", f"/api/v1/todos/{duplicate}")
    assert status == 200 and kept["entity"]["mergedInto"] == merged["todo"]["chittyId"]
    _, todos, _ = gateway.request("GET", f"/api/v1/todos?projectId={project}")
    assert len(todos["items"]) == 5  # the merged duplicate is kept, not listed
    _, todos, _ = gateway.request("GET", f"/api/v1/todos?projectId={project}&includeMerged=true")
    assert len(todos["items"]) == 6
    deadline = time.monotonic() + 10  # the hub links each session to its project
    while True:
        _, view, _ = gateway.request("GET", f"/api/v1/projects/{project}")
        if sorted(view["entity"]["sessions"]) == sorted(sessions.values()):
            break
        assert time.monotonic() < deadline, view
        time.sleep(0.05)

    status, again = post(gateway, "/api/v1/todos/reconcile", {"projectId": project})
    assert status == 200 and again["writes"] == []  # a second run changes nothing
    assert [n["todo"]["status"] for n in again["nodes"]] == FIVE_STATUSES
    status, mesh, _ = gateway.request("GET", f"/api/v1/todos/mesh?projectId={project}")
    assert mesh["reconciled"] is True
    assert post(gateway, "/api/v1/todos/reconcile", {"projectId": "CHITTY-PROJ-MISSING"})[0] == 404
    assert post(gateway, "/api/v1/todos/reconcile", {"projectId": "nope"})[0] == 422


def test_references_must_exist_and_a_todo_takes_its_session_s_project(gateway: Gateway) -> None:
    project = gateway.project("refs")
    other = gateway.project("other")
    session = make(gateway, "sessions", {"sessionId": "r", "platform": "cli", "projectId": project})
    todo = make(gateway, "todos", {"content": "inherits", "sessionId": session["chittyId"]})
    assert todo["projectId"] == project
    for body, field in [
        ({"content": "x", "sessionId": "CHITTY-SESSION-NOSUCH"}, "sessionId"),
        ({"content": "x", "sessionId": SESSION, "projectId": "CHITTY-PROJ-NOSUCH"}, "projectId"),
        ({"content": "x", "sessionId": session["chittyId"], "projectId": other}, "projectId"),
        ({"content": "x", "sessionId": project}, "sessionId"),  # not a session id at all
    ]:
        status, answer = post(gateway, "/api/v1/todos", body)
        assert status == 422 and answer["field"] == field, (body, answer)
    status, answer = post(
        gateway,
        "/api/v1/sessions",
        {"sessionId": "s", "platform": "cli", "projectId": "CHITTY-PROJ-NOSUCH"},
    )
    assert status == 422 and answer["field"] == "projectId", answer
    status, answer, _ = gateway.request(
        "PUT", f"/api/v1/sessions/{session['chittyId']}", {"todos": [todo]}
    )
    assert status == 422 and answer["field"] == "todos" and "POST /api/v1/todos" in answer["detail"]
    status, answer, _ = gateway.request(
        "PUT", f"/api/v1/projects/{project}", {"sessions": [SESSION]}
    )
    assert status == 422 and answer["field"] == "sessions", answer
    status, answer, _ = gateway.request(
        "PUT", f"/api/v1/sessions/{session['chittyId']}", {"projectId": other}
    )
    assert status == 200 and answer["entity"]["projectId"] == other  # a session may move
    deadline = time.monotonic() + 10  # and the projects' lists follow it
    while True:
        _, left, _ = gateway.request("GET", f"/api/v1/projects/{project}")
        _, joined, _ = gateway.request("GET", f"/api/v1/projects/{other}")
        if left["entity"]["sessions"] == [] and joined["entity"]["sessions"] == [
            session["chittyId"]
        ]:
            break
        assert time.monotonic() < deadline, (left, joined)
        time.sleep(0.05)


def test_session_context_sync_and_end(gateway: Gateway) -> None:
    sid = make(
        gateway,
        "sessions",
        {"sessionId": "s-ctx", "platform": "cli", "context": {"state": {"cursor": 3}}},
    )["chittyId"]
    status, body, _ = gateway.request("GET", f"/api/v1/sessions/{sid}/context")
    assert status == 200 and body["context"]["state"] == {"cursor": 3}
    status, body = post(gateway, f"/api/v1/sessions/{sid}/sync", {"platforms": ["web"]})
    assert status == 200 and body["targets"][0]["status"] == "not_connected"
    web = gateway.call(declared_subscriber(gateway, "web", ["sessions"]))
    try:
        status, body = post(gateway, f"/api/v1/sessions/{sid}/sync", {"platforms": ["web"]})
        assert status == 200 and body["targets"][0]["status"] == "live"
    finally:
        gateway.call(web.close())
    status, body, _ = gateway.request("DELETE", f"/api/v1/sessions/{sid}")
    assert status == 200 and body["entity"]["status"] == "ended"
    assert body["entity"]["timestamps"]["ended"] is not None


def test_contexts_enrich_and_propagate(gateway: Gateway) -> None:
    ctx = make(gateway, "contexts", {"type": "conversation"})["chittyId"]
    status, body = post(
        gateway,
        f"/api/v1/contexts/{ctx}/enrich",
        {"source": "claude", "kind": "summary", "content": "legal timeline app"},
    )
    assert status == 200 and body["entity"]["enrichments"][0]["source"] == "claude"
    status, body = post(
        gateway,
        f"/api/v1/contexts/{ctx}/enrich",
        {"source": "claude", "kind": "x", "content": 1, "confidence": 7},
    )
    assert status == 422 and body["field"] == "confidence"
    status, body = post(
        gateway,
        "/api/v1/contexts/propagate",
        {
            "source": "claude-code",
            "target": "chatgpt",
            "contextId": ctx,
            "summary": "User works on ChittyChronicle",
        },
    )
    assert status == 200 and body["entity"]["content"]["summary"] == "User works on ChittyChronicle"
    # ChatGPT reads it through its Actions when it asks: nothing was pushed, nothing claimed.
    assert body["propagation"]["status"] == "available", body["propagation"]
    assert body["propagation"]["via"] == "actions"
    status, body = post(
        gateway,
        "/api/v1/contexts/propagate",
        {"source": "claude-code", "target": "gemini", "targets": ["claude"], "contextId": ctx},
    )
    gemini, claude = body["deliveries"]
    assert gemini["status"] == "not_configured" and "GOOGLE_AI_API_KEY" in gemini["detail"]
    assert claude["status"] == "available" and claude["via"] == "mcp"
    status, body = post(
        gateway,
        "/api/v1/contexts/propagate",
        {"source": "a", "target": "hal9000", "contextId": ctx},
    )
    assert status == 422 and body["field"] == "target"


def test_broadcast_submits_a_full_sync_message(gateway: Gateway) -> None:
    todo = make(gateway, "todos", {"content": "d", "sessionId": SESSION})["chittyId"]
    message = {
        "id": f"bcast-{todo}",
        "type": "state_update",
        "source": {"nodeId": "slack-bot", "platform": "slack", "chittyId": "CHITTY-SERVICE-1"},
        "target": {"broadcast": True},
        "payload": {
            "domain": "todos",
            "operation": "update",
            "entity": {"chittyId": todo, "data": {"status": "in_progress"}},
        },
        "metadata": {
            "timestamp": datetime.now(UTC).isoformat(),
            "vectorClock": {"api": 1, "slack-bot": 1},
            "ttl": 600,
        },
    }
    status, body = post(gateway, "/api/v1/sync/broadcast", message)
    assert status == 200 and body["status"] == "applied" and body["seq"] == 2
    bad = {**message, "payload": {**message["payload"], "domain": "emails"}}
    status, body = post(gateway, "/api/v1/sync/broadcast", bad)
    assert status == 422 and body["field"] == "payload.domain"


def test_all_is_a_domain_only_where_many_entities_sync(gateway: Gateway) -> None:
    todo = make(gateway, "todos", {"content": "e", "sessionId": SESSION})["chittyId"]
    assert post(gateway, f"/api/v1/sync/all/{todo}", {})[0] == 404
    assert gateway.request("GET", f"/api/v1/sync/all/{todo}/status")[0] == 404
    status, body, _ = gateway.request("GET", "/api/v1/sync/conflicts?domain=all")
    assert status == 200 and isinstance(body["conflicts"], list)
    assert gateway.request("GET", "/api/v1/sync/conflicts?domain=emails")[0] == 404
    status, body = post(gateway, f"/api/v1/sync/todos/{todo}", {"platforms": "web"})
    assert status == 422 and body["field"] == "platforms"
