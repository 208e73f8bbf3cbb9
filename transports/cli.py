"""The `chitty` command line."""

from __future__ import annotations

import typer
from rich.console import Console

app = typer.Typer(help="ChittyChat Hub: keep topics, projects, sessions and todos in sync.")


@app.command()
def demo() -> None:
    """Show the domain core at work: spec Example 2 and a concurrent-edit conflict."""
    from transports import demo as tour

    tour.run(Console())


@app.callback()
def _root() -> None:
    """ChittyChat Hub."""


def main() -> None:
    app()
