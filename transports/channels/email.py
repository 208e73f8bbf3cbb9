"""Email: hub changes as mails (plain text and HTML), one thread per entity (`Message-ID`,
`In-Reply-To`, `References`); replies and new mails back to the hub over IMAP.

Outbound with `aiosmtplib` to the spec's `SMTP_HOST`/`SMTP_PORT` (`SMTP_USER`/`SMTP_PASS` when
the server wants a login), from `CHITTY_EMAIL_FROM` to `CHITTY_EMAIL_TO` (comma-separated);
`CHITTY_EMAIL_SMTP_TLS` is `starttls` (default), `tls` or `none`. Mail cannot be edited: a later
change of an entity is a new mail in its thread, marked "updated".

Inbound, when `IMAP_HOST`/`IMAP_PORT`/`IMAP_USER`/`IMAP_PASS` are set (`CHITTY_EMAIL_IMAP_TLS`:
`tls` by default, or `none`), the mailbox is read every `CHITTY_EMAIL_POLL_S` seconds with the
standard library's `imaplib` (in a worker thread; aioimaplib is GPL-3.0): a reply whose first
line is `done` completes the todo its thread is about, any other reply is added to the context
of that entity's session, a new mail creates a todo (its subject) in the sender's project
(`CHITTY_EMAIL_PROJECTS`: `alice@example.com=CHITTY-PROJ-...`, or `CHITTY_EMAIL_PROJECT` for
everyone). Senders not on `CHITTY_EMAIL_ALLOW` (addresses or `@domains`; empty: the `To`
recipients) are ignored and counted. Every handled mail is marked read.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.policy
import hashlib
import html
import imaplib
import logging
import re
from collections.abc import Mapping
from email.message import EmailMessage
from email.utils import formatdate, parseaddr
from typing import Literal

import aiosmtplib
from pydantic import BaseModel, ConfigDict, Field

from hub.adapters import (
    AdapterMessage,
    BadCredentials,
    ChannelCapabilities,
    Handler,
    Inbound,
    NativeRef,
    PermanentFailure,
    TransientFailure,
)

log = logging.getLogger(__name__)

CHANNEL = "mail"  # the one native channel: the configured recipients
CAPABILITIES = ChannelCapabilities(
    supports_threads=True,
    supports_reactions=False,
    supports_attachments=True,
    supports_rich_text=True,
    supports_voice=False,
    supports_video=False,
    max_message_length=100_000,
)
_QUOTE = re.compile(r"^(>|On .* wrote:$)")


class EmailConfig(BaseModel):
    """The email adapter's settings, from the environment (`from_env`)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    smtp_host: str
    smtp_port: int = 587
    smtp_user: str | None = None
    smtp_pass: str | None = Field(default=None, repr=False)
    smtp_tls: Literal["starttls", "tls", "none"] = "starttls"
    sender: str
    recipients: tuple[str, ...]
    imap_host: str | None = None
    imap_port: int = 993
    imap_user: str | None = None
    imap_pass: str | None = Field(default=None, repr=False)
    imap_tls: Literal["tls", "none"] = "tls"
    poll_s: float = Field(default=30.0, gt=0)
    allow: tuple[str, ...] = ()
    project: str | None = None
    projects: dict[str, str] = Field(default_factory=dict)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> EmailConfig:
        def listed(name: str) -> tuple[str, ...]:
            return tuple(a.strip().lower() for a in env.get(name, "").split(",") if a.strip())

        return cls(
            smtp_host=env["SMTP_HOST"],
            smtp_port=int(env.get("SMTP_PORT") or 587),
            smtp_user=env.get("SMTP_USER") or None,
            smtp_pass=env.get("SMTP_PASS") or None,
            smtp_tls=env.get("CHITTY_EMAIL_SMTP_TLS") or "starttls",
            sender=env["CHITTY_EMAIL_FROM"],
            recipients=listed("CHITTY_EMAIL_TO"),
            imap_host=env.get("IMAP_HOST") or None,
            imap_port=int(env.get("IMAP_PORT") or 993),
            imap_user=env.get("IMAP_USER") or None,
            imap_pass=env.get("IMAP_PASS") or None,
            imap_tls=env.get("CHITTY_EMAIL_IMAP_TLS") or "tls",
            poll_s=float(env.get("CHITTY_EMAIL_POLL_S") or 30),
            allow=listed("CHITTY_EMAIL_ALLOW"),
            project=env.get("CHITTY_EMAIL_PROJECT") or None,
            projects={
                k.lower(): v
                for k, _, v in (
                    p.partition("=") for p in env.get("CHITTY_EMAIL_PROJECTS", "").split(",")
                )
                if k.strip() and v.strip()
            },
        )

    @property
    def inbound(self) -> bool:
        return bool(self.imap_host and self.imap_user and self.imap_pass)


