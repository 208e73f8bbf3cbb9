"""The signature the hub puts on custom agents' webhooks, and the check a receiver runs."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from hub.auth.errors import AuthReason, SignatureError
from hub.auth.signing import verify_webhook, webhook_headers, webhook_signature

SECRET = "whsec_test-secret"
BODY = b'{"agentId":"agent-1","events":[]}'


def test_the_signature_is_the_documented_hmac() -> None:
    expected = hmac.new(SECRET.encode(), b"1700000000." + BODY, hashlib.sha256).hexdigest()
    assert webhook_signature(SECRET, "1700000000", BODY) == f"v1={expected}"


def test_signed_headers_verify() -> None:
    headers = webhook_headers(SECRET, BODY, now=lambda: 1_700_000_000.4)
    assert headers["X-Chitty-Timestamp"] == "1700000000"
    verify_webhook(
        SECRET,
        headers["X-Chitty-Timestamp"],
        headers["X-Chitty-Signature"],
        BODY,
        now=lambda: 1_700_000_100.0,
    )


NOW = 1_700_000_000.0
GOOD = webhook_signature(SECRET, "1700000000", BODY)


@pytest.mark.parametrize(
    ("secret", "timestamp", "signature", "body", "reason"),
    [
        ("whsec_other", "1700000000", GOOD, BODY, AuthReason.BAD_SIGNATURE),  # another secret
        (SECRET, "1700000000", GOOD, BODY + b" ", AuthReason.BAD_SIGNATURE),  # body changed
        (SECRET, "1700000001", GOOD, BODY, AuthReason.BAD_SIGNATURE),  # timestamp changed
        (
            SECRET,
            "1699999000",
            webhook_signature(SECRET, "1699999000", BODY),
            BODY,
            AuthReason.STALE,
        ),  # authentic, but too old: a replay
        (SECRET, None, GOOD, BODY, AuthReason.MISSING_HEADER),
        (SECRET, "1700000000", "", BODY, AuthReason.MISSING_HEADER),
        (SECRET, "soon", GOOD, BODY, AuthReason.BAD_FORMAT),
        (SECRET, "1700000000", "v2=" + GOOD[3:], BODY, AuthReason.BAD_FORMAT),
        (SECRET, "1700000000", "v1=" + "0" * 64, BODY, AuthReason.BAD_SIGNATURE),
    ],
)
def test_a_receiver_refuses(
    secret: str, timestamp: str | None, signature: str, body: bytes, reason: AuthReason
) -> None:
    with pytest.raises(SignatureError) as refused:
        verify_webhook(secret, timestamp, signature, body, now=lambda: NOW)
    assert refused.value.reason is reason


def test_the_window_is_the_receivers_choice() -> None:
    signature = webhook_signature(SECRET, "1700000000", BODY)
    verify_webhook(
        SECRET, "1700000000", signature, BODY, now=lambda: 1_700_000_900.0, window_s=1000
    )
    with pytest.raises(SignatureError):
        verify_webhook(SECRET, "1700000000", signature, BODY, now=lambda: 1_700_000_900.0)
