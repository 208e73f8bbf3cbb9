"""Slack, with the official `slack_sdk` (async): hub changes as Block Kit messages that later
changes edit, conflicts in the entity's thread; reactions, thread replies and `/chitty`
slash commands back to the hub, over the Events API (signed webhooks on the gateway) and,
with an app token, Socket Mode (no public URL needed).

Configured by the spec's `SLACK_BOT_TOKEN` and `SLACK_SIGNING_SECRET`, plus `SLACK_APP_TOKEN`
(Socket Mode), `CHITTY_SLACK_CHANNEL` (where changes go by default), `CHITTY_SLACK_CHANNELS`
(per project: `CHITTY-PROJ-A=C123,CHITTY-PROJ-B=C456`), `CHITTY_SLACK_USERS` (Slack users as hub
users: `U123=CHITTY-USER-...`; with it a channel's membership limits what it is shown and who
may act, `KnowsAudience`) and `CHITTY_SLACK_API_URL` (the Web API base URL: Slack's own by
default; a proxy or a test emulator otherwise).
"""

from __future__ import annotations

import json
import logging
import time
import urllib.parse
from collections.abc import Collection, Mapping
from typing import Any

import aiohttp
from pydantic import BaseModel, ConfigDict, Field
from slack_sdk.errors import SlackApiError
from slack_sdk.signature import SignatureVerifier
from slack_sdk.socket_mode.aiohttp import SocketModeClient
from slack_sdk.socket_mode.request import SocketModeRequest
from slack_sdk.socket_mode.response import SocketModeResponse
from slack_sdk.web.async_client import AsyncWebClient

from hub.adapters import (
    UNMAPPED,
    AdapterMessage,
    BadCredentials,
    ChannelCapabilities,
    ChannelRoutes,
    Handler,
    Hook,
    HookAnswer,
    HookRefused,
    HookRequest,
    Inbound,
    NativeRef,
    PermanentFailure,
    RateLimited,
    Received,
    TransientFailure,
    pairs,
)
from hub.render import status_of

log = logging.getLogger(__name__)

SLACK_API = "https://slack.com/api/"
DONE_REACTION = "white_check_mark"  # ✅ on a todo's message completes it
_CREDENTIALS = frozenset(
    {"invalid_auth", "not_authed", "account_inactive", "token_revoked", "token_expired"}
)
_FOR_GOOD = frozenset(
    {
        "channel_not_found",
        "not_in_channel",
        "is_archived",
        "msg_too_long",
        "no_text",
        "invalid_blocks",
        "restricted_action",
    }
)
CAPABILITIES = ChannelCapabilities(
    supports_threads=True,
    supports_reactions=True,
    supports_attachments=True,
    supports_rich_text=True,
    supports_voice=False,
    supports_video=False,
    max_message_length=40_000,
)


