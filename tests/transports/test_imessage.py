"""iMessage end to end: a real hub (Ray, LMDB, the aiohttp gateway) configured only by its
environment variables pointing at the BlueBubbles emulator on a loopback port; BlueBubbles'
webhook posted to the gateway, with the secret in its URL or without."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.actors.conftest import settings_for
from tests.emulators import Background
from tests.emulators.bluebubbles import CHAT, BlueBubblesEmulator, Sent, tapback
from tests.transports.conftest import SESSION, Gateway
from tests.waiting import until
from transports.channels import CHANNELS

SECRET = "the-webhook-secret"


class World:
    def __init__(self, gateway: Gateway, bb: BlueBubblesEmulator, background: Background) -> None:
        self.gateway = gateway
        self.bb = bb
        self.background = background

    def posted(self, content: str) -> Sent:
        """The one message showing the todo named `content`, once it is there."""

        def about() -> list[Sent]:
            return [m for m in self.bb.top() if m.text.split("\n")[0].endswith(f": {content}")]

        until(lambda: len(about()) == 1)
        return about()[0]

    def status_of(self, todo: str) -> str:
        return str(self.gateway.request("GET", f"/api/v1/todos/{todo}")[1]["entity"]["status"])


@pytest.fixture(scope="module")
def world(ray_cluster: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    background = Background()
    bb = background.call(BlueBubblesEmulator().start())
    env = {
        "CHITTY_BLUEBUBBLES_URL": bb.url,
        "CHITTY_BLUEBUBBLES_PASSWORD": bb.password,
        "CHITTY_IMESSAGE_CHAT": CHAT.split(";")[-1],  # an address: its one-to-one chat
        "CHITTY_IMESSAGE_WEBHOOK_SECRET": SECRET,
    }
    settings = settings_for(tmp_path_factory.mktemp("imessage"), adapter_env=env)
    gateway = Gateway(settings, CHANNELS)
    made = World(gateway, bb, background)
    until(lambda: _adapter(gateway)["state"] == "connected")
    yield made
    gateway.close()
    background.call(bb.stop())
    background.close()


def _adapter(gateway: Gateway) -> dict[str, object]:
    _, body, _ = gateway.request("GET", "/api/v1/adapters")
    return next(a for a in body["adapters"] if a["name"] == "imessage")  # type: ignore[no-any-return]


def test_a_todo_made_over_rest_arrives_in_the_chat_and_its_changes_edit_it(world: World) -> None:
    status, body, _ = world.gateway.request(
        "POST", "/api/v1/todos", {"content": "Text me from the hub", "sessionId": SESSION}
    )
    assert status == 201, body
    sent = world.posted("Text me from the hub")
    assert sent.chat == CHAT and sent.method == "private-api"
    todo = body["entity"]["chittyId"]
    world.gateway.request("PUT", f"/api/v1/todos/{todo}", {"status": "in_progress"})
    until(lambda: "in progress" in sent.text)
    assert sent.edits and _adapter(world.gateway)["sent"] >= 2


def test_a_tapback_webhook_with_the_secret_completes_and_without_it_is_refused(
    world: World,
) -> None:
    _, body, _ = world.gateway.request(
        "POST", "/api/v1/todos", {"content": "Love this to finish it", "sessionId": SESSION}
    )
    todo = body["entity"]["chittyId"]
    sent = world.posted("Love this to finish it")
    url = f"{world.gateway.url}/adapters/imessage/webhook"
    loved = tapback(sent, "IN-E2E-1")
    for secret in (None, "not-the-secret"):
        status, answer = world.background.call(world.bb.webhook(url, loved, secret))
        assert status == 401 and answer["field"] == "secret", answer
    assert world.status_of(todo) == "pending"
    status, answer = world.background.call(world.bb.webhook(url, loved, SECRET))
    assert status == 200 and answer["status"] == "applied", answer
    status, answer = world.background.call(world.bb.webhook(url, loved, SECRET))  # again
    assert status == 200 and answer["status"] == "duplicate", answer
    assert world.status_of(todo) == "completed"
    until(lambda: sent.text.startswith("✅"))
    assert _adapter(world.gateway)["received"] == 1
