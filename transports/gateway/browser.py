"""Browser sessions: the web UI's sign-in exchanges a credential for an HttpOnly,
SameSite=Strict cookie, so no page script (ours or another origin's) can read the credential
and it never appears in a URL or in local storage.

The gateway keeps the credential server-side under a random session id. A request with the
cookie is authenticated with that credential exactly as if it came in `Authorization` (same
principal, same scope; a revoked token stops working at once). A request that may change
something must also carry the session's CSRF token in `X-CSRF-Token`: a page of another
origin can neither read that token nor set a custom header without a CORS preflight, which
this gateway never grants.
"""

from __future__ import annotations

import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

COOKIE = "chitty_session"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
SESSION_TTL_S = 12 * 3600.0  # a browser signs in again after this, whatever its token's life
MAX_SESSIONS = 10_000  # the oldest is forgotten first; each took a valid credential to open


@dataclass(frozen=True, slots=True)
class BrowserSession:
    credential: str
    csrf: str
    expires_at: float


class BrowserSessions:
    """Open browser sessions of one gateway process, by session id (lost on restart: the
    browser signs in again)."""

    def __init__(
        self,
        ttl_s: float = SESSION_TTL_S,
        most: int = MAX_SESSIONS,
        now: Callable[[], float] = time.monotonic,
    ) -> None:
        self._ttl_s = ttl_s
        self._most = most
        self._now = now
        self._open: OrderedDict[str, BrowserSession] = OrderedDict()

    def open(self, credential: str) -> tuple[str, BrowserSession]:
        """A new session for `credential` (already verified): its id and the session."""
        while len(self._open) >= self._most:
            self._open.popitem(last=False)
        session_id = secrets.token_urlsafe(32)
        session = BrowserSession(credential, secrets.token_urlsafe(32), self._now() + self._ttl_s)
        self._open[session_id] = session
        return session_id, session

    def get(self, session_id: str) -> BrowserSession | None:
        """The open session `session_id` names; None when unknown or expired."""
        session = self._open.get(session_id)
        if session is not None and session.expires_at <= self._now():
            del self._open[session_id]
            return None
        return session

    def close(self, session_id: str) -> None:
        self._open.pop(session_id, None)