class SlackConfig(BaseModel):
    """The Slack adapter's settings, from the environment (`from_env`)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    bot_token: str = Field(repr=False)
    channel: str = Field(min_length=1)
    signing_secret: str | None = Field(default=None, repr=False)
    app_token: str | None = Field(default=None, repr=False)
    api_url: str = SLACK_API
    project_channels: dict[str, str] = Field(default_factory=dict)
    users: dict[str, str] = Field(default_factory=dict)  # Slack user id -> hub ChittyID
    audience_ttl_s: float = Field(default=60.0, ge=0)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> SlackConfig:
        return cls(
            bot_token=env["SLACK_BOT_TOKEN"],
            channel=env["CHITTY_SLACK_CHANNEL"],
            signing_secret=env.get("SLACK_SIGNING_SECRET") or None,
            app_token=env.get("SLACK_APP_TOKEN") or None,
            api_url=env.get("CHITTY_SLACK_API_URL") or SLACK_API,
            project_channels=pairs(env.get("CHITTY_SLACK_CHANNELS", "")),
            users=pairs(env.get("CHITTY_SLACK_USERS", "")),
        )


ENV = (
    "SLACK_BOT_TOKEN",
    "SLACK_SIGNING_SECRET",
    "SLACK_APP_TOKEN",
    "CHITTY_SLACK_CHANNEL",
    "CHITTY_SLACK_CHANNELS",
    "CHITTY_SLACK_USERS",
    "CHITTY_SLACK_API_URL",
)
NEEDS = ("SLACK_BOT_TOKEN", "CHITTY_SLACK_CHANNEL")


class SlackAdapter:
    """The hub's Slack app (see the module)."""

    id = "slack"
    channel = "slack"

    def __init__(self, config: SlackConfig) -> None:
        self.config = config
        self._connected = False
        self._handler: Handler | None = None
        self._web: AsyncWebClient | None = None
        self._socket: SocketModeClient | None = None
        self.routes = ChannelRoutes(config.channel, config.project_channels)
        self._bot_user: str | None = None
        self._audiences: dict[str, tuple[float, frozenset[str]]] = {}

    # -- lifecycle ----------------------------------------------------------------------------

    @property
    def web(self) -> AsyncWebClient:
        if self._web is None:  # made inside the running loop (its session binds to it)
            self._web = AsyncWebClient(token=self.config.bot_token, base_url=self.config.api_url)
        return self._web

    async def connect(self) -> None:
        answer = await self._call("auth_test")
        self._bot_user = str(answer.get("user_id") or "") or None
        self._connected = True
        if self.config.app_token and self._socket is None:
            app_web = AsyncWebClient(token=self.config.app_token, base_url=self.config.api_url)
            socket = SocketModeClient(self.config.app_token, web_client=app_web)
            socket.socket_mode_request_listeners.append(self._socket_event)  # type: ignore[arg-type]
            try:
                await socket.connect()  # type: ignore[no-untyped-call]
            except (aiohttp.ClientError, OSError, TimeoutError, SlackApiError) as error:
                await socket.close()  # type: ignore[no-untyped-call]
                raise TransientFailure(f"Socket Mode could not connect: {error}") from None
            self._socket = socket

    async def disconnect(self) -> None:
        self._connected = False
        if self._socket is not None:
            await self._socket.close()  # type: ignore[no-untyped-call]
            self._socket = None
        if self._web is not None and self._web.session is not None:
            await self._web.session.close()

    def is_connected(self) -> bool:
        return self._connected

    def on_message(self, handler: Handler) -> None:
        self._handler = handler

    def get_capabilities(self) -> ChannelCapabilities:
        return CAPABILITIES

    def channel_for(self, project_id: str | None) -> str | None:
        """A project's mapped channel, else the default one."""
        return self.routes.channel_for(project_id)

    def project_of(self, channel: str) -> str | None:
        """The project a channel is mapped to, if one is."""
        return self.routes.project_of(channel)

    def threads(self) -> bool:
        return True

    # -- outbound -----------------------------------------------------------------------------

    async def send_message(self, message: AdapterMessage) -> NativeRef:
        thread = message.thread.message_id if message.thread is not None else None
        answer = await self._call(
            "chat_postMessage",
            channel=message.channel,
            text=message.text,
            blocks=blocks(message),
            thread_ts=thread,
            metadata={
                "event_type": "chitty_entity",
                "event_payload": {
                    "chittyId": message.chitty_id,
                    "kind": message.kind,
                    "delivery": message.delivery,
                },
            },
        )
        return NativeRef(str(answer["channel"]), str(answer["ts"]), thread)

    async def edit_message(self, ref: NativeRef, message: AdapterMessage) -> NativeRef:
        await self._call(
            "chat_update", channel=ref.channel, ts=ref.message_id, text=message.text,
            blocks=blocks(message),
        )  # fmt: skip
        return ref

    async def delete_message(self, ref: NativeRef) -> None:
        await self._call("chat_delete", channel=ref.channel, ts=ref.message_id)

    async def react(self, ref: NativeRef, reaction: str) -> None:
        await self._call(
            "reactions_add", channel=ref.channel, timestamp=ref.message_id, name=reaction
        )

    async def find(
        self, channel: str, thread_root: str | None, deliveries: Collection[str], since_s: float
    ) -> dict[str, NativeRef]:
        """Posts of `deliveries` by the metadata every post carries: in the channel's history
        (or the thread's replies) from a minute before `since_s` (clocks differ), page by
        page."""
        wanted, found = set(deliveries), {}
        method, where = (
            ("conversations_history", {})
            if thread_root is None
            else ("conversations_replies", {"ts": thread_root})
        )
        cursor = None
        while wanted - found.keys():
            answer = await self._call(
                method,
                channel=channel,
                oldest=f"{max(since_s - 60, 0):.6f}",
                limit=200,
                include_all_metadata=True,
                cursor=cursor,
                **where,
            )
            for message in answer.get("messages") or []:
                payload = (message.get("metadata") or {}).get("event_payload") or {}
                if payload.get("delivery") in wanted:
                    ts = str(message["ts"])
                    root = None if thread_root in (None, ts) else thread_root
                    found[str(payload["delivery"])] = NativeRef(channel, ts, root)
            cursor = (answer.get("response_metadata") or {}).get("next_cursor")
            if not answer.get("has_more") or not cursor:
                break
        return found

    # -- who is on a channel ------------------------------------------------------------------

    def maps_users(self) -> bool:
        return bool(self.config.users)

    def principal_for(self, user: str) -> str | None:
        return self.config.users.get(user)

    async def audience(self, channel: str) -> frozenset[str]:
        """The channel's people (this app's own bot user aside) as hub principals; looked up
        with `conversations.members` (page by page) at most every `audience_ttl_s`."""
        now = time.monotonic()
        cached = self._audiences.get(channel)
        if cached is not None and now - cached[0] < self.config.audience_ttl_s:
            return cached[1]
        people: set[str] = set()
        cursor = None
        while True:
            answer = await self._call(
                "conversations_members", channel=channel, limit=1000, cursor=cursor
            )
            people |= {str(m) for m in answer.get("members") or []}
            cursor = (answer.get("response_metadata") or {}).get("next_cursor")
            if not cursor:
                break
        people.discard(self._bot_user or "")
        found = frozenset(self.config.users.get(p, UNMAPPED + p) for p in people)
        self._audiences[channel] = (now, found)
        return found

    async def _call(self, method: str, **arguments: Any) -> Any:
        """One Web API call; Slack's failures as the seam's delivery errors."""
        try:
            answer = await getattr(self.web, method)(**arguments)
        except SlackApiError as error:
            response = error.response
            if response.status_code == 429:
                raise RateLimited(float(response.headers.get("Retry-After", 1))) from None
            code = str(response.get("error", "unknown_error"))
            if code in _CREDENTIALS:
                self._connected = False
                raise BadCredentials(f"Slack refused the bot token: {code}") from None
            if code in _FOR_GOOD or code == "message_not_found":
                raise PermanentFailure(code) from None
            raise TransientFailure(f"Slack answered {code}") from None
        except (aiohttp.ClientError, OSError, TimeoutError) as error:
            self._connected = False
            raise TransientFailure(f"Slack is unreachable: {error!r}") from None
        self._connected = True
        return answer

    # -- inbound ------------------------------------------------------------------------------

    async def _socket_event(self, client: SocketModeClient, request: SocketModeRequest) -> None:
        """A Socket Mode envelope: ack it at once, then act on it."""
        await client.send_socket_mode_response(SocketModeResponse(request.envelope_id))
        if request.type != "events_api" or self._handler is None:
            return
        inbound = inbound_event(request.payload)
        if inbound is not None:
            try:
                await self._handler(inbound)
            except Exception:  # a socket listener's failure would vanish in the SDK
                log.exception("Slack event %s failed", inbound.provider_id)


