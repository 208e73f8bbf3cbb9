"""`ChittyClient`: an async client of a hub's REST API and its /ws stream, on aiohttp.

REST answers become small typed values (`Record`, `Page`); failures raise `ChittyApiError`
(the hub answered 4xx/5xx) or `ChittyUnreachable` (no hub answered). `subscribe` yields the
stream's committed changes and reconnects by itself, resuming after the last offset it saw;
a hole the hub cannot fill arrives as a `Gap` event.
"""

from __future__ import annotations

import asyncio
import builtins
import json
import secrets
import ssl
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Self, TypeVar

import aiohttp
from pydantic import BaseModel, ConfigDict, JsonValue, ValidationError
from pydantic.alias_generators import to_camel
from yarl import URL

from hub.auth.signing import signed_headers
from hub.auth.tokens import derive_signing_key
from hub.codec import to_wire, write_message

Json = dict[str, JsonValue]


class ChittyError(Exception):
    """Anything that went wrong talking to a hub."""


class ChittyUnreachable(ChittyError):
    """No hub answered at the client's base URL."""


class ChittyApiError(ChittyError):
    """The hub refused: its status, error code, sentence and the field at fault."""

    def __init__(self, status: int, error: str, detail: str, field: str | None = None) -> None:
        super().__init__(f"{status} {error}: {detail}" + (f" ({field})" if field else ""))
        self.status = status
        self.error = error
        self.detail = detail
        self.field = field


class _Answer(BaseModel):
    """A typed hub answer: camelCase on the wire, frozen, tolerant of fields added later."""

    model_config = ConfigDict(
        frozen=True, extra="ignore", alias_generator=to_camel, validate_by_name=True
    )


A = TypeVar("A", bound=_Answer)


class _OnStream(_Answer):
    """A frame of the hub's stream, at its `position` (where a subscriber resumes)."""

    epoch: str
    offset: int

    @property
    def position(self) -> Position:
        return Position(self.epoch, self.offset)


class Record(_Answer):
    """An entity as the hub answers it: wire fields, vector clock, log position, conflicts."""

    entity: Json
    vector_clock: dict[str, int]
    seq: int
    conflicts: tuple[Json, ...] = ()

    @property
    def chitty_id(self) -> str:
        return str(self.entity["chittyId"])


class Page(_Answer):
    """One page of a list; pass `cursor` back for the next (None: the last page)."""

    items: tuple[Record, ...]
    cursor: str | None = None


class History(_Answer):
    entity_id: str
    events: tuple[Json, ...]


@dataclass(frozen=True, slots=True)
class Position:
    """Where a subscriber's stream stands: everything up to `offset` of `epoch` was seen."""

    epoch: str
    offset: int


class Change(_OnStream):
    """A committed change delivered by the stream (the entity's full wire view after it)."""

    subscription: str
    domain: str
    operation: str  # create / update / delete
    entity_id: str
    entity: Json
    seq: int
    vector_clock: dict[str, int]
    changed: tuple[str, ...] = ()
    conflicts: tuple[Json, ...] = ()
    message_id: str = ""


class Gap(_OnStream):
    """Changes before `position` may be missing: reload state over REST."""

    subscription: str
    reason: str
    detail: str = ""
    ended: bool = False


class Relayed(_OnStream):
    """A domain `event` or `command` about an entity, as its sender's target named this
    subscriber (no state changed; `data` as sent)."""

    subscription: str
    type: str  # event / command
    domain: str
    entity_id: str
    data: Json
    message_id: str = ""


class ConflictNotice(_OnStream):
    """A conflict opened (or widened) or resolved on an entity; `conflict` in the spec's
    `ConflictResolution` shape. It shares its offset with the change that caused it."""

    subscription: str
    status: str  # opened / resolved
    domain: str
    entity_id: str
    conflict: Json


StreamEvent = Change | Gap | Relayed | ConflictNotice
_STREAM_ITEMS: dict[str, type[Change] | type[Relayed] | type[ConflictNotice]] = {
    "state_update": Change,
    "event": Relayed,
    "command": Relayed,
    "conflict": ConflictNotice,
}


