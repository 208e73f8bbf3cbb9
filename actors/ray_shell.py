"""The Ray shell: every `@ray.remote` actor of the hub lives here. Their calls to one another,
like the runtime's, go through the typed handles of `actors.handles`.

The actors are thin: `HostActor` wraps a `Mailbox` around an `EntityHost`, `BrokerActor` a
`Broker`, `RouterActor` a `Router`. All run with `num_cpus=0` (they wait on I/O far more than they
compute), so a 2-core machine can hold a router, a broker and several hosts.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import os
import time
from pathlib import Path
from typing import Any

import msgpack
import ray
from ray.exceptions import ActorDiedError, ActorUnavailableError, RayActorError

from actors.adapter import AdapterRunner, Answer, SyncReport
from actors.broker import (
    EVERYTHING,
    Broker,
    EncodedItem,
    EncodedPoll,
    Live,
    Poll,
    decode_poll,
    pack_encoded,
    pack_published,
    unpack_published,
)
from actors.follower import Follower
from actors.handles import BrokerHandle, CatalogHandle, HostHandle, RouterHandle
from actors.host import OUTBOX_PREFIX, EntityHost, HostMetrics
from actors.linker import Linker
from actors.reconciler import ReconcileReport, reconcile_project
from actors.router import HostUnavailable, Router
from actors.turns import Mailbox
from actors.watcher import Checked, Watcher
from hub.adapter_store import AdapterStore
from hub.adapters import AdapterStatus, Inbound
from hub.catalog import Catalog, Page, Query
from hub.domains import SyncDomain
from hub.entity import EntityView
from hub.envelope import (
    Envelope,
    Outcome,
    pack_envelopes,
    pack_outcomes,
    unpack_envelopes,
    unpack_outcomes,
)
from hub.erasure import Erased, erase_publication, mentions, pseudonymize_bytes
from hub.gc_tuning import tune_gc
from hub.ids import IdGenerator, Kind
from hub.settings import HubSettings
from hub.shards import ShardTable
from hub.store import LmdbStore
from hub.subscriptions import Filter, Published, decode_published

BROKER = "broker"
CATALOG_LINGER_S = 0.1  # how long the catalog lets changes gather after taking some (or
# waits after a failed round)
ROUTER = "router-{}"
SHARD_TABLE = "shards.json"
_UNAVAILABLE = (RayActorError, ActorDiedError, ActorUnavailableError)


def open_store(settings: HubSettings) -> LmdbStore:
    """The node's LMDB environment (one per node, shared by the hosts on it)."""
    return LmdbStore(
        settings.data_dir / "lmdb",
        map_size=settings.lmdb_map_size,
        dedupe_retention_ms=int(settings.dedupe_retention_s * 1000),
        codec=settings.value_codec(),
    )


