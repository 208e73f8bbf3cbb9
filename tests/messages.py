"""Builders of sync messages for tests outside hub/ (hub's own tests build theirs inline)."""

from __future__ import annotations

import itertools
import time
from datetime import UTC, datetime
from typing import Any

from hub.codec import from_wire
from hub.protocol import SyncMessage

_ids = itertools.count(1)


def now_iso() -> str:
    return datetime.now(UTC).isoformat()


def sync_message(
    entity: str,
    operation: str = "update",
    data: dict[str, Any] | None = None,
    *,
    node: str = "tester",
    clock: dict[str, int] | None = None,
    domain: str = "todos",
    message_id: str | None = None,
    causality: list[str] | None = None,
    ttl: int = 3600,
    timestamp: str | None = None,
    platform: str = "cli",
    kind: str = "state_update",
    target: dict[str, Any] | None = None,
) -> SyncMessage:
    return from_wire(
        {
            "id": message_id or f"msg-{time.monotonic_ns()}-{next(_ids)}",
            "type": kind,
            "target": target or {"broadcast": True},
            "source": {"nodeId": node, "platform": platform, "chittyId": "CHITTY-USER-1"},
            "payload": {
                "domain": domain,
                "operation": operation,
                "entity": {"chittyId": entity, "data": data or {}},
            },
            "metadata": {
                "timestamp": timestamp or now_iso(),
                "vectorClock": clock or {node: 1},
                "causality": causality or [],
                "ttl": ttl,
            },
        }
    )


def create_todo(
    entity: str, content: str = "a todo", session: str = "CHITTY-SESSION-1", **kw: Any
) -> SyncMessage:
    data = {"content": content, "sessionId": session, **kw.pop("data", {})}
    return sync_message(entity, "create", data, **kw)


def project_and_session(project: str, session: str) -> list[SyncMessage]:
    """The creates of a project and of a session in it (the ground most scenarios stand on)."""
    return [
        sync_message(project, "create", {"name": "P"}, domain="projects"),
        sync_message(
            session,
            "create",
            {"sessionId": "s", "platform": "cli", "projectId": project},
            domain="sessions",
        ),
    ]
