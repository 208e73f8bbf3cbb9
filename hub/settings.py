"""Every knob of a hub in one validated object, passed down (never read from the environment
at import time)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field


class HubSettings(BaseModel):
    """Settings of one hub deployment; `from_env` is the only place the environment is read."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    data_dir: Path = Field(default_factory=lambda: Path.home() / ".local" / "share" / "chittychat")
    ray_address: str | None = None  # None: start an embedded local Ray
    namespace: str = "chittychat"
    node_id: Annotated[str, Field(min_length=1, max_length=64)] = "hub"
    hosts: Annotated[int, Field(ge=1, le=1024)] = 2
    shards: Annotated[int, Field(ge=1, le=65536)] = 256
    max_active_entities: Annotated[int, Field(ge=1)] = 50_000  # per host, then LRU passivation
    idle_passivate_s: Annotated[float, Field(gt=0)] = 600.0
    mailbox_limit: Annotated[int, Field(ge=1)] = 1_000  # queued messages per entity
    snapshot_every: Annotated[int, Field(ge=1)] = 100  # events per entity between snapshots
    passivate_snapshot_min: Annotated[int, Field(ge=1)] = 10  # unsnapshotted events worth one
    stream_retention: Annotated[int, Field(ge=1)] = 100_000  # events a subscriber may resume
    causality_wait_s: Annotated[float, Field(ge=0)] = 5.0
    call_timeout_s: Annotated[float, Field(gt=0)] = 10.0
    max_call_depth: Annotated[int, Field(ge=1)] = 4
    dedupe_retention_s: Annotated[float, Field(gt=0)] = 7 * 24 * 3600.0
    host_max_restarts: Annotated[int, Field(ge=-1)] = -1  # -1: restart forever
    lmdb_map_size: Annotated[int, Field(ge=1 << 20)] = 1 << 32
    # AES-256-GCM at rest for every LMDB value (events, snapshots, dedupe, catalog) when set.
    encryption_key_file: Path | None = None

    @classmethod
    def from_env(cls, environ: dict[str, str], **overrides: object) -> HubSettings:
        """Settings from `CHITTY_*` variables (e.g. CHITTY_RAY_ADDRESS), then `overrides`."""
        values: dict[str, object] = {}
        for name in cls.model_fields:
            raw = environ.get(f"CHITTY_{name.upper()}")
            if raw:
                values[name] = raw
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls.model_validate(values)
