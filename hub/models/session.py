"""Sessions: temporal work contexts on one platform, with their full context (spec §2.C)."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import Field, JsonValue

from hub.ids import ChittyIdStr, ContextId, ProjectId, SessionId
from hub.models.base import CreatedBy, Policy, SharedWith, Timestamp, WireModel
from hub.models.parts import Breadcrumb, FileReference, Message, ShortText
from hub.models.todo import Todo


class Platform(StrEnum):
    CLAUDE_CODE = "claude-code"
    WEB = "web"
    SLACK = "slack"
    CLI = "cli"
    MOBILE = "mobile"
    EMAIL = "email"  # a correspondent's mail thread (the email adapter)


class SessionStatus(StrEnum):
    ACTIVE = "active"
    PAUSED = "paused"
    ENDED = "ended"
    CRASHED = "crashed"


class SessionContext(WireModel):
    """Everything a session knows: conversation, files, free-form state, navigation."""

    messages: list[Message] = Field(default_factory=list)
    files: list[FileReference] = Field(default_factory=list)
    state: dict[str, JsonValue] = Field(default_factory=dict)
    crumbs: list[Breadcrumb] = Field(default_factory=list)


class SessionTimestamps(WireModel):
    started: Annotated[Timestamp | None, Policy.CREATED] = None
    last_active: Annotated[Timestamp | None, Policy.MODIFIED] = None
    ended: Timestamp | None = None


class Session(WireModel):
    """A Claude Code session, a Slack thread, a meeting: one platform's unit of work."""

    chitty_id: Annotated[SessionId, Policy.FIXED]
    session_id: Annotated[ShortText, Policy.FIXED]
    platform: Annotated[Platform, Policy.FIXED]
    project_id: ProjectId | None = None
    topic_id: ContextId | None = None
    todos: list[Todo] = Field(default_factory=list)
    context: SessionContext = Field(default_factory=SessionContext)
    participants: list[ChittyIdStr] = Field(default_factory=list)
    status: Annotated[SessionStatus, Policy.LWW] = SessionStatus.ACTIVE
    timestamps: SessionTimestamps = Field(default_factory=SessionTimestamps)
    created_by: CreatedBy = None
    shared_with: SharedWith = Field(default_factory=list)
