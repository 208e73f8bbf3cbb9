"""Who is asking, and may they: authentication, request signing and abuse limits at the edge,
scope checks for handlers.

Every request but `/`, `/health`, `/privacy` and the OpenAPI documents (they hold no data), the
web UI's sign-in and its static files carries `Authorization: Bearer <credential>` (or a browser
session's cookie, see `browser`): a hub token (`chitty_...`, from `chitty token create` or
the admin token `chitty up` prints on first start) or, when the hub is configured with an OIDC
issuer, a user's JWT. Service principals also sign every request
(HMAC-SHA256 over method, path, timestamp, nonce and body). A request that cannot
be authenticated is a 401; one over its principal's rate a 429 with Retry-After.
"""

from __future__ import annotations

import asyncio
import math
import secrets
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeGuard

import aiohttp
from aiohttp import web

from hub.auth.errors import AuthError, SignatureError
from hub.auth.oidc import OidcVerifier
from hub.auth.principal import Principal, Role, is_unrestricted
from hub.auth.ratelimit import ConnectionLimiter, RateLimiter
from hub.auth.scope import can_create, can_read, can_write, members
from hub.auth.signing import Verifier
from hub.auth.tokens import TokenStore
from hub.entity import EntityView
from hub.ids import InvalidChittyId, parse
from hub.message import Message, model_of
from hub.protocol import SyncMessage
from hub.settings import HubSettings
from transports.gateway.browser import COOKIE, CSRF_HEADER, SAFE_METHODS, BrowserSessions
from transports.gateway.errors import ApiError, Handler

PUBLIC = frozenset(
    {
        "/",
        "/health",
        "/api/v1/openapi.json",
        "/api/v1/openapi.actions.json",
        "/privacy",
        "/signin",
        "/signout",
        "/signin/oidc",
        "/signin/oidc/callback",
    }
)
STATIC = "/static/"  # the web UI's scripts, styles and vendored libraries: no data
WEBHOOKS = "/adapters/"  # services' webhooks: their own signatures authenticate them
JWKS_TTL_S = 300.0
JWKS_MIN_REFRESH_S = 30.0


class Jwks:
    """The issuer's signing keys, fetched over HTTP and cached; refreshed at most every 30 s
    when a token names a key the cache does not hold (the issuer rotated its keys)."""

    def __init__(self, url: str, now: Callable[[], float] = time.monotonic) -> None:
        self.url = url
        self._now = now
        self._keys: dict[str, Any] | None = None
        self._fetched = -math.inf
        self._lock = asyncio.Lock()

    async def get(self, refresh: bool = False) -> dict[str, Any]:
        async with self._lock:
            age = self._now() - self._fetched
            stale = self._keys is None or age > JWKS_TTL_S
            if stale or (refresh and age > JWKS_MIN_REFRESH_S):
                self._keys = await self._fetch()
                self._fetched = self._now()
            assert self._keys is not None
            return self._keys

    async def _fetch(self) -> dict[str, Any]:
        timeout = aiohttp.ClientTimeout(total=10)
        try:
            async with (
                aiohttp.ClientSession(timeout=timeout) as session,
                session.get(self.url) as response,
            ):
                response.raise_for_status()
                keys = await response.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, ValueError) as error:
            raise ApiError(
                503, "jwks_unavailable", f"cannot fetch the issuer's keys from {self.url}: {error}"
            ) from None
        if not isinstance(keys, dict) or not isinstance(keys.get("keys"), list):
            raise ApiError(503, "jwks_unavailable", f"{self.url} did not answer a JWKS document")
        return keys


