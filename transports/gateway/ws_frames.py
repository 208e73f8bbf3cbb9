"""The /ws frame protocol, pure: client frames parsed into typed values, server frames encoded.

Raw JSON exists only in `parse_text` and in the `to_wire` methods; everything between them is a
frozen value. Nothing here touches a socket, so the protocol is tested by feeding it strings.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Literal, TypeVar, get_args

import orjson
from pydantic import Field, JsonValue, ValidationError

from hub.codec import DecodeError, field_path, from_wire, write_message
from hub.commands import CommandCall, UnknownCommand, check_command
from hub.domains import DOMAINS, SyncDomain
from hub.envelope import Outcome
from hub.ids import ChittyIdStr, ContextId, InvalidChittyId, Kind, ProjectId, SessionId, parse
from hub.message import Message, canonical_write
from hub.models.base import WireModel
from hub.protocol import MessageIdStr, SyncMessage, SyncMessageType, SyncPayload, Target
from hub.record import record
from hub.subscriptions import RELAYED, Filter, Published
from transports.gateway.json_body import JsonRefused, loads

SubscriptionId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[\x21-\x7e]+$")]
Wire = dict[str, JsonValue]

# -- client -> hub ------------------------------------------------------------------------------


class ResumeAt(WireModel):
    """Where a subscriber's stream stood: resume after `offset` of stream `epoch`."""

    epoch: Annotated[str, Field(min_length=1, max_length=64)]
    offset: Annotated[int, Field(ge=0)]


class Filters(WireModel):
    """Server-side filters of a subscription (every one given must match)."""

    project_id: ProjectId | None = None
    session_id: SessionId | None = None
    topic_id: ContextId | None = None
    entity_id: ChittyIdStr | None = None
    platform: Annotated[str, Field(min_length=1, max_length=64)] | None = None


class Subscribe(WireModel):
    """`subscribe`: domains (default all), filters, an optional id and resume point."""

    type: Literal["subscribe"]
    domains: Annotated[list[SyncDomain], Field(min_length=1)] = Field(
        default_factory=lambda: list(SyncDomain)
    )
    filters: Filters = Field(default_factory=Filters)
    id: SubscriptionId | None = None
    resume: ResumeAt | None = None

    def wanted(self) -> Filter:
        """The broker filter this subscription asks for."""
        fields = self.filters
        return Filter(
            domains=list(dict.fromkeys(self.domains)),
            project_id=fields.project_id,
            session_id=fields.session_id,
            topic_id=fields.topic_id,
            entity_id=fields.entity_id,
            platform=fields.platform,
        )


class Unsubscribe(WireModel):
    """`unsubscribe`: stop one subscription of this connection."""

    type: Literal["unsubscribe"]
    subscription: SubscriptionId


class Ping(WireModel):
    """A client `heartbeat`; answered with the stream's epoch and offset."""

    type: Literal["heartbeat"]
    id: MessageIdStr | None = None


class ShortUpdate(WireModel):
    """The spec's short `state_update`: a domain, an operation, the entity's fields. Without
    an operation it updates the entity its `chittyId` names, or creates one (the spec's "send
    update" frame names none). A `state_snapshot` is the entity's whole state (what it omits
    is reset); `target` says which subscribers receive the change (default: all)."""

    type: Literal["state_update", "state_snapshot"]
    domain: SyncDomain
    operation: Literal["create", "update", "delete"] | None = None
    entity: dict[str, JsonValue]
    vector_clock: JsonValue = None  # validated as the message's clock
    id: MessageIdStr | None = None
    target: Target | None = None


@record
class Write:
    """A state update ready to submit; `short` says error fields use the short form's names.
    A plain short write is built lean, in its canonical form (`hub.message.canonical_write`);
    every other one is its validated model."""

    message: SyncMessage | Message
    short: bool
    index: int | None = None  # position in a batch


@record
class FrameError:
    """A refused frame (or a write the hub refused), answered as an `error` frame."""

    error: str
    detail: str
    field: str | None = None
    id: str | None = None
    index: int | None = None
    status: int = 422

    def to_wire(self) -> Wire:
        wire: Wire = {
            "type": "error",
            "id": self.id,
            "error": self.error,
            "detail": self.detail,
            "field": self.field,
            "status": self.status,
        }
        if self.index is not None:
            wire["index"] = self.index
        return wire


