"""The sync protocol: `SyncMessage` and its parts, a discriminated union of frozen models."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, JsonValue, TypeAdapter

from hub.clocks.vector import VectorClock
from hub.domains import SyncDomain
from hub.ids import ChittyIdStr
from hub.models.base import Timestamp, WireModel

SyncMessageType = Literal[
    "state_update",
    "state_request",
    "state_snapshot",
    "event",
    "command",
    "query",
    "heartbeat",
    "ack",
    "conflict",
]
Operation = Literal["create", "update", "delete", "query"]
NodeId = Annotated[str, Field(min_length=1, max_length=128)]
MessageIdStr = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[\x21-\x7e]+$")]
DEFAULT_TTL_S = 3600  # how long a message may wait to be applied, unless it says


class Source(WireModel):
    """Where a message came from."""

    node_id: NodeId
    platform: Annotated[str, Field(min_length=1, max_length=64)]
    chitty_id: ChittyIdStr


class Target(WireModel):
    """Where a message should go: everyone, or named nodes and platforms."""

    broadcast: bool = True
    node_ids: list[NodeId] | None = None
    platforms: list[Annotated[str, Field(min_length=1, max_length=64)]] | None = None


class EntityRef(WireModel):
    """The entity a payload is about, with its (partial, for updates) wire data."""

    chitty_id: ChittyIdStr
    type: Annotated[str, Field(max_length=64)] = ""
    data: dict[str, JsonValue] = Field(default_factory=dict)


class StateDelta(WireModel):
    """An incremental change: set elements to add or remove, Y updates for text fields."""

    add: dict[str, list[JsonValue]] = Field(default_factory=dict)
    remove: dict[str, list[JsonValue]] = Field(default_factory=dict)
    y_updates: dict[str, Annotated[str, Field(description="base64 Y-CRDT update")]] = Field(
        default_factory=dict
    )


class SyncPayload(WireModel):
    """What a message does to which entity of which domain."""

    domain: SyncDomain
    operation: Operation
    entity: EntityRef
    delta: StateDelta | None = None


class MessageMetadata(WireModel):
    """When, with what causal knowledge, after which messages, and for how long."""

    timestamp: Timestamp
    vector_clock: VectorClock
    causality: list[MessageIdStr] = Field(default_factory=list)
    ttl: Annotated[int, Field(ge=0, le=365 * 24 * 3600)] = DEFAULT_TTL_S


class _Message(WireModel):
    id: MessageIdStr
    source: Source
    target: Target = Field(default_factory=Target)
    metadata: MessageMetadata


class StateUpdate(_Message):
    """A state change (create, update or delete of one entity)."""

    type: Literal["state_update"] = "state_update"
    payload: SyncPayload


class StateRequest(_Message):
    type: Literal["state_request"] = "state_request"
    payload: SyncPayload


class StateSnapshot(_Message):
    """A full state of one entity, applied like an update that names every field."""

    type: Literal["state_snapshot"] = "state_snapshot"
    payload: SyncPayload


class EventMessage(_Message):
    type: Literal["event"] = "event"
    payload: SyncPayload


class Command(_Message):
    type: Literal["command"] = "command"
    payload: SyncPayload


class Query(_Message):
    type: Literal["query"] = "query"
    payload: SyncPayload


class Heartbeat(_Message):
    type: Literal["heartbeat"] = "heartbeat"
    payload: SyncPayload | None = None


class Ack(_Message):
    type: Literal["ack"] = "ack"
    payload: SyncPayload | None = None


class ConflictMessage(_Message):
    type: Literal["conflict"] = "conflict"
    payload: SyncPayload


SyncMessage = Annotated[
    StateUpdate
    | StateRequest
    | StateSnapshot
    | EventMessage
    | Command
    | Query
    | Heartbeat
    | Ack
    | ConflictMessage,
    Field(discriminator="type"),
]
"""Any sync message; `type` picks the variant."""

SYNC_MESSAGE: TypeAdapter[SyncMessage] = TypeAdapter(SyncMessage)
