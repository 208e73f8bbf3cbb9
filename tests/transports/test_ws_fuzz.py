"""Malformed /ws frames, generated: each is answered with `error` frames (never a 5xx one) or
a clean close, the connection goes on answering (a heartbeat after it gets its own reply), and
nothing changes: the stream's head offset, a watching subscription and the lists stay put."""

from __future__ import annotations

import contextlib
import itertools
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from hub.domains import SyncDomain
from tests.actors.conftest import settings_for
from tests.transports.conftest import Gateway

FRAME_TYPES = ("subscribe", "unsubscribe", "state_update", "heartbeat", "batch")
DOMAINS = [d.value for d in SyncDomain]
CLEAN_CLOSES = {1000, 1007, 1009}  # normal, invalid UTF-8 text, too big; never 1011
REPLY_S = 15.0


@pytest.fixture(scope="module")
def gateway(ray_cluster: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    """The shared gateway, with a rate limit no fuzz run reaches (a 429 error frame would be
    a fine answer, but would also refuse the heartbeat that follows)."""
    tmp = tmp_path_factory.mktemp("gateway")
    running = Gateway(settings_for(tmp, rate_per_s=100_000.0, rate_burst=100_000))
    yield running
    running.close()


# -- frames ------------------------------------------------------------------------------------

json_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text()
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=12,
)
huge_numbers = (
    st.integers(min_value=2**64, max_value=2**200)
    | st.integers(max_value=-(2**63) - 1, min_value=-(2**200))
    | st.sampled_from([1e308, -1e308, 5e-324])
)
# Lone surrogates (valid JSON escapes, invalid Unicode) are echoed back in error frames; they
# have a test of their own below. Characters past the BMP (surrogate pairs in JSON) stay in.
LONE_SURROGATES = ["\ud800", "\udfff", "x\udc80y"]
odd_text = st.text(alphabet=st.characters(min_codepoint=0x10000), min_size=1, max_size=4)
not_a_string = json_values.filter(lambda v: not isinstance(v, str))
bad_domain = st.text(max_size=12).filter(lambda d: d not in DOMAINS) | not_a_string
bad_type = st.text(max_size=12).filter(lambda t: t not in FRAME_TYPES) | not_a_string


def deep(depth: int, leaf: object = 0) -> object:
    value: object = leaf
    for level in range(depth):
        value = [value] if level % 2 else {"a": value}
    return value


@st.composite
def bad_state_update(draw: st.DrawFn) -> dict[str, Any]:
    """A state_update that cannot apply: a bad domain, entity, operation, id or clock."""
    frame: dict[str, Any] = {"type": "state_update", "domain": "todos", "operation": "update"}
    entity: Any = {"content": draw(st.text(max_size=8))}
    fault = draw(
        st.sampled_from(["domain", "entity", "operation", "no_id", "bad_id", "clock", "deep"])
    )
    if fault == "domain":
        frame["domain"] = draw(bad_domain | odd_text)
    elif fault == "entity":
        entity = draw(not_a_string.filter(lambda v: not isinstance(v, dict)) | st.text())
    elif fault == "operation":
        frame["operation"] = draw(st.text(max_size=8).filter(lambda o: o not in ("create",)))
        assume(frame["operation"] not in ("update", "delete"))
    elif fault == "no_id":
        pass  # an update without entity.chittyId
    elif fault == "bad_id":
        entity["chittyId"] = draw(
            st.sampled_from(["", "CHITTY-SESSION-1", "chitty-todo-1", "CHITTY-TODO-"])
            | odd_text
            | not_a_string
        )
    elif fault == "clock":
        entity["chittyId"] = "CHITTY-TODO-FUZZ1"
        frame["vectorClock"] = draw(
            st.dictionaries(st.text(max_size=4), st.integers(max_value=-1) | st.text(), min_size=1)
            | st.lists(st.integers(), min_size=1)
            | st.text()
        )
    else:  # deep nesting inside a frame that names no domain
        frame["domain"] = "nowhere"
        entity = {"content": deep(draw(st.integers(1, 2000)))}
    frame["entity"] = entity
    if draw(st.booleans()):
        frame["id"] = draw(st.text(max_size=8) | huge_numbers | odd_text)
    return frame


