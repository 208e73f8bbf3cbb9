"""Typed authentication failures, each carrying a stable machine-readable reason."""

from __future__ import annotations

from enum import StrEnum


class AuthReason(StrEnum):
    """Why a credential or a signature was refused (stable strings: clients match on them)."""

    # credentials (service tokens and JWTs)
    UNKNOWN = "unknown"  # no such token
    EXPIRED = "expired"  # past its expiry, or a rotated token past its overlap window
    REVOKED = "revoked"
    MALFORMED = "malformed"  # not shaped like a credential at all
    # JWTs
    UNKNOWN_KID = "unknown_kid"  # no key with the token's kid: refresh the JWKS once, retry
    BAD_SIGNATURE = "bad_signature"
    BAD_ALGORITHM = "bad_algorithm"  # an algorithm outside RS256/ES256/EdDSA, or not the key's
    WRONG_AUDIENCE = "wrong_audience"
    WRONG_ISSUER = "wrong_issuer"
    NOT_YET_VALID = "not_yet_valid"  # nbf or iat in the future beyond the leeway
    MISSING_CLAIM = "missing_claim"
    BAD_SUBJECT = "bad_subject"  # sub is not a CHITTY-USER id
    BAD_ROLE = "bad_role"  # chitty_role is not admin, member or viewer
    BAD_JWKS = "bad_jwks"  # the configured key set holds no usable key
    # signed requests and frames
    MISSING_HEADER = "missing_header"
    BAD_FORMAT = "bad_format"
    STALE = "stale"  # timestamp outside the window, either direction
    REPLAYED = "replayed"  # nonce seen within the window
    NONCE_CAPACITY = "nonce_capacity"  # nonce memory full: refused rather than forget early


class AuthError(Exception):
    """A credential was refused; `reason` is the stable code, `detail` says what exactly."""

    def __init__(self, reason: AuthReason, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else str(reason))
        self.reason = reason
        self.detail = detail


class SignatureError(AuthError):
    """A signed request or frame was refused (missing, malformed, stale, replayed, forged)."""


class UnknownTokenError(ValueError):
    """A token id that the token store does not hold (a caller's mistake, not a credential)."""
