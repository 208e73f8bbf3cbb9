"""The entity state machine: create, idempotent re-delivery, concurrent merge, conflicts."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hub.clocks import VectorClock
from hub.codec import from_wire
from hub.crdt import TextField
from hub.entity import EntityState, EventKind, Refusal, RejectedMessage, apply, materialize, view
from hub.models import Todo, TodoStatus, Topic
from hub.protocol import SyncMessage

TODO_ID = "CHITTY-TODO-1"
SESSION = "CHITTY-SESSION-1"


def message(
    node: str,
    clock: dict[str, int],
    operation: str = "update",
    data: dict[str, Any] | None = None,
    *,
    second: int = 0,
    domain: str = "todos",
    entity: str = TODO_ID,
    delta: dict[str, Any] | None = None,
    kind: str = "state_update",
) -> SyncMessage:
    payload: dict[str, Any] = {
        "domain": domain,
        "operation": operation,
        "entity": {"chittyId": entity, "data": data or {}},
    }
    if delta is not None:
        payload["delta"] = delta
    return from_wire(
        {
            "id": f"m-{node}-{'-'.join(f'{k}{v}' for k, v in sorted(clock.items()))}",
            "type": kind,
            "source": {"nodeId": node, "platform": "cli", "chittyId": "CHITTY-USER-1"},
            "payload": payload,
            "metadata": {"timestamp": f"2025-01-01T00:00:{second:02d}Z", "vectorClock": clock},
        }
    )


def created(**data: Any) -> EntityState:
    fields = {"content": "Write tests", "sessionId": SESSION, **data}
    state, events, conflicts = apply(None, message("a", {"a": 1}, "create", fields))
    assert state is not None and events[0].kind is EventKind.CREATED and not conflicts
    return state


def step(state: EntityState, msg: SyncMessage) -> EntityState:
    new = apply(state, msg).state
    assert new is not None
    return new


def test_create_fills_defaults_and_hub_timestamps() -> None:
    state = created()
    todo = materialize(state)
    assert isinstance(todo, Todo)
    assert todo.status is TodoStatus.PENDING
    assert todo.metadata.created is not None and todo.metadata.created.year == 2025
    assert state.clock == VectorClock({"a": 1})


def test_a_dominating_message_applies_and_advances_the_clock() -> None:
    state = step(
        created(), message("b", {"a": 1, "b": 1}, data={"status": "in_progress"}, second=5)
    )
    assert view(state)["status"] == "in_progress"
    assert state.clock == VectorClock({"a": 1, "b": 1})
    assert view(state)["metadata"]["modified"] == "2025-01-01T00:00:05Z"  # type: ignore[index,call-overload]


def test_redelivery_of_an_applied_or_older_message_is_a_no_op() -> None:
    update = message("b", {"a": 1, "b": 1}, data={"content": "Changed"})
    state = step(created(), update)
    again = apply(state, update)
    assert again.state is state and again.events == () and again.conflicts == ()
    older = apply(state, message("a", {"a": 1}, data={"content": "Stale"}))
    assert older.state is state and older.events == ()


def test_concurrent_lww_writes_pick_the_later_timestamp_in_either_order() -> None:
    base = created()
    early = message("b", {"a": 1, "b": 1}, data={"content": "from b"}, second=1)
    late = message("c", {"a": 1, "c": 1}, data={"content": "from c"}, second=2)
    one = step(step(base, early), late)
    two = step(step(base, late), early)
    assert view(one)["content"] == view(two)["content"] == "from c"
    assert one.clock == two.clock == VectorClock({"a": 1, "b": 1, "c": 1})


def test_a_causally_later_write_wins_even_with_an_older_wall_clock() -> None:
    state = step(created(), message("b", {"a": 1, "b": 1}, data={"content": "first"}, second=30))
    state = step(
        state, message("c", {"a": 1, "b": 1, "c": 1}, data={"content": "second"}, second=1)
    )
    assert view(state)["content"] == "second"


def test_concurrent_differing_mv_values_open_a_conflict_instead_of_picking() -> None:
    base = created()
    left = message("b", {"a": 1, "b": 1}, data={"status": "in_progress"})
    right = message("c", {"a": 1, "c": 1}, data={"status": "blocked"})
    state = step(base, left)
    result = apply(state, right)
    assert len(result.conflicts) == 1
    conflict = result.conflicts[0]
    assert conflict.field == "status" and conflict.entity_id == TODO_ID
    assert conflict.conflict_type == "concurrent_update"
    assert conflict.resolution.strategy == "mvr" and conflict.resolution.pending
    assert {v.value for v in conflict.versions} == {"in_progress", "blocked"}
    assert result.events[0].opened == (conflict.conflict_id,)
    assert result.state is not None and result.state.conflicts["status"] == conflict
    # The same concurrent writes in the other order open the same conflict.
    other = apply(step(base, right), left)
    assert other.conflicts == result.conflicts


def test_a_write_that_has_seen_both_values_resolves_the_conflict() -> None:
    base = created()
    state = step(
        step(base, message("b", {"a": 1, "b": 1}, data={"status": "in_progress"})),
        message("c", {"a": 1, "c": 1}, data={"status": "blocked"}),
    )
    conflict_id = state.conflicts["status"].conflict_id
    result = apply(
        state, message("r", {"a": 1, "b": 1, "c": 1, "r": 1}, data={"status": "blocked"})
    )
    assert result.state is not None and result.state.conflicts == {}
    assert result.events[0].resolved == (conflict_id,)
    assert view(result.state)["status"] == "blocked"


def test_concurrent_equal_mv_values_do_not_conflict() -> None:
    base = created()
    state = step(base, message("b", {"a": 1, "b": 1}, data={"status": "completed"}))
    result = apply(state, message("c", {"a": 1, "c": 1}, data={"status": "completed"}))
    assert result.conflicts == () and result.state is not None and result.state.conflicts == {}


def test_set_fields_are_add_wins() -> None:
    base = created(assignees=["CHITTY-USER-1"])
    # b saw the create and removes USER-1; c concurrently adds USER-2 without seeing b.
    removed = message("b", {"a": 1, "b": 1}, data={"assignees": []})
    added = message("c", {"a": 1, "c": 1}, data={"assignees": ["CHITTY-USER-1", "CHITTY-USER-2"]})
    one = step(step(base, removed), added)
    two = step(step(base, added), removed)
    assert view(one)["assignees"] == view(two)["assignees"] == ["CHITTY-USER-2"]


def test_delta_adds_and_removes_set_elements() -> None:
    state = step(
        created(), message("b", {"a": 1, "b": 1}, delta={"add": {"assignees": ["CHITTY-USER-7"]}})
    )
    assert view(state)["assignees"] == ["CHITTY-USER-7"]
    state = step(
        state, message("b", {"a": 1, "b": 2}, delta={"remove": {"assignees": ["CHITTY-USER-7"]}})
    )
    assert view(state)["assignees"] == []


def test_text_fields_take_y_updates_and_full_values() -> None:
    create = message(
        "a",
        {"a": 1},
        "create",
        {"title": "T", "description": "hello"},
        domain="topics",
        entity="CHITTY-CONTEXT-1",
    )
    state = apply(None, create).state
    assert state is not None
    edit = TextField.of("hello", "a").edit("hello world", "editor")
    y = base64.b64encode(edit.update).decode()
    state = step(
        state,
        message(
            "e",
            {"a": 1, "e": 1},
            delta={"yUpdates": {"description": y}},
            domain="topics",
            entity="CHITTY-CONTEXT-1",
        ),
    )
    state = step(
        state,
        message(
            "f",
            {"a": 1, "e": 1, "f": 1},
            data={"title": "T2"},
            domain="topics",
            entity="CHITTY-CONTEXT-1",
        ),
    )
    topic = materialize(state)
    assert isinstance(topic, Topic)
    assert topic.description == "hello world" and topic.title == "T2"


PROJECT = "CHITTY-PROJ-1"


def on_project(node: str, clock: dict[str, int], data: dict[str, Any], **kw: Any) -> SyncMessage:
    return message(node, clock, data=data, domain="projects", entity=PROJECT, **kw)


def project(**data: Any) -> EntityState:
    fields = {"name": "P", "description": "the quick fox", **data}
    create = message("a", {"a": 1}, "create", fields, domain="projects", entity=PROJECT)
    state = apply(None, create).state
    assert state is not None
    return state


def test_concurrent_full_values_of_a_text_field_keep_both_edits_in_either_order() -> None:
    base = project()
    brown = on_project("b", {"a": 1, "b": 1}, {"description": "the quick brown fox"})
    jumps = on_project("c", {"a": 1, "c": 1}, {"description": "the quick fox jumps"})
    one = step(step(base, brown), jumps)
    two = step(step(base, jumps), brown)
    assert view(one)["description"] == "the quick brown fox jumps"
    assert view(one) == view(two) and one.fields == two.fields


def test_a_context_summary_merges_concurrent_full_values_too() -> None:
    ctx = "CHITTY-CONTEXT-1"

    def write(node: str, clock: dict[str, int], summary: str, op: str = "update") -> SyncMessage:
        data: dict[str, Any] = {"content": {"summary": summary}}
        if op == "create":
            data["type"] = "document"
        return message(node, clock, op, data, domain="contexts", entity=ctx)

    base = apply(None, write("a", {"a": 1}, "the quick fox", "create")).state
    assert base is not None
    brown = write("b", {"a": 1, "b": 1}, "the quick brown fox")
    jumps = write("c", {"a": 1, "c": 1}, "the quick fox jumps")
    one, two = step(step(base, brown), jumps), step(step(base, jumps), brown)
    assert view(one)["content"]["summary"] == "the quick brown fox jumps"  # type: ignore[index,call-overload]
    assert view(one) == view(two)


def test_concurrent_text_writes_behind_one_node_id_keep_both_edits() -> None:
    # Two writers share node "api" and both send "api": 2 (clocks a client chose, each also
    # naming a write the entity has not had, so neither covers the other): both apply.
    base = project()
    red = on_project("api", {"a": 1, "api": 2, "x": 1}, {"description": "the quick red fox"})
    lazy = on_project("api", {"a": 1, "api": 2, "y": 1}, {"description": "the lazy quick fox"})
    assert red.id != lazy.id
    one = step(step(base, red), lazy)
    two = step(step(base, lazy), red)
    assert view(one)["description"] == view(two)["description"] == "the lazy quick red fox"
    assert one.fields == two.fields
    # A blind write (no clock: it has seen everything) edits the merged text.
    after = step(one, on_project("api", {}, {"description": "the lazy red fox"}))
    assert view(after)["description"] == "the lazy red fox"


def test_replaying_text_edits_rebuilds_the_same_state_and_edits() -> None:
    y = base64.b64encode(TextField.of("x", "e").update).decode()
    log = []
    state: EntityState | None = None
    for msg in [
        message(
            "a",
            {"a": 1},
            "create",
            {"name": "P", "description": "the quick fox"},
            domain="projects",
            entity=PROJECT,
        ),
        on_project("b", {"a": 1, "b": 1}, {"description": "the quick brown fox"}),
        on_project("c", {"a": 1, "c": 1}, {"description": "the quick fox jumps"}),
        message(
            "e",
            {"a": 1, "e": 1},
            delta={"yUpdates": {"description": y}},
            domain="projects",
            entity=PROJECT,
        ),
        on_project("api", {}, {"description": "a quick brown fox jumps"}),
    ]:
        result = apply(state, msg)
        state = result.state
        log.extend(result.events)
    replayed: EntityState | None = None
    for event in log:
        replayed = apply(replayed, event.message).state
    assert state is not None and replayed == state
    live, again = state.fields["description"], replayed.fields["description"]
    assert isinstance(live, TextField) and isinstance(again, TextField)
    assert live.edits == again.edits and live.update == again.update  # byte for byte
    assert [(e.node, e.count) for e in sorted(live.edits, key=lambda e: e.node)] == [
        ("a", 1),
        ("api", 1),
        ("b", 1),
        ("c", 1),
        ("e", 1),
    ]


def test_completing_a_todo_stamps_completed_at_and_reopening_clears_it() -> None:
    state = step(created(), message("b", {"a": 1, "b": 1}, data={"status": "completed"}, second=9))
    assert view(state)["metadata"]["completedAt"] == "2025-01-01T00:00:09Z"  # type: ignore[index,call-overload]
    state = step(state, message("b", {"a": 1, "b": 2}, data={"status": "pending"}))
    assert view(state)["metadata"]["completedAt"] is None  # type: ignore[index,call-overload]


@pytest.mark.parametrize(
    ("data", "field", "reason"),
    [
        ({"status": "done"}, "payload.entity.data.status", "Input should be"),
        ({"nonsense": 1}, "payload.entity.data.nonsense", "unknown field"),
        ({"metadata": {"priority": "urgent"}}, "payload.entity.data.metadata.priority", "Input"),
        ({"metadata": 5}, "payload.entity.data.metadata", "must be an object"),
        ({"sessionId": "CHITTY-SESSION-2"}, "payload.entity.data.sessionId", "fixed"),
        ({"assignees": ["not-an-id"]}, "payload.entity.data.assignees.0", "not a ChittyID"),
    ],
)
def test_bad_updates_are_rejected_naming_the_field(
    data: dict[str, Any], field: str, reason: str
) -> None:
    state = created()
    with pytest.raises(RejectedMessage) as caught:
        apply(state, message("b", {"a": 1, "b": 1}, data=data))
    assert caught.value.field == field
    assert reason in caught.value.reason


def test_illegal_status_transitions_are_rejected_with_a_reason() -> None:
    state = step(created(), message("b", {"a": 1, "b": 1}, data={"status": "completed"}))
    with pytest.raises(
        RejectedMessage, match="illegal status transition 'completed' -> 'in_progress'"
    ):
        apply(state, message("b", {"a": 1, "b": 2}, data={"status": "in_progress"}))


def test_ended_sessions_stay_ended() -> None:
    sid = "CHITTY-SESSION-9"
    create = message(
        "a",
        {"a": 1},
        "create",
        {"sessionId": "s-1", "platform": "cli"},
        domain="sessions",
        entity=sid,
    )
    state = apply(None, create).state
    assert state is not None
    state = step(
        state,
        message("a", {"a": 2}, data={"status": "ended"}, domain="sessions", entity=sid, second=3),
    )
    assert view(state)["timestamps"]["ended"] == "2025-01-01T00:00:03Z"  # type: ignore[index,call-overload]
    with pytest.raises(RejectedMessage, match="'ended' is final"):
        apply(
            state, message("a", {"a": 3}, data={"status": "active"}, domain="sessions", entity=sid)
        )


def test_create_errors() -> None:
    with pytest.raises(RejectedMessage) as caught:
        apply(None, message("a", {"a": 1}, "create", {"sessionId": SESSION}))
    assert caught.value.field == "payload.entity.data.content"
    with pytest.raises(RejectedMessage, match="already exists"):
        apply(created(), message("z", {"z": 1}, "create", {"content": "x", "sessionId": SESSION}))
    with pytest.raises(RejectedMessage, match="is a PROJ id, expected a TODO id"):
        apply(None, message("a", {"a": 1}, "create", {"content": "x"}, entity="CHITTY-PROJ-1"))
    with pytest.raises(RejectedMessage, match="does not exist"):
        apply(None, message("a", {"a": 1}, data={"content": "x"}))


def test_a_write_must_count_itself_in_its_clock() -> None:
    with pytest.raises(RejectedMessage) as caught:
        apply(created(), message("b", {"a": 1}, data={"content": "x"}))
    assert caught.value.field == "metadata.vectorClock"


def test_delete_then_updates_are_refused() -> None:
    result = apply(created(), message("b", {"a": 1, "b": 1}, "delete"))
    assert result.state is not None and result.state.deleted
    assert result.events[0].kind is EventKind.DELETED
    with pytest.raises(RejectedMessage, match="was deleted"):
        apply(result.state, message("b", {"a": 1, "b": 2}, data={"content": "x"}))


def test_queries_and_heartbeats_change_nothing() -> None:
    state = created()
    assert apply(state, message("b", {"a": 1, "b": 1}, "query")).state is state
    assert apply(state, message("b", {"a": 1, "b": 1}, kind="state_request")).events == ()


def test_replaying_the_events_rebuilds_the_same_state() -> None:
    state: EntityState | None = None
    log = []
    for msg in [
        message("a", {"a": 1}, "create", {"content": "x", "sessionId": SESSION}),
        message("b", {"a": 1, "b": 1}, data={"status": "in_progress"}),
        message("c", {"a": 1, "c": 1}, data={"status": "blocked", "assignees": ["CHITTY-USER-3"]}),
    ]:
        result = apply(state, msg)
        state = result.state
        log.extend(result.events)
    replayed: EntityState | None = None
    for event in log:
        replayed = apply(replayed, event.message).state
    assert replayed == state


STATUSES = st.sampled_from(["pending", "in_progress", "blocked", "completed"])
USERS = st.lists(st.sampled_from(["CHITTY-USER-1", "CHITTY-USER-2", "CHITTY-USER-3"]), unique=True)
writes = st.fixed_dictionaries(
    {},
    optional={
        "status": STATUSES,
        "content": st.sampled_from(["one", "two"]),
        "assignees": USERS,
        "metadata": st.fixed_dictionaries({"priority": st.sampled_from(["low", "high"])}),
    },
)


@given(writes, writes, st.integers(0, 59), st.integers(0, 59))
def test_two_concurrent_writes_commute(
    left: dict[str, Any], right: dict[str, Any], t1: int, t2: int
) -> None:
    base = created(assignees=["CHITTY-USER-1"])
    one = message("b", {"a": 1, "b": 1}, data=left, second=t1)
    two = message("c", {"a": 1, "c": 1}, data=right, second=t2)
    try:
        ab = step(step(base, one), two)
        ba = step(step(base, two), one)
    except RejectedMessage:
        return  # an illegal transition from the current status is refused in either order
    assert view(ab) == view(ba)
    assert ab.conflicts == ba.conflicts
    assert ab.clock == ba.clock


project_writes = st.fixed_dictionaries(
    {},
    optional={
        "name": st.sampled_from(["one", "two"]),
        "status": st.sampled_from(["planning", "active", "on-hold", "completed"]),
        # A full new value of the text field, made from the text both writers saw.
        "description": st.sampled_from(
            [
                "the quick fox",
                "the quick brown fox",
                "the quick fox jumps",
                "a quick fox",
                "fox",
                "",
            ]
        ),
        "metadata": st.fixed_dictionaries({"team": USERS}),
    },
)


@given(project_writes, project_writes, st.integers(0, 59), st.integers(0, 59))
def test_two_concurrent_writes_with_a_text_field_commute(
    left: dict[str, Any], right: dict[str, Any], t1: int, t2: int
) -> None:
    base = project()
    one = on_project("b", {"a": 1, "b": 1}, left, second=t1)
    two = on_project("c", {"a": 1, "c": 1}, right, second=t2)
    try:
        ab = step(step(base, one), two)
        ba = step(step(base, two), one)
    except RejectedMessage:
        return
    assert view(ab) == view(ba)
    assert ab.fields == ba.fields  # the text's document and recorded edits too
    assert ab.conflicts == ba.conflicts
    assert ab.clock == ba.clock


def test_a_concurrent_status_write_is_checked_against_what_its_writer_saw() -> None:
    done = step(created(), message("b", {"a": 1, "b": 1}, data={"status": "completed"}))
    # c never saw "completed": pending -> blocked is legal for c, so it merges as a conflict.
    result = apply(done, message("c", {"a": 1, "c": 1}, data={"status": "blocked"}))
    assert [c.field for c in result.conflicts] == ["status"]
    # A resolver who saw both may pick any status legal from one of them.
    assert result.state is not None
    settled = step(
        result.state, message("r", {"a": 1, "b": 1, "c": 1, "r": 1}, data={"status": "in_progress"})
    )
    assert view(settled)["status"] == "in_progress" and settled.conflicts == {}


def test_lone_surrogates_are_refused_naming_the_field() -> None:
    with pytest.raises(RejectedMessage) as caught:
        apply(created(), message("b", {"a": 1, "b": 1}, data={"content": "x\ud800"}))
    assert caught.value.field == "payload.entity.data.content"


def test_a_blind_write_without_a_clock_applies_on_top_of_the_current_state() -> None:
    state = step(created(), message("b", {"a": 1, "b": 1}, data={"status": "in_progress"}))
    blind = message("api", {}, data={"status": "completed"})
    after = step(state, blind)
    assert view(after)["status"] == "completed" and after.conflicts == {}
    assert after.clock == VectorClock({"a": 1, "b": 1, "api": 1})
    again = step(after, message("api", {}, data={"content": "next"}))
    assert again.clock == VectorClock({"a": 1, "b": 1, "api": 2})
    # Replaying the same messages recomputes the same clocks.
    replayed = step(step(state, blind), message("api", {}, data={"content": "next"}))
    assert replayed.clock == again.clock


def test_a_state_snapshot_replaces_the_entity_fields_it_omits_take_their_defaults() -> None:
    base = step(
        created(assignees=["CHITTY-USER-1"], activeForm="Writing"),
        message(
            "b", {"a": 1, "b": 1}, data={"status": "in_progress", "metadata": {"priority": "high"}}
        ),
    )
    whole = {"content": "Rewritten", "sessionId": SESSION}
    snapshot = step(base, message("c", {"a": 1, "b": 1, "c": 1}, data=whole, kind="state_snapshot"))
    shown = view(snapshot)
    assert shown["content"] == "Rewritten" and shown["activeForm"] == ""
    assert shown["assignees"] == [] and shown["status"] == "pending"
    assert shown["metadata"]["priority"] == "medium"  # type: ignore[index,call-overload]
    assert (
        shown["sessionId"] == SESSION
        and shown["metadata"]["created"] == view(base)["metadata"]["created"]
    )  # type: ignore[index,call-overload]
    partial = step(base, message("c", {"a": 1, "b": 1, "c": 1}, data={"content": "Rewritten"}))
    assert view(partial)["assignees"] == ["CHITTY-USER-1"]  # an update keeps what it omits
    with pytest.raises(RejectedMessage, match="fixed") as fixed:
        apply(
            base,
            message(
                "c",
                {"a": 1, "b": 1, "c": 1},
                data={**whole, "sessionId": "CHITTY-SESSION-2"},
                kind="state_snapshot",
            ),
        )
    assert fixed.value.field == "payload.entity.data.sessionId"


def test_a_snapshot_cannot_take_a_status_back_its_lifecycle_forbids() -> None:
    fields = {"sessionId": "s", "platform": "cli"}
    session = apply(
        None, message("a", {"a": 1}, "create", fields, domain="sessions", entity="CHITTY-SESSION-9")
    ).state
    assert session is not None
    ended = step(
        session,
        message(
            "a", {"a": 2}, data={"status": "ended"}, domain="sessions", entity="CHITTY-SESSION-9"
        ),
    )
    with pytest.raises(RejectedMessage) as error:  # omitting status means "active" again
        apply(
            ended,
            message(
                "a",
                {"a": 3},
                data=fields,
                domain="sessions",
                entity="CHITTY-SESSION-9",
                kind="state_snapshot",
            ),
        )
    assert error.value.kind is Refusal.TRANSITION
