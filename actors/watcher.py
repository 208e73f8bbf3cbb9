"""`Watcher`: reads registered repos and checks registered services (plain asyncio, no Ray).

Every `list_s` it lists the repos and services the hub holds; each is due on its own interval
(the settings', or a service's `check.intervalS`), jittered by a tenth either way so checks
do not bunch up. Each check is a task of its own under a bound on how many run at once, so a
service that never answers (or a slow `git`) holds only its own check, never the others. What
a check finds is an ordinary update written through the router as the watcher's principal, so
history, `?at=`, subscribers and channel adapters see it like any other change:

- a repo is written when what git says differs from the entity (branch, HEAD, working tree,
  ahead/behind, the error), and on every explicit `check` (then `lastSync` moves too);
- a service when its health, version or error changes, and otherwise every `record_s` (its
  latest checks' latencies and `lastHealthCheck`). Health comes from the latest checks
  (`hub.health.classify`), seeded after a restart from the entity's own `latencyHistory`.

At start it registers the services `services_file` lists (and, once the gateway knows its
own address, the hub itself: `register_self`), each under an id derived from its name.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp

from actors.adapter import HubCalls
from actors.checks import probe, read_repo
from hub.catalog import Query
from hub.codec import write_message
from hub.domains import SyncDomain
from hub.entity import EntityView
from hub.envelope import Envelope, Status
from hub.git_state import RepoState, RepoUnreadable
from hub.health import Probe, check_of, classify, services_file
from hub.ids import Kind, derived
from hub.models.parts import Endpoint
from hub.models.service import Health, HealthCheck, Service, ServiceType
from hub.settings import HubSettings

log = logging.getLogger(__name__)

PRINCIPAL = "CHITTY-SERVICE-WATCHER"  # what the watcher's writes are attributed to
NODE = "watcher"
KEEP = 20  # checks kept in a service's `latencyHistory`
RUNNING = 32  # checks at once
GIT_RUNNING = 4  # of which git reads
TICK_S = 0.5  # how often due checks are started (what is registered is listed every `list_s`)


@dataclass(frozen=True, slots=True)
class Checked:
    """What one check of a repo or service found (and whether it changed the entity)."""

    entity_id: str
    domain: str
    name: str
    state: str  # a repo's working tree, or a service's health
    detail: str
    error: str | None = None
    written: bool = False
    latency_ms: float | None = None
    at: float = 0.0  # wall-clock seconds

    def wire(self) -> dict[str, Any]:
        return {
            "entityId": self.entity_id,
            "domain": self.domain,
            "name": self.name,
            "state": self.state,
            "detail": self.detail,
            "error": self.error,
            "written": self.written,
            "latencyMs": self.latency_ms,
        }


@dataclass(slots=True)
class _Seen:
    """What the watcher keeps of one service between checks."""

    probes: deque[tuple[datetime, Probe]] = field(default_factory=lambda: deque(maxlen=KEEP))
    recorded: float = 0.0  # monotonic time of the last write


def _now() -> datetime:
    return datetime.now(UTC)


def _repo_detail(state: RepoState) -> str:
    c = state.changes
    parts = [state.branch or "(detached)", state.commit[:10] or "(no commits)"]
    counts = [
        f"{n} {what}"
        for n, what in (
            (c.staged, "staged"),
            (c.modified, "modified"),
            (c.untracked, "untracked"),
            (c.conflicted, "conflicted"),
        )
        if n
    ]
    parts.append(f"dirty ({', '.join(counts)})" if counts else "clean")
    if state.upstream:
        parts.append(f"{state.upstream} +{state.ahead} -{state.behind}")
    else:
        parts.append("no upstream")
    return " ".join(parts)


def _differs(current: Mapping[str, Any], wanted: Mapping[str, Any]) -> bool:
    """Whether writing `wanted` would change `current` (nested objects compared leaf by leaf;
    `lastCommit` follows `commit`, so its timestamp's spelling never counts)."""
    for key, value in wanted.items():
        if key == "lastCommit":
            continue
        if isinstance(value, dict) and isinstance(current.get(key), dict):
            if _differs(current[key], value):
                return True
        elif current.get(key) != value:
            return True
    return False


class Watcher:
    """Reads repos and checks services on their intervals (see the module)."""

    def __init__(
        self,
        hub: HubCalls,
        settings: HubSettings,
        *,
        list_s: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.hub = hub
        self.repo_interval_s = settings.repo_interval_s
        self.health_interval_s = settings.health_interval_s
        self.record_s = settings.health_record_s
        self.services_file = settings.services_file
        self.repo_roots = tuple(root.resolve() for root in settings.repo_roots)
        self.list_s = list_s
        self._clock = clock
        self._due: dict[str, float] = {}
        self._listed_views: dict[str, EntityView] = {}
        self._running: dict[str, asyncio.Task[Checked | None]] = {}
        self._seen: dict[str, _Seen] = {}
        self._latest: dict[str, Checked] = {}
        self._limit = asyncio.Semaphore(RUNNING)
        self._git = asyncio.Semaphore(GIT_RUNNING)
        self._tasks: list[asyncio.Task[None]] = []
        self._session: aiohttp.ClientSession | None = None
        self.problem: str | None = None  # why the services file was not read, if it was not

    # -- lifecycle ----------------------------------------------------------------------------

    async def start(self, periodic: bool = True) -> None:
        """Register the listed services; with `periodic`, check everything on its interval."""
        if periodic:
            self._tasks = [asyncio.create_task(self._loop(), name="watcher")]
        else:
            await self.register_listed()

    async def stop(self) -> None:
        for task in [*self._tasks, *self._running.values()]:
            task.cancel()
        for task in [*self._tasks, *self._running.values()]:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._session is not None:
            await self._session.close()

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            # No cookies, no proxies from the environment: a check sees the service as is.
            self._session = aiohttp.ClientSession(
                cookie_jar=aiohttp.DummyCookieJar(), headers={"User-Agent": "chittychat-watcher"}
            )
        return self._session

    async def _loop(self) -> None:
        await self.register_listed()
        listed_at = -self.list_s
        while True:
            relist = self._clock() - listed_at >= self.list_s
            try:
                await self.tick(relist)
                listed_at = self._clock() if relist else listed_at
            except Exception:  # the hub may be restarting: try again on the next round
                log.warning("watcher: a round failed", exc_info=True)
            await asyncio.sleep(TICK_S)

    async def tick(self, relist: bool = True) -> None:
        """Start the checks that are due (not waiting for them); first, with `relist`, list
        what is registered now."""
        if relist:
            listed = {view.entity_id: view for view in await self._listed()}
            for gone in self._listed_views.keys() - listed.keys():
                self._due.pop(gone, None)
                self._seen.pop(gone, None)
                self._latest.pop(gone, None)
            self._listed_views = listed
        now = self._clock()
        for entity_id, view in self._listed_views.items():
            if entity_id not in self._running and now >= self._due.setdefault(entity_id, now):
                self._start(view, explicit=False)

    async def settle(self) -> None:
        """Wait for the checks running now (tests, and a clean stop)."""
        while self._running:
            await asyncio.gather(*self._running.values(), return_exceptions=True)

    def _start(self, view: EntityView, explicit: bool) -> asyncio.Task[Checked | None]:
        task = asyncio.create_task(self._checked(view, explicit), name=f"check-{view.entity_id}")
        self._running[view.entity_id] = task
        task.add_done_callback(lambda _: self._running.pop(view.entity_id, None))
        return task

    async def _listed(self) -> list[EntityView]:
        found: list[EntityView] = []
        for domain in (SyncDomain.REPOS, SyncDomain.SERVICES):
            cursor = None
            while True:
                page = await self.hub.list(Query(domain, cursor=cursor, limit=500))
                found += [view for view in page.rows if not view.deleted]
                cursor = page.cursor
                if cursor is None:
                    break
        return found

    def _interval(self, view: EntityView) -> float:
        if view.domain == SyncDomain.REPOS.value:
            return self.repo_interval_s
        check = view.entity.get("check")
        own = check.get("intervalS") if isinstance(check, dict) else None
        return float(own) if isinstance(own, int | float) else self.health_interval_s

    async def _checked(self, listed: EntityView, explicit: bool) -> Checked | None:
        view = listed
        try:
            async with self._limit:
                view = await self.hub.get(listed.entity_id) or listed  # as it is now
                if view.deleted:
                    return None
                if view.domain == SyncDomain.REPOS.value:
                    async with self._git:
                        result = await self._check_repo(view, explicit)
                else:
                    result = await self._check_service(view, explicit)
        except Exception as error:  # a write refused or the hub away: try on the next round
            log.warning("watcher: checking %s failed: %s", view.entity_id, error)
            result = None
        if result is not None:
            self._latest[view.entity_id] = result
        self._due[view.entity_id] = self._clock() + self._interval(view) * random.uniform(0.9, 1.1)
        return result

    # -- asked for ----------------------------------------------------------------------------

    async def check(self, entity_ids: Sequence[str]) -> list[Checked]:
        """Check these repos and services now (those already being checked: that check), and
        record what each found, `lastSync` included."""
        results: list[Checked] = []
        for entity_id in entity_ids:
            running = self._running.get(entity_id)
            if running is None:
                view = await self.hub.get(entity_id)
                if view is None or view.deleted or view.domain not in ("repos", "services"):
                    continue
                running = self._start(view, explicit=True)
            result = await asyncio.shield(running)
            if result is not None:
                results.append(result)
        return results

    def latest(self) -> list[Checked]:
        """The latest check of every repo and service (what /metrics shows)."""
        return sorted(self._latest.values(), key=lambda c: (c.domain, c.name, c.entity_id))

    async def register_self(self, url: str, version: str) -> str:
        """Register the hub itself as a service (its own `/health`); its id."""
        check = HealthCheck(url=url.rstrip("/") + "/health")
        endpoint = Endpoint(url=url, protocol="https" if url.startswith("https") else "http")
        return await self._register(
            "chittychat-hub", ServiceType.CHITTYAPP, check, (endpoint,), "the hub itself", version
        )

    async def register_listed(self) -> None:
        """Register (again) the services the services file lists."""
        if self.services_file is None:
            return
        try:
            listed = services_file(self.services_file)
        except ValueError as error:
            self.problem = str(error)
            log.warning("watcher: %s", error)
            return
        for entry in listed:
            await self._register(
                entry.name, entry.type, entry.check, entry.endpoints, str(self.services_file)
            )

    async def _register(
        self,
        name: str,
        kind: ServiceType,
        check: HealthCheck,
        endpoints: Iterable[Endpoint],
        source: str,
        version: str = "",
    ) -> str:
        """Create or update the service `source` lists as `name` (the same id every time)."""
        entity_id = derived(Kind.SERVICE, "discovered", name)
        fields: dict[str, Any] = {
            "name": name,
            "type": kind.value,
            "check": check.model_dump(mode="json", by_alias=True),
            "endpoints": [e.model_dump(mode="json", by_alias=True) for e in endpoints],
            "metadata": {"discovered": source},
        }
        if version:
            fields["metadata"]["version"] = version
        view = await self.hub.get(entity_id)
        if view is None or view.deleted:
            await self._write("services", entity_id, fields, operation="create")
        elif _differs(view.entity, fields):
            await self._write("services", entity_id, fields)
        return entity_id

    # -- repos --------------------------------------------------------------------------------

    def _outside_roots(self, path: Path) -> bool:
        if not self.repo_roots:
            return False
        resolved = path.resolve()
        return not any(resolved.is_relative_to(root) for root in self.repo_roots)

    async def _check_repo(self, view: EntityView, explicit: bool) -> Checked:
        entity = view.entity
        raw = entity.get("path")
        name = str(raw or entity.get("url") or view.entity_id)
        if not isinstance(raw, str):
            return Checked(view.entity_id, "repos", name, "unknown", "no local path to read")
        path = Path(raw)
        try:
            if self._outside_roots(path):
                raise RepoUnreadable(f"{path} is outside CHITTY_REPO_ROOTS")
            state = await read_repo(path, remote_url=not entity.get("url"))
        except RepoUnreadable as error:
            reason = str(error)
            fields: dict[str, Any] = {"metadata": {"error": reason}}
            written = await self._record(view, fields, explicit)
            return Checked(view.entity_id, "repos", name, "error", reason, reason, written)
        fields = state.fields()
        if state.remote_url and not entity.get("url"):
            fields["url"] = state.remote_url
        written = await self._record(view, fields, explicit)
        tree = fields["workingTree"]
        return Checked(view.entity_id, "repos", name, tree, _repo_detail(state), None, written)

    async def _record(self, view: EntityView, fields: dict[str, Any], explicit: bool) -> bool:
        """Write `fields` on the repo if they change it (always, with `lastSync`, if asked)."""
        if not explicit and not _differs(view.entity, fields):
            return False
        fields["metadata"] = {**fields.get("metadata", {}), "lastSync": _now().isoformat()}
        return await self._write("repos", view.entity_id, fields)

    # -- services -----------------------------------------------------------------------------

    def _seen_of(self, view: EntityView) -> _Seen:
        seen = self._seen.get(view.entity_id)
        if seen is None:  # first sight (or after a restart): the entity's own latest checks
            seen = self._seen[view.entity_id] = _Seen()
            service = Service.model_validate(view.entity)
            for sample in service.latency_history[-KEEP:]:
                seen.probes.append((sample.at, Probe(sample.ok, sample.ms)))
            seen.recorded = self._clock()
        return seen

    async def _check_service(self, view: EntityView, explicit: bool) -> Checked:
        service = Service.model_validate(view.entity)
        check = check_of(service.check, service.endpoints)
        if check is None:
            detail = "no check and no http(s) endpoint: not checked"
            return Checked(view.entity_id, "services", service.name, service.health.value, detail)
        seen = self._seen_of(view)
        result = await probe(check, self._http())
        at = _now()
        seen.probes.append((at, result))
        health = classify([p for _, p in seen.probes], check.slow_ms)
        meta = service.metadata
        version = result.version or meta.version
        changed = (
            health is not service.health or result.error != meta.error or version != meta.version
        )
        due = self._clock() - seen.recorded >= self.record_s
        written = False
        if changed or due or explicit:
            fields: dict[str, Any] = {
                "health": health.value,
                "latencyMs": result.ms,
                "latencyHistory": [
                    {"at": t.isoformat(), "ms": p.ms, "ok": p.ok} for t, p in seen.probes
                ],
                "metadata": {"lastHealthCheck": at.isoformat(), "error": result.error},
            }
            if health is not service.health or meta.health_since is None:
                fields["metadata"]["healthSince"] = at.isoformat()
            if version != meta.version:
                fields["metadata"]["version"] = version
                if meta.version:  # a version seen before: this is a deployment
                    fields["metadata"]["deployed"] = at.isoformat()
            written = await self._write("services", view.entity_id, fields)
            seen.recorded = self._clock()
        detail = result.error or f"{result.ms:g} ms" + (f", version {version}" if version else "")
        return Checked(
            view.entity_id,
            "services",
            service.name,
            health.value,
            detail,
            result.error,
            written,
            result.ms,
            at.timestamp(),
        )

    # -- writes -------------------------------------------------------------------------------

    async def _write(
        self, domain: str, entity_id: str, fields: Mapping[str, Any], operation: str = "update"
    ) -> bool:
        message = write_message(
            message_id=f"watch-{uuid.uuid4().hex}",
            node_id=NODE,
            platform="hub",
            chitty_id=PRINCIPAL,
            domain=domain,
            operation=operation,
            entity_id=entity_id,
            data={**fields, "createdBy": PRINCIPAL} if operation == "create" else fields,
            timestamp=_now(),
        )
        [outcome] = await self.hub.route([Envelope.of(message)])
        if outcome.status is not Status.APPLIED:
            raise RuntimeError(f"{entity_id}: {outcome.reason or outcome.status.value}")
        return True


__all__ = ["PRINCIPAL", "Checked", "Health", "Watcher"]
