"""`stamp` attributes every write to its principal, copying only what it must."""

from __future__ import annotations

from typing import Any

import pytest

from hub.auth.principal import Principal, Role
from hub.codec import from_wire
from hub.protocol import SyncMessage
from transports.gateway.auth import stamp

ME = Principal("CHITTY-USER-ME", Role.ADMIN, "user", "tok")


def _message(operation: str, source: str, data: dict[str, Any]) -> SyncMessage:
    return from_wire(
        {
            "id": "m1",
            "type": "state_update",
            "source": {"nodeId": "n", "platform": "cli", "chittyId": source},
            "payload": {
                "domain": "todos",
                "operation": operation,
                "entity": {"chittyId": "CHITTY-TODO-1", "data": data},
            },
            "metadata": {"timestamp": "2025-01-01T00:00:00Z", "vectorClock": {}},
        }
    )


def _slow(message: SyncMessage, principal: Principal) -> SyncMessage:
    """What stamp did before it skipped the copies: always copy, always set createdBy."""
    source = message.source.model_copy(update={"chitty_id": principal.chitty_id})
    update: dict[str, Any] = {"source": source}
    payload = getattr(message, "payload", None)
    if payload is not None and payload.operation == "create":
        data = {**payload.entity.data, "createdBy": principal.chitty_id}
        entity = payload.entity.model_copy(update={"data": data})
        update["payload"] = payload.model_copy(update={"entity": entity})
    return message.model_copy(update=update)


@pytest.mark.parametrize("operation", ["create", "update", "delete"])
@pytest.mark.parametrize("source", ["CHITTY-USER-ME", "CHITTY-USER-OTHER"])
@pytest.mark.parametrize(
    "data",
    [{}, {"content": "x"}, {"createdBy": "CHITTY-USER-ME"}, {"createdBy": "CHITTY-USER-OTHER"}],
)
def test_stamp_equals_the_always_copying_form(
    operation: str, source: str, data: dict[str, Any]
) -> None:
    message = _message(operation, source, data)
    stamped = stamp(message, ME)
    assert stamped == _slow(message, ME)
    assert stamped.source.chitty_id == ME.chitty_id
    if operation == "create":
        assert stamped.payload.entity.data["createdBy"] == ME.chitty_id  # type: ignore[union-attr]
    if source == ME.chitty_id and (operation != "create" or data.get("createdBy") == ME.chitty_id):
        assert stamped is message  # nothing to change: no copy
