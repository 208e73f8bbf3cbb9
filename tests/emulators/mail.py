"""Local mail servers on loopback ports, for `aiosmtplib` and `imaplib` pointed at them.

`SmtpServer` is a real SMTP server (`aiosmtpd`) that keeps what it receives, optionally asks
for a login, and can be told to refuse recipients (a 5xx) or to go away. `ImapServer` is a
real IMAP server (`pymap`, its in-memory backend, in a subprocess) with one mailbox the tests
drop replies into with `deliver`.
"""

from __future__ import annotations

import email
import email.policy
import imaplib
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword, Session


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Received:
    """One mail as the SMTP server took it."""

    sender: str
    recipients: list[str]
    mail: EmailMessage
    received: float  # time.time() when it arrived

    @property
    def text(self) -> str:
        part = self.mail.get_body(preferencelist=("plain",))
        return str(part.get_content()) if part is not None else ""


class _Handler:
    def __init__(self, server: SmtpServer) -> None:
        self.server = server

    async def handle_RCPT(
        self, server: Any, session: Session, envelope: Envelope, address: str, options: Any
    ) -> str:
        if self.server.refuse:
            return "550 5.1.1 mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or b""
        mail = email.message_from_bytes(content, policy=email.policy.default)
        assert isinstance(mail, EmailMessage)
        self.server.mails.append(
            Received(str(envelope.mail_from), list(envelope.rcpt_tos), mail, time.time())
        )
        return "250 Message accepted for delivery"


class SmtpServer:
    """An SMTP server on a loopback port (see the module)."""

    def __init__(self, user: str | None = None, password: str | None = None) -> None:
        self.user, self.password = user, password
        self.mails: list[Received] = []
        self.refuse = False
        self.port = free_port()
        self._controller: Controller | None = None

    def _authenticate(
        self, server: Any, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        ok = isinstance(data, LoginPassword) and (
            data.login.decode(),
            data.password.decode(),
        ) == (self.user, self.password)
        return AuthResult(success=ok, handled=False)  # the server answers 535 itself

    def start(self) -> SmtpServer:
        options: dict[str, Any] = {}
        if self.user is not None:
            options = {
                "authenticator": self._authenticate,
                "auth_required": True,
                "auth_require_tls": False,  # loopback, in a test: no certificate to offer
            }
        self._controller = Controller(
            _Handler(self), hostname="127.0.0.1", port=self.port, **options
        )
        self._controller.start()
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def down(self) -> None:
        """Stop listening (the port refuses connections) until `start` again."""
        self.stop()

    def about(self, chitty_id: str) -> list[Received]:
        return [m for m in self.mails if m.mail.get("X-Chitty-Id") == chitty_id]


class ImapServer:
    """An IMAP server (pymap, in memory) on a loopback port with one user's mailbox."""

    def __init__(self, user: str = "hub", password: str = "imap-pass") -> None:
        self.user, self.password = user, password
        self.port = free_port()
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> ImapServer:
        pymap = Path(sys.executable).with_name("pymap")
        command = [str(pymap)] if pymap.exists() else [sys.executable, "-m", "pymap"]
        self._process = subprocess.Popen(
            [
                *command,
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--no-tls",
                "--no-service",
                "admin",
                "dict",
                "--demo-user",
                self.user,
                "--demo-password",
                self.password,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 20
        while True:
            try:
                self._login().logout()
                return self
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            self._process.wait(10)

    def _login(self) -> imaplib.IMAP4:
        imap = imaplib.IMAP4("127.0.0.1", self.port, timeout=10)
        imap.login(self.user, self.password)
        return imap

    def deliver(self, mail: EmailMessage) -> None:
        """Put a mail in the mailbox, unread (as if someone sent it)."""
        imap = self._login()
        try:
            imap.append("INBOX", None, imaplib.Time2Internaldate(time.time()), mail.as_bytes())
        finally:
            imap.logout()

    def unseen(self) -> int:
        imap = self._login()
        try:
            imap.select("INBOX")
            _, found = imap.search(None, "UNSEEN")
            return len((found[0] or b"").split())
        finally:
            imap.logout()


def reply(to: Received, text: str, sender: str = "alice@example.com") -> EmailMessage:
    """A reply to a mail the hub sent, quoting it below the reply, as mail clients do."""
    mail = EmailMessage()
    mail["From"] = sender
    mail["To"] = to.sender
    mail["Subject"] = "Re: " + str(to.mail["Subject"])
    mail["Message-ID"] = f"<reply-{time.monotonic_ns()}@example.com>"
    mail["In-Reply-To"] = str(to.mail["Message-ID"])
    mail["References"] = str(to.mail.get("References") or to.mail["Message-ID"])
    quoted = "\n".join(f"> {line}" for line in to.text.splitlines())
    mail.set_content(f"{text}\n\nOn a day, the hub wrote:\n{quoted}\n")
    return mail


def new_mail(subject: str, body: str, sender: str = "alice@example.com") -> EmailMessage:
    mail = EmailMessage()
    mail["From"] = sender
    mail["To"] = "hub@example.com"
    mail["Subject"] = subject
    mail["Message-ID"] = f"<new-{time.monotonic_ns()}@example.com>"
    mail.set_content(body)
    return mail
