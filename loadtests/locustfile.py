"""Locust users for the hub: a REST writer, a batched /ws publisher and a /ws subscriber.

The subscriber reports publish->receive latency as request type `E2E` (publish timestamps ride in
each todo's `activeForm` as `t=<unix ns>`), and at the end every user's ledger (what was acked,
what was received) is written to `--ledger` so `loadtests/run.py` can count lost messages.

    locust -f loadtests/locustfile.py --headless -u 6 -r 6 -t 20s --host http://127.0.0.1:8787 \
        --run-tag A1 --projects 4 --batch 50 --publish-for 15 --ledger /tmp/ledger.json
"""

from __future__ import annotations

import itertools
import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import gevent
import orjson
import requests
import websocket
from locust import HttpUser, User, between, events, task
from locust.env import Environment

Frame = dict[str, Any]
TOKEN_ENV = "CHITTY_LOAD_TOKEN"
_user_ids = itertools.count(1)


@events.init_command_line_parser.add_listener
def _add_options(parser: Any) -> None:
    parser.add_argument("--run-tag", default="LOAD", help="alnum tag that makes ids unique")
    parser.add_argument("--projects", type=int, default=4, help="projects written and watched")
    parser.add_argument("--batch", type=int, default=50, help="state_update frames per WS batch")
    parser.add_argument("--pool", type=int, default=32, help="todos each publisher keeps updating")
    parser.add_argument("--batches-per-s", type=float, default=0, help="per publisher; 0: max")
    parser.add_argument("--publish-for", type=float, default=0.0, help="s of writes; 0: no limit")
    parser.add_argument("--ledger", default="", help="JSON file for acked/received records")
    parser.add_argument(
        "--acks",
        choices=["each", "batch"],
        default="batch",
        help="how the publisher's batches are answered: a frame per write, or one per batch",
    )
    parser.add_argument(
        "--token",
        default=os.environ.get(TOKEN_ENV, ""),
        help=f"bearer token sent on every request and /ws upgrade (default: ${TOKEN_ENV})",
    )


@dataclass
class Ledger:
    """What this Locust process saw: acked writes (entity, seq, sent ns) and received events."""

    started_ns: int = field(default_factory=time.time_ns)
    acked: list[tuple[str, int, int, str]] = field(default_factory=list)  # id, seq, t, project
    rest_acked: int = 0
    errors: int = 0
    subscribers: list[dict[str, Any]] = field(default_factory=list)
    first_ack_ns: int = 0
    last_ack_ns: int = 0

    def ack(self, entity: str, seq: int, sent_ns: int, project: str) -> None:
        now = time.time_ns()
        self.first_ack_ns = self.first_ack_ns or now
        self.last_ack_ns = now
        self.acked.append((entity, seq, sent_ns, project))

    def dump(self, path: str) -> None:
        body = {
            "started_ns": self.started_ns,
            "first_ack_ns": self.first_ack_ns,
            "last_ack_ns": self.last_ack_ns,
            "acked": self.acked,
            "rest_acked": self.rest_acked,
            "errors": self.errors,
            "subscribers": self.subscribers,
        }
        with open(path, "w") as out:
            json.dump(body, out)


_ledgers: dict[int, Ledger] = {}  # keyed by id(environment): one per Locust run in this process


def ledger_of(environment: Environment) -> Ledger:
    return _ledgers.setdefault(id(environment), Ledger())


@events.quitting.add_listener
def _dump_ledger(environment: Environment, **_: Any) -> None:
    path = environment.parsed_options.ledger if environment.parsed_options else ""
    if path:
        ledger_of(environment).dump(path)


def projects(environment: Environment) -> list[str]:
    options = environment.parsed_options
    return [f"CHITTY-PROJ-{options.run_tag}P{n}" for n in range(options.projects)]


def ensure(environment: Environment, host: str, domain: str, entity: str, **fields: Any) -> None:
    """Create an entity the users write under (a todo names a session and a project that
    exist); one another user made first is fine."""
    body = {"chittyId": entity, **fields}
    answer = requests.post(
        f"{host}/api/v1/{domain}", json=body, headers=auth_headers(environment), timeout=30
    )
    if answer.status_code not in (201, 409):
        raise RuntimeError(f"cannot create {entity}: {answer.status_code} {answer.text[:200]}")


def ensure_places(environment: Environment, host: str, sessions: list[str]) -> None:
    """The run's projects and this user's sessions."""
    for project in projects(environment):
        ensure(environment, host, "projects", project, name=project)
    for session in sessions:
        ensure(environment, host, "sessions", session, sessionId=session, platform="cli")


def publishing(environment: Environment, started: float) -> bool:
    """Writers stop after `--publish-for` s so subscribers can drain before Locust stops."""
    limit = environment.parsed_options.publish_for
    return not limit or time.monotonic() - started < limit


