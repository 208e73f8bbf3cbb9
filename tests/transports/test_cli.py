"""The `chitty` command line: clear errors without tracebacks; the demo runs."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from tests.transports.conftest import SESSION, Gateway
from tests.transports.test_rest_workflows import FIVE, FIVE_STATUSES, example_2, listed
from transports.cli import app

runner = CliRunner(env={"COLUMNS": "250"})  # wide enough that tables never fold an id


@pytest.fixture(autouse=True)
def _token(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI reads its credential from CHITTY_TOKEN; tests with a hub use the admin's."""
    if "gateway" in request.fixturenames:
        monkeypatch.setenv("CHITTY_TOKEN", request.getfixturevalue("gateway").token)


def test_a_bad_setting_is_a_clear_error_without_a_traceback() -> None:
    result = runner.invoke(app, ["up", "--hosts", "0"])
    assert result.exit_code == 2
    assert "setting 'hosts'" in result.output
    assert "Traceback" not in result.output


def test_demo_shows_example_2_and_a_conflict() -> None:
    result = runner.invoke(app, ["demo"])
    assert result.exit_code == 0, result.output
    assert "Todo 2: write the sync engine" in result.output
    assert "completed" in result.output and "A+B" in result.output
    assert "CHITTY-CONFLICT-" in result.output


def test_sync_prints_a_report_per_target(gateway: Gateway) -> None:
    result = runner.invoke(
        app, ["sync", "todos", "--platform", "web,cli", "--channel", "slack", "--hub", gateway.url]
    )
    assert result.exit_code == 0, result.output
    # Nothing subscribes to this hub now: no target is claimed live.
    assert "not_connected" in result.output and "live" not in result.output
    assert "chitty sync <domain> --watch" in result.output  # what would connect the CLI
    dry = runner.invoke(
        app, ["sync", "all", "--model", "claude", "--dry-run", "--hub", gateway.url]
    )
    assert dry.exit_code == 0 and "not_connected" in dry.output and "dry run" in dry.output


def test_sync_todos_of_a_project_reconciles_and_prints_the_mesh(gateway: Gateway) -> None:
    project, sessions = example_2(gateway)
    dry = cli(gateway, "sync", "todos", "--project", project, "--dry-run")
    assert "would be made (dry run: nothing was written)" in dry
    assert listed(gateway, sessions["C"]) == [("Todo 4", "in_progress"), ("Todo 5", "pending")]
    done = cli(gateway, "sync", "todos", "--project", project)
    table = {
        line.split("│")[2].strip(): line for line in done.splitlines() if "CHITTY-TODO-" in line
    }
    assert sorted(table) == FIVE
    todo_2 = table["Todo 2"]
    assert "completed" in todo_2 and sessions["A"] in todo_2 and sessions["B"] in todo_2
    assert len(ids_in(todo_2, "TODO")) == 2  # its own id and the duplicate merged from
    assert "in 3 sessions" in done
    for sid in sessions.values():
        assert listed(gateway, sid) == list(zip(FIVE, FIVE_STATUSES, strict=True))
    again = cli(gateway, "sync", "todos", "--project", project)
    assert "0 todo write(s) made" in again
    resumed = cli(gateway, "session", "resume", sessions["C"])  # a session lists its todos
    assert "its 5 todos" in resumed
    assert all(content in resumed for content in ["Todo 1", "Todo 3", "Todo 5"])


def test_sync_errors_are_one_clear_line(gateway: Gateway) -> None:
    unknown = runner.invoke(app, ["sync", "todos", "--channel", "fax", "--hub", gateway.url])
    assert unknown.exit_code == 1
    assert "unknown channel 'fax'" in unknown.output and "Traceback" not in unknown.output
    away = runner.invoke(app, ["sync", "todos", "--hub", "http://127.0.0.1:9"])
    assert away.exit_code == 1
    assert "no hub answers" in away.output and "chitty up" in away.output
    assert "Traceback" not in away.output


def cli(gateway: Gateway, *args: str) -> str:
    result = runner.invoke(app, [*args, "--hub", gateway.url])
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    return result.output


def row(output: str, field: str) -> str:
    """The value of `field` in a table of one entity's fields (`chitty ... show`)."""
    for line in output.splitlines():
        cells = [c.strip() for c in line.strip("│┃ ").split("│")]
        if len(cells) == 2 and cells[0] == field:
            return cells[1]
    raise AssertionError(f"no {field} row in:\n{output}")


def ids_in(output: str, kind: str) -> list[str]:
    import re

    return re.findall(rf"CHITTY-{kind}-[0-9A-Z]+", output)


def test_todo_add_list_done_and_dry_runs_change_nothing(gateway: Gateway) -> None:
    session = ids_in(cli(gateway, "session", "start", "--platform", "claude-code"), "SESSION")[0]
    dry = cli(gateway, "todo", "add", "Try the CLI", "--session", session, "--dry-run")
    assert "nothing was sent" in dry
    assert "Try the CLI" not in cli(gateway, "todo", "list", "--session", session)
    todo = ids_in(cli(gateway, "todo", "add", "Try the CLI", "--session", session), "TODO")[0]
    listed = cli(gateway, "todo", "list", "--session", session)
    assert todo in listed and "Try the CLI" in listed and "pending" in listed
    assert "nothing was sent" in cli(gateway, "todo", "done", todo, "--dry-run")
    assert gateway.request("GET", f"/api/v1/todos/{todo}")[1]["entity"]["status"] == "pending"
    assert "completed" in cli(gateway, "todo", "done", todo)
    assert gateway.request("GET", f"/api/v1/todos/{todo}")[1]["entity"]["status"] == "completed"
    bad = runner.invoke(app, ["todo", "add", "x", "--session", "nope", "--hub", gateway.url])
    assert bad.exit_code == 2 and "Traceback" not in bad.output, bad.output
    assert "'--session': 'nope' is not a ChittyID" in bad.output
    assert "Value error" not in bad.output  # pydantic's prefix, not a sentence of ours
    absent = "CHITTY-SESSION-0NOSUCHSESSION"
    gone = runner.invoke(app, ["todo", "add", "x", "--session", absent, "--hub", gateway.url])
    assert gone.exit_code == 1 and f"no session {absent}" in gone.output, gone.output
    assert "(sessionId)" in gone.output and "Value error" not in gone.output