@st.composite
def bad_control(draw: st.DrawFn) -> dict[str, Any]:
    """A subscribe, unsubscribe or heartbeat with a field of the wrong type or out of range."""
    kind = draw(st.sampled_from(["subscribe", "unsubscribe", "heartbeat"]))
    if kind == "subscribe":
        return {
            "type": "subscribe",
            **draw(
                st.sampled_from(
                    [
                        {"domains": []},
                        {"domains": "todos"},
                        {"domains": ["nowhere"]},
                        {"resume": {"epoch": "", "offset": 0}},
                        {"resume": {"epoch": "e", "offset": -1}},
                        {"filters": {"projectId": "CHITTY-TODO-1"}},
                        {"filters": {"unknown": 1}},
                        {"id": ""},
                        {"id": "has space"},
                        {"extra": True},
                    ]
                )
            ),
        }
    if kind == "unsubscribe":
        value = draw(st.just("") | not_a_string | st.text(min_size=65, max_size=70))
        return {"type": "unsubscribe", "subscription": value}
    bad_id = not_a_string.filter(lambda v: v is not None)  # a null id is no id: valid
    return {"type": "heartbeat", "id": draw(st.just("") | bad_id | huge_numbers)}


@st.composite
def bad_batch(draw: st.DrawFn) -> object:
    """A batch none of whose items can apply, or a batch frame that is itself malformed."""
    kind = draw(st.sampled_from(["array", "frame", "empty", "not_a_list", "extra"]))
    items = draw(st.lists(bad_state_update() | json_values | bad_control(), min_size=1, max_size=6))
    if kind == "array":
        return items
    if kind == "frame":
        return {"type": "batch", "frames": items}
    if kind == "empty":
        return draw(st.sampled_from([[], {"type": "batch", "frames": []}]))
    if kind == "not_a_list":
        return {
            "type": "batch",
            "frames": draw(not_a_string.filter(lambda v: not isinstance(v, list))),
        }
    return {"type": "batch", "frames": items, "extra": 1}


@dataclass(frozen=True)
class Sent:
    """One malformed frame as it goes on the wire: text, raw bytes as text, or binary."""

    data: str | bytes
    opcode: aiohttp.WSMsgType = aiohttp.WSMsgType.TEXT


def text(value: object) -> str:
    return json.dumps(value, ensure_ascii=True, allow_nan=True)


@st.composite
def truncated(draw: st.DrawFn) -> Sent:
    whole = text(draw(bad_state_update() | bad_control() | st.just({"type": "heartbeat"})))
    cut = whole[: draw(st.integers(1, len(whole) - 1))]
    try:
        json.loads(cut)
    except ValueError:
        return Sent(cut)
    assume(False)
    raise AssertionError  # unreachable


frames = st.one_of(
    json_values.filter(lambda v: not isinstance(v, (dict, list))).map(lambda v: Sent(text(v))),
    st.dictionaries(st.text(max_size=6), json_values, max_size=3)
    .flatmap(lambda d: bad_type.map(lambda t: {**d, "type": t}))
    .map(lambda v: Sent(text(v))),
    st.dictionaries(st.text(max_size=6), json_values, max_size=3)
    .filter(lambda d: "type" not in d)
    .map(lambda v: Sent(text(v))),
    bad_state_update().map(lambda v: Sent(text(v))),
    bad_control().map(lambda v: Sent(text(v))),
    bad_batch().map(lambda v: Sent(text(v))),
    truncated(),
    st.sampled_from(["NaN", "Infinity", "-Infinity", '{"type": "heartbeat", "id": NaN}']).map(Sent),
    st.integers(2, 200_000).map(lambda n: Sent("[" * n + "]" * n)),
    st.integers(2, 200_000).map(lambda n: Sent('{"a":' * n + "0" + "}" * n)),
    st.just(Sent("1" * 5000)),  # past int_max_str_digits
    st.binary(max_size=64).map(lambda b: Sent(b, aiohttp.WSMsgType.BINARY)),
    # Invalid UTF-8 in a text frame: aiohttp closes the connection (1007)
    st.sampled_from([b"\xff", b'{"type": "heartbeat", "id": "\xc3\x28"}', b"\xed\xa0\x80"]).map(
        Sent
    ),
)


