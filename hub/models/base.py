"""The wire conventions every model shares: camelCase names, frozen values, UTC timestamps."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

from hub.ids import ChittyIdStr


class Policy(StrEnum):
    """How concurrent writes to a field merge (spec §Conflict Resolution Strategy)."""

    LWW = "lww"  # last writer wins by hybrid timestamp
    MV = "mv"  # multi-value register: concurrent differing values open a conflict
    SET = "set"  # add-wins observed-remove set
    TEXT = "text"  # collaborative text, merged through Y-CRDT
    FIXED = "fixed"  # set when the entity is created, never changed
    CREATED = "created"  # filled by the hub: when the entity was created
    MODIFIED = "modified"  # filled by the hub: when the entity last changed


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


Timestamp = Annotated[datetime, AfterValidator(_utc)]
"""A point in time; naive values are read as UTC, all are kept in UTC."""


class WireModel(BaseModel):
    """Frozen, strict about unknown fields, camelCase on the wire and snake_case in Python."""

    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        alias_generator=to_camel,
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
    )


DEFAULT_ON_CREATE = "x-default-on-create"
"""JSON-schema key of a field a create may omit: its value names the field the hub copies."""

# Access fields every domain model carries (spec §Security: scope isolation). The gateway
# fills `createdBy` with the authenticated creator; `sharedWith` grants access explicitly.
CreatedBy = Annotated[ChittyIdStr | None, Policy.FIXED]
SharedWith = list[ChittyIdStr]
