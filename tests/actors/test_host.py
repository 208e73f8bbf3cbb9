"""EntityHost alone (no Ray): activation, passivation with snapshots, clocks, outbox, metrics."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import lmdb
import pytest

from actors.host import EntityHost, outbox_id
from hub.envelope import Envelope, Status
from hub.store import CorruptEntityError, LmdbStore, MemoryStore
from hub.subscriptions import encode_published
from tests.actors.conftest import settings_for
from tests.messages import create_todo, sync_message


def envelopes(*messages: object) -> list[Envelope]:
    return [Envelope.of(m) for m in messages]  # type: ignore[arg-type]


def test_the_lru_cap_passivates_with_a_snapshot_and_reactivation_restores(tmp_path: Path) -> None:
    store = MemoryStore()
    host = EntityHost(
        "h",
        store,
        settings_for(
            tmp_path, max_active_entities=3, snapshot_every=1000, passivate_snapshot_min=1
        ),
    )
    todos = [f"CHITTY-TODO-{n}" for n in range(5)]
    outcomes = host.handle(
        envelopes(*(create_todo(t, f"todo {n}", node="a") for n, t in enumerate(todos)))
    ).outcomes
    assert all(o.status is Status.APPLIED for o in outcomes)
    assert host.active_ids() == todos[2:]
    assert host.metrics.passivations == 2
    assert store.latest_snapshot(todos[0]) is not None  # written on passivation
    view = host.get(todos[0])
    assert view is not None and view.entity["content"] == "todo 0" and view.seq == 1


def test_idle_entities_are_passivated(tmp_path: Path) -> None:
    now = [0.0]
    host = EntityHost(
        "h", MemoryStore(), settings_for(tmp_path, idle_passivate_s=10), monotonic=lambda: now[0]
    )
    host.handle(envelopes(create_todo("CHITTY-TODO-1", node="a")))
    now[0] = 5
    host.handle(envelopes(create_todo("CHITTY-TODO-2", node="a")))
    now[0] = 12
    assert host.passivate_idle() == 1
    assert host.active_ids() == ["CHITTY-TODO-2"]


def test_a_host_with_a_slower_clock_never_writes_an_event_back_in_time(tmp_path: Path) -> None:
    store = MemoryStore()
    now = time.time_ns() // 1_000_000
    ahead = EntityHost("fast", store, settings_for(tmp_path), now_ms=lambda: now + 600_000)
    [created] = ahead.handle(envelopes(create_todo("CHITTY-TODO-1", node="a", ttl=3600))).outcomes
    assert created.status is Status.APPLIED
    ahead.release("CHITTY-TODO-1")
    behind = EntityHost("slow", store, settings_for(tmp_path), now_ms=lambda: now - 600_000)
    update = sync_message(
        "CHITTY-TODO-1", data={"content": "moved"}, node="b", clock={"a": 1, "b": 1}
    )
    [outcome] = behind.handle(envelopes(update)).outcomes
    assert outcome.status is Status.APPLIED
    times = [e.timestamp_ms for e in store.events("CHITTY-TODO-1")]
    assert times == sorted(times)


def test_publications_are_in_the_outbox_of_the_same_commit(tmp_path: Path) -> None:
    store = MemoryStore()
    host = EntityHost("h", store, settings_for(tmp_path))
    turn = host.handle(
        envelopes(create_todo("CHITTY-TODO-1", node="a"), create_todo("CHITTY-TODO-2", node="a"))
    )
    assert [p.entity_id for p in turn.published] == ["CHITTY-TODO-1", "CHITTY-TODO-2"]
    # Each publication comes with the very bytes its outbox entry holds (what the broker gets).
    assert [body for _, body in host.outbox_raw_after(0)] == turn.encoded
    assert turn.encoded == [encode_published(p) for p in turn.published]
    assert store.last_seq(outbox_id("h")) == 2 == host.outbox_seq
    assert [p.entity_id for _, p in host.outbox_after(1)] == ["CHITTY-TODO-2"]
    # A new host object on the same store (a restart) knows where its outbox is.
    assert EntityHost("h", store, settings_for(tmp_path)).outbox_seq == 2


def test_metrics_count_what_happened(tmp_path: Path) -> None:
    host = EntityHost("h", MemoryStore(), settings_for(tmp_path))
    create = create_todo("CHITTY-TODO-1", node="a")
    host.handle(
        envelopes(
            create,
            create,
            sync_message("CHITTY-TODO-1", data={"status": "x"}, node="b", clock={"a": 1, "b": 1}),
        )
    )
    metrics = host.metrics
    assert (metrics.applied, metrics.duplicates, metrics.rejected, metrics.batches) == (1, 1, 1, 1)
    assert metrics.activations == 1 and metrics.active_entities == 1


def test_passivation_skips_snapshots_that_would_not_pay_off(tmp_path: Path) -> None:
    store = MemoryStore()
    host = EntityHost("h", store, settings_for(tmp_path, passivate_snapshot_min=3))
    host.handle(
        envelopes(create_todo("CHITTY-TODO-1", node="a"), create_todo("CHITTY-TODO-2", node="a"))
    )
    host.handle(
        envelopes(
            *(
                sync_message(
                    "CHITTY-TODO-2", data={"activeForm": str(n)}, node="b", clock={"a": 1, "b": n}
                )
                for n in (1, 2)
            )
        )
    )
    host.passivate_all()
    assert store.latest_snapshot("CHITTY-TODO-1") is None  # one event: replay is cheaper
    snapshot = store.latest_snapshot("CHITTY-TODO-2")
    assert snapshot is not None and snapshot.seq == 3


def test_a_snapshot_due_is_committed_with_the_batch_that_crossed_it(tmp_path: Path) -> None:
    store = LmdbStore(tmp_path / "store")
    host = EntityHost("h", store, settings_for(tmp_path, snapshot_every=3))
    host.handle(envelopes(create_todo("CHITTY-TODO-1", node="a")))
    writes = [
        sync_message("CHITTY-TODO-1", data={"activeForm": str(n)}, node="b", clock={"a": 1, "b": n})
        for n in (1, 2, 3)
    ]
    host.handle(envelopes(writes[0]))
    assert store.latest_snapshot("CHITTY-TODO-1") is None and host.metrics.snapshots == 0
    host.handle(envelopes(*writes[1:]))  # seq 2 -> 4 crosses 3: a snapshot of seq 4
    snapshot = store.latest_snapshot("CHITTY-TODO-1")
    last = store.events("CHITTY-TODO-1", after_seq=3)
    assert snapshot is not None and snapshot.seq == 4 and host.metrics.snapshots == 1
    assert snapshot.checksum == next(last).checksum
    live = host.get("CHITTY-TODO-1")
    host.passivate_all()
    assert EntityHost("h2", store, settings_for(tmp_path)).get("CHITTY-TODO-1") == live
    assert store.verify().corruptions == ()


def test_an_event_or_command_is_relayed_through_the_outbox_and_changes_no_state(
    tmp_path: Path,
) -> None:
    store = MemoryStore()
    host = EntityHost("h", store, settings_for(tmp_path))
    host.handle(envelopes(create_todo("CHITTY-TODO-1", node="a")))
    event = sync_message(
        "CHITTY-TODO-1",
        data={"kind": "reviewed", "by": "CHITTY-USER-2"},
        kind="event",
        target={"broadcast": False, "platforms": ["web"]},
        message_id="ev-1",
    )
    missing = sync_message("CHITTY-TODO-9", data={"command": "refresh"}, kind="command")
    turn = host.handle(envelopes(event, missing))
    relayed, refused = turn.outcomes
    assert relayed.status is Status.APPLIED and relayed.seq == 1  # the todo's log is unchanged
    assert refused.status is Status.REJECTED and refused.refusal == "not_found"
    [published] = turn.published
    assert published.kind == "event" and published.seq == 1 and published.changed == ()
    assert published.data == {"kind": "reviewed", "by": "CHITTY-USER-2"}
    assert published.entity["content"] == "a todo"  # who may see it follows the entity
    assert published.reach.reaches("any", "web") and not published.reach.reaches("n", "cli")
    assert [e.body for e in store.events(outbox_id("h"))][-1] == turn.encoded[0]
    assert host.get("CHITTY-TODO-1").seq == 1  # type: ignore[union-attr]
    again = host.handle(envelopes(event)).outcomes[0]
    assert again.status is Status.DUPLICATE and not host.handle(envelopes(event)).published


def test_a_damaged_entity_is_refused_counted_and_logged_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = LmdbStore(tmp_path / "lmdb")
    host = EntityHost("h", store, settings_for(tmp_path / "data"))
    made = host.handle(
        envelopes(
            create_todo("CHITTY-TODO-HURT1", "hurt", node="a"),
            create_todo("CHITTY-TODO-FINE1", "fine", node="a"),
        )
    ).outcomes
    assert all(o.status is Status.APPLIED for o in made)
    store.close()
    env = lmdb.open(str(tmp_path / "lmdb"), max_dbs=8)
    with env.begin(write=True, db=env.open_db(b"events")) as txn:
        key = b"CHITTY-TODO-HURT1\x00" + (1).to_bytes(8, "big")
        value = txn.get(key)
        assert value is not None
        at = value.index(b"hurt")
        txn.put(key, value[:at] + b"H" + value[at + 1 :])
    env.close()

    store = LmdbStore(tmp_path / "lmdb")
    host = EntityHost("h", store, settings_for(tmp_path / "data"))
    with caplog.at_level(logging.ERROR, logger="actors.host"):
        for _ in range(3):
            with pytest.raises(CorruptEntityError, match="CHITTY-TODO-HURT1") as refused:
                host.get("CHITTY-TODO-HURT1")
            assert "Hurt" not in str(refused.value) and "bad_checksum" in str(refused.value)
        [update] = host.handle(
            envelopes(sync_message("CHITTY-TODO-HURT1", "update", {"activeForm": "x"}))
        ).outcomes
        with pytest.raises(CorruptEntityError):
            host.history("CHITTY-TODO-HURT1")
    assert update.status is Status.CORRUPT and "integrity check" in update.reason
    assert store.last_seq("CHITTY-TODO-HURT1") == 1  # nothing was written to it
    assert host.metrics.corrupt_entities == 1
    assert len([r for r in caplog.records if "CHITTY-TODO-HURT1" in r.getMessage()]) == 1
    view = host.get("CHITTY-TODO-FINE1")
    assert view is not None and view.entity["content"] == "fine"
    store.close()
