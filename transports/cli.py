"""The `chitty` command line."""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError
from rich.console import Console

from hub.settings import HubSettings

app = typer.Typer(
    help="ChittyChat Hub: keep topics, projects, sessions and todos in sync.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
console = Console()


def _settings(**overrides: object) -> HubSettings:
    try:
        return HubSettings.from_env(dict(os.environ), **overrides)
    except ValidationError as error:
        first = error.errors()[0]
        field = ".".join(str(p) for p in first["loc"])
        console.print(f"[red]error:[/] setting {field!r}: {first['msg']}")
        raise typer.Exit(2) from None


@app.command()
def up(
    data_dir: Annotated[
        Path | None, typer.Option(help="Where LMDB checkpoints live (default: per-user data dir).")
    ] = None,
    ray_address: Annotated[
        str | None,
        typer.Option(help="Join this Ray cluster (or set CHITTY_RAY_ADDRESS); default: local Ray."),
    ] = None,
    hosts: Annotated[int | None, typer.Option(help="EntityHost actors to start.")] = None,
) -> None:
    """Start the hub: Ray (embedded or joined), its hosts, router and event stream."""
    settings = _settings(data_dir=data_dir, ray_address=ray_address, hosts=hosts)
    from actors.runtime import Runtime

    console.print(f"starting the hub: data in {settings.data_dir}, {settings.hosts} hosts …")
    runtime = Runtime.start(settings)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    where = settings.ray_address or "an embedded local Ray"
    console.print(
        f"[green]hub running[/] on {where} (namespace {settings.namespace}); Ctrl-C stops"
    )
    stop.wait()
    console.print("stopping: snapshotting entities …")
    runtime.shutdown()
    console.print("stopped")


@app.command()
def demo() -> None:
    """Show the domain core at work: spec Example 2 and a concurrent-edit conflict."""
    from transports import demo as tour

    tour.run(console)


def main() -> None:
    app()
