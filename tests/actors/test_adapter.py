"""An adapter actor's logic in process: the real `slack_sdk` against the Slack emulator on a
loopback port, the real LMDB adapter store, the in-process hub (no Ray)."""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from hub.adapter_store import InFlight
from hub.adapters import AdapterMessage, AdapterState, Inbound
from hub.subscriptions import decode_published
from tests.actors.adapter_world import AdapterWorld
from tests.emulators.slack import SlackEmulator
from tests.messages import create_todo, project_and_session, sync_message
from transports.channels.slack import SlackAdapter, SlackConfig

SESSION = "CHITTY-SESSION-SLACK1"
PROJECT = "CHITTY-PROJ-SLACK1"


class World(AdapterWorld):
    """A hub, a Slack workspace, and the adapter between them (re-made by `restart`)."""

    def __init__(self, tmp: Path, slack: SlackEmulator) -> None:
        super().__init__(tmp, "slack")
        self.slack = slack
        self.users: dict[str, str] = {}  # CHITTY_SLACK_USERS
        self.start()

    def make_adapter(self) -> SlackAdapter:
        config = SlackConfig(
            bot_token=self.slack.token,
            channel="CGENERAL",
            api_url=self.slack.api_url,
            project_channels={PROJECT: "CPROJECT"},
            users=self.users,
            audience_ttl_s=0,  # membership looked up at every delivery
        )
        return SlackAdapter(config)


async def _scenario(tmp: Path, body: Callable[[World], Awaitable[None]]) -> None:
    slack = await SlackEmulator().start()
    made = World(tmp, slack)
    try:
        await made.connect()
        await made.write(*project_and_session(PROJECT, SESSION))
        await body(made)
    finally:
        await made.runner.stop()
        made.runner.store.close()
        await slack.stop()


def in_world(body: Callable[[World], Awaitable[None]]) -> Callable[[Path], None]:
    """A test that runs `body` in a fresh world (its own event loop)."""

    def test(tmp_path: Path) -> None:
        asyncio.run(asyncio.wait_for(_scenario(tmp_path, body), 60))

    test.__name__ = body.__name__
    test.__doc__ = body.__doc__
    return test


@in_world
async def test_a_change_posts_once_and_later_changes_edit_that_message_across_a_restart(
    world: World,
) -> None:
    await world.pump()
    todo = "CHITTY-TODO-SLACK1"
    await world.write(create_todo(todo, "Ship the adapter", SESSION, data={"projectId": PROJECT}))
    await world.pump()
    [posted] = [m for m in world.slack.live("CPROJECT") if "Ship the adapter" in m.text]
    assert posted.blocks  # Block Kit, in the project's mapped channel
    assert {m.channel for m in world.slack.live()} == {"CPROJECT"}  # session, project too
    await world.write(sync_message(todo, data={"status": "in_progress"}, clock={"tester": 2}))
    await world.pump()
    assert [m.ts for m in world.slack.live() if "Ship" in m.text] == [posted.ts]
    assert "in progress" in posted.text and len(posted.edits) == 1
    await world.restart()  # the message map and the cursor are durable
    await world.write(sync_message(todo, data={"status": "completed"}, clock={"tester": 3}))
    await world.pump()
    assert [m.ts for m in world.slack.live() if "Ship" in m.text] == [posted.ts]
    assert posted.text.startswith("✅") and len(posted.edits) == 2
    assert world.runner.status().sent == 5  # project, session, todo, and two edits


@in_world
async def test_a_429_is_waited_out_and_nothing_is_dropped(world: World) -> None:
    world.slack.rate_limited, world.slack.retry_after = 2, 1
    await world.runner.follow_once()
    waits = []
    while wait := await world.runner.deliver_once():
        waits.append(wait)
    assert waits and set(waits) == {1.0}  # Retry-After honoured (both 429s in one round or two)
    assert len(world.slack.live()) == 2 and world.runner.status().retried == 2


