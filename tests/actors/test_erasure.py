"""Erasing a principal from a host's real LMDB store: own entities gone, the ChittyID
pseudonymized everywhere else, the audit chain still verifying, nothing left after compaction."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from actors.host import EntityHost, outbox_id
from hub.audit import audit_log, audit_verify
from hub.envelope import Envelope, Status
from hub.protocol import SyncMessage
from hub.store import IdentityCodec, LmdbStore
from hub.store.rekey import compact
from hub.subscriptions import decode_published
from tests.actors.conftest import settings_for
from tests.messages import sync_message

ALICE = "CHITTY-USER-ALICE0001"
BOB = "CHITTY-USER-BOB00001"
PSEUDONYM = "CHITTY-USER-ERASED0001"


def by(principal: str, entity: str, operation: str, data: dict[str, Any], **kw: Any) -> SyncMessage:
    message = sync_message(entity, operation, data, **kw)
    return message.model_copy(
        update={"source": message.source.model_copy(update={"chitty_id": principal})}
    )


def scenario(host: EntityHost) -> dict[str, str]:
    private = "CHITTY-TODO-PRIVATE1"
    shared = "CHITTY-SESSION-SHARED1"
    bobs = "CHITTY-TODO-BOBS0001"
    messages = [
        by(
            ALICE,
            private,
            "create",
            {"content": "alice's secret plan", "sessionId": "CHITTY-SESSION-1", "createdBy": ALICE},
        ),
        by(
            BOB,
            shared,
            "create",
            {"sessionId": "s", "platform": "web", "createdBy": BOB, "participants": [BOB, ALICE]},
            domain="sessions",
        ),
        by(
            ALICE,
            shared,
            "update",
            {
                "context": {
                    "messages": [{"role": "user", "content": "hi from alice", "author": ALICE}]
                }
            },
            domain="sessions",
            clock={"a": 1},
            node="a",
        ),
        by(BOB, bobs, "create", {"content": "bob's own", "sessionId": shared, "createdBy": BOB}),
    ]
    outcomes = host.handle([Envelope.of(m) for m in messages]).outcomes
    assert [o.status for o in outcomes] == [Status.APPLIED] * 4, outcomes
    return {"private": private, "shared": shared, "bobs": bobs}


def holds(store: LmdbStore, needle: str) -> list[str]:
    raw = needle.encode()
    found = []
    for entity_id in store.entity_ids():
        if any(raw in e.body for e in store.events(entity_id)):
            found.append(entity_id)
        snapshot = store.latest_snapshot(entity_id)
        if snapshot is not None and raw in snapshot.state:
            found.append(f"{entity_id} (snapshot)")
    return found


def test_erasure_leaves_no_trace_of_the_principal_and_the_chains_verify(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, passivate_snapshot_min=1)
    path = tmp_path / "lmdb"
    store = LmdbStore(path)
    host = EntityHost("h", store, settings)
    ids = scenario(host)
    host.passivate_all()  # snapshots holding alice, to be dropped
    assert holds(store, ALICE) and holds(store, "secret plan")

    erased = host.erase(ALICE, PSEUDONYM, frozenset({ids["private"]}))

    assert erased.tombstoned == 1 and erased.rewritten >= 3
    assert holds(store, ALICE) == [] and holds(store, "secret plan") == []
    assert host.get(ids["private"]) is None  # erased whole, for everyone
    shared = host.get(ids["shared"])
    assert shared is not None  # replays from the pseudonymized log
    assert shared.entity["participants"] == [BOB, PSEUDONYM]
    assert shared.entity["context"]["messages"][0]["author"] == PSEUDONYM
    bobs = host.get(ids["bobs"])
    assert bobs is not None and bobs.entity["content"] == "bob's own"
    assert store.verify().ok, store.verify().corruptions
    # The outbox keeps every entry (the stream's seqs stay gap-free), minus alice.
    outbox = [decode_published(e.body) for e in store.events(outbox_id("h"))]
    assert len(outbox) == 4 and outbox[0].entity == {}
    assert all(ALICE not in repr(item) for item in outbox)
    # The audit trail still lists every event; rewritten ones say so.
    log = audit_log(store, ids["shared"])
    assert [e.principal for e in log] == [BOB, PSEUDONYM] and log[1].redacted
    assert [e.principal for e in audit_log(store, ids["private"])] == [None]
    # Erasing again finds nothing more.
    again = host.erase(ALICE, PSEUDONYM, frozenset({ids["private"]}))
    assert (again.rewritten, again.snapshots, again.outcomes) == (0, 0, 0)
    store.close()

    # Freed pages still hold the old bytes until the file is compacted; then nothing does.
    compact(path, IdentityCodec())
    raw = b"".join(f.read_bytes() for f in path.iterdir() if f.is_file())
    assert ALICE.encode() not in raw and b"secret plan" not in raw
    assert audit_verify(path).ok
    with LmdbStore(path) as reopened:
        assert reopened.verify().ok
        assert holds(reopened, ALICE) == []
