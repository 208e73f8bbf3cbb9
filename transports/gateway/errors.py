"""Every error the gateway answers is JSON `{"error", "detail", "field"}` with a 4xx/5xx status."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from aiohttp import web
from pydantic import ValidationError

from actors.router import HostUnavailable
from hub.store.errors import CorruptEntityError
from transports.gateway.json_body import JsonRefused, loads

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


RETRY_AFTER_S = 2  # what a 503 asks a client to wait before it retries


class ApiError(Exception):
    """An answer other than success: status, a short error code, a sentence, the field at fault
    (and for a 503 or 429, how many seconds to wait: `Retry-After`)."""

    def __init__(
        self,
        status: int,
        error: str,
        detail: str,
        field: str | None = None,
        retry_after: int | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.error = error
        self.detail = detail
        self.field = field
        self.retry_after = retry_after


def error_response(
    status: int, error: str, detail: str, field: str | None = None, retry_after: int | None = None
) -> web.Response:
    response = web.json_response({"error": error, "detail": detail, "field": field}, status=status)
    if retry_after is not None:
        response.headers["Retry-After"] = str(retry_after)
    return response


def validation_error(error: ValidationError, prefix: str = "") -> ApiError:
    """A pydantic error as a 422 naming the first field at fault (wire path)."""
    first = error.errors(include_url=False)[0]
    path = ".".join(str(p) for p in first["loc"])
    field = f"{prefix}.{path}" if prefix and path else (prefix or path)
    detail = first["msg"].removeprefix("Value error, ")  # a validator's own sentence
    return ApiError(422, "invalid", detail, field or None)


async def read_json(request: web.Request) -> object:
    """The request body as JSON; a 400 that says why when it is not (or is nested too deep),
    a 422 naming the field that holds a lone surrogate."""
    if request.content_length == 0 or not request.body_exists:
        raise ApiError(400, "bad_request", "a JSON body is required")
    try:
        return await request.json(loads=loads)
    except ValueError as error:  # not JSON, not UTF-8, or an integer past 64 bits
        raise ApiError(400, "bad_json", f"the body is not valid JSON: {error}") from None
    except JsonRefused as refused:
        raise ApiError(refused.status, refused.error, refused.detail, refused.field) from None


@web.middleware
async def json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Turn every failure into the JSON error shape; never a 500 for bad input."""
    try:
        return await handler(request)
    except ApiError as error:
        return error_response(
            error.status, error.error, error.detail, error.field, error.retry_after
        )
    except ValidationError as error:
        api = validation_error(error)
        return error_response(api.status, api.error, api.detail, api.field)
    except CorruptEntityError as error:  # checked as it loaded: named, never its content
        cause = getattr(error, "cause", error)  # Ray wraps what a host raised
        return error_response(500, "corrupt", str(cause), None)
    except HostUnavailable as error:  # a host restarting for longer than reads wait
        return error_response(503, "unavailable", str(error), None, RETRY_AFTER_S)
    except web.HTTPRequestEntityTooLarge as error:
        return error_response(413, "too_large", error.text or "request body too large")
    except web.HTTPException as error:
        if error.status < 400:
            raise
        code = error.reason.lower().replace(" ", "_")
        response = error_response(error.status, code, error.text or error.reason)
        if "Allow" in error.headers:  # a 405 names the methods the resource has
            response.headers["Allow"] = error.headers["Allow"]
        return response
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return error_response(500, "internal", "the hub failed to answer; this is our bug")
