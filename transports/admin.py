"""Operator commands that work on a deployment's files: tokens, audit, encryption keys, TLS,
and the lock that keeps two hubs (or a re-key) off one data directory."""

from __future__ import annotations

import fcntl
import os
import ssl
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from hub.settings import HubSettings

Settings = Callable[..., HubSettings]


class LockedError(RuntimeError):
    """Another process holds the data directory."""


class HubLock:
    """An exclusive lock on `<data dir>/hub.lock`, held while a hub runs on the directory."""

    def __init__(self, handle: IO[str]) -> None:
        self._handle = handle

    @classmethod
    def take(cls, data_dir: Path) -> HubLock:
        data_dir.mkdir(parents=True, exist_ok=True)
        handle = (data_dir / "hub.lock").open("a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            handle.close()
            raise LockedError(
                f"{data_dir} is in use by {holder}: stop that hub first (one hub per data dir)"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}")
        handle.flush()
        return cls(handle)

    def release(self) -> None:
        fcntl.flock(self._handle, fcntl.LOCK_UN)
        self._handle.close()


def server_tls(cert: Path | None, key: Path | None) -> ssl.SSLContext:
    """The gateway's TLS context: TLS 1.2 at least, the given certificate and key."""
    if cert is None or key is None:
        raise typer.BadParameter("give both --tls-cert and --tls-key", param_hint="--tls-cert")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(cert, key)
    except FileNotFoundError as error:
        raise typer.BadParameter(
            f"no such file: {error.filename}", param_hint="--tls-cert"
        ) from None
    except ssl.SSLError as error:
        raise typer.BadParameter(
            f"cannot use {cert} with {key}: {error.reason or error}", param_hint="--tls-key"
        ) from None
    return context


def announce_tokens(app: Any, environ: dict[str, str], console: Console) -> None:
    """Register CHITTY_ADMIN_TOKEN if set; on a first start (no usable admin token) mint an
    admin token and print it, once: the store keeps only its hash."""
    from transports.gateway.auth import AUTH

    tokens = app[AUTH].tokens
    seeded = environ.get("CHITTY_ADMIN_TOKEN")
    if seeded:
        try:
            tokens.ensure_bootstrap(seeded)
        except ValueError as error:
            console.print(f"[red]error:[/] CHITTY_ADMIN_TOKEN: {error}")
            raise typer.Exit(2) from None
    made = tokens.bootstrap_admin()
    if made is not None:
        record, secret = made
        console.print(
            "[bold]admin token[/] (shown once; valid 24 h, `chitty token rotate "
            f"{record.token_id}` renews it):\n\n    {secret}\n\n"
            f"    export CHITTY_TOKEN={secret}\n"
        )


def _when(seconds: float | None) -> str:
    if seconds is None:
        return "never"
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def _duration(text: str) -> float | None:
    """`90s`, `15m`, `24h`, `7d`, or `never`."""
    text = text.strip().lower()
    if text == "never":
        return None
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    number, unit = (text[:-1], units[text[-1]]) if text and text[-1] in units else (text, 1)
    try:
        value = float(number) * unit
    except ValueError:
        raise typer.BadParameter(
            f"{text!r} is not a duration like 90s, 15m, 24h, 7d or never"
        ) from None
    if value <= 0:
        raise typer.BadParameter("must be positive")
    return value


def add_admin_commands(app: typer.Typer, settings: Settings, console: Console) -> None:
    """`chitty token ...`, `chitty audit ...` and `chitty keys ...` on `app`."""
    token = typer.Typer(help="Hub tokens: create, list, rotate, revoke.", no_args_is_help=True)
    app.add_typer(token, name="token")

    def open_tokens() -> Any:
        from actors.ray_shell import value_codec
        from hub.auth.tokens import TokenStore

        current = settings()
        try:
            return TokenStore(current.data_dir / "auth", codec=value_codec(current))
        except (OSError, ValueError) as error:
            console.print(f"[red]error:[/] cannot open the token store: {error}")
            raise typer.Exit(1) from None

    def fail(error: Exception) -> typer.Exit:
        console.print(f"[red]error:[/] {error}")
        return typer.Exit(1)

    @token.command("create")
    def token_create(
        name: Annotated[str, typer.Argument(help="What the token is for (e.g. slack-adapter).")],
        role: Annotated[str, typer.Option(help="admin, member, viewer or service.")] = "service",
        chitty_id: Annotated[
            str | None, typer.Option(help="The principal's ChittyID (default: a new one).")
        ] = None,
        ttl: Annotated[str, typer.Option(help="Lifetime: 24h, 7d, never ...")] = "24h",
    ) -> None:
        """Create a token and print its secret once (services sign requests with it)."""
        with open_tokens() as tokens:
            try:
                record, secret = tokens.create(name, role, chitty_id, _duration(ttl))
            except ValueError as error:
                raise fail(error) from None
        console.print(
            f"token {record.token_id} ({record.role}, {record.chitty_id}), "
            f"expires {_when(record.expires_at)}:\n\n    {secret}\n"
        )

    @token.command("list")
    def token_list() -> None:
        """Every token: id, name, role, principal, state, expiry (never a secret)."""
        now = time.time()
        with open_tokens() as tokens:
            records = tokens.list()
        table = Table(title=f"{len(records)} tokens")
        for column in ("id", "name", "role", "chittyId", "state", "expires"):
            table.add_column(column)
        for r in records:
            table.add_row(
                r.token_id, r.name, r.role, r.chitty_id, r.status(now), _when(r.valid_until)
            )
        console.print(table)

    @token.command("rotate")
    def token_rotate(
        token_id: Annotated[str, typer.Argument(help="The token to replace.")],
        overlap: Annotated[str, typer.Option(help="How long the old one still works.")] = "1h",
    ) -> None:
        """A successor token (printed once); the old one works until the overlap ends."""
        with open_tokens() as tokens:
            try:
                record, secret = tokens.rotate(token_id, _duration(overlap) or 0.0)
            except (ValueError, LookupError) as error:
                raise fail(error) from None
        console.print(
            f"token {record.token_id} replaces {token_id}, expires "
            f"{_when(record.expires_at)}:\n\n    {secret}\n"
        )

    @token.command("revoke")
    def token_revoke(token_id: Annotated[str, typer.Argument(help="The token to refuse.")]) -> None:
        """Refuse a token from now on, on REST and on open WebSockets."""
        with open_tokens() as tokens:
            try:
                record = tokens.revoke(token_id)
            except (ValueError, LookupError) as error:
                raise fail(error) from None
        console.print(f"revoked {record.token_id} ({record.name}) at {_when(record.revoked_at)}")
