"""The event stream: resume by offset, explicit gaps, server-side filters."""

from __future__ import annotations

from actors.broker import Broker, decode_poll, pack_published, unpack_published
from hub.domains import SyncDomain
from hub.subscriptions import Filter, Published


def event(n: int, domain: SyncDomain = SyncDomain.TODOS, project: str | None = None) -> Published:
    return Published(
        0,
        domain,
        f"CHITTY-TODO-{n}",
        "updated",
        n,
        f"m{n}",
        "web",
        "node",
        project,
        None,
        None,
        {"node": n},
        ("content",),
        {"content": str(n)},
        (),
        n,
    )


def publish(broker: Broker, host: str, start: int, count: int, **kw: object) -> None:
    broker.publish(host, [(seq, event(seq, **kw)) for seq in range(start, start + count)])  # type: ignore[arg-type]


def test_a_subscriber_resumes_from_its_offset_and_gets_exactly_what_it_missed() -> None:
    broker = Broker(retention=100)
    first = broker.poll(None, 0, Filter())
    publish(broker, "h", 1, 5)
    seen = broker.poll(first.epoch, first.offset, Filter())
    assert [e.entity_id for e in seen.events] == [f"CHITTY-TODO-{n}" for n in range(1, 6)]
    # Disconnected: 7 more happen; it resumes from its last offset.
    publish(broker, "h", 6, 7)
    resumed = broker.poll(seen.epoch, seen.offset, Filter())
    assert not resumed.gap
    assert [e.seq for e in resumed.events] == list(range(6, 13))
    assert [e.offset for e in resumed.events] == list(range(6, 13))


def test_a_resend_after_a_host_restart_is_not_streamed_twice() -> None:
    broker = Broker(retention=100)
    publish(broker, "h", 1, 3)
    publish(broker, "h", 2, 4)  # seqs 2..5: 2 and 3 were taken already
    assert broker.head == 5
    assert broker.mark("h") == 5
    assert broker.mark("other") is None


def test_offsets_beyond_retention_are_reported_as_a_gap() -> None:
    broker = Broker(retention=10)
    publish(broker, "h", 1, 30)
    answer = broker.poll(broker.epoch, 3, Filter())
    assert answer.gap and answer.events == () and answer.offset == 30


def test_a_new_epoch_is_a_gap() -> None:
    old = Broker(retention=10)
    restarted = Broker(retention=10)
    publish(restarted, "h", 1, 2)
    answer = restarted.poll(old.epoch, 0, Filter())
    assert answer.gap and answer.epoch == restarted.epoch


def test_filters_are_enforced_by_the_broker() -> None:
    broker = Broker(retention=100)
    broker.publish(
        "h", [(1, event(1, project="CHITTY-PROJ-1")), (2, event(2, project="CHITTY-PROJ-2"))]
    )
    broker.publish("h", [(3, event(3, SyncDomain.SESSIONS, project="CHITTY-PROJ-1"))])
    only = broker.poll(
        broker.epoch, 0, Filter(domains=[SyncDomain.TODOS], project_id="CHITTY-PROJ-1")
    )
    assert [e.entity_id for e in only.events] == ["CHITTY-TODO-1"]
    assert only.offset == 3  # scanned past what did not match


def test_a_slow_subscriber_does_not_hold_up_a_fast_one() -> None:
    broker = Broker(retention=1000)
    slow = fast = broker.poll(None, 0, Filter())
    for batch in range(10):
        publish(broker, "h", batch * 10 + 1, 10)
        fast = broker.poll(fast.epoch, fast.offset, Filter())
        assert len(fast.events) == 10
    late = broker.poll(slow.epoch, slow.offset, Filter(), limit=1000)
    assert len(late.events) == 100 and not late.gap


def test_events_taken_encoded_come_out_of_every_poll_as_they_went_in() -> None:
    """The Ray path: hosts send `pack_published`, gateways read `poll_encoded`."""
    plain, wired = Broker(retention=100), Broker(retention=100)
    items = [(n, event(n, project=f"CHITTY-PROJ-{n % 2}")) for n in range(1, 9)]
    items[3] = (4, event(4, SyncDomain.SESSIONS, project="CHITTY-PROJ-0"))
    plain.publish("h", items)
    assert wired.publish_encoded("h", unpack_published(pack_published(items))) == 8
    wanted = Filter(domains=[SyncDomain.TODOS], project_id="CHITTY-PROJ-0")
    expected = plain.poll(plain.epoch, 0, wanted)
    for broker in (plain, wired):  # a mix of encoded and decoded payloads reads alike
        answer = broker.poll(broker.epoch, 0, wanted)
        assert answer.events == expected.events and answer.offset == 8 and not answer.gap
        encoded = decode_poll(broker.poll_encoded(broker.epoch, 0, wanted))
        assert encoded.events == expected.events and encoded.epoch == broker.epoch
    assert [e.seq for e in expected.events] == [2, 6, 8]
    assert [e.offset for e in expected.events] == [2, 6, 8]
    gap = wired.poll_encoded("another-epoch", 0, Filter())
    assert gap.gap and gap.count == 0 and decode_poll(gap).events == ()


def test_a_registered_host_keeps_its_mark_and_a_known_one_is_not_reset() -> None:
    broker = Broker(retention=100)
    assert broker.mark("h") is None
    assert broker.register("h", 5) == 5  # started with 5 entries in its outbox
    assert broker.mark("h") == 5  # so a first publish at 8 shows a hole of 6-7
    broker.publish("h", [(6, event(6))])
    assert broker.register("h", 0) == 6  # a restart's (or a late) registration changes nothing
