"""An adapter's durable state: its place in each outbox, its queue, its message map, failures."""

from __future__ import annotations

from pathlib import Path

from hub.adapter_store import AdapterStore, InFlight, JobKind, Shown
from hub.adapters import NativeRef
from hub.store.crypto import AesGcmCodec, generate_key
from hub.subscriptions import Published, encode_published
from tests.hub.test_catalog import published


def entry(seq: int, n: int, **entity: object) -> tuple[int, Published, bytes]:
    item = published(n, seq=seq, **entity)
    return seq, item, encode_published(item)


def state_only(item: Published) -> tuple[JobKind, ...]:
    return ("state",) if item.entity.get("content") != "skip me" else ()


def test_taking_an_outbox_queues_each_wanted_delivery_once_and_survives_a_reopen(
    tmp_path: Path,
) -> None:
    store = AdapterStore(tmp_path / "slack")
    items = [entry(1, 1), entry(2, 2, content="skip me"), entry(3, 1, content="again")]
    assert store.take("host-0", items, state_only, lambda item: False) == 3
    assert store.take("host-0", items, state_only, lambda item: False) == 3  # taken once
    jobs = store.jobs()
    assert [(j.entity_id, j.seq, j.kind) for j in jobs] == [
        ("CHITTY-TODO-0001", 1, "state"),
        ("CHITTY-TODO-0001", 3, "state"),
    ]
    store.finish(done=[jobs[0].id])
    store.close()
    store = AdapterStore(tmp_path / "slack")
    assert [j.id for j in store.jobs()] == [jobs[1].id] and store.marks() == {"host-0": 3}
    store.take("host-0", [entry(4, 9)], state_only, lambda item: False)
    assert store.jobs()[-1].id > jobs[1].id  # ids never repeat, even after a job is done
    store.close()


def test_the_message_map_holds_across_a_reopen_with_its_reverse_index(tmp_path: Path) -> None:
    store = AdapterStore(tmp_path / "slack")
    ref = NativeRef("C1", "1700000000.000100")
    reply = NativeRef("C1", "1700000000.000200", ref.message_id)
    store.finish(
        shown={"CHITTY-TODO-1": Shown(ref, 3, "d1")},
        links=[("CHITTY-TODO-1", reply)],
        counts={"sent": 1},
    )
    store.close()
    store = AdapterStore(tmp_path / "slack")
    assert store.shown("CHITTY-TODO-1") == Shown(ref, 3, "d1")
    assert store.entity_of("C1", "1700000000.000100") == "CHITTY-TODO-1"
    assert store.entity_of("C1", "1700000000.000200") == "CHITTY-TODO-1"  # a thread reply
    assert store.entity_of("C2", "1700000000.000100") is None  # ids are per channel
    assert store.counters()["sent"] == 1
    store.close()


def test_a_failed_delivery_stays_visible_until_retried(tmp_path: Path) -> None:
    store = AdapterStore(tmp_path / "slack")
    store.take("h", [entry(1, 1), entry(2, 2)], state_only, lambda item: item.seq == 2)
    first, second = store.jobs()
    assert second.echo and not first.echo
    store.finish(again=[first.id])
    store.finish(failed={first.id: "channel_not_found"})
    [failed] = store.failed()
    assert failed.reason == "channel_not_found" and failed.attempts == 2
    assert [j.id for j in store.jobs()] == [second.id]
    assert store.retry() == 1 and store.failed() == []
    assert [j.id for j in store.jobs()] == [first.id, second.id]  # back in its old place
    assert store.counters()["retried"] == 1 and store.counters()["failed"] == 1
    store.close()


def test_nothing_it_stores_is_plaintext_under_a_key(tmp_path: Path) -> None:
    store = AdapterStore(tmp_path / "slack", codec=AesGcmCodec(generate_key()))
    marker = "adapter marker 8f3a"
    store.take("h", [entry(1, 1, content=marker)], state_only, lambda item: False)
    store.finish(shown={"CHITTY-TODO-1": Shown(NativeRef("C1", "1.2"), 1, marker)})
    store.close()
    assert marker.encode() not in (tmp_path / "slack" / "data.mdb").read_bytes()


def test_in_flight_notes_outlive_a_crash_until_a_finish_drops_them(tmp_path: Path) -> None:
    store = AdapterStore(tmp_path / "slack")
    instance = store.instance
    store.take("h", [entry(1, 1), entry(2, 2)], state_only, lambda item: False)
    first, second = store.jobs()
    notes = [
        InFlight(first.id, first.entity_id, "C1", None, 1700000000.5),
        InFlight(second.id, second.entity_id, "C1", "1700000000.000100", 1700000001.0),
    ]
    store.posting(notes)
    store.close()  # as if killed mid-round
    store = AdapterStore(tmp_path / "slack")
    assert store.in_flight() == notes and store.instance == instance  # its id is for good
    store.finish(done=[first.id], noted=[first.id, second.id], counts={"sent": 1})
    assert store.in_flight() == [] and [j.id for j in store.jobs()] == [second.id]
    assert store.counters()["sent"] == 1
    store.close()
    assert AdapterStore(tmp_path / "other").instance != instance
