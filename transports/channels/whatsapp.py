"""WhatsApp (Cloud API), with `aiohttp` against the Graph API: hub changes as messages to the
configured recipients; a ✅ reaction, a quoted reply `done`, a quoted reply and `/chitty ...`
commands back to the hub over Meta's signed webhooks; delivery statuses kept with the message
map.

Configured by `WHATSAPP_TOKEN` (a system user's token), `WHATSAPP_PHONE_NUMBER_ID` (the number
the hub writes from), `CHITTY_WHATSAPP_TO` (recipients, E.164, comma-separated: also the only
people whose messages are read), `WHATSAPP_APP_SECRET` and `WHATSAPP_VERIFY_TOKEN` (the
webhooks), `CHITTY_WHATSAPP_TEMPLATE` and `CHITTY_WHATSAPP_TEMPLATE_LANG` (an approved
template with one body parameter, and its language, `en_US` by default),
`CHITTY_WHATSAPP_MIN_GAP_S` (seconds between two messages to one person, 6 by default: Meta's
pair rate limit) and `CHITTY_WHATSAPP_API_URL` (the Graph API with its version, Meta's own by
default; a proxy or a test emulator otherwise).

pywa, the maintained client, is not used: its `GraphAPI` sets the session's base URL to Meta's
host in its constructor, so only overwriting a private attribute would point it at a proxy or
an emulator; the Cloud API is a few JSON calls, made here with `aiohttp` (a dependency already).

WhatsApp allows free-form messages to a person only within 24 hours of their last message to
the number (the customer service window); outside it only an approved template goes out, with
the text as its body parameter, and with no template configured such a delivery fails, visibly.
The window is learnt from the webhooks (`heard`) and kept in memory: after a restart it is
unknown, and the template is used until the person writes again. Messages cannot be edited: a
later state goes out as "updated: ..." quoting the first message. A text over 4096 characters
goes in numbered parts.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
import re
import time
from collections.abc import Callable, Mapping
from typing import Any

import aiohttp
from pydantic import BaseModel, ConfigDict, Field, field_validator

from hub.adapters import (
    AdapterMessage,
    BadCredentials,
    ChannelCapabilities,
    Handler,
    Hook,
    HookAnswer,
    HookRefused,
    HookRequest,
    Inbound,
    InboundKind,
    NativeRef,
    PermanentFailure,
    RateLimited,
    Received,
    TransientFailure,
)

log = logging.getLogger(__name__)

GRAPH_API = "https://graph.facebook.com/v21.0"
DONE_REACTION = "✅"  # on a todo's message completes it
WINDOW_S = 24 * 3600.0
WINDOW_MARGIN_S = 60.0  # a message sent just before the window closes may reach Meta after it
# A template's body is at most 1024 characters with its own words: a parameter of at most 900
# leaves them room.
TEMPLATE_PARAMETER_MAX = 900
CAPABILITIES = ChannelCapabilities(
    supports_threads=False,  # a reply can only quote a message
    supports_reactions=True,
    supports_attachments=False,
    supports_rich_text=False,
    supports_voice=False,
    supports_video=False,
    max_message_length=4096,
)
_RATE_LIMITS = frozenset({4, 80007, 130429, 131056})  # app, account, throughput, pair limits
_TRANSIENT = frozenset({1, 2, 131000, 131016, 133004})  # Meta's side failed or is busy
_OUTSIDE_WINDOW = 131047  # "Re-engagement message": free-form outside the 24-hour window


class WhatsAppConfig(BaseModel):
    """The WhatsApp adapter's settings, from the environment (`from_env`)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    token: str = Field(min_length=1, repr=False)
    phone_number_id: str = Field(min_length=1)
    recipients: tuple[str, ...] = Field(min_length=1)  # wa_ids: E.164 digits, no "+"
    app_secret: str | None = Field(default=None, repr=False)
    verify_token: str | None = Field(default=None, repr=False)
    api_url: str = GRAPH_API
    template: str | None = None
    template_lang: str = "en_US"
    min_gap_s: float = Field(default=6.0, ge=0)

    @field_validator("recipients", mode="before")
    @classmethod
    def _e164(cls, value: Any) -> tuple[str, ...]:
        if isinstance(value, str):
            value = [v for v in value.split(",") if v.strip()]
        found = []
        for number in value:
            digits = re.sub(r"[\s()-]", "", str(number)).removeprefix("+")
            if not re.fullmatch(r"[1-9]\d{6,14}", digits):
                raise ValueError(f"CHITTY_WHATSAPP_TO: {number!r} is not an E.164 number")
            found.append(digits)
        if not found:
            raise ValueError("CHITTY_WHATSAPP_TO names no recipient")
        return tuple(found)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> WhatsAppConfig:
        return cls(
            token=env["WHATSAPP_TOKEN"],
            phone_number_id=env["WHATSAPP_PHONE_NUMBER_ID"],
            recipients=env.get("CHITTY_WHATSAPP_TO", ""),
            app_secret=env.get("WHATSAPP_APP_SECRET") or None,
            verify_token=env.get("WHATSAPP_VERIFY_TOKEN") or None,
            api_url=(env.get("CHITTY_WHATSAPP_API_URL") or GRAPH_API).rstrip("/"),
            template=env.get("CHITTY_WHATSAPP_TEMPLATE") or None,
            template_lang=env.get("CHITTY_WHATSAPP_TEMPLATE_LANG") or "en_US",
            min_gap_s=float(env.get("CHITTY_WHATSAPP_MIN_GAP_S") or 6),
        )


