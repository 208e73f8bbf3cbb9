"""scrub_bytes: pseudonymizing a string everywhere in a msgpack body."""

from __future__ import annotations

import msgpack
import pytest

from hub.store import LmdbStore, NewEvent, scrub_bytes, scrubber

ALICE = "CHITTY-PEO-ALICE"


def pack(value: object) -> bytes:
    packed: bytes = msgpack.packb(value, use_bin_type=True)
    return packed


def test_every_string_equal_to_or_containing_the_needle_is_replaced() -> None:
    body = pack(
        {
            "message": {"source": {"chittyId": ALICE, "nodeId": "n1"}},
            "assignees": ["CHITTY-PEO-BOB", ALICE],
            "note": f"ping {ALICE} and {ALICE}",
            ALICE: 3,
            "count": 7,
            "blob": ALICE.encode(),
        }
    )

    out = scrub_bytes(body, ALICE, "CHITTY-PEO-ERASED")

    assert out is not None
    assert msgpack.unpackb(out, raw=False) == {
        "message": {"source": {"chittyId": "CHITTY-PEO-ERASED", "nodeId": "n1"}},
        "assignees": ["CHITTY-PEO-BOB", "CHITTY-PEO-ERASED"],
        "note": "ping CHITTY-PEO-ERASED and CHITTY-PEO-ERASED",
        "CHITTY-PEO-ERASED": 3,
        "count": 7,
        "blob": ALICE.encode(),  # binary is left alone
    }


def test_an_unchanged_body_gives_none() -> None:
    assert scrub_bytes(pack({"a": ["CHITTY-PEO-BOB", 1, None]}), ALICE, "x") is None
    assert scrub_bytes(b"", ALICE, "x") is None


def test_bad_input_is_refused() -> None:
    with pytest.raises(ValueError, match="non-empty needle"):
        scrub_bytes(pack("a"), "", "x")
    with pytest.raises(ValueError, match="not msgpack"):
        scrub_bytes(b"\xc1", ALICE, "x")


def test_scrubber_rewrites_only_the_bodies_that_mention_the_needle(tmp_path: object) -> None:
    with LmdbStore(f"{tmp_path}/store") as store:
        store.append_batch(
            [NewEvent("a", 1, pack({"by": ALICE})), NewEvent("a", 2, pack({"by": "B"}))]
        )
        assert store.redact({"a": scrubber(ALICE, "ERASED")}) == {"a": 1}
        bodies = [msgpack.unpackb(e.body) for e in store.events("a")]
        assert bodies == [{"by": "ERASED"}, {"by": "B"}]
        assert store.verify().ok


def test_only_whole_identifiers_are_replaced() -> None:
    body = msgpack.packb(
        {
            "a": "CHITTY-USER-1",
            "b": ["CHITTY-USER-12", "by CHITTY-USER-1, then X"],
            "CHITTY-USER-1": 1,
        }
    )
    scrubbed = scrub_bytes(body, "CHITTY-USER-1", "CHITTY-USER-ERASED")
    assert scrubbed is not None
    assert msgpack.unpackb(scrubbed) == {
        "a": "CHITTY-USER-ERASED",
        "b": ["CHITTY-USER-12", "by CHITTY-USER-ERASED, then X"],
        "CHITTY-USER-ERASED": 1,
    }
    assert scrub_bytes(msgpack.packb(["CHITTY-USER-12"]), "CHITTY-USER-1", "x") is None
