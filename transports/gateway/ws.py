"""The WebSocket endpoint /ws (to be written: see the issue)."""

from __future__ import annotations

from aiohttp import web


def add_ws_routes(app: web.Application) -> None:
    """Register /ws (nothing yet)."""
