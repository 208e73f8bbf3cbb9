"""The hand-over context of spec Example 3: what a model (or a person) needs to carry on from a
session started elsewhere — its summary, the last ten messages, the files it touched and its open
todos — as one value with a wire form and a prompt-ready text.

Pure: the gateway gathers the session, its todos and its summary; this module only shapes them,
so the MCP resource, the Actions endpoint, a propagation and a model adapter's push all hand
over the same thing."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from hub.context_sources import is_open, session_context_id

LAST_MESSAGES = 10  # spec Example 3: "last 10 messages"
LAST_FILES = 20
MESSAGE_CHARS = 2_000  # a hand-over quotes a long message's start, not all of it


@dataclass(frozen=True, slots=True)
class HandOver:
    """One session's state, ready to hand to another platform or model."""

    context_id: str  # the context holding the session's summary
    session_id: str | None  # None: a context handed over on its own, from no session
    platform: str
    project_id: str | None
    summary: str
    key_points: tuple[str, ...]
    entities: tuple[Mapping[str, Any], ...]
    last_messages: tuple[Mapping[str, Any], ...]
    files: tuple[str, ...]
    open_todos: tuple[Mapping[str, Any], ...]

    def wire(self) -> dict[str, Any]:
        return {
            "contextId": self.context_id,
            "sessionId": self.session_id,
            "platform": self.platform,
            "projectId": self.project_id,
            "summary": self.summary,
            "keyPoints": list(self.key_points),
            "entities": [dict(e) for e in self.entities],
            "lastMessages": [dict(m) for m in self.last_messages],
            "files": list(self.files),
            "openTodos": [dict(t) for t in self.open_todos],
            "text": self.text(),
        }

    def text(self) -> str:
        """The hand-over as one text a model takes as its system context."""
        origin = f"session {self.session_id} on " if self.session_id else ""
        lines = [f"Hand-over from {origin}{self.platform} (project {self.project_id or 'none'})."]
        if self.summary:
            lines.append(f"Summary: {self.summary}")
        if self.key_points:
            lines.append("Key points:")
            lines += [f"- {point}" for point in self.key_points]
        if self.last_messages:
            lines.append(f"Last {len(self.last_messages)} message(s):")
            lines += [f"- {m['role']}: {m['content']}" for m in self.last_messages]
        if self.files:
            lines.append("Files: " + ", ".join(self.files))
        if self.open_todos:
            lines.append(f"Open todos ({len(self.open_todos)}):")
            lines += [
                f"- [{t['status']}] {t['content']} ({t['chittyId']})" for t in self.open_todos
            ]
        else:
            lines.append("No open todos.")
        return "\n".join(lines)

    def digest(self) -> str:
        """What identifies this hand-over's content (a propagation of the same one is the same
        write)."""
        return hashlib.sha256(self.text().encode()).hexdigest()


def hand_over(
    session: Mapping[str, Any] | None,
    todos: Sequence[Mapping[str, Any]],
    context_id: str,
    content: Mapping[str, Any] | None,
    platform: str = "",
) -> HandOver:
    """The hand-over of `session` (a wire dict; None: the context alone) with its `todos`, and
    the summary `content` of its context `context_id` (None: not summarized yet). `platform`
    names where it comes from when no session says."""
    session = session or {}
    context = session.get("context") or {}
    # A session's messages merge as a set: their order is their timestamps' (spec Message).
    ordered = sorted(context.get("messages") or [], key=lambda m: str(m.get("timestamp") or ""))
    messages = [_message(m) for m in ordered[-LAST_MESSAGES:]]
    files = [str(f["path"]) for f in context.get("files") or []]
    content = content or {}
    return HandOver(
        context_id=context_id,
        session_id=session.get("chittyId"),
        platform=str(session.get("platform") or platform),
        project_id=session.get("projectId"),
        summary=str(content.get("summary") or ""),
        key_points=tuple(str(p) for p in content.get("keyPoints") or ()),
        entities=tuple(content.get("entities") or ()),
        last_messages=tuple(messages),
        files=tuple(dict.fromkeys(files))[-LAST_FILES:],
        open_todos=tuple(
            {"chittyId": t["chittyId"], "content": t.get("content", ""), "status": t["status"]}
            for t in todos
            if is_open(t) and not t.get("mergedInto")
        ),
    )


def _message(message: Mapping[str, Any]) -> dict[str, Any]:
    text = str(message.get("content", ""))
    if len(text) > MESSAGE_CHARS:
        text = text[:MESSAGE_CHARS] + " …"
    return {
        "role": message.get("role", "user"),
        "author": message.get("author"),
        "content": text,
        "timestamp": message.get("timestamp"),
    }


def handover_context_id(session_id: str) -> str:
    """The ChittyID of the context that records what was handed over to `session_id`."""
    return session_context_id(session_id, "H")


def latest_elsewhere(
    sessions: Sequence[Mapping[str, Any]], principal: str, platform: str | None
) -> Mapping[str, Any] | None:
    """The principal's most recently active session not on `platform` (None: on any): where
    the work a switch to `platform` carries on was being done."""
    own = [
        s
        for s in sessions
        if principal in _people(s) and (platform is None or s.get("platform") != platform)
    ]
    return max(own, key=_last_active, default=None)


class LatestSessions:
    """Each principal's most recently active session per platform, kept from the sessions
    seen (the hand-over job notes every session change), so a switch costs a lookup, not a
    scan of the principal's sessions."""

    def __init__(self) -> None:
        self._latest: dict[str, dict[str, tuple[tuple[str, str], str]]] = {}

    def known(self, principal: str) -> bool:
        return principal in self._latest

    def learn(self, principal: str, sessions: Sequence[Mapping[str, Any]]) -> None:
        """Know `principal` from its sessions so far (read once, when first needed)."""
        self._latest.setdefault(principal, {})
        for session in sessions:
            self.note(session)

    def note(self, session: Mapping[str, Any]) -> None:
        """Remember `session` for those of its people already known."""
        key, platform = _last_active(session), str(session.get("platform"))
        for person in _people(session):
            mine = self._latest.get(person)
            if mine is not None and (platform not in mine or mine[platform][0] <= key):
                mine[platform] = (key, str(session["chittyId"]))

    def elsewhere(self, principal: str, platform: str) -> str | None:
        """The id of the principal's latest session not on `platform`."""
        others = [v for p, v in self._latest.get(principal, {}).items() if p != platform]
        return max(others)[1] if others else None


def _people(session: Mapping[str, Any]) -> tuple[str, ...]:
    creator = session.get("createdBy")
    return (*([creator] if isinstance(creator, str) else []), *(session.get("participants") or ()))


def _last_active(session: Mapping[str, Any]) -> tuple[str, str]:
    stamps = session.get("timestamps") or {}
    return (str(stamps.get("lastActive") or stamps.get("started") or ""), str(session["chittyId"]))
