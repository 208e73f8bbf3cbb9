"""`Broker`: the hub's event stream (plain class, no Ray).

Hosts publish what they committed, in outbox order; the broker numbers events with a stream
offset and keeps the newest `retention` of them. Subscribers poll with (epoch, offset) and a
filter, so a slow subscriber never holds up another, and one that reconnects resumes exactly
where it stopped, or is told plainly that it cannot (a gap: the epoch changed, or what it missed
is no longer retained).

The stream holds bytes only: each retained event is its msgpack encoding
(`hub.subscriptions.encode_published`, as the host's outbox stores it), kept with the keys
filters look at (domain, entity, project, session, topic, platform) and where it came from (the
host and its outbox seq). The Ray actor takes and hands out encoded events (`publish_encoded`,
`poll_encoded`), so the stream never unpickles, rebuilds or re-encodes an event on its way from
a host to a subscriber. A subscriber that keeps its own durable position per host (the catalog,
an adapter: `actors.follower`) reads the host and seq of each row.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import msgpack

from hub.record import record
from hub.subscriptions import Filter, Published, decode_published, encode_published

Keys = tuple[str, str, str | None, str | None, str | None, str]
"""What a filter looks at: (domain, entity id, project id, session id, topic id, platform)."""

EVERYTHING = Filter()
"""The filter every event matches (what a follower of the whole stream polls with)."""

EncodedItem = tuple[int, Keys, bytes]
"""One outbox entry on the wire: (outbox seq, filter keys, `encode_published` bytes)."""


@record
class Poll:
    """What a poll returns: matching events, where to poll from next, and whether some were lost."""

    epoch: str
    events: tuple[Published, ...]
    offset: int  # the last offset scanned: resume after it
    gap: bool  # True: events between the asked offset and `offset` are no longer available


class EncodedPoll(NamedTuple):
    """A `Poll` on the wire: its `count` events as msgpack rows
    [[offset, host, outbox seq, encoded event], ...] (`rows_of`)."""

    epoch: str
    count: int
    events: bytes
    offset: int
    gap: bool


def keys_of(item: Published) -> Keys:
    return (
        item.domain.value,
        item.entity_id,
        item.project_id,
        item.session_id,
        item.topic_id,
        item.platform,
    )


def pack_published(items: Sequence[tuple[int, Published]]) -> bytes:
    """A host's outbox entries as one msgpack value of `EncodedItem`s."""
    return pack_encoded([(seq, item, encode_published(item)) for seq, item in items])


def pack_encoded(items: Sequence[tuple[int, Published, bytes]]) -> bytes:
    """`pack_published` of entries whose `encode_published` bytes are at hand (a host has
    them from its commit), so nothing is encoded twice."""
    packed: bytes = msgpack.packb(
        [(seq, keys_of(item), body) for seq, item, body in items], use_bin_type=True
    )
    return packed


def unpack_published(data: bytes) -> list[EncodedItem]:
    rows: list[list[Any]] = msgpack.unpackb(data, raw=False)
    return [(row[0], tuple(row[1]), row[2]) for row in rows]  # type: ignore[misc]


Row = tuple[int, str, int, bytes]
"""One event of an `EncodedPoll`: (stream offset, host, its outbox seq, encoded event)."""


def rows_of(wire: EncodedPoll) -> list[Row]:
    """The rows of a `poll_encoded` answer, still encoded."""
    rows: list[Row] = msgpack.unpackb(wire.events, raw=False) if wire.count else []
    return rows


def decode_poll(wire: EncodedPoll) -> Poll:
    """The `Poll` a `poll_encoded` answer stands for."""
    events = tuple(decode_published(body, at) for at, _, _, body in rows_of(wire))
    return Poll(wire.epoch, events, wire.offset, wire.gap)


class _Matcher:
    """A filter as plain comparisons on `Keys`."""

    __slots__ = ("domains", "entity", "platform", "project", "session", "topic")

    def __init__(self, wanted: Filter) -> None:
        self.domains = frozenset(d.value for d in wanted.domains)
        self.entity = wanted.entity_id
        self.project = wanted.project_id
        self.session = wanted.session_id
        self.topic = wanted.topic_id
        self.platform = wanted.platform

    def __call__(self, keys: Keys) -> bool:
        return (
            keys[0] in self.domains
            and (self.entity is None or self.entity == keys[1])
            and (self.project is None or self.project == keys[2])
            and (self.session is None or self.session == keys[3])
            and (self.topic is None or self.topic == keys[4])
            and (self.platform is None or self.platform == keys[5])
        )


Retained = tuple[Keys, str, int, bytes]
"""A retained event: its filter keys, its host, its outbox seq and its encoding."""


