"""The `chitty` command line."""

from __future__ import annotations

import asyncio
import json
import os
import signal
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table

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
) -> None:
    """Start the hub: Ray (embedded or joined), its actors, and the HTTP/WebSocket gateway."""
    settings = _settings(data_dir=data_dir, ray_address=ray_address, hosts=hosts)
    from actors.runtime import Runtime

    console.print(f"starting the hub: data in {settings.data_dir}, {settings.hosts} hosts …")
    runtime = Runtime.start(settings)
    try:
        asyncio.run(_serve(runtime, settings, host, port))
    except OSError as error:
        console.print(f"[red]error:[/] cannot listen on {host}:{port}: {error.strerror}")
        raise typer.Exit(1) from None
    finally:
        console.print("stopping: snapshotting entities …")
        runtime.shutdown()
        console.print("stopped")


async def _serve(runtime: Any, settings: HubSettings, host: str, port: int) -> None:
    from aiohttp import web

    from transports.gateway import make_app

    runner = web.AppRunner(make_app(runtime, settings), handle_signals=False)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
        where = settings.ray_address or "an embedded local Ray"
        console.print(
            f"[green]hub running[/] at http://{host}:{port} (API /api/v1, WebSocket /ws) "
            f"on {where}; Ctrl-C stops"
        )
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
    finally:
        await runner.cleanup()


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
    dry_run: Annotated[
        bool, typer.Option(help="Show what would be synced; change nothing.")
    ] = False,
    verbose: Annotated[bool, typer.Option(help="Print the hub's full answer.")] = False,
    hub: Annotated[
        str, typer.Option(envvar="CHITTY_HUB_URL", help="The hub's base URL.")
    ] = "http://127.0.0.1:8787",
) -> None:
    """Sync a domain to platforms, channels and models (the spec's `chitty sync`)."""
    body: dict[str, object] = {
        "platforms": _csv(platform),
        "channels": _csv(channel),
        "models": _csv(model),
        "dryRun": dry_run,
    }
    if session:
        body["sessionId"] = session
    if project:
        body["projectId"] = project
    answer = asyncio.run(_post(hub, f"/api/v1/sync/{domain}", body))
    if verbose:
        console.print_json(json.dumps(answer))
    table = Table(
        title=f"sync {domain}: {answer['entities']} entities" + (" (dry run)" if dry_run else "")
    )
    for column in ("target", "kind", "status", "detail"):
        table.add_column(column)
    for target in answer["targets"]:
        table.add_row(target["target"], target["kind"], target["status"], target["detail"])
    console.print(table)
    if watch:
        asyncio.run(_watch(hub, domain, session, project, verbose))


def _csv(value: str | None) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()] if value else []


async def _post(base: str, path: str, body: dict[str, object]) -> dict[str, Any]:
    import aiohttp

    try:
        async with (
            aiohttp.ClientSession(base) as session,
            session.post(path, json=body) as response,
        ):
            answer: dict[str, Any] = await response.json(content_type=None)
            if response.status >= 400:
                where = f" ({answer.get('field')})" if answer.get("field") else ""
                console.print(f"[red]error {response.status}:[/] {answer.get('detail')}{where}")
                raise typer.Exit(1)
            return answer
    except aiohttp.ClientConnectionError as error:
        console.print(
            f"[red]error:[/] cannot reach the hub at {base}: {error}. Is `chitty up` running?"
        )
        raise typer.Exit(1) from None


async def _watch(
    base: str, domain: str, session: str | None, project: str | None, verbose: bool
) -> None:
    import aiohttp

    domains = [] if domain == "all" else [domain]
    filters = {k: v for k, v in (("sessionId", session), ("projectId", project)) if v}
    console.print("watching; Ctrl-C stops")
    try:
        async with aiohttp.ClientSession(base) as http, http.ws_connect("/ws") as ws:
            await ws.send_json({"type": "subscribe", "domains": domains, "filters": filters})
            async for frame in ws:
                data = json.loads(frame.data)
                events = (
                    data.get("events", [data])
                    if data.get("type") in ("batch", "state_update")
                    else []
                )
                for event in events:
                    entity = event.get("entity", {})
                    label = entity.get("content") or entity.get("name") or entity.get("title") or ""
                    what = f"{event.get('operation')} {event.get('domain')}"
                    console.print(f"{what} {entity.get('chittyId')} {label}")
                    if verbose:
                        console.print_json(json.dumps(event))
                if data.get("type") == "gap":
                    console.print(f"[yellow]gap:[/] {data.get('detail')}")
    except aiohttp.ClientConnectionError as error:
        console.print(f"[red]error:[/] lost the hub at {base}: {error}")
        raise typer.Exit(1) from None
    except KeyboardInterrupt:
        return


@app.command()
def demo() -> None:
    """Show the domain core at work: spec Example 2 and a concurrent-edit conflict."""
    from transports import demo as tour

    tour.run(console)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
