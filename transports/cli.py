"""The `chitty` command line."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import ssl
import time
from collections.abc import Coroutine
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from hub.settings import HubSettings
from transports.admin import add_admin_commands

app = typer.Typer(
    help="ChittyChat Hub: keep topics, projects, sessions and todos in sync.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
console = Console()
T = TypeVar("T")


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
    host: Annotated[str, typer.Option(help="Address the gateway listens on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port of the gateway.", min=1, max=65535)] = 8787,
    data_dir: Annotated[
        Path | None, typer.Option(help="Where LMDB checkpoints live (default: per-user data dir).")
    ] = None,
    ray_address: Annotated[
        str | None,
        typer.Option(help="Join this Ray cluster (or set CHITTY_RAY_ADDRESS); default: local Ray."),
    ] = None,
    hosts: Annotated[int | None, typer.Option(help="EntityHost actors to start.")] = None,
    tls_cert: Annotated[
        Path | None, typer.Option(help="Serve HTTPS/WSS with this PEM certificate (chain).")
    ] = None,
    tls_key: Annotated[Path | None, typer.Option(help="The certificate's PEM private key.")] = None,
    access_log: Annotated[
        bool, typer.Option(help="Log every HTTP request (costs CPU on busy REST traffic).")
    ] = False,
    no_encryption: Annotated[
        bool, typer.Option("--no-encryption", help="Store data unencrypted (on by default).")
    ] = False,
) -> None:
    """Start the hub: Ray (embedded or joined), its actors, and the HTTP/WebSocket gateway.

    On first start it prints an admin token once; keep it (CHITTY_TOKEN for the CLI)."""
    settings = _settings(
        data_dir=data_dir,
        ray_address=ray_address,
        hosts=hosts,
        encryption=False if no_encryption else None,
    )
    from actors.runtime import Runtime
    from hub.gc_tuning import tune_gc
    from hub.startup import StartRefused, prepare
    from transports.admin import HubLock, LockedError, server_tls
    from transports.gateway import log_hygiene

    tls = server_tls(tls_cert, tls_key) if tls_cert or tls_key else None
    # Plain log lines, configured before anything else does it (the MCP SDK would install a
    # rich handler on the root logger, rendering every access-log line: a fifth of the
    # gateway's CPU under REST load).
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("aiohttp.access").setLevel(logging.INFO if access_log else logging.WARNING)
    log_hygiene.install(logging.getLogger().handlers)  # no credential in any line
    try:
        lock = HubLock.take(settings.data_dir)
    except LockedError as error:
        console.print(f"[red]error:[/] {error}")
        raise typer.Exit(1) from None

    try:
        notes = prepare(settings)  # a private data dir, the key, stored data that is whole
    except StartRefused as error:
        lock.release()
        console.print(f"[red]error:[/] {error}", soft_wrap=True)
        raise typer.Exit(2) from None
    for note in notes:
        console.print(note, soft_wrap=True)
    console.print(f"starting the hub: data in {settings.data_dir}, {settings.hosts} hosts …")
    runtime = Runtime.start(settings, prepared=True)
    tune_gc()
    try:
        asyncio.run(_serve(runtime, settings, host, port, tls, tls_cert))
    except OSError as error:
        console.print(f"[red]error:[/] cannot listen on {host}:{port}: {error.strerror}")
        raise typer.Exit(1) from None
    finally:
        console.print("stopping: snapshotting entities …")
        runtime.shutdown()
        lock.release()
        console.print("stopped")


def _loopback(cert: Path | None) -> ssl.SSLContext | None:
    """How /mcp trusts this gateway when calling it back over https: by its own certificate
    (which need not name 127.0.0.1)."""
    if cert is None:
        return None
    context = ssl.create_default_context(cafile=str(cert))
    context.load_default_certs()  # a CA-issued certificate chains to a system root
    context.check_hostname = False
    return context


async def _serve(
    runtime: Any,
    settings: HubSettings,
    host: str,
    port: int,
    tls: ssl.SSLContext | None,
    tls_cert: Path | None = None,
) -> None:
    from aiohttp import web

    from transports.admin import announce_tokens
    from transports.gateway import log_hygiene, make_app

    local = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host  # where /mcp calls back
    scheme = "https" if tls else "http"
    app = make_app(
        runtime, settings, mcp_hub_url=f"{scheme}://{local}:{port}", mcp_tls=_loopback(tls_cert)
    )
    announce_tokens(app, dict(os.environ), console)
    runner = web.AppRunner(
        app, handle_signals=False, access_log_class=log_hygiene.RedactingAccessLogger
    )
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port, ssl_context=tls).start()
        where = settings.ray_address or "an embedded local Ray"
        console.print(
            f"[green]hub running[/] at {scheme}://{host}:{port} (API /api/v1, WebSocket /ws, "
            f"MCP /mcp) on {where}; Ctrl-C stops"
        )
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
    finally:
        await runner.cleanup()


Hub = Annotated[str, typer.Option(envvar="CHITTY_HUB_URL", help="The hub's base URL.")]
DryRun = Annotated[bool, typer.Option(help="Show what would change; change nothing.")]
DEFAULT_HUB = "http://127.0.0.1:8787"


def _run(work: Coroutine[Any, Any, T]) -> T:
    """Run a client call; hub errors become one clear line and exit code 1, never a traceback."""
    from transports.client import ChittyApiError, ChittyUnreachable

    try:
        return asyncio.run(work)
    except ChittyUnreachable as error:
        console.print(f"[red]error:[/] {error}. Start a hub with `chitty up`.")
        raise typer.Exit(1) from None
    except ChittyApiError as error:
        where = f" ({error.field})" if error.field else ""
        console.print(f"[red]error {error.status}:[/] {error.detail}{where}")
        if error.status == 401:
            console.print(
                "set CHITTY_TOKEN to a hub token: `chitty up` printed an admin token on first "
                "start; `chitty token create NAME --role member` makes more"
            )
        raise typer.Exit(1) from None


def _client(hub: str) -> Any:
    from transports.client import ChittyClient

    token = os.environ.get("CHITTY_TOKEN") or None
    sign = os.environ.get("CHITTY_SIGN", "").lower() in ("1", "true", "yes")
    return ChittyClient(hub, node_id="cli", platform="cli", token=token, sign=sign)


def _csv(value: str | None) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()] if value else []


@app.command()
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
    hub: Hub = DEFAULT_HUB,
) -> None:
    """Sync a domain to platforms, channels and models (the spec's `chitty sync`).

    `chitty sync todos --project P` first reconciles the project's todos (spec Example 2:
    duplicates merged, every session listing the same todos) and prints the mesh."""

    async def go() -> tuple[dict[str, Any] | None, dict[str, Any]]:
        async with _client(hub) as client:
            mesh = None
            if domain == "todos" and project:
                mesh = await client.reconcile(project, dry_run=dry_run)
            answer: dict[str, Any] = await client.sync(
                domain,
                platforms=_csv(platform),
                channels=_csv(channel),
                models=_csv(model),
                project_id=project,
                session_id=session,
                dry_run=dry_run,
            )
            return mesh, answer

    mesh, answer = _run(go())
    if verbose:
        console.print_json(json.dumps({"reconciled": mesh, "sync": answer}))
    if mesh is not None:
        _print_mesh(mesh)
    title = f"sync {domain}: {answer['entities']} entities" + (" (dry run)" if dry_run else "")
    table = Table(title=title)
    for column in ("target", "kind", "status", "detail"):
        table.add_column(column)
    for target in answer["targets"]:
        table.add_row(target["target"], target["kind"], target["status"], target["detail"])
    console.print(table)
    if watch:
        _run(_watch(hub, domain, session, project, verbose))


def _print_mesh(mesh: dict[str, Any]) -> None:
    """A reconciled mesh as a table: content, status, origin sessions, merged-from."""
    writes = mesh["writes"]
    if mesh["dryRun"]:
        done = f"{len(writes)} write(s) would be made (dry run: nothing was written)"
    else:
        failed = [w for w in writes if w["status"] not in ("applied", "duplicate")]
        done = f"{len(writes) - len(failed)} todo write(s) made" + (
            f", {len(failed)} refused: "
            + "; ".join(f"{w['todoId']}: {w['status']}" for w in failed)
            if failed
            else ""
        )
    table = Table(
        title=f"project {mesh['projectId']}: {len(mesh['nodes'])} todos in "
        f"{len(mesh['sessions'])} sessions; {done}"
    )
    for column in ("todo", "content", "status", "origin sessions", "merged from"):
        table.add_column(column)
    for node in mesh["nodes"]:
        todo = node["todo"]
        status = todo["status"] + (" (blocked)" if node["blocked"] else "")
        table.add_row(
            todo["chittyId"],
            todo["content"],
            status,
            ", ".join(node["originSessions"]),
            ", ".join(node["mergedFrom"]) or "-",
        )
    console.print(table)


async def _watch(
    base: str, domain: str, session: str | None, project: str | None, verbose: bool
) -> None:
    from transports.client import ConflictNotice, Gap, Relayed

    filters = {k: v for k, v in (("sessionId", session), ("projectId", project)) if v}
    console.print("watching; Ctrl-C stops")
    async with (
        _client(base) as client,
        client.subscribe(None if domain == "all" else [domain], filters) as events,
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
            label = next(
                (str(event.entity[k]) for k in ("content", "name", "title") if event.entity.get(k)),
                "",
            )
            console.print(f"{event.operation} {event.domain} {event.entity_id} {label}")
            if verbose:
                console.print_json(json.dumps(event.entity))


todo = typer.Typer(help="Todos: add, list, complete.", no_args_is_help=True)
session = typer.Typer(help="Sessions: start, resume, end.", no_args_is_help=True)
conflicts = typer.Typer(help="Conflicts: list, resolve.", no_args_is_help=True)
app.add_typer(todo, name="todo")
app.add_typer(session, name="session")
app.add_typer(conflicts, name="conflicts")
add_admin_commands(app, lambda: _settings(), console)


def _show(title: str, entity: dict[str, Any], clock: dict[str, int] | None = None) -> None:
    console.print(f"[bold]{title}[/] {entity.get('chittyId', '')}")
    console.print_json(json.dumps(entity))
    if clock is not None:
        console.print(f"vector clock: {clock}")


@todo.command("add")
def todo_add(
    content: Annotated[str, typer.Argument(help="What is to be done.")],
    session_id: Annotated[
        str, typer.Option("--session", help="The session it comes from (CHITTY-SESSION id).")
    ],
    project: Annotated[str | None, typer.Option(help="Its project (CHITTY-PROJ id).")] = None,
    active_form: Annotated[str, typer.Option(help="Present-continuous label.")] = "",
    priority: Annotated[str, typer.Option(help="low, medium, high or critical.")] = "medium",
    dry_run: DryRun = False,
    hub: Hub = DEFAULT_HUB,
) -> None:
    """Create a todo."""
    fields: dict[str, Any] = {
        "content": content,
        "sessionId": session_id,
        "activeForm": active_form,
        "metadata": {"priority": priority},
    }
    if project:
        fields["projectId"] = project
    if dry_run:
        _dry("would create todo", "todos", fields)
        return

    async def go() -> Any:
        async with _client(hub) as client:
            return await client.create("todos", fields)

    record = _run(go())
    _show("created", record.entity, record.vector_clock)


def _dry(title: str, domain: str, fields: dict[str, Any]) -> None:
    """Validate locally what a write would send, and show it."""
    from pydantic import ValidationError

    from hub.domains import DOMAINS, SyncDomain

    try:
        DOMAINS[SyncDomain(domain)].model.model_validate(
            {"chittyId": _placeholder(domain), **fields}
        )
    except ValidationError as error:
        first = error.errors()[0]
        field = ".".join(str(p) for p in first["loc"])
        console.print(f"[red]error:[/] {field}: {first['msg']}")
        raise typer.Exit(1) from None
    console.print(f"[yellow]dry run:[/] {title} (nothing was sent)")
    console.print_json(json.dumps(fields))


def _placeholder(domain: str) -> str:
    from hub.domains import DOMAINS, SyncDomain

    return f"CHITTY-{DOMAINS[SyncDomain(domain)].kind}-DRYRUN"


@todo.command("list")
def todo_list(
    project: Annotated[str | None, typer.Option(help="Only this project.")] = None,
    session_id: Annotated[str | None, typer.Option("--session", help="Only this session.")] = None,
    status: Annotated[str | None, typer.Option(help="Only this status.")] = None,
    assignee: Annotated[
        str | None, typer.Option(help="Only todos assigned to this ChittyID.")
    ] = None,
    limit: Annotated[int, typer.Option(help="At most this many.", min=1)] = 200,
    hub: Hub = DEFAULT_HUB,
) -> None:
    """List todos as a table (all pages, up to --limit)."""

    async def go() -> list[Any]:
        found: list[Any] = []
        cursor = None
        async with _client(hub) as client:
            with Progress(transient=True, console=console) as progress:
                task = progress.add_task("fetching todos", total=None)
                while len(found) < limit:
                    page = await client.list(
                        "todos",
                        project_id=project,
                        session_id=session_id,
                        status=status,
                        assignee=assignee,
                        cursor=cursor,
                        limit=min(500, limit - len(found)),
                    )
                    found += page.items
                    progress.update(task, completed=len(found))
                    cursor = page.cursor
                    if cursor is None:
                        break
        return found

    records = _run(go())
    table = Table(title=f"{len(records)} todos")
    for column in ("id", "status", "content", "session", "priority"):
        table.add_column(column)
    for record in records:
        e = record.entity
        table.add_row(
            e["chittyId"], e["status"], e["content"], e["sessionId"], e["metadata"]["priority"]
        )
    console.print(table)


@todo.command("done")
def todo_done(
    todo_id: Annotated[str, typer.Argument(help="The todo (CHITTY-TODO id).")],
    dry_run: DryRun = False,
    hub: Hub = DEFAULT_HUB,
) -> None:
    """Mark a todo completed."""
    _set_status("todos", todo_id, "completed", dry_run, hub)


def _set_status(domain: str, entity_id: str, status: str, dry_run: bool, hub: str) -> None:
    async def go() -> Any:
        async with _client(hub) as client:
            if dry_run:
                return await client.get(domain, entity_id)
            return await client.update(domain, entity_id, {"status": status})

    record = _run(go())
    if dry_run:
        now = record.entity.get("status")
        console.print(
            f"[yellow]dry run:[/] {entity_id} would go from {now} to {status} (nothing was sent)"
        )
        return
    _show(f"{status}:", record.entity, record.vector_clock)


@session.command("start")
def session_start(
    platform: Annotated[str, typer.Option(help="claude-code, web, slack, cli or mobile.")] = "cli",
    platform_id: Annotated[
        str | None, typer.Option(help="The platform's own id of the session.")
    ] = None,
    project: Annotated[str | None, typer.Option(help="Its project (CHITTY-PROJ id).")] = None,
    dry_run: DryRun = False,
    hub: Hub = DEFAULT_HUB,
) -> None:
    """Start a session."""
    fields: dict[str, Any] = {
        "sessionId": platform_id or f"{platform}-{os.getpid()}-{int(time.time())}",
        "platform": platform,
    }
    if project:
        fields["projectId"] = project
    if dry_run:
        _dry("would start session", "sessions", fields)
        return

    async def go() -> Any:
        async with _client(hub) as client:
            return await client.create("sessions", fields)

    record = _run(go())
    _show("started session", record.entity, record.vector_clock)


@session.command("resume")
def session_resume(
    session_id: Annotated[str, typer.Argument(help="The session (CHITTY-SESSION id).")],
    dry_run: DryRun = False,
    hub: Hub = DEFAULT_HUB,
) -> None:
    """Resume a paused or crashed session and show where it was."""
    _set_status("sessions", session_id, "active", dry_run, hub)


@session.command("end")
def session_end(
    session_id: Annotated[str, typer.Argument(help="The session (CHITTY-SESSION id).")],
    dry_run: DryRun = False,
    hub: Hub = DEFAULT_HUB,
) -> None:
    """End a session (it cannot be resumed afterwards)."""
    _set_status("sessions", session_id, "ended", dry_run, hub)


@conflicts.command("list")
def conflicts_list(
    domain: Annotated[str | None, typer.Option(help="Only this domain.")] = None,
    hub: Hub = DEFAULT_HUB,
) -> None:
    """List open conflicts."""

    async def go() -> Any:
        async with _client(hub) as client:
            return await client.conflicts(domain)

    found = _run(go())
    table = Table(title=f"{len(found)} open conflicts")
    for column in ("conflict", "entity", "field", "versions"):
        table.add_column(column)
    for conflict in found:
        versions = ", ".join(json.dumps(v["value"]) for v in conflict["versions"])
        table.add_row(conflict["conflictId"], conflict["entityId"], conflict["field"], versions)
    console.print(table)


@conflicts.command("resolve")
def conflicts_resolve(
    conflict_id: Annotated[str, typer.Argument(help="The conflict (CHITTY-CONFLICT id).")],
    value: Annotated[str, typer.Argument(help="The value to keep (JSON, or plain text).")],
    dry_run: DryRun = False,
    hub: Hub = DEFAULT_HUB,
) -> None:
    """Settle a conflict on one value."""
    try:
        chosen: Any = json.loads(value)
    except ValueError:
        chosen = value

    async def go() -> Any:
        async with _client(hub) as client:
            if dry_run:
                return next(
                    (c for c in await client.conflicts() if c["conflictId"] == conflict_id), None
                )
            return await client.resolve(conflict_id, chosen)

    answer = _run(go())
    if dry_run:
        if answer is None:
            console.print(f"[red]error:[/] no open conflict {conflict_id}")
            raise typer.Exit(1)
        change = f"{answer['field']} of {answer['entityId']} would become {json.dumps(chosen)}"
        console.print(f"[yellow]dry run:[/] {change} (nothing was sent)")
        return
    _show("resolved:", answer.entity, answer.vector_clock)


_DOMAIN_OF_KIND = {
    "TODO": "todos",
    "PROJ": "projects",
    "SESSION": "sessions",
    "REPO": "repos",
    "SERVICE": "services",
}


@app.command()
def state(
    entity_id: Annotated[str, typer.Argument(help="Any ChittyID of an entity.")],
    at: Annotated[
        datetime | None, typer.Option(help="ISO-8601 time: the state as it was then.")
    ] = None,
    hub: Hub = DEFAULT_HUB,
) -> None:
    """Show an entity now, or as it was at a time."""
    from hub.ids import InvalidChittyId, parse

    try:
        kind = parse(entity_id).kind.value
    except InvalidChittyId as error:
        console.print(f"[red]error:[/] {error}")
        raise typer.Exit(2) from None
    domains = [_DOMAIN_OF_KIND[kind]] if kind in _DOMAIN_OF_KIND else ["contexts", "topics"]
    if kind not in _DOMAIN_OF_KIND and kind != "CONTEXT":
        console.print(f"[red]error:[/] a {kind} id names no entity with state")
        raise typer.Exit(2)
    moment = at.replace(tzinfo=UTC) if at is not None and at.tzinfo is None else at

    async def go() -> Any:
        from transports.client import ChittyApiError

        async with _client(hub) as client:
            for index, domain in enumerate(domains):
                try:
                    if moment is None:
                        return await client.get(domain, entity_id)
                    return await client.state_at(domain, entity_id, moment)
                except ChittyApiError as error:
                    if error.status != 404 or index == len(domains) - 1:
                        raise
            raise AssertionError("unreachable")

    record = _run(go())
    when = f"at {moment.isoformat()}" if moment else "now"
    _show(f"{when}:", record.entity, record.vector_clock)


@app.command()
def demo() -> None:
    """Show the domain core at work: spec Example 2 and a concurrent-edit conflict."""
    from transports import demo as tour

    tour.run(console)


@app.command()
def mcp(hub: Hub = DEFAULT_HUB) -> None:
    """Serve the hub to Claude (Desktop, Code) as an MCP server on stdin/stdout."""
    from transports.mcp.server import serve_stdio

    asyncio.run(serve_stdio(hub, os.environ.get("CHITTY_TOKEN") or None))


def main() -> None:
    app()


if __name__ == "__main__":
    main()
