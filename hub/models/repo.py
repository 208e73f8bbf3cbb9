"""Repos: git repositories whose state the hub tracks (spec §2.G).

A repo is registered by its local `path` (read by the hub's watcher: branch, HEAD, working
tree, ahead/behind its upstream, last commit) and/or its remote `url`. Only the watcher's reads
fill the state fields; until one has, they read `unknown` (or null), never a guess.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import Field, ValidationInfo, field_validator

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
    UNKNOWN = "unknown"  # nothing has compared it with its upstream (or it has none)


class RepoChanges(WireModel):
    """What the working tree holds that HEAD does not (`git status`)."""

    staged: Annotated[int, Field(ge=0)] = 0
    modified: Annotated[int, Field(ge=0)] = 0
    untracked: Annotated[int, Field(ge=0)] = 0
    conflicted: Annotated[int, Field(ge=0)] = 0


class Commit(WireModel):
    """The commit HEAD is at."""

    at: Timestamp
    author: Annotated[str, Field(max_length=500)]
    subject: Annotated[str, Field(max_length=500)] = ""


class RepoMetadata(WireModel):
    last_sync: Timestamp | None = None  # when the hub last read the repository
    sync_status: SyncStatus = SyncStatus.UNKNOWN
    error: Annotated[str | None, Field(max_length=2000)] = None  # why the last read failed


class Repo(WireModel):
    """A repository at a branch and commit; what no one has checked reads `unknown` (or null)."""

    chitty_id: Annotated[RepoId, Policy.FIXED]
    url: Annotated[str, Field(max_length=2048)] = ""
    path: Annotated[str | None, Field(min_length=1, max_length=4096, validate_default=True)] = None
    branch: ShortText | None = None
    commit: Annotated[str, Field(max_length=64)] = ""
    working_tree: WorkingTree = WorkingTree.UNKNOWN
    changes: Annotated[RepoChanges | None, Policy.LWW] = None
    upstream: Annotated[str | None, Field(max_length=500)] = None
    ahead: Annotated[int | None, Field(ge=0)] = None
    behind: Annotated[int | None, Field(ge=0)] = None
    last_commit: Annotated[Commit | None, Policy.LWW] = None
    services: list[ServiceId] = Field(default_factory=list)
    metadata: RepoMetadata = Field(default_factory=RepoMetadata)
    created_by: CreatedBy = None
    shared_with: SharedWith = Field(default_factory=list)

    @field_validator("path")
    @classmethod
    def _somewhere(cls, path: str | None, info: ValidationInfo) -> str | None:
        if path is None and not info.data.get("url"):
            raise ValueError("a repo needs a local `path` (or a remote `url`)")
        return path
