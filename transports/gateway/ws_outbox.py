"""`Outbox`: one connection's outgoing frames, bounded so a slow reader costs only itself."""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass

from hub.subscriptions import Published
from transports.gateway.ws_frames import ServerFrame, Wire, batch_wire, event_wire


@dataclass(frozen=True, slots=True)
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


def frames_of(items: list[Outgoing]) -> list[Wire]:
    """Outgoing items as wire frames in order; consecutive events share one `batch` frame."""
    frames: list[Wire] = []
    run: list[Wire] = []
    for item in items:
        if isinstance(item, Delivery):
            run.append(event_wire(item.event, item.subscription, item.epoch))
            continue
        if run:
            frames.append(run[0] if len(run) == 1 else batch_wire(run))
            run = []
        frames.append(item.to_wire())
    if run:
        frames.append(run[0] if len(run) == 1 else batch_wire(run))
    return frames
