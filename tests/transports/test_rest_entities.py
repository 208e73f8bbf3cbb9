"""REST CRUD over a live hub: spec field names, vector clocks, errors that name the field."""

from __future__ import annotations

import time

import pytest

from tests.transports.conftest import Gateway
from transports.gateway.json_body import MAX_JSON_DEPTH

SESSION = "CHITTY-SESSION-1"


def create_todo(gateway: Gateway, **fields: object) -> dict[str, object]:
    status, body, _ = gateway.request(
        "POST", "/api/v1/todos", {"content": "write docs", "sessionId": SESSION, **fields}
    )
    assert status == 201, body
    return body  # type: ignore[no-any-return]


def test_create_returns_the_todo_with_its_chitty_id_and_clock(gateway: Gateway) -> None:
    body = create_todo(gateway)
    entity = body["entity"]
    assert entity["chittyId"].startswith("CHITTY-TODO-")  # type: ignore[index]
    assert entity["activeForm"] == "" and entity["status"] == "pending"  # type: ignore[index]
    assert body["vectorClock"] == {"api": 1} and body["seq"] == 1


def test_read_update_history_and_delete(gateway: Gateway) -> None:
    todo = create_todo(gateway)["entity"]["chittyId"]  # type: ignore[index]
    status, body, _ = gateway.request("PUT", f"/api/v1/todos/{todo}", {"status": "in_progress"})
    assert status == 200 and body["entity"]["status"] == "in_progress"
    status, body, _ = gateway.request("GET", f"/api/v1/todos/{todo}")
    assert status == 200 and body["seq"] == 2
    status, body, _ = gateway.request("GET", f"/api/v1/todos/{todo}/history")
    assert [e["seq"] for e in body["events"]] == [1, 2]
    assert gateway.request("DELETE", f"/api/v1/todos/{todo}")[0] == 200
    assert gateway.request("GET", f"/api/v1/todos/{todo}")[0] == 404


def test_a_stale_clock_merges_and_answers_with_the_conflict(gateway: Gateway) -> None:
    created = create_todo(gateway)
    todo, clock = created["entity"]["chittyId"], created["vectorClock"]  # type: ignore[index]
    first = gateway.request(
        "PUT",
        f"/api/v1/todos/{todo}",
        {"status": "completed", "vectorClock": {**clock, "phone": 1}},
        {"X-Chitty-Node": "phone"},
    )  # type: ignore[dict-item]
    assert first[0] == 200 and first[1]["conflicts"] == []
    second = gateway.request(
        "PUT",
        f"/api/v1/todos/{todo}",
        {"status": "blocked", "vectorClock": {**clock, "web": 1}},
        {"X-Chitty-Node": "web"},
    )  # type: ignore[dict-item]
    assert second[0] == 200
    assert [c["field"] for c in second[1]["conflicts"]] == ["status"]
    assert second[1]["vectorClock"] == {"api": 1, "phone": 1, "web": 1}


def test_idempotency_key_returns_the_first_result(gateway: Gateway) -> None:
    todo = create_todo(gateway)["entity"]["chittyId"]  # type: ignore[index]
    key = {"Idempotency-Key": f"retry-{todo}"}
    first = gateway.request("PUT", f"/api/v1/todos/{todo}", {"content": "once"}, key)
    gateway.request("PUT", f"/api/v1/todos/{todo}", {"content": "later"})
    again = gateway.request("PUT", f"/api/v1/todos/{todo}", {"content": "once"}, key)
    assert again[0] == 200 and again[1]["seq"] == first[1]["seq"] == 2
    assert again[1]["entity"]["content"] == "once"


