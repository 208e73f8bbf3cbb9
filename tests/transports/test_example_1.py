"""Spec Example 1 end to end: a todo made in Claude (over MCP) appears in Slack, in email and
on a WebSocket subscriber's stream; completing it with a Slack reaction updates the hub, the
email thread and the subscriber. Every service is a local emulator on a loopback port, every
client the service's own library; the hub is configured only by environment variables."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from aiohttp import web
from mcp import Client

from tests.actors.conftest import settings_for
from tests.emulators import Background
from tests.emulators.mail import SmtpServer
from tests.emulators.slack import SlackEmulator, reaction_added
from tests.transports.conftest import SESSION, Gateway
from tests.transports.test_mcp import call, run_client
from tests.transports.test_ws import Peer
from tests.waiting import until
from transports.channels import CHANNELS
from transports.gateway.auth import AUTH, authenticate
from transports.mcp.http import add_mcp_routes


class Hub:
    def __init__(self, gateway: Gateway, slack: SlackEmulator, smtp: SmtpServer, mcp: str):
        self.gateway, self.slack, self.smtp, self.mcp = gateway, slack, smtp, mcp


@pytest.fixture(scope="module")
def hub(ray_cluster: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    background = Background()
    slack = background.call(SlackEmulator().start())
    smtp = SmtpServer().start()
    env = {
        "SLACK_BOT_TOKEN": slack.token,
        "SLACK_SIGNING_SECRET": slack.signing_secret,
        "CHITTY_SLACK_CHANNEL": "CTEAM",
        "CHITTY_SLACK_API_URL": slack.api_url,
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": str(smtp.port),
        "CHITTY_EMAIL_SMTP_TLS": "none",
        "CHITTY_EMAIL_FROM": "hub@example.com",
        "CHITTY_EMAIL_TO": "team@example.com",
    }
    settings = settings_for(tmp_path_factory.mktemp("example1"), adapter_env=env)
    gateway = Gateway(settings, CHANNELS)
    app = web.Application(middlewares=[authenticate])  # /mcp, as `chitty up` serves it
    app[AUTH] = gateway.app[AUTH]
    add_mcp_routes(app, gateway.url)
    runner, url = gateway.serve(app)
    made = Hub(gateway, slack, smtp, f"{url}/mcp")

    def connected() -> bool:
        _, body, _ = gateway.request("GET", "/api/v1/adapters")
        return all(a["state"] == "connected" for a in body["adapters"] if a["configured"])

    until(connected)
    yield made
    gateway.call(runner.cleanup())
    gateway.close()
    smtp.stop()
    background.call(slack.stop())
    background.close()


def test_example_1_a_todo_from_claude_reaches_slack_email_and_the_web_and_back(hub: Hub) -> None:
    gateway = hub.gateway

    async def subscribe() -> tuple[Peer, Any]:
        peer = await Peer.connect(gateway.url, token=gateway.token, query="?platform=web")
        subscribed = await peer.subscribe(domains=["todos"], filters={"sessionId": SESSION})
        return peer, subscribed

    web_peer, _ = gateway.call(subscribe())
    made: dict[str, Any] = {}

    async def claude(client: Client) -> None:
        made.update(await call(client, "create_todo", content="File the brief", session_id=SESSION))

    started = time.monotonic()
    run_client(hub.mcp, claude, gateway.token)
    todo = made["entity"]["chittyId"]
    seen = gateway.call(web_peer.events(lambda e: e["entityId"] == todo))
    assert seen[-1]["entity"]["content"] == "File the brief"
    [posted] = until(
        lambda: [
            m for m in hub.slack.live("CTEAM") if m.metadata["event_payload"]["chittyId"] == todo
        ]
    )
    [mailed] = until(lambda: hub.smtp.about(todo))
    assert time.monotonic() - started < 5  # all three, within seconds of Claude's call
    assert "File the brief" in posted.text and "File the brief" in str(mailed.mail["Subject"])

    reaction = reaction_added(posted)
    background = Background()
    try:
        status, body = background.call(
            hub.slack.event(f"{gateway.url}/adapters/slack/events", reaction)
        )
    finally:
        background.close()
    assert status == 200 and body["status"] == "applied"
    _, view, _ = gateway.request("GET", f"/api/v1/todos/{todo}")
    assert view["entity"]["status"] == "completed"
    update = gateway.call(web_peer.events(lambda e: e["entity"]["status"] == "completed"))
    assert update[-1]["source"]["platform"] == "slack"  # the subscriber sees where it came from
    until(lambda: posted.text.startswith("✅"))  # the Slack message, edited in place
    first, again = until(lambda: m if len(m := hub.smtp.about(todo)) == 2 else None)
    assert again.mail["In-Reply-To"] == first.mail["Message-ID"]  # the same email thread
    assert "completed" in again.text
    gateway.call(web_peer.close())
