"""The iMessage adapter in process: BlueBubbles mode against the BlueBubbles emulator on a loopback
port (the real aiohttp client, the real LMDB adapter store, the in-process hub, no Ray), its
webhook's check, and direct mode as far as this Linux machine can go."""

from __future__ import annotations

import asyncio
import json
import platform
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from actors.adapter import AdapterRunner
from actors.local import LocalHub
from hub.adapter_store import AdapterStore
from hub.adapters import AdapterState, CanEdit, HookRefused, HookRequest, Inbound
from hub.store import MemoryStore
from tests.actors.adapter_world import AdapterWorld
from tests.actors.conftest import settings_for
from tests.emulators.bluebubbles import (
    CHAT,
    BlueBubblesEmulator,
    Sent,
    reply,
    tapback,
    text_message,
)
from tests.messages import create_todo, project_and_session, sync_message
from transports.channels import CHANNELS
from transports.channels.imessage import (
    PART,
    BlueBubblesAdapter,
    BlueBubblesHooks,
    IMessageConfig,
    inbound_event,
    make,
    osascript_argv,
    split,
)

SESSION = "CHITTY-SESSION-IMSG1"
PROJECT = "CHITTY-PROJ-IMSG1"
SECRET = "hook-secret"


class World(AdapterWorld):
    """A hub, a BlueBubbles server, and the adapter between them (re-made by `restart`)."""

    def __init__(self, tmp: Path, bb: BlueBubblesEmulator) -> None:
        super().__init__(tmp, "imessage")
        self.bb = bb
        self.config = IMessageConfig(
            url=bb.url, password=bb.password, chat=CHAT, webhook_secret=SECRET
        )
        self.hooks = BlueBubblesHooks(self.config)
        self.start()

    def make_adapter(self) -> BlueBubblesAdapter:
        return BlueBubblesAdapter(self.config)

    async def todo(self, todo: str, content: str) -> Sent:
        """A todo made in the hub, and the one message that shows it."""
        await self.write(create_todo(todo, content, SESSION, data={"projectId": PROJECT}))
        await self.pump()
        [sent] = [m for m in self.bb.top() if content in m.text]
        return sent

    async def webhook(self, message: dict[str, Any], secret: str | None = SECRET) -> list[str]:
        """A webhook call as the gateway hands it over: each event's answer, by status."""
        query = {} if secret is None else {"secret": secret}
        body = json.dumps({"type": "new-message", "data": message}).encode()
        request = HookRequest("imessage_webhook", "", "", query, {}, body)
        received = self.hooks.receive(request)
        return [(await self.runner.inbound(e)).status for e in received.events]


async def _scenario(tmp: Path, private_api: bool, body: Callable[[World], Awaitable[None]]) -> None:
    bb = await BlueBubblesEmulator(private_api=private_api).start()
    made = World(tmp, bb)
    try:
        await made.connect()
        await made.write(*project_and_session(PROJECT, SESSION))
        await made.pump()
        await body(made)
    finally:
        await made.runner.stop()
        made.runner.store.close()
        await bb.stop()


def in_world(
    private_api: bool = True,
) -> Callable[[Callable[[World], Awaitable[None]]], Callable[[Path], None]]:
    """A test that runs its body in a fresh world (its own event loop)."""

    def wrap(body: Callable[[World], Awaitable[None]]) -> Callable[[Path], None]:
        def test(tmp_path: Path) -> None:
            asyncio.run(asyncio.wait_for(_scenario(tmp_path, private_api, body), 60))

        test.__name__ = body.__name__
        test.__doc__ = body.__doc__
        return test

    return wrap


@in_world()
async def test_a_todo_is_posted_and_with_the_private_api_later_changes_edit_it(
    world: World,
) -> None:
    sent = await world.todo("CHITTY-TODO-IMSG1", "Text the team")
    assert sent.chat == CHAT and sent.method == "private-api" and sent.temp_guid
    assert isinstance(world.runner.adapter, CanEdit)
    assert world.runner.adapter.get_capabilities().supports_threads
    await world.write(
        sync_message("CHITTY-TODO-IMSG1", data={"status": "in_progress"}, clock={"tester": 2})
    )
    await world.pump()
    assert "in progress" in sent.text and len(sent.edits) == 1
    assert [m for m in world.bb.messages if "Text the team" in m.text] == [sent]  # nothing new
    await world.restart()  # the message map is durable: the next change edits the same one
    await world.write(
        sync_message("CHITTY-TODO-IMSG1", data={"status": "blocked"}, clock={"tester": 3})
    )
    await world.pump()
    assert "blocked" in sent.text and len(sent.edits) == 2


@in_world(private_api=False)
async def test_without_the_private_api_an_update_is_a_new_message_marked_updated(
    world: World,
) -> None:
    adapter = world.runner.adapter
    assert not isinstance(adapter, CanEdit)  # capabilities tell the truth
    assert not adapter.get_capabilities().supports_threads
    sent = await world.todo("CHITTY-TODO-IMSG2", "Plain AppleScript")
    assert sent.method == "apple-script"
    await world.write(
        sync_message("CHITTY-TODO-IMSG2", data={"status": "in_progress"}, clock={"tester": 2})
    )
    await world.pump()
    [update] = [m for m in world.bb.messages if m.text.startswith("↪ todo: Plain AppleScript")]
    assert "updated: " in update.text and "in progress" in update.text
    assert update.reply_to is None and sent.edits == []  # a message of its own, not an edit


