"""Users' OIDC JWTs against a JWKS served by a local aiohttp server, from RSA and EC key pairs
generated here: valid tokens work on REST and /ws with the role they carry; expired, foreign,
unknown-key, unsigned, HMAC-confused and tampered tokens are 401s naming the reason; a key the
issuer rotated in is picked up by refetching the JWKS once."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import jwt
import pytest
from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from hub.ids import IdGenerator, Kind
from tests.transports.conftest import Gateway
from transports.gateway import make_app
from transports.gateway.auth import AUTH, JWKS_MIN_REFRESH_S, Jwks

ISSUER = "https://issuer.test"
AUDIENCE = "chittychat-hub"
_users = IdGenerator("oidc-test", lambda: time.time_ns() // 1_000_000)


def user() -> str:
    return _users.new(Kind.USER)


@dataclass
class Issuer:
    """Signing keys by kid, and the JWKS a local server publishes (counting its fetches)."""

    keys: dict[str, tuple[str, Any]] = field(default_factory=dict)  # kid -> (alg, private key)
    published: list[str] = field(default_factory=list)  # kids in the JWKS
    fetches: int = 0

    def add(self, kid: str, alg: str, publish: bool = True) -> None:
        private = (
            rsa.generate_private_key(public_exponent=65537, key_size=2048)
            if alg == "RS256"
            else ec.generate_private_key(ec.SECP256R1())
        )
        self.keys[kid] = (alg, private)
        if publish:
            self.published.append(kid)

    def jwks(self) -> dict[str, Any]:
        found = []
        for kid in self.published:
            alg, private = self.keys[kid]
            algorithm = RSAAlgorithm if alg == "RS256" else ECAlgorithm
            jwk = algorithm.to_jwk(private.public_key(), as_dict=True)
            found.append({**jwk, "kid": kid, "alg": alg, "use": "sig"})
        return {"keys": found}

    def token(self, kid: str = "rsa-1", **claims: Any) -> str:
        alg, private = self.keys[kid]
        now = int(time.time())
        body = {
            "iss": ISSUER,
            "aud": AUDIENCE,
            "sub": claims.pop("sub", None) or user(),
            "iat": now,
            "exp": now + 600,
            "chitty_role": "member",
            **claims,
        }
        return jwt.encode(body, private, algorithm=alg, headers={"kid": kid})


@dataclass
class Oidc:
    gateway: Gateway
    issuer: Issuer
    url: str  # the gateway app that accepts the issuer's JWTs
    app: web.Application


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@pytest.fixture(scope="module")
def oidc(gateway: Gateway) -> Iterator[Oidc]:
    """A second gateway app on the module's hub, configured for a local issuer."""
    issuer = Issuer()
    issuer.add("rsa-1", "RS256")
    issuer.add("ec-1", "ES256")

    async def keys(_: web.Request) -> web.Response:
        issuer.fetches += 1
        return web.json_response(issuer.jwks())

    jwks_app = web.Application()
    jwks_app.router.add_get("/jwks", keys)
    jwks_runner, jwks_url = gateway.serve(jwks_app)
    settings = gateway.settings.model_copy(
        update={
            "oidc_issuer": ISSUER,
            "oidc_audience": AUDIENCE,
            "oidc_jwks_url": f"{jwks_url}/jwks",
        }
    )
    app = make_app(gateway.runtime, settings, tokens=gateway.tokens)
    runner, url = gateway.serve(app)
    yield Oidc(gateway, issuer, url, app)
    gateway.call(runner.cleanup())
    gateway.call(jwks_runner.cleanup())


def call(
    oidc: Oidc, token: str, method: str = "GET", path: str = "/api/v1/todos", body: Any = None
) -> tuple[int, Any, dict[str, str]]:
    async def go() -> tuple[int, Any, dict[str, str]]:
        headers = {"Authorization": f"Bearer {token}"}
        async with (
            aiohttp.ClientSession() as session,
            session.request(method, oidc.url + path, json=body, headers=headers) as response,
        ):
            return response.status, await response.json(), dict(response.headers)

    return oidc.gateway.call(go())


def refused(oidc: Oidc, token: str, reason: str) -> None:
    status, body, headers = call(oidc, token)
    assert status == 401, body
    assert body["error"] == "unauthenticated" and body["detail"].startswith(reason), body
    assert headers["WWW-Authenticate"].startswith("Bearer")


# -- accepted ---------------------------------------------------------------------------------


def own_session(oidc: Oidc, token: str) -> str:
    """A session the token's principal made (a todo must name a session it may write)."""
    fields = {"sessionId": "jwt", "platform": "cli"}
    status, body, _ = call(oidc, token, "POST", "/api/v1/sessions", fields)
    assert status == 201, body
    return str(body["entity"]["chittyId"])


