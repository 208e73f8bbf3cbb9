"""What every channel's runner tests share: the in-process hub, one adapter's runner on it
with its real LMDB store, and the steps a test takes (write, pump, restart)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from actors.adapter import AdapterRunner
from actors.local import LocalHub
from hub.adapter_store import AdapterStore
from hub.adapters import AdapterState, ChannelAdapter
from hub.envelope import Envelope, Outcome, Status
from hub.store import MemoryStore
from tests.actors.conftest import settings_for


class AdapterWorld:
    """A hub and the adapter `name` on it; `restart` makes a new runner (and adapter) on the
    same store, as a restarted actor would. Subclasses say how their adapter is made."""

    def __init__(self, tmp: Path, name: str) -> None:
        self.tmp = tmp
        self.name = name
        self.hub = LocalHub(MemoryStore(), settings_for(tmp), tmp / "shards.json")

    def make_adapter(self) -> ChannelAdapter:
        raise NotImplementedError

    def _runner(self) -> AdapterRunner:
        store = AdapterStore(self.tmp / "adapters" / self.name)
        return AdapterRunner(
            self.name,
            self.make_adapter(),
            store,
            self.hub,
            self.hub.outboxes(),
            self.hub.stream(),
            backoff_cap_s=0.5,
        )

    def start(self) -> None:
        """Make the first runner (once the subclass has what `make_adapter` needs)."""
        self.runner = self._runner()

    async def connect(self) -> None:
        await self.runner.connect()
        assert self.runner.state is AdapterState.CONNECTED, self.runner.detail

    async def restart(self) -> None:
        await self.runner.stop()
        self.runner.store.close()
        self.runner = self._runner()
        await self.connect()

    async def write(self, *messages: Any) -> list[Outcome]:
        outcomes = await self.hub.route([Envelope.of(m) for m in messages])
        assert all(o.status is Status.APPLIED for o in outcomes), outcomes
        return outcomes

    async def pump(self) -> float:
        """Take what the hub committed and deliver it; the wait the service asked for."""
        await self.runner.follow_once()
        return await self.runner.deliver_once()
