"""Turn-taking around an `EntityHost`: a mailbox, per-entity bounds, batches coalesced.

Shared by the in-process host and the Ray `HostActor`, so both behave alike. Every call is a
turn run by one worker, one at a time (so an entity handles one message at a time even inside
an async actor); waiting `submit` calls are merged into one group commit; an entity with more
than `mailbox_limit` messages queued gets `busy` outcomes (backpressure) instead of more queue.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from actors.host import EntityHost
from hub.envelope import Envelope, Outcome, Status
from hub.subscriptions import Published

T = TypeVar("T")
Publish = Callable[[list[tuple[int, Published, bytes]]], Awaitable[None]]
"""Takes a turn's publications in outbox order: (outbox seq, publication, its encoding)."""


@dataclass(slots=True)
class _Job:
    envelopes: list[Envelope]
    done: asyncio.Future[list[Outcome]]


class Mailbox:
    """The single worker that owns an `EntityHost` and everything it does."""

    def __init__(
        self,
        host: EntityHost,
        publish: Publish | None = None,
        run: Callable[[Callable[[], Any]], Awaitable[Any]] | None = None,
    ) -> None:
        self.host = host
        self._publish = publish
        self._run = run or _inline
        self._jobs: asyncio.Queue[_Job | tuple[Callable[[], Any], asyncio.Future[Any]]] | None = (
            None
        )
        self._depth: Counter[str] = Counter()
        self._worker: asyncio.Task[None] | None = None
        self.max_depth = 0

    def _queue(self) -> asyncio.Queue[_Job | tuple[Callable[[], Any], asyncio.Future[Any]]]:
        loop = asyncio.get_running_loop()
        if self._jobs is None:
            self._jobs = asyncio.Queue()
            self._worker = loop.create_task(self._work())
        elif self._worker is not None and self._worker.get_loop() is not loop:
            raise RuntimeError("a Mailbox serves one event loop; this call came from another")
        return self._jobs

    def depth(self, entity_id: str) -> int:
        return self._depth[entity_id]

    async def submit(self, envelopes: Sequence[Envelope]) -> list[Outcome]:
        """Queue a batch; answers after its group commit, `busy` where a mailbox is full."""
        limit = self.host.settings.mailbox_limit
        accepted: list[Envelope] = []
        outcomes: dict[int, Outcome] = {}
        for index, envelope in enumerate(envelopes):
            if self._depth[envelope.entity_id] >= limit:
                outcomes[index] = Outcome(
                    envelope.message_id,
                    Status.BUSY,
                    envelope.entity_id,
                    reason=f"{limit} messages already queued for this entity",
                )
            else:
                self._depth[envelope.entity_id] += 1
                accepted.append(envelope)
        self.max_depth = max(self.max_depth, max(self._depth.values(), default=0))
        done: asyncio.Future[list[Outcome]] = asyncio.get_running_loop().create_future()
        if accepted:
            self._queue().put_nowait(_Job(accepted, done))
            answers = iter(await done)
        else:
            answers = iter(())
        return [outcomes[i] if i in outcomes else next(answers) for i in range(len(envelopes))]

    async def call(self, work: Callable[[], T]) -> T:
        """Run `work` (a read or maintenance on the host) as a turn of its own."""
        done: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._queue().put_nowait((work, done))
        return await done

    async def _work(self) -> None:
        queue = self._jobs
        assert queue is not None
        while True:
            first = await queue.get()
            if not isinstance(first, _Job):
                work, future = first
                try:
                    future.set_result(await self._run(work))
                except Exception as error:  # the caller gets the failure, typed
                    future.set_exception(error)
                continue
            jobs = [first]
            while not queue.empty() and len(jobs) < 64:  # merge waiting batches: one commit
                nxt = queue.get_nowait()
                if not isinstance(nxt, _Job):
                    queue.put_nowait(nxt)  # keep reads for the next turn
                    break
                jobs.append(nxt)
            await self._handle(jobs)

    async def _handle(self, jobs: list[_Job]) -> None:
        envelopes = [e for job in jobs for e in job.envelopes]
        try:
            outcomes, published, encoded = await self._run(lambda: self.host.handle(envelopes))
        except Exception as error:
            for job in jobs:
                job.done.set_exception(error)
            return
        finally:
            for envelope in envelopes:
                self._depth[envelope.entity_id] -= 1
                if not self._depth[envelope.entity_id]:
                    del self._depth[envelope.entity_id]
        start = 0
        for job in jobs:
            job.done.set_result(outcomes[start : start + len(job.envelopes)])
            start += len(job.envelopes)
        if published and self._publish is not None:
            first = self.host.outbox_seq - len(published) + 1
            await self._publish(
                [(first + i, p, b) for i, (p, b) in enumerate(zip(published, encoded, strict=True))]
            )

    async def close(self) -> None:
        """Stop the worker (after the turn in progress)."""
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker


async def _inline(work: Callable[[], Any]) -> Any:
    return work()