ENV = (
    "SMTP_HOST",
    "SMTP_PORT",
    "SMTP_USER",
    "SMTP_PASS",
    "CHITTY_EMAIL_FROM",
    "CHITTY_EMAIL_TO",
    "CHITTY_EMAIL_SMTP_TLS",
    "IMAP_HOST",
    "IMAP_PORT",
    "IMAP_USER",
    "IMAP_PASS",
    "CHITTY_EMAIL_IMAP_TLS",
    "CHITTY_EMAIL_POLL_S",
    "CHITTY_EMAIL_ALLOW",
    "CHITTY_EMAIL_PROJECT",
    "CHITTY_EMAIL_PROJECTS",
)
NEEDS = ("SMTP_HOST", "CHITTY_EMAIL_FROM", "CHITTY_EMAIL_TO")


def make(env: Mapping[str, str]) -> EmailAdapter:
    """The adapter, from the environment (`CHANNELS` names this function)."""
    return EmailAdapter(EmailConfig.from_env(env))


class EmailAdapter:
    """The hub's mailbox (see the module)."""

    id = "email"
    channel = "email"

    def __init__(self, config: EmailConfig) -> None:
        self.config = config
        self._connected = False
        self._handler: Handler | None = None
        self._poller: asyncio.Task[None] | None = None

    # -- lifecycle ----------------------------------------------------------------------------

    async def connect(self) -> None:
        """Check the SMTP server answers (and takes the login), and the mailbox if inbound."""
        smtp = self._smtp()
        try:
            await smtp.connect()
            await smtp.quit()
        except aiosmtplib.SMTPAuthenticationError as error:
            raise BadCredentials(f"the SMTP server refused the login: {error}") from None
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as error:
            raise TransientFailure(f"the SMTP server is unreachable: {error!r}") from None
        if self.config.inbound:
            await asyncio.to_thread(self._imap_check)
            if self._poller is None:
                self._poller = asyncio.create_task(self._poll_loop(), name="email-inbound")
        self._connected = True

    async def disconnect(self) -> None:
        self._connected = False
        if self._poller is not None:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poller
            self._poller = None

    def is_connected(self) -> bool:
        return self._connected

    def on_message(self, handler: Handler) -> None:
        self._handler = handler

    def get_capabilities(self) -> ChannelCapabilities:
        return CAPABILITIES

    def channel_for(self, project_id: str | None) -> str | None:
        return CHANNEL

    def project_of(self, channel: str) -> str | None:
        """The project a sender's new mail files its todo under."""
        return self.config.projects.get(channel.lower(), self.config.project)

    def threads(self) -> bool:
        return True

    # -- outbound -----------------------------------------------------------------------------

    def _smtp(self) -> aiosmtplib.SMTP:
        config = self.config
        return aiosmtplib.SMTP(
            hostname=config.smtp_host,
            port=config.smtp_port,
            username=config.smtp_user,
            password=config.smtp_pass,
            use_tls=config.smtp_tls == "tls",
            start_tls=config.smtp_tls == "starttls",
            timeout=30,
        )

    async def send_message(self, message: AdapterMessage) -> NativeRef:
        mail = compose(message, self.config)
        try:
            await aiosmtplib.send(
                mail,
                hostname=self.config.smtp_host,
                port=self.config.smtp_port,
                username=self.config.smtp_user,
                password=self.config.smtp_pass,
                use_tls=self.config.smtp_tls == "tls",
                start_tls=self.config.smtp_tls == "starttls",
                timeout=30,
            )
        except aiosmtplib.SMTPAuthenticationError as error:
            self._connected = False
            raise BadCredentials(f"the SMTP server refused the login: {error}") from None
        except aiosmtplib.SMTPRecipientsRefused as error:
            codes = [r.code for r in error.recipients]
            detail = "; ".join(f"{r.recipient}: {r.code} {r.message}" for r in error.recipients)
            if all(500 <= code < 600 for code in codes):
                raise PermanentFailure(f"SMTP refused every recipient: {detail}") from None
            raise TransientFailure(f"SMTP refused recipients for now: {detail}") from None
        except aiosmtplib.SMTPResponseException as error:
            if 500 <= error.code < 600:
                raise PermanentFailure(f"SMTP {error.code}: {error.message}") from None
            raise TransientFailure(f"SMTP {error.code}: {error.message}") from None
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as error:
            self._connected = False
            raise TransientFailure(f"the SMTP server is unreachable: {error!r}") from None
        self._connected = True
        root = message.thread.message_id if message.thread is not None else None
        return NativeRef(CHANNEL, str(mail["Message-ID"]), root)

    # -- inbound ------------------------------------------------------------------------------

    def _imap(self) -> imaplib.IMAP4:
        config = self.config
        assert config.imap_host is not None
        kind = imaplib.IMAP4_SSL if config.imap_tls == "tls" else imaplib.IMAP4
        imap = kind(config.imap_host, config.imap_port, timeout=30)
        try:
            imap.login(str(config.imap_user), str(config.imap_pass))
        except imaplib.IMAP4.error as error:
            imap.logout()
            raise BadCredentials(f"the IMAP server refused the login: {error}") from None
        return imap

    def _imap_check(self) -> None:
        try:
            self._imap().logout()
        except OSError as error:
            raise TransientFailure(f"the IMAP server is unreachable: {error!r}") from None

    async def _poll_loop(self) -> None:
        while True:
            try:
                await self.poll_once()
            except asyncio.CancelledError:
                raise
            except Exception as error:  # the server away: try again next round
                log.warning("email inbound: %r", error)
            await asyncio.sleep(self.config.poll_s)

    async def poll_once(self) -> int:
        """Read the unseen mails, hand each to the hub, mark it read; how many."""
        mails = await asyncio.to_thread(self._fetch_unseen)
        for number, raw in mails:
            event = self.inbound_of(raw)
            if event is not None and self._handler is not None:
                await self._handler(event)
            await asyncio.to_thread(self._mark_seen, number)
        return len(mails)

    def _fetch_unseen(self) -> list[tuple[str, bytes]]:
        imap = self._imap()
        try:
            imap.select("INBOX")
            _, found = imap.search(None, "UNSEEN")
            mails = []
            for number in (found[0] or b"").decode().split():
                _, parts = imap.fetch(number, "(BODY.PEEK[])")
                body = next((p[1] for p in parts if isinstance(p, tuple)), None)
                if body is not None:
                    mails.append((number, bytes(body)))
            return mails
        finally:
            imap.logout()

    def _mark_seen(self, number: str) -> None:
        imap = self._imap()
        try:
            imap.select("INBOX")
            imap.store(number, "+FLAGS", "\\Seen")
        finally:
            imap.logout()

    def allowed(self, sender: str) -> bool:
        allow = self.config.allow or self.config.recipients
        address = sender.lower()
        return any(address == a or (a.startswith("@") and address.endswith(a)) for a in allow)

    def inbound_of(self, raw: bytes) -> Inbound | None:
        """A mail as what the hub should do with it (None: not for the hub)."""
        mail = email.message_from_bytes(raw, policy=email.policy.default)
        sender = parseaddr(str(mail.get("From", "")))[1].lower()
        provider_id = str(mail.get("Message-ID") or hashlib.sha256(raw).hexdigest())
        if sender == self.config.sender.lower():
            return None  # one of the hub's own mails: no echo
        if not self.allowed(sender):
            log.info("email from %s ignored: not on the allowlist", sender)
            return Inbound("ignored", provider_id, CHANNEL, sender, text="not on the allowlist")
        body = _reply_text(mail)
        refs = [*str(mail.get("References") or "").split()]
        refs += str(mail.get("In-Reply-To") or "").split()
        ours = [r for r in refs if r.endswith("@chitty.hub>")]
        if ours:
            ref = NativeRef(CHANNEL, ours[0])  # the thread's first mail names the entity
            first = next((line.strip().lower() for line in body.splitlines() if line.strip()), "")
            kind = "complete" if first == "done" else "reply"
            return Inbound(kind, provider_id, CHANNEL, sender, ref, body)  # type: ignore[arg-type]
        subject = str(mail.get("Subject") or "").strip() or body.split("\n", 1)[0][:200]
        return Inbound("new", provider_id, sender, sender, None, subject, {"body": body})


