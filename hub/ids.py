"""ChittyIDs: `CHITTY-{KIND}-{body}` identifiers, time-sortable and unique across nodes."""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Callable
from enum import StrEnum
from functools import lru_cache
from typing import Annotated

from pydantic import AfterValidator

from hub.record import record


class Kind(StrEnum):
    """Every kind of entity the spec names a ChittyID for."""

    CONTEXT = "CONTEXT"  # contexts, and topics (the spec gives topics CHITTY-CONTEXT-* ids)
    PROJ = "PROJ"
    SESSION = "SESSION"
    TODO = "TODO"
    STATE = "STATE"
    REPO = "REPO"
    SERVICE = "SERVICE"
    MSG = "MSG"
    CONFLICT = "CONFLICT"
    USER = "USER"
    NODE = "NODE"
    DOC = "DOC"


_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_BODY_LEN = 26  # 128 bits in Crockford base32 (130 bits of room)
_MAX_BODY = 64
_ID_RE = re.compile(r"CHITTY-([A-Z]+)-([0-9A-Za-z]+)")
_KINDS = {kind.value: kind for kind in Kind}


class InvalidChittyId(ValueError):
    """A string that is not a well-formed ChittyID (or not of the expected kind)."""


@record
class ChittyId:
    """A parsed ChittyID."""

    kind: Kind
    body: str

    def __str__(self) -> str:
        return f"CHITTY-{self.kind}-{self.body}"


def parse(text: str, *, expect: Kind | None = None) -> ChittyId:
    """Parse `text` as a ChittyID, raising `InvalidChittyId` that says what is wrong."""
    if not isinstance(text, str):
        raise InvalidChittyId(f"a ChittyID must be a string, got {type(text).__name__}")
    match = _ID_RE.fullmatch(text)
    if match is None:
        raise InvalidChittyId(
            f"{text!r} is not a ChittyID: expected CHITTY-<KIND>-<body> with an upper-case kind "
            "and an alphanumeric body"
        )
    kind_text, body = match.groups()
    kind = _KINDS.get(kind_text)
    if kind is None:
        known = ", ".join(k.value for k in Kind)
        raise InvalidChittyId(f"{text!r} has unknown kind {kind_text!r} (known: {known})")
    if len(body) > _MAX_BODY:
        raise InvalidChittyId(f"{text!r} has a body longer than {_MAX_BODY} characters")
    if expect is not None and kind is not expect:
        raise InvalidChittyId(f"{text!r} is a {kind} id, expected a {expect} id")
    return ChittyId(kind, body)


def _encode(value: int, length: int) -> str:
    chars = []
    for _ in range(length):
        value, digit = divmod(value, 32)
        chars.append(_CROCKFORD[digit])
    return "".join(reversed(chars))


def derived(kind: Kind, *parts: str) -> str:
    """A deterministic ChittyID derived from `parts` (same parts, same id, on every node)."""
    digest = hashlib.sha256("\x1f".join(parts).encode("utf-8", "surrogatepass")).digest()
    return f"CHITTY-{kind}-{_encode(int.from_bytes(digest[:16], 'big'), _BODY_LEN)}"


class IdGenerator:
    """Makes time-sortable ChittyIDs: 48-bit milliseconds, 24-bit node tag, 56-bit sequence.

    The sequence starts at a random point and only grows within a millisecond, so ids from one
    generator are strictly increasing; the node tag keeps two nodes' ids apart.
    """

    def __init__(
        self,
        node_id: str,
        now_ms: Callable[[], int],
        rand_bits: Callable[[int], int] = secrets.randbits,
    ) -> None:
        self._node_tag = int.from_bytes(
            hashlib.sha256(node_id.encode("utf-8", "surrogatepass")).digest()[:3], "big"
        )
        self._now_ms = now_ms
        self._rand_bits = rand_bits
        self._last_ms = -1
        self._seq = 0

    def new(self, kind: Kind) -> str:
        ms = self._now_ms()
        if ms > self._last_ms:
            self._last_ms = ms
            self._seq = self._rand_bits(55)  # leave headroom so the sequence never overflows
        else:  # same millisecond, or the wall clock stepped back: stay monotonic
            self._seq += 1
            if self._seq >= 1 << 56:
                self._last_ms += 1
                self._seq = 0
        value = (self._last_ms << 80) | (self._node_tag << 56) | self._seq
        return f"CHITTY-{kind}-{_encode(value, _BODY_LEN)}"


def _validator(kind: Kind | None) -> Callable[[str], str]:
    # The same ids come back again and again (a principal's, an entity's): remember the valid
    # ones (an invalid one raises, and lru_cache keeps no exception).
    @lru_cache(maxsize=1 << 16)
    def check(value: str) -> str:
        parse(value, expect=kind)
        return value

    return check


ChittyIdStr = Annotated[str, AfterValidator(_validator(None))]
ContextId = Annotated[str, AfterValidator(_validator(Kind.CONTEXT))]
ProjectId = Annotated[str, AfterValidator(_validator(Kind.PROJ))]
SessionId = Annotated[str, AfterValidator(_validator(Kind.SESSION))]
TodoId = Annotated[str, AfterValidator(_validator(Kind.TODO))]
StateId = Annotated[str, AfterValidator(_validator(Kind.STATE))]
RepoId = Annotated[str, AfterValidator(_validator(Kind.REPO))]
ServiceId = Annotated[str, AfterValidator(_validator(Kind.SERVICE))]
MessageId = Annotated[str, AfterValidator(_validator(Kind.MSG))]
ConflictId = Annotated[str, AfterValidator(_validator(Kind.CONFLICT))]
