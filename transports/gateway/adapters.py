"""Adapters at the gateway: their states and failed deliveries under /api/v1/adapters, and the
services' own webhooks under /adapters/<name>/... .

A webhook is not authenticated by a hub credential but by the service's own signature scheme
(Slack: v0 HMAC-SHA256 with the signing secret, timestamps older than 5 minutes refused); a
bad or stale signature is a 401 and changes nothing. What the service reports is handed to the
adapter's actor, which acts on it as the adapter's principal (`actors.adapter`).
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from hub.adapters import Inbound
from hub.auth.principal import is_unrestricted
from transports.channels import slack
from transports.gateway.auth import principal_of
from transports.gateway.errors import ApiError
from transports.gateway.hub_api import Hub


class AdapterRoutes:
    def __init__(self, hub: Hub, env: Mapping[str, str]) -> None:
        self.hub = hub
        self.slack = slack.SlackConfig.from_env(env) if not _missing(slack.NEEDS, env) else None
        self.slack_verifier = slack.verifier(self.slack) if self.slack is not None else None

    async def statuses(self, request: web.Request) -> web.Response:
        statuses = await self.hub.adapter_statuses()
        return web.json_response({"adapters": [s.to_wire() for s in statuses]})

    def _operator(self, request: web.Request) -> None:
        if not is_unrestricted(principal_of(request).role):
            raise ApiError(403, "forbidden", "only an admin or a service may operate adapters")

    async def _call(self, name: str, method: str, *args: Any) -> Any:
        try:
            return await getattr(self.hub, f"adapter_{method}")(name, *args)
        except KeyError:
            pass
        statuses = {s.name: s for s in await self.hub.adapter_statuses()}
        if name not in statuses:
            known = ", ".join(sorted(statuses))
            raise ApiError(404, "not_found", f"no adapter {name!r} (known: {known})", "name")
        detail = f"the {name} adapter is not running: {statuses[name].detail}"
        raise ApiError(409, "not_running", detail)

    async def failed(self, request: web.Request) -> web.Response:
        self._operator(request)
        name = request.match_info["name"]
        return web.json_response({"adapter": name, "failed": await self._call(name, "failed")})

    async def retry(self, request: web.Request) -> web.Response:
        self._operator(request)
        name = request.match_info["name"]
        return web.json_response({"adapter": name, "retried": await self._call(name, "retry")})

    async def test(self, request: web.Request) -> web.Response:
        self._operator(request)
        name = request.match_info["name"]
        text = f"ChittyChat Hub: a test message, asked for by {principal_of(request).chitty_id}"
        try:
            message_id = await self._call(name, "test", text)
        except ApiError:
            raise
        except Exception as error:  # the service refused: say what it said
            raise ApiError(502, "delivery_failed", f"{name}: {error}") from None
        return web.json_response({"adapter": name, "sent": True, "messageId": message_id})

    # -- Slack ----------------------------------------------------------------------------------

    async def _slack_body(self, request: web.Request) -> bytes:
        if self.slack_verifier is None:
            raise ApiError(
                404,
                "not_found",
                "this hub takes no Slack events: set SLACK_BOT_TOKEN, CHITTY_SLACK_CHANNEL and "
                "SLACK_SIGNING_SECRET",
            )
        body = await request.read()
        headers = request.headers
        if not self.slack_verifier.is_valid(
            body, headers.get("X-Slack-Request-Timestamp"), headers.get("X-Slack-Signature")
        ):
            raise ApiError(
                401, "unauthenticated", "bad or stale Slack signature", "X-Slack-Signature"
            )
        return body

    async def slack_events(self, request: web.Request) -> web.Response:
        """The Events API: url_verification, reactions and thread replies."""
        body = await self._slack_body(request)
        try:
            payload = slack.decode(body)
        except ValueError as error:
            raise ApiError(400, "bad_json", f"not an Events API body: {error}") from None
        challenge = slack.url_verification(payload)
        if challenge is not None:
            return web.json_response(challenge)
        event = slack.inbound_event(payload)
        if event is None:
            return web.json_response({"ok": True, "status": "ignored"})
        answer = await self._inbound(event)
        return web.json_response({"ok": True, "status": answer["status"]})

    async def slack_commands(self, request: web.Request) -> web.Response:
        """`/chitty todo add|list|done`: answered to the person who typed it."""
        body = await self._slack_body(request)
        form = dict(urllib.parse.parse_qsl(body.decode("utf-8", "replace"), True))
        answer = await self._inbound(slack.inbound_command(form))
        return web.json_response({"response_type": "ephemeral", "text": answer["text"]})

    async def _inbound(self, event: Inbound) -> dict[str, str]:
        answer = await self._call("slack", "inbound", event)
        return {"status": answer.status, "text": answer.text}


def _missing(needs: tuple[str, ...], env: Mapping[str, str]) -> bool:
    return any(not env.get(name) for name in needs)


def add_adapter_routes(app: web.Application, hub: Hub, env: Mapping[str, str]) -> None:
    routes = AdapterRoutes(hub, env)
    add = app.router
    add.add_get("/api/v1/adapters", routes.statuses, name="list_adapters")
    add.add_get("/api/v1/adapters/{name}/failed", routes.failed, name="adapter_failed")
    add.add_post("/api/v1/adapters/{name}/retry", routes.retry, name="retry_adapter")
    add.add_post("/api/v1/adapters/{name}/test", routes.test, name="test_adapter")
    add.add_post("/adapters/slack/events", routes.slack_events, name="slack_events")
    add.add_post("/adapters/slack/commands", routes.slack_commands, name="slack_commands")
