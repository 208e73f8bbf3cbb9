"""`OidcVerifier`: a user's OIDC JWT, checked against the issuer's JWKS, becomes a Principal."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from typing import Any

import jwt

from hub.auth.errors import AuthError, AuthReason
from hub.auth.principal import Principal, Role
from hub.ids import InvalidChittyId, Kind, parse

ALLOWED_ALGORITHMS = frozenset({"RS256", "ES256", "EdDSA"})
ROLE_CLAIM = "chitty_role"
_GRANTABLE = {r.value: r for r in (Role.ADMIN, Role.MEMBER, Role.VIEWER)}
_REQUIRED = ("exp", "iat", "iss", "aud", "sub")


class OidcVerifier:
    """Checks signature, exp, nbf, iat (with `leeway_s`), aud and iss of user JWTs."""

    # Time claims are checked here against the injected clock (PyJWT reads the wall clock);
    # signature, aud and iss are PyJWT's. The last parsed JWKS is cached by its content.

    def __init__(
        self,
        issuer: str,
        audience: str,
        leeway_s: float = 30.0,
        now: Callable[[], float] = time.time,
    ) -> None:
        if not issuer:
            raise ValueError("issuer: must not be empty")
        if not audience:
            raise ValueError("audience: must not be empty")
        if leeway_s < 0:
            raise ValueError(f"leeway_s: must be >= 0, got {leeway_s!r}")
        self.issuer = issuer
        self.audience = audience
        self.leeway_s = leeway_s
        self._now = now
        self._jwks_text: str | None = None
        self._jwks: jwt.PyJWKSet | None = None

    def _key_set(self, jwks: Mapping[str, Any]) -> jwt.PyJWKSet:
        try:
            text = json.dumps(jwks, sort_keys=True)
        except (TypeError, ValueError) as error:
            raise AuthError(AuthReason.BAD_JWKS, f"the JWKS is not JSON: {error}") from None
        if text != self._jwks_text or self._jwks is None:
            try:
                self._jwks = jwt.PyJWKSet.from_dict(dict(jwks))
            except jwt.PyJWTError as error:
                raise AuthError(AuthReason.BAD_JWKS, str(error)) from None
            self._jwks_text = text
        return self._jwks

    def verify(self, token: str, jwks: Mapping[str, Any]) -> Principal:
        """The user the token names, or `AuthError` with the precise reason."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as error:
            raise AuthError(AuthReason.MALFORMED, f"not a JWT: {error}") from None
        alg, kid = header.get("alg"), header.get("kid")
        if alg not in ALLOWED_ALGORITHMS:
            allowed = ", ".join(sorted(ALLOWED_ALGORITHMS))
            raise AuthError(AuthReason.BAD_ALGORITHM, f"alg {alg!r} is not one of {allowed}")
        if not isinstance(kid, str) or not kid:
            raise AuthError(AuthReason.MALFORMED, "the JWT header names no kid")
        key_set = self._key_set(jwks)
        try:
            key = key_set[kid]
        except KeyError:
            raise AuthError(AuthReason.UNKNOWN_KID, f"no key {kid!r} in the JWKS") from None
        if key.algorithm_name != alg:
            raise AuthError(
                AuthReason.BAD_ALGORITHM, f"key {kid!r} is for {key.algorithm_name}, not {alg}"
            )
        claims = self._decode(token, key, alg)
        self._check_times(claims)
        return self._principal(claims)

    def _decode(self, token: str, key: jwt.PyJWK, alg: str) -> dict[str, Any]:
        options: jwt.types.Options = {
            "verify_exp": False,
            "verify_nbf": False,
            "verify_iat": False,
            "require": list(_REQUIRED),
        }
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key=key,
                algorithms=[alg],
                audience=self.audience,
                issuer=self.issuer,
                options=options,
            )
        except jwt.InvalidSignatureError:
            raise AuthError(AuthReason.BAD_SIGNATURE, "signature does not verify") from None
        except jwt.MissingRequiredClaimError as error:
            raise AuthError(AuthReason.MISSING_CLAIM, f"no {error.claim!r} claim") from None
        except jwt.InvalidAudienceError as error:
            raise AuthError(
                AuthReason.WRONG_AUDIENCE, f"{error}; expected {self.audience!r}"
            ) from None
        except jwt.InvalidIssuerError as error:
            raise AuthError(AuthReason.WRONG_ISSUER, f"{error}; expected {self.issuer!r}") from None
        except jwt.PyJWTError as error:
            raise AuthError(AuthReason.MALFORMED, str(error)) from None
        return claims

    def _check_times(self, claims: Mapping[str, Any]) -> None:
        now, leeway = self._now(), self.leeway_s
        times: dict[str, float] = {}
        for name in ("exp", "iat", "nbf"):
            value = claims.get(name)
            if value is None and name == "nbf":
                continue
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise AuthError(AuthReason.MALFORMED, f"claim {name!r} is not a number")
            times[name] = float(value)
        if now >= times["exp"] + leeway:
            raise AuthError(AuthReason.EXPIRED, f"expired at {times['exp']:.0f}")
        for name in ("nbf", "iat"):
            if name in times and now < times[name] - leeway:
                raise AuthError(
                    AuthReason.NOT_YET_VALID, f"claim {name!r} is {times[name]:.0f}, in the future"
                )

    def _principal(self, claims: Mapping[str, Any]) -> Principal:
        subject = claims["sub"]
        try:
            parse(subject, expect=Kind.USER)
        except InvalidChittyId as error:
            raise AuthError(AuthReason.BAD_SUBJECT, str(error)) from None
        role_claim = claims.get(ROLE_CLAIM, Role.MEMBER.value)
        role = _GRANTABLE.get(role_claim) if isinstance(role_claim, str) else None
        if role is None:
            raise AuthError(
                AuthReason.BAD_ROLE,
                f"{ROLE_CLAIM} {role_claim!r} is not one of {', '.join(_GRANTABLE)}",
            )
        return Principal(subject, role, "user")
