"""Daily work from the CLI against a real hub: a current project and session per directory,
`todo add` without --session, every todo and session verb, and spec Example 2 reconciled and
drawn as a tree from the command line."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.transports.cli_runs import cli, json_of, refused, runner, stored
from tests.transports.conftest import Gateway
from tests.transports.test_cli import ids_in, row
from tests.transports.test_rest_workflows import FIVE, FIVE_STATUSES, listed
from transports.cli import app


@pytest.fixture(autouse=True)
def _isolated(gateway: Gateway, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The admin's credential; a working directory and CLI state of the test's own."""
    monkeypatch.setenv("CHITTY_TOKEN", gateway.token)
    monkeypatch.setenv("CHITTY_STATE_DIR", str(tmp_path / "state"))
    (tmp_path / "work").mkdir()
    monkeypatch.chdir(tmp_path / "work")


def test_todo_add_without_a_session_says_how_to_get_one(gateway: Gateway) -> None:
    said = refused(gateway, "todo", "add", "Write the docs", code=2)
    assert "which session?" in said and "chitty session start" in said
    assert "chitty use --session" in said


def test_the_first_day_current_project_and_session(gateway: Gateway, tmp_path: Path) -> None:
    """project add -> session start -> todo add/list with no ids: each takes the current one."""
    project = ids_in(cli(gateway, "project", "add", "First day"), "PROJ")[0]
    started = cli(gateway, "session", "start")
    session = ids_in(started, "SESSION")[0]
    assert f"in project {project} (current here" in started
    made = stored(gateway, "sessions", session)
    assert made["projectId"] == project
    assert made["sessionId"] == session  # no platform id given: the hub took the ChittyID

    added = cli(gateway, "todo", "add", "Write the docs", "--priority", "high")
    todo = ids_in(added, "TODO")[0]
    assert f"session {session} (current here" in added
    entity = stored(gateway, "todos", todo)
    assert (entity["sessionId"], entity["projectId"]) == (session, project)
    assert entity["metadata"]["priority"] == "high"

    listing = cli(gateway, "todo", "list")
    assert f"todos of project {project}" in listing and todo in listing
    used = cli(gateway, "use")
    assert project in used and session in used

    # A directory below takes the same; another directory elsewhere does not.
    below = Path.cwd() / "sub"
    below.mkdir()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(below)
        shown = cli(gateway, "use")
        assert project in shown and session in shown and f"current in {below.parent}" in shown
        patch.chdir(elsewhere)
        assert "no current project or session here" in cli(gateway, "use")
        assert "which session?" in refused(gateway, "todo", "add", "x", code=2)


def test_use_sets_checks_and_clears(gateway: Gateway) -> None:
    project = gateway.project("used")
    status, body, _ = gateway.request(
        "POST", "/api/v1/sessions", {"platform": "web", "projectId": project}
    )
    assert status == 201, body
    session = body["entity"]["chittyId"]
    shown = cli(gateway, "use", "--session", session)  # its project comes with it
    assert project in shown and session in shown
    other = gateway.project("other")
    switched = cli(gateway, "use", "--project", other)  # the old project's session goes
    assert other in switched and session not in switched
    missing = refused(gateway, "use", "--project", "CHITTY-PROJ-0NOSUCH")
    assert "404" in missing and other in cli(gateway, "use")  # unchanged
    assert "no current project" in cli(gateway, "use", "--clear")


def test_todo_show_update_done_delete(gateway: Gateway) -> None:
    session = ids_in(cli(gateway, "session", "start", "--platform-id", "my-shell"), "SESSION")[0]
    assert stored(gateway, "sessions", session)["sessionId"] == "my-shell"
    todo = ids_in(cli(gateway, "todo", "add", "Try every verb"), "TODO")[0]
    shown = cli(gateway, "todo", "show", todo)
    assert row(shown, "content") == "Try every verb" and row(shown, "status") == "pending"

    dry = cli(gateway, "todo", "update", todo, "--status", "in_progress", "--dry-run")
    assert 'status: "pending" -> "in_progress"' in dry and "nothing was sent" in dry
    assert stored(gateway, "todos", todo)["status"] == "pending"
    other = ids_in(cli(gateway, "todo", "add", "First this"), "TODO")[0]
    updated = json_of(
        gateway, "todo", "update", todo, "--status", "in_progress", "--depends-on", other
    )
    assert updated["entity"]["status"] == "in_progress"
    assert updated["entity"]["dependencies"] == [other]

    assert "completed" in cli(gateway, "todo", "done", todo)
    assert stored(gateway, "todos", todo)["metadata"]["completedAt"] is not None
    illegal = refused(gateway, "todo", "update", todo, "--status", "blocked")
    assert "409" in illegal and "illegal status transition" in illegal
    dry = refused(gateway, "todo", "update", todo, "--status", "blocked", "--dry-run")
    assert "illegal status transition" in dry and "nothing was sent" not in dry
    bad = refused(gateway, "todo", "update", todo, "--priority", "urgent", "--dry-run")
    assert "metadata.priority" in bad

    assert f"deleted todo {other}" in cli(gateway, "todo", "delete", other)
    assert gateway.request("GET", f"/api/v1/todos/{other}")[0] == 404


