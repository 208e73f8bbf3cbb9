"""JSON from clients, bounded: too deep a nesting and lone surrogates are refused with reasons.

Python's parser recurses once per level, so a body of `[[[[...` would otherwise reach the
recursion limit (a `RecursionError`), and a `"\\ud800"` escape decodes to a string no encoder
of ours (UTF-8, msgpack, LMDB keys) can write. Both are the client's error: 400 and 422.
"""

from __future__ import annotations

import json
import re

from hub.codec import json_int

MAX_JSON_DEPTH = 64  # arrays and objects inside each other; far past any real request

_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
_SURROGATES = re.compile("[\ud800-\udfff]")


class JsonRefused(Exception):
    """JSON that parses but is not taken: the status, error code, reason and field."""

    def __init__(self, status: int, error: str, detail: str, field: str | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.error = error
        self.detail = detail
        self.field = field


def _no_constant(name: str) -> object:
    raise ValueError(f"{name} is not a JSON number")


def loads(text: str) -> object:
    """`text` as JSON within the bounds; `ValueError` for text that is not JSON at all."""
    try:
        value = json.loads(text, parse_constant=_no_constant, parse_int=json_int)
    except RecursionError:
        raise _too_deep() from None
    if text.count("[") + text.count("{") > MAX_JSON_DEPTH and _deeper_than_limit(value):
        raise _too_deep()
    if _SURROGATE_ESCAPE.search(text) is not None:
        field = _surrogate_at(value, "")
        if field is not None:
            detail = "holds a lone UTF-16 surrogate (\\ud800-\\udfff without its pair): not text"
            raise JsonRefused(422, "invalid", detail, field or None)
    return value


def _too_deep() -> JsonRefused:
    detail = f"the JSON is nested deeper than {MAX_JSON_DEPTH} levels of arrays and objects"
    return JsonRefused(400, "too_deep", detail)


def _deeper_than_limit(value: object) -> bool:
    """Whether arrays and objects nest more than `MAX_JSON_DEPTH` deep: walked a level at a
    time, keeping only the containers of each (a batch of writes is mostly strings)."""
    level = [value] if isinstance(value, dict | list) else []
    for _ in range(MAX_JSON_DEPTH):
        level = [
            child
            for item in level
            for child in (item.values() if isinstance(item, dict) else item)
            if isinstance(child, dict | list)
        ]
        if not level:
            return False
    return True


def _surrogate_at(value: object, path: str) -> str | None:
    """The dotted path of the first string (or key) holding a lone surrogate, None if none."""
    if isinstance(value, str):
        return path if _SURROGATES.search(value) else None
    if isinstance(value, dict):
        for key, item in value.items():
            where = f"{path}.{key}" if path else str(key)
            if _SURROGATES.search(key):
                return path or where.encode("utf-8", "backslashreplace").decode()
            found = _surrogate_at(item, where)
            if found is not None:
                return found
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found = _surrogate_at(item, f"{path}.{index}" if path else str(index))
            if found is not None:
                return found
    return None
