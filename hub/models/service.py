"""Services: deployed services, their endpoints and health (spec §2.G)."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import Field

from hub.ids import RepoId, ServiceId
from hub.models.base import CreatedBy, Policy, SharedWith, Timestamp, WireModel
from hub.models.parts import Endpoint, ShortText


class ServiceType(StrEnum):
    CHITTYAPP = "chittyapp"
    CHITTYSERVICE = "chittyservice"
    EXTERNAL = "external"


class Health(StrEnum):
    HEALTHY = "healthy"
    DEGRADED = "degraded"
    DOWN = "down"
    UNKNOWN = "unknown"


class ServiceMetadata(WireModel):
    version: str = ""
    deployed: Timestamp | None = None
    last_health_check: Timestamp | None = None


class Service(WireModel):
    """A ChittyOS app, service or external dependency."""

    chitty_id: Annotated[ServiceId, Policy.FIXED]
    name: ShortText
    type: ServiceType = ServiceType.CHITTYSERVICE
    repo_id: RepoId | None = None
    endpoints: list[Endpoint] = Field(default_factory=list)
    health: Health = Health.UNKNOWN
    metadata: ServiceMetadata = Field(default_factory=ServiceMetadata)
    created_by: CreatedBy = None
    shared_with: SharedWith = Field(default_factory=list)
