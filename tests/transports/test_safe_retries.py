"""A retried write (same Idempotency-Key) while the host holding its entity restarts answers
like the first, never a 500; a host that stays away is a 503 with Retry-After."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
import ray

from tests.actors.conftest import settings_for
from tests.transports.conftest import SESSION, Gateway


@pytest.fixture
def hub(ray_cluster: None, tmp_path: Path) -> Iterator[Gateway]:
    running = Gateway(settings_for(tmp_path / "data", hosts=2, call_timeout_s=30))
    yield running
    running.close()


def kill_host_of(hub: Gateway, entity_id: str) -> int:
    """SIGKILL the host actor process that holds `entity_id` (Ray restarts it); its old pid."""
    handle = hub.runtime.host_of(entity_id)
    pid = int(ray.get(handle.pid()))
    os.kill(pid, signal.SIGKILL)
    return pid


@pytest.mark.slow
def test_a_retry_during_a_host_restart_answers_like_the_first(hub: Gateway) -> None:
    key = {"Idempotency-Key": "retry-through-a-restart"}
    body = {"content": "written once", "sessionId": SESSION}
    status, first, _ = hub.request("POST", "/api/v1/todos", body, key)
    assert status == 201, first
    todo = first["entity"]["chittyId"]
    put_key = {"Idempotency-Key": "update-through-a-restart"}
    status, updated, _ = hub.request("PUT", f"/api/v1/todos/{todo}", {"activeForm": "x"}, put_key)
    assert status == 200, updated

    old = kill_host_of(hub, todo)
    # Straight after the kill: the gateway's router remembers both outcomes, and answering
    # them reads the entity from its host, which is restarting.
    status, again, headers = hub.request("POST", "/api/v1/todos", body, key)
    assert status == 201, (status, again, headers)
    assert again["entity"] == first["entity"] and again["seq"] == 1
    status, again, _ = hub.request("PUT", f"/api/v1/todos/{todo}", {"activeForm": "x"}, put_key)
    assert status == 200 and again["seq"] == 2 and again["entity"]["activeForm"] == "x", again
    assert int(ray.get(hub.runtime.host_of(todo).pid())) != old  # it did restart
    status, now, _ = hub.request("GET", f"/api/v1/todos/{todo}")
    assert status == 200 and now["seq"] == 2, now


@pytest.mark.slow
def test_a_host_away_longer_than_calls_wait_is_a_503_with_retry_after(
    ray_cluster: None, tmp_path: Path
) -> None:
    hub = Gateway(settings_for(tmp_path / "data", hosts=1, call_timeout_s=0.2))
    try:
        key = {"Idempotency-Key": "retry-later"}
        body = {"content": "written once", "sessionId": SESSION}
        status, first, _ = hub.request("POST", "/api/v1/todos", body, key)
        assert status == 201, first
        todo = first["entity"]["chittyId"]
        kill_host_of(hub, todo)
        answers = [
            hub.request("POST", "/api/v1/todos", body, key),  # remembered: reads the host
            hub.request("GET", f"/api/v1/todos/{todo}"),
            hub.request("PUT", f"/api/v1/todos/{todo}", {"activeForm": "y"}),
        ]
        for status, answer, headers in answers:
            assert status in (503, 201, 200), (status, answer)
            if status == 503:
                assert answer["error"] == "unavailable" and int(headers["Retry-After"]) >= 1
        assert any(status == 503 for status, _, _ in answers), answers
    finally:
        hub.close()
