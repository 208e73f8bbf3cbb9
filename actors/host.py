"""`EntityHost`: many virtual entity actors on one checkpoint store (plain class, no Ray).

Each entity is activated on its first message (newest snapshot + replay), handles one message at
a time, and is passivated when idle or when the host holds too many (LRU), after a snapshot.
A batch's events, its outbox entries and its dedupe records are committed in one LMDB write
transaction before any outcome is returned: an `applied` outcome means durable.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, NamedTuple

from hub.codec import DecodeError
from hub.entity import (
    EntityState,
    EntityView,
    Refusal,
    RejectedMessage,
    apply,
    entity_view,
    view,
)
from hub.envelope import Envelope, Outcome, Status
from hub.erasure import Erased, erase
from hub.message import decode
from hub.replay import EntityReplayer, decode_event, encode_event
from hub.settings import HubSettings
from hub.store import (
    CheckpointStore,
    CorruptEntityError,
    DedupeEntry,
    EntityCheck,
    NewEvent,
    NewSnapshot,
    SnapshotPolicy,
    StoreError,
    load,
    state_at,
    take_snapshot,
)
from hub.subscriptions import (
    OUTBOX_PREFIX,
    RELAYED,
    Published,
    decode_published,
    encode_published,
    outbox_id,
    publication,
    relay,
)

log = logging.getLogger(__name__)


@dataclass(slots=True)
class _Activation:
    state: EntityState | None
    seq: int
    snapshot_seq: int
    last_used: float
    last_ms: int  # time of the newest event: a host on a node with a slower clock never goes back


@dataclass(slots=True)
class HostMetrics:
    """Counters and gauges of one host (exported by the gateway's /metrics)."""

    batches: int = 0
    messages: int = 0
    applied: int = 0
    duplicates: int = 0
    rejected: int = 0
    expired: int = 0
    activations: int = 0
    passivations: int = 0
    snapshots: int = 0
    activation_seconds: float = 0.0
    turn_seconds: float = 0.0
    commit_seconds: float = 0.0
    active_entities: int = 0
    publish_failures: int = 0
    corrupt_entities: int = 0  # entities whose stored data failed their check as they loaded
    extra: dict[str, float] = field(default_factory=dict)


class Turn(NamedTuple):
    """What one batch did: an outcome per envelope, in order, and the publications it produced
    (already in the durable outbox), each with its outbox encoding (`encode_published`)."""

    outcomes: list[Outcome]
    published: list[Published]
    encoded: list[bytes]


class EntityHost:
    """Hosts entity actors; every public method is one turn (callers serialise turns)."""

    def __init__(
        self,
        name: str,
        store: CheckpointStore,
        settings: HubSettings,
        now_ms: Callable[[], int] = lambda: time.time_ns() // 1_000_000,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = name
        self.store = store
        self.settings = settings
        self.metrics = HostMetrics()
        self._now_ms = now_ms
        self._monotonic = monotonic
        self._replayer = EntityReplayer()
        self._policy = SnapshotPolicy(settings.snapshot_every)
        self._active: OrderedDict[str, _Activation] = OrderedDict()
        self._corrupt: dict[str, CorruptEntityError] = {}  # found damaged: never served
        self._outbox = outbox_id(name)
        self._outbox_seq = store.last_seq(self._outbox)
        self._last_ms = max(
            (e.timestamp_ms for e in store.events(self._outbox, max(self._outbox_seq - 1, 0))),
            default=0,
        )

    # -- activation ---------------------------------------------------------------------------

    def _activate(self, entity_id: str) -> _Activation:
        found = self._active.get(entity_id)
        if found is not None:
            self._active.move_to_end(entity_id)
            found.last_used = self._monotonic()
            return found
        started = time.perf_counter()
        check = self._checked(entity_id)
        if check.last_seq == 0:  # a new entity: nothing to load
            activation = _Activation(None, 0, 0, self._monotonic(), 0)
        else:
            try:
                recovered = load(self.store, entity_id, self._replayer)
                snapshot = self.store.latest_snapshot(entity_id)
            except StoreError as error:  # damaged between the check and the load
                raise self._damaged(entity_id, str(error)) from None
            activation = _Activation(
                recovered.state,
                recovered.seq,
                snapshot.seq if snapshot is not None else 0,
                self._monotonic(),
                check.last_timestamp_ms,
            )
        self._active[entity_id] = activation
        self.metrics.activations += 1
        self.metrics.activation_seconds += time.perf_counter() - started
        return activation

    def _checked(self, entity_id: str) -> EntityCheck:
        """The entity's stored data checked as it loads (chain, recorded head, snapshot);
        `CorruptEntityError` when any of it is damaged (remembered: found and logged once)."""
        known = self._corrupt.get(entity_id)
        if known is not None:
            raise known
        check = self.store.check_entity(entity_id)
        if not check.ok:
            damage = "; ".join(
                f"{c.database} {c.kind.value}" + (f" at seq {c.seq}" if c.seq else "")
                for c in check.corruptions[:3]
            )
            raise self._damaged(entity_id, damage)
        return check

    def _damaged(self, entity_id: str, damage: str) -> CorruptEntityError:
        error = CorruptEntityError(entity_id, damage)
        self._corrupt[entity_id] = error
        self.metrics.corrupt_entities += 1
        log.error("host %s: %s", self.name, error)
        return error

    def _passivate(self, entity_id: str) -> None:
        activation = self._active.pop(entity_id)
        # A snapshot only pays for itself when replaying the tail would cost more than writing it.
        unsnapped = activation.seq - activation.snapshot_seq
        if activation.state is not None and unsnapped >= self.settings.passivate_snapshot_min:
            take_snapshot(self.store, entity_id, activation.state, activation.seq, self._replayer)
            self.metrics.snapshots += 1
        self.metrics.passivations += 1

    def passivate_idle(self) -> int:
        """Passivate entities idle longer than the limit, and the LRU ones over the cap."""
        now = self._monotonic()
        limit = self.settings.idle_passivate_s
        idle = []
        for entity_id, activation in self._active.items():  # least recently used first
            if now - activation.last_used <= limit:
                break
            idle.append(entity_id)
        for entity_id in idle:
            self._passivate(entity_id)
        over = len(self._active) - self.settings.max_active_entities
        for entity_id in list(self._active)[: max(over, 0)]:
            self._passivate(entity_id)
        self.metrics.active_entities = len(self._active)
        return len(idle) + max(over, 0)

    def release(self, entity_id: str) -> None:
        """Snapshot and release one entity (before another host takes it over)."""
        if entity_id in self._active:
            self._passivate(entity_id)
        self.metrics.active_entities = len(self._active)

    def erase(self, principal: str, pseudonym: str, whole: frozenset[str]) -> Erased:
        """Erase a principal from this node's store (see hub.erasure); active entities are
        dropped first without a snapshot, so nothing in memory outlives the erasure."""
        self._active.clear()
        self.metrics.active_entities = 0
        return erase(
            self.store,
            principal,
            pseudonym,
            whole,
            is_outbox=lambda entity_id: entity_id.startswith(OUTBOX_PREFIX),
        )

    def passivate_all(self) -> None:
        """Snapshot and release every entity (clean shutdown)."""
        for entity_id in list(self._active):
            self._passivate(entity_id)
        self.metrics.active_entities = 0

    # -- the message turn ---------------------------------------------------------------------

    def _stamp(self) -> int:
        # Event times only move forward per host, whatever the wall clock does.
        self._last_ms = max(self._last_ms, self._now_ms())
        return self._last_ms

    def handle(self, envelopes: Sequence[Envelope]) -> Turn:
        """Apply a batch and commit it in one transaction; outcomes in envelope order."""
        started = time.perf_counter()
        now = self._now_ms()
        outcomes: list[Outcome | None] = [None] * len(envelopes)
        staged: dict[str, tuple[EntityState | None, int]] = {}
        first_seq: dict[str, int] = {}  # each staged entity's seq before this turn
        new_events: list[NewEvent] = []
        publications: list[Published] = []
        stamps: list[int] = []  # each publication's time
        seen_ids: set[str] = set()
        recorded = self.store.dedupe_get_many([e.message_id for e in envelopes])
        for index, envelope in enumerate(envelopes):
            outcome = self._precheck(envelope, now, seen_ids, recorded[index])
            seen_ids.add(envelope.message_id)
            if outcome is not None:
                outcomes[index] = outcome
                continue
            entity_id = envelope.entity_id
            if entity_id not in staged:
                try:
                    activation = self._activate(entity_id)
                except CorruptEntityError as error:
                    outcomes[index] = Outcome(
                        envelope.message_id, Status.CORRUPT, entity_id, reason=str(error)
                    )
                    continue
                staged[entity_id] = (activation.state, activation.seq)
                first_seq[entity_id] = activation.seq
            state, seq = staged[entity_id]
            try:
                message = decode(envelope.body)  # validated at the edge, once
                if message.type in RELAYED:  # relayed, no state changes
                    if state is None or state.deleted:
                        verb = "was deleted" if state is not None else "does not exist"
                        reason = f"{entity_id} {verb}: a {message.type} needs its entity"
                        raise RejectedMessage("payload.entity.chittyId", reason, Refusal.NOT_FOUND)
                    stamp = max(self._stamp(), self._active[entity_id].last_ms)
                    publications.append(relay(message, state, seq, stamp))
                    stamps.append(stamp)
                    clock = state.clock.to_dict()
                    outcomes[index] = Outcome(
                        envelope.message_id, Status.APPLIED, entity_id, seq, clock
                    )
                    continue
                result = apply(state, message)
            except DecodeError as error:
                outcomes[index] = _refused(
                    envelope, seq, state, error.field, error.reason, "invalid"
                )
                continue
            except RejectedMessage as error:
                outcomes[index] = _refused(
                    envelope, seq, state, error.field, error.reason, error.kind
                )
                continue
            if not result.events:
                status = Status.DUPLICATE if message.writes else Status.IGNORED
                outcomes[index] = Outcome(
                    envelope.message_id,
                    status,
                    entity_id,
                    seq,
                    state.clock.to_dict() if state is not None else {},
                )
                continue
            assert result.state is not None
            stamp = max(self._stamp(), self._active[entity_id].last_ms)
            for event in result.events:
                seq += 1
                new_events.append(NewEvent(entity_id, stamp, encode_event(event)))
                publications.append(publication(event, result.state, seq, before=state))
                stamps.append(stamp)
            staged[entity_id] = (result.state, seq)
            outcomes[index] = Outcome(
                envelope.message_id,
                Status.APPLIED,
                entity_id,
                seq,
                result.state.clock.to_dict(),
                conflicts=tuple(c.model_dump(mode="json") for c in result.conflicts),
                entity=view(result.state) if envelope.with_entity else None,
            )
        self.metrics.turn_seconds += time.perf_counter() - started
        final = [o for o in outcomes if o is not None]
        assert len(final) == len(envelopes)
        for index, envelope in enumerate(envelopes):  # remembered with what was asked
            if envelope.fingerprint and final[index].status in _RECORDED:
                final[index] = replace(final[index], fingerprint=envelope.fingerprint)
        # Snapshots due go in the batch's own commit: no commit (and no fsync) of their own.
        snapshots = [
            NewSnapshot(entity_id, seq, self._replayer.encode_state(state))
            for entity_id, (state, seq) in staged.items()
            if state is not None and self._policy.due(seq, first_seq[entity_id])
        ]
        encoded = self._commit(new_events, publications, stamps, final, snapshots)
        self.metrics.snapshots += len(snapshots)
        snapshotted = {snapshot.entity_id for snapshot in snapshots}
        for entity_id, (state, seq) in staged.items():
            activation = self._active.get(entity_id) or self._activate(entity_id)
            previous = activation.seq
            activation.state, activation.seq = state, seq
            if seq > previous:
                activation.last_ms = max(activation.last_ms, self._last_ms)
            if entity_id in snapshotted:
                activation.snapshot_seq = seq
        self._count(final)
        self.passivate_idle()
        return Turn(final, publications, encoded)

    def _precheck(
        self, envelope: Envelope, now: int, seen: set[str], recorded: bytes | None
    ) -> Outcome | None:
        if envelope.message_id in seen:
            return Outcome(envelope.message_id, Status.DUPLICATE, envelope.entity_id)
        if recorded is not None:  # seen before: the same answer again (a refusal stays one)
            first = Outcome.from_bytes(recorded)
            if envelope.reused_by(first):
                return envelope.key_reused()
            return (
                first
                if first.status is Status.REJECTED
                else replace(first, status=Status.DUPLICATE)
            )
        if envelope.deadline_ms < now:
            return Outcome(envelope.message_id, Status.EXPIRED, envelope.entity_id)
        return None

    def _commit(
        self,
        events: list[NewEvent],
        publications: list[Published],
        stamps: list[int],
        outcomes: list[Outcome],
        snapshots: list[NewSnapshot],
    ) -> list[bytes]:
        """Commit the events, the publications' outbox entries (an event's, or a relayed
        message's, which has none), the dedupe records and the snapshots due; returns each
        publication's outbox encoding (what the broker is sent too)."""
        started = time.perf_counter()
        encoded = [encode_published(p) for p in publications]
        outbox = [
            NewEvent(self._outbox, stamp, body) for stamp, body in zip(stamps, encoded, strict=True)
        ]
        dedupe = [
            DedupeEntry(o.message_id, o.to_bytes()) for o in outcomes if o.status in _RECORDED
        ]
        if events or outbox or dedupe:
            self.store.append_batch([*events, *outbox], dedupe, snapshots)
        self._outbox_seq += len(outbox)
        self.metrics.commit_seconds += time.perf_counter() - started
        return encoded

    def _count(self, outcomes: Iterable[Outcome]) -> None:
        metrics = self.metrics
        metrics.batches += 1
        for outcome in outcomes:
            metrics.messages += 1
            if outcome.status is Status.APPLIED:
                metrics.applied += 1
            elif outcome.status is Status.DUPLICATE:
                metrics.duplicates += 1
            elif outcome.status is Status.REJECTED:
                metrics.rejected += 1
            elif outcome.status is Status.EXPIRED:
                metrics.expired += 1

    # -- outbox -------------------------------------------------------------------------------

    @property
    def outbox_seq(self) -> int:
        """The seq of this host's newest outbox entry."""
        return self._outbox_seq

    def outbox_head(self) -> int:
        """The seq of this host's newest committed outbox entry (0: none), as stored."""
        return self.store.last_seq(self._outbox)

    def outbox_raw_after(self, seq: int, limit: int = 10_000) -> list[tuple[int, bytes]]:
        """`outbox_after` with each publication as stored (`encode_published` bytes)."""
        found = []
        for event in self.store.events(self._outbox, after_seq=seq):
            found.append((event.seq, event.body))
            if len(found) >= limit:
                break
        return found

    def outbox_after(self, seq: int, limit: int = 10_000) -> list[tuple[int, Published]]:
        """Outbox entries after `seq`, for re-publishing after a crash."""
        found = []
        for event in self.store.events(self._outbox, after_seq=seq):
            found.append((event.seq, decode_published(event.body)))
            if len(found) >= limit:
                break
        return found

    # -- reads --------------------------------------------------------------------------------

    def get(self, entity_id: str) -> EntityView | None:
        activation = self._activate(entity_id)
        if activation.state is None:
            self._active.pop(entity_id, None)  # nothing to keep warm
            return None
        return entity_view(activation.state, activation.seq)

    def state_at(
        self, entity_id: str, timestamp_ms: int | None = None, seq: int | None = None
    ) -> EntityView | None:
        """The entity as of a time (or right after event `seq`)."""
        if entity_id not in self._active:
            self._checked(entity_id)
        recovered = state_at(
            self.store, entity_id, self._replayer, timestamp_ms=timestamp_ms, seq=seq
        )
        if recovered.state is None:
            return None
        return entity_view(recovered.state, recovered.seq)

    def history(
        self, entity_id: str, since_ms: int | None = None, until_ms: int | None = None
    ) -> list[dict[str, Any]]:
        """The entity's events: seq, time, checksum, and what each message did."""
        if entity_id not in self._active:
            self._checked(entity_id)
        out = []
        for event in self.store.history(entity_id, since_ms, until_ms):
            if not event.body:  # a tombstone: its entity was erased
                continue
            body = decode_event(event.body)
            out.append(
                {
                    "seq": event.seq,
                    "timestampMs": event.timestamp_ms,
                    "checksum": event.checksum.hex(),
                    "kind": body["kind"],
                    "message": body["message"],
                    "changed": body["changed"],
                    "opened": body["opened"],
                    "resolved": body["resolved"],
                }
            )
        return out

    def active_ids(self) -> list[str]:
        return list(self._active)


_RECORDED = (Status.APPLIED, Status.REJECTED)  # outcomes a retry of the message gets again


def _refused(
    envelope: Envelope, seq: int, state: EntityState | None, field: str, reason: str, refusal: str
) -> Outcome:
    clock = state.clock.to_dict() if state is not None else {}
    return Outcome(
        envelope.message_id,
        Status.REJECTED,
        envelope.entity_id,
        seq,
        clock,
        field,
        reason,
        refusal=refusal,
    )
