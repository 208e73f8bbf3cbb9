"""iMessage, in two modes: through a BlueBubbles server's REST API and webhooks (a Mac runs
BlueBubbles somewhere; the hub runs anywhere), or, on macOS only, sent directly with AppleScript.

BlueBubbles (the default): `CHITTY_BLUEBUBBLES_URL` and `CHITTY_BLUEBUBBLES_PASSWORD` (it travels
as the `password` query parameter of every call, as BlueBubbles wants it), `CHITTY_IMESSAGE_CHAT`
(a chat GUID such as `iMessage;-;+15551234567`, or an address: its one-to-one chat),
`CHITTY_IMESSAGE_CHATS` (per project: `CHITTY-PROJ-A=<chat>,...`). With the server's Private API
a later change edits the entity's message and replies sit under it; without it, each is a new
message (the runner marks an update "updated: ..."). BlueBubbles does not sign its webhooks, so
the webhook URL carries `CHITTY_IMESSAGE_WEBHOOK_SECRET` as `?secret=`: a reply under a hub
message joins its session's context (`done` completes the todo), a Loved or Liked tapback
completes it, `todo add|list|done ...` is the /chitty command. Only senders on
`CHITTY_IMESSAGE_ALLOW` (addresses; empty: the address of a one-to-one chat) may act.

Direct (`CHITTY_IMESSAGE_MODE=direct`, `CHITTY_IMESSAGE_TO` the buddy): `osascript` tells
Messages to send; outbound only, no edits, no threads. Anywhere but macOS it refuses to start.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import platform
import shutil
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import replace
from typing import Any, Literal

import aiohttp
from pydantic import BaseModel, ConfigDict, Field

from hub.adapters import (
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

PART = 4_000  # iMessage has no hard limit; longer texts go as several bubbles, nothing cut
DONE_TAPBACKS = frozenset({2000, 2001, "love", "like"})  # Loved, Liked (as number or name)


def capabilities(private_api: bool) -> ChannelCapabilities:
    """What the channel shows: replies under a message need the Private API."""
    return ChannelCapabilities(
        supports_threads=private_api,
        supports_reactions=True,
        supports_attachments=False,
        supports_rich_text=False,
        supports_voice=False,
        supports_video=False,
        max_message_length=PART,
    )


class IMessageConfig(BaseModel):
    """The iMessage adapter's settings, from the environment (`from_env`)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    mode: Literal["bluebubbles", "direct"] = "bluebubbles"
    url: str = ""
    password: str = Field(default="", repr=False)
    chat: str = ""
    project_chats: dict[str, str] = Field(default_factory=dict)
    allow: tuple[str, ...] = ()
    webhook_secret: str | None = Field(default=None, repr=False)
    to: str = ""  # direct mode: the buddy

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> IMessageConfig:
        if env.get("CHITTY_IMESSAGE_MODE", "bluebubbles") == "direct":
            return cls(mode="direct", to=env["CHITTY_IMESSAGE_TO"])
        chats = {p: chat_guid(c) for p, c in pairs(env.get("CHITTY_IMESSAGE_CHATS", "")).items()}
        return cls(
            url=env["CHITTY_BLUEBUBBLES_URL"].rstrip("/"),
            password=env["CHITTY_BLUEBUBBLES_PASSWORD"],
            chat=chat_guid(env["CHITTY_IMESSAGE_CHAT"]),
            project_chats=chats,
            allow=tuple(
                a.strip().lower()
                for a in env.get("CHITTY_IMESSAGE_ALLOW", "").split(",")
                if a.strip()
            ),
            webhook_secret=env.get("CHITTY_IMESSAGE_WEBHOOK_SECRET") or None,
        )

    def allowed(self) -> frozenset[str]:
        """Who may act: the allow list, else the other side of a one-to-one chat."""
        if self.allow:
            return frozenset(self.allow)
        _, kind, address = [*self.chat.split(";", 2), "", ""][:3]
        return frozenset({address.lower()}) if kind == "-" and address else frozenset()


