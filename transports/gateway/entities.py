"""CRUD, lists, history and temporal reads for every domain, under /api/v1/{domain}."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web
from pydantic import JsonValue

from hub.catalog import CursorError, Query
from hub.domains import DOMAINS, SyncDomain
from hub.entity import EntityView
from hub.envelope import Outcome
from hub.ids import InvalidChittyId, parse
from transports.gateway.auth import scope_of, visible_to
from transports.gateway.errors import ApiError, read_json
from transports.gateway.hub_api import Hub, Writer, parse_clock
from transports.gateway.references import References

LIST_PARAMS = frozenset(
    {
        "projectId",
        "sessionId",
        "topicId",
        "status",
        "assignee",
        "cursor",
        "limit",
        "includeDeleted",
        "includeMerged",
        "fields",
    }
)
MAX_PAGE = 500
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def entity_body(view: EntityView, fields: frozenset[str] | None = None) -> dict[str, Any]:
    """How an entity is answered: its wire object (only `fields` of it, if given), its clock,
    its log position, its conflicts."""
    entity = view.entity
    return {
        "entity": entity if fields is None else {k: v for k, v in entity.items() if k in fields},
        "vectorClock": view.clock,
        "seq": view.seq,
        "conflicts": list(view.conflicts),
    }


def written_body(outcome: Outcome, first: EntityView | None) -> dict[str, Any]:
    if first is not None:
        return entity_body(first)
    return {
        "entity": outcome.entity,
        "vectorClock": outcome.clock,
        "seq": outcome.seq,
        "conflicts": list(outcome.conflicts),
    }


async def with_todos(hub: Hub, bodies: list[dict[str, Any]], visible: str | None) -> None:
    """Fill each answered session's `todos` with the todo entities it lists now: those made
    in it and those a reconciliation listed in it, merged duplicates left out, oldest first.
    Todos a session kept in its own list before todos were entities stay as they were stored.
    The caller's scope applies (`visible`)."""
    sessions = {str(body["entity"]["chittyId"]): body["entity"] for body in bodies}
    if not sessions:
        return
    found: dict[str, list[dict[str, Any]]] = {sid: [] for sid in sessions}
    cursor = None
    while True:
        page = await hub.list(
            Query(
                SyncDomain.TODOS,
                sessions=tuple(sessions),
                cursor=cursor,
                limit=MAX_PAGE,
                visible_to=visible,
            )
        )
        for row in page.rows:
            todo = row.entity
            listed_in = todo.get("listedIn")
            listed = [todo.get("sessionId"), *(listed_in if isinstance(listed_in, list) else [])]
            for sid in listed:
                if isinstance(sid, str) and sid in found:
                    found[sid].append(dict(todo))
        cursor = page.cursor
        if cursor is None:
            break
    for sid, entity in sessions.items():
        todos = found[sid]
        known = {t["chittyId"] for t in todos}
        kept = [t for t in entity.get("todos") or [] if t.get("chittyId") not in known]
        todos.sort(key=_created)
        entity["todos"] = [*todos, *kept]


def _created(todo: dict[str, Any]) -> tuple[str, str]:
    return str((todo.get("metadata") or {}).get("created") or ""), str(todo.get("chittyId"))


def epoch_ms(moment: datetime) -> int:
    """Milliseconds since the epoch, exactly (a float product rounds 17:21:51.135 down to
    .134, before an event stamped .135); a time without a zone is UTC, as everywhere."""
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    return (aware - EPOCH) // timedelta(milliseconds=1)


def entity_id_of(request: web.Request, domain: SyncDomain) -> str:
    entity_id = request.match_info["id"]
    try:
        parse(entity_id, expect=DOMAINS[domain].kind)
    except InvalidChittyId as error:
        raise ApiError(422, "invalid", str(error), "id") from None
    return entity_id


