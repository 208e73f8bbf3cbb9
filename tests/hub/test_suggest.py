"""Merge suggestions: one rule per multi-value field, the reason says which, none where people
must choose."""

from __future__ import annotations

from hub.domains import DOMAINS
from hub.fields import policy_table
from hub.models.base import Policy
from hub.models.todo import TodoStatus
from hub.suggest import RULES, suggest


def test_a_todo_status_takes_the_most_advanced_as_reconciliation_does() -> None:
    found = suggest("todos", "status", ["blocked", "completed"])
    assert found is not None and found.value == "completed" and found.by == "rule"
    assert "most advanced status" in found.reason and '"blocked"' in found.reason
    again = suggest("todos", "status", ["in_progress", "pending"])
    assert again is not None and again.value == "in_progress"


def test_every_todo_status_is_ranked() -> None:
    for status in TodoStatus:
        found = suggest("todos", "status", [status.value])
        assert found is not None and found.value == status.value


def test_priority_deadline_and_statuses_elsewhere() -> None:
    assert suggest("todos", "metadata.priority", ["low", "critical", "high"]).value == "critical"  # type: ignore[union-attr]
    earliest = suggest("todos", "deadline", ["2026-12-09T00:00:00Z", "2026-12-07T00:00:00Z"])
    assert earliest is not None and earliest.value == "2026-12-07T00:00:00Z"
    assert suggest("projects", "status", ["on-hold", "active"]).value == "on-hold"  # type: ignore[union-attr]
    assert suggest("topics", "metadata.status", ["active", "closed"]).value == "closed"  # type: ignore[union-attr]


def test_no_rule_for_owners_and_unknown_values() -> None:
    assert suggest("projects", "metadata.owner", ["CHITTY-USER-A", "CHITTY-USER-B"]) is None
    assert suggest("todos", "status", ["teleported"]) is None
    assert suggest("todos", "deadline", [None]) is None


def test_texts_keep_both_edits_unless_one_holds_the_other() -> None:
    held = suggest("notes", "body", ["Fix the parser", "Fix the parser today"])
    assert held is not None and held.value == "Fix the parser today"
    both = suggest("notes", "body", ["Fix the parser", "Ship the export"])
    assert both is not None and both.value == "Fix the parser\nShip the export"
    assert "both edits" in both.reason


def test_every_multi_value_field_has_a_rule_or_says_it_has_none() -> None:
    """A field added with Policy.MV must decide here how its conflicts are suggested."""
    for domain, spec in DOMAINS.items():
        for path, field in policy_table(spec.model).fields.items():
            if field.policy is Policy.MV:
                assert (domain.value, path) in RULES, (domain.value, path)
