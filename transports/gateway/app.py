"""The gateway application: one aiohttp app over a running hub."""

from __future__ import annotations

import ssl
from urllib.parse import urlsplit

from aiohttp import web

from hub import __version__
from hub.auth.tokens import TokenStore
from hub.settings import HubSettings
from transports.gateway.adapters import add_adapter_routes
from transports.gateway.agents import add_agent_routes
from transports.gateway.as_caller import add_loopback
from transports.gateway.ask import add_ask_routes
from transports.gateway.auth import AUTH, Auth, authenticate
from transports.gateway.contexts import add_context_intelligence
from transports.gateway.entities import add_entity_routes
from transports.gateway.errors import json_errors
from transports.gateway.handover import add_handover
from transports.gateway.headers import add_header_policy
from transports.gateway.hub_api import Hub, Writer
from transports.gateway.metrics import add_metrics, request_metrics
from transports.gateway.openapi import add_openapi
from transports.gateway.principals import add_principal_routes
from transports.gateway.sync import add_sync_routes
from transports.gateway.tool_routes import add_tool_routes
from transports.gateway.workflows import add_workflow_routes
from transports.gateway.ws import add_ws_routes
from transports.web import add_web_routes

HUB = web.AppKey("hub", Hub)  # type: ignore[type-abstract]
SETTINGS = web.AppKey("settings", HubSettings)
WRITER = web.AppKey("writer", Writer)

MAX_BODY = 1 << 20  # 1 MiB: a larger request body is a 413


async def health(request: web.Request) -> web.Response:
    """Liveness (this process answers) and readiness (the router, broker and hosts answer),
    and each adapter's state (a disconnected channel does not make the hub unready)."""
    hub = request.app[HUB]
    parts = await hub.health()
    ready = all(parts.values())
    adapters = [
        {"name": s.name, "state": s.state.value, "detail": s.detail}
        for s in await hub.adapter_statuses()
    ]
    body = {"status": "ok" if ready else "degraded", "live": True, "ready": ready}
    body["version"] = __version__
    return web.json_response(
        {**body, "actors": parts, "adapters": adapters}, status=200 if ready else 503
    )


def open_tokens(settings: HubSettings) -> TokenStore:
    """The deployment's token store (<data dir>/auth), encrypted like the rest of its data."""
    return TokenStore(settings.data_dir / "auth", codec=settings.value_codec())


async def _close(auth: Auth) -> None:
    auth.tokens.close()


def make_app(
    hub: Hub,
    settings: HubSettings,
    mcp_hub_url: str | None = None,
    tokens: TokenStore | None = None,
    mcp_tls: ssl.SSLContext | None = None,
) -> web.Application:
    """The gateway for `hub`: REST under /api/v1, its OpenAPI document, /health, /metrics,
    /ws, the hub's tools at /api/v1/tools/{name} with their ChatGPT Actions document, and (given
    the URL where this gateway answers, and how to trust its certificate when that is https) MCP
    over streamable HTTP at /mcp.
    The web UI at / signs a browser in to a cookie session (see `browser`). Every route but
    /, /health, /privacy, the OpenAPI documents and the UI's sign-in and files needs a
    credential checked against `tokens` (by default the deployment's token store, opened here)
    or the configured OIDC issuer."""
    app = web.Application(
        middlewares=[request_metrics, json_errors, authenticate], client_max_size=MAX_BODY
    )
    writer = Writer(hub, f"gateway-{settings.node_id}")
    auth = Auth(settings, tokens or open_tokens(settings))
    app[AUTH] = auth
    add_header_policy(app)
    if tokens is None:  # opened here, closed here
        app.on_cleanup.append(lambda _: _close(auth))
    app[HUB] = hub
    app[SETTINGS] = settings
    app[WRITER] = writer
    app.router.add_get("/health", health, name="health")
    add_web_routes(app)  # / and the web UI
    add_metrics(app, hub)
    add_openapi(app)
    add_ws_routes(app, writer)
    add_sync_routes(app, hub, writer, settings.adapter_env)
    add_context_intelligence(app, hub, settings)
    add_handover(app, hub, writer, settings)  # before the CRUD routes: /contexts/current
    add_workflow_routes(app, hub, writer)  # before the CRUD routes: /todos/mesh is no todo id
    add_entity_routes(app, hub, writer)
    add_principal_routes(app, hub)
    add_adapter_routes(app, hub, settings.adapter_env)
    add_loopback(app, mcp_hub_url, mcp_tls)  # tools run as their caller through this gateway
    add_tool_routes(app)
    add_agent_routes(app, hub, settings)  # custom agents: registrations, signed webhooks
    add_ask_routes(app, settings.adapter_env)
    if mcp_hub_url is not None:
        from transports.mcp.http import add_mcp_routes

        host = urlsplit(mcp_hub_url).hostname or "127.0.0.1"
        add_mcp_routes(app, mcp_hub_url, bind_host=host, tls=mcp_tls)
    return app
