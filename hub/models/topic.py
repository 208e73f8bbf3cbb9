"""Topics: conceptual subjects shared by people, sessions and artifacts (spec §2.A)."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import Field

from hub.ids import ChittyIdStr, ContextId
from hub.models.base import CreatedBy, Policy, SharedWith, Timestamp, WireModel
from hub.models.parts import ShortText


class TopicStatus(StrEnum):
    ACTIVE = "active"
    ARCHIVED = "archived"
    CLOSED = "closed"


class TopicArtifacts(WireModel):
    messages: list[ChittyIdStr] = Field(default_factory=list)
    documents: list[ChittyIdStr] = Field(default_factory=list)
    todos: list[ChittyIdStr] = Field(default_factory=list)
    sessions: list[ChittyIdStr] = Field(default_factory=list)


class TopicMetadata(WireModel):
    created: Annotated[Timestamp | None, Policy.CREATED] = None
    modified: Annotated[Timestamp | None, Policy.MODIFIED] = None
    status: Annotated[TopicStatus, Policy.MV] = TopicStatus.ACTIVE
    tags: list[ShortText] = Field(default_factory=list)


class Topic(WireModel):
    """A subject such as "Legal Case 12345"; ids are CHITTY-CONTEXT-* as the spec says."""

    chitty_id: Annotated[ContextId, Policy.FIXED]
    title: ShortText
    description: Annotated[str, Policy.TEXT] = ""
    participants: list[ChittyIdStr] = Field(default_factory=list)
    related_topics: list[ChittyIdStr] = Field(default_factory=list)
    artifacts: TopicArtifacts = Field(default_factory=TopicArtifacts)
    metadata: TopicMetadata = Field(default_factory=TopicMetadata)
    created_by: CreatedBy = None
    shared_with: SharedWith = Field(default_factory=list)
