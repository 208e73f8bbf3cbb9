"""`Broker`: the hub's event stream (plain class, no Ray).

Hosts publish what they committed, in outbox order; the broker numbers events with a stream
offset and keeps the newest `retention` of them. Subscribers poll with (epoch, offset) and a
filter, so a slow subscriber never holds up another, and one that reconnects resumes exactly
where it stopped, or is told plainly that it cannot (a gap: the epoch changed, or what it missed
is no longer retained).

Each retained event is kept with the keys filters look at (domain, entity, project, session,
topic, platform) next to its payload: a `Published`, or its msgpack encoding
(`hub.subscriptions.encode_published`) when it came over the wire. The Ray actor takes and hands
out encoded events (`publish_encoded`, `poll_encoded`), so the stream never unpickles, rebuilds
or re-encodes an event on its way from a host to a gateway.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any, NamedTuple

import msgpack

from hub.subscriptions import Filter, Published, decode_published, encode_published

Keys = tuple[str, str, str | None, str | None, str | None, str]
"""What a filter looks at: (domain, entity id, project id, session id, topic id, platform)."""

EncodedItem = tuple[int, Keys, bytes]
"""One outbox entry on the wire: (outbox seq, filter keys, `encode_published` bytes)."""


@dataclass(frozen=True, slots=True)
class Poll:
    """What a poll returns: matching events, where to poll from next, and whether some were lost."""

    epoch: str
    events: tuple[Published, ...]
    offset: int  # the last offset scanned: resume after it
    gap: bool  # True: events between the asked offset and `offset` are no longer available


class EncodedPoll(NamedTuple):
    """A `Poll` on the wire: its `count` events as msgpack [[offset, encoded event], ...]."""

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


def decode_poll(wire: EncodedPoll) -> Poll:
    """The `Poll` a `poll_encoded` answer stands for."""
    rows: list[list[Any]] = msgpack.unpackb(wire.events, raw=False) if wire.count else []
    events = tuple(decode_published(body, at) for at, body in rows)
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


class _Ring:
    """A fixed-capacity buffer of (keys, payload) indexed by offset."""

    def __init__(self, capacity: int) -> None:
        self._items: list[tuple[Keys, Published | bytes] | None] = [None] * capacity
        self._capacity = capacity
        self.first = 1  # oldest retained offset
        self.next = 1  # offset the next event gets

    def append(self, keys: Keys, payload: Published | bytes) -> None:
        self._items[self.next % self._capacity] = (keys, payload)
        self.next += 1
        self.first = max(self.first, self.next - self._capacity)

    def get(self, offset: int) -> tuple[Keys, Published | bytes]:
        item = self._items[offset % self._capacity]
        assert item is not None and self.first <= offset < self.next
        return item

    def rewrite(self, change: Callable[[Published], Published]) -> None:
        for offset in range(self.first, self.next):
            _, payload = self.get(offset)
            event = (
                decode_published(payload, offset)
                if isinstance(payload, bytes)
                else replace(payload, offset=offset)
            )
            changed = change(event)
            self._items[offset % self._capacity] = (keys_of(changed), changed)


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
        return self._take(host, [(seq, keys_of(item), item) for seq, item in items])

    def publish_encoded(self, host: str, items: Sequence[EncodedItem]) -> int:
        """`publish` for entries as they come over the wire (never decoded here)."""
        return self._take(host, items)

    def _take(self, host: str, items: Sequence[tuple[int, Keys, Published | bytes]]) -> int:
        mark = self._marks.get(host, 0)
        for seq, keys, payload in items:
            if seq <= mark:
                continue  # re-sent after a host restart: already in the stream
            self._ring.append(keys, payload)
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
        events = tuple(
            decode_published(payload, at)
            if isinstance(payload, bytes)
            else replace(payload, offset=at)
            for at, payload in found
        )
        return Poll(self.epoch, events, offset, gap)

    def poll_encoded(
        self, epoch: str | None, after: int, wanted: Filter, limit: int = 1000
    ) -> EncodedPoll:
        """`poll` with its events encoded (see `decode_poll`)."""
        found, offset, gap = self._scan(epoch, after, wanted, limit)
        rows = [
            (at, payload if isinstance(payload, bytes) else encode_published(payload))
            for at, payload in found
        ]
        return EncodedPoll(
            self.epoch, len(rows), msgpack.packb(rows, use_bin_type=True), offset, gap
        )

    def _scan(
        self, epoch: str | None, after: int, wanted: Filter, limit: int
    ) -> tuple[list[tuple[int, Published | bytes]], int, bool]:
        head = self.head
        if epoch is None:
            return [], head, False
        if epoch != self.epoch or after + 1 < self._ring.first or after > head:
            return [], head, True
        matches = _Matcher(wanted)
        found: list[tuple[int, Published | bytes]] = []
        offset = after
        get = self._ring.get
        while offset < head and len(found) < limit:
            offset += 1
            keys, payload = get(offset)
            if matches(keys):
                found.append((offset, payload))
        return found, offset, False
