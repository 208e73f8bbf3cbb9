"""Every domain model round-trips through JSON and msgpack; bad input names the field."""

from __future__ import annotations

from datetime import UTC, datetime

import msgpack
import pytest
from pydantic import BaseModel, ValidationError

from hub.fields import policy_table
from hub.models import (
    ConflictResolution,
    Context,
    Milestone,
    Project,
    Repo,
    Service,
    Session,
    TemporalState,
    Todo,
    Topic,
)
from hub.models.base import Policy

WHEN = datetime(2025, 10, 18, 12, 0, tzinfo=UTC)
TODO = {
    "chittyId": "CHITTY-TODO-1",
    "content": "Write the sync engine",
    "activeForm": "Writing the sync engine",
    "status": "in_progress",
    "sessionId": "CHITTY-SESSION-1",
    "projectId": "CHITTY-PROJ-1",
    "assignees": ["CHITTY-USER-1"],
    "dependencies": ["CHITTY-TODO-0"],
    "deadline": "2025-11-01T00:00:00Z",
    "metadata": {"created": WHEN.isoformat(), "priority": "high"},
}

SAMPLES: list[tuple[type[BaseModel], dict[str, object]]] = [
    (
        Topic,
        {
            "chittyId": "CHITTY-CONTEXT-1",
            "title": "Legal Case 12345",
            "description": "Discovery phase",
            "participants": ["CHITTY-USER-1"],
            "relatedTopics": ["CHITTY-CONTEXT-2"],
            "artifacts": {"messages": ["CHITTY-MSG-1"], "todos": ["CHITTY-TODO-1"]},
            "metadata": {"status": "archived", "tags": ["legal"], "created": WHEN.isoformat()},
        },
    ),
    (
        Project,
        {
            "chittyId": "CHITTY-PROJ-1",
            "name": "ChittyChronicle",
            "chittyPmProjectId": "pm-9",
            "topics": ["CHITTY-CONTEXT-1"],
            "repos": ["git@example.invalid:chronicle.git"],
            "sessions": ["CHITTY-SESSION-1"],
            "milestones": [{"id": "m1", "title": "Beta", "due": WHEN.isoformat()}],
            "status": "on-hold",
            "metadata": {"owner": "CHITTY-USER-1", "team": ["CHITTY-USER-2"]},
        },
    ),
    (
        Session,
        {
            "chittyId": "CHITTY-SESSION-1",
            "sessionId": "sess-12345",
            "platform": "claude-code",
            "projectId": "CHITTY-PROJ-1",
            "todos": [TODO],
            "context": {
                "messages": [{"role": "user", "content": "hi", "timestamp": WHEN.isoformat()}],
                "files": [{"path": "src/app.py"}],
                "state": {"cursor": 12, "open": ["a.py"]},
                "crumbs": [{"label": "opened app.py", "location": "src/app.py"}],
            },
            "participants": ["CHITTY-USER-1"],
            "status": "paused",
            "timestamps": {"started": WHEN.isoformat(), "lastActive": WHEN.isoformat()},
        },
    ),
    (Todo, TODO),
    (
        TemporalState,
        {
            "chittyId": "CHITTY-STATE-1",
            "entityId": "CHITTY-TODO-1",
            "entityType": "todo",
            "snapshot": {"status": "completed"},
            "timestamp": WHEN.isoformat(),
            "vectorClock": {"node-a": 3},
            "checksum": "ab12",
        },
    ),
    (
        Context,
        {
            "chittyId": "CHITTY-CONTEXT-9",
            "type": "conversation",
            "content": {
                "summary": "User works on a legal timeline app",
                "keyPoints": ["timeline", "evidence"],
                "entities": [{"name": "ChittyChronicle", "type": "product"}],
                "relationships": [{"source": "a", "target": "b", "type": "uses"}],
            },
            "sources": ["CHITTY-SESSION-1"],
            "enrichments": [{"source": "claude", "kind": "summary", "content": {"x": 1}}],
            "metadata": {"confidence": 0.8},
        },
    ),
    (
        Repo,
        {
            "chittyId": "CHITTY-REPO-1",
            "url": "https://example.invalid/chronicle.git",
            "branch": "main",
            "commit": "0123abcd",
            "workingTree": "dirty",
            "services": ["CHITTY-SERVICE-1"],
            "metadata": {"lastSync": WHEN.isoformat(), "syncStatus": "ahead"},
        },
    ),
    (
        Service,
        {
            "chittyId": "CHITTY-SERVICE-1",
            "name": "chittychat",
            "type": "chittyservice",
            "repoId": "CHITTY-REPO-1",
            "endpoints": [{"url": "https://chat.example.invalid", "protocol": "https"}],
            "health": "degraded",
            "metadata": {"version": "1.0.0", "deployed": WHEN.isoformat()},
        },
    ),
    (
        ConflictResolution,
        {
            "conflictId": "CHITTY-CONFLICT-1",
            "entityId": "CHITTY-TODO-1",
            "conflictType": "concurrent_update",
            "field": "status",
            "versions": [{"value": "completed", "vectorClock": {"a": 1}}],
            "resolution": {"strategy": "mvr", "pending": True},
        },
    ),
]