class Auth:
    """The gateway's authentication state: tokens, the OIDC verifier, nonces, limits."""

    def __init__(self, settings: HubSettings, tokens: TokenStore) -> None:
        self.settings = settings
        self.tokens = tokens
        self.signatures = Verifier(window_s=settings.signature_window_s)
        self.rates = RateLimiter(settings.rate_per_s, settings.rate_burst)
        self.connections = ConnectionLimiter(settings.max_ws_per_principal)
        self.browsers = BrowserSessions()
        self.oidc: OidcVerifier | None = None
        self.jwks: Jwks | None = None
        if settings.oidc_issuer and settings.oidc_audience and settings.oidc_jwks_url:
            self.oidc = OidcVerifier(settings.oidc_issuer, settings.oidc_audience)
            self.jwks = Jwks(settings.oidc_jwks_url)

    async def principal(self, credential: str) -> Principal:
        """The principal a bearer credential names; ApiError 401 when it names none."""
        try:
            if credential.count(".") != 2:  # not a JWT (header.claims.signature): a hub token
                return self.tokens.principal(credential)
            if self.oidc is None or self.jwks is None:
                raise ApiError(
                    401,
                    "unauthenticated",
                    "not a hub token, and this hub accepts no OIDC tokens (no issuer is "
                    "configured: set CHITTY_OIDC_ISSUER, _AUDIENCE and _JWKS_URL)",
                )
            try:
                return self.oidc.verify(credential, await self.jwks.get())
            except AuthError as error:
                if error.reason != "unknown_kid":
                    raise
                return self.oidc.verify(credential, await self.jwks.get(refresh=True))
        except AuthError as error:
            raise unauthenticated(f"{error.reason}: {error.detail}") from None

    async def still_valid(self, credential: str) -> bool:
        """Whether a credential still names a principal (open WebSockets ask this): a
        revoked or expired token, or an expired JWT, no longer does."""
        try:
            await self.principal(credential)
        except ApiError:
            return False
        return True

    def check_signature(self, principal: Principal, request: web.Request, body: bytes) -> None:
        if principal.signing_key is None:
            raise unauthenticated("this credential cannot sign requests")
        headers = request.headers
        try:
            self.signatures.verify(
                principal.signing_key,
                request.method,
                request.raw_path,
                headers.get("X-Chitty-Timestamp"),
                headers.get("X-Chitty-Nonce"),
                headers.get("X-Chitty-Signature"),
                body,
            )
        except SignatureError as error:
            raise unauthenticated(f"bad signature: {error.reason}: {error.detail}") from None

    def limit(self, principal: Principal, cost: int = 1) -> None:
        wait = self.rates.take(principal.chitty_id, cost)
        if wait > 0:
            raise RateLimited(wait)


class RateLimited(ApiError):
    def __init__(self, wait_s: float) -> None:
        super().__init__(429, "rate_limited", f"too many requests; retry in {wait_s:.2f} s")
        self.retry_after = max(1, math.ceil(wait_s))


def unauthenticated(detail: str) -> ApiError:
    return ApiError(401, "unauthenticated", detail, "Authorization")


AUTH = web.AppKey("auth", Auth)
PRINCIPAL = web.RequestKey("principal", Principal)


def bearer(request: web.Request) -> str:
    """The request's bearer credential; WebSockets may pass it as `access_token` (browsers
    cannot set headers on a WebSocket upgrade)."""
    header = request.headers.get("Authorization", "")
    scheme, _, credential = header.partition(" ")
    if header and (scheme.lower() != "bearer" or not credential.strip()):
        raise unauthenticated("the Authorization header must be `Bearer <token>`")
    credential = credential.strip()
    if not credential and request.path == "/ws":
        credential = request.query.get("access_token", "")
    if not credential and not header:
        credential = browser_credential(request)
    if not credential:
        raise unauthenticated("a credential is required: Authorization: Bearer <token>")
    if len(credential) > 8192:
        raise unauthenticated("the credential is longer than 8192 characters")
    return credential