ENV = (
    "WHATSAPP_TOKEN",
    "WHATSAPP_PHONE_NUMBER_ID",
    "WHATSAPP_APP_SECRET",
    "WHATSAPP_VERIFY_TOKEN",
    "CHITTY_WHATSAPP_TO",
    "CHITTY_WHATSAPP_TEMPLATE",
    "CHITTY_WHATSAPP_TEMPLATE_LANG",
    "CHITTY_WHATSAPP_MIN_GAP_S",
    "CHITTY_WHATSAPP_API_URL",
)
NEEDS = ("WHATSAPP_TOKEN", "WHATSAPP_PHONE_NUMBER_ID", "CHITTY_WHATSAPP_TO")


class _OutsideWindow(PermanentFailure):
    """Meta refused a free-form message: the person's window is closed."""


class WhatsAppAdapter:
    """The hub's WhatsApp number (see the module). A message to several recipients is one
    native message: its id names each recipient's copy (`<wa_id>:<wamid> ...`), its aliases
    are every wamid sent, so a reaction or reply to any copy, or any part, finds the entity."""

    id = "whatsapp"
    channel = "whatsapp"

    def __init__(self, config: WhatsAppConfig, clock: Callable[[], float] = time.time) -> None:
        self.config = config
        self._clock = clock
        self._connected = False
        self._http: aiohttp.ClientSession | None = None
        self._heard: dict[str, float] = {}  # wa_id -> when they last wrote (epoch s)
        self._last_sent: dict[str, float] = {}  # wa_id -> when the hub last wrote (monotonic)
        self._pacing: dict[str, asyncio.Lock] = {}
        # Parts already sent of a message whose delivery stopped midway (a 429 on the second
        # recipient): a retry sends only the rest.
        self._partly: dict[str, dict[tuple[str, bool, int], str]] = {}
        self._answered: dict[str, None] = {}  # commands answered (a redelivery is not)
        self._answers: set[asyncio.Task[None]] = set()

    # -- lifecycle ----------------------------------------------------------------------------

    @property
    def http(self) -> aiohttp.ClientSession:
        if self._http is None or self._http.closed:  # made inside the running loop
            self._http = aiohttp.ClientSession(
                headers={"Authorization": f"Bearer {self.config.token}"},
                timeout=aiohttp.ClientTimeout(total=30),
            )
        return self._http

    async def connect(self) -> None:
        """Read the phone number: the token and the number id are right, Meta is reachable."""
        await self._call("GET", self.config.phone_number_id, params={"fields": "id"})

    async def disconnect(self) -> None:
        self._connected = False
        for task in list(self._answers):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._http is not None:
            await self._http.close()
            self._http = None

    def is_connected(self) -> bool:
        return self._connected

    def on_message(self, handler: Handler) -> None:
        """Nothing arrives but through the webhooks (`WhatsAppHooks`)."""

    def get_capabilities(self) -> ChannelCapabilities:
        return CAPABILITIES

    def channel_for(self, project_id: str | None) -> str | None:
        """Every entity goes to the configured recipients, from the one number."""
        return self.config.phone_number_id

    def split(self, text: str) -> list[str]:
        """How a free-form text goes in parts (a template's parameter holds less)."""
        return split(text, 4096)

    # -- the 24-hour window -------------------------------------------------------------------

    def in_window(self, wa_id: str) -> bool:
        """Whether a free-form message may go to `wa_id` now."""
        heard = self._heard.get(wa_id)
        return heard is not None and self._clock() - heard < WINDOW_S - WINDOW_MARGIN_S

    async def heard(self, event: Inbound, status: str, text: str) -> None:
        """A recipient's message opens their window (as of its own timestamp), a failure for
        a closed window closes it; a command of theirs is answered in the chat."""
        if event.kind == "status":  # Meta may say only now that the window was closed
            if event.arguments.get("status") == "failed" and str(_OUTSIDE_WINDOW) in event.text:
                self._heard.pop(event.actor, None)
            return
        if event.actor not in self.config.recipients:
            return
        at = float(event.arguments.get("at") or self._clock())
        self._heard[event.actor] = max(self._heard.get(event.actor, 0.0), at)
        if event.kind == "command" and event.provider_id not in self._answered:
            self._answered[event.provider_id] = None
            if len(self._answered) > 1000:
                del self._answered[next(iter(self._answered))]
            task = asyncio.create_task(self._answer(event, text))
            self._answers.add(task)
            task.add_done_callback(self._answers.discard)

    async def _answer(self, event: Inbound, text: str) -> None:
        key = "answer:" + event.provider_id
        try:
            await self._send_to(event.actor, text, key, event.provider_id)
            self._partly.pop(key, None)
        except Exception as error:  # the command was applied; only its answer is lost
            log.warning("WhatsApp: the answer to %s was not sent: %r", event.provider_id, error)

    # -- outbound -----------------------------------------------------------------------------

    async def send_message(self, message: AdapterMessage) -> NativeRef:
        """The message to every recipient: free-form within their window, else the template
        (never free-form outside it); in numbered parts when long; quoting `message.thread`."""
        recipients = self.config.recipients
        closed = [to for to in recipients if not self.in_window(to)]
        if closed and not self.config.template:
            who = ", ".join("+" + to for to in closed)
            raise PermanentFailure(
                f"outside the 24-hour window ({who}) and no CHITTY_WHATSAPP_TEMPLATE"
            )
        quoted = copies(message.thread.message_id) if message.thread is not None else {}
        key = message.delivery or _digest(
            message.chitty_id, message.kind, str(message.timestamp_ms), message.text
        )
        firsts, aliases = [], []
        for to in recipients:
            wamids = await self._send_to(to, message.text, key, quoted.get(to))
            firsts.append(f"{to}:{wamids[0]}")
            aliases += wamids
        self._partly.pop(key, None)
        root = message.thread.message_id if message.thread is not None else None
        return NativeRef(self.config.phone_number_id, " ".join(firsts), root, tuple(aliases))

    async def _send_to(self, to: str, text: str, key: str, quoted: str | None) -> list[str]:
        """`text` to one person, in parts if long; the wamids of the parts. A refusal for a
        closed window closes it here too, and the template goes instead (if there is one)."""
        try:
            return await self._parts(to, text, key, quoted, self.in_window(to))
        except _OutsideWindow:
            self._heard.pop(to, None)
            if not self.config.template:
                raise PermanentFailure(
                    f"outside the 24-hour window (+{to}) and no CHITTY_WHATSAPP_TEMPLATE"
                ) from None
            return await self._parts(to, text, key, quoted, False)

    async def _parts(
        self, to: str, text: str, key: str, quoted: str | None, free: bool
    ) -> list[str]:
        parts = split(text, 4096) if free else split(flat(text), TEMPLATE_PARAMETER_MAX)
        done = self._partly.setdefault(key, {})
        if len(self._partly) > 1000:
            del self._partly[next(iter(self._partly))]
        wamids = []
        for n, part in enumerate(parts):
            if (wamid := done.get((to, free, n))) is None:
                body = self._body(to, part, free, quoted if n == 0 else None)
                wamid = await self._post(to, body)
                done[(to, free, n)] = wamid
            wamids.append(wamid)
        return wamids

    def _body(self, to: str, text: str, free: bool, quoted: str | None) -> dict[str, Any]:
        body: dict[str, Any] = {"messaging_product": "whatsapp", "to": to}
        if free:
            body |= {"type": "text", "text": {"body": text, "preview_url": False}}
        else:
            parameter = {"type": "text", "text": text}
            template = {
                "name": self.config.template,
                "language": {"code": self.config.template_lang},
                "components": [{"type": "body", "parameters": [parameter]}],
            }
            body |= {"type": "template", "template": template}
        if quoted:
            body["context"] = {"message_id": quoted}
        return body

    async def _post(self, to: str, body: dict[str, Any]) -> str:
        """One message, at least `min_gap_s` after the last one to the same person; its wamid."""
        lock = self._pacing.setdefault(to, asyncio.Lock())
        async with lock:
            wait = self._last_sent.get(to, -1e9) + self.config.min_gap_s - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            try:
                answer = await self._call("POST", f"{self.config.phone_number_id}/messages", body)
            finally:
                self._last_sent[to] = time.monotonic()
        try:
            return str(answer["messages"][0]["id"])
        except (KeyError, IndexError, TypeError):
            raise TransientFailure(f"WhatsApp answered without a message id: {answer}") from None

    async def _call(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        params: dict[str, str] | None = None,
    ) -> Any:
        """One Graph API call; Meta's failures as the seam's delivery errors."""
        url = f"{self.config.api_url}/{path}"
        try:
            async with self.http.request(method, url, json=body, params=params) as response:
                status, text = response.status, await response.text()
                retry_after = response.headers.get("Retry-After")
        except (aiohttp.ClientError, OSError, TimeoutError) as error:
            self._connected = False
            raise TransientFailure(f"WhatsApp is unreachable: {error!r}") from None
        try:
            answer = json.loads(text)
        except ValueError:
            answer = {}
        if status < 400:
            self._connected = True
            return answer
        said = answer.get("error") if isinstance(answer, dict) else None
        said = said if isinstance(said, dict) else {}
        code = said.get("code") if isinstance(said.get("code"), int) else 0
        detail = f"WhatsApp {code or status}: {said.get('message') or text[:200]}"
        if status == 401 or code == 190:
            self._connected = False
            raise BadCredentials(detail)
        if status == 429 or code in _RATE_LIMITS:
            pair = self.config.min_gap_s if code == 131056 else 1.0
            raise RateLimited(_seconds(retry_after, pair))
        if code == _OUTSIDE_WINDOW:
            raise _OutsideWindow(detail)
        if status >= 500 or code in _TRANSIENT:
            raise TransientFailure(detail)
        raise PermanentFailure(detail)


