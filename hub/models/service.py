"""Services: deployed services, their endpoints and health (spec §2.G).

A service with a `check` (or an http(s) endpoint to GET) is checked by the hub's watcher on an
interval: `health` is `unknown` until the first check, then healthy, degraded (slow, or failing
now and then) or down (failing twice in a row, or from the start). `latencyHistory` keeps the
latest checks; a version the health answer names is recorded, and when it changes, `deployed`.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal

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


class HealthCheck(WireModel):
    """How the hub checks a service: an HTTP GET of `url` answering `expectStatus` (any 2xx
    when null) within `timeoutS`, or a TCP connect to `address` (`host:port`)."""

    kind: Literal["http", "tcp"] = "http"
    url: Annotated[str | None, Field(max_length=2048, pattern=r"^https?://")] = None
    address: Annotated[str | None, Field(max_length=300, pattern=r"^\S+:\d{1,5}$")] = None
    expect_status: Annotated[int | None, Field(ge=100, le=599)] = None
    timeout_s: Annotated[float, Field(gt=0, le=60)] = 5.0
    interval_s: Annotated[float | None, Field(ge=1, le=86_400)] = None  # None: the hub's
    slow_ms: Annotated[float, Field(gt=0)] = 1_000.0  # slower answers are `degraded`


class Sample(WireModel):
    """One check: when, how long it took, and whether it passed."""

    at: Timestamp
    ms: Annotated[float, Field(ge=0)]
    ok: bool


class ServiceMetadata(WireModel):
    version: str = ""
    deployed: Timestamp | None = None  # when `version` last changed (as the checks saw it)
    last_health_check: Timestamp | None = None
    health_since: Timestamp | None = None  # when `health` took its current value
    error: Annotated[str | None, Field(max_length=2000)] = None  # why the last check failed
    discovered: Annotated[str | None, Field(max_length=500)] = None  # a file, or the hub itself


class Service(WireModel):
    """A ChittyOS app, service or external dependency."""

    chitty_id: Annotated[ServiceId, Policy.FIXED]
    name: ShortText
    type: ServiceType = ServiceType.CHITTYSERVICE
    repo_id: RepoId | None = None
    endpoints: list[Endpoint] = Field(default_factory=list)
    check: Annotated[HealthCheck | None, Policy.LWW] = None
    health: Health = Health.UNKNOWN
    latency_ms: Annotated[float | None, Field(ge=0)] = None
    latency_history: Annotated[list[Sample], Policy.LWW, Field(max_length=100)] = Field(
        default_factory=list
    )
    metadata: ServiceMetadata = Field(default_factory=ServiceMetadata)
    created_by: CreatedBy = None
    shared_with: SharedWith = Field(default_factory=list)