@record
class Batch:
    """Several state updates submitted together and answered per frame, in order."""

    items: tuple[Write | FrameError, ...]


class QueryFilters(WireModel):
    """What a short `query` frame narrows its list by (every one given must match)."""

    project_id: ProjectId | None = None
    session_id: SessionId | None = None
    topic_id: ContextId | None = None
    status: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    assignee: ChittyIdStr | None = None


class QueryPage(WireModel):
    """The part of a list a `query` asks for (a full message's `payload.entity.data`)."""

    status: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    assignee: ChittyIdStr | None = None
    limit: Annotated[int, Field(ge=1, le=500)] = 50
    cursor: Annotated[str, Field(max_length=1024)] | None = None


class ShortRequest(WireModel):
    """The short `state_request`: the state of one entity."""

    type: Literal["state_request"]
    domain: SyncDomain
    entity_id: ChittyIdStr
    id: MessageIdStr | None = None


class ShortQuery(QueryPage):
    """The short `query`: a page of a domain's entities, filtered."""

    type: Literal["query"]
    domain: SyncDomain
    filters: QueryFilters = Field(default_factory=QueryFilters)
    id: MessageIdStr | None = None


class ShortRelay(WireModel):
    """The short `event` / `command`: about one entity, for the subscribers `target` names."""

    type: Literal["event", "command"]
    domain: SyncDomain
    entity_id: ChittyIdStr
    data: dict[str, JsonValue] = Field(default_factory=dict)
    target: Target | None = None
    id: MessageIdStr | None = None


@record
class Read:
    """A `state_request` (the state of `entity_id`) or a `query` (a page of `domain`'s
    entities matching `filters`), answered to the asker alone."""

    id: str | None
    domain: SyncDomain
    entity_id: str | None = None  # state_request
    filters: Mapping[str, str] | None = None  # query: wire filter name -> value
    limit: int = 50
    cursor: str | None = None

    @property
    def query(self) -> bool:
        return self.filters is not None


@record
class Run:
    """A command the hub runs itself (`hub.commands`), answered to the asker."""

    id: str
    domain: SyncDomain
    entity_id: str
    command: CommandCall


@record
class Noted:
    """A client's `ack`: what it has seen of the stream is its own to keep (it resumes from
    an offset); nothing to answer."""

    id: str | None


ClientFrame = Subscribe | Unsubscribe | Ping | Write | Batch | FrameError | Read | Run | Noted


@record
class Origin:
    """Who writes on a connection, and where its messages get ids and timestamps."""

    node_id: str
    platform: str
    new_id: Callable[[Kind], str]
    now: Callable[[], datetime] = lambda: datetime.now(UTC)
    chitty_id: str = "CHITTY-USER-ANONYMOUS"  # the connection's authenticated principal


FRAME_TYPES = ("subscribe", "unsubscribe", "batch", *get_args(SyncMessageType))
BATCHED = ("state_update", "state_snapshot", "event", "command")  # what a batch may hold
_ANCHORS = {Kind.PROJ: "projectId", Kind.SESSION: "sessionId", Kind.CONTEXT: "topicId"}


def parse_text(text: str, origin: Origin, max_batch: int = 1000) -> ClientFrame:
    """One text frame as a typed client frame, or the error that answers it."""
    try:
        raw = loads(text)
    except ValueError as error:
        return FrameError("bad_json", f"the frame is not valid JSON: {error}", status=400)
    except JsonRefused as refused:
        return FrameError(refused.error, refused.detail, refused.field, status=refused.status)
    if isinstance(raw, list):
        return _batch(raw, origin, max_batch, "")
    return _frame(raw, origin, max_batch)