def compose(message: AdapterMessage, config: EmailConfig) -> EmailMessage:
    """The mail for a change: plain text and HTML, threaded under the entity's first mail."""
    mail = EmailMessage()
    mail["From"] = config.sender
    mail["To"] = ", ".join(config.recipients)
    mail["Subject"] = f"[chitty] {message.title or message.chitty_id}"
    mail["Date"] = formatdate(localtime=False)
    key = f"{message.chitty_id}\x00{message.kind}\x00{message.timestamp_ms}\x00{message.text}"
    mail["Message-ID"] = f"<{hashlib.sha256(key.encode()).hexdigest()[:32]}@chitty.hub>"
    if message.thread is not None:
        mail["In-Reply-To"] = message.thread.message_id
        mail["References"] = message.thread.message_id
        mail.replace_header("Subject", f"Re: [chitty] {message.title or message.chitty_id}")
    mail["X-Chitty-Id"] = message.chitty_id
    footer = "\n\nReply `done` to complete it; any other reply is added to its session's context."
    mail.set_content(message.text + (footer if message.domain == "todos" else ""))
    lines = "".join(f"<p>{html.escape(line)}</p>" for line in message.text.split("\n"))
    mail.add_alternative(f"<html><body>{lines}</body></html>", subtype="html")
    return mail


def _reply_text(mail: EmailMessage) -> str:
    """A reply's own text: its plain part without the quoted mail below it."""
    part = mail.get_body(preferencelist=("plain",))
    text = part.get_content() if part is not None else ""
    kept = []
    for line in str(text).splitlines():
        if _QUOTE.match(line.strip()):
            break
        kept.append(line)
    return "\n".join(kept).strip()
