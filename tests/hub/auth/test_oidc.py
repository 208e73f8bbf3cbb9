"""OIDC JWTs signed in the test with real RSA, EC and Ed25519 keys, checked claim by claim."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

from hub.auth.errors import AuthError, AuthReason
from hub.auth.oidc import OidcVerifier
from hub.auth.principal import Principal, Role

ISSUER = "https://id.example.test"
AUDIENCE = "chittychat-hub"
T0 = 1_700_000_000
USER = "CHITTY-USER-01HZX3K5Q8M2N4P6R8T0V2W4Y6"

RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
EC_KEY = ec.generate_private_key(ec.SECP256R1())
ED_KEY = ed25519.Ed25519PrivateKey.generate()
OTHER_RSA = rsa.generate_private_key(public_exponent=65537, key_size=2048)

KEYS: dict[str, tuple[str, Any]] = {
    "rsa-1": ("RS256", RSA_KEY),
    "ec-1": ("ES256", EC_KEY),
    "ed-1": ("EdDSA", ED_KEY),
}


def jwk(kid: str, alg: str, private: Any) -> dict[str, Any]:
    to_jwk = {"RS256": RSAAlgorithm, "ES256": ECAlgorithm, "EdDSA": OKPAlgorithm}[alg].to_jwk
    data: dict[str, Any] = to_jwk(private.public_key(), as_dict=True)
    return {**data, "kid": kid, "use": "sig", "alg": alg}


JWKS = {"keys": [jwk(kid, alg, key) for kid, (alg, key) in KEYS.items()]}


def claims(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": USER,
        "iat": T0 - 10,
        "nbf": T0 - 10,
        "exp": T0 + 600,
    }
    base.update(changes)
    return {k: v for k, v in base.items() if v is not None}


def token(kid: str = "rsa-1", key: Any = None, alg: str | None = None, **changes: Any) -> str:
    default_alg, default_key = KEYS.get(kid, ("RS256", RSA_KEY))
    return jwt.encode(
        claims(**changes),
        key if key is not None else default_key,
        algorithm=alg or default_alg,
        headers={"kid": kid},
    )


def verifier(now: float = T0) -> OidcVerifier:
    return OidcVerifier(ISSUER, AUDIENCE, leeway_s=30, now=lambda: now)


def reason_of(text: str, at: float = T0, jwks: dict[str, Any] = JWKS) -> AuthReason:
    with pytest.raises(AuthError) as error:
        verifier(at).verify(text, jwks)
    return error.value.reason


@pytest.mark.parametrize("kid", sorted(KEYS))
def test_every_allowed_key_type_verifies(kid: str) -> None:
    assert verifier().verify(token(kid), JWKS) == Principal(USER, Role.MEMBER, "user")


@pytest.mark.parametrize(
    ("claim", "role"), [("admin", Role.ADMIN), ("member", Role.MEMBER), ("viewer", Role.VIEWER)]
)
def test_role_claim(claim: str, role: Role) -> None:
    assert verifier().verify(token(chitty_role=claim), JWKS).role is role


@pytest.mark.parametrize("claim", ["service", "owner", 7, ["admin"]])
def test_ungrantable_roles(claim: object) -> None:
    assert reason_of(token(chitty_role=claim)) is AuthReason.BAD_ROLE


def test_time_claims_with_leeway() -> None:
    expired = token(exp=T0 - 31)
    assert reason_of(expired) is AuthReason.EXPIRED
    verifier().verify(token(exp=T0 - 29), JWKS)  # inside the leeway
    assert reason_of(token(nbf=T0 + 31)) is AuthReason.NOT_YET_VALID
    verifier().verify(token(nbf=T0 + 29), JWKS)
    assert reason_of(token(iat=T0 + 31, nbf=None)) is AuthReason.NOT_YET_VALID
    ok = token()
    assert reason_of(ok, at=T0 + 630) is AuthReason.EXPIRED  # the injected clock decides
    assert reason_of(token(exp="soon")) is AuthReason.MALFORMED


@pytest.mark.parametrize("missing", ["exp", "iat", "sub", "aud", "iss"])
def test_required_claims(missing: str) -> None:
    assert reason_of(token(**{missing: None})) is AuthReason.MISSING_CLAIM


def test_audience_and_issuer() -> None:
    assert reason_of(token(aud="someone-else")) is AuthReason.WRONG_AUDIENCE
    verifier().verify(token(aud=["other", AUDIENCE]), JWKS)
    assert reason_of(token(iss="https://evil.example.test")) is AuthReason.WRONG_ISSUER


@pytest.mark.parametrize("subject", ["alice", "CHITTY-SERVICE-S1", "CHITTY-TODO-1", "CHITTY-USER-"])
def test_subject_must_be_a_user_chitty_id(subject: str) -> None:
    assert reason_of(token(sub=subject)) is AuthReason.BAD_SUBJECT


def test_unknown_kid_then_a_refreshed_jwks_verifies() -> None:
    fresh = token("rsa-2", key=OTHER_RSA)
    check = verifier()
    with pytest.raises(AuthError) as error:
        check.verify(fresh, JWKS)
    assert error.value.reason is AuthReason.UNKNOWN_KID
    refreshed = {"keys": [*JWKS["keys"], jwk("rsa-2", "RS256", OTHER_RSA)]}
    assert check.verify(fresh, refreshed).chitty_id == USER


def test_bad_signatures() -> None:
    assert reason_of(token("rsa-1", key=OTHER_RSA)) is AuthReason.BAD_SIGNATURE
    header, payload, signature = token().split(".")
    body = json.loads(base64.urlsafe_b64decode(payload + "=="))
    body["chitty_role"] = "admin"
    forged = base64.urlsafe_b64encode(json.dumps(body).encode()).rstrip(b"=").decode()
    assert reason_of(f"{header}.{forged}.{signature}") is AuthReason.BAD_SIGNATURE


def _unsigned(alg: str, kid: str = "rsa-1") -> str:
    def part(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    return f"{part({'alg': alg, 'typ': 'JWT', 'kid': kid})}.{part(claims(chitty_role='admin'))}."


def test_alg_none_and_hmac_are_refused() -> None:
    assert reason_of(_unsigned("none")) is AuthReason.BAD_ALGORITHM
    # HS256 keyed with the RSA public key's JWK text: the classic key-confusion attack.
    # PyJWT will not sign that, so sign it by hand.
    secret = json.dumps(JWKS["keys"][0]).encode()
    signing_input = _unsigned("HS256").rstrip(".")
    mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    hs = f"{signing_input}.{base64.urlsafe_b64encode(mac).rstrip(b'=').decode()}"
    assert reason_of(hs) is AuthReason.BAD_ALGORITHM
    assert reason_of(token("rsa-1", alg="RS512")) is AuthReason.BAD_ALGORITHM


def test_header_alg_must_match_the_key() -> None:
    # An ES256 token that names the RSA key's kid.
    crossed = jwt.encode(claims(), EC_KEY, algorithm="ES256", headers={"kid": "rsa-1"})
    assert reason_of(crossed) is AuthReason.BAD_ALGORITHM


@pytest.mark.parametrize("text", ["", "abc", "a.b.c", "....", "eyJ.eyJ.sig"])
def test_malformed(text: str) -> None:
    assert reason_of(text) is AuthReason.MALFORMED


def test_missing_kid_is_malformed() -> None:
    no_kid = jwt.encode(claims(), RSA_KEY, algorithm="RS256")
    assert reason_of(no_kid) is AuthReason.MALFORMED


def test_unusable_jwks() -> None:
    assert reason_of(token(), jwks={"keys": []}) is AuthReason.BAD_JWKS
    assert reason_of(token(), jwks={"nothing": 1}) is AuthReason.BAD_JWKS


def test_constructor_checks() -> None:
    with pytest.raises(ValueError, match=r"^issuer:"):
        OidcVerifier("", AUDIENCE)
    with pytest.raises(ValueError, match=r"^audience:"):
        OidcVerifier(ISSUER, "")
    with pytest.raises(ValueError, match=r"^leeway_s:"):
        OidcVerifier(ISSUER, AUDIENCE, leeway_s=-1)
