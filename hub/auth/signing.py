"""HMAC-SHA256 signatures over requests and WebSocket frames, with replay protection.

The signed text is `METHOD\\npath?query\\ntimestamp\\nnonce\\nhex(sha256(body))`; a frame is
signed as method `WS`, path `/ws`, its text as the body. The timestamp is integer Unix seconds.
"""

from __future__ import annotations

import hashlib
import heapq
import hmac
import re
import secrets
import time
from collections.abc import Callable

from hub.auth.errors import AuthReason, SignatureError

TIMESTAMP_HEADER = "X-Chitty-Timestamp"
NONCE_HEADER = "X-Chitty-Nonce"
SIGNATURE_HEADER = "X-Chitty-Signature"

FRAME_METHOD = "WS"
FRAME_PATH = "/ws"
DEFAULT_WINDOW_S = 300.0
DEFAULT_MAX_NONCES = 100_000

_METHOD_RE = re.compile(r"[A-Za-z]{1,16}")
_TIMESTAMP_RE = re.compile(r"[0-9]{1,12}")
_NONCE_RE = re.compile(r"[A-Za-z0-9_-]{16,128}")
_SIGNATURE_RE = re.compile(r"[0-9a-f]{64}")


def canonical(method: str, path_with_query: str, timestamp: str, nonce: str, body: bytes) -> bytes:
    """The exact bytes that are signed."""
    if "\n" in method or "\n" in timestamp or "\n" in nonce:
        raise ValueError("method, timestamp and nonce cannot hold a newline")
    digest = hashlib.sha256(body).hexdigest()
    text = "\n".join((method.upper(), path_with_query, timestamp, nonce, digest))
    return text.encode("utf-8", "surrogatepass")


def sign(
    key: bytes, method: str, path_with_query: str, timestamp: str, nonce: str, body: bytes
) -> str:
    """The hex HMAC-SHA256 of the canonical form."""
    message = canonical(method, path_with_query, timestamp, nonce, body)
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def new_nonce() -> str:
    """A fresh random nonce (22 base64url characters)."""
    return secrets.token_urlsafe(16)


def signed_headers(
    key: bytes,
    method: str,
    path_with_query: str,
    body: bytes,
    now: Callable[[], float] = time.time,
) -> dict[str, str]:
    """The three headers a client adds to sign a request."""
    timestamp, nonce = str(int(now())), new_nonce()
    return {
        TIMESTAMP_HEADER: timestamp,
        NONCE_HEADER: nonce,
        SIGNATURE_HEADER: sign(key, method, path_with_query, timestamp, nonce, body),
    }


def sign_frame(key: bytes, timestamp: str, nonce: str, text: str) -> str:
    """The signature of a WebSocket text frame."""
    return sign(key, FRAME_METHOD, FRAME_PATH, timestamp, nonce, text.encode("utf-8"))


class NonceMemory:
    """Nonces seen, each kept until its timestamp leaves the window; refuses when full."""

    # Memory is bounded by (signed requests per second) x (2 x window) and capped at
    # `capacity`: forgetting a nonce early would let it be replayed, so a full memory refuses.

    def __init__(self, capacity: int = DEFAULT_MAX_NONCES) -> None:
        if capacity < 1:
            raise ValueError(f"capacity: must be >= 1, got {capacity}")
        self.capacity = capacity
        self._seen: set[tuple[bytes, str]] = set()
        self._expiry: list[tuple[float, bytes, str]] = []

    def __len__(self) -> int:
        return len(self._seen)

    def forget_until(self, now: float) -> None:
        """Drop every nonce whose forget time is before `now`."""
        while self._expiry and self._expiry[0][0] < now:
            _, scope, nonce = heapq.heappop(self._expiry)
            self._seen.discard((scope, nonce))

    def remember(self, scope: bytes, nonce: str, forget_at: float) -> AuthReason | None:
        """Record the nonce; None on success, else why not (replayed, or memory full)."""
        if (scope, nonce) in self._seen:
            return AuthReason.REPLAYED
        if len(self._seen) >= self.capacity:
            return AuthReason.NONCE_CAPACITY
        self._seen.add((scope, nonce))
        heapq.heappush(self._expiry, (forget_at, scope, nonce))
        return None


