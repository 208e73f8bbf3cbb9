"""Data damaged on disk is checked as it loads: the entity answers a clear 500 naming the
corruption (never a stack trace, never the damaged content), counted in /metrics, and every
other entity is served as before."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from pathlib import Path

import lmdb
import pytest
import ray
from prometheus_client.parser import text_string_to_metric_families

from tests.actors.conftest import settings_for
from tests.transports.conftest import SESSION, Gateway

Damage = Callable[[bytes, bytes], bytes]


def flip_a_content_byte(value: bytes, marker: bytes) -> bytes:
    """One byte of the stored content changed (plaintext: inside the marker; sealed: inside
    the ciphertext, which then fails its tag)."""
    at = value.index(marker) + 3 if marker in value else len(value) // 2
    return value[:at] + bytes([value[at] ^ 0x20]) + value[at + 1 :]


def break_the_header(value: bytes, marker: bytes) -> bytes:
    """The value's first byte (msgpack's array header, or the sealing's version) made invalid."""
    return b"\xc1" + value[1:]


@pytest.fixture(params=["plaintext", "encrypted"])
def hub(request: pytest.FixtureRequest, ray_cluster: None, tmp_path: Path) -> Iterator[Gateway]:
    extra = {"encryption": False} if request.param == "plaintext" else {}
    running = Gateway(settings_for(tmp_path / "data", hosts=1, **extra))
    yield running
    running.close()


def damage_event(hub: Gateway, entity_id: str, seq: int, damage: Damage, marker: bytes) -> None:
    """Passivate every entity, then change the stored event the way a damaged disk would."""
    ray.get([host.passivate() for host in hub.runtime.hosts.values()])
    env = lmdb.open(str(hub.settings.data_dir / "lmdb"), max_dbs=8)
    try:
        events = env.open_db(b"events")
        with env.begin(write=True, db=events) as txn:
            key = entity_id.encode() + b"\x00" + seq.to_bytes(8, "big")
            value = txn.get(key)
            assert value is not None
            txn.put(key, damage(value, marker))
    finally:
        env.close()


def corrupt_count(hub: Gateway) -> float:
    status, text, _ = hub.request("GET", "/metrics")
    assert status == 200
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "chitty_host_corrupt_entities_total"
    )


@pytest.mark.parametrize("damage", [flip_a_content_byte, break_the_header])
def test_a_damaged_entity_is_refused_as_corrupt_and_the_rest_is_served(
    hub: Gateway, damage: Damage
) -> None:
    marker = f"integrity marker {secrets.token_hex(6)}"
    status, made, _ = hub.request(
        "POST", "/api/v1/todos", {"content": marker, "sessionId": SESSION}
    )
    assert status == 201, made
    todo = made["entity"]["chittyId"]
    status, other, _ = hub.request(
        "POST", "/api/v1/todos", {"content": "fine", "sessionId": SESSION}
    )
    assert status == 201, other
    assert hub.request("PUT", f"/api/v1/todos/{todo}", {"activeForm": "a"})[0] == 200
    damage_event(hub, todo, 1, damage, marker.encode())

    for method, path, body in (
        ("GET", f"/api/v1/todos/{todo}", None),
        ("GET", f"/api/v1/todos/{todo}/history", None),
        ("PUT", f"/api/v1/todos/{todo}", {"activeForm": "b"}),
        ("GET", f"/api/v1/todos/{todo}", None),
    ):
        status, answer, _ = hub.request(method, path, body)
        assert status == 500 and answer["error"] == "corrupt", (method, path, answer)
        assert todo in answer["detail"] and "integrity check" in answer["detail"], answer
        assert "chitty audit verify" in answer["detail"], answer
        text = str(answer)
        assert "Traceback" not in text and marker[:-4] not in text, answer
    assert corrupt_count(hub) == 1  # found once, however often it is asked for

    status, fine, _ = hub.request("GET", f"/api/v1/todos/{other['entity']['chittyId']}")
    assert status == 200 and fine["entity"]["content"] == "fine", fine
    status, made, _ = hub.request("POST", "/api/v1/todos", {"content": "new", "sessionId": SESSION})
    assert status == 201, made