def test_an_idempotency_key_reused_with_another_body_is_a_422_and_writes_nothing(
    gateway: Gateway,
) -> None:
    key = {"Idempotency-Key": f"create-once-{time.time_ns()}"}
    body = {"content": "the first body", "sessionId": SESSION}
    status, first, _ = gateway.request("POST", "/api/v1/todos", body, key)
    assert status == 201, first
    todo = first["entity"]["chittyId"]
    status, again, _ = gateway.request("POST", "/api/v1/todos", body, key)  # a true retry
    assert status == 201 and again["entity"]["chittyId"] == todo and again["seq"] == 1, again
    other = {"content": "another body", "sessionId": SESSION}
    status, refused, _ = gateway.request("POST", "/api/v1/todos", other, key)
    assert status == 422 and refused["field"] == "Idempotency-Key", refused
    assert "another request" in refused["detail"], refused
    status, page, _ = gateway.request("GET", f"/api/v1/todos?sessionId={SESSION}&limit=500")
    assert "another body" not in str(page)
    # An update's key works the same way.
    put = {"Idempotency-Key": f"update-once-{time.time_ns()}"}
    assert gateway.request("PUT", f"/api/v1/todos/{todo}", {"activeForm": "a"}, put)[0] == 200
    status, refused, _ = gateway.request("PUT", f"/api/v1/todos/{todo}", {"activeForm": "b"}, put)
    assert status == 422 and refused["field"] == "Idempotency-Key", refused
    status, now, _ = gateway.request("GET", f"/api/v1/todos/{todo}")
    assert now["entity"]["activeForm"] == "a" and now["seq"] == 2, now


def test_list_filters_and_paginates(gateway: Gateway) -> None:
    project = gateway.project("listing")
    made = {
        create_todo(gateway, projectId=project, content=f"item {i}")["entity"]["chittyId"]
        for i in range(7)
    }  # type: ignore[index]
    seen: list[str] = []
    path = f"/api/v1/todos?projectId={project}&limit=3"
    while True:
        status, body, _ = gateway.request("GET", path)
        assert status == 200
        seen += [item["entity"]["chittyId"] for item in body["items"]]
        if body["cursor"] is None:
            break
        path = f"/api/v1/todos?projectId={project}&limit=3&cursor={body['cursor']}"
    assert set(seen) == made and len(seen) == 7


def test_a_listing_answers_only_the_fields_asked_for(gateway: Gateway) -> None:
    project = gateway.project("fields")
    status, made, _ = gateway.request(
        "POST", "/api/v1/sessions", {"platform": "web", "projectId": project}
    )
    session = made["entity"]
    create_todo(gateway, projectId=project, sessionId=session["chittyId"], content="slim")
    query = f"projectId={project}&fields=content,%20status"
    status, body, _ = gateway.request("GET", f"/api/v1/todos?{query}")
    assert status == 200, body
    [item] = body["items"]
    assert item["entity"] == {
        "chittyId": item["entity"]["chittyId"],
        "content": "slim",
        "status": "pending",
    }
    assert item["seq"] >= 1 and "vectorClock" in item  # the envelope stays whole
    # A session's todos are filled in only when asked for.
    path = f"/api/v1/sessions?projectId={project}&fields="
    status, body, _ = gateway.request("GET", path + "platform")
    assert body["items"][0]["entity"] == {"chittyId": session["chittyId"], "platform": "web"}
    status, body, _ = gateway.request("GET", path + "todos")
    assert [t["content"] for t in body["items"][0]["entity"]["todos"]] == ["slim"]


def test_state_at_a_time(gateway: Gateway) -> None:
    import time
    from datetime import UTC, datetime

    todo = create_todo(gateway)["entity"]["chittyId"]  # type: ignore[index]
    time.sleep(0.05)
    middle = datetime.now(UTC).isoformat()
    time.sleep(0.05)
    gateway.request("PUT", f"/api/v1/todos/{todo}", {"content": "changed"})
    status, body, _ = gateway.request(
        "GET", f"/api/v1/todos/{todo}?at={middle.replace('+00:00', 'Z')}"
    )
    assert status == 200 and body["entity"]["content"] == "write docs"
    status, body, _ = gateway.request("GET", f"/api/v1/todos/{todo}?at=2001-01-01T00:00:00Z")
    assert status == 404 and body["field"] == "at", body
    assert "did not exist at 2001-01-01T00:00:00Z" in body["detail"]


