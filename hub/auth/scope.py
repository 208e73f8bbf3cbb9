"""Scope isolation: who is a member of an entity, and what a principal may read or change.

An entity's own members are its `createdBy`, its `sharedWith`, and per domain: a project's
`metadata.owner` and `metadata.team`, a session's or topic's `participants`, a todo's
`assignees`. Members are inherited one step along the containment links, and no further:

- a session: its own members and the own members of its `projectId` project;
- a todo: its own members, the members of its `sessionId` session (that session's project
  included, as above) and the own members of its `projectId` project;
- a context: its own members and the members of every entity in its `sources` (a source that
  is itself a context contributes its own members only, so cycles cannot recur).

Admins and services are unrestricted; members read and write where they are members; viewers
read where they are members and never write. Entities are wire-shaped (camelCase) mappings.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from hub.auth.principal import Principal, is_unrestricted
from hub.auth.principal import can_write as role_can_write
from hub.domains import SyncDomain
from hub.ids import InvalidChittyId, Kind, parse

Entity = Mapping[str, Any]
ParentLookup = Callable[[str], Entity | None]
"""Finds an entity by ChittyID (None when there is none, or it is not visible to look up)."""


def _domain(domain: str) -> SyncDomain:
    try:
        return SyncDomain(domain)
    except ValueError:
        known = ", ".join(d.value for d in SyncDomain)
        raise ValueError(f"domain: {domain!r} is not a domain (known: {known})") from None


def _ids(value: object) -> set[str]:
    """The strings in `value` (a string or a list of them); anything else holds none."""
    if isinstance(value, str):
        return {value} if value else set()
    if isinstance(value, list | tuple):
        return {item for item in value if isinstance(item, str) and item}
    return set()


def _field(entity: Entity, *path: str) -> object:
    value: object = entity
    for name in path:
        if not isinstance(value, Mapping):
            return None
        value = value.get(name)
    return value


_OWN_FIELDS: Mapping[SyncDomain, tuple[tuple[str, ...], ...]] = {
    SyncDomain.PROJECTS: (("metadata", "owner"), ("metadata", "team")),
    SyncDomain.SESSIONS: (("participants",),),
    SyncDomain.TOPICS: (("participants",),),
    SyncDomain.TODOS: (("assignees",),),
}


def own_members(domain: str, entity: Entity) -> frozenset[str]:
    """The entity's members by its own fields alone (no inheritance)."""
    found = _ids(entity.get("createdBy")) | _ids(entity.get("sharedWith"))
    for path in _OWN_FIELDS.get(_domain(domain), ()):
        found |= _ids(_field(entity, *path))
    return frozenset(found)


def domain_of(entity_id: str, entity: Entity) -> SyncDomain | None:
    """The domain of a looked-up entity, from its id's kind (a CONTEXT id with a `title` is a
    topic); None for an id of no synchronised domain."""
    try:
        kind = parse(entity_id).kind
    except InvalidChittyId:
        return None
    if kind is Kind.CONTEXT:
        return SyncDomain.TOPICS if "title" in entity else SyncDomain.CONTEXTS
    return _KIND_DOMAIN.get(kind)


_KIND_DOMAIN: Mapping[Kind, SyncDomain] = {
    Kind.PROJ: SyncDomain.PROJECTS,
    Kind.SESSION: SyncDomain.SESSIONS,
    Kind.TODO: SyncDomain.TODOS,
    Kind.REPO: SyncDomain.REPOS,
    Kind.SERVICE: SyncDomain.SERVICES,
}


def _parent_own(ref: object, parent: ParentLookup) -> frozenset[str]:
    if not isinstance(ref, str) or not ref:
        return frozenset()
    found = parent(ref)
    if found is None:
        return frozenset()
    domain = domain_of(ref, found)
    return frozenset() if domain is None else own_members(domain, found)


def _session_members(session: Entity, parent: ParentLookup) -> frozenset[str]:
    return own_members(SyncDomain.SESSIONS, session) | _parent_own(session.get("projectId"), parent)


def members(domain: str, entity: Entity, parent: ParentLookup) -> frozenset[str]:
    """Every ChittyID that is a member of the entity, own and inherited (see the module)."""
    kind = _domain(domain)
    found = set(own_members(kind, entity))
    if kind is SyncDomain.SESSIONS:
        found |= _parent_own(entity.get("projectId"), parent)
    elif kind is SyncDomain.TODOS:
        session_id = entity.get("sessionId")
        session = parent(session_id) if isinstance(session_id, str) and session_id else None
        if session is not None:
            found |= _session_members(session, parent)
        found |= _parent_own(entity.get("projectId"), parent)
    elif kind is SyncDomain.CONTEXTS:
        for source_id in _ids(entity.get("sources")):
            source = parent(source_id)
            if source is None:
                continue
            source_domain = domain_of(source_id, source)
            if source_domain is None:
                continue
            if source_domain is SyncDomain.CONTEXTS:
                found |= own_members(source_domain, source)
            else:
                found |= members(source_domain, source, parent)
    return frozenset(found)


def can_read(principal: Principal, domain: str, entity: Entity, parent: ParentLookup) -> bool:
    """Whether the principal may see the entity (a denied read answers 404)."""
    _domain(domain)
    if is_unrestricted(principal.role):
        return True
    return principal.chitty_id in members(domain, entity, parent)


def can_write(principal: Principal, domain: str, entity: Entity, parent: ParentLookup) -> bool:
    """Whether the principal may change the existing entity (a denied write answers 403)."""
    _domain(domain)
    if is_unrestricted(principal.role):
        return True
    if not role_can_write(principal.role):
        return False
    return principal.chitty_id in members(domain, entity, parent)


_CONTAINERS: Mapping[SyncDomain, tuple[str, ...]] = {
    SyncDomain.TODOS: ("sessionId", "projectId"),
    SyncDomain.SESSIONS: ("projectId",),
}


def can_create(principal: Principal, domain: str, entity: Entity, parent: ParentLookup) -> bool:
    """Whether the principal may create the entity: its role writes, and it may write every
    existing container the entity names (a todo's session and project, a session's project;
    a container that does not exist is not checked). The creator becomes a member of the new
    entity through its `createdBy`."""
    kind = _domain(domain)
    if is_unrestricted(principal.role):
        return True
    if not role_can_write(principal.role):
        return False
    for field in _CONTAINERS.get(kind, ()):
        ref = entity.get(field)
        container = parent(ref) if isinstance(ref, str) and ref else None
        if container is None:
            continue
        container_domain = domain_of(ref, container) if isinstance(ref, str) else None
        if container_domain is None or not can_write(
            principal, container_domain, container, parent
        ):
            return False
    return True


@dataclass(frozen=True, slots=True)
class ScopeFilter:
    """The read filter of a restricted principal, for lists, streams and history."""

    principal: Principal

    def admits(self, domain: str, entity: Entity, parent: ParentLookup) -> bool:
        """Whether the entity passes the filter (the same rule as `can_read`)."""
        return can_read(self.principal, domain, entity, parent)


def scope_filter(principal: Principal) -> ScopeFilter | None:
    """None for an unrestricted principal (admin, service), else its read filter."""
    return None if is_unrestricted(principal.role) else ScopeFilter(principal)


def visible(
    principal: Principal, domain: str, entities: Iterable[Entity], parent: ParentLookup
) -> list[Entity]:
    """The entities the principal may read, in their order."""
    rule = scope_filter(principal)
    if rule is None:
        return list(entities)
    return [e for e in entities if rule.admits(domain, e, parent)]
