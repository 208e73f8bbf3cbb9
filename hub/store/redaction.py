"""Erasure helpers: pseudonymize a string (a principal's ChittyID, say) in msgpack bodies."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import msgpack


def scrub_bytes(body: bytes, needle: str, replacement: str) -> bytes | None:
    """`body` (msgpack) with `needle` replaced by `replacement` in every string, or None if
    no string contains it.

    Strings anywhere in the structure are rewritten (map keys too): each occurrence of the
    needle as a whole word (not inside a longer run of letters and digits: erasing
    CHITTY-USER-1 leaves CHITTY-USER-12 alone) becomes the replacement. Binary values
    (Y-CRDT updates, nested encodings) are left alone: rewriting length-prefixed binary
    formats in place would corrupt them. An empty body (a tombstone) is left as it is;
    anything else that is not msgpack raises `ValueError`. Note the None: this is "no
    change", not `redact`'s tombstone; use `scrubber` to build a rewrite for `redact`.
    """
    if not needle:
        raise ValueError("scrub_bytes needs a non-empty needle")
    if not body:
        return None
    try:
        decoded = msgpack.unpackb(body, raw=False, strict_map_key=False)
    except (ValueError, msgpack.UnpackException) as exc:
        raise ValueError(f"body is not msgpack: {exc}") from None
    changed, scrubbed = _scrub(decoded, _whole(needle), replacement)
    if not changed:
        return None
    packed: bytes = msgpack.packb(scrubbed, use_bin_type=True)
    return packed


def _whole(needle: str) -> re.Pattern[str]:
    """`needle` as a whole identifier: erasing CHITTY-USER-1 must leave CHITTY-USER-12 alone."""
    return re.compile(rf"(?<![0-9A-Za-z]){re.escape(needle)}(?![0-9A-Za-z])")


def holds(body: bytes, needle: str) -> bool:
    """Whether a string in `body` (msgpack) holds `needle` as a whole identifier, as
    `scrub_bytes` would rewrite it (so CHITTY-USER-0 is not found in CHITTY-USER-0ABC)."""
    if not needle:
        raise ValueError("holds needs a non-empty needle")
    if needle.encode() not in body:
        return False
    try:
        decoded = msgpack.unpackb(body, raw=False, strict_map_key=False)
    except (ValueError, msgpack.UnpackException):
        return _whole(needle).search(body.decode("utf-8", "replace")) is not None
    return _scrub(decoded, _whole(needle), needle)[0]


def scrubber(needle: str, replacement: str) -> Callable[[bytes], bytes | None]:
    """A rewrite for `CheckpointStore.redact` that scrubs `needle` and leaves other bodies."""

    def rewrite(body: bytes) -> bytes | None:
        scrubbed = scrub_bytes(body, needle, replacement)
        return body if scrubbed is None else scrubbed

    return rewrite


def _scrub(value: Any, needle: re.Pattern[str], replacement: str) -> tuple[bool, Any]:
    if isinstance(value, str):
        scrubbed, count = needle.subn(lambda _: replacement, value)
        return count > 0, scrubbed
    if isinstance(value, list):
        results = [_scrub(item, needle, replacement) for item in value]
        return any(c for c, _ in results), [v for _, v in results]
    if isinstance(value, dict):
        changed = False
        out: dict[Any, Any] = {}
        for key, item in value.items():
            key_changed, new_key = _scrub(key, needle, replacement)
            item_changed, new_item = _scrub(item, needle, replacement)
            changed = changed or key_changed or item_changed
            out[new_key] = new_item
        return changed, out
    return False, value
