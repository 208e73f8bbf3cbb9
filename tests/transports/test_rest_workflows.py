"""The spec's workflow endpoints over a live hub: sync reports, conflicts, Example 2, contexts."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from tests.transports.conftest import Gateway


def post(gateway: Gateway, path: str, body: Any, **headers: str) -> tuple[int, Any]:
    status, answer, _ = gateway.request("POST", path, body, headers or None)
    return status, answer


def make(gateway: Gateway, domain: str, body: dict[str, Any]) -> dict[str, Any]:
    status, answer = post(gateway, f"/api/v1/{domain}", body)
    assert status == 201, answer
    return answer["entity"]  # type: ignore[no-any-return]


def test_sync_reports_per_target_and_refuses_unknown_ones(gateway: Gateway) -> None:
    project = make(gateway, "projects", {"name": "Sync me"})["chittyId"]
    make(gateway, "todos", {"content": "a", "sessionId": "CHITTY-SESSION-1", "projectId": project})
    status, body = post(
        gateway,
        "/api/v1/sync/todos",
        {"platforms": ["web"], "channels": ["slack"], "projectId": project},
    )
    assert status == 200 and body["entities"] == 1
    by_target = {t["target"]: t for t in body["targets"]}
    assert by_target["web"]["status"] == "live"
    assert by_target["slack"]["status"] == "not_connected"  # no Slack adapter runs: said plainly
    status, body = post(gateway, "/api/v1/sync/todos", {"channels": ["fax"]})
    assert status == 422 and body["field"] == "channels" and "slack" in body["detail"]
    status, body = post(gateway, "/api/v1/sync/all", {"models": ["claude"], "dryRun": True})
    assert status == 200 and body["targets"][0]["status"] == "would_sync"
    assert post(gateway, "/api/v1/sync/emails", {})[0] == 404


def test_entity_sync_and_status(gateway: Gateway) -> None:
    todo = make(gateway, "todos", {"content": "b", "sessionId": "CHITTY-SESSION-1"})["chittyId"]
    status, body = post(gateway, f"/api/v1/sync/todos/{todo}", {"platforms": ["cli"]})
    assert status == 200 and body["seq"] == 1 and body["targets"][0]["target"] == "cli"
    status, body, _ = gateway.request("GET", f"/api/v1/sync/todos/{todo}/status")
    assert status == 200 and body["synced"] is True and body["vectorClock"] == {"api": 1}
    assert gateway.request("GET", "/api/v1/sync/todos/CHITTY-TODO-NONE/status")[0] == 404


def test_conflicts_are_listed_and_resolved(gateway: Gateway) -> None:
    created = make(gateway, "todos", {"content": "c", "sessionId": "CHITTY-SESSION-1"})
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


def test_example_2_over_rest(gateway: Gateway) -> None:
    project = make(gateway, "projects", {"name": "Example 2"})["chittyId"]
    sessions = {}
    plan = {
        "A": [("Todo 1", "pending"), ("Todo 2", "in_progress")],
        "B": [("todo 2!", "completed"), ("Todo 3", "pending")],
        "C": [("Todo 4", "in_progress"), ("Todo 5", "pending")],
    }
    for minute, name in enumerate("ABC"):
        sid = make(
            gateway,
            "sessions",
            {"sessionId": f"sess-{name}", "platform": "claude-code", "projectId": project},
        )["chittyId"]
        sessions[name] = sid
        todos = [
            {
                "chittyId": f"CHITTY-TODO-EX2{name}{i}",
                "content": c,
                "status": s,
                "sessionId": sid,
                "metadata": {"created": f"2025-10-18T09:{minute}{i}:00Z"},
            }
            for i, (c, s) in enumerate(plan[name])
        ]
        assert gateway.request("PUT", f"/api/v1/sessions/{sid}", {"todos": todos})[0] == 200
    assert (
        gateway.request(
            "PUT", f"/api/v1/projects/{project}", {"sessions": list(sessions.values())}
        )[0]
        == 200
    )
    status, mesh, _ = gateway.request("GET", f"/api/v1/todos/mesh?projectId={project}")
    assert status == 200 and len(mesh["nodes"]) == 5
    status, body = post(gateway, "/api/v1/todos/reconcile", {"projectId": project})
    assert status == 200, body
    assert [n["todo"]["content"] for n in body["nodes"]] == [
        "Todo 1",
        "Todo 2",
        "Todo 3",
        "Todo 4",
        "Todo 5",
    ]
    merged = body["nodes"][1]
    assert merged["todo"]["status"] == "completed"
    assert sorted(merged["originSessions"]) == sorted([sessions["A"], sessions["B"]])
    assert set(body["sessions"].values()) == {"applied"}
    for sid in sessions.values():
        _, ctx, _ = gateway.request("GET", f"/api/v1/sessions/{sid}")
        assert sorted(t["content"] for t in ctx["entity"]["todos"]) == [
            "Todo 1",
            "Todo 2",
            "Todo 3",
            "Todo 4",
            "Todo 5",
        ]
    assert post(gateway, "/api/v1/todos/reconcile", {"projectId": "CHITTY-PROJ-MISSING"})[0] == 404
    assert post(gateway, "/api/v1/todos/reconcile", {"projectId": "nope"})[0] == 422


def test_session_context_sync_and_end(gateway: Gateway) -> None:
    sid = make(
        gateway,
        "sessions",
        {"sessionId": "s-ctx", "platform": "cli", "context": {"state": {"cursor": 3}}},
    )["chittyId"]
    status, body, _ = gateway.request("GET", f"/api/v1/sessions/{sid}/context")
    assert status == 200 and body["context"]["state"] == {"cursor": 3}
    status, body = post(gateway, f"/api/v1/sessions/{sid}/sync", {"platforms": ["web"]})
    assert status == 200 and body["targets"][0]["status"] == "live"
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
    assert body["propagation"]["status"] == "not_connected"
    status, body = post(
        gateway,
        "/api/v1/contexts/propagate",
        {"source": "a", "target": "hal9000", "contextId": ctx},
    )
    assert status == 422 and body["field"] == "target"


def test_broadcast_submits_a_full_sync_message(gateway: Gateway) -> None:
    todo = make(gateway, "todos", {"content": "d", "sessionId": "CHITTY-SESSION-1"})["chittyId"]
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
    todo = make(gateway, "todos", {"content": "e", "sessionId": "CHITTY-SESSION-1"})["chittyId"]
    assert post(gateway, f"/api/v1/sync/all/{todo}", {})[0] == 404
    assert gateway.request("GET", f"/api/v1/sync/all/{todo}/status")[0] == 404
    status, body, _ = gateway.request("GET", "/api/v1/sync/conflicts?domain=all")
    assert status == 200 and isinstance(body["conflicts"], list)
    assert gateway.request("GET", "/api/v1/sync/conflicts?domain=emails")[0] == 404
    status, body = post(gateway, f"/api/v1/sync/todos/{todo}", {"platforms": "web"})
    assert status == 422 and body["field"] == "platforms"
