"""Typed handles on the hub's Ray actors: every call the runtime makes to an actor, and every
call the actors make to one another, goes through one of these and answers an `ObjectRef` of
the type the actor returns (awaitable in a coroutine, `ray.get`-able in the start-up and
shutdown code). The actors themselves live in `actors.ray_shell`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ray import ObjectRef

from actors.adapter import Answer, SyncReport
from actors.broker import EncodedPoll
from actors.host import HostMetrics
from actors.reconciler import ReconcileReport
from actors.watcher import Checked
from hub.adapters import AdapterStatus, Inbound
from hub.catalog import Page, Query
from hub.domains import SyncDomain
from hub.entity import EntityView
from hub.envelope import Envelope, Outcome
from hub.erasure import Erased
from hub.shards import ShardTable
from hub.subscriptions import Filter, Published


class _Handle:
    """One actor (`actor`: Ray's own handle, for `ray.kill` and the tests of Ray itself)."""

    __slots__ = ("actor",)

    def __init__(self, actor: Any) -> None:
        self.actor = actor


class _Process(_Handle):
    """An actor that answers its process id (whether it is alive, and which process it is)."""

    __slots__ = ()

    def pid(self) -> ObjectRef[int]:
        ref: ObjectRef[int] = self.actor.pid.remote()
        return ref


class HostHandle(_Process):
    __slots__ = ()

    def node(self) -> ObjectRef[str]:
        ref: ObjectRef[str] = self.actor.node.remote()
        return ref

    def get(self, entity_id: str) -> ObjectRef[EntityView | None]:
        ref: ObjectRef[EntityView | None] = self.actor.get.remote(entity_id)
        return ref

    def state_at(
        self, entity_id: str, timestamp_ms: int | None, seq: int | None
    ) -> ObjectRef[EntityView | None]:
        ref: ObjectRef[EntityView | None] = self.actor.state_at.remote(entity_id, timestamp_ms, seq)
        return ref

    def history(self, entity_id: str) -> ObjectRef[list[dict[str, Any]]]:
        ref: ObjectRef[list[dict[str, Any]]] = self.actor.history.remote(entity_id)
        return ref

    def reconcile(self, project_id: str, caller: str, dry_run: bool) -> ObjectRef[ReconcileReport]:
        ref: ObjectRef[ReconcileReport] = self.actor.reconcile.remote(
            project_id, caller, dry_run=dry_run
        )
        return ref

    def mentions(self, principal: str) -> ObjectRef[list[str]]:
        ref: ObjectRef[list[str]] = self.actor.mentions.remote(principal)
        return ref

    def erase(self, principal: str, pseudonym: str, whole: frozenset[str]) -> ObjectRef[Erased]:
        ref: ObjectRef[Erased] = self.actor.erase.remote(principal, pseudonym, whole)
        return ref

    def passivate(self, entity_id: str | None = None) -> ObjectRef[None]:
        ref: ObjectRef[None] = self.actor.passivate.remote(entity_id)
        return ref

    def metrics(self) -> ObjectRef[HostMetrics]:
        ref: ObjectRef[HostMetrics] = self.actor.metrics.remote()
        return ref

    def submit_packed(self, envelopes: bytes) -> ObjectRef[bytes]:
        ref: ObjectRef[bytes] = self.actor.submit_packed.remote(envelopes)
        return ref

    def applied(self, message_ids: list[str]) -> ObjectRef[list[str]]:
        ref: ObjectRef[list[str]] = self.actor.applied.remote(message_ids)
        return ref

    def outbox_head(self) -> ObjectRef[int]:
        ref: ObjectRef[int] = self.actor.outbox_head.remote()
        return ref

    def outbox_after(self, seq: int, limit: int) -> ObjectRef[list[tuple[int, Published]]]:
        ref: ObjectRef[list[tuple[int, Published]]] = self.actor.outbox_after.remote(seq, limit)
        return ref

    def outbox_after_packed(self, seq: int, limit: int) -> ObjectRef[bytes]:
        ref: ObjectRef[bytes] = self.actor.outbox_after_packed.remote(seq, limit)
        return ref


class BrokerHandle(_Handle):
    __slots__ = ()

    def head(self) -> ObjectRef[tuple[str, int]]:
        ref: ObjectRef[tuple[str, int]] = self.actor.head.remote()
        return ref

    def register(self, host: str, outbox_seq: int) -> ObjectRef[int]:
        ref: ObjectRef[int] = self.actor.register.remote(host, outbox_seq)
        return ref

    def mark(self, host: str) -> ObjectRef[int | None]:
        ref: ObjectRef[int | None] = self.actor.mark.remote(host)
        return ref

    def publish_encoded(self, host: str, packed: bytes) -> ObjectRef[int]:
        ref: ObjectRef[int] = self.actor.publish_encoded.remote(host, packed)
        return ref

    def poll_encoded(
        self, epoch: str | None, after: int, wanted: Filter, limit: int, wait_s: float
    ) -> ObjectRef[EncodedPoll]:
        ref: ObjectRef[EncodedPoll] = self.actor.poll_encoded.remote(
            epoch, after, wanted, limit, wait_s
        )
        return ref

    def erase(self, principal: str, pseudonym: str, whole: frozenset[str]) -> ObjectRef[None]:
        ref: ObjectRef[None] = self.actor.erase.remote(principal, pseudonym, whole)
        return ref


class CatalogHandle(_Handle):
    __slots__ = ()

    def start(self) -> ObjectRef[None]:
        ref: ObjectRef[None] = self.actor.start.remote()
        return ref

    def marks(self) -> ObjectRef[dict[str, int]]:
        ref: ObjectRef[dict[str, int]] = self.actor.marks.remote()
        return ref

    def query(self, query: Query) -> ObjectRef[Page]:
        ref: ObjectRef[Page] = self.actor.query.remote(query)
        return ref

    def conflicts(
        self, domain: SyncDomain | None, visible_to: str | None
    ) -> ObjectRef[list[dict[str, Any]]]:
        ref: ObjectRef[list[dict[str, Any]]] = self.actor.conflicts.remote(domain, visible_to)
        return ref

    def owned_only_by(self, principal: str) -> ObjectRef[list[str]]:
        ref: ObjectRef[list[str]] = self.actor.owned_only_by.remote(principal)
        return ref

    def erase(self, principal: str, pseudonym: str, whole: frozenset[str]) -> ObjectRef[int]:
        ref: ObjectRef[int] = self.actor.erase.remote(principal, pseudonym, whole)
        return ref


class RouterHandle(_Handle):
    """The router actor: it serves the hosts' own writes (the reconciler's) and anyone without
    a runtime; a runtime routes its own writes with an in-process `Router` on the same table."""

    __slots__ = ()

    def route(self, envelopes: list[Envelope]) -> ObjectRef[list[Outcome]]:
        ref: ObjectRef[list[Outcome]] = self.actor.route.remote(envelopes)
        return ref

    def get(self, entity_id: str) -> ObjectRef[EntityView | None]:
        ref: ObjectRef[EntityView | None] = self.actor.get.remote(entity_id)
        return ref

    def refresh(self) -> ObjectRef[int]:
        ref: ObjectRef[int] = self.actor.refresh.remote()
        return ref

    def table(self) -> ObjectRef[ShardTable]:
        ref: ObjectRef[ShardTable] = self.actor.table.remote()
        return ref

    def retries(self) -> ObjectRef[int]:
        ref: ObjectRef[int] = self.actor.retries.remote()
        return ref


class AdapterHandle(_Process):
    __slots__ = ()

    def status(self) -> ObjectRef[AdapterStatus]:
        ref: ObjectRef[AdapterStatus] = self.actor.status.remote()
        return ref

    def inbound(self, event: Inbound) -> ObjectRef[Answer]:
        ref: ObjectRef[Answer] = self.actor.inbound.remote(event)
        return ref

    def sync(self, entity_ids: Sequence[str]) -> ObjectRef[SyncReport]:
        ref: ObjectRef[SyncReport] = self.actor.sync.remote([*entity_ids])
        return ref

    def test(self, text: str) -> ObjectRef[str]:
        ref: ObjectRef[str] = self.actor.test.remote(text)
        return ref

    def retry(self) -> ObjectRef[int]:
        ref: ObjectRef[int] = self.actor.retry.remote()
        return ref

    def failed(self) -> ObjectRef[list[dict[str, Any]]]:
        ref: ObjectRef[list[dict[str, Any]]] = self.actor.failed.remote()
        return ref


class WatcherHandle(_Process):
    __slots__ = ()

    def check(self, entity_ids: Sequence[str]) -> ObjectRef[list[Checked]]:
        ref: ObjectRef[list[Checked]] = self.actor.check.remote([*entity_ids])
        return ref

    def latest(self) -> ObjectRef[list[Checked]]:
        ref: ObjectRef[list[Checked]] = self.actor.latest.remote()
        return ref

    def register_self(self, url: str, version: str) -> ObjectRef[str]:
        ref: ObjectRef[str] = self.actor.register_self.remote(url, version)
        return ref
