"""SMS end to end: a real hub (Ray, LMDB, the aiohttp gateway) configured only by environment
variables pointing at the Twilio emulator on a loopback port; the adapter actor talks to it
with the official `twilio` library, and the emulator calls the hub's webhook as Twilio does
(signed for the public URL a proxy would stand at)."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from typing import Any

import pytest

from tests.actors.conftest import settings_for
from tests.emulators import Background
from tests.emulators.twilio import TwilioEmulator
from tests.transports.conftest import SESSION, Gateway
from tests.waiting import until
from transports.channels import CHANNELS

ALICE, BOB = "+14155552671", "+12025550123"
PUBLIC = "https://hub.example.com"
PATH = "/adapters/sms/inbound"


class World:
    def __init__(self, gateway: Gateway, twilio: TwilioEmulator, background: Background) -> None:
        self.gateway = gateway
        self.twilio = twilio
        self.background = background

    def session_of(self, platform: str) -> str | None:
        """The session the adapter of `platform` keeps (the catalog lists it soon after)."""
        _, body, _ = self.gateway.request("GET", "/api/v1/sessions")
        ids = [
            s["entity"]["chittyId"] for s in body["items"] if s["entity"]["platform"] == platform
        ]
        return ids[0] if ids else None

    def texted(self, number: str, words: str) -> list[str]:
        return [body for body in self.twilio.to(number) if words in body]

    def text(self, sender: str, body: str, **options: Any) -> tuple[int, Any]:
        """Text the hub (Twilio's signed webhook): the status and the TwiML's messages, or the
        JSON error."""
        url = self.gateway.url + PATH
        status, kind, answer = self.background.call(
            self.twilio.inbound(url, sender, body, public_url=PUBLIC + PATH, **options)
        )
        if kind != "text/xml":
            return status, json.loads(answer)
        return status, [m.text for m in ET.fromstring(answer).iter("Message")]

    def todo(self, content: str, session: str = SESSION) -> str:
        status, body, _ = self.gateway.request(
            "POST", "/api/v1/todos", {"content": content, "sessionId": session}
        )
        assert status == 201, body
        return str(body["entity"]["chittyId"])

    def adapter(self) -> dict[str, Any]:
        _, body, _ = self.gateway.request("GET", "/api/v1/adapters")
        return dict(next(a for a in body["adapters"] if a["name"] == "sms"))


@pytest.fixture(scope="module")
def world(ray_cluster: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    background = Background()
    twilio = background.call(TwilioEmulator().start())
    env = twilio.env(f"{ALICE},{BOB}", PUBLIC)
    settings = settings_for(tmp_path_factory.mktemp("sms"), adapter_env=env)
    gateway = Gateway(settings, CHANNELS)
    made = World(gateway, twilio, background)
    until(lambda: made.adapter()["state"] == "connected")
    yield made
    gateway.close()
    background.call(twilio.stop())
    background.close()


def test_a_todo_made_over_rest_is_texted_and_a_signed_done_completes_it(world: World) -> None:
    status, reply = world.text(ALICE, "LIST")  # the SMS session is made on first use
    assert status == 200 and reply == ["no open todos"]
    until(lambda: world.session_of("sms") is not None)
    sms = str(world.session_of("sms"))
    todo = world.todo("Water the plants", session=sms)
    until(lambda: all(world.texted(n, "todo: Water the plants") for n in (ALICE, BOB)))

    status, error = world.text(BOB, "DONE 1", signature="bm90IGEgc2lnbmF0dXJl")
    assert status == 401 and error["field"] == "X-Twilio-Signature", error
    _, view, _ = world.gateway.request("GET", f"/api/v1/todos/{todo}")
    assert view["entity"]["status"] == "pending"  # nothing changed

    status, reply = world.text(BOB, "DONE 1", sid="SM" + "d" * 32)
    assert status == 200 and reply == ["completed 'Water the plants'"]
    status, _ = world.text(BOB, "DONE 1", sid="SM" + "d" * 32)  # Twilio retries it
    assert status == 200
    _, view, _ = world.gateway.request("GET", f"/api/v1/todos/{todo}")
    assert view["entity"]["status"] == "completed" and view["seq"] == 2  # applied once
    until(lambda: bool(world.texted(ALICE, "updated: todo: Water the plants\ncompleted")))


def test_stop_and_start_over_the_webhook_and_strangers_counted(world: World) -> None:
    status, reply = world.text(ALICE, "STOP")
    assert status == 200 and reply == []  # Twilio confirms an opt-out itself
    world.todo("Only for Bob")
    until(lambda: bool(world.texted(BOB, "todo: Only for Bob")))
    assert not world.texted(ALICE, "Only for Bob")
    world.text(ALICE, "START")
    world.todo("For both again")
    until(lambda: all(world.texted(n, "todo: For both again") for n in (ALICE, BOB)))
    ignored = world.adapter()["ignored"]
    status, reply = world.text("+13125550199", "ADD free money")
    assert status == 200 and reply == []
    until(lambda: world.adapter()["ignored"] == ignored + 1)