def make(env: Mapping[str, str]) -> WhatsAppAdapter:
    """The adapter, from the environment (`CHANNELS` names this function)."""
    return WhatsAppAdapter(WhatsAppConfig.from_env(env))


def copies(message_id: str) -> dict[str, str]:
    """A hub message's copies by recipient (`<wa_id>:<wamid> ...`, see `WhatsAppAdapter`)."""
    return dict(part.partition(":")[::2] for part in message_id.split() if ":" in part)


def split(text: str, most: int) -> list[str]:
    """`text` in numbered parts of at most `most` characters ("(1/3) ..."), cut after a line
    or word break where one is near: the parts without their numbers join to `text` again."""
    if len(text) <= most:
        return [text]
    digits = 1
    while True:
        chunks = _chunks(text, most - len("(/) ") - 2 * digits)
        if len(str(len(chunks))) <= digits:
            return [f"({n}/{len(chunks)}) {chunk}" for n, chunk in enumerate(chunks, 1)]
        digits += 1


def _chunks(text: str, room: int) -> list[str]:
    found, start = [], 0
    while len(text) - start > room:
        end = start + room
        cut = max(text.rfind("\n", start, end), text.rfind(" ", start, end)) + 1
        if cut <= start + room // 2:
            cut = end  # no break near: cut within the word
        found.append(text[start:cut])
        start = cut
    found.append(text[start:])
    return found


