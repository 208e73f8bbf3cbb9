"""The spec's /sync endpoints: sync a domain or entity to targets, status, broadcast, conflicts."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aiohttp import web
from pydantic import Field, JsonValue, model_validator
from pydantic_core import PydanticCustomError

from hub.catalog import Query
from hub.domains import DOMAINS, SyncDomain
from hub.entity import EntityView
from hub.fields import nest, policy_table
from hub.ids import ChittyIdStr, InvalidChittyId, parse
from hub.models.base import WireModel
from transports.gateway.auth import principal_of, scope_of, stamp, visible_to
from transports.gateway.entities import written_body
from transports.gateway.errors import ApiError, read_json
from transports.gateway.hub_api import Hub, Writer, outcome_error
from transports.gateway.reads import page_of, run_command, state_of
from transports.gateway.references import References
from transports.gateway.suggestions import Suggestions
from transports.gateway.targets import DEFAULT_PLATFORMS, TargetKind, check_targets, reports
from transports.gateway.ws import WS
from transports.gateway.ws_frames import FrameError, Noted, Ping, Read, Run, parse_message

COUNT_CAP = 10_000  # entities counted per sync report; more shows as the cap
WATCHED = (SyncDomain.REPOS, SyncDomain.SERVICES)  # a sync reads or checks them first


class SyncRequest(WireModel):
    """Where to sync: targets by kind, narrowed by project or session; dryRun changes nothing."""

    platforms: list[str] = Field(default_factory=list)
    channels: list[str] = Field(default_factory=list)
    models: list[str] = Field(default_factory=list)
    project_id: ChittyIdStr | None = None
    session_id: ChittyIdStr | None = None
    dry_run: bool = False


class ResolveRequest(WireModel):
    """What settles a conflict: a `value` (any valid value of the field, usually one version),
    or `acceptSuggestion` to take the suggestion `GET /sync/conflicts` shows."""

    value: JsonValue = None
    accept_suggestion: bool = False

    @model_validator(mode="after")
    def _one_of_them(self) -> ResolveRequest:
        if ("value" in self.model_fields_set) == self.accept_suggestion:
            raise PydanticCustomError("one_of", "give either value or acceptSuggestion: true")
        return self


def _domains(name: str) -> list[SyncDomain]:
    """`all` or one domain, for routes that sync many entities."""
    return list(SyncDomain) if name == "all" else [_domain(name)]


def _domain(name: str, field: str = "domain") -> SyncDomain:
    """Exactly one domain (an entity lives in one)."""
    try:
        return SyncDomain(name)
    except ValueError:
        known = ", ".join(d.value for d in SyncDomain)
        raise ApiError(404, "not_found", f"no domain {name!r}; known: {known}", field) from None


async def _body(request: web.Request, model: type[WireModel]) -> Any:
    if not request.body_exists:
        return model()
    return model.model_validate(await read_json(request))


class SyncRoutes:
    def __init__(self, hub: Hub, writer: Writer, suggestions: Suggestions) -> None:
        self.hub = hub
        self.writer = writer
        self.suggestions = suggestions

    async def _select(
        self, domains: list[SyncDomain], wanted: SyncRequest, visible: str | None
    ) -> list[str]:
        """The ids of the entities in scope (up to `COUNT_CAP`)."""
        ids: list[str] = []
        for domain in domains:
            cursor = None
            while len(ids) < COUNT_CAP:
                page = await self.hub.list(
                    Query(
                        domain,
                        project_id=wanted.project_id,
                        session_id=wanted.session_id,
                        cursor=cursor,
                        limit=500,
                        visible_to=visible,
                    )
                )
                ids += [row.entity_id for row in page.rows]
                cursor = page.cursor
                if cursor is None:
                    break
        return ids[:COUNT_CAP]

    async def sync_domain(self, request: web.Request) -> web.Response:
        domains = _domains(request.match_info["domain"])
        wanted: SyncRequest = await _body(request, SyncRequest)
        targets = _targets(wanted)  # an unknown target is refused before anything is counted
        visible = visible_to(request)
        ids = await self._select(domains, wanted, visible)
        body: dict[str, Any] = {
            "domain": request.match_info["domain"],
            "dryRun": wanted.dry_run,
            "entities": len(ids),
            "targets": await reports(request, self.hub, targets, ids, domains, wanted.dry_run),
        }
        if watched := [d for d in domains if d in WATCHED]:
            body["checked"] = await self._check(
                await self._select(watched, wanted, visible), wanted
            )
        return web.json_response(body)

    async def _check(self, ids: list[str], wanted: SyncRequest) -> list[dict[str, Any]]:
        """Repos read and services checked now (a dry run reads and checks nothing)."""
        if wanted.dry_run or not ids:
            return []
        return [checked.wire() for checked in await self.hub.check(ids)]

    async def sync_entity(self, request: web.Request) -> web.Response:
        domain = _domain(request.match_info["domain"])
        entity_id = request.match_info["entityId"]
        wanted: SyncRequest = await _body(request, SyncRequest)
        targets = _targets(wanted)
        view = await self._readable(request, domain, entity_id)
        if view.deleted:
            raise ApiError(404, "not_found", f"no {domain.value[:-1]} {entity_id}", "entityId")
        body: dict[str, Any] = {
            "domain": domain.value,
            "entityId": entity_id,
            "dryRun": wanted.dry_run,
            "seq": view.seq,
            "vectorClock": view.clock,
            "targets": await reports(
                request, self.hub, targets, [entity_id], [domain], wanted.dry_run
            ),
        }
        if domain in WATCHED:
            body["checked"] = await self._check([entity_id], wanted)
        return web.json_response(body)

    async def status(self, request: web.Request) -> web.Response:
        domain = _domain(request.match_info["domain"])
        entity_id = request.match_info["entityId"]
        view = await self._readable(request, domain, entity_id)
        return web.json_response(
            {
                "entityId": entity_id,
                "domain": domain.value,
                "seq": view.seq,
                "vectorClock": view.clock,
                "deleted": view.deleted,
                "openConflicts": len(view.conflicts),
                "synced": not view.conflicts,
            }
        )

    async def broadcast(self, request: web.Request) -> web.Response:
        """Submit one whole SyncMessage; its type says what it does, as on /ws: a write or a
        relayed event or command (its `target` says who receives it) is answered with what
        became of it; a state_request, query or hub-run command with what it asked for."""
        frame = parse_message(await read_json(request))
        if isinstance(frame, FrameError):
            raise ApiError(frame.status, frame.error, frame.detail, frame.field)
        if isinstance(frame, Ping):
            follower = request.app[WS].follower
            body = {"epoch": follower.epoch, "offset": follower.offset}
            return web.json_response({"id": frame.id, "status": "answered", **body})
        if isinstance(frame, Noted):
            return web.json_response({"id": frame.id, "status": "ignored"})
        scope = scope_of(request, self.hub.get)
        if isinstance(frame, Run):
            body = await run_command(self.hub, scope, frame.domain, frame.entity_id, frame.command)
            return web.json_response({"id": frame.id, "status": "answered", **body})
        if isinstance(frame, Read):
            visible = visible_to(request)
            if frame.filters is None:
                assert frame.entity_id is not None
                body = await state_of(self.hub, scope, visible, frame.domain, frame.entity_id)
            else:
                body = await page_of(
                    self.hub, visible, frame.domain, frame.filters, frame.limit, frame.cursor
                )
            return web.json_response({"id": frame.id, "status": "answered", **body})
        message = frame.message
        await scope.check_message(message)
        message = await References(self.hub.get).message(message, "payload.entity.data.")
        [outcome] = await self.hub.submit([stamp(message, principal_of(request))])
        if not outcome.durable and outcome.status.value != "ignored":
            raise outcome_error(outcome)
        return web.json_response(
            {
                "id": message.id,
                "status": outcome.status.value,
                "seq": outcome.seq,
                "vectorClock": outcome.clock,
                "conflicts": list(outcome.conflicts),
            }
        )

    async def conflicts(self, request: web.Request) -> web.Response:
        name = request.query.get("domain", "all")
        found = await self.hub.conflicts(
            None if name == "all" else _domain(name), visible_to(request)
        )
        return web.json_response({"conflicts": [self.suggestions.wire(c) for c in found]})

    async def resolve(self, request: web.Request) -> web.Response:
        conflict_id = request.match_info["id"]
        wanted: ResolveRequest = ResolveRequest.model_validate(await read_json(request))
        visible = await self.hub.conflicts(None, visible_to(request))
        conflict = next((c for c in visible if c.get("conflictId") == conflict_id), None)
        if conflict is None:
            raise ApiError(404, "not_found", f"no open conflict {conflict_id}", "id")
        entity_id = str(conflict["entityId"])
        view = await self.hub.get(entity_id)
        if view is None:
            raise ApiError(404, "not_found", f"no entity {entity_id}", "id")
        await scope_of(request, self.hub.get).check_write(view, f"entity {entity_id}")
        domain = SyncDomain(view.domain)
        field = str(conflict["field"])
        if field not in policy_table(DOMAINS[domain].model).fields:
            raise ApiError(409, "conflict", f"the conflict names an unknown field {field!r}")
        # A blind write: it has seen every version, so it supersedes them all and closes it.
        value = wanted.value
        if wanted.accept_suggestion:
            suggestion = self.suggestions.of(conflict)
            if suggestion is None:
                detail = f"nothing suggests a {field} here: give the value to keep"
                raise ApiError(409, "no_suggestion", detail, "acceptSuggestion")
            value = suggestion.value
        message = self.writer.message(request, domain, "update", entity_id, nest({field: value}))
        try:
            outcome, first = await self.writer.write(message)
        except ApiError as error:
            if error.field == field:
                error.field = "value"
            raise
        body = written_body(outcome, first)
        body["resolved"] = conflict_id
        return web.json_response(body)

    async def _readable(
        self, request: web.Request, domain: SyncDomain, entity_id: str
    ) -> EntityView:
        what = f"{domain.value[:-1]} {entity_id}"
        try:
            parse(entity_id, expect=DOMAINS[domain].kind)
        except InvalidChittyId as error:
            raise ApiError(422, "invalid", str(error), "entityId") from None
        scope = scope_of(request, self.hub.get)
        return await scope.check_read_of(entity_id, what, domain.value, "entityId")


def _targets(wanted: SyncRequest) -> list[tuple[TargetKind, str]]:
    """The checked targets of a request; none named means every platform (as the spec says)."""
    requested: dict[TargetKind, list[str]] = {
        "platforms": wanted.platforms,
        "channels": wanted.channels,
        "models": wanted.models,
    }
    if not any(requested.values()):
        requested["platforms"] = list(DEFAULT_PLATFORMS)
    return check_targets(requested)


def add_sync_routes(app: web.Application, hub: Hub, writer: Writer, env: Mapping[str, str]) -> None:
    """The /sync routes; `env` (the hub's adapter environment) may configure a model for
    merge suggestions."""
    routes = SyncRoutes(hub, writer, Suggestions(env))
    add = app.router
    add.add_get("/api/v1/sync/conflicts", routes.conflicts, name="list_conflicts")
    add.add_post("/api/v1/sync/conflicts/{id}/resolve", routes.resolve, name="resolve_conflict")
    add.add_post("/api/v1/sync/broadcast", routes.broadcast, name="broadcast")
    add.add_post("/api/v1/sync/{domain}", routes.sync_domain, name="sync_domain")
    add.add_post("/api/v1/sync/{domain}/{entityId}", routes.sync_entity, name="sync_entity")
    add.add_get("/api/v1/sync/{domain}/{entityId}/status", routes.status, name="sync_status")
