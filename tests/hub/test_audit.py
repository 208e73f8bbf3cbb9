"""The audit trail over real LMDB files: who changed what when, and every break named."""

from __future__ import annotations

from pathlib import Path

import lmdb
import msgpack
import pytest

from hub.audit import AuditEntry, audit_log, audit_verify
from hub.catalog import Catalog
from hub.entity import apply
from hub.erasure import pseudonymize_bytes
from hub.protocol import SyncMessage
from hub.replay import encode_event
from hub.store import AesGcmCodec, LmdbStore, MemoryStore, NewEvent, generate_key, scrubber
from hub.subscriptions import Published, publication
from tests.hub.test_catalog import published
from tests.hub.test_entity import TODO_ID, message

BOB = "CHITTY-USER-2"


def by(msg: SyncMessage, principal: str) -> SyncMessage:
    return msg.model_copy(update={"source": msg.source.model_copy(update={"chitty_id": principal})})


def history(rows: list[tuple[int, Published]] | None = None) -> list[NewEvent]:
    """Three real applied messages: create by user 1, update by Bob, delete by user 1 (and,
    into `rows`, what the catalog takes of each, as a host's outbox holds it)."""
    writes = [
        message(
            "a", {"a": 1}, "create", {"content": "Write tests", "sessionId": "CHITTY-SESSION-1"}
        ),
        by(
            message(
                "b", {"a": 1, "b": 1}, "update", {"content": "Write more", "status": "in_progress"}
            ),
            BOB,
        ),
        message("a", {"a": 2, "b": 1}, "delete", second=5),
    ]
    state = None
    out = []
    for n, msg in enumerate(writes, start=1):
        result = apply(state, msg)
        state = result.state
        out.extend(NewEvent(TODO_ID, 1000 * n, encode_event(event)) for event in result.events)
        if rows is not None:
            assert state is not None
            rows += [(len(rows) + 1, publication(e, state, len(out))) for e in result.events]
    return out


def second_todo(rows: list[tuple[int, Published]]) -> NewEvent:
    """CHITTY-TODO-2 created (and, into `rows`, its catalog row)."""
    create = message(
        "a",
        {"a": 1},
        "create",
        {"content": "x", "sessionId": "CHITTY-SESSION-1"},
        entity="CHITTY-TODO-2",
    )
    result = apply(None, create)
    assert result.state is not None
    rows.append((len(rows) + 1, publication(result.events[0], result.state, 1)))
    return NewEvent("CHITTY-TODO-2", 1, encode_event(result.events[0]))


@pytest.mark.parametrize("kind", ["memory", "lmdb"])
def test_the_log_says_who_changed_what_when(tmp_path: Path, kind: str) -> None:
    store = MemoryStore() if kind == "memory" else LmdbStore(tmp_path / "lmdb")
    with store:
        store.append_batch(history())
        log = audit_log(store, TODO_ID)

    assert [(e.seq, e.timestamp_ms, e.principal, e.operation, e.redacted) for e in log] == [
        (1, 1000, "CHITTY-USER-1", "create", False),
        (2, 2000, BOB, "update", False),
        (3, 3000, "CHITTY-USER-1", "delete", False),
    ]
    assert set(log[1].changed) == {"content", "status"}
    assert "content" in log[0].changed


def test_redacted_events_still_list_and_say_so(tmp_path: Path) -> None:
    with LmdbStore(tmp_path / "lmdb") as store:
        store.append_batch(history())
        store.redact({TODO_ID: scrubber(BOB, "CHITTY-USER-ERASED")})
        store.redact({TODO_ID: lambda body: None if b"delete" in body else body})
        log = audit_log(store, TODO_ID)

    assert [(e.principal, e.operation, e.redacted) for e in log] == [
        ("CHITTY-USER-1", "create", False),
        ("CHITTY-USER-ERASED", "update", True),
        (None, None, True),
    ]
    assert log[2] == AuditEntry(3, 3000, None, None, (), True, "body erased")
    assert audit_verify(tmp_path / "lmdb").ok