def flat(text: str) -> str:
    """`text` as a template parameter takes it: one line, no tab, at most 3 spaces in a row."""
    one = " · ".join(line.strip() for line in text.splitlines() if line.strip())
    return re.sub(r" {4,}", "   ", one.replace("\t", " "))


def _seconds(header: str | None, default: float) -> float:
    try:
        return max(float(header), 0.0) if header else default
    except ValueError:
        return default


def _digest(*parts: str) -> str:
    return hashlib.sha256("\x00".join(parts).encode("utf-8", "surrogatepass")).hexdigest()[:32]


# -- webhooks ---------------------------------------------------------------------------------

AUTH = "X-Hub-Signature-256 (HMAC-SHA256 of the body with WHATSAPP_APP_SECRET)"
HOOKS = (
    Hook(
        "whatsapp_verify",
        "GET",
        "webhook",
        "WhatsApp webhook verification",
        "Meta's handshake: `hub.challenge` as text/plain when `hub.mode` is `subscribe` and "
        "`hub.verify_token` is WHATSAPP_VERIFY_TOKEN, else 403.",
        "hub.verify_token",
        "text/plain",
    ),
    Hook(
        "whatsapp_webhook",
        "POST",
        "webhook",
        "WhatsApp Cloud API webhook",
        "Messages and statuses: a ✅ reaction or a quoted `done` completes a todo, another "
        "quoted reply joins its session's context, `/chitty todo ...` is a command answered in "
        "the chat; statuses join the message map.",
        AUTH,
    ),
)


