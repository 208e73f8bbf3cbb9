"""The OpenAPI document: valid 3.1, one operation per route, ChatGPT-Action-ready, honest shapes."""

from __future__ import annotations

import json
from typing import Any

import pytest
from openapi_schema_validator import OAS31Validator
from openapi_spec_validator import validate

from tests.transports.conftest import Gateway
from transports.gateway.openapi import MAX_DESCRIPTION, WEBSOCKET_PATHS

Document = dict[str, Any]
SESSION = "CHITTY-SESSION-1"


@pytest.fixture(scope="module")
def document(gateway: Gateway) -> Document:
    status, body, headers = gateway.request("GET", "/api/v1/openapi.json")
    assert status == 200 and headers["Content-Type"].startswith("application/json")
    return body  # type: ignore[no-any-return]


def operations(document: Document) -> list[Document]:
    return [op for item in document["paths"].values() for op in item.values()]


def schema(document: Document, name: str) -> Document:
    found: Document = document["components"]["schemas"][name]
    return found


def check(document: Document, template: str, method: str, status: int, body: object) -> None:
    """`body` is valid against what the document says `method template` answers with `status`."""
    response = document["paths"][template][method]["responses"][str(status)]
    if "$ref" in response:
        response = document["components"]["responses"][response["$ref"].rsplit("/", 1)[1]]
    wanted = response["content"]["application/json"]["schema"]
    OAS31Validator({**wanted, "components": document["components"]}).validate(body)


def test_the_document_is_valid_openapi_3_1(document: Document) -> None:
    validate(document)
    assert document["openapi"] == "3.1.0"


def test_the_document_and_the_start_page_need_no_token(gateway: Gateway) -> None:
    """A Swagger viewer or a ChatGPT Action import reads the document without a credential;
    `/` points a newcomer at it; the data stays behind a token."""
    import urllib.error
    import urllib.request

    with urllib.request.urlopen(f"{gateway.url}/api/v1/openapi.json", timeout=30) as answer:
        document = json.loads(answer.read())
    assert document["openapi"] == "3.1.0"
    for path in ("/api/v1/openapi.json", "/health", "/"):
        assert document["paths"][path]["get"]["security"] == [], path
    with urllib.request.urlopen(f"{gateway.url}/", timeout=30) as answer:
        assert answer.headers["Content-Type"].startswith("text/html")
        page = answer.read().decode()
    assert 'href="/api/v1/openapi.json"' in page and "chitty --help" in page
    assert "README" in page and "/api/v1" in page
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(f"{gateway.url}/api/v1/todos", timeout=30)
    assert refused.value.code == 401


def test_servers_is_the_requests_own_base_url(gateway: Gateway, document: Document) -> None:
    assert document["servers"] == [{"url": gateway.url}]


def test_every_route_has_exactly_one_operation_named_after_it(
    gateway: Gateway, document: Document
) -> None:
    routes = 0
    for resource in gateway.app.router.resources():
        for route in resource:
            if route.method in ("HEAD", "*"):
                continue
            if resource.canonical in WEBSOCKET_PATHS:
                assert resource.canonical in document["x-websocket"]
                continue
            routes += 1
            operation = document["paths"].get(resource.canonical, {}).get(route.method.lower())
            assert operation is not None, f"no operation for {route.method} {resource.canonical}"
            assert operation["operationId"] == route.name
    assert routes == len(operations(document))


def test_operation_ids_are_unique_and_descriptions_fit_a_chatgpt_action(
    document: Document,
) -> None:
    ids = [op["operationId"] for op in operations(document)]
    assert len(ids) == len(set(ids))
    for op in operations(document):
        assert op["operationId"].replace("_", "").isalnum() and op["operationId"].islower()
        assert 0 < len(op["description"]) <= MAX_DESCRIPTION, op["operationId"]