def ws_url(host: str) -> str:
    return host.replace("http://", "ws://", 1).replace("https://", "wss://", 1) + "/ws"


def auth_headers(environment: Environment) -> dict[str, str]:
    """`Authorization: Bearer <token>` when a token was given (the hub requires one)."""
    token = environment.parsed_options.token if environment.parsed_options else ""
    return {"Authorization": f"Bearer {token}"} if token else {}


def stamp() -> tuple[int, str]:
    now = time.time_ns()
    return now, f"t={now}"


class RestWriter(HttpUser):
    """Creates todos over REST across many projects and sessions, then updates them."""

    wait_time = between(0, 0.01)

    def on_start(self) -> None:
        self.n = next(_user_ids)
        self.tag = self.environment.parsed_options.run_tag
        self.started = time.monotonic()
        self.projects = projects(self.environment)
        self.todos: list[tuple[str, str]] = []  # (todo id, project)
        self.ledger = ledger_of(self.environment)
        self.counter = itertools.count()
        self.client.headers.update(auth_headers(self.environment))
        self.sessions = [f"CHITTY-SESSION-{self.tag}R{self.n}S{i}" for i in range(8)]
        ensure_places(self.environment, self.host, self.sessions)

    @task(1)
    def create(self) -> None:
        if not publishing(self.environment, self.started):
            gevent.sleep(0.2)
            return
        i = next(self.counter)
        project = self.projects[i % len(self.projects)]
        sent, form = stamp()
        body = {
            "content": f"rest {self.n}-{i}",
            "activeForm": form,
            "sessionId": self.sessions[i % len(self.sessions)],  # 8 sessions each
            "projectId": project,
        }
        with self.client.post(
            "/api/v1/todos", json=body, name="POST /todos", catch_response=True
        ) as answer:
            if answer.status_code != 201:
                answer.failure(f"{answer.status_code}: {answer.text[:200]}")
                self.ledger.errors += 1
                return
            made = answer.json()
            entity = made["entity"]["chittyId"]
            self.todos.append((entity, project))
            self.ledger.ack(entity, int(made["seq"]), sent, project)
            self.ledger.rest_acked += 1

    @task(3)
    def update(self) -> None:
        if not self.todos:
            self.create()
            return
        if not publishing(self.environment, self.started):
            gevent.sleep(0.2)
            return
        entity, project = self.todos[next(self.counter) % len(self.todos)]
        sent, form = stamp()
        with self.client.put(
            f"/api/v1/todos/{entity}",
            json={"activeForm": form},
            name="PUT /todos/{id}",
            catch_response=True,
        ) as answer:
            if answer.status_code != 200:
                answer.failure(f"{answer.status_code}: {answer.text[:200]}")
                self.ledger.errors += 1
                return
            made = answer.json()
            self.ledger.ack(entity, int(made["seq"]), sent, project)
            self.ledger.rest_acked += 1


class _WsUser(User):
    """A user holding one /ws connection (websocket-client, which gevent makes cooperative)."""

    abstract = True

    def connect(self, node: str, acks: str = "each") -> websocket.WebSocket:
        headers = [f"X-Chitty-Node: {node}", f"X-Chitty-Acks: {acks}"]
        headers += [f"{k}: {v}" for k, v in auth_headers(self.environment).items()]
        # websocket-client validates UTF-8 in pure Python (a DFA step per byte) unless told not
        # to: at 10k events/s that alone took most of a core. recv() still decodes text frames
        # with bytes.decode("utf-8"), which is strict, so nothing invalid gets through.
        return websocket.create_connection(
            ws_url(self.host), header=headers, timeout=30, skip_utf8_validation=True
        )

    def fire(self, kind: str, name: str, started: float, length: int, error: Any = None) -> None:
        self.environment.events.request.fire(
            request_type=kind,
            name=name,
            response_time=(time.perf_counter() - started) * 1000,
            response_length=length,
            exception=error,
            context={},
        )