def test_a_session_without_the_platform_s_own_id_takes_its_chitty_id(gateway: Gateway) -> None:
    status, body, _ = gateway.request("POST", "/api/v1/sessions", {"platform": "cli"})
    assert status == 201, body
    assert body["entity"]["sessionId"] == body["entity"]["chittyId"]
    status, body, _ = gateway.request(
        "POST", "/api/v1/sessions", {"platform": "cli", "sessionId": "x" * 501}
    )
    assert status == 422 and body["field"] == "sessionId", body
    assert body["detail"].startswith("the platform's own session id"), body
    status, body, _ = gateway.request(
        "POST", "/api/v1/todos", {"content": "x", "sessionId": "nope"}
    )
    assert status == 422 and body["field"] == "sessionId", body
    assert not body["detail"].startswith("Value error"), body  # pydantic's prefix, not ours


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "field"),
    [
        ("POST", "/api/v1/todos", {"sessionId": SESSION}, 422, "content"),
        (
            "POST",
            "/api/v1/todos",
            {"content": "x", "sessionId": SESSION, "status": "done"},
            422,
            "status",
        ),
        ("POST", "/api/v1/todos", {"content": "x", "sessionId": "nope"}, 422, "sessionId"),
        (
            "POST",
            "/api/v1/todos",
            {"content": "x", "sessionId": SESSION, "chittyId": "CHITTY-PROJ-1"},
            422,
            "chittyId",
        ),
        (
            "POST",
            "/api/v1/todos",
            {"content": "x", "sessionId": SESSION, "vectorClock": {"a": -1}},
            422,
            "vectorClock",
        ),
        ("POST", "/api/v1/todos", [1, 2], 422, None),
        ("GET", "/api/v1/todos/CHITTY-TODO-NOPE", None, 404, "id"),
        ("GET", "/api/v1/todos/not-an-id", None, 422, "id"),
        ("GET", "/api/v1/todos/CHITTY-PROJ-1", None, 422, "id"),
        ("DELETE", "/api/v1/projects/not-an-id", None, 422, "id"),
        ("GET", "/api/v1/sync/todos/not-an-id/status", None, 422, "entityId"),
        ("GET", "/api/v1/todos?colour=red", None, 400, "colour"),
        ("GET", "/api/v1/todos?limit=0", None, 422, "limit"),
        ("GET", "/api/v1/todos?cursor=abc", None, 422, "cursor"),
        ("GET", "/api/v1/todos?fields=content,colour", None, 422, "fields"),
        ("PUT", "/api/v1/todos/CHITTY-TODO-NOPE", {"content": "x"}, 404, "chittyId"),
    ],
)
def test_bad_input_is_a_4xx_naming_the_field(
    gateway: Gateway, method: str, path: str, body: object, status: int, field: str | None
) -> None:
    got, answer, _ = gateway.request(method, path, body)
    assert got == status, answer
    assert set(answer) == {"error", "detail", "field"}
    assert answer["field"] == field


def test_illegal_transition_is_a_409(gateway: Gateway) -> None:
    todo = create_todo(gateway, status="completed")["entity"]["chittyId"]  # type: ignore[index]
    status, body, _ = gateway.request("PUT", f"/api/v1/todos/{todo}", {"status": "in_progress"})
    assert status == 409 and body["field"] == "status" and "illegal" in body["detail"]


def test_malformed_json_and_oversized_bodies(gateway: Gateway) -> None:
    status, body, _ = gateway.request("POST", "/api/v1/todos", raw=b"{nope")
    assert status == 400 and body["error"] == "bad_json"
    status, body, _ = gateway.request(
        "POST", "/api/v1/todos", raw=b'{"content": "' + b"x" * (2 << 20) + b'"}'
    )
    assert status == 413


