"""`AgentStore`: custom agents (the spec's ChittyRouter), in named databases of the token
store's LMDB environment (`TokenStore.environment`: one environment per path per process).

An agent is a service's registration: a name, the domains and filters it subscribes to, and
how it is told of changes (a webhook URL, or its own /ws connection). Per webhook agent the
store keeps where it stands in each host's outbox (`marks`, as an adapter does), advanced in
the same transaction that records what was delivered, only after the receiver acknowledged:
a restart resumes at the first unacknowledged change, nothing skipped. Registrations (the
webhook secret among them) pass through the hub's value codec, encrypted at rest like every
store; marks and delivery counts are plain numbers and event ids.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import lmdb
import msgpack

from hub.store.codec import IdentityCodec, ValueCodec

NAME_RE = re.compile(r"[a-z0-9-]{1,64}")
_FORMAT = 1


def agent_id_for(principal: str, name: str) -> str:
    """The id of `principal`'s agent `name`: the same for every registration of that pair."""
    digest = hashlib.sha256(f"{principal}\x00{name}".encode()).hexdigest()
    return f"agent-{digest[:16]}"


def new_webhook_secret() -> str:
    """A webhook signing secret (32 random bytes), shown once at registration."""
    return f"whsec_{secrets.token_urlsafe(32)}"


@dataclass(frozen=True, slots=True)
class Delivered:
    """What a webhook agent's receiver has acknowledged: how many events, the last one's id,
    and when (epoch seconds)."""

    events: int = 0
    last_event_id: str | None = None
    at: float | None = None


@dataclass(frozen=True, slots=True)
class AgentRecord:
    """A registered agent, as anyone allowed to see it may (never its webhook secret)."""

    agent_id: str
    name: str
    principal: str  # the CHITTY-SERVICE id the agent acts and reads as
    description: str
    domains: tuple[str, ...]
    filters: Mapping[str, str] = field(default_factory=dict)  # the /ws filter form, camelCase
    webhook_url: str | None = None
    created_at: float = 0.0
    updated_at: float = 0.0
    registered_by: str = ""  # the service itself, or the admin who registered it

    @property
    def delivery(self) -> str:
        return "webhook" if self.webhook_url is not None else "websocket"


@dataclass(frozen=True, slots=True)
class _Stored:
    record: AgentRecord
    secret: str | None


def _pack(stored: _Stored) -> bytes:
    r = stored.record
    data = {
        "v": _FORMAT,
        "id": r.agent_id,
        "name": r.name,
        "principal": r.principal,
        "description": r.description,
        "domains": list(r.domains),
        "filters": dict(r.filters),
        "webhook": r.webhook_url,
        "created": r.created_at,
        "updated": r.updated_at,
        "by": r.registered_by,
        "secret": stored.secret,
    }
    packed: bytes = msgpack.packb(data, use_bin_type=True)
    return packed


def _unpack(raw: bytes) -> _Stored:
    data: dict[str, Any] = msgpack.unpackb(raw, raw=False)
    if data.get("v") != _FORMAT:
        raise ValueError(f"agent record of unknown format {data.get('v')!r}")
    record = AgentRecord(
        agent_id=data["id"],
        name=data["name"],
        principal=data["principal"],
        description=data["description"],
        domains=tuple(data["domains"]),
        filters=data["filters"],
        webhook_url=data["webhook"],
        created_at=data["created"],
        updated_at=data["updated"],
        registered_by=data["by"],
    )
    return _Stored(record, data["secret"])


def _mark_key(agent_id: str, host: str) -> bytes:
    return f"{agent_id}\x00{host}".encode()


