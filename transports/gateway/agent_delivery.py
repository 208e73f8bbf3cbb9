"""Signed webhook delivery to custom agents: one task per webhook agent in the gateway process.

Each task follows the hub's stream from the agent's own per-host marks (`AgentStore`; as an
adapter does, `actors.follower`: caught up from the hosts' durable outboxes), keeps the
changes in the agent's domains and filters, and POSTs them in batches as
`{"agentId", "events": [...]}`: each event in the shape /ws sends, with an
`eventId` ("<host>:<outbox seq>:<n>") a receiver dedupes on. Delivery is at least once: the
marks move only after a 2xx, so a batch interrupted by a restart is sent again, never lost.
A 429 waits its `Retry-After`; any other refusal or an unreachable receiver is retried with
capped backoff, visible in the agent's state meanwhile. Deliveries pause while the agent's
service holds no usable token (revoked or expired), so a revoked service stops receiving data.
Agents are services, which read everything (`hub.auth.scope`): no change in its domains is
withheld from one.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
from pydantic import BaseModel, ConfigDict, Field

from actors.follower import Follower, Outboxes, Run, Stream
from hub.agent_store import AgentRecord, AgentStore
from hub.auth.signing import webhook_headers
from hub.subscriptions import Filter, Published, decode_published
from transports.gateway.ws_frames import stream_wires

log = logging.getLogger(__name__)


class DeliverySettings(BaseModel):
    """Knobs of webhook delivery (defaults suit production; tests shrink the timers)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    poll_s: float = Field(0.5, gt=0)  # how long an idle agent waits on the stream
    batch: int = Field(100, ge=1)  # entries read per batch
    timeout_s: float = Field(10.0, gt=0)  # one POST, connect to last byte
    backoff_s: float = Field(0.5, gt=0)  # the first retry's wait, doubled each failure
    max_backoff_s: float = Field(60.0, gt=0)
    max_retry_after_s: float = Field(600.0, gt=0)  # a longer Retry-After is capped


@dataclass(slots=True)
class DeliveryStatus:
    """What a webhook agent is doing now (not durable: a restart begins `idle`)."""

    state: str = "idle"  # idle / delivering / failing
    error: str | None = None  # why the last attempt failed (while failing)
    pending: int = 0  # events in the batch waiting for a 2xx
    attempts: int = 0  # failed attempts of that batch
    retry_at: float | None = None  # when the next attempt goes (epoch seconds)


def webhook_events(agent_id: str, host: str, seq: int, item: Published) -> list[dict[str, Any]]:
    """One outbox entry as the events a webhook carries: /ws's shape with an `eventId`."""
    events = []
    for n, wire in enumerate(stream_wires(item, agent_id, "")):
        event: dict[str, Any] = {"eventId": f"{host}:{seq}:{n}", **wire}
        for stream_only in ("subscription", "epoch", "offset"):  # /ws stream positions
            event.pop(stream_only, None)
        events.append(event)
    return events


def retry_after_s(header: str | None, most: float) -> float | None:
    """Seconds a `Retry-After` header asks to wait (delta seconds only), capped; None if none."""
    if header is None:
        return None
    try:
        seconds = float(header.strip())
    except ValueError:
        return None
    return min(max(seconds, 0.0), most) if seconds == seconds else None  # NaN is no answer