@ray.remote(num_cpus=0)
class HostActor:
    """A Ray actor hosting many entity actors (or, placed `dedicated`, just one)."""

    def __init__(self, name: str, settings_json: str) -> None:
        settings = HubSettings.model_validate_json(settings_json)
        self._name = name
        self._store = open_store(settings)
        self._host = EntityHost(name, self._store, settings)
        self._broker = BrokerHandle(ray.get_actor(BROKER, namespace=settings.namespace))
        self._mailbox = Mailbox(self._host, self._publish, _in_thread)
        self._pending: set[asyncio.Task[None]] = set()
        self._resync = True  # on (re)start: send the broker what it may have missed
        # Where this host's part of the stream starts, should it die before its first publish
        # (a no-op for a host the broker knows). Ray may deliver it after a publish: no matter.
        self._broker.register(name, self._host.outbox_seq)
        tune_gc()
        self._hub = RayHubCalls(settings.namespace)  # the reconciler's reads and writes
        self._ids = IdGenerator(name, now_ms=lambda: time.time_ns() // 1_000_000)

    async def _publish(self, items: list[tuple[int, Published, bytes]]) -> None:
        if self._resync:
            mark = await self._broker.mark(self._name)
            if mark is not None and mark < items[0][0] - 1:
                # What it missed, then these (all committed), as stored in the outbox.
                items = [
                    (seq, decode_published(body), body)
                    for seq, body in self._host.outbox_raw_after(mark)
                ]
            self._resync = False
        # Ray may deliver these calls out of order; the broker fills any hole from our outbox.
        # One bytes value per batch: filter keys and the encoded events, never pickled objects.
        ref = self._broker.publish_encoded(self._name, pack_encoded(items))
        task = asyncio.get_running_loop().create_task(self._watch(ref))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _watch(self, ref: Any) -> None:
        try:
            await ref
        except Exception:
            self._host.metrics.publish_failures += 1  # counted, and healed on the next publish
            self._resync = True

    async def submit(self, envelopes: list[Envelope]) -> list[Outcome]:
        return await self._mailbox.submit(envelopes)

    async def submit_packed(self, envelopes: bytes) -> bytes:
        """`submit` with the batch and its outcomes as msgpack (`hub.envelope.pack_*`)."""
        return pack_outcomes(await self._mailbox.submit(unpack_envelopes(envelopes)))

    async def get(self, entity_id: str) -> EntityView | None:
        return await self._mailbox.call(lambda: self._host.get(entity_id))

    async def state_at(
        self, entity_id: str, timestamp_ms: int | None = None, seq: int | None = None
    ) -> EntityView | None:
        return await self._mailbox.call(lambda: self._host.state_at(entity_id, timestamp_ms, seq))

    async def history(
        self, entity_id: str, since_ms: int | None = None, until_ms: int | None = None
    ) -> list[dict[str, Any]]:
        return await self._mailbox.call(lambda: self._host.history(entity_id, since_ms, until_ms))

    async def applied(self, message_ids: list[str]) -> list[str]:
        return [m for m in message_ids if self._store.dedupe_get(m) is not None]

    async def outbox_after(self, seq: int, limit: int = 5000) -> list[tuple[int, Published]]:
        """Committed publications after outbox `seq` (a store read: no turn needed)."""
        return await asyncio.to_thread(self._host.outbox_after, seq, limit)

    async def outbox_head(self) -> int:
        return await asyncio.to_thread(self._host.outbox_head)

    async def outbox_after_packed(self, seq: int, limit: int = 5000) -> bytes:
        """`outbox_after` as one msgpack value of [seq, encoded event] rows, not decoded here."""
        rows = await asyncio.to_thread(self._host.outbox_raw_after, seq, limit)
        packed: bytes = msgpack.packb(rows, use_bin_type=True)
        return packed

    async def passivate(self, entity_id: str | None = None) -> None:
        """Snapshot and release one entity (before it moves) or all of them."""
        if entity_id is None:
            await self._mailbox.call(self._host.passivate_all)
        else:
            await self._mailbox.call(lambda: self._host.release(entity_id))

    async def mentions(self, principal: str) -> list[str]:
        """Entities (not outboxes) whose stored log or snapshot names `principal`."""
        found = await asyncio.to_thread(mentions, self._store, principal)
        return [entity_id for entity_id in found if not entity_id.startswith(OUTBOX_PREFIX)]

    async def erase(self, principal: str, pseudonym: str, whole: frozenset[str]) -> Erased:
        """Erase a principal from this node's store, in a turn (no message runs meanwhile)."""
        return await self._mailbox.call(lambda: self._host.erase(principal, pseudonym, whole))

    async def reconcile(
        self, project_id: str, caller: str, depth: int = 0, dry_run: bool = False
    ) -> ReconcileReport:
        """Example 2: this project actor merges its sessions' todos and writes them back."""
        settings = self._host.settings
        return await reconcile_project(
            project_id,
            get=self._hub.get,
            route=self._hub.route,
            list_page=self._hub.list,
            node_id=f"hub:{settings.node_id}",
            caller=caller,
            timeout_s=settings.call_timeout_s,
            depth=depth,
            max_depth=settings.max_call_depth,
            message_id=lambda todo: self._ids.new(Kind.MSG),
            dry_run=dry_run,
        )

    async def metrics(self) -> HostMetrics:
        self._host.metrics.extra["mailbox_max_depth"] = self._mailbox.max_depth
        return self._host.metrics

    def pid(self) -> int:
        return os.getpid()

    def node(self) -> str:
        return str(ray.get_runtime_context().get_node_id())


async def _in_thread(work: Any) -> Any:
    # The LMDB commit blocks on fsync: run turns in a thread so the actor keeps queueing
    # (and coalescing) batches meanwhile. The mailbox runs one turn at a time.
    return await asyncio.to_thread(work)


@ray.remote(num_cpus=0)
class BrokerActor:
    """The hub's event stream."""

    def __init__(self, retention: int, namespace: str) -> None:
        self._live = Live(Broker(retention))
        self._broker = self._live.broker
        self._namespace = namespace
        self._hosts: dict[str, HostHandle] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        tune_gc()

    async def publish(self, host: str, items: list[tuple[int, Published]]) -> int:
        """Take a host's outbox entries (as `publish_encoded`, from decoded events)."""
        return await self.publish_encoded(host, pack_published(items))

    async def publish_encoded(self, host: str, packed: bytes) -> int:
        """Take a host's outbox entries (`pack_published`); a later call that overtook an
        earlier one (Ray does not order calls to an async actor) first fetches the hole from
        the host's outbox."""
        items = unpack_published(packed)
        async with self._locks.setdefault(host, asyncio.Lock()):
            mark = self._broker.mark(host)
            if mark is not None and items and items[0][0] > mark + 1:
                items = await self._fill(host, mark, items)
            mark = self._broker.publish_encoded(host, items)
        await self._live.published()
        return mark

    async def _fill(self, host: str, mark: int, items: list[EncodedItem]) -> list[EncodedItem]:
        if host not in self._hosts:
            self._hosts[host] = HostHandle(ray.get_actor(host, namespace=self._namespace))
        first = items[0][0]
        missing: list[EncodedItem] = []
        while mark + len(missing) < first - 1:
            got = await self._hosts[host].outbox_after(
                mark + len(missing), first - 1 - mark - len(missing)
            )
            if not got:
                break
            missing += unpack_published(pack_published(got))
        return missing + items

    def mark(self, host: str) -> int | None:
        return self._broker.mark(host)

    def register(self, host: str, outbox_seq: int) -> int:
        return self._broker.register(host, outbox_seq)

    def erase(self, principal: str, pseudonym: str, whole: frozenset[str]) -> None:
        """Erase a principal from the retained stream (see hub.erasure)."""
        self._broker.rewrite(lambda item: erase_publication(item, whole, principal, pseudonym))

    def head(self) -> tuple[str, int]:
        return self._broker.epoch, self._broker.head

    async def poll(
        self, epoch: str | None, after: int, wanted: Filter, limit: int = 1000, wait_s: float = 0
    ) -> Poll:
        """Matching events after `after`; waits up to `wait_s` for some to arrive."""
        return decode_poll(await self.poll_encoded(epoch, after, wanted, limit, wait_s))

    async def poll_encoded(
        self, epoch: str | None, after: int, wanted: Filter, limit: int = 1000, wait_s: float = 0
    ) -> EncodedPoll:
        """`poll` with the events still encoded (`actors.broker.decode_poll` reads it)."""
        return await self._live.poll_encoded(epoch, after, wanted, limit, wait_s)


class RayHostClient:
    """Reaches hosts by their actor handles, looked up once (and again on a new table)."""

    def __init__(self, namespace: str) -> None:
        self._namespace = namespace
        self._handles: dict[str, HostHandle] = {}

    def resolve(self, table: ShardTable) -> None:
        names = set(table.hosts) | set(table.dedicated.values())
        for name in names - self._handles.keys():
            self._handles[name] = HostHandle(ray.get_actor(name, namespace=self._namespace))

    async def submit(self, host: str, envelopes: list[Envelope]) -> list[Outcome]:
        try:
            packed = await self._handles[host].submit_packed(pack_envelopes(envelopes))
        except _UNAVAILABLE as error:
            raise HostUnavailable(f"host {host} is unavailable: {type(error).__name__}") from None
        return unpack_outcomes(packed)

    async def applied(self, host: str, message_ids: list[str]) -> list[str]:
        try:
            result = await self._handles[host].applied(message_ids)
        except _UNAVAILABLE as error:
            raise HostUnavailable(f"host {host} is unavailable: {type(error).__name__}") from None
        return result

    async def get(self, host: str, entity_id: str) -> EntityView | None:
        try:
            result = await self._handles[host].get(entity_id)
        except _UNAVAILABLE as error:
            raise HostUnavailable(f"host {host} is unavailable: {type(error).__name__}") from None
        return result


@ray.remote(num_cpus=0)
class RouterActor:
    """Routes batches of envelopes to their hosts."""

    def __init__(self, settings_json: str) -> None:
        settings = HubSettings.model_validate_json(settings_json)
        self._client = RayHostClient(settings.namespace)
        self._router = Router(settings.data_dir / SHARD_TABLE, settings, self._client)
        self._client.resolve(self._router.table)

    async def route(self, envelopes: list[Envelope]) -> list[Outcome]:
        return await self._router.route(envelopes)

    async def get(self, entity_id: str) -> EntityView | None:
        return await self._router.get(entity_id)

    def refresh(self) -> int:
        version = self._router.refresh()
        self._client.resolve(self._router.table)
        return version

    def table(self) -> ShardTable:
        return self._router.table

    def retries(self) -> int:
        return self._router.retries


@ray.remote(num_cpus=0)
class CatalogActor:
    """Keeps the catalog of every entity: follows the hub's stream from the catalog's own
    per-host marks (`actors.follower`), catching up from the hosts' durable outboxes."""

    def __init__(self, settings_json: str) -> None:
        settings = HubSettings.model_validate_json(settings_json)
        self._catalog = Catalog(settings.data_dir / "catalog", codec=settings.value_codec())
        self._outboxes = RayOutboxes(settings)
        self._follower = Follower(
            RayStream(settings.namespace), self._outboxes, self._catalog.marks
        )
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        # The router starts after us: `RayHubCalls` looks it up on first use.
        self._linker = Linker(self._catalog, RayHubCalls(settings.namespace).route)

    async def _follow(self) -> None:
        while True:
            wait = CATALOG_LINGER_S  # after taking some, let more gather: fewer, larger polls
            try:
                runs = await self._follower.next(5000, wait_s=1.0)
                async with self._lock:
                    for host, rows in runs:
                        await self._take(host, rows)
                wait = CATALOG_LINGER_S if runs else 0.0
            except Exception:  # a host or the broker restarting: start over from the marks
                self._follower.reset()
            with contextlib.suppress(Exception):  # the router restarting: the next round retries
                await self._linker.deliver()
            await asyncio.sleep(wait)

    async def _take(self, host: str, rows: list[tuple[int, bytes]]) -> None:
        items = [(seq, decode_published(body)) for seq, body in rows]
        await asyncio.to_thread(self._catalog.take, host, items)

    async def start(self) -> None:
        """Follow the hub's stream (and settle link notes) from now on."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._follow())

    async def sync(self) -> dict[str, int]:
        """Read every host's outbox up to now (what was acked is committed there, maybe not
        streamed yet); returns the marks."""
        await self.start()
        async with self._lock:
            for name in self._outboxes.hosts():
                while True:
                    rows = await self._outboxes.after(name, self._catalog.mark(name), 5000)
                    if not rows:
                        break
                    await self._take(name, rows)
                    self._follower.taken(name, rows[-1][0])
            return self._catalog.marks()

    async def query(self, query: Query, fresh: bool = True) -> Page:
        """A page of the list; `fresh` first catches up (and settles what the hub owes
        projects: `actors.linker`), so a client reads its own writes."""
        if fresh:
            await self.sync()
            with contextlib.suppress(Exception):  # the router restarting: the loop retries
                await self._linker.deliver()
        return self._catalog.query(query)

    async def conflicts(
        self, domain: SyncDomain | None = None, visible_to: str | None = None
    ) -> list[dict[str, Any]]:
        await self.sync()
        return list(self._catalog.conflicts(domain, visible_to))

    def marks(self) -> dict[str, int]:
        return self._catalog.marks()

    async def owned_only_by(self, principal: str) -> list[str]:
        """Entities whose only member is `principal` (erased whole when it is)."""
        await self.sync()
        return self._catalog.owned_only_by(principal)

    async def erase(self, principal: str, pseudonym: str, whole: frozenset[str]) -> int:
        """Drop erased entities' rows, pseudonymize the principal in the rest."""
        await self.sync()
        self._catalog.drop(whole)
        return self._catalog.rewrite(pseudonymize_bytes(principal, pseudonym))