@in_world
async def test_an_unreachable_service_queues_then_drains(world: World) -> None:
    world.slack.down = True
    await world.runner.follow_once()
    await world.runner.deliver_once()
    assert world.runner.state is AdapterState.TRANSIENT_DISCONNECT
    assert world.runner.store.pending() == 2
    world.slack.down = False
    for _ in range(100):  # the runner reconnects by itself, with backoff
        if world.runner.state is AdapterState.CONNECTED:
            break
        await asyncio.sleep(0.05)
    assert world.runner.state is AdapterState.CONNECTED
    await world.runner.deliver_once()
    assert len(world.slack.live()) == 2 and world.runner.store.pending() == 0


@in_world
async def test_a_message_refused_for_good_fails_visibly_and_can_be_retried(world: World) -> None:
    world.slack.missing_channels.add("CPROJECT")
    await world.pump()
    [failed, _] = world.runner.store.failed()
    assert failed.reason == "channel_not_found" and world.runner.status().failed == 2
    world.slack.missing_channels.clear()
    assert world.runner.store.retry() == 2
    await world.runner.deliver_once()
    assert len(world.slack.live("CPROJECT")) == 2


@in_world
async def test_bad_credentials_stop_delivery_until_fixed(world: World) -> None:
    world.slack.token = "xoxb-rotated"
    await world.pump()
    assert world.runner.state is AdapterState.BAD_CREDENTIALS
    assert world.runner.store.pending() == 2 and world.slack.live() == []


@in_world
async def test_a_reaction_completes_the_todo_once_and_never_echoes(world: World) -> None:
    todo = "CHITTY-TODO-SLACK2"
    await world.write(create_todo(todo, "React to me", SESSION, data={"projectId": PROJECT}))
    await world.pump()
    [posted] = [m for m in world.slack.live() if "React to me" in m.text]
    event = Inbound("complete", "Ev1", "CPROJECT", "U1", _ref(posted))
    assert (await world.runner.inbound(event)).status == "applied"
    assert (await world.runner.inbound(event)).status == "duplicate"  # the same event_id
    view = await world.hub.get(todo)
    assert view is not None and view.entity["status"] == "completed" and view.seq == 2
    before = len(world.slack.messages)
    await world.pump()
    assert len(world.slack.messages) == before  # edited in place, nothing new posted
    assert posted.text.startswith("✅")
    stranger = Inbound("complete", "Ev2", "CPROJECT", "U1", _ref(posted, ts="9.9"))
    assert (await world.runner.inbound(stranger)).status == "ignored"


@in_world
async def test_a_thread_reply_lands_in_the_session_context(world: World) -> None:
    todo = "CHITTY-TODO-SLACK3"
    await world.write(create_todo(todo, "Discuss me", SESSION, data={"projectId": PROJECT}))
    await world.pump()
    [posted] = [m for m in world.slack.live() if "Discuss me" in m.text]
    reply = Inbound("reply", "Ev3", "CPROJECT", "U7", _ref(posted), "use the emulator")
    assert (await world.runner.inbound(reply)).status == "applied"
    session = await world.hub.get(SESSION)
    assert session is not None
    assert session.entity["context"]["messages"] == [  # type: ignore[index,call-overload]
        {"role": "slack:U7", "content": "use the emulator", "author": None, "timestamp": None}
    ]


