"""The watcher's I/O: read a git repository (`read_repo`), run a service's check (`probe`).

What the answers mean lives in the pure core (`hub.git_state`, `hub.health`); here are the
subprocess and the sockets, each bounded by a timeout so nothing waits on them for ever.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Callable
from pathlib import Path

import aiohttp

from hub.git_state import (
    GIT,
    GIT_ENV,
    LOG_FORMAT,
    RepoState,
    RepoUnreadable,
    parse_log,
    parse_status,
    unreadable,
)
from hub.health import Probe, judged, one_line
from hub.models.service import HealthCheck

BODY_LIMIT = 65_536  # of a health answer, read for its version


async def _git(path: Path, *args: str, timeout_s: float) -> str:
    try:
        process = await asyncio.create_subprocess_exec(
            *GIT,
            *args,
            cwd=path,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env={**os.environ, **GIT_ENV},
        )
    except FileNotFoundError as error:
        what = "git is not installed" if error.filename == "git" else "no such directory"
        raise RepoUnreadable(f"{what}: {error.filename}") from None
    except NotADirectoryError:
        raise RepoUnreadable(f"not a directory: {path}") from None
    except PermissionError:
        raise RepoUnreadable(f"permission denied: {path}") from None
    try:
        out, err = await asyncio.wait_for(process.communicate(), timeout_s)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await process.wait()
        raise RepoUnreadable(f"git {args[0]} took longer than {timeout_s:g} s") from None
    if process.returncode != 0:
        raise unreadable(args[0], err, process.returncode)
    return out.decode(errors="replace")


async def read_repo(path: Path, *, remote_url: bool = False, timeout_s: float = 20.0) -> RepoState:
    """Read the repository at `path` (an absolute path); `remote_url`: also its upstream's URL.

    Raises `RepoUnreadable`."""
    if not path.is_absolute():
        raise RepoUnreadable(f"not an absolute path: {path}")
    if not path.exists():
        raise RepoUnreadable(f"no such directory: {path}")
    if not path.is_dir():
        raise RepoUnreadable(f"not a directory: {path}")
    status = await _git(path, "status", "--porcelain=v2", "--branch", "-z", timeout_s=timeout_s)
    branch, commit, upstream, ahead, behind, changes = parse_status(status)
    at, author, subject = None, "", ""
    if commit:
        at, author, subject = parse_log(
            await _git(path, "log", "-1", LOG_FORMAT, timeout_s=timeout_s)
        )
    url = None
    if remote_url and upstream and "/" in upstream:
        remote = upstream.split("/", 1)[0]
        with contextlib.suppress(RepoUnreadable):  # a local-only upstream has no URL
            url = (await _git(path, "remote", "get-url", remote, timeout_s=timeout_s)).strip()
    return RepoState(
        branch, commit, changes, upstream, ahead, behind, at, author, subject, url or None
    )


async def probe(check: HealthCheck, session: aiohttp.ClientSession) -> Probe:
    """Run `check` once; never raises (a failure is a `Probe` with `ok` false)."""
    started = time.perf_counter()

    def took() -> float:
        return round((time.perf_counter() - started) * 1000, 2)

    try:
        async with asyncio.timeout(check.timeout_s):
            if check.kind == "tcp":
                return await _connect(check, took)
            return await _get(check, session, took)
    except TimeoutError:
        return Probe(False, took(), f"no answer within {check.timeout_s:g} s")
    except (aiohttp.ClientError, OSError, ValueError) as error:
        return Probe(False, took(), one_line(error))


async def _connect(check: HealthCheck, took: Callable[[], float]) -> Probe:
    if not check.address:
        return Probe(False, 0.0, "a tcp check needs an address (host:port)")
    host, _, port = check.address.rpartition(":")
    _, writer = await asyncio.open_connection(host.strip("[]"), int(port))
    writer.close()
    await writer.wait_closed()
    return Probe(True, took())


async def _get(
    check: HealthCheck, session: aiohttp.ClientSession, took: Callable[[], float]
) -> Probe:
    if not check.url:
        return Probe(False, 0.0, "an http check needs a url")
    async with session.get(check.url, allow_redirects=False) as response:
        body = await response.content.read(BODY_LIMIT)
    return judged(check, response.status, body, took())