@pytest.mark.parametrize(("model", "data"), SAMPLES, ids=[m.__name__ for m, _ in SAMPLES])
def test_round_trips_through_json_and_msgpack(
    model: type[BaseModel], data: dict[str, object]
) -> None:
    value = model.model_validate(data)
    assert model.model_validate_json(value.model_dump_json()) == value
    wire = value.model_dump(mode="json")
    assert model.model_validate(msgpack.unpackb(msgpack.packb(wire))) == value
    # Wire names are the spec's camelCase ones.
    assert set(data) <= set(wire)


@pytest.mark.parametrize(
    ("model", "data", "path"),
    [
        (Todo, {**TODO, "status": "done"}, ("status",)),
        (Todo, {**TODO, "sessionId": "CHITTY-PROJ-1"}, ("sessionId",)),
        (Todo, {**TODO, "metadata": {"priority": "urgent"}}, ("metadata", "priority")),
        (Todo, {**TODO, "content": ""}, ("content",)),
        (Todo, {**TODO, "unknownField": 1}, ("unknownField",)),
        (Project, {"chittyId": "CHITTY-PROJ-1", "name": "x", "status": "paused"}, ("status",)),
        (
            Project,
            {"chittyId": "CHITTY-PROJ-1", "name": "x", "milestones": [{"id": "m"}]},
            ("milestones", 0, "title"),
        ),
        (Topic, {"chittyId": "CHITTY-TODO-1", "title": "t"}, ("chittyId",)),
        (
            Session,
            {"chittyId": "CHITTY-SESSION-1", "sessionId": "s", "platform": "fax"},
            ("platform",),
        ),
        (
            Context,
            {"chittyId": "CHITTY-CONTEXT-1", "type": "system", "metadata": {"confidence": 2}},
            ("metadata", "confidence"),
        ),
    ],
)
def test_malformed_input_is_rejected_with_the_field_path(
    model: type[BaseModel], data: dict[str, object], path: tuple[object, ...]
) -> None:
    with pytest.raises(ValidationError) as caught:
        model.model_validate(data)
    assert caught.value.errors()[0]["loc"] == path


def test_a_session_without_the_platform_s_own_id_takes_its_chitty_id() -> None:
    made = Session.model_validate({"chittyId": "CHITTY-SESSION-1", "platform": "cli"})
    assert made.session_id == "CHITTY-SESSION-1"
    named = Session.model_validate(
        {"chittyId": "CHITTY-SESSION-1", "platform": "cli", "sessionId": "claude-42"}
    )
    assert named.session_id == "claude-42"
    for bad in ("", "x" * 501, 7):
        with pytest.raises(ValidationError) as caught:
            Session.model_validate(
                {"chittyId": "CHITTY-SESSION-1", "platform": "cli", "sessionId": bad}
            )
        [error] = caught.value.errors()
        assert error["loc"] == ("sessionId",)
        assert error["msg"].startswith("the platform's own session id"), error


def test_models_are_frozen() -> None:
    todo = Todo.model_validate(TODO)
    with pytest.raises(ValidationError):
        todo.content = "changed"  # type: ignore[misc]


def test_naive_timestamps_are_read_as_utc() -> None:
    milestone = Milestone.model_validate({"id": "m", "title": "t", "due": "2025-01-01T10:00:00"})
    assert milestone.due == datetime(2025, 1, 1, 10, tzinfo=UTC)


@pytest.mark.parametrize("model", [Topic, Project, Session, Todo, Context, Repo, Service])
def test_every_leaf_field_has_a_declared_merge_policy(model: type[BaseModel]) -> None:
    table = policy_table(model)
    assert table.fields["chittyId"].policy is Policy.FIXED
    assert all(isinstance(spec.policy, Policy) for spec in table.fields.values())
    for spec in table.fields.values():
        assert (spec.policy is Policy.SET) == (spec.item is not None)


def test_declared_policies_follow_the_spec() -> None:
    todo = policy_table(Todo).fields
    assert todo["status"].policy is Policy.MV
    assert todo["content"].policy is Policy.LWW
    assert todo["assignees"].policy is Policy.SET
    assert todo["metadata.created"].policy is Policy.CREATED
    topic = policy_table(Topic).fields
    assert topic["description"].policy is Policy.TEXT
    assert topic["metadata.tags"].policy is Policy.SET
    assert policy_table(Session).fields["context.state"].policy is Policy.LWW


def test_a_repo_registered_by_url_claims_nothing_unchecked() -> None:
    repo = Repo(chitty_id="CHITTY-REPO-1", url="https://example.invalid/r.git")
    wire = repo.model_dump(mode="json", by_alias=True)
    assert wire["branch"] is None and wire["commit"] == ""
    assert wire["workingTree"] == "unknown" and wire["metadata"]["syncStatus"] == "unknown"
    assert wire["metadata"]["lastSync"] is None
    service = Service(chitty_id="CHITTY-SERVICE-1", name="s")
    assert service.health.value == "unknown" and service.metadata.last_health_check is None
