"""Encryption at rest through the gateway: with a key file, what a member writes over REST
(and the member's own token) is nowhere in the bytes of the data directory, while the API
reads it back. (tests/actors/test_runtime.py checks the store alone, without the gateway and
its token store.)"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from hub.auth.principal import Role
from hub.auth.tokens import derive_signing_key
from hub.store import generate_key
from tests.actors.conftest import settings_for
from tests.transports.conftest import Gateway


@pytest.fixture
def sealed(ray_cluster: None, tmp_path: Path) -> Iterator[Gateway]:
    """A hub with a key file; the test closes it (to read its files closed too)."""
    key_file = tmp_path / "hub.key"
    key_file.write_text(generate_key().hex())
    running = Gateway(settings_for(tmp_path / "data", hosts=1, encryption_key_file=key_file))
    try:
        yield running
    finally:
        if not running.loop.is_closed() and running.loop.is_running():
            running.close()


def every_file(root: Path) -> dict[Path, bytes]:
    return {path: path.read_bytes() for path in sorted(root.rglob("*")) if path.is_file()}


def test_no_file_of_the_data_dir_holds_what_a_member_wrote_or_its_token(
    sealed: Gateway,
) -> None:
    marker = f"at-rest marker {secrets.token_hex(12)}: settlement 1,234,567"
    _, secret = sealed.tokens.create("at-rest-member", Role.MEMBER)
    member = {"Authorization": f"Bearer {secret}"}
    status, body, _ = sealed.request(
        "POST", "/api/v1/sessions", {"sessionId": "at-rest", "platform": "cli"}, headers=member
    )
    assert status == 201, body
    status, body, _ = sealed.request(
        "POST",
        "/api/v1/todos",
        {"content": marker, "sessionId": body["entity"]["chittyId"]},
        headers=member,
    )
    assert status == 201, body
    todo = body["entity"]["chittyId"]
    status, body, _ = sealed.request(
        "PUT", f"/api/v1/todos/{todo}", {"activeForm": marker}, headers=member
    )
    assert status == 200, body
    status, body, _ = sealed.request("GET", f"/api/v1/todos/{todo}", headers=member)
    assert status == 200 and body["entity"]["content"] == marker, body
    status, body, _ = sealed.request("GET", "/api/v1/todos?limit=500", headers=member)
    assert [item["entity"]["content"] for item in body["items"]] == [marker]

    data_dir = sealed.settings.data_dir
    secrets_of_the_member = {
        "marker": marker.encode(),
        "token secret": secret.encode(),
        "token hash": hashlib.sha256(secret.encode()).digest(),
        "signing key": derive_signing_key(secret),
    }

    def check(files: dict[Path, bytes]) -> None:
        stored = {p.relative_to(data_dir).parts[0] for p in files if p.suffix == ".mdb"}
        assert {"lmdb", "auth"} <= stored, sorted(files)  # the event store and the tokens
        assert sum(len(b) for b in files.values()) > 0
        for path, content in files.items():
            for what, needle in secrets_of_the_member.items():
                assert needle not in content, f"{what} in plaintext in {path}"

    check(every_file(data_dir))  # while the hub runs
    sealed.close()  # every entity snapshotted, every environment closed
    check(every_file(data_dir))
