"""`StreamFollower`: one follower of the hub's event stream per gateway, fanning out to sockets.

Like Centrifugo, a gateway reads the stream once (a long poll on the broker) and matches every
event against its subscribers' filters in memory. Each connection has a bounded `Outbox`, so a
slow subscriber loses its own subscription (with a gap notice saying where to resume) and never
delays another. A subscription that resumes from an older offset first reads what it missed
with polls of its own, then joins the live fan-out; per-subscription offsets (`last`) make the
hand-over free of duplicates and holes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from actors.broker import EVERYTHING, Poll
from hub.subscriptions import Filter, Published
from transports.gateway.ws_frames import Gap, GapReason, ResumeAt, Subscribed
from transports.gateway.ws_outbox import Delivery, Outbox

log = logging.getLogger(__name__)


class Stream(Protocol):
    """The part of the hub a follower reads (the Ray `Runtime` provides it)."""

    async def poll(
        self, epoch: str | None, after: int, wanted: Filter, limit: int = 1000, wait_s: float = 0.0
    ) -> Poll: ...


class Phase(StrEnum):
    """Where a subscription is: reading history, following live, or over."""

    CATCHING_UP = "catching_up"
    LIVE = "live"
    ENDED = "ended"


def _everything(event: Published) -> bool:
    return True


class Subscription:
    """One subscription of one connection; `last` is the newest offset it has accounted for."""

    def __init__(
        self,
        sub_id: str,
        wanted: Filter,
        last: int,
        outbox: Outbox,
        visible: Callable[[Published], bool] | None = None,
    ) -> None:
        self.id = sub_id
        self.wanted = wanted
        self.visible = visible or _everything
        self.last = last
        self.outbox = outbox
        self.phase = Phase.CATCHING_UP
        self.catch_up: asyncio.Task[None] | None = None

    def deliver(self, event: Published, epoch: str) -> bool:
        """Offer a live event; False when the outbox refused it (the caller ends this one)."""
        if event.offset <= self.last or not event.matches(self.wanted):
            return True
        if not self.visible(event):  # not for this subscriber, or not its to see (scope)
            self.last = event.offset
            return True
        if not self.outbox.offer(Delivery(self.id, epoch, event)):
            return False
        self.last = event.offset
        return True

    def end(self) -> None:
        self.phase = Phase.ENDED
        if self.catch_up is not None and self.catch_up is not asyncio.current_task():
            self.catch_up.cancel()


class Scope(Protocol):
    """What a connection's principal may see; `observe` sees every live event first (so
    membership changes take effect in stream order)."""

    def observe(self, event: Published) -> None: ...

    def visible(self, event: Published) -> bool: ...


class Subscriber:
    """One connection as the stream sees it: its outbox, its open subscriptions, (for a
    principal who may not see everything) its scope, and the node and platform it declared,
    which a message's `target` may name."""

    def __init__(
        self,
        outbox: Outbox,
        scope: Scope | None = None,
        node: str | None = None,
        platform: str | None = None,
    ) -> None:
        self.outbox = outbox
        self.scope = scope
        self.node = node
        self.platform = platform
        self.subscriptions: dict[str, Subscription] = {}

    def admits(self, event: Published) -> bool:
        """Whether the event is for this connection (its target) and it may see it (scope)."""
        if not event.reach.reaches(self.node, self.platform):
            return False
        return self.scope is None or self.scope.visible(event)


@dataclass(slots=True)
class StreamCounters:
    """What the follower has done, for /metrics."""

    polls: int = 0
    poll_failures: int = 0
    events: int = 0
    overflows: int = 0
    gaps: int = 0