def test_session_list_show_update_resume_end(gateway: Gateway) -> None:
    project = ids_in(cli(gateway, "project", "add", "Sessions"), "PROJ")[0]
    first = ids_in(cli(gateway, "session", "start", "--platform", "web"), "SESSION")[0]
    second = ids_in(cli(gateway, "session", "start", "--platform", "claude-code"), "SESSION")[0]
    sessions = cli(gateway, "session", "list")
    assert f"sessions of project {project}" in sessions
    assert first in sessions and second in sessions
    as_json = json_of(gateway, "session", "list")
    assert {s["chittyId"] for s in as_json} == {first, second}

    cli(gateway, "todo", "add", "In the second")
    shown = cli(gateway, "session", "show")  # the current one: the second
    assert row(shown, "chittyId") == second and "its 1 todos" in shown
    assert "In the second" in shown

    assert "paused" in cli(gateway, "session", "update", first, "--status", "paused")
    resumed = cli(gateway, "session", "resume", first)
    assert row(resumed, "status") == "active"
    assert "ended" in cli(gateway, "session", "end")  # the current one
    assert stored(gateway, "sessions", second)["status"] == "ended"
    assert "'ended' is final" in refused(gateway, "session", "resume", second)


def test_example_2_reconciled_and_drawn_from_the_cli(gateway: Gateway) -> None:
    """Spec Example 2 typed by a user: three sessions in one project, a duplicate; `todo mesh`
    shows what reconciling would do, `todo reconcile` does it, a rerun writes nothing."""
    project = ids_in(cli(gateway, "project", "add", "Example 2"), "PROJ")[0]
    plan = {
        "A": [("Todo 1", "pending"), ("Todo 2", "in_progress")],
        "B": [("todo 2!", "completed"), ("Todo 3", "pending")],
        "C": [("Todo 4", "in_progress"), ("Todo 5", "pending")],
    }
    sessions = {}
    for name, todos in plan.items():
        sessions[name] = ids_in(cli(gateway, "session", "start", "--platform", "cli"), "SESSION")[0]
        for content, status in todos:
            cli(gateway, "todo", "add", content, "--status", status)
    five = ids_in(cli(gateway, "todo", "list"), "TODO")
    todo_3 = next(t for t in five if stored(gateway, "todos", t)["content"] == "Todo 3")
    todo_4 = next(t for t in five if stored(gateway, "todos", t)["content"] == "Todo 4")
    cli(gateway, "todo", "update", todo_4, "--depends-on", todo_3)

    drawn = cli(gateway, "todo", "mesh")
    assert f"project {project}: 5 todos, 1 dependencies" in drawn
    assert "differs: `chitty todo reconcile`" in drawn
    lines = drawn.splitlines()
    parent = next(i for i, line in enumerate(lines) if todo_3 in line)
    child = next(i for i, line in enumerate(lines) if todo_4 in line)
    assert child == parent + 1 and _depth(lines[child]) > _depth(lines[parent])
    assert "in 2 sessions" in next(line for line in lines if "Todo 2" in line)

    dry = cli(gateway, "todo", "reconcile", "--dry-run")
    assert "dry run: nothing was written" in dry
    assert listed(gateway, sessions["C"]) == [("Todo 4", "in_progress"), ("Todo 5", "pending")]
    done = cli(gateway, "todo", "reconcile")
    assert "in 3 sessions" in done and "todo write(s) made" in done
    for session in sessions.values():
        assert listed(gateway, session) == list(zip(FIVE, FIVE_STATUSES, strict=True))
    again = json_of(gateway, "todo", "reconcile")
    assert again["writes"] == [] and len(again["nodes"]) == 5
    assert "agrees with it" in cli(gateway, "todo", "mesh")
    mesh = json_of(gateway, "todo", "mesh", "--project", project)
    assert mesh["reconciled"] is True and {"from": todo_3, "to": todo_4} in mesh["edges"]


def _depth(line: str) -> int:
    """How far a tree line is indented (the column its label starts at)."""
    found = re.search(r"[A-Za-z]", line)
    assert found, line
    return found.start()


def test_todo_help_lists_the_real_verbs() -> None:
    shown = runner.invoke(app, ["todo", "--help"]).output
    for verb in ("add", "list", "show", "update", "done", "delete", "reconcile", "mesh"):
        assert f" {verb} " in shown, (verb, shown)
    assert "complete," not in shown  # the verb is `done`
    session = runner.invoke(app, ["session", "--help"]).output
    for verb in ("start", "list", "show", "update", "resume", "end"):
        assert f" {verb} " in session, (verb, session)
