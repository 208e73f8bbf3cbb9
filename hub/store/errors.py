"""Typed failures of the checkpoint store; every one names what went wrong and where."""

from __future__ import annotations


class StoreError(Exception):
    """Base class of every checkpoint-store failure."""


class StoreOpenError(StoreError):
    """The store's directory could not be created or opened (names the path)."""


class StoreClosedError(StoreError):
    """An operation was attempted on a store after `close()`."""


class ReadOnlyStoreError(StoreError):
    """A write was attempted on a store opened with `readonly=True`."""


class SchemaVersionError(StoreError):
    """The store on disk has a schema version this code can neither read nor migrate."""


class StoreWriteError(StoreError):
    """A write transaction failed (disk full, I/O error); nothing of it was committed."""


class StoreFullError(StoreWriteError):
    """The memory map cannot grow any further (`max_map_size` reached)."""


class CorruptValueError(StoreError):
    """A stored key or value could not be decoded (names the database and key)."""


class InvalidKeyError(StoreError, ValueError):
    """An entity id or message id that the key layout cannot hold (empty, NUL, too long)."""


class TimestampOrderError(StoreError, ValueError):
    """An event's timestamp is older than the previous event of the same entity."""


class SnapshotMismatchError(StoreError, ValueError):
    """A snapshot does not match the event it claims to follow (missing seq, other checksum)."""


class CorruptEntityError(StoreError):
    """An entity whose stored data fails its integrity check as it loads: it is not served.

    Carries what a client may be told (the entity and which records are damaged, never their
    content); `chitty audit verify` names the damage in full."""

    def __init__(self, entity_id: str, damage: str) -> None:
        super().__init__(
            f"the stored data of {entity_id} fails its integrity check ({damage}); it is not "
            "served until repaired: `chitty audit verify` names the damage"
        )
        self.entity_id = entity_id
        self.damage = damage

    def __reduce__(self) -> tuple[type[CorruptEntityError], tuple[str, str]]:
        return (CorruptEntityError, (self.entity_id, self.damage))
