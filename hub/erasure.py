"""The right to erasure (GDPR art. 17) over stored data, keeping the audit chain verifiable.

Erasing principal P:
- P's own entities (every member they have is P: created by P and shared with nobody) are
  erased whole: every event becomes a tombstone and their snapshots go, so they no longer
  exist for anyone.
- Everywhere else P's ChittyID is replaced by a random pseudonym (a fresh CHITTY-USER id that
  nothing links back to P): in event bodies (attributions, participant lists, message
  authors), snapshots (dropped, rebuilt from the scrubbed log), the hosts' outboxes, catalog
  rows and remembered outcomes (dropped).
- A rewritten event keeps its checksum and the digest of its original body, so
  `verify()` / `chitty audit verify` still check every chain after erasure: the audit trail
  shows that event n was rewritten at time t, not what it said.

Bytes of freed LMDB pages stay in the file until it is compacted (`chitty compact`, with the
hub stopped); with encryption at rest they are ciphertext meanwhile.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from hub.auth.scope import own_members
from hub.store.protocol import CheckpointStore
from hub.store.redaction import holds, scrub_bytes, scrubber
from hub.subscriptions import Published, decode_published, encode_published


@dataclass(frozen=True, slots=True)
class Erased:
    """What erasing a principal changed in one store."""

    tombstoned: int  # entities erased whole
    rewritten: int  # events whose bodies were pseudonymized or erased
    snapshots: int  # snapshots dropped because they held the principal
    outcomes: int  # remembered outcomes dropped


def owned_only_by(principal: str, domain: str, entity: Mapping[str, Any]) -> bool:
    """Whether `entity` is the principal's alone: they are its only member."""
    return own_members(domain, entity) == frozenset({principal})


def mentions(store: CheckpointStore, needle: str) -> list[str]:
    """Every entity whose log or snapshot holds `needle` as a whole id (a full scan: erasure
    and export are rare; nothing else pays for it)."""
    return [eid for eid in store.entity_ids() if _holds(store, eid, needle)]


def _holds(store: CheckpointStore, entity_id: str, needle: str) -> bool:
    if any(holds(event.body, needle) for event in store.events(entity_id)):
        return True
    snapshot = store.latest_snapshot(entity_id)
    return snapshot is not None and holds(snapshot.state, needle)


def erase(
    store: CheckpointStore,
    principal: str,
    pseudonym: str,
    whole: Iterable[str] = (),
    is_outbox: Callable[[str], bool] = lambda entity_id: False,
) -> Erased:
    """Erase `whole` entities and pseudonymize `principal` everywhere else in `store`.

    Outboxes (entities holding publications, `is_outbox`) keep every entry, so their seqs stay
    gap-free for the stream: an erased entity's entries lose their content instead.
    Idempotent: erasing again finds nothing more (a second pass after hosts passivated the
    entities they held catches anything written meanwhile)."""
    if not principal or principal == pseudonym:
        raise ValueError("principal: must be a ChittyID other than the pseudonym")
    doomed = frozenset(whole)
    raw = principal.encode()
    pseudonymize = scrubber(principal, pseudonym)
    rewrites: dict[str, Callable[[bytes], bytes | None]] = {}
    snapshots = 0
    for entity_id in store.entity_ids():
        if is_outbox(entity_id):
            rewrites[entity_id] = _outbox_rewrite(doomed, principal, pseudonym)
        elif entity_id in doomed:
            if any(event.body for event in store.events(entity_id)):
                rewrites[entity_id] = _tombstone
            else:
                snapshots += store.drop_snapshots(entity_id)
        elif any(holds(event.body, principal) for event in store.events(entity_id)):
            rewrites[entity_id] = pseudonymize
        else:
            snapshot = store.latest_snapshot(entity_id)
            if snapshot is not None and holds(snapshot.state, principal):
                snapshots += store.drop_snapshots(entity_id)
    counts = store.redact(rewrites) if rewrites else {}
    tombstoned = sum(1 for eid in rewrites if rewrites[eid] is _tombstone)
    purged = store.dedupe_purge(raw, confirm=lambda outcome: holds(outcome, principal))
    return Erased(tombstoned, sum(counts.values()), snapshots, purged)


def _tombstone(body: bytes) -> bytes | None:
    return None


def erase_publication(
    item: Published, whole: frozenset[str], principal: str, pseudonym: str
) -> Published:
    """A publication without the principal: emptied if its entity is erased whole, else with
    the principal's ChittyID replaced wherever it appears."""
    if item.entity_id in whole:
        item = item._replace(entity={}, changed=(), conflicts=(), data=None, resolved_conflicts=())
    scrubbed = scrub_bytes(encode_published(item), principal, pseudonym)
    return item if scrubbed is None else decode_published(scrubbed, item.offset)


def _outbox_rewrite(
    whole: frozenset[str], principal: str, pseudonym: str
) -> Callable[[bytes], bytes | None]:
    def rewrite(body: bytes) -> bytes | None:
        if not body:
            return body
        before = decode_published(body)
        after = erase_publication(before, whole, principal, pseudonym)
        return body if after == before else encode_published(after)

    return rewrite


def pseudonymize_bytes(principal: str, pseudonym: str) -> Callable[[bytes], bytes | None]:
    """A row transform (None: unchanged) for stores without chains (the catalog)."""
    return lambda body: scrub_bytes(body, principal, pseudonym)
