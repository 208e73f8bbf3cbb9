"""Adapters at the gateway: their states and failed deliveries under /api/v1/adapters, and the
services' own webhooks under /adapters/<name>/... .

Each channel declares its webhooks (`AdapterSpec.hooks`) and builds their `Webhooks` from the
environment; here every one is a route of its own, documented, answering 404 with what to set
where its channel is not configured. A webhook is not authenticated by a hub credential but by
the service's own scheme (Slack: v0 HMAC-SHA256 with the signing secret, timestamps older than
5 minutes refused), which the channel's `receive` checks: a bad or stale signature is a 401
and changes nothing. The events a call carries are handed to the adapter's actor, which acts
on each as the adapter's principal (`actors.adapter`).
"""

from __future__ import annotations

import importlib
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from aiohttp import web

from hub.adapters import AdapterSpec, Hook, HookAnswer, HookRefused, HookRequest, Webhooks
from hub.auth.principal import is_unrestricted
from transports.channels import CHANNELS
from transports.gateway.auth import principal_of
from transports.gateway.errors import ApiError
from transports.gateway.hub_api import Hub


class AdapterRoutes:
    def __init__(self, hub: Hub, env: Mapping[str, str]) -> None:
        self.hub = hub
        self.env = env
        # Each channel's webhooks, where its settings configure them (else a 404 says what to set).
        self.webhooks: dict[str, Webhooks] = {}
        for spec in CHANNELS:
            if spec.webhooks is not None and not spec.hooks_missing(env):
                module, _, function = spec.webhooks.partition(":")
                made = getattr(importlib.import_module(module), function)(env)
                if made is not None:
                    self.webhooks[spec.name] = made

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

    # -- the services' webhooks ---------------------------------------------------------------

    def webhook(
        self, spec: AdapterSpec, hook: Hook
    ) -> Callable[[web.Request], Awaitable[web.Response]]:
        async def handle(request: web.Request) -> web.Response:
            hooks = self.webhooks.get(spec.name)
            if hooks is None:
                needs = ", ".join(spec.hooks_missing(self.env))
                raise ApiError(
                    404, "not_found", f"this hub takes no {spec.name} webhooks: set {needs}"
                )
            call = HookRequest(
                hook.name,
                str(request.url),
                request.path_qs,
                dict(request.query),
                request.headers,
                await request.read(),
            )
            try:
                received = hooks.receive(call)
            except HookRefused as refused:
                raise ApiError(
                    refused.status, refused.error, refused.detail, refused.field
                ) from None
            answer = received.now
            for event in received.events:
                done = await self._call(spec.name, "inbound", event)
                if received.reply is not None:
                    answer = received.reply(done.status, done.text)
            return _response(answer or HookAnswer(body={"ok": True}))

        return handle


def _response(answer: HookAnswer) -> web.Response:
    if answer.content_type == "application/json":
        return web.json_response(answer.body, status=answer.status)
    return web.Response(
        text="" if answer.body is None else str(answer.body),
        status=answer.status,
        content_type=answer.content_type,
    )


def add_adapter_routes(app: web.Application, hub: Hub, env: Mapping[str, str]) -> None:
    routes = AdapterRoutes(hub, env)
    add = app.router
    add.add_get("/api/v1/adapters", routes.statuses, name="list_adapters")
    add.add_get("/api/v1/adapters/{name}/failed", routes.failed, name="adapter_failed")
    add.add_post("/api/v1/adapters/{name}/retry", routes.retry, name="retry_adapter")
    add.add_post("/api/v1/adapters/{name}/test", routes.test, name="test_adapter")
    for spec in CHANNELS:
        for hook in spec.hooks:
            path = f"/adapters/{spec.name}/{hook.path}"
            add.add_route(hook.method, path, routes.webhook(spec, hook), name=hook.name)
