"""Sync targets (platforms, channels, models) and how a sync to each is reported.

A target is served by an adapter. Platforms that read the hub over its WebSocket (web, CLI, VS
Code, Claude Code, mobile) are `live`: their subscribers already receive every change. Channels
and models need an adapter actor; until one is running for a target, a sync to it reports
`not_connected`, never a pretend success.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

from transports.gateway.errors import ApiError

TargetKind = Literal["platforms", "channels", "models"]

KNOWN: Mapping[TargetKind, frozenset[str]] = {
    "platforms": frozenset({"web", "cli", "mobile", "vscode", "claude-code"}),
    "channels": frozenset({"slack", "discord", "email", "sms", "whatsapp", "imessage"}),
    "models": frozenset({"claude", "chatgpt", "gemini"}),
}
DEFAULT_PLATFORMS = ("web", "cli", "mobile")  # "all platforms" when a sync names none
LIVE_PLATFORMS = frozenset({"web", "cli", "vscode", "claude-code", "mobile"})


@dataclass(frozen=True, slots=True)
class TargetReport:
    """What a sync did (or, dry, would do) for one target."""

    target: str
    kind: TargetKind
    status: Literal["live", "would_sync", "not_connected"]
    entities: int
    detail: str

    def to_wire(self) -> dict[str, object]:
        return {
            "target": self.target,
            "kind": self.kind,
            "status": self.status,
            "entities": self.entities,
            "detail": self.detail,
        }


def check_targets(requested: Mapping[TargetKind, Iterable[str]]) -> list[tuple[TargetKind, str]]:
    """The (kind, name) pairs asked for; a 422 listing the known ones for any unknown name."""
    pairs: list[tuple[TargetKind, str]] = []
    for kind, names in requested.items():
        for name in names:
            if name not in KNOWN[kind]:
                known = ", ".join(sorted(KNOWN[kind]))
                raise ApiError(
                    422, "unknown_target", f"unknown {kind[:-1]} {name!r}; known: {known}", kind
                )
            pairs.append((kind, name))
    return pairs


def report(kind: TargetKind, name: str, entities: int, dry_run: bool) -> TargetReport:
    if dry_run:
        return TargetReport(name, kind, "would_sync", entities, f"{entities} entities would sync")
    if kind == "platforms" and name in LIVE_PLATFORMS:
        return TargetReport(
            name, kind, "live", entities, "delivered to its WebSocket subscribers as it changes"
        )
    return TargetReport(
        name,
        kind,
        "not_connected",
        entities,
        f"no {name} adapter is running on this hub; nothing was sent",
    )
