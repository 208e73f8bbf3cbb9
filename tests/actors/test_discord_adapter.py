"""The Discord adapter's logic in process: the real `hikari` (REST and its gateway shard) against
the Discord emulator on a loopback port, the real LMDB adapter store, the in-process hub (no
Ray). Reactions and replies arrive over the emulated gateway socket, as from Discord."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from hub.adapter_store import InFlight
from hub.adapters import AdapterMessage, AdapterState
from tests.actors.adapter_world import AdapterWorld
from tests.emulators.discord import BOT_ID, DiscordEmulator, Posted, bot_token
from tests.messages import create_todo, project_and_session, sync_message
from transports.channels.discord import DiscordAdapter, DiscordConfig

SESSION = "CHITTY-SESSION-DISCORD1"
PROJECT = "CHITTY-PROJ-DISCORD1"
GENERAL = "2100000000000000001"  # the default channel (the emulated webhook's)
PROJECT_CHANNEL = "2200000000000000002"
ADA = "CHITTY-USER-ADA"


class World(AdapterWorld):
    """A hub, a Discord guild, and the adapter between them (re-made by `restart`)."""

    def __init__(self, tmp: Path, discord: DiscordEmulator) -> None:
        super().__init__(tmp, "discord")
        self.discord = discord
        self.token = discord.token
        self.webhook: str | None = None  # CHITTY_DISCORD_WEBHOOK_URL
        self.start()

    def make_adapter(self) -> DiscordAdapter:
        config = DiscordConfig(
            bot_token=self.token,
            channel=GENERAL,
            api_url=self.discord.api_url,
            project_channels={PROJECT: PROJECT_CHANNEL},
            webhook_url=self.webhook,
            ready_timeout_s=10,
        )
        return DiscordAdapter(config)

    def about(self, content: str) -> list[Posted]:
        """The top-level messages showing the entity named `content`."""
        return [
            m
            for m in self.discord.live()
            if m.content.split("\n")[0].endswith(f": {content}") and m.channel not in self.threads
        ]

    @property
    def threads(self) -> set[str]:
        return set(self.discord.threads)

    async def todo(self, todo: str, content: str) -> Posted:
        """Create a todo in the project and deliver it; its message."""
        await self.write(create_todo(todo, content, SESSION, data={"projectId": PROJECT}))
        await self.pump()
        [posted] = self.about(content[:200])
        return posted

    async def until(self, check: Callable[[], Awaitable[bool]], timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while not await check():
            assert time.monotonic() < deadline, "timed out"
            await asyncio.sleep(0.05)

    async def status_of(self, todo: str) -> str:
        view = await self.hub.get(todo)
        assert view is not None
        return str(view.entity["status"])


async def _scenario(tmp: Path, body: Callable[[World], Awaitable[None]]) -> None:
    discord = await DiscordEmulator().start()
    made = World(tmp, discord)
    try:
        await made.connect()
        await made.write(*project_and_session(PROJECT, SESSION))
        await body(made)
    finally:
        await made.runner.stop()
        made.runner.store.close()
        await discord.stop()


def in_world(body: Callable[[World], Awaitable[None]]) -> Callable[[Path], None]:
    """A test that runs `body` in a fresh world (its own event loop)."""

    def test(tmp_path: Path) -> None:
        asyncio.run(asyncio.wait_for(_scenario(tmp_path, body), 90))

    test.__name__ = body.__name__
    test.__doc__ = body.__doc__
    return test


@in_world
async def test_the_gateway_session_identifies_and_heartbeats(world: World) -> None:
    [identify] = world.discord.identified
    assert identify["intents"] & (1 << 15)  # MESSAGE_CONTENT: replies are readable
    assert identify["intents"] & (1 << 9) and identify["intents"] & (1 << 10)  # messages, reacts
    await world.discord.wait_for(lambda: world.discord.heartbeats >= 2, timeout=10)
    assert world.discord.connected  # every heartbeat answered: no zombie reconnect
    assert len(world.discord.identified) == 1 and world.discord.resumed == []


@in_world
async def test_a_todo_posts_in_its_channel_and_updates_edit_that_message_across_a_restart(
    world: World,
) -> None:
    await world.pump()  # the project and the session
    todo = "CHITTY-TODO-DISCORD1"
    posted = await world.todo(todo, "Ship the Discord adapter")
    assert posted.channel == PROJECT_CHANNEL and posted.author["id"] == BOT_ID
    assert {m.channel for m in world.discord.live()} == {PROJECT_CHANNEL}
    assert posted.nonce  # a repost of the same delivery answers this message again
    await world.write(sync_message(todo, data={"status": "in_progress"}, clock={"tester": 2}))
    await world.pump()
    assert world.about("Ship the Discord adapter") == [posted]  # edited, not posted again
    assert "in progress" in posted.content and len(posted.edits) == 1
    assert f"PATCH /channels/{PROJECT_CHANNEL}/messages/{posted.id}" in world.discord.calls
    await world.restart()  # the message map and the cursor are durable
    await world.write(sync_message(todo, data={"status": "completed"}, clock={"tester": 3}))
    await world.pump()
    assert world.about("Ship the Discord adapter") == [posted]
    assert posted.content.startswith("✅") and len(posted.edits) == 2
    assert world.runner.status().sent == 5  # project, session, todo, and two edits
    assert len(world.discord.identified) == 2  # a new process: a new gateway session


@in_world
async def test_a_conflict_opens_a_thread_from_the_entity_s_message(world: World) -> None:
    todo = "CHITTY-TODO-DISCORD2"
    root = await world.todo(todo, "Contested")
    await world.write(
        sync_message(todo, data={"status": "blocked"}, node="a", clock={"tester": 1, "a": 1}),
        sync_message(todo, data={"status": "completed"}, node="b", clock={"tester": 1, "b": 1}),
    )
    await world.pump()
    assert root.id in world.discord.threads  # started from the todo's message: its id
    thread = world.discord.threads[root.id]
    assert thread.parent == PROJECT_CHANNEL and thread.name == "todo: Contested"
    replies = world.discord.in_thread(root)
    assert replies and "conflict on status" in replies[0].content
    assert "chitty conflicts resolve" in replies[0].content
    assert world.discord.calls.count(f"POST /channels/{PROJECT_CHANNEL}/messages/{root.id}/threads")
    await world.restart()  # the thread is there already (Discord: code 160004): posted in it
    high, low = {"metadata": {"priority": "high"}}, {"metadata": {"priority": "low"}}
    await world.write(
        sync_message(todo, data=high, node="c", clock={"tester": 1, "a": 1, "b": 1, "c": 1}),
        sync_message(todo, data=low, node="d", clock={"tester": 1, "a": 1, "b": 1, "d": 1}),
    )
    await world.pump()
    assert len(world.discord.in_thread(root)) == len(replies) + 1
    assert len(world.discord.threads) == 1 and world.runner.store.failed() == []


@in_world
async def test_a_check_reaction_over_the_gateway_completes_the_todo_once(world: World) -> None:
    todo = "CHITTY-TODO-DISCORD3"
    posted = await world.todo(todo, "React to me")
    await world.discord.react(posted, emoji="👀")  # not the check mark: nothing
    await world.discord.react(posted, user=BOT_ID)  # the bot's own: never acted on
    await asyncio.sleep(0.5)
    assert await world.status_of(todo) == "pending"
    await world.discord.react(posted)
    await world.until(lambda: _is(world, todo, "completed"))
    await world.discord.react(posted)  # Discord delivers it again: the same event id
    await asyncio.sleep(0.5)
    view = await world.hub.get(todo)
    assert view is not None and view.seq == 2  # created, completed: once
    assert world.runner.status().received == 1
    before = len(world.discord.messages)
    await world.pump()
    assert len(world.discord.messages) == before  # the completion edits the message (no echo)
    assert posted.content.startswith("✅")


@in_world
async def test_a_reply_in_the_thread_or_to_the_message_joins_the_session_context(
    world: World,
) -> None:
    todo = "CHITTY-TODO-DISCORD4"
    posted = await world.todo(todo, "Discuss me")
    await world.write(
        sync_message(todo, data={"status": "blocked"}, node="a", clock={"tester": 1, "a": 1}),
        sync_message(todo, data={"status": "completed"}, node="b", clock={"tester": 1, "b": 1}),
    )
    await world.pump()  # the conflict opens the thread
    await world.discord.say(posted.id, "use the emulator")  # in the thread
    await world.discord.say(PROJECT_CHANNEL, "and hikari", reply_to=posted)  # a Discord reply
    await world.discord.say(PROJECT_CHANNEL, "unrelated chatter")  # on its own: not for the hub
    await world.discord.say(posted.id, "a bot talking", bot=True)  # another bot: ignored

    async def notes(key: str = "content") -> list[str]:
        session = await world.hub.get(SESSION)
        assert session is not None
        context: Any = session.entity["context"]
        return [str(m[key]) for m in context["messages"]]

    await world.until(lambda: _has(notes, 2))
    await asyncio.sleep(0.3)
    assert sorted(await notes()) == ["and hikari", "use the emulator"]
    assert set(await notes("role")) == {"discord:1400000000000000001"}  # who wrote it
    # The hub's own posts come back over the gateway as MESSAGE_CREATE too: never taken.
    assert world.runner.status().received == 2


async def _has(notes: Callable[[], Awaitable[list[str]]], count: int) -> bool:
    return len(await notes()) >= count


async def _connected(world: World) -> bool:
    return world.runner.state is AdapterState.CONNECTED


async def _is(world: World, todo: str, status: str) -> bool:
    return await world.status_of(todo) == status


def test_a_refused_token_is_bad_credentials(tmp_path: Path) -> None:
    async def scenario() -> None:
        discord = await DiscordEmulator().start()
        world = World(tmp_path, discord)
        try:
            world.runner.store.close()
            world.token = bot_token(secret="rotated")  # well formed, not the bot's
            world.runner = world._runner()
            await world.runner.connect()
            assert world.runner.state is AdapterState.BAD_CREDENTIALS
            assert "refused the token" in world.runner.detail
            await world.runner.stop()
            world.runner.store.close()
            world.token = "not-a-token"  # hikari cannot even read a bot id from it
            world.runner = world._runner()
            await world.runner.connect()
            assert world.runner.state is AdapterState.BAD_CREDENTIALS
        finally:
            await world.runner.stop()
            world.runner.store.close()
            await discord.stop()

    asyncio.run(asyncio.wait_for(scenario(), 60))


@in_world
async def test_a_token_revoked_later_stops_delivery_until_fixed(world: World) -> None:
    world.discord.token = bot_token(secret="rotated")
    await world.pump()
    assert world.runner.state is AdapterState.BAD_CREDENTIALS
    assert world.runner.store.pending() == 2 and world.discord.live() == []


@in_world
async def test_a_429_waits_retry_after_and_then_delivers(world: World) -> None:
    world.discord.rate_limited, world.discord.retry_after = 2, 0.5
    await world.runner.follow_once()
    waits = []
    while wait := await world.runner.deliver_once():
        waits.append(wait)
        await asyncio.sleep(wait)
    assert waits and set(waits) == {0.5}  # retry_after honoured, as Discord gave it
    assert len(world.discord.live()) == 2 and world.runner.status().retried == 2
    world.discord.rate_limited, world.discord.retry_after = 1, 0.25
    world.discord.rate_limit_global = True  # the global limit: waited out the same way
    await world.write(create_todo("CHITTY-TODO-DISCORD11", "After a global 429", SESSION))
    await world.runner.follow_once()
    assert await world.runner.deliver_once() == 0.25
    assert world.about("After a global 429") == []  # not sent again at once (hikari would)
    await asyncio.sleep(0.25)
    assert await world.runner.deliver_once() == 0
    assert len(world.about("After a global 429")) == 1


@in_world
async def test_an_outage_queues_then_drains(world: World) -> None:
    world.discord.down = True
    await world.runner.follow_once()
    await world.runner.deliver_once()
    assert world.runner.state is AdapterState.TRANSIENT_DISCONNECT
    assert world.runner.store.pending() == 2
    world.discord.down_with = 503  # now answering, but failing
    await asyncio.sleep(0.6)
    assert world.runner.state is AdapterState.TRANSIENT_DISCONNECT
    world.discord.down = False
    await world.until(lambda: _connected(world))  # the runner reconnects by itself, backing off
    await world.runner.deliver_once()
    assert len(world.discord.live()) == 2 and world.runner.store.pending() == 0


@in_world
async def test_after_a_forced_reconnect_the_missed_reaction_applies_exactly_once(
    world: World,
) -> None:
    """Discord asks the bot to reconnect (op 7); a reaction made while it is away is replayed
    when it RESUMEs its session (with the dispatches it had already seen, as an at-least-once
    service may): each applies once."""
    first = await world.todo("CHITTY-TODO-DISCORD5", "Seen live")
    missed = await world.todo("CHITTY-TODO-DISCORD6", "Made while away")
    await world.discord.react(first)
    await world.until(lambda: _is(world, "CHITTY-TODO-DISCORD5", "completed"))
    session = world.discord.session
    assert session is not None
    world.discord.replay_overlap = 3  # the RESUME also replays the live reaction
    await world.discord.reconnect()
    await world.discord.wait_for(lambda: not world.discord.connected)
    await world.discord.react(missed)  # nobody connected: kept for the session's RESUME
    await world.discord.wait_for(lambda: world.discord.connected, timeout=20)
    resumed = world.discord.resumed[0]
    assert resumed["session_id"] == session.id and resumed["seq"] < session.seq
    assert len(world.discord.identified) == 1  # resumed, not identified anew
    await world.until(lambda: _is(world, "CHITTY-TODO-DISCORD6", "completed"))
    await asyncio.sleep(0.5)
    for todo in ("CHITTY-TODO-DISCORD5", "CHITTY-TODO-DISCORD6"):
        view = await world.hub.get(todo)
        assert view is not None and view.seq == 2, todo  # created, completed: once each
    assert world.runner.status().received == 2


@in_world
async def test_an_invalid_session_resumes_when_resumable_and_identifies_anew_otherwise(
    world: World,
) -> None:
    first = world.discord.session
    assert first is not None
    await world.discord.invalidate(resumable=True)
    await world.discord.wait_for(lambda: len(world.discord.resumed) == 1, timeout=20)
    assert world.discord.resumed[0]["session_id"] == first.id
    await world.discord.wait_for(lambda: world.discord.connected, timeout=20)
    await world.discord.invalidate(resumable=False)
    await world.discord.wait_for(lambda: len(world.discord.identified) == 2, timeout=20)
    assert world.discord.session is not None and world.discord.session.id != first.id
    await world.discord.wait_for(lambda: world.discord.connected, timeout=20)
    posted = await world.todo("CHITTY-TODO-DISCORD12", "After a new session")
    await world.discord.react(posted)  # the new session delivers
    await world.until(lambda: _is(world, "CHITTY-TODO-DISCORD12", "completed"))


@in_world
async def test_a_long_todo_loses_nothing(world: World) -> None:
    """Content holds 2,000 characters and the title shows 200 of a todo's: the whole of a
    2,500-character todo is in the message's embed, and of a 9,000-character one in an
    attached file too; every part within Discord's limits (the emulator checks them)."""
    long = "".join(f"{n:04d} " for n in range(500))  # 2,500 characters, every one tell-able
    posted = await world.todo("CHITTY-TODO-DISCORD7", long)
    assert len(long) == 2500 and len(posted.content) <= 2000
    assert posted.described == long and posted.files == {}
    longer = "".join(f"{n:05d} " for n in range(1500))  # 9,000
    big = await world.todo("CHITTY-TODO-DISCORD8", longer)
    assert big.files == {"CHITTY-TODO-DISCORD8.txt": longer}
    assert big.described.startswith(longer[:3000]) and len(big.described) <= 4096
    shorter = "".join(f"{n:04d} " for n in range(300))
    await world.write(
        sync_message("CHITTY-TODO-DISCORD8", data={"content": shorter}, clock={"tester": 2})
    )
    await world.pump()  # the edit replaces the embed and drops the file
    assert big.described == shorter and big.files == {} and len(big.edits) == 1
    assert world.runner.store.failed() == []