def test_audit_verify_names_every_break(tmp_path: Path) -> None:
    codec = AesGcmCodec(generate_key())
    rows: list[tuple[int, Published]] = []
    with LmdbStore(tmp_path / "lmdb", codec=codec) as store:
        store.append_batch(history(rows))
        store.append_batch([second_todo(rows)])
        store.redact({TODO_ID: scrubber(BOB, "CHITTY-USER-ERASED")})
    catalog = Catalog(tmp_path / "catalog", codec=codec)
    catalog.take("h", rows)
    catalog.rewrite(pseudonymize_bytes(BOB, "CHITTY-USER-ERASED"))
    catalog.close()

    report = audit_verify(tmp_path / "lmdb", tmp_path / "catalog", codec=codec)
    assert report.ok, report.breaks
    assert (report.entities, report.events, report.redacted_events, report.catalog_rows) == (
        2,
        4,
        1,
        2,
    )

    env = lmdb.open(str(tmp_path / "lmdb"), max_dbs=8)
    events = env.open_db(b"events")
    with env.begin(write=True) as txn:
        key = b"CHITTY-TODO-2\x00" + (1).to_bytes(8, "big")
        plain = msgpack.unpackb(codec.decode(txn.get(key, db=events)))
        plain[1] = b"forged"
        txn.put(key, codec.encode(msgpack.packb(plain)), db=events)
        txn.delete(TODO_ID.encode() + b"\x00" + (2).to_bytes(8, "big"), db=events)
    env.close()
    env = lmdb.open(str(tmp_path / "catalog"), max_dbs=4)
    table = env.open_db(b"rows")
    with env.begin(write=True) as txn:
        txn.put(b"todos\x00CHITTY-TODO-0002", b"garbage", db=table)
    env.close()

    report = audit_verify(tmp_path / "lmdb", tmp_path / "catalog", codec=codec)
    assert [(b.source, b.entity_id, b.seq, b.kind) for b in report.breaks] == [
        ("events", TODO_ID, 2, "gap"),
        ("events", "CHITTY-TODO-2", 1, "bad_checksum"),
        ("catalog", "CHITTY-TODO-0002", None, "undecodable"),
    ]


def test_audit_verify_checks_catalog_rows_against_the_entities_events(tmp_path: Path) -> None:
    rows: list[tuple[int, Published]] = []
    with LmdbStore(tmp_path / "lmdb") as store:
        store.append_batch([*history(rows), second_todo(rows)])
    catalog = Catalog(tmp_path / "catalog")
    catalog.take("h", [*rows, (len(rows) + 1, published(7))])  # a row with no events
    catalog.close()
    env = lmdb.open(str(tmp_path / "catalog"), max_dbs=4)
    table = env.open_db(b"rows")
    with env.begin(write=True) as txn:  # one byte of a row's content changed
        key = b"todos\x00CHITTY-TODO-2"
        raw = txn.get(key, db=table)
        assert raw is not None and b"x" in raw
        at = raw.index(b"\xa1x")  # the content "x", a one-character msgpack string
        txn.put(key, raw[:at] + b"\xa1y" + raw[at + 2 :], db=table)
    env.close()

    report = audit_verify(tmp_path / "lmdb", tmp_path / "catalog")
    assert [(b.source, b.entity_id, b.seq, b.kind) for b in report.breaks] == [
        ("catalog", "CHITTY-TODO-0007", 1, "no_events"),
        ("catalog", "CHITTY-TODO-2", 1, "row_mismatch"),
    ]
    assert report.catalog_rows == 3
    assert all("y" not in b.detail.split() for b in report.breaks)


def test_audit_verify_with_the_wrong_key_reports_the_store_unreadable(tmp_path: Path) -> None:
    with LmdbStore(tmp_path / "lmdb", codec=AesGcmCodec(generate_key())) as store:
        store.append_batch(history())

    report = audit_verify(tmp_path / "lmdb", codec=AesGcmCodec(generate_key()))
    assert [(b.source, b.kind) for b in report.breaks] == [("store", "unreadable")]
    assert "wrong codec or key" in report.breaks[0].detail