@in_world
async def test_the_slash_command_adds_lists_and_completes_in_the_channel_s_session(
    world: World,
) -> None:
    def command(text: str, n: int) -> Inbound:
        return Inbound("command", f"trigger-{n}", "CPROJECT", "U1", text=text)

    added = await world.runner.inbound(command("todo add Write the docs", 1))
    assert added.status == "applied" and "Write the docs" in added.text
    listed = await world.runner.inbound(command("todo list", 2))
    assert listed.text == "1. Write the docs (pending)"
    done = await world.runner.inbound(command("todo done 1", 3))
    assert done.status == "applied"
    assert (await world.runner.inbound(command("todo list", 4))).text == "no open todos"
    assert "usage" in (await world.runner.inbound(command("fly", 5))).text
    made = await world.hub.get(str(added.entity_id))
    assert made is not None and made.entity["projectId"] == PROJECT  # the channel's project
    # A todo of another session is completed by its id, once the channel has been shown it.
    elsewhere, unseen = "CHITTY-TODO-SLACK8", "CHITTY-TODO-SLACK9"
    await world.write(create_todo(elsewhere, "Shown here", SESSION, data={"projectId": PROJECT}))
    await world.pump()
    await world.write(create_todo(unseen, "Not shown yet", SESSION, data={"projectId": PROJECT}))
    refused = await world.runner.inbound(command(f"todo done {unseen}", 6))
    assert refused.status == "ignored" and unseen in refused.text
    assert (await world.runner.inbound(command(f"todo done {elsewhere}", 7))).status == "applied"
    view = await world.hub.get(elsewhere)
    assert view is not None and view.entity["status"] == "completed"


@in_world
async def test_a_conflict_is_posted_in_the_entity_s_thread(world: World) -> None:
    todo = "CHITTY-TODO-SLACK4"
    await world.write(create_todo(todo, "Contested", SESSION, data={"projectId": PROJECT}))
    await world.pump()
    await world.write(
        sync_message(todo, data={"status": "completed"}, node="a", clock={"tester": 1, "a": 1}),
        sync_message(todo, data={"status": "blocked"}, node="b", clock={"tester": 1, "b": 1}),
    )
    await world.pump()
    [root] = [m for m in world.slack.live() if "Contested" in m.text and m.thread_ts is None]
    [thread] = [m for m in world.slack.live() if m.thread_ts == root.ts]
    assert "conflict on status" in thread.text and "chitty conflicts resolve" in thread.text


def _ref(posted: Any, ts: str | None = None) -> Any:
    from hub.adapters import NativeRef

    return NativeRef(posted.channel, ts or posted.ts)


@in_world
async def test_a_post_a_crash_interrupted_is_found_not_posted_again(world: World) -> None:
    """Posted, then killed before the post was recorded: the next start finds the message by
    its metadata and records it; the entity is posted once."""
    await world.runner.follow_once()
    job = world.runner.store.jobs()[0]
    item = decode_published(job.body)
    world.runner.store.posting([InFlight(job.id, item.entity_id, "CPROJECT", None, time.time())])
    delivery = f"{world.runner.store.instance}:{job.id}"
    message = AdapterMessage(
        item.entity_id, "posted before the crash", "x", "CPROJECT", delivery=delivery
    )
    await world.runner.adapter.send_message(message)
    await world.restart()
    await world.pump()
    about = [
        m
        for m in world.slack.live()
        if (m.metadata or {}).get("event_payload", {}).get("chittyId") == item.entity_id
    ]
    assert len(about) == 1 and about[0].edits == ["posted before the crash"]  # edited, not again
    assert world.runner.store.in_flight() == []


