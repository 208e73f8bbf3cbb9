"""Summaries of contexts, off the write path: gather a context's sources, summarize them in a
worker thread (cached by content hash), write the result with who produced it; and the job
that keeps each session's own context summarized as the session changes (debounced)."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

from actors.broker import Poll
from actors.linker import HUB_PRINCIPAL
from hub.catalog import Page, Query
from hub.codec import write_message
from hub.context_sources import material_of, session_context_id
from hub.domains import SyncDomain
from hub.entity import EntityView
from hub.envelope import Outcome, Status
from hub.protocol import SyncMessage
from hub.resummarize import Resummarize
from hub.subscriptions import Filter, Published
from hub.summarize import Material, Summarizer, Summary, SummaryCache

log = logging.getLogger(__name__)
NODE = "hub-summaries"
TODOS_READ = 200  # a session's todos a summary reads (the most recent are enough)


class HubReads(Protocol):
    async def get(self, entity_id: str) -> EntityView | None: ...

    async def list(self, query: Query) -> Page: ...

    async def submit(
        self, messages: Sequence[SyncMessage], with_entity: bool = False
    ) -> list[Outcome]: ...

    async def poll(
        self, epoch: str | None, after: int, wanted: Filter, limit: int = 1000, wait_s: float = 0.0
    ) -> Poll: ...


def summary_data(summary: Summary) -> dict[str, Any]:
    """The fields of a context a summary sets."""
    return {"content": summary.content(), "metadata": {"confidence": summary.confidence}}


def summary_enrichment(summary: Summary) -> dict[str, Any]:
    """The enrichment that records which summarizer (and version) produced the content."""
    return {
        "source": f"chittychat/{summary.summarizer}",
        "kind": "summary",
        "content": summary.provenance(),
        "confidence": summary.confidence,
    }


def last_hash(context: dict[str, Any]) -> str | None:
    """The content hash the context's latest summary was made from."""
    for enrichment in reversed(context.get("enrichments") or []):
        content = enrichment.get("content")
        if enrichment.get("kind") == "summary" and isinstance(content, dict):
            found = content.get("contentHash")
            return found if isinstance(found, str) else None
    return None


async def session_todos(hub: HubReads, session_id: str, visible: str | None) -> list[Any]:
    page = await hub.list(
        Query(SyncDomain.TODOS, session_id=session_id, limit=TODOS_READ, visible_to=visible)
    )
    return [dict(row.entity) for row in page.rows]


class ContextSummaries:
    """Runs the hub's summarizer on materials, in a worker thread, through a cache."""

    def __init__(self, summarizer: Summarizer, cache: SummaryCache | None = None) -> None:
        self.summarizer = summarizer
        self.cache = cache or SummaryCache()
        self.made = 0
        self.fallbacks = 0

    async def summarize(self, material: Material) -> Summary:
        summary = await asyncio.to_thread(self.cache.summarize, self.summarizer, material)
        self.made += 1
        self.fallbacks += summary.fallback_reason is not None
        return summary


class SessionFollower:
    """Follows session changes on the hub's stream from the time it starts, handing every
    poll's events (none, when a tick passed quietly) to `seen`. Runs beside the gateway; a
    failure is counted, logged and retried on the next tick."""

    def __init__(self, hub: HubReads, tick_s: float = 1.0) -> None:
        self.hub = hub
        self.tick_s = tick_s
        self.failed = 0
        self._task: asyncio.Task[None] | None = None

    async def seen(self, events: Sequence[Published]) -> None:
        raise NotImplementedError

    async def start(self) -> None:
        head = await self.hub.poll(None, 0, Filter(domains=[SyncDomain.SESSIONS]))
        name = type(self).__name__
        self._task = asyncio.create_task(self._run(head.epoch, head.offset), name=name)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self, epoch: str, offset: int) -> None:
        wanted = Filter(domains=[SyncDomain.SESSIONS])
        while True:
            try:
                answer = await self.hub.poll(epoch, offset, wanted, 500, self.tick_s)
                epoch, offset = answer.epoch, answer.offset
                await self.seen(answer.events)
            except asyncio.CancelledError:
                raise
            except Exception:  # counted, logged, and the loop carries on
                self.failed += 1
                log.exception("%s failed", type(self).__name__)
                await asyncio.sleep(self.tick_s)


class SessionSummaryJob(SessionFollower):
    """Once a session's material changed enough and went quiet (`hub.resummarize`), writes its
    summary into the session's own context (`hub.context_sources.session_context_id`), made on
    first need and owned like the session."""

    def __init__(
        self,
        hub: HubReads,
        summaries: ContextSummaries,
        schedule: Resummarize | None = None,
        tick_s: float = 1.0,
    ) -> None:
        super().__init__(hub, tick_s)
        self.summaries = summaries
        self.schedule = schedule or Resummarize()
        self.written = 0

    async def seen(self, events: Sequence[Published]) -> None:
        now = time.monotonic()
        for event in events:
            if event.kind != "deleted":
                size = material_of([dict(event.entity)]).size
                self.schedule.changed(event.entity_id, size, now)
        for session_id in self.schedule.due(now):
            await self.summarize_session(session_id)
            self.schedule.done(session_id)

    async def summarize_session(self, session_id: str) -> Outcome | None:
        """Summarize a session into its own context now; None when nothing changed."""
        view = await self.hub.get(session_id)
        if view is None or view.deleted:
            return None
        session = dict(view.entity)
        session["todos"] = await session_todos(self.hub, session_id, None)
        material = material_of([session], datetime.now(UTC))
        context_id = session_context_id(session_id)
        context = await self.hub.get(context_id)
        if context is not None and last_hash(context.entity) == material.digest():
            return None
        summary = await self.summaries.summarize(material)
        data = summary_data(summary)
        if context is None:
            data |= {
                "type": "session",
                "sources": [session_id],
                "createdBy": session.get("createdBy"),
                "sharedWith": session.get("sharedWith") or [],
            }
        key = f"{context_id}\x00{summary.content_hash}\x00{summary.summarizer}"
        message = write_message(
            message_id="sum-" + hashlib.sha256(key.encode()).hexdigest()[:40],
            node_id=NODE,
            platform="hub",
            chitty_id=HUB_PRINCIPAL,
            domain=SyncDomain.CONTEXTS.value,
            operation="create" if context is None else "update",
            entity_id=context_id,
            data=data,
            timestamp=datetime.now(UTC),  # blind: replaces what the context says now
            delta={"add": {"enrichments": [summary_enrichment(summary)]}},
        )
        [outcome] = await self.hub.submit([message])
        if outcome.status in (Status.APPLIED, Status.DUPLICATE):
            self.written += 1
        else:
            self.failed += 1
            log.warning("summary of %s not written: %s %s", session_id, outcome.status, outcome)
        return outcome
