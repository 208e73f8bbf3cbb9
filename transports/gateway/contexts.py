"""Context intelligence at the gateway: the hub's summarizer, `POST /contexts/{id}/enrich`
with no body (summarize the context's sources now), and the session summary job beside it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from actors.summaries import (
    ContextSummaries,
    SessionFollower,
    SessionSummaryJob,
    session_todos,
    summary_data,
    summary_enrichment,
)
from hub.context_sources import material_of
from hub.domains import SyncDomain
from hub.models.base import WireModel
from hub.resummarize import Resummarize
from hub.settings import HubSettings
from transports.gateway.auth import Scope, visible_to
from transports.gateway.entities import written_body
from transports.gateway.hub_api import Hub, Writer
from transports.models.summarizers import summarizer_from


class SummaryProvenance(WireModel):
    """Which summarizer (and version) wrote a context's content, from which content hash;
    `fallbackReason` when the configured model failed and the offline one answered."""

    summarizer: str
    version: str
    content_hash: str
    fallback_reason: str | None = None


SUMMARIES = web.AppKey("summaries", ContextSummaries)
SOURCES_READ = 50  # a context's sources a summary reads


def add_context_intelligence(app: web.Application, hub: Hub, settings: HubSettings) -> None:
    """The summarizer the adapters' variables choose (`summarizer_from`), and unless turned off
    the job that summarizes sessions as they change, started and stopped with the app."""
    summaries = ContextSummaries(summarizer_from(settings.adapter_env))
    app[SUMMARIES] = summaries
    if not settings.summarize_sessions:
        return
    schedule = Resummarize(settings.summary_min_chars, settings.summary_quiet_s)
    run_beside(app, SessionSummaryJob(hub, summaries, schedule))


def run_beside(app: web.Application, job: SessionFollower) -> None:
    """Start `job` with the app and stop it with the app."""

    async def start(_: web.Application) -> None:
        await job.start()

    async def stop(_: web.Application) -> None:
        await job.stop()

    app.on_startup.append(start)
    app.on_cleanup.append(stop)


async def summarize_context(
    request: web.Request, hub: Hub, writer: Writer, scope: Scope, context_id: str
) -> dict[str, Any]:
    """Summarize the context's sources the caller may read (sessions with their messages,
    files and todos; todos; topics; other contexts) and write the content, recording which
    summarizer and version made it; the answer as any write's, with the `summary` provenance."""
    view = await scope.check_read_of(context_id, f"context {context_id}", "contexts")
    visible = visible_to(request)
    sources = []
    for source_id in [*(view.entity.get("sources") or [])][:SOURCES_READ]:
        source = await hub.get(str(source_id))
        if source is None or source.deleted:
            continue
        if not await scope.readable(source.domain, source.entity):
            continue
        entity = dict(source.entity)
        if source.domain == SyncDomain.SESSIONS.value:
            entity["todos"] = await session_todos(hub, source.entity_id, visible)
        sources.append(entity)
    if not sources:  # a context with no sources: summarize what it says itself
        sources.append(dict(view.entity))
    summary = await request.app[SUMMARIES].summarize(material_of(sources, datetime.now(UTC)))
    message = writer.message(
        request,
        SyncDomain.CONTEXTS,
        "update",
        context_id,
        summary_data(summary),
        delta={"add": {"enrichments": [summary_enrichment(summary)]}},
    )
    outcome, first = await writer.write(message)
    return {**written_body(outcome, first), "summary": summary.provenance()}