ENV = (
    "CHITTY_BLUEBUBBLES_URL",
    "CHITTY_BLUEBUBBLES_PASSWORD",
    "CHITTY_IMESSAGE_CHAT",
    "CHITTY_IMESSAGE_CHATS",
    "CHITTY_IMESSAGE_ALLOW",
    "CHITTY_IMESSAGE_WEBHOOK_SECRET",
    "CHITTY_IMESSAGE_MODE",
    "CHITTY_IMESSAGE_TO",
)
NEEDS = ("CHITTY_BLUEBUBBLES_URL", "CHITTY_BLUEBUBBLES_PASSWORD", "CHITTY_IMESSAGE_CHAT")
DIRECT_NEEDS = ("CHITTY_IMESSAGE_MODE", "CHITTY_IMESSAGE_TO")


def chat_guid(chat: str) -> str:
    """A BlueBubbles chat GUID as given, or an address's one-to-one iMessage chat."""
    chat = chat.strip()
    return chat if ";" in chat else f"iMessage;-;{chat}"


def split(text: str, most: int = PART) -> list[str]:
    """`text` in parts of at most `most` characters, broken after a newline or a space where
    one is near the end of a part; joined, the parts are `text` again."""
    parts = []
    while len(text) > most:
        cut = max(text.rfind("\n", 0, most), text.rfind(" ", 0, most)) + 1
        cut = cut if cut > most // 2 else most
        parts.append(text[:cut])
        text = text[cut:]
    return [*parts, text]


def _quoted(message: AdapterMessage) -> AdapterMessage:
    """A reply as a message of its own, naming what it is about (no threads here)."""
    if message.thread is None:
        return message
    return replace(message, text=f"↪ {message.title or message.chitty_id}\n{message.text}")


class BlueBubblesAdapter:
    """The hub's iMessage chat(s) through a BlueBubbles server (see the module)."""

    id = "imessage"
    channel = "imessage"
    # `CanEdit` only while the server has the Private API (set by `connect`): the runner asks
    # `isinstance`, and a None method does not count.
    edit_message: Callable[[NativeRef, AdapterMessage], Awaitable[NativeRef]] | None = None

    def __init__(self, config: IMessageConfig) -> None:
        self.config = config
        self.private_api = False
        self._connected = False
        self._handler: Handler | None = None
        self._session: aiohttp.ClientSession | None = None
        self.routes = ChannelRoutes(config.chat, config.project_chats)
        self._parts_sent: dict[str, list[str]] = {}  # a delivery's parts posted so far

    # -- lifecycle ----------------------------------------------------------------------------

    async def connect(self) -> None:
        """Ping the server (a wrong password is refused here) and ask whether it has the
        Private API (edits and replies need it)."""
        await self._call("GET", "ping")
        info = await self._call("GET", "server/info")
        info = info if isinstance(info, dict) else {}
        self.private_api = (
            bool(info.get("private_api")) and info.get("helper_connected") is not False
        )
        self.edit_message = self._edit if self.private_api else None
        self._connected = True

    async def disconnect(self) -> None:
        self._connected = False
        if self._session is not None:
            await self._session.close()
            self._session = None

    def is_connected(self) -> bool:
        return self._connected

    def on_message(self, handler: Handler) -> None:
        self._handler = handler  # events come through the webhook (`webhooks`), not a socket

    def get_capabilities(self) -> ChannelCapabilities:
        return capabilities(self.private_api)

    def threads(self) -> bool:
        return self.private_api

    def channel_for(self, project_id: str | None) -> str | None:
        """A project's chat, else the default one."""
        return self.routes.channel_for(project_id)

    def project_of(self, channel: str) -> str | None:
        return self.routes.project_of(channel)

    def split(self, text: str) -> list[str]:
        return split(text)

    # -- outbound -----------------------------------------------------------------------------

    async def send_message(self, message: AdapterMessage) -> NativeRef:
        """Post the text (in parts, when long); the first part's GUID names the message. A
        part already posted by an attempt that failed later is not posted again."""
        thread = message.thread
        if not self.private_api:
            message = _quoted(message)
        key = message.delivery or uuid.uuid4().hex
        done = self._parts_sent.setdefault(key, [])
        for n, part in enumerate(self.split(message.text)[len(done) :], len(done)):
            body: dict[str, Any] = {
                "chatGuid": message.channel,
                "message": part,
                "tempGuid": f"chitty-{key}-{n}",
                "method": "private-api" if self.private_api else "apple-script",
            }
            if thread is not None and self.private_api:
                body["selectedMessageGuid"] = thread.message_id
            sent = await self._call("POST", "message/text", body)
            done.append(str(sent["guid"]))
        del self._parts_sent[key]
        return NativeRef(message.channel, done[0], thread.message_id if thread else None)

    async def _edit(self, ref: NativeRef, message: AdapterMessage) -> NativeRef:
        """Edit the message in place; where iMessage will not (past its edit window, more
        than five edits, a text longer than a part), the new state goes as a reply under it,
        marked "updated"."""
        if len(message.text) <= PART:
            try:
                await self._call(
                    "POST",
                    f"message/{ref.message_id}/edit",
                    {
                        "editedMessage": message.text,
                        "backwardsCompatibilityMessage": f"Edited to “{message.text}”",
                        "partIndex": 0,
                    },
                )
                return ref
            except PermanentFailure:
                pass
        update = replace(message, text="updated: " + message.text, thread=ref)
        return await self.send_message(update)

    async def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        """One REST call; BlueBubbles' answers as the seam's errors (the URL, which holds the
        password, is never part of one)."""
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60))
        try:
            async with self._session.request(
                method,
                f"{self.config.url}/api/v1/{path}",
                params={"password": self.config.password},
                json=body,
            ) as response:
                status, retry_after = response.status, response.headers.get("Retry-After")
                try:
                    answer = json.loads(await response.text() or "{}")
                except ValueError:
                    answer = {}
        except (aiohttp.ClientError, OSError, TimeoutError) as error:
            self._connected = False
            raise TransientFailure(f"BlueBubbles is unreachable: {type(error).__name__}") from None
        if status in (401, 403):
            self._connected = False
            raise BadCredentials("BlueBubbles refused the password (CHITTY_BLUEBUBBLES_PASSWORD)")
        if status == 429:
            raise RateLimited(_seconds(retry_after))
        if status != 200:
            why = answer.get("error") if isinstance(answer, dict) else None
            said = why.get("message") if isinstance(why, dict) else answer
            text = f"BlueBubbles answered {status} to {path.split('/')[0]}: {said}"
            raise (PermanentFailure if status in (400, 404) else TransientFailure)(text)
        self._connected = True
        return answer.get("data") if isinstance(answer, dict) else None


