"""SMS, with Twilio's official `twilio` library (its async client): hub changes as short texts
to every configured recipient; `LIST`, `ADD <text>` and `DONE <n>` replies act on todos.

Configured by the spec's `TWILIO_ACCOUNT_SID` and `TWILIO_AUTH_TOKEN`, plus `CHITTY_TWILIO_FROM`
(the hub's number), `CHITTY_SMS_TO` (comma-separated recipients; only they may act),
`CHITTY_TWILIO_API_URL` (the REST API's base URL: Twilio's own by default; a proxy or a test
emulator otherwise) and `CHITTY_PUBLIC_URL` (the URL Twilio calls the hub at, which its
webhook signature covers; the gateway's own URL when unset). Numbers are E.164 (`+1415...`).

SMS cannot edit, thread or react: a later change of an entity is a new text marked "updated".
A text longer than one SMS is sent as several, numbered "(1/3) ...", each within one segment
(160 GSM-7 characters, 70 when the text needs UCS-2), split between words where it can be:
nothing is cut. The render's status marks are left out (the status is spelled out below
them) so a state needs no UCS-2. STOP (and Twilio's other opt-out words) stops texts to that
number until START; Twilio's error 21610 (an unsubscribed recipient) says the same.
"""

from __future__ import annotations

import logging
import re
import urllib.parse
from collections.abc import Awaitable, Mapping
from typing import Any

import aiohttp
import phonenumbers
from pydantic import BaseModel, ConfigDict, Field
from twilio.base.exceptions import TwilioRestException, TwilioServiceException
from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.http.response import Response
from twilio.request_validator import SIGNATURE_HEADER, RequestValidator
from twilio.rest import Client
from twilio.twiml.messaging_response import MessagingResponse

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
    NativeRef,
    PermanentFailure,
    RateLimited,
    Received,
    TransientFailure,
)

log = logging.getLogger(__name__)

TWILIO_API = "https://api.twilio.com"
CHANNEL = "sms"  # the one native channel: the configured recipients, one session for them all
UNSUBSCRIBED = 21610  # Twilio: "Attempt to send to unsubscribed recipient"
OPT_OUT = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "OPTOUT", "REVOKE"})
OPT_IN = frozenset({"START", "YES", "UNSTOP"})
USAGE = "Reply LIST, ADD <text> or DONE <number>"
CAPABILITIES = ChannelCapabilities(
    supports_threads=False,
    supports_reactions=False,
    supports_attachments=False,
    supports_rich_text=False,
    supports_voice=False,
    supports_video=False,
    max_message_length=160,  # what one part holds: a GSM-7 segment (70 for UCS-2 text)
)

GSM7 = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_ESCAPED = "^{}\\[~]|€\f"  # in GSM-7 too, at two septets each
SEGMENT = {True: 160, False: 70}  # one segment's room: GSM-7, else UCS-2 (UTF-16 units)
_MARKS = re.compile(r"^(updated: )?(?:⬜|⏳|⛔|✅|•|🗑|📣) ", re.MULTILINE)