@in_world
async def test_through_the_webhook_posts_show_the_creator_and_edits_follow(world: World) -> None:
    world.webhook = world.discord.webhook_url
    await world.restart()
    loose = "CHITTY-SESSION-DISCORD2"  # in no project: its todos go to the default channel
    await world.write(
        sync_message(loose, "create", {"sessionId": "s2", "platform": "cli"}, domain="sessions"),
        create_todo("CHITTY-TODO-DISCORD9", "Posted by a webhook", loose, data={"createdBy": ADA}),
    )
    await world.pump()
    [posted] = world.about("Posted by a webhook")
    assert posted.webhook_id and posted.username == ADA and posted.channel == GENERAL
    await world.write(
        sync_message("CHITTY-TODO-DISCORD9", data={"status": "blocked"}, clock={"tester": 2})
    )
    await world.pump()
    assert "blocked" in posted.content and len(posted.edits) == 1
    assert any(c.startswith("PATCH /webhooks/") for c in world.discord.calls)
    await world.restart()  # who posted it is not remembered: the webhook first, then the bot
    await world.write(
        sync_message("CHITTY-TODO-DISCORD9", data={"status": "completed"}, clock={"tester": 3})
    )
    await world.pump()
    assert posted.content.startswith("✅") and world.about("Posted by a webhook") == [posted]
    await world.discord.react(posted)  # a reaction on a webhook's message completes too
    other = await world.todo("CHITTY-TODO-DISCORD10", "In a project channel")
    assert other.webhook_id is None  # the webhook posts only in its own channel
    await world.write(
        sync_message("CHITTY-TODO-DISCORD10", data={"status": "blocked"}, clock={"tester": 2})
    )
    await world.pump()
    assert "blocked" in other.content and world.runner.store.failed() == []


@in_world
async def test_a_post_a_crash_interrupted_is_answered_again_not_posted_twice(
    world: World,
) -> None:
    """Posted, then killed before the post was recorded: the next start posts the job again
    with the same nonce, and Discord (`enforce_nonce`) answers the message it made first."""
    await world.runner.follow_once()
    [job] = [j for j in world.runner.store.jobs() if j.entity_id == SESSION]
    world.runner.store.posting([InFlight(job.id, SESSION, PROJECT_CHANNEL, None, time.time())])
    delivery = f"{world.runner.store.instance}:{job.id}"
    message = AdapterMessage(
        SESSION, "posted before the crash", "x", PROJECT_CHANNEL, delivery=delivery
    )
    first = await world.runner.adapter.send_message(message)
    await world.restart()
    await world.pump()
    about = [m for m in world.discord.live() if m.id == first.message_id or "session" in m.content]
    assert [m.id for m in about] == [first.message_id]  # once
    assert world.runner.store.entity_of(PROJECT_CHANNEL, first.message_id) == SESSION
    assert world.runner.store.in_flight() == [] and world.runner.store.pending() == 0
