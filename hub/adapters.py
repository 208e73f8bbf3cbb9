"""The adapter seam (spec §Cross-Channel Adapters): what a channel adapter must do, what it may
do, what it reports, and the values that cross the seam. No I/O here: the adapters themselves
(`transports/channels/`) talk to their services, the actor shell (`actors/adapter.py`) feeds
them the hub's changes and their inbound events back to the hub.

As in mautrix bridgev2, the required interface is small (`ChannelAdapter`) and each optional
capability is a Protocol of its own (`CanEdit`, `CanDelete`, `CanThread`, `CanReact`) that an
adapter implements or not; the runner asks `isinstance` and falls back where one is missing
(an edit becomes a new message marked "updated", a thread a quoted reply).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Literal, Protocol, runtime_checkable

from pydantic import JsonValue


class AdapterState(StrEnum):
    """Where an adapter's connection to its service stands (bridge states)."""

    CONNECTED = "connected"
    TRANSIENT_DISCONNECT = "transient_disconnect"  # retrying with capped backoff
    BAD_CREDENTIALS = "bad_credentials"  # the service refused its credentials: fix and restart
    DISABLED = "disabled"  # not configured, or stopped


@dataclass(frozen=True, slots=True)
class ChannelCapabilities:
    """The spec's `ChannelCapabilities`: what decides how a change is shown on a channel."""

    supports_threads: bool
    supports_reactions: bool
    supports_attachments: bool
    supports_rich_text: bool
    supports_voice: bool
    supports_video: bool
    max_message_length: int


@dataclass(frozen=True, slots=True)
class NativeRef:
    """A message as its service names it: where it is, its id, the thread it sits in (if any).
    Only ids the service assigned are ever kept (never one a client chose)."""

    channel: str
    message_id: str
    thread_root: str | None = None
    # Other ids the same message has on the service (WhatsApp: its copy to each recipient and
    # each part of a long text): an inbound event naming any of them finds the entity.
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class AdapterMessage:
    """The spec's `AdapterMessage`: one change on its way to a channel.

    `chitty_id` is the entity it is about, `domain` and `entity` its wire view (an adapter with
    rich text builds its own form from them); `text` the plain rendering every channel can
    show (`hub.render`), `title` a subject line; `kind` what the change is: the entity's
    `state`, a `conflict` it opened, a `relay`ed event or command, a `test`, the `answer` to a
    command; `thread` the
    native message to reply under; `delivery` the id of this very post (a channel that keeps
    metadata with a message keeps it, so `CanFind` finds the post after a crash)."""

    chitty_id: str
    text: str
    sender: str
    channel: str
    title: str = ""
    domain: str = ""
    entity: Mapping[str, JsonValue] = field(default_factory=dict)
    kind: str = "state"
    thread: NativeRef | None = None
    timestamp_ms: int = 0
    delivery: str = ""


InboundKind = Literal["complete", "reply", "command", "new", "ignored", "status"]


@dataclass(frozen=True, slots=True)
class Inbound:
    """Something a person did on a channel that the hub should act on.

    `provider_id` is the service's own id of the event (Slack `event_id`, an email's
    `Message-ID`): the hub's message ids derive from it, so a redelivered event applies once.
    `ref` is the native message it acts on (a reaction's message, a reply's thread root).
    A `status` is the service's word on a message the hub sent (`arguments["status"]`: sent,
    delivered, read or failed, `text` why it failed): recorded against the message map.
    """

    kind: InboundKind
    provider_id: str
    channel: str
    actor: str  # the service's id of who did it
    ref: NativeRef | None = None
    text: str = ""
    arguments: Mapping[str, str] = field(default_factory=dict)
    # The service shows no answer to the call that brought the event (a socket, or a webhook
    # whose response goes nowhere): a command's answer is posted in the channel instead.
    answer_here: bool = False


class DeliveryError(Exception):
    """A delivery failed; subclasses say whether and when to try again."""


class RateLimited(DeliveryError):
    """The service said slow down (HTTP 429): try again after `retry_after_s`."""

    def __init__(self, retry_after_s: float) -> None:
        super().__init__(f"rate limited: retry after {retry_after_s:g} s")
        self.retry_after_s = retry_after_s


class TransientFailure(DeliveryError):
    """The service could not be reached or failed on its side: retry with backoff."""


class BadCredentials(DeliveryError):
    """The service refused the adapter's credentials: nothing is sent until they are fixed."""


class PermanentFailure(DeliveryError):
    """The service refused this message for good (an unknown channel, a message too large):
    the delivery ends `failed`, visible and retryable by hand."""