def make(env: Mapping[str, str]) -> SlackAdapter:
    """The adapter, from the environment (`CHANNELS` names this function)."""
    return SlackAdapter(SlackConfig.from_env(env))


AUTH = (
    "Slack's v0 signature (X-Slack-Signature, X-Slack-Request-Timestamp within 5 minutes) "
    "with SLACK_SIGNING_SECRET, not a hub credential"
)
HOOKS = (
    Hook(
        "slack_events",
        "POST",
        "events",
        "Slack Events API",
        "Slack's events: url_verification, a check-mark reaction on a todo's message "
        "(completes it), a thread reply (added to the session's context).",
        AUTH,
    ),
    Hook(
        "slack_commands",
        "POST",
        "commands",
        "Slack slash command",
        "`/chitty todo add <text>`, `todo list`, `todo done <n>`, answered to the person who "
        "typed it (form-encoded, as Slack sends it).",
        AUTH,
    ),
)


class SlackHooks:
    """The Events API and the slash command, checked with Slack's v0 signature."""

    def __init__(self, signing_secret: str) -> None:
        self.verifier = SignatureVerifier(signing_secret)

    def receive(self, request: HookRequest) -> Received:
        headers = request.headers
        if not self.verifier.is_valid(
            request.body,
            headers.get("X-Slack-Request-Timestamp"),
            headers.get("X-Slack-Signature"),
        ):
            raise HookRefused(
                401, "unauthenticated", "bad or stale Slack signature", "X-Slack-Signature"
            )
        if request.hook == "slack_commands":
            form = dict(urllib.parse.parse_qsl(request.body.decode("utf-8", "replace"), True))
            return Received((inbound_command(form),), reply=_ephemeral)
        try:
            payload = decode(request.body)
        except ValueError as error:
            raise HookRefused(400, "bad_json", f"not an Events API body: {error}") from None
        challenge = url_verification(payload)
        if challenge is not None:
            return Received(now=HookAnswer(body=challenge))
        event = inbound_event(payload)
        if event is None:
            return Received(now=HookAnswer(body={"ok": True, "status": "ignored"}))
        return Received(
            (event,), reply=lambda status, _: HookAnswer(body={"ok": True, "status": status})
        )


