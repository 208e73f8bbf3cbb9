"""The hub's actors on Ray: made (or found, by name, in the hub's namespace) at start, placed
by `actors.placement`'s decisions, and stopped at shutdown. Reached through `actors.handles`."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

import ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from actors.handles import (
    AdapterHandle,
    BrokerHandle,
    CatalogHandle,
    HostHandle,
    RouterHandle,
    WatcherHandle,
)
from actors.placement import (
    dedicated_name,
    host_names,
    misplaced,
    node_for,
    placeable,
    rebalanced,
    starting_table,
)
from actors.ray_shell import (
    BROKER,
    ROUTER,
    WATCHER,
    AdapterActor,
    BrokerActor,
    CatalogActor,
    HostActor,
    RouterActor,
    WatchActor,
    adapter_name,
    shard_table_path,
)
from actors.ray_start import actor_exists
from hub.adapters import AdapterSpec
from hub.settings import HubSettings
from hub.shards import ShardTable

log = logging.getLogger(__name__)


def _alive_nodes() -> set[str]:
    return {str(n["NodeID"]) for n in ray.nodes() if n["Alive"]}  # type: ignore[no-untyped-call]


class Deployment:
    """The broker, the hosts, the catalog, the router actor, the adapters and the watcher of
    one hub, and its shard table (saved beside the data; the routers read it)."""

    def __init__(self, settings: HubSettings, adapters: Sequence[AdapterSpec] = ()) -> None:
        self.settings = settings
        self._options = {"namespace": settings.namespace, "get_if_exists": True}
        # The router, broker and catalog stay by this process (the head) when they can.
        here = NodeAffinitySchedulingStrategy(ray.get_runtime_context().get_node_id(), soft=True)
        central = {**self._options, "max_restarts": -1, "scheduling_strategy": here}
        json = settings.model_dump_json()
        self.broker = BrokerHandle(
            BrokerActor.options(name=BROKER, **central).remote(  # type: ignore[attr-defined]
                settings.stream_retention, settings.namespace
            )
        )
        self.hosts: dict[str, HostHandle] = {}
        self._node_of: dict[str, str] = {}  # host -> the node it was placed on
        names = host_names(settings.hosts)
        made = {name for name in names if not actor_exists(name, settings.namespace)}
        for name in names:
            self._spawn(name)
        path = shard_table_path(settings)
        table = starting_table(ShardTable.load(path), list(self.hosts), settings.shards)
        for name in set(table.dedicated.values()) - self.hosts.keys():
            if not actor_exists(name, settings.namespace):
                made.add(name)
            self._spawn(name)
        self._settle(made)
        table.save(path)
        self.table = table
        self.catalog = CatalogHandle(
            CatalogActor.options(name="catalog", **central).remote(json)  # type: ignore[attr-defined]
        )
        self.router = RouterHandle(
            RouterActor.options(name=ROUTER.format(0), **central).remote(json)  # type: ignore[attr-defined]
        )
        ray.get(self.router.refresh())
        # Every configured adapter is an actor of its own, restarted on failure.
        self.adapter_specs = {spec.name: spec for spec in adapters}
        self.adapters: dict[str, AdapterHandle] = {
            spec.name: AdapterHandle(
                AdapterActor.options(name=adapter_name(spec.name), **central).remote(  # type: ignore[attr-defined]
                    spec.name, spec.factory, json
                )
            )
            for spec in adapters
            if not spec.missing(settings.adapter_env)
        }
        # The watcher reads repos and checks services (`actors.watcher`).
        self.watcher = WatcherHandle(
            WatchActor.options(name=WATCHER, **central).remote(json)  # type: ignore[attr-defined]
        )

    def _spawn(self, name: str, node: str | None = None) -> HostHandle:
        # Soft affinity lets Ray restart a host elsewhere when its node goes away.
        node = node if node is not None else node_for(len(self.hosts), _alive_nodes())
        self._node_of[name] = node
        options: dict[str, Any] = {
            "name": name,
            "max_restarts": self.settings.host_max_restarts,
            "max_task_retries": 0,  # the router retries, and host dedupe makes that safe
            "scheduling_strategy": NodeAffinitySchedulingStrategy(node, soft=True),
            **self._options,
        }
        handle = HostHandle(
            HostActor.options(**options).remote(  # type: ignore[attr-defined]
                name, self.settings.model_dump_json()
            )
        )
        self.hosts[name] = handle
        return handle

    def _settle(self, made: set[str], tries: int = 3) -> None:
        """Move each host in `made` (new, still empty) onto the node chosen for it, while that
        node lives.

        Soft affinity (which lets a host restart elsewhere when its node dies) also gives way
        when the chosen node is not yet schedulable, e.g. a raylet that has just joined: such a
        host is stopped and made again. Hosts that were already running are never touched."""
        for _ in range(tries):
            names = placeable(made, self._node_of, _alive_nodes())
            placed = ray.get([self.hosts[name].node() for name in names])
            wrong = misplaced(self._node_of, dict(zip(names, placed, strict=True)))
            if not wrong:
                return
            for name in wrong:
                ray.kill(self.hosts.pop(name).actor, no_restart=True)
                deadline = time.monotonic() + 30
                while actor_exists(name, self.settings.namespace) and time.monotonic() < deadline:
                    time.sleep(0.1)
            for name in wrong:
                self._spawn(name, self._node_of[name])

    def wait_ready(self, timeout_s: float = 120.0) -> None:
        ray.get([h.pid() for h in self.hosts.values()], timeout=timeout_s)
        ray.get(self.broker.head(), timeout=timeout_s)
        ray.get(self.catalog.start(), timeout=timeout_s)
        ray.get([a.pid() for a in self.adapters.values()], timeout=timeout_s)
        ray.get(self.watcher.pid(), timeout=timeout_s)

    def publish_table(self, table: ShardTable) -> None:
        """Save `table` and have the router actor read it (in-process routers read it before
        their next batch)."""
        table.save(shard_table_path(self.settings))
        self.table = table
        ray.get(self.router.refresh())

    def place_dedicated(self, entity_id: str) -> str:
        """Give `entity_id` a Ray actor of its own (same entity code, its own mailbox)."""
        name = dedicated_name(entity_id)
        if self.table.dedicated.get(entity_id) == name:
            return name
        ray.get(self.hosts[self.table.host_of(entity_id)].passivate(entity_id))
        ray.get(self._spawn(name).pid())
        self.publish_table(self.table.with_dedicated(entity_id, name))
        return name

    def rebalance(self) -> ShardTable:
        """Spread shards over the hosts that answer; dead ones lose their shards."""
        answering = set()
        for name in sorted(set(self.table.hosts)):
            try:
                ray.get(self.hosts[name].pid(), timeout=10)
                answering.add(name)
            except Exception:
                log.warning("host %s does not answer: its shards move", name)
        table = rebalanced(self.table, answering)
        for host in set(table.hosts):
            ray.get(self.hosts[host].passivate())  # reload what moved, from the store
        self.publish_table(table)
        return table

    def stop(self) -> None:
        """Snapshot every entity, then stop every actor of the hub."""
        try:
            ray.get([h.passivate() for h in self.hosts.values()], timeout=120)
        except Exception as error:  # every acked write is already durable: stop anyway
            log.warning("snapshots at shutdown did not finish (%s); the log replays", error)
        finally:
            handles = [self.watcher, *self.adapters.values(), self.router, self.catalog]
            for handle in [*handles, *self.hosts.values(), self.broker]:
                ray.kill(handle.actor, no_restart=True)