async def body_fields(request: web.Request) -> tuple[dict[str, JsonValue], dict[str, int] | None]:
    """The entity fields of a write body and the client's vector clock, if it sent one."""
    body = await read_json(request)
    if not isinstance(body, dict):
        raise ApiError(422, "invalid", "the body must be a JSON object of the entity's fields")
    data = dict(body)
    clock = parse_clock(data.pop("vectorClock", None))
    return data, clock


class EntityRoutes:
    """The handlers of one domain."""

    def __init__(self, domain: SyncDomain, hub: Hub, writer: Writer) -> None:
        self.domain = domain
        self.hub = hub
        self.writer = writer

    async def create(self, request: web.Request) -> web.Response:
        data, clock = await body_fields(request)
        entity_id = data.pop("chittyId", None)
        if entity_id is None:
            entity_id = self.writer.new_id(request, DOMAINS[self.domain].kind)
        if not isinstance(entity_id, str):
            raise ApiError(422, "invalid", "must be a string", "chittyId")
        try:
            parse(entity_id, expect=DOMAINS[self.domain].kind)
        except InvalidChittyId as error:
            raise ApiError(422, "invalid", str(error), "chittyId") from None
        await scope_of(request, self.hub.get).check_create(self.domain.value, data)
        data = await References(self.hub.get).check(self.domain, "create", data)
        message = self.writer.message(request, self.domain, "create", entity_id, data, clock)
        outcome, first = await self.writer.write(message)
        body = await self._shown(request, written_body(outcome, first))
        return web.json_response(body, status=201)

    async def _shown(self, request: web.Request, *bodies: dict[str, Any]) -> dict[str, Any]:
        """A session's answer with the todos it lists (`with_todos`); the first body."""
        if self.domain is SyncDomain.SESSIONS:
            await with_todos(self.hub, list(bodies), visible_to(request))
        return bodies[0] if bodies else {}

    def _what(self, entity_id: str) -> str:
        return f"{self.domain.value[:-1]} {entity_id}"

    async def _readable(self, request: web.Request, entity_id: str) -> EntityView:
        """The entity now, if it is of this domain and the principal may see it; else 404."""
        scope = scope_of(request, self.hub.get)
        return await scope.check_read_of(entity_id, self._what(entity_id), self.domain.value)

    async def _check_write(self, request: web.Request, entity_id: str) -> None:
        scope = scope_of(request, self.hub.get)
        await scope.check_write_to(entity_id, self._what(entity_id), self.domain.value)

    async def read(self, request: web.Request) -> web.Response:
        entity_id = entity_id_of(request, self.domain)
        current = await self._readable(request, entity_id)  # who may read is decided by now
        at = request.query.get("at")
        if at is not None:
            try:
                moment = datetime.fromisoformat(at.replace("Z", "+00:00"))
            except ValueError:
                raise ApiError(422, "invalid", "must be an ISO-8601 time", "at") from None
            view = await self.hub.state_at(entity_id, epoch_ms(moment))
        else:
            view = current
        if at is not None and view is None:  # it exists now (readable above), not then
            detail = f"{self._what(entity_id)} did not exist at {at} (it was created later)"
            raise ApiError(404, "not_found", detail, "at")
        if view is None or view.deleted or view.domain != self.domain.value:
            raise ApiError(404, "not_found", f"no {self.domain.value[:-1]} {entity_id}", "id")
        if at is not None:  # as it was then: a session's own list, not today's todos
            return web.json_response(entity_body(view))
        return web.json_response(await self._shown(request, entity_body(view)))

    async def update(self, request: web.Request) -> web.Response:
        entity_id = entity_id_of(request, self.domain)
        data, clock = await body_fields(request)
        if data.pop("chittyId", entity_id) != entity_id:
            raise ApiError(422, "invalid", "differs from the id in the path", "chittyId")
        await self._check_write(request, entity_id)
        data = await References(self.hub.get).check(self.domain, "update", data)
        message = self.writer.message(request, self.domain, "update", entity_id, data, clock)
        outcome, first = await self.writer.write(message)
        return web.json_response(await self._shown(request, written_body(outcome, first)))

    async def delete(self, request: web.Request) -> web.Response:
        entity_id = entity_id_of(request, self.domain)
        await self._check_write(request, entity_id)
        if self.domain is SyncDomain.SESSIONS:  # the spec: DELETE ends a session
            message = self.writer.message(
                request, self.domain, "update", entity_id, {"status": "ended"}
            )
        else:
            message = self.writer.message(request, self.domain, "delete", entity_id, {})
        outcome, first = await self.writer.write(message)
        return web.json_response(written_body(outcome, first))

    async def history(self, request: web.Request) -> web.Response:
        entity_id = entity_id_of(request, self.domain)
        await self._readable(request, entity_id)
        events = await self.hub.history(entity_id)
        if not events:
            raise ApiError(404, "not_found", f"no {self.domain.value[:-1]} {entity_id}", "id")
        return web.json_response({"entityId": entity_id, "events": events})

    async def list(self, request: web.Request) -> web.Response:
        unknown = sorted(set(request.query) - LIST_PARAMS)
        if unknown:
            known = ", ".join(sorted(LIST_PARAMS))
            raise ApiError(400, "bad_query", f"unknown parameter (known: {known})", unknown[0])
        query = request.query
        try:
            limit = int(query.get("limit", "50"))
        except ValueError:
            raise ApiError(422, "invalid", "must be a whole number", "limit") from None
        if not 1 <= limit <= MAX_PAGE:
            raise ApiError(422, "invalid", f"must be between 1 and {MAX_PAGE}", "limit")
        include_deleted, include_merged = (
            _flag(query, "includeDeleted"),
            _flag(query, "includeMerged"),
        )
        fields = self._fields(query)
        wanted = Query(
            self.domain,
            project_id=query.get("projectId"),
            session_id=query.get("sessionId"),
            topic_id=query.get("topicId"),
            status=query.get("status"),
            assignee=query.get("assignee"),
            include_deleted=include_deleted,
            include_merged=include_merged,
            cursor=query.get("cursor"),
            limit=limit,
            visible_to=visible_to(request),
        )
        try:
            page = await self.hub.list(wanted)
        except CursorError as error:
            raise ApiError(422, "invalid", str(error), "cursor") from None
        items = [entity_body(row, fields) for row in page.rows]
        if fields is None or "todos" in fields:
            await self._shown(request, *items)
        return web.json_response({"items": items, "cursor": page.cursor})

    def _fields(self, query: Mapping[str, str]) -> frozenset[str] | None:
        """The entity fields a listing asked for (`fields=a,b`; `chittyId` always), or None
        for all of them."""
        if "fields" not in query:
            return None
        known = {f.alias or name for name, f in DOMAINS[self.domain].model.model_fields.items()}
        wanted = frozenset(filter(None, (f.strip() for f in query["fields"].split(","))))
        unknown = sorted(wanted - known)
        if unknown:
            raise ApiError(
                422, "invalid", f"no field {unknown[0]!r} in {self.domain.value}", "fields"
            )
        return wanted | {"chittyId"}


def _flag(query: Mapping[str, str], name: str) -> bool:
    value = query.get(name, "false").lower()
    if value not in ("true", "false"):
        raise ApiError(422, "invalid", "must be true or false", name)
    return value == "true"


def add_entity_routes(app: web.Application, hub: Hub, writer: Writer) -> None:
    """Register the CRUD routes of every domain (after any more specific route)."""
    for domain in SyncDomain:
        routes = EntityRoutes(domain, hub, writer)
        base = f"/api/v1/{domain.value}"
        name = domain.value
        app.router.add_get(base, routes.list, name=f"list_{name}")
        app.router.add_post(base, routes.create, name=f"create_{name}")
        app.router.add_get(base + "/{id}", routes.read, name=f"get_{name}")
        app.router.add_put(base + "/{id}", routes.update, name=f"update_{name}")
        app.router.add_patch(base + "/{id}", routes.update, name=f"patch_{name}")
        app.router.add_delete(base + "/{id}", routes.delete, name=f"delete_{name}")
        app.router.add_get(base + "/{id}/history", routes.history, name=f"history_{name}")