def browser_credential(request: web.Request) -> str:
    """The credential behind the request's session cookie ("" without one); a request that
    may change something must carry the session's CSRF token too (else 403)."""
    session_id = request.cookies.get(COOKIE)
    session = None if session_id is None else request.app[AUTH].browsers.get(session_id)
    if session is None:
        return ""
    if request.method not in SAFE_METHODS and not secrets.compare_digest(
        request.headers.get(CSRF_HEADER, ""), session.csrf
    ):
        raise ApiError(403, "csrf", f"a signed-in browser must send {CSRF_HEADER}", CSRF_HEADER)
    return session.credential


@web.middleware
async def authenticate(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Attach the request's principal, or answer 401/429 before any handler runs."""
    if request.path in PUBLIC or request.path.startswith((WEBHOOKS, STATIC)):
        return await handler(request)
    auth = request.app[AUTH]
    try:
        principal = await auth.principal(bearer(request))
        auth.limit(principal)
        if must_sign(principal):
            body = await request.read() if request.body_exists else b""
            auth.check_signature(principal, request, body)
    except RateLimited as error:
        response = web.json_response(
            {"error": error.error, "detail": error.detail, "field": None}, status=429
        )
        response.headers["Retry-After"] = str(error.retry_after)
        return response
    except ApiError as error:
        response = web.json_response(
            {"error": error.error, "detail": error.detail, "field": error.field},
            status=error.status,
        )
        if error.status == 401:
            response.headers["WWW-Authenticate"] = 'Bearer realm="chittychat"'
        return response
    request[PRINCIPAL] = principal
    return await handler(request)


def must_sign(principal: Principal) -> bool:
    """Services sign every request and WebSocket frame (spec: HMAC-SHA256 message signing)."""
    return principal.role is Role.SERVICE


def principal_of(request: web.Request) -> Principal:
    return request[PRINCIPAL]


# -- scope ------------------------------------------------------------------------------------

Lookup = Callable[[str], Awaitable[EntityView | None]]


class Scope:
    """Scope checks of one request: parents (a todo's session and project) are looked up once."""

    def __init__(self, principal: Principal, get: Lookup) -> None:
        self.principal = principal
        self._get = get
        self._parents: dict[str, Mapping[str, Any] | None] = {}

    @property
    def unrestricted(self) -> bool:
        return is_unrestricted(self.principal.role)

    async def _load_parents(self, entity: Mapping[str, Any]) -> None:
        # Only ChittyIDs name parents: a session's own `sessionId` is the platform's free text.
        wanted = [entity.get("sessionId"), entity.get("projectId"), *(entity.get("sources") or ())]
        for parent_id in wanted:
            if _is_chitty_id(parent_id) and parent_id not in self._parents:
                view = await self._get(parent_id)
                self._parents[parent_id] = None if view is None else view.entity
                if view is not None:  # a session's project counts for the session's todos
                    await self._load_parents({"projectId": view.entity.get("projectId")})

    async def members(self, view: EntityView) -> frozenset[str]:
        """Every ChittyID that is a member of the entity, own and inherited."""
        await self._load_parents(view.entity)
        return members(view.domain, view.entity, self._parents.get)

    async def readable(self, domain: str, entity: Mapping[str, Any]) -> bool:
        if self.unrestricted:
            return True
        await self._load_parents(entity)
        return can_read(self.principal, domain, entity, self._parents.get)

    async def writable(self, domain: str, entity: Mapping[str, Any]) -> bool:
        if self.unrestricted:
            return True
        await self._load_parents(entity)
        return can_write(self.principal, domain, entity, self._parents.get)

    async def check_read(self, view: EntityView | None, what: str, field: str = "id") -> EntityView:
        """`view` if the principal may read it; else the same 404 as for a missing entity."""
        if view is None or not await self.readable(view.domain, view.entity):
            raise ApiError(404, "not_found", f"no {what}", field)
        return view

    async def check_read_of(
        self, entity_id: str, what: str, domain: str | None = None, field: str = "id"
    ) -> EntityView:
        """`check_read` of an entity by id (of `domain`, if given): its view now."""
        view = await self._get(entity_id)
        if view is not None and domain is not None and view.domain != domain:
            view = None
        return await self.check_read(view, what, field)

    async def check_write(self, view: EntityView | None, what: str) -> None:
        """Refuse (403) a write to an entity the principal may not change; a missing entity
        is left to the hub (it answers 404)."""
        if view is None:
            self.check_can_write_at_all()
            return
        if not await self.writable(view.domain, view.entity):
            raise ApiError(403, "forbidden", f"{self.principal.chitty_id} may not change {what}")

    async def check_write_to(self, entity_id: str, what: str, domain: str | None = None) -> None:
        """`check_write` of an entity by id (of `domain`, if given); a principal who may
        change everything costs no lookup."""
        if self.unrestricted:
            return
        view = await self._get(entity_id)
        if view is not None and domain is not None and view.domain != domain:
            view = None
        await self.check_write(view, what)

    async def check_create(self, domain: str, entity: Mapping[str, Any]) -> None:
        """A new entity: the principal may write, and may write to the session or project it
        names (else a member could file todos in someone else's session)."""
        self.check_can_write_at_all()
        if self.unrestricted:
            return
        await self._load_parents(entity)
        if not can_create(self.principal, domain, entity, self._parents.get):
            containers = [entity.get(f) for f in ("sessionId", "projectId") if entity.get(f)]
            detail = f"{self.principal.chitty_id} may not add to {' or '.join(containers)}"
            raise ApiError(403, "forbidden", detail)

    async def check_message(self, message: SyncMessage | Message) -> None:
        """A sync message's write is in the principal's scope (else ApiError 403)."""
        if isinstance(message, Message):
            if message.domain is None:
                return
            domain, operation = message.domain, message.operation
            entity_id, data = message.entity_id, message.data
        else:
            payload = getattr(message, "payload", None)
            if payload is None:
                return
            domain, operation = payload.domain, payload.operation
            entity_id, data = payload.entity.chitty_id, payload.entity.data
        if operation == "create":
            await self.check_create(domain.value, data)
        else:
            await self.check_write_to(entity_id, f"{domain.value[:-1]} {entity_id}")

    def check_can_write_at_all(self) -> None:
        if self.principal.role is Role.VIEWER:
            raise ApiError(403, "forbidden", "the viewer role may not change anything")


def _is_chitty_id(value: object) -> TypeGuard[str]:
    if not isinstance(value, str):
        return False
    try:
        parse(value)
    except InvalidChittyId:
        return False
    return True


def stamp(message: SyncMessage | Message, principal: Principal) -> SyncMessage | Message:
    """`message` attributed to `principal` (whatever it claimed), and on a create owned by it.

    A message that already says so (a /ws write: its origin carries the principal's ChittyID)
    comes back as it is: models are frozen, so there is nothing to copy (a lean one that
    does not is stamped as its model)."""
    who = principal.chitty_id
    if isinstance(message, Message):
        owned = message.operation != "create" or message.data.get("createdBy", _UNSET) == who
        if message.principal == who and owned:
            return message
        message = model_of(message)
    update: dict[str, Any] = {}
    if message.source.chitty_id != who:
        update["source"] = message.source.model_copy(update={"chitty_id": who})
    payload = getattr(message, "payload", None)
    if (
        payload is not None
        and payload.operation == "create"
        and payload.entity.data.get("createdBy", _UNSET) != who
    ):
        data = {**payload.entity.data, "createdBy": who}
        entity = payload.entity.model_copy(update={"data": data})
        update["payload"] = payload.model_copy(update={"entity": entity})
    return message.model_copy(update=update) if update else message


_UNSET = object()


def scope_of(request: web.Request, get: Lookup) -> Scope:
    return Scope(principal_of(request), get)


def visible_to(request: web.Request) -> str | None:
    """The ChittyID lists are narrowed to, or None for a principal who sees everything."""
    principal = principal_of(request)
    return None if is_unrestricted(principal.role) else principal.chitty_id
