"""How entities are kept in the checkpoint store: event bodies, snapshot states, the replay fold."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgpack

from hub.clocks.hlc import HybridTimestamp
from hub.clocks.vector import VectorClock
from hub.crdt import CausalLWW, LWWRegister, MVRegister, ORSet, Tag, TextEdit, TextField
from hub.domains import SyncDomain
from hub.entity import EntityState, Event, FieldState, apply
from hub.message import Message, decode
from hub.models.conflict import ConflictResolution
from hub.store.records import StoredEvent

_FORMAT = 1  # bump with a migration when the encodings below change


def _pack(value: Any) -> bytes:
    packed: bytes = msgpack.packb(value, use_bin_type=True)
    return packed


def _unpack(data: bytes) -> Any:
    return msgpack.unpackb(data, raw=False, strict_map_key=False)


_MESSAGE_KEY = _pack("message")


def encode_event(event: Event) -> bytes:
    """An applied message and what it did, as stored in the entity's log: the message is its
    canonical msgpack (`Message.body`, what the envelope carried), stored as it is."""
    rest = {
        "v": _FORMAT,
        "kind": event.kind.value,
        "clock": event.clock.to_dict(),
        "changed": list(event.changed),
        "opened": list(event.opened),
        "resolved": list(event.resolved),
    }
    if not event.message.body:
        raise ValueError(f"event {event.message.id}: its message has no canonical encoding")
    head = _pack(rest)  # a fixmap of 6 entries: one more, the message, goes on the end
    return bytes((head[0] + 1,)) + head[1:] + _MESSAGE_KEY + event.message.body


def decode_event_message(body: bytes) -> Message:
    """The sync message stored in an event body (trusted, as `hub.message.decode`), read from
    its bytes in the body: not unpacked and packed again."""
    unpacker = msgpack.Unpacker(raw=False)
    unpacker.feed(body)
    for _ in range(unpacker.read_map_header()):
        key = unpacker.unpack()
        start = unpacker.tell()
        unpacker.skip()
        if key == "message":
            return decode(body[start : unpacker.tell()])
    raise ValueError("an event body without its message")


def decode_event(body: bytes) -> dict[str, Any]:
    """An event body as a dict (kind, message wire dict, clock, changed, opened, resolved)."""
    decoded: dict[str, Any] = _unpack(body)
    return decoded


def _tag(tag: Tag) -> list[Any]:
    return [tag.wall_ms, tag.node, tag.counter]


def _untag(raw: list[Any]) -> Tag:
    return Tag(int(raw[0]), str(raw[1]), int(raw[2]))


def _encode_field(state: FieldState) -> list[Any]:
    if isinstance(state, CausalLWW):
        return [
            "l",
            [
                [r.value, list(r.stamp.to_wire()), c.to_dict()]
                for r, c in sorted(state.versions.entries, key=repr)
            ],
        ]
    if isinstance(state, MVRegister):
        return ["m", [[v, c.to_dict()] for v, c in sorted(state.entries, key=repr)]]
    if isinstance(state, ORSet):
        return [
            "s",
            [[e, _tag(t)] for e, t in sorted(state.adds)],
            [[e, _tag(t), _tag(by)] for e, t, by in sorted(state.removed)],
        ]
    return ["t", state.update, [[e.node, e.count, e.key, e.update] for e in state.edits]]


def _decode_field(raw: list[Any]) -> FieldState:
    kind = raw[0]
    if kind == "l":
        return CausalLWW(
            MVRegister(
                frozenset(
                    (LWWRegister(v, HybridTimestamp.from_wire(s)), VectorClock(c))
                    for v, s, c in raw[1]
                )
            )
        )
    if kind == "m":
        return MVRegister(frozenset((v, VectorClock(c)) for v, c in raw[1]))
    if kind == "s":
        return ORSet(
            frozenset((e, _untag(t)) for e, t in raw[1]),
            frozenset((e, _untag(t), _untag(by)) for e, t, by in raw[2]),
        )
    if kind == "t":  # ["t", update] before edits were recorded: no edits
        edits = raw[2] if len(raw) > 2 else []
        return TextField(
            bytes(raw[1]),
            tuple(TextEdit(str(n), int(c), bytes(k), bytes(u)) for n, c, k, u in edits),
        )
    raise ValueError(f"unknown field state kind {kind!r}")


def encode_state(state: EntityState) -> bytes:
    """A snapshot of an entity's full CRDT state."""
    return _pack(
        {
            "v": _FORMAT,
            "id": state.entity_id,
            "domain": state.domain.value,
            "clock": state.clock.to_dict(),
            "fixed": dict(state.fixed),
            "fields": {path: _encode_field(f) for path, f in state.fields.items()},
            "created": state.created_ms,
            "modified": state.modified_ms,
            "deleted": state.deleted,
            "conflicts": {p: c.model_dump(mode="json") for p, c in state.conflicts.items()},
            "applied": state.applied,
        }
    )


def decode_state(data: bytes) -> EntityState:
    raw: Mapping[str, Any] = _unpack(data)
    if raw.get("v") != _FORMAT:
        raise ValueError(f"snapshot format {raw.get('v')!r} is not {_FORMAT}")
    return EntityState(
        entity_id=raw["id"],
        domain=SyncDomain(raw["domain"]),
        clock=VectorClock(raw["clock"]),
        fixed=raw["fixed"],
        fields={path: _decode_field(f) for path, f in raw["fields"].items()},
        created_ms=raw["created"],
        modified_ms=raw["modified"],
        deleted=raw["deleted"],
        conflicts={p: ConflictResolution.model_validate(c) for p, c in raw["conflicts"].items()},
        applied=raw["applied"],
    )


class EntityReplayer:
    """The store's `Replayer` for entities: replay is `apply` of each stored message again."""

    def initial(self, entity_id: str) -> EntityState | None:
        return None

    def apply(self, state: EntityState | None, event: StoredEvent) -> EntityState | None:
        if not event.body:  # a tombstone (erasure): what it did is gone with it
            return state
        return apply(state, decode_event_message(event.body)).state

    def encode_state(self, state: EntityState | None) -> bytes:
        if state is None:
            raise ValueError("an entity with no events has no snapshot")
        return encode_state(state)

    def decode_state(self, data: bytes) -> EntityState | None:
        return decode_state(data)