def shard_table_path(settings: HubSettings) -> Path:
    return settings.data_dir / SHARD_TABLE


class RayOutboxes:
    """The hosts' durable outboxes over Ray (`actors.adapter.Outboxes`): the hosts the shard
    table names now, each asked for its committed entries after a seq."""

    def __init__(self, settings: HubSettings) -> None:
        self._table_path = shard_table_path(settings)
        self._namespace = settings.namespace
        self._handles: dict[str, HostHandle] = {}

    def hosts(self) -> list[str]:
        table = ShardTable.load(self._table_path)
        names = set(table.hosts) | set(table.dedicated.values()) if table else set()
        return sorted(names)

    def _host(self, host: str) -> HostHandle:
        if host not in self._handles:
            self._handles[host] = HostHandle(ray.get_actor(host, namespace=self._namespace))
        return self._handles[host]

    async def head(self, host: str) -> int:
        return await self._host(host).outbox_head()

    async def after(self, host: str, seq: int, limit: int) -> list[tuple[int, bytes]]:
        packed = await self._host(host).outbox_after_packed(seq, limit)
        rows: list[list[Any]] = msgpack.unpackb(packed, raw=False)
        return [(int(seq), bytes(body)) for seq, body in rows]


class RayStream:
    """The broker's stream over Ray, every domain (`actors.follower.Stream`); the broker is
    looked up on first use."""

    def __init__(self, namespace: str) -> None:
        self._namespace = namespace
        self._broker: BrokerHandle | None = None

    async def poll(self, epoch: str | None, after: int, limit: int, wait_s: float) -> EncodedPoll:
        if self._broker is None:
            self._broker = BrokerHandle(ray.get_actor(BROKER, namespace=self._namespace))
        return await self._broker.poll_encoded(epoch, after, EVERYTHING, limit, wait_s)