# -- the connection ----------------------------------------------------------------------------


@dataclass
class Fuzzer:
    """One /ws connection reused across examples (opened again after a clean close)."""

    gateway: Gateway
    socket: aiohttp.ClientWebSocketResponse | None = None
    pings: Iterator[int] = field(default_factory=itertools.count)
    closes: list[int] = field(default_factory=list)

    async def _socket(self) -> aiohttp.ClientWebSocketResponse:
        if self.socket is None or self.socket.closed:
            self.socket = await self.gateway.session.ws_connect("/ws")
        return self.socket

    async def heartbeat(self) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
        """The frames before the reply to a heartbeat of ours, and that reply (None: the
        connection closed first)."""
        socket = await self._socket()
        marker = f"ping-{next(self.pings)}"
        await socket.send_str(json.dumps({"type": "heartbeat", "id": marker}))
        return await self._until(socket, marker)

    async def _until(
        self, socket: aiohttp.ClientWebSocketResponse, marker: str
    ) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
        before: list[dict[str, Any]] = []
        while True:
            received = await socket.receive(timeout=REPLY_S)
            if received.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED):
                self.closes.append(socket.close_code or 1000)
                return before, None
            assert received.type is aiohttp.WSMsgType.TEXT, received
            frame = json.loads(received.data)
            if frame.get("type") == "heartbeat" and frame.get("id") == marker:
                return before, frame
            if frame.get("type") == "heartbeat" and "id" not in frame:
                continue  # the hub's idle heartbeat
            before.append(frame)

    async def send(self, sent: Sent) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
        socket = await self._socket()
        if sent.opcode is aiohttp.WSMsgType.BINARY:
            await socket.send_bytes(bytes(sent.data))  # type: ignore[arg-type]
        elif isinstance(sent.data, bytes):
            await socket.send_frame(sent.data, aiohttp.WSMsgType.TEXT)
        else:
            await socket.send_str(sent.data)
        marker = f"ping-{next(self.pings)}"
        with contextlib.suppress(ConnectionError, RuntimeError):  # closed under us: the
            await socket.send_str(json.dumps({"type": "heartbeat", "id": marker}))  # receive says
        return await self._until(socket, marker)

    async def close(self) -> None:
        if self.socket is not None:
            await self.socket.close()


@dataclass
class Watcher:
    """A second connection subscribed to every domain: a change would reach it."""

    socket: aiohttp.ClientWebSocketResponse
    offset: int

    @classmethod
    async def open(cls, gateway: Gateway) -> Watcher:
        socket = await gateway.session.ws_connect("/ws")
        await socket.send_str(json.dumps({"type": "subscribe", "id": "watch"}))
        while True:
            frame = json.loads((await socket.receive(timeout=REPLY_S)).data)
            if frame["type"] == "subscribed":
                return cls(socket, frame["offset"])

    async def events(self, quiet_s: float) -> list[dict[str, Any]]:
        """Every state_update or batch that arrives within `quiet_s` seconds."""
        seen: list[dict[str, Any]] = []
        try:
            while True:
                received = await self.socket.receive(timeout=quiet_s)
                frame = json.loads(received.data)
                if frame["type"] in ("state_update", "batch", "gap"):
                    seen.append(frame)
        except TimeoutError:
            return seen


# -- the test ----------------------------------------------------------------------------------

SESSION = "CHITTY-SESSION-WSFUZZ"


