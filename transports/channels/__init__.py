"""The channel adapters, one file each, and the registry that lists them.

Adding a channel is one file here (its configuration block, its adapter, a `make` that builds
it from the environment, and the webhooks its service calls, if any) plus one `AdapterSpec`
below; `chitty up` starts every configured one as its own supervised actor, and the gateway
serves and documents their webhooks at /adapters/<name>/<path>.
"""

from __future__ import annotations

from hub.adapters import AdapterSpec
from transports.channels import discord, email, imessage, slack, sms, whatsapp

CHANNELS: tuple[AdapterSpec, ...] = (
    AdapterSpec(
        "slack",
        "channel",
        slack.ENV,
        slack.NEEDS,
        "transports.channels.slack:make",
        "Slack: Block Kit messages, reactions, threads, /chitty (slack_sdk)",
        slack.HOOKS,
        "transports.channels.slack:webhooks",
        ("SLACK_SIGNING_SECRET",),
    ),
    AdapterSpec(
        "discord",
        "channel",
        discord.ENV,
        discord.NEEDS,
        "transports.channels.discord:make",
        "Discord: edited messages, threads, ✅ reactions and replies over the gateway (hikari)",
    ),
    AdapterSpec(
        "email",
        "channel",
        email.ENV,
        email.NEEDS,
        "transports.channels.email:make",
        "Email: a thread per entity over SMTP (aiosmtplib); replies over IMAP (imaplib)",
    ),
    AdapterSpec(
        "sms",
        "channel",
        sms.ENV,
        sms.NEEDS,
        "transports.channels.sms:make",
        "SMS: short texts to CHITTY_SMS_TO; LIST / ADD / DONE replies, STOP honoured (twilio)",
        sms.HOOKS,
        "transports.channels.sms:webhooks",
    ),
    AdapterSpec(
        "whatsapp",
        "channel",
        whatsapp.ENV,
        whatsapp.NEEDS,
        "transports.channels.whatsapp:make",
        "WhatsApp Cloud API: texts in the 24-hour window, else a template; ✅, replies, "
        "/chitty and delivery statuses over signed webhooks (aiohttp)",
        whatsapp.HOOKS,
        "transports.channels.whatsapp:webhooks",
        ("WHATSAPP_APP_SECRET", "WHATSAPP_VERIFY_TOKEN"),
    ),
    AdapterSpec(
        "imessage",
        "channel",
        imessage.ENV,
        imessage.NEEDS,
        "transports.channels.imessage:make",
        "iMessage: through a BlueBubbles server (REST, webhook), or AppleScript on macOS",
        imessage.HOOKS,
        "transports.channels.imessage:webhooks",
        ("CHITTY_IMESSAGE_WEBHOOK_SECRET",),
        imessage.DIRECT_NEEDS,
    ),
)
"""Every channel adapter, by name."""
