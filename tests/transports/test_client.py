"""The Python client against a live hub: REST round trip, typed errors, a stream that
reconnects and resumes, and gaps surfaced as their own event type."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from tests.transports.conftest import Gateway
from transports.client import (
    Change,
    ChittyApiError,
    ChittyClient,
    ChittyUnreachable,
    Gap,
    Position,
    Relayed,
    StreamEvent,
    Subscription,
)
from transports.gateway.ws import WS, open_connections

SESSION = "CHITTY-SESSION-1"


async def next_event(events: Subscription, timeout: float = 15.0) -> StreamEvent:
    return await asyncio.wait_for(events.__anext__(), timeout)


def test_rest_round_trip(gateway: Gateway) -> None:
    async def scenario() -> None:
        async with ChittyClient(gateway.url, token=gateway.token, node_id="laptop") as client:
            made = await client.create("todos", {"content": "draft", "sessionId": SESSION})
            todo = made.chitty_id
            assert todo.startswith("CHITTY-TODO-") and made.vector_clock == {"laptop": 1}
            assert (await client.get("todos", todo)).entity == made.entity
            between = datetime.now(UTC)
            await asyncio.sleep(0.02)
            changed = await client.update(
                "todos", todo, {"content": "final"}, vector_clock={"laptop": 2}
            )
            assert changed.seq == 2 and changed.entity["content"] == "final"
            assert (await client.state_at("todos", todo, between)).entity["content"] == "draft"
            assert [e["seq"] for e in await client.history("todos", todo)] == [1, 2]
            page = await client.list("todos", session_id=SESSION, limit=500)
            assert todo in {r.chitty_id for r in page.items}
            await client.delete("todos", todo)
            with pytest.raises(ChittyApiError) as gone:
                await client.get("todos", todo)
            assert gone.value.status == 404 and gone.value.error == "not_found"
            assert gone.value.field == "id"
            with pytest.raises(ChittyApiError) as bad:
                await client.create("todos", {"sessionId": SESSION})
            assert bad.value.status == 422 and bad.value.field == "content"

    gateway.call(scenario())


def test_an_absent_hub_is_unreachable_not_a_traceback_from_aiohttp(gateway: Gateway) -> None:
    async def scenario() -> None:
        async with ChittyClient("http://127.0.0.1:9") as client:
            with pytest.raises(ChittyUnreachable):
                await client.get("todos", "CHITTY-TODO-1")

    gateway.call(scenario())


def test_subscribe_reconnects_and_resumes_after_the_last_offset(gateway: Gateway) -> None:
    project = gateway.project("client")

    async def scenario() -> None:
        async with ChittyClient(gateway.url, token=gateway.token, node_id="watcher") as client:
            events = client.subscribe(["todos"], {"projectId": project})
            async with events:
                fields = {"sessionId": SESSION, "projectId": project}
                first = await client.create("todos", {**fields, "content": "before"})
                seen = await next_event(events)
                assert isinstance(seen, Change) and seen.entity_id == first.chitty_id
                assert seen.entity == first.entity and seen.operation == "create"
                # The hub drops every connection (as on a restart of the gateway) …
                before = open_connections(gateway.app)
                closing = asyncio.create_task(gateway.app[WS].close_all())
                while open_connections(gateway.app) >= before:
                    await asyncio.sleep(0.01)
                # … changes happen while the client is away …
                missed = [
                    await client.create("todos", {**fields, "content": f"missed {n}"})
                    for n in range(3)
                ]
                # … and the iterator reconnects and resumes after the last offset it saw.
                got = [await next_event(events) for _ in missed]
                # Each entity's changes come in order; across entities (here on two hosts
                # publishing independently) the stream's order may differ from the writes'.
                assert sorted(e.entity_id for e in got if isinstance(e, Change)) == sorted(
                    m.chitty_id for m in missed
                )
                assert events.reconnects == 1
                await closing
                live = await client.create("todos", {**fields, "content": "live"})
                after = await next_event(events)
                assert isinstance(after, Change) and after.entity_id == live.chitty_id

    gateway.call(scenario())


def test_a_gap_is_its_own_event(gateway: Gateway) -> None:
    project = gateway.project("gap")

    async def scenario() -> None:
        async with ChittyClient(gateway.url, token=gateway.token) as client:
            stale = Position("an-old-epoch", 12)
            async with client.subscribe(None, {"projectId": project}, resume=stale) as events:
                gap = await next_event(events)
                assert isinstance(gap, Gap) and gap.reason == "history"
                assert events.position == gap.position != stale
                made = await client.create(
                    "todos", {"content": "x", "sessionId": SESSION, "projectId": project}
                )
                change = await next_event(events)
                assert isinstance(change, Change) and change.entity_id == made.chitty_id

    gateway.call(scenario())


def test_a_refused_subscription_raises_a_typed_error(gateway: Gateway) -> None:
    async def scenario() -> None:
        async with ChittyClient(gateway.url, token=gateway.token) as client:
            with pytest.raises(ChittyApiError) as refused:
                async with client.subscribe(["todos"], {"projectId": "CHITTY-TODO-1"}):
                    pass
            assert refused.value.field == "filters.projectId" and refused.value.status == 422

    gateway.call(scenario())


def test_a_client_rotates_its_own_token_without_a_gap(gateway: Gateway) -> None:
    _, secret = gateway.tokens.create("rotating-client", "service")

    async def scenario() -> None:
        async with ChittyClient(gateway.url, token=secret, sign=True) as client:
            before = await client.me()
            rotated = await client.rotate_token()
            assert rotated["tokenId"] != before["tokenId"] and client.token != secret
            after = await client.me()  # signed with the successor's key
            assert after["tokenId"] == rotated["tokenId"]
            assert after["chittyId"] == before["chittyId"] and after["role"] == "service"
        async with ChittyClient(gateway.url, token=secret, sign=True) as old:
            assert (await old.me())["tokenId"] == before["tokenId"]  # the overlap window

    gateway.call(scenario())


def test_a_subscription_yields_conflicts_and_relayed_messages_as_their_own_events(
    gateway: Gateway,
) -> None:
    project = gateway.project("client conflicts")

    async def scenario() -> None:
        async with ChittyClient(gateway.url, token=gateway.token, node_id="c1") as client:
            events = client.subscribe(["todos"], {"projectId": project})
            async with events:
                fields = {"sessionId": SESSION, "projectId": project, "content": "contested"}
                made = await client.create("todos", fields)
                assert isinstance(await next_event(events), Change)
                await client.update("todos", made.chitty_id, {"status": "completed"}, base=made)
                async with ChittyClient(gateway.url, token=gateway.token, node_id="c2") as other:
                    await other.update("todos", made.chitty_id, {"status": "blocked"}, base=made)
                kinds = [type(await next_event(events)).__name__ for _ in range(3)]
                assert sorted(kinds) == ["Change", "Change", "ConflictNotice"], kinds
                await client.relay("event", "todos", made.chitty_id, {"kind": "pinged"})
                relayed = await next_event(events)
                assert isinstance(relayed, Relayed) and relayed.data == {"kind": "pinged"}

    gateway.call(scenario())