@pytest.fixture(scope="module")
def world(gateway: Gateway) -> Iterator[tuple[Fuzzer, Watcher, dict[str, Any]]]:
    status, project, _ = gateway.request("POST", "/api/v1/projects", {"name": "sentinel"})
    assert status == 201
    gateway.ensure("sessions", SESSION, {"sessionId": "fuzz", "platform": "cli"})
    body = {"content": "sentinel", "sessionId": SESSION, "projectId": project["entity"]["chittyId"]}
    assert gateway.request("POST", "/api/v1/todos", body)[0] == 201
    watcher = gateway.call(Watcher.open(gateway))
    gateway.call(watcher.events(quiet_s=2.5))  # the sentinels' own events, as the stream catches up
    fuzzer = Fuzzer(gateway)
    _, pong = gateway.call(fuzzer.heartbeat())
    assert pong is not None
    watcher.offset = pong["offset"]  # the stream's head before the fuzzing
    yield fuzzer, watcher, snapshot(gateway)
    gateway.call(fuzzer.close())
    gateway.call(watcher.socket.close())


def snapshot(gateway: Gateway) -> dict[str, Any]:
    """What the hub holds, as REST lists it (every domain, deleted ones too)."""
    lists = {}
    for domain in DOMAINS:
        status, body, _ = gateway.request("GET", f"/api/v1/{domain}?limit=500&includeDeleted=true")
        assert status == 200
        lists[domain] = body
    return lists


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.function_scoped_fixture,
        HealthCheck.filter_too_much,
        HealthCheck.data_too_large,
    ],
)
@given(sent=frames)
def test_a_malformed_frame_is_an_error_frame_or_a_clean_close(
    gateway: Gateway, world: tuple[Fuzzer, Watcher, dict[str, Any]], sent: Sent
) -> None:
    fuzzer, _, _ = world
    answers, pong = gateway.call(fuzzer.send(sent))
    if pong is None:  # closed: cleanly, and a new connection is served
        assert fuzzer.closes[-1] in CLEAN_CLOSES, fuzzer.closes
        answers, pong = gateway.call(fuzzer.heartbeat())
        assert pong is not None and answers == []
        return
    assert answers, f"no answer to {sent!r}"
    for answer in answers:
        assert answer["type"] == "error", answer
        assert answer["status"] < 500 and answer["error"] != "internal", answer
        assert set(answer) <= {"type", "id", "error", "detail", "field", "status", "index"}


def test_the_fuzzing_changed_nothing(
    gateway: Gateway, world: tuple[Fuzzer, Watcher, dict[str, Any]]
) -> None:
    fuzzer, watcher, before = world
    _, pong = gateway.call(fuzzer.heartbeat())
    assert pong is not None
    events = gateway.call(watcher.events(quiet_s=2.5))  # > the follower's 1 s long poll
    assert events == []
    _, pong = gateway.call(fuzzer.heartbeat())
    assert pong is not None and pong["offset"] == watcher.offset
    assert snapshot(gateway) == before


def test_a_huge_clock_counter_in_a_state_update_is_refused_without_a_change(
    gateway: Gateway, world: tuple[Fuzzer, Watcher, dict[str, Any]]
) -> None:
    """Not a crash, and nothing applied (what the answer's status should be is pinned in
    test_schemathesis: a 422, today a 503 from the failed submit)."""
    fuzzer, _, _ = world
    frame = {
        "type": "state_update",
        "domain": "todos",
        "operation": "create",
        "entity": {"content": "c", "sessionId": SESSION},
        "vectorClock": {"n": 2**70},
    }
    answers, pong = gateway.call(fuzzer.send(Sent(text(frame))))
    assert pong is not None
    assert [a["type"] for a in answers] == ["error"]
    assert answers[0]["error"] != "internal"


@pytest.mark.parametrize("surrogate", LONE_SURROGATES)
def test_a_lone_surrogate_is_answered_with_an_error_frame(
    gateway: Gateway, world: tuple[Fuzzer, Watcher, dict[str, Any]], surrogate: str
) -> None:
    fuzzer, _, _ = world
    frame = {"type": "heartbeat", "id": surrogate}
    answers, pong = gateway.call(fuzzer.send(Sent(text(frame))))
    assert pong is not None, f"closed with {fuzzer.closes[-1]}"
    assert [a["type"] for a in answers] == ["error"]
