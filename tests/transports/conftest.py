"""A real hub behind a real aiohttp server on a loopback port, shared by a test module."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Coroutine, Iterator, Sequence
from concurrent.futures import Future
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import pytest
from aiohttp import web

from hub.adapters import AdapterSpec
from hub.auth.principal import Role
from hub.settings import HubSettings
from hub.subscriptions import Filter
from tests.actors.conftest import settings_for
from tests.emulators import serve
from transports.gateway.auth import AUTH

T = TypeVar("T")
SESSION = "CHITTY-SESSION-1"  # exists in every test gateway (see `Gateway.ensure`)


class Gateway:
    """The gateway's event loop runs in a thread; tests drive it with `call` or `request`."""

    def __init__(self, settings: HubSettings, adapters: Sequence[AdapterSpec] = ()) -> None:
        from actors.runtime import Runtime
        from transports.gateway import make_app

        self.settings = settings
        self.runtime = Runtime.start(settings, adapters)
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()
        self.app = make_app(self.runtime, settings)
        self.tokens = self.app[AUTH].tokens
        _, self.token = self.tokens.create("tests", Role.ADMIN)  # what `chitty up` prints
        self.runner, self.url = self.serve(self.app)
        self.session: aiohttp.ClientSession = self.call(self._session())
        # The session most tests file their todos in (a todo must name one that exists).
        self.ensure("sessions", SESSION, {"sessionId": "tests", "platform": "cli"})

    def ensure(self, domain: str, entity_id: str, fields: dict[str, Any]) -> str:
        """Create `entity_id` with `fields` unless it exists (as the admin); its id."""
        status, body, _ = self.request(
            "POST", f"/api/v1/{domain}", {"chittyId": entity_id, **fields}
        )
        assert status in (201, 409), body
        return entity_id

    def project(self, name: str = "a project") -> str:
        """A new project's id, once its create is on the event stream: the ack comes at the
        commit and the host publishes after it, so a subscription a test opens next would
        otherwise see the project's create arrive among the events it waits for."""
        status, body, _ = self.request("POST", "/api/v1/projects", {"name": name})
        assert status == 201, body
        project_id = str(body["entity"]["chittyId"])
        self.call(self._published(project_id))
        return project_id

    async def _published(self, entity_id: str) -> None:
        """Wait until an event of `entity_id` is on the stream (from its start)."""
        wanted = Filter(entity_id=entity_id)
        epoch, after = (await self.runtime.poll(None, 0, wanted)).epoch, 0  # (None: the head)
        deadline = asyncio.get_running_loop().time() + 60
        while asyncio.get_running_loop().time() < deadline:
            poll = await self.runtime.poll(epoch, after, wanted, 100, 1.0)
            if poll.events:
                return
            epoch, after = poll.epoch, poll.offset
        raise AssertionError(f"no event of {entity_id} reached the stream in 60 s")

    async def _session(self) -> aiohttp.ClientSession:
        return aiohttp.ClientSession(self.url, headers={"Authorization": f"Bearer {self.token}"})

    def serve(self, app: web.Application) -> tuple[web.AppRunner, str]:
        """Serve `app` on this gateway's loop, on a free loopback port: its runner and URL."""

        return self.call(serve(app))

    def call(self, work: Coroutine[Any, Any, T], timeout: float = 120) -> T:
        future: Future[T] = asyncio.run_coroutine_threadsafe(work, self.loop)
        try:
            return future.result(timeout)
        except TimeoutError:
            future.cancel()  # do not leave it running into the next test
            raise

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        headers: dict[str, str] | None = None,
        raw: bytes | None = None,
    ) -> tuple[int, Any, dict[str, str]]:
        async def go() -> tuple[int, Any, dict[str, str]]:
            data = raw if raw is not None else (json.dumps(body) if body is not None else None)
            hdrs = {"Content-Type": "application/json", **(headers or {})}
            async with self.session.request(method, path, data=data, headers=hdrs) as response:
                text = await response.text()
                try:
                    parsed = json.loads(text) if text else None
                except ValueError:
                    parsed = text
                return response.status, parsed, dict(response.headers)

        return self.call(go())

    def close(self) -> None:
        self.call(self.session.close())
        self.call(self.runner.cleanup())
        # A test that failed mid-scenario may leave coroutines awaiting Ray object refs on this
        # loop; cancel them before Ray goes, or Ray's shutdown can wait on them for ever.
        self.call(_cancel_pending(), timeout=30)
        self.runtime.shutdown()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)


async def _cancel_pending() -> None:
    current = asyncio.current_task()
    pending = [task for task in asyncio.all_tasks() if task is not current]
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)


@pytest.fixture(scope="module")
def gateway(ray_cluster: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    tmp: Path = tmp_path_factory.mktemp("gateway")
    running = Gateway(settings_for(tmp, hosts=2))
    yield running
    running.close()
