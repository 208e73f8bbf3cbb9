"""The shard table: stable placement, minimal movement, atomic persistence."""

from __future__ import annotations

from pathlib import Path

import pytest

from hub.shards import ShardTable, ShardTableError, shard_of


def test_every_shard_has_a_live_owner_and_lookups_are_stable() -> None:
    table = ShardTable.build(["host-0", "host-1", "host-2"], 256)
    assert set(table.owners) == {"host-0", "host-1", "host-2"}
    assert table.host_of("CHITTY-TODO-1") == table.host_of("CHITTY-TODO-1")
    assert 0 <= shard_of("CHITTY-TODO-1", 256) < 256
    # Spread roughly evenly.
    counts = [table.owners.count(h) for h in table.hosts]
    assert min(counts) > 256 / 3 * 0.6


def test_losing_a_host_moves_only_its_shards() -> None:
    table = ShardTable.build(["a", "b", "c", "d"], 256)
    smaller = table.with_hosts(["a", "b", "c"])
    assert smaller.version == table.version + 1
    moved = table.moved(smaller)
    assert moved and all(table.owners[s] == "d" for s in moved)
    assert "d" not in smaller.owners


def test_dedicated_placement_overrides_the_shard_and_survives_rebalancing() -> None:
    table = ShardTable.build(["a", "b"], 16).with_dedicated("CHITTY-PROJ-1", "dedicated-1")
    assert table.host_of("CHITTY-PROJ-1") == "dedicated-1"
    assert table.with_hosts(["a"]).host_of("CHITTY-PROJ-1") == "dedicated-1"
    back = table.with_dedicated("CHITTY-PROJ-1", None)
    assert back.host_of("CHITTY-PROJ-1") in ("a", "b")


def test_save_and_load_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "shards.json"
    assert ShardTable.load(path) is None
    table = ShardTable.build(["a", "b"], 32).with_dedicated("CHITTY-TODO-9", "solo")
    table.save(path)
    assert ShardTable.load(path) == table
    assert list(path.parent.iterdir()) == [path]  # no temporary file left behind


@pytest.mark.parametrize(
    "text",
    [
        "not json",
        '{"version": 1}',
        '{"version": 1, "hosts": ["a"], "owners": ["b"], "dedicated": {}}',
    ],
)
def test_a_damaged_table_is_refused_clearly(text: str) -> None:
    with pytest.raises(ShardTableError):
        ShardTable.from_json(text)


def test_a_table_needs_hosts_and_shards() -> None:
    with pytest.raises(ShardTableError, match="at least one host"):
        ShardTable.build([], 8)
    with pytest.raises(ShardTableError, match="shards"):
        ShardTable.build(["a"], 0)
