"""Events leave /ws pre-encoded: the text must be exactly the frames `ws_frames` describes."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from hub.domains import SyncDomain
from hub.subscriptions import Published
from transports.gateway.ws_frames import Pong, batch_wire, encode, event_wire, stream_wires
from transports.gateway.ws_outbox import Delivery, Outgoing, frames_of


def published(offset: int) -> Published:
    return Published(
        offset, SyncDomain.TODOS, f"CHITTY-TODO-{offset}", "updated", offset, f"m{offset}",
        "web", "node", "CHITTY-PROJ-1", None, None, {"node": offset}, ("content",),
        {"content": f"é {offset}", "tags": ["a", "b"]}, ("c1",), 1_700_000_000_000 + offset,
        ({"conflictId": "c1", "field": "status"},),
    )  # fmt: skip


def test_encoded_events_and_batches_read_back_as_the_wire_frames() -> None:
    one, two, three = published(1), published(2), published(3)
    items: list[Outgoing] = [
        Delivery("s1", "ep", one),
        Delivery("s1", "ep", two),
        Pong("ep", 2),
        Delivery('s"2', "ep", one),  # the same event for another subscription: shared JSON
        Delivery("s1", "other-epoch", three),
    ]
    sent = [json.loads(encode(frame)) for frame in frames_of(items)]
    # Each change comes with a `conflict` frame for the conflict it opened (c1).
    assert sent == [
        batch_wire([*stream_wires(one, "s1", "ep"), *stream_wires(two, "s1", "ep")]),
        Pong("ep", 2).to_wire(),
        batch_wire([*stream_wires(one, 's"2', "ep"), *stream_wires(three, "s1", "other-epoch")]),
    ]
    assert [e["type"] for e in sent[0]["events"]] == ["state_update", "conflict"] * 2
    again = [json.loads(encode(frame)) for frame in frames_of([Delivery("s9", "ep2", one)])]
    assert again == [batch_wire(stream_wires(one, "s9", "ep2"))]  # a new epoch is encoded anew
    quiet = one._replace(conflicts=())  # a change that opened or closed nothing: one frame
    alone = [json.loads(encode(frame)) for frame in frames_of([Delivery("s9", "ep2", quiet)])]
    assert alone == [event_wire(quiet, "s9", "ep2")]


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63) + 1, 2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


def has_float(value: Any) -> bool:
    if isinstance(value, float):
        return True
    if isinstance(value, list):
        return any(has_float(item) for item in value)
    return isinstance(value, dict) and any(has_float(item) for item in value.values())


@given(json_values)
def test_encode_is_compact_json_that_reads_back_the_same(value: Any) -> None:
    """orjson writes frames; what it writes reads back equal, and (floats aside, whose
    shortest forms may be spelt differently) is the very text `json.dumps` writes."""
    text = encode({"v": value})
    assert json.loads(text) == {"v": value}
    if not has_float(value):  # no float spelling to differ in
        assert text == json.dumps({"v": value}, separators=(",", ":"), ensure_ascii=False)


def test_what_orjson_refuses_is_encoded_by_the_standard_library() -> None:
    # A lone surrogate (a client may send one as a JSON escape, and it is echoed in an error
    # frame), an integer past 64 bits and a non-string key: the same text as before.
    for wire in ({"detail": "bad \ud800 here"}, {"n": 2**70}, {"m": {1: "one"}}):
        assert encode(wire) == json.dumps(wire, separators=(",", ":"), ensure_ascii=False)
