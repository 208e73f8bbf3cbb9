"""The commands a `command` sync message may carry, and what each asks of whom.

A command names an entity (`payload.entity`) and says in `payload.entity.data` which command
(`command`) with which `arguments`. The hub runs `reconcile` itself (its answer goes to the
asker); every other command is relayed, like an `event`, to the subscribers and adapters its
`target` names, which carry it out. A command the hub does not know is refused with the list of
those it does: a typo must not be relayed to every client as if it meant something.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from pydantic import JsonValue

from hub.domains import SyncDomain


@dataclass(frozen=True, slots=True)
class CommandSpec:
    """One known command: what it does, on which domains (None: any), who runs it."""

    summary: str
    domains: frozenset[SyncDomain] | None = None
    hub_runs: bool = False  # False: relayed to its targets


COMMANDS: Mapping[str, CommandSpec] = {
    "reconcile": CommandSpec(
        "reconcile a project's todos (spec Example 2); the hub runs it and answers the mesh",
        frozenset({SyncDomain.PROJECTS}),
        hub_runs=True,
    ),
    "refresh": CommandSpec("targets reload the entity from the hub"),
    "open": CommandSpec("targets show the entity to their user"),
    "notify": CommandSpec("targets show `arguments.text` to their user about the entity"),
}


@dataclass(frozen=True, slots=True)
class CommandCall:
    """A checked command: its name, its arguments and its spec."""

    name: str
    arguments: Mapping[str, JsonValue]
    spec: CommandSpec


class UnknownCommand(ValueError):
    """A command the hub refuses; `field` is the wire path of the fault (under entity data)."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


def check_command(domain: SyncDomain, data: Mapping[str, JsonValue]) -> CommandCall:
    """The command `data` names, if the hub knows it for entities of `domain`."""
    name = data.get("command")
    known = ", ".join(sorted(COMMANDS))
    if not isinstance(name, str) or name not in COMMANDS:
        raise UnknownCommand("command", f"unknown command {name!r}; known: {known}")
    spec = COMMANDS[name]
    if spec.domains is not None and domain not in spec.domains:
        where = ", ".join(sorted(d.value for d in spec.domains))
        raise UnknownCommand("command", f"{name!r} applies to {where}, not {domain.value}")
    arguments = data.get("arguments", {})
    if not isinstance(arguments, dict):
        raise UnknownCommand("arguments", "must be an object")
    extra = sorted(set(data) - {"command", "arguments"})
    if extra:
        raise UnknownCommand(extra[0], "unknown field of a command (command, arguments)")
    if name == "notify" and not isinstance(arguments.get("text"), str):
        raise UnknownCommand("arguments.text", "notify needs the text to show")
    return CommandCall(name, arguments, spec)
