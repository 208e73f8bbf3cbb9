"""The web UI: server-rendered pages at `/` over the gateway's own API and `/ws`."""

from transports.web.pages import add_web_routes

__all__ = ["add_web_routes"]
