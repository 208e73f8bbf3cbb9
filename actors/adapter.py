"""`AdapterRunner`: one channel adapter bridged to the hub (plain asyncio class, no Ray).

Outbound, it follows every host's durable outbox from marks of its own (`AdapterStore`, in
the same transaction as the deliveries it queues), so a restart resumes exactly where it
stopped. It delivers the queue oldest first, in rounds (one store transaction notes the
round's posts as in flight, one records what it did; entities concurrently, each in order):
per entity only the newest state is shown (an update edits the message that announced the
entity; an unchanged state is not sent again), a conflict the change opened is posted in the
entity's thread, an event or command its target names to this adapter likewise. A post a crash
interrupted is found again by the delivery id it carries, never made twice. With a map of the
service's users (`KnowsAudience`) an entity is withheld from a channel where someone may not
see it. The service's limits are honoured: a 429 waits `Retry-After`,
an unreachable service is retried with capped backoff (`transient_disconnect`), refused
credentials stop delivery (`bad_credentials`), a message refused for good ends `failed`,
visible and retryable. Nothing is dropped.

Inbound, the adapter's events (a reaction, a thread reply, a command) become hub writes as the
adapter's own principal through the router, so scope's audit and dedupe apply: their message
ids derive from the provider's event ids (a redelivered event applies once), and a change that
came from this adapter never comes back to it as a new message (no echo); with a user map,
only a member of what an event touches changes it.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from pydantic import JsonValue

from actors.follower import Follower, Outboxes, Stream
from hub.adapter_store import AdapterStore, InFlight, Job, JobKind, Shown
from hub.adapters import (
    AdapterMessage,
    AdapterState,
    AdapterStatus,
    BadCredentials,
    CanDelete,
    CanEdit,
    CanFind,
    CanSplit,
    ChannelAdapter,
    DeliveryError,
    HearsInbound,
    Inbound,
    KnowsAudience,
    NativeRef,
    PermanentFailure,
    RateLimited,
    TransientFailure,
)
from hub.auth.scope import members
from hub.catalog import Page, Query
from hub.codec import write_message
from hub.domains import SyncDomain
from hub.entity import EntityView
from hub.envelope import Envelope, Outcome, Status
from hub.render import conflict_text, fit, relay_text, state_text, status_of, title
from hub.subscriptions import RELAYED, Published, decode_published

log = logging.getLogger(__name__)

# What channels show; services too, so a change of health reaches them (the spec's alerting).
SHOWN_DOMAINS = frozenset(
    {
        SyncDomain.TODOS,
        SyncDomain.SESSIONS,
        SyncDomain.PROJECTS,
        SyncDomain.TOPICS,
        SyncDomain.SERVICES,
    }
)


class HubCalls(Protocol):
    """What an adapter asks of the hub: route writes, read an entity, list a domain."""

    async def route(self, envelopes: list[Envelope]) -> list[Outcome]: ...

    async def get(self, entity_id: str) -> EntityView | None: ...

    async def list(self, query: Query) -> Page: ...


@dataclass(frozen=True, slots=True)
class Answer:
    """What an inbound event came to: whether it changed the hub, and a line for the person
    (a slash command's reply)."""

    status: str  # applied / duplicate / ignored / refused
    text: str
    entity_id: str | None = None


@dataclass(slots=True)
class SyncReport:
    """What a sync of current state did on this adapter's channel."""

    sent: int = 0
    skipped: int = 0
    failed: int = 0
    withheld: int = 0  # someone on the channel may not see them
    failures: list[str] = field(default_factory=list)


ROUND = 500  # jobs a delivery round takes at most
LANES = 16  # entities a round delivers to at once
FOLLOW_WAIT_S = 1.0  # how long the follow loop waits on the stream for a commit
FIRST = ".state"  # the delivery id of a post that shows an entity before a reply in its thread


@dataclass(slots=True)
class _Round:
    """What a round of deliveries did, recorded in one store transaction at its end."""

    done: list[int] = field(default_factory=list)
    again: list[int] = field(default_factory=list)  # tried; stays queued
    failed: dict[int, str] = field(default_factory=dict)
    shown: dict[str, Shown] = field(default_factory=dict)
    links: list[tuple[str, NativeRef]] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)
    stop: DeliveryError | None = None  # why the round stopped early

    def current(self, store: AdapterStore, entity_id: str) -> Shown | None:
        """What shows the entity: as this round left it, else as stored."""
        return self.shown.get(entity_id) or store.shown(entity_id)


