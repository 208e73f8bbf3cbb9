"""What a context is made from: its sources' messages, files and todos, as summarizer material,
and the context the hub keeps for each session."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from hub.ids import parse
from hub.summarize import Line, Material, OpenTodo

DONE = ("completed", "cancelled")


def session_context_id(session_id: str, role: str = "S") -> str:
    """The ChittyID of a context the hub keeps for a session: `S` its summary, `H` what was
    handed over to it (one of each per session, derived from its id, so every gateway and
    every restart names the same one)."""
    body = parse(session_id).body
    if len(body) > 60:
        body = hashlib.sha256(body.encode()).hexdigest()[:40]
    return f"CHITTY-CONTEXT-{role}{body}"


def material_of(sources: Iterable[Mapping[str, Any]], now: datetime | None = None) -> Material:
    """Summarizer material from source entities (wire dicts): a session's messages, files and
    todos, a todo, a topic's title and description, another context's summary."""
    lines: list[Line] = []
    files: list[str] = []
    todos: dict[str, OpenTodo] = {}
    for entity in sources:
        context = entity.get("context")
        if isinstance(context, dict):  # a session
            for message in context.get("messages") or []:
                lines.append(Line(message["content"], message.get("author"), message["role"]))
            files += [f["path"] for f in context.get("files") or [] if f["path"] not in files]
            for todo in entity.get("todos") or []:
                todos.setdefault(todo["chittyId"], open_todo(todo))
        elif "content" in entity and "status" in entity:  # a todo
            todos.setdefault(entity["chittyId"], open_todo(entity))
        elif "title" in entity:  # a topic
            text = ". ".join(x for x in (entity["title"], entity.get("description")) if x)
            lines.append(Line(text, None, "topic"))
        elif isinstance(entity.get("content"), dict) and entity["content"].get("summary"):
            lines.append(Line(entity["content"]["summary"], None, "context"))
    return Material(tuple(lines), tuple(files), tuple(todos.values()), now)


def open_todo(todo: Mapping[str, Any]) -> OpenTodo:
    return OpenTodo(
        todo["chittyId"],
        todo.get("content", ""),
        str(todo.get("status", "pending")),
        tuple(todo.get("dependencies") or ()),
    )


def is_open(todo: Mapping[str, Any]) -> bool:
    return todo.get("status") not in DONE