@pytest.mark.parametrize("kid", ["rsa-1", "ec-1"])
def test_a_member_jwt_reads_and_writes_as_its_subject(oidc: Oidc, kid: str) -> None:
    subject = user()
    token = oidc.issuer.token(kid, sub=subject, chitty_role="member")
    status, body, _ = call(
        oidc,
        token,
        "POST",
        "/api/v1/todos",
        {"content": "from a JWT", "sessionId": own_session(oidc, token)},
    )
    assert status == 201, body
    assert body["entity"]["createdBy"] == subject
    todo = body["entity"]["chittyId"]
    status, body, _ = call(oidc, token, "GET", f"/api/v1/todos/{todo}")
    assert status == 200 and body["entity"]["chittyId"] == todo
    # Another user's JWT does not see it (scope applies to JWT users as to token users).
    status, _, _ = call(oidc, oidc.issuer.token(kid), "GET", f"/api/v1/todos/{todo}")
    assert status == 404
    history = call(oidc, token, "GET", f"/api/v1/todos/{todo}/history")[1]["events"]
    assert history[0]["message"]["source"]["chittyId"] == subject


def test_a_viewer_jwt_reads_but_may_not_write(oidc: Oidc) -> None:
    viewer = user()
    owner = oidc.issuer.token("rsa-1")
    status, body, _ = call(
        oidc,
        owner,
        "POST",
        "/api/v1/todos",
        {"content": "shared", "sessionId": own_session(oidc, owner), "sharedWith": [viewer]},
    )
    assert status == 201, body
    todo = body["entity"]["chittyId"]
    token = oidc.issuer.token("ec-1", sub=viewer, chitty_role="viewer")
    assert call(oidc, token, "GET", f"/api/v1/todos/{todo}")[0] == 200
    status, body, _ = call(oidc, token, "PUT", f"/api/v1/todos/{todo}", {"activeForm": "no"})
    assert status == 403 and body["error"] == "forbidden", body
    status, _, _ = call(
        oidc, token, "POST", "/api/v1/todos", {"content": "no", "sessionId": "CHITTY-SESSION-1"}
    )
    assert status == 403


def test_an_admin_jwt_sees_everyone_s_entities(oidc: Oidc) -> None:
    someone = oidc.issuer.token("rsa-1")
    status, body, _ = call(
        oidc,
        someone,
        "POST",
        "/api/v1/todos",
        {"content": "someone's", "sessionId": own_session(oidc, someone)},
    )
    assert status == 201
    todo = body["entity"]["chittyId"]
    admin = oidc.issuer.token("ec-1", chitty_role="admin")
    assert call(oidc, admin, "GET", f"/api/v1/todos/{todo}")[0] == 200
    assert call(oidc, oidc.issuer.token("ec-1"), "GET", f"/api/v1/todos/{todo}")[0] == 404


def test_a_jwt_opens_a_websocket_and_a_refused_one_cannot(oidc: Oidc) -> None:
    async def scenario() -> None:
        async with aiohttp.ClientSession() as session:
            good = {"Authorization": f"Bearer {oidc.issuer.token('ec-1')}"}
            socket = await session.ws_connect(f"{oidc.url}/ws", headers=good)
            await socket.send_str(json.dumps({"type": "heartbeat", "id": "p1"}))
            answer = json.loads((await socket.receive(10)).data)
            while answer["type"] == "heartbeat" and answer.get("id") != "p1":
                answer = json.loads((await socket.receive(10)).data)
            assert answer["type"] == "heartbeat" and answer.get("id") == "p1", answer
            await socket.close()
            now = int(time.time())
            stale = oidc.issuer.token("rsa-1", iat=now - 7200, exp=now - 3600)
            with pytest.raises(aiohttp.WSServerHandshakeError) as error:
                await session.ws_connect(
                    f"{oidc.url}/ws", headers={"Authorization": f"Bearer {stale}"}
                )
            assert error.value.status == 401
            # Browsers pass the credential as ?access_token=
            query = f"{oidc.url}/ws?access_token={oidc.issuer.token('rsa-1')}"
            socket = await session.ws_connect(query)
            await socket.close()

    oidc.gateway.call(scenario())


# -- refused ----------------------------------------------------------------------------------


def test_an_expired_jwt_is_refused(oidc: Oidc) -> None:
    now = int(time.time())
    refused(oidc, oidc.issuer.token("rsa-1", iat=now - 7200, exp=now - 3600), "expired")


def test_a_jwt_for_another_audience_is_refused(oidc: Oidc) -> None:
    refused(oidc, oidc.issuer.token("rsa-1", aud="another-app"), "wrong_audience")


def test_a_jwt_from_another_issuer_is_refused(oidc: Oidc) -> None:
    refused(oidc, oidc.issuer.token("ec-1", iss="https://evil.test"), "wrong_issuer")


