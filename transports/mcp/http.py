"""Streamable HTTP MCP at `/mcp` on an aiohttp app, through a small ASGI bridge.

The SDK serves streamable HTTP as an ASGI (Starlette) app; aiohttp is not ASGI, so `AsgiMount`
turns one aiohttp request into one ASGI `http` call, and `asgi_lifespan` drives the app's ASGI
lifespan (which runs the SDK's session manager) from an aiohttp cleanup context. The server runs
stateless with JSON answers: every POST is self-contained, so any gateway replica can answer it
and no request holds a stream open.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, MutableMapping
from contextlib import asynccontextmanager
from typing import Any

from aiohttp import web

from transports.gateway.as_caller import CALLER, Loopback, caller_credential
from transports.mcp.server import build_server
from transports.tools import TOOLS, ToolRegistry

Scope = MutableMapping[str, Any]
AsgiMessage = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[AsgiMessage]]
Send = Callable[[AsgiMessage], Awaitable[None]]
AsgiApp = Callable[[Scope, Receive, Send], Coroutine[Any, Any, None]]

MAX_BODY = 4 * 1024 * 1024


class AsgiMount:
    """An aiohttp handler that answers a request by calling an ASGI app once."""

    def __init__(self, app: AsgiApp) -> None:
        self.app = app

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        done = asyncio.Event()
        sent_body = False
        response: web.StreamResponse | None = None

        async def receive() -> AsgiMessage:
            nonlocal sent_body
            if not sent_body:
                sent_body = True
                return {"type": "http.request", "body": body, "more_body": False}
            await done.wait()
            return {"type": "http.disconnect"}

        async def send(message: AsgiMessage) -> None:
            nonlocal response
            if message["type"] == "http.response.start":
                response = web.StreamResponse(status=int(message["status"]))
                for name, value in message.get("headers") or ():
                    response.headers.add(name.decode("latin-1"), value.decode("latin-1"))
                await response.prepare(request)
            elif message["type"] == "http.response.body":
                assert response is not None, "ASGI body before response start"
                await response.write(bytes(message.get("body") or b""))
                if not message.get("more_body"):
                    await response.write_eof()

        CALLER.set(caller_credential(request))
        try:
            await self.app(_scope(request), receive, send)
        finally:
            done.set()
        if response is None:
            raise web.HTTPInternalServerError(text="the MCP app sent no response")
        return response


def _scope(request: web.Request) -> Scope:
    """The ASGI HTTP scope of an aiohttp request."""
    peer = request.transport.get_extra_info("peername") if request.transport else None
    host, port = (request.url.host or "127.0.0.1"), request.url.port or 80
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": f"{request.version.major}.{request.version.minor}",
        "method": request.method,
        "scheme": request.scheme,
        "path": request.path,
        "raw_path": request.raw_path.split("?", 1)[0].encode("latin-1"),
        "query_string": request.query_string.encode("latin-1"),
        "root_path": "",
        "headers": [(k.lower(), v) for k, v in request.raw_headers],
        "client": tuple(peer[:2]) if peer else None,
        "server": (host, port),
        "state": {},
    }


@asynccontextmanager
async def asgi_lifespan(app: AsgiApp) -> AsyncIterator[None]:
    """Run an ASGI app's lifespan: startup on enter, shutdown on exit."""
    inbox: asyncio.Queue[AsgiMessage] = asyncio.Queue()
    outbox: asyncio.Queue[AsgiMessage] = asyncio.Queue()
    await inbox.put({"type": "lifespan.startup"})
    task = asyncio.create_task(
        app({"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}, inbox.get, outbox.put)
    )
    started = await outbox.get()
    if started["type"] != "lifespan.startup.complete":
        raise RuntimeError(f"the MCP app failed to start: {started.get('message', started)}")
    try:
        yield
    finally:
        await inbox.put({"type": "lifespan.shutdown"})
        await outbox.get()
        await task


def add_mcp_routes(
    app: web.Application,
    hub_url: str,
    path: str = "/mcp",
    bind_host: str = "127.0.0.1",
    tls: ssl.SSLContext | None = None,
    registry: ToolRegistry = TOOLS,
) -> None:
    """Serve MCP over streamable HTTP at `path` on `app`, talking to the hub at `hub_url`,
    with `registry`'s tools.

    Routes added here pass through the app's middlewares, so REST authentication covers them.
    """
    # Each MCP call reaches the hub with its own caller's credential (scope applies to it).
    loopback = Loopback(hub_url, tls)
    client = loopback.client("mcp", "claude-code")
    mcp_app = build_server(client, registry).streamable_http_app(
        streamable_http_path=path,
        stateless_http=True,
        json_response=True,
        max_request_body_size=MAX_BODY,
        host=bind_host,  # on loopback the SDK checks Host/Origin against DNS rebinding
    )

    async def lifespan(_: web.Application) -> AsyncIterator[None]:
        async with asgi_lifespan(mcp_app):
            yield
        await loopback.close()

    app.cleanup_ctx.append(lifespan)
    mount = AsgiMount(mcp_app)
    for method in ("GET", "POST", "DELETE"):
        app.router.add_route(method, path, mount.handle, name=f"mcp_{method.lower()}")
