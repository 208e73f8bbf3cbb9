"""The durable checkpoint store: chained event log, snapshots, dedupe table, recovery."""

from hub.store.chain import GENESIS_CHECKSUM, event_checksum
from hub.store.codec import IdentityCodec, ValueCodec
from hub.store.crypto import AesGcmCodec, EncryptionKeyError, generate_key, load_key
from hub.store.errors import (
    CorruptEntityError,
    CorruptValueError,
    InvalidKeyError,
    ReadOnlyStoreError,
    SchemaVersionError,
    SnapshotMismatchError,
    StoreClosedError,
    StoreError,
    StoreFullError,
    StoreOpenError,
    StoreWriteError,
    TimestampOrderError,
)
from hub.store.lmdb_store import LmdbStore
from hub.store.memory import MemoryStore
from hub.store.protocol import CheckpointStore, Clock, system_clock_ms
from hub.store.records import (
    Corruption,
    CorruptionKind,
    DedupeEntry,
    EntityCheck,
    NewEvent,
    NewSnapshot,
    RedactedEvent,
    Snapshot,
    StoredEvent,
    VerifyReport,
)
from hub.store.recovery import (
    Recovered,
    Replayer,
    SnapshotPolicy,
    load,
    state_at,
    take_snapshot,
)
from hub.store.redaction import scrub_bytes, scrubber
from hub.store.rekey import (
    CATALOG_LAYOUT,
    STORE_LAYOUT,
    RekeyError,
    RekeyReport,
    compact,
    recover_interrupted_rekey,
    rekey,
)
from hub.store.schema import SCHEMA_VERSION, Migration, MigrationContext

__all__ = [
    "CATALOG_LAYOUT",
    "GENESIS_CHECKSUM",
    "SCHEMA_VERSION",
    "STORE_LAYOUT",
    "AesGcmCodec",
    "CheckpointStore",
    "Clock",
    "CorruptEntityError",
    "CorruptValueError",
    "Corruption",
    "CorruptionKind",
    "DedupeEntry",
    "EncryptionKeyError",
    "EntityCheck",
    "IdentityCodec",
    "InvalidKeyError",
    "LmdbStore",
    "MemoryStore",
    "Migration",
    "MigrationContext",
    "NewEvent",
    "NewSnapshot",
    "ReadOnlyStoreError",
    "Recovered",
    "RedactedEvent",
    "RekeyError",
    "RekeyReport",
    "Replayer",
    "SchemaVersionError",
    "Snapshot",
    "SnapshotMismatchError",
    "SnapshotPolicy",
    "StoreClosedError",
    "StoreError",
    "StoreFullError",
    "StoreOpenError",
    "StoreWriteError",
    "StoredEvent",
    "TimestampOrderError",
    "ValueCodec",
    "VerifyReport",
    "compact",
    "event_checksum",
    "generate_key",
    "load",
    "load_key",
    "recover_interrupted_rekey",
    "rekey",
    "scrub_bytes",
    "scrubber",
    "state_at",
    "system_clock_ms",
    "take_snapshot",
]
