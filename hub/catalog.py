"""The catalog: every entity's latest view by domain, for filtered, paginated listing.

Fed from the hosts' outboxes (durable and ordered), so it never misses a change and never
counts one twice: each host's outbox position is stored in the same LMDB transaction as the
rows it produced. Lists and the open conflicts across entities are answered from here.
"""

from __future__ import annotations

import base64
import functools
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import lmdb
import msgpack
from pydantic import JsonValue

from hub.auth.scope import members
from hub.domains import DOMAINS, SyncDomain
from hub.entity import EntityView
from hub.erasure import owned_only_by
from hub.ids import InvalidChittyId, parse
from hub.store.codec import IdentityCodec, ValueCodec
from hub.store.lmdb_env import PRIVATE
from hub.store.rekey import recover_interrupted_rekey
from hub.subscriptions import RELAYED, Published


class CursorError(ValueError):
    """A pagination cursor this catalog did not issue."""


@dataclass(frozen=True, slots=True)
class Query:
    """A list request: a domain, equality filters on wire fields, a page.

    `session_id` matches the session itself and the todos it lists (those it made, and those a
    reconciliation `listedIn` it); `sessions` does the same for any of several sessions. A
    todo merged into another (`mergedInto`) is left out unless `include_merged`.
    """

    domain: SyncDomain
    project_id: str | None = None
    session_id: str | None = None
    topic_id: str | None = None
    status: str | None = None
    assignee: str | None = None
    include_deleted: bool = False
    cursor: str | None = None
    limit: int = 100
    visible_to: str | None = None  # a ChittyID: only entities it is a member of (scope)
    include_merged: bool = False
    sessions: tuple[str, ...] | None = None


@dataclass(frozen=True, slots=True)
class Link:
    """A write the hub owes a parent because a child named it: `session` joined (or left,
    `add` False) `project`'s sessions. `key` orders them and names their message."""

    key: bytes
    project: str
    session: str
    add: bool


@dataclass(frozen=True, slots=True)
class Page:
    """One page of a list, and the cursor of the next (None: this was the last page)."""

    rows: tuple[EntityView, ...]
    cursor: str | None  # None: this was the last page


def _status(entity: Mapping[str, Any]) -> str | None:
    value = entity.get("status")
    if value is None and isinstance(entity.get("metadata"), Mapping):
        value = entity["metadata"].get("status")
    if value is None:
        value = entity.get("health")
    return value if isinstance(value, str) else None


def _key(domain: SyncDomain, entity_id: str) -> bytes:
    return f"{domain.value}\x00{entity_id}".encode("utf-8", "surrogatepass")


def _encode_cursor(key: bytes) -> str:
    return base64.urlsafe_b64encode(key).decode()


def _decode_cursor(cursor: str, domain: SyncDomain) -> bytes:
    try:
        key = base64.urlsafe_b64decode(cursor.encode())
    except (ValueError, UnicodeError):
        raise CursorError("cursor is not one this hub issued") from None
    if not key.startswith(_key(domain, "")):
        raise CursorError(f"cursor belongs to another list than {domain.value}")
    return key


