"""No secrets in log lines, and one warning line (not a traceback) for a malformed request.

A WebSocket may carry its credential as `?access_token=` (browsers cannot set headers on an
upgrade), so a request line can hold a secret: `redact` masks every credential-looking query
parameter, bearer credential, hub token and Slack token (an adapter's). `RedactingAccessLogger`
is aiohttp's access log with every value masked; `install` puts `RedactSecrets` on aiohttp's
loggers and on the given handlers, and turns aiohttp's "Error handling request" traceback for a
request it could not parse (a NUL in a header, say; the client's fault) into one warning line.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import unquote_plus

from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.web_log import AccessLogger
from aiohttp.web_request import BaseRequest
from aiohttp.web_response import StreamResponse

MASK = "[redacted]"
_QUERY_PARAM = re.compile(r"((?:[?&;]|%3F|%26)([^=&;\s\"'#?]+)=)([^&;\s\"'#]*)", re.IGNORECASE)
_SECRET_NAME = re.compile(
    r"(?i)token|secret|passw(?:or)?d|signature|credential|api[_\-]?key|auth|^(?:key|sig|code)$"
)
_BEARER = re.compile(r"(?i)\b(bearer\s+)[^\s\"',;]+")
_HUB_TOKEN = re.compile(r"\bchitty_[0-9a-f]{16}_[A-Za-z0-9_\-]+")
_SLACK_TOKEN = re.compile(r"\bx(?:ox[abposre]|app)-[A-Za-z0-9\-]+")  # an adapter's credentials
AIOHTTP_LOGGERS = (
    "aiohttp.access",
    "aiohttp.server",
    "aiohttp.web",
    "aiohttp.websocket",
    "aiohttp.client",
)


def redact(text: str) -> str:
    """`text` with credential-looking query values, bearer credentials, hub tokens and Slack
    tokens masked."""
    text = _QUERY_PARAM.sub(_masked, text)
    text = _BEARER.sub(lambda m: m.group(1) + MASK, text)
    return _SLACK_TOKEN.sub(MASK, _HUB_TOKEN.sub(MASK, text))


def _masked(param: re.Match[str]) -> str:
    """A query parameter with its value masked if its name (percent-decoded, as the server
    reads it) looks like a credential's."""
    if _SECRET_NAME.search(unquote_plus(param.group(2))):
        return param.group(1) + MASK
    return param.group(0)


class RedactingAccessLogger(AccessLogger):
    """aiohttp's access log (same format) with every value passed through `redact`, the
    request line's query string included, in the message and in the record's extras."""

    def _format_line(
        self, request: BaseRequest, response: StreamResponse, time: float
    ) -> Iterable[tuple[str | tuple[str, str], str]]:
        return [
            (key, redact(value) if isinstance(value, str) else value)
            for key, value in super()._format_line(request, response, time)
        ]


class RedactSecrets(logging.Filter):
    """Mask secrets in a record's message and exception text before any handler sees it."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, ()
        if record.exc_info and record.exc_info[1] is not None:
            text = logging.Formatter().formatException(record.exc_info)
            cleaned = redact(text)
            if cleaned != text:
                record.exc_text = cleaned
        return True


class MalformedRequestsWarn(logging.Filter):
    """aiohttp.server's "Error handling request" for a request it could not parse becomes one
    warning line: the client sent something malformed, the server did nothing wrong."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if isinstance(error, HttpProcessingError):
            remote = record.args[0] if isinstance(record.args, tuple) and record.args else "?"
            reason = " ".join(str(error.message).split())[:200]
            record.msg = "refused a malformed HTTP request from %s: %s %s"
            record.args = (remote, error.code, redact(reason))
            record.levelno, record.levelname = logging.WARNING, "WARNING"
            record.exc_info, record.exc_text = None, None
        return True


def install(handlers: Iterable[logging.Handler] = ()) -> None:
    """Redact secrets on aiohttp's loggers and on `handlers` (say, the root logger's), and log
    malformed requests as one warning line; installing twice changes nothing."""
    _add(logging.getLogger("aiohttp.server"), MalformedRequestsWarn())
    for name in AIOHTTP_LOGGERS:
        _add(logging.getLogger(name), RedactSecrets())
    for handler in handlers:
        _add(handler, RedactSecrets())


def _add(where: Any, kind: logging.Filter) -> None:
    if not any(type(existing) is type(kind) for existing in where.filters):
        where.addFilter(kind)
