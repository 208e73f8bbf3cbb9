"""Temporal states: integrity-checked snapshots of an entity at a point in time (spec §2.E)."""

from __future__ import annotations

from typing import Literal

from pydantic import JsonValue

from hub.clocks.vector import VectorClock
from hub.ids import ChittyIdStr, StateId
from hub.models.base import Timestamp, WireModel


class TemporalState(WireModel):
    """The state of `entityId` as of `timestamp`, with its causal clock and checksum."""

    chitty_id: StateId
    entity_id: ChittyIdStr
    entity_type: Literal["session", "project", "topic", "todo"]
    snapshot: JsonValue
    timestamp: Timestamp
    vector_clock: VectorClock
    checksum: str
