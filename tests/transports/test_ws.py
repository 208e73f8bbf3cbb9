"""/ws over a live hub: subscriptions with server-side filters, acks after commit, batches,
malformed frames, resume and gaps, slow subscribers, heartbeats, the frame size bound."""

from __future__ import annotations

import asyncio
import itertools
import json
import socket
import time
from collections.abc import Iterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from actors.broker import Broker, Poll
from hub.domains import SyncDomain
from hub.ids import IdGenerator
from hub.message import Message
from hub.subscriptions import Filter, Published
from tests.transports.conftest import Gateway
from transports.gateway.auth import AUTH, authenticate
from transports.gateway.errors import json_errors
from transports.gateway.hub_api import Writer
from transports.gateway.stream import Phase, StreamFollower, Subscriber
from transports.gateway.ws import WS, WsSettings, add_ws_routes, open_connections
from transports.gateway.ws_frames import (
    Batch,
    FrameError,
    Gap,
    GapReason,
    Origin,
    ResumeAt,
    Subscribe,
    Subscribed,
    Write,
    parse_text,
)
from transports.gateway.ws_outbox import Delivery, Outbox

SESSION = "CHITTY-SESSION-1"
Frame = dict[str, Any]


class Peer:
    """A plain WebSocket client of /ws that speaks JSON frames."""

    def __init__(self, socket: aiohttp.ClientWebSocketResponse) -> None:
        self.socket = socket
        self.held: list[Frame] = []

    @classmethod
    async def connect(
        cls, url: str, node: str = "peer", token: str | None = None, query: str = ""
    ) -> Peer:
        session = aiohttp.ClientSession()
        headers = {"X-Chitty-Node": node}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        try:
            opened = await session.ws_connect(f"{url}/ws{query}", headers=headers)
        except BaseException:
            await session.close()
            raise
        opened._peer_session = session  # type: ignore[attr-defined]  # closed with the socket
        return cls(opened)

    async def close(self) -> None:
        await self.socket.close()
        await self.socket._peer_session.close()  # type: ignore[attr-defined]

    async def send(self, frame: object) -> None:
        if isinstance(frame, bytes):
            await self.socket.send_bytes(frame)
            return
        text = frame if isinstance(frame, str) else json.dumps(frame, ensure_ascii=False)
        await self.socket.send_str(text)

    async def next(self, timeout: float = 10.0, skip: tuple[str, ...] = ("heartbeat",)) -> Frame:
        """The next frame whose type is not in `skip` (frames held back by `subscribe` first)."""
        while self.held:
            frame = self.held.pop(0)
            if frame["type"] not in skip:
                return frame
        deadline = time.monotonic() + timeout  # for the frame wanted: skipped ones do not extend it
        while True:
            received = await self.socket.receive(max(deadline - time.monotonic(), 0.001))
            assert received.type is aiohttp.WSMsgType.TEXT, received
            frame: Frame = json.loads(received.data)
            if frame["type"] not in skip:
                return frame

    async def events(self, until: Any, timeout: float = 15.0) -> list[Frame]:
        """Events (batches flattened) until `until(event)` is true for one; that one included."""
        found: list[Frame] = []
        deadline = time.monotonic() + timeout
        while True:
            frame = await self.next(deadline - time.monotonic())
            batch = frame["events"] if frame["type"] == "batch" else [frame]
            for event in batch:
                assert event["type"] == "state_update", event
                found.append(event)
                if until(event):
                    return found

    async def subscribe(self, **frame: Any) -> Frame:
        """Subscribe; events of earlier subscriptions that arrive first are held for `next`."""
        await self.send({"type": "subscribe", **frame})
        held: list[Frame] = []
        while True:
            answer = await self.next()
            if answer["type"] in ("state_update", "batch"):
                held.append(answer)
                continue
            self.held[:0] = held
            assert answer["type"] == "subscribed", answer
            return answer

    async def write(self, frame: Frame) -> Frame:
        await self.send({"type": "state_update", **frame})
        return await self.next()


