"""Principals: roles, ids checked against their kind, no signing key in repr."""

from __future__ import annotations

import pytest

from hub.auth.principal import Principal, Role, can_write, is_admin, is_unrestricted
from hub.ids import InvalidChittyId


def test_role_helpers() -> None:
    assert [r for r in Role if can_write(r)] == [Role.ADMIN, Role.MEMBER, Role.SERVICE]
    assert [r for r in Role if is_admin(r)] == [Role.ADMIN]
    assert [r for r in Role if is_unrestricted(r)] == [Role.ADMIN, Role.SERVICE]


def test_principal_is_frozen_and_hides_its_key() -> None:
    principal = Principal("CHITTY-SERVICE-S1", Role.SERVICE, "service", "t1", b"\x01" * 32)
    assert "0101" not in repr(principal) and "signing_key" not in repr(principal)
    with pytest.raises(AttributeError):
        principal.role = Role.ADMIN  # type: ignore[misc]


@pytest.mark.parametrize(
    ("chitty_id", "kind"),
    [("CHITTY-USER-A1", "service"), ("CHITTY-SERVICE-A1", "user"), ("alice", "user")],
)
def test_id_must_match_kind(chitty_id: str, kind: str) -> None:
    with pytest.raises(InvalidChittyId):
        Principal(chitty_id, Role.MEMBER, kind)  # type: ignore[arg-type]
