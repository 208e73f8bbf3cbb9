"""Sign-in through the OIDC issuer: the authorization code flow with PKCE (RFC 7636), for a
hub whose users carry OIDC identities (CHITTY_OIDC_ISSUER, _AUDIENCE, _JWKS_URL).

`GET /signin/oidc` sends the browser to the issuer's authorization endpoint (found in its
discovery document, `<issuer>/.well-known/openid-configuration`) with the hub's audience as
the client id, a fresh `state`, `nonce` and PKCE challenge. The issuer sends it back to
`GET /signin/oidc/callback` with a code, which the hub exchanges (with the PKCE verifier, and
CHITTY_OIDC_CLIENT_SECRET when set) for an ID token. That token is verified exactly as a
bearer JWT is (issuer's keys, iss, aud, times, subject, role) and must carry the nonce; it then
opens a browser session like a pasted token does. The `state` is bound to the browser that
began the sign-in by a short-lived cookie, so another site cannot finish a sign-in of its own
in this browser (login CSRF); each state is used once.

The redirect URI is CHITTY_PUBLIC_URL + `/signin/oidc/callback` (else this request's own
origin); register it with the issuer."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import aiohttp
import jwt

from transports.gateway.errors import ApiError

STATE_COOKIE = "chitty_oidc"
CALLBACK = "/signin/oidc/callback"
PENDING_TTL_S = 600.0  # a sign-in not finished in ten minutes starts again
MAX_PENDING = 10_000  # the oldest is forgotten first
DISCOVERY_TTL_S = 3600.0
TIMEOUT = aiohttp.ClientTimeout(total=10)


class SignInError(Exception):
    """A sign-in that cannot finish: what to tell the person, and the HTTP status."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True, slots=True)
class Pending:
    verifier: str  # the PKCE code verifier
    nonce: str
    redirect_uri: str
    expires_at: float


def challenge(verifier: str) -> str:
    """The S256 code challenge of a PKCE verifier."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


class OidcSignIn:
    """Sign-ins under way in one gateway process (lost on restart: the person starts again),
    and the issuer's endpoints."""

    def __init__(
        self,
        issuer: str,
        client_id: str,
        client_secret: str | None = None,
        now: Callable[[], float] = time.monotonic,
    ) -> None:
        self.issuer = issuer.rstrip("/")
        self.client_id = client_id
        self._secret = client_secret
        self._now = now
        self._pending: OrderedDict[str, Pending] = OrderedDict()
        self._endpoints: tuple[str, str] | None = None
        self._discovered = -DISCOVERY_TTL_S

    async def begin(self, redirect_uri: str) -> tuple[str, str]:
        """A new sign-in: its state, and the issuer URL to send the browser to."""
        authorize, _ = await self._discover()
        while len(self._pending) >= MAX_PENDING:
            self._pending.popitem(last=False)
        state, nonce, verifier = (secrets.token_urlsafe(32) for _ in range(3))
        self._pending[state] = Pending(verifier, nonce, redirect_uri, self._now() + PENDING_TTL_S)
        query = {
            "response_type": "code",
            "client_id": self.client_id,
            "redirect_uri": redirect_uri,
            "scope": "openid",
            "state": state,
            "nonce": nonce,
            "code_challenge": challenge(verifier),
            "code_challenge_method": "S256",
        }
        separator = "&" if "?" in authorize else "?"
        return state, f"{authorize}{separator}{urlencode(query)}"

    async def finish(self, query: dict[str, str], bound_state: str) -> tuple[str, str]:
        """The issuer's answer (the callback's query) for the browser whose cookie holds
        `bound_state`: the ID token the code was exchanged for, and the nonce it must carry.
        `SignInError` says why not."""
        state = query.get("state", "")
        if not state or not hmac.compare_digest(state, bound_state):
            raise SignInError("state: this sign-in was not started in this browser.", 400)
        pending = self._pending.pop(state, None)
        if pending is None or pending.expires_at <= self._now():
            raise SignInError("state: the sign-in expired or was already used; start again.", 400)
        if "error" in query:
            said = query.get("error_description") or query["error"]
            raise SignInError(f"the issuer did not sign you in: {said}", 401)
        code = query.get("code", "")
        if not code:
            raise SignInError("code: the issuer sent no authorization code.", 400)
        return await self._exchange(code, pending), pending.nonce

    async def _exchange(self, code: str, pending: Pending) -> str:
        _, token_url = await self._discover()
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": pending.redirect_uri,
            "client_id": self.client_id,
            "code_verifier": pending.verifier,
        }
        if self._secret:
            form["client_secret"] = self._secret
        try:
            async with (
                aiohttp.ClientSession(timeout=TIMEOUT) as http,
                http.post(token_url, data=form, headers={"Accept": "application/json"}) as answer,
            ):
                body: Any = await answer.json(content_type=None)
                status = answer.status
        except (aiohttp.ClientError, TimeoutError, ValueError) as error:
            raise SignInError(f"cannot reach the issuer's token endpoint: {error}", 502) from None
        if status != 200 or not isinstance(body, dict):
            said = (
                body.get("error_description") or body.get("error")
                if isinstance(body, dict)
                else None
            )
            raise SignInError(f"the issuer refused the code: {said or f'HTTP {status}'}", 401)
        token = body.get("id_token")
        if not isinstance(token, str) or not token:
            raise SignInError("the issuer's answer holds no id_token (is 'openid' allowed?)", 502)
        return token

    async def _discover(self) -> tuple[str, str]:
        """The authorization and token endpoints, from the issuer's discovery document."""
        if self._endpoints is not None and self._now() - self._discovered < DISCOVERY_TTL_S:
            return self._endpoints
        url = f"{self.issuer}/.well-known/openid-configuration"
        try:
            async with (
                aiohttp.ClientSession(timeout=TIMEOUT) as http,
                http.get(url) as answer,
            ):
                answer.raise_for_status()
                document: Any = await answer.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, ValueError) as error:
            raise ApiError(
                503,
                "oidc_unavailable",
                f"cannot read the issuer's discovery document {url}: {error}",
            ) from None
        endpoints = (
            document.get("authorization_endpoint") if isinstance(document, dict) else None,
            document.get("token_endpoint") if isinstance(document, dict) else None,
        )
        if not all(isinstance(e, str) and e for e in endpoints):
            raise ApiError(
                503, "oidc_unavailable", f"{url} names no authorization_endpoint and token_endpoint"
            )
        self._endpoints = (str(endpoints[0]), str(endpoints[1]))
        self._discovered = self._now()
        return self._endpoints


def nonce_of(token: str) -> object:
    """The `nonce` claim of an ID token whose signature was already verified."""
    claims = jwt.decode(token, options={"verify_signature": False})
    return claims.get("nonce")
