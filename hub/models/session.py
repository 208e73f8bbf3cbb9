"""Sessions: temporal work contexts on one platform, with their full context (spec §2.C)."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

from pydantic import (
    Field,
    JsonValue,
    ValidationError,
    ValidatorFunctionWrapHandler,
    WrapValidator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from hub.ids import ChittyIdStr, ContextId, ProjectId, SessionId
from hub.models.base import DEFAULT_ON_CREATE, CreatedBy, Policy, SharedWith, Timestamp, WireModel
from hub.models.parts import Breadcrumb, FileReference, Message
from hub.models.todo import Todo


class Platform(StrEnum):
    CLAUDE_CODE = "claude-code"
    WEB = "web"
    SLACK = "slack"
    CLI = "cli"
    MOBILE = "mobile"
    CHATGPT = "chatgpt"  # a GPT using the hub's Actions (spec Example 3)
    GEMINI = "gemini"
    # A channel adapter's session for what people do there (its commands' todos, replies):
    EMAIL = "email"  # a correspondent's mail thread
    SMS = "sms"  # the recipients (LIST, ADD, DONE)
    WHATSAPP = "whatsapp"
    IMESSAGE = "imessage"
    DISCORD = "discord"


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


PLATFORM_SESSION_ID = (
    "The platform's own session id (a Claude Code session's id, a Slack thread's ts, ...), "
    "not the hub's CHITTY-SESSION id (that is chittyId); 1-500 characters. The hub fills it "
    "with the session's chittyId when a new session gives none."
)


def _platform_session_id(value: Any, inner: ValidatorFunctionWrapHandler) -> str:
    """The wire name `sessionId` means the hub's session elsewhere: its errors say which."""
    try:
        checked: str = inner(value)
    except ValidationError:
        raise PydanticCustomError(
            "platform_session_id",
            "the platform's own session id must be a string of 1 to 500 characters",
        ) from None
    return checked


PlatformSessionId = Annotated[
    str,
    Field(
        min_length=1,
        max_length=500,
        description=PLATFORM_SESSION_ID,
        json_schema_extra={DEFAULT_ON_CREATE: "chittyId"},
    ),
    WrapValidator(_platform_session_id),
]


class Session(WireModel):
    """A Claude Code session, a Slack thread, a meeting: one platform's unit of work.

    `sessionId` (the spec's name) is the platform's own session id; the session's id in the hub
    is its `chittyId` (CHITTY-SESSION-...), which todos name in their own `sessionId`."""

    chitty_id: Annotated[SessionId, Policy.FIXED]
    session_id: Annotated[PlatformSessionId, Policy.FIXED]
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

    @model_validator(mode="before")
    @classmethod
    def _platform_id_defaults_to_chitty_id(cls, data: Any) -> Any:
        """A new session without the platform's own id takes its ChittyID as that id."""
        if not isinstance(data, dict) or "chittyId" not in data:
            return data
        if data.get("sessionId") is None and data.get("session_id") is None:
            return {**data, "sessionId": data["chittyId"]}
        return data
