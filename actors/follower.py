"""`Follower`: the hub's one changelog as a consumer with durable marks of its own reads it.

Hosts publish what they commit to the broker's stream once; the gateway's subscribers read it
by stream offset, and so do the consumers that keep a position of their own per host (the
catalog, an adapter): a `Follower` long-polls the stream for every domain and hands its
consumer, per host, the entries after the consumer's marks, in outbox order, none twice and none
skipped. The stream is not durable (a broker restart starts a new epoch; it retains only the
newest events), so the host's durable outbox (`Outboxes`) is where a follower catches up:

- at start, and after a gap (the broker restarted, or the follower fell behind what it
  retains): it notes the stream's head, reads every host's outbox from the consumer's marks
  until nothing is left, then follows the stream from the noted head (an entry published after
  the head is streamed; one before it was committed before the outbox read, so it was read);
- on a hole (a host's entry arrives before one it committed earlier: Ray does not order calls,
  or a host died between a commit and its publish), it reads the missing run from the outbox.

A follower keeps the marks in memory as it hands entries out; the consumer takes them (moving
its durable marks) before asking again, and calls `reset` when it could not: the next call
starts over from the durable marks. Taking an entry twice is harmless (consumers skip what their
marks have passed), skipping one is what this class exists to prevent.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Protocol

from actors.broker import EncodedPoll, rows_of

Run = tuple[str, list[tuple[int, bytes]]]
"""A host and its entries (outbox seq, `encode_published` bytes), in outbox order."""


class Outboxes(Protocol):
    """The hosts' durable outboxes (what the hub committed, in commit order per host)."""

    def hosts(self) -> list[str]: ...

    async def head(self, host: str) -> int:
        """The seq of the host's newest committed entry (0: none)."""
        ...

    async def after(self, host: str, seq: int, limit: int) -> list[tuple[int, bytes]]:
        """Entries after `seq` as (outbox seq, `encode_published` bytes)."""
        ...


class Stream(Protocol):
    """The broker's stream, every domain (`BrokerActor.poll_encoded` with an empty filter)."""

    async def poll(self, epoch: str | None, after: int, limit: int, wait_s: float) -> EncodedPoll:
        """Events after offset `after` (epoch None: none, and the head as the offset); waits up
        to `wait_s` for some."""
        ...


class Follower:
    """Follows the stream from a consumer's per-host marks (see the module)."""

    def __init__(
        self, stream: Stream, outboxes: Outboxes, marks: Callable[[], Mapping[str, int]]
    ) -> None:
        self._stream = stream
        self._outboxes = outboxes
        self._durable = marks
        self._marks: dict[str, int] = {}
        self._at: tuple[str, int] | None = None  # (epoch, offset) once following the stream
        self._start: tuple[str, int] | None = None  # the head noted before catching up
        self.caught_up = 0  # outbox entries read to catch up or fill holes (for tests, metrics)

    def reset(self) -> None:
        """Start over from the consumer's durable marks (it did not take the last entries)."""
        self._at = self._start = None

    def taken(self, host: str, mark: int) -> None:
        """The consumer moved `host`'s mark to `mark` on its own (it read the outbox)."""
        if self._at is not None or self._start is not None:
            self._marks[host] = max(self._marks.get(host, 0), mark)

    async def next(self, limit: int = 5000, wait_s: float = 1.0) -> list[Run]:
        """Entries past the marks, per host; [] when nothing came within `wait_s`."""
        if self._at is None:
            return await self._catch_up(limit)
        epoch, offset = self._at
        answer = await self._stream.poll(epoch, offset, limit, wait_s)
        if answer.gap or answer.epoch != epoch:
            self.reset()
            return await self._catch_up(limit)
        self._at = (epoch, answer.offset)
        runs: dict[str, list[tuple[int, bytes]]] = {}
        for _, host, seq, body in rows_of(answer):
            mark = self._marks.get(host, 0)
            if seq <= mark:
                continue  # taken already (the consumer read the outbox itself)
            run = runs.setdefault(host, [])
            if seq > mark + 1:
                run += await self._missing(host, mark, seq)
            run.append((seq, body))
            self._marks[host] = seq
        return list(runs.items())

    async def _missing(self, host: str, mark: int, seq: int) -> list[tuple[int, bytes]]:
        """The host's outbox entries after `mark` and before `seq`."""
        rows: list[tuple[int, bytes]] = []
        while mark < seq - 1:
            ask = await self._outboxes.after(host, mark, seq - 1 - mark)
            got = [row for row in ask if row[0] < seq]
            if not got:
                raise LookupError(f"host {host}'s outbox has no entries {mark + 1}..{seq - 1}")
            rows += got
            mark = got[-1][0]
        self.caught_up += len(rows)
        return rows

    async def _catch_up(self, limit: int) -> list[Run]:
        if self._start is None:
            head = await self._stream.poll(None, 0, 0, 0)
            self._start = (head.epoch, head.offset)
            self._marks = dict(self._durable())
        runs: list[Run] = []
        for host in self._outboxes.hosts():
            rows = await self._outboxes.after(host, self._marks.get(host, 0), limit)
            if rows:
                runs.append((host, rows))
                self._marks[host] = rows[-1][0]
                self.caught_up += len(rows)
        if not runs:  # nothing left before the noted head: follow the stream from there
            self._at, self._start = self._start, None
        return runs
