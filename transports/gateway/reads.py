"""Answers to what a client asks rather than writes: an entity's state (`state_request`), a
page of a domain (`query`), and the commands the hub runs itself (`hub.commands`).

Shared by /ws and `POST /sync/broadcast`; scope applies as on REST reads (what a principal may
not see answers 404), and a session comes with the todos it lists (`entities.with_todos`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hub.catalog import CursorError, Query
from hub.commands import CommandCall
from hub.domains import SyncDomain
from transports.gateway.auth import Scope
from transports.gateway.entities import entity_body, with_todos
from transports.gateway.errors import ApiError
from transports.gateway.hub_api import Hub
from transports.gateway.workflows import reconcile, report_body


async def state_of(
    hub: Hub, scope: Scope, visible: str | None, domain: SyncDomain, entity_id: str
) -> dict[str, Any]:
    """The entity now, as REST answers it, with its domain and id."""
    what = f"{domain.value[:-1]} {entity_id}"
    view = await scope.check_read_of(entity_id, what, domain.value, "entityId")
    if view.deleted:
        raise ApiError(404, "not_found", f"no {what}", "entityId")
    body = entity_body(view)
    if domain is SyncDomain.SESSIONS:
        await with_todos(hub, [body], visible)
    return {"domain": domain.value, "entityId": entity_id, **body}


async def page_of(
    hub: Hub,
    visible: str | None,
    domain: SyncDomain,
    filters: Mapping[str, str],
    limit: int,
    cursor: str | None,
) -> dict[str, Any]:
    """A page of the domain's entities matching `filters` (wire names, as REST lists take)."""
    query = Query(
        domain,
        project_id=filters.get("projectId"),
        session_id=filters.get("sessionId"),
        topic_id=filters.get("topicId"),
        status=filters.get("status"),
        assignee=filters.get("assignee"),
        cursor=cursor,
        limit=limit,
        visible_to=visible,
    )
    try:
        page = await hub.list(query)
    except CursorError as error:
        raise ApiError(422, "invalid", str(error), "cursor") from None
    items = [entity_body(row) for row in page.rows]
    if domain is SyncDomain.SESSIONS:
        await with_todos(hub, items, visible)
    return {"domain": domain.value, "items": items, "cursor": page.cursor}


async def run_command(
    hub: Hub, scope: Scope, domain: SyncDomain, entity_id: str, call: CommandCall
) -> dict[str, Any]:
    """A command the hub runs itself (today `reconcile`, of a project), as scope allows."""
    what = f"{domain.value[:-1]} {entity_id}"
    view = await scope.check_read_of(entity_id, what, domain.value, "entityId")
    dry = call.arguments.get("dryRun") is True
    if not dry:
        await scope.check_write(view, what)
    report = await reconcile(hub, entity_id, scope.principal.chitty_id, dry)
    return {"command": call.name, "entityId": entity_id, "result": report_body(report)}
