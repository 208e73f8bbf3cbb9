"""`Runtime`: the hub on Ray as its callers use it (the gateway, the CLI, the benchmarks).

`Runtime.start` uses an embedded local Ray by default, or joins `settings.ray_address`
(`CHITTY_RAY_ADDRESS`). Actors are named in the hub's namespace, so a second process can
`Runtime.start` with the same settings and attach to the running hub instead of making a new one.
Starting Ray is `actors.ray_start`; making and placing the actors `actors.deployment` (its
decisions `actors.placement`); every call to an actor goes through `actors.handles`.
"""

from __future__ import annotations

import asyncio
import builtins
import logging
import os
import time
from collections.abc import Callable, Sequence
from typing import Any

import ray
from ray.exceptions import ActorUnavailableError, RayActorError

from actors.adapter import Answer, SyncReport
from actors.broker import Poll, decode_poll
from actors.deployment import Deployment
from actors.handles import (
    AdapterHandle,
    BrokerHandle,
    CatalogHandle,
    HostHandle,
    RouterHandle,
    WatcherHandle,
)
from actors.host import HostMetrics
from actors.ray_shell import (
    WATCHER,
    RayHostClient,
    RayOutboxes,
    RayStream,
    adapter_name,
    shard_table_path,
)
from actors.ray_start import JoinedRay, RayTempDir
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
from hub.message import Message
from hub.protocol import SyncMessage
from hub.settings import HubSettings
from hub.shards import ShardTable
from hub.startup import prepare
from hub.subscriptions import Filter

