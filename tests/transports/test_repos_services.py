"""Repos and services for real, on a running hub: git state read from repositories made in
temp dirs, health checked against HTTP services on loopback ports that change while it runs."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hub import __version__
from hub.auth.principal import Role
from hub.auth.signing import signed_headers
from hub.auth.tokens import derive_signing_key
from tests.actors.conftest import settings_for
from tests.gitrepos import commit, repo, with_remote
from tests.servicestub import Service
from tests.transports.cli_runs import cli, stored
from tests.transports.conftest import Gateway
from tests.waiting import until
from transports.client import Change, ChittyClient


@pytest.fixture(scope="module")
def gateway(ray_cluster: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    settings = settings_for(
        tmp_path_factory.mktemp("watched"),
        watch=True,
        repo_interval_s=1,
        health_interval_s=1,
        health_record_s=60,
    )
    running = Gateway(settings)
    yield running
    running.close()


@pytest.fixture(autouse=True)
def _token(gateway: Gateway, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHITTY_TOKEN", gateway.token)  # the CLI's credential


def created(gateway: Gateway, domain: str, fields: dict[str, Any]) -> str:
    status, body, _ = gateway.request("POST", f"/api/v1/{domain}", fields)
    assert status == 201, body
    return str(body["entity"]["chittyId"])


def test_chitty_repo_add_here_then_sync_repos_shows_branch_dirty_and_ahead(
    gateway: Gateway, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, mine, _ = with_remote(tmp_path)
    commit(mine, {"feature.py": "x = 1\n"}, "a feature")
    (mine / "scratch.txt").write_text("not yet\n")
    monkeypatch.chdir(mine)
    added = cli(gateway, "repo", "add")  # the repository in the current directory
    assert "checked now" in added and "dirty (1 untracked)" in added
    assert "origin/main +1 -0" in added
    repo_id = added.split()[2]
    entity = stored(gateway, "repos", repo_id)
    assert entity["path"] == str(mine) and entity["url"] == str(tmp_path / "remote.git")
    assert (entity["branch"], entity["workingTree"]) == ("main", "dirty")
    assert (entity["ahead"], entity["behind"]) == (1, 0)
    assert entity["metadata"]["syncStatus"] == "ahead"
    assert entity["lastCommit"]["subject"] == "a feature"
    synced = cli(gateway, "sync", "repos")
    assert repo_id in synced and "main" in synced and "dirty" in synced
    listed = cli(gateway, "repo", "list")
    assert repo_id in listed and "ahead" in listed


def test_an_edit_reaches_a_websocket_subscriber_within_a_check_interval(
    gateway: Gateway, tmp_path: Path
) -> None:
    path = repo(tmp_path / "r")
    repo_id = created(gateway, "repos", {"path": str(path)})
    until(lambda: stored(gateway, "repos", repo_id)["workingTree"] == "clean")

    async def scenario() -> dict[str, Any]:
        async with (
            ChittyClient(gateway.url, token=gateway.token) as client,
            client.subscribe(["repos"]) as events,
        ):
            (path / "README.md").write_text("edited\n")
            while True:  # a re-check that lands before the edit is seen may still say clean
                event = await asyncio.wait_for(events.__anext__(), 20)
                if not isinstance(event, Change) or event.entity_id != repo_id:
                    continue
                if event.entity["workingTree"] == "dirty":
                    return event.entity

    entity = gateway.call(scenario())
    assert entity["changes"]["modified"] == 1


def test_a_bad_path_and_a_non_repository_are_clear_errors(gateway: Gateway, tmp_path: Path) -> None:
    status, body, _ = gateway.request("POST", "/api/v1/repos", {"branch": "main"})
    assert status == 422 and body["field"].endswith("path"), body
    missing = created(gateway, "repos", {"path": str(tmp_path / "nowhere")})
    plain = tmp_path / "plain"
    plain.mkdir()
    not_repo = created(gateway, "repos", {"path": str(plain)})
    for repo_id, reason in ((missing, "no such directory"), (not_repo, "not a git repository")):
        status, body, _ = gateway.request("POST", f"/api/v1/sync/repos/{repo_id}", {})
        assert status == 200, body
        [checked] = body["checked"]
        assert checked["state"] == "error" and reason in checked["error"]
        assert reason in stored(gateway, "repos", repo_id)["metadata"]["error"]
    shown = cli(gateway, "sync", "repos")
    assert "no such directory" in shown and "not a git repository" in shown
    dry = gateway.request("POST", "/api/v1/sync/repos", {"dryRun": True})[1]
    assert dry["checked"] == []  # a dry run reads nothing


def test_a_service_that_goes_down_is_down_within_two_intervals_and_subscribers_hear_it(
    gateway: Gateway,
) -> None:
    service = Service(version="2.0.0")
    gateway.call(service.start())
    try:
        check = {"url": service.url, "timeoutS": 2, "intervalS": 1}
        service_id = created(gateway, "services", {"name": "api", "check": check})
        until(lambda: stored(gateway, "services", service_id)["health"] == "healthy")
        assert stored(gateway, "services", service_id)["metadata"]["version"] == "2.0.0"

        async def scenario() -> tuple[float, list[str]]:
            heard: list[str] = []
            async with (
                ChittyClient(gateway.url, token=gateway.token) as client,
                client.subscribe(["services"]) as events,
            ):
                service.mode = "failing"
                went = time.monotonic()
                while "down" not in heard:
                    event = await asyncio.wait_for(events.__anext__(), 20)
                    if isinstance(event, Change) and event.entity_id == service_id:
                        heard.append(event.entity["health"])
                return time.monotonic() - went, heard

        took, heard = gateway.call(scenario())
        assert heard[-2:] == ["degraded", "down"], heard
        assert took < 2 * 1.1 + 2 * 0.5 + 1, took  # two intervals, jittered, and the ticks
        entity = stored(gateway, "services", service_id)
        assert entity["metadata"]["error"] == "answered 500, expected 2xx"
        # Every change of health is in the entity's history.
        status, history, _ = gateway.request("GET", f"/api/v1/services/{service_id}/history")
        assert status == 200, history
        written = [e["message"]["payload"]["entity"]["data"] for e in history["events"]]
        healths = [data["health"] for data in written if "health" in data]
        assert healths[-3:] == ["healthy", "degraded", "down"], healths
        # /metrics and `chitty service list` show it.
        status, metrics, _ = gateway.request("GET", "/metrics")
        line = f'chitty_service_health{{health="down",name="api",service="{service_id}"}} 1.0'
        assert line in metrics
        assert f'chitty_service_check_latency_seconds{{name="api",service="{service_id}"}}' in (
            metrics
        )
        listed = cli(gateway, "service", "list")
        assert service_id in listed and "down" in listed and "answered 500" in listed
    finally:
        gateway.call(service.stop())


def test_a_hanging_service_does_not_hold_up_a_sync_of_the_others(gateway: Gateway) -> None:
    hanging, fine = Service(), Service()
    hanging.mode = "hanging"
    gateway.call(hanging.start())
    gateway.call(fine.start())
    try:
        stuck = created(
            gateway, "services", {"name": "stuck", "check": {"url": hanging.url, "timeoutS": 3}}
        )
        ok = created(gateway, "services", {"name": "ok", "check": {"url": fine.url}})
        until(lambda: stored(gateway, "services", ok)["health"] == "healthy", timeout=10)
        assert stored(gateway, "services", stuck)["health"] in ("unknown", "down")
        until(lambda: stored(gateway, "services", stuck)["health"] == "down", timeout=15)
    finally:
        gateway.call(hanging.stop())
        gateway.call(fine.stop())


def test_the_hub_is_a_service_of_its_own(gateway: Gateway) -> None:
    hub_id = gateway.call(gateway.runtime.register_self(gateway.url, __version__))
    status, body, _ = gateway.request("POST", f"/api/v1/sync/services/{hub_id}", {})
    assert status == 200, body
    [checked] = body["checked"]
    assert checked["state"] == "healthy" and checked["name"] == "chittychat-hub"
    entity = stored(gateway, "services", hub_id)
    assert entity["metadata"]["version"] == __version__
    assert entity["check"]["url"] == f"{gateway.url}/health"


def test_a_service_registers_itself_with_a_service_token(gateway: Gateway) -> None:
    fine = Service(version="7.1")
    gateway.call(fine.start())
    try:
        _, token = gateway.tokens.create("billing", Role.SERVICE)
        registration = {"name": "billing", "endpoints": [{"url": fine.url, "protocol": "http"}]}
        raw = json.dumps(registration).encode()
        # A service signs its requests (spec §Security: service tokens).
        signed = signed_headers(derive_signing_key(token), "POST", "/api/v1/services", raw)
        status, body, _ = gateway.request(
            "POST",
            "/api/v1/services",
            headers={"Authorization": f"Bearer {token}", **signed},
            raw=raw,
        )
        assert status == 201, body
        service_id = body["entity"]["chittyId"]
        # No `check`: its first http endpoint is what the hub GETs.
        until(lambda: stored(gateway, "services", service_id)["health"] == "healthy")
        assert stored(gateway, "services", service_id)["metadata"]["version"] == "7.1"
    finally:
        gateway.call(fine.stop())


def test_a_project_lists_its_repos_and_their_states(gateway: Gateway, tmp_path: Path) -> None:
    project = gateway.project("with repos")
    path = repo(tmp_path / "r")
    added = cli(gateway, "repo", "add", str(path), "--project", project)
    repo_id = added.split()[2]
    assert f"added to project {project}" in added
    shown = cli(gateway, "project", "show", project)
    assert "its 1 repos" in shown and repo_id in shown and "clean" in shown
