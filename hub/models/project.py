"""Projects: structured work efforts with milestones, sessions and repos (spec §2.B)."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import Field

from hub.ids import ChittyIdStr, ContextId, ProjectId, SessionId
from hub.models.base import CreatedBy, Policy, SharedWith, Timestamp, WireModel
from hub.models.parts import Milestone, ShortText


class ProjectStatus(StrEnum):
    PLANNING = "planning"
    ACTIVE = "active"
    ON_HOLD = "on-hold"
    COMPLETED = "completed"


class ProjectMetadata(WireModel):
    created: Annotated[Timestamp | None, Policy.CREATED] = None
    modified: Annotated[Timestamp | None, Policy.MODIFIED] = None
    owner: Annotated[ChittyIdStr | None, Policy.MV] = None
    team: list[ChittyIdStr] = Field(default_factory=list)


class Project(WireModel):
    """A project such as ChittyChronicle development."""

    chitty_id: Annotated[ProjectId, Policy.FIXED]
    name: ShortText
    description: Annotated[str, Policy.TEXT] = ""
    chitty_pm_project_id: str | None = None
    topics: list[ContextId] = Field(default_factory=list)
    repos: list[ShortText] = Field(default_factory=list)
    sessions: list[SessionId] = Field(default_factory=list)
    milestones: list[Milestone] = Field(default_factory=list)
    status: Annotated[ProjectStatus, Policy.MV] = ProjectStatus.PLANNING
    metadata: ProjectMetadata = Field(default_factory=ProjectMetadata)
    created_by: CreatedBy = None
    shared_with: SharedWith = Field(default_factory=list)
