"""Running `chitty` commands against a test hub, as the CLI test modules do."""

from __future__ import annotations

import json
from typing import Any

from typer.testing import CliRunner

from tests.transports.conftest import Gateway
from transports.cli import app

runner = CliRunner(env={"COLUMNS": "250"})


def cli(gateway: Gateway, *args: str) -> str:
    result = runner.invoke(app, [*args, "--hub", gateway.url])
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    return result.output


def json_of(gateway: Gateway, *args: str) -> Any:
    """What a `--json` command prints on stdout (its notes go to stderr)."""
    result = runner.invoke(app, [*args, "--json", "--hub", gateway.url])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def refused(gateway: Gateway, *args: str, code: int = 1) -> str:
    result = runner.invoke(app, [*args, "--hub", gateway.url])
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    return result.output


def stored(gateway: Gateway, domain: str, entity_id: str) -> dict[str, Any]:
    """The entity as REST answers it."""
    status, body, _ = gateway.request("GET", f"/api/v1/{domain}/{entity_id}")
    assert status == 200, body
    return body["entity"]  # type: ignore[no-any-return]
