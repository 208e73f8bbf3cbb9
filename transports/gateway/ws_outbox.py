"""`Outbox`: one connection's outgoing frames, bounded so a slow reader costs only itself."""

from __future__ import annotations

import asyncio
import json
from collections import deque

from hub.record import record
from hub.subscriptions import Published
from transports.gateway.ws_frames import ServerFrame, Wire, encode, stream_wires


@record
class Delivery:
    """A committed change on its way to one subscription."""

    subscription: str
    epoch: str
    event: Published


Outgoing = ServerFrame | Delivery


class Outbox:
    """Frames in send order. Replies always queue; live events only while there is room.

    The fan-out `offer`s events and never waits: a full outbox refuses, and the subscription
    turns that into a gap notice. Producers that can wait (a catch-up, the reader of a client's
    frames) `await room()` first, which bounds memory by pushing back on the socket.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._items: deque[Outgoing] = deque()
        self._ready = asyncio.Event()
        self._room = asyncio.Event()
        self._room.set()

    def __len__(self) -> int:
        return len(self._items)

    def reply(self, frame: ServerFrame) -> None:
        """Queue a reply or notice (never refused)."""
        self._put(frame)

    def push(self, delivery: Delivery) -> None:
        """Queue an event from a producer that waited for room."""
        self._put(delivery)

    def offer(self, delivery: Delivery) -> bool:
        """Queue a live event if there is room; False: refused, the outbox is full."""
        if len(self._items) >= self.limit:
            return False
        self._put(delivery)
        return True

    def _put(self, item: Outgoing) -> None:
        self._items.append(item)
        self._ready.set()
        if len(self._items) >= self.limit:
            self._room.clear()

    async def room(self) -> None:
        """Wait until the outbox is below its limit."""
        while len(self._items) >= self.limit:
            self._room.clear()
            await self._room.wait()

    async def take(self, most: int, timeout: float) -> list[Outgoing]:
        """Up to `most` queued items in order, waiting up to `timeout` s ([]: idle)."""
        if not self._items:
            self._ready.clear()
            try:
                await asyncio.wait_for(self._ready.wait(), timeout)
            except TimeoutError:
                return []
        taken = [self._items.popleft() for _ in range(min(most, len(self._items)))]
        if len(self._items) < self.limit:
            self._room.set()
        return taken


def frames_of(items: list[Outgoing]) -> list[Wire | str]:
    """Outgoing items as wire frames in order; consecutive events share one `batch` frame.

    Events come out already encoded (`ws_frames.encode` passes text through): an event's JSON
    is built once however many subscriptions receive it, and a `batch` frame is joined text.
    """
    frames: list[Wire | str] = []
    run: list[str] = []
    for item in items:
        if isinstance(item, Delivery):
            run.extend(_event_texts(item))
            continue
        if run:
            frames.append(_batch_text(run))
            run = []
        frames.append(item.to_wire())
    if run:
        frames.append(_batch_text(run))
    return frames


def _batch_text(events: list[str]) -> str:
    """`ws_frames.batch_wire` of encoded events, encoded (one event goes as it is)."""
    if len(events) == 1:
        return events[0]
    return '{"type":"batch","events":[' + ",".join(events) + "]}"


_CACHE_SIZE = 8192
# id(event) -> (event, epoch, each of its frames' JSON without the closing "}")
_encoded: dict[int, tuple[Published, str, list[str]]] = {}


def _event_texts(delivery: Delivery) -> list[str]:
    """`ws_frames.stream_wires` of one delivery, encoded; the part shared by every
    subscription is encoded once per event (the cache holds the event, so its id cannot be
    reused)."""
    event = delivery.event
    cached = _encoded.get(id(event))
    if cached is None or cached[0] is not event or cached[1] != delivery.epoch:
        texts = []
        for wire in stream_wires(event, "", delivery.epoch):
            del wire["subscription"]
            texts.append(encode(wire)[:-1])
        if len(_encoded) >= _CACHE_SIZE:
            _encoded.clear()
        cached = (event, delivery.epoch, texts)
        _encoded[id(event)] = cached
    tail = ',"subscription":' + json.dumps(delivery.subscription) + "}"
    return [text + tail for text in cached[2]]
