"""What the gateway needs from a hub (the Ray `Runtime` provides it), and how it writes.

Handlers turn requests into sync messages here and outcomes into HTTP answers, so every write
of every endpoint follows one path: validate at the edge, route, answer only what is durable.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

from aiohttp import web
from pydantic import JsonValue

from actors.adapter import Answer, SyncReport
from actors.follower import Outboxes, Stream
from actors.reconciler import ReconcileReport
from actors.watcher import Checked
from hub.adapters import AdapterStatus, Inbound
from hub.catalog import Page, Query
from hub.clocks.vector import VectorClock
from hub.codec import write_message
from hub.domains import SyncDomain
from hub.entity import EntityView
from hub.envelope import IDEMPOTENCY_PREFIX, Outcome, Status
from hub.ids import IdGenerator, Kind
from hub.message import Message
from hub.protocol import SyncMessage
from hub.subscriptions import Filter
from transports.gateway.auth import principal_of
from transports.gateway.errors import RETRY_AFTER_S, ApiError


class Hub(Protocol):
    """The running hub as the gateway sees it."""

    async def submit(
        self, messages: Sequence[SyncMessage | Message], with_entity: bool = False
    ) -> list[Outcome]: ...

    async def get(self, entity_id: str) -> EntityView | None: ...

    async def state_at(
        self, entity_id: str, timestamp_ms: int | None = None, seq: int | None = None
    ) -> EntityView | None: ...

    async def history(self, entity_id: str) -> list[dict[str, Any]]: ...

    async def list(self, query: Query) -> Page: ...

    async def conflicts(
        self, domain: SyncDomain | None = None, visible_to: str | None = None
    ) -> list[dict[str, Any]]: ...

    async def reconcile(
        self, project_id: str, caller: str, dry_run: bool = False
    ) -> ReconcileReport: ...

    async def poll(
        self, epoch: str | None, after: int, wanted: Filter, limit: int = 1000, wait_s: float = 0.0
    ) -> Any: ...

    async def health(self, timeout_s: float = 5.0) -> dict[str, bool]: ...

    async def mentions(self, principal: str) -> list[str]: ...

    async def erase(self, principal: str) -> dict[str, Any]: ...

    async def metrics(self) -> dict[str, Any]: ...

    async def adapter_statuses(self) -> list[AdapterStatus]: ...

    async def adapter_inbound(self, name: str, event: Inbound) -> Answer: ...

    async def adapter_sync(self, name: str, entity_ids: Sequence[str]) -> SyncReport: ...

    async def adapter_test(self, name: str, text: str) -> str: ...

    async def adapter_retry(self, name: str) -> int: ...

    async def adapter_failed(self, name: str) -> list[dict[str, Any]]: ...

    async def check(self, entity_ids: Sequence[str]) -> list[Checked]: ...

    async def watched(self) -> list[Checked]: ...

    def outboxes(self) -> Outboxes:
        """The hosts' durable outboxes (where a follower of the stream catches up)."""
        ...

    def stream(self) -> Stream:
        """The hub's stream, every domain (custom agents' webhooks follow it)."""
        ...


