"""How a hub change reads on a chat channel: a title and plain text every channel can show.

Adapters with rich text (Slack blocks, an HTML mail) build their rich form from the same
entity; this is the part they share, and the one text-only channels send as it is.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import JsonValue

_MARK = {
    "pending": "⬜",
    "in_progress": "⏳",
    "blocked": "⛔",
    "completed": "✅",
    "healthy": "🟢",
    "degraded": "🟡",
    "down": "🔴",
}
_LABEL = {
    "todos": ("content", "todo"),
    "sessions": ("sessionId", "session"),
    "projects": ("name", "project"),
    "topics": ("title", "topic"),
    "contexts": ("type", "context"),
    "repos": ("path", "repo"),
    "services": ("name", "service"),
}


def _get(entity: Mapping[str, Any], *path: str) -> Any:
    value: Any = entity
    for part in path:
        value = value.get(part) if isinstance(value, Mapping) else None
    return value


def status_of(entity: Mapping[str, Any]) -> str | None:
    """The entity's status wherever its domain keeps it."""
    for path in (("status",), ("metadata", "status"), ("health",)):
        value = _get(entity, *path)
        if isinstance(value, str):
            return value
    return None


def title(domain: str, entity: Mapping[str, JsonValue]) -> str:
    """A one-line name: "todo: Write the sync engine"."""
    field, kind = _LABEL.get(domain, ("chittyId", domain.rstrip("s")))
    name = entity.get(field) or entity.get("url") or entity.get("chittyId") or ""
    return f"{kind}: {str(name)[:200]}"


def state_text(domain: str, entity: Mapping[str, JsonValue], deleted: bool = False) -> str:
    """The entity's state in a few lines of plain text."""
    status = status_of(entity)
    head = title(domain, entity)
    if deleted:
        return f"🗑 {head} (deleted)"
    mark = _MARK.get(status or "", "•")
    lines = [f"{mark} {head}"]
    facts = []
    if status:
        facts.append(status.replace("_", " "))
    priority = _get(entity, "metadata", "priority")
    if isinstance(priority, str) and domain == "todos":
        facts.append(f"priority {priority}")
    for key in ("projectId", "sessionId"):
        value = entity.get(key)
        if isinstance(value, str) and not (domain == "sessions" and key == "sessionId"):
            facts.append(f"{key[:-2]} {value}")
    version = _get(entity, "metadata", "version")
    if domain == "services" and isinstance(version, str) and version:
        facts.append(f"version {version}")
    error = _get(entity, "metadata", "error")
    if domain in ("services", "repos") and isinstance(error, str):
        facts.append(error)  # why it is down (or unreadable): what an alert must say
    if facts:
        lines.append(" · ".join(facts))
    lines.append(str(entity.get("chittyId", "")))
    return "\n".join(lines)


def conflict_text(conflict: Mapping[str, Any]) -> str:
    """A conflict opened on the entity: the field and every competing value."""
    values = ", ".join(repr(v.get("value")) for v in conflict.get("versions") or [])
    return (
        f"⚠ conflict on {conflict.get('field')}: {values}. "
        f"Resolve it with `chitty conflicts resolve {conflict.get('conflictId')} <value>`."
    )


def relay_text(kind: str, data: Mapping[str, JsonValue]) -> str:
    """A relayed event or command: what it says."""
    if kind == "command" and data.get("command") == "notify":
        arguments = data.get("arguments")
        if isinstance(arguments, Mapping):
            return f"📣 {arguments.get('text')}"
    return f"{kind}: " + ", ".join(f"{k}={v}" for k, v in sorted(data.items()))


def fit(text: str, most: int) -> str:
    """`text` within `most` characters; a longer one says it was shortened, and by how much
    (never cut silently)."""
    if len(text) <= most:
        return text
    widest = f"… ({len(text)} more characters: the full text is in the hub)"
    keep = max(most - len(widest), 0)
    return text[:keep] + f"… ({len(text) - keep} more characters: the full text is in the hub)"