def _frame(raw: object, origin: Origin, max_batch: int) -> ClientFrame:
    if not isinstance(raw, dict):
        return FrameError("invalid", "a frame must be a JSON object or an array of state_update")
    kind, frame_id = raw.get("type"), _id_of(raw)
    if kind == "subscribe":
        return _model(Subscribe, raw, frame_id)
    if kind == "unsubscribe":
        return _model(Unsubscribe, raw, frame_id)
    if kind == "batch":
        extra = sorted(set(raw) - {"type", "frames"})
        if extra:
            return FrameError("invalid", "unknown field of a batch", extra[0], frame_id)
        frames = raw.get("frames")
        if not isinstance(frames, list):
            return FrameError("invalid", "must be an array of state_update frames", "frames")
        return _batch(frames, origin, max_batch, "frames")
    if kind in FRAME_TYPES and _full(raw):  # a whole SyncMessage: its type says what it does
        return parse_message(raw)
    if kind == "heartbeat":
        return _model(Ping, raw, frame_id)
    if kind in ("state_update", "state_snapshot"):
        return _write(raw, origin)
    if kind == "state_request":
        request = _model(ShortRequest, raw, frame_id)
        if isinstance(request, FrameError):
            return request
        return Read(request.id, request.domain, entity_id=request.entity_id)
    if kind == "query":
        query = _model(ShortQuery, raw, frame_id)
        if isinstance(query, FrameError):
            return query
        wanted = query.filters.model_dump(by_alias=True, exclude_none=True)
        return Read(query.id, query.domain, None, wanted, query.limit, query.cursor)
    if kind in ("event", "command"):
        return _short_relay(raw, origin)
    if kind == "ack":
        return Noted(frame_id)
    if kind == "conflict":
        return _conflict_refused(frame_id)
    known = ", ".join(FRAME_TYPES)
    return FrameError("invalid", f"unknown frame type {kind!r} (known: {known})", "type", frame_id)


def _full(raw: dict[str, object]) -> bool:
    return bool(raw.keys() & {"source", "payload", "metadata"})


def _conflict_refused(frame_id: str | None, index: int | None = None) -> FrameError:
    detail = (
        "the hub detects conflicts and sends them to subscribers; settle one with "
        "POST /api/v1/sync/conflicts/{id}/resolve"
    )
    return FrameError("invalid", detail, "type", frame_id, index)


M = TypeVar("M", bound=WireModel)


def _model(model: type[M], raw: dict[str, object], frame_id: str | None) -> M | FrameError:
    try:
        return model.model_validate(raw)
    except ValidationError as error:
        path, reason = field_path(error)
        return FrameError("invalid", _plain(reason), path or None, frame_id)


MessageFrame = Write | Read | Run | Ping | Noted | FrameError
"""What a whole SyncMessage can be."""


def parse_message(raw: object, index: int | None = None) -> MessageFrame:
    """A whole SyncMessage (of any type), validated once, as the frame its type makes it: a
    write, a relayed event or command, a read, a hub-run command, a heartbeat, a client ack;
    or the error that answers it. (/ws and `POST /sync/broadcast` alike.)"""
    try:
        message = from_wire(raw)
    except DecodeError as error:
        frame_id = _id_of(raw) if isinstance(raw, dict) else None
        return FrameError("invalid", _plain(error.reason), error.field or None, frame_id, index)
    kind = message.type
    if kind == "heartbeat":
        return Ping(type="heartbeat", id=message.id)
    if kind == "ack":
        return Noted(message.id)
    if kind == "conflict":
        return _conflict_refused(message.id, index)
    payload = message.payload
    assert payload is not None  # every other type requires one
    if kind in ("event", "command"):
        return _relayed(message, False, index)
    if kind == "state_request":
        return Read(message.id, payload.domain, entity_id=payload.entity.chitty_id)
    if kind == "query":
        return _full_query(message.id, payload.domain, payload.entity.chitty_id, payload)
    if payload.operation == "query":
        detail = f"a {kind} creates, updates or deletes"
        return FrameError("invalid", detail, "payload.operation", message.id, index=index)
    return Write(message, short=False, index=index)


