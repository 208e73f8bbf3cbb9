"""Events leave /ws pre-encoded: the text must be exactly the frames `ws_frames` describes."""

from __future__ import annotations

import json

from hub.domains import SyncDomain
from hub.subscriptions import Published
from transports.gateway.ws_frames import Pong, batch_wire, encode, event_wire
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
    assert sent == [
        batch_wire([event_wire(one, "s1", "ep"), event_wire(two, "s1", "ep")]),
        Pong("ep", 2).to_wire(),
        batch_wire([event_wire(one, 's"2', "ep"), event_wire(three, "s1", "other-epoch")]),
    ]
    again = [json.loads(encode(frame)) for frame in frames_of([Delivery("s9", "ep2", one)])]
    assert again == [event_wire(one, "s9", "ep2")]  # a new epoch is encoded anew