class Writer:
    """Builds the sync message of a REST write and turns its outcome into an answer."""

    def __init__(self, hub: Hub, node_id: str) -> None:
        self.hub = hub
        self.ids = IdGenerator(node_id, now_ms=lambda: time.time_ns() // 1_000_000)

    def message(
        self,
        request: web.Request,
        domain: SyncDomain,
        operation: str,
        entity_id: str,
        data: dict[str, JsonValue],
        clock: dict[str, int] | None = None,
        delta: dict[str, JsonValue] | None = None,
    ) -> SyncMessage:
        principal = principal_of(request)
        keyed = idempotency_digest(request)
        message_id = self.ids.new(Kind.MSG) if keyed is None else IDEMPOTENCY_PREFIX + keyed[:40]
        if operation == "create":  # the creator owns the entity (scope isolation)
            data = {**data, "createdBy": principal.chitty_id}
        try:
            return write_message(
                message_id=message_id,
                node_id=origin_header(request, "X-Chitty-Node", "api", 128),
                platform=origin_header(request, "X-Chitty-Platform", "api", 64),
                chitty_id=principal.chitty_id,  # every change is attributed
                domain=domain.value,
                operation=operation,
                entity_id=entity_id,
                data=data,
                timestamp=datetime.now(UTC),
                clock=clock,
                delta=delta,
            )
        except ValueError as error:
            field = getattr(error, "field", "") or None
            raise ApiError(422, "invalid", str(getattr(error, "reason", error)), field) from None

    def new_id(self, request: web.Request, kind: Kind) -> str:
        """A new entity's ChittyID; under an Idempotency-Key the same for every retry (so a
        retried create is the same request, and answers the same entity)."""
        keyed = idempotency_digest(request)
        if keyed is None:
            return self.ids.new(kind)
        return f"CHITTY-{kind.value}-{keyed[40:].upper()}"

    async def write(self, message: SyncMessage) -> tuple[Outcome, EntityView | None]:
        """Route one write; raise the matching ApiError unless it is durable."""
        [outcome] = await self.hub.submit([message], with_entity=True)
        if outcome.status is Status.APPLIED:
            return outcome, None
        if outcome.status is Status.DUPLICATE:
            # A retried Idempotency-Key: answer with the entity as the first write left it.
            first = (
                await self.hub.state_at(outcome.entity_id, seq=outcome.seq) if outcome.seq else None
            )
            return outcome, first
        raise outcome_error(outcome)


def idempotency_digest(request: web.Request) -> str | None:
    """The sha256 (hex) of the caller's Idempotency-Key with who sent it where (one key, one
    request of one principal: never another's answer), None without a key; 400 for a bad key."""
    key = request.headers.get("Idempotency-Key")
    if key is None:
        return None
    if not (0 < len(key) <= 100 and key.isprintable() and " " not in key):
        raise ApiError(400, "bad_header", "must be 1-100 printable characters", "Idempotency-Key")
    scope = f"{principal_of(request).chitty_id}\n{request.method}\n{request.path}\n{key}"
    return hashlib.sha256(scope.encode()).hexdigest()


def origin_header(request: web.Request, header: str, default: str, most: int) -> str:
    """Who writes, as a header says (`X-Chitty-Node`, `X-Chitty-Platform`): 1-`most`
    printable characters and no space, the same rule on REST as on /ws; else a 400."""
    value = request.headers.get(header) or default
    if not (len(value) <= most and value.isprintable() and " " not in value):
        raise ApiError(400, "bad_header", f"must be 1-{most} printable characters", header)
    return value


_REFUSALS = {"not_found": 404, "deleted": 404, "exists": 409, "transition": 409, "invalid": 422}


def outcome_error(outcome: Outcome) -> ApiError:
    """The HTTP answer to an outcome that is not durable."""
    field = _wire_field(outcome.field)
    if outcome.status is Status.REJECTED:
        status = _REFUSALS.get(outcome.refusal, 422)
        return ApiError(status, outcome.refusal or "invalid", outcome.reason, field)
    if outcome.status is Status.BUSY:
        return ApiError(429, "busy", outcome.reason or "the entity is busy; retry shortly")
    if outcome.status is Status.EXPIRED:
        return ApiError(422, "expired", "the message's ttl ran out before it was applied")
    if outcome.status is Status.CAUSAL_VIOLATION:
        return ApiError(409, "causal_violation", outcome.reason, field)
    if outcome.status is Status.KEY_REUSED:
        detail = (
            "this Idempotency-Key was sent before with another request (another body): nothing "
            "was written; a new request needs a new key"
        )
        return ApiError(422, "idempotency_key_reused", detail, "Idempotency-Key")
    if outcome.status is Status.CORRUPT:
        return ApiError(500, "corrupt", outcome.reason, None)
    return ApiError(
        503,
        "unavailable",
        outcome.reason or "no host could take the write",
        retry_after=RETRY_AFTER_S,
    )


def _wire_field(field: str) -> str | None:
    """`payload.entity.data.status` -> `status`: REST clients sent the entity's fields."""
    for prefix in ("payload.entity.data.", "payload.entity."):
        if field.startswith(prefix):
            return field[len(prefix) :]
    if field == "metadata.vectorClock":
        return "vectorClock"
    return field or None


def parse_clock(value: object) -> dict[str, int] | None:
    """A client's vector clock from a body field, validated."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise ApiError(422, "invalid", "must be an object of node id -> counter", "vectorClock")
    try:
        return VectorClock(value).to_dict()
    except ValueError as error:
        raise ApiError(422, "invalid", str(error), "vectorClock") from None
