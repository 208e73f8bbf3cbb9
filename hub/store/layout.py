"""The on-disk layout: key rules, key encodings and msgpack value encodings of the store."""

from __future__ import annotations

from collections.abc import Callable
from hashlib import sha256

import msgpack

from hub.store.codec import ValueCodec
from hub.store.errors import CorruptValueError, InvalidKeyError
from hub.store.records import RedactedEvent, Snapshot, StoredEvent

MAX_KEY_BYTES = 511  # LMDB's compiled-in key limit (mdb_env_get_maxkeysize)
SEQ_BYTES = 8
SEPARATOR = (
    b"\x00"  # between entity id and seq: sorts below every other byte, so ids never interleave
)
MAX_ENTITY_ID_BYTES = MAX_KEY_BYTES - len(SEPARATOR) - SEQ_BYTES
MAX_MESSAGE_ID_BYTES = MAX_KEY_BYTES - 8  # the dedupe expiry index prefixes an 8-byte time
MAX_SEQ = 2**64 - 1
MIN_TIMESTAMP_MS = -(2**63)
MAX_TIMESTAMP_MS = 2**63 - 1
LAST_SEQ_SUFFIX = MAX_SEQ.to_bytes(SEQ_BYTES, "big")

_DecodeErrors = (ValueError, TypeError, msgpack.UnpackException)


# MemoryStore applies the same key rules, so the in-memory twin rejects what LMDB would.
def entity_key_prefix(entity_id: str) -> bytes:
    """Validate an entity id and return its key prefix (UTF-8 id + separator)."""
    if not isinstance(entity_id, str) or not entity_id:
        raise InvalidKeyError(f"entity id must be a non-empty str, got {entity_id!r}")
    if "\x00" in entity_id:
        raise InvalidKeyError(f"entity id must not contain NUL: {entity_id!r}")
    try:
        raw = entity_id.encode()
    except UnicodeEncodeError as exc:
        raise InvalidKeyError(f"entity id is not encodable as UTF-8: {entity_id!r}") from exc
    if len(raw) > MAX_ENTITY_ID_BYTES:
        raise InvalidKeyError(
            f"entity id is {len(raw)} bytes in UTF-8, the limit is {MAX_ENTITY_ID_BYTES}: "
            f"{entity_id[:40]!r}..."
        )
    return raw + SEPARATOR


def message_key(message_id: str) -> bytes:
    """Validate a message id and return its dedupe key (its UTF-8 bytes)."""
    if not isinstance(message_id, str) or not message_id:
        raise InvalidKeyError(f"message id must be a non-empty str, got {message_id!r}")
    try:
        raw = message_id.encode()
    except UnicodeEncodeError as exc:
        raise InvalidKeyError(f"message id is not encodable as UTF-8: {message_id!r}") from exc
    if len(raw) > MAX_MESSAGE_ID_BYTES:
        raise InvalidKeyError(
            f"message id is {len(raw)} bytes in UTF-8, the limit is {MAX_MESSAGE_ID_BYTES}"
        )
    return raw


def check_seq(seq: int, name: str = "seq") -> None:
    """Reject a sequence number that is not an int in [0, 2**64)."""
    if not isinstance(seq, int) or isinstance(seq, bool) or not 0 <= seq <= MAX_SEQ:
        raise ValueError(f"{name} must be an int in [0, 2**64), got {seq!r}")


def seq_key(prefix: bytes, seq: int) -> bytes:
    """The key of event (or snapshot) `seq` of the entity whose key prefix is `prefix`."""
    return prefix + seq.to_bytes(SEQ_BYTES, "big")


def split_seq_key(database: str, key: bytes) -> tuple[str, int]:
    """Parse an events/snapshots key into (entity id, seq)."""
    if len(key) < SEQ_BYTES + 2 or key[-SEQ_BYTES - 1] != 0:
        raise CorruptValueError(f"{database}: malformed key {key!r}")
    try:
        entity_id = key[: -SEQ_BYTES - 1].decode()
    except UnicodeDecodeError as exc:
        raise CorruptValueError(f"{database}: key {key!r} has a non-UTF-8 entity id") from exc
    return entity_id, int.from_bytes(key[-SEQ_BYTES:], "big")