class WhatsAppHooks:
    """The verification handshake and the signed webhook of one number."""

    def __init__(self, config: WhatsAppConfig) -> None:
        self.config = config

    def receive(self, request: HookRequest) -> Received:
        if request.hook == "whatsapp_verify":
            return Received(now=self._verify(request.query))
        if not self._signed(request.body, request.headers.get("X-Hub-Signature-256", "")):
            raise HookRefused(
                401, "unauthenticated", "bad WhatsApp signature", "X-Hub-Signature-256"
            )
        try:
            payload = json.loads(request.body)
        except ValueError as error:
            raise HookRefused(400, "bad_json", f"not a webhook body: {error}") from None
        if not isinstance(payload, dict):
            raise HookRefused(400, "bad_json", "a webhook body is a JSON object")
        events = inbound_events(payload, self.config)
        if not events:
            return Received(now=HookAnswer(body={"ok": True, "status": "ignored"}))
        return Received(
            events, reply=lambda status, _: HookAnswer(body={"ok": True, "status": status})
        )

    def _verify(self, query: Mapping[str, str]) -> HookAnswer:
        token = query.get("hub.verify_token", "")
        if query.get("hub.mode") != "subscribe" or not hmac.compare_digest(
            token.encode(), str(self.config.verify_token).encode()
        ):
            raise HookRefused(
                403,
                "forbidden",
                "hub.verify_token is not WHATSAPP_VERIFY_TOKEN",
                "hub.verify_token",
            )
        return HookAnswer(body=query.get("hub.challenge", ""), content_type="text/plain")

    def _signed(self, body: bytes, header: str) -> bool:
        secret = str(self.config.app_secret).encode()
        expected = "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()
        return hmac.compare_digest(expected.encode(), header.encode())