def test_session_start_resume_end(gateway: Gateway) -> None:
    session = ids_in(cli(gateway, "session", "start"), "SESSION")[0]
    gateway.request("PUT", f"/api/v1/sessions/{session}", {"status": "paused"})
    assert "nothing was sent" in cli(gateway, "session", "resume", session, "--dry-run")
    assert gateway.request("GET", f"/api/v1/sessions/{session}")[1]["entity"]["status"] == "paused"
    assert "active" in cli(gateway, "session", "resume", session)
    assert "ended" in cli(gateway, "session", "end", session)
    again = runner.invoke(app, ["session", "resume", session, "--hub", gateway.url])
    assert again.exit_code == 1 and "'ended' is final" in again.output


def test_conflicts_list_and_resolve(gateway: Gateway) -> None:
    _, created, _ = gateway.request(
        "POST", "/api/v1/todos", {"content": "cli conflict", "sessionId": SESSION}
    )
    todo = created["entity"]["chittyId"]
    gateway.request(
        "PUT",
        f"/api/v1/todos/{todo}",
        {"status": "completed", "vectorClock": {"api": 1, "p": 1}},
        {"X-Chitty-Node": "p"},
    )
    gateway.request(
        "PUT",
        f"/api/v1/todos/{todo}",
        {"status": "blocked", "vectorClock": {"api": 1, "w": 1}},
        {"X-Chitty-Node": "w"},
    )
    listed = cli(gateway, "conflicts", "list")
    conflict = next(c for c in ids_in(listed, "CONFLICT"))
    assert todo in listed
    assert "nothing was sent" in cli(
        gateway, "conflicts", "resolve", conflict, "completed", "--dry-run"
    )
    assert gateway.request("GET", f"/api/v1/todos/{todo}")[1]["conflicts"]
    assert "resolved" in cli(gateway, "conflicts", "resolve", conflict, '"completed"')
    assert gateway.request("GET", f"/api/v1/todos/{todo}")[1]["conflicts"] == []


def test_conflicts_accept_the_suggestion(gateway: Gateway) -> None:
    _, created, _ = gateway.request(
        "POST", "/api/v1/todos", {"content": "cli suggestion", "sessionId": SESSION}
    )
    todo = created["entity"]["chittyId"]
    for node, status in (("p", "in_progress"), ("w", "blocked")):
        gateway.request(
            "PUT",
            f"/api/v1/todos/{todo}",
            {"status": status, "vectorClock": {"api": 1, node: 1}},
            {"X-Chitty-Node": node},
        )
    [open_one] = gateway.request("GET", f"/api/v1/todos/{todo}")[1]["conflicts"]
    conflict = open_one["conflictId"]
    assert "most advanced status" in cli(gateway, "conflicts", "list")
    neither = runner.invoke(app, ["conflicts", "resolve", conflict, "--hub", gateway.url])
    assert neither.exit_code == 1 and "--accept" in neither.output
    assert 'would become "blocked"' in cli(
        gateway, "conflicts", "resolve", conflict, "--accept", "--dry-run"
    )
    assert "resolved" in cli(gateway, "conflicts", "resolve", conflict, "--accept")
    _, after, _ = gateway.request("GET", f"/api/v1/todos/{todo}")
    assert after["entity"]["status"] == "blocked" and after["conflicts"] == []


def test_state_now_and_at_a_time(gateway: Gateway) -> None:
    import time
    from datetime import UTC, datetime

    _, created, _ = gateway.request(
        "POST", "/api/v1/todos", {"content": "before", "sessionId": SESSION}
    )
    todo = created["entity"]["chittyId"]
    time.sleep(0.05)
    middle = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "")
    time.sleep(0.05)
    gateway.request("PUT", f"/api/v1/todos/{todo}", {"content": "after"})
    assert row(cli(gateway, "state", todo), "content") == "after"
    assert row(cli(gateway, "state", todo, "--at", middle), "content") == "before"
    as_json = json.loads(cli(gateway, "state", todo, "--at", middle, "--json"))
    assert as_json["entity"]["content"] == "before" and as_json["seq"] == 1
    missing = runner.invoke(app, ["state", "CHITTY-TODO-NOSUCH", "--hub", gateway.url])
    assert missing.exit_code == 1 and "404" in missing.output
    before = runner.invoke(app, ["state", todo, "--at", "2001-01-01", "--hub", gateway.url])
    assert before.exit_code == 1, before.output
    assert f"todo {todo} did not exist at 2001-01-01" in before.output
    bad = runner.invoke(app, ["state", "nope", "--hub", gateway.url])
    assert bad.exit_code == 2 and "not a ChittyID" in bad.output


def test_sync_dry_run_changes_nothing(gateway: Gateway) -> None:
    _, before, _ = gateway.request("GET", "/api/v1/todos?limit=500")
    cli(gateway, "sync", "todos", "--platform", "web", "--dry-run")
    _, after, _ = gateway.request("GET", "/api/v1/todos?limit=500")
    assert before == after