@in_world()
async def test_a_loved_tapback_completes_the_todo_once(world: World) -> None:
    todo = "CHITTY-TODO-IMSG3"
    sent = await world.todo(todo, "Love me")
    liked = tapback(sent, "IN-LOVE-1")
    assert await world.webhook(liked) == ["applied"]
    assert await world.webhook(liked) == ["duplicate"]  # BlueBubbles sent it again
    view = await world.hub.get(todo)
    assert view is not None and view.entity["status"] == "completed" and view.seq == 2
    await world.pump()
    assert sent.text.startswith("✅") and len(world.bb.top()) == 3  # edited, no echo
    laughed = tapback(sent, "IN-HAHA-1", kind="laugh")
    assert await world.webhook(laughed) == []  # not a tapback that completes


@in_world()
async def test_a_reply_joins_the_context_and_done_completes(world: World) -> None:
    todo = "CHITTY-TODO-IMSG4"
    sent = await world.todo(todo, "Discuss me")
    assert await world.webhook(reply(sent, "use the emulator", "IN-R1")) == ["applied"]
    session = await world.hub.get(SESSION)
    assert session is not None
    notes = session.entity["context"]["messages"]  # type: ignore[index,call-overload]
    assert [(n["role"], n["content"]) for n in notes] == [
        ("imessage:+15551234567", "use the emulator")
    ]
    assert await world.webhook(reply(sent, "Done", "IN-R2")) == ["applied"]
    view = await world.hub.get(todo)
    assert view is not None and view.entity["status"] == "completed"


@in_world()
async def test_commands_act_and_strangers_and_echoes_do_not(world: World) -> None:
    added = await world.webhook(text_message("todo add Buy stamps", "IN-C1"))
    assert added == ["applied"]
    stranger = text_message("todo add Sneaky", "IN-C2", sender="+19995550000")
    assert await world.webhook(stranger) == ["ignored"]
    mine = text_message("todo add Echo", "IN-C3", isFromMe=True)
    assert await world.webhook(mine) == []  # the hub's own message coming back
    assert await world.webhook(text_message("hello there", "IN-C4")) == []
    assert world.runner.status().ignored == 1
    todos = [t for t in await world.runner._open_todos(_session_of_chat()) if t]
    assert [t["content"] for t in todos] == ["Buy stamps"]
    # BlueBubbles shows nothing of a webhook's answer: a command's answer is posted in the chat.
    assert await world.webhook(text_message("todo list", "IN-C5")) == ["applied"]
    assert [m.text for m in world.bb.top(CHAT)][-1] == "1. Buy stamps (pending)"


def _session_of_chat() -> str:
    from actors.adapter import _derived

    return _derived("CHITTY-SESSION-", "imessage", CHAT)


@in_world()
async def test_a_wrong_or_missing_secret_is_refused_and_changes_nothing(world: World) -> None:
    todo = "CHITTY-TODO-IMSG5"
    sent = await world.todo(todo, "Guarded")
    for secret in ("wrong", None, ""):
        try:
            await world.webhook(tapback(sent, "IN-X"), secret=secret)
        except HookRefused as refused:
            assert refused.status == 401 and refused.field == "secret"
        else:
            raise AssertionError(f"secret {secret!r} was taken")
    view = await world.hub.get(todo)
    assert view is not None and view.entity["status"] == "pending" and view.seq == 1


@in_world()
async def test_a_429_is_waited_out_and_a_500_retried_nothing_dropped(world: World) -> None:
    world.bb.rate_limited, world.bb.retry_after = 1, "2"
    await world.write(create_todo("CHITTY-TODO-IMSG6", "Slow down", SESSION))
    assert await world.pump() == 2.0  # Retry-After honoured
    assert world.runner.store.pending() == 1
    assert await world.runner.deliver_once() == 0.0
    assert [m for m in world.bb.top() if "Slow down" in m.text]
    world.bb.failing = 1
    await world.write(create_todo("CHITTY-TODO-IMSG7", "Messages hiccup", SESSION))
    await world.pump()
    assert world.runner.state is AdapterState.TRANSIENT_DISCONNECT
    await _until(lambda: world.runner.state is AdapterState.CONNECTED)
    await world.runner.deliver_once()
    assert [m for m in world.bb.top() if "Messages hiccup" in m.text]
    assert world.runner.status().retried == 2


@in_world()
async def test_an_unreachable_server_queues_then_drains(world: World) -> None:
    world.bb.down = True
    await world.write(create_todo("CHITTY-TODO-IMSG8", "Wait for me", SESSION))
    await world.pump()
    assert world.runner.state is AdapterState.TRANSIENT_DISCONNECT
    assert world.runner.store.pending() == 1
    world.bb.down = False
    await _until(lambda: world.runner.state is AdapterState.CONNECTED)
    await world.runner.deliver_once()
    assert world.runner.store.pending() == 0
    assert [m for m in world.bb.top() if "Wait for me" in m.text]