def _full_query(
    message_id: str, domain: SyncDomain, anchor: str, payload: SyncPayload
) -> Read | FrameError:
    """A whole `query`: `payload.entity.chittyId` names the project, session or topic whose
    entities of `domain` it lists; `payload.entity.data` narrows and pages (`QueryPage`)."""
    name = _ANCHORS.get(parse(anchor).kind)
    if name is None:
        detail = "a query lists what belongs to a project, session or topic: name one"
        return FrameError("invalid", detail, "payload.entity.chittyId", message_id)
    try:
        page = QueryPage.model_validate(payload.entity.data)
    except ValidationError as error:
        path, reason = field_path(error)
        return FrameError("invalid", _plain(reason), f"payload.entity.data.{path}", message_id)
    filters = {name: anchor, **page.model_dump(exclude={"limit", "cursor"}, exclude_none=True)}
    return Read(message_id, domain, None, filters, page.limit, page.cursor)


def _short_relay(raw: dict[str, object], origin: Origin, index: int | None = None) -> ClientFrame:
    short = _model(ShortRelay, raw, _id_of(raw))
    if isinstance(short, FrameError):
        return replace(short, index=index)
    try:
        parse(short.entity_id, expect=DOMAINS[short.domain].kind)
    except InvalidChittyId as error:
        return FrameError("invalid", str(error), "entityId", short.id, index)
    message = write_message(
        message_id=short.id or origin.new_id(Kind.MSG),
        node_id=origin.node_id,
        platform=origin.platform,
        chitty_id=origin.chitty_id,
        domain=short.domain.value,
        operation="update",
        entity_id=short.entity_id,
        data=short.data,
        timestamp=origin.now(),
        kind=short.type,
        target=short.target.model_dump(by_alias=True) if short.target is not None else None,
    )
    return _relayed(message, True, index)


def _relayed(message: SyncMessage, short: bool, index: int | None) -> Write | Run | FrameError:
    """An event, or a command the hub knows: relayed (a `Write` the entity's host commits to
    its outbox), or run by the hub itself."""
    payload = message.payload
    assert payload is not None
    if message.type == "command":
        try:
            call = check_command(payload.domain, payload.entity.data)
        except UnknownCommand as error:
            where = ("data." if short else "payload.entity.data.") + error.field
            return FrameError("unknown_command", error.reason, where, message.id, index)
        if call.spec.hub_runs:
            if index is not None:
                detail = f"{call.name!r} is answered on its own: send it outside a batch"
                return FrameError("invalid", detail, "type", message.id, index)
            return Run(message.id, payload.domain, payload.entity.chitty_id, call)
    return Write(message, short=short, index=index)


def _batch(frames: list[object], origin: Origin, max_batch: int, where: str) -> Batch | FrameError:
    if not frames or len(frames) > max_batch:
        detail = f"a batch holds 1 to {max_batch} state_update frames, got {len(frames)}"
        return FrameError("invalid", detail, where or None)
    items: list[Write | FrameError] = []
    for index, raw in enumerate(frames):
        kind = raw.get("type") if isinstance(raw, dict) else None
        item: ClientFrame
        if not isinstance(raw, dict) or kind not in BATCHED:
            frame_id = _id_of(raw) if isinstance(raw, dict) else None
            detail = f"only {', '.join(BATCHED)} frames may be batched"
            item = FrameError("invalid", detail, "type", frame_id, index)
        elif _full(raw):
            item = parse_message(raw, index)
        elif kind in ("event", "command"):
            item = _short_relay(raw, origin, index)
        else:
            item = _write(raw, origin, index)
        if not isinstance(item, Write | FrameError):  # a read or a run: never batched
            detail = "only writes, events and relayed commands may be batched"
            item = FrameError("invalid", detail, "type", getattr(item, "id", None), index)
        items.append(item)
    return Batch(tuple(items))


def _plain(reason: str) -> str:
    return reason.removeprefix("Value error, ")


def _id_of(raw: dict[str, object]) -> str | None:
    value = raw.get("id")
    return value if isinstance(value, str) else None


def _write(raw: dict[str, object], origin: Origin, index: int | None = None) -> Write | FrameError:
    """A short `state_update` (or `state_snapshot`) as a `Write`, or the error answering it."""
    plain = _plain_short(raw)
    if plain is not None:  # one validation: the full message, built from the frame as it is
        written = _short_write(plain, origin, index, checked=True)
        if written is not None:
            return written
    try:
        short = ShortUpdate.model_validate(raw)
    except ValidationError as error:
        path, reason = field_path(error)
        return FrameError("invalid", _plain(reason), path or None, _id_of(raw), index=index)
    operation = short.operation or _implied_operation(short.entity)
    fields = (short.domain, operation, short.entity, short.vector_clock, short.id)
    target = short.target.model_dump(by_alias=True) if short.target is not None else None
    return _short_write(fields, origin, index, checked=False, kind=short.type, target=target)


