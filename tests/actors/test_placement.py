"""Placement decisions without Ray (`actors.placement`): what the deployment does follows."""

from __future__ import annotations

import pytest

from actors.placement import (
    dedicated_name,
    host_names,
    misplaced,
    node_for,
    placeable,
    rebalanced,
    starting_table,
)
from hub.shards import ShardTable


def test_hosts_take_the_live_nodes_in_turn_in_a_stable_order() -> None:
    alive = {"node-b", "node-a", "node-c"}
    assert [node_for(n, alive) for n in range(5)] == [
        "node-a",
        "node-b",
        "node-c",
        "node-a",
        "node-b",
    ]
    with pytest.raises(RuntimeError, match="no live Ray node"):
        node_for(0, set())


def test_a_first_start_builds_the_table_a_restart_keeps_it_and_new_hosts_respread_it() -> None:
    built = starting_table(None, ["host-1", "host-0"], shards=8)
    assert built.hosts == ("host-0", "host-1") and built.shards == 8 and built.version == 1
    assert starting_table(built, ["host-0", "host-1"], shards=8) is built
    placed = built.with_dedicated("CHITTY-PROJ-X", dedicated_name("CHITTY-PROJ-X"))
    grown = starting_table(placed, host_names(3), shards=8)
    assert grown.hosts == ("host-0", "host-1", "host-2")
    assert grown.version == placed.version + 1
    assert grown.shards == 8
    assert grown.host_of("CHITTY-PROJ-X") == "dedicated-CHITTY-PROJ-X"  # kept


def test_only_new_hosts_on_live_nodes_are_checked_and_those_elsewhere_are_made_again() -> None:
    chosen = {"host-0": "a", "host-1": "b", "host-2": "dead"}
    assert placeable({"host-2", "host-1"}, chosen, alive={"a", "b"}) == ["host-1"]
    assert misplaced(chosen, {"host-0": "a", "host-1": "a"}) == ["host-1"]
    assert misplaced(chosen, {"host-0": "a", "host-1": "b"}) == []


def test_rebalancing_moves_the_shards_of_hosts_that_do_not_answer() -> None:
    table = ShardTable.build(host_names(3), 12)
    after = rebalanced(table, answering={"host-0", "host-2"})
    assert set(after.owners) == {"host-0", "host-2"}
    assert after.version == table.version + 1
    assert table.moved(after) == [s for s, owner in enumerate(table.owners) if owner == "host-1"]
