"""What crosses a process boundary on the hot path: batches as one msgpack value, exactly."""

from __future__ import annotations

import pickle

from hub.envelope import (
    Envelope,
    Outcome,
    Status,
    pack_envelopes,
    pack_outcomes,
    unpack_envelopes,
    unpack_outcomes,
)
from tests.messages import create_todo

ENVELOPES = [
    Envelope.of(create_todo("CHITTY-TODO-1", node="a"), with_entity=True),
    Envelope("m2", "CHITTY-TODO-2", ("m1", "m0"), 123, b"\x00body", depth=2),
]
OUTCOMES = [
    Outcome(
        "m1",
        Status.APPLIED,
        "CHITTY-TODO-1",
        3,
        {"a": 1, "b": 2},
        conflicts=({"conflictId": "c", "versions": [1, 2]},),
        entity={"content": "x", "tags": ["a"]},
    ),
    Outcome("m2", Status.REJECTED, "CHITTY-TODO-2", 0, {}, "payload.x", "bad", refusal="invalid"),
    Outcome("m3", Status.BUSY),
]


def test_a_batch_of_envelopes_travels_as_one_value_and_comes_back_equal() -> None:
    assert unpack_envelopes(pack_envelopes(ENVELOPES)) == ENVELOPES
    assert [pickle.loads(pickle.dumps(e)) for e in ENVELOPES] == ENVELOPES


def test_a_batch_of_outcomes_travels_as_one_value_and_comes_back_equal() -> None:
    back = unpack_outcomes(pack_outcomes(OUTCOMES))
    assert back == OUTCOMES and all(isinstance(o.status, Status) for o in back)
    assert [pickle.loads(pickle.dumps(o)) for o in OUTCOMES] == OUTCOMES
    assert [Outcome.from_bytes(o.to_bytes()) for o in OUTCOMES] == OUTCOMES
