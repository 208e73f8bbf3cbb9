"""A real HTTP service on a loopback port whose health a test changes while it runs."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

from aiohttp import web

from tests.emulators import serve


class Service:
    """Answers GET /health: `healthy` (200 with its version), `failing` (500), `slow` (after
    `delay_s`), or `hanging` (never). Start and stop it inside the event loop of the test."""

    def __init__(self, version: str = "1.0.0") -> None:
        self.mode = "healthy"
        self.version = version
        self.delay_s = 0.0
        self.calls = 0
        self.url = ""
        self._runner: web.AppRunner | None = None

    async def _health(self, _: web.Request) -> web.Response:
        self.calls += 1
        if self.mode == "hanging":
            await asyncio.sleep(3600)
        if self.mode == "slow":
            await asyncio.sleep(self.delay_s)
        if self.mode == "failing":
            return web.json_response({"status": "broken"}, status=500)
        return web.json_response({"status": "ok", "version": self.version})

    async def start(self) -> str:
        app = web.Application()
        app.router.add_get("/health", self._health)
        self._runner, base = await serve(app, shutdown_timeout=0.1)
        self.url = f"{base}/health"
        return self.url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def running(*services: Service) -> Any:
    """Start `services` in the running loop (an async context manager)."""

    class _Running:
        async def __aenter__(self) -> tuple[Service, ...]:
            for service in services:
                await service.start()
            return services

        async def __aexit__(self, *_: object) -> None:
            for service in services:
                await service.stop()

    return _Running()
