"""Start (or join) a hub on Ray: the broker, the hosts, the router and the shard table.

`Runtime.start` uses an embedded local Ray by default, or joins `settings.ray_address`
(`CHITTY_RAY_ADDRESS`). Actors are named in the hub's namespace, so a second process can
`Runtime.start` with the same settings and attach to the running hub instead of making a new one.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable, Sequence
from typing import Any

import ray
from ray.exceptions import ActorUnavailableError, RayActorError
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from actors.broker import Poll, decode_poll
from actors.host import HostMetrics
from actors.ray_shell import (
    BROKER,
    ROUTER,
    BrokerActor,
    CatalogActor,
    HostActor,
    RayHostClient,
    RouterActor,
    shard_table_path,
)
from actors.reconciler import ReconcileReport
from actors.router import HostUnavailable, Router
from hub.catalog import Page, Query
from hub.domains import SyncDomain
from hub.entity import EntityView
from hub.envelope import Envelope, Outcome
from hub.erasure import Erased
from hub.ids import IdGenerator, Kind
from hub.protocol import SyncMessage
from hub.settings import HubSettings
from hub.shards import ShardTable
from hub.startup import prepare
from hub.subscriptions import Filter

log = logging.getLogger(__name__)
RESTARTING = (ActorUnavailableError, RayActorError)


def host_name(index: int) -> str:
    return f"host-{index}"


LOCAL_RAY_CONFIG: dict[str, Any] = {
    # Ray starts its workers at nice 15, below the gateway's process (the driver) and any load
    # generator beside it: once the cores are busy the hosts, the hub's serial stage, get a
    # fraction of a core (CFS weights 36 against 1024). At 0: 1,673 msgs/s against 1,390-1,511
    # on a contended machine, +3 % on a quiet one (BENCHMARKS.md, eighth pass). The actors are
    # the service: they run at the driver's nice.
    # A Ray started by `ray start` needs `RAY_worker_niceness=0` in its environment instead.
    "worker_niceness": 0,
}
"""`_system_config` of every local Ray the hub starts (`init_ray`)."""


def init_ray(address: str | None = None, **options: Any) -> None:
    """Join the Ray at `address`, or start a local one of our own (None: never a stranger's
    Ray found on this machine) with `LOCAL_RAY_CONFIG`; no dashboard, and Ray's logging left
    to itself. What `Runtime.start`, the tests' session and the benchmarks all start."""
    ray.init(
        address=address or "local",
        include_dashboard=False,
        log_to_driver=False,
        configure_logging=False,
        _system_config=None if address else LOCAL_RAY_CONFIG,
        **options,
    )


