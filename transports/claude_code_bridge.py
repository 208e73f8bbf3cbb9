"""A Claude Code hook that forwards TodoWrite updates to the hub (spec Data Flow Example 1).

Register it as a `PostToolUse` hook on `TodoWrite` (README, "Claude over MCP"). Claude Code pipes
the hook event as JSON on stdin; each TodoWrite carries the session's whole todo list, so the
bridge upserts one hub todo per item (its ChittyID derived from the Claude session and the
item's content, so repeats update rather than duplicate) in the hub session standing for the
Claude session, which then lists them (and `chitty sync todos --project` reconciles them with
the project's other sessions). A todo Claude drops from its list stays in the hub as it was.
Exit 0 when forwarded or not a TodoWrite, 1 (shown to the user, never blocking Claude) when the
hub refused or could not be reached.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import sys
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue, ValidationError

from transports.client import ChittyApiError, ChittyClient, ChittyError

DEFAULT_HUB_URL = "http://127.0.0.1:8787"


class _HookModel(BaseModel):
    """Claude Code's hook payloads: frozen, tolerant of fields added by newer versions."""

    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)


class ClaudeTodo(_HookModel):
    """One item of a TodoWrite list."""

    content: str = Field(min_length=1, max_length=10_000)
    status: Literal["pending", "in_progress", "completed"] = "pending"
    active_form: str = Field("", alias="activeForm", max_length=10_000)


class TodoWriteInput(_HookModel):
    todos: list[ClaudeTodo]


class HookEvent(_HookModel):
    """The part of a PostToolUse hook event the bridge reads."""

    session_id: str = Field(min_length=1, max_length=500)
    hook_event_name: str = ""
    tool_name: str = ""
    tool_input: dict[str, JsonValue] = Field(default_factory=dict)
    cwd: str = ""


def _body(*parts: str) -> str:
    """A ChittyID body that is stable for `parts` (upper-case hex, 32 characters)."""
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:32].upper()


def hub_session_id(claude_session: str) -> str:
    """The hub session that stands for a Claude Code session."""
    return f"CHITTY-SESSION-{_body('claude-code', claude_session)}"


def hub_todo_id(claude_session: str, content: str) -> str:
    """The hub todo that stands for one TodoWrite item of a Claude Code session."""
    return f"CHITTY-TODO-{_body('claude-code', claude_session, content.strip())}"


def todo_fields(
    claude_session: str, todo: ClaudeTodo, project_id: str | None
) -> dict[str, JsonValue]:
    """The hub todo's wire fields for one TodoWrite item."""
    fields: dict[str, JsonValue] = {
        "chittyId": hub_todo_id(claude_session, todo.content),
        "content": todo.content,
        "activeForm": todo.active_form,
        "status": todo.status,
        "sessionId": hub_session_id(claude_session),
    }
    if project_id:
        fields["projectId"] = project_id
    return fields


async def _ensure_session(
    client: ChittyClient, event: HookEvent, project_id: str | None
) -> dict[str, JsonValue]:
    """The hub session standing for the Claude session, created on its first TodoWrite."""
    session = hub_session_id(event.session_id)
    try:
        return (await client.get("sessions", session)).entity
    except ChittyApiError as error:
        if error.status != 404:
            raise
        fields: dict[str, JsonValue] = {
            "chittyId": session,
            "sessionId": event.session_id,
            "platform": "claude-code",
        }
        if project_id:
            fields["projectId"] = project_id
        return (await client.create("sessions", fields)).entity


async def forward(client: ChittyClient, event: HookEvent, project_id: str | None) -> list[str]:
    """Send one TodoWrite to the hub; the hub todo ids it touched, in list order."""
    todos = TodoWriteInput.model_validate(event.tool_input).todos
    session = await _ensure_session(client, event, project_id)
    known = {
        str(t["chittyId"]): t
        for t in session.get("todos") or []  # type: ignore[union-attr]
        if isinstance(t, dict)
    }
    touched: list[str] = []
    for todo in todos:
        fields = todo_fields(event.session_id, todo, project_id)
        todo_id = str(fields["chittyId"])
        before = known.get(todo_id)
        if before is None:
            try:
                await client.create("todos", fields)
                touched.append(todo_id)
                continue
            except ChittyApiError as error:
                if error.status != 409:  # 409: it exists, not listed (merged into another)
                    raise
            before = (await client.get("todos", todo_id)).entity
        if changed := {k: v for k, v in fields.items() if before.get(k) != v}:
            await client.update("todos", todo_id, changed)
        touched.append(todo_id)
    return touched


async def run(raw: str, hub_url: str, project_id: str | None, token: str | None = None) -> int:
    """Handle one hook invocation (`token`: the hub credential); the process exit code."""
    try:
        event = HookEvent.model_validate_json(raw)
        if event.tool_name != "TodoWrite":
            return 0
        client = ChittyClient(
            hub_url, node_id="claude-code-hook", platform="claude-code", token=token
        )
        async with client as c:
            touched = await forward(c, event, project_id)
    except ValidationError as error:
        print(f"chittychat: not a TodoWrite hook event: {error}", file=sys.stderr)
        return 1
    except ChittyError as error:
        print(f"chittychat: todos not forwarded: {error}", file=sys.stderr)
        return 1
    print(f"chittychat: {len(touched)} todo(s) synced to {hub_url}", file=sys.stderr)
    return 0


def main() -> None:
    """Entry point: `python -m transports.claude_code_bridge` with the hook JSON on stdin."""
    hub_url = os.environ.get("CHITTY_HUB_URL", DEFAULT_HUB_URL)
    project_id = os.environ.get("CHITTY_PROJECT_ID") or None
    token = os.environ.get("CHITTY_TOKEN") or None
    sys.exit(asyncio.run(run(sys.stdin.read(), hub_url, project_id, token)))


if __name__ == "__main__":
    main()
