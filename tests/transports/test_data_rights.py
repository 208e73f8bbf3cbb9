"""GDPR rights over the gateway: export everything about a principal, then erase them."""

from __future__ import annotations

from typing import Any

from hub.audit import audit_verify
from hub.auth.principal import Role
from tests.transports.conftest import Gateway


def as_(gateway: Gateway, token: str, method: str, path: str, body: Any = None) -> Any:
    return gateway.request(method, path, body, headers={"Authorization": f"Bearer {token}"})


def test_export_then_erase_a_member(gateway: Gateway) -> None:
    alice, alice_token = gateway.tokens.create("alice", Role.MEMBER)
    bob, bob_token = gateway.tokens.create("bob", Role.MEMBER)
    me = alice.chitty_id
    status, project, _ = as_(
        gateway, alice_token, "POST", "/api/v1/projects", {"name": "alice's private project"}
    )
    assert status == 201, project
    private = project["entity"]["chittyId"]
    status, session, _ = as_(
        gateway,
        bob_token,
        "POST",
        "/api/v1/sessions",
        {"sessionId": "pair", "platform": "web", "participants": [bob.chitty_id, me]},
    )
    assert status == 201, session
    shared = session["entity"]["chittyId"]
    status, body, _ = as_(
        gateway,
        alice_token,
        "PUT",
        f"/api/v1/sessions/{shared}",
        {"context": {"messages": [{"role": "user", "content": "from alice", "author": me}]}},
    )
    assert status == 200, body

    # Export: only alice herself (or an admin) may; for bob it does not exist.
    status, _, _ = as_(gateway, bob_token, "GET", f"/api/v1/principals/{me}/export")
    assert status == 404
    status, export, _ = as_(gateway, alice_token, "GET", f"/api/v1/principals/{me}/export")
    assert status == 200, export
    assert {e["entity"]["chittyId"] for e in export["entities"]} >= {private, shared}
    assert {c["entityId"] for c in export["changes"]} >= {private, shared}
    assert [t["name"] for t in export["tokens"]] == ["alice"]
    assert alice_token not in str(export)

    # Erase: bob cannot erase alice; alice can erase herself.
    status, _, _ = as_(gateway, bob_token, "DELETE", f"/api/v1/principals/{me}")
    assert status == 404
    status, erased, _ = as_(gateway, alice_token, "DELETE", f"/api/v1/principals/{me}")
    assert status == 200, erased
    assert erased["erasedEntities"] == [private] and erased["deletedTokens"] == 1
    pseudonym = erased["pseudonym"]

    # Her token is gone; her private project is gone for everyone (admin included).
    assert as_(gateway, alice_token, "GET", "/api/v1/projects")[0] == 401
    assert gateway.request("GET", f"/api/v1/projects/{private}")[0] == 404
    # The shared session lives on, with alice pseudonymized in state, history and lists.
    status, now, _ = as_(gateway, bob_token, "GET", f"/api/v1/sessions/{shared}")
    assert status == 200 and now["entity"]["participants"] == [bob.chitty_id, pseudonym]
    assert now["entity"]["context"]["messages"][0]["author"] == pseudonym
    status, history, _ = gateway.request("GET", f"/api/v1/sessions/{shared}/history")
    assert status == 200 and me not in str(history) and pseudonym in str(history)
    status, page, _ = gateway.request("GET", "/api/v1/sessions?limit=500")
    assert status == 200 and me not in str(page)
    # Nothing names her any more: she is a principal the hub does not know.
    status, again, _ = gateway.request("GET", f"/api/v1/principals/{me}/export")
    assert status == 404, again
    # Every chain still verifies (read-only, next to the running hub).
    data = gateway.settings.data_dir
    report = audit_verify(data / "lmdb", data / "catalog", codec=gateway.settings.value_codec())
    assert report.ok, report.breaks
    assert report.redacted_events >= 2


def test_erasure_matches_whole_ids_and_an_unknown_principal_is_a_404(gateway: Gateway) -> None:
    carol, carol_token = gateway.tokens.create("carol", Role.MEMBER)
    nobody = carol.chitty_id[:-3]  # a ChittyID no one has, the start of carol's
    key = {"Idempotency-Key": "carol-once"}
    fields = {"sessionId": "carol's", "platform": "cli"}
    status, first, _ = gateway.request(
        "POST",
        "/api/v1/sessions",
        fields,
        headers={"Authorization": f"Bearer {carol_token}", **key},
    )
    assert status == 201, first

    status, body, _ = gateway.request("DELETE", f"/api/v1/principals/{nobody}")
    assert status == 404 and body["field"] == "id", body
    status, body, _ = gateway.request("DELETE", "/api/v1/principals/CHITTY-USER-NOSUCHONE")
    assert status == 404, body

    # Carol's remembered outcome is whole: her retry answers the first result, writes nothing.
    status, again, _ = gateway.request(
        "POST",
        "/api/v1/sessions",
        fields,
        headers={"Authorization": f"Bearer {carol_token}", **key},
    )
    assert status == 201 and again["entity"]["chittyId"] == first["entity"]["chittyId"], again
    assert again["seq"] == first["seq"] == 1