class WebhookAgent:
    """Delivers one webhook agent's changes, in order, at least once (see the module)."""

    def __init__(
        self,
        record: AgentRecord,
        store: AgentStore,
        outboxes: Outboxes,
        stream: Stream,
        session: aiohttp.ClientSession,
        settings: DeliverySettings,
        authorized: Callable[[str], bool],
    ) -> None:
        assert record.webhook_url is not None
        self.record = record
        self.url = record.webhook_url
        self.store = store
        self.outboxes = outboxes
        self._follower = Follower(stream, outboxes, lambda: store.marks(record.agent_id) or {})
        self.session = session
        self.settings = settings
        self.authorized = authorized
        self.wanted = Filter.model_validate(
            {"domains": list(record.domains), **dict(record.filters)}
        )
        self.status = DeliveryStatus()
        self.failures = 0  # failed attempts since the gateway started (for /metrics)
        self._healthy = "idle"  # what a state that is not failing is: delivering once it has

    def _wants(self, item: Published) -> bool:
        return item.matches(self.wanted) and item.reach.reaches(None, None)

    async def run(self) -> None:
        backoff = self.settings.backoff_s
        while True:
            try:
                await self.deliver_once(wait_s=self.settings.poll_s)
                backoff = self.settings.backoff_s
                if self.status.state == "failing":  # reading again, nothing left to send
                    self.status = DeliveryStatus(self._healthy)
            except asyncio.CancelledError:
                raise
            except Exception as error:  # a host restarting: read again shortly
                log.warning("agent %s: reading changes failed: %r", self.record.agent_id, error)
                self._failing(f"reading the hub's changes failed: {type(error).__name__}", 0)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self.settings.max_backoff_s)

    async def begin(self) -> dict[str, int]:
        """The agent's marks; a new agent's are the hosts' newest entries (it is told of
        what commits from its registration on)."""
        marks = self.store.marks(self.record.agent_id)
        if marks is None:
            heads = {host: await self.outboxes.head(host) for host in self.outboxes.hosts()}
            marks = self.store.begin(self.record.agent_id, heads)
        return marks

    async def deliver_once(self, wait_s: float = 0.0) -> int:
        """Read the next batch after the marks (waiting up to `wait_s` for one), deliver what
        the agent wants, then move the marks; how many entries were taken (0: nothing new)."""
        marks = await self.begin()
        try:
            runs = await self._follower.next(self.settings.batch, wait_s)
            return await self._deliver(marks, runs)
        except BaseException:
            self._follower.reset()  # what was not acknowledged comes again
            raise

    async def _deliver(self, marks: dict[str, int], runs: list[Run]) -> int:
        moved: dict[str, int] = {}
        per_host: list[list[dict[str, Any]]] = []
        for host, rows in runs:
            rows = [(seq, body) for seq, body in rows if seq > marks.get(host, 0)]
            if not rows:
                continue
            moved[host] = rows[-1][0]
            per_host.append(
                [
                    event
                    for seq, body in rows
                    if self._wants(item := decode_published(body))
                    for event in webhook_events(self.record.agent_id, host, seq, item)
                ]
            )
        if not moved:
            return 0
        # Interleave the hosts by commit time; each host's own order (so each entity's) stays.
        events = list(heapq.merge(*per_host, key=lambda e: str(e.get("timestamp", ""))))
        if events:
            await self._post(events)
        last = str(events[-1]["eventId"]) if events else None
        self.store.acknowledged(self.record.agent_id, moved, len(events), last)
        return sum(moved[h] - marks.get(h, 0) for h in moved)

    async def _post(self, events: list[dict[str, Any]]) -> None:
        """POST the batch until the receiver answers 2xx (the marks wait for that)."""
        body = json.dumps({"agentId": self.record.agent_id, "events": events}).encode()
        backoff = self.settings.backoff_s
        while True:
            wait, error = await self._attempt(body, backoff)
            if error is None:
                self._healthy = "delivering"
                self.status = DeliveryStatus(self._healthy)
                return
            self._failing(error, len(events), wait)
            await asyncio.sleep(wait)
            backoff = min(backoff * 2, self.settings.max_backoff_s)

    async def _attempt(self, body: bytes, backoff: float) -> tuple[float, str | None]:
        """One signed POST: (how long to wait before the next, why it failed or None)."""
        principal = self.record.principal
        if not self.authorized(principal):
            return backoff, f"the service {principal} holds no usable token; deliveries wait"
        secret = self.store.secret(self.record.agent_id)
        if secret is None:
            return backoff, "the agent has no webhook secret"
        headers = {"Content-Type": "application/json", **webhook_headers(secret, body)}
        timeout = aiohttp.ClientTimeout(total=self.settings.timeout_s)
        try:
            async with self.session.post(
                self.url, data=body, headers=headers, timeout=timeout, allow_redirects=False
            ) as response:
                status = response.status
                asked = retry_after_s(
                    response.headers.get("Retry-After"), self.settings.max_retry_after_s
                )
        except (aiohttp.ClientError, TimeoutError) as failure:
            return backoff, f"unreachable: {type(failure).__name__}: {failure}"[:300]
        if 200 <= status < 300:
            return 0.0, None
        if status == 429:
            wait = asked if asked is not None else backoff
            return wait, f"HTTP 429 from the receiver; retrying in {wait:g} s"
        return backoff, f"HTTP {status} from the receiver"

    def _failing(self, error: str, pending: int, wait: float = 0.0) -> None:
        self.failures += 1
        attempts = self.status.attempts + 1 if self.status.state == "failing" else 1
        self.status = DeliveryStatus("failing", error, pending, attempts, time.time() + wait)


class AgentDeliveries:
    """Every webhook agent's delivery task, started and stopped with the gateway."""

    def __init__(
        self,
        store: AgentStore,
        outboxes: Outboxes,
        stream: Stream,
        settings: DeliverySettings,
        authorized: Callable[[str], bool],
    ) -> None:
        self.store = store
        self.outboxes = outboxes
        self.stream = stream
        self.settings = settings
        self.authorized = authorized
        self._session: aiohttp.ClientSession | None = None
        self._running: dict[str, tuple[WebhookAgent, asyncio.Task[None]]] = {}

    async def start(self) -> None:
        self._session = aiohttp.ClientSession()
        for record in self.store.list():
            await self.refresh(record)

    async def stop(self) -> None:
        for agent_id in list(self._running):
            await self._cancel(agent_id)
        if self._session is not None:
            await self._session.close()

    async def refresh(self, record: AgentRecord) -> None:
        """(Re)start the agent's delivery after a registration or an update; a new agent's
        marks are taken before this returns (so its registration's answer comes first)."""
        self.forget(record.agent_id)
        if record.webhook_url is None or self._session is None:
            return
        agent = WebhookAgent(
            record,
            self.store,
            self.outboxes,
            self.stream,
            self._session,
            self.settings,
            self.authorized,
        )
        await agent.begin()
        task = asyncio.create_task(agent.run(), name=f"agent-{record.agent_id}")
        self._running[record.agent_id] = (agent, task)

    def forget(self, agent_id: str) -> None:
        """Stop the agent's delivery (it was removed or is being restarted)."""
        running = self._running.pop(agent_id, None)
        if running is not None:
            running[1].cancel()

    async def _cancel(self, agent_id: str) -> None:
        running = self._running.pop(agent_id, None)
        if running is not None:
            running[1].cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await running[1]

    def running(self) -> list[WebhookAgent]:
        """The webhook agents being delivered to now."""
        return [agent for agent, _ in self._running.values()]

    def status(self, agent_id: str) -> DeliveryStatus | None:
        running = self._running.get(agent_id)
        return running[0].status if running is not None else None
