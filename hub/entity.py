"""Entity state and its single transition function, `apply`, used live and in replay."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import field, replace
from datetime import UTC, datetime
from enum import StrEnum
from functools import lru_cache
from typing import Any, NamedTuple

from pydantic import BaseModel, JsonValue, TypeAdapter, ValidationError

from hub.clocks.hlc import HybridTimestamp
from hub.clocks.vector import Ordering, VectorClock
from hub.codec import field_path
from hub.crdt import CausalLWW, MVRegister, ORSet, Tag, TextField
from hub.domains import DOMAINS, DomainSpec, SyncDomain
from hub.fields import FieldSpec, PolicyTable, canonical, flatten, nest, policy_table
from hub.ids import InvalidChittyId, Kind, derived, parse
from hub.message import JSON_SCALARS, Delta, Message
from hub.models.base import Policy
from hub.models.conflict import ConflictResolution, ConflictVersion, Resolution
from hub.protocol import SyncMessage
from hub.record import record

FieldState = CausalLWW[str] | MVRegister[str] | ORSet[str] | TextField
_DATA = "payload.entity.data"
_TIME: TypeAdapter[datetime] = TypeAdapter(datetime)


class Refusal(StrEnum):
    """Why an entity refused a message (an edge maps these to its own status codes)."""

    INVALID = "invalid"  # a value or the message's shape is wrong
    NOT_FOUND = "not_found"  # the entity does not exist
    EXISTS = "exists"  # a create of an entity that exists
    DELETED = "deleted"  # the entity was deleted
    TRANSITION = "transition"  # an illegal status change


class RejectedMessage(ValueError):
    """A message the entity refuses; nothing changed. `field` is the dotted wire path."""

    def __init__(self, field: str, reason: str, kind: Refusal = Refusal.INVALID) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason
        self.kind = kind


class EventKind(StrEnum):
    CREATED = "created"
    UPDATED = "updated"
    DELETED = "deleted"


@record
class EntityState:
    """One entity: per-field CRDT state, its vector clock and its open conflicts.

    The mappings are never mutated: `apply` builds new ones.
    """

    entity_id: str
    domain: SyncDomain
    clock: VectorClock
    fixed: Mapping[str, JsonValue]
    fields: Mapping[str, FieldState]
    created_ms: int
    modified_ms: int
    deleted: bool = False
    conflicts: Mapping[str, ConflictResolution] = field(default_factory=dict)
    applied: int = 0  # messages applied so far
    # The entity as the wire object (nested, camelCase, JSON values), remembered the first time
    # it is needed (`wire`) or built by `apply` from the previous state's, replacing only the
    # paths a message changed and sharing every untouched subtree: shared, so never mutated
    # (`view` hands out copies). Never compared, never stored, and not copied by `replace`
    # (init=False): a state made any other way recomputes it.
    nested: dict[str, JsonValue] | None = field(default=None, init=False, compare=False, repr=False)


@record
class Event:
    """What one applied message did; replaying `message` through `apply` redoes it."""

    entity_id: str
    domain: SyncDomain
    kind: EventKind
    message: Message  # its `body` is what the entity's log stores
    clock: VectorClock  # the entity's clock after the message
    changed: tuple[str, ...]  # wire paths whose visible value changed
    opened: tuple[str, ...] = ()  # conflict ids opened or widened
    resolved: tuple[str, ...] = ()  # conflict ids closed

    @property
    def timestamp_ms(self) -> int:
        return self.message.timestamp_ms


class ApplyResult(NamedTuple):
    state: EntityState | None
    events: tuple[Event, ...]
    conflicts: tuple[ConflictResolution, ...]


@lru_cache(maxsize=4096)  # a batch's writes share a handful of milliseconds
def iso(ms: int) -> JsonValue:
    """Milliseconds since the epoch as the wire's ISO-8601 UTC text (pydantic's form of the
    same datetime: `...T...[.ffffff]Z`; tests/hub/test_view_memo.py holds them equal)."""
    moment = datetime.fromtimestamp(ms / 1000, UTC)
    if moment.year < 1000:  # isoformat pads differently there; rare enough for pydantic
        dumped: JsonValue = _TIME.dump_python(moment, mode="json")
        return dumped
    return moment.isoformat()[:-6] + "Z"


@record
class _Write:
    """The causal facts of the message being applied."""

    node: str
    wall_ms: int
    clock: VectorClock

    @property
    def tag(self) -> Tag:
        return Tag(self.wall_ms, self.node, self.clock.get_count(self.node))

    @property
    def stamp(self) -> HybridTimestamp:
        return HybridTimestamp(self.wall_ms, 0, self.node)


def apply(state: EntityState | None, message: Message | SyncMessage) -> ApplyResult:
    """Apply one sync message to an entity (None: not created yet). The host and replay give
    the lean `Message` decoded from its canonical bytes; a pydantic one is made lean first.

    A message whose clock the entity has already seen is a no-op; one that has seen everything
    the entity has applies; a concurrent one merges field by field by policy, and concurrent
    differing values of a multi-value field open a conflict. Raises `RejectedMessage`.
    """
    if not isinstance(message, Message):
        message = Message.of(message)
    if not message.writes or message.domain is None:
        return ApplyResult(state, (), ())
    spec = DOMAINS[message.domain]
    entity_id = message.entity_id
    _check_identity(spec, entity_id, state)
    node = message.node_id
    clock = message.clock
    if not clock:
        # A blind write ("on top of whatever is there"): it has seen the entity's current
        # clock. Decided here, inside the entity's turn, so two blind writers never share a
        # clock; replay recomputes the same clock from the same state.
        clock = (state.clock if state is not None else VectorClock()).increment(node)
    elif clock.get_count(node) < 1:
        raise RejectedMessage(
            "metadata.vectorClock",
            f"must count this write: include source.nodeId {node!r} with a value of at least 1",
        )
    ordering = clock.compare(state.clock) if state is not None else Ordering.AFTER
    if ordering in (Ordering.BEFORE, Ordering.EQUAL):
        return ApplyResult(state, (), ())  # already applied: idempotent re-delivery
    write = _Write(node, message.timestamp_ms, clock)
    operation = message.operation
    if operation == "create":
        if state is not None:
            verb, kind = (
                ("was deleted", Refusal.DELETED)
                if state.deleted
                else ("already exists", Refusal.EXISTS)
            )
            raise RejectedMessage("payload.entity.chittyId", f"{entity_id} {verb}", kind)
        return _create(spec, message, write)
    if state is None:
        raise RejectedMessage(
            "payload.entity.chittyId", f"{entity_id} does not exist", Refusal.NOT_FOUND
        )
    if state.deleted:
        raise RejectedMessage(
            "payload.entity.chittyId", f"{entity_id} was deleted", Refusal.DELETED
        )
    if operation == "delete":
        new = replace(
            state,
            deleted=True,
            clock=state.clock.merge(clock),
            modified_ms=max(state.modified_ms, write.wall_ms),
            applied=state.applied + 1,
        )
        table = policy_table(spec.model)
        _carry(table, state, new, _modified_paths(table))
        event = Event(entity_id, spec.domain, EventKind.DELETED, message, new.clock, ())
        return ApplyResult(new, (event,), ())
    return _update(spec, state, message, write)


def _check_identity(spec: DomainSpec, entity_id: str, state: EntityState | None) -> None:
    if state is not None and state.entity_id == entity_id and state.domain is spec.domain:
        return  # the very id this entity was created with, parsed then
    try:
        parse(entity_id, expect=spec.kind)
    except InvalidChittyId as error:
        raise RejectedMessage("payload.entity.chittyId", f"{spec.domain}: {error}") from None
    if state is not None and (state.entity_id != entity_id or state.domain is not spec.domain):
        raise RejectedMessage(
            "payload.domain",
            f"{entity_id} is hosted as {state.entity_id} in {state.domain}, not {spec.domain}",
        )


def _create(spec: DomainSpec, message: Message, write: _Write) -> ApplyResult:
    entity_id = message.entity_id
    if message.data.get("chittyId", entity_id) != entity_id:
        raise RejectedMessage(f"{_DATA}.chittyId", "differs from payload.entity.chittyId")
    try:
        model = spec.model.model_validate({**message.data, "chittyId": entity_id})
    except ValidationError as error:
        path, reason = field_path(error)
        raise RejectedMessage(f"{_DATA}.{path}", reason) from None
    table = policy_table(spec.model)
    empty = EntityState(
        entity_id,
        spec.domain,
        VectorClock(),
        {},
        {},
        created_ms=write.wall_ms,
        modified_ms=write.wall_ms,
    )
    leaves = flatten(table, model.model_dump(mode="json", by_alias=True))
    return _write(spec, table, empty, message, write, leaves, EventKind.CREATED)


def _update(spec: DomainSpec, state: EntityState, message: Message, write: _Write) -> ApplyResult:
    table = policy_table(spec.model)
    if message.type == "state_snapshot":
        leaves = _snapshot(spec, table, state, message.data)
        return _write(spec, table, state, message, write, leaves, EventKind.UPDATED)
    try:
        raw = flatten(table, message.data)
    except KeyError as error:
        raise RejectedMessage(f"{_DATA}.{error.args[0]}", "unknown field") from None
    except TypeError as error:
        raise RejectedMessage(f"{_DATA}.{error.args[0]}", "must be an object") from None
    leaves = {path: _validated(table.fields[path], value) for path, value in raw.items()}
    return _write(spec, table, state, message, write, leaves, EventKind.UPDATED)


def _snapshot(
    spec: DomainSpec, table: PolicyTable, state: EntityState, data: Mapping[str, JsonValue]
) -> dict[str, JsonValue]:
    """A full state (the spec's `state_snapshot`): every field it omits takes its default;
    fields fixed at creation keep their value (naming another is refused, as on any update)."""
    if data.get("chittyId", state.entity_id) != state.entity_id:
        raise RejectedMessage(f"{_DATA}.chittyId", "differs from payload.entity.chittyId")
    whole = {**nest(dict(state.fixed)), **data, "chittyId": state.entity_id}
    try:
        model = spec.model.model_validate(whole)
    except ValidationError as error:
        path, reason = field_path(error)
        raise RejectedMessage(f"{_DATA}.{path}", reason) from None
    return flatten(table, model.model_dump(mode="json", by_alias=True))


def _validated(spec: FieldSpec, value: Any) -> JsonValue:
    try:
        return spec.dump(spec.adapter.validate_python(value))
    except ValidationError as error:
        inner, reason = field_path(error)
        suffix = f".{inner}" if inner else ""
        raise RejectedMessage(f"{_DATA}.{spec.path}{suffix}", reason) from None


def _write(
    spec: DomainSpec,
    table: PolicyTable,
    state: EntityState,
    message: Message,
    write: _Write,
    leaves: dict[str, JsonValue],
    kind: EventKind,
) -> ApplyResult:
    """Fold validated leaf values (and the message's delta) into the entity's CRDTs."""
    _lifecycle(spec, state, leaves, write)
    created = kind is EventKind.CREATED
    fixed: dict[str, JsonValue] = {}  # set once, at creation: shared from then on
    fields: dict[str, FieldState] = dict(state.fields)
    written: set[str] = set()
    shown: dict[str, JsonValue] = {}  # visible values known without reading the registers
    for path, value in leaves.items():
        policy = table.fields[path].policy
        if policy is Policy.FIXED:
            if created:
                fixed[path] = value
            elif value != state.fixed.get(path):
                raise RejectedMessage(f"{_DATA}.{path}", "is fixed when the entity is created")
        elif policy not in (Policy.CREATED, Policy.MODIFIED):
            merged = fields[path] = _merge_field(policy, fields.get(path), value, write)
            written.add(path)
            # A scalar's canonical text reads back as the value itself.
            if type(value) in JSON_SCALARS and _only_this_write(merged, write):
                shown[path] = value
    if message.delta is not None:
        written.update(_apply_delta(table, message.delta, write, fields))
    # Only the fields this message wrote (and the hub's own time fields) can have changed.
    touched = None if created else written
    conflicts_now, conflicts, opened, resolved = _conflicts(
        table, state.entity_id, fields, state.conflicts, touched
    )
    new = EntityState(
        state.entity_id,
        state.domain,
        state.clock.merge(write.clock),
        fixed if created else state.fixed,
        fields,
        state.created_ms,
        max(state.modified_ms, write.wall_ms),
        state.deleted,
        conflicts_now,
        state.applied + 1,
    )
    if touched is None:
        changed = tuple(sorted(table.fields))
    else:
        changed = _carry(table, state, new, [*touched, *_modified_paths(table)], shown)
    event = Event(new.entity_id, spec.domain, kind, message, new.clock, changed, opened, resolved)
    return ApplyResult(new, (event,), conflicts)


def _lifecycle(
    spec: DomainSpec,
    state: EntityState,
    leaves: dict[str, JsonValue],
    write: _Write,
) -> None:
    """Refuse an illegal status change; stamp the time field a status sets (or clear it).

    A change is checked against the statuses the writer had seen (legal from any of them is
    enough: that is how a conflict gets resolved); a write concurrent with every current status
    is not checked, since the conflict it opens is shown to a person instead.
    """
    life = spec.lifecycle
    if life is None or life.path not in leaves:
        return
    new = leaves[life.path]
    seen = _seen_values(state.fields.get(life.path), write.clock)
    if seen and isinstance(new, str):
        reasons = [life.check(str(old), new) for old in seen]
        if all(reason is not None for reason in reasons):
            raise RejectedMessage(f"{_DATA}.{life.path}", str(reasons[0]), Refusal.TRANSITION)
    # The time field a status sets follows from this message alone (never from what arrived
    # before it), so concurrent writers commute: set by the status, cleared by any other.
    for status, stamp_path in life.stamps.items():
        if leaves.get(stamp_path) is None:
            leaves[stamp_path] = iso(write.wall_ms) if new == status else None


def _seen_values(current: FieldState | None, clock: VectorClock) -> list[JsonValue]:
    """The current values of a register that a writer with causal knowledge `clock` had seen."""
    if isinstance(current, MVRegister):
        return [
            json.loads(v) for v, c in sorted(current.entries, key=lambda e: e[0]) if clock.covers(c)
        ]
    if isinstance(current, CausalLWW):
        return [json.loads(r.value) for r, c in current.versions.entries if clock.covers(c)]
    return []


def _merge_field(
    policy: Policy, current: FieldState | None, value: JsonValue, write: _Write
) -> FieldState:
    if policy is Policy.LWW:
        lww: CausalLWW[str] = current if isinstance(current, CausalLWW) else CausalLWW()
        return lww.assign(canonical(value), write.stamp, write.clock)
    if policy is Policy.MV:
        mv: MVRegister[str] = current if isinstance(current, MVRegister) else MVRegister()
        return mv.assign(canonical(value), write.clock)
    if policy is Policy.SET:
        items = value if isinstance(value, list) else []
        orset: ORSet[str] = current if isinstance(current, ORSet) else ORSet()
        return orset.replace([canonical(item) for item in items], write.tag, write.clock)
    # Diffed against the text the writer had seen (what its clock covers), so concurrent
    # full values keep each other's changes.
    text = current if isinstance(current, TextField) else TextField()
    return text.edit(value if isinstance(value, str) else "", write.node, write.clock)


def _apply_delta(
    table: PolicyTable, delta: Delta, write: _Write, fields: dict[str, FieldState]
) -> list[str]:
    """Fold a delta into `fields`; returns the paths it wrote."""
    written = []
    for verb, changes in (("add", delta.add), ("remove", delta.remove)):
        for path, items in changes.items():
            spec = table.resolve(path)
            where = f"payload.delta.{verb}.{path}"
            if spec is None or spec.policy is not Policy.SET or spec.item is None:
                raise RejectedMessage(where, "not a set field")
            current = fields.get(spec.path)
            orset: ORSet[str] = current if isinstance(current, ORSet) else ORSet()
            for index, item in enumerate(items):
                try:
                    element = canonical(spec.dump_item(spec.item.validate_python(item)))
                except ValidationError as error:
                    raise RejectedMessage(f"{where}.{index}", field_path(error)[1]) from None
                orset = (
                    orset.add(element, write.tag)
                    if verb == "add"
                    else orset.remove(element, write.tag, write.clock)
                )
            fields[spec.path] = orset
            written.append(spec.path)
    for path, encoded in delta.y_updates.items():
        spec = table.resolve(path)
        where = f"payload.delta.yUpdates.{path}"
        if spec is None or spec.policy is not Policy.TEXT:
            raise RejectedMessage(where, "not a text field")
        current = fields.get(spec.path)
        text = current if isinstance(current, TextField) else TextField()
        try:
            update = base64.b64decode(encoded, validate=True)
            fields[spec.path] = text.apply(update, write.node, write.clock)
        except (binascii.Error, ValueError, RuntimeError) as error:
            raise RejectedMessage(where, f"not a base64 Y-CRDT update: {error}") from None
        written.append(spec.path)
    return written


def _conflicts(
    table: PolicyTable,
    entity_id: str,
    fields: Mapping[str, FieldState],
    previous_conflicts: Mapping[str, ConflictResolution],
    touched: set[str] | None,
) -> tuple[
    Mapping[str, ConflictResolution],
    tuple[ConflictResolution, ...],
    tuple[str, ...],
    tuple[str, ...],
]:
    """Open, widen or close the conflict record of every multi-value field (of the `touched`
    ones only, when given: a register the message did not write is unchanged, so is its
    record)."""
    if touched is not None and touched.isdisjoint(_mv_paths(table)):
        return previous_conflicts, (), (), ()  # no register that can conflict was written
    open_now = dict(previous_conflicts)
    changed: list[ConflictResolution] = []
    resolved: list[str] = []
    for path in _mv_paths(table):
        if touched is not None and path not in touched:
            continue
        register = fields.get(path)
        if not isinstance(register, MVRegister):
            continue
        previous = open_now.get(path)
        if not register.conflicted:
            if previous is not None:
                resolved.append(previous.conflict_id)
                del open_now[path]
            continue
        versions = [
            ConflictVersion(value=json.loads(value), vector_clock=clock)
            for value, clock in sorted(register.entries, key=lambda e: (e[0], sorted(e[1].items())))
        ]
        if previous is not None and previous.versions == versions:
            continue
        # Derived from what conflicts, not from which message arrived last: every replica that
        # sees the same concurrent writes names the conflict alike.
        opened_as = canonical([[v.value, dict(v.vector_clock.to_dict())] for v in versions])
        record = ConflictResolution(
            conflict_id=previous.conflict_id
            if previous is not None
            else derived(Kind.CONFLICT, entity_id, path, opened_as),
            entity_id=entity_id,
            conflict_type="concurrent_update",
            field=path,
            versions=versions,
            resolution=Resolution(strategy="mvr", pending=True),
        )
        open_now[path] = record
        changed.append(record)
    return open_now, tuple(changed), tuple(c.conflict_id for c in changed), tuple(resolved)


def _only_this_write(merged: FieldState, write: _Write) -> bool:
    """Whether `merged` is an LWW register holding the write just made and nothing else (its
    clock is that write's very object), so its visible value is the value written."""
    if not isinstance(merged, CausalLWW):
        return False
    entries = merged.versions.entries
    return len(entries) == 1 and next(iter(entries))[1] is write.clock


def _visible(spec: FieldSpec, state: EntityState) -> JsonValue:
    policy = spec.policy
    if policy is Policy.FIXED:
        return state.fixed.get(spec.path)
    if policy is Policy.CREATED:
        return iso(state.created_ms)
    if policy is Policy.MODIFIED:
        return iso(state.modified_ms)
    current = state.fields.get(spec.path)
    if isinstance(current, CausalLWW):
        winner = current.winner
        return json.loads(winner.value) if winner is not None else None
    if isinstance(current, MVRegister):
        # While a conflict is open the first value in canonical order shows; the record has all.
        return json.loads(current.values[0]) if current.values else None
    if isinstance(current, ORSet):
        return [json.loads(element) for element in current.elements()]
    if isinstance(current, TextField):
        return current.text
    return None


_PATHS: dict[tuple[int, Policy], tuple[str, ...]] = {}  # by (cached, never freed) table


def _paths(table: PolicyTable, policy: Policy) -> tuple[str, ...]:
    """The paths of a table's fields with `policy`, in the table's order."""
    key = (id(table), policy)
    found = _PATHS.get(key)
    if found is None:
        found = _PATHS[key] = tuple(p for p, f in table.fields.items() if f.policy is policy)
    return found


def _modified_paths(table: PolicyTable) -> tuple[str, ...]:
    """The paths the hub stamps on every change (a table's MODIFIED fields)."""
    return _paths(table, Policy.MODIFIED)


def _mv_paths(table: PolicyTable) -> tuple[str, ...]:
    return _paths(table, Policy.MV)


def _nested(table: PolicyTable, state: EntityState) -> dict[str, JsonValue]:
    """`wire`, the table at hand."""
    nested = state.nested
    if nested is None:
        nested = nest({path: _visible(spec, state) for path, spec in table.fields.items()})
        object.__setattr__(state, "nested", nested)  # a memo of a frozen value, not a change
    return nested


def wire(state: EntityState) -> Mapping[str, JsonValue]:
    """The entity as the spec's wire object, shared with the state (read it, never change it:
    `view` is the copy to keep). Publications are built from it."""
    return _nested(policy_table(DOMAINS[state.domain].model), state)


def _carry(
    table: PolicyTable,
    old: EntityState,
    new: EntityState,
    touched: list[str] | tuple[str, ...],
    shown: Mapping[str, JsonValue] | None = None,
) -> tuple[str, ...]:
    """Give `new` the wire object of `old` with the `touched` paths recomputed (every other
    field state is the very object `old` had, so its value is too; `shown` holds visible values
    already known); return the paths whose visible value changed, sorted."""
    before = _nested(table, old)
    nested = dict(before)
    changed = []
    for path in touched:
        value = shown[path] if shown and path in shown else _visible(table.fields[path], new)
        if value != _leaf(before, path):
            changed.append(path)
            _put(nested, path, value)
    object.__setattr__(new, "nested", nested)
    return tuple(sorted(set(changed)))


def _leaf(nested: Mapping[str, JsonValue], path: str) -> JsonValue:
    """The value at a dotted `path` of a wire object (None where there is none)."""
    *parents, last = path.split(".")
    node = nested
    for part in parents:
        inner = node.get(part)
        if not isinstance(inner, dict):
            return None
        node = inner
    return node.get(last)


def _put(nested: dict[str, JsonValue], path: str, value: JsonValue) -> None:
    """Set `path` in a copy-on-write nested dict: each dict on the way is copied (the one it
    replaces is the previous state's)."""
    *parents, last = path.split(".")
    node = nested
    for part in parents:
        inner = node.get(part)
        copied: dict[str, JsonValue] = dict(inner) if isinstance(inner, dict) else {}
        node[part] = copied
        node = copied
    node[last] = value


def _copy(value: JsonValue) -> JsonValue:
    """A JSON value no caller can mutate the remembered one through."""
    if isinstance(value, list):
        return [_copy(item) for item in value]
    if isinstance(value, dict):
        return {key: _copy(item) for key, item in value.items()}
    return value


def view(state: EntityState) -> dict[str, JsonValue]:
    """The entity as the spec's wire object (camelCase, JSON values)."""
    return {key: _copy(value) for key, value in wire(state).items()}


def view_uncached(state: EntityState) -> dict[str, JsonValue]:
    """`view` computed from the field states alone (what the memo must always equal)."""
    table = policy_table(DOMAINS[state.domain].model)
    return nest({path: _visible(spec, state) for path, spec in table.fields.items()})


def materialize(state: EntityState) -> BaseModel:
    """The entity as its pydantic domain model."""
    return DOMAINS[state.domain].model.model_validate(view(state))


@record
class EntityView:
    """An entity as readers see it: wire view, log position, clock, open conflicts."""

    entity_id: str
    domain: str
    seq: int
    clock: dict[str, int]
    deleted: bool
    entity: dict[str, JsonValue]
    conflicts: tuple[dict[str, JsonValue], ...]


def entity_view(state: EntityState, seq: int) -> EntityView:
    return EntityView(
        state.entity_id,
        state.domain.value,
        seq,
        state.clock.to_dict(),
        state.deleted,
        view(state),
        tuple(c.model_dump(mode="json") for c in state.conflicts.values()),
    )
