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
from transports.cli_output import note
from transports.cli_places import data_dir_source

Settings = Callable[..., HubSettings]
PANEL = "Operate a data dir"  # where `chitty --help` lists these


class LockedError(RuntimeError):
    """Another process holds the data directory."""


class HubLock:
    """An exclusive lock on `<data dir>/hub.lock`, held while a hub runs on the directory."""

    def __init__(self, handle: IO[str]) -> None:
        self._handle = handle

    @classmethod
    def take(cls, data_dir: Path) -> HubLock:
        data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        descriptor = os.open(data_dir / "hub.lock", os.O_RDWR | os.O_CREAT, 0o600)
        handle = open(descriptor, "a+")  # noqa: SIM115  # held open while the hub runs
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
    for path, option in ((cert, "--tls-cert"), (key, "--tls-key")):
        if not path.is_file():
            raise typer.BadParameter(f"no such file: {path}", param_hint=option)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(cert, key)
    except ssl.SSLError as error:
        raise typer.BadParameter(
            f"cannot use {cert} with {key}: {error.reason or error}", param_hint="--tls-key"
        ) from None
    return context


def seed_admin(tokens: Any, environ: dict[str, str], console: Console) -> None:
    """Register CHITTY_ADMIN_TOKEN if set (before anything starts: a bad one stops the start)."""
    seeded = environ.get("CHITTY_ADMIN_TOKEN")
    if seeded:
        try:
            tokens.ensure_bootstrap(seeded)
        except ValueError as error:
            console.print(f"[red]error:[/] CHITTY_ADMIN_TOKEN: {error}")
            raise typer.Exit(2) from None


def mint_admin(tokens: Any, console: Console, data_dir: Path) -> None:
    """On a first start (no usable admin token) mint an admin token and print it, once: the
    store keeps only its hash. Called once the hub answers, so a start that fails spends none."""
    made = tokens.bootstrap_admin()
    if made is not None:
        record, secret = made
        console.print(
            "[bold]admin token[/] (shown once; valid 24 h, `chitty token rotate "
            f"{record.token_id}` renews it; lost: `chitty token create NAME --role admin "
            f"--data-dir {data_dir}`):\n\n    {secret}\n\n"
            f"    export CHITTY_TOKEN={secret}\n",
            soft_wrap=True,  # a secret must copy in one piece
        )


def _when(seconds: float | None) -> str:
    if seconds is None:
        return "never"
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def _duration(text: str, zero: bool = False) -> float | None:
    """`90s`, `15m`, `24h`, `7d`, or `never` (`0s` too, when `zero`)."""
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
    if value < 0 or (value == 0 and not zero):
        raise typer.BadParameter("must be positive" if not zero else "must not be negative")
    return value


DataDir = Annotated[
    Path | None,
    typer.Option(
        help="The hub's data dir, as given to `chitty up` (else CHITTY_DATA_DIR, else the "
        "per-user data dir: what `chitty up` uses).",
        show_default=False,
    ),
]


