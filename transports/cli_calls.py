"""How the CLI calls a hub: which hub (--hub, CHITTY_HUB_URL, the hub `chitty up` started
last, the default port), with which credential (CHITTY_TOKEN), and hub refusals as one line."""

from __future__ import annotations

import asyncio
import os
import ssl
from collections.abc import Callable, Coroutine
from typing import Annotated, Any, TypeVar

import typer
from pydantic import ValidationError

from hub.ids import InvalidChittyId, Kind, parse
from hub.settings import HubSettings
from transports.cli_output import aside, fail
from transports.cli_places import HubRecord, latest_hub

T = TypeVar("T")
DEFAULT_HUB = "http://127.0.0.1:8787"

Hub = Annotated[
    str | None,
    typer.Option(
        "--hub",
        envvar="CHITTY_HUB_URL",
        help="The hub's base URL (default: the hub `chitty up` started last on this machine, "
        f"else {DEFAULT_HUB}).",
        show_default=False,
    ),
]
DryRun = Annotated[bool, typer.Option(help="Show what would change; change nothing.")]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON (for scripts), not tables.")]


def settings_or_exit(**overrides: object) -> HubSettings:
    """The hub's settings from CHITTY_* variables and `overrides`; a bad one is exit 2."""
    try:
        return HubSettings.from_env(dict(os.environ), **overrides)
    except ValidationError as error:
        first = error.errors()[0]
        field = ".".join(str(p) for p in first["loc"])
        raise fail(f"setting {field!r}: {first['msg']}", 2) from None


def hub_target(option: str | None) -> tuple[str, HubRecord | None]:
    """The URL to call and, when it came from `chitty up`'s record, that record."""
    if option:
        return option.rstrip("/"), None
    running = latest_hub(os.environ)
    if running is not None:
        return running.url, running
    return DEFAULT_HUB, None


def _trust(record: HubRecord | None) -> ssl.SSLContext | None:
    """How to check a recorded https hub: by the certificate it was started with."""
    if record is None or record.tls_cert is None:
        return None
    context = ssl.create_default_context(cafile=record.tls_cert)
    context.load_default_certs()
    context.check_hostname = False  # it need not name 127.0.0.1
    return context


def client(hub: str | None, timeout_s: float = 30.0) -> Any:
    """A client of the hub this command talks to, with the caller's CHITTY_TOKEN (a call that
    takes longer than `timeout_s` fails)."""
    from transports.client import ChittyClient

    url, record = hub_target(hub)
    token = os.environ.get("CHITTY_TOKEN") or None
    sign = os.environ.get("CHITTY_SIGN", "").lower() in ("1", "true", "yes")
    return ChittyClient(
        url,
        node_id="cli",
        platform="cli",
        timeout_s=timeout_s,
        token=token,
        sign=sign,
        tls=_trust(record),
    )


def run(work: Coroutine[Any, Any, T]) -> T:
    """Run a client call; hub errors become one clear line and exit code 1, never a traceback."""
    from transports.client import ChittyApiError, ChittyUnreachable

    try:
        return asyncio.run(work)
    except ChittyUnreachable as error:
        raise fail(f"{error}. Start a hub with `chitty up` (or name one: --hub URL).") from None
    except ChittyApiError as error:
        where = f" ({error.field})" if error.field else ""
        aside.print(f"[red]error {error.status}:[/] {error.detail}{where}", soft_wrap=True)
        if error.status == 401:
            running = latest_hub(os.environ)
            data = f" --data-dir {running.data_dir}" if running is not None else ""
            aside.print(
                "set CHITTY_TOKEN to a token of this hub: `chitty up` printed an admin token on "
                f"its first start; `chitty token create NAME --role member{data}` makes more",
                soft_wrap=True,
            )
        raise typer.Exit(1) from None


def chitty_id(kind: Kind, what: str) -> Callable[[str | None], str | None]:
    """A typer callback: the value must be a ChittyID of `kind` (a usage error, exit 2, if not)."""

    def check(value: str | None) -> str | None:
        if value is None:
            return None
        try:
            parse(value, expect=kind)
        except InvalidChittyId as error:
            raise typer.BadParameter(f"{error} (a {what} id is CHITTY-{kind.value}-...)") from None
        return value

    return check
