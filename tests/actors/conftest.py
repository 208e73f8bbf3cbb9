"""Hosting fixtures: the same entity behaviour suite runs in-process and on Ray."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol

import pytest

from actors.host import EntityView
from actors.local import LocalHub
from hub.envelope import Envelope, Outcome
from hub.protocol import SyncMessage
from hub.settings import HubSettings
from hub.store import LmdbStore, generate_key

_namespaces = itertools.count()


class Hosting(Protocol):
    """What the behaviour suite needs from a way of hosting entities."""

    def submit(self, messages: Sequence[SyncMessage]) -> list[Outcome]: ...

    def get(self, entity_id: str) -> EntityView | None: ...

    def state_at(self, entity_id: str, timestamp_ms: int) -> EntityView | None: ...

    def history(self, entity_id: str) -> list[dict[str, Any]]: ...


class InProcess:
    def __init__(self, hub: LocalHub) -> None:
        self.hub = hub
        self.loop = asyncio.new_event_loop()

    def submit(self, messages: Sequence[SyncMessage]) -> list[Outcome]:
        return self.loop.run_until_complete(
            self.hub.router.route([Envelope.of(m, with_entity=True) for m in messages])
        )

    def get(self, entity_id: str) -> EntityView | None:
        return self.loop.run_until_complete(self.hub.host_of(entity_id).get(entity_id))

    def state_at(self, entity_id: str, timestamp_ms: int) -> EntityView | None:
        return self.loop.run_until_complete(
            self.hub.host_of(entity_id).state_at(entity_id, timestamp_ms)
        )

    def history(self, entity_id: str) -> list[dict[str, Any]]:
        return self.loop.run_until_complete(self.hub.host_of(entity_id).history(entity_id))

    def close(self) -> None:
        for host in self.hub.hosts.values():
            self.loop.run_until_complete(host.mailbox.close())
        self.loop.close()


class OnRay:
    def __init__(self, runtime: Any) -> None:
        self.runtime = runtime

    def submit(self, messages: Sequence[SyncMessage]) -> list[Outcome]:
        return asyncio.run(self.runtime.submit(messages, with_entity=True))

    def get(self, entity_id: str) -> EntityView | None:
        return asyncio.run(self.runtime.get(entity_id))

    def state_at(self, entity_id: str, timestamp_ms: int) -> EntityView | None:
        return asyncio.run(self.runtime.state_at(entity_id, timestamp_ms))

    def history(self, entity_id: str) -> list[dict[str, Any]]:
        return asyncio.run(self.runtime.history(entity_id))


def settings_for(tmp: Path, **overrides: Any) -> HubSettings:
    """A test hub's settings; encrypted at rest (the default) with a key file of its own next
    to the data dir, unless the test says otherwise; the watcher checks repos and services, and
    sessions are summarized, only when asked (`watch=True`, `summarize_sessions=True` for a
    test of those background jobs)."""
    keyed = {"encryption", "encryption_key", "encryption_key_file"} & overrides.keys()
    if not keyed:
        key_file = tmp.with_name(tmp.name + ".key")
        if not key_file.exists():
            key_file.write_bytes(generate_key())
            key_file.chmod(0o600)
        overrides["encryption_key_file"] = key_file
    overrides.setdefault("watch", False)  # repos and services checked when a test asks
    overrides.setdefault("summarize_sessions", False)  # and sessions summarized likewise
    return HubSettings(
        data_dir=tmp,
        namespace=f"test-{next(_namespaces)}",
        hosts=overrides.pop("hosts", 2),
        shards=overrides.pop("shards", 16),
        **overrides,
    )


@pytest.fixture(scope="module", params=["in-process", "ray"])
def hosting(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Hosting]:
    tmp = tmp_path_factory.mktemp(request.param)
    settings = settings_for(tmp, mailbox_limit=50, snapshot_every=5)
    if request.param == "in-process":
        store = LmdbStore(tmp / "lmdb")
        local = InProcess(LocalHub(store, settings, tmp / "shards.json"))
        yield local
        local.close()
        store.close()
        return
    request.getfixturevalue("ray_cluster")
    from actors.runtime import Runtime

    runtime = Runtime.start(settings)
    yield OnRay(runtime)
    runtime.shutdown()