Handler = Callable[[Inbound], Awaitable[None]]


@runtime_checkable
class ChannelAdapter(Protocol):
    """What every channel adapter does (spec `ChannelAdapter`, Python names). The spec's
    `syncState`/`getState` are the runner's (`actors.adapter.AdapterRunner.sync` delivers the
    current state through `send_message` and the edit capability; `status()` is its state):
    an adapter only speaks its service's protocol."""

    id: str
    channel: str

    async def connect(self) -> None:
        """Reach the service and check the credentials (raise `BadCredentials` /
        `TransientFailure`; `PermanentFailure` when it cannot run here at all: it is disabled,
        with the reason)."""
        ...

    async def disconnect(self) -> None: ...

    def is_connected(self) -> bool: ...

    async def send_message(self, message: AdapterMessage) -> NativeRef:
        """Post a new message (in `message.thread` when given); the service's reference."""
        ...

    def on_message(self, handler: Handler) -> None:
        """Where inbound events the adapter receives by itself (a socket) are handed."""
        ...

    def get_capabilities(self) -> ChannelCapabilities: ...

    def channel_for(self, project_id: str | None) -> str | None:
        """The native channel an entity of `project_id` is shown in (a per-project mapping,
        else the default); None: not shown on this channel."""
        ...


@runtime_checkable
class CanEdit(Protocol):
    async def edit_message(self, ref: NativeRef, message: AdapterMessage) -> NativeRef: ...


@runtime_checkable
class CanDelete(Protocol):
    async def delete_message(self, ref: NativeRef) -> None: ...


@runtime_checkable
class CanThread(Protocol):
    """Posting with `message.thread` set replies in that thread (else: a quoted reply)."""

    def threads(self) -> bool: ...


@runtime_checkable
class CanSplit(Protocol):
    """Sends a text longer than its `max_message_length` as several messages in a row, nothing
    cut: the runner hands it the whole text (to any other adapter, the text shortened visibly
    to fit: `hub.render.fit`). `split` says how a text goes in parts."""

    def split(self, text: str) -> list[str]: ...


@runtime_checkable
class HearsInbound(Protocol):
    """Told of each inbound event after the hub acted on it, with the answer's status and
    text (WhatsApp: a person's message opens the 24-hour window in which the hub may write to
    them freely, and a command's answer goes back to that one person, as the webhook's own
    answer goes to the service; SMS: a recipient's STOP and START). A command answered in the
    channel where it was asked needs none of this: `Inbound.answer_here`."""

    async def heard(self, event: Inbound, status: str, text: str) -> None: ...


@runtime_checkable
class CanFind(Protocol):
    """Finds the posts of `deliveries` (`AdapterMessage.delivery`) this adapter made since
    `since_s` (epoch seconds) on a channel's top level, or in the thread of `thread_root`, if
    the service has them: what lets a post a crash interrupted count once, not twice."""

    async def find(
        self, channel: str, thread_root: str | None, deliveries: Collection[str], since_s: float
    ) -> dict[str, NativeRef]: ...


@runtime_checkable
class KnowsAudience(Protocol):
    """Who is on a channel, as hub principals, from a map of the service's users to ChittyIDs
    the operator configures (the spec's "respect platform-specific permissions"). With it an
    entity shows on a channel only while everyone there is one of its members (`withheld`
    otherwise), and a person's reaction, reply or command is taken only on what they may
    change. `maps_users()` is False when no map is configured: then which projects go to which
    channel, as the operator routed them, is the only rule."""

    def maps_users(self) -> bool: ...

    def principal_for(self, user: str) -> str | None: ...

    async def audience(self, channel: str) -> frozenset[str]:
        """The ChittyIDs of the channel's people (someone the map does not know as
        `UNMAPPED` + their native id: a member of nothing)."""
        ...


UNMAPPED = "unmapped:"


@runtime_checkable
class CanReact(Protocol):
    async def react(self, ref: NativeRef, reaction: str) -> None: ...


@runtime_checkable
class PlatformAdapter(Protocol):
    """The spec's `PlatformAdapter` (Python names), for a platform the hub pushes to. Web and
    CLI clients, and Claude over MCP, are served by the gateway itself (`/ws`, REST, `/mcp`);
    no platform adapter exists yet (mobile and VS Code are not built)."""

    id: str
    platform: str

    async def create_session(self, config: Mapping[str, JsonValue]) -> str: ...

    async def resume_session(self, session_id: str) -> None: ...

    async def end_session(self, session_id: str) -> None: ...

    async def sync_todos(self, todos: Sequence[Mapping[str, JsonValue]]) -> None: ...

    async def sync_context(self, context: Mapping[str, JsonValue]) -> None: ...


