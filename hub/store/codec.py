"""The value codec seam: every stored value passes through it, so encryption can slot in later."""

from __future__ import annotations

from typing import Protocol


class ValueCodec(Protocol):
    """Transforms value bytes on their way to and from disk (keys are never encoded)."""

    def encode(self, data: bytes) -> bytes: ...

    def decode(self, data: bytes) -> bytes:
        """Invert `encode`; raise `ValueError` on bytes it cannot decode (wrap `InvalidTag`)."""
        ...


class IdentityCodec:
    """Stores values as they are (the default: no encryption at rest)."""

    def encode(self, data: bytes) -> bytes:
        return data

    def decode(self, data: bytes) -> bytes:
        return data