def principal_of(name: str) -> str:
    """The ChittyID an adapter's writes are attributed to."""
    return f"CHITTY-SERVICE-ADAPTER{name.upper()}"


def _derived(prefix: str, *parts: str) -> str:
    """A ChittyID named after what it stands for (the same parts, the same id)."""
    return prefix + hashlib.sha256("\x00".join(parts).encode()).hexdigest()[:26].upper()


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:32]


class AdapterRunner:
    """One adapter, its store, and the loops that feed it (see the module)."""

    def __init__(
        self,
        name: str,
        adapter: ChannelAdapter,
        store: AdapterStore,
        hub: HubCalls,
        outboxes: Outboxes,
        stream: Stream,
        *,
        poll_s: float = 0.1,
        backoff_cap_s: float = 30.0,
        sleep: Callable[[float], Any] = asyncio.sleep,
    ) -> None:
        self.name = name
        self.adapter = adapter
        self.store = store
        self.hub = hub
        self.outboxes = outboxes
        self._follower = Follower(stream, outboxes, store.marks)
        self.node = f"adapter-{name}"
        self.principal = principal_of(name)
        self.state = AdapterState.DISABLED
        self.detail = "not started"
        self.poll_s = poll_s
        self.backoff_cap_s = backoff_cap_s
        self._sleep = sleep
        self._backoff = 0.0
        self._tasks: list[asyncio.Task[None]] = []
        self._wake = asyncio.Event()
        self._deliver_lock = asyncio.Lock()
        self._lanes = asyncio.Semaphore(LANES)
        self.lag = 0
        adapter.on_message(self._on_event)

    # -- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        """Connect (retrying while the service is unreachable) and run the loops."""
        self._tasks = [
            asyncio.create_task(self._run(self.connect), name=f"{self.name}-connect"),
            asyncio.create_task(self._run(self._follow_loop), name=f"{self.name}-follow"),
            asyncio.create_task(self._run(self._deliver_loop), name=f"{self.name}-deliver"),
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        with contextlib.suppress(Exception):
            await self.adapter.disconnect()
        self.state, self.detail = AdapterState.DISABLED, "stopped"

    def poke(self) -> None:
        """Look at the queue now (after something was queued from outside the loops)."""
        self._wake.set()

    async def _run(self, loop: Callable[[], Any]) -> None:
        while True:
            try:
                await loop()
                return
            except asyncio.CancelledError:
                raise
            except Exception:  # our bug: logged, and the loop goes on
                log.exception("%s adapter loop failed; restarting it", self.name)
                await self._sleep(1.0)

    async def connect(self) -> None:
        """Connect; while the service is unreachable, retry with capped backoff. Then settle
        what a crash left in flight before anything new is delivered."""
        try:
            await self._begin()
        except Exception as error:  # the hosts not up yet: the follow loop begins instead
            log.debug("%s adapter: beginning: %r", self.name, error)
        while True:
            try:
                await self.adapter.connect()
                await self._recover()
            except BadCredentials as error:
                self._mark(AdapterState.BAD_CREDENTIALS, str(error))
                return  # fix the settings and restart the adapter
            except PermanentFailure as error:  # it cannot run here: say why, try no more
                self._mark(AdapterState.DISABLED, str(error))
                return
            except (TransientFailure, DeliveryError, OSError) as error:
                self._mark(AdapterState.TRANSIENT_DISCONNECT, str(error))
                await self._sleep(self._next_backoff())
                continue
            self._connected()
            return

    async def _recover(self) -> None:
        """Settle posts a crash interrupted: one the service has is recorded as delivered,
        one it has not is left queued (posted once, either way)."""
        notes = self.store.in_flight()
        found: dict[str, NativeRef] = {}
        if notes and isinstance(self.adapter, CanFind):
            adapter = self.adapter

            def ids(note: InFlight) -> set[str]:
                return {self._delivery(note.job_id) + end for end in ("", FIRST)}

            places: dict[tuple[str, str | None], list[InFlight]] = {}
            for note in notes:
                places.setdefault((note.channel, note.thread_root), []).append(note)
            for (channel, root), some in places.items():
                wanted = set().union(*map(ids, some))
                found |= await adapter.find(channel, root, wanted, min(n.at_s for n in some))
            # A reply may sit under a post the same round made (the entity had none before).
            tops: dict[str, list[NativeRef]] = {}
            for note in notes:
                for d in ids(note):
                    if (ref := found.get(d)) is not None and ref.thread_root is None:
                        tops.setdefault(note.entity_id, []).append(ref)
            for note in notes:
                for top in tops.get(note.entity_id, []):
                    if missing := ids(note) - found.keys():
                        found |= await adapter.find(top.channel, top.message_id, missing, note.at_s)
        rnd = _Round()
        for note in notes:
            job = self.store.job(note.job_id)
            delivery = self._delivery(note.job_id)
            if job is None:
                continue
            for ref in filter(None, (found.get(delivery + FIRST), found.get(delivery))):
                rnd.counts["sent"] += 1
                if ref.thread_root is None:  # the digest is unknown: the next state is an edit
                    rnd.shown[job.entity_id] = Shown(ref, job.seq, "")
                else:
                    rnd.links.append((job.entity_id, ref))
            if delivery in found:  # else not posted (maybe its first post was): it stays queued
                rnd.done.append(job.id)
        if notes:
            self.store.finish(
                done=rnd.done,
                noted=[n.job_id for n in notes],
                shown=rnd.shown,
                links=rnd.links,
                counts=rnd.counts,
            )

    def _mark(self, state: AdapterState, detail: str) -> None:
        if state is not self.state:
            log.info("%s adapter: %s (%s)", self.name, state.value, detail)
        self.state, self.detail = state, detail

    def _connected(self) -> None:
        self._backoff = 0.0
        self._mark(AdapterState.CONNECTED, "connected")
        self._wake.set()

    def _next_backoff(self) -> float:
        self._backoff = min(max(self._backoff * 2, 0.25), self.backoff_cap_s)
        return self._backoff

    # -- following the hub's stream -------------------------------------------------------------

    async def _follow_loop(self) -> None:
        while True:
            try:
                if await self.follow_once(wait_s=FOLLOW_WAIT_S):
                    self._wake.set()
            except Exception as error:  # a host or the broker restarting: catch up again
                log.debug("%s adapter: following the stream: %r", self.name, error)
                await self._sleep(self.poll_s)

    async def _begin(self) -> None:
        """A new adapter starts from now: its marks at every host's newest entry, once (what
        changed before it was configured is not posted; a sync sends current state). A host
        that appears later is followed from its first entry."""
        if not self.store.began():
            self.store.begin(
                {host: await self.outboxes.head(host) for host in self.outboxes.hosts()}
            )

    async def follow_once(self, limit: int = 2000, wait_s: float = 0.0) -> int:
        """Take what the hosts committed past this adapter's marks (`actors.follower`: the
        stream, caught up from the outboxes), waiting up to `wait_s`; how many entries."""
        await self._begin()
        taken = lag = 0
        try:
            for host, rows in await self._follower.next(limit, wait_s):
                items = [(seq, decode_published(body), body) for seq, body in rows]
                self.store.take(host, items, self._wanted, self._echo)
                taken += len(rows)
                lag += len(rows) >= limit
        except Exception:
            self._follower.reset()  # what was not taken comes again
            raise
        self.lag = lag * limit
        return taken

    def _reaches(self, item: Published) -> bool:
        return item.reach.reaches(self.node, self.adapter.channel)

    def _wanted(self, item: Published) -> tuple[JobKind, ...]:
        """The deliveries one published change owes this channel."""
        if not self._reaches(item):
            return ()
        if item.kind in RELAYED:
            return ("relay",)
        if item.domain not in SHOWN_DOMAINS:
            return ()
        if self.adapter.channel_for(item.project_id) is None:
            return ()
        opened = {str(c.get("conflictId")) for c in item.open_conflicts}
        conflicts: tuple[JobKind, ...] = (
            ("conflict",) if any(c in opened for c in item.conflicts) else ()
        )
        return ("state", *conflicts)

    def _echo(self, item: Published) -> bool:
        return item.node_id == self.node and item.platform == self.adapter.channel

    # -- delivering ---------------------------------------------------------------------------

    async def _deliver_loop(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=1.0)
            self._wake.clear()
            if self.state is not AdapterState.CONNECTED:
                continue
            wait = await self.deliver_once()
            if wait:
                await self._sleep(wait)
                self._wake.set()
            elif self.store.pending():
                self._wake.set()

    def _delivery(self, job_id: int) -> str:
        """The id a post of this job carries (where the channel keeps one), to find it again."""
        return f"{self.store.instance}:{job_id}"

    async def deliver_once(self, limit: int = ROUND) -> float:
        """One round: the oldest queued jobs (up to `limit`), a newer state of an entity
        superseding an older one, entities delivered concurrently (each in order), settled in
        one store transaction; how long the service asked to wait (0: go on)."""
        async with self._deliver_lock:
            jobs = self.store.jobs(limit)
            if not jobs:
                return 0.0
            newest = {j.entity_id: j.id for j in jobs if j.kind == "state"}
            rnd = _Round()
            groups: dict[str, list[tuple[Job, Published]]] = {}
            notes = []
            now = time.time()
            for job in jobs:
                if job.kind == "state" and newest[job.entity_id] != job.id:
                    rnd.done.append(job.id)  # a newer state of the entity is queued
                    continue
                item = decode_published(job.body)
                shown = self.store.shown(job.entity_id)
                if shown is not None:  # an edit (never found: done again) or a thread reply
                    root = shown.ref.message_id
                    notes.append(InFlight(job.id, job.entity_id, shown.ref.channel, root, now))
                elif channel := self.adapter.channel_for(item.project_id):
                    notes.append(InFlight(job.id, job.entity_id, channel, None, now))
                groups.setdefault(job.entity_id, []).append((job, item))
            self.store.posting(notes)
            outcomes = await asyncio.gather(
                *(self._deliver_entity(g, rnd) for g in groups.values()), return_exceptions=True
            )
            self.store.finish(
                done=rnd.done,
                again=rnd.again,
                failed=rnd.failed,
                noted=[n.job_id for n in notes],
                shown=rnd.shown,
                links=rnd.links,
                counts=rnd.counts,
            )
            for outcome in outcomes:
                if isinstance(outcome, BaseException):
                    raise outcome  # our bug, after what the round did is recorded
            if isinstance(rnd.stop, BadCredentials):
                self._mark(AdapterState.BAD_CREDENTIALS, str(rnd.stop))
            elif isinstance(rnd.stop, TransientFailure):
                self._mark(AdapterState.TRANSIENT_DISCONNECT, str(rnd.stop))
                self._tasks.append(asyncio.create_task(self._reconnect()))
            return rnd.stop.retry_after_s if isinstance(rnd.stop, RateLimited) else 0.0

    async def _deliver_entity(self, jobs: list[tuple[Job, Published]], rnd: _Round) -> None:
        """One entity's jobs of a round, in order; a stop (rate limit, refused credentials,
        unreachable service) leaves the rest queued."""
        async with self._lanes:
            for job, item in jobs:
                if rnd.stop is not None:
                    return
                try:
                    await self._deliver(job, item, rnd)
                except (RateLimited, BadCredentials, TransientFailure) as error:
                    rnd.again.append(job.id)
                    rnd.stop = error
                    return
                except PermanentFailure as error:
                    rnd.failed[job.id] = str(error)
                    continue
                rnd.done.append(job.id)

    async def _reconnect(self) -> None:
        await self._sleep(self._next_backoff())
        await self.connect()

    async def _deliver(self, job: Job, item: Published, rnd: _Round) -> None:
        """One job to the channel (what it did goes to `rnd`)."""
        channel = self._channel(item, rnd.current(self.store, item.entity_id))
        if channel is not None and await self._withheld(item, channel):
            rnd.counts["withheld"] += 1
            return
        delivery = self._delivery(job.id)
        if job.kind == "state":
            await self._show(item, job.seq, job.echo, rnd, delivery)
            return
        shown = rnd.current(self.store, item.entity_id)
        if shown is None:  # a thread reply needs the entity's message first
            if not job.echo:
                await self._show(item, job.seq, False, rnd, delivery + FIRST)
            shown = rnd.current(self.store, item.entity_id)
            if shown is None:
                rnd.counts["skipped"] += 1
                return
        if job.kind == "conflict":
            texts = [
                conflict_text(c)
                for c in item.open_conflicts
                if str(c.get("conflictId")) in item.conflicts
            ]
            text = "\n".join(texts)
        else:
            text = relay_text(item.kind, item.data or {})
        message = self._message(item, text, job.kind, shown.ref, delivery)
        rnd.links.append((item.entity_id, await self.adapter.send_message(message)))
        rnd.counts["sent"] += 1

    def _channel(self, item: Published, shown: Shown | None) -> str | None:
        """Where the entity shows: its message's channel, else its project's (None: nowhere)."""
        return shown.ref.channel if shown else self.adapter.channel_for(item.project_id)

    def _message(
        self,
        item: Published,
        text: str,
        kind: str,
        thread: NativeRef | None = None,
        delivery: str = "",
    ) -> AdapterMessage:
        channel = thread.channel if thread else self.adapter.channel_for(item.project_id)
        assert channel is not None
        most = self.adapter.get_capabilities().max_message_length
        return AdapterMessage(
            item.entity_id,
            text if isinstance(self.adapter, CanSplit) else fit(text, most),  # never cut silently
            self.principal,
            channel,
            title(item.domain.value, item.entity),
            item.domain.value,
            item.entity,
            kind,
            thread,
            item.timestamp_ms,
            delivery,
        )

    async def _show(
        self, item: Published, seq: int, echo: bool, rnd: _Round, delivery: str = ""
    ) -> None:
        """Make the channel show the entity as `item` has it: edit its message, or post one
        (what it did goes to `rnd`)."""
        deleted = item.kind == "deleted"
        text = state_text(item.domain.value, item.entity, deleted)
        digest = _digest(text)
        shown = rnd.current(self.store, item.entity_id)
        if shown is not None and (shown.seq > seq or shown.digest == digest):
            rnd.counts["skipped"] += 1  # it shows a newer state, or this very one
            return
        message = self._message(item, text, "state", delivery=delivery)
        if shown is None:
            if echo or deleted:
                rnd.counts["skipped"] += 1  # never post anew what came from this channel
                return
            ref = await self.adapter.send_message(message)
        elif deleted and isinstance(self.adapter, CanDelete):
            await self.adapter.delete_message(shown.ref)
            ref = shown.ref
        elif isinstance(self.adapter, CanEdit):
            try:
                ref = await self.adapter.edit_message(shown.ref, message)
            except PermanentFailure as error:
                if "message_not_found" not in str(error):
                    raise
                ref = await self.adapter.send_message(message)  # deleted by someone: anew
        else:  # no edits on this channel: the new state, marked as one, in the entity's thread
            updated = self._message(item, "updated: " + text, "state", shown.ref, delivery)
            rnd.links.append((item.entity_id, await self.adapter.send_message(updated)))
            ref = shown.ref
        rnd.shown[item.entity_id] = Shown(ref, seq, digest)
        rnd.counts["sent"] += 1

    # -- who may see and change what ------------------------------------------------------------

    def _maps_users(self) -> KnowsAudience | None:
        adapter = self.adapter
        return adapter if isinstance(adapter, KnowsAudience) and adapter.maps_users() else None

    async def _withheld(self, item: Published, channel: str) -> bool:
        """Whether someone on the channel may not see the entity (only known with a user map)."""
        adapter = self._maps_users()
        if adapter is None:
            return False
        outside = await adapter.audience(channel) - await self._members(
            item.domain.value, item.entity_id, item.entity
        )
        if outside:
            log.info("%s adapter: %s withheld from %s", self.name, item.entity_id, channel)
        return bool(outside)

    async def _members(
        self, domain: str, entity_id: str, entity: Mapping[str, Any]
    ) -> frozenset[str]:
        """The entity's members, own and inherited from its session and project (the rule the
        hub's scope applies to every read)."""
        parents: dict[str, Mapping[str, Any]] = {}
        refs = [entity.get("sessionId"), entity.get("projectId")]
        while refs:
            ref = refs.pop()
            if not isinstance(ref, str) or not ref or ref == entity_id or ref in parents:
                continue
            view = await self.hub.get(ref)
            if view is not None:
                parents[ref] = view.entity
                refs.append(view.entity.get("projectId"))
        return members(domain, entity, parents.get)

    async def _refusal(self, event: Inbound, view: EntityView) -> str | None:
        """Why the person behind an inbound event may not change the entity (None: they may,
        or the adapter is not told who is who)."""
        adapter = self._maps_users()
        if adapter is None:
            return None
        who = adapter.principal_for(event.actor)
        if who is None:
            return f"{event.actor} is not a hub user this channel knows (its user map)"
        if who not in await self._members(view.domain, view.entity_id, view.entity):
            return f"{who} is not a member of {view.entity_id}"
        return None

    # -- sync and test ------------------------------------------------------------------------

    async def sync(self, views: Sequence[EntityView]) -> SyncReport:
        """Deliver the current state of these entities now: sent, skipped (unchanged), or
        failed (with why); a rate limit is waited out."""
        report = SyncReport()
        rnd = _Round()
        async with self._deliver_lock:
            try:
                for view in views:
                    item = _as_published(view)
                    shown = self.store.shown(item.entity_id)
                    channel = (
                        shown.ref.channel if shown else self.adapter.channel_for(item.project_id)
                    )
                    if channel is None:
                        report.skipped += 1
                        continue
                    if await self._withheld(item, channel):
                        rnd.counts["withheld"] += 1
                        report.withheld += 1
                        continue
                    while True:
                        try:
                            await self._show(item, view.seq, False, rnd)
                        except RateLimited as error:
                            rnd.counts["retried"] += 1
                            await self._sleep(error.retry_after_s)
                            continue
                        except DeliveryError as error:
                            report.failed += 1
                            report.failures.append(f"{view.entity_id}: {error}")
                        break
            finally:
                self.store.finish(shown=rnd.shown, links=rnd.links, counts=rnd.counts)
        report.sent += rnd.counts["sent"]
        report.skipped += rnd.counts["skipped"]
        return report

    async def test(self, text: str = "ChittyChat Hub: a test message from the hub") -> NativeRef:
        """Post a test message to the default channel (raises the delivery's error)."""
        channel = self.adapter.channel_for(None)
        if channel is None:
            raise PermanentFailure("no default channel configured")
        message = AdapterMessage("", text, self.principal, channel, "test", kind="test")
        ref = await self.adapter.send_message(message)
        self.store.count(sent=1)
        return ref

    def status(self) -> AdapterStatus:
        counts = self.store.counters()
        return AdapterStatus(
            self.name,
            "channel",
            self.state,
            True,
            (),
            self.detail,
            counts["sent"],
            counts["received"],
            counts["retried"],
            counts["failed"],
            self.store.pending(),
            self.lag,
            counts["ignored"],
            counts["withheld"],
        )

    # -- inbound ------------------------------------------------------------------------------

    async def _on_event(self, event: Inbound) -> None:
        await self.inbound(event)

    async def inbound(self, event: Inbound) -> Answer:
        """Act on what a person did on the channel (see `Inbound`), and tell an adapter that
        hears inbound events what came of it."""
        answer = await self._act(event)
        if isinstance(self.adapter, HearsInbound):
            await self.adapter.heard(event, answer.status, answer.text)
        return answer

    async def _act(self, event: Inbound) -> Answer:
        if event.kind == "status":
            return self._status(event)
        if event.kind == "command":
            answer = await self._command(event)
            if event.answer_here:
                await self._answer(event, answer)
            return answer
        if event.kind == "ignored":
            self.store.count(ignored=1)
            return Answer("ignored", event.text)
        if event.kind == "new":
            return await self._new_todo(event)
        entity_id = (
            self.store.entity_of(event.ref.channel, event.ref.message_id) if event.ref else None
        )
        if entity_id is None:
            return Answer("ignored", "that message is not one the hub posted")
        view = await self.hub.get(entity_id)
        if view is None or view.deleted:
            return Answer("ignored", f"{entity_id} no longer exists", entity_id)
        if (refusal := await self._refusal(event, view)) is not None:
            self.store.count(ignored=1)
            return Answer("ignored", refusal, entity_id)
        if event.kind == "complete":
            if view.domain != SyncDomain.TODOS.value:
                return Answer("ignored", f"{entity_id} is not a todo", entity_id)
            return await self._write(event, "todos", entity_id, {"status": "completed"})
        session = entity_id if view.domain == SyncDomain.SESSIONS.value else None
        if view.domain == SyncDomain.TODOS.value:
            session = str(view.entity.get("sessionId"))
        if session is None:
            return Answer("ignored", f"{entity_id} has no session context to add to", entity_id)
        note = {"role": f"{self.adapter.channel}:{event.actor}", "content": event.text}
        delta = {"add": {"context.messages": [note]}}
        return await self._write(event, "sessions", session, {}, delta)

    def _status(self, event: Inbound) -> Answer:
        """The service's word on a message the hub sent, recorded against the message map (a
        failure counts as a failed delivery)."""
        ref = event.ref
        entity_id = self.store.entity_of(ref.channel, ref.message_id) if ref else None
        if ref is None or entity_id is None:
            return Answer("ignored", "that message is not one the hub posted")
        status = event.arguments.get("status", "")
        if not self.store.note_status(ref.channel, ref.message_id, status, event.text):
            return Answer("duplicate", status, entity_id)
        if status == "failed":
            why = event.text
            log.warning("%s adapter: a post of %s failed: %s", self.name, entity_id, why)
        return Answer("applied", status, entity_id)

    async def _write(
        self,
        event: Inbound,
        domain: str,
        entity_id: str,
        data: Mapping[str, JsonValue],
        delta: Mapping[str, Any] | None = None,
        operation: str = "update",
        salt: str = "",
    ) -> Answer:
        """One write on behalf of the channel, named after the provider's event id."""
        key = f"{self.name}\x00{event.provider_id}\x00{salt}"
        message = write_message(
            message_id="in-" + hashlib.sha256(key.encode()).hexdigest()[:40],
            node_id=self.node,
            platform=self.adapter.channel,
            chitty_id=self.principal,
            domain=domain,
            operation=operation,
            entity_id=entity_id,
            data=data,
            timestamp=datetime.now(UTC),
            delta=delta,
        )
        [outcome] = await self.hub.route([Envelope.of(message)])
        if outcome.status in (Status.APPLIED, Status.DUPLICATE):
            if outcome.status is Status.APPLIED:
                self.store.count(received=1)
            return Answer(outcome.status.value, "done", entity_id)
        reason = outcome.reason or outcome.status.value
        return Answer("refused", f"the hub refused it: {reason}", entity_id)

    # -- the /chitty command ------------------------------------------------------------------

    async def _answer(self, event: Inbound, answer: Answer) -> None:
        """Post a command's answer where it was asked (in the thread it was asked in)."""
        message = AdapterMessage(
            answer.entity_id or "",
            answer.text,
            self.principal,
            event.channel,
            kind="answer",
            thread=event.ref,
        )
        try:
            await self.adapter.send_message(message)
            self.store.count(sent=1)
        except DeliveryError as error:  # the command itself stands; only its answer is lost
            log.warning("%s: the answer to a command was not delivered: %s", self.name, error)

    async def _command(self, event: Inbound) -> Answer:
        """`todo add <text>`, `todo list`, `todo done <n or id>` in the channel's session."""
        words = event.text.split(maxsplit=2)
        usage = "usage: /chitty todo add <text> | todo list | todo done <number or CHITTY-TODO id>"
        if len(words) < 2 or words[0] != "todo" or words[1] not in ("add", "list", "done"):
            return Answer("ignored", usage)
        session = await self._session_of(event)
        view = await self.hub.get(session)
        if view is not None and (refusal := await self._refusal(event, view)) is not None:
            self.store.count(ignored=1)
            return Answer("ignored", refusal)
        if words[1] == "add":
            if len(words) < 3:
                return Answer("ignored", usage)
            todo_id, answer = await self._add_todo(event, session, words[2])
            if answer.status in ("applied", "duplicate"):
                return Answer(answer.status, f"added {words[2]!r} ({todo_id})", todo_id)
            return answer
        todos = await self._open_todos(session)
        if words[1] == "list":
            if not todos:
                return Answer("applied", "no open todos")
            lines = [f"{n}. {t['content']} ({t['status']})" for n, t in enumerate(todos, 1)]
            return Answer("applied", "\n".join(lines))
        target = words[2] if len(words) > 2 else ""
        chosen = next((t for t in todos if t["chittyId"] == target), None)
        if chosen is None and target.isdigit() and 0 < int(target) <= len(todos):
            chosen = todos[int(target) - 1]
        if chosen is None and target.startswith("CHITTY-TODO-"):
            chosen = await self._elsewhere(event, target)  # any todo it shows, by its id
        if chosen is None:
            return Answer("ignored", f"no open todo {target!r}; `/chitty todo list` shows them")
        answer = await self._write(event, "todos", chosen["chittyId"], {"status": "completed"})
        if answer.status in ("applied", "duplicate"):
            return Answer(answer.status, f"completed {chosen['content']!r}", answer.entity_id)
        return answer

    async def _elsewhere(self, event: Inbound, todo: str) -> dict[str, Any] | None:
        """An open todo of another session, named by its id: one this channel shows (those it
        was given to see), if whoever asks may change it."""
        if self.store.shown(todo) is None:
            return None
        view = await self.hub.get(todo)
        if view is None or view.deleted or view.domain != SyncDomain.TODOS.value:
            return None
        if view.entity.get("status") == "completed" or await self._refusal(event, view):
            return None
        return view.entity

    async def _new_todo(self, event: Inbound) -> Answer:
        """A new message to the hub (a mail): a todo in the sender's session, its text added
        to that session's context."""
        session = await self._session_of(event)
        content = event.text[:10_000] or "(no subject)"
        todo_id, answer = await self._add_todo(event, session, content)
        body = event.arguments.get("body", "")
        if body and answer.status == "applied":
            note = {"role": f"{self.adapter.channel}:{event.actor}", "content": body}
            delta = {"add": {"context.messages": [note]}}
            await self._write(event, "sessions", session, {}, delta, salt="body")
        return Answer(answer.status, f"added {content!r} ({todo_id})", todo_id)

    async def _add_todo(self, event: Inbound, session: str, content: str) -> tuple[str, Answer]:
        """Create the todo an inbound event asks for, in `session` and the channel's project
        (its id named after the provider's event id: a redelivery makes it once)."""
        todo_id = _derived("CHITTY-TODO-", self.name, event.provider_id)
        fields: dict[str, JsonValue] = {
            "content": content,
            "sessionId": session,
            "createdBy": self.principal,
        }
        project = self._project_of(event.channel)
        if project is not None:  # a todo takes its session's project
            fields["projectId"] = project
        return todo_id, await self._write(event, "todos", todo_id, fields, operation="create")

    async def _session_of(self, event: Inbound) -> str:
        """The hub session that stands for this channel (made on first use, in the project
        the channel is mapped to, if any)."""
        session = _derived("CHITTY-SESSION-", self.name, event.channel)
        if await self.hub.get(session) is None:
            fields: dict[str, JsonValue] = {
                "sessionId": event.channel,
                "platform": self.adapter.channel,
                "createdBy": self.principal,
            }
            project = self._project_of(event.channel)
            if project is not None:
                fields["projectId"] = project
            await self._write(event, "sessions", session, fields, operation="create", salt="s")
        return session

    def _project_of(self, channel: str) -> str | None:
        find = getattr(self.adapter, "project_of", None)
        project = find(channel) if find is not None else None
        return str(project) if project is not None else None

    async def _open_todos(self, session: str) -> list[dict[str, Any]]:
        page = await self.hub.list(Query(SyncDomain.TODOS, session_id=session, limit=100))
        return [dict(row.entity) for row in page.rows if status_of(row.entity) != "completed"]


def _as_published(view: EntityView) -> Published:
    """An entity's current view as a publication of its state (what a sync delivers)."""
    domain = SyncDomain(view.domain)
    entity = view.entity

    def text(key: str) -> str | None:
        value = entity.get(key)
        return value if isinstance(value, str) else None

    return Published(
        0,
        domain,
        view.entity_id,
        "deleted" if view.deleted else "updated",
        view.seq,
        "",
        "hub",
        "hub",
        view.entity_id if domain is SyncDomain.PROJECTS else text("projectId"),
        view.entity_id if domain is SyncDomain.SESSIONS else text("sessionId"),
        view.entity_id if domain is SyncDomain.TOPICS else text("topicId"),
        view.clock,
        (),
        entity,
        (),
        int(time.time() * 1000),
        tuple(view.conflicts),
    )
