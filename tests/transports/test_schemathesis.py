"""Schemathesis against the live gateway's own OpenAPI document, with an admin token: no 5xx
on any operation, and every answer is documented (status, content type, headers, body).

Each product bug schemathesis found has a test of its own below (all fixed), so none comes
back unnoticed.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from typing import Any

import aiohttp
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode, checks
from schemathesis.core.result import Ok
from schemathesis.errors import FailureGroup

from hub.auth.principal import Role
from tests.actors.conftest import settings_for
from tests.transports.conftest import Gateway
from tests.transports.test_openapi import Document
from tests.transports.test_openapi import check as conforms

# What "conforms" means here; the data-acceptance checks (positive_data_acceptance,
# negative_data_rejection) judge business rules and lax parsing, not the document.
CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_headers_conformance,
    checks.response_schema_conformance,
    checks.ignored_auth,  # the document says bearerAuth: without it, a 401
]


@pytest.fixture(scope="module")
def gateway(ray_cluster: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    """The shared gateway, but a message naming causal predecessors that never come waits
    0.2 s, not 5 s: generated broadcasts name random ones."""
    running = Gateway(settings_for(tmp_path_factory.mktemp("gateway"), causality_wait_s=0.2))
    yield running
    running.close()


@pytest.fixture(scope="module")
def api(gateway: Gateway) -> schemathesis.BaseSchema:
    auth = {"Authorization": f"Bearer {gateway.token}"}
    loaded = schemathesis.openapi.from_url(f"{gateway.url}/api/v1/openapi.json", headers=auth)
    loaded.config.update(request_timeout=30)
    # The coverage phase's boundary cases run unbounded by max_examples: off, for time.
    loaded.config.phases.coverage.enabled = False

    class AdminToken:
        """The admin token as an explicit credential: `ignored_auth` then also sends each
        successful request without it and with a bad one, and wants a 401 for both."""

        def get(self, case: schemathesis.Case, ctx: schemathesis.AuthContext) -> str:
            return gateway.token

        def set(self, case: schemathesis.Case, token: str, ctx: schemathesis.AuthContext) -> None:
            case.headers = {**(case.headers or {}), "Authorization": f"Bearer {token}"}

    loaded.auth.auth()(AdminToken)
    return loaded


# The Hypothesis settings of each operation's run. Every operation is driven by plain
# `@given` below, not by schemathesis's pytest integration, which reaches into pytest's
# internals and breaks on new pytest releases.
FUZZ = settings(
    max_examples=10,
    deadline=None,
    # The same cases every run: a red CI run is a regression, not a lucky draw.
    derandomize=True,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
        HealthCheck.data_too_large,
    ],
)


def test_every_operation_answers_as_documented(api: schemathesis.BaseSchema) -> None:
    """Each operation in turn, with cases valid and invalid for the document; every operation
    that fails is named with what schemathesis found, not only the first."""
    # Erasure rewrites every id the erased one is a prefix of (pinned below): fuzzing it would
    # corrupt what the other operations read.
    schema = api.exclude(operation_id="erase_principal")
    failures: list[str] = []
    fuzzed = 0
    for result in schema.get_all_operations():
        if not isinstance(result, Ok):
            error = result.err()
            failures.append(f"{error.label}: the document's definition is invalid: {error}")
            continue
        operation = result.ok()
        fuzzed += 1
        cases = st.one_of([operation.as_strategy(generation_mode=mode) for mode in GenerationMode])

        @FUZZ
        @given(case=cases)
        def answers_as_documented(case: schemathesis.Case) -> None:
            case.call_and_validate(checks=CHECKS)

        try:
            answers_as_documented()
        except (Exception, BaseExceptionGroup) as failure:  # a FailureGroup is no Exception
            failures.append(f"{operation.label}: {_described(failure)}")
    assert fuzzed > 1, f"only {fuzzed} operation(s) in the document"
    assert not failures, f"{len(failures)} of {fuzzed} operations failed:\n\n" + "\n\n".join(
        failures
    )


def _described(failure: BaseException) -> str:
    """What a failed run raised, with Hypothesis's notes (the falsifying case) and, when it
    found several distinct failures, each of them."""
    if isinstance(failure, FailureGroup):  # its message is schemathesis's full report
        text = failure.message
    elif isinstance(failure, BaseExceptionGroup):
        parts = [_described(inner) for inner in failure.exceptions]
        text = "\n".join([failure.message, *parts])
    else:
        text = f"{type(failure).__name__}: {failure}"
    return "\n".join([text, *getattr(failure, "__notes__", [])])


# -- the document, checked by hand where a fuzzer is slow to get ------------------------------


@pytest.fixture(scope="module")
def document(gateway: Gateway) -> Document:
    status, body, _ = gateway.request("GET", "/api/v1/openapi.json")
    assert status == 200
    return body  # type: ignore[no-any-return]


def test_over_the_rate_limit_is_a_documented_429_with_retry_after(
    gateway: Gateway, document: Document
) -> None:
    _, token = gateway.tokens.create("greedy", Role.ADMIN)  # a principal of its own
    path = "/api/v1/todos/mesh"  # no projectId: a 422 that asks nothing of the hub

    async def burst() -> list[tuple[int, Any, dict[str, str]]]:
        headers = {"Authorization": f"Bearer {token}"}
        connector = aiohttp.TCPConnector(limit=0)
        async with aiohttp.ClientSession(gateway.url, headers=headers, connector=connector) as s:

            async def one() -> tuple[int, Any, dict[str, str]]:
                async with s.get(path) as response:
                    return response.status, await response.json(), dict(response.headers)

            many = 2 * gateway.settings.rate_burst + 100
            return await asyncio.gather(*(one() for _ in range(many)))

    answers = gateway.call(burst())
    limited = [answer for answer in answers if answer[0] == 429]
    assert limited, "never rate limited"
    assert {status for status, _, _ in answers} == {422, 429}
    for status, body, headers in limited:
        assert int(headers["Retry-After"]) >= 1
        conforms(document, path, "get", status, body)


# -- product bugs schemathesis found, each fixed and kept fixed -----------------------------

TODO = "/api/v1/todos/{id}"


def test_a_retried_refused_write_repeats_the_refusal(gateway: Gateway, document: Document) -> None:
    key = {"Idempotency-Key": uuid.uuid4().hex}
    path = "/api/v1/todos/CHITTY-TODO-0NEVERCREATED"
    first = gateway.request("PUT", path, {"content": "x"}, headers=key)
    again = gateway.request("PUT", path, {"content": "x"}, headers=key)
    assert first[0] == 404
    assert again[0] == 404, again[:2]
    conforms(document, TODO, "put", again[0], again[1])


def test_an_idempotency_key_belongs_to_one_operation(gateway: Gateway, document: Document) -> None:
    key = {"Idempotency-Key": uuid.uuid4().hex}
    _, context, _ = gateway.request("POST", "/api/v1/contexts", {"type": "system"}, headers=key)
    status, body, _ = gateway.request("POST", "/api/v1/topics", {"title": "t"}, headers=key)
    assert status == 201, (status, body)  # a write of its own, not the context's answer
    conforms(document, "/api/v1/topics", "post", status, body)
    assert body["entity"]["title"] == "t"
    assert body["entity"]["chittyId"] != context["entity"]["chittyId"]


def test_an_idempotency_key_never_answers_another_principals_entity(gateway: Gateway) -> None:
    key = uuid.uuid4().hex
    status, private, _ = gateway.request(
        "POST", "/api/v1/projects", {"name": "private"}, headers={"Idempotency-Key": key}
    )
    assert status == 201
    _, member = gateway.tokens.create("member", Role.MEMBER)
    as_member = {"Idempotency-Key": key, "Authorization": f"Bearer {member}"}
    status, body, _ = gateway.request("POST", "/api/v1/projects", {"name": "mine"}, as_member)
    leaked = status < 300 and body["entity"]["chittyId"] == private["entity"]["chittyId"]
    assert not leaked, "a member was answered the admin's private project"


def test_a_405_names_the_allowed_methods(gateway: Gateway) -> None:
    status, _, headers = gateway.request("TRACE", "/api/v1/todos")
    assert status == 405
    assert {m.strip() for m in headers["Allow"].split(",")} >= {"GET", "POST"}


def test_include_deleted_must_be_a_boolean(gateway: Gateway, document: Document) -> None:
    status, body, _ = gateway.request("GET", "/api/v1/todos?includeDeleted=maybe")
    assert status == 422, (status, body)
    assert body["field"] == "includeDeleted"
    conforms(document, "/api/v1/todos", "get", status, body)


def test_a_vector_clock_counter_past_64_bits_is_a_422(gateway: Gateway) -> None:
    body = {"content": "c", "sessionId": "CHITTY-SESSION-1", "vectorClock": {"n": 2**63}}
    status, answer, _ = gateway.request("POST", "/api/v1/todos", body)
    assert status == 422, (status, answer)
    assert answer["field"] == "vectorClock"
    # Past what any stored integer can hold, anywhere in a body: refused as it is parsed.
    body = {"content": "c", "sessionId": "CHITTY-SESSION-1", "vectorClock": {"n": 2**70}}
    status, answer, _ = gateway.request("POST", "/api/v1/todos", body)
    assert status == 400 and "64-bit" in answer["detail"], (status, answer)


def test_erasing_a_principal_leaves_ids_it_is_a_prefix_of_alone(gateway: Gateway) -> None:
    status, created, _ = gateway.request("POST", "/api/v1/services", {"name": "s"})
    assert status == 201
    service = created["entity"]["chittyId"]  # CHITTY-SERVICE-<26 characters>
    prefix = service[: len("CHITTY-SERVICE-") + 1]
    status, answer, _ = gateway.request("DELETE", f"/api/v1/principals/{prefix}")
    assert status == 404, (status, answer)  # no one has that id: nothing to erase
    status, after, _ = gateway.request("GET", f"/api/v1/services/{service}")
    assert status == 200 and after["entity"]["chittyId"] == service


def test_a_session_s_own_platform_id_is_never_looked_up_as_a_parent(gateway: Gateway) -> None:
    """A session's `sessionId` is the platform's free text (a NUL included): exporting its
    participant must not treat it as the id of an entity to read."""
    participant = "CHITTY-USER-0NULSESSION"
    fields = {"sessionId": "a\x00b", "platform": "cli", "participants": [participant]}
    status, body, _ = gateway.request("POST", "/api/v1/sessions", fields)
    assert status == 201, body
    status, body, _ = gateway.request("GET", f"/api/v1/principals/{participant}/export")
    assert status == 200, body
    assert [e["entity"]["sessionId"] for e in body["entities"]] == ["a\x00b"]
