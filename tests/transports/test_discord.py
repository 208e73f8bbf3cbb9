"""Discord end to end: a real hub (Ray, LMDB, the aiohttp gateway) configured only by the
environment variables pointing at the Discord emulator on a loopback port; the adapter actor
talks to it with `hikari`, REST and a real gateway session (HELLO, IDENTIFY, heartbeats)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.actors.conftest import settings_for
from tests.emulators import Background
from tests.emulators.discord import DiscordEmulator, Posted
from tests.transports.conftest import SESSION, Gateway
from tests.waiting import until
from transports.channels import CHANNELS

CHANNEL = "2100000000000000001"


class World:
    def __init__(self, gateway: Gateway, discord: DiscordEmulator, background: Background) -> None:
        self.gateway = gateway
        self.discord = discord
        self.background = background

    def posted(self, content: str) -> Posted:
        def about() -> list[Posted]:
            return [
                m for m in self.discord.live() if m.content.split("\n")[0].endswith(f": {content}")
            ]

        until(lambda: len(about()) == 1)
        [posted] = about()
        return posted

    def todo(self, content: str, **fields: Any) -> str:
        status, body, _ = self.gateway.request(
            "POST", "/api/v1/todos", {"content": content, "sessionId": SESSION, **fields}
        )
        assert status == 201, body
        return str(body["entity"]["chittyId"])

    def status_of(self, todo: str) -> str:
        return str(self.gateway.request("GET", f"/api/v1/todos/{todo}")[1]["entity"]["status"])

    def adapter(self) -> dict[str, Any]:
        _, body, _ = self.gateway.request("GET", "/api/v1/adapters")
        return dict(next(a for a in body["adapters"] if a["name"] == "discord"))


@pytest.fixture(scope="module")
def world(ray_cluster: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    background = Background()
    discord = background.call(DiscordEmulator().start())
    env = {
        "DISCORD_BOT_TOKEN": discord.token,
        "CHITTY_DISCORD_CHANNEL": CHANNEL,
        "CHITTY_DISCORD_API_URL": discord.api_url,
    }
    settings = settings_for(tmp_path_factory.mktemp("discord"), adapter_env=env)
    gateway = Gateway(settings, CHANNELS)
    made = World(gateway, discord, background)
    until(lambda: made.adapter()["state"] == "connected", timeout=60)
    yield made
    gateway.close()
    background.call(discord.stop())
    background.close()


def test_a_todo_made_over_rest_reaches_the_channel_and_a_reaction_completes_it(
    world: World,
) -> None:
    assert len(world.discord.identified) == 1 and world.discord.connected  # the gateway is up
    todo = world.todo("Post me to Discord")
    posted = world.posted("Post me to Discord")
    assert posted.channel == CHANNEL and todo in posted.content
    world.background.call(world.discord.react(posted))  # over the gateway socket
    until(lambda: world.status_of(todo) == "completed")
    until(lambda: posted.content.startswith("✅"))  # the message edited, none posted
    assert [m for m in world.discord.live() if "Post me to Discord" in m.content] == [posted]
    adapter = world.adapter()
    assert adapter["state"] == "connected" and adapter["received"] == 1
    _, health, _ = world.gateway.request("GET", "/health")
    assert {"name": "discord", "state": "connected", "detail": "connected"} in health["adapters"]