def entity_id_of_prefix(database: str, prefix: bytes) -> str:
    """The entity id of a key prefix (UTF-8 id + separator)."""
    try:
        return prefix[:-1].decode()
    except UnicodeDecodeError as exc:
        raise CorruptValueError(f"{database}: key prefix {prefix!r} is not UTF-8") from exc


def expiry_key(recorded_ms: int, message_key: bytes) -> bytes:
    """The dedupe expiry index key: recording time first, so pruning is a prefix scan."""
    return recorded_ms.to_bytes(8, "big") + message_key


def split_expiry_key(key: bytes) -> tuple[int, bytes]:
    """Parse a dedupe expiry index key into (recorded_ms, message key)."""
    if len(key) < 9:
        raise CorruptValueError(f"dedupe_expiry: malformed key {key!r}")
    return int.from_bytes(key[:8], "big"), key[8:]


def entry_packer() -> Callable[[tuple[int, bytes, bytes]], bytes]:
    """A fast `pack_entry` taking one (timestamp, payload, checksum) tuple; one per thread."""
    pack: Callable[[tuple[int, bytes, bytes]], bytes] = msgpack.Packer().pack
    return pack


def pack_entry(timestamp_ms: int, payload: bytes, checksum: bytes) -> bytes:
    """Encode an event (payload = body) or snapshot (payload = state) value."""
    packed: bytes = msgpack.packb((timestamp_ms, payload, checksum))
    return packed


def unpack_entry(database: str, key: bytes, raw: bytes) -> tuple[int, bytes, bytes]:
    """Decode a value written by `pack_entry`; raise `CorruptValueError` naming the key."""
    try:
        timestamp_ms, payload, checksum = msgpack.unpackb(raw, use_list=False)
    except _DecodeErrors as exc:
        raise CorruptValueError(f"{database}: undecodable value at key {key!r}: {exc}") from exc
    if (
        type(timestamp_ms) is not int
        or type(payload) is not bytes
        or type(checksum) is not bytes
        or len(checksum) != 32
    ):
        raise CorruptValueError(f"{database}: value at key {key!r} has the wrong shape")
    return timestamp_ms, payload, checksum


def pack_event(event: StoredEvent) -> bytes:
    """Encode an event value: (timestamp, body, checksum), and for a redacted event also
    (original body digest, redaction time)."""
    if isinstance(event, RedactedEvent):
        packed: bytes = msgpack.packb(
            (
                event.timestamp_ms,
                event.body,
                event.checksum,
                event.original_digest,
                event.redacted_ms,
            )
        )
        return packed
    return pack_entry(event.timestamp_ms, event.body, event.checksum)


def pack_dedupe(recorded_ms: int, outcome: bytes) -> bytes:
    """Encode a dedupe value."""
    packed: bytes = msgpack.packb((recorded_ms, outcome))
    return packed


def unpack_dedupe(key: bytes, raw: bytes) -> tuple[int, bytes]:
    """Decode a dedupe value; raise `CorruptValueError` naming the message id."""
    try:
        recorded_ms, outcome = msgpack.unpackb(raw, use_list=False)
    except _DecodeErrors as exc:
        raise CorruptValueError(f"dedupe: undecodable value for message {key!r}: {exc}") from exc
    if type(recorded_ms) is not int or type(outcome) is not bytes:
        raise CorruptValueError(f"dedupe: value for message {key!r} has the wrong shape")
    return recorded_ms, outcome


def decode_value(codec: ValueCodec, database: str, key: bytes, raw: bytes) -> bytes:
    """Run a stored value through the codec; a failure becomes `CorruptValueError`."""
    try:
        return codec.decode(raw)
    except ValueError as exc:
        raise CorruptValueError(f"{database}: codec cannot decode key {key!r}: {exc}") from exc


