"""The `chitty` command line: clear errors without tracebacks; the demo runs."""

from __future__ import annotations

from typer.testing import CliRunner

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
