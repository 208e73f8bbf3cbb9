"""Where the hub's hosts go: plain decisions, no Ray (as Ray Serve keeps its state managers free
of Ray calls). `actors.deployment` asks these questions and does what they answer."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence

from hub.shards import ShardTable


def host_name(index: int) -> str:
    return f"host-{index}"


def host_names(count: int) -> list[str]:
    """The names of a hub's `count` shared hosts."""
    return [host_name(index) for index in range(count)]


def dedicated_name(entity_id: str) -> str:
    """The name of the host an entity placed on its own gets."""
    return f"dedicated-{entity_id}"


def node_for(placed: int, alive: Collection[str]) -> str:
    """The node the next host goes on, `placed` hosts having gone before: the live nodes in
    turn, in a stable order (Ray's SPREAD is only a hint for actors that take no CPU)."""
    if not alive:
        raise RuntimeError("no live Ray node to place a host on")
    nodes = sorted(alive)
    return nodes[placed % len(nodes)]


def starting_table(saved: ShardTable | None, hosts: Sequence[str], shards: int) -> ShardTable:
    """The shard table a starting hub uses: the saved one, its shards spread anew when the
    shared hosts changed (a first start builds one)."""
    wanted = sorted(hosts)
    if saved is None:
        return ShardTable.build(wanted, shards)
    if sorted(saved.hosts) != wanted:
        return saved.with_hosts(wanted)
    return saved


def placeable(
    made: Collection[str], chosen: Mapping[str, str], alive: Collection[str]
) -> list[str]:
    """The new hosts whose chosen node lives (a host on a node that died stays where Ray put
    it), in name order."""
    return [name for name in sorted(made) if chosen[name] in alive]


def misplaced(chosen: Mapping[str, str], placed: Mapping[str, str]) -> list[str]:
    """The hosts that are not on the node chosen for them (soft affinity gave way: the node was
    not yet schedulable), to be stopped and made again; in name order."""
    return [name for name in sorted(placed) if placed[name] != chosen[name]]


def rebalanced(table: ShardTable, answering: Collection[str]) -> ShardTable:
    """The table with every shard on a host that answers: dead hosts lose theirs."""
    return table.with_hosts(sorted(name for name in set(table.hosts) if name in answering))
