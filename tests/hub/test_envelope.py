"""Envelopes carry the routing facts; outcomes survive the dedupe table's encoding."""

from __future__ import annotations

from hub.codec import decode_msgpack
from hub.envelope import Envelope, Outcome, Status
from hub.settings import HubSettings
from tests.messages import create_todo


def test_an_envelope_keeps_the_message_and_its_routing_facts() -> None:
    message = create_todo(
        "CHITTY-TODO-1", ttl=60, causality=["m0"], timestamp="2025-01-01T00:00:00Z"
    )
    envelope = Envelope.of(message, depth=2)
    assert envelope.entity_id == "CHITTY-TODO-1"
    assert envelope.causality == ("m0",)
    assert envelope.deadline_ms == 1735689600000 + 60_000
    assert envelope.depth == 2
    assert decode_msgpack(envelope.body) == message


def test_outcomes_round_trip_through_bytes() -> None:
    outcome = Outcome(
        "m1",
        Status.REJECTED,
        "CHITTY-TODO-1",
        3,
        {"a": 1},
        "payload.entity.data.status",
        "bad",
        ({"conflictId": "CHITTY-CONFLICT-1"},),
        {"content": "x"},
        "transition",
    )
    assert Outcome.from_bytes(outcome.to_bytes()) == outcome
    assert not outcome.durable
    assert Outcome("m2", Status.DUPLICATE).durable


def test_settings_read_chitty_variables_and_overrides_win() -> None:
    settings = HubSettings.from_env(
        {"CHITTY_RAY_ADDRESS": "auto", "CHITTY_HOSTS": "3", "OTHER": "x"}, hosts=5, data_dir=None
    )
    assert settings.ray_address == "auto" and settings.hosts == 5