log = logging.getLogger(__name__)
RESTARTING = (ActorUnavailableError, RayActorError)


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
        self.deployment = actors = Deployment(settings, adapters)
        # This process routes its own writes straight to the hosts (one Ray call per host per
        # batch) with a `Router` of its own over the same shard table; the router actor serves
        # the hosts' own calls (the reconciler) and anyone without a Runtime.
        self._client = RayHostClient(settings.namespace)
        self._client.resolve(actors.table)
        self._local: Router | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._table_stamp: tuple[int, int] | None = None

    @property
    def table(self) -> ShardTable:
        return self.deployment.table

    # The deployment's handles, read through (never copies that could drift from it).
    @property
    def broker(self) -> BrokerHandle:
        return self.deployment.broker

    @property
    def catalog(self) -> CatalogHandle:
        return self.deployment.catalog

    @property
    def router(self) -> RouterHandle:
        return self.deployment.router

    @property
    def hosts(self) -> dict[str, HostHandle]:
        return self.deployment.hosts

    @property
    def adapters(self) -> dict[str, AdapterHandle]:
        return self.deployment.adapters

    @property
    def watcher(self) -> WatcherHandle:
        return self.deployment.watcher

    @property
    def adapter_specs(self) -> dict[str, AdapterSpec]:
        return self.deployment.adapter_specs

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
        ray_ = JoinedRay.join(settings, own_temp_dir, dashboard)
        runtime = cls(settings, ray_.started, adapters, ray_.temp_dir)
        runtime.dashboard_url = ray_.dashboard_url
        runtime.deployment.wait_ready()
        return runtime

    # -- messages ---------------------------------------------------------------------------

    async def submit(
        self, messages: Sequence[SyncMessage | Message], with_entity: bool = False
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

    def host_of(self, entity_id: str) -> HostHandle:
        return self.hosts[self.table.host_of(entity_id)]

    async def _read(self, entity_id: str, call: Callable[[HostHandle], Any]) -> Any:
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
        found: EntityView | None = await self._read(entity_id, lambda host: host.get(entity_id))
        return found

    async def state_at(
        self, entity_id: str, timestamp_ms: int | None = None, seq: int | None = None
    ) -> EntityView | None:
        """The entity as of a time, or right after its event `seq`."""
        found: EntityView | None = await self._read(
            entity_id, lambda host: host.state_at(entity_id, timestamp_ms, seq)
        )
        return found

    async def history(self, entity_id: str) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = await self._read(
            entity_id, lambda host: host.history(entity_id)
        )
        return found

    async def reconcile(
        self, project_id: str, caller: str, dry_run: bool = False
    ) -> ReconcileReport:
        """Spec Example 2, run by the project's own actor; its writes are `caller`'s."""
        return await self.host_of(project_id).reconcile(project_id, caller, dry_run)

    async def poll(
        self,
        epoch: str | None,
        after: int,
        wanted: Filter,
        limit: int = 1000,
        wait_s: float = 0.0,
    ) -> Poll:
        """Events of the stream after (`epoch`, `after`); they travel encoded, decoded here."""
        return decode_poll(await self.broker.poll_encoded(epoch, after, wanted, limit, wait_s))

    async def list(self, query: Query) -> Page:
        """A page of entities of one domain (read-your-writes: the catalog catches up first)."""
        return await self.catalog.query(query)

    async def conflicts(
        self, domain: SyncDomain | None = None, visible_to: str | None = None
    ) -> builtins.list[dict[str, Any]]:
        return await self.catalog.conflicts(domain, visible_to)

    async def mentions(self, principal: str) -> builtins.list[str]:
        """Every entity whose stored log or snapshot names `principal` (a full scan)."""
        found = await asyncio.gather(*(h.mentions(principal) for h in self.hosts.values()))
        return sorted(set().union(*found))

    async def erase(self, principal: str) -> dict[str, Any]:
        """Erase `principal` from every store and buffer of the hub (see hub.erasure)."""
        pseudonym = IdGenerator("erasure", lambda: time.time_ns() // 1_000_000).new(Kind.USER)
        whole = frozenset(await self.catalog.owned_only_by(principal))
        erased: list[Erased] = []
        # Each node's hosts share its store: every host drops what it holds in memory and
        # erases (the first on a node does the work). A second pass catches a snapshot some
        # host wrote from memory before its first.
        for _ in range(2):
            for handle in self.hosts.values():
                erased.append(await handle.erase(principal, pseudonym, whole))
        rows = await self.catalog.erase(principal, pseudonym, whole)
        await self.broker.erase(principal, pseudonym, whole)
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
                found.append(await asyncio.wait_for(actor.status(), 5.0))
            except Exception as error:  # restarting: say so rather than hang /health
                detail = f"not answering ({type(error).__name__}); restarting"
                found.append(
                    AdapterStatus(
                        name, spec.kind, AdapterState.TRANSIENT_DISCONNECT, True, (), detail
                    )
                )
        return found

    def _adapter(self, name: str) -> AdapterHandle:
        actor = self.adapters.get(name)
        if actor is None:
            raise KeyError(name)
        return actor

    async def adapter_inbound(self, name: str, event: Inbound) -> Answer:
        return await self._adapter(name).inbound(event)

    async def adapter_sync(self, name: str, entity_ids: Sequence[str]) -> SyncReport:
        return await self._adapter(name).sync(entity_ids)

    async def adapter_test(self, name: str, text: str) -> str:
        return await self._adapter(name).test(text)

    async def adapter_retry(self, name: str) -> int:
        return await self._adapter(name).retry()

    async def adapter_failed(self, name: str) -> builtins.list[dict[str, Any]]:
        return await self._adapter(name).failed()

    # -- repos and services -------------------------------------------------------------

    def outboxes(self) -> RayOutboxes:
        """The hosts' durable outboxes (where a follower of the stream catches up)."""
        return RayOutboxes(self.settings)

    def stream(self) -> RayStream:
        """The hub's stream, every domain (custom agents' webhooks follow it)."""
        return RayStream(self.settings.namespace)

    async def check(self, entity_ids: Sequence[str]) -> builtins.list[Checked]:
        """Read these repos and check these services now; what each found."""
        return await self.watcher.check(entity_ids)

    async def watched(self) -> builtins.list[Checked]:
        """The latest check of every repo and service."""
        return await self.watcher.latest()

    async def register_self(self, url: str, version: str) -> str:
        """Register the hub as a service at `url` (checked at its `/health`); its id."""
        return await self.watcher.register_self(url, version)

    async def health(self, timeout_s: float = 5.0) -> dict[str, bool]:
        """Which of the hub's actors answer within `timeout_s` (router, broker, catalog, hosts)."""
        checks: dict[str, Any] = {
            "router": self.router.retries(),
            "broker": self.broker.head(),
            "catalog": self.catalog.marks(),
            **{name: handle.pid() for name, handle in self.hosts.items()},
            **{adapter_name(n): handle.pid() for n, handle in self.adapters.items()},
            WATCHER: self.watcher.pid(),
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
        values = await asyncio.gather(*(self.hosts[n].metrics() for n in names))
        return dict(zip(names, values, strict=True))

    # -- placement --------------------------------------------------------------------------

    def place_dedicated(self, entity_id: str) -> str:
        """Give `entity_id` a Ray actor of its own (same entity code, its own mailbox)."""
        name = self.deployment.place_dedicated(entity_id)
        self._client.resolve(self.table)  # the in-process router reloads it before its next batch
        return name

    def rebalance(self) -> ShardTable:
        """Spread shards over the hosts that answer; dead ones lose their shards."""
        table = self.deployment.rebalance()
        self._client.resolve(table)
        return table

    def shutdown(self) -> None:
        """Snapshot every entity, stop the hub's actors, and Ray if this runtime started it."""
        try:
            self.deployment.stop()
        finally:
            if self._started_ray:
                ray.shutdown()
            if self._temp_dir is not None:
                self._temp_dir.remove()
