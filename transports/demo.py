"""A tour of the domain core for `chitty demo`: spec Example 2 and a concurrent-edit conflict."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from rich.console import Console
from rich.table import Table

from hub.codec import write_message
from hub.entity import apply, view
from hub.ids import IdGenerator, Kind
from hub.models import Todo
from hub.reconcile import reconcile

_START = datetime(2025, 10, 18, 9, 0, tzinfo=UTC)


def _example_2(console: Console, ids: IdGenerator) -> None:
    project = ids.new(Kind.PROJ)
    sessions = {name: ids.new(Kind.SESSION) for name in "ABC"}
    plan = [
        ("A", "Todo 1: design the schema", "pending"),
        ("A", "Todo 2: write the sync engine", "in_progress"),
        ("B", "todo 2:  Write the sync engine.", "completed"),
        ("B", "Todo 3: add the Slack adapter", "pending"),
        ("C", "Todo 4: load-test the hub", "in_progress"),
        ("C", "Todo 5: document the CLI", "pending"),
    ]
    todos = [
        Todo.model_validate(
            {
                "chittyId": ids.new(Kind.TODO),
                "content": content,
                "status": status,
                "sessionId": sessions[session],
                "projectId": project,
                "metadata": {"created": (_START + timedelta(minutes=i)).isoformat()},
            }
        )
        for i, (session, content, status) in enumerate(plan)
    ]
    mesh = reconcile(todos)
    names = {sid: name for name, sid in sessions.items()}
    table = Table(title=f"Example 2: {len(todos)} todos from 3 sessions reconcile to")
    for column in ("todo", "status", "from sessions", "merged"):
        table.add_column(column)
    for item in mesh.todos:
        table.add_row(
            item.todo.content,
            item.todo.status.value,
            "+".join(names[s] for s in item.origin_sessions),
            str(len(item.merged_ids)),
        )
    console.print(table)


def _conflict(console: Console, ids: IdGenerator) -> None:
    todo_id = ids.new(Kind.TODO)

    def message(node: str, clock: dict[str, int], operation: str, data: dict[str, Any]) -> Any:
        return write_message(
            message_id=ids.new(Kind.MSG),
            node_id=node,
            platform="cli",
            chitty_id="CHITTY-USER-1",
            domain="todos",
            operation=operation,
            entity_id=todo_id,
            data=data,
            timestamp=_START,
            clock=clock,
        )

    create = {"content": "Ship the hub", "sessionId": ids.new(Kind.SESSION)}
    state = apply(None, message("laptop", {"laptop": 1}, "create", create)).state
    state = apply(
        state, message("phone", {"laptop": 1, "phone": 1}, "update", {"status": "completed"})
    ).state
    result = apply(state, message("web", {"laptop": 1, "web": 1}, "update", {"status": "blocked"}))
    assert result.state is not None
    console.print(
        f"\nConcurrent status writes from phone and web leave the todo at clock "
        f"{result.state.clock.to_dict()} with {len(result.conflicts)} open conflict:"
    )
    for conflict in result.conflicts:
        values = ", ".join(f"{v.value} @ {v.vector_clock.to_dict()}" for v in conflict.versions)
        console.print(f"  {conflict.conflict_id} on {conflict.field!r}: {values}")
    console.print(f"  visible status until resolved: {view(result.state)['status']!r}")


def run(console: Console) -> None:
    """Print the tour."""
    ids = IdGenerator("demo", now_ms=lambda: int(_START.timestamp() * 1000))
    _example_2(console, ids)
    _conflict(console, ids)
