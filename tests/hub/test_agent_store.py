"""`AgentStore`: registrations (idempotent per service and name), secrets, marks, deliveries."""

from __future__ import annotations

from pathlib import Path

import pytest

from hub.agent_store import AgentStore, agent_id_for
from hub.auth.tokens import TokenStore
from hub.store.crypto import AesGcmCodec

SERVICE = "CHITTY-SERVICE-1"
OTHER = "CHITTY-SERVICE-2"


def _store(path: Path, codec: AesGcmCodec) -> tuple[TokenStore, AgentStore]:
    tokens = TokenStore(path, codec=codec)
    return tokens, AgentStore(tokens.environment, codec)


def test_register_update_survive_and_remove(tmp_path: Path) -> None:
    codec = AesGcmCodec(b"k" * 32)
    tokens, store = _store(tmp_path, codec)
    first, secret, new = store.register(
        SERVICE, "triage", "", ("todos",), {}, "http://127.0.0.1:9/hook", SERVICE
    )
    assert new and secret is not None and secret.startswith("whsec_")
    assert first.agent_id == agent_id_for(SERVICE, "triage") and first.delivery == "webhook"
    again, shown, new = store.register(
        SERVICE,
        "triage",
        "now with contexts",
        ("todos", "contexts"),
        {},
        first.webhook_url,
        SERVICE,
    )
    assert (again.agent_id, shown, new) == (first.agent_id, None, False)  # secret kept, not shown
    assert store.secret(first.agent_id) == secret
    store.register(OTHER, "triage", "", ("todos",), {}, None, OTHER)  # another service's
    assert [a.name for a in store.list(SERVICE)] == ["triage"] and len(store.list()) == 2
    store.begin(first.agent_id, {"host-0": 4, "host-1": 0})
    done = store.acknowledged(first.agent_id, {"host-0": 7}, 3, "host-0:7:0")
    assert (done.events, done.last_event_id) == (3, "host-0:7:0")
    tokens.close()

    tokens, store = _store(tmp_path, codec)  # reopened: everything is still there
    assert store.get(first.agent_id) == again
    assert store.marks(first.agent_id) == {"host-0": 7, "host-1": 0}
    assert store.delivered(first.agent_id).events == 3
    assert store.remove(first.agent_id) and store.get(first.agent_id) is None
    assert store.marks(first.agent_id) is None and store.secret(first.agent_id) is None
    assert not store.remove(first.agent_id)
    tokens.close()


def test_the_secret_is_stored_encrypted(tmp_path: Path) -> None:
    tokens, store = _store(tmp_path, AesGcmCodec(b"k" * 32))
    _, secret, _ = store.register(SERVICE, "hooked", "", ("todos",), {}, "https://x.test/", SERVICE)
    tokens.close()
    assert secret is not None
    on_disk = (tmp_path / "data.mdb").read_bytes()
    assert secret.encode() not in on_disk and b"hooked" not in on_disk


def test_dropping_the_webhook_drops_the_secret_and_marks(tmp_path: Path) -> None:
    tokens, store = _store(tmp_path, AesGcmCodec(b"k" * 32))
    made, secret, _ = store.register(SERVICE, "a", "", ("todos",), {}, "https://x.test/", SERVICE)
    store.begin(made.agent_id, {"host-0": 5})
    store.register(SERVICE, "a", "", ("todos",), {}, None, SERVICE)
    assert store.secret(made.agent_id) is None
    assert store.marks(made.agent_id) is None  # a webhook added later starts from then
    _, fresh, _ = store.register(SERVICE, "a", "", ("todos",), {}, "https://x.test/", SERVICE)
    assert fresh is not None and fresh != secret  # a new webhook gets a new secret, shown once
    tokens.close()


@pytest.mark.parametrize("name", ["", "Upper", "a" * 65, "under_score", "sp ace"])
def test_names_are_checked(tmp_path: Path, name: str) -> None:
    tokens, store = _store(tmp_path, AesGcmCodec(b"k" * 32))
    with pytest.raises(ValueError, match="name"):
        store.register(SERVICE, name, "", ("todos",), {}, None, SERVICE)
    tokens.close()