async def rest(gateway: Gateway, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    async with gateway.session.request(method, path, json=body) as response:
        return response.status, await response.json()


async def create(gateway: Gateway, **fields: Any) -> Frame:
    status, body = await rest(
        gateway, "POST", "/api/v1/todos", {"content": "ws test", "sessionId": SESSION, **fields}
    )
    assert status == 201, body
    return body  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def tuned(gateway: Gateway) -> Iterator[str]:
    """A second gateway app (only /ws) on the same hub, with small queues and quick timers."""
    app = web.Application(middlewares=[json_errors, authenticate])
    app[AUTH] = gateway.app[AUTH]
    settings = WsSettings(idle_heartbeat_s=0.3, outbox_limit=16, ping_s=120)
    add_ws_routes(app, Writer(gateway.runtime, "gateway-tuned"), settings)
    runner, url = gateway.serve(app)
    yield url
    gateway.call(runner.cleanup())


# -- the protocol, pure -------------------------------------------------------------------------

ORIGIN = Origin("node-a", "web", IdGenerator("test", lambda: time.time_ns() // 1_000_000).new)


def test_frames_parse_into_typed_values() -> None:
    frame = parse_text('{"type":"subscribe","domains":["todos"],"id":"s1"}', ORIGIN)
    assert isinstance(frame, Subscribe) and frame.wanted().domains == ["todos"]
    update = parse_text(
        '{"type":"state_update","domain":"todos","operation":"create",'
        '"entity":{"content":"x","sessionId":"CHITTY-SESSION-1"}}',
        ORIGIN,
    )
    assert isinstance(update, Write) and update.short
    assert isinstance(update.message, Message)  # a plain short write: built lean, canonical
    assert update.message.node_id == "node-a"
    assert update.message.entity_id.startswith("CHITTY-TODO-")
    batch = parse_text('[{"type":"heartbeat"}]', ORIGIN)
    assert isinstance(batch, Batch) and isinstance(batch.items[0], FrameError)
    assert batch.items[0].field == "type" and batch.items[0].index == 0


# -- the fan-out, on the real Broker without Ray ------------------------------------------------


class BrokerStream:
    """The follower's `poll` served by a plain `Broker` (the in-memory twin of the Ray actor)."""

    def __init__(self, broker: Broker) -> None:
        self.broker = broker

    async def poll(
        self, epoch: str | None, after: int, wanted: Filter, limit: int = 1000, wait_s: float = 0
    ) -> Poll:
        answer = self.broker.poll(epoch, after, wanted, limit)
        idle = epoch is not None and not answer.events and not answer.gap
        await asyncio.sleep(0.001 if idle and wait_s else 0)  # a real poll always yields
        return answer


MINE = "CHITTY-PROJ-MINE"


def publish(broker: Broker, seq: int, project: str | None) -> None:
    event = Published(
        0, SyncDomain.TODOS, f"CHITTY-TODO-{seq}", "updated", seq, f"m{seq}", "web", "node",
        project, None, None, {"node": seq}, ("content",), {"content": str(seq)}, (), seq,
    )  # fmt: skip
    broker.publish("host", [(seq, event)])


async def settle(follower: StreamFollower, broker: Broker) -> None:
    for _ in range(1000):
        if follower.offset == broker.head:
            return
        await asyncio.sleep(0.001)
    raise AssertionError("the follower did not reach the head")


def offsets_in(items: list[Any]) -> list[int]:
    return [item.event.offset for item in items if isinstance(item, Delivery)]


def test_a_resumed_subscription_joins_the_live_fan_out_without_repeats_or_holes() -> None:
    async def scenario() -> None:
        broker = Broker(retention=1000)
        for seq in range(1, 21):
            publish(broker, seq, MINE if seq % 2 == 0 else None)
        follower = StreamFollower(BrokerStream(broker), wait_s=0.01, catch_up_chunk=3)
        await follower.start()
        subscriber = Subscriber(Outbox(10_000))
        follower.attach(subscriber)
        resume = ResumeAt(epoch=broker.epoch, offset=4)
        follower.subscribe(subscriber, "s", Filter(project_id=MINE), resume)
        for seq in range(21, 61):  # the stream moves on while the subscription catches up
            publish(broker, seq, MINE if seq % 2 == 0 else None)
            await asyncio.sleep(0)
        await settle(follower, broker)
        assert subscriber.subscriptions["s"].phase is Phase.LIVE
        items = await subscriber.outbox.take(10_000, 0.1)
        assert items[0] == Subscribed("s", broker.epoch, 4)
        assert offsets_in(items) == list(range(6, 61, 2))
        await follower.stop()

    asyncio.run(scenario())


def test_an_overflowing_connection_loses_its_subscription_with_a_resume_point() -> None:
    async def scenario() -> None:
        broker = Broker(retention=1000)
        follower = StreamFollower(BrokerStream(broker), wait_s=0.01)
        await follower.start()
        slow, fast = Subscriber(Outbox(3)), Subscriber(Outbox(100))
        for subscriber in (slow, fast):
            follower.attach(subscriber)
            follower.subscribe(subscriber, "s", Filter(), None)
        for seq in range(1, 6):
            publish(broker, seq, None)
        await settle(follower, broker)
        items = await slow.outbox.take(100, 0.1)
        assert offsets_in(items) == [1, 2]  # the outbox held the `subscribed` reply and two events
        gap = items[-1]
        assert isinstance(gap, Gap) and gap.reason is GapReason.OVERFLOW and gap.ended
        assert gap.offset == 2 and slow.subscriptions == {}
        assert offsets_in(await fast.outbox.take(100, 0.1)) == [1, 2, 3, 4, 5]
        assert follower.counters.overflows == 1
        await follower.stop()

    asyncio.run(scenario())


def test_a_restarted_stream_is_a_gap_for_every_subscription() -> None:
    async def scenario() -> None:
        stream = BrokerStream(Broker(retention=1000))
        follower = StreamFollower(stream, wait_s=0.01)
        await follower.start()
        subscriber = Subscriber(Outbox(100))
        follower.attach(subscriber)
        follower.subscribe(subscriber, "a", Filter(), None)
        follower.subscribe(subscriber, "b", Filter(project_id=MINE), None)
        stream.broker = Broker(retention=1000)  # a new epoch, as after a broker restart
        publish(stream.broker, 1, MINE)
        await settle(follower, stream.broker)
        items = await subscriber.outbox.take(100, 0.1)
        gaps = [item for item in items if isinstance(item, Gap)]
        assert {g.subscription for g in gaps} == {"a", "b"}
        assert all(g.epoch == stream.broker.epoch and g.reason is GapReason.HISTORY for g in gaps)
        publish(stream.broker, 2, MINE)
        await settle(follower, stream.broker)
        later = await subscriber.outbox.take(100, 0.1)
        delivered = [(d.subscription, d.event.offset) for d in later if isinstance(d, Delivery)]
        assert delivered == [("a", 2), ("b", 2)] and len(later) == 2
        await follower.stop()

    asyncio.run(scenario())


# -- subscriptions ------------------------------------------------------------------------------


def test_a_subscriber_receives_a_rest_created_todo_with_its_full_entity(gateway: Gateway) -> None:
    """Spec Example 1: a WebSocket subscriber filtered on a project sees a todo made over REST."""
    project = gateway.project("ex1")

    async def scenario() -> None:
        peer = await Peer.connect(gateway.url, token=gateway.token)
        subscribed = await peer.subscribe(domains=["todos"], filters={"projectId": project})
        made = await create(gateway, projectId=project, content="ship it")
        [event] = await peer.events(lambda e: True)
        assert event["subscription"] == subscribed["subscription"]
        assert event["operation"] == "create" and event["domain"] == "todos"
        assert event["entity"] == made["entity"]  # the full view, not a diff
        assert event["vectorClock"] == made["vectorClock"] and event["seq"] == 1
        assert event["epoch"] == subscribed["epoch"] and event["offset"] > subscribed["offset"]
        await peer.close()

    gateway.call(scenario())


def test_filters_are_enforced_by_the_hub(gateway: Gateway) -> None:
    mine, other = gateway.project("mine"), gateway.project("other")

    async def scenario() -> None:
        peer = await Peer.connect(gateway.url, token=gateway.token)
        await peer.subscribe(id="by-project", domains=["todos"], filters={"projectId": mine})
        watched = (await create(gateway, projectId=other))["entity"]["chittyId"]
        await peer.subscribe(id="by-entity", filters={"entityId": watched})
        await peer.subscribe(id="sessions", domains=["sessions"])
        await create(gateway, projectId=other)  # matches none of them
        await rest(gateway, "PUT", f"/api/v1/todos/{watched}", {"status": "in_progress"})
        last = (await create(gateway, projectId=mine, content="last"))["entity"]["chittyId"]
        status, body = await rest(
            gateway, "POST", "/api/v1/sessions", {"sessionId": "ws-filter", "platform": "web"}
        )
        assert status == 201, body
        session = body["entity"]["chittyId"]
        seen: dict[str, list[tuple[str, str]]] = {"by-project": [], "by-entity": [], "sessions": []}
        for event in await peer.events(lambda e: e["entityId"] == session):
            seen[event["subscription"]].append((event["entityId"], event["operation"]))
        assert seen["by-project"] == [(last, "create")]
        assert seen["sessions"] == [(session, "create")]
        # The todo's create was acked before this subscription began, but its publication may
        # still reach the stream after: then it is delivered too (never the reverse).
        assert seen["by-entity"][-1] == (watched, "update")
        assert {entity for entity, _ in seen["by-entity"]} == {watched}
        await peer.close()

    gateway.call(scenario())


def test_unsubscribe_and_subscription_ids(gateway: Gateway) -> None:
    project = gateway.project("unsub")

    async def scenario() -> None:
        peer = await Peer.connect(gateway.url, token=gateway.token)
        await peer.subscribe(id="a", filters={"projectId": project})
        await peer.send({"type": "subscribe", "id": "a"})
        # The project's create was acked before "a" began, but its publication may still reach
        # the stream after: until "a" is gone, that one event may come first (and only it).
        late = ("heartbeat", "state_update", "batch")
        taken = await peer.next(skip=late)
        assert taken["type"] == "error" and taken["field"] == "id" and taken["status"] == 409
        await peer.send({"type": "unsubscribe", "subscription": "a"})
        assert await peer.next(skip=late) == {"type": "unsubscribed", "subscription": "a"}
        await peer.send({"type": "unsubscribe", "subscription": "a"})
        gone = await peer.next()
        assert gone["type"] == "error" and gone["field"] == "subscription"
        await create(gateway, projectId=project)
        await peer.send({"type": "heartbeat", "id": "after"})
        assert (await peer.next(skip=()))["id"] == "after"  # no event came before it
        await peer.close()

    gateway.call(scenario())


# -- writes -------------------------------------------------------------------------------------


def test_a_ws_state_update_is_acked_after_commit_with_seq_and_clock(gateway: Gateway) -> None:
    async def scenario() -> None:
        peer = await Peer.connect(gateway.url, token=gateway.token, node="tablet")
        ack = await peer.write(
            {
                "domain": "todos",
                "operation": "create",
                "id": "tablet-1",
                "entity": {"content": "from the tablet", "sessionId": SESSION},
            }
        )
        assert ack["type"] == "ack" and ack["id"] == "tablet-1" and ack["status"] == "applied"
        assert ack["seq"] == 1 and ack["vectorClock"] == {"tablet": 1}
        todo = ack["entityId"]
        status, body = await rest(gateway, "GET", f"/api/v1/todos/{todo}")
        assert status == 200 and body["entity"]["content"] == "from the tablet"  # durable
        update = {
            "domain": "todos",
            "entity": {"chittyId": todo, "status": "in_progress"},
            "vectorClock": {"tablet": 2},
        }
        ack = await peer.write(update)
        assert ack["status"] == "applied" and ack["seq"] == 2
        assert ack["vectorClock"] == {"tablet": 2}
        again = await peer.write({**update, "id": ack["id"]})  # a retry of the same message
        assert again["status"] == "duplicate" and again["seq"] == 2
        full = {
            "id": "full-form-1",
            "type": "state_update",
            "source": {"nodeId": "cli", "platform": "cli", "chittyId": "CHITTY-USER-1"},
            "payload": {
                "domain": "todos",
                "operation": "update",
                "entity": {"chittyId": todo, "type": "todo", "data": {"content": "full form"}},
            },
            "metadata": {"timestamp": "2030-01-01T00:00:00Z", "vectorClock": {}},
        }
        await peer.send(full)
        ack = await peer.next()
        assert ack["type"] == "ack" and ack["seq"] == 3
        assert ack["vectorClock"] == {"cli": 1, "tablet": 2}
        await peer.close()

    gateway.call(scenario())


def test_a_batch_is_acked_per_frame_in_order(gateway: Gateway) -> None:
    project = gateway.project("batch")

    def todo(n: int) -> Frame:
        fields = {"content": f"item {n}", "sessionId": SESSION, "projectId": project}
        return {"type": "state_update", "domain": "todos", "operation": "create", "entity": fields}

    async def scenario() -> None:
        peer = await Peer.connect(gateway.url, token=gateway.token)
        bad = {**todo(2), "entity": {"chittyId": "CHITTY-TODO-", "content": "x"}}
        await peer.send([todo(0), todo(1), bad, todo(3)])
        answers = [await peer.next() for _ in range(4)]
        assert [a["type"] for a in answers] == ["ack", "ack", "error", "ack"]
        assert [a["index"] for a in answers] == [0, 1, 2, 3]
        assert answers[2]["field"] == "entity.chittyId"
        await peer.send({"type": "batch", "frames": [todo(4), todo(5)]})
        answers += [await peer.next() for _ in range(2)]
        assert [a["status"] for a in answers if a["type"] == "ack"] == ["applied"] * 5
        _, body = await rest(gateway, "GET", f"/api/v1/todos?projectId={project}")
        contents = {item["entity"]["content"] for item in body["items"]}
        assert contents == {"item 0", "item 1", "item 3", "item 4", "item 5"}
        await peer.close()

    gateway.call(scenario())


def test_with_acks_batch_a_batch_is_answered_by_one_frame_in_order(gateway: Gateway) -> None:
    project = gateway.project("acks")
    fields = {"sessionId": SESSION, "projectId": project}

    def todo(n: int) -> Frame:
        entity = {"content": f"item {n}", **fields}
        return {"type": "state_update", "domain": "todos", "operation": "create", "entity": entity}

    async def scenario() -> None:
        peer = await Peer.connect(gateway.url, token=gateway.token, query="?acks=batch")
        bad = {**todo(1), "entity": {"chittyId": "CHITTY-TODO-", "content": "x"}}
        counters = gateway.app[WS].counters
        before = (counters.acks, counters.errors)
        await peer.send([todo(0), bad, todo(2)])
        answer = await peer.next()
        assert answer["type"] == "acks", answer
        # counted per write, sent as one frame
        assert (counters.acks - before[0], counters.errors - before[1]) == (2, 1)
        items = answer["items"]
        assert [(a["type"], a["index"]) for a in items] == [("ack", 0), ("error", 1), ("ack", 2)]
        assert items[1]["field"] == "entity.chittyId"
        assert all(a["status"] == "applied" and a["seq"] == 1 for a in (items[0], items[2]))
        await peer.send({"type": "batch", "frames": [todo(3)]})
        [made] = (await peer.next())["items"]
        assert made["type"] == "ack" and made["index"] == 0
        single = await peer.write(
            {"domain": "todos", "operation": "create", "entity": todo(4)["entity"]}
        )
        assert single["type"] == "ack" and "index" not in single  # a lone write: a lone ack
        _, body = await rest(gateway, "GET", f"/api/v1/todos?projectId={project}")
        contents = {item["entity"]["content"] for item in body["items"]}
        assert contents == {"item 0", "item 2", "item 3", "item 4"}
        await peer.close()

    gateway.call(scenario())


def test_an_unknown_acks_mode_is_a_400_naming_acks(gateway: Gateway) -> None:
    status, body, _ = gateway.request("GET", "/ws?acks=some")
    assert status == 400 and body["field"] == "acks", body

    async def upgrade() -> None:
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await Peer.connect(gateway.url, token=gateway.token, query="?acks=some")
        assert refused.value.status == 400

    gateway.call(upgrade())


def update(target: str, **fields: Any) -> Frame:
    frame: Frame = {"type": "state_update", "domain": "todos", "entity": {"chittyId": target}}
    return {**frame, **fields}


# (frame built for an existing todo `t`, the error code when it matters, the field named)
MALFORMED: list[tuple[str, Any, str | None, str | None]] = [
    ("not-json", lambda t: "{not json", "bad_json", None),
    ("nan", lambda t: '{"type": "heartbeat", "id": NaN}', "bad_json", None),
    ("binary", lambda t: b"\x00", "bad_frame", None),
    ("not-an-object", lambda t: 7, "invalid", None),
    ("empty-batch", lambda t: [], "invalid", None),
    ("unknown-type", lambda t: {"type": "teleport"}, "invalid", "type"),
    ("bad-chitty-id", lambda t: update("CHITTY-TODO-"), "invalid", "entity.chittyId"),
    ("wrong-kind-of-id", lambda t: update("CHITTY-SESSION-1"), "invalid", "entity.chittyId"),
    ("unknown-domain", lambda t: {**update(t), "domain": "todo"}, "invalid", "domain"),
    ("clock-not-an-object", lambda t: update(t, vectorClock="zz"), "invalid", "vectorClock"),
    ("clock-negative", lambda t: update(t, vectorClock={"p": -1}), "invalid", "vectorClock.p"),
    ("clock-not-counting", lambda t: update(t, vectorClock={"x": 9}), "invalid", "vectorClock"),
    (
        "bad-status",
        lambda t: {**update(t), "entity": {"chittyId": t, "status": "done"}},
        "invalid",
        "entity.status",
    ),
    (
        "filter-wrong-kind",
        lambda t: {"type": "subscribe", "filters": {"projectId": t}},
        "invalid",
        "filters.projectId",
    ),
    (
        "unknown-domain-filter",
        lambda t: {"type": "subscribe", "domains": ["todos", "emails"]},
        "invalid",
        "domains.1",
    ),
    (
        "resume-no-offset",
        lambda t: {"type": "subscribe", "resume": {"epoch": "e"}},
        None,
        "resume.offset",
    ),
    ("unsubscribe-nothing", lambda t: {"type": "unsubscribe"}, "invalid", "subscription"),
]


@pytest.mark.parametrize(
    ("build", "error", "field"), [pytest.param(*case[1:], id=case[0]) for case in MALFORMED]
)
def test_a_malformed_frame_gets_an_error_and_changes_nothing(
    gateway: Gateway, build: Any, error: str | None, field: str | None
) -> None:
    async def scenario() -> None:
        made = await create(gateway)
        target = made["entity"]["chittyId"]
        peer = await Peer.connect(gateway.url, token=gateway.token, node="p")
        await peer.send(build(target))
        answer = await peer.next()
        assert answer["type"] == "error", answer
        assert answer["field"] == field and (error is None or answer["error"] == error)
        await peer.send({"type": "heartbeat", "id": "still-there"})
        assert (await peer.next(skip=()))["id"] == "still-there"  # the connection is usable
        status, body = await rest(gateway, "GET", f"/api/v1/todos/{target}")
        assert status == 200 and body["seq"] == 1 and body["entity"] == made["entity"]
        await peer.close()

    gateway.call(scenario())


# -- resume, gaps, slow subscribers -------------------------------------------------------------


def test_resume_delivers_exactly_the_missed_changes(gateway: Gateway) -> None:
    project, elsewhere = gateway.project("resume"), gateway.project("elsewhere")

    async def scenario() -> None:
        peer = await Peer.connect(gateway.url, token=gateway.token)
        await peer.subscribe(id="r", domains=["todos"], filters={"projectId": project})
        await create(gateway, projectId=project, content="seen")
        [seen] = await peer.events(lambda e: True)
        await peer.close()
        missed = [
            (await create(gateway, projectId=project, content=f"missed {n}")) for n in range(5)
        ]
        await create(gateway, projectId=elsewhere)  # not for this subscriber
        peer = await Peer.connect(gateway.url, token=gateway.token)
        resume = {"epoch": seen["epoch"], "offset": seen["offset"]}
        subscribed = await peer.subscribe(id="r", filters={"projectId": project}, resume=resume)
        assert subscribed["offset"] == seen["offset"]
        events = await peer.events(lambda e: e["entity"]["content"] == "missed 4")
        assert [e["entityId"] for e in events] == [m["entity"]["chittyId"] for m in missed]
        live = await create(gateway, projectId=project, content="live")
        events = await peer.events(lambda e: e["entity"]["content"] == "live")
        assert [e["entityId"] for e in events] == [live["entity"]["chittyId"]]  # no repeats
        await peer.close()

    gateway.call(scenario())


def test_resume_from_an_unknown_epoch_is_an_explicit_gap(gateway: Gateway) -> None:
    project = gateway.project("gap")

    async def scenario() -> None:
        peer = await Peer.connect(gateway.url, token=gateway.token)
        await peer.subscribe(
            id="g", filters={"projectId": project}, resume={"epoch": "bogus", "offset": 3}
        )
        gap = await peer.next()
        assert gap["type"] == "gap" and gap["subscription"] == "g"
        assert gap["reason"] == "history" and gap["ended"] is False and gap["detail"]
        made = await create(gateway, projectId=project)  # the subscription goes on, live
        [event] = await peer.events(lambda e: True)
        assert event["entityId"] == made["entity"]["chittyId"] and event["offset"] > gap["offset"]
        await peer.close()

    gateway.call(scenario())


@pytest.mark.timeout(900)
def test_a_slow_subscriber_does_not_hold_back_a_fast_one(gateway: Gateway, tuned: str) -> None:
    """The slow one never reads: it loses its subscription (a gap saying where to resume), while
    the fast one gets every event; resuming at the gap's offset then yields exactly the rest."""
    project = gateway.project("slow")
    wide = "\U0001f600" * 10_000  # 40 KB of UTF-8, so a few events fill the socket buffers
    total = 150

    def frame(n: int) -> Frame:
        fields = {"content": f"{n} {wide}"[:10_000], "activeForm": wide, "sessionId": SESSION}
        fields["projectId"] = project
        return {"type": "state_update", "domain": "todos", "operation": "create", "entity": fields}

    async def scenario() -> None:
        slow = await Peer.connect(tuned, token=gateway.token)
        # A small, fixed receive buffer: Linux otherwise grows a loopback one up to
        # net.ipv4.tcp_rmem's maximum (32 MB here), and a slow reader that can swallow all
        # 12 MB never overflows.
        received = slow.socket.get_extra_info("socket")
        received.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 256 * 1024)
        # The fast one is on the default gateway (a roomy outbox): on a loaded machine even a
        # reading client may briefly lag behind a 16-frame outbox, which is not this test.
        fast = await Peer.connect(gateway.url, token=gateway.token)
        writer = await Peer.connect(gateway.url, token=gateway.token)
        await slow.subscribe(id="slow", filters={"projectId": project})
        await fast.subscribe(id="fast", filters={"projectId": project})
        # Two hosts publish concurrently, so stream order need not be write order: count.
        counted = itertools.count(1)
        reading = asyncio.create_task(fast.events(lambda e: next(counted) == total, 300))
        for start in range(0, total, 10):
            await writer.send([frame(n) for n in range(start, min(start + 10, total))])
            for _ in range(min(10, total - start)):
                assert (await writer.next())["type"] == "ack"
        fast_events = await reading
        offsets = [e["offset"] for e in fast_events]
        assert len(fast_events) == total and offsets == sorted(set(offsets))
        # Now the slow one reads what reached it: some events, then the overflow gap.
        got: list[Frame] = []
        while True:
            answer = await slow.next(120)
            if answer["type"] == "gap":
                break
            got += answer["events"] if answer["type"] == "batch" else [answer]
        assert answer["reason"] == "overflow" and answer["ended"] is True
        assert 0 < len(got) < total and answer["offset"] >= got[-1]["offset"]
        resume = {"epoch": answer["epoch"], "offset": answer["offset"]}
        await slow.subscribe(id="slow", filters={"projectId": project}, resume=resume)
        rest_of = await slow.events(lambda e: e["offset"] == offsets[-1], 120)
        assert [e["offset"] for e in got + rest_of] == offsets  # no loss, no repeats
        for peer in (slow, fast, writer):
            await peer.close()

    # 12 MB through the hub: seconds on a quiet machine, minutes on a loaded one (no timing
    # is asserted; the bounds only stop a hang).
    gateway.call(scenario(), timeout=600)


# -- heartbeats, limits, counts -----------------------------------------------------------------


def test_heartbeats_both_ways(gateway: Gateway, tuned: str) -> None:
    async def scenario() -> None:
        peer = await Peer.connect(gateway.url, token=gateway.token)
        await peer.send({"type": "heartbeat"})
        beat = await peer.next(skip=())
        assert beat["type"] == "heartbeat" and beat["epoch"] and beat["offset"] >= 0
        await peer.close()
        idle = await Peer.connect(tuned, token=gateway.token)
        beat = await idle.next(timeout=5, skip=())  # sent by the hub after 0.3 s of silence
        assert beat["type"] == "heartbeat" and "epoch" in beat and "offset" in beat
        await idle.close()

    gateway.call(scenario())


def test_an_oversized_frame_closes_the_connection_with_1009(gateway: Gateway) -> None:
    async def scenario() -> None:
        peer = await Peer.connect(gateway.url, token=gateway.token)
        await peer.socket.send_str("x" * ((1 << 20) + 1))
        received = await peer.socket.receive(10)
        assert received.type is aiohttp.WSMsgType.CLOSE and received.data == 1009
        await peer.close()

    gateway.call(scenario())


def test_a_plain_get_of_ws_is_a_json_400(gateway: Gateway) -> None:
    status, body, _ = gateway.request("GET", "/ws")
    assert status == 400 and set(body) == {"error", "detail", "field"}


def test_open_connections_are_counted(gateway: Gateway) -> None:
    async def scenario() -> None:
        before = open_connections(gateway.app)
        peers = [await Peer.connect(gateway.url, token=gateway.token) for _ in range(3)]
        for peer in peers:  # each answered once, so each is being served
            await peer.send({"type": "heartbeat"})
            await peer.next(skip=())
        assert open_connections(gateway.app) == before + 3
        for peer in peers:
            await peer.close()
        for _ in range(100):
            if open_connections(gateway.app) == before:
                break
            await asyncio.sleep(0.02)
        assert open_connections(gateway.app) == before
        assert gateway.app[WS].counters.connections >= 3

    gateway.call(scenario())
