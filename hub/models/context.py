"""Contexts: semantic context shared with people and AI models (spec §2.F)."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import Field

from hub.ids import ChittyIdStr, ContextId
from hub.models.base import CreatedBy, Policy, SharedWith, Timestamp, WireModel
from hub.models.parts import Enrichment, NamedEntity, Relationship


class ContextType(StrEnum):
    SESSION = "session"
    CONVERSATION = "conversation"
    DOCUMENT = "document"
    SYSTEM = "system"


class ContextContent(WireModel):
    summary: Annotated[str, Policy.TEXT] = ""
    key_points: list[Annotated[str, Field(max_length=2000)]] = Field(default_factory=list)
    entities: list[NamedEntity] = Field(default_factory=list)
    relationships: list[Relationship] = Field(default_factory=list)


class ContextMetadata(WireModel):
    created: Annotated[Timestamp | None, Policy.CREATED] = None
    modified: Annotated[Timestamp | None, Policy.MODIFIED] = None
    confidence: Annotated[float, Field(ge=0.0, le=1.0)] = 1.0


class Context(WireModel):
    """A summarised, enriched context with the entities it came from."""

    chitty_id: Annotated[ContextId, Policy.FIXED]
    type: Annotated[ContextType, Policy.FIXED]
    content: ContextContent = Field(default_factory=ContextContent)
    sources: list[ChittyIdStr] = Field(default_factory=list)
    enrichments: list[Enrichment] = Field(default_factory=list)
    metadata: ContextMetadata = Field(default_factory=ContextMetadata)
    created_by: CreatedBy = None
    shared_with: SharedWith = Field(default_factory=list)
