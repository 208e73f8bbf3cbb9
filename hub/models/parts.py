"""Value types the spec's domain interfaces refer to without defining them."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal

from pydantic import Field, JsonValue

from hub.ids import ChittyIdStr
from hub.models.base import Timestamp, WireModel

ShortText = Annotated[str, Field(min_length=1, max_length=500)]


class Message(WireModel):
    """One message of a conversation held in a session's context."""

    role: ShortText
    content: Annotated[str, Field(max_length=100_000)]
    author: ChittyIdStr | None = None
    timestamp: Timestamp | None = None


class FileReference(WireModel):
    """A file a session read or changed."""

    path: Annotated[str, Field(min_length=1, max_length=4096)]
    uri: str | None = None
    sha: str | None = None
    last_read: Timestamp | None = None


class Breadcrumb(WireModel):
    """One step of navigation history."""

    label: ShortText
    location: Annotated[str, Field(max_length=4096)] = ""
    timestamp: Timestamp | None = None


class NamedEntity(WireModel):
    """A named entity extracted from a context (the spec's `Entity`)."""

    name: ShortText
    type: ShortText
    ref: ChittyIdStr | None = None
    confidence: Annotated[float, Field(ge=0.0, le=1.0)] = 1.0


class Relationship(WireModel):
    """A typed edge between two named entities."""

    source: ShortText
    target: ShortText
    type: ShortText
    confidence: Annotated[float, Field(ge=0.0, le=1.0)] = 1.0


class Enrichment(WireModel):
    """Additional context contributed by a source (a model, a service, a person)."""

    source: ShortText
    kind: ShortText
    content: JsonValue
    confidence: Annotated[float, Field(ge=0.0, le=1.0)] = 1.0


class Endpoint(WireModel):
    """A network endpoint a service exposes."""

    url: Annotated[str, Field(min_length=1, max_length=2048)]
    protocol: Literal["http", "https", "ws", "wss", "grpc", "mcp"] = "https"
    name: str | None = None


class MilestoneStatus(StrEnum):
    PENDING = "pending"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    MISSED = "missed"


class Milestone(WireModel):
    """A dated goal of a project."""

    id: ShortText
    title: ShortText
    status: MilestoneStatus = MilestoneStatus.PENDING
    due: Timestamp | None = None
    completed_at: Timestamp | None = None