class WsPublisher(_WsUser):
    """Sends batches of `state_update` frames (a JSON array) and waits for their acks."""

    def wait_time(self) -> float:
        """At most `--batches-per-s`, on this publisher's own grid of start times; else back to
        back. A batch that overran its slot starts at the next slot of the grid, not at once
        (Locust's `constant_throughput` starts it at once, so publishers whose acks came back
        together would send together from then on)."""
        rate = self.environment.parsed_options.batches_per_s
        if not rate:
            return 0.0
        period = 1 / rate
        now = time.monotonic()
        self._next += period
        if self._next < now:
            self._next += (now - self._next) // period * period + period
        return self._next - now

    def on_start(self) -> None:
        rate = self.environment.parsed_options.batches_per_s
        self.n = next(_user_ids)
        self.tag = self.environment.parsed_options.run_tag
        self.started = time.monotonic()
        self.projects = projects(self.environment)
        self.ledger = ledger_of(self.environment)
        self.session = f"CHITTY-SESSION-{self.tag}W{self.n}"
        ensure_places(self.environment, self.host, [self.session])
        self.ws = self.connect(f"pub{self.tag}{self.n}", self.environment.parsed_options.acks)
        self.pool: list[tuple[str, str]] = []  # (todo id, project), all created by this user
        self.frames = itertools.count()
        if rate:  # paced publishers keep apart (golden-ratio phases), as independent clients do
            gevent.sleep((self.n * 0.6180339887) % 1 / rate)
        self._next = time.monotonic()  # the grid of batch start times (`wait_time`)

    def on_stop(self) -> None:
        self.ws.close()

    def _frames(self) -> Iterator[tuple[Frame, str, int]]:
        """One batch: creates until the pool is full (their ids come back in acks), then updates."""
        options = self.environment.parsed_options
        creating = min(options.pool - len(self.pool), options.batch)
        for _ in range(creating if creating > 0 else options.batch):
            i = next(self.frames)
            sent, form = stamp()
            if creating > 0:
                project = self.projects[i % len(self.projects)]
                fields = {
                    "content": f"ws {self.n}-{i}",
                    "activeForm": form,
                    "sessionId": self.session,
                    "projectId": project,
                }
                frame: Frame = {"operation": "create", "entity": fields}
            else:
                entity, project = self.pool[i % len(self.pool)]
                frame = {"operation": "update", "entity": {"chittyId": entity, "activeForm": form}}
            frame.update(type="state_update", domain="todos", id=f"m{self.tag}{self.n}x{i}")
            yield frame, project, sent

    @task
    def publish(self) -> None:
        if not publishing(self.environment, self.started):
            gevent.sleep(0.2)
            return
        batch = list(self._frames())
        started = time.perf_counter()
        text = orjson.dumps([frame for frame, _, _ in batch]).decode()
        self.ws.send(text)
        failures = []
        for (frame, project, sent), answer in zip(batch, self._answers(len(batch)), strict=True):
            if answer.get("type") != "ack" or answer.get("status") != "applied":
                failures.append(answer)
                self.ledger.errors += 1
                continue
            entity = answer["entityId"]
            if frame["operation"] == "create":
                self.pool.append((entity, project))
            self.ledger.ack(entity, int(answer["seq"]), sent, project)
        error = RuntimeError(f"{len(failures)} refused: {failures[0]}") if failures else None
        self.fire("WS", f"publish batch x{len(batch)}", started, len(text), error)

    def _answers(self, count: int) -> list[Frame]:
        """The batch's answers: one `acks` frame, or `count` `ack`/`error` frames."""
        answers: list[Frame] = []
        while len(answers) < count:
            frame: Frame = orjson.loads(self.ws.recv())
            kind = frame.get("type")
            if kind == "acks":
                answers += frame["items"]
            elif kind in ("ack", "error"):
                answers.append(frame)
        return answers


class WsSubscriber(_WsUser):
    """Watches every project; reports E2E latency per event and keeps (entity, seq) it saw."""

    def on_start(self) -> None:
        self.n = next(_user_ids)
        self.ledger = ledger_of(self.environment)
        self.ws = self.connect(f"sub{self.environment.parsed_options.run_tag}{self.n}")
        self.seen: list[tuple[str, int]] = []
        self.gaps: list[Frame] = []
        wanted = projects(self.environment)
        for k, project in enumerate(wanted):
            request = {"type": "subscribe", "domains": ["todos"], "filters": {"projectId": project}}
            self.ws.send(orjson.dumps({**request, "id": f"s{k}"}).decode())
        subscribed = 0
        while subscribed < len(wanted):
            frame = orjson.loads(self.ws.recv())
            subscribed += frame.get("type") == "subscribed"
        self.record = {
            "projects": wanted,
            "subscribed_ns": time.time_ns(),
            "seen": self.seen,
            "gaps": self.gaps,
        }
        self.ledger.subscribers.append(self.record)

    def on_stop(self) -> None:
        self.record["stopped_ns"] = time.time_ns()
        self.ws.close()

    @task
    def receive(self) -> None:
        try:
            text = self.ws.recv()
        except websocket.WebSocketTimeoutException:
            return
        now = time.time_ns()
        frame: Frame = orjson.loads(text)
        kind = frame.get("type")
        if kind == "gap":
            self.gaps.append(frame)
            self.fire("WS", "gap", time.perf_counter(), len(text), RuntimeError(str(frame)))
            return
        events_ = frame["events"] if kind == "batch" else [frame] if kind == "state_update" else []
        for event in events_:
            self.seen.append((event["entityId"], int(event["seq"])))
            form = (event.get("entity") or {}).get("activeForm") or ""
            if form.startswith("t="):
                self.environment.events.request.fire(
                    request_type="E2E",
                    name="publish->receive",
                    response_time=(now - int(form[2:])) / 1e6,
                    response_length=0,
                    exception=None,
                    context={},
                )
