"""Published events and the server-side filters subscribers choose them by."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

import msgpack
from pydantic import Field, JsonValue

from hub.domains import SyncDomain
from hub.entity import EntityState, Event, wire
from hub.ids import ChittyIdStr
from hub.message import Message
from hub.models.base import WireModel
from hub.models.conflict import ConflictResolution


class Filter(WireModel):
    """What a subscriber wants: some domains, narrowed by any of these ids and platform."""

    domains: list[SyncDomain] = Field(default_factory=lambda: list(SyncDomain))
    project_id: ChittyIdStr | None = None
    session_id: ChittyIdStr | None = None
    topic_id: ChittyIdStr | None = None
    entity_id: ChittyIdStr | None = None
    platform: str | None = None


@dataclass(frozen=True, slots=True)
class Reach:
    """Who a published message is for (the spec's `target`): everyone, or only the nodes and
    platforms it names (either list matching is enough); `broadcast` false with no list: no
    subscriber (the write still happened: REST and later reads see it)."""

    broadcast: bool = True
    node_ids: tuple[str, ...] | None = None
    platforms: tuple[str, ...] | None = None

    @classmethod
    def of(cls, message: Message) -> Reach:
        """The reach of a message's target."""
        if message.broadcast and message.node_ids is None and message.platforms is None:
            return EVERYONE
        return cls(message.broadcast, message.node_ids, message.platforms)

    def reaches(self, node: str | None, platform: str | None) -> bool:
        """Whether a subscriber on `node` that declared `platform` (None: did not) gets it."""
        if self.node_ids is None and self.platforms is None:
            return self.broadcast
        return (node is not None and node in (self.node_ids or ())) or (
            platform is not None and platform in (self.platforms or ())
        )

    def to_wire(self) -> list[JsonValue]:
        return [self.broadcast, _list(self.node_ids), _list(self.platforms)]


def _list(items: tuple[str, ...] | None) -> JsonValue:
    return list(items) if items is not None else None


OUTBOX_PREFIX = "__outbox__:"
"""Entity ids under this prefix hold a host's outbox: its publications, in commit order."""


def outbox_id(host: str) -> str:
    """The entity id of host `host`'s outbox in the checkpoint store."""
    return f"{OUTBOX_PREFIX}{host}"


EVERYONE = Reach()
RELAYED = frozenset({"event", "command"})
"""Kinds of published messages that change no state: relayed to their targets as they are."""


class Published(NamedTuple):
    """One committed change (or, of a `RELAYED` kind, a domain event or command about an
    entity, its `data` as sent) as subscribers see it; `offset` orders the hub's stream.

    A named tuple: every consumer of the stream (gateway, catalog, adapters) builds one per
    event it reads, and a tuple of 20 fields is built in a sixth of the time a frozen
    dataclass takes (`decode_published`). Change one with `_replace`."""

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
    reach: Reach = EVERYONE
    data: Mapping[str, JsonValue] | None = None  # a relayed message's data
    resolved_conflicts: tuple[Mapping[str, JsonValue], ...] = ()  # closed by this change

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


def publication(
    event: Event,
    state: EntityState,
    seq: int,
    offset: int = 0,
    before: EntityState | None = None,
) -> Published:
    """The published form of an applied event (offset assigned by the broker later); the
    conflicts it resolved are taken from the state `before` it, settled by its write."""
    data = wire(state)
    message = event.message
    project, session, topic = _scope(event.domain, event.entity_id, data)
    resolved: tuple[Mapping[str, JsonValue], ...] = ()
    if event.resolved and before is not None:
        resolved = tuple(
            _settled(record, data, message.id)
            for record in before.conflicts.values()
            if record.conflict_id in event.resolved
        )
    return Published(
        offset,
        event.domain,
        event.entity_id,
        event.kind.value,
        seq,
        message.id,
        message.platform,
        message.node_id,
        project,
        session,
        topic,
        event.clock.to_dict(),
        event.changed,
        data,
        (*event.opened, *event.resolved),
        event.timestamp_ms,
        tuple(c.model_dump(mode="json") for c in state.conflicts.values()),
        Reach.of(message),
        None,
        resolved,
    )


def relay(message: Message, state: EntityState, seq: int, timestamp_ms: int) -> Published:
    """A domain event or command about an entity, published as it was sent (no state changed:
    the entity's seq and clock stay as they are)."""
    assert message.domain is not None, "a relayed message is about an entity"
    data = wire(state)
    project, session, topic = _scope(message.domain, state.entity_id, data)
    return Published(
        0,
        message.domain,
        state.entity_id,
        message.type,
        seq,
        message.id,
        message.platform,
        message.node_id,
        project,
        session,
        topic,
        state.clock.to_dict(),
        (),
        data,
        (),
        timestamp_ms,
        (),
        Reach.of(message),
        dict(message.data),
    )


def _settled(
    record: ConflictResolution, entity: Mapping[str, JsonValue], by: str
) -> dict[str, JsonValue]:
    """A conflict as it closed: settled by the write `by`, on the value the field holds now."""
    value: JsonValue = dict(entity)
    for part in record.field.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    wire: dict[str, JsonValue] = record.model_dump(mode="json")
    wire["resolution"] = {
        "strategy": "manual",
        "winnerId": by,
        "mergedState": value,
        "pending": False,
    }
    return wire


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
            item.reach.to_wire(),
            dict(item.data) if item.data is not None else None,
            [dict(c) for c in item.resolved_conflicts],
        ],
        use_bin_type=True,
    )
    return packed


_DOMAINS = {domain.value: domain for domain in SyncDomain}


def decode_published(body: bytes, offset: int = 0) -> Published:
    raw: list[Any] = msgpack.unpackb(body, raw=False)
    if len(raw) <= 16:  # written before outboxes carried targets: it reaches everyone
        reach, data, resolved = EVERYONE, None, ()
    else:
        broadcast, nodes, platforms = raw[16]
        reach = (
            EVERYONE
            if broadcast and nodes is None and platforms is None
            else Reach(
                broadcast,
                tuple(nodes) if nodes is not None else None,
                tuple(platforms) if platforms is not None else None,
            )
        )
        data, resolved = raw[17], tuple(raw[18])
    return Published(
        offset,
        _DOMAINS[raw[0]],
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
        reach,
        data,
        resolved,
    )
