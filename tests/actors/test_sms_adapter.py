"""The SMS adapter in process: the official `twilio` library against the Twilio emulator on a
loopback port, Twilio's signed webhooks checked by the adapter's own `SmsHooks`, the real LMDB
adapter store, the in-process hub (no Ray)."""

from __future__ import annotations

import asyncio
import xml.etree.ElementTree as ET
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from actors.adapter import Answer
from hub.adapters import (
    AdapterMessage,
    AdapterState,
    HookAnswer,
    HookRefused,
    HookRequest,
    RateLimited,
)
from hub.catalog import Query
from hub.domains import SyncDomain
from tests.actors.adapter_world import AdapterWorld
from tests.emulators.twilio import TwilioEmulator
from tests.messages import create_todo, project_and_session, sync_message
from transports.channels.sms import SmsAdapter, SmsConfig, SmsHooks, gsm7, parts

SESSION = "CHITTY-SESSION-SMS1"
PROJECT = "CHITTY-PROJ-SMS1"
ALICE, BOB = "+14155552671", "+12025550123"
PUBLIC = "https://hub.example.com"  # what Twilio calls; the gateway behind a proxy sees another
PATH = "/adapters/sms/inbound"


class World(AdapterWorld):
    """A hub, a Twilio account, and the adapter between them (re-made by `restart`)."""

    def __init__(self, tmp: Path, twilio: TwilioEmulator) -> None:
        super().__init__(tmp, "sms")
        self.twilio = twilio
        self.config = SmsConfig.from_env(twilio.env(f"{ALICE}, {BOB}", PUBLIC))
        self.hooks = SmsHooks(self.config)
        self.start()

    def make_adapter(self) -> SmsAdapter:
        return SmsAdapter(self.config)

    @property
    def adapter(self) -> SmsAdapter:
        assert isinstance(self.runner.adapter, SmsAdapter)
        return self.runner.adapter

    def request(
        self, sender: str, body: str, sid: str | None = None, **signing: Any
    ) -> HookRequest:
        """A webhook call as the gateway behind the proxy receives it (signed for `PUBLIC`)."""
        params = self.twilio.incoming(sender, body, sid)
        headers, data = self.twilio.signed(
            signing.get("url", PUBLIC + PATH), params, signing.get("signature")
        )
        return HookRequest("sms_inbound", "http://127.0.0.1:8787" + PATH, PATH, {}, headers, data)

    async def text(self, sender: str, body: str, sid: str | None = None) -> tuple[Answer, str]:
        """Text the hub as the gateway hands it on: the runner's answer, and the TwiML reply's
        messages joined by newlines."""
        received = self.hooks.receive(self.request(sender, body, sid))
        [event] = received.events
        answer = await self.runner.inbound(event)
        assert received.reply is not None
        return answer, replied(received.reply(answer.status, answer.text))

    async def todos(self) -> list[dict[str, Any]]:
        page = await self.hub.list(Query(SyncDomain.TODOS, limit=100))
        return [dict(row.entity) for row in page.rows]


def replied(answer: HookAnswer) -> str:
    """The texts of a TwiML answer, one per line."""
    assert answer.status == 200 and answer.content_type == "text/xml"
    root = ET.fromstring(str(answer.body))
    assert root.tag == "Response"
    return "\n".join(m.text or "" for m in root.iter("Message"))


def about(twilio: TwilioEmulator, number: str, words: str) -> list[str]:
    return [body for body in twilio.to(number) if words in body]


def in_world(body: Callable[[World], Awaitable[None]]) -> Callable[[Path], None]:
    """A test that runs `body` in a fresh world (its own event loop)."""

    def test(tmp_path: Path) -> None:
        async def scenario() -> None:
            twilio = await TwilioEmulator().start()
            world = World(tmp_path, twilio)
            try:
                await world.runner.connect()
                assert world.runner.state is AdapterState.CONNECTED
                await world.write(*project_and_session(PROJECT, SESSION))
                await body(world)
            finally:
                await world.runner.stop()
                world.runner.store.close()
                await twilio.stop()

        asyncio.run(asyncio.wait_for(scenario(), 60))

    test.__name__ = body.__name__
    test.__doc__ = body.__doc__
    return test