@in_world
async def test_a_thread_reply_a_crash_interrupted_is_found_in_its_thread(world: World) -> None:
    """A conflict's reply posted, then killed before it was recorded: the next start finds it
    among the thread's replies (not in the channel's history, which Slack keeps replies out
    of), records it as the entity's, and does not post it again."""
    todo = "CHITTY-TODO-SLACK5"
    await world.write(create_todo(todo, "Contested again", SESSION, data={"projectId": PROJECT}))
    await world.pump()
    [root] = [m for m in world.slack.live() if "Contested again" in m.text]
    await world.write(
        sync_message(todo, data={"status": "completed"}, node="a", clock={"tester": 1, "a": 1}),
        sync_message(todo, data={"status": "blocked"}, node="b", clock={"tester": 1, "b": 1}),
    )
    await world.runner.follow_once()
    [job] = [j for j in world.runner.store.jobs() if j.kind == "conflict"]
    world.runner.store.posting([InFlight(job.id, todo, "CPROJECT", root.ts, time.time())])
    delivery = f"{world.runner.store.instance}:{job.id}"
    reply = AdapterMessage(
        todo, "conflict, posted before the crash", "x", "CPROJECT", kind="conflict",
        thread=_ref(root), delivery=delivery,
    )  # fmt: skip
    sent = await world.runner.adapter.send_message(reply)
    await world.restart()
    await world.pump()
    replies = [m for m in world.slack.live() if m.thread_ts == root.ts]
    assert [m.text for m in replies] == ["conflict, posted before the crash"]
    assert world.runner.store.entity_of("CPROJECT", sent.message_id) == todo
    assert world.runner.store.in_flight() == [] and world.runner.store.pending() == 0


@in_world
async def test_a_round_that_posted_an_entity_and_replied_under_it_is_found_whole(
    world: World,
) -> None:
    """A round posts an entity's first message and a conflict reply under it, then the adapter
    is killed before recording either: the next start finds the reply under the post the
    round made (neither was noted with a thread), records both, and posts neither again."""
    todo = "CHITTY-TODO-SLACK6"
    await world.write(create_todo(todo, "Born contested", SESSION, data={"projectId": PROJECT}))
    await world.write(
        sync_message(todo, data={"status": "completed"}, node="a", clock={"tester": 1, "a": 1}),
        sync_message(todo, data={"status": "blocked"}, node="b", clock={"tester": 1, "b": 1}),
    )
    await world.runner.follow_once()
    jobs = world.runner.store.jobs()
    state = [j for j in jobs if j.kind == "state"][-1]
    [conflict] = [j for j in jobs if j.kind == "conflict"]
    now = time.time()
    world.runner.store.posting(
        [InFlight(j.id, todo, "CPROJECT", None, now) for j in (state, conflict)]
    )
    instance = world.runner.store.instance
    root = await world.runner.adapter.send_message(
        AdapterMessage(todo, "Born contested", "x", "CPROJECT", delivery=f"{instance}:{state.id}")
    )
    reply = AdapterMessage(
        todo, "conflict on status", "x", "CPROJECT", kind="conflict", thread=root,
        delivery=f"{instance}:{conflict.id}",
    )  # fmt: skip
    await world.runner.adapter.send_message(reply)
    await world.restart()
    await world.pump()
    about = [m for m in world.slack.live() if "Born contested" in m.text]
    replies = [m for m in world.slack.live() if m.thread_ts == root.message_id]
    assert len(about) == 1 and [m.text for m in replies] == ["conflict on status"]
    assert world.runner.store.in_flight() == [] and world.runner.store.pending() == 0


