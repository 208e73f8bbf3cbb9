"""The vendored third-party files (static/vendor/, pinned by SHA256SUMS) and their Subresource
Integrity hashes: the browser refuses a vendored script whose bytes are not the pinned ones."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

VENDOR = Path(__file__).parent / "static" / "vendor"
SUMS = VENDOR / "SHA256SUMS"


def pinned() -> dict[str, str]:
    """Each vendored file (path under vendor/) -> its pinned sha256, hex."""
    pins = {}
    for line in SUMS.read_text().splitlines():
        digest, _, name = line.partition("  ")
        pins[name] = digest
    return pins


def integrity() -> dict[str, str]:
    """Each vendored script's URL -> its `integrity` attribute, from the pinned digest."""
    return {
        f"/static/vendor/{name}": "sha256-" + base64.b64encode(bytes.fromhex(digest)).decode()
        for name, digest in pinned().items()
        if name.endswith(".js")
    }


def mismatches() -> list[str]:
    """Vendored files whose bytes differ from their pin, or that are missing (empty: all good)."""
    return [
        name
        for name, digest in pinned().items()
        if not (VENDOR / name).is_file()
        or hashlib.sha256((VENDOR / name).read_bytes()).hexdigest() != digest
    ]
