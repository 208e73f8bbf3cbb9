"""Scope isolation over wire-shaped entities: own members, inheritance, role rules, filters."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from hub.auth.principal import Principal, Role
from hub.auth.scope import (
    ScopeFilter,
    can_create,
    can_read,
    can_write,
    domain_of,
    members,
    own_members,
    scope_filter,
    visible,
)

ALICE, BOB, CAROL, DAVE, ERIN = (
    f"CHITTY-USER-{n}" for n in ("ALICE", "BOB", "CAROL", "DAVE", "ERIN")
)
MALLORY = "CHITTY-USER-MALLORY"

PROJECT = {
    "chittyId": "CHITTY-PROJ-P1",
    "name": "Chronicle",
    "metadata": {"owner": ALICE, "team": [BOB]},
    "createdBy": ALICE,
    "sharedWith": [],
}
SESSION = {
    "chittyId": "CHITTY-SESSION-S1",
    "sessionId": "s1",
    "platform": "cli",
    "projectId": "CHITTY-PROJ-P1",
    "participants": [CAROL],
    "createdBy": CAROL,
}
LONE_SESSION = {
    "chittyId": "CHITTY-SESSION-S2",
    "sessionId": "s2",
    "platform": "web",
    "participants": [ERIN],
}
TOPIC = {"chittyId": "CHITTY-CONTEXT-T1", "title": "Case 12345", "participants": [DAVE]}
TODO = {
    "chittyId": "CHITTY-TODO-1",
    "content": "write it",
    "sessionId": "CHITTY-SESSION-S1",
    "assignees": [DAVE],
    "sharedWith": [ERIN],
}
WORLD: dict[str, Mapping[str, Any]] = {
    e["chittyId"]: e for e in (PROJECT, SESSION, LONE_SESSION, TOPIC, TODO)
}


def lookup(entity_id: str) -> Mapping[str, Any] | None:
    return WORLD.get(entity_id)


def user(chitty_id: str, role: Role = Role.MEMBER) -> Principal:
    return Principal(chitty_id, role, "user")


def test_own_members_per_domain() -> None:
    assert own_members("projects", PROJECT) == {ALICE, BOB}
    assert own_members("sessions", SESSION) == {CAROL}
    assert own_members("topics", TOPIC) == {DAVE}
    assert own_members("todos", TODO) == {DAVE, ERIN}
    assert own_members("repos", {"createdBy": ALICE, "sharedWith": [BOB, 7, None]}) == {
        ALICE,
        BOB,
    }
    # a field of another domain does not count: a context has no participants
    assert own_members("contexts", {"participants": [ALICE]}) == frozenset()
    assert own_members("projects", {"metadata": None, "createdBy": None}) == frozenset()


def test_inheritance() -> None:
    assert members("sessions", SESSION, lookup) == {CAROL, ALICE, BOB}
    # the todo: its own, its session's, and the session's project's
    assert members("todos", TODO, lookup) == {DAVE, ERIN, CAROL, ALICE, BOB}
    # the todo's own projectId counts too
    todo = {**TODO, "sessionId": "CHITTY-SESSION-S2", "projectId": "CHITTY-PROJ-P1"}
    assert members("todos", todo, lookup) == {DAVE, ERIN, ALICE, BOB}
    # a missing parent contributes nobody
    orphan = {**TODO, "sessionId": "CHITTY-SESSION-GONE", "assignees": [], "sharedWith": []}
    assert members("todos", orphan, lookup) == frozenset()


def test_context_inherits_from_its_sources_one_step() -> None:
    inner = {"chittyId": "CHITTY-CONTEXT-C0", "type": "system", "createdBy": MALLORY}
    WORLD["CHITTY-CONTEXT-C0"] = inner
    try:
        context = {
            "chittyId": "CHITTY-CONTEXT-C1",
            "type": "session",
            "sources": ["CHITTY-SESSION-S1", "CHITTY-CONTEXT-T1", "CHITTY-CONTEXT-C0", "junk"],
        }
        assert members("contexts", context, lookup) == {CAROL, ALICE, BOB, DAVE, MALLORY}
        # a cycle of contexts terminates
        loop = {"chittyId": "CHITTY-CONTEXT-C2", "type": "system", "sources": ["CHITTY-CONTEXT-C2"]}
        WORLD["CHITTY-CONTEXT-C2"] = loop
        assert members("contexts", loop, lookup) == frozenset()
    finally:
        WORLD.pop("CHITTY-CONTEXT-C0")
        WORLD.pop("CHITTY-CONTEXT-C2", None)


def test_domain_of() -> None:
    assert domain_of("CHITTY-CONTEXT-T1", TOPIC) == "topics"
    assert domain_of("CHITTY-CONTEXT-C1", {"type": "system"}) == "contexts"
    assert domain_of("CHITTY-PROJ-P1", PROJECT) == "projects"
    assert domain_of("CHITTY-USER-X", {}) is None
    assert domain_of("nonsense", {}) is None


@pytest.mark.parametrize(
    ("who", "role", "read", "write"),
    [
        (ALICE, Role.MEMBER, True, True),  # project owner, inherited
        (BOB, Role.MEMBER, True, True),  # project team, inherited
        (CAROL, Role.MEMBER, True, True),  # session participant, inherited
        (DAVE, Role.MEMBER, True, True),  # assignee
        (ERIN, Role.MEMBER, True, True),  # shared with
        (MALLORY, Role.MEMBER, False, False),
        (DAVE, Role.VIEWER, True, False),
        (MALLORY, Role.VIEWER, False, False),
        (MALLORY, Role.ADMIN, True, True),
    ],
)
def test_read_write_matrix(who: str, role: Role, read: bool, write: bool) -> None:
    principal = user(who, role)
    assert can_read(principal, "todos", TODO, lookup) is read
    assert can_write(principal, "todos", TODO, lookup) is write


def test_services_are_unrestricted() -> None:
    service = Principal("CHITTY-SERVICE-S1", Role.SERVICE, "service")
    assert can_read(service, "todos", TODO, lookup)
    assert can_write(service, "projects", PROJECT, lookup)
    assert scope_filter(service) is None
    assert scope_filter(user(MALLORY, Role.ADMIN)) is None


def test_scope_filter_and_visible() -> None:
    rule = scope_filter(user(ERIN))
    assert isinstance(rule, ScopeFilter)
    assert rule.admits("todos", TODO, lookup)
    assert not rule.admits("projects", PROJECT, lookup)
    sessions = [SESSION, LONE_SESSION]
    assert visible(user(ERIN), "sessions", sessions, lookup) == [LONE_SESSION]
    assert visible(user(BOB), "sessions", sessions, lookup) == [SESSION]
    assert visible(user(MALLORY, Role.ADMIN), "sessions", sessions, lookup) == sessions


def test_create_needs_write_access_to_the_containers() -> None:
    new_todo = {"content": "x", "sessionId": "CHITTY-SESSION-S1", "createdBy": MALLORY}
    assert not can_create(user(MALLORY), "todos", new_todo, lookup)
    assert can_create(user(CAROL), "todos", {**new_todo, "createdBy": CAROL}, lookup)
    assert not can_create(user(CAROL, Role.VIEWER), "todos", new_todo, lookup)
    in_project = {"sessionId": "CHITTY-SESSION-S2", "projectId": "CHITTY-PROJ-P1"}
    assert not can_create(user(ERIN), "todos", in_project, lookup)  # S2 yes, P1 no
    assert can_create(user(MALLORY), "projects", {"name": "mine"}, lookup)
    assert can_create(user(MALLORY), "sessions", {"projectId": "CHITTY-PROJ-NEW"}, lookup)
    assert not can_create(user(MALLORY), "sessions", {"projectId": "CHITTY-PROJ-P1"}, lookup)


def test_unknown_domain_names_the_field() -> None:
    with pytest.raises(ValueError, match=r"^domain:"):
        members("widgets", {}, lookup)
    with pytest.raises(ValueError, match=r"^domain:"):
        can_read(user(ALICE, Role.ADMIN), "widgets", {}, lookup)
    with pytest.raises(ValueError, match=r"^domain:"):
        can_create(user(ALICE), "widgets", {}, lookup)
