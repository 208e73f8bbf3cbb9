"""Slack end to end: a real hub (Ray, LMDB, the aiohttp gateway) configured only by the spec's
environment variables pointing at the Slack emulator on a loopback port; the adapter actor
talks to it with the official `slack_sdk`."""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from tests.actors.conftest import settings_for
from tests.emulators import Background
from tests.emulators.slack import Posted, SlackEmulator, reaction_added
from tests.transports.conftest import SESSION, Gateway
from tests.waiting import until
from transports.channels import CHANNELS
from transports.cli import app


class World:
    """The hub, the emulated workspace on a loop of its own, and the way to wait for both."""

    def __init__(self, gateway: Gateway, slack: SlackEmulator, background: Background) -> None:
        self.gateway = gateway
        self.slack = slack
        self.background = background

    def about(self, content: str) -> list[Posted]:
        """The messages showing the entity named `content` (its title line ends with it)."""
        return [
            m
            for m in self.slack.live()
            if m.text.split("\n")[0].endswith(f": {content}") and m.thread_ts is None
        ]

    def posted(self, content: str, timeout: float = 15.0) -> Posted:
        """The one message showing the entity named `content`, once it is there."""
        until(lambda: len(self.about(content)) == 1, timeout)
        [posted] = self.about(content)
        return posted

    def signed(self, path: str, event: dict[str, Any], **options: Any) -> tuple[int, Any]:
        url = f"{self.gateway.url}{path}"
        return self.background.call(self.slack.event(url, event, **options))

    def todo(self, content: str, **fields: Any) -> str:
        status, body, _ = self.gateway.request(
            "POST", "/api/v1/todos", {"content": content, "sessionId": SESSION, **fields}
        )
        assert status == 201, body
        return str(body["entity"]["chittyId"])


def slack_env(slack: SlackEmulator) -> dict[str, str]:
    return {
        "SLACK_BOT_TOKEN": slack.token,
        "SLACK_SIGNING_SECRET": slack.signing_secret,
        "SLACK_APP_TOKEN": slack.app_token,
        "CHITTY_SLACK_CHANNEL": "CGENERAL",
        "CHITTY_SLACK_API_URL": slack.api_url,
    }


