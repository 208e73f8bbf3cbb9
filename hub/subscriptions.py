"""Published events and the server-side filters subscribers choose them by."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import msgpack
from pydantic import Field, JsonValue

from hub.domains import SyncDomain
from hub.entity import EntityState, Event, view
from hub.ids import ChittyIdStr
from hub.models.base import WireModel


class Filter(WireModel):
    """What a subscriber wants: some domains, narrowed by any of these ids and platform."""

    domains: list[SyncDomain] = Field(default_factory=lambda: list(SyncDomain))
    project_id: ChittyIdStr | None = None
    session_id: ChittyIdStr | None = None
    topic_id: ChittyIdStr | None = None
    entity_id: ChittyIdStr | None = None
    platform: str | None = None


@dataclass(frozen=True, slots=True)
class Published:
    """One committed change as subscribers see it; `offset` orders the hub's stream."""

    offset: int
    domain: SyncDomain
    entity_id: str
    kind: str  # created / updated / deleted
    seq: int  # the entity's log position
    message_id: str
    platform: str  # where the change came from
    node_id: str
    project_id: str | None
    session_id: str | None
    topic_id: str | None
    clock: Mapping[str, int]
    changed: tuple[str, ...]
    entity: Mapping[str, JsonValue]
    conflicts: tuple[str, ...]  # ids this change opened, widened or resolved
    timestamp_ms: int
    open_conflicts: tuple[Mapping[str, JsonValue], ...] = ()  # the entity's open conflicts now

    def matches(self, wanted: Filter) -> bool:
        """Whether a subscriber with this filter should receive the event."""
        return (
            self.domain in wanted.domains
            and (wanted.entity_id is None or wanted.entity_id == self.entity_id)
            and (wanted.project_id is None or wanted.project_id == self.project_id)
            and (wanted.session_id is None or wanted.session_id == self.session_id)
            and (wanted.topic_id is None or wanted.topic_id == self.topic_id)
            and (wanted.platform is None or wanted.platform == self.platform)
        )


def _scope(
    domain: SyncDomain, entity_id: str, data: Mapping[str, JsonValue]
) -> tuple[str | None, str | None, str | None]:
    """(projectId, sessionId, topicId) an entity belongs to, itself included."""

    def text(key: str) -> str | None:
        value = data.get(key)
        return value if isinstance(value, str) else None

    project = entity_id if domain is SyncDomain.PROJECTS else text("projectId")
    session = entity_id if domain is SyncDomain.SESSIONS else text("sessionId")
    topic = entity_id if domain is SyncDomain.TOPICS else text("topicId")
    return project, session, topic


def publication(event: Event, state: EntityState, seq: int, offset: int = 0) -> Published:
    """The published form of an applied event (offset assigned by the broker later)."""
    data = view(state)
    project, session, topic = _scope(event.domain, event.entity_id, data)
    return Published(
        offset,
        event.domain,
        event.entity_id,
        event.kind.value,
        seq,
        event.message.id,
        event.message.source.platform,
        event.message.source.node_id,
        project,
        session,
        topic,
        event.clock.to_dict(),
        event.changed,
        data,
        (*event.opened, *event.resolved),
        event.timestamp_ms,
        tuple(c.model_dump(mode="json") for c in state.conflicts.values()),
    )


def encode_published(item: Published) -> bytes:
    """A publication as stored in a host's outbox (the offset is the broker's, not stored)."""
    packed: bytes = msgpack.packb(
        [
            item.domain.value,
            item.entity_id,
            item.kind,
            item.seq,
            item.message_id,
            item.platform,
            item.node_id,
            item.project_id,
            item.session_id,
            item.topic_id,
            dict(item.clock),
            list(item.changed),
            dict(item.entity),
            list(item.conflicts),
            item.timestamp_ms,
            [dict(c) for c in item.open_conflicts],
        ],
        use_bin_type=True,
    )
    return packed


def decode_published(body: bytes, offset: int = 0) -> Published:
    raw: list[Any] = msgpack.unpackb(body, raw=False)
    return Published(
        offset,
        SyncDomain(raw[0]),
        raw[1],
        raw[2],
        raw[3],
        raw[4],
        raw[5],
        raw[6],
        raw[7],
        raw[8],
        raw[9],
        raw[10],
        tuple(raw[11]),
        raw[12],
        tuple(raw[13]),
        raw[14],
        tuple(raw[15]),
    )
