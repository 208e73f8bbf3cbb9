"""The aiohttp gateway: REST under /api/v1, the WebSocket /ws, OpenAPI, /health, /metrics."""

from transports.gateway.app import make_app

__all__ = ["make_app"]
