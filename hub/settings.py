"""Every knob of a hub in one validated object, passed down (never read from the environment
at import time)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from hub.store.codec import IdentityCodec, ValueCodec
from hub.store.crypto import AesGcmCodec, load_key, parse_key

ADAPTER_ENV_PREFIXES = (
    "SLACK_",
    "CHITTY_SLACK_",
    "SMTP_",
    "IMAP_",
    "CHITTY_EMAIL_",
    "DISCORD_",
    "CHITTY_DISCORD_",
    "TWILIO_",
    "CHITTY_TWILIO_",
    "CHITTY_SMS_",
    "WHATSAPP_",
    "CHITTY_WHATSAPP_",
    "CHITTY_BLUEBUBBLES_",
    "CHITTY_IMESSAGE_",
    "CHITTY_PUBLIC_URL",  # the URL services call the hub at (SMS: what Twilio signs)
    "ANTHROPIC_",
    "OPENAI_",
    "GOOGLE_AI_",
    "CHITTY_ANTHROPIC_",
    "CHITTY_OPENAI_",
    "CHITTY_GEMINI_",
    "CHITTY_SUMMARIZER_",
    "CHITTY_MODEL_",  # the model adapters (CHITTY_MODEL_TIMEOUT_S)
)
"""Where the adapters' variables begin (each adapter reads the spec's names under these)."""


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
    # AES-256-GCM at rest for every LMDB value (events, snapshots, dedupe, catalog, tokens):
    # on unless `encryption` is False. The key is `encryption_key_file`, or the key itself
    # (CHITTY_ENCRYPTION_KEY: 64 hex digits or base64, e.g. from a secret store), or else the
    # user's own key, `<config_dir>/encryption.key` (made on the first start: `hub.startup`).
    encryption: bool = True
    encryption_key_file: Path | None = None
    encryption_key: str | None = Field(default=None, repr=False)
    config_dir: Path = Field(default_factory=lambda: Path.home() / ".config" / "chittychat")
    # Authentication: users present OIDC JWTs from this issuer (all three set, or none);
    # services and admins present hub tokens (`chitty token ...`, 24 h unless told otherwise).
    oidc_issuer: str | None = None
    oidc_audience: str | None = None
    oidc_jwks_url: str | None = None
    # The web UI's "Sign in with the issuer" (`transports.web.oidc`) uses the audience as its
    # client id; a confidential client also sends this secret to the token endpoint.
    oidc_client_secret: str | None = Field(default=None, repr=False)
    # Where people reach this hub (behind a proxy: its public origin): the OIDC sign-in's
    # redirect URI. (The SMS adapter reads the same CHITTY_PUBLIC_URL from `adapter_env`.)
    public_url: str | None = None
    token_overlap_s: Annotated[float, Field(ge=0)] = 3600.0  # a rotated token's grace period
    signature_window_s: Annotated[float, Field(gt=0)] = 300.0  # signed requests' clock skew
    # Abuse limits, per principal: requests (REST calls and WebSocket frames) and connections.
    rate_per_s: Annotated[float, Field(gt=0)] = 100.0
    rate_burst: Annotated[int, Field(ge=1)] = 200
    max_ws_per_principal: Annotated[int, Field(ge=1)] = 32
    # The adapters' own variables (the spec's names, e.g. SLACK_BOT_TOKEN, SMTP_HOST, and each
    # adapter's base-URL variable), as the environment held them at start.
    adapter_env: dict[str, str] = Field(default_factory=dict, repr=False)
    # Browser origins (scheme://host[:port]) whose pages may open /ws besides the hub's own;
    # a client that sends no Origin (the CLI, the client library) is not a browser.
    ws_origins: tuple[str, ...] = ()
    # The watcher (`actors.watcher`): whether it runs on its own; how often it reads each repo
    # and checks each service (a service's own `check.intervalS` wins), jittered by a tenth
    # either way; how often an unchanged service's latest checks are recorded; services a TOML
    # file lists; where repos may be (os.pathsep-separated roots; none: wherever the hub's
    # user can read).
    watch: bool = True  # False: read and checked only when a sync asks
    repo_interval_s: Annotated[float, Field(ge=0.1)] = 30.0
    health_interval_s: Annotated[float, Field(ge=0.1)] = 30.0
    health_record_s: Annotated[float, Field(ge=0)] = 300.0
    services_file: Path | None = None
    repo_roots: tuple[Path, ...] = ()
    # Session summaries (`actors.summaries`): a session's own context is summarized again once
    # its messages and todos moved by `summary_min_chars` and it was quiet `summary_quiet_s`.
    summarize_sessions: bool = True
    summary_min_chars: Annotated[int, Field(ge=1)] = 200
    summary_quiet_s: Annotated[float, Field(ge=0)] = 5.0

    @classmethod
    def from_env(cls, environ: dict[str, str], **overrides: object) -> HubSettings:
        """Settings from `CHITTY_*` variables (e.g. CHITTY_RAY_ADDRESS) and the adapters'
        variables (`ADAPTER_ENV_PREFIXES`), then `overrides`."""
        values: dict[str, object] = {}
        if environ.get("XDG_CONFIG_HOME"):
            values["config_dir"] = Path(environ["XDG_CONFIG_HOME"]) / "chittychat"
        for name in cls.model_fields:
            raw = environ.get(f"CHITTY_{name.upper()}")
            if raw and name != "adapter_env":
                values[name] = raw
        values["adapter_env"] = {
            k: v for k, v in environ.items() if v and k.startswith(ADAPTER_ENV_PREFIXES)
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls.model_validate(values)

    @field_validator("ws_origins", mode="before")
    @classmethod
    def _origins(cls, value: object) -> object:
        """CHITTY_WS_ORIGINS is comma-separated; each origin without a trailing slash."""
        if isinstance(value, str):
            value = [part.strip() for part in value.split(",") if part.strip()]
        if isinstance(value, list | tuple):
            return tuple(str(part).rstrip("/") for part in value)
        return value

    @field_validator("repo_roots", mode="before")
    @classmethod
    def _roots(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(Path(part) for part in value.split(os.pathsep) if part.strip())
        return value

    @model_validator(mode="after")
    def _oidc_all_or_none(self) -> Self:
        oidc = (self.oidc_issuer, self.oidc_audience, self.oidc_jwks_url)
        if any(oidc) and not all(oidc):
            raise ValueError("set all of oidc_issuer, oidc_audience and oidc_jwks_url, or none")
        return self

    @model_validator(mode="after")
    def _one_key(self) -> Self:
        if self.encryption_key_file is not None and self.encryption_key is not None:
            raise ValueError("set encryption_key_file or encryption_key, not both")
        if not self.encryption and (self.encryption_key_file or self.encryption_key):
            raise ValueError("encryption is off (--no-encryption) but a key is set: choose one")
        return self

    @property
    def key_file(self) -> Path | None:
        """The file the encryption key is read from (None: no encryption, or the key itself
        is set): the one configured, else the user's own under `config_dir`."""
        if not self.encryption or self.encryption_key is not None:
            return None
        return self.encryption_key_file or self.config_dir / "encryption.key"

    def value_codec(self) -> ValueCodec:
        """What every stored LMDB value passes through: AES-256-GCM unless encryption is off."""
        if not self.encryption:
            return IdentityCodec()
        if self.encryption_key is not None:
            return AesGcmCodec(parse_key(self.encryption_key.encode(), "CHITTY_ENCRYPTION_KEY"))
        key_file = self.key_file
        assert key_file is not None
        return AesGcmCodec(load_key(key_file))

    @property
    def oidc(self) -> bool:
        """Whether users sign in with OIDC JWTs (else only hub tokens are accepted)."""
        return self.oidc_issuer is not None
