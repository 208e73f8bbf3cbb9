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
from actors.reconciler import ReconcileReport
from hub.adapters import AdapterStatus, Inbound
from hub.catalog import Page, Query
from hub.clocks.vector import VectorClock
from hub.codec import from_wire
from hub.domains import SyncDomain
from hub.entity import EntityView
from hub.envelope import Outcome, Status
from hub.ids import IdGenerator, Kind
from hub.protocol import SyncMessage
from hub.subscriptions import Filter
from transports.gateway.auth import principal_of
from transports.gateway.errors import ApiError


class Hub(Protocol):
    """The running hub as the gateway sees it."""

    async def submit(
        self, messages: Sequence[SyncMessage], with_entity: bool = False
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
        key = request.headers.get("Idempotency-Key")
        if key is not None and not (0 < len(key) <= 100 and key.isprintable() and " " not in key):
            raise ApiError(400, "bad_header", "Idempotency-Key must be 1-100 printable characters")
        principal = principal_of(request)
        message_id = self.ids.new(Kind.MSG)
        if key is not None:  # one key, one request of one principal: never another's answer
            scope = f"{principal.chitty_id}\n{request.method}\n{request.path}\n{key}"
            message_id = "idem-" + hashlib.sha256(scope.encode()).hexdigest()[:40]
        if operation == "create":  # the creator owns the entity (scope isolation)
            data = {**data, "createdBy": principal.chitty_id}
        raw = {
            "id": message_id,
            "type": "state_update",
            "source": {
                "nodeId": request.headers.get("X-Chitty-Node", "api"),
                "platform": request.headers.get("X-Chitty-Platform", "api"),
                "chittyId": principal.chitty_id,  # every change is attributed
            },
            "payload": {
                "domain": domain.value,
                "operation": operation,
                "entity": {"chittyId": entity_id, "type": domain.value[:-1], "data": data},
                **({"delta": delta} if delta is not None else {}),
            },
            "metadata": {"timestamp": datetime.now(UTC).isoformat(), "vectorClock": clock or {}},
        }
        try:
            return from_wire(raw)
        except ValueError as error:
            field = getattr(error, "field", "") or None
            raise ApiError(422, "invalid", str(getattr(error, "reason", error)), field) from None

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
    return ApiError(503, "unavailable", outcome.reason or "no host could take the write")


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
