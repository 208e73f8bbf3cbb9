"""`Linker`: keeps each project's `sessions` in step with the sessions that name it.

A session names its project (`projectId`); the project lists its sessions. Clients write the
first, the hub the second: the catalog notes, in the same transaction as the session's row,
that the project owes a write (`hub.catalog.Link`), and the linker delivers those writes
through a router in the order they arose, as the hub's own messages with ids derived from the
note (a redelivery after a crash is a duplicate, applied once). A note is forgotten only once
its write is durable or refused for good, so a restart never loses one.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from hub.catalog import Catalog, Link
from hub.codec import write_message
from hub.domains import SyncDomain
from hub.envelope import Envelope, Outcome, Status

log = logging.getLogger(__name__)

Route = Callable[[list[Envelope]], Awaitable[list[Outcome]]]
HUB_PRINCIPAL = "CHITTY-USER-HUB"  # the hub itself, as the author of what it maintains
NODE = "hub-links"
_FINAL = frozenset({Status.APPLIED, Status.DUPLICATE, Status.IGNORED, Status.REJECTED})


def link_message(link: Link, now: datetime) -> Envelope:
    """The project write a link note stands for (a blind add or remove of one session)."""
    verb = "add" if link.add else "remove"
    message = write_message(
        message_id="link-" + hashlib.sha256(b"link\x00" + link.key).hexdigest()[:40],
        node_id=NODE,
        platform="hub",
        chitty_id=HUB_PRINCIPAL,
        domain=SyncDomain.PROJECTS.value,
        operation="update",
        entity_id=link.project,
        data={},
        timestamp=now,
        delta={verb: {"sessions": [link.session]}},
    )
    return Envelope.of(message)


class Linker:
    """Delivers a catalog's link notes through `route`, oldest first."""

    def __init__(self, catalog: Catalog, route: Route) -> None:
        self.catalog = catalog
        self.route = route
        self.delivered = 0
        self.refused = 0
        self._lock = asyncio.Lock()  # one delivery at a time keeps the notes in order

    async def deliver(self) -> int:
        """Send every pending note; stop at the first that did not become final (it is sent
        again next time, after which the rest follow). Returns how many were settled."""
        async with self._lock:
            return await self._deliver()

    async def _deliver(self) -> int:
        settled = 0
        while links := self.catalog.links():
            now = datetime.now(UTC)
            outcomes = await self.route([link_message(link, now) for link in links])
            done = []
            for link, outcome in zip(links, outcomes, strict=True):
                if outcome.status not in _FINAL:
                    break
                if outcome.status is Status.REJECTED:
                    # The project is gone (or never was): nothing left to keep in step.
                    self.refused += 1
                    log.info("link of %s to %s refused: %s", link.session, link.project, outcome)
                else:
                    self.delivered += 1
                done.append(link.key)
            self.catalog.linked(done)
            settled += len(done)
            if len(done) < len(links):
                break
        return settled