@dataclass(frozen=True, slots=True)
class Delivered:
    """A model took a hand-over context: the provider's name of the model that answered, the
    provider's id of its answer, and what it answered (its acknowledgement)."""

    model: str
    response_id: str
    acknowledged_text: str


@dataclass(frozen=True, slots=True)
class ToolUse:
    """A model asks to run one of the tools it was given. `problem` says why it cannot run as
    asked (arguments that are not a JSON object): the model is told, nothing runs."""

    call_id: str
    name: str
    arguments: Mapping[str, JsonValue]
    problem: str = ""


@dataclass(frozen=True, slots=True)
class ToolOutcome:
    """What running a `ToolUse` gave: the tool's result, or (not `ok`) the error as text."""

    use: ToolUse
    result: JsonValue
    ok: bool


@dataclass(frozen=True, slots=True)
class Reply:
    """A model's turn: its text, and the tools it wants run before it answers (if any)."""

    text: str
    tool_uses: tuple[ToolUse, ...] = ()
    response_id: str = ""


class ToolFailed(Exception):
    """A tool did not run, or the hub refused what it did: the reason goes back to the model."""


class ToolBox(Protocol):
    """The tools a model may call, each run as the principal who asked (so every scope check
    applies as for REST)."""

    def schemas(self, provider: str) -> Sequence[object]:
        """The tools' declarations in `provider`'s own form (anthropic, openai, google)."""
        ...

    async def run(self, name: str, arguments: Mapping[str, JsonValue]) -> JsonValue:
        """The tool's result; raises `ToolFailed`."""
        ...


@runtime_checkable
class ModelAdapter(Protocol):
    """The spec's `ModelAdapter` (Python names), for an AI model the hub talks to through its
    provider's API (`transports.models.agents`: Claude, ChatGPT, Gemini). One adapter is one
    conversation: the hand-over context it holds is the system prompt of every call, the tools
    registered are offered on every call. Claude also reads and writes the hub over MCP
    (`transports.mcp`), ChatGPT through Actions; `supports_*` say which."""

    id: str
    model: str  # 'claude', 'chatgpt', 'gemini'
    provider: str  # 'anthropic', 'openai', 'google'
    supports_mcp: bool
    supports_actions: bool
    supports_extensions: bool
    context: str  # the hand-over context held ('' for none)

    async def send_context(self, text: str) -> Delivered:
        """Hand the model `text` in one real call and keep it as this conversation's context;
        raises a `DeliveryError` (`BadCredentials`, `RateLimited`, `TransientFailure`,
        `PermanentFailure`) when the provider does not take it."""
        ...

    async def get_context(self) -> str: ...

    async def register_tools(self, tools: ToolBox) -> None: ...

    async def invoke_tool(self, use: ToolUse) -> ToolOutcome:
        """Run a tool the model asked for; its outcome (an error too) joins the conversation,
        for the model to read on the next `sync_conversation`."""
        ...

    async def sync_conversation(self, messages: Sequence[str]) -> Reply:
        """The user's `messages` join the conversation; one call: the model's next turn.
        Raises a `DeliveryError` as `send_context` does."""
        ...


# -- where entities go ------------------------------------------------------------------------


def pairs(text: str) -> dict[str, str]:
    """A setting such as `CHITTY-PROJ-A=C123,CHITTY-PROJ-B=C456` as a mapping (blank parts
    ignored)."""
    found = {}
    for part in text.split(","):
        key, _, value = part.strip().partition("=")
        if key and value:
            found[key.strip()] = value.strip()
    return found


@dataclass(frozen=True, slots=True)
class ChannelRoutes:
    """Which native channel shows a project's entities: its own, else the default (what a
    channel adapter's `channel_for` answers), and the project a channel stands for."""

    default: str | None
    by_project: Mapping[str, str] = field(default_factory=dict)

    def channel_for(self, project_id: str | None) -> str | None:
        if project_id is not None and project_id in self.by_project:
            return self.by_project[project_id]
        return self.default

    def project_of(self, channel: str) -> str | None:
        return next((p for p, c in self.by_project.items() if c == channel), None)


# -- webhooks ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Hook:
    """One webhook a channel's service calls, served at `/adapters/<channel>/<path>` and
    documented in the OpenAPI document as operation `name` (the service signs it, not a hub
    credential: say how in `auth`)."""

    name: str
    method: Literal["GET", "POST"]
    path: str
    summary: str
    description: str
    auth: str
    answers: str = "application/json"  # the media type of its answer