class Catalog:
    """Rows keyed by (domain, entity id), and each host's outbox mark, in one LMDB env."""

    def __init__(
        self, path: Path, map_size: int = 1 << 32, codec: ValueCodec | None = None
    ) -> None:
        self._codec: ValueCodec = codec if codec is not None else IdentityCodec()
        recover_interrupted_rekey(path)  # a key rotation stopped between its renames
        path.mkdir(mode=PRIVATE, parents=True, exist_ok=True)
        self._env = lmdb.open(str(path), map_size=map_size, max_dbs=4, subdir=True, mode=PRIVATE)
        self._rows = self._env.open_db(b"rows")
        self._marks = self._env.open_db(b"marks")
        self._links = self._env.open_db(b"links")
        # What `take` reads of a row it replaces, remembered from the rows it wrote (or read)
        # so a hot entity's row is not read and decrypted again: key -> (seq, project, deleted).
        self._known: dict[bytes, _Known] = {}

    def close(self) -> None:
        self._env.close()

    def rewrite(self, transform: Callable[[bytes], bytes | None]) -> int:
        """Rewrite rows in one transaction (erasure: pseudonymize a principal in every row).

        `transform` gets each row's plaintext msgpack and returns the new one, or None to
        leave the row as it is (so `hub.store.redaction.scrub_bytes` fits as it is). A new
        row must still decode to a row of the same entity and domain, else `ValueError` and
        nothing changes. Returns how many rows were rewritten. The catalog has no chain: the
        old bytes are simply replaced (`hub.store.rekey.compact` clears them from the file).
        """
        changed = 0
        self._known.clear()  # a rewritten row may name another project
        with self._env.begin(write=True, db=self._rows) as txn:
            updates: list[tuple[bytes, bytes]] = []
            for key, raw in txn.cursor():
                plain = self._codec.decode(raw)
                new = transform(plain)
                if new is None or new == plain:
                    continue
                old_row: dict[str, Any] = msgpack.unpackb(plain, raw=False)
                try:
                    new_row = msgpack.unpackb(new, raw=False)
                except (ValueError, msgpack.UnpackException) as exc:
                    raise ValueError(f"rewritten row {key!r} is not msgpack: {exc}") from None
                if not isinstance(new_row, dict) or any(
                    new_row.get(field) != old_row[field] for field in ("id", "domain")
                ):
                    raise ValueError(f"rewritten row {key!r} is not a row of the same entity")
                updates.append((key, self._codec.encode(new)))
            for key, value in updates:
                txn.put(key, value)
            changed = len(updates)
        return changed

    def drop(self, entity_ids: Iterable[str]) -> int:
        """Delete the rows of these entities (in whichever domain); return how many."""
        dropped = 0
        with self._env.begin(write=True, db=self._rows) as txn:
            for entity_id in entity_ids:
                for domain in SyncDomain:
                    key = _key(domain, entity_id)
                    self._known.pop(key, None)
                    if txn.delete(key):
                        dropped += 1
        return dropped

    def _row(self, raw: bytes) -> dict[str, Any]:
        row: dict[str, Any] = msgpack.unpackb(self._codec.decode(raw), raw=False)
        return row

    def mark(self, host: str) -> int:
        """The newest outbox seq of `host` already in the catalog."""
        with self._env.begin(db=self._marks) as txn:
            raw = txn.get(host.encode())
        return int(raw) if raw is not None else 0

    def marks(self) -> dict[str, int]:
        with self._env.begin(db=self._marks) as txn:
            return {k.decode(): int(v) for k, v in txn.cursor()}

    def take(self, host: str, items: Sequence[tuple[int, Published]]) -> int:
        """Fold a host's outbox entries (in order) into the rows; returns the new mark."""
        mark = self.mark(host)
        fresh = [(seq, item) for seq, item in items if seq > mark]
        if not fresh:
            return mark
        known: dict[bytes, _Known] = {}  # remembered once the transaction commits
        with self._env.begin(write=True) as txn:
            for _, item in fresh:
                if item.kind in RELAYED:  # an event or command: no state to keep
                    continue
                key = _key(item.domain, item.entity_id)
                old = known.get(key) or self._known.get(key)
                if old is None:
                    current = txn.get(key, db=self._rows)
                    old = _known(self._row(current)) if current is not None else None
                if old is not None and old.seq >= item.seq:
                    continue  # an older change of an entity that moved between hosts
                txn.put(key, self._codec.encode(_encode_row(item)), db=self._rows)
                for index, (project, add) in enumerate(_session_links(old, item)):
                    link = self._codec.encode(msgpack.packb((project, item.entity_id, add)))
                    txn.put(_link_key(item, index), link, db=self._links)
                known[key] = _Known(item.seq, item.project_id, item.kind == "deleted")
            mark = fresh[-1][0]
            txn.put(host.encode(), str(mark).encode(), db=self._marks)
        if len(self._known) + len(known) > _KNOWN_MOST:
            self._known.clear()
        self._known.update(known)
        return mark

    def links(self, limit: int = 500) -> list[Link]:
        """Link writes not yet done: each session's in the order they arose (those of
        different sessions change different elements of a set, so their order is free)."""
        found = []
        with self._env.begin(db=self._links) as txn:
            for key, raw in txn.cursor():
                project, session, add = msgpack.unpackb(self._codec.decode(raw), raw=False)
                found.append(Link(bytes(key), project, session, add))
                if len(found) >= limit:
                    break
        return found

    def linked(self, keys: Iterable[bytes]) -> None:
        """Forget link writes that are done (durable, or refused for good)."""
        with self._env.begin(write=True, db=self._links) as txn:
            for key in keys:
                txn.delete(key)

    def get(self, domain: SyncDomain, entity_id: str) -> EntityView | None:
        with self._env.begin(db=self._rows) as txn:
            raw = txn.get(_key(domain, entity_id))
        return _view(self._row(raw)) if raw is not None else None

    def query(self, query: Query) -> Page:
        """One page of rows matching `query`, in entity-id order, and the next page's cursor."""
        prefix = _key(query.domain, "")
        start = _decode_cursor(query.cursor, query.domain) if query.cursor else prefix
        rows: list[EntityView] = []
        last: bytes | None = None
        more = False
        parent = self._parents()
        with self._env.begin(db=self._rows) as txn:
            cursor = txn.cursor()
            if not cursor.set_range(start):
                return Page((), None)
            for key, raw in cursor:
                if not key.startswith(prefix):
                    break
                if query.cursor and key == start:
                    continue  # the cursor names the last row of the previous page
                row = self._row(raw)
                if not _matches(row, query):
                    continue
                if query.visible_to is not None and not _visible(row, query.visible_to, parent):
                    continue
                if len(rows) == query.limit:
                    more = True
                    break
                rows.append(_view(row))
                last = key
        return Page(tuple(rows), _encode_cursor(last) if more and last is not None else None)

    def parent(self, entity_id: str) -> Mapping[str, Any] | None:
        """The wire entity of `entity_id` in whichever domain its kind belongs to."""
        try:
            kind = parse(entity_id).kind
        except InvalidChittyId:
            return None
        for domain in SyncDomain:
            if DOMAINS[domain].kind is kind:
                view = self.get(domain, entity_id)
                if view is not None:
                    return view.entity
        return None

    def owned_only_by(self, chitty_id: str) -> list[str]:
        """Entities whose only member is `chitty_id` (what erasing it erases whole)."""
        found = []
        with self._env.begin(db=self._rows) as txn:
            for _, raw in txn.cursor():
                row = self._row(raw)
                if owned_only_by(chitty_id, row["domain"], row["entity"]):
                    found.append(row["id"])
        return found

    def _parents(self) -> Callable[[str], Mapping[str, Any] | None]:
        """`parent`, remembering what it found for one listing: a page of one session's todos
        reads the session (and its project) once, not once a row."""
        return functools.cache(self.parent)

    def conflicts(
        self, domain: SyncDomain | None = None, visible_to: str | None = None
    ) -> Iterator[dict[str, JsonValue]]:
        """Every open conflict, optionally of one domain, optionally only those of entities
        `visible_to` is a member of."""
        domains: Iterable[SyncDomain] = [domain] if domain is not None else list(SyncDomain)
        parent = self._parents()
        with self._env.begin(db=self._rows) as txn:
            for each in domains:
                prefix = _key(each, "")
                cursor = txn.cursor()
                if not cursor.set_range(prefix):
                    continue
                for key, raw in cursor:
                    if not key.startswith(prefix):
                        break
                    row = self._row(raw)
                    if row["deleted"] or not row["conflicts"]:
                        continue
                    if visible_to is None or _visible(row, visible_to, parent):
                        yield from row["conflicts"]