def test_the_todo_create_body_requires_content_and_session_id_in_camel_case(
    document: Document,
) -> None:
    body = document["paths"]["/api/v1/todos"]["post"]["requestBody"]["content"]
    assert body["application/json"]["schema"] == {"$ref": "#/components/schemas/TodoCreate"}
    create = schema(document, "TodoCreate")
    assert set(create["required"]) == {"content", "sessionId"}
    assert {"activeForm", "sessionId", "vectorClock"} <= set(create["properties"])
    assert not any("_" in name for name in create["properties"])
    assert "required" not in schema(document, "TodoUpdate")


def test_a_session_create_may_leave_out_the_platform_s_own_session_id(
    document: Document,
) -> None:
    create = schema(document, "SessionCreate")
    assert create["required"] == ["platform"]
    described = create["properties"]["sessionId"]["description"]
    assert described.startswith("The platform's own session id") and "chittyId" in described
    assert "sessionId" in schema(document, "Session")["required"]  # an answer always has it


def test_list_and_temporal_reads_document_their_query_parameters(document: Document) -> None:
    listed = {p["name"] for p in document["paths"]["/api/v1/todos"]["get"]["parameters"]}
    assert {"projectId", "sessionId", "topicId", "status", "assignee", "cursor", "limit"} <= listed
    read = document["paths"]["/api/v1/todos/{id}"]["get"]["parameters"]
    assert {(p["name"], p["in"]) for p in read} == {("id", "path"), ("at", "query")}


def test_every_error_response_is_the_shared_error_schema(document: Document) -> None:
    assert set(schema(document, "Error")["required"]) == {"error", "detail", "field"}
    shared = document["components"]["responses"]
    for op in operations(document):
        errors = {s: r for s, r in op["responses"].items() if int(s) >= 400}
        public = ("health", "index", "metrics", "openapi", "openapi_actions", "privacy")
        assert errors or op["operationId"] in public
        for status, response in errors.items():
            if (op["operationId"], status) == ("health", "503"):
                continue  # degraded: the health report itself
            if op["operationId"] in ("signin", "signin_oidc_callback"):
                continue  # the sign-in page again, saying what was wrong
            name = response["$ref"].rsplit("/", 1)[1]
            content = shared[name]["content"]["application/json"]
            assert content["schema"] == {"$ref": "#/components/schemas/Error"}


def test_the_vector_clock_is_an_object_of_non_negative_counters(document: Document) -> None:
    clock = schema(document, "VectorClock")
    assert clock["type"] == "object"
    assert clock["additionalProperties"] == {"type": "integer", "minimum": 0}


def test_live_answers_match_their_documented_schemas(gateway: Gateway, document: Document) -> None:
    todos, one = "/api/v1/todos", "/api/v1/todos/{id}"
    status, created, _ = gateway.request("POST", todos, {"content": "a", "sessionId": SESSION})
    check(document, todos, "post", status, created)
    todo = created["entity"]["chittyId"]
    answers = [
        (one, "get", gateway.request("GET", f"{todos}/{todo}")),
        (one, "put", gateway.request("PUT", f"{todos}/{todo}", {"status": "in_progress"})),
        (todos, "get", gateway.request("GET", f"{todos}?sessionId={SESSION}")),
        (one + "/history", "get", gateway.request("GET", f"{todos}/{todo}/history")),
        ("/api/v1/sync/conflicts", "get", gateway.request("GET", "/api/v1/sync/conflicts")),
        (
            "/api/v1/sync/{domain}/{entityId}/status",
            "get",
            gateway.request("GET", f"/api/v1/sync/todos/{todo}/status"),
        ),
        ("/api/v1/sync/{domain}", "post", gateway.request("POST", "/api/v1/sync/todos", {})),
        ("/health", "get", gateway.request("GET", "/health")),
        (one, "delete", gateway.request("DELETE", f"{todos}/{todo}")),
        (one, "get", gateway.request("GET", f"{todos}/{todo}")),  # a 404 now
        (todos, "post", gateway.request("POST", todos, {"sessionId": SESSION})),  # a 422
    ]
    for template, method, (status, body, _) in answers:
        check(document, template, method, status, body)
    assert [a[2][0] for a in answers][-2:] == [404, 422]