def _implied_operation(entity: dict[str, JsonValue]) -> str:
    """A short frame without an operation: an update of the entity it names, else a create."""
    return "update" if "chittyId" in entity else "create"


_SHORT_KEYS = frozenset({"type", "domain", "operation", "entity", "vectorClock", "id"})
_DOMAIN_OF = {domain.value: domain for domain in SyncDomain}
_SHORT_OPERATIONS = frozenset({"create", "update", "delete"})

# A short state_update's (domain, operation, entity, vectorClock, id).
_ShortFields = tuple[SyncDomain, str, dict[str, JsonValue], JsonValue, str | None]


def _plain_short(raw: dict[str, object]) -> _ShortFields | None:
    """The fields of a frame that plainly has the short form's shape (only its own camelCase
    keys, a known domain and operation, an entity object, a string id if any), taken as they
    are: each value is then validated once, as part of the `SyncMessage` it becomes.
    None: the frame takes the validating path (`ShortUpdate` first)."""
    if not raw.keys() <= _SHORT_KEYS or raw.get("type") != "state_update":
        return None
    domain, operation = raw.get("domain"), raw.get("operation")
    entity, message_id = raw.get("entity"), raw.get("id")
    if (
        not isinstance(domain, str)
        or domain not in _DOMAIN_OF
        or not isinstance(entity, dict)
        or not (message_id is None or isinstance(message_id, str))
    ):
        return None
    if operation is None:
        operation = _implied_operation(entity)
    if not isinstance(operation, str) or operation not in _SHORT_OPERATIONS:
        return None
    clock: JsonValue = raw.get("vectorClock")  # type: ignore[assignment]
    return _DOMAIN_OF[domain], operation, entity, clock, message_id


def _short_write(
    fields: _ShortFields,
    origin: Origin,
    index: int | None,
    checked: bool,
    kind: str = "state_update",
    target: JsonValue = None,
) -> Write | FrameError | None:
    """A short `state_update` (or `kind`) as a `Write`, or the error that answers it.

    `checked`: the fields come from `_plain_short`, not validated; any refusal then returns
    None and the caller answers the frame from the validating path, so a bad frame gets exactly
    the error it got before (tests/transports/test_ws_short_fast.py holds the two equal)."""
    domain, operation, entity, vector_clock, short_id = fields
    data = dict(entity)
    entity_id = data.pop("chittyId", None)
    id_kind = DOMAINS[domain].kind
    if entity_id is None:
        if operation != "create":
            if checked:
                return None
            detail = "required to update or delete"
            return FrameError("invalid", detail, "entity.chittyId", short_id, index=index)
        entity_id = origin.new_id(id_kind)
    if not isinstance(entity_id, str):
        if checked:
            return None
        return FrameError("invalid", "must be a string", "entity.chittyId", short_id, index=index)
    message_id = short_id if short_id is not None else origin.new_id(Kind.MSG)
    now = origin.now()
    if checked and kind == "state_update" and target is None:  # built lean (it checks the id)
        lean = canonical_write(
            message_id=message_id,
            node_id=origin.node_id,
            platform=origin.platform,
            chitty_id=origin.chitty_id,
            domain=domain,
            operation=operation,
            entity_id=entity_id,
            data=data,
            timestamp=now,
            clock=vector_clock,
        )
        if lean is not None:
            return Write(lean, short=True, index=index)
    try:
        parse(entity_id, expect=id_kind)
    except InvalidChittyId as error:
        if checked:
            return None
        return FrameError("invalid", str(error), "entity.chittyId", short_id, index=index)
    try:
        message = write_message(
            message_id=message_id,
            node_id=origin.node_id,
            platform=origin.platform,
            chitty_id=origin.chitty_id,
            domain=domain.value,
            operation=operation,
            entity_id=entity_id,
            data=data,
            timestamp=now,  # a datetime: validated as it is, no text round trip
            clock=vector_clock,
            kind=kind,
            target=target,
        )
    except DecodeError as error:
        if checked:
            return None
        return FrameError(
            "invalid", _plain(error.reason), short_field(error.field), message_id, index=index
        )
    return Write(message, short=True, index=index)


