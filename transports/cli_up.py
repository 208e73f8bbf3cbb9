"""`chitty up`: check everything that can be checked before starting anything (settings, TLS
files, the encryption key, the data dir's lock, the port, the token store), then start Ray and
the gateway, mint the first admin token only once the hub answers, record where it runs, and
keep the console to one block: Ray's and the libraries' own messages go to `<data dir>/hub.log`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import logging.handlers
import os
import signal
import socket
import ssl
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from hub import __version__
from hub.settings import HubSettings
from transports.cli_calls import settings_or_exit
from transports.cli_output import console, fail
from transports.cli_places import HubRecord, record_start, record_stop

LOG_FILE = "hub.log"
QUIET = ("ray", "mcp", "uvicorn", "httpx")  # their messages go to the log file only


def up(
    host: Annotated[str, typer.Option(help="Address the gateway listens on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port of the gateway.", min=1, max=65535)] = 8787,
    data_dir: Annotated[
        Path | None,
        typer.Option(
            help="Where LMDB checkpoints live (else CHITTY_DATA_DIR, else the per-user data dir)."
        ),
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
    dashboard: Annotated[
        bool, typer.Option(help="Start Ray's dashboard too (needs `pip install 'ray[default]'`).")
    ] = False,
    no_encryption: Annotated[
        bool, typer.Option("--no-encryption", help="Store data unencrypted (on by default).")
    ] = False,
) -> None:
    """Start the hub: Ray (embedded or joined), its actors, and the HTTP/WebSocket gateway.

    On first start it prints an admin token once; keep it (CHITTY_TOKEN for the CLI)."""
    from hub.startup import StartRefused, prepare
    from transports.admin import HubLock, LockedError, seed_admin, server_tls
    from transports.gateway import log_hygiene
    from transports.gateway.app import open_tokens

    os.umask(0o077)  # what the hub and Ray write (its log, stores, session files) is private
    settings = settings_or_exit(
        data_dir=data_dir,
        ray_address=ray_address,
        hosts=hosts,
        encryption=False if no_encryption else None,
    )
    settings = settings.model_copy(update={"data_dir": settings.data_dir.expanduser().absolute()})
    tls = server_tls(tls_cert, tls_key) if tls_cert or tls_key else None
    try:
        lock = HubLock.take(settings.data_dir)
    except LockedError as error:
        raise fail(str(error)) from None
    except OSError as error:
        raise fail(f"cannot use {settings.data_dir}: {error.strerror}") from None
    listener: socket.socket | None = None
    tokens: Any = None
    runtime: Any = None
    try:
        try:
            listener = listen(host, port)
        except OSError as error:
            raise fail(
                f"cannot listen on {host}:{port}: {error.strerror or error}; is another hub "
                "there? `--port` picks another (nothing was started)"
            ) from None
        try:  # a private data dir, the encryption key, stored data that is whole
            notes = prepare(settings)
        except StartRefused as error:
            raise fail(str(error), 2) from None
        for note in notes:
            console.print(note, soft_wrap=True)
        try:
            tokens = open_tokens(settings)
        except (OSError, ValueError) as error:
            raise fail(f"cannot open the token store: {error}") from None
        seed_admin(tokens, dict(os.environ), console)
        log_file = quiet_logging(settings.data_dir, access_log)
        log_hygiene.install(logging.getLogger().handlers)  # no credential in any line
        where = settings.ray_address or "an embedded local Ray"
        console.print(
            f"starting the hub: data in {settings.data_dir}, {settings.hosts} hosts on {where} …",
            soft_wrap=True,
        )
        runtime = start_runtime(settings, dashboard, log_file)
        asyncio.run(serve(runtime, settings, listener, tokens, tls, tls_cert, host, port, log_file))
    finally:
        if runtime is not None:
            console.print("stopping: snapshotting entities …")
            runtime.shutdown()
        if tokens is not None:
            tokens.close()
        if listener is not None:
            listener.close()
        lock.release()
        if runtime is not None:
            console.print("stopped")


def listen(host: str, port: int) -> socket.socket:
    """The gateway's listening socket, bound before anything starts (a busy port stops the
    start here, before Ray, before any token)."""
    if host in ("", "0.0.0.0"):
        return socket.create_server(("0.0.0.0", port), family=socket.AF_INET, backlog=1024)
    if host == "::":
        return socket.create_server(
            ("::", port), family=socket.AF_INET6, dualstack_ipv6=True, backlog=1024
        )
    found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    found.sort(key=lambda address: address[0] != socket.AF_INET)  # 127.0.0.1 before ::1
    family, _, _, _, address = found[0]
    return socket.create_server(address[:2], family=family, backlog=1024)


def quiet_logging(data_dir: Path, access_log: bool) -> Path:
    """Every log line to `<data dir>/hub.log`; on the console only the hub's own warnings (and
    the access log when asked). Ray's handlers are replaced (it prints on its own otherwise)."""
    import ray  # noqa: F401 (it installs its own handlers on import: replace them after)

    log_file = data_dir / LOG_FILE
    formatter = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    to_file = logging.handlers.RotatingFileHandler(
        log_file, maxBytes=10 << 20, backupCount=3, encoding="utf-8"
    )
    to_file.setFormatter(formatter)
    to_console = logging.StreamHandler()
    to_console.setFormatter(formatter)
    to_console.addFilter(lambda record: _on_console(record, access_log))
    root = logging.getLogger()
    root.handlers = [to_file, to_console]
    root.setLevel(logging.INFO)
    for name in QUIET:
        logger = logging.getLogger(name)
        logger.handlers = []
        logger.propagate = True
    logging.getLogger("aiohttp.access").setLevel(logging.INFO if access_log else logging.WARNING)
    return log_file


