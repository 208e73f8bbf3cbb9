"""Encryption at rest: an AES-256-GCM `ValueCodec`, and reading its key from a file."""

from __future__ import annotations

import base64
import binascii
import os
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

_VERSION = b"\x01"  # format byte: lets a later scheme (e.g. key ids for rotation) coexist
_NONCE = 12


class EncryptionKeyError(ValueError):
    """A key file that does not hold a usable 256-bit key."""


def generate_key() -> bytes:
    """A fresh random 256-bit key."""
    return AESGCM.generate_key(bit_length=256)


def load_key(path: Path) -> bytes:
    """A 256-bit key from a file holding 32 raw bytes, 64 hex digits or base64 of 32 bytes."""
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise EncryptionKeyError(
            f"cannot read the encryption key file {path}: {error.strerror}"
        ) from None
    return parse_key(raw, str(path))


def parse_key(raw: bytes, source: str) -> bytes:
    """A 256-bit key from 32 raw bytes, 64 hex digits or base64 of 32 bytes; `source` names
    where it came from in the error."""
    text = raw.strip()
    candidates = [raw] if len(raw) == 32 else []
    for decode in (binascii.unhexlify, base64.b64decode):
        try:
            candidates.append(decode(text))
        except (binascii.Error, ValueError):
            continue
    for key in candidates:
        if len(key) == 32:
            return key
    raise EncryptionKeyError(
        f"{source} does not hold a 256-bit key (32 raw bytes, 64 hex digits or base64 of 32 bytes)"
    )


class AesGcmCodec:
    """Every stored value sealed with AES-256-GCM under a fresh 96-bit nonce."""

    def __init__(self, key: bytes) -> None:
        if len(key) != 32:
            raise EncryptionKeyError("an AES-256 key is 32 bytes")
        self._aead = AESGCM(key)

    def encode(self, data: bytes) -> bytes:
        nonce = os.urandom(_NONCE)
        return _VERSION + nonce + self._aead.encrypt(nonce, data, None)

    def decode(self, data: bytes) -> bytes:
        if data[:1] != _VERSION or len(data) < 1 + _NONCE + 16:
            raise ValueError("not a value sealed by this codec")
        nonce, sealed = data[1 : 1 + _NONCE], data[1 + _NONCE :]
        try:
            return self._aead.decrypt(nonce, sealed, None)
        except InvalidTag:
            raise ValueError("value does not open with this key (wrong key, or damaged)") from None