_SHORT_NAMES = (
    ("payload.entity.data.", "entity."),
    ("payload.entity.", "entity."),
    ("payload.", ""),
    ("metadata.vectorClock", "vectorClock"),
)


def short_field(path: str) -> str | None:
    """A SyncMessage field path as the short `state_update` form names it."""
    for prefix, short in _SHORT_NAMES:
        if path.startswith(prefix):
            return short + path[len(prefix) :]
    return path or None


# -- hub -> client ------------------------------------------------------------------------------


class GapReason(StrEnum):
    """Why a subscriber's stream has a hole."""

    HISTORY = "history"  # what was missed is no longer retained: reload state; stays live
    OVERFLOW = "overflow"  # the connection fell behind: the subscription ended, resume it
    UNAVAILABLE = "unavailable"  # the hub failed to serve the catch-up: ended, resume it


@record
class Subscribed:
    """A subscription is open; its stream stands at (`epoch`, `offset`)."""

    subscription: str
    epoch: str
    offset: int

    def to_wire(self) -> Wire:
        return {
            "type": "subscribed",
            "subscription": self.subscription,
            "epoch": self.epoch,
            "offset": self.offset,
        }


@record
class Unsubscribed:
    subscription: str

    def to_wire(self) -> Wire:
        return {"type": "unsubscribed", "subscription": self.subscription}


@record
class Gap:
    """Events before `offset` may be missing; `offset` is where the subscription now stands.

    `ended`: the subscription is over and resumes exactly with `resume` at (epoch, offset);
    otherwise it goes on live after `offset` and the client should reload state over REST.
    """

    subscription: str
    epoch: str
    offset: int
    reason: GapReason
    detail: str

    @property
    def ended(self) -> bool:
        return self.reason is not GapReason.HISTORY

    def to_wire(self) -> Wire:
        return {
            "type": "gap",
            "subscription": self.subscription,
            "epoch": self.epoch,
            "offset": self.offset,
            "reason": self.reason.value,
            "ended": self.ended,
            "detail": self.detail,
        }


@record
class Ack:
    """A write is durable (`applied`, or `duplicate`: committed by an earlier delivery)."""

    id: str
    status: str
    entity_id: str
    seq: int
    clock: dict[str, int]
    conflicts: tuple[dict[str, JsonValue], ...]
    index: int | None = None

    @classmethod
    def of(cls, outcome: Outcome, index: int | None = None) -> Ack:
        return cls(
            outcome.message_id,
            outcome.status.value,
            outcome.entity_id,
            outcome.seq,
            dict(outcome.clock),
            outcome.conflicts,
            index,
        )

    def to_wire(self) -> Wire:
        wire: Wire = {
            "type": "ack",
            "id": self.id,
            "status": self.status,
            "entityId": self.entity_id,
            "seq": self.seq,
            "vectorClock": dict(self.clock),
            "conflicts": list(self.conflicts),
        }
        if self.index is not None:
            wire["index"] = self.index
        return wire


@record
class Pong:
    """The hub's heartbeat: the stream's epoch and head offset as this gateway follows it."""

    epoch: str
    offset: int
    id: str | None = None

    def to_wire(self) -> Wire:
        wire: Wire = {"type": "heartbeat", "epoch": self.epoch, "offset": self.offset}
        if self.id is not None:
            wire["id"] = self.id
        return wire


@record
class Acks:
    """The answers to one batch frame as one frame, in the batch's order (a connection opened
    with `acks=batch`): each item is the `ack` or `error` frame it would otherwise get alone."""

    items: tuple[Ack | FrameError, ...]

    def to_wire(self) -> Wire:
        return {"type": "acks", "items": [item.to_wire() for item in self.items]}


