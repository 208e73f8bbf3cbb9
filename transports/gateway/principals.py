"""A principal's own: who am I, rotate my token; and data rights (GDPR): export everything
stored about a principal, and erase it.

GET /api/v1/principals/{id}/export answers JSON: the principal's tokens (never secrets), every
entity they are a member of, every change they made anywhere, and (a service) its custom
agents. DELETE erases them: their own entities whole, their ChittyID pseudonymized everywhere
else, their tokens and agents deleted; the
audit chains still verify (see hub.erasure). Admins may do both for anyone, a principal for
themselves; for anyone else the answer is 404, as for an unknown principal.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from hub.auth.principal import Role
from hub.ids import InvalidChittyId, Kind, parse
from transports.gateway.agents import agents_of, forget_agents_of
from transports.gateway.auth import AUTH, principal_of, scope_of
from transports.gateway.entities import entity_body
from transports.gateway.errors import ApiError
from transports.gateway.hub_api import Hub


class PrincipalRoutes:
    def __init__(self, hub: Hub) -> None:
        self.hub = hub

    def _subject(self, request: web.Request) -> str:
        """The principal named in the path, if the caller may act on them."""
        subject = request.match_info["id"]
        try:
            kind = parse(subject).kind
        except InvalidChittyId as error:
            raise ApiError(404, "not_found", str(error), "id") from None
        caller = principal_of(request)
        if kind not in (Kind.USER, Kind.SERVICE) or (
            caller.role is not Role.ADMIN and caller.chitty_id != subject
        ):
            raise ApiError(404, "not_found", f"no principal {subject} you may act on", "id")
        return subject

    async def export(self, request: web.Request) -> web.Response:
        subject = self._subject(request)
        await self._known(request, subject)
        tokens = [asdict(r) for r in request.app[AUTH].tokens.list() if r.chitty_id == subject]
        entities: list[dict[str, Any]] = []
        changes: list[dict[str, Any]] = []
        scope = scope_of(request, self.hub.get)
        for entity_id in await self.hub.mentions(subject):
            view = await self.hub.get(entity_id)
            if view is not None and subject in await scope.members(view):
                entities.append({"domain": view.domain, **entity_body(view)})
            for event in await self.hub.history(entity_id):
                source = event.get("message", {}).get("source", {})
                if source.get("chittyId") == subject:
                    changes.append({"entityId": entity_id, **event})
        return web.json_response(
            {
                "principal": subject,
                "exportedAt": datetime.now(UTC).isoformat(),
                "tokens": tokens,
                "entities": entities,
                "changes": changes,
                "agents": agents_of(request, subject),
            }
        )

    async def _known(self, request: web.Request, subject: str) -> None:
        """404 unless something is stored about `subject` (a token, or an entity or change
        naming exactly that id): nothing to export or erase is a principal the hub never saw."""
        if any(r.chitty_id == subject for r in request.app[AUTH].tokens.list()):
            return
        if not await self.hub.mentions(subject):
            raise ApiError(404, "not_found", f"no principal {subject} you may act on", "id")

    async def erase(self, request: web.Request) -> web.Response:
        subject = self._subject(request)
        await self._known(request, subject)
        # Tokens first: the principal can write nothing more while its data is erased.
        deleted = request.app[AUTH].tokens.forget(subject)
        agents = forget_agents_of(request.app, subject)  # and its webhooks, with their secrets
        summary = await self.hub.erase(subject)
        summary["deletedTokens"] = deleted
        summary["deletedAgents"] = agents
        summary["principal"] = subject
        summary["compaction"] = (
            "freed LMDB pages keep old bytes until `chitty compact` runs with the hub stopped"
        )
        return web.json_response(summary)


async def me(request: web.Request) -> web.Response:
    """Who the credential names: ChittyID, role, kind, and (a hub token) until when."""
    principal = principal_of(request)
    body: dict[str, Any] = {
        "chittyId": principal.chitty_id,
        "role": principal.role.value,
        "kind": principal.kind,
        "tokenId": principal.token_id,
        "expiresAt": None,
    }
    if principal.token_id is not None:
        record = request.app[AUTH].tokens.get(principal.token_id)
        body["expiresAt"] = _iso(record.valid_until)
    return web.json_response(body)


async def rotate(request: web.Request) -> web.Response:
    """The caller's hub token replaced by a successor (answered once); the old one keeps
    working for the overlap window (CHITTY_TOKEN_OVERLAP_S), so clients rotate without a gap."""
    principal = principal_of(request)
    if principal.token_id is None:
        raise ApiError(409, "not_a_token", "an OIDC token is renewed by its issuer, not here")
    auth = request.app[AUTH]
    try:
        record, secret = auth.tokens.rotate(principal.token_id, auth.settings.token_overlap_s)
    except ValueError as error:  # rotated already: its successor was handed out before
        raise ApiError(409, "already_rotated", str(error).partition(": ")[2]) from None
    old = auth.tokens.get(principal.token_id)
    return web.json_response(
        {
            "token": secret,
            "tokenId": record.token_id,
            "expiresAt": _iso(record.valid_until),
            "previousValidUntil": _iso(old.valid_until),
        }
    )


def _iso(seconds: float | None) -> str | None:
    return None if seconds is None else datetime.fromtimestamp(seconds, UTC).isoformat()


def add_principal_routes(app: web.Application, hub: Hub) -> None:
    routes = PrincipalRoutes(hub)
    app.router.add_get("/api/v1/auth/me", me, name="auth_me")
    app.router.add_post("/api/v1/auth/rotate", rotate, name="auth_rotate")
    app.router.add_get("/api/v1/principals/{id}/export", routes.export, name="export_principal")
    app.router.add_delete("/api/v1/principals/{id}", routes.erase, name="erase_principal")
