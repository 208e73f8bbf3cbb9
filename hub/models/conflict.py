"""Conflict records: concurrent values of one field, kept until resolved (spec §Conflicts)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, JsonValue

from hub.clocks.vector import VectorClock
from hub.ids import ChittyIdStr, ConflictId
from hub.models.base import WireModel


class ConflictVersion(WireModel):
    """One of the concurrent values and the causal clock of the write that made it."""

    value: JsonValue
    vector_clock: VectorClock


class Resolution(WireModel):
    strategy: Literal["lww", "mvr", "merge", "manual"]
    winner_id: str | None = None
    merged_state: JsonValue = None
    pending: bool = False


class ConflictResolution(WireModel):
    """A conflict on `field` of `entityId`; `field` is ours, the rest is the spec's shape."""

    conflict_id: ConflictId
    entity_id: ChittyIdStr
    conflict_type: Literal["concurrent_update", "divergent_state", "causal_violation"]
    field: str
    versions: list[ConflictVersion] = Field(default_factory=list)
    resolution: Resolution