def _seconds(value: str | None) -> float:
    try:
        return max(float(value or 1), 0.0)
    except ValueError:
        return 1.0


# -- direct mode: AppleScript on this Mac ------------------------------------------------------

SEND_SCRIPT = (
    "on run argv",
    'tell application "Messages"',
    "set chitty to participant (item 2 of argv) of (1st account whose service type = iMessage)",
    "send (item 1 of argv) to chitty",
    "end tell",
    "end run",
)


def osascript_argv(text: str, buddy: str) -> list[str]:
    """The command that sends `text` to `buddy`: both are arguments of the script's run
    handler, never part of its source (no quoting to get wrong)."""
    return ["osascript", *(arg for line in SEND_SCRIPT for arg in ("-e", line)), text, buddy]


class DirectAdapter:
    """iMessage sent by this Mac's Messages app (outbound only; see the module)."""

    id = "imessage"
    channel = "imessage"

    def __init__(self, config: IMessageConfig) -> None:
        self.config = config
        self._connected = False

    async def connect(self) -> None:
        """Refuse anywhere Messages and `osascript` are not (nothing pretends to send)."""
        system = platform.system()
        if system != "Darwin":
            raise PermanentFailure(
                f"iMessage direct mode needs macOS (this is {system}): "
                "use BlueBubbles (CHITTY_BLUEBUBBLES_URL)"
            )
        if shutil.which("osascript") is None:
            raise PermanentFailure("iMessage direct mode needs osascript, which is not on PATH")
        self._connected = True

    async def disconnect(self) -> None:
        self._connected = False

    def is_connected(self) -> bool:
        return self._connected

    def on_message(self, handler: Handler) -> None:
        """Nothing comes in: AppleScript only sends."""

    def get_capabilities(self) -> ChannelCapabilities:
        return capabilities(private_api=False)

    def channel_for(self, project_id: str | None) -> str | None:
        return self.config.to

    def split(self, text: str) -> list[str]:
        return split(text)

    async def send_message(self, message: AdapterMessage) -> NativeRef:
        """Each part through `osascript`. Messages names no message it sends this way: the
        ref is this adapter's own (no edit, reply or tapback can ever name it)."""
        for part in self.split(_quoted(message).text):
            process = await asyncio.create_subprocess_exec(
                *osascript_argv(part, self.config.to),
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE,
            )
            _, error = await process.communicate()
            if process.returncode != 0:
                said = error.decode(errors="replace").strip()
                raise PermanentFailure(f"Messages did not send it: {said}")
        return NativeRef(self.config.to, f"direct-{uuid.uuid4().hex}")


