"""Todos: actionable tasks coordinated across sessions (spec §2.D)."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import Field

from hub.ids import ChittyIdStr, ProjectId, SessionId, TodoId
from hub.models.base import CreatedBy, Policy, SharedWith, Timestamp, WireModel
from hub.models.parts import ShortText


class TodoStatus(StrEnum):
    PENDING = "pending"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    BLOCKED = "blocked"


class Priority(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"


class TodoMetadata(WireModel):
    created: Annotated[Timestamp | None, Policy.CREATED] = None
    modified: Annotated[Timestamp | None, Policy.MODIFIED] = None
    completed_at: Timestamp | None = None
    priority: Annotated[Priority, Policy.MV] = Priority.MEDIUM
    tags: list[ShortText] = Field(default_factory=list)  # an add-wins set, as a topic's


TodoContent = Annotated[str, Field(min_length=1, max_length=10_000)]


class Todo(WireModel):
    """A task with the spec's fields; `activeForm` is the present-continuous label.

    `sessionId` is the session it came from. Two fields are written by the hub's todo
    reconciliation (spec Example 2) rather than by clients: `listedIn`, the other sessions
    whose todo list shows it, and `mergedInto`, set on a duplicate that was merged into
    another todo (kept, not deleted; lists of a session's todos leave it out).
    """

    chitty_id: Annotated[TodoId, Policy.FIXED]
    content: TodoContent
    active_form: Annotated[str, Field(max_length=10_000)] = ""
    status: Annotated[TodoStatus, Policy.MV] = TodoStatus.PENDING
    session_id: Annotated[SessionId, Policy.FIXED]
    project_id: ProjectId | None = None
    listed_in: list[SessionId] = Field(default_factory=list)
    merged_into: TodoId | None = None
    assignees: list[ChittyIdStr] = Field(default_factory=list)
    dependencies: list[TodoId] = Field(default_factory=list)
    deadline: Annotated[Timestamp | None, Policy.MV] = None
    metadata: TodoMetadata = Field(default_factory=TodoMetadata)
    created_by: CreatedBy = None
    shared_with: SharedWith = Field(default_factory=list)
