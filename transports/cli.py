"""The `chitty` command line: `chitty up` starts a hub; every other command talks to one.

Commands: `up` (transports.cli_up); `project|topic|context|repo|service` (transports.cli_domains);
`todo`, `session`, `use` (transports.cli_todos); `adapters` (transports.cli_adapters); `sync`,
`conflicts`, `state`, `demo`, `mcp` (here); `token`, `keys`, `audit`, `compact`
(transports.admin, on the hub's data dir)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from datetime import UTC, datetime
from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from transports.admin import add_admin_commands
from transports.cli_adapters import adapters
from transports.cli_agents import agents
from transports.cli_ask import ask
from transports.cli_calls import AsJson, DryRun, Hub, client, hub_target, run, settings_or_exit
from transports.cli_domains import GROUPS, show_checked
from transports.cli_output import console, fail, show_record
from transports.cli_todos import print_mesh, session, todo, use
from transports.cli_up import up

app = typer.Typer(
    help="ChittyChat Hub: keep topics, projects, sessions and todos in sync.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
conflicts = typer.Typer(help="Conflicts: list, resolve.", no_args_is_help=True)


def _csv(value: str | None) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()] if value else []


def sync(
    domain: Annotated[
        str,
        typer.Argument(help="topics, projects, sessions, todos, contexts, repos, services or all"),
    ],
    platform: Annotated[
        str | None, typer.Option(help="Platforms, comma-separated (web,cli,mobile).")
    ] = None,
    channel: Annotated[
        str | None, typer.Option(help="Channels, comma-separated (slack,discord,email).")
    ] = None,
    model: Annotated[
        str | None, typer.Option(help="AI models, comma-separated (claude,chatgpt,gemini).")
    ] = None,
    session: Annotated[
        str | None, typer.Option(help="Only this session (a CHITTY-SESSION id).")
    ] = None,
    project: Annotated[
        str | None, typer.Option(help="Only this project (a CHITTY-PROJ id).")
    ] = None,
    watch: Annotated[
        bool, typer.Option(help="Keep running and print every change as it syncs.")
    ] = False,
    dry_run: DryRun = False,
    verbose: Annotated[bool, typer.Option(help="Print the hub's full answer.")] = False,
    hub: Hub = None,
) -> None:
    """Sync a domain to platforms, channels and models (the spec's `chitty sync`).

    `chitty sync todos --project P` first reconciles the project's todos (spec Example 2:
    duplicates merged, every session listing the same todos) and prints the mesh."""

    async def go() -> tuple[dict[str, Any] | None, dict[str, Any]]:
        async with client(hub) as hub_client:
            mesh = None
            if domain == "todos" and project:
                mesh = await hub_client.reconcile(project, dry_run=dry_run)
            answer: dict[str, Any] = await hub_client.sync(
                domain,
                platforms=_csv(platform),
                channels=_csv(channel),
                models=_csv(model),
                project_id=project,
                session_id=session,
                dry_run=dry_run,
            )
            return mesh, answer

    mesh, answer = run(go())
    if verbose:
        console.print_json(json.dumps({"reconciled": mesh, "sync": answer}))
    if mesh is not None:
        print_mesh(mesh)
    title = f"sync {domain}: {answer['entities']} entities" + (" (dry run)" if dry_run else "")
    table = Table(title=title)
    for column in ("target", "kind", "status", "detail"):
        table.add_column(column)
    for target in answer["targets"]:
        table.add_row(target["target"], target["kind"], target["status"], target["detail"])
    console.print(table)
    show_checked(answer.get("checked") or [])
    if watch:
        run(_watch(hub, domain, session, project, verbose))


async def _watch(
    base: str | None, domain: str, session: str | None, project: str | None, verbose: bool
) -> None:
    from transports.client import ConflictNotice, Gap, Relayed

    filters = {k: v for k, v in (("sessionId", session), ("projectId", project)) if v}
    console.print("watching; Ctrl-C stops")
    async with (
        client(base) as hub_client,
        hub_client.subscribe(None if domain == "all" else [domain], filters) as events,
    ):
        async for event in events:
            if isinstance(event, Gap):
                console.print(f"[yellow]gap:[/] {event.detail or event.reason}")
                continue
            if isinstance(event, ConflictNotice):
                field = event.conflict.get("field")
                console.print(f"[red]conflict {event.status}:[/] {event.entity_id} {field}")
                continue
            if isinstance(event, Relayed):
                console.print(f"{event.type} {event.domain} {event.entity_id} {event.data}")
                continue
            console.print(f"{event.operation} {event.domain} {event.entity_id} {_label(event)}")
            if verbose:
                console.print_json(json.dumps(event.entity))


def _label(event: Any) -> str:
    """What a change is about, in a few words (a repo's and a service's state included)."""
    entity = event.entity
    if event.domain == "repos":
        error = (entity.get("metadata") or {}).get("error")
        where = entity.get("path") or entity.get("url")
        state = error or f"{entity.get('branch')} {entity.get('workingTree')}"
        ahead = (
            f" +{entity['ahead']} -{entity['behind']}" if entity.get("ahead") is not None else ""
        )
        return f"{where} {state}{ahead}"
    if event.domain == "services":
        error = (entity.get("metadata") or {}).get("error")
        return f"{entity.get('name')} {entity.get('health')}" + (f" ({error})" if error else "")
    return next((str(entity[k]) for k in ("content", "name", "title") if entity.get(k)), "")


@conflicts.command("list")
def conflicts_list(
    domain: Annotated[str | None, typer.Option(help="Only this domain.")] = None,
    hub: Hub = None,
) -> None:
    """List open conflicts."""

    async def go() -> Any:
        async with client(hub) as hub_client:
            return await hub_client.conflicts(domain)

    found = run(go())
    table = Table(title=f"{len(found)} open conflicts")
    for column in ("conflict", "entity", "field", "versions", "suggestion"):
        table.add_column(column)
    for conflict in found:
        versions = ", ".join(json.dumps(v["value"]) for v in conflict["versions"])
        suggestion = conflict.get("suggestion")
        suggested = (
            f"{json.dumps(suggestion['value'])}: {suggestion['reason']}" if suggestion else "-"
        )
        table.add_row(
            conflict["conflictId"],
            conflict["entityId"],
            conflict["field"],
            Text(versions),
            Text(suggested),
        )
    console.print(table)


@conflicts.command("resolve")
def conflicts_resolve(
    conflict_id: Annotated[str, typer.Argument(help="The conflict (CHITTY-CONFLICT id).")],
    value: Annotated[
        str | None, typer.Argument(help="The value to keep (JSON, or plain text).")
    ] = None,
    accept: Annotated[
        bool, typer.Option("--accept", help="Take the suggestion `conflicts list` shows.")
    ] = False,
    dry_run: DryRun = False,
    hub: Hub = None,
) -> None:
    """Settle a conflict on one value, or on its merge suggestion (--accept)."""
    if (value is None) != accept:
        raise fail("give the value to keep, or --accept to take the suggestion")
    chosen: Any = value
    if value is not None:
        with contextlib.suppress(ValueError):
            chosen = json.loads(value)

    async def go() -> Any:
        async with client(hub) as hub_client:
            if dry_run:
                return next(
                    (c for c in await hub_client.conflicts() if c["conflictId"] == conflict_id),
                    None,
                )
            return await hub_client.resolve(conflict_id, chosen, accept_suggestion=accept)

    answer = run(go())
    if dry_run:
        if answer is None:
            raise fail(f"no open conflict {conflict_id}")
        if accept:
            if answer.get("suggestion") is None:
                raise fail(f"no suggestion for {conflict_id}: give the value to keep")
            chosen = answer["suggestion"]["value"]
        change = f"{answer['field']} of {answer['entityId']} would become {json.dumps(chosen)}"
        console.print(f"[yellow]dry run:[/] {change} (nothing was sent)")
        return
    show_record("resolved:", answer)


_DOMAIN_OF_KIND = {
    "TODO": "todos",
    "PROJ": "projects",
    "SESSION": "sessions",
    "REPO": "repos",
    "SERVICE": "services",
}


def state(
    entity_id: Annotated[str, typer.Argument(help="Any ChittyID of an entity.")],
    at: Annotated[
        datetime | None, typer.Option(help="ISO-8601 time: the state as it was then.")
    ] = None,
    as_json: AsJson = False,
    hub: Hub = None,
) -> None:
    """Show any entity by its ChittyID, now or as it was at a time."""
    from hub.ids import InvalidChittyId, parse

    try:
        kind = parse(entity_id).kind.value
    except InvalidChittyId as error:
        raise fail(str(error), 2) from None
    domains = [_DOMAIN_OF_KIND[kind]] if kind in _DOMAIN_OF_KIND else ["contexts", "topics"]
    if kind not in _DOMAIN_OF_KIND and kind != "CONTEXT":
        raise fail(f"a {kind} id names no entity with state", 2)
    moment = at.replace(tzinfo=UTC) if at is not None and at.tzinfo is None else at

    async def go() -> Any:
        from transports.client import ChittyApiError

        async with client(hub) as hub_client:
            for index, domain in enumerate(domains):
                try:
                    if moment is None:
                        return await hub_client.get(domain, entity_id)
                    return await hub_client.state_at(domain, entity_id, moment)
                except ChittyApiError as error:
                    if error.status != 404 or index == len(domains) - 1:
                        raise
            raise AssertionError("unreachable")

    record = run(go())
    when = f"at {moment.isoformat()}:" if moment else "now:"
    show_record(when, record, as_json)


def demo() -> None:
    """Show the domain core at work: spec Example 2 and a concurrent-edit conflict."""
    from transports import demo as tour

    tour.run(console)


def mcp(hub: Hub = None) -> None:
    """Serve the hub to Claude (Desktop, Code) as an MCP server on stdin/stdout."""
    from transports.mcp.server import serve_stdio

    url, _ = hub_target(hub)
    asyncio.run(serve_stdio(url, os.environ.get("CHITTY_TOKEN") or None))


# `chitty --help` lists them in panels, in this order.
START, WORK, DOMAINS = "Run a hub", "Daily work", "Other domains"
app.command(rich_help_panel=START)(up)
app.command(rich_help_panel=START)(demo)
app.command(rich_help_panel=START)(mcp)
app.add_typer(GROUPS["project"], name="project", rich_help_panel=WORK)
app.add_typer(session, name="session", rich_help_panel=WORK)
app.add_typer(todo, name="todo", rich_help_panel=WORK)
app.command(rich_help_panel=WORK)(use)
app.command(rich_help_panel=WORK)(sync)
app.add_typer(conflicts, name="conflicts", rich_help_panel=WORK)
app.command(rich_help_panel=WORK)(state)
app.command(rich_help_panel=WORK)(ask)
app.add_typer(adapters, name="adapters", rich_help_panel=START)
app.add_typer(agents, name="agents", rich_help_panel=START)
for _name in ("topic", "context", "repo", "service"):
    app.add_typer(GROUPS[_name], name=_name, rich_help_panel=DOMAINS)
add_admin_commands(app, settings_or_exit, console)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