@dataclass(frozen=True, slots=True)
class HookRequest:
    """A webhook call as received: `url` the full URL the gateway saw (behind a proxy, a
    channel that signs URLs rebuilds it from its public URL and `path_qs`)."""

    hook: str  # the `Hook.name` it came in on
    url: str
    path_qs: str
    query: Mapping[str, str]
    headers: Mapping[str, str]  # case-insensitive
    body: bytes


@dataclass(frozen=True, slots=True)
class HookAnswer:
    """What the gateway answers the service: a JSON value, or text of `content_type`."""

    status: int = 200
    body: JsonValue = None
    content_type: str = "application/json"


@dataclass(frozen=True, slots=True)
class Received:
    """What a verified webhook call carries: `events` for the adapter's actor (each acted on,
    in order), and the answer: `now` when nothing waits on the actor (a verification
    handshake, a delivery receipt), else `reply` of the last event's (status, text)."""

    events: tuple[Inbound, ...] = ()
    now: HookAnswer | None = None
    reply: Callable[[str, str], HookAnswer] | None = None


class HookRefused(Exception):
    """A webhook call not taken: a bad signature (401), a malformed body (400)."""

    def __init__(self, status: int, error: str, detail: str, field: str | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.error = error
        self.detail = detail
        self.field = field


class Webhooks(Protocol):
    """A channel's webhooks, as configured: verify a call, say what it carries."""

    def receive(self, request: HookRequest) -> Received:
        """Raises `HookRefused`."""
        ...


@dataclass(frozen=True, slots=True)
class AdapterSpec:
    """One adapter the registry knows: the variables it reads, those it cannot start without,
    and where the function that builds it from them lives (`module:function`)."""

    name: str
    kind: Literal["channel", "platform", "model"]
    env: tuple[str, ...]
    needs: tuple[str, ...]
    factory: str
    summary: str = ""
    # The webhooks its service calls (documented whether or not configured), `module:function`
    # building its `Webhooks` from the environment, and what they need beyond `needs`.
    hooks: tuple[Hook, ...] = ()
    webhooks: str | None = None
    hook_needs: tuple[str, ...] = ()
    # Settings that start it instead of `needs` (a second way of running it), if any.
    or_needs: tuple[str, ...] = ()

    def hooks_missing(self, env: Mapping[str, str]) -> tuple[str, ...]:
        """The settings its webhooks need that `env` lacks."""
        return tuple(name for name in (*self.needs, *self.hook_needs) if not env.get(name))

    def missing(self, env: Mapping[str, str]) -> tuple[str, ...]:
        """The settings it needs that `env` lacks (nothing: it can start)."""
        if self.or_needs and all(env.get(name) for name in self.or_needs):
            return ()
        return tuple(name for name in self.needs if not env.get(name))

    def disabled(self, env: Mapping[str, str]) -> AdapterStatus:
        """Its status when it does not run here."""
        needs = self.missing(env)
        detail = f"set {', '.join(needs)} to start it" if needs else "not started"
        if needs and self.or_needs:
            detail += f" (or {', '.join(self.or_needs)})"
        return AdapterStatus(self.name, self.kind, AdapterState.DISABLED, not needs, needs, detail)


@dataclass(frozen=True, slots=True)
class AdapterStatus:
    """What `/health`, `/metrics`, `GET /api/v1/adapters` and `chitty adapters list` show."""

    name: str
    kind: Literal["channel", "platform", "model"]
    state: AdapterState
    configured: bool
    needs: tuple[str, ...] = ()  # settings it lacks (when not configured)
    detail: str = ""
    sent: int = 0
    received: int = 0
    retried: int = 0
    failed: int = 0
    pending: int = 0
    lag: int = 0  # committed changes it has not taken yet
    ignored: int = 0  # inbound events it would not act on (an unknown sender)
    withheld: int = 0  # deliveries not made: someone on the channel may not see the entity

    def to_wire(self) -> dict[str, JsonValue]:
        return {
            "name": self.name,
            "kind": self.kind,
            "state": self.state.value,
            "configured": self.configured,
            "needs": list(self.needs),
            "detail": self.detail,
            "sent": self.sent,
            "received": self.received,
            "retried": self.retried,
            "failed": self.failed,
            "pending": self.pending,
            "lag": self.lag,
            "ignored": self.ignored,
            "withheld": self.withheld,
        }