def webhooks(env: Mapping[str, str]) -> WhatsAppHooks | None:
    """WhatsApp's webhooks, when the app secret and verify token are set (`CHANNELS` names
    this function)."""
    config = WhatsAppConfig.from_env(env)
    return WhatsAppHooks(config) if config.app_secret and config.verify_token else None


def inbound_events(payload: Mapping[str, Any], config: WhatsAppConfig) -> tuple[Inbound, ...]:
    """What one webhook call carries for this number, in order: its messages and statuses
    (another number's changes, and other fields, left out)."""
    events: list[Inbound] = []
    number = config.phone_number_id
    for entry in _objects(payload.get("entry")):
        for change in _objects(entry.get("changes")):
            value = change.get("value")
            if change.get("field") != "messages" or not isinstance(value, dict):
                continue
            if str((value.get("metadata") or {}).get("phone_number_id")) != number:
                continue
            events += [inbound_message(m, config) for m in _objects(value.get("messages"))]
            events += [inbound_status(s, number) for s in _objects(value.get("statuses"))]
    return tuple(events)


def _objects(value: Any) -> list[dict[str, Any]]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def inbound_message(message: Mapping[str, Any], config: WhatsAppConfig) -> Inbound:
    """A person's message as what the hub should do (`ignored` for what it does not read: a
    stranger's, media, a text that neither quotes a hub message nor is a command)."""
    number = config.phone_number_id
    wamid, sender = str(message.get("id") or ""), str(message.get("from") or "")
    at = {"at": str(message["timestamp"])} if message.get("timestamp") else {}

    def ignored(why: str) -> Inbound:
        return Inbound("ignored", wamid, number, sender, text=why, arguments=at)

    if sender not in config.recipients:
        return Inbound("ignored", wamid, number, sender, text="not one of CHITTY_WHATSAPP_TO")
    if message.get("type") == "reaction":
        reaction = message.get("reaction") or {}
        if reaction.get("emoji") != DONE_REACTION or not reaction.get("message_id"):
            return ignored("only a ✅ reaction is read")
        ref = NativeRef(number, str(reaction["message_id"]))
        return Inbound("complete", wamid, number, sender, ref, arguments=at)
    if message.get("type") != "text":
        return ignored("only text and ✅ reactions are read")
    text = str((message.get("text") or {}).get("body") or "").strip()
    command = command_text(text)
    if command is not None:
        return Inbound("command", wamid, number, sender, text=command, arguments=at)
    quoted = (message.get("context") or {}).get("id")
    if not quoted:
        return ignored("neither a reply to a hub message nor a command")
    kind: InboundKind = "complete" if text.lower().rstrip(".!") == "done" else "reply"
    return Inbound(kind, wamid, number, sender, NativeRef(number, str(quoted)), text, at)


def command_text(text: str) -> str | None:
    """`/chitty todo add x` or plain `todo add x` (`list`, `done n`) as the command's text,
    its words lowercased (a phone capitalises the first); None: not a command."""
    if text.lower().startswith("/chitty"):
        text = text[len("/chitty") :].strip()
    elif not re.match(r"(?i)todo\s+(add|list|done)\b", text):
        return None
    words = text.split(maxsplit=2)
    return " ".join([w.lower() for w in words[:2]] + words[2:])


def inbound_status(status: Mapping[str, Any], number: str) -> Inbound:
    """A delivery status (sent, delivered, read, failed with Meta's errors) of a message."""
    wamid, state = str(status.get("id") or ""), str(status.get("status") or "")
    errors = _objects(status.get("errors"))
    why = "; ".join(f"{e.get('code')} {e.get('title') or e.get('message') or ''}" for e in errors)
    return Inbound(
        "status",
        f"{wamid}:{state}",
        number,
        str(status.get("recipient_id") or ""),
        NativeRef(number, wamid),
        why.strip(),
        {"status": state},
    )
