"""An OIDC provider on a loopback port, speaking the wire protocol a relying party uses:
discovery (`/.well-known/openid-configuration`), the authorization endpoint (which signs in
`user` at once, as a provider with a remembered login does, or answers `error` when told to),
the token endpoint (authorization code with PKCE S256, client id, redirect URI and, when
configured, client secret checked as a real provider checks them) and the JWKS. ID tokens are
RS256 JWTs from a key pair generated here."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import jwt
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

KID = "emulator-1"


@dataclass
class Grant:
    client_id: str
    redirect_uri: str
    challenge: str
    nonce: str


@dataclass
class OidcProvider:
    """The provider's state: who signs in, what it refuses, the codes it issued."""

    client_id: str
    user: str  # the `sub` of whoever signs in (a CHITTY-USER id)
    role: str = "member"
    client_secret: str | None = None
    deny: str | None = None  # the authorization endpoint answers this `error` instead
    wrong_nonce: bool = False  # ID tokens carry another nonce than asked for
    url: str = ""  # set once served: the issuer
    codes: dict[str, Grant] = field(default_factory=dict)
    tokens_issued: int = 0
    key: Any = field(
        default_factory=lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048)
    )

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/.well-known/openid-configuration", self.discovery)
        app.router.add_get("/authorize", self.authorize)
        app.router.add_post("/token", self.token)
        app.router.add_get("/jwks", self.jwks)
        return app

    async def discovery(self, _: web.Request) -> web.Response:
        return web.json_response(
            {
                "issuer": self.url,
                "authorization_endpoint": f"{self.url}/authorize",
                "token_endpoint": f"{self.url}/token",
                "jwks_uri": f"{self.url}/jwks",
                "response_types_supported": ["code"],
                "code_challenge_methods_supported": ["S256"],
                "id_token_signing_alg_values_supported": ["RS256"],
            }
        )

    async def authorize(self, request: web.Request) -> web.Response:
        q = request.query
        if q.get("client_id") != self.client_id:
            return web.Response(status=400, text="unknown client_id")  # never redirects back
        if q.get("response_type") != "code" or "openid" not in q.get("scope", "").split():
            return web.Response(status=400, text="response_type code and scope openid only")
        if q.get("code_challenge_method") != "S256" or not q.get("code_challenge"):
            return web.Response(status=400, text="PKCE S256 required")
        back: dict[str, str] = {"state": q.get("state", "")}
        if self.deny:
            back |= {"error": self.deny, "error_description": "the user said no"}
        else:
            code = secrets.token_urlsafe(24)
            self.codes[code] = Grant(
                self.client_id, q["redirect_uri"], q["code_challenge"], q.get("nonce", "")
            )
            back["code"] = code
        raise web.HTTPFound(f"{q['redirect_uri']}?{urlencode(back)}")

    async def token(self, request: web.Request) -> web.Response:
        form = await request.post()

        def refuse(error: str, description: str) -> web.Response:
            body = {"error": error, "error_description": description}
            return web.json_response(body, status=400)

        if form.get("grant_type") != "authorization_code":
            return refuse("unsupported_grant_type", "authorization_code only")
        if self.client_secret is not None and form.get("client_secret") != self.client_secret:
            return refuse("invalid_client", "client authentication failed")
        grant = self.codes.pop(str(form.get("code", "")), None)  # a code works once
        if grant is None:
            return refuse("invalid_grant", "unknown or used code")
        if (
            form.get("client_id") != grant.client_id
            or form.get("redirect_uri") != grant.redirect_uri
        ):
            return refuse("invalid_grant", "client_id or redirect_uri differs")
        verifier = str(form.get("code_verifier", ""))
        digest = hashlib.sha256(verifier.encode()).digest()
        if base64.urlsafe_b64encode(digest).rstrip(b"=").decode() != grant.challenge:
            return refuse("invalid_grant", "PKCE verification failed")
        now = int(time.time())
        claims = {
            "iss": self.url,
            "aud": self.client_id,
            "sub": self.user,
            "iat": now,
            "exp": now + 3600,
            "nonce": "another" if self.wrong_nonce else grant.nonce,
            "chitty_role": self.role,
        }
        token = jwt.encode(claims, self.key, algorithm="RS256", headers={"kid": KID})
        self.tokens_issued += 1
        return web.json_response(
            {"access_token": secrets.token_urlsafe(16), "token_type": "Bearer", "id_token": token}
        )

    async def jwks(self, _: web.Request) -> web.Response:
        public = json.loads(RSAAlgorithm.to_jwk(self.key.public_key()))
        return web.json_response({"keys": [{**public, "kid": KID, "alg": "RS256", "use": "sig"}]})
