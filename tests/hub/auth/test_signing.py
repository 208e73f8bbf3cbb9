"""Request and frame signatures: canonical form, freshness, replay, tampering, nonce bounds."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hub.auth.errors import AuthReason, SignatureError
from hub.auth.signing import (
    NONCE_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    Verifier,
    canonical,
    sign,
    sign_frame,
    signed_headers,
)

KEY = bytes(range(32))
T0 = 1_700_000_000
NONCE = "n0nce-0123456789abcdef"


class Clock:
    def __init__(self, t: float = T0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def refused(
    verifier: Verifier,
    key: bytes = KEY,
    method: str = "POST",
    path: str = "/api/v1/todos?x=1",
    timestamp: str | None = str(T0),
    nonce: str | None = NONCE,
    signature: str | None = None,
    body: bytes = b'{"a":1}',
) -> AuthReason | None:
    try:
        verifier.verify(key, method, path, timestamp, nonce, signature, body)
    except SignatureError as error:
        return error.reason
    return None


def good_signature(
    method: str = "POST", path: str = "/api/v1/todos?x=1", body: bytes = b'{"a":1}'
) -> str:
    return sign(KEY, method, path, str(T0), NONCE, body)


def test_canonical_form() -> None:
    body = b"hello"
    text = canonical("post", "/a?b=c", "17", "nonce", body)
    assert text == f"POST\n/a?b=c\n17\nnonce\n{hashlib.sha256(body).hexdigest()}".encode()
    assert sign(KEY, "post", "/a?b=c", "17", "nonce", body) == sign(
        KEY, "POST", "/a?b=c", "17", "nonce", body
    )
    with pytest.raises(ValueError):
        canonical("GET\n", "/", "1", "n", b"")


def test_good_request_passes_once_then_is_a_replay() -> None:
    verifier = Verifier(now=Clock())
    assert refused(verifier, signature=good_signature()) is None
    assert refused(verifier, signature=good_signature()) is AuthReason.REPLAYED
    assert verifier.nonces_held == 1


def test_signed_headers_round_trip() -> None:
    clock = Clock()
    headers = signed_headers(KEY, "get", "/api/v1/todos", b"", now=clock)
    Verifier(now=clock).verify(
        KEY,
        "GET",
        "/api/v1/todos",
        headers[TIMESTAMP_HEADER],
        headers[NONCE_HEADER],
        headers[SIGNATURE_HEADER],
        b"",
    )


@pytest.mark.parametrize("missing", ["timestamp", "nonce", "signature"])
def test_missing_header(missing: str) -> None:
    args: dict[str, str | None] = {
        "timestamp": str(T0),
        "nonce": NONCE,
        "signature": good_signature(),
    }
    for absent in (None, ""):
        args[missing] = absent
        assert refused(Verifier(now=Clock()), **args) is AuthReason.MISSING_HEADER  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("timestamp", "17e8"),
        ("timestamp", "-5"),
        ("timestamp", "1700000000.5"),
        ("nonce", "short"),
        ("nonce", "has space in it here"),
        ("signature", "ABCDEF" * 10 + "ABCD"),
        ("signature", "00"),
        ("method", "GE T"),
    ],
)
def test_bad_format(field: str, value: str) -> None:
    args: dict[str, str] = {field: value}
    if field != "signature":
        args["signature"] = good_signature()
    assert refused(Verifier(now=Clock()), **args) is AuthReason.BAD_FORMAT  # type: ignore[arg-type]


@pytest.mark.parametrize("offset", [-301, 301, -10_000, 10_000])
def test_stale_either_direction(offset: int) -> None:
    clock = Clock(T0 + offset)
    assert refused(Verifier(window_s=300, now=clock), signature=good_signature()) is (
        AuthReason.STALE
    )


@pytest.mark.parametrize("offset", [-300, 300, 0])
def test_window_edges_are_fresh(offset: int) -> None:
    clock = Clock(T0 + offset)
    assert refused(Verifier(window_s=300, now=clock), signature=good_signature()) is None


def test_wrong_key_is_a_bad_signature() -> None:
    signature = good_signature()
    assert refused(Verifier(now=Clock()), key=b"k" * 32, signature=signature) is (
        AuthReason.BAD_SIGNATURE
    )


def test_forgeries_do_not_use_up_nonces() -> None:
    verifier = Verifier(now=Clock())
    assert refused(verifier, signature="0" * 64) is AuthReason.BAD_SIGNATURE
    assert verifier.nonces_held == 0
    assert refused(verifier, signature=good_signature()) is None


def test_the_same_nonce_under_another_key_is_not_a_replay() -> None:
    verifier = Verifier(now=Clock())
    other = b"o" * 32
    assert refused(verifier, signature=good_signature()) is None
    theirs = sign(other, "POST", "/api/v1/todos?x=1", str(T0), NONCE, b'{"a":1}')
    assert refused(verifier, key=other, signature=theirs) is None


def test_nonces_are_forgotten_only_once_stale() -> None:
    clock = Clock()
    verifier = Verifier(window_s=300, now=clock)
    assert refused(verifier, signature=good_signature()) is None
    clock.t = T0 + 300  # still inside the window: remembered
    assert refused(verifier, signature=good_signature()) is AuthReason.REPLAYED
    clock.t = T0 + 301  # the timestamp is stale now, so the nonce can go
    assert refused(verifier, signature=good_signature()) is AuthReason.STALE
    headers = signed_headers(KEY, "GET", "/", b"", now=clock)
    verifier.verify(
        KEY, "GET", "/", headers[TIMESTAMP_HEADER], headers[NONCE_HEADER],
        headers[SIGNATURE_HEADER], b"",
    )  # fmt: skip
    assert verifier.nonces_held == 1  # the stale nonce was dropped when the new one came


def test_a_full_nonce_memory_refuses_instead_of_forgetting() -> None:
    clock = Clock()
    verifier = Verifier(window_s=300, now=clock, max_nonces=3)

    def send() -> AuthReason | None:
        headers = signed_headers(KEY, "GET", "/", b"", now=clock)
        return refused(
            verifier,
            method="GET",
            path="/",
            body=b"",
            timestamp=headers[TIMESTAMP_HEADER],
            nonce=headers[NONCE_HEADER],
            signature=headers[SIGNATURE_HEADER],
        )

    assert [send() for _ in range(4)] == [None, None, None, AuthReason.NONCE_CAPACITY]
    clock.t += 301
    assert send() is None
    assert verifier.nonces_held == 1


def test_frames() -> None:
    clock = Clock()
    verifier = Verifier(now=clock)
    text = '{"type":"subscribe","domain":"todos"}'
    signature = sign_frame(KEY, str(T0), NONCE, text)
    assert signature == sign(KEY, "WS", "/ws", str(T0), NONCE, text.encode())
    verifier.verify_frame(KEY, str(T0), NONCE, signature, text)
    with pytest.raises(SignatureError) as error:
        verifier.verify_frame(KEY, str(T0), NONCE, signature, text)
    assert error.value.reason is AuthReason.REPLAYED
    with pytest.raises(SignatureError) as error:
        verifier.verify_frame(KEY, str(T0), NONCE + "x", signature, text + " ")
    assert error.value.reason is AuthReason.BAD_SIGNATURE
    with pytest.raises(SignatureError) as error:
        verifier.verify_frame(KEY, str(T0), None, signature, text)
    assert error.value.reason is AuthReason.MISSING_HEADER


def _flip(data: bytes, index: int, value: int) -> bytes:
    index %= len(data)
    replacement = value if value != data[index] else (value + 1) % 256
    return data[:index] + bytes([replacement]) + data[index + 1 :]


@given(
    field=st.sampled_from(["method", "path", "timestamp", "body"]),
    index=st.integers(min_value=0, max_value=1_000),
    value=st.integers(min_value=0, max_value=255),
    body=st.binary(min_size=1, max_size=64),
)
def test_any_single_byte_change_fails(field: str, index: int, value: int, body: bytes) -> None:
    method, path, timestamp = "PATCH", "/api/v1/todos/CHITTY-TODO-1?dry=1", str(T0)
    signature = sign(KEY, method, path, timestamp, NONCE, body)
    parts = {
        "method": method.encode(),
        "path": path.encode(),
        "timestamp": timestamp.encode(),
        "body": body,
    }
    parts[field] = _flip(parts[field], index, value)
    changed = {k: v.decode("latin-1") for k, v in parts.items() if k != "body"}
    if field == "method" and changed["method"].upper() == method:
        return  # a case change of the method is the same request (methods are case-blind)
    reason = refused(
        Verifier(now=Clock()),
        method=changed["method"],
        path=changed["path"],
        timestamp=changed["timestamp"],
        signature=signature,
        body=parts["body"],
    )
    assert reason in (AuthReason.BAD_SIGNATURE, AuthReason.BAD_FORMAT, AuthReason.STALE)


@given(st.binary(max_size=256), st.text(max_size=40))
def test_sign_then_verify_always_passes(body: bytes, query: str) -> None:
    path = "/p?" + query.replace("\n", "")
    verifier = Verifier(now=Clock())
    signature = sign(KEY, "PUT", path, str(T0), NONCE, body)
    verifier.verify(KEY, "PUT", path, str(T0), NONCE, signature, body)
