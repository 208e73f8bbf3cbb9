"""`chitty project|topic|context|repo|service add|list|show|update|delete` against a real hub:
each verb changes (or, dry, does not change) what REST answers; bad input is one line."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import pytest

from tests.transports.cli_runs import cli, json_of, refused, runner, stored
from tests.transports.conftest import Gateway
from tests.transports.test_cli import ids_in, row
from transports.cli import app


@pytest.fixture(autouse=True)
def _isolated(gateway: Gateway, monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    """The admin's credential; a working directory and CLI state of the test's own."""
    monkeypatch.setenv("CHITTY_TOKEN", gateway.token)
    monkeypatch.setenv("CHITTY_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.chdir(tmp_path)


# (group, REST domain, id kind, add arguments, what REST then holds, an update, what it holds)
CASES = [
    (
        "project",
        "projects",
        "PROJ",
        ["Launch", "--description", "ship v1", "--status", "active"],
        {"name": "Launch", "description": "ship v1", "status": "active"},
        ["--name", "Launch v1", "--status", "on-hold"],
        {"name": "Launch v1", "status": "on-hold"},
    ),
    (
        "topic",
        "topics",
        "CONTEXT",
        ["Legal case 12345", "--tag", "law", "--tag", "urgent"],
        {"title": "Legal case 12345", "metadata": {"tags": ["law", "urgent"]}},
        ["--status", "archived", "--tag", "closed-case"],
        {"metadata": {"status": "archived", "tags": ["closed-case"]}},
    ),
    (
        "context",
        "contexts",
        "CONTEXT",
        ["document", "--summary", "the brief", "--key-point", "deadline friday"],
        {"type": "document", "content": {"summary": "the brief", "keyPoints": ["deadline friday"]}},
        ["--summary", "the brief, revised"],
        {"content": {"summary": "the brief, revised"}},
    ),
    (
        "repo",
        "repos",
        "REPO",
        ["https://github.com/chitty/hub"],  # a remote URL alone: nothing local to read
        {"url": "https://github.com/chitty/hub", "path": None, "workingTree": "unknown"},
        ["--url", "https://github.com/chitty/hub.git"],
        {"url": "https://github.com/chitty/hub.git"},
    ),
    (
        "service",
        "services",
        "SERVICE",
        ["api", "--type", "external", "--endpoint", "https://api.example", "--version", "1.2"],
        {
            "name": "api",
            "type": "external",
            "endpoints": [{"url": "https://api.example", "protocol": "https", "name": None}],
            "metadata": {"version": "1.2"},
        },
        ["--health", "degraded", "--set", 'metadata.version="1.3"'],
        {"health": "degraded", "metadata": {"version": "1.3"}},
    ),
]


def holds(found: dict[str, Any], wanted: dict[str, Any]) -> bool:
    """Whether `found` has every value of `wanted` (objects compared key by key)."""
    for key, value in wanted.items():
        if isinstance(value, dict):
            if not isinstance(found.get(key), dict) or not holds(found[key], value):
                return False
        elif found.get(key) != value:
            return False
    return True


@pytest.mark.parametrize(
    ("group", "domain", "kind", "add", "added", "change", "changed"),
    CASES,
    ids=[case[0] for case in CASES],
)
def test_add_list_show_update_delete(
    gateway: Gateway,
    group: str,
    domain: str,
    kind: str,
    add: list[str],
    added: dict[str, Any],
    change: list[str],
    changed: dict[str, Any],
) -> None:
    dry = cli(gateway, group, "add", *add, "--dry-run")
    assert "nothing was sent" in dry and not ids_in(dry, kind)

    made = cli(gateway, group, "add", *add)
    entity_id = ids_in(made, kind)[0]
    time.sleep(0.05)
    before_update = datetime.now(UTC).isoformat()
    time.sleep(0.05)
    assert made.startswith(f"created {group} {entity_id}")
    assert holds(stored(gateway, domain, entity_id), added), stored(gateway, domain, entity_id)

    listed = cli(gateway, group, "list")
    assert entity_id in listed
    as_json = json_of(gateway, group, "list")
    assert entity_id in {e["chittyId"] for e in as_json}

    shown = cli(gateway, group, "show", entity_id)
    assert row(shown, "chittyId") == entity_id and row(shown, "seq") == "1"
    record = json_of(gateway, group, "show", entity_id)
    assert record["entity"] == stored(gateway, domain, entity_id) and record["seq"] == 1

    dry = cli(gateway, group, "update", entity_id, *change, "--dry-run")
    assert "nothing was sent" in dry
    assert stored(gateway, domain, entity_id) == record["entity"]
    updated = json_of(gateway, group, "update", entity_id, *change)
    assert updated["seq"] == 2 and holds(updated["entity"], changed), updated
    assert holds(stored(gateway, domain, entity_id), changed)
    then = cli(gateway, group, "show", entity_id, "--at", before_update)
    assert row(then, "seq") == "1"  # as it was before the update

    assert "would delete" in cli(gateway, group, "delete", entity_id, "--dry-run")
    assert gateway.request("GET", f"/api/v1/{domain}/{entity_id}")[0] == 200
    assert f"deleted {group} {entity_id}" in cli(gateway, group, "delete", entity_id)
    assert gateway.request("GET", f"/api/v1/{domain}/{entity_id}")[0] == 404
    assert entity_id not in cli(gateway, group, "list")


def test_list_filters_by_status(gateway: Gateway) -> None:
    planning = ids_in(cli(gateway, "project", "add", "Still planning"), "PROJ")[0]
    done = ids_in(cli(gateway, "project", "add", "Done", "--status", "completed"), "PROJ")[0]
    listed = cli(gateway, "project", "list", "--status", "completed")
    assert done in listed and planning not in listed


def test_project_add_makes_it_current_here(gateway: Gateway) -> None:
    made = ids_in(cli(gateway, "project", "add", "Here"), "PROJ")[0]
    assert made in cli(gateway, "use")
    other = ids_in(cli(gateway, "project", "add", "Not here", "--no-use"), "PROJ")[0]
    current = cli(gateway, "use")
    assert made in current and other not in current


def test_bad_input_is_one_line_and_changes_nothing(gateway: Gateway) -> None:
    before = gateway.request("GET", "/api/v1/projects?limit=500")[1]
    assert "Invalid value" in refused(gateway, "project", "show", "nope", code=2)
    assert "is a TODO id, expected a PROJ id" in refused(
        gateway, "project", "show", "CHITTY-TODO-1", code=2
    )
    missing = refused(gateway, "project", "show", "CHITTY-PROJ-0NOSUCH")
    assert "404" in missing and "no project CHITTY-PROJ-0NOSUCH" in missing
    status = refused(gateway, "project", "add", "x", "--status", "finished")
    assert "422" in status and "(status)" in status
    dry = refused(gateway, "project", "add", "x", "--status", "finished", "--dry-run")
    assert "status:" in dry and "nothing was sent" not in dry
    project = ids_in(cli(gateway, "project", "add", "target", "--no-use"), "PROJ")[0]
    nothing = refused(gateway, "project", "update", project, code=2)
    assert "nothing to change" in nothing
    assert "PATH=VALUE" in refused(gateway, "project", "update", project, "--set", "x", code=2)
    unknown = refused(gateway, "project", "update", project, "--set", "colour=red")
    assert "colour" in unknown
    after = gateway.request("GET", "/api/v1/projects?limit=500")[1]
    assert len(after["items"]) == len(before["items"]) + 1  # only the target was made


def test_every_group_lists_its_real_verbs() -> None:
    for group in ("project", "topic", "context", "repo", "service"):
        shown = runner.invoke(app, [group, "--help"]).output
        for verb in ("add", "list", "show", "update", "delete"):
            assert f" {verb} " in shown, (group, verb, shown)
