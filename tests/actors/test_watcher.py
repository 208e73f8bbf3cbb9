"""The watcher on the in-process hub: real git repositories in temp dirs and real HTTP services
on loopback ports whose state changes while the test runs."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from actors.local import LocalHub
from actors.watcher import PRINCIPAL, Watcher
from hub.catalog import Query
from hub.codec import write_message
from hub.domains import SyncDomain
from hub.envelope import Envelope, Status
from hub.ids import IdGenerator, Kind
from hub.store import MemoryStore
from tests.actors.conftest import settings_for
from tests.gitrepos import repo
from tests.servicestub import Service, running

ids = IdGenerator("watcher-tests", now_ms=lambda: time.time_ns() // 1_000_000)


class World:
    """An in-process hub and a watcher whose clock the test moves."""

    def __init__(self, tmp: Path, **settings: Any) -> None:
        self.settings = settings_for(tmp, **settings)
        self.hub = LocalHub(MemoryStore(), self.settings, tmp / "shards.json")
        self.now = 0.0
        self.watcher = self.restart()

    def restart(self) -> Watcher:
        self.watcher = Watcher(self.hub, self.settings, clock=lambda: self.now)
        return self.watcher

    async def create(self, domain: SyncDomain, kind: Kind, data: dict[str, Any]) -> str:
        entity_id = ids.new(kind)
        message = write_message(
            message_id=ids.new(Kind.MSG),
            node_id="tests",
            platform="cli",
            chitty_id="CHITTY-USER-TESTS",
            domain=domain.value,
            operation="create",
            entity_id=entity_id,
            data=data,
            timestamp=datetime.now(UTC),
        )
        [outcome] = await self.hub.route([Envelope.of(message)])
        assert outcome.status is Status.APPLIED, outcome
        return entity_id

    async def entity(self, entity_id: str) -> dict[str, Any]:
        view = await self.hub.get(entity_id)
        assert view is not None
        return view.entity

    async def seq(self, entity_id: str) -> int:
        view = await self.hub.get(entity_id)
        assert view is not None
        return view.seq

    async def round(self, after_s: float) -> None:
        """Let `after_s` pass on the watcher's clock, start what is due, wait for it."""
        self.now += after_s
        await self.watcher.tick()
        await self.watcher.settle()


def scenario(tmp: Path, work: Callable[[World], Awaitable[None]], **settings: Any) -> None:
    async def go() -> None:
        world = World(tmp, **settings)
        try:
            await work(world)
        finally:
            await world.watcher.stop()

    asyncio.run(go())


def test_a_repo_is_read_and_each_change_of_its_state_is_one_update(tmp_path: Path) -> None:
    path = repo(tmp_path / "r")

    async def work(w: World) -> None:
        repo_id = await w.create(SyncDomain.REPOS, Kind.REPO, {"path": str(path)})
        [checked] = await w.watcher.check([repo_id])
        assert (checked.state, checked.error, checked.written) == ("clean", None, True)
        assert checked.detail.startswith("main ") and "no upstream" in checked.detail
        entity = await w.entity(repo_id)
        assert entity["branch"] == "main" and entity["workingTree"] == "clean"
        assert len(entity["commit"]) == 40 and entity["lastCommit"]["author"].startswith("Ada")
        assert entity["metadata"]["lastSync"] is not None
        seq = await w.seq(repo_id)
        await w.round(60)  # nothing changed: nothing written
        assert await w.seq(repo_id) == seq
        (path / "README.md").write_text("edited\n")
        (path / "notes.txt").write_text("new\n")
        await w.round(60)
        entity = await w.entity(repo_id)
        assert entity["workingTree"] == "dirty"
        assert entity["changes"] == {"staged": 0, "modified": 1, "untracked": 1, "conflicted": 0}
        assert await w.seq(repo_id) == seq + 1
        await w.round(5)  # not due yet (interval 30 s, jittered by a tenth)
        assert await w.seq(repo_id) == seq + 1
        [latest] = w.watcher.latest()
        assert latest.entity_id == repo_id and latest.state == "dirty"

    scenario(tmp_path, work, repo_interval_s=30)


def test_a_repo_that_cannot_be_read_records_why_and_recovers(tmp_path: Path) -> None:
    path = tmp_path / "later"

    async def work(w: World) -> None:
        repo_id = await w.create(SyncDomain.REPOS, Kind.REPO, {"path": str(path)})
        [checked] = await w.watcher.check([repo_id])
        assert checked.state == "error" and checked.error == f"no such directory: {path}"
        entity = await w.entity(repo_id)
        assert entity["metadata"]["error"] == checked.error
        assert entity["workingTree"] == "unknown"  # never a guess
        path.mkdir()
        [checked] = await w.watcher.check([repo_id])
        assert checked.error is not None and "not a git repository" in checked.error
        repo(path)
        [checked] = await w.watcher.check([repo_id])
        assert checked.error is None and checked.state == "clean"
        assert (await w.entity(repo_id))["metadata"]["error"] is None

    scenario(tmp_path, work)


def test_repo_roots_keep_the_watcher_out_of_other_directories(tmp_path: Path) -> None:
    inside, outside = repo(tmp_path / "work" / "a"), repo(tmp_path / "elsewhere")

    async def work(w: World) -> None:
        good = await w.create(SyncDomain.REPOS, Kind.REPO, {"path": str(inside)})
        bad = await w.create(SyncDomain.REPOS, Kind.REPO, {"path": str(outside / ".." / "x")})
        first, second = await w.watcher.check([good, bad])
        assert first.state == "clean"
        assert second.error == f"{outside / '..' / 'x'} is outside CHITTY_REPO_ROOTS"

    scenario(tmp_path, work, repo_roots=(tmp_path / "work",))