def test_a_jwt_signed_by_an_unpublished_key_is_refused(oidc: Oidc) -> None:
    oidc.issuer.add("stray", "RS256", publish=False)
    refused(oidc, oidc.issuer.token("stray"), "unknown_kid")


def test_an_unsigned_jwt_is_refused(oidc: Oidc) -> None:
    header = _b64(json.dumps({"alg": "none", "typ": "JWT", "kid": "rsa-1"}).encode())
    claims = json.loads(base64.urlsafe_b64decode(oidc.issuer.token("rsa-1").split(".")[1] + "=="))
    claims["chitty_role"] = "admin"
    refused(oidc, f"{header}.{_b64(json.dumps(claims).encode())}.", "bad_algorithm")


def test_an_hs256_jwt_keyed_with_the_public_key_is_refused(oidc: Oidc) -> None:
    """The algorithm-confusion attack: HMAC with the issuer's public key as the secret."""
    _, private = oidc.issuer.keys["rsa-1"]
    public_pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    header = _b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": "rsa-1"}).encode())
    now = int(time.time())
    claims = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": user(),
        "iat": now,
        "exp": now + 600,
        "chitty_role": "admin",
    }
    signing_input = f"{header}.{_b64(json.dumps(claims).encode())}"
    signature = hmac.new(public_pem, signing_input.encode(), hashlib.sha256).digest()
    refused(oidc, f"{signing_input}.{_b64(signature)}", "bad_algorithm")


@pytest.mark.parametrize("kid", ["rsa-1", "ec-1"])
def test_a_tampered_jwt_is_refused(oidc: Oidc, kid: str) -> None:
    header, payload, signature = oidc.issuer.token(kid, chitty_role="viewer").split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["chitty_role"] = "admin"  # promote yourself, keep the signature
    refused(oidc, f"{header}.{_b64(json.dumps(claims).encode())}.{signature}", "bad_signature")


def test_a_jwt_signed_by_one_key_but_naming_another_is_refused(oidc: Oidc) -> None:
    """ES256 kid on an RS256 signature: the key's algorithm decides, not the header's."""
    _, rsa_key = oidc.issuer.keys["rsa-1"]
    now = int(time.time())
    claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": user(), "iat": now, "exp": now + 600}
    forged = jwt.encode(claims, rsa_key, algorithm="RS256", headers={"kid": "ec-1"})
    refused(oidc, forged, "bad_algorithm")


def test_a_jwt_granting_the_service_role_or_naming_no_user_is_refused(oidc: Oidc) -> None:
    refused(oidc, oidc.issuer.token("rsa-1", chitty_role="service"), "bad_role")
    refused(oidc, oidc.issuer.token("rsa-1", sub="alice@example.com"), "bad_subject")


def test_a_hub_without_an_issuer_accepts_no_jwt(oidc: Oidc) -> None:
    token = oidc.issuer.token("rsa-1", chitty_role="admin")
    status, body, _ = oidc.gateway.request(
        "GET", "/api/v1/todos", headers={"Authorization": f"Bearer {token}"}
    )
    assert status == 401 and "no OIDC tokens" in body["detail"], body


# -- key rotation -----------------------------------------------------------------------------


def test_a_rotated_in_key_is_picked_up_by_one_refetch(oidc: Oidc) -> None:
    """The cached JWKS lacks a new kid: the gateway fetches the JWKS again, once, and accepts
    the token. Refetches are spaced (JWKS_MIN_REFRESH_S) so unknown kids cannot hammer the
    issuer; the clock is the real Jwks' injected one, moved past that spacing."""
    auth = oidc.app[AUTH]
    assert auth.jwks is not None
    clock = [1_000.0]
    auth.jwks = Jwks(auth.jwks.url, now=lambda: clock[0])
    assert call(oidc, oidc.issuer.token("rsa-1"))[0] == 200
    fetched = oidc.issuer.fetches
    oidc.issuer.add("rsa-2", "RS256")  # the issuer rotates: a new key in its JWKS
    rotated = oidc.issuer.token("rsa-2")
    # Right after a fetch the cache is not refreshed: the new kid is unknown for now.
    refused(oidc, rotated, "unknown_kid")
    assert oidc.issuer.fetches == fetched
    clock[0] += JWKS_MIN_REFRESH_S + 1
    assert call(oidc, rotated)[0] == 200
    assert oidc.issuer.fetches == fetched + 1
    # Known kids keep working from the refreshed cache without another fetch.
    assert call(oidc, oidc.issuer.token("ec-1"))[0] == 200
    assert call(oidc, rotated)[0] == 200
    assert oidc.issuer.fetches == fetched + 1
    # A kid the issuer never published: one more fetch (spacing passed), then refused.
    clock[0] += JWKS_MIN_REFRESH_S + 1
    oidc.issuer.add("never", "ES256", publish=False)
    refused(oidc, oidc.issuer.token("never"), "unknown_kid")
    assert oidc.issuer.fetches == fetched + 2