class ChittyClient:
    """A hub at `base_url`; writes carry `node_id` and `platform` as their source."""

    def __init__(
        self,
        base_url: str,
        node_id: str = "python-client",
        platform: str = "api",
        timeout_s: float = 30.0,
        token: str | Callable[[], str | None] | None = None,
        sign: bool = False,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        """`token`: the credential sent as `Authorization: Bearer` (a hub token or a JWT), or
        a function giving it per call (a gateway forwarding its caller's credential);
        `sign`: sign every request with the key of the token it carries (service tokens must;
        other principals' signatures are ignored); `tls`: how to
        check an https hub's certificate (default: the system's trust store)."""
        if sign and token is None:
            raise ValueError("sign: signing needs a token")
        self.base_url = base_url.rstrip("/")
        self.node_id = node_id
        self.platform = platform
        self.token = token
        self._tls = tls
        self._sign = sign
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._session: aiohttp.ClientSession | None = None

    @property
    def headers(self) -> dict[str, str]:
        return {"X-Chitty-Node": self.node_id, "X-Chitty-Platform": self.platform}

    def _credential(self) -> str | None:
        return self.token() if callable(self.token) else self.token

    def auth_headers(self) -> dict[str, str]:
        """The Authorization header of a call made now (none without a credential)."""
        token = self._credential()
        return {"Authorization": f"Bearer {token}"} if token else {}

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(ssl=self._tls) if self._tls is not None else None
            self._session = aiohttp.ClientSession(
                headers=self.headers, timeout=self._timeout, connector=connector
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # -- REST -------------------------------------------------------------------------------

    async def _call(
        self,
        method: str,
        path: str,
        *,
        body: Mapping[str, Any] | None = None,
        query: Mapping[str, str] | None = None,
        idempotency_key: str | None = None,
    ) -> Json:
        token = self._credential()
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        if idempotency_key:
            headers["Idempotency-Key"] = idempotency_key
        url = URL(f"{self.base_url}/api/v1{path}")
        if query:
            url = url.update_query(query)
        data = json.dumps(body).encode() if body is not None else None
        if data is not None:
            headers["Content-Type"] = "application/json"
        if self._sign and token:
            key = derive_signing_key(token)
            headers.update(signed_headers(key, method, url.raw_path_qs, data or b""))
        try:
            async with self.session.request(method, url, data=data, headers=headers) as response:
                text = await response.text()
                status = response.status
        except aiohttp.ClientConnectionError as error:
            raise ChittyUnreachable(f"no hub answers at {self.base_url}: {error}") from None
        try:
            parsed = json.loads(text) if text else {}
        except ValueError:
            parsed = None
        if status >= 400:
            raise _api_error(status, parsed, text)
        if not isinstance(parsed, dict):
            raise ChittyApiError(status, "bad_answer", "the hub answered something not JSON")
        return parsed

    async def _record(self, method: str, path: str, **options: Any) -> Record:
        return _parse(Record, await self._call(method, path, **options))

    async def create(
        self,
        domain: str,
        fields: Mapping[str, JsonValue],
        *,
        vector_clock: Mapping[str, int] | None = None,
        idempotency_key: str | None = None,
    ) -> Record:
        """Create an entity (`chittyId` in `fields` to choose its id)."""
        body = _with_clock(fields, vector_clock)
        return await self._record("POST", f"/{domain}", body=body, idempotency_key=idempotency_key)

    async def get(self, domain: str, entity_id: str) -> Record:
        return await self._record("GET", f"/{domain}/{entity_id}")

    async def state_at(self, domain: str, entity_id: str, at: datetime) -> Record:
        """The entity as it was at `at` (a temporal query)."""
        query = {"at": at.isoformat()}
        return await self._record("GET", f"/{domain}/{entity_id}", query=query)

    async def update(
        self,
        domain: str,
        entity_id: str,
        fields: Mapping[str, JsonValue],
        *,
        vector_clock: Mapping[str, int] | None = None,
        idempotency_key: str | None = None,
        base: Record | None = None,
    ) -> Record:
        """Change some fields. `base`: the record this change was made from (what its writer
        saw), so concurrent edits merge against it (a text field keeps both edits); or
        `vector_clock`, that record's clock counting this write; neither: a blind write."""
        if base is not None:
            vector_clock = {**base.vector_clock}
            vector_clock[self.node_id] = vector_clock.get(self.node_id, 0) + 1
        body = _with_clock(fields, vector_clock)
        path = f"/{domain}/{entity_id}"
        return await self._record("PUT", path, body=body, idempotency_key=idempotency_key)

    async def delete(
        self, domain: str, entity_id: str, *, idempotency_key: str | None = None
    ) -> Record:
        path = f"/{domain}/{entity_id}"
        return await self._record("DELETE", path, idempotency_key=idempotency_key)

    async def list(
        self,
        domain: str,
        *,
        project_id: str | None = None,
        session_id: str | None = None,
        topic_id: str | None = None,
        status: str | None = None,
        assignee: str | None = None,
        include_deleted: bool = False,
        include_merged: bool = False,
        cursor: str | None = None,
        limit: int = 50,
    ) -> Page:
        """One page of a domain's entities, filtered (merged-away todos only if asked)."""
        wanted = {
            "projectId": project_id,
            "sessionId": session_id,
            "topicId": topic_id,
            "status": status,
            "assignee": assignee,
            "cursor": cursor,
        }
        query = {k: v for k, v in wanted.items() if v is not None}
        query["limit"] = str(limit)
        if include_deleted:
            query["includeDeleted"] = "true"
        if include_merged:
            query["includeMerged"] = "true"
        return _parse(Page, await self._call("GET", f"/{domain}", query=query))

    async def history(self, domain: str, entity_id: str) -> tuple[Json, ...]:
        """The entity's events, oldest first."""
        found = _parse(History, await self._call("GET", f"/{domain}/{entity_id}/history"))
        return found.events

    # -- workflows --------------------------------------------------------------------------

    async def sync(
        self,
        domain: str,
        *,
        platforms: Sequence[str] = (),
        channels: Sequence[str] = (),
        models: Sequence[str] = (),
        project_id: str | None = None,
        session_id: str | None = None,
        dry_run: bool = False,
    ) -> Json:
        """Sync a domain (or `all`) to targets; the hub's report per target."""
        body: dict[str, Any] = {
            "platforms": list(platforms),
            "channels": list(channels),
            "models": list(models),
            "dryRun": dry_run,
        }
        if project_id is not None:
            body["projectId"] = project_id
        if session_id is not None:
            body["sessionId"] = session_id
        return await self._call("POST", f"/sync/{domain}", body=body)

    async def sync_entity(self, domain: str, entity_id: str, dry_run: bool = False) -> Json:
        """Sync one entity (a repo is read and a service checked first: `checked`)."""
        return await self._call("POST", f"/sync/{domain}/{entity_id}", body={"dryRun": dry_run})

    async def relay(
        self,
        kind: str,
        domain: str,
        entity_id: str,
        data: Mapping[str, JsonValue],
        target: Mapping[str, JsonValue] | None = None,
    ) -> Json:
        """Send an `event` or `command` about an entity to the subscribers `target` names
        (default everyone); the hub changes no state. Answers what became of it."""
        message = write_message(
            message_id=f"{self.node_id}-{secrets.token_hex(8)}",
            node_id=self.node_id,
            platform=self.platform,
            chitty_id="CHITTY-USER-CLIENT",  # the hub attributes it to this client's credential
            domain=domain,
            operation="update",
            entity_id=entity_id,
            data=data,
            timestamp=datetime.now(UTC),
            kind=kind,
            target=dict(target) if target is not None else None,
        )
        return await self._call("POST", "/sync/broadcast", body=to_wire(message))

    async def adapters(self) -> builtins.list[Json]:
        """Every adapter the hub knows: state, what it needs to start, counters."""
        answer = await self._call("GET", "/adapters")
        return list(answer.get("adapters") or [])  # type: ignore[arg-type]

    async def adapter_test(self, name: str) -> Json:
        """Have an adapter post a test message to its default channel."""
        return await self._call("POST", f"/adapters/{name}/test")

    async def adapter_failed(self, name: str) -> builtins.list[Json]:
        """An adapter's deliveries that failed for good, with why."""
        answer = await self._call("GET", f"/adapters/{name}/failed")
        return list(answer.get("failed") or [])  # type: ignore[arg-type]

    async def adapter_retry(self, name: str) -> int:
        """Queue an adapter's failed deliveries again; how many."""
        answer = await self._call("POST", f"/adapters/{name}/retry")
        return int(answer["retried"])  # type: ignore[arg-type]

    async def register_agent(
        self,
        name: str,
        domains: Sequence[str],
        webhook: str | None = None,
        description: str = "",
        principal: str | None = None,
    ) -> Json:
        """Register (or update) a custom agent of this client's service; the answer holds the
        webhook secret once, when one was made."""
        body: dict[str, Any] = {
            "name": name,
            "description": description,
            "subscribe": {"domains": list(domains)},
        }
        if webhook is not None:
            body["webhook"] = {"url": webhook}
        if principal is not None:
            body["principal"] = principal
        return await self._call("POST", "/agents", body=body)

    async def agents(self) -> builtins.list[Json]:
        """The custom agents this credential may see, with their delivery state."""
        answer = await self._call("GET", "/agents")
        return list(answer.get("agents") or [])  # type: ignore[arg-type]

    async def remove_agent(self, agent_id: str) -> Json:
        """Remove a custom agent (its deliveries stop)."""
        return await self._call("DELETE", f"/agents/{agent_id}")

    async def me(self) -> Json:
        """Who this client's credential names: chittyId, role, kind, tokenId, expiresAt."""
        return await self._call("GET", "/auth/me")

    async def rotate_token(self) -> Json:
        """Swap this client's hub token for its successor (the hub's 24 h rotation); the old
        one still works for the overlap window. Answers the new token's id and expiry."""
        answer = await self._call("POST", "/auth/rotate")
        self.token = str(answer["token"])
        return {k: v for k, v in answer.items() if k != "token"}

    async def conflicts(self, domain: str | None = None) -> tuple[Json, ...]:
        """Every open conflict (of one domain, or all)."""
        query = {"domain": domain} if domain else None
        found = await self._call("GET", "/sync/conflicts", query=query)
        return tuple(found.get("conflicts") or [])  # type: ignore[arg-type]

    async def resolve(
        self, conflict_id: str, value: JsonValue = None, accept_suggestion: bool = False
    ) -> Record:
        """Settle a conflict on `value`, or on its merge suggestion."""
        body: Json = {"acceptSuggestion": True} if accept_suggestion else {"value": value}
        return await self._record("POST", f"/sync/conflicts/{conflict_id}/resolve", body=body)

    async def mesh(self, project_id: str) -> Json:
        """A project's todo mesh (nodes, dependency edges, origin sessions), changing nothing."""
        return await self._call("GET", "/todos/mesh", query={"projectId": project_id})

    async def reconcile(self, project_id: str, dry_run: bool = False) -> Json:
        """Spec Example 2: merge the todos of a project's sessions and write the result back
        (`dry_run`: only say what would be written)."""
        body = {"projectId": project_id, "dryRun": dry_run}
        return await self._call("POST", "/todos/reconcile", body=body)

    async def current_context(
        self, session_id: str | None = None, target: str | None = None
    ) -> Json:
        """The caller's hand-over context (spec Example 3): summary, key points, last messages,
        files and open todos of its most recently active session (or `session_id`'s), and the
        whole as one prompt-ready `text`; `target`: the platform or model it is for."""
        wanted = {"sessionId": session_id, "target": target}
        query = {k: v for k, v in wanted.items() if v is not None}
        return await self._call("GET", "/contexts/current", query=query or None)

    async def ask(
        self,
        question: str,
        model: str,
        project_id: str | None = None,
        session_id: str | None = None,
    ) -> Json:
        """Ask a model through the hub (its keys, the caller's tools and hand-over context):
        `{model, answer, toolCalls: [{name, arguments, ok}], steps}`."""
        body = {"question": question, "model": model}
        if project_id is not None:
            body["projectId"] = project_id
        if session_id is not None:
            body["sessionId"] = session_id
        return await self._call("POST", "/ask", body=body)

    # -- stream -----------------------------------------------------------------------------

    def subscribe(
        self,
        domains: Sequence[str] | None = None,
        filters: Mapping[str, str] | None = None,
        resume: Position | None = None,
        give_up_s: float | None = None,
    ) -> Subscription:
        """Committed changes of `domains` (default all) matching `filters` (camelCase keys).

        Use as `async with client.subscribe(...) as events: async for event in events: ...`.
        A lost connection is retried until `give_up_s` (None: for ever), then ChittyUnreachable.
        """
        return Subscription(self, domains, filters, resume, give_up_s)


def _parse(model: type[A], body: Json) -> A:
    try:
        return model.model_validate(body)
    except ValidationError as error:
        raise ChittyApiError(
            200, "bad_answer", f"unexpected answer from the hub: {error}"
        ) from None


def _with_clock(fields: Mapping[str, JsonValue], clock: Mapping[str, int] | None) -> Json:
    body: Json = dict(fields)
    if clock is not None:
        body["vectorClock"] = dict(clock)
    return body


def _api_error(status: int, parsed: object, text: str) -> ChittyApiError:
    if isinstance(parsed, dict) and isinstance(parsed.get("error"), str):
        field = parsed.get("field")
        return ChittyApiError(
            status,
            parsed["error"],
            str(parsed.get("detail", "")),
            field if isinstance(field, str) else None,
        )
    return ChittyApiError(status, "http_error", text[:500] or f"HTTP {status}")


class Subscription:
    """A live subscription: an async iterator of `StreamEvent`s that survives reconnects."""

    def __init__(
        self,
        client: ChittyClient,
        domains: Sequence[str] | None,
        filters: Mapping[str, str] | None,
        resume: Position | None,
        give_up_s: float | None = None,
        max_backoff_s: float = 5.0,
    ) -> None:
        self.client = client
        self.id = f"py-{secrets.token_hex(6)}"
        self.domains = list(domains) if domains is not None else None
        self.filters = dict(filters or {})
        self.position = resume  # resume after this on every (re)subscribe
        self.reconnects = 0
        self._give_up_s = give_up_s
        self._max_backoff_s = max_backoff_s
        self._socket: aiohttp.ClientWebSocketResponse | None = None
        self._ready: deque[StreamEvent] = deque()
        self._closed = False

    async def __aenter__(self) -> Self:
        await self._connect()
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        self._closed = True
        if self._socket is not None:
            await self._socket.close()

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> StreamEvent:
        while not self._ready:
            if self._closed:
                raise StopAsyncIteration
            if self._socket is None or self._socket.closed:
                await self._reconnect()
                continue
            received = await self._socket.receive()
            if received.type is aiohttp.WSMsgType.TEXT:
                await self._take(json.loads(received.data))
            elif received.type is aiohttp.WSMsgType.CLOSING:
                continue
            else:  # CLOSE / CLOSED / ERROR: the connection is gone; resume on a new one
                await self._socket.close()
        return self._ready.popleft()

    def _subscribe_frame(self) -> Json:
        frame: Json = {"type": "subscribe", "id": self.id, "filters": dict(self.filters)}
        if self.domains is not None:
            frame["domains"] = list(self.domains)
        if self.position is not None:
            frame["resume"] = {"epoch": self.position.epoch, "offset": self.position.offset}
        return frame

    async def _connect(self) -> None:
        """Open a socket, subscribe, and wait for `subscribed` (events may follow it)."""
        url = self.client.base_url.replace("http", "ws", 1) + "/ws"
        try:
            self._socket = await self.client.session.ws_connect(
                url, heartbeat=20.0, headers=self.client.auth_headers()
            )
        except (aiohttp.ClientError, OSError) as error:
            raise ChittyUnreachable(f"no hub answers at {url}: {error}") from None
        await self._socket.send_str(json.dumps(self._subscribe_frame()))
        while True:
            received = await self._socket.receive()
            if received.type is not aiohttp.WSMsgType.TEXT:
                raise ChittyUnreachable(f"the hub closed the stream ({received.type.name})")
            frame = json.loads(received.data)
            if isinstance(frame, dict) and frame.get("type") == "subscribed":
                self.position = Position(str(frame["epoch"]), int(frame["offset"]))
                return
            await self._take(frame)

    async def _reconnect(self) -> None:
        backoff = 0.05
        started = time.monotonic()
        while not self._closed:
            try:
                await self._connect()
                self.reconnects += 1
                return
            except ChittyUnreachable:
                if self._give_up_s is not None and time.monotonic() - started > self._give_up_s:
                    raise
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self._max_backoff_s)

    async def _take(self, frame: object) -> None:
        """Turn one server frame into ready events (and resubscribe after an ended gap)."""
        if not isinstance(frame, dict):
            return
        kind = frame.get("type")
        if kind == "batch":
            for event in frame.get("events") or ():
                self._change(event)
        elif kind in _STREAM_ITEMS:
            self._change(frame)
        elif kind == "gap" and frame.get("subscription") == self.id:
            gap = Gap.model_validate(frame)
            self.position = gap.position
            if gap.ended:  # the hub dropped it while nothing was lost yet: resume right here
                assert self._socket is not None
                await self._socket.send_str(json.dumps(self._subscribe_frame()))
            else:
                self._ready.append(gap)
        elif kind == "error":
            await self.close()
            raise _api_error(int(frame.get("status") or 400), frame, json.dumps(frame))

    def _change(self, wire: object) -> None:
        """A stream item of this subscription: a change, a relayed message, a conflict."""
        if isinstance(wire, dict) and wire.get("subscription") == self.id:
            item = _STREAM_ITEMS[str(wire.get("type"))].model_validate(wire)
            self.position = item.position
            self._ready.append(item)