@pytest.fixture(scope="module")
def world(ray_cluster: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    background = Background()
    slack = background.call(SlackEmulator().start())
    settings = settings_for(tmp_path_factory.mktemp("slack"), adapter_env=slack_env(slack))
    gateway = Gateway(settings, CHANNELS)
    made = World(gateway, slack, background)
    until(lambda: _state(gateway) == "connected")
    yield made
    gateway.close()
    background.call(slack.stop())
    background.close()


def _state(gateway: Gateway) -> str:
    _, body, _ = gateway.request("GET", "/api/v1/adapters")
    return str(next(a["state"] for a in body["adapters"] if a["name"] == "slack"))


def test_a_todo_made_over_rest_posts_within_a_second_and_its_changes_edit_that_message(
    world: World,
) -> None:
    started = time.monotonic()
    todo = world.todo("Post me to Slack")
    posted = world.posted("Post me to Slack", timeout=5)
    assert time.monotonic() - started < 1.0  # within a second of the write
    assert posted.channel == "CGENERAL" and posted.metadata["event_payload"]["chittyId"] == todo
    world.gateway.request("PUT", f"/api/v1/todos/{todo}", {"status": "in_progress"})
    until(lambda: "in progress" in posted.text)
    assert world.about("Post me to Slack") == [posted] and len(posted.edits) == 1


def test_a_signed_reaction_completes_the_todo_and_bad_signatures_change_nothing(
    world: World,
) -> None:
    todo = world.todo("React with a check mark")
    posted = world.posted("React with a check mark")
    reaction = reaction_added(posted)
    path = "/adapters/slack/events"
    status, body = world.signed(path, reaction, signature="v0=" + "0" * 64)
    assert status == 401 and body["field"] == "X-Slack-Signature"
    status, body = world.signed(path, reaction, timestamp=int(time.time()) - 600)  # stale
    assert status == 401
    assert world.gateway.request("GET", f"/api/v1/todos/{todo}")[1]["entity"]["status"] == "pending"
    status, body = world.signed(path, reaction, event_id="EvREACT1")
    assert status == 200 and body["status"] == "applied", body
    status, body = world.signed(path, reaction, event_id="EvREACT1")  # Slack retries it
    assert status == 200 and body["status"] == "duplicate", body
    _, view, _ = world.gateway.request("GET", f"/api/v1/todos/{todo}")
    assert view["entity"]["status"] == "completed" and view["seq"] == 2  # applied once
    until(lambda: posted.text.startswith("✅"))
    assert world.about("React with a check mark") == [posted]  # edited, no echo


def test_url_verification_and_events_the_hub_does_not_act_on(world: World) -> None:
    body = json.dumps({"type": "url_verification", "challenge": "c-123"}).encode()
    url = f"{world.gateway.url}/adapters/slack/events"
    status, answer = world.background.call(world.slack.post_signed(url, body))
    assert status == 200 and answer == {"challenge": "c-123"}
    status, answer = world.signed("/adapters/slack/events", {"type": "team_join", "user": {}})
    assert status == 200 and answer["status"] == "ignored"


def test_a_thread_reply_and_the_slash_command(world: World) -> None:
    todo = world.todo("Discuss in the thread")
    posted = world.posted("Discuss in the thread")
    reply = {
        "type": "message",
        "channel": posted.channel,
        "user": "U9",
        "text": "the emulator agrees",
        "ts": "1.000001",
        "thread_ts": posted.ts,
    }
    status, body = world.signed("/adapters/slack/events", reply)
    assert status == 200 and body["status"] == "applied", body
    _, session, _ = world.gateway.request("GET", f"/api/v1/sessions/{SESSION}")
    notes = [m["content"] for m in session["entity"]["context"]["messages"]]
    assert "the emulator agrees" in notes
    url = f"{world.gateway.url}/adapters/slack/commands"
    status, answer = world.background.call(world.slack.command(url, "todo add From Slack", "CX"))
    assert status == 200 and answer["response_type"] == "ephemeral"
    assert "added 'From Slack'" in answer["text"], answer
    status, answer = world.background.call(world.slack.command(url, "todo list", "CX"))
    assert answer["text"] == "1. From Slack (pending)"
    assert todo


def test_socket_mode_delivers_events_without_a_public_url(world: World) -> None:
    todo = world.todo("Complete me over Socket Mode")
    posted = world.posted("Complete me over Socket Mode")
    reaction = reaction_added(posted)
    ack = world.background.call(world.slack.push(reaction))
    assert "envelope_id" in ack
    until(
        lambda: (
            world.gateway.request("GET", f"/api/v1/todos/{todo}")[1]["entity"]["status"]
            == "completed"
        )
    )


def test_state_counters_and_a_sync_that_delivers(world: World) -> None:
    project = world.gateway.project("synced to slack")
    made = [world.todo(f"sync {n}", projectId=project) for n in range(3)]
    until(lambda: all(len(world.about(f"sync {n}")) == 1 for n in range(3)))
    status, body, _ = world.gateway.request(
        "POST", "/api/v1/sync/todos", {"channels": ["slack"], "projectId": project, "dryRun": True}
    )
    assert status == 200, body
    [dry] = body["targets"]
    assert dry["status"] == "live" and dry["sent"] == 0 and "would deliver" in dry["detail"]
    status, body, _ = world.gateway.request(
        "POST", "/api/v1/sync/todos", {"channels": ["slack"], "projectId": project}
    )
    assert status == 200, body
    [real] = body["targets"]
    assert real["status"] == "live" and real["entities"] == 3 and real["skipped"] == 3  # shown
    _, adapters, _ = world.gateway.request("GET", "/api/v1/adapters")
    slack = next(a for a in adapters["adapters"] if a["name"] == "slack")
    assert slack["state"] == "connected" and slack["sent"] >= 3
    _, health, _ = world.gateway.request("GET", "/health")
    assert {"name": "slack", "state": "connected", "detail": "connected"} in health["adapters"]
    _, text, _ = world.gateway.request("GET", "/metrics")
    assert 'chitty_adapter_state{adapter="slack",state="connected"} 1.0' in text
    assert 'chitty_adapter_sent_total{adapter="slack"}' in text
    assert made


def test_a_delivery_refused_for_good_is_visible_and_retryable(world: World) -> None:
    world.slack.fail_with["chat.postMessage"] = "msg_too_long"
    world.todo("Too long for Slack, for now")
    until(lambda: world.gateway.request("GET", "/api/v1/adapters/slack/failed")[1]["failed"])
    _, failed, _ = world.gateway.request("GET", "/api/v1/adapters/slack/failed")
    assert failed["failed"][0]["reason"] == "msg_too_long"
    del world.slack.fail_with["chat.postMessage"]
    status, body, _ = world.gateway.request("POST", "/api/v1/adapters/slack/retry")
    assert status == 200 and body["retried"] >= 1
    until(lambda: len(world.about("Too long for Slack, for now")) == 1)
    status, body, _ = world.gateway.request("POST", "/api/v1/adapters/slack/test")
    assert status == 200 and body["sent"] is True
    assert any("a test message" in m.text for m in world.slack.live("CGENERAL"))


def test_chitty_adapters_shows_tests_lists_failures_and_retries(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same through the CLI, as an operator runs it: a line per answer, no traceback."""
    monkeypatch.setenv("CHITTY_TOKEN", world.gateway.token)
    runner = CliRunner(env={"COLUMNS": "250"})

    def chitty(*args: str, code: int = 0) -> Any:
        result = runner.invoke(app, [*args, "--hub", world.gateway.url])
        assert result.exit_code == code and "Traceback" not in result.output, result.output
        return result

    listed = chitty("adapters", "list", "--json")
    [slack] = [a for a in json.loads(listed.stdout) if a["name"] == "slack"]
    assert slack["state"] == "connected"
    assert "slack" in chitty("adapters", "list").output
    assert "sent through slack: message " in chitty("adapters", "test", "slack").output
    world.slack.fail_with["chat.postMessage"] = "is_archived"
    todo = world.todo("Archived channel, for now")
    until(lambda: "is_archived" in chitty("adapters", "failed", "slack").output)
    assert todo in chitty("adapters", "failed", "slack", "--json").stdout
    del world.slack.fail_with["chat.postMessage"]
    assert "queued again" in chitty("adapters", "retry", "slack").output
    until(lambda: len(world.about("Archived channel, for now")) == 1)
    assert "no adapter" in chitty("adapters", "test", "nosuch", code=1).output


def test_a_429_is_waited_out_and_an_outage_drains(world: World) -> None:
    world.slack.rate_limited, world.slack.retry_after = 1, 1
    world.todo("Rate limited once")
    until(lambda: len(world.about("Rate limited once")) == 1, timeout=10)
    world.slack.down = True
    world.todo("Posted after the outage")
    time.sleep(1.0)
    assert world.about("Posted after the outage") == []
    world.slack.down = False
    until(lambda: len(world.about("Posted after the outage")) == 1, timeout=20)


@pytest.mark.slow
def test_a_sigkill_of_the_adapter_actor_loses_nothing_and_posts_nothing_twice(
    world: World,
) -> None:
    made = [world.todo(f"through a kill {n}") for n in range(30)]
    import ray

    pid = ray.get(world.gateway.runtime.adapters["slack"].pid())
    os.kill(pid, signal.SIGKILL)
    more = [world.todo(f"after the kill {n}") for n in range(10)]
    texts = [f"through a kill {n}" for n in range(30)] + [f"after the kill {n}" for n in range(10)]
    until(lambda: all(world.about(t) for t in texts), timeout=60)
    for text in texts:
        assert len(world.about(text)) == 1, text  # once each
    assert len(made) + len(more) == 40


@pytest.mark.slow
def test_the_message_map_and_cursor_survive_a_restart_of_the_whole_hub(
    ray_cluster: None, tmp_path: Path
) -> None:
    background = Background()
    slack = background.call(SlackEmulator().start())
    settings = settings_for(tmp_path, adapter_env=slack_env(slack))
    gateway = Gateway(settings, CHANNELS)
    world = World(gateway, slack, background)
    try:
        until(lambda: _state(gateway) == "connected")
        todo = world.todo("Outlives a restart")
        posted = world.posted("Outlives a restart")
        gateway.close()
        gateway = world.gateway = Gateway(settings, CHANNELS)
        until(lambda: _state(gateway) == "connected")
        gateway.request("PUT", f"/api/v1/todos/{todo}", {"status": "blocked"})
        until(lambda: "blocked" in posted.text)
        assert world.about("Outlives a restart") == [posted]  # the same ts, edited
        reaction = reaction_added(posted)
        status, body = world.signed("/adapters/slack/events", reaction)
        assert status == 200 and body["status"] == "applied"
    finally:
        gateway.close()
        background.call(slack.stop())
        background.close()
