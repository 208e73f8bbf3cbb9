"""A local emulator of Twilio's Programmable Messaging wire protocol on a loopback port, for the
official `twilio` library pointed at it.

REST API (HTTP basic auth `AccountSid:AuthToken`, form bodies, JSON answers):
`GET /2010-04-01/Accounts/{AccountSid}.json` and `POST .../Accounts/{AccountSid}/Messages.json`.
It answers as Twilio does: 201 with the message resource (sid `SM` + 32 hex digits), or
Twilio's JSON error (`code`, `message`, `more_info`, `status`): 401 / 20003 for wrong
credentials, 429 / 20429 with `Retry-After` when told to rate-limit, 400 / 21610 for a number
that texted STOP, 400 / 21602, 21604, 21617 for a missing or too long body or a missing `To`;
and nothing at all while `down` (connections are reset).

Towards the hub it plays Twilio too: `inbound(...)` POSTs an incoming-message webhook, form
encoded, with `X-Twilio-Signature` computed as Twilio documents it (HMAC-SHA1 with the auth
token over the URL it calls and every parameter name and value, sorted by name, base64) over
the hub's public URL. As Twilio's Advanced Opt-Out does, a STOP makes that number unsubscribed
(21610 from then on) and a START subscribes it again.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import itertools
import secrets
import time
import urllib.parse
from dataclasses import dataclass
from email.utils import formatdate
from typing import Any

import aiohttp
from aiohttp import web

from tests.emulators import serve

OPT_OUT = {"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "OPTOUT", "REVOKE"}
OPT_IN = {"START", "YES", "UNSTOP"}


@dataclass
class Texted:
    """A message the emulated account sent."""

    sid: str
    to: str
    sender: str
    body: str
    received: float  # time.time() when it arrived


class TwilioEmulator:
    """One Twilio account on a loopback port (see the module)."""

    def __init__(self, number: str = "+16505551234") -> None:
        self.account_sid = "AC" + secrets.token_hex(16)
        self.auth_token = secrets.token_hex(16)
        self.number = number
        self.sent: list[Texted] = []
        self.unsubscribed: set[str] = set()
        self.down = False
        self.rate_limited = 0  # answer this many message creates with 429 ...
        self.rate_limit_after = 0  # ... once this many more have been sent
        self.retry_after = 1
        self.asked: list[str] = []  # the `To` of every message create, answered or not
        self.changed = asyncio.Condition()
        self._sids = itertools.count(1)
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def start(self) -> TwilioEmulator:
        app = web.Application(middlewares=[self._faults])
        accounts = "/2010-04-01/Accounts/{account}"
        app.router.add_get(accounts + ".json", self._account)
        app.router.add_post(accounts + "/Messages.json", self._create)
        self._runner, self.url = await serve(app)
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def env(self, recipients: str, public_url: str | None = None) -> dict[str, str]:
        """The hub's environment for this account (CHITTY_TWILIO_API_URL pointing here)."""
        env = {
            "TWILIO_ACCOUNT_SID": self.account_sid,
            "TWILIO_AUTH_TOKEN": self.auth_token,
            "CHITTY_TWILIO_FROM": self.number,
            "CHITTY_SMS_TO": recipients,
            "CHITTY_TWILIO_API_URL": self.url,
        }
        if public_url:
            env["CHITTY_PUBLIC_URL"] = public_url
        return env

    # -- the REST API -------------------------------------------------------------------------

    @web.middleware
    async def _faults(self, request: web.Request, handler: Any) -> web.StreamResponse:
        if self.down:  # as if nothing listened: the client sees a reset connection
            assert request.transport is not None
            request.transport.close()
            raise ConnectionResetError("twilio emulator is down")
        if request.match_info.get("account") != self.account_sid or not self._authorized(request):
            return _error(401, 20003, "Authenticate")
        return await handler(request)  # type: ignore[no-any-return]

    def _authorized(self, request: web.Request) -> bool:
        scheme, _, encoded = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            user, _, password = base64.b64decode(encoded).decode().partition(":")
        except ValueError:
            return False
        return hmac.compare_digest(f"{user}:{password}", f"{self.account_sid}:{self.auth_token}")

    async def _account(self, request: web.Request) -> web.Response:
        return web.json_response(
            {
                "sid": self.account_sid,
                "friendly_name": "emulated",
                "status": "active",
                "type": "Full",
                "date_created": formatdate(usegmt=True),
                "uri": f"/2010-04-01/Accounts/{self.account_sid}.json",
            }
        )

    async def _create(self, request: web.Request) -> web.Response:
        form = await request.post()
        to, sender, body = (str(form.get(k, "")) for k in ("To", "From", "Body"))
        self.asked.append(to)
        if self.rate_limited > 0 and self.rate_limit_after <= 0:
            self.rate_limited -= 1
            return _error(429, 20429, "Too Many Requests", {"Retry-After": str(self.retry_after)})
        if not to:
            return _error(400, 21604, "A 'To' phone number is required.")
        if not body:
            return _error(400, 21602, "Message body is required.")
        if len(body) > 1600:
            return _error(400, 21617, "The concatenated message body exceeds the 1600 limit.")
        if to in self.unsubscribed:
            return _error(400, 21610, "Attempt to send to unsubscribed recipient")
        texted = Texted("SM" + f"{next(self._sids):032x}", to, sender, body, time.time())
        self.sent.append(texted)
        self.rate_limit_after -= 1
        async with self.changed:
            self.changed.notify_all()
        return web.json_response(
            {
                "sid": texted.sid,
                "account_sid": self.account_sid,
                "to": to,
                "from": sender,
                "body": body,
                "status": "queued",
                "direction": "outbound-api",
                "num_segments": "1",
                "api_version": "2010-04-01",
                "date_created": formatdate(usegmt=True),
                "uri": f"/2010-04-01/Accounts/{self.account_sid}/Messages/{texted.sid}.json",
            },
            status=201,
        )

    # -- what the account sent ----------------------------------------------------------------

    def to(self, number: str) -> list[str]:
        """The bodies texted to `number`, in order."""
        return [t.body for t in self.sent if t.to == number]

    async def wait_for(self, check: Any, timeout: float = 10.0) -> None:
        """Wait until `check()` is true (re-checked after every message sent)."""
        async with self.changed:
            await asyncio.wait_for(self.changed.wait_for(check), timeout)

    # -- Twilio calling the hub ---------------------------------------------------------------

    def signature(self, url: str, params: dict[str, str]) -> str:
        """X-Twilio-Signature of a request to `url` with form `params`, as Twilio computes it."""
        signed = url + "".join(name + params[name] for name in sorted(params))
        digest = hmac.new(self.auth_token.encode(), signed.encode(), hashlib.sha1).digest()
        return base64.b64encode(digest).decode()

    def incoming(self, sender: str, body: str, sid: str | None = None) -> dict[str, str]:
        """The form of an incoming-message webhook from `sender` (as Twilio sends it), noting
        an opt-out or -in the way Advanced Opt-Out does."""
        params = {
            "ToCountry": "US",
            "SmsMessageSid": "",
            "NumMedia": "0",
            "SmsSid": "",
            "SmsStatus": "received",
            "Body": body,
            "To": self.number,
            "NumSegments": "1",
            "MessageSid": sid or "SM" + secrets.token_hex(16),
            "AccountSid": self.account_sid,
            "From": sender,
            "ApiVersion": "2010-04-01",
        }
        params["SmsMessageSid"] = params["SmsSid"] = params["MessageSid"]
        keyword = body.strip().upper()
        if keyword in OPT_OUT:
            params["OptOutType"] = "STOP"
            self.unsubscribed.add(sender)
        elif keyword in OPT_IN:
            params["OptOutType"] = "START"
            self.unsubscribed.discard(sender)
        return params

    def signed(
        self, public_url: str, params: dict[str, str], signature: str | None = None
    ) -> tuple[dict[str, str], bytes]:
        """The headers and body of a webhook call Twilio signs for `public_url`."""
        headers = {
            "Content-Type": "application/x-www-form-urlencoded; charset=UTF-8",
            "X-Twilio-Signature": signature or self.signature(public_url, params),
            "User-Agent": "TwilioProxy/1.1",
        }
        return headers, urllib.parse.urlencode(params).encode()

    async def inbound(
        self,
        url: str,
        sender: str,
        body: str,
        sid: str | None = None,
        public_url: str | None = None,
        signature: str | None = None,
    ) -> tuple[int, str, str]:
        """POST an incoming message to the hub at `url`, signed for `public_url` (default:
        `url`, or `signature` as given); the answer's status, content type and text."""
        headers, data = self.signed(public_url or url, self.incoming(sender, body, sid), signature)
        async with (
            aiohttp.ClientSession() as session,
            session.post(url, data=data, headers=headers) as answer,
        ):
            return answer.status, answer.content_type, await answer.text()


def _error(
    status: int, code: int, message: str, headers: dict[str, str] | None = None
) -> web.Response:
    """Twilio's JSON error body."""
    return web.json_response(
        {
            "code": code,
            "message": message,
            "more_info": f"https://www.twilio.com/docs/errors/{code}",
            "status": status,
        },
        status=status,
        headers=headers,
    )
