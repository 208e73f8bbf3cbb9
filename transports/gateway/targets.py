"""Sync targets (platforms, channels, models) and how a sync to each is reported, truthfully.

A target is `live` only when something of its kind is connected now: a platform when a /ws
subscriber that declared that platform (`X-Chitty-Platform` or `?platform=`) follows the synced
domains, and so receives every change as it commits; a channel when its adapter is connected,
and then a sync delivers the entities' current state through it (what was sent, skipped as
unchanged, or failed). Everything else is `not_connected`, with what would connect it (Claude
reads the hub over MCP when it asks rather than being pushed to). A dry run reports the same
statuses and sends nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal, Protocol

from aiohttp import web

from actors.adapter import SyncReport
from hub.adapters import AdapterState, AdapterStatus
from hub.domains import SyncDomain
from transports.gateway.errors import ApiError
from transports.gateway.hub_api import Hub

TargetKind = Literal["platforms", "channels", "models"]

KNOWN: Mapping[TargetKind, frozenset[str]] = {
    "platforms": frozenset({"web", "cli", "mobile", "vscode", "claude-code"}),
    "channels": frozenset({"slack", "discord", "email", "sms", "whatsapp", "imessage"}),
    "models": frozenset({"claude", "chatgpt", "gemini"}),
}
DEFAULT_PLATFORMS = ("web", "cli", "mobile")  # "all platforms" when a sync names none

# What connects a platform that has no subscriber now.
_HOW_TO_CONNECT: Mapping[str, str] = {
    "web": "a web client subscribes on /ws with ?platform=web",
    "cli": "run `chitty sync <domain> --watch`",
    "mobile": "a mobile client subscribes on /ws with X-Chitty-Platform: mobile (this hub ships "
    "no mobile app)",
    "vscode": "a VS Code client subscribes on /ws with X-Chitty-Platform: vscode (this hub ships "
    "no VS Code extension)",
    "claude-code": "Claude Code reads the hub over MCP when it asks (`chitty mcp`, /mcp); a "
    "client subscribes on /ws with X-Chitty-Platform: claude-code to be pushed changes",
}


class Presence(Protocol):
    """Who is connected now (the /ws gateway knows)."""

    def subscribers(self, platform: str, domains: Iterable[SyncDomain]) -> int:
        """Connections that declared `platform` and follow any of `domains`."""
        ...


PRESENCE = web.AppKey("presence", Presence)
"""The app's `Presence` (its /ws gateway)."""


@dataclass(frozen=True, slots=True)
class TargetReport:
    """What a sync did for one target (a dry run: would do, which is the same)."""

    target: str
    kind: TargetKind
    status: Literal["live", "not_connected"]
    entities: int
    subscribers: int
    detail: str
    sent: int = 0  # an adapter's deliveries of current state
    skipped: int = 0  # unchanged since it last showed them
    failed: int = 0

    def to_wire(self) -> dict[str, object]:
        return {
            "target": self.target,
            "kind": self.kind,
            "status": self.status,
            "entities": self.entities,
            "subscribers": self.subscribers,
            "detail": self.detail,
            "sent": self.sent,
            "skipped": self.skipped,
            "failed": self.failed,
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


def report(
    kind: TargetKind,
    name: str,
    entities: int,
    presence: Presence,
    domains: Iterable[SyncDomain],
    adapter: AdapterStatus | None = None,
    delivered: SyncReport | None = None,
) -> TargetReport:
    """The truth about one target now. A platform is live while subscribers of it are
    connected (a sync sends them nothing more); a channel or model while its adapter is
    connected, and then a real sync `delivered` the entities' current state through it (a dry
    run says it would)."""
    if adapter is not None:
        return _adapter_report(kind, name, entities, adapter, delivered)
    if kind == "platforms":
        count = presence.subscribers(name, domains)
        if count:
            detail = (
                f"{count} connected {name} subscriber(s) receive every change to these "
                "entities as it commits; nothing else was sent"
            )
            return TargetReport(name, kind, "live", entities, count, detail)
        detail = (
            f"no {name} subscriber is connected; nothing was sent. To connect: "
            + (_HOW_TO_CONNECT[name])
        )
        return TargetReport(name, kind, "not_connected", entities, 0, detail)
    if kind == "models" and name == "claude":
        detail = (
            "Claude reads the hub over MCP when it asks (`chitty mcp`, /mcp); nothing is "
            "pushed to it, nothing was sent"
        )
        return TargetReport(name, kind, "not_connected", entities, 0, detail)
    adapter = "channel" if kind == "channels" else "model"
    detail = f"no {name} {adapter} adapter runs on this hub; nothing was sent"
    return TargetReport(name, kind, "not_connected", entities, 0, detail)


def _adapter_report(
    kind: TargetKind,
    name: str,
    entities: int,
    adapter: AdapterStatus,
    delivered: SyncReport | None,
) -> TargetReport:
    if adapter.state is not AdapterState.CONNECTED:
        detail = f"the {name} adapter is {adapter.state.value}: {adapter.detail}; nothing was sent"
        return TargetReport(name, kind, "not_connected", entities, 0, detail)
    if delivered is None:
        detail = (
            f"the {name} adapter is connected: a sync would deliver the current state of "
            f"these {entities} entities (unchanged ones are skipped); nothing was sent"
        )
        return TargetReport(name, kind, "live", entities, 0, detail)
    detail = (
        f"delivered through the {name} adapter: {delivered.sent} sent, {delivered.skipped} "
        f"unchanged, {delivered.failed} failed"
    )
    if delivered.withheld:
        detail += (
            f", {delivered.withheld} withheld (someone on the channel is not a member of them)"
        )
    if delivered.failures:
        detail += " (" + "; ".join(delivered.failures[:5]) + ")"
    sent, skipped, failed = delivered.sent, delivered.skipped, delivered.failed
    return TargetReport(name, kind, "live", entities, 0, detail, sent, skipped, failed)


async def reports(
    request: web.Request,
    hub: Hub,
    targets: list[tuple[TargetKind, str]],
    entity_ids: list[str],
    domains: list[SyncDomain],
    dry_run: bool,
) -> list[dict[str, object]]:
    """Each target's report; a connected adapter delivers the entities' current state (not
    on a dry run, which reports the same statuses and sends nothing)."""
    presence = request.app[PRESENCE]
    adapters = (
        {s.name: s for s in await hub.adapter_statuses()}
        if any(kind != "platforms" for kind, _ in targets)
        else {}
    )
    out = []
    for kind, name in targets:
        adapter = adapters.get(name) if kind != "platforms" else None
        delivered = None
        if adapter is not None and adapter.state is AdapterState.CONNECTED and not dry_run:
            delivered = await hub.adapter_sync(name, entity_ids)
        found = report(kind, name, len(entity_ids), presence, domains, adapter, delivered)
        out.append(found.to_wire())
    return out