def test_a_body_nested_too_deep_is_a_400_naming_the_limit(gateway: Gateway) -> None:
    for depth in (100_000, 200):
        raw = b'{"content": ' + b"[" * depth + b"]" * depth + b', "sessionId": "x"}'
        status, body, _ = gateway.request("POST", "/api/v1/todos", raw=raw)
        assert status == 400 and body["error"] == "too_deep", body
        assert f"{MAX_JSON_DEPTH} levels" in body["detail"], body
    status, body, _ = gateway.request("POST", "/api/v1/sync/broadcast", raw=b"[" * 5000)
    assert status == 400 and body["error"] in ("too_deep", "bad_json"), body


def test_a_lone_surrogate_is_a_422_naming_the_field(gateway: Gateway) -> None:
    raw = b'{"content": "half \\ud800 a pair", "sessionId": "%s"}' % SESSION.encode()
    status, body, _ = gateway.request("POST", "/api/v1/todos", raw=raw)
    assert status == 422 and body["field"] == "content" and "surrogate" in body["detail"], body
    raw = b'{"content": "x", "sessionId": "%s", "tags": ["ok", "\\udfff"]}' % SESSION.encode()
    status, body, _ = gateway.request("POST", "/api/v1/todos", raw=raw)
    assert status == 422 and body["field"] == "tags.1", body
    raw = b'{"content": "x", "sessionId": "%s", "\\ud800": 1}' % SESSION.encode()
    status, body, _ = gateway.request("POST", "/api/v1/todos", raw=raw)
    assert status == 422 and "surrogate" in body["detail"], body
    # A whole pair is a character like any other.
    raw = b'{"content": "a pair \\ud83d\\ude00", "sessionId": "%s"}' % SESSION.encode()
    status, body, _ = gateway.request("POST", "/api/v1/todos", raw=raw)
    assert status == 201 and body["entity"]["content"] == "a pair \U0001f600", body


def test_health_reports_every_actor(gateway: Gateway) -> None:
    status, body, _ = gateway.request("GET", "/health")
    assert status == 200 and body["ready"] is True
    assert {"router", "broker", "catalog", "host-0", "host-1"} <= set(body["actors"])


@pytest.mark.parametrize(
    ("domain", "fields", "change"),
    [
        ("topics", {"title": "Legal Case 12345"}, {"metadata": {"tags": ["legal"]}}),
        ("projects", {"name": "ChittyChronicle"}, {"status": "active"}),
        ("sessions", {"sessionId": "sess-1", "platform": "web"}, {"status": "paused"}),
        ("contexts", {"type": "document"}, {"content": {"summary": "a summary"}}),
        ("repos", {"url": "https://example.invalid/r.git"}, {"workingTree": "dirty"}),
        ("services", {"name": "chittyid"}, {"health": "healthy"}),
    ],
)
def test_every_domain_has_crud_history_and_lists(
    gateway: Gateway, domain: str, fields: dict[str, object], change: dict[str, object]
) -> None:
    status, created, _ = gateway.request("POST", f"/api/v1/{domain}", fields)
    assert status == 201, created
    entity_id = created["entity"]["chittyId"]
    status, read, _ = gateway.request("GET", f"/api/v1/{domain}/{entity_id}")
    assert status == 200 and read["entity"] == created["entity"]
    status, updated, _ = gateway.request("PUT", f"/api/v1/{domain}/{entity_id}", change)
    assert status == 200 and updated["seq"] == 2
    key, value = next(iter(change.items()))
    if isinstance(value, dict):
        inner, wanted = next(iter(value.items()))
        assert updated["entity"][key][inner] == wanted
    else:
        assert updated["entity"][key] == value
    assert len(gateway.request("GET", f"/api/v1/{domain}/{entity_id}/history")[1]["events"]) == 2
    _, listed, _ = gateway.request("GET", f"/api/v1/{domain}?limit=500")
    assert entity_id in {item["entity"]["chittyId"] for item in listed["items"]}
    # A path id of another domain's kind is no id of this one: a 422 naming it.
    status, body, _ = gateway.request("GET", f"/api/v1/{domain}/CHITTY-USER-1")
    assert status == 422 and body["field"] == "id", body