class AgentStore:
    """Registered agents, their webhook secrets, marks and delivery records (see the module)."""

    def __init__(
        self,
        env: lmdb.Environment,
        codec: ValueCodec | None = None,
        now: Callable[[], float] = time.time,
    ) -> None:
        self._codec: ValueCodec = codec if codec is not None else IdentityCodec()
        self._now = now
        self._env = env
        self._agents = self._env.open_db(b"agents")
        self._marks = self._env.open_db(b"agent-marks")
        self._delivered = self._env.open_db(b"agent-delivered")

    def _load(self, txn: lmdb.Transaction, agent_id: str) -> _Stored | None:
        raw = txn.get(agent_id.encode(), db=self._agents)
        return None if raw is None else _unpack(self._codec.decode(bytes(raw)))

    # -- registrations -----------------------------------------------------------------------

    def register(
        self,
        principal: str,
        name: str,
        description: str,
        domains: tuple[str, ...],
        filters: Mapping[str, str],
        webhook_url: str | None,
        registered_by: str,
    ) -> tuple[AgentRecord, str | None, bool]:
        """Register `principal`'s agent `name`, or update it (same id); returns the record,
        a webhook secret when one was made now (shown once), and whether it is new. An agent
        keeps its secret across updates while it keeps a webhook."""
        if not NAME_RE.fullmatch(name):
            raise ValueError("name: 1-64 characters of a-z, 0-9 and -")
        agent_id = agent_id_for(principal, name)
        now = self._now()
        with self._env.begin(write=True) as txn:
            old = self._load(txn, agent_id)
            record = AgentRecord(
                agent_id,
                name,
                principal,
                description,
                domains,
                dict(filters),
                webhook_url,
                created_at=old.record.created_at if old else now,
                updated_at=now,
                registered_by=registered_by,
            )
            secret = old.secret if old is not None else None
            shown = None
            if webhook_url is None:  # no webhook: no secret, and no place in the outboxes
                secret = None
                self._forget_marks(txn, agent_id)
            elif secret is None:
                secret = shown = new_webhook_secret()
            packed = self._codec.encode(_pack(_Stored(record, secret)))
            txn.put(agent_id.encode(), packed, db=self._agents)
        return record, shown, old is None

    def _forget_marks(self, txn: lmdb.Transaction, agent_id: str) -> None:
        prefix = f"{agent_id}\x00".encode()
        doomed = [key for key, _ in txn.cursor(db=self._marks) if bytes(key).startswith(prefix)]
        for key in doomed:
            txn.delete(key, db=self._marks)
        txn.delete(agent_id.encode(), db=self._delivered)

    def get(self, agent_id: str) -> AgentRecord | None:
        with self._env.begin() as txn:
            stored = self._load(txn, agent_id)
        return None if stored is None else stored.record

    def secret(self, agent_id: str) -> str | None:
        """The webhook secret the hub signs this agent's deliveries with (never shown again)."""
        with self._env.begin() as txn:
            stored = self._load(txn, agent_id)
        return None if stored is None else stored.secret

    def list(self, principal: str | None = None) -> list[AgentRecord]:
        """Every agent (of `principal` only, when given), oldest first."""
        with self._env.begin() as txn:
            found = [
                _unpack(self._codec.decode(bytes(raw))).record
                for _, raw in txn.cursor(db=self._agents)
            ]
        mine = [r for r in found if principal is None or r.principal == principal]
        return sorted(mine, key=lambda r: (r.created_at, r.agent_id))

    def remove(self, agent_id: str) -> bool:
        """Forget the agent, its secret, marks and delivery record; whether it was there."""
        with self._env.begin(write=True) as txn:
            existed = txn.delete(agent_id.encode(), db=self._agents)
            self._forget_marks(txn, agent_id)
        return bool(existed)

    # -- where a webhook agent stands ----------------------------------------------------------

    def marks(self, agent_id: str) -> dict[str, int] | None:
        """The agent's outbox seq per host; None before it `begin`s."""
        prefix = f"{agent_id}\x00".encode()
        with self._env.begin(db=self._marks) as txn:
            found = {
                bytes(key)[len(prefix) :].decode(): int(value)
                for key, value in txn.cursor()
                if bytes(key).startswith(prefix)
            }
            began = txn.get(_mark_key(agent_id, ""))
        if began is None:
            return None
        found.pop("", None)
        return found

    def begin(self, agent_id: str, heads: Mapping[str, int]) -> dict[str, int]:
        """A new agent's starting marks: the hosts' newest entries (it is told of what changes
        from now on), taken once; the marks it stands at."""
        with self._env.begin(write=True, db=self._marks) as txn:
            if txn.get(_mark_key(agent_id, "")) is None:
                txn.put(_mark_key(agent_id, ""), b"0")
                for host, seq in heads.items():
                    txn.put(_mark_key(agent_id, host), str(seq).encode())
        return self.marks(agent_id) or {}

    def acknowledged(
        self, agent_id: str, marks: Mapping[str, int], events: int, last_event_id: str | None
    ) -> Delivered:
        """Record a delivery the receiver acknowledged (or outbox entries it owed nothing) and
        move the marks past it, in one transaction; the agent's delivery record now."""
        with self._env.begin(write=True) as txn:
            if txn.get(agent_id.encode(), db=self._agents) is None:
                return Delivered()  # removed meanwhile: nothing to keep
            for host, seq in marks.items():
                txn.put(_mark_key(agent_id, host), str(seq).encode(), db=self._marks)
            raw = txn.get(agent_id.encode(), db=self._delivered)
            before = Delivered(*msgpack.unpackb(raw, raw=False)) if raw else Delivered()
            after = before
            if events:
                after = replace(
                    before,
                    events=before.events + events,
                    last_event_id=last_event_id,
                    at=self._now(),
                )
                packed = msgpack.packb([after.events, after.last_event_id, after.at])
                txn.put(agent_id.encode(), packed, db=self._delivered)
        return after

    def delivered(self, agent_id: str) -> Delivered:
        with self._env.begin(db=self._delivered) as txn:
            raw = txn.get(agent_id.encode())
        return Delivered(*msgpack.unpackb(raw, raw=False)) if raw else Delivered()