@in_world
async def test_a_channel_s_members_limit_what_it_shows_and_who_may_act(world: World) -> None:
    """With Slack users mapped to hub users, an entity shows on a channel only while everyone
    there is one of its members (else it is withheld, and counted), and only a member's
    reaction, reply or command changes anything."""
    owner, team, outsider = "CHITTY-USER-1", "CHITTY-USER-2", "CHITTY-USER-3"
    world.users.update({"U1": owner, "U2": team, "U3": outsider})
    await world.restart()
    await world.write(
        sync_message(
            PROJECT,
            data={"metadata": {"owner": owner, "team": [team]}},
            domain="projects",
            clock={"tester": 2},
        )
    )
    world.slack.members["CPROJECT"] = ["UBOT", "U1", "U2"]  # the app's own bot user aside
    todo = "CHITTY-TODO-SLACK7"
    await world.write(create_todo(todo, "For the team", SESSION, data={"projectId": PROJECT}))
    await world.pump()
    [posted] = [m for m in world.slack.live() if "For the team" in m.text]

    world.slack.members["CPROJECT"] = ["U1", "U2", "U4"]  # U4: no hub user the map knows
    await world.write(sync_message(todo, data={"status": "in_progress"}, clock={"tester": 2}))
    await world.pump()
    assert posted.edits == [] and world.runner.status().withheld >= 1  # not shown to U4
    secret = "CHITTY-TODO-SLACK8"
    await world.write(create_todo(secret, "Not for U4", SESSION, data={"projectId": PROJECT}))
    await world.pump()
    assert not [m for m in world.slack.live() if "Not for U4" in m.text]

    def react(event_id: str, user: str) -> Inbound:
        return Inbound("complete", event_id, "CPROJECT", user, _ref(posted))

    refused = await world.runner.inbound(react("Ev10", "U3"))
    assert refused.status == "ignored" and f"{outsider} is not a member" in refused.text
    unknown = await world.runner.inbound(react("Ev11", "U9"))
    assert unknown.status == "ignored" and "U9 is not a hub user" in unknown.text
    command = Inbound("command", "trigger-12", "CPROJECT", "U3", text="todo add sneaky")
    assert (await world.runner.inbound(command)).status == "ignored"
    view = await world.hub.get(todo)
    assert view is not None and view.entity["status"] == "in_progress"  # unchanged by them
    assert (await world.runner.inbound(react("Ev13", "U2"))).status == "applied"

    world.slack.members["CPROJECT"] = ["U1", "U2"]  # U4 left: what was withheld now shows
    report = await world.runner.sync([v for v in [await world.hub.get(secret)] if v])
    assert report.sent == 1 and report.withheld == 0
    assert [m for m in world.slack.live() if "Not for U4" in m.text]


@in_world
async def test_a_new_adapter_starts_from_now_and_a_sync_sends_what_came_before(
    world: World,
) -> None:
    """Configured on a hub with history, an adapter does not flood its channel with every
    change ever made: it begins at the outboxes' newest entries (and keeps that place across
    restarts); a sync sends the current state of what came before."""
    before = "CHITTY-TODO-SLACK9"
    await world.write(create_todo(before, "Made before Slack", SESSION))
    await world.runner.stop()
    world.runner.store.close()
    shutil.rmtree(world.tmp / "adapters" / "slack")  # as if Slack were configured only now
    world.runner = world._runner()
    await world.connect()
    await world.pump()
    assert world.slack.live() == []
    await world.write(create_todo("CHITTY-TODO-SLACK10", "Made after Slack", SESSION))
    await world.restart()
    await world.pump()
    texts = [m.text for m in world.slack.live()]
    assert any("Made after Slack" in t for t in texts)
    assert not any("Made before Slack" in t for t in texts)
    view = await world.hub.get(before)
    assert view is not None and (await world.runner.sync([view])).sent == 1
    assert [m for m in world.slack.live() if "Made before Slack" in m.text]


@in_world
async def test_a_change_of_a_services_health_edits_its_message(world: World) -> None:
    """The spec's alerting: a service going down reaches the channel, with why; a check that
    changes only its latency sends nothing."""
    await world.pump()
    service = "CHITTY-SERVICE-SLACK1"
    created = {"name": "billing", "health": "healthy"}
    await world.write(sync_message(service, "create", created, domain="services"))
    await world.pump()
    [posted] = [m for m in world.slack.live("CGENERAL") if "billing" in m.text]
    assert posted.text.startswith("🟢")
    await world.write(
        sync_message(service, data={"latencyMs": 12.5}, domain="services", clock={"tester": 2})
    )
    await world.pump()
    assert posted.edits == []
    down = {"health": "down", "metadata": {"error": "answered 500, expected 2xx"}}
    await world.write(sync_message(service, data=down, domain="services", clock={"tester": 3}))
    await world.pump()
    assert posted.text.startswith("🔴") and "answered 500" in posted.text
    assert len(posted.edits) == 1
