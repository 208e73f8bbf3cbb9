"""What the CLI prints: tables of entities, one entity's fields, JSON for scripts, and errors
as one line (never a traceback)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

console = Console()  # what a command answers (stdout)
aside = Console(stderr=True)  # errors and notes about what it assumed (stderr: never in --json)

Columns = Sequence[tuple[str, str]]  # (header, dotted wire path)


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print `message` as an error line; the Exit to raise (1: refused, 2: bad usage)."""
    aside.print(Text.assemble(("error: ", "red"), message), soft_wrap=True)
    return typer.Exit(code)


def note(message: str) -> None:
    """A line about what the command did or assumed (e.g. which data dir or session)."""
    aside.print(Text(message, style="dim"), soft_wrap=True)


def emit_json(value: Any) -> None:
    """`value` as JSON on stdout, plain (no colours, no wrapping): for scripts and `jq`."""
    typer.echo(json.dumps(value, indent=2, ensure_ascii=False))


def at(entity: Mapping[str, Any], path: str) -> Any:
    """The value at a dotted wire path of an entity (None when absent)."""
    value: Any = entity
    for part in path.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value


def cell(value: Any) -> Text:
    """A value as table text: strings as they are (never read as markup), lists joined."""
    if value is None or value == "" or value == [] or value == {}:
        return Text("-", style="dim")
    if isinstance(value, str):
        return Text(value)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return Text(", ".join(value))
    return Text(json.dumps(value, ensure_ascii=False))


def entity_table(title: str, entities: Iterable[Mapping[str, Any]], columns: Columns) -> Table:
    table = Table(title=title)
    for header, _ in columns:
        table.add_column(header)
    for entity in entities:
        table.add_row(*(cell(at(entity, path)) for _, path in columns))
    return table


TODO_COLUMNS: Columns = (
    ("id", "chittyId"),
    ("status", "status"),
    ("content", "content"),
    ("session", "sessionId"),
    ("priority", "metadata.priority"),
)


def summary(entity: Mapping[str, Any]) -> str:
    """An entity in a few words: its id, what it says, its status."""
    label = next(
        (
            entity[k]
            for k in ("content", "name", "title", "url", "type")
            if isinstance(entity.get(k), str)
        ),
        "",
    )
    status = next(
        (
            v
            for v in (at(entity, "status"), at(entity, "metadata.status"), at(entity, "health"))
            if v
        ),
        None,
    )
    text = str(entity.get("chittyId", ""))
    if label:
        text += f" {json.dumps(label, ensure_ascii=False)}"
    if status:
        text += f" ({status})"
    return text


def show_written(verb: str, noun: str, record: Any, as_json: bool) -> None:
    """What a write made, in one line (the whole record with --json)."""
    if as_json:
        emit_json(record.model_dump(mode="json", by_alias=True))
        return
    console.print(Text(f"{verb} {noun} {summary(record.entity)}"), soft_wrap=True)


def show_record(title: str, record: Any, as_json: bool = False) -> None:
    """One entity: its fields as a table (a session's todos as a table of their own), its
    vector clock, log position and open conflicts; or the whole record as JSON."""
    body: dict[str, Any] = record.model_dump(mode="json", by_alias=True)
    if as_json:
        emit_json(body)
        return
    entity: dict[str, Any] = body["entity"]
    table = Table(title=f"{title} {entity.get('chittyId', '')}", show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value")
    todos = entity.get("todos") if isinstance(entity.get("todos"), list) else None
    for name, value in entity.items():
        if name == "todos" and todos:
            table.add_row(name, Text(f"{len(todos)} (below)"))
            continue
        table.add_row(name, cell(value))
    table.add_row("vectorClock", cell(body.get("vectorClock")))
    table.add_row("seq", cell(body.get("seq")))
    conflicts = body.get("conflicts") or []
    table.add_row("conflicts", Text(f"{len(conflicts)} open" if conflicts else "none"))
    console.print(table)
    if todos:
        console.print(entity_table(f"its {len(todos)} todos", todos, TODO_COLUMNS))
    for conflict in conflicts:
        values = ", ".join(json.dumps(v.get("value")) for v in conflict.get("versions") or [])
        console.print(
            Text(f"conflict {conflict.get('conflictId')} on {conflict.get('field')}: {values}")
        )