class SmsConfig(BaseModel):
    """The SMS adapter's settings, from the environment (`from_env`)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    account_sid: str = Field(min_length=1)
    auth_token: str = Field(min_length=1, repr=False)
    sender: str
    recipients: tuple[str, ...] = Field(min_length=1)
    api_url: str = TWILIO_API
    public_url: str | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> SmsConfig:
        """Raises ValueError naming the variable whose number does not parse."""
        recipients = [
            e164(n, "CHITTY_SMS_TO") for n in env["CHITTY_SMS_TO"].split(",") if n.strip()
        ]
        return cls(
            account_sid=env["TWILIO_ACCOUNT_SID"],
            auth_token=env["TWILIO_AUTH_TOKEN"],
            sender=e164(env["CHITTY_TWILIO_FROM"], "CHITTY_TWILIO_FROM"),
            recipients=tuple(dict.fromkeys(recipients)),
            api_url=env.get("CHITTY_TWILIO_API_URL") or TWILIO_API,
            public_url=env.get("CHITTY_PUBLIC_URL") or None,
        )


ENV = (
    "TWILIO_ACCOUNT_SID",
    "TWILIO_AUTH_TOKEN",
    "CHITTY_TWILIO_FROM",
    "CHITTY_SMS_TO",
    "CHITTY_TWILIO_API_URL",
    "CHITTY_PUBLIC_URL",
)
NEEDS = ("TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "CHITTY_TWILIO_FROM", "CHITTY_SMS_TO")


def e164(number: str, variable: str) -> str:
    """`number` in E.164, or a ValueError naming the variable it came from."""
    try:
        parsed = phonenumbers.parse(number.strip(), None)
    except phonenumbers.NumberParseException as error:
        raise ValueError(
            f"{variable}: {number.strip()!r} is not a phone number ({error})"
        ) from None
    if not phonenumbers.is_valid_number(parsed):
        raise ValueError(f"{variable}: {number.strip()!r} is not a valid phone number")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


class _TwilioAt(AsyncTwilioHttpClient):
    """Twilio's own async HTTP client, aimed at `base` instead of https://api.twilio.com. A
    429 surfaces here as `RateLimited`: the library's exception drops its Retry-After."""

    def __init__(self, base: str) -> None:
        super().__init__(timeout=30)
        self.base = base.rstrip("/")

    async def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> Response:
        if url.startswith(TWILIO_API):
            url = self.base + url.removeprefix(TWILIO_API)
        response = await super().request(method, url, *args, **kwargs)
        if response.status_code == 429:
            raise RateLimited(_seconds((response.headers or {}).get("Retry-After")))
        return response


def _seconds(retry_after: str | None) -> float:
    """A Retry-After header as seconds to wait (1 when missing or not a number of seconds)."""
    try:
        return max(float(retry_after or 1), 0.0)
    except ValueError:
        return 1.0


class _Unsubscribed(Exception):
    """Twilio's 21610: the recipient texted STOP."""