def _ephemeral(_: str, text: str) -> HookAnswer:
    return HookAnswer(body={"response_type": "ephemeral", "text": text})


def webhooks(env: Mapping[str, str]) -> SlackHooks | None:
    """Slack's webhooks, when a signing secret is set (`CHANNELS` names this function)."""
    secret = env.get("SLACK_SIGNING_SECRET")
    return SlackHooks(secret) if secret else None


def inbound_event(payload: Mapping[str, Any]) -> Inbound | None:
    """An Events API `event_callback` as what the hub should do, or None (not for the hub:
    other reactions, the bot's own messages, edits, channel messages outside a thread)."""
    if payload.get("type") != "event_callback":
        return None
    event = payload.get("event") or {}
    event_id = str(payload.get("event_id") or "")
    kind = event.get("type")
    if kind == "reaction_added":
        item = event.get("item") or {}
        if event.get("reaction") != DONE_REACTION or item.get("type") != "message":
            return None
        ref = NativeRef(str(item.get("channel")), str(item.get("ts")))
        return Inbound("complete", event_id, ref.channel, str(event.get("user")), ref)
    if kind == "message":
        thread, ts = event.get("thread_ts"), event.get("ts")
        if event.get("subtype") or event.get("bot_id") or not thread or thread == ts:
            return None  # not a person's reply in a thread (the bot's own posts come back too)
        channel = str(event.get("channel"))
        ref = NativeRef(channel, str(thread))
        return Inbound("reply", event_id, channel, str(event.get("user")), ref, str(event["text"]))
    return None


def inbound_command(form: Mapping[str, str]) -> Inbound:
    """A `/chitty ...` slash command (its `trigger_id` names it)."""
    return Inbound(
        "command",
        form.get("trigger_id") or f"{form.get('channel_id')}-{form.get('text')}",
        str(form.get("channel_id", "")),
        str(form.get("user_id", "")),
        text=str(form.get("text", "")),
    )


def blocks(message: AdapterMessage) -> list[dict[str, Any]]:
    """Block Kit for a change: the state in a section, where it stands in a context line."""
    lines = message.text.split("\n")
    section = {"type": "section", "text": {"type": "mrkdwn", "text": _escape(lines[0])}}
    out: list[dict[str, Any]] = [section]
    rest = [line for line in lines[1:] if line]
    if rest:
        out.append(
            {"type": "context", "elements": [{"type": "mrkdwn", "text": _escape(" · ".join(rest))}]}
        )
    if message.kind == "state" and message.domain == "todos":
        done = status_of(message.entity) == "completed"
        hint = "completed" if done else "react with :white_check_mark: to complete it"
        out.append({"type": "context", "elements": [{"type": "mrkdwn", "text": hint}]})
    return out


def _escape(text: str) -> str:
    """Slack's mrkdwn escapes (&, <, >)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def url_verification(body: Mapping[str, Any]) -> dict[str, Any] | None:
    """Slack's `url_verification` handshake answer, if `body` is one."""
    if body.get("type") == "url_verification":
        return {"challenge": body.get("challenge")}
    return None


def decode(raw: bytes) -> dict[str, Any]:
    """An Events API body (JSON)."""
    value = json.loads(raw)
    if not isinstance(value, dict):
        raise ValueError("an Events API body is a JSON object")
    return value
