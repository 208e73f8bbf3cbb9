"""The seven synchronisation domains: their model, id kind and status life cycle."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from pydantic import BaseModel

from hub.ids import Kind
from hub.models import (
    Context,
    Project,
    ProjectStatus,
    Repo,
    Service,
    Session,
    SessionStatus,
    Todo,
    TodoStatus,
    Topic,
    TopicStatus,
)


class SyncDomain(StrEnum):
    """The spec's `SyncDomain`."""

    TOPICS = "topics"
    PROJECTS = "projects"
    SESSIONS = "sessions"
    TODOS = "todos"
    CONTEXTS = "contexts"
    REPOS = "repos"
    SERVICES = "services"


@dataclass(frozen=True, slots=True)
class Lifecycle:
    """Allowed status transitions; a status absent from `allowed` is terminal."""

    path: str  # dotted wire path of the status field
    allowed: Mapping[str, frozenset[str]] = field(default_factory=dict)
    stamps: Mapping[str, str] = field(default_factory=dict)  # status -> time field it sets

    def check(self, old: str, new: str) -> str | None:
        """None when `old -> new` is allowed, else the reason it is not."""
        if old == new or new in self.allowed.get(old, frozenset()):
            return None
        targets = sorted(self.allowed.get(old, frozenset()))
        may = f"it may become {', '.join(targets)}" if targets else f"{old!r} is final"
        return f"illegal status transition {old!r} -> {new!r}: {may}"


def _lifecycle(
    path: str, edges: dict[str, set[str]], stamps: dict[str, str] | None = None
) -> Lifecycle:
    return Lifecycle(path, {old: frozenset(new) for old, new in edges.items()}, stamps or {})


@dataclass(frozen=True, slots=True)
class DomainSpec:
    """What the hub needs to know to host entities of one domain."""

    domain: SyncDomain
    model: type[BaseModel]
    kind: Kind
    lifecycle: Lifecycle | None = None


_T, _P, _S, _TOPIC = TodoStatus, ProjectStatus, SessionStatus, TopicStatus

DOMAINS: Mapping[SyncDomain, DomainSpec] = {
    SyncDomain.TOPICS: DomainSpec(
        SyncDomain.TOPICS,
        Topic,
        Kind.CONTEXT,
        _lifecycle(
            "metadata.status",
            {
                _TOPIC.ACTIVE: {_TOPIC.ARCHIVED, _TOPIC.CLOSED},
                _TOPIC.ARCHIVED: {_TOPIC.ACTIVE, _TOPIC.CLOSED},
            },
        ),
    ),
    SyncDomain.PROJECTS: DomainSpec(
        SyncDomain.PROJECTS,
        Project,
        Kind.PROJ,
        _lifecycle(
            "status",
            {
                _P.PLANNING: {_P.ACTIVE, _P.ON_HOLD, _P.COMPLETED},
                _P.ACTIVE: {_P.ON_HOLD, _P.COMPLETED},
                _P.ON_HOLD: {_P.ACTIVE, _P.COMPLETED},
                _P.COMPLETED: {_P.ACTIVE},  # reopen
            },
        ),
    ),
    SyncDomain.SESSIONS: DomainSpec(
        SyncDomain.SESSIONS,
        Session,
        Kind.SESSION,
        _lifecycle(
            "status",
            {
                _S.ACTIVE: {_S.PAUSED, _S.ENDED, _S.CRASHED},
                _S.PAUSED: {_S.ACTIVE, _S.ENDED, _S.CRASHED},
                _S.CRASHED: {_S.ACTIVE, _S.ENDED},  # crash recovery resumes the session
            },
            {_S.ENDED: "timestamps.ended"},
        ),
    ),
    SyncDomain.TODOS: DomainSpec(
        SyncDomain.TODOS,
        Todo,
        Kind.TODO,
        _lifecycle(
            "status",
            {
                _T.PENDING: {_T.IN_PROGRESS, _T.BLOCKED, _T.COMPLETED},
                _T.IN_PROGRESS: {_T.PENDING, _T.BLOCKED, _T.COMPLETED},
                _T.BLOCKED: {_T.PENDING, _T.IN_PROGRESS, _T.COMPLETED},
                _T.COMPLETED: {_T.PENDING},  # reopen, back to the start
            },
            {_T.COMPLETED: "metadata.completedAt"},
        ),
    ),
    SyncDomain.CONTEXTS: DomainSpec(SyncDomain.CONTEXTS, Context, Kind.CONTEXT),
    SyncDomain.REPOS: DomainSpec(SyncDomain.REPOS, Repo, Kind.REPO),
    SyncDomain.SERVICES: DomainSpec(SyncDomain.SERVICES, Service, Kind.SERVICE),
}
