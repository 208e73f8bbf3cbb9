"""`Broker`: the hub's event stream (plain class, no Ray).

Hosts publish what they committed, in outbox order; the broker numbers events with a stream
offset and keeps the newest `retention` of them. Subscribers poll with (epoch, offset) and a
filter, so a slow subscriber never holds up another, and one that reconnects resumes exactly
where it stopped, or is told plainly that it cannot (a gap: the epoch changed, or what it missed
is no longer retained).
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass, replace

from hub.subscriptions import Filter, Published


@dataclass(frozen=True, slots=True)
class Poll:
    """What a poll returns: matching events, where to poll from next, and whether some were lost."""

    epoch: str
    events: tuple[Published, ...]
    offset: int  # the last offset scanned: resume after it
    gap: bool  # True: events between the asked offset and `offset` are no longer available


class _Ring:
    """A fixed-capacity buffer indexed by offset."""

    def __init__(self, capacity: int) -> None:
        self._items: list[Published | None] = [None] * capacity
        self._capacity = capacity
        self.first = 1  # oldest retained offset
        self.next = 1  # offset the next event gets

    def append(self, item: Published) -> Published:
        stamped = replace(item, offset=self.next)
        self._items[self.next % self._capacity] = stamped
        self.next += 1
        self.first = max(self.first, self.next - self._capacity)
        return stamped

    def get(self, offset: int) -> Published:
        item = self._items[offset % self._capacity]
        assert item is not None and item.offset == offset
        return item


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

    def mark(self, host: str) -> int | None:
        """The newest outbox seq taken from `host`, None if this broker never heard of it."""
        return self._marks.get(host)

    def publish(self, host: str, items: Sequence[tuple[int, Published]]) -> int:
        """Take `host`'s outbox entries in order, skipping any already taken; returns the mark."""
        mark = self._marks.get(host, 0)
        for seq, item in items:
            if seq <= mark:
                continue  # re-sent after a host restart: already in the stream
            self._ring.append(item)
            self.published += 1
            mark = seq
        self._marks[host] = mark
        return mark

    def poll(self, epoch: str | None, after: int, wanted: Filter, limit: int = 1000) -> Poll:
        """Events after offset `after` that match `wanted`, at most `limit` of them.

        `epoch` None starts a new subscription at the head. A different epoch, or an offset
        older than what is retained, is a gap: the answer says so and resumes at the head.
        """
        head = self.head
        if epoch is None:
            return Poll(self.epoch, (), head, False)
        if epoch != self.epoch or after + 1 < self._ring.first or after > head:
            return Poll(self.epoch, (), head, True)
        found: list[Published] = []
        offset = after
        while offset < head and len(found) < limit:
            offset += 1
            item = self._ring.get(offset)
            if item.matches(wanted):
                found.append(item)
        return Poll(self.epoch, tuple(found), offset, False)
