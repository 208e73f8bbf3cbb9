"""`Router`: shards envelopes to hosts in batches (plain asyncio class, no Ray).

Per batch it answers recent duplicates from memory, holds messages whose `causality` ids are not
applied yet (up to a bound, then a `causal_violation`), groups the rest by owning host and sends
one call per host. Hosts answer only after their group commit, so every outcome it returns that
says `applied` is durable. Several routers can run from the same shard table.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Protocol

from hub.entity import EntityView
from hub.envelope import Envelope, Outcome, Status
from hub.settings import HubSettings
from hub.shards import ShardTable


class HostClient(Protocol):
    """How a router reaches hosts: in-process in tests, Ray actor calls in a deployment."""

    async def submit(self, host: str, envelopes: list[Envelope]) -> list[Outcome]: ...

    async def applied(self, host: str, message_ids: list[str]) -> list[str]:
        """Which of these message ids the host has durably processed."""
        ...

    async def get(self, host: str, entity_id: str) -> EntityView | None: ...


class HostUnavailable(RuntimeError):
    """A host did not answer (it is restarting, or gone)."""


class _Recent:
    """A bounded memory of message outcomes, newest last."""

    def __init__(self, capacity: int) -> None:
        self._items: OrderedDict[str, Outcome] = OrderedDict()
        self._capacity = capacity

    def get(self, message_id: str) -> Outcome | None:
        return self._items.get(message_id)

    def add(self, outcome: Outcome) -> None:
        self._items[outcome.message_id] = outcome
        self._items.move_to_end(outcome.message_id)
        while len(self._items) > self._capacity:
            self._items.popitem(last=False)


class Router:
    """Routes envelopes to the hosts that own their entities."""

    def __init__(
        self,
        table_path: Path,
        settings: HubSettings,
        client: HostClient,
        now_ms: Callable[[], int] = lambda: time.time_ns() // 1_000_000,
        recent: int = 100_000,
    ) -> None:
        table = ShardTable.load(table_path)
        if table is None:
            raise FileNotFoundError(f"no shard table at {table_path}: start the runtime first")
        self.table = table
        self._path = table_path
        self._settings = settings
        self._client = client
        self._now_ms = now_ms
        self._recent = _Recent(recent)
        self._applied = asyncio.Condition()
        self.retries = 0

    def refresh(self) -> int:
        """Reload the shard table if a newer version was saved; returns the version in use."""
        table = ShardTable.load(self._path)
        if table is not None and table.version > self.table.version:
            self.table = table
        return self.table.version

    async def route(self, envelopes: Sequence[Envelope]) -> list[Outcome]:
        """Deliver a batch; outcomes come back in the batch's order."""
        outcomes: dict[int, Outcome] = {}
        ready: list[tuple[int, Envelope]] = []
        waiting: list[tuple[int, Envelope]] = []
        for index, envelope in enumerate(envelopes):
            known = self._recent.get(envelope.message_id)
            if known is not None and known.durable:
                if envelope.reused_by(known):
                    outcomes[index] = envelope.key_reused()
                else:
                    outcomes[index] = replace(known, status=Status.DUPLICATE)
            elif envelope.depth > self._settings.max_call_depth:
                outcomes[index] = Outcome(
                    envelope.message_id,
                    Status.REJECTED,
                    envelope.entity_id,
                    reason=f"call chain deeper than {self._settings.max_call_depth}",
                )
            elif envelope.causality and not await self._all_applied(envelope.causality):
                waiting.append((index, envelope))
            else:
                ready.append((index, envelope))
        if ready:
            for (index, _), outcome in zip(
                ready, await self._deliver([e for _, e in ready]), strict=True
            ):
                outcomes[index] = outcome
        if waiting:
            results = await asyncio.gather(*(self._after_causes(e) for _, e in waiting))
            for (index, _), outcome in zip(waiting, results, strict=True):
                outcomes[index] = outcome
        return [outcomes[i] for i in range(len(envelopes))]

    async def get(self, entity_id: str) -> EntityView | None:
        """Read an entity from the host that owns it."""
        return await self._client.get(self.table.host_of(entity_id), entity_id)

    async def _deliver(self, envelopes: list[Envelope]) -> list[Outcome]:
        groups: dict[str, list[int]] = {}
        for index, envelope in enumerate(envelopes):
            groups.setdefault(self.table.host_of(envelope.entity_id), []).append(index)
        answers = await asyncio.gather(
            *(
                self._submit(host, [envelopes[i] for i in indexes])
                for host, indexes in groups.items()
            )
        )
        results: list[Outcome | None] = [None] * len(envelopes)
        for indexes, outcomes in zip(groups.values(), answers, strict=True):
            for index, outcome in zip(indexes, outcomes, strict=True):
                results[index] = outcome
                if outcome.durable:
                    self._recent.add(outcome)
        async with self._applied:
            self._applied.notify_all()
        return [r for r in results if r is not None]

    async def _submit(self, host: str, envelopes: list[Envelope]) -> list[Outcome]:
        """One call to a host; retried while it restarts (its dedupe makes retries safe)."""
        deadline = time.monotonic() + self._settings.call_timeout_s
        delay = 0.05
        while True:
            try:
                return await self._client.submit(host, envelopes)
            except HostUnavailable as error:
                if time.monotonic() + delay > deadline:
                    return [
                        Outcome(e.message_id, Status.UNAVAILABLE, e.entity_id, reason=str(error))
                        for e in envelopes
                    ]
                self.retries += 1
                await asyncio.sleep(delay)
                delay = min(delay * 2, 1.0)
                self.refresh()

    async def _all_applied(self, causes: Sequence[str]) -> bool:
        missing = [m for m in causes if not _durable(self._recent.get(m))]
        if not missing:
            return True
        # Not in memory (e.g. applied before this router started): ask the hosts' dedupe tables.
        found: set[str] = set()
        for host in self.table.hosts + tuple(set(self.table.dedicated.values())):
            try:
                found.update(await self._client.applied(host, missing))
            except HostUnavailable:
                continue
        for message_id in found:
            self._recent.add(Outcome(message_id, Status.APPLIED))
        return all(m in found for m in missing)

    async def _after_causes(self, envelope: Envelope) -> Outcome:
        """Deliver once every cause is applied, or give up after the causality bound."""
        wait = self._settings.causality_wait_s
        deadline = time.monotonic() + wait
        while True:
            if await self._all_applied(envelope.causality):
                return (await self._deliver([envelope]))[0]
            left = deadline - time.monotonic()
            if left <= 0:
                missing = [m for m in envelope.causality if not _durable(self._recent.get(m))]
                return Outcome(
                    envelope.message_id,
                    Status.CAUSAL_VIOLATION,
                    envelope.entity_id,
                    field="metadata.causality",
                    reason=f"not applied within {wait:g} s: {', '.join(missing)}",
                )
            async with self._applied:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._applied.wait(), timeout=min(left, 0.5))


def _durable(outcome: Outcome | None) -> bool:
    return outcome is not None and outcome.durable