def test_a_service_that_goes_down_is_down_in_two_checks_and_back_degraded_then_healthy(
    tmp_path: Path,
) -> None:
    service = Service(version="1.0.0")

    async def work(w: World) -> None:
        async with running(service):
            check = {"url": service.url, "timeoutS": 2}
            service_id = await w.create(
                SyncDomain.SERVICES, Kind.SERVICE, {"name": "api", "check": check}
            )
            assert (await w.entity(service_id))["health"] == "unknown"
            await w.round(0)
            entity = await w.entity(service_id)
            assert entity["health"] == "healthy" and entity["metadata"]["version"] == "1.0.0"
            assert entity["metadata"]["deployed"] is None  # a first sighting is no deployment
            assert entity["latencyMs"] > 0 and len(entity["latencyHistory"]) == 1
            service.mode = "failing"
            await w.round(34)
            assert (await w.entity(service_id))["health"] == "degraded"
            await w.round(34)
            entity = await w.entity(service_id)
            assert entity["health"] == "down"
            assert entity["metadata"]["error"] == "answered 500, expected 2xx"
            assert [s["ok"] for s in entity["latencyHistory"]] == [True, False, False]
            service.mode, service.version = "healthy", "1.1.0"
            await w.round(34)
            entity = await w.entity(service_id)
            assert entity["health"] == "degraded"  # back, not yet for long
            assert entity["metadata"]["version"] == "1.1.0"
            assert entity["metadata"]["deployed"] is not None  # a new version: deployed
            await w.round(34)
            await w.round(34)
            await w.round(34)
            entity = await w.entity(service_id)
            assert entity["health"] == "healthy" and entity["metadata"]["error"] is None

    scenario(tmp_path, work, health_interval_s=30)


def test_an_unchanged_service_is_recorded_every_record_interval_only(tmp_path: Path) -> None:
    service = Service()

    async def work(w: World) -> None:
        async with running(service):
            service_id = await w.create(
                SyncDomain.SERVICES, Kind.SERVICE, {"name": "api", "check": {"url": service.url}}
            )
            await w.round(0)
            seq = await w.seq(service_id)
            for _ in range(3):
                await w.round(12)
            assert await w.seq(service_id) == seq  # healthy, healthy, healthy: not written
            assert service.calls == 4
            await w.round(12)  # 48 s since the last write: record the latest checks
            entity = await w.entity(service_id)
            assert await w.seq(service_id) == seq + 1 and len(entity["latencyHistory"]) == 5

    scenario(tmp_path, work, health_interval_s=10, health_record_s=40)


def test_a_hanging_service_never_stalls_the_other_checks(tmp_path: Path) -> None:
    hanging, fine = Service(), Service()
    hanging.mode = "hanging"

    async def work(w: World) -> None:
        async with running(hanging, fine):
            stuck = await w.create(
                SyncDomain.SERVICES,
                Kind.SERVICE,
                {"name": "stuck", "check": {"url": hanging.url, "timeoutS": 5}},
            )
            ok = await w.create(
                SyncDomain.SERVICES, Kind.SERVICE, {"name": "ok", "check": {"url": fine.url}}
            )
            await w.watcher.tick()
            started = asyncio.get_running_loop().time()
            while (await w.entity(ok))["health"] != "healthy":
                await asyncio.sleep(0.02)
            assert asyncio.get_running_loop().time() - started < 2.5  # well inside the 5 s
            assert (await w.entity(stuck))["health"] == "unknown"  # still waiting for it
            await w.watcher.settle()
            entity = await w.entity(stuck)
            assert entity["health"] == "down" and entity["metadata"]["error"] == (
                "no answer within 5 s"
            )

    scenario(tmp_path, work)


def test_after_a_restart_health_carries_on_from_the_recorded_checks(tmp_path: Path) -> None:
    service = Service()

    async def work(w: World) -> None:
        async with running(service):
            service_id = await w.create(
                SyncDomain.SERVICES, Kind.SERVICE, {"name": "api", "check": {"url": service.url}}
            )
            await w.round(0)
            await w.watcher.stop()
            w.restart()
            service.mode = "failing"
            await w.round(34)
            # A failure after a pass is `degraded`: the pass before the restart still counts.
            entity = await w.entity(service_id)
            assert entity["health"] == "degraded"
            assert [s["ok"] for s in entity["latencyHistory"]] == [True, False]

    scenario(tmp_path, work)


def test_listed_services_and_the_hub_itself_are_registered_once(tmp_path: Path) -> None:
    listed = tmp_path / "services.toml"
    listed.write_text('[[service]]\nname = "db"\naddress = "127.0.0.1:1"\ntype = "external"\n')

    async def work(w: World) -> None:
        await w.watcher.register_listed()
        await w.watcher.register_listed()
        first = await w.watcher.register_self("http://127.0.0.1:8765", "0.1.0")
        assert await w.watcher.register_self("http://127.0.0.1:8765", "0.1.0") == first
        page = await w.hub.list(Query(SyncDomain.SERVICES))
        names = sorted(v.entity["name"] for v in page.rows)
        assert names == ["chittychat-hub", "db"]
        hub = await w.entity(first)
        assert hub["check"]["url"] == "http://127.0.0.1:8765/health"
        assert hub["createdBy"] == PRINCIPAL and hub["metadata"]["discovered"] == "the hub itself"
        db = next(v.entity for v in page.rows if v.entity["name"] == "db")
        assert db["check"] == {
            "kind": "tcp",
            "url": None,
            "address": "127.0.0.1:1",
            "expectStatus": None,
            "timeoutS": 5.0,
            "intervalS": None,
            "slowMs": 1000.0,
        }
        assert db["metadata"]["discovered"] == str(listed)

    scenario(tmp_path, work, services_file=listed)
