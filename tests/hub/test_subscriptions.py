"""Published messages: who they reach, how outboxes store them, what a closed conflict says."""

from __future__ import annotations

import msgpack
import pytest

from hub.commands import UnknownCommand, check_command
from hub.domains import SyncDomain
from hub.entity import apply
from hub.subscriptions import (
    EVERYONE,
    Published,
    Reach,
    decode_published,
    encode_published,
    publication,
)
from tests.hub.test_entity import created, message


@pytest.mark.parametrize(
    ("reach", "node", "platform", "expected"),
    [
        (EVERYONE, None, None, True),
        (Reach(broadcast=False), "n", "web", False),
        (Reach(node_ids=("n1",)), "n1", None, True),
        (Reach(node_ids=("n1",)), "n2", "web", False),
        (Reach(platforms=("web",)), "n2", "web", True),
        (Reach(platforms=("web",)), "n2", None, False),  # an undeclared platform is none
        (Reach(False, ("n1",), ("slack",)), "n1", "web", True),  # either list is enough
    ],
)
def test_a_target_decides_who_receives(
    reach: Reach, node: str | None, platform: str | None, expected: bool
) -> None:
    assert reach.reaches(node, platform) is expected


def published(**extra: object) -> Published:
    item = Published(
        0, SyncDomain.TODOS, "CHITTY-TODO-1", "event", 3, "m1", "web", "node", None, None, None,
        {"a": 3}, (), {"content": "x"}, (), 1000,
    )  # fmt: skip
    return item._replace(**extra)


def test_publications_round_trip_with_their_target_data_and_resolved_conflicts() -> None:
    item = published(
        reach=Reach(False, ("n1",), None),
        data={"kind": "reviewed"},
        resolved_conflicts=({"conflictId": "CHITTY-CONFLICT-1"},),
    )
    assert decode_published(encode_published(item)) == item


def test_an_outbox_entry_from_before_targets_reaches_everyone() -> None:
    old = msgpack.unpackb(encode_published(published()), raw=False)[:16]
    decoded = decode_published(msgpack.packb(old, use_bin_type=True))
    assert decoded.reach == EVERYONE and decoded.data is None
    assert decoded.resolved_conflicts == ()


def test_a_resolving_write_publishes_the_conflict_as_it_closed() -> None:
    base = created()
    one = apply(base, message("b", {"a": 1, "b": 1}, data={"status": "completed"})).state
    both = apply(one, message("c", {"a": 1, "c": 1}, data={"status": "blocked"}))
    assert both.state is not None and both.conflicts
    settle = message("d", {"a": 1, "b": 1, "c": 1, "d": 1}, data={"status": "completed"})
    result = apply(both.state, settle)
    assert result.state is not None
    [event] = result.events
    item = publication(event, result.state, 4, before=both.state)
    [closed] = item.resolved_conflicts
    assert closed["conflictId"] == both.conflicts[0].conflict_id
    assert closed["resolution"] == {
        "strategy": "manual",
        "winnerId": settle.id,
        "mergedState": "completed",
        "pending": False,
    }
    assert {v["value"] for v in closed["versions"]} == {"completed", "blocked"}  # type: ignore[index,union-attr]


def test_commands_are_checked_against_the_known_ones() -> None:
    assert check_command(SyncDomain.TODOS, {"command": "refresh"}).spec.hub_runs is False
    call = check_command(SyncDomain.PROJECTS, {"command": "reconcile"})
    assert call.spec.hub_runs and call.arguments == {}
    for domain, data, field in [
        (SyncDomain.TODOS, {"command": "reboot"}, "command"),
        (SyncDomain.TODOS, {}, "command"),
        (SyncDomain.TODOS, {"command": "reconcile"}, "command"),  # projects only
        (SyncDomain.TODOS, {"command": "notify", "arguments": {}}, "arguments.text"),
        (SyncDomain.TODOS, {"command": "open", "arguments": []}, "arguments"),
        (SyncDomain.TODOS, {"command": "open", "extra": 1}, "extra"),
    ]:
        with pytest.raises(UnknownCommand) as error:
            check_command(domain, data)
        assert error.value.field == field
    with pytest.raises(UnknownCommand, match="known: notify, open, reconcile, refresh"):
        check_command(SyncDomain.TODOS, {"command": "reboot"})
