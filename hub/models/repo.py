"""Repos: git repositories whose state the hub tracks (spec §2.G)."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import Field

from hub.ids import RepoId, ServiceId
from hub.models.base import CreatedBy, Policy, SharedWith, Timestamp, WireModel
from hub.models.parts import ShortText


class WorkingTree(StrEnum):
    CLEAN = "clean"
    DIRTY = "dirty"
    UNKNOWN = "unknown"  # nothing has checked it


class SyncStatus(StrEnum):
    SYNCED = "synced"
    AHEAD = "ahead"
    BEHIND = "behind"
    DIVERGED = "diverged"
    UNKNOWN = "unknown"  # nothing has compared it with its upstream


class RepoMetadata(WireModel):
    last_sync: Timestamp | None = None
    sync_status: SyncStatus = SyncStatus.UNKNOWN


class Repo(WireModel):
    """A repository at a branch and commit; what no one has checked reads `unknown` (or null)."""

    chitty_id: Annotated[RepoId, Policy.FIXED]
    url: Annotated[str, Field(min_length=1, max_length=2048)]
    branch: ShortText | None = None
    commit: Annotated[str, Field(max_length=64)] = ""
    working_tree: WorkingTree = WorkingTree.UNKNOWN
    services: list[ServiceId] = Field(default_factory=list)
    metadata: RepoMetadata = Field(default_factory=RepoMetadata)
    created_by: CreatedBy = None
    shared_with: SharedWith = Field(default_factory=list)
