"""The email adapter in process: `aiosmtplib` against a real SMTP server (aiosmtpd) and the
standard library's `imaplib` against a real IMAP server (pymap), both on loopback ports; the
real adapter store; the in-process hub."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import pytest

from actors.adapter import AdapterRunner
from actors.local import LocalHub
from hub.adapter_store import AdapterStore
from hub.adapters import AdapterState
from hub.catalog import Query
from hub.domains import SyncDomain
from hub.envelope import Envelope, Status
from hub.store import MemoryStore
from tests.actors.conftest import settings_for
from tests.emulators.mail import ImapServer, SmtpServer, new_mail, reply
from tests.messages import create_todo, project_and_session, sync_message
from transports.channels.email import EmailAdapter, EmailConfig

SESSION = "CHITTY-SESSION-MAIL1"
PROJECT = "CHITTY-PROJ-MAIL1"


@pytest.fixture(scope="module")
def imap() -> Iterator[ImapServer]:
    server = ImapServer().start()
    yield server
    server.stop()


class World:
    def __init__(self, tmp: Path, smtp: SmtpServer, imap: ImapServer) -> None:
        self.smtp, self.imap = smtp, imap
        self.hub = LocalHub(MemoryStore(), settings_for(tmp), tmp / "shards.json")
        config = EmailConfig(
            smtp_host="127.0.0.1",
            smtp_port=smtp.port,
            smtp_user="hub",
            smtp_pass="smtp-pass",
            smtp_tls="none",
            sender="hub@example.com",
            recipients=("alice@example.com",),
            imap_host="127.0.0.1",
            imap_port=imap.port,
            imap_user=imap.user,
            imap_pass=imap.password,
            imap_tls="none",
            poll_s=3600,  # the tests poll by hand
            projects={"alice@example.com": PROJECT},
        )
        self.adapter = EmailAdapter(config)
        store = AdapterStore(tmp / "adapters" / "email")
        self.runner = AdapterRunner(
            "email", self.adapter, store, self.hub, self.hub.outboxes(), self.hub.stream()
        )

    async def pump(self) -> None:
        await self.runner.follow_once()
        await self.runner.deliver_once()

    async def write(self, *messages: object) -> None:
        outcomes = await self.hub.route([Envelope.of(m) for m in messages])  # type: ignore[arg-type]
        assert all(o.status is Status.APPLIED for o in outcomes), outcomes


def in_world(body: Callable[[World], Awaitable[None]]) -> Callable[[Path, ImapServer], None]:
    def test(tmp_path: Path, imap: ImapServer) -> None:
        async def scenario() -> None:
            smtp = SmtpServer("hub", "smtp-pass").start()
            world = World(tmp_path, smtp, imap)
            try:
                await world.runner.connect()
                await world.write(*project_and_session(PROJECT, SESSION))
                await body(world)
            finally:
                await world.runner.stop()
                world.runner.store.close()
                smtp.stop()

        asyncio.run(asyncio.wait_for(scenario(), 60))

    test.__name__ = body.__name__
    return test


@in_world
async def test_one_thread_per_entity_with_text_and_html(world: World) -> None:
    todo = "CHITTY-TODO-MAIL1"
    await world.write(create_todo(todo, "Mail me", SESSION, data={"projectId": PROJECT}))
    await world.pump()
    [first] = world.smtp.about(todo)
    assert first.recipients == ["alice@example.com"] and "Mail me" in str(first.mail["Subject"])
    assert first.mail.get_body(preferencelist=("html",)) is not None
    assert "Reply `done` to complete it" in first.text
    await world.write(sync_message(todo, data={"status": "in_progress"}, clock={"tester": 2}))
    await world.pump()
    first_mail, update = world.smtp.about(todo)
    assert update.mail["In-Reply-To"] == first_mail.mail["Message-ID"]  # the same thread
    assert update.text.startswith("updated: ")  # mail cannot be edited: marked as an update


@in_world
async def test_a_done_reply_completes_and_another_reply_joins_the_context(world: World) -> None:
    todo = "CHITTY-TODO-MAIL2"
    await world.write(create_todo(todo, "Reply to me", SESSION, data={"projectId": PROJECT}))
    await world.pump()
    [sent] = world.smtp.about(todo)
    world.imap.deliver(reply(sent, "we should test the retry path"))
    world.imap.deliver(reply(sent, "Done"))
    world.imap.deliver(reply(sent, "done", sender="mallory@elsewhere.example"))
    assert await world.adapter.poll_once() == 3
    assert world.imap.unseen() == 0  # every handled mail is marked read
    view = await world.hub.get(todo)
    assert view is not None and view.entity["status"] == "completed" and view.seq == 2
    session = await world.hub.get(SESSION)
    assert session is not None
    notes = [m["content"] for m in session.entity["context"]["messages"]]  # type: ignore[index,union-attr]
    assert notes == ["we should test the retry path"]  # the quoted mail below it left out
    status = world.runner.status()
    assert status.received == 2 and status.ignored == 1  # mallory is not on the allowlist


@in_world
async def test_a_new_mail_creates_a_todo_in_the_sender_s_project(world: World) -> None:
    world.imap.deliver(new_mail("Renew the certificate", "before Friday, please"))
    assert await world.adapter.poll_once() == 1
    found = (await world.hub.list(Query(SyncDomain.TODOS, project_id=PROJECT))).rows
    assert [row.entity["content"] for row in found] == ["Renew the certificate"]
    session = await world.hub.get(str(found[0].entity["sessionId"]))
    assert session is not None and session.entity["platform"] == "email"
    notes = session.entity["context"]["messages"]  # type: ignore[index,call-overload]
    assert [m["content"] for m in notes] == ["before Friday, please"]


@in_world
async def test_a_refusing_server_fails_visibly_and_an_outage_queues(world: World) -> None:
    world.smtp.refuse = True
    await world.pump()
    assert world.runner.status().failed == 2 and "550" in world.runner.store.failed()[0].reason
    world.smtp.refuse = False
    world.runner.store.retry()
    world.smtp.down()
    await world.runner.deliver_once()
    assert world.runner.state is AdapterState.TRANSIENT_DISCONNECT
    assert world.runner.store.pending() == 2
    world.smtp.start()
    for _ in range(100):
        if world.runner.state is AdapterState.CONNECTED:
            break
        await asyncio.sleep(0.05)
    await world.runner.deliver_once()
    assert world.runner.store.pending() == 0 and len(world.smtp.mails) == 2


def test_wrong_smtp_credentials_are_bad_credentials(tmp_path: Path, imap: ImapServer) -> None:
    async def scenario() -> None:
        smtp = SmtpServer("hub", "the-right-one").start()
        world = World(tmp_path, smtp, imap)
        try:
            await world.runner.connect()
            assert world.runner.state is AdapterState.BAD_CREDENTIALS
        finally:
            world.runner.store.close()
            smtp.stop()

    asyncio.run(scenario())