@in_world
async def test_a_todo_texts_every_recipient_and_an_update_is_a_new_text_across_a_restart(
    world: World,
) -> None:
    todo = "CHITTY-TODO-SMS1"
    await world.write(create_todo(todo, "Buy milk", SESSION, data={"projectId": PROJECT}))
    await world.pump()
    for number in (ALICE, BOB):
        [text] = about(world.twilio, number, "todo: Buy milk")
        facts = f"pending, priority medium, project {PROJECT}, session {SESSION}"
        assert text == f"todo: Buy milk\n{facts}\n{todo}"
        assert gsm7(text) and len(text) <= 160  # no status mark: one GSM-7 segment
    [first] = [t for t in world.twilio.sent if t.to == ALICE and "Buy milk" in t.body]
    await world.restart()  # the message map and the cursor are durable
    await world.write(sync_message(todo, data={"status": "in_progress"}, clock={"tester": 2}))
    await world.pump()
    for number in (ALICE, BOB):
        [_, update] = about(world.twilio, number, "todo: Buy milk")
        assert update.startswith("updated: todo: Buy milk\nin progress")  # no edits on SMS
    assert world.runner.store.entity_of("sms", first.sid) == todo  # the first part's sid
    assert world.runner.status().sent == 4  # project, session, todo, its update


@in_world
async def test_a_long_todo_is_sent_as_numbered_parts_with_nothing_lost(world: World) -> None:
    content = " ".join(f"step{n}" for n in range(40))  # 238 characters: past the title's 200
    todo = "CHITTY-TODO-SMS2"
    await world.write(create_todo(todo, content, SESSION, data={"metadata": {"priority": "high"}}))
    await world.pump()
    texts = [t for t in world.twilio.sent if t.to == ALICE][2:]  # after project and session
    assert len(texts) >= 2 and [t.body[: len(f"({n}/")] for n, t in enumerate(texts, 1)] == [
        f"({n}/" for n in range(1, len(texts) + 1)
    ]
    assert all(len(t.body) <= 160 for t in texts)
    words = " ".join(t.body.split(" ", 1)[1] for t in texts).split()  # between words: exact
    title = content[:200]  # what the hub's render shows of a todo (`hub.render.title`)
    assert words == [
        "todo:",
        *title.split(),
        "pending,",
        "priority",
        "high,",
        "session",
        SESSION,
        todo,
    ]
    assert world.runner.store.entity_of("sms", texts[0].sid) == todo
    assert about(world.twilio, BOB, "(1/") == [texts[0].body]


def test_parts_fit_one_segment_each_and_keep_every_character() -> None:
    """Split between words (the space at a split is the only thing left out), or inside a word
    longer than a part."""
    gsm = "word " * 100 + "[braces] cost two septets"
    ucs2 = "café ☕ " * 60 + "🙂" * 40  # an emoji takes two UTF-16 units
    for text, size in ((gsm, _septets), (ucs2, _utf16_units), ("x" * 500, _septets)):
        pieces = parts(text)
        assert len(pieces) > 1
        for n, piece in enumerate(pieces, 1):
            assert piece.startswith(f"({n}/{len(pieces)}) ")
            assert size(piece) <= (70 if size is _utf16_units else 160)
        assert _letters(" ".join(p.split(" ", 1)[1] for p in pieces)) == _letters(text)
    assert parts("short") == ["short"]
    many = parts("a" * 10 * 160)  # ten or more parts: the numbering widens, still one segment
    assert len(many) == 11 and all(len(p) <= 160 for p in many) and many[-1].startswith("(11/11)")


def _septets(text: str) -> int:
    return len(text) + sum(c in "^{}\\[~]|€" for c in text)


