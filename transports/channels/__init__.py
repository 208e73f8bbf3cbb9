"""The channel adapters, one file each, and the registry that lists them.

Adding a channel is one file here (its configuration block, its adapter, a `make` that builds
it from the environment, and the webhooks its service calls, if any) plus one `AdapterSpec`
below; `chitty up` starts every configured one as its own supervised actor, and the gateway
serves and documents their webhooks at /adapters/<name>/<path>.
"""

from __future__ import annotations

from hub.adapters import AdapterSpec
from transports.channels import discord, email, slack

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
        "email",
        "channel",
        email.ENV,
        email.NEEDS,
        "transports.channels.email:make",
        "Email: a thread per entity over SMTP (aiosmtplib); replies over IMAP (imaplib)",
    ),
    AdapterSpec(
        "discord",
        "channel",
        discord.ENV,
        discord.NEEDS,
        "transports.channels.discord:make",
        "Discord: edited messages, threads, ✅ reactions and replies over the gateway (hikari)",
    ),
)
"""Every channel adapter, by name."""
