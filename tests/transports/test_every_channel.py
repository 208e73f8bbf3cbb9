"""Every channel at once, as the issue's "done when" puts it: a hub started by `chitty up`,
configured only by environment variables pointing at local emulators of every service (each
adapter speaking to its emulator with the service's own client library), a todo created over
REST reaches every channel; then the hub is killed with SIGKILL right after one more todo,
started again, and that todo still reaches every channel (nothing lost); and a reaction or a
reply on each channel completes the todo made for it, editing in place where a channel can.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.emulators import Background
from tests.emulators.bluebubbles import CHAT, BlueBubblesEmulator, tapback
from tests.emulators.discord import DiscordEmulator
from tests.emulators.mail import ImapServer, SmtpServer, reply
from tests.emulators.slack import SlackEmulator, reaction_added
from tests.emulators.twilio import TwilioEmulator
from tests.emulators.whatsapp import WhatsAppEmulator
from tests.transports.test_restart import call, crash, free_port, launch, start
from tests.waiting import until

pytestmark = pytest.mark.slow

PHONE = "+14155552671"  # the SMS recipient
WA = "15551230001"  # the WhatsApp recipient
PUBLIC = "https://hub.example.com"  # where Twilio believes the hub is (it signs for it)
SECRET = "imessage-webhook-secret"
CHANNELS = ("slack", "discord", "email", "sms", "whatsapp", "imessage")


@dataclass
class Services:
    background: Background
    slack: SlackEmulator
    discord: DiscordEmulator
    smtp: SmtpServer
    imap: ImapServer
    twilio: TwilioEmulator
    wa: WhatsAppEmulator
    bb: BlueBubblesEmulator

    def env(self) -> dict[str, str]:
        return {
            "SLACK_BOT_TOKEN": self.slack.token,
            "SLACK_SIGNING_SECRET": self.slack.signing_secret,
            "CHITTY_SLACK_CHANNEL": "CTEAM",
            "CHITTY_SLACK_API_URL": self.slack.api_url,
            "DISCORD_BOT_TOKEN": self.discord.token,
            "CHITTY_DISCORD_CHANNEL": "900000000000000001",
            "CHITTY_DISCORD_API_URL": self.discord.api_url,
            "SMTP_HOST": "127.0.0.1",
            "SMTP_PORT": str(self.smtp.port),
            "CHITTY_EMAIL_SMTP_TLS": "none",
            "CHITTY_EMAIL_FROM": "hub@example.com",
            "CHITTY_EMAIL_TO": "alice@example.com",
            "IMAP_HOST": "127.0.0.1",
            "IMAP_PORT": str(self.imap.port),
            "IMAP_USER": self.imap.user,
            "IMAP_PASS": self.imap.password,
            "CHITTY_EMAIL_IMAP_TLS": "none",
            "CHITTY_EMAIL_POLL_S": "0.5",
            **self.twilio.env(PHONE, PUBLIC),
            "WHATSAPP_TOKEN": self.wa.token,
            "WHATSAPP_PHONE_NUMBER_ID": self.wa.phone_number_id,
            "WHATSAPP_APP_SECRET": self.wa.app_secret,
            "WHATSAPP_VERIFY_TOKEN": "verify-me",
            "CHITTY_WHATSAPP_TO": "+" + WA,
            "CHITTY_WHATSAPP_TEMPLATE": "chitty_update",
            "CHITTY_WHATSAPP_MIN_GAP_S": "0.05",
            "CHITTY_WHATSAPP_API_URL": self.wa.api_url,
            "CHITTY_BLUEBUBBLES_URL": self.bb.url,
            "CHITTY_BLUEBUBBLES_PASSWORD": self.bb.password,
            "CHITTY_IMESSAGE_CHAT": CHAT.split(";")[-1],
            "CHITTY_IMESSAGE_WEBHOOK_SECRET": SECRET,
        }

    def shown(self, channel: str, content: str, todo: str) -> Any:
        """What shows the todo on `channel` (its first post), or None while nothing does."""
        if channel == "slack":
            return next((m for m in self.slack.live("CTEAM") if content in m.text), None)
        if channel == "discord":
            return next((m for m in self.discord.live() if content in m.content), None)
        if channel == "email":
            return next(iter(self.smtp.about(todo)), None)
        if channel == "sms":
            return next((t for t in self.twilio.to(PHONE) if content in t), None)
        if channel == "whatsapp":
            return next((s for s in self.wa.sent if content in s.text), None)
        return next((m for m in self.bb.top() if content in m.text), None)

    def complete(self, channel: str, hub: str, shown: Any, todo: str) -> None:
        """Do on `channel` what completes the todo `shown` shows, as a person would."""
        if channel == "slack":
            event = reaction_added(shown)
            status, _ = self.background.call(
                self.slack.event(f"{hub}/adapters/slack/events", event)
            )
        elif channel == "discord":
            self.background.call(self.discord.react(shown))  # over the gateway socket
            return
        elif channel == "email":
            self.imap.deliver(reply(shown, "done"))
            return  # read by the adapter's next poll
        elif channel == "sms":
            url = f"{hub}/adapters/sms/inbound"
            sms = self.twilio.inbound(
                url, PHONE, f"DONE {todo}", public_url=PUBLIC + "/adapters/sms/inbound"
            )
            status, _, _ = self.background.call(sms)
        elif channel == "whatsapp":
            reaction = self.wa.reaction(WA, shown.wamid)
            status, _ = self.background.call(
                self.wa.post(f"{hub}/adapters/whatsapp/webhook", reaction)
            )
        else:
            hook = f"{hub}/adapters/imessage/webhook"
            guid = self.bb.new_guid()
            status, _ = self.background.call(self.bb.webhook(hook, tapback(shown, guid), SECRET))
        assert status == 200, (channel, status)


@pytest.fixture
def services() -> Iterator[Services]:
    background = Background()
    made = Services(
        background,
        background.call(SlackEmulator().start()),
        background.call(DiscordEmulator().start()),
        SmtpServer().start(),
        ImapServer().start(),
        background.call(TwilioEmulator().start()),
        background.call(WhatsAppEmulator().start()),
        background.call(BlueBubblesEmulator().start()),
    )
    yield made
    for emulator in (made.slack, made.discord, made.twilio, made.wa, made.bb):
        background.call(emulator.stop())
    made.smtp.stop()
    made.imap.stop()
    background.close()


def test_a_todo_reaches_every_channel_survives_a_sigkill_and_each_channel_completes_one(
    services: Services, tmp_path: Path
) -> None:
    data, port = tmp_path / "data", free_port()
    env = services.env()
    hub = start(data, port, launch(data, port, f"every-{port}", "--hosts", "2", env=env))
    base = f"http://127.0.0.1:{port}"
    try:

        def connected() -> bool:
            adapters = call(f"{base}/api/v1/adapters")[1]["adapters"]
            states = {a["name"]: a["state"] for a in adapters}
            return all(states.get(name) == "connected" for name in CHANNELS)

        until(connected, 30, "every adapter to connect")
        status, body = call(
            f"{base}/api/v1/sessions", "POST", {"sessionId": "every", "platform": "cli"}
        )
        assert status == 201, body
        session = body["entity"]["chittyId"]

        def todo(content: str) -> str:
            status, body = call(
                f"{base}/api/v1/todos", "POST", {"content": content, "sessionId": session}
            )
            assert status == 201, body
            return str(body["entity"]["chittyId"])

        todos = {channel: todo(f"Done from {channel}") for channel in CHANNELS}

        def everywhere(content: str, todo_id: str) -> dict[str, Any]:
            """What shows the todo on each channel, once every one does."""
            return {
                channel: until(
                    lambda c=channel: services.shown(c, content, todo_id),
                    30,
                    f"{content} on {channel}",
                )
                for channel in CHANNELS
            }

        shown = {
            channel: everywhere(f"Done from {channel}", todos[channel]) for channel in CHANNELS
        }
        firsts = {channel: shown[channel][channel] for channel in CHANNELS}

        last = todo("Made just before the crash")
        crash(hub)
        hub = start(data, port, launch(data, port, f"every-{port}", "--hosts", "2", env=env))
        until(connected, 30, "every adapter to connect again")
        everywhere("Made just before the crash", last)  # nothing lost

        for channel in CHANNELS:
            services.complete(channel, base, firsts[channel], todos[channel])
        for channel, todo_id in todos.items():
            until(
                lambda t=todo_id: (
                    call(f"{base}/api/v1/todos/{t}")[1]["entity"]["status"] == "completed"
                ),
                30,
                f"the todo completed from {channel}",
            )
        # Where the channel edits, the message that announced the todo now says so.
        until(lambda: firsts["slack"].text.startswith("✅"), 30, "the Slack message edited")
        until(lambda: firsts["discord"].content.startswith("✅"), 30, "the Discord message edited")
        adapters = call(f"{base}/api/v1/adapters")[1]["adapters"]
        for adapter in adapters:
            if adapter["name"] in CHANNELS:
                assert adapter["failed"] == 0 and adapter["received"] >= 1, adapter
    finally:
        crash(hub)
