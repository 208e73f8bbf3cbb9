"""The `chitty` command line: clear errors without tracebacks; the demo runs."""

from __future__ import annotations

from typer.testing import CliRunner

from tests.transports.conftest import Gateway
from transports.cli import app

runner = CliRunner()


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
    assert "live" in result.output and "not_connected" in result.output
    dry = runner.invoke(
        app, ["sync", "all", "--model", "claude", "--dry-run", "--hub", gateway.url]
    )
    assert dry.exit_code == 0 and "would_sync" in dry.output and "dry run" in dry.output


def test_sync_errors_are_one_clear_line(gateway: Gateway) -> None:
    unknown = runner.invoke(app, ["sync", "todos", "--channel", "fax", "--hub", gateway.url])
    assert unknown.exit_code == 1
    assert "unknown channel 'fax'" in unknown.output and "Traceback" not in unknown.output
    away = runner.invoke(app, ["sync", "todos", "--hub", "http://127.0.0.1:9"])
    assert away.exit_code == 1
    assert "cannot reach the hub" in away.output and "Traceback" not in away.output