class Runtime:
    """A handle on a running hub: submit messages, read entities, follow the stream."""

    def __init__(self, settings: HubSettings, started_ray: bool) -> None:
        self.settings = settings
        self._started_ray = started_ray
        self._options = {"namespace": settings.namespace, "get_if_exists": True}
        # The router, broker and catalog stay by this process (the head) when they can.
        here = NodeAffinitySchedulingStrategy(ray.get_runtime_context().get_node_id(), soft=True)
        self._central = {**self._options, "max_restarts": -1, "scheduling_strategy": here}
        self.broker: Any = BrokerActor.options(  # type: ignore[attr-defined]
            name=BROKER, **self._central
        ).remote(settings.stream_retention, settings.namespace)
        self.hosts: dict[str, Any] = {}
        self._node_of: dict[str, str] = {}  # host -> the node it was placed on
        names = [host_name(index) for index in range(settings.hosts)]
        made = {name for name in names if not _exists(name, settings.namespace)}
        for name in names:
            self._spawn(name)
        path = shard_table_path(settings)
        saved = ShardTable.load(path)
        wanted = sorted(self.hosts)
        if saved is None:
            table = ShardTable.build(wanted, settings.shards)
        elif sorted(saved.hosts) != wanted:
            table = saved.with_hosts(wanted)
        else:
            table = saved
        for name in set(table.dedicated.values()) - self.hosts.keys():
            if not _exists(name, settings.namespace):
                made.add(name)
            self._spawn(name)
        self._settle(made)
        table.save(path)
        self.table = table
        self.catalog: Any = CatalogActor.options(  # type: ignore[attr-defined]
            name="catalog", **self._central
        ).remote(settings.model_dump_json())
        self.router: Any = RouterActor.options(  # type: ignore[attr-defined]
            name=ROUTER.format(0), **self._central
        ).remote(settings.model_dump_json())
        ray.get(self.router.refresh.remote())
        # This process routes its own writes straight to the hosts (one Ray call per host per
        # batch) with a `Router` of its own over the same shard table; the router actor serves
        # the hosts' own calls (the reconciler) and anyone without a Runtime.
        self._client = RayHostClient(settings.namespace)
        self._client.resolve(table)
        self._local: Router | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._table_stamp: tuple[int, int] | None = None

    def _spawn(self, name: str, node: str | None = None) -> Any:
        # Hosts take the live nodes in turn (Ray's SPREAD is only a hint for 0-CPU actors);
        # soft affinity lets Ray restart a host elsewhere when its node goes away.
        if node is None:
            nodes = sorted(n["NodeID"] for n in ray.nodes() if n["Alive"])
            node = nodes[len(self.hosts) % len(nodes)]
        self._node_of[name] = node
        options: dict[str, Any] = {
            "name": name,
            "max_restarts": self.settings.host_max_restarts,
            "max_task_retries": 0,  # the router retries, and host dedupe makes that safe
            "scheduling_strategy": NodeAffinitySchedulingStrategy(node, soft=True),
            **self._options,
        }
        handle = HostActor.options(**options).remote(  # type: ignore[attr-defined]
            name, self.settings.model_dump_json()
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
            alive = {n["NodeID"] for n in ray.nodes() if n["Alive"]}
            placeable = [name for name in sorted(made) if self._node_of[name] in alive]
            placed = ray.get([self.hosts[name].node.remote() for name in placeable])
            misplaced = [
                name
                for name, node in zip(placeable, placed, strict=True)
                if node != self._node_of[name]
            ]
            if not misplaced:
                return
            for name in misplaced:
                ray.kill(self.hosts.pop(name), no_restart=True)
                deadline = time.monotonic() + 30
                while _exists(name, self.settings.namespace) and time.monotonic() < deadline:
                    time.sleep(0.1)
            for name in misplaced:
                self._spawn(name, self._node_of[name])

    @classmethod
    def start(cls, settings: HubSettings, prepared: bool = False) -> Runtime:
        """Start (or attach to) the hub described by `settings`, after `hub.startup.prepare`
        (unless the caller has `prepared` it): `StartRefused` says why it will not start."""
        if not prepared:
            for note in prepare(settings):
                log.warning("%s", note)
        started = False
        if not ray.is_initialized():
            init_ray(settings.ray_address, namespace=settings.namespace)
            started = settings.ray_address is None
        runtime = cls(settings, started)
        runtime.wait_ready()
        return runtime

    def wait_ready(self, timeout_s: float = 120.0) -> None:
        ray.get([h.pid.remote() for h in self.hosts.values()], timeout=timeout_s)
        ray.get(self.broker.head.remote(), timeout=timeout_s)
        ray.get(self.catalog.start.remote(), timeout=timeout_s)

    # -- messages ---------------------------------------------------------------------------

    async def submit(
        self, messages: Sequence[SyncMessage], with_entity: bool = False
    ) -> list[Outcome]:
        """Route messages through the router; every `applied` outcome is durable.

        `with_entity` asks for each entity's view in the outcomes (what a REST answer shows).
        """
        return await self.route([Envelope.of(m, with_entity=with_entity) for m in messages])

    async def route(self, envelopes: Sequence[Envelope]) -> list[Outcome]:
        """Straight to the owning hosts, by this process's router (see `_router`)."""
        return await self._router().route(envelopes)

    def _router(self) -> Router:
        """The in-process router, on the shard table as saved now.

        A table saved by any process (placement, rebalance) is picked up before the next batch:
        one `stat` of the table file per batch. A router serves one event loop (its conditions
        bind to it), so a call from another loop gets a fresh one; the hosts' dedupe keeps
        outcomes exact whichever router remembers what.
        """
        path = shard_table_path(self.settings)
        try:
            seen = os.stat(path)
            stamp = (seen.st_mtime_ns, seen.st_ino)
        except FileNotFoundError:
            stamp = None
        loop = asyncio.get_running_loop()
        local = self._local
        if local is None or self._loop is not loop:
            local = self._local = Router(path, self.settings, self._client)
            self._loop = loop
            self._client.resolve(local.table)
        elif stamp != self._table_stamp:
            local.refresh()
            self._client.resolve(local.table)
        self._table_stamp = stamp
        return local

    def host_of(self, entity_id: str) -> Any:
        return self.hosts[self.table.host_of(entity_id)]

    async def _read(self, entity_id: str, call: Callable[[Any], Any]) -> Any:
        """`call(host)` on the entity's host, retried while that host restarts (as writes are,
        in the router) for up to `call_timeout_s`; then `HostUnavailable`."""
        deadline = time.monotonic() + self.settings.call_timeout_s
        delay = 0.05
        while True:
            try:
                return await call(self.host_of(entity_id))
            except RESTARTING as error:
                if time.monotonic() + delay > deadline:
                    raise HostUnavailable(
                        f"the host of {entity_id} is unavailable: {type(error).__name__}"
                    ) from None
                await asyncio.sleep(delay)
                delay = min(delay * 2, 1.0)

    async def get(self, entity_id: str) -> EntityView | None:
        found: EntityView | None = await self._read(
            entity_id, lambda host: host.get.remote(entity_id)
        )
        return found

    async def state_at(
        self, entity_id: str, timestamp_ms: int | None = None, seq: int | None = None
    ) -> EntityView | None:
        """The entity as of a time, or right after its event `seq`."""
        found: EntityView | None = await self._read(
            entity_id, lambda host: host.state_at.remote(entity_id, timestamp_ms, seq)
        )
        return found

    async def history(self, entity_id: str) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = await self._read(
            entity_id, lambda host: host.history.remote(entity_id)
        )
        return found

    async def reconcile(
        self, project_id: str, caller: str, dry_run: bool = False
    ) -> ReconcileReport:
        """Spec Example 2, run by the project's own actor; its writes are `caller`'s."""
        report: ReconcileReport = await self.host_of(project_id).reconcile.remote(
            project_id, caller, dry_run=dry_run
        )
        return report

    async def poll(
        self,
        epoch: str | None,
        after: int,
        wanted: Filter,
        limit: int = 1000,
        wait_s: float = 0.0,
    ) -> Poll:
        """Events of the stream after (`epoch`, `after`); they travel encoded, decoded here."""
        return decode_poll(
            await self.broker.poll_encoded.remote(epoch, after, wanted, limit, wait_s)
        )

    async def list(self, query: Query) -> Page:
        """A page of entities of one domain (read-your-writes: the catalog catches up first)."""
        page: Page = await self.catalog.query.remote(query)
        return page

    async def conflicts(
        self, domain: SyncDomain | None = None, visible_to: str | None = None
    ) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = await self.catalog.conflicts.remote(domain, visible_to)
        return found

    async def mentions(self, principal: str) -> list[str]:
        """Every entity whose stored log or snapshot names `principal` (a full scan)."""
        found = await asyncio.gather(*(h.mentions.remote(principal) for h in self.hosts.values()))
        return sorted(set().union(*found))

    async def erase(self, principal: str) -> dict[str, Any]:
        """Erase `principal` from every store and buffer of the hub (see hub.erasure)."""
        pseudonym = IdGenerator("erasure", lambda: time.time_ns() // 1_000_000).new(Kind.USER)
        whole = frozenset(await self.catalog.owned_only_by.remote(principal))
        erased: list[Erased] = []
        # Each node's hosts share its store: every host drops what it holds in memory and
        # erases (the first on a node does the work). A second pass catches a snapshot some
        # host wrote from memory before its first.
        for _ in range(2):
            for handle in self.hosts.values():
                erased.append(await handle.erase.remote(principal, pseudonym, whole))
        rows = await self.catalog.erase.remote(principal, pseudonym, whole)
        await self.broker.erase.remote(principal, pseudonym, whole)
        return {
            "pseudonym": pseudonym,
            "erasedEntities": sorted(whole),
            "rewrittenEvents": sum(e.rewritten for e in erased),
            "droppedSnapshots": sum(e.snapshots for e in erased),
            "droppedOutcomes": sum(e.outcomes for e in erased),
            "rewrittenRows": rows,
        }

    async def health(self, timeout_s: float = 5.0) -> dict[str, bool]:
        """Which of the hub's actors answer within `timeout_s` (router, broker, catalog, hosts)."""
        checks: dict[str, Any] = {
            "router": self.router.retries.remote(),
            "broker": self.broker.head.remote(),
            "catalog": self.catalog.marks.remote(),
            **{name: handle.pid.remote() for name, handle in self.hosts.items()},
        }
        result: dict[str, bool] = {}
        for name, ref in checks.items():
            try:
                await asyncio.wait_for(ref, timeout_s)
                result[name] = True
            except Exception:
                result[name] = False
        return result

    async def metrics(self) -> dict[str, HostMetrics]:
        names = list(self.hosts)
        values = await asyncio.gather(*(self.hosts[n].metrics.remote() for n in names))
        return dict(zip(names, values, strict=True))

    # -- placement --------------------------------------------------------------------------

    def _publish_table(self, table: ShardTable) -> None:
        table.save(shard_table_path(self.settings))
        self.table = table
        ray.get(self.router.refresh.remote())
        self._client.resolve(table)  # the in-process router reloads it before its next batch

    def place_dedicated(self, entity_id: str) -> str:
        """Give `entity_id` a Ray actor of its own (same entity code, its own mailbox)."""
        name = f"dedicated-{entity_id}"
        if self.table.dedicated.get(entity_id) == name:
            return name
        ray.get(self.host_of(entity_id).passivate.remote(entity_id))
        handle = self._spawn(name)
        ray.get(handle.pid.remote())
        self._publish_table(self.table.with_dedicated(entity_id, name))
        return name

    def rebalance(self) -> ShardTable:
        """Spread shards over the hosts that answer; dead ones lose their shards."""
        alive = []
        for name in sorted(set(self.table.hosts)):
            try:
                ray.get(self.hosts[name].pid.remote(), timeout=10)
                alive.append(name)
            except Exception:
                log.warning("host %s does not answer: its shards move", name)
        table = self.table.with_hosts(alive)
        for host in set(table.hosts):
            ray.get(self.hosts[host].passivate.remote())  # reload what moved, from the store
        self._publish_table(table)
        return table

    def shutdown(self) -> None:
        """Snapshot every entity, stop the hub's actors, and Ray if this runtime started it."""
        try:
            ray.get([h.passivate.remote() for h in self.hosts.values()], timeout=120)
        except Exception as error:  # every acked write is already durable: stop anyway
            log.warning("snapshots at shutdown did not finish (%s); the log replays", error)
        finally:
            for handle in [self.router, self.catalog, *self.hosts.values(), self.broker]:
                ray.kill(handle, no_restart=True)
            if self._started_ray:
                ray.shutdown()


def _exists(name: str, namespace: str) -> bool:
    """Whether a named actor is registered (alive or restarting)."""
    try:
        ray.get_actor(name, namespace=namespace)
    except ValueError:
        return False
    return True