def _visible(
    row: Mapping[str, Any], chitty_id: str, parent: Callable[[str], Mapping[str, Any] | None]
) -> bool:
    return chitty_id in members(row["domain"], row["entity"], parent)


class _Known(NamedTuple):
    """What `Catalog.take` needs of the row it replaces."""

    seq: int
    project: str | None
    deleted: bool


_KNOWN_MOST = 200_000  # rows remembered (about 100 bytes each) before the memo starts over


def _known(row: Mapping[str, Any]) -> _Known:
    return _Known(row["seq"], row["project"], row["deleted"])


def _session_links(old: _Known | None, item: Published) -> list[tuple[str, bool]]:
    """What a session's change owes projects: leave the one it named, join the one it names
    (a deleted session belongs to none)."""
    if item.domain is not SyncDomain.SESSIONS:
        return []
    before = old.project if old is not None and not old.deleted else None
    after = item.project_id if item.kind != "deleted" else None
    if before == after:
        return []
    return [(p, add) for p, add in ((before, False), (after, True)) if p is not None]


def _link_key(item: Published, index: int) -> bytes:
    """Session id, the session's log position, which of its links: unique and the same every
    time the change is taken (a catalog rebuilt from the outboxes notes the same links)."""
    return _key(item.domain, item.entity_id) + item.seq.to_bytes(8, "big") + bytes([index])


def _in_session(row: Mapping[str, Any], sessions: Iterable[str]) -> bool:
    """Whether the row is one of these sessions, or a todo one of them lists."""
    listed = row["entity"].get("listedIn") or ()
    return any(s == row["session"] or s in listed for s in sessions)


def _matches(row: Mapping[str, Any], query: Query) -> bool:
    entity = row["entity"]
    return bool(
        (query.include_deleted or not row["deleted"])
        and (query.include_merged or not entity.get("mergedInto"))
        and (query.project_id is None or query.project_id == row["project"])
        and (query.session_id is None or _in_session(row, (query.session_id,)))
        and (query.sessions is None or _in_session(row, query.sessions))
        and (query.topic_id is None or query.topic_id == row["topic"])
        and (query.status is None or query.status == _status(entity))
        and (query.assignee is None or query.assignee in (entity.get("assignees") or []))
    )


def _encode_row(item: Published) -> bytes:
    packed: bytes = msgpack.packb(
        {
            "id": item.entity_id,
            "domain": item.domain.value,
            "seq": item.seq,
            "clock": dict(item.clock),
            "deleted": item.kind == "deleted",
            "entity": dict(item.entity),
            "conflicts": list(item.open_conflicts),
            "project": item.project_id,
            "session": item.session_id,
            "topic": item.topic_id,
        },
        use_bin_type=True,
    )
    return packed


def _view(row: Mapping[str, Any]) -> EntityView:
    return EntityView(
        row["id"],
        row["domain"],
        row["seq"],
        row["clock"],
        row["deleted"],
        row["entity"],
        tuple(row["conflicts"]),
    )
