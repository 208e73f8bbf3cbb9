"""Security headers on every answer the gateway makes (JSON, errors, metrics, the WebSocket
upgrade), set as a response is prepared so no handler or middleware can forget them."""

from __future__ import annotations

from aiohttp import web

SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",  # a JSON answer is never sniffed as HTML
    "Cache-Control": "no-store",  # answers hold scoped data: no shared or browser cache keeps it
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Resource-Policy": "same-origin",
}
# Answers other than HTML pages load nothing and are framed by no one.
API_CSP = "default-src 'none'; frame-ancestors 'none'"


async def add_security_headers(request: web.Request, response: web.StreamResponse) -> None:
    """`on_response_prepare`: the headers above, kept where a handler chose its own."""
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    if not response.content_type.startswith("text/html"):
        response.headers.setdefault("Content-Security-Policy", API_CSP)
    if request.secure:
        response.headers.setdefault("Strict-Transport-Security", "max-age=31536000")


def add_header_policy(app: web.Application) -> None:
    """Set the security headers on every answer of `app`."""
    app.on_response_prepare.append(add_security_headers)
