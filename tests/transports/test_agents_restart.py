"""A webhook agent across a SIGKILL of the whole hub (`chitty up`): its registration, secret
and marks survive; what was acknowledged is not sent again; nothing is lost (at least once:
only the batch the receiver had not acknowledged may come twice)."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from hub.auth.errors import SignatureError
from hub.auth.principal import Role
from hub.auth.signing import SIGNATURE_HEADER, TIMESTAMP_HEADER, signed_headers, verify_webhook
from hub.auth.tokens import TokenStore, derive_signing_key
from hub.settings import HubSettings
from tests.transports.test_restart import ADMIN, crash, free_port, launch, start
from tests.waiting import until


class Receiver(ThreadingHTTPServer):
    """A webhook endpoint on loopback that verifies signatures; `status` is what it answers."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.secret = ""
        self.status = 200
        self.accepted: list[dict[str, Any]] = []
        self.refused: list[dict[str, Any]] = []  # events of batches answered with `status`
        self.forged = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/hook"

    def ids(self) -> list[str]:
        return [e["eventId"] for e in self.accepted]

    def contents(self, events: list[dict[str, Any]]) -> list[str]:
        return [e["entity"]["content"] for e in events if e["domain"] == "todos"]


class _Handler(BaseHTTPRequestHandler):
    server: Receiver

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        try:
            verify_webhook(
                self.server.secret,
                self.headers.get(TIMESTAMP_HEADER),
                self.headers.get(SIGNATURE_HEADER),
                body,
            )
        except SignatureError:
            self.server.forged += 1
            self.send_response(401)
        else:
            events = json.loads(body)["events"]
            if self.server.status == 200:
                self.server.accepted.extend(events)
            else:
                self.server.refused.extend(events)
            self.send_response(self.server.status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()


def _call(
    base: str, method: str, path: str, token: str, body: Any = None, sign: bool = False
) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else b""
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {token}"}
    if sign:
        headers.update(signed_headers(derive_signing_key(token), method, path, data))
    request = urllib.request.Request(base + path, data=data or None, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def _service_token(data: Path) -> str:
    """A service token minted in the hub's own token store (as `chitty token create` does)."""
    environ = {"CHITTY_CONFIG_DIR": str(data.with_name(data.name + "-config"))}
    settings = HubSettings.from_env(environ, data_dir=data)
    with TokenStore(data / "auth", codec=settings.value_codec()) as tokens:
        _, secret = tokens.create("restart-bot", Role.SERVICE)
    return secret


def _todo(base: str, session: str, content: str) -> None:
    body = {"content": content, "sessionId": session}
    status, answer = _call(base, "POST", "/api/v1/todos", ADMIN, body)
    assert status == 201, answer


@pytest.mark.slow
def test_a_webhook_agent_survives_a_sigkill_of_the_hub(tmp_path: Path, receiver: Receiver) -> None:
    data = tmp_path / "data"
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    namespace = f"agents-restart-{port}"
    hub = start(data, port, launch(data, port, namespace, "--hosts", "2"))
    try:
        service = _service_token(data)
        body = {
            "name": "survivor",
            "subscribe": {"domains": ["todos"]},
            "webhook": {"url": receiver.url},
        }
        status, made = _call(base, "POST", "/api/v1/agents", service, body, sign=True)
        assert status == 201, made
        receiver.secret = made["webhookSecret"]
        agent = made["agentId"]
        status, session = _call(
            base, "POST", "/api/v1/sessions", ADMIN, {"sessionId": "s", "platform": "cli"}
        )
        assert status == 201, session
        session_id = session["entity"]["chittyId"]
        _todo(base, session_id, "before")
        until(lambda: receiver.contents(receiver.accepted) == ["before"], 30, "the first todo")
        receiver.status = 503  # the next batch is not acknowledged before the crash
        _todo(base, session_id, "unacknowledged")
        until(lambda: receiver.refused, 30, "an unacknowledged delivery")
        crash(hub)

        receiver.status = 200
        hub = start(data, port, launch(data, port, namespace, "--hosts", "2"))
        _todo(base, session_id, "after")
        until(lambda: "after" in receiver.contents(receiver.accepted), 60, "the todo after")
        delivered = receiver.contents(receiver.accepted)
        assert delivered == ["before", "unacknowledged", "after"], delivered  # none lost, none
        assert len(set(receiver.ids())) == len(receiver.ids())  # acknowledged ones not resent
        assert receiver.forged == 0
        status, shown = _call(base, "GET", f"/api/v1/agents/{agent}", ADMIN)
        assert status == 200 and shown["lastDelivered"]["events"] == 3, shown
        assert shown["delivery"] == "webhook" and "webhookSecret" not in shown
    finally:
        crash(hub)
