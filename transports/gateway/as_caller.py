"""Hub calls made as the caller of the request being answered.

MCP over HTTP, `POST /api/v1/tools/{name}` and the model endpoints run the hub's tools through a
`ChittyClient` on this gateway's own REST API. That client carries the credential of the request
being answered (the `CALLER` context variable, set per request), so every scope check applies
to a tool exactly as to the caller's own REST call; a service's calls are signed with its
token's key, as its own must be. One client per (node, platform) serves every request.
"""

from __future__ import annotations

import contextvars
import ssl

from aiohttp import web

from transports.client import ChittyClient
from transports.gateway.auth import bearer
from transports.gateway.errors import ApiError

CALLER: contextvars.ContextVar[str | None] = contextvars.ContextVar("caller", default=None)


def caller_credential(request: web.Request) -> str | None:
    """The credential the request was authenticated with (a bearer token, or a signed-in
    browser's), None when it carries none."""
    try:
        return bearer(request)
    except ApiError:  # none, or not a bearer one: the hub answers that call 401 itself
        return None


class Loopback:
    """Clients of this gateway's REST API that call as `CALLER`.

    `url`: where this gateway answers (None: the address the first request arrived at);
    `tls`: how to trust its certificate when that is https."""

    def __init__(self, url: str | None = None, tls: ssl.SSLContext | None = None) -> None:
        self.url = url
        self.tls = tls
        self._clients: dict[tuple[str, str], ChittyClient] = {}

    def client(self, node_id: str, platform: str) -> ChittyClient:
        """The client whose writes carry `node_id` and `platform` (made on first use)."""
        if self.url is None:
            raise RuntimeError("the gateway's own URL is not known yet")
        key = (node_id, platform)
        if key not in self._clients:
            self._clients[key] = ChittyClient(
                self.url,
                node_id=node_id,
                platform=platform,
                token=CALLER.get,
                sign=True,
                tls=self.tls,
            )
        return self._clients[key]

    def as_caller(self, request: web.Request, node_id: str, platform: str) -> ChittyClient:
        """A client calling as `request`'s caller, for the rest of this request's task."""
        if self.url is None:
            sock = request.transport.get_extra_info("sockname") if request.transport else None
            host, port = (sock[0], sock[1]) if sock else (request.host, None)
            host = f"[{host}]" if ":" in host and port is not None else host
            self.url = f"{request.scheme}://{host}" + (f":{port}" if port is not None else "")
        CALLER.set(caller_credential(request))
        return self.client(node_id, platform)

    async def close(self) -> None:
        for client in self._clients.values():
            await client.close()


LOOPBACK = web.AppKey("loopback", Loopback)


def add_loopback(app: web.Application, url: str | None, tls: ssl.SSLContext | None) -> Loopback:
    """Give `app` its Loopback (closed with the app)."""
    loopback = Loopback(url, tls)
    app[LOOPBACK] = loopback

    async def close(_: web.Application) -> None:
        await loopback.close()

    app.on_cleanup.append(close)
    return loopback


def as_caller(request: web.Request, node_id: str, platform: str = "api") -> ChittyClient:
    """A `ChittyClient` on this gateway calling as `request`'s caller (see `Loopback`)."""
    return request.app[LOOPBACK].as_caller(request, node_id, platform)
