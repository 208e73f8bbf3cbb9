"""Merge suggestions for open multi-value conflicts (spec §Conflict Resolution, MVR: "AI-assisted
merge suggestions"): a deterministic rule per field, with the reason a person can check.

Suggesting changes nothing: the conflict stays open until someone accepts the suggestion (or
any other value) through the resolve path, like any resolution. The rules follow the hub's own
merges where one exists (a todo's status: the most advanced, as reconciliation does)."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from hub.models.project import ProjectStatus
from hub.models.todo import Priority, TodoStatus
from hub.models.topic import TopicStatus
from hub.reconcile import STATUS_RANK

RULE = "rule"


@dataclass(frozen=True, slots=True)
class Suggestion:
    """A value that would settle a conflict, why, and who suggested it (`rule`, or a model)."""

    value: Any
    reason: str
    by: str = RULE

    def wire(self) -> dict[str, Any]:
        return {"value": self.value, "reason": self.reason, "by": self.by}


def _ranked(order: Sequence[str], what: str) -> Callable[[list[Any]], Suggestion | None]:
    def rule(values: list[Any]) -> Suggestion | None:
        known = [v for v in values if v in order]
        if not known:
            return None
        best = max(known, key=order.index)
        return Suggestion(best, f"the {what} of {_listed(values)}")

    return rule


TODO_STATUS = [s.value for s in sorted(STATUS_RANK, key=STATUS_RANK.__getitem__)]
PRIORITY = [Priority.LOW.value, Priority.MEDIUM.value, Priority.HIGH.value, Priority.CRITICAL.value]
PROJECT_STATUS = [s.value for s in ProjectStatus]  # planning, active, on-hold, completed
TOPIC_STATUS = [TopicStatus.ACTIVE.value, TopicStatus.ARCHIVED.value, TopicStatus.CLOSED.value]


def _earliest(values: list[Any]) -> Suggestion | None:
    dated = sorted(v for v in values if isinstance(v, str))
    if not dated:
        return None
    return Suggestion(dated[0], f"the earliest deadline of {_listed(values)}: nobody misses it")


# (domain, field) -> rule; a field without one gets the text rule or none.
RULES: Mapping[tuple[str, str], Callable[[list[Any]], Suggestion | None]] = {
    ("todos", "status"): _ranked(TODO_STATUS, "most advanced status (as reconciliation merges)"),
    ("todos", "metadata.priority"): _ranked(PRIORITY, "highest priority"),
    ("todos", "deadline"): _earliest,
    ("projects", "status"): _ranked(PROJECT_STATUS, "most advanced status"),
    ("topics", "metadata.status"): _ranked(TOPIC_STATUS, "most final status"),
    ("projects", "metadata.owner"): lambda values: None,  # who owns a project is for people to say
}
assert set(TODO_STATUS) == {s.value for s in TodoStatus}  # a new status needs a rank


def suggest(domain: str, field: str, values: Sequence[Any]) -> Suggestion | None:
    """The rule's suggestion for the concurrent `values` of `field` in `domain`; None when no
    rule applies (the person chooses)."""
    found = list(values)
    rule = RULES.get((domain, field))
    if rule is not None:
        return rule(found)
    if found and all(isinstance(v, str) for v in found):
        return _texts(found)
    return None


def _texts(values: list[str]) -> Suggestion:
    longest = max(values, key=lambda v: (len(v), v))
    if all(v in longest for v in values):
        return Suggestion(longest, "the longest text already holds the others")
    return Suggestion(
        "\n".join(values), "no text holds the others: both edits, one after the other"
    )


def _listed(values: Sequence[Any]) -> str:
    return ", ".join(json.dumps(v) for v in values)
