"""WhatsApp end to end: a real hub (Ray, LMDB, the aiohttp gateway) configured only by
environment variables pointing at the Cloud API emulator on a loopback port; webhooks signed
as Meta signs them, through the gateway."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.actors.conftest import settings_for
from tests.emulators import Background
from tests.emulators.whatsapp import Sent, WhatsAppEmulator
from tests.transports.conftest import SESSION, Gateway
from tests.waiting import until
from transports.channels import CHANNELS

ALICE = "15551230001"
HOOK = "/adapters/whatsapp/webhook"


class World:
    def __init__(self, gateway: Gateway, wa: WhatsAppEmulator, background: Background) -> None:
        self.gateway = gateway
        self.wa = wa
        self.background = background

    def posted(self, content: str) -> Sent:
        """The one message showing the todo named `content`, once it is there."""

        def showing() -> list[Sent]:
            heads = (f"todo: {content}\n", f"todo: {content} ·")  # free-form, template
            return [
                s
                for s in self.wa.sent
                if any(h in s.text for h in heads) and not s.text.startswith("updated")
            ]

        until(lambda: len(showing()) == 1)
        return showing()[0]

    def post(self, payload: dict[str, Any], **options: Any) -> tuple[int, Any]:
        return self.background.call(self.wa.post(self.gateway.url + HOOK, payload, **options))

    def todo(self, content: str) -> str:
        status, body, _ = self.gateway.request(
            "POST", "/api/v1/todos", {"content": content, "sessionId": SESSION}
        )
        assert status == 201, body
        return str(body["entity"]["chittyId"])

    def status_of(self, todo: str) -> str:
        return str(self.gateway.request("GET", f"/api/v1/todos/{todo}")[1]["entity"]["status"])


@pytest.fixture(scope="module")
def world(ray_cluster: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    background = Background()
    wa = background.call(WhatsAppEmulator().start())
    env = {
        "WHATSAPP_TOKEN": wa.token,
        "WHATSAPP_PHONE_NUMBER_ID": wa.phone_number_id,
        "WHATSAPP_APP_SECRET": wa.app_secret,
        "WHATSAPP_VERIFY_TOKEN": "verify-me",
        "CHITTY_WHATSAPP_TO": "+" + ALICE,
        "CHITTY_WHATSAPP_TEMPLATE": "chitty_update",
        "CHITTY_WHATSAPP_MIN_GAP_S": "0.05",
        "CHITTY_WHATSAPP_API_URL": wa.api_url,
    }
    gateway = Gateway(settings_for(tmp_path_factory.mktemp("whatsapp"), adapter_env=env), CHANNELS)
    made = World(gateway, wa, background)
    until(lambda: _state(gateway) == "connected")
    yield made
    gateway.close()
    background.call(wa.stop())
    background.close()


def _state(gateway: Gateway) -> str:
    _, body, _ = gateway.request("GET", "/api/v1/adapters")
    return str(next(a["state"] for a in body["adapters"] if a["name"] == "whatsapp"))


def test_a_todo_reaches_whatsapp_as_the_template_and_a_signed_check_mark_completes_it(
    world: World,
) -> None:
    todo = world.todo("Renew the passport")
    sent = world.posted("Renew the passport")
    assert (sent.to, sent.type, sent.template) == (ALICE, "template", "chitty_update")
    reaction = world.wa.reaction(ALICE, sent.wamid)
    status, body = world.post(reaction, signature="sha256=" + "0" * 64)
    assert status == 401 and body["field"] == "X-Hub-Signature-256"
    assert world.status_of(todo) == "pending"  # nothing changed
    status, body = world.post(reaction)
    assert status == 200 and body["status"] == "applied", body
    assert world.post(reaction)[1]["status"] == "duplicate"  # Meta redelivers: applied once
    assert world.status_of(todo) == "completed"
    # The reaction opened Alice's window: the completion goes free-form, quoting the first.
    until(lambda: any(s.text.startswith("updated: ✅") for s in world.wa.sent))
    [update] = [s for s in world.wa.sent if s.text.startswith("updated: ✅")]
    assert (update.type, update.quoted) == ("text", sent.wamid)


def test_a_quoted_done_completes_and_statuses_are_counted(world: World) -> None:
    todo = world.todo("Book the venue")
    sent = world.posted("Book the venue")
    status, body = world.post(world.wa.message(ALICE, "done", quoted=sent.wamid))
    assert status == 200 and body["status"] == "applied"
    assert world.status_of(todo) == "completed"
    status, body = world.post(world.wa.status((sent.wamid, "delivered"), (sent.wamid, "failed")))
    assert status == 200 and body["status"] == "applied"  # the last event's answer
    _, adapters, _ = world.gateway.request("GET", "/api/v1/adapters")
    whatsapp = next(a for a in adapters["adapters"] if a["name"] == "whatsapp")
    assert whatsapp["failed"] == 1 and whatsapp["state"] == "connected"


def test_the_verification_handshake_through_the_gateway(world: World) -> None:
    url = world.gateway.url + HOOK
    assert world.background.call(world.wa.verify(url, "verify-me", "8274")) == (200, "8274")
    status, text = world.background.call(world.wa.verify(url, "guess", "8274"))
    assert status == 403 and "8274" not in text
