"""The WhatsApp adapter in process: its Graph API calls against the Cloud API emulator on a
loopback port, webhook bodies the emulator signs checked by the adapter's own `WhatsAppHooks`,
the real LMDB adapter store, the in-process hub (no Ray)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from multidict import CIMultiDict
from pydantic import ValidationError

from actors.adapter import Answer
from hub.adapters import AdapterMessage, AdapterState, HookRefused, HookRequest, RateLimited
from tests.actors.adapter_world import AdapterWorld
from tests.emulators.whatsapp import Sent, WhatsAppEmulator
from tests.messages import create_todo, project_and_session, sync_message
from transports.channels.whatsapp import (
    WhatsAppAdapter,
    WhatsAppConfig,
    WhatsAppHooks,
    copies,
    split,
)

SESSION = "CHITTY-SESSION-WA1"
PROJECT = "CHITTY-PROJ-WA1"
ALICE, BOB = "15551230001", "15551230002"


class World(AdapterWorld):
    """A hub, a WhatsApp number, and the adapter between them (re-made by `restart`)."""

    def __init__(self, tmp: Path, wa: WhatsAppEmulator, **config: Any) -> None:
        super().__init__(tmp, "whatsapp")
        self.wa = wa
        self.config = WhatsAppConfig(
            token=wa.token,
            phone_number_id=wa.phone_number_id,
            recipients=config.pop("recipients", (ALICE,)),
            app_secret=wa.app_secret,
            verify_token="verify-me",
            api_url=wa.api_url,
            template=config.pop("template", "chitty_update"),
            min_gap_s=config.pop("min_gap_s", 0.0),
        )
        self.hooks = WhatsAppHooks(self.config)
        self.start()

    def make_adapter(self) -> WhatsAppAdapter:
        return WhatsAppAdapter(self.config)

    @property
    def adapter(self) -> WhatsAppAdapter:
        assert isinstance(self.runner.adapter, WhatsAppAdapter)
        return self.runner.adapter

    async def webhook(self, payload: dict[str, Any]) -> list[Answer]:
        """What the gateway does with a signed webhook call: each event to the runner."""
        body, headers = self.wa.signed(payload)
        received = self.hooks.receive(_request("whatsapp_webhook", body, headers))
        return [await self.runner.inbound(event) for event in received.events]

    async def todo(self, todo: str, content: str) -> Sent:
        """Create a todo; the first message that shows it."""
        await self.write(create_todo(todo, content, SESSION, data={"projectId": PROJECT}))
        await self.pump()
        return self.showing(content)[0]

    def showing(self, content: str) -> list[Sent]:
        return [s for s in self.wa.sent if content in s.text]


def _request(hook: str, body: bytes = b"", headers: Any = (), **query: str) -> HookRequest:
    return HookRequest(
        hook, "http://hub/adapters/whatsapp/webhook", "/", query, CIMultiDict(headers), body
    )


def in_world(
    **config: Any,
) -> Callable[[Callable[[World], Awaitable[None]]], Callable[[Path], None]]:
    """A test that runs its body in a fresh world (its own event loop)."""

    def wrap(body: Callable[[World], Awaitable[None]]) -> Callable[[Path], None]:
        def test(tmp_path: Path) -> None:
            async def scenario() -> None:
                wa = await WhatsAppEmulator().start()
                world = World(tmp_path, wa, **config)
                try:
                    await world.runner.connect()
                    assert world.runner.state is AdapterState.CONNECTED
                    await world.write(*project_and_session(PROJECT, SESSION))
                    await body(world)
                finally:
                    await world.runner.stop()
                    world.runner.store.close()
                    await wa.stop()

            asyncio.run(asyncio.wait_for(scenario(), 60))

        test.__name__ = body.__name__
        return test

    return wrap


@in_world()
async def test_outside_the_window_the_template_goes_never_free_form(world: World) -> None:
    sent = await world.todo("CHITTY-TODO-WA1", "Buy stamps")
    assert sent.type == "template" and sent.template == "chitty_update" and sent.to == ALICE
    assert "\n" not in sent.text and "CHITTY-TODO-WA1" in sent.text  # one line, all of it
    assert {s.type for s in world.wa.sent} == {"template"} and world.wa.refused == []
    assert world.runner.status().sent == 3  # project, session, todo


@in_world()
async def test_after_a_message_from_the_recipient_free_form_text_goes(world: World) -> None:
    await world.webhook(world.wa.message(ALICE, "hello hub"))  # opens the window
    sent = await world.todo("CHITTY-TODO-WA2", "Water the plants")
    assert sent.type == "text" and sent.text.startswith("⬜ todo: Water the plants\n")
    old = time.time() - 25 * 3600  # a day-old message does not open it
    await world.webhook(world.wa.message(BOB, "late", at=old))
    assert world.runner.status().ignored == 2  # neither a reply nor a command; Bob unknown


@in_world(template=None)
async def test_outside_the_window_with_no_template_the_delivery_fails_visibly(
    world: World,
) -> None:
    await world.pump()
    [failed, _] = world.runner.store.failed()
    assert failed.reason == (
        "outside the 24-hour window (+15551230001) and no CHITTY_WHATSAPP_TEMPLATE"
    )
    assert world.wa.sent == [] and world.wa.refused == [] and world.runner.status().failed == 2
    await world.webhook(world.wa.message(ALICE, "I am here"))
    assert world.runner.store.retry() == 2
    await world.runner.deliver_once()
    assert [s.type for s in world.wa.sent] == ["text", "text"]


@in_world()
async def test_a_window_meta_says_is_closed_falls_back_to_the_template(world: World) -> None:
    await world.webhook(world.wa.message(ALICE, "hi"))
    world.wa.windows.clear()  # Meta knows better (a message the hub never saw, say)
    sent = await world.todo("CHITTY-TODO-WA3", "Closed after all")
    assert sent.type == "template"
    assert {code for code, _ in world.wa.refused} == {131047}  # refused, never delivered
    assert {s.type for s in world.wa.sent} == {"template"} and len(world.wa.sent) == 3
    assert not world.adapter.in_window(ALICE)


@in_world()
async def test_a_long_text_goes_in_numbered_parts_and_nothing_is_lost(world: World) -> None:
    await world.webhook(world.wa.message(ALICE, "hi"))
    todo = "CHITTY-TODO-WA4"
    first = await world.todo(todo, "Announce me")
    text = " ".join(f"word{n}" for n in range(2500))  # 21,389 characters
    notify = {"command": "notify", "arguments": {"text": text}}
    only_here = {"broadcast": False, "platforms": ["whatsapp"]}
    await world.write(sync_message(todo, kind="command", data=notify, target=only_here))
    await world.pump()
    parts = world.wa.sent[3:]
    assert len(parts) == 6 and all(len(s.text) <= 4096 for s in parts)
    assert [s.text.split(" ", 1)[0] for s in parts] == [f"({n}/6)" for n in range(1, 7)]
    assert "".join(s.text.split(" ", 1)[1] for s in parts) == "📣 " + text  # every character
    assert parts[0].quoted == first.wamid  # in the entity's "thread": quoting its message
    reply = world.wa.message(ALICE, "on it", quoted=parts[-1].wamid)  # to the last part
    [answer] = await world.webhook(reply)
    assert answer.status == "applied" and answer.entity_id == SESSION


def test_split_numbers_parts_within_the_limit_and_keeps_every_character() -> None:
    text = "word " * 3000 + "x" * 9000
    parts = split(text, 900)
    assert all(len(p) <= 900 for p in parts) and len(parts) > 9  # two-digit numbers fit too
    assert "".join(p.split(" ", 1)[1] for p in parts) == text
    assert split("short", 900) == ["short"]


@in_world()
async def test_an_update_is_a_new_message_marked_updated_quoting_the_first(world: World) -> None:
    todo = "CHITTY-TODO-WA5"
    first = await world.todo(todo, "Paint the fence")
    await world.write(sync_message(todo, data={"status": "in_progress"}, clock={"tester": 2}))
    await world.pump()
    [_, update] = world.showing("Paint the fence")
    assert update.text.startswith("updated: ⏳") and update.quoted == first.wamid


@in_world()
async def test_a_429_is_waited_out_and_nothing_is_dropped(world: World) -> None:
    world.wa.rate_limited, world.wa.retry_after = 1, 2
    await world.runner.follow_once()
    assert await world.runner.deliver_once() == 2.0  # Retry-After honoured
    assert world.runner.store.pending() >= 1 and world.runner.status().retried >= 1
    while world.runner.store.pending():
        await world.runner.deliver_once()
    assert [s.to for s in world.wa.sent] == [ALICE, ALICE]  # each once


@in_world(min_gap_s=0.3)
async def test_one_recipient_gets_at_most_one_message_per_gap(world: World) -> None:
    await world.pump()  # project and session, to the same person
    [one, two] = world.wa.sent
    assert two.received - one.received >= 0.29
    world.wa.rate_limited, world.wa.rate_code, world.wa.retry_after = 1, 131056, None
    message = AdapterMessage("CHITTY-TODO-X", "paced", "me", world.wa.phone_number_id)
    with pytest.raises(RateLimited) as limited:  # Meta's pair limit: wait the gap
        await world.adapter.send_message(message)
    assert limited.value.retry_after_s == 0.3


@in_world()
async def test_an_unreachable_service_queues_then_drains(world: World) -> None:
    world.wa.down = True
    await world.runner.follow_once()
    await world.runner.deliver_once()
    assert world.runner.state is AdapterState.TRANSIENT_DISCONNECT
    assert world.runner.store.pending() == 2
    world.wa.down = False
    for _ in range(100):  # the runner reconnects by itself, with backoff
        if world.runner.state is AdapterState.CONNECTED:
            break
        await asyncio.sleep(0.05)
    await world.runner.deliver_once()
    assert len(world.wa.sent) == 2 and world.runner.store.pending() == 0


@in_world()
async def test_bad_credentials_stop_delivery(world: World) -> None:
    world.wa.token = "EAAG-rotated"
    await world.pump()
    assert world.runner.state is AdapterState.BAD_CREDENTIALS
    assert world.runner.store.pending() == 2 and world.wa.sent == []


@in_world()
async def test_a_reaction_or_a_quoted_done_completes_once_across_a_restart(world: World) -> None:
    first = await world.todo("CHITTY-TODO-WA6", "React to me")
    second = await world.todo("CHITTY-TODO-WA7", "Reply done to me")
    await world.restart()  # the message map is durable
    reaction = world.wa.reaction(ALICE, first.wamid)
    assert [a.status for a in await world.webhook(reaction)] == ["applied"]
    assert [a.status for a in await world.webhook(reaction)] == ["duplicate"]  # Meta retries
    assert [
        a.status for a in await world.webhook(world.wa.message(ALICE, "Done", second.wamid))
    ] == ["applied"]
    for todo in ("CHITTY-TODO-WA6", "CHITTY-TODO-WA7"):
        view = await world.hub.get(todo)
        assert view is not None and view.entity["status"] == "completed" and view.seq == 2
    other = world.wa.reaction(ALICE, first.wamid, emoji="👍")
    assert [a.status for a in await world.webhook(other)] == ["ignored"]
    await world.pump()  # the completion is shown as an update, never echoed as a new todo
    assert world.showing("React to me")[-1].text.startswith("updated: ✅")


@in_world()
async def test_a_quoted_reply_joins_the_session_context(world: World) -> None:
    sent = await world.todo("CHITTY-TODO-WA8", "Discuss me")
    [answer] = await world.webhook(world.wa.message(ALICE, "use the emulator", sent.wamid))
    assert answer.status == "applied"
    session = await world.hub.get(SESSION)
    assert session is not None
    notes = session.entity["context"]["messages"]  # type: ignore[index,call-overload]
    assert [(m["role"], m["content"]) for m in notes] == [(f"whatsapp:{ALICE}", "use the emulator")]


@in_world(recipients=(ALICE, BOB))
async def test_every_recipient_gets_a_copy_and_acts_on_their_own(world: World) -> None:
    await world.todo("CHITTY-TODO-WA9", "Shared chore")
    [to_alice, to_bob] = world.showing("Shared chore")
    assert (to_alice.to, to_bob.to) == (ALICE, BOB)
    shown = world.runner.store.shown("CHITTY-TODO-WA9")
    assert shown is not None and copies(shown.ref.message_id) == {
        ALICE: to_alice.wamid,
        BOB: to_bob.wamid,
    }
    assert [a.status for a in await world.webhook(world.wa.reaction(BOB, to_bob.wamid))] == [
        "applied"
    ]
    await world.pump()  # Bob's reaction opened his window; Alice's is closed
    updates = world.showing("updated: ✅")
    assert [(s.to, s.type, s.quoted) for s in updates] == [
        (ALICE, "template", to_alice.wamid),
        (BOB, "text", to_bob.wamid),
    ]


@in_world()
async def test_commands_are_applied_and_answered_in_the_chat(world: World) -> None:
    [added] = await world.webhook(world.wa.message(ALICE, "/chitty todo add Call the plumber"))
    assert added.status == "applied" and "Call the plumber" in added.text
    [listed] = await world.webhook(world.wa.message(ALICE, "Todo list"))  # as a phone types it
    assert listed.text == "1. Call the plumber (pending)"
    await world.wa.wait_for(lambda: len(world.wa.to(ALICE)) == 2)
    answers = world.wa.to(ALICE)
    assert [s.text for s in answers] == [added.text, listed.text]
    assert all(s.type == "text" and s.quoted for s in answers)  # quoting the command


@in_world()
async def test_statuses_are_kept_with_the_message_map_and_a_failure_shows(world: World) -> None:
    first = await world.todo("CHITTY-TODO-WA10", "Track me")
    answers = await world.webhook(
        world.wa.status((first.wamid, "sent"), (first.wamid, "read"), (first.wamid, "delivered"))
    )
    assert [a.status for a in answers] == ["applied", "applied", "duplicate"]  # read stays
    channel = world.wa.phone_number_id
    assert world.runner.store.status_of(channel, first.wamid) == ("read", "")
    second = await world.todo("CHITTY-TODO-WA11", "Undeliverable")
    [failed] = await world.webhook(world.wa.status((second.wamid, "failed")))
    assert failed.status == "applied" and failed.entity_id == "CHITTY-TODO-WA11"
    assert world.runner.store.status_of(channel, second.wamid) == (
        "failed",
        "131026 Message undeliverable",
    )
    assert world.runner.status().failed == 1
    [again] = await world.webhook(world.wa.status((second.wamid, "failed")))
    assert again.status == "duplicate" and world.runner.status().failed == 1
    [stranger] = await world.webhook(world.wa.status(("wamid.notours", "read")))
    assert stranger.status == "ignored"
    await world.webhook(world.wa.message(ALICE, "hi"))
    third = await world.todo("CHITTY-TODO-WA13", "Sent in the window")
    assert third.type == "text" and world.adapter.in_window(ALICE)
    closed = world.wa.status((third.wamid, "failed"), error=(131047, "Re-engagement message"))
    await world.webhook(closed)  # Meta says only now that the window had closed
    assert not world.adapter.in_window(ALICE) and world.runner.status().failed == 2


def test_the_verification_handshake_answers_the_challenge_only_to_the_right_token() -> None:
    config = WhatsAppConfig(
        token="t", phone_number_id="1", recipients=(ALICE,), app_secret="s", verify_token="right"
    )
    hooks = WhatsAppHooks(config)
    query = {"hub.mode": "subscribe", "hub.verify_token": "right", "hub.challenge": "1158201444"}
    answer = hooks.receive(_request("whatsapp_verify", **query)).now
    assert answer is not None and (answer.status, answer.body) == (200, "1158201444")
    assert answer.content_type == "text/plain"
    with pytest.raises(HookRefused) as refused:
        hooks.receive(_request("whatsapp_verify", **{**query, "hub.verify_token": "wrong"}))
    assert refused.value.status == 403 and refused.value.field == "hub.verify_token"


@in_world()
async def test_a_bad_signature_is_refused_and_changes_nothing(world: World) -> None:
    sent = await world.todo("CHITTY-TODO-WA12", "Forge me")
    body, headers = world.wa.signed(world.wa.reaction(ALICE, sent.wamid))
    for signature in ("sha256=" + "0" * 64, ""):
        with pytest.raises(HookRefused) as refused:
            world.hooks.receive(
                _request("whatsapp_webhook", body, {**headers, "X-Hub-Signature-256": signature})
            )
        assert refused.value.status == 401 and refused.value.field == "X-Hub-Signature-256"
    view = await world.hub.get("CHITTY-TODO-WA12")
    assert view is not None and view.entity["status"] == "pending"
    with pytest.raises(HookRefused) as bad:
        world.hooks.receive(_request("whatsapp_webhook", b"[", world.wa.sign(b"[")))
    assert (bad.value.status, bad.value.error) == (400, "bad_json")


def test_a_malformed_recipient_is_a_clear_error() -> None:
    with pytest.raises(ValidationError, match=r"not an E\.164 number"):
        WhatsAppConfig(token="t", phone_number_id="1", recipients="+1555123, 0044")
    with pytest.raises(ValidationError, match="names no recipient"):
        WhatsAppConfig(token="t", phone_number_id="1", recipients="")
    assert WhatsAppConfig(
        token="t", phone_number_id="1", recipients="+1 (555) 123-0001"
    ).recipients == (ALICE,)