class RayHubCalls:
    """What an adapter asks of the hub, over Ray (`actors.adapter.HubCalls`): the router
    routes and reads, the catalog lists."""

    def __init__(self, namespace: str) -> None:
        self._namespace = namespace
        self._router: RouterHandle | None = None
        self._catalog: CatalogHandle | None = None

    def _routing(self) -> RouterHandle:
        """The router, looked up once, on first use."""
        if self._router is None:
            self._router = RouterHandle(ray.get_actor(ROUTER.format(0), namespace=self._namespace))
        return self._router

    def _listing(self) -> CatalogHandle:
        """The catalog, looked up once, on first use."""
        if self._catalog is None:
            self._catalog = CatalogHandle(ray.get_actor("catalog", namespace=self._namespace))
        return self._catalog

    async def route(self, envelopes: list[Envelope]) -> list[Outcome]:
        return await self._routing().route(envelopes)

    async def get(self, entity_id: str) -> EntityView | None:
        return await self._routing().get(entity_id)

    async def list(self, query: Query) -> Page:
        return await self._listing().query(query)


def adapter_name(name: str) -> str:
    """The Ray actor name of an adapter."""
    return f"adapter-{name}"


@ray.remote(num_cpus=0)
class AdapterActor:
    """One configured adapter (its own supervised actor: restarted on failure, resuming from
    its durable cursor). `factory` names the function that builds the adapter from the
    environment (`module:function`), so the actor layer imports no adapter."""

    def __init__(self, name: str, factory: str, settings_json: str) -> None:
        settings = HubSettings.model_validate_json(settings_json)
        module, _, function = factory.partition(":")
        adapter = getattr(importlib.import_module(module), function)(settings.adapter_env)
        store = AdapterStore(settings.data_dir / "adapters" / name, codec=settings.value_codec())
        calls, outboxes = RayHubCalls(settings.namespace), RayOutboxes(settings)
        self._runner = AdapterRunner(
            name, adapter, store, calls, outboxes, RayStream(settings.namespace)
        )
        tune_gc()
        # An async actor's __init__ runs in its event loop: start following right away, and
        # again after every restart, with no one having to ask.
        asyncio.get_event_loop().create_task(self._runner.start())

    async def status(self) -> AdapterStatus:
        return self._runner.status()

    async def inbound(self, event: Inbound) -> Answer:
        return await self._runner.inbound(event)

    async def sync(self, entity_ids: list[str]) -> SyncReport:
        views = [v for v in [await self._runner.hub.get(e) for e in entity_ids] if v is not None]
        return await self._runner.sync(views)

    async def test(self, text: str) -> str:
        ref = await self._runner.test(text)
        return ref.message_id

    async def retry(self) -> int:
        moved = self._runner.store.retry()
        self._runner.poke()
        return moved

    async def failed(self) -> list[dict[str, Any]]:
        return [
            {"id": j.id, "entityId": j.entity_id, "seq": j.seq, "kind": j.kind, "reason": j.reason}
            for j in self._runner.store.failed()
        ]

    def pid(self) -> int:
        return os.getpid()


WATCHER = "watcher"


@ray.remote(num_cpus=0)
class WatchActor:
    """The hub's watcher (`actors.watcher.Watcher`): reads repos, checks services; restarted on
    failure (what it found lives in the entities it wrote)."""

    def __init__(self, settings_json: str) -> None:
        settings = HubSettings.model_validate_json(settings_json)
        self._watcher = Watcher(RayHubCalls(settings.namespace), settings)
        asyncio.get_event_loop().create_task(self._watcher.start(settings.watch))

    async def check(self, entity_ids: list[str]) -> list[Checked]:
        return await self._watcher.check(entity_ids)

    async def latest(self) -> list[Checked]:
        return self._watcher.latest()

    async def register_self(self, url: str, version: str) -> str:
        return await self._watcher.register_self(url, version)

    async def problem(self) -> str | None:
        return self._watcher.problem

    def pid(self) -> int:
        return os.getpid()