def test_every_operation_but_the_public_ones_needs_a_bearer_credential(document: Document) -> None:
    scheme = document["components"]["securitySchemes"]["bearerAuth"]
    assert (scheme["type"], scheme["scheme"]) == ("http", "bearer")
    for header in ("X-Chitty-Timestamp", "X-Chitty-Nonce", "X-Chitty-Signature"):
        assert header in scheme["description"]  # how services sign
    assert document["security"] == [{"bearerAuth": []}]
    shared = document["components"]["responses"]
    assert shared["Unauthenticated"]["headers"]["WWW-Authenticate"]["required"] is True
    assert shared["TooManyRequests"]["headers"]["Retry-After"]["schema"]["type"] == "integer"
    for template, item in document["paths"].items():
        for op in item.values():
            public = ("/", "/health", "/api/v1/openapi.json", "/api/v1/openapi.actions.json")
            if template in (*public, "/privacy"):  # they hold no data
                assert op["security"] == []
                assert not {"401", "429"} & set(op["responses"])
                continue
            if template.startswith(("/signin", "/signout", "/static/")):
                assert op["security"] == [] and "429" not in op["responses"]  # the web UI's own
                continue
            if template.startswith("/adapters/"):  # a service's webhook: its own signature
                assert op["security"] == [] and "401" in op["responses"], op["operationId"]
                continue
            assert "security" not in op, op["operationId"]  # the global requirement
            assert {"401", "429"} <= set(op["responses"]), op["operationId"]
            if "requestBody" in op:
                assert "413" in op["responses"], op["operationId"]


def test_scoped_writes_document_403(document: Document) -> None:
    for template, method in [
        ("/api/v1/todos", "post"),
        ("/api/v1/todos/{id}", "put"),
        ("/api/v1/todos/{id}", "delete"),
        ("/api/v1/sync/broadcast", "post"),
        ("/api/v1/sync/conflicts/{id}/resolve", "post"),
        ("/api/v1/todos/reconcile", "post"),
    ]:
        assert "403" in document["paths"][template][method]["responses"], (template, method)
    # a denied read is a 404, never a 403
    assert "403" not in document["paths"]["/api/v1/todos/{id}"]["get"]["responses"]


def test_every_domain_model_has_its_creator_and_shares(document: Document) -> None:
    for model in ("Topic", "Project", "Session", "Todo", "Context", "Repo", "Service"):
        properties = schema(document, model)["properties"]
        assert properties["createdBy"]["readOnly"] is True
        assert properties["sharedWith"]["type"] == "array"
        assert "createdBy" not in schema(document, f"{model}Create")["properties"]
        assert "createdBy" not in schema(document, f"{model}Update")["properties"]
        assert "sharedWith" in schema(document, f"{model}Create")["properties"]


def test_chitty_ids_carry_their_pattern(document: Document) -> None:
    todo = schema(document, "Todo")["properties"]
    assert todo["chittyId"]["pattern"] == "^CHITTY-TODO-[0-9A-Za-z]{1,64}$"
    assert todo["sessionId"]["pattern"] == "^CHITTY-SESSION-[0-9A-Za-z]{1,64}$"
    read = document["paths"]["/api/v1/todos/{id}"]["get"]["parameters"]
    [path] = [p for p in read if p["in"] == "path"]
    assert path["schema"]["pattern"] == todo["chittyId"]["pattern"]


def test_live_auth_answers_match_their_documented_schemas(
    gateway: Gateway, document: Document
) -> None:
    status, body, headers = gateway.request(
        "GET", "/api/v1/todos", headers={"Authorization": "Bearer chitty_not-a-token"}
    )
    assert status == 401 and headers["WWW-Authenticate"].startswith("Bearer")
    check(document, "/api/v1/todos", "get", status, body)
    status, body, _ = gateway.request("GET", "/api/v1/auth/me")
    check(document, "/api/v1/auth/me", "get", status, body)
    status, body, _ = gateway.request("GET", f"/api/v1/principals/{body['chittyId']}/export")
    check(document, "/api/v1/principals/{id}/export", "get", status, body)
