"""Pydantic models of the seven synchronisation domains, with a merge policy per field."""

from hub.models.base import Policy, Timestamp, WireModel
from hub.models.conflict import ConflictResolution, ConflictVersion, Resolution
from hub.models.context import Context, ContextContent, ContextMetadata, ContextType
from hub.models.parts import (
    Breadcrumb,
    Endpoint,
    Enrichment,
    FileReference,
    Message,
    Milestone,
    MilestoneStatus,
    NamedEntity,
    Relationship,
)
from hub.models.project import Project, ProjectMetadata, ProjectStatus
from hub.models.repo import Repo, RepoMetadata, SyncStatus, WorkingTree
from hub.models.service import Health, Service, ServiceMetadata, ServiceType
from hub.models.session import (
    Platform,
    Session,
    SessionContext,
    SessionStatus,
    SessionTimestamps,
)
from hub.models.temporal import TemporalState
from hub.models.todo import Priority, Todo, TodoMetadata, TodoStatus
from hub.models.topic import Topic, TopicArtifacts, TopicMetadata, TopicStatus

__all__ = [
    "Breadcrumb",
    "ConflictResolution",
    "ConflictVersion",
    "Context",
    "ContextContent",
    "ContextMetadata",
    "ContextType",
    "Endpoint",
    "Enrichment",
    "FileReference",
    "Health",
    "Message",
    "Milestone",
    "MilestoneStatus",
    "NamedEntity",
    "Platform",
    "Policy",
    "Priority",
    "Project",
    "ProjectMetadata",
    "ProjectStatus",
    "Relationship",
    "Repo",
    "RepoMetadata",
    "Resolution",
    "Service",
    "ServiceMetadata",
    "ServiceType",
    "Session",
    "SessionContext",
    "SessionStatus",
    "SessionTimestamps",
    "SyncStatus",
    "TemporalState",
    "Timestamp",
    "Todo",
    "TodoMetadata",
    "TodoStatus",
    "Topic",
    "TopicArtifacts",
    "TopicMetadata",
    "TopicStatus",
    "WireModel",
    "WorkingTree",
]
