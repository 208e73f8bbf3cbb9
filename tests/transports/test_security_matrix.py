"""Every route x every kind of caller: the exact status each one gets (issue 6, "a matrix test").

Callers: no credential, a bad one, a revoked token, an expired (rotated past its overlap)
token, a service that does not sign, a service that signs, an admin, and members and viewers
who are (or are not) members of the entity a route names: its creator, a stranger, someone
in its `sharedWith`, a project team member (inheritance), a viewer in `sharedWith`, a viewer
who is nobody. A denied read answers 404, a denied write 403, and lists leave out what the
caller may not see. `test_the_matrix_covers_every_route` fails when a route is added that the
matrix does not list.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest
from yarl import URL

from hub.auth.principal import Role
from hub.auth.signing import sign_frame, signed_headers
from hub.auth.tokens import derive_signing_key, token_id_of
from hub.ids import IdGenerator, Kind
from tests.transports.conftest import Gateway
from transports.channels import CHANNELS
from transports.gateway.auth import PUBLIC, STATIC

# -- callers ----------------------------------------------------------------------------------

REFUSED = ("anonymous", "bad", "revoked", "expired", "service_unsigned")
UNRESTRICTED = ("admin", "service")
PEOPLE = ("owner", "stranger", "shared", "team", "viewer", "viewer_stranger")
CASES = (*REFUSED, *UNRESTRICTED, *PEOPLE)
ROLE_CASES = (*UNRESTRICTED, *PEOPLE)
VIEWERS = ("viewer", "viewer_stranger")

# Every target below is created by `owner` and shares with `shared` and `viewer`. The project
# has `team` in metadata.team; sessions, todos (through projectId) and contexts (through
# sources) inherit the project's members; topics, repos and services inherit nothing.
INHERITS_TEAM = frozenset({"projects", "sessions", "todos", "contexts"})
DOMAINS = ("topics", "projects", "sessions", "todos", "contexts", "repos", "services")

_ids = IdGenerator("security-matrix", lambda: time.time_ns() // 1_000_000)


@dataclass
class Caller:
    name: str
    token: str | None
    chitty_id: str | None = None
    key: bytes | None = None  # set: the caller signs its requests and frames


@dataclass
class Answer:
    status: int
    body: Any
    headers: dict[str, str]


@dataclass
class World:
    gateway: Gateway
    session: aiohttp.ClientSession
    callers: dict[str, Caller]
    project: str = ""
    session_id: str = ""
    targets: dict[str, str] = field(default_factory=dict)  # domain -> the entity under test
    conflict_todo: str = ""
    conflict: str = ""

    def send(self, caller: str | Caller, method: str, path: str, body: Any = None) -> Answer:
        who = self.callers[caller] if isinstance(caller, str) else caller

        async def go() -> Answer:
            data = json.dumps(body).encode() if body is not None else b""
            headers = {"Content-Type": "application/json"}
            if who.token is not None:
                headers["Authorization"] = f"Bearer {who.token}"
            if who.key is not None:
                headers.update(signed_headers(who.key, method, path, data))
            url = URL(self.gateway.url + path, encoded=True)  # sent exactly as signed
            async with self.session.request(
                method, url, data=data or None, headers=headers
            ) as response:
                text = await response.text()
                try:
                    parsed = json.loads(text) if text else None
                except ValueError:
                    parsed = text
                return Answer(response.status, parsed, dict(response.headers))

        return self.gateway.call(go())

    def ok(self, caller: str, method: str, path: str, body: Any = None) -> Any:
        answer = self.send(caller, method, path, body)
        assert answer.status in (200, 201), (method, path, answer)
        return answer.body

    def seq(self, entity_id: str, domain: str) -> int:
        return int(self.ok("admin", "GET", f"/api/v1/{domain}/{entity_id}")["seq"])

    def may_read(self, case: str, domain: str) -> bool:
        if case in UNRESTRICTED or case in ("owner", "shared", "viewer"):
            return True
        return case == "team" and domain in INHERITS_TEAM

    def may_write(self, case: str, domain: str) -> bool:
        return case not in VIEWERS and self.may_read(case, domain)

    # -- entities -----------------------------------------------------------------------------

    def body(self, domain: str) -> dict[str, Any]:
        """A new entity of `domain` shaped like the targets (shares and inheritance alike)."""
        share = {"sharedWith": [self.callers["shared"].chitty_id, self.callers["viewer"].chitty_id]}
        tag = time.time_ns()
        return {
            "topics": {"title": f"topic {tag}"},
            "projects": {"name": f"project {tag}", "metadata": {"team": [self.team_id]}},
            "sessions": {"sessionId": f"s-{tag}", "platform": "web", "projectId": self.project},
            "todos": {
                "content": f"todo {tag}",
                "sessionId": self.session_id,
                "projectId": self.project,
            },
            "contexts": {"type": "document", "sources": [self.project]},
            "repos": {"url": f"https://example.com/{tag}.git"},
            "services": {"name": f"service {tag}"},
        }[domain] | share

    @property
    def team_id(self) -> str:
        chitty_id = self.callers["team"].chitty_id
        assert chitty_id is not None
        return chitty_id

    def create(self, domain: str, by: str = "owner", **extra: Any) -> str:
        made = self.ok(by, "POST", f"/api/v1/{domain}", self.body(domain) | extra)
        return str(made["entity"]["chittyId"])

    def new_conflict(self) -> tuple[str, str]:
        """A todo (like the targets) with an open conflict on its status: (todo, conflict)."""
        todo = self.create("todos")
        path = f"/api/v1/todos/{todo}"
        clock = self.ok("owner", "GET", path)["vectorClock"]
        self.ok("owner", "PUT", path, {"status": "completed", "vectorClock": {**clock, "a": 1}})
        raced = self.ok(
            "owner", "PUT", path, {"status": "blocked", "vectorClock": {**clock, "b": 1}}
        )
        [conflict] = raced["conflicts"]
        return todo, str(conflict["conflictId"])


BENIGN: dict[str, dict[str, Any]] = {  # an update that changes no membership
    "topics": {"description": "changed"},
    "projects": {"description": "changed"},
    "sessions": {"context": {"state": {"changed": True}}},
    "todos": {"activeForm": "changing"},
    "contexts": {"content": {"summary": "changed"}},
    "repos": {"branch": "changed"},
    "services": {"health": "healthy"},
}


@pytest.fixture(scope="module")
def world(gateway: Gateway) -> Iterator[World]:
    tokens = gateway.tokens

    def person(name: str, role: Role) -> Caller:
        record, secret = tokens.create(f"matrix-{name}", role)
        return Caller(name, secret, record.chitty_id)

    revoked = person("revoked", Role.MEMBER)
    tokens.revoke(tokens.authenticate(str(revoked.token)).token_id)
    expired = person("expired", Role.MEMBER)
    tokens.rotate(tokens.authenticate(str(expired.token)).token_id, overlap_s=0)
    service_record, service_secret = tokens.create("matrix-service", Role.SERVICE)
    callers = {
        "anonymous": Caller("anonymous", None),
        "bad": Caller("bad", "chitty_0123456789abcdef_" + "A" * 43),
        "revoked": revoked,
        "expired": expired,
        "service_unsigned": Caller("service_unsigned", service_secret, service_record.chitty_id),
        "service": Caller(
            "service", service_secret, service_record.chitty_id, derive_signing_key(service_secret)
        ),
        "admin": Caller("admin", gateway.token, None),
        "owner": person("owner", Role.MEMBER),
        "stranger": person("stranger", Role.MEMBER),
        "shared": person("shared", Role.MEMBER),
        "team": person("team", Role.MEMBER),
        "viewer": person("viewer", Role.VIEWER),
        "viewer_stranger": person("viewer_stranger", Role.VIEWER),
    }
    callers["admin"].chitty_id = tokens.authenticate(gateway.token).chitty_id
    session = gateway.call(_new_session())
    built = World(gateway, session, callers)
    built.project = built.create("projects")
    built.session_id = built.create("sessions")
    built.targets = {"projects": built.project, "sessions": built.session_id}
    for domain in DOMAINS:
        built.targets.setdefault(domain, built.create(domain))
    built.conflict_todo, built.conflict = built.new_conflict()
    yield built
    gateway.call(session.close())


async def _new_session() -> aiohttp.ClientSession:
    return aiohttp.ClientSession()


# -- the routes -------------------------------------------------------------------------------

Check = Callable[[World, str], None]


def _read(domain: str, suffix: str = "", query: Callable[[], str] = lambda: "") -> Check:
    def check(w: World, case: str) -> None:
        path = f"/api/v1/{domain}/{w.targets[domain]}{suffix}{query()}"
        answer = w.send(case, "GET", path)
        expected = 200 if w.may_read(case, domain) else 404
        assert answer.status == expected, answer
        if expected == 404:  # the same answer as for an entity that does not exist
            assert answer.body["error"] == "not_found", answer

    return check


def _now() -> str:
    return "?at=" + datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _list(domain: str) -> Check:
    def check(w: World, case: str) -> None:
        target = w.targets[domain]
        narrow = f"projectId={w.project}&" if domain in ("todos", "sessions") else ""
        path: str | None = f"/api/v1/{domain}?{narrow}limit=500"
        seen: set[str] = set()
        while path is not None:
            answer = w.send(case, "GET", path)
            assert answer.status == 200, answer
            seen |= {item["entity"]["chittyId"] for item in answer.body["items"]}
            cursor = answer.body["cursor"]
            path = f"/api/v1/{domain}?{narrow}limit=500&cursor={cursor}" if cursor else None
        assert (target in seen) == w.may_read(case, domain), (case, domain)
        if case in ("stranger", "viewer_stranger"):  # nothing of the owner's at all
            assert not seen & set(w.targets.values()), seen

    return check


def _create(domain: str) -> Check:
    def check(w: World, case: str) -> None:
        answer = w.send(case, "POST", f"/api/v1/{domain}", w.body(domain))
        if case in VIEWERS:
            expected = 403
        elif case == "stranger" and domain in ("todos", "sessions"):
            expected = 403  # may not add to the owner's session or project
        else:
            expected = 201
        assert answer.status == expected, answer
        if expected == 201:  # the creator owns it, whatever the body claimed
            creator = w.callers[case].chitty_id
            assert answer.body["entity"]["createdBy"] == creator, answer

    return check


def _update(domain: str, method: str) -> Check:
    def check(w: World, case: str) -> None:
        target = w.targets[domain]
        before = w.seq(target, domain)
        answer = w.send(case, method, f"/api/v1/{domain}/{target}", BENIGN[domain])
        expected = 200 if w.may_write(case, domain) else 403
        assert answer.status == expected, answer
        assert w.seq(target, domain) == before + (1 if expected == 200 else 0)

    return check


def _delete(domain: str) -> Check:
    def check(w: World, case: str) -> None:
        allowed = w.may_write(case, domain)
        target = w.create(domain) if allowed else w.targets[domain]
        before = w.seq(target, domain)
        answer = w.send(case, "DELETE", f"/api/v1/{domain}/{target}")
        assert answer.status == (200 if allowed else 403), answer
        if not allowed:
            assert w.seq(target, domain) == before

    return check


def _reconcile(w: World, case: str) -> None:
    answer = w.send(case, "POST", "/api/v1/todos/reconcile", {"projectId": w.project})
    if not w.may_read(case, "projects"):
        expected = 404
    else:
        expected = 200 if w.may_write(case, "projects") else 403
    assert answer.status == expected, answer


def _mesh(w: World, case: str) -> None:
    answer = w.send(case, "GET", f"/api/v1/todos/mesh?projectId={w.project}")
    assert answer.status == (200 if w.may_read(case, "projects") else 404), answer
    if answer.status == 200:
        order = answer.body["order"]
        assert (w.targets["todos"] in order) == w.may_read(case, "todos")


def _session_sync(w: World, case: str) -> None:
    path = f"/api/v1/sessions/{w.targets['sessions']}/sync"
    answer = w.send(case, "POST", path, {"dryRun": True})
    assert answer.status == (200 if w.may_read(case, "sessions") else 404), answer
    if answer.status == 200:  # the body was read; no subscriber of these platforms is connected
        assert answer.body["dryRun"] is True, answer
        assert {t["status"] for t in answer.body["targets"]} == {"not_connected"}, answer


def _propagate(w: World, case: str) -> None:
    target = w.targets["contexts"]
    before = w.seq(target, "contexts")
    body = {"source": "claude", "target": "chatgpt", "contextId": target, "summary": case}
    answer = w.send(case, "POST", "/api/v1/contexts/propagate", body)
    allowed = w.may_write(case, "contexts")
    assert answer.status == (200 if allowed else 403), answer
    assert w.seq(target, "contexts") == before + (1 if allowed else 0)


def _current_context(w: World, case: str) -> None:
    """The hand-over of a named session follows its read scope (404 as for no session)."""
    session = w.targets["sessions"]
    answer = w.send(case, "GET", f"/api/v1/contexts/current?sessionId={session}")
    if w.may_read(case, "sessions"):
        assert answer.status == 200, answer
        assert answer.body["sessionId"] == session, answer
    else:
        assert answer.status == 404 and answer.body["error"] == "not_found", answer


def _enrich(w: World, case: str) -> None:
    target = w.targets["contexts"]
    before = w.seq(target, "contexts")
    body = {"source": "claude", "kind": "summary", "content": case}
    answer = w.send(case, "POST", f"/api/v1/contexts/{target}/enrich", body)
    allowed = w.may_write(case, "contexts")
    assert answer.status == (200 if allowed else 403), answer
    assert w.seq(target, "contexts") == before + (1 if allowed else 0)


def _ask(w: World, case: str) -> None:
    """This hub has no model keys: every caller is told which variable the hub lacks (a model
    answering, and tools running as the caller, are tests/transports/test_ask.py's)."""
    answer = w.send(case, "POST", "/api/v1/ask", {"question": "what is open?", "model": "gemini"})
    assert answer.status == 409 and "GOOGLE_AI_API_KEY" in answer.body["detail"], answer


def _conflicts(w: World, case: str) -> None:
    answer = w.send(case, "GET", "/api/v1/sync/conflicts")
    assert answer.status == 200, answer
    listed = {c["conflictId"] for c in answer.body["conflicts"]}
    assert (w.conflict in listed) == w.may_read(case, "todos"), (case, listed)


def _resolve(w: World, case: str) -> None:
    allowed = w.may_write(case, "todos")
    todo, conflict = w.new_conflict() if allowed else (w.conflict_todo, w.conflict)
    before = w.seq(todo, "todos")
    path = f"/api/v1/sync/conflicts/{conflict}/resolve"
    answer = w.send(case, "POST", path, {"value": "completed"})
    if allowed:
        assert answer.status == 200 and answer.body["resolved"] == conflict, answer
        return
    # A conflict the caller may not see is not there for them; one it may see but not change
    # is forbidden.
    assert answer.status == (403 if w.may_read(case, "todos") else 404), answer
    assert w.seq(todo, "todos") == before
    assert w.conflict in {
        c["conflictId"] for c in w.ok("admin", "GET", "/api/v1/sync/conflicts")["conflicts"]
    }


def _broadcast(w: World, case: str) -> None:
    target = w.targets["todos"]
    impostor = w.callers["stranger" if case != "stranger" else "owner"].chitty_id
    message_id = _ids.new(Kind.MSG)
    message = {
        "id": message_id,
        "type": "state_update",
        "source": {"nodeId": f"bc-{case}", "platform": "api", "chittyId": impostor},
        "payload": {
            "domain": "todos",
            "operation": "update",
            "entity": {"chittyId": target, "type": "todo", "data": {"activeForm": case}},
        },
        "metadata": {"timestamp": datetime.now(UTC).isoformat(), "vectorClock": {}},
    }
    before = w.seq(target, "todos")
    answer = w.send(case, "POST", "/api/v1/sync/broadcast", message)
    allowed = w.may_write(case, "todos")
    assert answer.status == (200 if allowed else 403), answer
    if not allowed:
        assert w.seq(target, "todos") == before
        return
    assert answer.body["status"] == "applied", answer
    events = w.ok("admin", "GET", f"/api/v1/todos/{target}/history")["events"]
    [event] = [e for e in events if e["message"]["id"] == message_id]
    claimed = event["message"]["source"]["chittyId"]
    assert claimed == w.callers[case].chitty_id != impostor, event


def _sync_domain(w: World, case: str) -> None:
    body = {"projectId": w.project, "dryRun": True}
    answer = w.send(case, "POST", "/api/v1/sync/todos", body)
    assert answer.status == 200 and answer.body["dryRun"] is True, answer
    counted = answer.body["entities"]
    assert (counted > 0) == w.may_read(case, "todos"), answer  # only what the caller sees


def _sync_entity(w: World, case: str) -> None:
    path = f"/api/v1/sync/todos/{w.targets['todos']}"
    answer = w.send(case, "POST", path, {"dryRun": True})
    assert answer.status == (200 if w.may_read(case, "todos") else 404), answer
    if answer.status == 200:
        assert answer.body["dryRun"] is True, answer


def _sync_status(w: World, case: str) -> None:
    path = f"/api/v1/sync/todos/{w.targets['todos']}/status"
    answer = w.send(case, "GET", path)
    assert answer.status == (200 if w.may_read(case, "todos") else 404), answer


def _open(path: str) -> Check:
    def check(w: World, case: str) -> None:
        answer = w.send(case, "GET", path)
        assert answer.status == 200, answer

    return check


def _signin(w: World, case: str) -> None:
    """The web UI's sign-in reads no bearer credential: without its form's CSRF cookie it is
    refused (403) whoever calls it, and no session cookie is set."""
    answer = w.send(case, "POST", "/signin")
    assert answer.status == 403, answer
    assert "chitty_session" not in answer.headers.get("Set-Cookie", ""), answer.headers


def _signout(w: World, case: str) -> None:
    """Without a browser session there is nothing to end: back to the sign-in page (the
    redirect followed), whatever bearer credential comes along."""
    answer = w.send(case, "POST", "/signout")
    assert answer.status == 200 and "Sign in" in answer.body, answer


def _no_issuer(path: str) -> Check:
    """This hub has no OIDC issuer: its OIDC sign-in routes are 404 whatever credential comes
    along (test_web_oidc covers a hub that has one: state, nonce and PKCE)."""

    def check(w: World, case: str) -> None:
        answer = w.send(case, "GET", path)
        assert answer.status == 404, answer
        assert "chitty_session" not in answer.headers.get("Set-Cookie", ""), answer.headers

    return check


def _metrics(w: World, case: str) -> None:
    """The whole hub's counters: admins and services read them; members and viewers are 403."""
    answer = w.send(case, "GET", "/metrics")
    assert answer.status == (200 if case in UNRESTRICTED else 403), answer


def _export(w: World, case: str) -> None:
    """Admins export anyone, a principal itself; anyone else gets the unknown-principal 404."""
    owner = w.callers["owner"].chitty_id
    answer = w.send(case, "GET", f"/api/v1/principals/{owner}/export")
    allowed = case in ("admin", "owner")
    assert answer.status == (200 if allowed else 404), answer
    if allowed:
        assert answer.body["principal"] == owner
        assert w.targets["todos"] in {e["entity"]["chittyId"] for e in answer.body["entities"]}


def _erase(w: World, case: str) -> None:
    """Only an admin erases someone else; for anyone else the principal is not there."""
    record, secret = w.gateway.tokens.create(f"victim-of-{case}", Role.MEMBER)
    victim = Caller("victim", secret, record.chitty_id)
    answer = w.send(case, "DELETE", f"/api/v1/principals/{record.chitty_id}")
    allowed = case == "admin"
    assert answer.status == (200 if allowed else 404), answer
    after = w.send(victim, "GET", f"/api/v1/principals/{record.chitty_id}/export")
    assert after.status == (401 if allowed else 200), after  # erased: its tokens are gone


def _me(w: World, case: str) -> None:
    """Every principal may ask who it is."""
    answer = w.send(case, "GET", "/api/v1/auth/me")
    assert answer.status == 200, answer
    assert answer.body["chittyId"] == w.callers[case].chitty_id
    assert answer.body["expiresAt"] is not None  # hub tokens expire (24 h by default)


def _rotate(w: World, case: str) -> None:
    """Every hub-token principal rotates its own token; old and new both work meanwhile,
    a second rotation of the same token is refused."""
    caller = w.callers[case]
    _, secret = w.gateway.tokens.create(f"rotating-{case}", record_role(w, case), caller.chitty_id)
    own = Caller(
        f"{case}-rotating", secret, caller.chitty_id, caller.key and derive_signing_key(secret)
    )
    answer = w.send(own, "POST", "/api/v1/auth/rotate")
    assert answer.status == 200, answer
    successor = Caller(
        f"{case}-new",
        answer.body["token"],
        caller.chitty_id,
        caller.key and derive_signing_key(answer.body["token"]),
    )
    assert w.send(successor, "GET", "/api/v1/auth/me").body["tokenId"] == answer.body["tokenId"]
    assert w.send(own, "GET", "/api/v1/auth/me").status == 200  # the overlap window
    again = w.send(own, "POST", "/api/v1/auth/rotate")
    assert again.status == 409, again


def record_role(w: World, case: str) -> Role:
    token = w.callers[case].token
    assert token is not None
    return w.gateway.tokens.get(token_id_of(token)).role


def _ws(w: World, case: str) -> None:
    """Any principal may open /ws; what it is sent is what it may read (server-side filter)."""
    w.gateway.call(_ws_scenario(w, case))


def _adapters(w: World, case: str) -> None:
    """Every principal may see the adapters' states (none runs in this hub: all disabled)."""
    answer = w.send(case, "GET", "/api/v1/adapters")
    assert answer.status == 200, answer
    assert {a["state"] for a in answer.body["adapters"]} <= {"disabled"}, answer


def _operate_adapter(method: str, action: str) -> Check:
    """Only admins and services operate adapters (here: none runs, so theirs is a 404 for an
    unknown adapter); a member or viewer is refused."""

    def check(w: World, case: str) -> None:
        answer = w.send(case, method, f"/api/v1/adapters/nosuch/{action}")
        assert answer.status == (404 if case in UNRESTRICTED else 403), answer

    return check


def _run_tool(w: World, case: str) -> None:
    """A tool runs as its caller: the REST call it makes is scoped like the caller's own (here
    update_todo on the owner's todo: who may not write it gets the hub's 403)."""
    target = w.targets["todos"]
    before = w.seq(target, "todos")
    body = {"todoId": target, "activeForm": f"tool by {case}"}
    answer = w.send(case, "POST", "/api/v1/tools/update_todo", body)
    allowed = w.may_write(case, "todos")
    assert answer.status == (200 if allowed else 403), answer
    assert w.seq(target, "todos") == before + (1 if allowed else 0)
    if allowed:
        assert answer.body["result"]["entity"]["activeForm"] == f"tool by {case}", answer


def _webhook(method: str, path: str) -> Check:
    """A service's webhook reads no hub credential: without that service configured it is a
    404 for everyone, whoever calls it."""

    def check(w: World, case: str) -> None:
        answer = w.send(case, method, path, {} if method == "POST" else None)
        assert answer.status == 404, answer

    return check


def _agent_for(w: World, name: str) -> str:
    """A websocket agent of the matrix's service (registered by the service itself)."""
    body = {"name": name, "subscribe": {"domains": ["todos"]}}
    return str(w.ok("service", "POST", "/api/v1/agents", body)["agentId"])


def _register_agent(w: World, case: str) -> None:
    """A service registers its own agents; an admin registers one naming the service; anyone
    else is refused (a user token is no service token)."""
    body: dict[str, Any] = {
        "name": f"matrix-{case}".replace("_", "-"),
        "subscribe": {"domains": ["todos"]},
    }
    if case == "admin":
        answer = w.send(case, "POST", "/api/v1/agents", body)
        assert answer.status == 422 and answer.body["field"] == "principal", answer
        body["principal"] = w.callers["service"].chitty_id
    answer = w.send(case, "POST", "/api/v1/agents", body)
    if case in UNRESTRICTED:
        assert answer.status in (200, 201), answer
        assert answer.body["principal"] == w.callers["service"].chitty_id, answer
    else:
        assert answer.status == 403 and "service token" in answer.body["detail"], answer


def _list_agents(w: World, case: str) -> None:
    """A service lists its own agents, an admin every one; anyone else is refused."""
    mine = _agent_for(w, "matrix-listed")
    answer = w.send(case, "GET", "/api/v1/agents")
    if case in UNRESTRICTED:
        assert answer.status == 200, answer
        assert mine in {a["agentId"] for a in answer.body["agents"]}, answer
        owners = {a["principal"] for a in answer.body["agents"]}
        assert case == "admin" or owners == {w.callers["service"].chitty_id}, answer
    else:
        assert answer.status == 403, answer


def _agent_route(method: str) -> Check:
    """The service whose agent it is and admins may read or remove it; anyone else: 403."""

    def check(w: World, case: str) -> None:
        agent = _agent_for(w, f"matrix-{method.lower()}-{case}".replace("_", "-"))
        answer = w.send(case, method, f"/api/v1/agents/{agent}")
        if case in UNRESTRICTED:
            assert answer.status == 200 and answer.body["agentId"] == agent, answer
        else:
            assert answer.status == 403, answer
        if method == "GET" or case not in UNRESTRICTED:  # still there: tidy up
            w.ok("service", "DELETE", f"/api/v1/agents/{agent}")

    return check


MATRIX: dict[tuple[str, str], Check] = {
    ("GET", "/api/v1/adapters"): _adapters,
    ("POST", "/api/v1/agents"): _register_agent,
    ("GET", "/api/v1/agents"): _list_agents,
    ("GET", "/api/v1/agents/{id}"): _agent_route("GET"),
    ("DELETE", "/api/v1/agents/{id}"): _agent_route("DELETE"),
    ("GET", "/api/v1/adapters/{name}/failed"): _operate_adapter("GET", "failed"),
    ("POST", "/api/v1/adapters/{name}/retry"): _operate_adapter("POST", "retry"),
    ("POST", "/api/v1/adapters/{name}/test"): _operate_adapter("POST", "test"),
    **{
        (hook.method, f"/adapters/{spec.name}/{hook.path}"): _webhook(
            hook.method, f"/adapters/{spec.name}/{hook.path}"
        )
        for spec in CHANNELS
        for hook in spec.hooks
    },
    ("GET", "/health"): _open("/health"),
    ("GET", "/"): _open("/"),
    ("POST", "/signin"): _signin,
    ("POST", "/signout"): _signout,
    ("GET", "/signin/oidc"): _no_issuer("/signin/oidc"),
    ("GET", "/signin/oidc/callback"): _no_issuer("/signin/oidc/callback?code=c&state=s"),
    ("GET", "/static/{path}"): _open("/static/app.js"),
    ("GET", "/metrics"): _metrics,
    ("GET", "/api/v1/openapi.json"): _open("/api/v1/openapi.json"),
    ("GET", "/api/v1/openapi.actions.json"): _open("/api/v1/openapi.actions.json"),
    ("GET", "/privacy"): _open("/privacy"),
    ("POST", "/api/v1/tools/{name}"): _run_tool,
    ("GET", "/ws"): _ws,
    ("POST", "/api/v1/todos/reconcile"): _reconcile,
    ("GET", "/api/v1/todos/mesh"): _mesh,
    ("GET", "/api/v1/sessions/{id}/context"): _read("sessions", "/context"),
    ("POST", "/api/v1/sessions/{id}/sync"): _session_sync,
    ("POST", "/api/v1/contexts/propagate"): _propagate,
    ("GET", "/api/v1/contexts/current"): _current_context,
    ("POST", "/api/v1/contexts/{id}/enrich"): _enrich,
    ("POST", "/api/v1/ask"): _ask,
    ("GET", "/api/v1/sync/conflicts"): _conflicts,
    ("POST", "/api/v1/sync/conflicts/{id}/resolve"): _resolve,
    ("POST", "/api/v1/sync/broadcast"): _broadcast,
    ("GET", "/api/v1/principals/{id}/export"): _export,
    ("DELETE", "/api/v1/principals/{id}"): _erase,
    ("GET", "/api/v1/auth/me"): _me,
    ("POST", "/api/v1/auth/rotate"): _rotate,
    ("POST", "/api/v1/sync/{domain}"): _sync_domain,
    ("POST", "/api/v1/sync/{domain}/{entityId}"): _sync_entity,
    ("GET", "/api/v1/sync/{domain}/{entityId}/status"): _sync_status,
}
for _domain in DOMAINS:
    _base = f"/api/v1/{_domain}"
    MATRIX[("GET", _base)] = _list(_domain)
    MATRIX[("POST", _base)] = _create(_domain)
    MATRIX[("GET", _base + "/{id}")] = _read(_domain)
    MATRIX[("PUT", _base + "/{id}")] = _update(_domain, "PUT")
    MATRIX[("PATCH", _base + "/{id}")] = _update(_domain, "PATCH")
    MATRIX[("DELETE", _base + "/{id}")] = _delete(_domain)
    MATRIX[("GET", _base + "/{id}/history")] = _read(_domain, "/history")
# Temporal reads (`?at=`) are the read route with a query; they get cells of their own.
TEMPORAL = {f"GET /api/v1/{d}/{{id}}?at=": _read(d, query=_now) for d in DOMAINS}


def _concrete(w: World, method: str, template: str) -> tuple[str, Any]:
    """A request on the route for callers that are refused before any handler runs."""
    path = (
        template.replace("{domain}", "todos")
        .replace("{entityId}", w.targets["todos"])
        .replace("principals/{id}", f"principals/{w.callers['owner'].chitty_id}")
        .replace("{id}", w.targets["todos"])
    )
    body = {} if method in ("POST", "PUT", "PATCH") else None
    return path, body


def served_routes(gateway: Gateway) -> set[tuple[str, str]]:
    return {
        (route.method, route.resource.canonical)
        for route in gateway.app.router.routes()
        if route.method != "HEAD" and route.resource is not None  # HEAD is its GET's route
    }


def test_the_matrix_covers_every_route(gateway: Gateway) -> None:
    missing = served_routes(gateway) - set(MATRIX)
    assert not missing, f"routes without matrix cells: {sorted(missing)}"


def _served(world: World, route: tuple[str, str]) -> None:
    if route not in served_routes(world.gateway):
        pytest.skip(f"{route[0]} {route[1]} is not served by this build")


def _ids_of(key: tuple[str, str]) -> str:
    return f"{key[0]} {key[1]}"


@pytest.mark.parametrize("case", REFUSED)
@pytest.mark.parametrize("route", sorted(MATRIX), ids=_ids_of)
def test_refused_callers(world: World, route: tuple[str, str], case: str) -> None:
    _served(world, route)
    method, template = route
    if template in PUBLIC or template.startswith(STATIC):  # no credential needed nor read
        MATRIX[route](world, case)
        return
    if template == "/ws":
        world.gateway.call(_ws_refused(world, case))
        return
    if template.startswith("/adapters/"):  # a webhook: the service's signature, not ours
        MATRIX[route](world, case)
        return
    path, body = _concrete(world, method, template)
    answer = world.send(case, method, path, body)
    assert answer.status == 401, answer
    assert answer.headers.get("WWW-Authenticate", "").startswith("Bearer"), answer.headers
    assert answer.body["error"] == "unauthenticated", answer
    reason = {
        "revoked": "revoked",
        "expired": "expired",
        "service_unsigned": "signature",
        "anonymous": "credential is required",
        "bad": "no such token",
    }[case]
    assert reason in answer.body["detail"], answer


def _role_cells() -> list[Any]:
    cells = []
    for route in sorted(MATRIX):
        for case in ROLE_CASES:
            cells.append(pytest.param(route, case, id=f"{_ids_of(route)}-{case}"))
    return cells


@pytest.mark.parametrize(("route", "case"), _role_cells())
def test_allowed_and_scoped(world: World, route: tuple[str, str], case: str) -> None:
    _served(world, route)
    MATRIX[route](world, case)


@pytest.mark.parametrize("case", ROLE_CASES)
@pytest.mark.parametrize("route", sorted(TEMPORAL))
def test_temporal_reads(world: World, route: str, case: str) -> None:
    TEMPORAL[route](world, case)


def test_a_temporal_read_before_creation_is_the_same_404_for_everyone(world: World) -> None:
    target = world.targets["todos"]
    long_ago = "?at=2001-01-01T00:00:00Z"
    for case in ("admin", "owner", "stranger"):
        answer = world.send(case, "GET", f"/api/v1/todos/{target}{long_ago}")
        assert answer.status == 404 and answer.body["error"] == "not_found", (case, answer)


# -- /ws ----------------------------------------------------------------------------------------


async def _ws_connect(w: World, who: Caller) -> aiohttp.ClientWebSocketResponse:
    headers = {"X-Chitty-Node": f"matrix-{who.name}"}
    if who.token is not None:
        headers["Authorization"] = f"Bearer {who.token}"
    if who.key is not None:
        headers.update(signed_headers(who.key, "GET", "/ws", b""))
    return await w.session.ws_connect(w.gateway.url + "/ws", headers=headers)


async def _ws_refused(w: World, case: str) -> None:
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        socket = await _ws_connect(w, w.callers[case])
        await socket.close()
    assert refused.value.status == 401
    assert (refused.value.headers or {}).get("WWW-Authenticate", "").startswith("Bearer")


async def _ws_send(socket: aiohttp.ClientWebSocketResponse, who: Caller, frame: Any) -> None:
    text = json.dumps(frame)
    if who.key is not None:
        stamp, nonce = str(int(time.time())), f"n{time.time_ns()}matrix"
        signature = sign_frame(who.key, stamp, nonce, text)
        text = json.dumps(
            {"frame": text, "timestamp": stamp, "nonce": nonce, "signature": signature}
        )
    await socket.send_str(text)


async def _ws_next(socket: aiohttp.ClientWebSocketResponse) -> list[dict[str, Any]]:
    """The next frame's events (a batch flattened), or the frame itself; heartbeats skipped."""
    while True:
        received = await socket.receive(30)
        assert received.type is aiohttp.WSMsgType.TEXT, received
        frame = json.loads(received.data)
        if frame["type"] == "heartbeat":
            continue
        return list(frame["events"]) if frame["type"] == "batch" else [frame]


async def _subscribed(socket: aiohttp.ClientWebSocketResponse, who: Caller) -> None:
    await _ws_send(socket, who, {"type": "subscribe", "domains": ["todos"]})
    while True:
        for frame in await _ws_next(socket):
            assert frame["type"] in ("subscribed", "state_update"), frame
            if frame["type"] == "subscribed":
                return


async def _ws_scenario(w: World, case: str) -> None:
    """The caller and an admin subscribe to todos; the target todo changes, then sentinels
    shared with the caller are written until one lands after that change in the stream. The
    caller has seen the change by the time it sees that sentinel iff it may read the todo."""
    who, admin = w.callers[case], w.callers["admin"]
    watcher = await _ws_connect(w, admin)
    socket = await _ws_connect(w, who)
    try:
        await _subscribed(watcher, admin)
        await _subscribed(socket, who)
        target = w.targets["todos"]
        offsets: dict[str, int] = {}
        await _rest(w, "admin", "PUT", f"/api/v1/todos/{target}", {"activeForm": f"ws {case}"})
        sentinel = ""
        while "target" not in offsets or offsets.get(sentinel, -1) < offsets["target"]:
            made = await _rest(
                w,
                "admin",
                "POST",
                "/api/v1/todos",
                {
                    "content": "sentinel",
                    "sessionId": "CHITTY-SESSION-1",
                    "sharedWith": [who.chitty_id or "CHITTY-USER-0"],
                },
            )
            sentinel = made["entity"]["chittyId"]
            while sentinel not in offsets:
                for event in await _ws_next(watcher):
                    if event.get("entityId") == target and "target" not in offsets:
                        offsets["target"] = event["offset"]
                    if event.get("entityId") == sentinel:
                        offsets[sentinel] = event["offset"]
        seen: set[str] = set()
        while sentinel not in seen:
            for event in await _ws_next(socket):
                assert event["type"] == "state_update", event
                seen.add(event["entityId"])
        assert (target in seen) == w.may_read(case, "todos"), (case, seen)
    finally:
        await socket.close()
        await watcher.close()


async def _rest(w: World, caller: str, method: str, path: str, body: Any) -> Any:
    who = w.callers[caller]
    headers = {"Authorization": f"Bearer {who.token}"}
    async with w.session.request(
        method, w.gateway.url + path, json=body, headers=headers
    ) as response:
        answer = await response.json()
        assert response.status in (200, 201), answer
        return answer