@in_world()
async def test_a_long_text_goes_in_parts_and_nothing_is_lost(world: World) -> None:
    """A `notify` longer than a bubble is posted as several replies under the todo's
    message, in order, which joined are the whole text."""
    todo = "CHITTY-TODO-IMSG9"
    sent = await world.todo(todo, "Notify me")
    text = " ".join(f"line {n} of a long note." for n in range(600))
    assert len(text) > 2 * PART
    notify = {"command": "notify", "arguments": {"text": text}}
    where = {"broadcast": False, "platforms": ["imessage"]}
    await world.write(sync_message(todo, data=notify, kind="command", target=where))
    await world.pump()
    parts = world.bb.replies(sent)
    assert len(parts) == 4 and all(len(p.text) <= PART for p in parts)
    assert "".join(p.text for p in parts) == f"📣 {text}"
    assert all(len(p) <= PART for p in split("x" * 9_000))  # no space to break at: cut


def test_a_wrong_password_is_bad_credentials(tmp_path: Path) -> None:
    async def scenario() -> None:
        bb = await BlueBubblesEmulator(password="the-right-one").start()
        world = World(tmp_path, bb)
        world.config = IMessageConfig(url=bb.url, password="wrong", chat=CHAT)
        world.runner.store.close()
        world.runner = world._runner()
        try:
            await world.runner.connect()
            assert world.runner.state is AdapterState.BAD_CREDENTIALS
            assert "CHITTY_BLUEBUBBLES_PASSWORD" in world.runner.detail
            assert "wrong" not in world.runner.detail
        finally:
            await world.runner.stop()
            world.runner.store.close()
            await bb.stop()

    asyncio.run(scenario())


def test_direct_mode_refuses_off_macos_with_its_reason(tmp_path: Path) -> None:
    """This machine is no Mac: the direct mode says so and is disabled, not retried, and it
    never claims to have sent anything."""
    assert platform.system() != "Darwin"
    env = {"CHITTY_IMESSAGE_MODE": "direct", "CHITTY_IMESSAGE_TO": "alice@icloud.example"}
    [spec] = [s for s in CHANNELS if s.name == "imessage"]
    assert spec.missing(env) == ()  # configured: it starts, and says why it cannot run
    assert spec.missing({}) == spec.needs and "(or CHITTY_IMESSAGE_MODE" in spec.disabled({}).detail

    async def scenario() -> None:
        hub = LocalHub(MemoryStore(), settings_for(tmp_path), tmp_path / "shards.json")
        store = AdapterStore(tmp_path / "adapters" / "imessage")
        runner = AdapterRunner("imessage", make(env), store, hub, hub.outboxes(), hub.stream())
        try:
            await asyncio.wait_for(runner.connect(), 5)
            status = runner.status()
            assert status.state is AdapterState.DISABLED and status.sent == 0
            assert status.detail == (
                f"iMessage direct mode needs macOS (this is {platform.system()}): "
                "use BlueBubbles (CHITTY_BLUEBUBBLES_URL)"
            )
        finally:
            store.close()

    asyncio.run(scenario())


def test_the_applescript_command_passes_text_and_buddy_as_arguments() -> None:
    """Nothing a person wrote is ever part of the script's source."""
    text = 'say "hi" & do shell script "rm -rf ~"'
    argv = osascript_argv(text, "+15551234567")
    assert argv == [
        "osascript",
        "-e",
        "on run argv",
        "-e",
        'tell application "Messages"',
        "-e",
        "set chitty to participant (item 2 of argv) of (1st account whose service type = iMessage)",
        "-e",
        "send (item 1 of argv) to chitty",
        "-e",
        "end tell",
        "-e",
        "end run",
        text,
        "+15551234567",
    ]


def test_events_as_the_hub_reads_them() -> None:
    allowed = frozenset({"+15551234567"})
    hub_message = Sent(CHAT, "HUB-1", "todo: x", "t", "private-api", None, 0.0)
    liked = inbound_event(
        {"type": "new-message", "data": tapback(hub_message, "G1", 2001)}, allowed
    )
    assert liked == Inbound("complete", "G1", CHAT, "+15551234567", _ref("HUB-1"))
    removed = tapback(hub_message, "G2", 3000)  # a Loved taken back
    assert inbound_event({"type": "new-message", "data": removed}, allowed) is None
    command = text_message("Todo list", "G3")
    assert inbound_event({"type": "new-message", "data": command}, allowed) == Inbound(
        "command", "G3", CHAT, "+15551234567", text="todo list", answer_here=True
    )
    assert inbound_event({"type": "updated-message", "data": command}, allowed) is None


def _ref(guid: str) -> Any:
    from hub.adapters import NativeRef

    return NativeRef(CHAT, guid)


async def _until(check: Callable[[], bool], timeout: float = 5.0) -> None:
    for _ in range(int(timeout / 0.05)):
        if check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("timed out")