def make(env: Mapping[str, str]) -> BlueBubblesAdapter | DirectAdapter:
    """The adapter of the configured mode, from the environment (`CHANNELS` names this)."""
    config = IMessageConfig.from_env(env)
    return DirectAdapter(config) if config.mode == "direct" else BlueBubblesAdapter(config)


# -- the webhook --------------------------------------------------------------------------------

HOOKS = (
    Hook(
        "imessage_webhook",
        "POST",
        "webhook",
        "BlueBubbles webhook",
        "BlueBubbles' new-message events: a reply under a hub message (context; `done` "
        "completes), a Loved/Liked tapback on a todo (completes it), `todo add|list|done`.",
        "`?secret=` equal to CHITTY_IMESSAGE_WEBHOOK_SECRET (BlueBubbles signs nothing), "
        "not a hub credential",
    ),
)


class BlueBubblesHooks:
    """The BlueBubbles webhook, checked by the secret its URL carries."""

    def __init__(self, config: IMessageConfig) -> None:
        assert config.webhook_secret
        self.secret = config.webhook_secret.encode()
        self.allowed = config.allowed()

    def receive(self, request: HookRequest) -> Received:
        given = request.query.get("secret", "").encode()
        if not hmac.compare_digest(given, self.secret):
            raise HookRefused(401, "unauthenticated", "wrong or missing webhook secret", "secret")
        try:
            payload = json.loads(request.body)
        except ValueError as error:
            raise HookRefused(400, "bad_json", f"not a BlueBubbles event: {error}") from None
        if not isinstance(payload, dict):
            raise HookRefused(400, "bad_json", "a BlueBubbles event is a JSON object")
        event = inbound_event(payload, self.allowed)
        if event is None:
            return Received(now=HookAnswer(body={"ok": True, "status": "ignored"}))
        return Received(
            (event,),
            reply=lambda status, text: HookAnswer(
                body={"ok": True, "status": status, "text": text}
            ),
        )


def webhooks(env: Mapping[str, str]) -> BlueBubblesHooks | None:
    """The webhook, when BlueBubbles and its secret are configured (`CHANNELS` names this)."""
    config = IMessageConfig.from_env(env)
    return (
        BlueBubblesHooks(config) if config.mode == "bluebubbles" and config.webhook_secret else None
    )


def inbound_event(payload: Mapping[str, Any], allowed: frozenset[str]) -> Inbound | None:
    """A BlueBubbles event as what the hub should do, or None (not a new message, one of the
    hub's own, a tapback other than Loved or Liked, a message that is neither a reply nor a
    command)."""
    data = payload.get("data")
    if payload.get("type") != "new-message" or not isinstance(data, dict) or data.get("isFromMe"):
        return None
    guid = str(data.get("guid") or "")
    sender = str((data.get("handle") or {}).get("address") or "").lower()
    chats = data.get("chats") or [{}]
    chat = str(chats[0].get("guid") or "")
    text = str(data.get("text") or "").strip()
    if not guid or not chat:
        return None
    if sender not in allowed:
        return Inbound("ignored", guid, chat, sender, text="not on CHITTY_IMESSAGE_ALLOW")
    kind, target = data.get("associatedMessageType"), data.get("associatedMessageGuid")
    if target:
        if kind not in DONE_TAPBACKS:
            return None
        return Inbound("complete", guid, chat, sender, NativeRef(chat, _message_guid(str(target))))
    if text.lower().startswith("todo "):
        return Inbound(
            "command", guid, chat, sender, text="todo " + text[5:].strip(), answer_here=True
        )
    root = data.get("threadOriginatorGuid")
    if root:
        ref = NativeRef(chat, str(root))
        if text.lower() == "done":
            return Inbound("complete", guid, chat, sender, ref, text)
        return Inbound("reply", guid, chat, sender, ref, text)
    return None


def _message_guid(associated: str) -> str:
    """The message a tapback is on: its GUID without the part prefix (`p:0/`, `bp:`)."""
    if associated.startswith("p:") and "/" in associated:
        return associated.split("/", 1)[1]
    return associated.removeprefix("bp:")