class SmsAdapter:
    """The hub's number (see the module)."""

    id = "sms"
    channel = "sms"

    def __init__(self, config: SmsConfig) -> None:
        self.config = config
        self._connected = False
        self._client: Client | None = None
        self._http: _TwilioAt | None = None
        # Kept in memory: Twilio keeps the opt-outs too (21610 teaches them again after a
        # restart), and refuses to text those numbers whatever we send.
        self.opted_out: set[str] = set()
        # Parts already sent of a delivery that stopped half way (a 429, an outage), by
        # (recipient, part): its retry sends only the rest.
        self._sent: dict[str, dict[tuple[str, int], str]] = {}

    # -- lifecycle ----------------------------------------------------------------------------

    @property
    def client(self) -> Client:
        if self._client is None:  # made inside the running loop (its session binds to it)
            self._http = _TwilioAt(self.config.api_url)
            self._client = Client(
                self.config.account_sid, self.config.auth_token, http_client=self._http
            )
        return self._client

    async def connect(self) -> None:
        """Fetch the account: the credentials work and the API answers."""
        await self._call(self.client.api.v2010.accounts(self.config.account_sid).fetch_async())

    async def disconnect(self) -> None:
        self._connected = False
        if self._http is not None:
            await self._http.close()
        self._client = self._http = None

    def is_connected(self) -> bool:
        return self._connected

    def on_message(self, handler: Handler) -> None:
        """Texts arrive only by webhook (`SmsHooks`): there is nothing to hand over here."""

    def get_capabilities(self) -> ChannelCapabilities:
        return CAPABILITIES

    def channel_for(self, project_id: str | None) -> str | None:
        return CHANNEL

    def split(self, text: str) -> list[str]:
        """The texts `text` is sent as (`CanSplit`: the runner hands it over whole)."""
        return parts(plain(text))

    async def heard(self, event: Inbound, status: str, text: str) -> None:
        """STOP and START (`HearsInbound`): who may be texted."""
        opt = event.arguments.get("opt")
        if opt == "out":
            self.opted_out.add(event.actor)
        elif opt == "in":
            self.opted_out.discard(event.actor)

    # -- outbound -----------------------------------------------------------------------------

    async def send_message(self, message: AdapterMessage) -> NativeRef:
        """Every part to every recipient not opted out; the first part's sid is the message's.
        A recipient refused for good fails the delivery (after the others got it)."""
        pieces = self.split(message.text)
        sent = self._sent.setdefault(message.delivery, {}) if message.delivery else {}
        refused = []
        first = None
        for to in self.config.recipients:
            if to in self.opted_out:
                continue
            try:
                for n, piece in enumerate(pieces):
                    if (to, n) not in sent:
                        sent[to, n] = await self._text(to, piece)
            except _Unsubscribed:
                log.info("sms: %s has opted out; no more texts to it until START", to)
                self.opted_out.add(to)
                continue
            except PermanentFailure as error:
                refused.append(f"{to}: {error}")
                continue
            first = first or sent[to, 0]
        if refused:
            raise PermanentFailure("Twilio refused " + "; ".join(refused))
        self._sent.pop(message.delivery, None)
        if first is None:
            raise PermanentFailure("every recipient has opted out (STOP): nothing sent")
        return NativeRef(CHANNEL, first)

    async def _text(self, to: str, body: str) -> str:
        """One SMS; its sid."""
        create = self.client.messages.create_async(to=to, from_=self.config.sender, body=body)
        return str((await self._call(create)).sid)

    async def _call(self, call: Awaitable[Any]) -> Any:
        """One API call; Twilio's failures as the seam's delivery errors."""
        try:
            answer = await call
        except (TwilioRestException, TwilioServiceException) as error:
            detail = f"Twilio {error.status} (code {error.code})"
            if error.status == 401 or error.code == 20003:
                self._connected = False
                raise BadCredentials(f"{detail}: the account SID or auth token") from None
            if error.status == 429:  # without a Retry-After (else `_TwilioAt` raised)
                raise RateLimited(1.0) from None
            if error.code == UNSUBSCRIBED:
                raise _Unsubscribed(detail) from None
            if error.status >= 500:
                raise TransientFailure(detail) from None
            raise PermanentFailure(detail) from None
        except (aiohttp.ClientError, OSError, TimeoutError) as error:
            self._connected = False
            raise TransientFailure(f"Twilio is unreachable: {error!r}") from None
        self._connected = True
        return answer


def make(env: Mapping[str, str]) -> SmsAdapter:
    """The adapter, from the environment (`CHANNELS` names this function)."""
    return SmsAdapter(SmsConfig.from_env(env))


# -- how a text reads -------------------------------------------------------------------------


def plain(text: str) -> str:
    """The render's text without its status marks (a state says its status in words below)."""
    return _MARKS.sub(r"\1", text).replace(" · ", ", ")


def gsm7(text: str) -> bool:
    """Whether GSM-7 holds `text` (else it goes as UCS-2)."""
    return all(c in GSM7 or c in GSM7_ESCAPED for c in text)


def _size(text: str, gsm: bool) -> int:
    if gsm:
        return len(text) + sum(c in GSM7_ESCAPED for c in text)
    return len(text.encode("utf-16-le")) // 2


def parts(text: str) -> list[str]:
    """`text` as texts of one segment each: itself if it fits, else numbered "(1/3) ..." parts
    split between words where they can be (a word longer than a part is split in it)."""
    gsm = gsm7(text)
    room = SEGMENT[gsm]
    if _size(text, gsm) <= room:
        return [text]
    count = 2
    while True:  # the numbering's width depends on how many parts there are
        width = len(f"({count}/{count}) ")
        chunks = _chunks(text, room - width, gsm)
        if len(str(len(chunks))) <= len(str(count)):
            break
        count = len(chunks)
    return [f"({n}/{len(chunks)}) {chunk}" for n, chunk in enumerate(chunks, 1)]


