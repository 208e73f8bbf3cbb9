"""The in-process twin of the Ray shell: the same host, mailbox, router and broker, no Ray.

Tests run the entity behaviour suite on it and on Ray alike; it is also what a single-process
embedding of the hub would use.
"""

from __future__ import annotations

import asyncio
import builtins
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from actors.broker import EVERYTHING, Broker, EncodedPoll, Live, keys_of
from actors.host import EntityHost
from actors.linker import Linker
from actors.reconciler import ReconcileReport, reconcile_project
from actors.router import HostUnavailable, Router
from actors.turns import Mailbox
from hub.catalog import Catalog, Page, Query
from hub.entity import EntityView
from hub.envelope import Envelope, Outcome
from hub.ids import IdGenerator, Kind
from hub.settings import HubSettings
from hub.shards import ShardTable
from hub.store import CheckpointStore
from hub.subscriptions import Published


class LocalHost:
    """An `EntityHost` behind a mailbox, publishing to an in-process broker (and, given one,
    to `published`: what the catalog follows)."""

    def __init__(
        self,
        name: str,
        store: CheckpointStore,
        settings: HubSettings,
        live: Live,
        published: Callable[[str, list[tuple[int, Published]]], None] | None = None,
    ):
        self.name = name
        self.host = EntityHost(name, store, settings)
        self.live = live
        self.published = published
        self.mailbox = Mailbox(self.host, self._publish)
        self.down = False  # a test may take the host down

    async def _publish(self, items: list[tuple[int, Published, bytes]]) -> None:
        self.live.broker.publish_encoded(
            self.name, [(seq, keys_of(item), body) for seq, item, body in items]
        )
        await self.live.published()
        if self.published is not None:
            self.published(self.name, [(seq, item) for seq, item, _ in items])

    async def submit(self, envelopes: list[Envelope]) -> list[Outcome]:
        if self.down:
            raise HostUnavailable(f"host {self.name} is down")
        return await self.mailbox.submit(envelopes)

    async def get(self, entity_id: str) -> EntityView | None:
        return await self.mailbox.call(lambda: self.host.get(entity_id))

    async def state_at(self, entity_id: str, timestamp_ms: int) -> EntityView | None:
        return await self.mailbox.call(lambda: self.host.state_at(entity_id, timestamp_ms))

    async def history(self, entity_id: str) -> list[dict[str, Any]]:
        return await self.mailbox.call(lambda: self.host.history(entity_id))


class LocalHostClient:
    """The router's view of in-process hosts."""

    def __init__(self, hosts: dict[str, LocalHost]) -> None:
        self.hosts = hosts

    async def submit(self, host: str, envelopes: list[Envelope]) -> list[Outcome]:
        return await self.hosts[host].submit(envelopes)

    async def applied(self, host: str, message_ids: list[str]) -> list[str]:
        store = self.hosts[host].host.store
        return [m for m in message_ids if store.dedupe_get(m) is not None]

    async def get(self, host: str, entity_id: str) -> EntityView | None:
        if self.hosts[host].down:
            raise HostUnavailable(f"host {host} is down")
        return await self.hosts[host].get(entity_id)


class LocalHub:
    """Broker, hosts, a router and a catalog (with its linker) in this process, over one store.

    The catalog lives beside the shard table (`<its folder>/catalog`) and follows every host's
    publications as they commit; the link writes it notes are delivered in a task of their own
    (never inside a host's turn), or at once by `settle`."""

    def __init__(self, store: CheckpointStore, settings: HubSettings, table_path: Path) -> None:
        self.settings = settings
        self.live = Live(Broker(settings.stream_retention))
        self.broker = self.live.broker
        self.catalog = Catalog(table_path.parent / "catalog")
        names = [f"host-{i}" for i in range(settings.hosts)]
        self.hosts = {n: LocalHost(n, store, settings, self.live, self._published) for n in names}
        ShardTable.build(names, settings.shards).save(table_path)
        self.client = LocalHostClient(self.hosts)
        self.router = Router(table_path, settings, self.client)
        self.linker = Linker(self.catalog, self.router.route)
        self._ids = IdGenerator(settings.node_id, now_ms=lambda: time.time_ns() // 1_000_000)
        self._linking: set[asyncio.Task[int]] = set()

    def _published(self, host: str, rows: list[tuple[int, Published]]) -> None:
        self.catalog.take(host, rows)
        if self.catalog.links(limit=1):
            task = asyncio.get_running_loop().create_task(self.linker.deliver())
            self._linking.add(task)
            task.add_done_callback(self._linking.discard)

    async def settle(self) -> None:
        """Deliver every pending link write now (tests and a clean stop)."""
        await self.linker.deliver()

    def host_of(self, entity_id: str) -> LocalHost:
        return self.hosts[self.router.table.host_of(entity_id)]

    async def list(self, query: Query) -> Page:
        """A page of the catalog (read-your-writes: hosts feed it as they commit)."""
        await self.settle()
        return self.catalog.query(query)

    async def route(self, envelopes: Sequence[Envelope]) -> builtins.list[Outcome]:
        return await self.router.route(envelopes)

    async def get(self, entity_id: str) -> EntityView | None:
        return await self.router.get(entity_id)

    def hosts_names(self) -> builtins.list[str]:
        return [*self.hosts]

    async def outbox_after(
        self, host: str, seq: int, limit: int
    ) -> builtins.list[tuple[int, bytes]]:
        """A host's committed outbox entries after `seq` (what adapters follow)."""
        return self.hosts[host].host.outbox_raw_after(seq, limit)

    def outboxes(self) -> LocalOutboxes:
        return LocalOutboxes(self)

    def stream(self) -> LocalStream:
        return LocalStream(self.live)

    async def reconcile(
        self, project_id: str, caller: str, dry_run: bool = False
    ) -> ReconcileReport:
        """Example 2, in process: the same conversation the Ray host actors have."""
        return await reconcile_project(
            project_id,
            get=self.router.get,
            route=self.router.route,
            list_page=self.list,
            node_id=f"hub:{self.settings.node_id}",
            caller=caller,
            timeout_s=self.settings.call_timeout_s,
            max_depth=self.settings.max_call_depth,
            message_id=lambda todo: self._ids.new(Kind.MSG),
            dry_run=dry_run,
        )


class LocalOutboxes:
    """The in-process hosts' outboxes, as an adapter follows them (`actors.adapter.Outboxes`)."""

    def __init__(self, hub: LocalHub) -> None:
        self._hub = hub

    def hosts(self) -> list[str]:
        return self._hub.hosts_names()

    async def head(self, host: str) -> int:
        return self._hub.hosts[host].host.outbox_head()

    async def after(self, host: str, seq: int, limit: int) -> list[tuple[int, bytes]]:
        return await self._hub.outbox_after(host, seq, limit)


class LocalStream:
    """The in-process broker's stream, every domain (`actors.follower.Stream`)."""

    def __init__(self, live: Live) -> None:
        self._live = live

    async def poll(self, epoch: str | None, after: int, limit: int, wait_s: float) -> EncodedPoll:
        return await self._live.poll_encoded(epoch, after, EVERYTHING, limit, wait_s)