def _on_console(record: logging.LogRecord, access_log: bool) -> bool:
    if record.name == "aiohttp.access":
        return access_log
    if record.name.split(".")[0] in QUIET:
        return False
    return record.levelno >= logging.WARNING


def start_runtime(settings: HubSettings, dashboard: bool, log_file: Path) -> Any:
    """Ray and the hub's actors; a failure is one line (its details in the log)."""
    from actors.runtime import Runtime
    from hub.gc_tuning import tune_gc
    from transports.channels import CHANNELS

    try:
        runtime = Runtime.start(
            settings, CHANNELS, own_temp_dir=True, dashboard=dashboard, prepared=True
        )
    except Exception as error:
        logging.getLogger(__name__).exception("the hub did not start")
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        if dashboard and "dashboard" in reason.lower():
            reason += " (`pip install 'ray[default]'` brings the dashboard)"
        raise fail(f"the hub did not start: {reason} (details: {log_file})") from None
    tune_gc()
    return runtime


def _loopback(cert: Path | None) -> ssl.SSLContext | None:
    """How /mcp trusts this gateway when calling it back over https: by its own certificate
    (which need not name 127.0.0.1)."""
    if cert is None:
        return None
    context = ssl.create_default_context(cafile=str(cert))
    context.load_default_certs()  # a CA-issued certificate chains to a system root
    context.check_hostname = False
    return context


async def serve(
    runtime: Any,
    settings: HubSettings,
    listener: socket.socket,
    tokens: Any,
    tls: ssl.SSLContext | None,
    tls_cert: Path | None,
    host: str,
    port: int,
    log_file: Path,
) -> None:
    """Serve until SIGINT/SIGTERM; the admin token and the records only once it answers."""
    from aiohttp import web

    from transports.admin import mint_admin
    from transports.gateway import log_hygiene, make_app

    local = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host  # where /mcp calls back
    scheme = "https" if tls else "http"
    base = f"{scheme}://{local if ':' not in local else f'[{local}]'}:{port}"
    app = make_app(runtime, settings, mcp_hub_url=base, tokens=tokens, mcp_tls=_loopback(tls_cert))
    runner = web.AppRunner(
        app, handle_signals=False, access_log_class=log_hygiene.RedactingAccessLogger
    )
    await runner.setup()
    record = HubRecord(
        url=base,
        pid=os.getpid(),
        data_dir=str(settings.data_dir),
        started_at=time.time(),
        tls_cert=str(tls_cert.absolute()) if tls_cert else None,
    )
    try:
        await web.SockSite(runner, listener, ssl_context=tls).start()
        mint_admin(tokens, console, settings.data_dir)
        with contextlib.suppress(Exception):  # the hub serves on even if this write fails
            await runtime.register_self(base, __version__)
        record_start(record, os.environ)
        announce(runtime, settings, record, host, log_file)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
    finally:
        record_stop(record, os.environ)
        await runner.cleanup()


def _adapter_state(spec: Any, settings: HubSettings) -> str:
    missing = spec.missing(settings.adapter_env)
    return "starting (`chitty adapters list`)" if not missing else f"off (set {', '.join(missing)})"


def announce(
    runtime: Any, settings: HubSettings, record: HubRecord, host: str, log_file: Path
) -> None:
    """One block saying where the hub answers and where its files are."""
    ws = record.url.replace("http", "ws", 1)
    where = settings.ray_address or "embedded local Ray"
    lines = [
        f"[green]hub running[/] at {record.url}"
        + (f" (listening on {host})" if host != "127.0.0.1" else ""),
        f"  REST      {record.url}/api/v1  (OpenAPI: {record.url}/api/v1/openapi.json)",
        f"  stream    {ws}/ws",
        f"  MCP       {record.url}/mcp",
        f"  data      {settings.data_dir}",
        f"  log       {log_file}",
        f"  Ray       {where}"
        + (f", dashboard {runtime.dashboard_url}" if runtime.dashboard_url else ""),
        *(
            f"  adapter   {spec.name}: {_adapter_state(spec, settings)}"
            for spec in runtime.adapter_specs.values()
        ),
        "Ctrl-C stops (every entity is snapshotted first)",
    ]
    for line in lines:
        console.print(line, soft_wrap=True, highlight=False)
