"""`chitty up` killed by SIGKILL, then started again on the same data dir, keeps acked writes."""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import IO, Any

import pytest

from tests.transports.test_rest_workflows import FIVE, FIVE_STATUSES


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


ADMIN = f"restart-admin-{secrets.token_urlsafe(32)}"  # seeded through CHITTY_ADMIN_TOKEN


def call(url: str, method: str = "GET", body: Any = None) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {ADMIN}"}
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def mcp_post(
    url: str, message: dict[str, Any], token: str, context: ssl.SSLContext | None = None
) -> Any:
    """One JSON-RPC message to a hub's /mcp (stateless streamable HTTP), its JSON answer."""
    request = urllib.request.Request(
        url,
        data=json.dumps(message).encode(),
        method="POST",
        headers={
            "Content-Type": "application/json",
            "Accept": "application/json, text/event-stream",
            "Authorization": f"Bearer {token}",
        },
    )
    with urllib.request.urlopen(request, timeout=30, context=context) as response:
        return json.loads(response.read())


def launch(
    data: Path,
    port: int,
    namespace: str,
    *options: str,
    admin: str = ADMIN,
    output: IO[bytes] | None = None,
    env: dict[str, str] | None = None,
) -> subprocess.Popen[bytes]:
    """`chitty up` on `data` and `port` with `options`, seeded with `admin` (not waited for);
    its key (encryption at rest is the default) in a config dir beside `data`; what it prints
    to `output`, if given."""
    command = [sys.executable, "-m", "transports.cli", "up", "--data-dir", str(data)]
    return subprocess.Popen(
        [*command, "--port", str(port), *options],
        cwd=Path(__file__).resolve().parents[2],
        stdout=output if output is not None else subprocess.DEVNULL,
        stderr=subprocess.STDOUT if output is not None else subprocess.DEVNULL,
        start_new_session=True,  # its own process group: SIGKILL takes Ray's processes too
        env={
            **os.environ,
            "CHITTY_NAMESPACE": namespace,
            "CHITTY_ADMIN_TOKEN": admin,
            "CHITTY_CONFIG_DIR": str(data.with_name(data.name + "-config")),
            **(env or {}),
        },
    )


def start(
    data: Path, port: int, hub: subprocess.Popen[bytes] | None = None
) -> subprocess.Popen[bytes]:
    """`chitty up` (or the one already `launch`ed) on `data`, once it answers /health."""
    hub = hub or launch(data, port, f"restart-{port}", "--hosts", "2")
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if call(f"http://127.0.0.1:{port}/health")[0] == 200:
                return hub
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        assert hub.poll() is None, "chitty up exited early"
        time.sleep(0.5)
    raise AssertionError("the hub did not become healthy in 120 s")


def host_nices(hub: subprocess.Popen[bytes]) -> list[int]:
    """The nice of each `ray::HostActor` worker of `hub` (started in a session of its own)."""
    nices = []
    for entry in Path("/proc").iterdir():
        try:
            title = (entry / "cmdline").read_bytes()
            if title.startswith(b"ray::HostActor") and os.getsid(int(entry.name)) == hub.pid:
                nices.append(os.getpriority(os.PRIO_PROCESS, int(entry.name)))
        except (OSError, ValueError):  # not a process, or one that just ended
            continue
    return nices


def example_2(base: str) -> tuple[str, list[str]]:
    """Spec Example 2 over REST (see tests/transports/test_rest_workflows.py): its project
    and sessions."""
    status, body = call(f"{base}/projects", "POST", {"name": "Example 2"})
    assert status == 201, body
    project = body["entity"]["chittyId"]
    sessions = []
    plan = [
        [("Todo 1", "pending"), ("Todo 2", "in_progress")],
        [("todo 2!", "completed"), ("Todo 3", "pending")],
        [("Todo 4", "in_progress"), ("Todo 5", "pending")],
    ]
    for n, todos in enumerate(plan):
        fields = {"sessionId": f"sess-{n}", "platform": "claude-code", "projectId": project}
        status, body = call(f"{base}/sessions", "POST", fields)
        assert status == 201, body
        sessions.append(body["entity"]["chittyId"])
        for content, todo_status in todos:
            fields = {"content": content, "status": todo_status, "sessionId": sessions[-1]}
            assert call(f"{base}/todos", "POST", fields)[0] == 201
    return project, sessions


def crash(hub: subprocess.Popen[bytes]) -> None:
    os.killpg(hub.pid, signal.SIGKILL)
    hub.wait(30)


@pytest.mark.slow
def test_acked_writes_survive_a_sigkill_of_the_whole_hub(tmp_path: Path) -> None:
    port = free_port()
    hub = start(tmp_path, port)
    acked: dict[str, str] = {}
    try:
        # Ray's default would start them at nice 15, behind the gateway (actors.runtime).
        assert host_nices(hub) == [os.getpriority(os.PRIO_PROCESS, hub.pid)] * 2
        base = f"http://127.0.0.1:{port}/api/v1"
        project, sessions = example_2(base)
        status, reconciled = call(f"{base}/todos/reconcile", "POST", {"projectId": project})
        assert status == 200 and len(reconciled["nodes"]) == 5, reconciled
        status, body = call(f"{base}/sessions", "POST", {"sessionId": "acked", "platform": "cli"})
        assert status == 201
        session = body["entity"]["chittyId"]
        for n in range(40):
            status, body = call(
                f"{base}/todos", "POST", {"content": f"acked {n}", "sessionId": session}
            )
            assert status == 201
            acked[body["entity"]["chittyId"]] = f"acked {n}"
        todo = next(iter(acked))
        status, _ = call(
            f"http://127.0.0.1:{port}/api/v1/todos/{todo}", "PUT", {"status": "completed"}
        )
        assert status == 200
        # `chitty up` serves MCP over streamable HTTP at /mcp too.
        initialize = {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "initialize",
            "params": {
                "protocolVersion": "2025-06-18",
                "capabilities": {},
                "clientInfo": {"name": "restart-test", "version": "1"},
            },
        }
        answer = mcp_post(f"http://127.0.0.1:{port}/mcp", initialize, ADMIN)
        assert "tools" in answer["result"]["capabilities"]
    finally:
        crash(hub)
    hub = start(tmp_path, port)
    try:
        for todo, content in acked.items():
            status, body = call(f"http://127.0.0.1:{port}/api/v1/todos/{todo}")
            assert status == 200 and body["entity"]["content"] == content
        status, body = call(f"http://127.0.0.1:{port}/api/v1/todos/{next(iter(acked))}")
        assert body["entity"]["status"] == "completed" and body["seq"] == 2
        status, listed = call(f"http://127.0.0.1:{port}/api/v1/todos?sessionId={session}&limit=100")
        assert {item["entity"]["chittyId"] for item in listed["items"]} == set(acked)
        for sid in sessions:  # Example 2's write back survived too: the same five everywhere
            status, body = call(f"http://127.0.0.1:{port}/api/v1/sessions/{sid}")
            shown = sorted(
                (t["content"].title().rstrip("!"), t["status"]) for t in body["entity"]["todos"]
            )
            assert shown == list(zip(FIVE, FIVE_STATUSES, strict=True)), shown
        status, again = call(
            f"http://127.0.0.1:{port}/api/v1/todos/reconcile", "POST", {"projectId": project}
        )
        assert status == 200 and again["writes"] == []
    finally:
        crash(hub)
