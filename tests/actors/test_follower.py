"""`Follower`: a consumer with marks of its own reads the one stream, catching up from the
hosts' durable outboxes where the stream cannot serve it (start, gap, hole)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from actors.broker import Broker, Live, pack_published, unpack_published
from actors.follower import Follower, Run
from actors.local import LocalHub, LocalStream
from hub.envelope import Envelope, Status
from hub.ids import IdGenerator, Kind
from hub.store import MemoryStore
from hub.subscriptions import decode_published
from tests.actors.conftest import settings_for
from tests.messages import create_todo

Body = Callable[[LocalHub], Awaitable[None]]
_ids = IdGenerator("follower-test", now_ms=lambda: time.time_ns() // 1_000_000)


class Ledger:
    """A consumer: its durable marks, and every entry it took, checked to be the next one."""

    def __init__(self) -> None:
        self.marks: dict[str, int] = {}
        self.taken: list[str] = []  # entity ids, in the order taken

    def take(self, runs: list[Run]) -> int:
        count = 0
        for host, rows in runs:
            for seq, body in rows:
                mark = self.marks.get(host, 0)
                if seq <= mark:
                    continue  # a consumer skips what its marks have passed
                assert seq == mark + 1, f"{host}: got {seq} after {mark}: an entry was skipped"
                self.marks[host] = seq
                self.taken.append(decode_published(body).entity_id)
                count += 1
        return count


def in_hub(**settings: Any) -> Callable[[Body], Callable[[Path], None]]:
    """A test that runs its body on a fresh in-process hub of two hosts (its own event loop)."""

    def wrap(body: Body) -> Callable[[Path], None]:
        async def scenario(tmp: Path) -> None:
            hub = LocalHub(
                MemoryStore(), settings_for(tmp, hosts=2, **settings), tmp / "shards.json"
            )
            try:
                await body(hub)
            finally:
                for host in hub.hosts.values():
                    await host.mailbox.close()

        def test(tmp_path: Path) -> None:
            asyncio.run(asyncio.wait_for(scenario(tmp_path), 60))

        test.__name__ = body.__name__
        return test

    return wrap


async def write(hub: LocalHub, count: int) -> list[str]:
    ids = [_ids.new(Kind.TODO) for _ in range(count)]
    outcomes = await hub.route([Envelope.of(create_todo(i, f"todo {i}")) for i in ids])
    assert all(o.status is Status.APPLIED for o in outcomes), outcomes
    return ids


async def drain(follower: Follower, ledger: Ledger) -> None:
    """Take until a round brings nothing."""
    while ledger.take(await follower.next(limit=7, wait_s=0)):
        pass


async def following(hub: LocalHub) -> tuple[Ledger, Follower]:
    """A new consumer of the hub's stream, caught up with what it committed so far."""
    ledger = Ledger()
    follower = Follower(hub.stream(), hub.outboxes(), lambda: ledger.marks)
    await drain(follower, ledger)
    return ledger, follower


def publish(broker: Broker, hub: LocalHub, skip: tuple[str, int]) -> None:
    """Feed `broker` every host's committed entries over the wire, but the one `skip` names."""
    for name, host in hub.hosts.items():
        rows = [(seq, decode_published(body)) for seq, body in host.host.outbox_raw_after(0)]
        kept = [(seq, item) for seq, item in rows if (name, seq) != skip]
        broker.publish_encoded(name, unpack_published(pack_published(kept)))


@in_hub()
async def test_it_catches_up_from_the_outboxes_then_follows_the_stream(hub: LocalHub) -> None:
    before = await write(hub, 20)
    ledger, follower = await following(hub)
    assert sorted(ledger.taken) == sorted(before)
    assert follower.caught_up == 20  # read from the outboxes: the stream began later

    after = await write(hub, 30)
    await drain(follower, ledger)
    assert sorted(ledger.taken) == sorted(before + after)
    assert follower.caught_up == 20  # the new ones came by the stream alone


@in_hub()
async def test_a_long_poll_wakes_when_a_host_commits(hub: LocalHub) -> None:
    ledger = Ledger()
    follower = Follower(hub.stream(), hub.outboxes(), lambda: ledger.marks)
    await drain(follower, ledger)  # caught up (nothing yet): following the stream
    waiting = asyncio.create_task(follower.next(wait_s=30))
    await asyncio.sleep(0.05)
    assert not waiting.done()
    written = await write(hub, 1)
    runs = await asyncio.wait_for(waiting, 5)
    ledger.take(runs)
    assert ledger.taken == written


@in_hub()
async def test_a_hole_in_the_stream_is_read_from_the_outbox(hub: LocalHub) -> None:
    broker = Broker(retention=1000)
    ledger = Ledger()
    follower = Follower(LocalStream(Live(broker)), hub.outboxes(), lambda: ledger.marks)
    await drain(follower, ledger)  # nothing committed yet: following this stream from its start
    written = await write(hub, 12)
    host = next(name for name, h in hub.hosts.items() if h.host.outbox_head() >= 3)
    publish(broker, hub, skip=(host, 3))  # the host died between committing it and publishing
    await drain(follower, ledger)
    assert sorted(ledger.taken) == sorted(written)
    assert follower.caught_up == 1  # the one entry the stream lacks, from the outbox


@in_hub()
async def test_a_new_epoch_is_a_gap_caught_up_from_the_outboxes(hub: LocalHub) -> None:
    ledger = Ledger()
    stream = hub.stream()
    follower = Follower(stream, hub.outboxes(), lambda: ledger.marks)
    first = await write(hub, 5)
    await drain(follower, ledger)
    hub.live.broker = Broker(retention=1000)  # the broker restarted: a new epoch
    later = await write(hub, 7)
    await drain(follower, ledger)
    assert sorted(ledger.taken) == sorted(first + later)
    assert follower.caught_up == 5 + 7  # both from the outboxes: at start, after the gap
    streamed = await write(hub, 4)
    await drain(follower, ledger)
    assert sorted(ledger.taken) == sorted(first + later + streamed)
    assert follower.caught_up == 12


@in_hub(stream_retention=10)
async def test_falling_behind_what_the_stream_retains_is_a_gap(hub: LocalHub) -> None:
    ledger, follower = await following(hub)
    written = await write(hub, 40)  # far more than the stream keeps
    await drain(follower, ledger)
    assert sorted(ledger.taken) == sorted(written)


@in_hub()
async def test_after_reset_what_was_not_taken_comes_again(hub: LocalHub) -> None:
    ledger, follower = await following(hub)
    written = await write(hub, 6)
    lost = await follower.next(wait_s=0)  # the consumer failed before taking these
    assert sum(len(rows) for _, rows in lost) == 6
    follower.reset()
    await drain(follower, ledger)
    assert sorted(ledger.taken) == sorted(written)


@in_hub()
async def test_what_the_consumer_read_itself_is_not_read_again(hub: LocalHub) -> None:
    ledger, follower = await following(hub)
    written = await write(hub, 6)
    outboxes = hub.outboxes()
    for host in outboxes.hosts():  # a read-your-writes query catches up on its own
        rows = await outboxes.after(host, ledger.marks.get(host, 0), 100)
        ledger.take([(host, rows)])
        if rows:
            follower.taken(host, rows[-1][0])
    assert sorted(ledger.taken) == sorted(written)
    assert await follower.next(wait_s=0) == []  # streamed too, and passed over
