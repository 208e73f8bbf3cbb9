"""One behaviour suite for entity actors, run on an in-process host and on a Ray EntityHost."""

from __future__ import annotations

import itertools
import time

from hub.envelope import Status
from hub.ids import IdGenerator, Kind
from tests.actors.conftest import Hosting
from tests.messages import create_todo, sync_message

ids = IdGenerator("behaviour-suite", now_ms=lambda: time.time_ns() // 1_000_000)
_counter = itertools.count(2)


def new_todo(hosting: Hosting, content: str = "write the suite") -> str:
    todo = ids.new(Kind.TODO)
    [outcome] = hosting.submit([create_todo(todo, content, node="a")])
    assert outcome.status is Status.APPLIED, outcome
    return todo


def test_create_then_read_back(hosting: Hosting) -> None:
    todo = new_todo(hosting)
    view = hosting.get(todo)
    assert view is not None
    assert view.entity["content"] == "write the suite"
    assert view.seq == 1 and view.clock == {"a": 1}


def test_an_applied_outcome_carries_seq_clock_and_entity(hosting: Hosting) -> None:
    todo = new_todo(hosting)
    [outcome] = hosting.submit(
        [sync_message(todo, data={"status": "in_progress"}, node="b", clock={"a": 1, "b": 1})]
    )
    assert outcome.status is Status.APPLIED
    assert outcome.seq == 2 and outcome.clock == {"a": 1, "b": 1}
    assert outcome.entity is not None and outcome.entity["status"] == "in_progress"


def test_a_retried_message_id_is_applied_once(hosting: Hosting) -> None:
    todo = new_todo(hosting)
    update = sync_message(todo, data={"content": "once"}, node="b", clock={"a": 1, "b": 1})
    first, again = hosting.submit([update]), hosting.submit([update])
    assert first[0].status is Status.APPLIED
    assert again[0].status is Status.DUPLICATE and again[0].seq == first[0].seq
    view = hosting.get(todo)
    assert view is not None and view.seq == 2


def test_messages_for_one_entity_in_one_batch_apply_in_order(hosting: Hosting) -> None:
    todo = new_todo(hosting)
    batch = [
        sync_message(todo, data={"activeForm": f"step {n}"}, node="b", clock={"a": 1, "b": n})
        for n in range(1, 21)
    ]
    outcomes = hosting.submit(batch)
    assert [o.seq for o in outcomes] == list(range(2, 22))
    view = hosting.get(todo)
    assert view is not None and view.entity["activeForm"] == "step 20"


def test_rejections_name_the_field_and_change_nothing(hosting: Hosting) -> None:
    todo = new_todo(hosting)
    [bad] = hosting.submit(
        [sync_message(todo, data={"status": "done"}, node="b", clock={"a": 1, "b": 1})]
    )
    assert bad.status is Status.REJECTED
    assert bad.field == "payload.entity.data.status"
    view = hosting.get(todo)
    assert view is not None and view.seq == 1 and view.entity["status"] == "pending"


def test_concurrent_writes_open_a_conflict_visible_on_read(hosting: Hosting) -> None:
    todo = new_todo(hosting)
    outcomes = hosting.submit(
        [
            sync_message(todo, data={"status": "completed"}, node="b", clock={"a": 1, "b": 1}),
            sync_message(todo, data={"status": "blocked"}, node="c", clock={"a": 1, "c": 1}),
        ]
    )
    assert outcomes[1].conflicts and outcomes[1].conflicts[0]["field"] == "status"
    view = hosting.get(todo)
    assert view is not None and len(view.conflicts) == 1


def test_expired_messages_are_not_applied(hosting: Hosting) -> None:
    todo = new_todo(hosting)
    stale = sync_message(
        todo,
        data={"content": "too late"},
        node="b",
        clock={"a": 1, "b": 1},
        timestamp="2020-01-01T00:00:00Z",
        ttl=60,
    )
    [outcome] = hosting.submit([stale])
    assert outcome.status is Status.EXPIRED
    view = hosting.get(todo)
    assert view is not None and view.entity["content"] == "write the suite"


def test_history_and_state_at_a_time(hosting: Hosting) -> None:
    todo = new_todo(hosting)
    time.sleep(0.02)
    middle = time.time_ns() // 1_000_000
    time.sleep(0.02)
    hosting.submit(
        [sync_message(todo, data={"content": "later"}, node="b", clock={"a": 1, "b": 1})]
    )
    events = hosting.history(todo)
    assert [e["seq"] for e in events] == [1, 2]
    assert events[1]["changed"] == ["content", "metadata.modified"]
    then = hosting.state_at(todo, middle)
    assert then is not None and then.entity["content"] == "write the suite"
    now = hosting.get(todo)
    assert now is not None and now.entity["content"] == "later"


def test_an_unknown_entity_reads_as_none_and_updates_are_rejected(hosting: Hosting) -> None:
    ghost = ids.new(Kind.TODO)
    assert hosting.get(ghost) is None
    [outcome] = hosting.submit([sync_message(ghost, data={"content": "x"})])
    assert outcome.status is Status.REJECTED and "does not exist" in outcome.reason


def test_many_entities_across_hosts(hosting: Hosting) -> None:
    todos = [ids.new(Kind.TODO) for _ in range(300)]
    outcomes = hosting.submit([create_todo(t, f"todo {i}", node="a") for i, t in enumerate(todos)])
    assert all(o.status is Status.APPLIED for o in outcomes)
    for i in (0, 150, 299):
        view = hosting.get(todos[i])
        assert view is not None and view.entity["content"] == f"todo {i}"
