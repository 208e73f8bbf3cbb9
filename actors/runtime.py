"""Start (or join) a hub on Ray: the broker, the hosts, the router and the shard table.

`Runtime.start` uses an embedded local Ray by default, or joins `settings.ray_address`
(`CHITTY_RAY_ADDRESS`). Actors are named in the hub's namespace, so a second process can
`Runtime.start` with the same settings and attach to the running hub instead of making a new one.
"""

from __future__ import annotations

import asyncio
import builtins
import hashlib
import logging
import os
import shutil
import stat
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import ray
from ray.exceptions import ActorUnavailableError, RayActorError
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from actors.adapter import Answer, SyncReport
from actors.broker import Poll, decode_poll
from actors.host import HostMetrics
from actors.ray_shell import (
    BROKER,
    ROUTER,
    WATCHER,
    AdapterActor,
    BrokerActor,
    CatalogActor,
    HostActor,
    RayHostClient,
    RayOutboxes,
    RouterActor,
    WatchActor,
    adapter_name,
    shard_table_path,
)
from actors.reconciler import ReconcileReport
from actors.router import HostUnavailable, Router
from actors.watcher import Checked
from hub.adapters import AdapterSpec, AdapterState, AdapterStatus, Inbound
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


def init_ray(
    address: str | None = None,
    temp_dir: str | None = None,
    dashboard: bool = False,
    **options: Any,
) -> Any:
    """Join the Ray at `address`, or start a local one of our own (None: never a stranger's
    Ray found on this machine) with `LOCAL_RAY_CONFIG`, its session files in `temp_dir`
    (default Ray's, /tmp/ray); no dashboard unless asked, and Ray's logging left to itself.
    What `Runtime.start`, the tests' session and the benchmarks all start. Ray's context."""
    local = {"_temp_dir": temp_dir} if temp_dir is not None and not address else {}
    return ray.init(
        address=address or "local",
        include_dashboard=dashboard,
        log_to_driver=False,
        configure_logging=False,
        _system_config=None if address else LOCAL_RAY_CONFIG,
        **local,
        **options,
    )


# An AF_UNIX socket path holds at most 107 bytes; Ray puts its sockets at
# <temp>/session_<date>_<time>_<micros>_<pid>/sockets/plasma_store (64 bytes after <temp> with
# a 7-digit pid), so a longer temp dir is reached through a short link.
SOCKET_PATH_ROOM = 107 - 66


class RayTempDir:
    """Where an embedded Ray keeps its session (sockets, logs, spilled objects): `<data dir>/ray`,
    emptied when the hub starts (a crashed run's leftovers) and removed on a clean stop. When
    that path is too long for Ray's sockets, Ray is given a short link to it, in a directory of
    the system's temp dir that is this user's own and named after the data dir (a restart after
    a crash takes the same one over)."""

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir.absolute() / "ray"
        self._link_dir: Path | None = None

    def prepare(self) -> str:
        """Make the directory (empty) and answer the path Ray should use for it."""
        shutil.rmtree(self.path, ignore_errors=True)
        self.path.mkdir(parents=True)
        if len(str(self.path)) <= SOCKET_PATH_ROOM:
            return str(self.path)
        digest = hashlib.sha256(f"{os.getuid()}:{self.path}".encode()).hexdigest()[:12]
        home = Path(tempfile.gettempdir()) / f"chitty-{digest}"
        _forget_dangling(home.parent)
        try:
            home.mkdir(mode=0o700)
        except FileExistsError:
            found = home.lstat()
            theirs = found.st_uid != os.getuid() or found.st_mode & 0o077
            if not stat.S_ISDIR(found.st_mode) or theirs:
                raise RuntimeError(f"{home} is not this user's private directory") from None
        link = home / "ray"
        link.unlink(missing_ok=True)
        link.symlink_to(self.path, target_is_directory=True)
        self._link_dir = home
        return str(link)

    def remove(self) -> None:
        """Remove the session files (Ray has stopped) and the link to them."""
        shutil.rmtree(self.path, ignore_errors=True)
        if self._link_dir is not None:
            shutil.rmtree(self._link_dir, ignore_errors=True)  # the link, not what it names
            self._link_dir = None


def _forget_dangling(temp: Path) -> None:
    """Remove this user's links left by hubs that were killed and whose data dir is gone."""
    for home in temp.glob("chitty-" + "[0-9a-f]" * 12):
        link = home / "ray"
        try:
            if home.lstat().st_uid == os.getuid() and link.is_symlink() and not link.exists():
                shutil.rmtree(home, ignore_errors=True)
        except OSError:
            continue