class StreamFollower:
    """Follows the hub's stream from its head and fans each event out to matching subscribers."""

    def __init__(
        self, hub: Stream, wait_s: float = 1.0, batch: int = 1000, catch_up_chunk: int = 500
    ) -> None:
        self.hub = hub
        self.wait_s = wait_s
        self.batch = batch
        self.catch_up_chunk = catch_up_chunk
        self.epoch = ""
        self.offset = 0  # every event up to here has been fanned out
        self.subscribers: set[Subscriber] = set()
        self.counters = StreamCounters()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Find the stream's head and follow it from there in a background task."""
        head = await self.hub.poll(None, 0, EVERYTHING)
        self.epoch, self.offset = head.epoch, head.offset
        self._task = asyncio.create_task(self._follow(), name="ws-stream-follower")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for subscriber in list(self.subscribers):
            self.detach(subscriber)

    # -- subscribers ------------------------------------------------------------------------

    def attach(self, subscriber: Subscriber) -> None:
        self.subscribers.add(subscriber)

    def detach(self, subscriber: Subscriber) -> None:
        self.subscribers.discard(subscriber)
        for subscription in subscriber.subscriptions.values():
            subscription.end()
        subscriber.subscriptions.clear()

    def subscribe(
        self, subscriber: Subscriber, sub_id: str, wanted: Filter, resume: ResumeAt | None
    ) -> Subscription:
        """Open a subscription: live from the head, or after catching up from `resume`."""
        start = resume.offset if resume is not None else self.offset
        subscription = Subscription(sub_id, wanted, start, subscriber.outbox, subscriber.admits)
        subscriber.subscriptions[sub_id] = subscription
        subscriber.outbox.reply(Subscribed(sub_id, self.epoch, start))
        if resume is None:
            subscription.phase = Phase.LIVE
        else:
            subscription.catch_up = asyncio.create_task(
                self._catch_up(subscriber, subscription, resume.epoch),
                name=f"ws-catch-up-{sub_id}",
            )
        return subscription

    def unsubscribe(self, subscriber: Subscriber, sub_id: str) -> bool:
        subscription = subscriber.subscriptions.pop(sub_id, None)
        if subscription is None:
            return False
        subscription.end()
        return True

    async def _catch_up(self, subscriber: Subscriber, sub: Subscription, epoch: str) -> None:
        """Read what `sub` missed with its own polls until it reaches the live fan-out."""
        try:
            while sub.phase is Phase.CATCHING_UP:
                await sub.outbox.room()
                answer = await self.hub.poll(epoch, sub.last, sub.wanted, self.catch_up_chunk)
                if sub.phase is not Phase.CATCHING_UP:
                    return
                if answer.gap:
                    self.counters.gaps += 1
                    detail = (
                        "the stream no longer holds what this subscription missed "
                        "(another epoch, or older than retention): reload state over REST"
                    )
                    sub.outbox.reply(
                        Gap(sub.id, answer.epoch, answer.offset, GapReason.HISTORY, detail)
                    )
                    sub.last = answer.offset
                    sub.phase = Phase.LIVE
                    return
                for event in answer.events:
                    if sub.visible(event):
                        sub.outbox.push(Delivery(sub.id, answer.epoch, event))
                sub.last = max(sub.last, answer.offset)
                # No await between this check and going live: the fan-out has not passed `last`.
                if sub.last >= self.offset:
                    sub.phase = Phase.LIVE
        except asyncio.CancelledError:
            raise
        except Exception as error:  # the hub failed: tell the client, which may resume later
            log.warning("catch-up of %s failed: %r", sub.id, error)
            self.counters.poll_failures += 1
            detail = f"reading missed events failed ({type(error).__name__}); resume again"
            sub.outbox.reply(Gap(sub.id, self.epoch, sub.last, GapReason.UNAVAILABLE, detail))
            sub.phase = Phase.ENDED
            subscriber.subscriptions.pop(sub.id, None)

    # -- the live stream --------------------------------------------------------------------

    async def _follow(self) -> None:
        backoff = 0.1
        while True:
            try:
                answer = await self.hub.poll(
                    self.epoch, self.offset, EVERYTHING, self.batch, self.wait_s
                )
            except asyncio.CancelledError:
                raise
            except Exception as error:  # the broker restarts: keep following when it is back
                self.counters.poll_failures += 1
                log.warning("stream poll failed: %r; retrying in %.1fs", error, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 2.0)
                continue
            backoff = 0.1
            self.counters.polls += 1
            self.fan_out(answer)

    def fan_out(self, answer: Poll) -> None:
        """Hand one poll's events to every matching live subscription (never waits)."""
        if answer.gap:
            self._restart(answer)
            return
        for event in answer.events:
            self.counters.events += 1
            for subscriber in self.subscribers:
                if subscriber.scope is not None:
                    subscriber.scope.observe(event)
                for sub in list(subscriber.subscriptions.values()):
                    if sub.phase is Phase.LIVE and not sub.deliver(event, answer.epoch):
                        self._overflow(subscriber, sub, answer.epoch)
        for subscriber in self.subscribers:
            for sub in subscriber.subscriptions.values():
                if sub.phase is Phase.LIVE:
                    sub.last = max(sub.last, answer.offset)
        self.offset = answer.offset

    def _overflow(self, subscriber: Subscriber, sub: Subscription, epoch: str) -> None:
        self.counters.overflows += 1
        sub.end()
        subscriber.subscriptions.pop(sub.id, None)
        detail = (
            f"this connection fell more than {sub.outbox.limit} frames behind; the subscription "
            "ended: subscribe again with resume at this offset"
        )
        sub.outbox.reply(Gap(sub.id, epoch, sub.last, GapReason.OVERFLOW, detail))

    def _restart(self, answer: Poll) -> None:
        """The stream itself moved on (the broker restarted): every subscription has a gap."""
        log.warning("the hub's stream changed epoch %s -> %s", self.epoch, answer.epoch)
        self.epoch, self.offset = answer.epoch, answer.offset
        for subscriber in self.subscribers:
            for sub in subscriber.subscriptions.values():
                if sub.catch_up is not None:
                    sub.catch_up.cancel()
                self.counters.gaps += 1
                detail = "the hub's stream restarted: reload state over REST"
                gap = Gap(sub.id, answer.epoch, answer.offset, GapReason.HISTORY, detail)
                sub.outbox.reply(gap)
                sub.last = answer.offset
                sub.phase = Phase.LIVE