def _utf16_units(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _letters(text: str) -> str:
    return "".join(text.split())


@in_world
async def test_a_429_is_waited_out_and_no_recipient_gets_a_text_twice(world: World) -> None:
    world.twilio.rate_limited, world.twilio.retry_after = 1, 3
    await world.runner.follow_once()
    waits = []
    while wait := await world.runner.deliver_once():  # the deliver loop sleeps that long
        waits.append(wait)
    assert waits == [3.0] and world.runner.status().retried == 1  # Retry-After honoured
    for number in (ALICE, BOB):
        texts = world.twilio.to(number)
        assert len(texts) == 2 and len(set(texts)) == 2, texts  # project and session, once each
    # A 429 between recipients: the retry of that delivery texts only who has not had it.
    world.twilio.rate_limited, world.twilio.rate_limit_after = 1, 1
    message = AdapterMessage("CHITTY-TODO-X", "one text", "x", "sms", delivery="d:1")
    with pytest.raises(RateLimited):
        await world.adapter.send_message(message)
    ref = await world.adapter.send_message(message)
    assert world.twilio.to(ALICE).count("one text") == world.twilio.to(BOB).count("one text") == 1
    [alice_s] = [t.sid for t in world.twilio.sent if t.to == ALICE and t.body == "one text"]
    assert ref.message_id == alice_s  # sent before the 429, still the message's sid


@in_world
async def test_an_outage_queues_then_drains(world: World) -> None:
    world.twilio.down = True
    await world.runner.follow_once()
    await world.runner.deliver_once()
    assert world.runner.state is AdapterState.TRANSIENT_DISCONNECT
    assert world.runner.store.pending() == 2 and world.twilio.sent == []
    await world.write(create_todo("CHITTY-TODO-SMS3", "Written in the outage", SESSION))
    await world.runner.follow_once()
    world.twilio.down = False
    for _ in range(100):  # the runner reconnects by itself, with backoff
        if world.runner.state is AdapterState.CONNECTED:
            break
        await asyncio.sleep(0.05)
    assert world.runner.state is AdapterState.CONNECTED
    await world.runner.deliver_once()
    assert world.runner.store.pending() == 0
    assert len(about(world.twilio, ALICE, "Written in the outage")) == 1
    assert len(world.twilio.to(BOB)) == 3


@in_world
async def test_list_add_and_done_replies_act_and_answer_in_twiml(world: World) -> None:
    answer, reply = await world.text(ALICE, "ADD milk")
    assert answer.status == "applied" and reply.startswith("added 'milk' (CHITTY-TODO-")
    answer, reply = await world.text(BOB, "add bread and butter")
    assert reply.startswith("added 'bread and butter'")
    _, reply = await world.text(ALICE, "LIST")
    listed = reply.split("\n")
    assert [line.split(". ", 1)[0] for line in listed] == ["1", "2"]
    assert sorted(line.split(". ", 1)[1] for line in listed) == [
        "bread and butter (pending)",
        "milk (pending)",
    ]
    first = listed[0].removeprefix("1. ").removesuffix(" (pending)")
    answer, reply = await world.text(BOB, "done 1")
    assert answer.status == "applied" and reply == f"completed {first!r}"
    statuses = {t["content"]: t["status"] for t in await world.todos()}
    assert statuses[first] == "completed" and list(statuses.values()).count("pending") == 1
    _, reply = await world.text(ALICE, "hello?")
    assert reply == "Reply LIST, ADD <text> or DONE <number>"  # any other text: the usage
    await world.pump()
    assert not about(world.twilio, ALICE, "todo: bread")  # made here: never texted back


@in_world
async def test_a_retried_webhook_applies_once(world: World) -> None:
    first, _ = await world.text(ALICE, "ADD milk", sid="SM" + "1" * 32)
    again, reply = await world.text(ALICE, "ADD milk", sid="SM" + "1" * 32)  # Twilio retries
    assert (first.status, again.status) == ("applied", "duplicate")
    assert reply.startswith("added 'milk'")  # answered again: the first answer was lost
    assert [t["content"] for t in await world.todos()] == ["milk"]
    await world.text(ALICE, "ADD eggs")
    _, listed = await world.text(ALICE, "LIST")
    first, second = (line.split(" ")[1] for line in listed.split("\n"))
    done, _ = await world.text(BOB, "DONE 1", sid="SM" + "2" * 32)
    again, _ = await world.text(BOB, "DONE 1", sid="SM" + "2" * 32)  # "1" is the other one now
    assert done.status == "applied" and again.status != "applied"
    statuses = {t["content"]: t["status"] for t in await world.todos()}
    assert statuses == {first: "completed", second: "pending"}


@in_world
async def test_stop_ends_texts_to_that_number_until_start(world: World) -> None:
    await world.pump()
    answer, reply = await world.text(ALICE, "Stop")
    assert answer.status == "ignored" and reply == ""  # Twilio confirms opt-outs itself
    await world.write(create_todo("CHITTY-TODO-SMS4", "After the stop", SESSION))
    await world.pump()
    assert about(world.twilio, BOB, "After the stop") and not about(world.twilio, ALICE, "After")
    assert ALICE not in world.twilio.asked[4:]  # not even tried
    await world.text(ALICE, "START")
    await world.write(create_todo("CHITTY-TODO-SMS5", "After the start", SESSION))
    await world.pump()
    assert about(world.twilio, ALICE, "After the start") and about(world.twilio, BOB, "After the")


@in_world
async def test_twilio_s_21610_is_an_opt_out_the_adapter_keeps(world: World) -> None:
    """Restarted after a STOP, the adapter no longer knows it; Twilio refuses the text (21610):
    that number is skipped from then on, the others still get theirs, nothing fails."""
    await world.pump()
    await world.text(ALICE, "UNSUBSCRIBE")
    await world.restart()
    assert world.adapter.opted_out == set()
    await world.write(create_todo("CHITTY-TODO-SMS6", "Refused for Alice", SESSION))
    await world.pump()
    assert about(world.twilio, BOB, "Refused for Alice") and world.adapter.opted_out == {ALICE}
    tried = len(world.twilio.asked)
    await world.write(create_todo("CHITTY-TODO-SMS7", "Not tried for Alice", SESSION))
    await world.pump()
    assert world.twilio.asked[tried:] == [BOB] and world.runner.status().failed == 0
    await world.text(BOB, "stop")  # nobody left to text: a visible failure, not a silent drop
    await world.write(create_todo("CHITTY-TODO-SMS8", "Nobody listens", SESSION))
    await world.pump()
    [failed] = world.runner.store.failed()
    assert "opted out" in failed.reason


@in_world
async def test_strangers_are_ignored_counted_and_not_answered(world: World) -> None:
    answer, reply = await world.text("+13125550199", "ADD free money")
    assert answer.status == "ignored" and reply == ""
    assert world.runner.status().ignored == 1 and await world.todos() == []


@in_world
async def test_a_bad_signature_is_refused_and_changes_nothing(world: World) -> None:
    def refused(request: HookRequest) -> HookRefused:
        with pytest.raises(HookRefused) as caught:
            world.hooks.receive(request)
        return caught.value

    forged = refused(world.request(ALICE, "ADD forged", signature="bm90IGEgc2lnbmF0dXJl"))
    assert forged.status == 401 and forged.field == "X-Twilio-Signature"
    # Signed for the gateway's own URL, not the public one Twilio calls: refused too.
    inner = refused(world.request(ALICE, "ADD inner", url="http://127.0.0.1:8787" + PATH))
    assert inner.status == 401 and PUBLIC in inner.detail
    good = world.request(ALICE, "LIST")
    tampered = HookRequest(
        good.hook, good.url, good.path_qs, good.query, good.headers,
        good.body.replace(b"Body=LIST", b"Body=ADD+tampered"),
    )  # fmt: skip
    assert refused(tampered).status == 401
    unsigned = dict(good.headers)
    del unsigned["X-Twilio-Signature"]
    assert refused(HookRequest(good.hook, good.url, PATH, {}, unsigned, good.body)).status == 401
    assert await world.todos() == []
    blank = world.twilio.incoming(ALICE, "LIST")
    del blank["MessageSid"]
    headers, body = world.twilio.signed(PUBLIC + PATH, blank)
    missing = refused(HookRequest("sms_inbound", good.url, PATH, {}, headers, body))
    assert missing.status == 400 and missing.field == "MessageSid"


def test_numbers_are_e164_and_a_bad_one_names_its_variable() -> None:
    env = {
        "TWILIO_ACCOUNT_SID": "AC1",
        "TWILIO_AUTH_TOKEN": "token",
        "CHITTY_TWILIO_FROM": "+1 (650) 555-1234",
        "CHITTY_SMS_TO": f"+1 415 555 2671, {ALICE} ,+44 20 7946 0958",
    }
    config = SmsConfig.from_env(env)
    assert config.sender == "+16505551234" and config.recipients == (ALICE, "+442079460958")
    for variable, value in (("CHITTY_SMS_TO", f"{ALICE},555-2671"), ("CHITTY_TWILIO_FROM", "hub")):
        with pytest.raises(ValueError, match=variable):
            SmsConfig.from_env({**env, variable: value})


@in_world
async def test_wrong_credentials_are_bad_credentials(world: World) -> None:
    await world.runner.stop()
    world.runner.store.close()
    world.config = world.config.model_copy(update={"auth_token": "rotated"})
    world.runner = world._runner()
    await world.runner.connect()
    assert world.runner.state is AdapterState.BAD_CREDENTIALS
    message = AdapterMessage("CHITTY-TODO-X", "hello", "x", "sms")
    with pytest.raises(Exception, match="auth token"):
        await world.adapter.send_message(message)
    assert world.twilio.sent == []