class Verifier:
    """Checks signed requests and frames: headers, freshness, signature, then nonce reuse."""

    def __init__(
        self,
        window_s: float = DEFAULT_WINDOW_S,
        now: Callable[[], float] = time.time,
        max_nonces: int = DEFAULT_MAX_NONCES,
    ) -> None:
        if not window_s > 0:
            raise ValueError(f"window_s: must be positive, got {window_s!r}")
        self.window_s = window_s
        self._now = now
        self._nonces = NonceMemory(max_nonces)

    @property
    def nonces_held(self) -> int:
        """How many nonces are remembered now."""
        return len(self._nonces)

    def verify(
        self,
        key: bytes,
        method: str,
        path_with_query: str,
        timestamp_header: str | None,
        nonce_header: str | None,
        signature_header: str | None,
        body: bytes,
    ) -> None:
        """Return when the request is authentic and fresh, else raise `SignatureError`."""
        for header, value in (
            (TIMESTAMP_HEADER, timestamp_header),
            (NONCE_HEADER, nonce_header),
            (SIGNATURE_HEADER, signature_header),
        ):
            if not value:
                raise SignatureError(AuthReason.MISSING_HEADER, f"no {header} header")
        assert timestamp_header and nonce_header and signature_header  # narrowed above
        if not _METHOD_RE.fullmatch(method):
            raise SignatureError(AuthReason.BAD_FORMAT, "method is not 1-16 letters")
        if not _TIMESTAMP_RE.fullmatch(timestamp_header):
            raise SignatureError(
                AuthReason.BAD_FORMAT, f"{TIMESTAMP_HEADER} is not integer Unix seconds"
            )
        if not _NONCE_RE.fullmatch(nonce_header):
            raise SignatureError(
                AuthReason.BAD_FORMAT, f"{NONCE_HEADER} is not 16-128 base64url characters"
            )
        if not _SIGNATURE_RE.fullmatch(signature_header):
            raise SignatureError(
                AuthReason.BAD_FORMAT, f"{SIGNATURE_HEADER} is not 64 lower-case hex digits"
            )
        now = self._now()
        stamp = int(timestamp_header)
        if abs(now - stamp) > self.window_s:
            raise SignatureError(
                AuthReason.STALE,
                f"timestamp {stamp} is {now - stamp:+.0f} s from the hub's clock "
                f"(window {self.window_s:g} s)",
            )
        expected = sign(key, method, path_with_query, timestamp_header, nonce_header, body)
        if not hmac.compare_digest(expected, signature_header):
            raise SignatureError(AuthReason.BAD_SIGNATURE, "signature does not match")
        # Only authentic requests reach the nonce memory, so forgers cannot fill it.
        self._nonces.forget_until(now)
        scope = hashlib.sha256(key).digest()[:8]
        refused = self._nonces.remember(scope, nonce_header, forget_at=stamp + self.window_s)
        if refused is AuthReason.REPLAYED:
            raise SignatureError(refused, f"nonce {nonce_header} was already used")
        if refused is not None:
            raise SignatureError(refused, f"{self._nonces.capacity} nonces are held; retry shortly")

    def verify_frame(
        self,
        key: bytes,
        timestamp: str | None,
        nonce: str | None,
        signature: str | None,
        text: str,
    ) -> None:
        """`verify` for a WebSocket text frame (method WS, path /ws, the text as body)."""
        self.verify(
            key, FRAME_METHOD, FRAME_PATH, timestamp, nonce, signature, text.encode("utf-8")
        )


# -- webhooks the hub sends (custom agents) ----------------------------------------------------
#
# The hub signs each webhook POST with the agent's secret: `X-Chitty-Timestamp` (integer Unix
# seconds) and `X-Chitty-Signature: v1=<hex HMAC-SHA256(secret, timestamp + "." + body)>`. A
# receiver recomputes it over the raw body and refuses a timestamp outside its window, so a
# captured delivery cannot be replayed later (events carry ids for deduplication within it).

WEBHOOK_SCHEME = "v1"


def webhook_signature(secret: str, timestamp: str, body: bytes) -> str:
    """The `X-Chitty-Signature` value of a webhook: `v1=<hex HMAC-SHA256>`."""
    message = timestamp.encode("ascii") + b"." + body
    digest = hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()
    return f"{WEBHOOK_SCHEME}={digest}"


def webhook_headers(
    secret: str, body: bytes, now: Callable[[], float] = time.time
) -> dict[str, str]:
    """The headers the hub adds to a webhook POST of `body`."""
    timestamp = str(int(now()))
    return {
        TIMESTAMP_HEADER: timestamp,
        SIGNATURE_HEADER: webhook_signature(secret, timestamp, body),
    }


def verify_webhook(
    secret: str,
    timestamp: str | None,
    signature: str | None,
    body: bytes,
    now: Callable[[], float] = time.time,
    window_s: float = DEFAULT_WINDOW_S,
) -> None:
    """Return when a webhook the hub sent is authentic and fresh, else raise `SignatureError`
    (for receivers: pass the two headers and the raw body exactly as received)."""
    if not timestamp or not signature:
        header = TIMESTAMP_HEADER if not timestamp else SIGNATURE_HEADER
        raise SignatureError(AuthReason.MISSING_HEADER, f"no {header} header")
    if not _TIMESTAMP_RE.fullmatch(timestamp):
        raise SignatureError(AuthReason.BAD_FORMAT, f"{TIMESTAMP_HEADER} is not Unix seconds")
    scheme, _, digest = signature.partition("=")
    if scheme != WEBHOOK_SCHEME or not _SIGNATURE_RE.fullmatch(digest):
        raise SignatureError(
            AuthReason.BAD_FORMAT, f"{SIGNATURE_HEADER} is not v1=<64 lower-case hex digits>"
        )
    skew = now() - int(timestamp)
    if abs(skew) > window_s:
        raise SignatureError(
            AuthReason.STALE, f"timestamp is {skew:+.0f} s from this clock (window {window_s:g} s)"
        )
    if not hmac.compare_digest(webhook_signature(secret, timestamp, body), signature):
        raise SignatureError(AuthReason.BAD_SIGNATURE, "signature does not match")
