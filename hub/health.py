"""Service health: what a check's answer means (`judged`; `actors.checks.probe` runs one),
what a run of checks means (`classify`), and the services a configuration file lists
(`services_file`).

A check is an HTTP GET answering the expected status (any 2xx by default) within its timeout,
or a TCP connect. `classify` reads the latest checks, newest last: none is `unknown`; a failure
after a pass is `degraded` (intermittent), two in a row, or one with nothing before it, `down`;
a pass slower than the check's `slowMs`, or one with a failure among the last few, `degraded`.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from hub.models.parts import Endpoint
from hub.models.service import Health, HealthCheck, ServiceType

RECENT = 3  # passes after a failure that still read `degraded` (the failure among the last 3)
VERSION_KEYS = ("version", "buildVersion", "release")


@dataclass(frozen=True, slots=True)
class Probe:
    """One check's result."""

    ok: bool
    ms: float
    error: str | None = None  # why it failed, one line
    version: str | None = None  # named by the health answer


def check_of(check: HealthCheck | None, endpoints: Sequence[Endpoint]) -> HealthCheck | None:
    """The check to run: the service's own; one that names no target GETs the service's first
    http(s) endpoint (with the check's other settings); None: nothing to check."""
    if check is not None and (check.url if check.kind == "http" else check.address):
        return check
    for endpoint in endpoints:
        if endpoint.protocol in ("http", "https") and endpoint.url.startswith(("http:", "https:")):
            return (check or HealthCheck()).model_copy(update={"kind": "http", "url": endpoint.url})
    return None


def judged(check: HealthCheck, status: int, body: bytes, ms: float) -> Probe:
    """What an HTTP check's answer means: the expected status (any 2xx by default) passes,
    and a JSON body naming a version (`VERSION_KEYS`) gives it."""
    wanted = status == check.expect_status if check.expect_status else 200 <= status < 300
    if not wanted:
        return Probe(False, ms, f"answered {status}, expected {check.expect_status or '2xx'}")
    return Probe(True, ms, version=_version(body))


def _version(body: bytes) -> str | None:
    try:
        answer = json.loads(body)
    except ValueError:
        return None
    if not isinstance(answer, dict):
        return None
    for key in VERSION_KEYS:
        value = answer.get(key)
        if isinstance(value, str | int | float) and not isinstance(value, bool):
            return str(value)[:200]
    return None


def one_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return (text[0] if text else type(error).__name__)[:500]


def classify(probes: Sequence[Probe], slow_ms: float) -> Health:
    """What the latest checks (newest last) say of a service's health."""
    if not probes:
        return Health.UNKNOWN
    last = probes[-1]
    if not last.ok:
        return Health.DOWN if len(probes) == 1 or not probes[-2].ok else Health.DEGRADED
    if last.ms > slow_ms or not all(p.ok for p in probes[-RECENT:]):
        return Health.DEGRADED
    return Health.HEALTHY


@dataclass(frozen=True, slots=True)
class Listed:
    """A service a configuration file lists."""

    name: str
    type: ServiceType
    check: HealthCheck
    endpoints: tuple[Endpoint, ...]


class ServicesFileError(ValueError):
    """The services file is not what it should be; the message names the entry and field."""


def services_file(path: Path) -> list[Listed]:
    """The services `path` lists (TOML)::

    [[service]]
    name = "billing"
    url = "http://127.0.0.1:8080/health"   # or: address = "db.internal:5432" (TCP)
    type = "external"                       # chittyapp, chittyservice (default), external
    expect_status = 200                     # optional; any 2xx by default
    timeout_s = 5
    interval_s = 30
    slow_ms = 1000
    """
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        raise ServicesFileError(f"{path}: {one_line(error)}") from None
    entries = data.get("service", [])
    if not isinstance(entries, list):
        raise ServicesFileError(f"{path}: `service` must be an array of tables ([[service]])")
    found: list[Listed] = []
    for index, entry in enumerate(entries):
        where = f"{path}: service {index + 1}"
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            raise ServicesFileError(f"{where}: needs a name")
        where = f"{path}: service {entry['name']!r}"
        known = {"name", "type", "url", "address", "expect_status"}
        known |= {"timeout_s", "interval_s", "slow_ms"}
        unknown = sorted(set(entry) - known)
        if unknown:
            raise ServicesFileError(f"{where}: unknown field {unknown[0]!r}")
        if ("url" in entry) == ("address" in entry):
            raise ServicesFileError(f"{where}: needs exactly one of url (HTTP) or address (TCP)")
        try:
            check = HealthCheck(
                kind="http" if "url" in entry else "tcp",
                **{k: v for k, v in entry.items() if k not in ("name", "type")},
            )
            kind = ServiceType(entry.get("type", ServiceType.CHITTYSERVICE))
        except ValidationError as error:
            first = error.errors()[0]
            field = ".".join(str(p) for p in first["loc"]) or "?"
            raise ServicesFileError(f"{where}: {field}: {first['msg']}") from None
        except ValueError:
            kinds = "one of chittyapp, chittyservice, external"
            raise ServicesFileError(f"{where}: type: {kinds}") from None
        endpoints = (Endpoint(url=check.url, protocol=_scheme(check.url)),) if check.url else ()
        found.append(Listed(entry["name"], kind, check, endpoints))
    return found


def _scheme(url: str) -> Any:
    return "http" if url.startswith("http:") else "https"
