"""`chitty adapters list|test|failed|retry`: the channel adapters of a running hub."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table

from transports.cli_calls import AsJson, Hub, client, run
from transports.cli_output import console, emit_json

adapters = typer.Typer(help="Channel adapters: list, test, failed, retry.", no_args_is_help=True)
Name = Annotated[str, typer.Argument(help="The adapter, e.g. slack or email.")]
COUNTERS = ("sent", "received", "retried", "failed", "withheld", "pending")


@adapters.command("list")
def adapters_list(as_json: AsJson = False, hub: Hub = None) -> None:
    """Every adapter: its state, what it needs to start, and its counters."""

    async def go() -> list[dict[str, Any]]:
        async with client(hub) as hub_client:
            found: list[dict[str, Any]] = await hub_client.adapters()
            return found

    found = run(go())
    if as_json:
        emit_json(found)
        return
    table = Table(title=f"{len(found)} adapters")
    for column in ("adapter", "state", *COUNTERS, "detail"):
        table.add_column(column)
    for adapter in found:
        counts = [str(adapter[k]) for k in COUNTERS]
        table.add_row(adapter["name"], adapter["state"], *counts, adapter["detail"])
    console.print(table)


@adapters.command("test")
def adapters_test(name: Name, hub: Hub = None) -> None:
    """Send a test message through an adapter to its default channel."""

    async def go() -> dict[str, Any]:
        async with client(hub) as hub_client:
            answer: dict[str, Any] = await hub_client.adapter_test(name)
            return answer

    answer = run(go())
    console.print(f"sent through {name}: message {answer['messageId']}")


@adapters.command("failed")
def adapters_failed(name: Name, as_json: AsJson = False, hub: Hub = None) -> None:
    """The deliveries an adapter could not make, and why."""

    async def go() -> list[dict[str, Any]]:
        async with client(hub) as hub_client:
            found: list[dict[str, Any]] = await hub_client.adapter_failed(name)
            return found

    found = run(go())
    if as_json:
        emit_json(found)
        return
    table = Table(title=f"{len(found)} failed deliveries of {name}")
    for column in ("job", "entity", "kind", "reason"):
        table.add_column(column)
    for job in found:
        table.add_row(str(job["id"]), job["entityId"], job["kind"], job["reason"])
    console.print(table)


@adapters.command("retry")
def adapters_retry(name: Name, hub: Hub = None) -> None:
    """Queue an adapter's failed deliveries again."""

    async def go() -> int:
        async with client(hub) as hub_client:
            moved: int = await hub_client.adapter_retry(name)
            return moved

    console.print(f"{run(go())} deliveries of {name} queued again")