@record
class Answer:
    """What a `state_request`, `query` or hub-run `command` asked for, to the asker alone:
    a `state_snapshot`, `query_result` or `command_result` frame."""

    type: Literal["state_snapshot", "query_result", "command_result"]
    id: str | None
    body: Mapping[str, JsonValue]

    def to_wire(self) -> Wire:
        return {"type": self.type, "id": self.id, **self.body}


ServerFrame = Subscribed | Unsubscribed | Gap | Ack | Acks | Pong | FrameError | Answer

_OPERATIONS = {"created": "create", "updated": "update", "deleted": "delete"}


def event_wire(event: Published, subscription: str, epoch: str) -> Wire:
    """A committed change as a hub -> client `state_update`."""
    moment = datetime.fromtimestamp(event.timestamp_ms / 1000, UTC)
    return {
        "type": "state_update",
        "domain": event.domain.value,
        "operation": _OPERATIONS.get(event.kind, event.kind),
        "entityId": event.entity_id,
        "entity": dict(event.entity),
        "subscription": subscription,
        "epoch": epoch,
        "offset": event.offset,
        "seq": event.seq,
        "vectorClock": dict(event.clock),
        "changed": list(event.changed),
        "conflicts": [dict(c) for c in event.open_conflicts],
        "messageId": event.message_id,
        "source": {"nodeId": event.node_id, "platform": event.platform},
        "timestamp": moment.isoformat(),
    }


def relay_wire(event: Published, subscription: str, epoch: str) -> Wire:
    """A relayed `event` or `command` as the subscribers its target names receive it."""
    moment = datetime.fromtimestamp(event.timestamp_ms / 1000, UTC)
    return {
        "type": event.kind,
        "domain": event.domain.value,
        "entityId": event.entity_id,
        "data": dict(event.data or {}),
        "subscription": subscription,
        "epoch": epoch,
        "offset": event.offset,
        "seq": event.seq,
        "messageId": event.message_id,
        "source": {"nodeId": event.node_id, "platform": event.platform},
        "timestamp": moment.isoformat(),
    }


def conflict_wires(event: Published, subscription: str, epoch: str) -> list[Wire]:
    """A `conflict` frame per conflict this change opened (or widened) or resolved, the
    conflict in the spec's `ConflictResolution` shape (same offset as the change)."""
    opened = {str(c.get("conflictId")): c for c in event.open_conflicts}
    closed = {str(c.get("conflictId")): c for c in event.resolved_conflicts}
    frames: list[Wire] = []
    for conflict_id in event.conflicts:
        record = opened.get(conflict_id) or closed.get(conflict_id)
        if record is None:
            continue
        frames.append(
            {
                "type": "conflict",
                "status": "opened" if conflict_id in opened else "resolved",
                "domain": event.domain.value,
                "entityId": event.entity_id,
                "conflict": dict(record),
                "subscription": subscription,
                "epoch": epoch,
                "offset": event.offset,
                "seq": event.seq,
                "messageId": event.message_id,
            }
        )
    return frames


def stream_wires(event: Published, subscription: str, epoch: str) -> list[Wire]:
    """What one published message becomes for one subscription: the change and its conflicts,
    or a relayed event or command."""
    if event.kind in RELAYED:
        return [relay_wire(event, subscription, epoch)]
    return [event_wire(event, subscription, epoch), *conflict_wires(event, subscription, epoch)]


def batch_wire(events: list[Wire]) -> Wire:
    """Several hub -> client events in one frame, in stream order."""
    items: list[JsonValue] = [*events]
    return {"type": "batch", "events": items}


def encode(wire: Wire | str) -> str:
    """A frame as compact JSON text; text is taken as an already encoded frame.

    orjson writes the same JSON as `json.dumps` with compact separators and non-ASCII kept,
    5-7x faster (an event's JSON was a tenth of the gateway's CPU under load). What orjson
    refuses (a lone surrogate a client sent, an integer past 64 bits, a non-string key) goes
    through the standard library as before."""
    if isinstance(wire, str):
        return wire
    try:
        return orjson.dumps(wire).decode()
    except TypeError:  # orjson.JSONEncodeError is a TypeError
        return json.dumps(wire, separators=(",", ":"), ensure_ascii=False)
