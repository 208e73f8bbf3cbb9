"""`GET /`: a short page pointing at the API, its document, the CLI and the docs (public; it
holds no data). The web UI will take this path over."""

from __future__ import annotations

from html import escape

from aiohttp import web

PAGE = """<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>ChittyChat Hub</title></head>
<body>
<h1>ChittyChat Hub</h1>
<p>This hub is running. It has no web UI yet; reach it through:</p>
<ul>
<li>the REST API under <code>{base}/api/v1</code>, described by
<a href="/api/v1/openapi.json">its OpenAPI 3.1 document</a> (open it in any OpenAPI viewer,
or import it as a ChatGPT Action);</li>
<li>the WebSocket stream at <code>/ws</code>{mcp};</li>
<li>the command line: <code>chitty --help</code>, e.g. <code>chitty project add "My project"</code>,
<code>chitty session start</code>, <code>chitty todo add "Write the docs"</code>,
<code>chitty todo reconcile</code>;</li>
<li><a href="/health">/health</a>: whether every actor of the hub answers.</li>
</ul>
<p>Everything but this page, <code>/health</code> and the OpenAPI document needs
<code>Authorization: Bearer &lt;token&gt;</code>: <code>chitty up</code> prints an admin token on
its first start, and <code>chitty token create NAME --role member</code> makes more.
The docs are the hub's README (sections Set-up, Security, Claude over MCP).</p>
</body>
</html>
"""


async def index(request: web.Request) -> web.Response:
    """The page, naming this hub's own base URL (and /mcp when this gateway serves it)."""
    mcp = (
        " and MCP at <code>/mcp</code>"
        if "mcp_post" in request.app.router.named_resources()
        else ""
    )
    base = escape(f"{request.scheme}://{request.host}")
    return web.Response(text=PAGE.format(base=base, mcp=mcp), content_type="text/html")