class Runtime:
    """A handle on a running hub: submit messages, read entities, follow the stream."""

    def __init__(
        self,
        settings: HubSettings,
        started_ray: bool,
        adapters: Sequence[AdapterSpec] = (),
        temp_dir: RayTempDir | None = None,
    ) -> None:
        self.settings = settings
        self._started_ray = started_ray
        self._temp_dir = temp_dir
        self.dashboard_url: str | None = None
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
        # Every configured adapter is an actor of its own, restarted on failure.
        self.adapter_specs = {spec.name: spec for spec in adapters}
        self.adapters: dict[str, Any] = {
            spec.name: AdapterActor.options(  # type: ignore[attr-defined]
                name=adapter_name(spec.name), **self._central
            ).remote(spec.name, spec.factory, settings.model_dump_json())
            for spec in adapters
            if not spec.missing(settings.adapter_env)
        }
        # The watcher reads repos and checks services (`actors.watcher`).
        self.watcher: Any = WatchActor.options(  # type: ignore[attr-defined]
            name=WATCHER, **self._central
        ).remote(settings.model_dump_json())
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
    def start(
        cls,
        settings: HubSettings,
        adapters: Sequence[AdapterSpec] = (),
        own_temp_dir: bool = False,
        dashboard: bool = False,
        prepared: bool = False,
    ) -> Runtime:
        """Start (or attach to) the hub described by `settings`, with every one of `adapters`
        its settings configure. `own_temp_dir`: a local Ray started here keeps its session
        under the data dir (`RayTempDir`), removed by `shutdown`; `dashboard`: with Ray's
        dashboard. `hub.startup.prepare` runs first (unless the caller has `prepared` it):
        `StartRefused` says why the hub will not start."""
        if not prepared:
            for note in prepare(settings):
                log.warning("%s", note)
        started = False
        temp_dir = None
        context = None
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        if not ray.is_initialized():
            local = settings.ray_address is None
            temp_dir = RayTempDir(settings.data_dir) if own_temp_dir and local else None
            try:
                context = init_ray(
                    settings.ray_address,
                    temp_dir.prepare() if temp_dir is not None else None,
                    dashboard,
                    namespace=settings.namespace,
                )
            except BaseException:
                if temp_dir is not None:
                    temp_dir.remove()
                raise
            started = local
        runtime = cls(settings, started, adapters, temp_dir)
        runtime.dashboard_url = getattr(context, "dashboard_url", None) if dashboard else None
        runtime.wait_ready()
        return runtime

    def wait_ready(self, timeout_s: float = 120.0) -> None:
        ray.get([h.pid.remote() for h in self.hosts.values()], timeout=timeout_s)
        ray.get(self.broker.head.remote(), timeout=timeout_s)
        ray.get(self.catalog.start.remote(), timeout=timeout_s)
        ray.get([a.pid.remote() for a in self.adapters.values()], timeout=timeout_s)
        ray.get(self.watcher.pid.remote(), timeout=timeout_s)

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

    # -- adapters ---------------------------------------------------------------------------

    async def adapter_statuses(self) -> builtins.list[AdapterStatus]:
        """Every adapter the hub knows: the running ones as they report, the others as
        disabled with the settings they need."""
        found = []
        for name, spec in sorted(self.adapter_specs.items()):
            actor = self.adapters.get(name)
            if actor is None:
                found.append(spec.disabled(self.settings.adapter_env))
                continue
            try:
                found.append(await asyncio.wait_for(actor.status.remote(), 5.0))
            except Exception as error:  # restarting: say so rather than hang /health
                detail = f"not answering ({type(error).__name__}); restarting"
                found.append(
                    AdapterStatus(
                        name, spec.kind, AdapterState.TRANSIENT_DISCONNECT, True, (), detail
                    )
                )
        return found

    def _adapter(self, name: str) -> Any:
        actor = self.adapters.get(name)
        if actor is None:
            raise KeyError(name)
        return actor

    async def adapter_inbound(self, name: str, event: Inbound) -> Answer:
        answer: Answer = await self._adapter(name).inbound.remote(event)
        return answer

    async def adapter_sync(self, name: str, entity_ids: Sequence[str]) -> SyncReport:
        report: SyncReport = await self._adapter(name).sync.remote([*entity_ids])
        return report

    async def adapter_test(self, name: str, text: str) -> str:
        message_id: str = await self._adapter(name).test.remote(text)
        return message_id

    async def adapter_retry(self, name: str) -> int:
        moved: int = await self._adapter(name).retry.remote()
        return moved

    async def adapter_failed(self, name: str) -> builtins.list[dict[str, Any]]:
        failed: builtins.list[dict[str, Any]] = await self._adapter(name).failed.remote()
        return failed

    # -- repos and services -------------------------------------------------------------

    def outboxes(self) -> RayOutboxes:
        """The hosts' durable outboxes, as adapters follow them (custom agents' webhooks do)."""
        return RayOutboxes(self.settings)

    async def check(self, entity_ids: Sequence[str]) -> builtins.list[Checked]:
        """Read these repos and check these services now; what each found."""
        found: builtins.list[Checked] = await self.watcher.check.remote([*entity_ids])
        return found

    async def watched(self) -> builtins.list[Checked]:
        """The latest check of every repo and service."""
        found: builtins.list[Checked] = await self.watcher.latest.remote()
        return found

    async def register_self(self, url: str, version: str) -> str:
        """Register the hub as a service at `url` (checked at its `/health`); its id."""
        entity_id: str = await self.watcher.register_self.remote(url, version)
        return entity_id

    async def health(self, timeout_s: float = 5.0) -> dict[str, bool]:
        """Which of the hub's actors answer within `timeout_s` (router, broker, catalog, hosts)."""
        checks: dict[str, Any] = {
            "router": self.router.retries.remote(),
            "broker": self.broker.head.remote(),
            "catalog": self.catalog.marks.remote(),
            **{name: handle.pid.remote() for name, handle in self.hosts.items()},
            **{adapter_name(n): handle.pid.remote() for n, handle in self.adapters.items()},
            WATCHER: self.watcher.pid.remote(),
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
            actors = [self.watcher, *self.adapters.values(), self.router, self.catalog]
            for handle in [*actors, *self.hosts.values(), self.broker]:
                ray.kill(handle, no_restart=True)
            if self._started_ray:
                ray.shutdown()
            if self._temp_dir is not None:
                self._temp_dir.remove()


def _exists(name: str, namespace: str) -> bool:
    """Whether a named actor is registered (alive or restarting)."""
    try:
        ray.get_actor(name, namespace=namespace)
    except ValueError:
        return False
    return True