class _Ring:
    """A fixed-capacity buffer of `Retained` events indexed by offset."""

    def __init__(self, capacity: int) -> None:
        self._items: list[Retained | None] = [None] * capacity
        self._capacity = capacity
        self.first = 1  # oldest retained offset
        self.next = 1  # offset the next event gets

    def append(self, item: Retained) -> None:
        self._items[self.next % self._capacity] = item
        self.next += 1
        self.first = max(self.first, self.next - self._capacity)

    def get(self, offset: int) -> Retained:
        item = self._items[offset % self._capacity]
        assert item is not None and self.first <= offset < self.next
        return item

    def rewrite(self, change: Callable[[Published], Published]) -> None:
        for offset in range(self.first, self.next):
            _, host, seq, body = self.get(offset)
            changed = change(decode_published(body, offset))
            self._items[offset % self._capacity] = (
                keys_of(changed),
                host,
                seq,
                encode_published(changed),
            )


class Broker:
    """Numbers and retains published events; answers polls by offset and filter."""

    def __init__(self, retention: int, epoch: str | None = None) -> None:
        self.epoch = epoch or secrets.token_hex(8)
        self._ring = _Ring(retention)
        self._marks: dict[str, int] = {}  # host -> newest outbox seq taken
        self.published = 0

    @property
    def head(self) -> int:
        """The newest offset (0: nothing yet)."""
        return self._ring.next - 1

    def rewrite(self, change: Callable[[Published], Published]) -> None:
        """Replace every retained event by `change(event)` (erasure); offsets stay."""
        self._ring.rewrite(change)

    def mark(self, host: str) -> int | None:
        """The newest outbox seq taken from `host`, None if this broker never heard of it."""
        return self._marks.get(host)

    def register(self, host: str, outbox_seq: int) -> int:
        """A host that starts at `outbox_seq` (its outbox's newest entry): the stream takes what
        it commits after that. Known hosts keep their mark, so a host that died between a
        commit and its publish is found to have a hole when it is back, even if the broker
        never got a publish from it before; returns the mark."""
        return self._marks.setdefault(host, outbox_seq)

    def publish(self, host: str, items: Sequence[tuple[int, Published]]) -> int:
        """Take `host`'s outbox entries in order, skipping any already taken; returns the mark."""
        return self.publish_encoded(
            host, [(seq, keys_of(item), encode_published(item)) for seq, item in items]
        )

    def publish_encoded(self, host: str, items: Sequence[EncodedItem]) -> int:
        """`publish` for entries as they come over the wire (never decoded here)."""
        mark = self._marks.get(host, 0)
        for seq, keys, body in items:
            if seq <= mark:
                continue  # re-sent after a host restart: already in the stream
            self._ring.append((keys, host, seq, body))
            self.published += 1
            mark = seq
        self._marks[host] = mark
        return mark

    def poll(self, epoch: str | None, after: int, wanted: Filter, limit: int = 1000) -> Poll:
        """Events after offset `after` that match `wanted`, at most `limit` of them.

        `epoch` None starts a new subscription at the head. A different epoch, or an offset
        older than what is retained, is a gap: the answer says so and resumes at the head.
        """
        found, offset, gap = self._scan(epoch, after, wanted, limit)
        events = tuple(decode_published(body, at) for at, _, _, body in found)
        return Poll(self.epoch, events, offset, gap)

    def poll_encoded(
        self, epoch: str | None, after: int, wanted: Filter, limit: int = 1000
    ) -> EncodedPoll:
        """`poll` with its events encoded (see `decode_poll`)."""
        found, offset, gap = self._scan(epoch, after, wanted, limit)
        return EncodedPoll(
            self.epoch, len(found), msgpack.packb(found, use_bin_type=True), offset, gap
        )

    def _scan(
        self, epoch: str | None, after: int, wanted: Filter, limit: int
    ) -> tuple[list[Row], int, bool]:
        head = self.head
        if epoch is None:
            return [], head, False
        if epoch != self.epoch or after + 1 < self._ring.first or after > head:
            return [], head, True
        matches = _Matcher(wanted)
        found: list[Row] = []
        offset = after
        get = self._ring.get
        while offset < head and len(found) < limit:
            offset += 1
            keys, host, seq, body = get(offset)
            if matches(keys):
                found.append((offset, host, seq, body))
        return found, offset, False


class Live:
    """A `Broker` whose polls can wait for events (asyncio: the broker actor, the in-process
    hub). Whoever publishes to the broker then calls `published`."""

    def __init__(self, broker: Broker) -> None:
        self.broker = broker
        self._changed = asyncio.Condition()
        self._version = 0  # counts `published` calls: a wait never misses one

    async def published(self) -> None:
        """Wake the polls waiting for events."""
        self._version += 1
        async with self._changed:
            self._changed.notify_all()

    async def poll_encoded(
        self, epoch: str | None, after: int, wanted: Filter, limit: int, wait_s: float
    ) -> EncodedPoll:
        """`Broker.poll_encoded` that waits up to `wait_s` for a matching event."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait_s
        while True:
            seen = self._version
            answer = self.broker.poll_encoded(epoch, after, wanted, limit)
            left = deadline - loop.time()
            if answer.count or answer.gap or epoch is None or left <= 0:
                return answer
            after = answer.offset  # nothing matched so far: keep scanning from here
            async with self._changed:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(
                        self._changed.wait_for(lambda n=seen: self._version != n), timeout=left
                    )