def add_admin_commands(app: typer.Typer, settings: Settings, console: Console) -> None:
    """`chitty token ...`, `chitty audit ...` and `chitty keys ...` on `app`. Each works on
    the data dir `chitty up` would use (--data-dir, CHITTY_DATA_DIR, the default), says which,
    and `settings(data_dir=...)` gives that deployment's settings."""
    token = typer.Typer(
        help="Hub tokens: create, list, rotate, revoke (on the hub's data dir).",
        no_args_is_help=True,
    )
    app.add_typer(token, name="token", rich_help_panel=PANEL)

    def deployment(data_dir: Path | None) -> HubSettings:
        """The settings of the data dir a command works on; a line saying which it is."""
        current = settings(data_dir=data_dir)
        current = current.model_copy(update={"data_dir": current.data_dir.expanduser().absolute()})
        how = data_dir_source(data_dir, os.environ)
        note(f"data dir {current.data_dir} ({how})")
        return current

    def fail(error: Exception) -> typer.Exit:
        console.print(f"[red]error:[/] {error}")
        return typer.Exit(1)

    def stored_codec(current: HubSettings) -> Any:
        """How the data dir's values are stored: unencrypted if its store was written so (from
        before encryption was the default, or `--no-encryption`), else with the key; on a data
        dir that holds nothing yet, the user's key is made first (as `chitty up` would)."""
        from hub.startup import StartRefused, ensure_key, store_is_plaintext
        from hub.store import IdentityCodec

        if store_is_plaintext(current.data_dir / "lmdb"):
            return IdentityCodec()
        try:
            for line in ensure_key(current):
                console.print(line, soft_wrap=True)
            return current.value_codec()
        except (StartRefused, ValueError) as error:
            raise fail(error) from None

    def open_tokens(data_dir: Path | None) -> Any:
        from hub.auth.tokens import TokenStore

        current = deployment(data_dir)
        codec = stored_codec(current)
        try:
            return TokenStore(current.data_dir / "auth", codec=codec)
        except (OSError, ValueError) as error:
            console.print(f"[red]error:[/] cannot open the token store: {error}")
            raise typer.Exit(1) from None

    def where_it_works(data_dir: Path) -> None:
        """Whether a hub runs on `data_dir` (and so takes its tokens), said plainly."""
        from transports.cli_places import hub_on, latest_hub

        running = hub_on(data_dir)
        if running is not None:
            console.print(f"the hub at {running.url} uses this data dir: it accepts the token now")
            return
        console.print(
            f"[yellow]note:[/] no hub runs on {data_dir} now; a hub started with "
            f"`chitty up --data-dir {data_dir}` will accept this token",
            soft_wrap=True,
        )
        elsewhere = latest_hub(os.environ)
        if elsewhere is not None and Path(elsewhere.data_dir) != data_dir:
            console.print(
                f"[yellow]note:[/] the hub at {elsewhere.url} runs on {elsewhere.data_dir}: for "
                f"a token it accepts, run this again with --data-dir {elsewhere.data_dir}",
                soft_wrap=True,
            )

    @token.command("create")
    def token_create(
        name: Annotated[str, typer.Argument(help="What the token is for (e.g. slack-adapter).")],
        role: Annotated[str, typer.Option(help="admin, member, viewer or service.")] = "service",
        chitty_id: Annotated[
            str | None, typer.Option(help="The principal's ChittyID (default: a new one).")
        ] = None,
        ttl: Annotated[str, typer.Option(help="Lifetime: 24h, 7d, never ...")] = "24h",
        data_dir: DataDir = None,
    ) -> None:
        """Create a token and print its secret once.

        Services sign requests with it. A lost admin token is replaced so:
        `chitty token create NAME --role admin --data-dir <the hub's data dir>`."""
        with open_tokens(data_dir) as tokens:
            try:
                record, secret = tokens.create(name, role, chitty_id, _duration(ttl))
            except ValueError as error:
                raise fail(error) from None
        console.print(
            f"token {record.token_id} ({record.role}, {record.chitty_id}), "
            f"expires {_when(record.expires_at)}:\n\n    {secret}\n",
            soft_wrap=True,
        )
        where_it_works(settings(data_dir=data_dir).data_dir.expanduser().absolute())

    @token.command("list")
    def token_list(data_dir: DataDir = None) -> None:
        """Every token: id, name, role, principal, state, expiry (never a secret)."""
        now = time.time()
        with open_tokens(data_dir) as tokens:
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
        data_dir: DataDir = None,
    ) -> None:
        """A successor token (printed once); the old one works until the overlap ends."""
        with open_tokens(data_dir) as tokens:
            try:
                record, secret = tokens.rotate(token_id, _duration(overlap, zero=True) or 0.0)
            except (ValueError, LookupError) as error:
                raise fail(error) from None
        console.print(
            f"token {record.token_id} replaces {token_id}, expires "
            f"{_when(record.expires_at)}:\n\n    {secret}\n",
            soft_wrap=True,
        )

    @token.command("revoke")
    def token_revoke(
        token_id: Annotated[str, typer.Argument(help="The token to refuse.")],
        data_dir: DataDir = None,
    ) -> None:
        """Refuse a token from now on, on REST and on open WebSockets."""
        with open_tokens(data_dir) as tokens:
            try:
                record = tokens.revoke(token_id)
            except (ValueError, LookupError) as error:
                raise fail(error) from None
        console.print(f"revoked {record.token_id} ({record.name}) at {_when(record.revoked_at)}")

    audit = typer.Typer(help="The audit trail: verify it, show an entity's.", no_args_is_help=True)
    app.add_typer(audit, name="audit", rich_help_panel=PANEL)

    @audit.command("verify")
    def audit_verify_command(data_dir: DataDir = None) -> None:
        """Check every hash chain, snapshot and catalog row; exit 1 naming every break."""
        from hub.audit import audit_verify

        current = deployment(data_dir)
        if not (current.data_dir / "lmdb").is_dir():
            raise fail(ValueError(f"no hub data in {current.data_dir} (nothing to verify)"))
        catalog = current.data_dir / "catalog"
        report = audit_verify(
            current.data_dir / "lmdb",
            catalog if catalog.is_dir() else None,
            codec=stored_codec(current),
        )
        console.print(
            f"{report.entities} entities, {report.events} events ({report.redacted_events} "
            f"redacted by erasure), {report.catalog_rows} catalog rows"
        )
        for b in report.breaks:
            where = f"{b.entity_id} seq {b.seq}" if b.entity_id else "-"
            console.print(f"[red]break[/] {b.source} {where}: {b.kind}: {b.detail}")
        if not report.ok:
            raise typer.Exit(1)
        console.print("[green]ok[/]: every chain verifies")

    @audit.command("log")
    def audit_log_command(
        entity_id: Annotated[str, typer.Argument(help="The entity (a ChittyID).")],
        data_dir: DataDir = None,
    ) -> None:
        """Who changed the entity, when, how, and which fields."""
        from hub.audit import audit_log
        from hub.store import LmdbStore, StoreError

        current = deployment(data_dir)
        try:
            with LmdbStore(
                current.data_dir / "lmdb", codec=stored_codec(current), readonly=True
            ) as store:
                entries = audit_log(store, entity_id)
        except StoreError as error:
            raise fail(error) from None
        if not entries:
            raise fail(ValueError(f"no events of {entity_id} in {current.data_dir}"))
        table = Table(title=f"{entity_id}: {len(entries)} events")
        for column in ("seq", "time", "principal", "operation", "changed", "note"):
            table.add_column(column)
        for e in entries:
            note = "rewritten by erasure" if e.redacted else ""
            table.add_row(
                str(e.seq),
                _when(e.timestamp_ms / 1000),
                e.principal or "-",
                e.operation or "-",
                ", ".join(e.changed),
                "; ".join(n for n in (note, e.note) if n),
            )
        console.print(table)

    keys = typer.Typer(help="Encryption at rest: make a key, re-encrypt.", no_args_is_help=True)
    app.add_typer(keys, name="keys", rich_help_panel=PANEL)

    @keys.command("generate")
    def keys_generate(
        path: Annotated[Path, typer.Argument(help="Where to write the new key (mode 0600).")],
    ) -> None:
        """Write a new random AES-256 key (then set CHITTY_ENCRYPTION_KEY_FILE to it)."""
        from hub.store.crypto import generate_key

        if path.exists():
            raise fail(ValueError(f"{path} exists; refusing to overwrite a key"))
        try:
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(descriptor, "wb") as handle:
                handle.write(generate_key())
        except OSError as error:
            raise fail(ValueError(f"cannot write {path}: {error.strerror}")) from None
        console.print(f"wrote a new key to {path}")

    @keys.command("rotate")
    def keys_rotate(
        to: Annotated[
            str, typer.Option(help="The new key file, or `none` to store values unencrypted.")
        ],
        keep_old: Annotated[bool, typer.Option(help="Keep the old files beside.")] = False,
        data_dir: DataDir = None,
    ) -> None:
        """Re-encrypt every stored value with a new key (the hub stopped).

        Events, snapshots, catalog, tokens; then set CHITTY_ENCRYPTION_KEY_FILE to the new
        key."""
        from hub.store import AesGcmCodec, IdentityCodec, load_key
        from hub.store.rekey import RekeyError, rekey

        current = deployment(data_dir)
        try:
            new = IdentityCodec() if to == "none" else AesGcmCodec(load_key(Path(to)))
        except ValueError as error:
            raise fail(error) from None
        lock = _offline(current.data_dir)
        try:
            old = stored_codec(current)
            for name, layout in _layouts():
                path = current.data_dir / name
                if path.is_dir():
                    report = rekey(path, old, new, keep_old=keep_old, layout=layout)
                    console.print(f"{name}: {report.records} values re-encrypted")
        except (RekeyError, ValueError) as error:
            raise fail(error) from None
        finally:
            lock.release()
        if to == "none":
            done = "now start the hub with --no-encryption (CHITTY_ENCRYPTION=false)"
        elif current.key_file is not None and Path(to).resolve() == current.key_file.resolve():
            done = f"the hub finds {to} by itself"
        else:
            done = f"now set CHITTY_ENCRYPTION_KEY_FILE={to}"
        console.print(f"[green]done[/]: {done}")

    @app.command(rich_help_panel=PANEL)
    def compact(data_dir: DataDir = None) -> None:
        """Rewrite every LMDB file without its free pages (the hub stopped).

        After an erasure, so no old bytes stay on disk."""
        from hub.store.rekey import RekeyError
        from hub.store.rekey import compact as compact_env

        current = deployment(data_dir)
        lock = _offline(current.data_dir)
        try:
            codec = stored_codec(current)
            for name, layout in _layouts():
                path = current.data_dir / name
                if path.is_dir():
                    report = compact_env(path, codec, layout=layout)
                    console.print(f"{name}: {report.records} values copied")
        except RekeyError as error:
            raise fail(error) from None
        finally:
            lock.release()

    def _layouts() -> Any:
        """Each LMDB environment of a data dir, with how its values are encoded (None: the
        store or catalog layout, detected)."""
        from hub.store.rekey import ALL_VALUES

        return (("lmdb", None), ("catalog", None), ("auth", {"tokens": ALL_VALUES}))

    def _offline(data_dir: Path) -> HubLock:
        try:
            return HubLock.take(data_dir)
        except LockedError as error:
            raise fail(error) from None
