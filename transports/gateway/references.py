"""What a write names must exist: sessions and projects are checked at the edge, and a todo
made in a session takes the session's project.

Every edge that writes (REST, /ws, `POST /sync/broadcast`) runs its writes through one
`References` per request or frame, which looks each named entity up once. A reference to an
entity that does not exist (or was deleted, or is of another domain) is a 422 naming the field;
a todo created without a `projectId` in a session that belongs to a project gets that project;
one that names another project than its session's is refused. Fields the hub keeps itself
(a project's `sessions`, from its sessions' `projectId`; a session's `todos`, which are todo
entities) are refused too, with what to do instead.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import JsonValue

from hub.domains import SyncDomain
from hub.entity import EntityView
from hub.message import Message, model_of
from hub.protocol import SyncMessage
from transports.gateway.auth import Lookup
from transports.gateway.errors import ApiError

# (domain, field) -> the domain of the entity it names
_REFERENCES: Mapping[SyncDomain, tuple[tuple[str, SyncDomain], ...]] = {
    SyncDomain.TODOS: (("sessionId", SyncDomain.SESSIONS), ("projectId", SyncDomain.PROJECTS)),
    SyncDomain.SESSIONS: (("projectId", SyncDomain.PROJECTS), ("topicId", SyncDomain.TOPICS)),
}
# (domain, field) -> why a client may not write it
_KEPT_BY_THE_HUB: Mapping[tuple[SyncDomain, str], str] = {
    (SyncDomain.PROJECTS, "sessions"): (
        "a project's sessions are kept by the hub: set projectId on each session instead"
    ),
    (SyncDomain.SESSIONS, "todos"): (
        "a session's todos are todo entities: create them with POST /api/v1/todos (or a "
        "todos state_update) naming the session's sessionId"
    ),
}


class References:
    """The reference checks of one request or frame (each entity looked up once)."""

    def __init__(self, get: Lookup) -> None:
        self._get = get
        self._seen: dict[str, EntityView | None] = {}

    async def _view(self, entity_id: str) -> EntityView | None:
        if entity_id not in self._seen:
            self._seen[entity_id] = await self._get(entity_id)
        return self._seen[entity_id]

    async def check(
        self,
        domain: SyncDomain,
        operation: str,
        data: Mapping[str, JsonValue],
        prefix: str = "",
    ) -> dict[str, JsonValue]:
        """`data` as it may be written (a todo's project filled in), or ApiError 422 naming
        `prefix` + the field at fault."""
        out = dict(data)
        for (kept_in, kept), refused in _KEPT_BY_THE_HUB.items():
            if kept_in is domain and out.get(kept) not in (None, []):
                raise ApiError(422, "invalid", refused, prefix + kept)
        if operation == "delete":
            return out
        found: dict[str, EntityView] = {}
        for field, kind in _REFERENCES.get(domain, ()):
            ref = out.get(field)
            if not isinstance(ref, str):  # absent, null, or a type the model refuses
                continue
            view = await self._view(ref)
            if view is None or view.deleted or view.domain != kind.value:
                what = kind.value[:-1]
                raise ApiError(
                    422, "invalid", f"no {what} {ref}: create the {what} first", prefix + field
                )
            found[field] = view
        session = found.get("sessionId")
        if domain is SyncDomain.TODOS and session is not None and operation == "create":
            project = session.entity.get("projectId")
            if out.get("projectId") is None and isinstance(project, str):
                out["projectId"] = project
            elif project is not None and out.get("projectId") != project:
                detail = f"its session {session.entity_id} belongs to project {project}"
                raise ApiError(422, "invalid", detail, prefix + "projectId")
        return out

    async def message(self, message: SyncMessage | Message, prefix: str) -> SyncMessage | Message:
        """`check` of a sync message's entity data; the message itself when nothing changed
        (a lean one whose data changes comes back as its model)."""
        if isinstance(message, Message):
            if message.domain is None or message.type not in ("state_update", "state_snapshot"):
                return message
            data = message.data
            checked = await self.check(message.domain, message.operation, data, prefix)
            if checked == data:
                return message
            message = model_of(message)
        payload = getattr(message, "payload", None)
        if payload is None or message.type not in ("state_update", "state_snapshot"):
            return message
        data = payload.entity.data
        checked = await self.check(payload.domain, payload.operation, data, prefix)
        if checked == data:
            return message
        entity = payload.entity.model_copy(update={"data": checked})
        update: dict[str, Any] = {"payload": payload.model_copy(update={"entity": entity})}
        return message.model_copy(update=update)