def _chunks(text: str, room: int, gsm: bool) -> list[str]:
    """`text` in pieces of at most `room`, each cut at the last space or newline that fits (the
    space itself dropped), else where the room ends."""
    chunks = []
    rest = text
    while rest:
        end, used = 0, 0
        while end < len(rest) and used + _size(rest[end], gsm) <= room:
            used += _size(rest[end], gsm)
            end += 1
        if end < len(rest):
            cut = max(rest.rfind(" ", 0, end + 1), rest.rfind("\n", 0, end + 1))
            if cut > 0:
                chunks.append(rest[:cut])
                rest = rest[cut + 1 :]
                continue
        chunks.append(rest[:end])
        rest = rest[end:]
    return chunks


# -- webhooks ---------------------------------------------------------------------------------

HOOKS = (
    Hook(
        "sms_inbound",
        "POST",
        "inbound",
        "Twilio incoming SMS",
        "A text to the hub's number: LIST, ADD <text>, DONE <n> act on the SMS session's todos "
        "(answered in TwiML); STOP and START stop and resume texts. Only CHITTY_SMS_TO may act.",
        "Twilio's X-Twilio-Signature (TWILIO_AUTH_TOKEN, over CHITTY_PUBLIC_URL + the path), "
        "not a hub credential",
    ),
)


class SmsHooks:
    """Twilio's incoming-message webhook, checked with its request signature."""

    def __init__(self, config: SmsConfig) -> None:
        self.config = config
        self.validator = RequestValidator(config.auth_token)

    def receive(self, request: HookRequest) -> Received:
        public = self.config.public_url
        url = public.rstrip("/") + request.path_qs if public else request.url
        form = dict(urllib.parse.parse_qsl(request.body.decode("utf-8", "replace"), True))
        signature = request.headers.get(SIGNATURE_HEADER, "")
        if not signature or not self.validator.validate(url, form, signature):
            raise HookRefused(
                401,
                "unauthenticated",
                f"bad Twilio signature for {url} (CHITTY_PUBLIC_URL: the URL Twilio calls)",
                SIGNATURE_HEADER,
            )
        for name in ("MessageSid", "From"):
            if not form.get(name):
                raise HookRefused(400, "bad_request", f"a Twilio message has a {name}", name)
        event = inbound_sms(form, self.config.recipients)
        # Opt words are Twilio's to answer; a stranger gets no text from us.
        quiet = event.kind == "ignored" and event.text != USAGE
        return Received((event,), reply=lambda _, text: twiml("" if quiet else text))


def webhooks(env: Mapping[str, str]) -> SmsHooks:
    """Twilio's webhook (`CHANNELS` names this function)."""
    return SmsHooks(SmsConfig.from_env(env))


def inbound_sms(form: Mapping[str, str], recipients: tuple[str, ...]) -> Inbound:
    """A text as what the hub should do: an opt-out or -in (from anyone), a command (from a
    recipient), else ignored (a recipient's other text is answered with the usage)."""
    sid, sender = form["MessageSid"], form["From"]
    body = form.get("Body", "").strip()
    keyword = form.get("OptOutType", "").upper() or body.upper()
    if keyword in OPT_OUT or keyword in OPT_IN:
        opt = "out" if keyword in OPT_OUT else "in"
        return Inbound("ignored", sid, CHANNEL, sender, text=f"opted {opt}", arguments={"opt": opt})
    if sender not in recipients:
        log.info("sms from %s ignored: not one of CHITTY_SMS_TO", sender)
        return Inbound("ignored", sid, CHANNEL, sender, text="not one of CHITTY_SMS_TO")
    words = body.split(maxsplit=1)
    verb = words[0].upper() if words else ""
    rest = words[1] if len(words) > 1 else ""
    if verb == "LIST" and not rest:
        return Inbound("command", sid, CHANNEL, sender, text="todo list")
    if verb in ("ADD", "DONE") and rest:
        return Inbound("command", sid, CHANNEL, sender, text=f"todo {verb.lower()} {rest}")
    return Inbound("ignored", sid, CHANNEL, sender, text=USAGE)


def twiml(text: str) -> HookAnswer:
    """A TwiML answer texting `text` back (in parts, as `send_message` would); empty: none."""
    response = MessagingResponse()
    for piece in parts(plain(text)) if text else []:
        response.message(piece)
    return HookAnswer(200, str(response), "text/xml")
