"""Who is asking: a role and a ChittyID, from a service token or a user's JWT."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Literal

from hub.ids import Kind, parse


class Role(StrEnum):
    """The four roles of the spec's RBAC."""

    ADMIN = "admin"
    MEMBER = "member"
    VIEWER = "viewer"
    SERVICE = "service"


PrincipalKind = Literal["user", "service"]


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller; `signing_key` (never shown in repr) verifies its signatures."""

    chitty_id: str
    role: Role
    kind: PrincipalKind
    token_id: str | None = None
    signing_key: bytes | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        parse(self.chitty_id, expect=Kind.SERVICE if self.kind == "service" else Kind.USER)
        if not isinstance(self.role, Role):
            raise ValueError(f"role: {self.role!r} is not a Role")
        if self.kind not in ("user", "service"):
            raise ValueError(f"kind: {self.kind!r} is neither 'user' nor 'service'")


def can_write(role: Role) -> bool:
    """Whether the role may change anything at all (scope decides what)."""
    return role is not Role.VIEWER


def is_admin(role: Role) -> bool:
    """Whether the role administers the hub (tokens, every entity)."""
    return role is Role.ADMIN


def is_unrestricted(role: Role) -> bool:
    """Whether the role bypasses scope isolation (admins and services see everything)."""
    return role in (Role.ADMIN, Role.SERVICE)