def decode_event(codec: ValueCodec, entity_id: str, key: bytes, raw: bytes) -> StoredEvent:
    """The `StoredEvent` (or `RedactedEvent`) stored under `key` (an events key of `entity_id`)."""
    value = decode_value(codec, "events", key, raw)
    seq = int.from_bytes(key[-SEQ_BYTES:], "big")
    try:
        fields = msgpack.unpackb(value, use_list=False)
    except _DecodeErrors as exc:
        raise CorruptValueError(f"events: undecodable value at key {key!r}: {exc}") from exc
    if type(fields) is tuple and len(fields) == 5:
        timestamp_ms, body, checksum, digest, redacted_ms = fields
        if (
            type(timestamp_ms) is not int
            or type(body) is not bytes
            or type(checksum) is not bytes
            or len(checksum) != 32
            or type(digest) is not bytes
            or type(redacted_ms) is not int
        ):
            raise CorruptValueError(f"events: value at key {key!r} has the wrong shape")
        return RedactedEvent(entity_id, seq, timestamp_ms, body, checksum, digest, redacted_ms)
    if type(fields) is not tuple or len(fields) != 3:
        raise CorruptValueError(f"events: value at key {key!r} has the wrong shape")
    timestamp_ms, body, checksum = fields
    if (
        type(timestamp_ms) is not int
        or type(body) is not bytes
        or type(checksum) is not bytes
        or len(checksum) != 32
    ):
        raise CorruptValueError(f"events: value at key {key!r} has the wrong shape")
    return StoredEvent(entity_id, seq, timestamp_ms, body, checksum)


def pack_snapshot(timestamp_ms: int, state: bytes, checksum: bytes) -> bytes:
    """Encode a snapshot value: (timestamp, state, checksum of its event, sha256(state)); the
    state's digest lets a load notice a state damaged on disk."""
    packed: bytes = msgpack.packb((timestamp_ms, state, checksum, sha256(state).digest()))
    return packed


def decode_snapshot(codec: ValueCodec, entity_id: str, key: bytes, raw: bytes) -> Snapshot:
    """The `Snapshot` stored under `key` (a snapshots key of `entity_id`); a state that does
    not match its recorded digest is `CorruptValueError` (older snapshots have no digest)."""
    value = decode_value(codec, "snapshots", key, raw)
    try:
        fields = msgpack.unpackb(value, use_list=False)
    except _DecodeErrors as exc:
        raise CorruptValueError(f"snapshots: undecodable value at key {key!r}: {exc}") from exc
    if type(fields) is not tuple or len(fields) not in (3, 4):
        raise CorruptValueError(f"snapshots: value at key {key!r} has the wrong shape")
    timestamp_ms, state, checksum = fields[:3]
    if (
        type(timestamp_ms) is not int
        or type(state) is not bytes
        or type(checksum) is not bytes
        or len(checksum) != 32
    ):
        raise CorruptValueError(f"snapshots: value at key {key!r} has the wrong shape")
    if len(fields) == 4 and fields[3] != sha256(state).digest():
        raise CorruptValueError(f"snapshots: the state at key {key!r} does not match its digest")
    return Snapshot(
        entity_id, int.from_bytes(key[-SEQ_BYTES:], "big"), timestamp_ms, state, checksum
    )


HEAD_PREFIX = b"head\x00"  # meta keys of entities' heads: this + entity id + NUL


def head_key(prefix: bytes) -> bytes:
    """The meta key recording the head (last seq and checksum) of the entity with this key
    prefix, written in the transaction that appends its events."""
    return HEAD_PREFIX + prefix


def pack_head(seq: int, checksum: bytes) -> bytes:
    return seq.to_bytes(SEQ_BYTES, "big") + checksum


def unpack_head(raw: bytes) -> tuple[int, bytes]:
    """(seq, checksum) of a recorded head; `CorruptValueError` when it is not one."""
    if len(raw) != SEQ_BYTES + 32:
        raise CorruptValueError(f"meta: a recorded head of {len(raw)} bytes, not {SEQ_BYTES + 32}")
    return int.from_bytes(raw[:SEQ_BYTES], "big"), raw[SEQ_BYTES:]
