"""Discord, with `hikari` (REST and the gateway): hub changes as messages that later changes edit,
conflicts in a thread started from the entity's message; a ✅ reaction and replies (in that
thread, or Discord replies to the hub's message) back to the hub over the gateway socket, so
Discord needs no public URL and the hub serves no webhook for it.

Configured by `DISCORD_BOT_TOKEN` and `CHITTY_DISCORD_CHANNEL` (the channel id changes go to),
plus `CHITTY_DISCORD_CHANNELS` (per project: `CHITTY-PROJ-A=123,CHITTY-PROJ-B=456`),
`CHITTY_DISCORD_WEBHOOK_URL` (a webhook of the default channel: posts there, and in its threads,
go through it and show the entity's creator as their author) and `CHITTY_DISCORD_API_URL` (the
REST base URL, Discord's `https://discord.com/api/v10` by default; a proxy or an emulator
otherwise). The gateway URL is the one `GET /gateway/bot` at that base answers (hikari asks
it), so one variable points both at a local emulator.

The bot needs the Message Content intent (a privileged intent, switched on in the developer
portal) to read replies, and in the channels it posts to: View Channel, Send Messages, Send
Messages in Threads, Create Public Threads, Read Message History, Embed Links, Attach Files.

Length: a message's content holds 2,000 characters. What the hub's text shows in its title is
cut at 200 (hub.render); the whole of a longer name (a todo's content, up to 10,000) goes into an
embed's description (4,096), and one longer than that into an attached text file as well (the
embed shows its beginning); a text longer than 2,000 (a conflict between long values) the same
way. Nothing is cut away: every character is in the message, in its content, embed or file.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import re
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import aiohttp
import hikari
from hikari.api.config import CacheComponents
from hikari.impl import config as hikari_config
from hikari.impl.buckets import RESTBucketManager
from hikari.impl.rest import RESTClientImpl
from pydantic import BaseModel, ConfigDict, Field

from hub.adapters import (
    AdapterMessage,
    BadCredentials,
    ChannelCapabilities,
    ChannelRoutes,
    DeliveryError,
    Handler,
    Inbound,
    NativeRef,
    PermanentFailure,
    RateLimited,
    TransientFailure,
    pairs,
)

log = logging.getLogger(__name__)

T = TypeVar("T")

DISCORD_API = "https://discord.com/api/v10"
DONE_EMOJI = "✅"  # on a todo's message completes it
CONTENT_MAX = 2000
EMBED_MAX = 4096
THREAD_NAME_MAX = 100
HOOK_NAME_MAX = 80
THREAD_EXISTS = 160004  # "A thread has already been created for this message"
UNKNOWN_WEBHOOK = 10015
UNKNOWN_MESSAGE = 10008
AUTH_FAILED = 4004  # the gateway's close code for a refused token
DISALLOWED_INTENTS = 4014
INTENTS = (
    hikari.Intents.GUILDS
    | hikari.Intents.GUILD_MESSAGES
    | hikari.Intents.GUILD_MESSAGE_REACTIONS
    | hikari.Intents.MESSAGE_CONTENT
)
CAPABILITIES = ChannelCapabilities(
    supports_threads=True,
    supports_reactions=True,
    supports_attachments=True,
    supports_rich_text=True,
    supports_voice=False,
    supports_video=False,
    # Content holds 2,000; the rest goes into an embed and a file (see the module), so the
    # runner need not cut anything the hub can hold.
    max_message_length=100_000,
)
_HOOK_URL = re.compile(r"/webhooks/(\d+)/([^/?#]+)")
_NAMES = {"todos": "content", "projects": "name", "topics": "title", "sessions": "sessionId"}


class DiscordConfig(BaseModel):
    """The Discord adapter's settings, from the environment (`from_env`)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    bot_token: str = Field(repr=False)
    channel: str = Field(min_length=1)
    api_url: str = DISCORD_API
    project_channels: dict[str, str] = Field(default_factory=dict)
    webhook_url: str | None = Field(default=None, repr=False)
    ready_timeout_s: float = Field(default=20.0, gt=0)  # for the gateway's first READY
    http_timeout_s: float = Field(default=15.0, gt=0)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> DiscordConfig:
        return cls(
            bot_token=env["DISCORD_BOT_TOKEN"],
            channel=env["CHITTY_DISCORD_CHANNEL"],
            api_url=(env.get("CHITTY_DISCORD_API_URL") or DISCORD_API).rstrip("/"),
            project_channels=pairs(env.get("CHITTY_DISCORD_CHANNELS", "")),
            webhook_url=env.get("CHITTY_DISCORD_WEBHOOK_URL") or None,
        )


ENV = (
    "DISCORD_BOT_TOKEN",
    "CHITTY_DISCORD_CHANNEL",
    "CHITTY_DISCORD_CHANNELS",
    "CHITTY_DISCORD_WEBHOOK_URL",
    "CHITTY_DISCORD_API_URL",
)
NEEDS = ("DISCORD_BOT_TOKEN", "CHITTY_DISCORD_CHANNEL")


@dataclass(frozen=True, slots=True)
class Look:
    """A change as a Discord message: its content (at most 2,000 characters), the embeds that
    hold what did not fit there, and a text file with all of that when it is longer than an
    embed holds."""

    content: str
    embeds: tuple[hikari.Embed, ...] = ()
    file: tuple[str, str] | None = None  # (file name, text)

    def attachment(self) -> hikari.Bytes | None:
        if self.file is None:
            return None
        name, text = self.file
        return hikari.Bytes(text.encode("utf-8"), name, mimetype="text/plain")


def look(message: AdapterMessage) -> Look:
    """How `message` shows on Discord (see the module on length)."""
    text = message.text or message.title or "(no text)"
    extra: list[str] = []
    if message.kind == "state":
        name = message.entity.get(_NAMES.get(message.domain, ""))
        if isinstance(name, str) and name and name not in text:  # the title cut it
            extra.append(name)
    if len(text) > CONTENT_MAX:
        extra.append(text)
        note = " … (continued below)"
        text = text[: CONTENT_MAX - len(note)] + note
    if not extra:
        return Look(text)
    whole = "\n\n".join(extra)
    if len(whole) <= EMBED_MAX:
        return Look(text, (hikari.Embed(description=whole),))
    note = "\n… (the whole text is in the attached file)"
    embed = hikari.Embed(description=whole[: EMBED_MAX - len(note)] + note)
    return Look(text, (embed,), (f"{message.chitty_id or 'message'}.txt", whole))


def nonce_of(delivery: str) -> str | None:
    """The nonce a post carries (Discord's limit: 25 characters): with `enforce_nonce`, a
    post the same delivery makes again within minutes (after a crash) answers the first."""
    return hashlib.sha256(delivery.encode()).hexdigest()[:25] if delivery else None


def hook_name(message: AdapterMessage) -> str:
    """A webhook post's author name: the entity's creator (Discord refuses names with
    "discord" or "clyde", and longer than 80)."""
    creator = message.entity.get("createdBy")
    name = creator if isinstance(creator, str) and creator.strip() else "ChittyChat Hub"
    if any(word in name.lower() for word in ("discord", "clyde")):
        name = "ChittyChat Hub"
    return name.strip()[:HOOK_NAME_MAX]


def thread_name(message: AdapterMessage) -> str:
    return (message.title or message.chitty_id or "ChittyChat")[:THREAD_NAME_MAX]


class DiscordAdapter:
    """The hub's Discord bot (see the module)."""

    id = "discord"
    channel = "discord"

    def __init__(self, config: DiscordConfig) -> None:
        self.config = config
        self._connected = False
        self._handler: Handler | None = None
        self._app: hikari.RESTApp | None = None
        self._rest: RESTClientImpl | None = None
        self._gateway: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()
        self._ever_ready = False
        self._gateway_error: DeliveryError | None = None
        self._bot_user: str | None = None
        self._hook: tuple[int, str] | None = None
        self._hook_channel: str | None = None
        self._by_hook: set[str] = set()  # messages this process posted through the webhook
        self._by_bot: set[str] = set()
        # A channel id -> its parent when it is a thread (a thread's id is its starter
        # message's), None when it is not.
        self._threads: dict[str, str | None] = {c: None for c in self.channels()}
        self.routes = ChannelRoutes(config.channel, config.project_channels)

    def channels(self) -> set[str]:
        return {self.config.channel, *self.config.project_channels.values()}

    # -- lifecycle ----------------------------------------------------------------------------

    async def _client(self) -> RESTClientImpl:
        """hikari's REST client (made inside the running loop). It retries nothing and waits
        out no rate limit itself (`max_retries=0`, `max_rate_limit=0`): the runner does both,
        with the outbox kept durable meanwhile."""
        if self._rest is None:
            app = hikari.RESTApp(
                http_settings=self._http_settings(),
                max_rate_limit=0,
                max_retries=0,
                url=self.config.api_url,
            )
            # RESTApp takes no bucket manager of ours: its own (a private attribute) is swapped.
            app._bucket_manager = _NoGlobalWait(0)
            await app.start()
            rest = app.acquire(self.config.bot_token, hikari.TokenType.BOT)
            rest.start()
            self._app, self._rest = app, rest
        return self._rest

    def _http_settings(self) -> hikari_config.HTTPSettings:
        timeouts = hikari_config.HTTPTimeoutSettings(total=self.config.http_timeout_s)
        return hikari_config.HTTPSettings(timeouts=timeouts)

    async def connect(self) -> None:
        """Check the token over REST (`GET /users/@me`), find the webhook's channel, and
        have the gateway session up (the first time: wait for its READY)."""
        rest = await self._client()
        me = await self._call(rest.fetch_my_user())
        self._bot_user = str(me.id)
        if self.config.webhook_url and self._hook is None:
            found = _HOOK_URL.search(self.config.webhook_url)
            if found is None:
                raise BadCredentials("CHITTY_DISCORD_WEBHOOK_URL is not a Discord webhook URL")
            hook = (int(found.group(1)), found.group(2))
            answer = await self._call(rest.fetch_webhook(hook[0], token=hook[1]))
            if not isinstance(answer, hikari.IncomingWebhook):
                raise BadCredentials("CHITTY_DISCORD_WEBHOOK_URL is not a channel's webhook")
            self._hook, self._hook_channel = hook, str(answer.channel_id)
        await self._gateway_up()
        self._connected = True

    async def _gateway_up(self) -> None:
        if self._gateway is None or self._gateway.done():
            self._gateway_error = None
            self._gateway = asyncio.create_task(self._keep_gateway(), name="discord-gateway")
        if self._ever_ready:
            return  # hikari resumes and reconnects by itself; REST is what delivery needs
        ready = asyncio.ensure_future(self._ready.wait())
        try:
            await asyncio.wait(
                {ready, self._gateway},
                timeout=self.config.ready_timeout_s,
                return_when=asyncio.FIRST_COMPLETED,
            )
        finally:
            ready.cancel()
        if self._ready.is_set():
            return
        if self._gateway.done() and not self._gateway.cancelled():
            error = self._gateway.exception()
            if isinstance(error, DeliveryError):
                raise error
        detail = self._gateway_error or "no READY yet"
        raise TransientFailure(f"the Discord gateway is not up: {detail}")

    def _bot(self) -> hikari.GatewayBot:
        try:
            bot = hikari.GatewayBot(
                self.config.bot_token,
                rest_url=self.config.api_url,
                intents=INTENTS,
                logs=None,
                banner=None,
                suppress_optimization_warning=True,
                cache_settings=hikari_config.CacheSettings(components=CacheComponents.NONE),
                auto_chunk_members=False,
                http_settings=self._http_settings(),
                max_retries=0,
            )
        except ValueError:  # hikari reads the bot's id out of the token
            raise BadCredentials("DISCORD_BOT_TOKEN is not a Discord bot token") from None
        bot.event_manager.subscribe(hikari.ShardPayloadEvent, self._on_payload)
        return bot

    async def _keep_gateway(self) -> None:
        """The gateway session, kept up: hikari's shard heartbeats, resumes after a reconnect
        (op 7) or a resumable invalid session, and reconnects with backoff; should the bot
        stop all the same (a close code it does not retry), a new one starts, unless Discord
        refused the token (raised: `connect` reports it)."""
        backoff = 1.0
        while True:
            bot = self._bot()
            try:
                await bot.start(check_for_updates=False)
                self._ready.set()
                self._ever_ready = True
                backoff = 1.0
                await bot.join()
                self._gateway_error = TransientFailure("the gateway session ended")
            except asyncio.CancelledError:
                raise
            except Exception as error:
                failure = _gateway_failure(error)
                self._gateway_error = failure
                if isinstance(failure, BadCredentials):
                    self._connected = False
                    raise failure from None
                log.warning("Discord gateway: %s; starting again in %.0f s", failure, backoff)
            finally:
                self._ready.clear()
                if bot.is_alive:
                    with contextlib.suppress(Exception):
                        await bot.close()
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 30.0)

    async def disconnect(self) -> None:
        self._connected = False
        if self._gateway is not None:
            self._gateway.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._gateway
            self._gateway = None
        self._ever_ready = False
        if self._rest is not None:
            with contextlib.suppress(Exception):
                await self._rest.close()
            self._rest = None
        if self._app is not None:
            with contextlib.suppress(Exception):
                await self._app.close()
            self._app = None

    def is_connected(self) -> bool:
        return self._connected

    def on_message(self, handler: Handler) -> None:
        self._handler = handler

    def get_capabilities(self) -> ChannelCapabilities:
        return CAPABILITIES

    def channel_for(self, project_id: str | None) -> str | None:
        """A project's mapped channel, else the default one."""
        return self.routes.channel_for(project_id)

    def project_of(self, channel: str) -> str | None:
        """The project a channel is mapped to, if one is."""
        return self.routes.project_of(channel)

    def threads(self) -> bool:
        return True

    # -- outbound -----------------------------------------------------------------------------

    def _hooked(self, channel: str) -> bool:
        """Whether posts in `channel` (or a thread under it) go through the webhook."""
        return self._hook is not None and channel == self._hook_channel

    async def send_message(self, message: AdapterMessage) -> NativeRef:
        rest = await self._client()
        shown = look(message)
        file = shown.attachment()
        thread: str | None = None
        if message.thread is not None:
            thread = await self._thread_of(message.thread, message)
        where = thread or message.channel
        if self._hooked(message.channel):
            assert self._hook is not None
            sent = await self._call(
                rest.execute_webhook(
                    self._hook[0],
                    self._hook[1],
                    shown.content,
                    thread=_id(thread) if thread else hikari.UNDEFINED,
                    username=hook_name(message),
                    embeds=shown.embeds or hikari.UNDEFINED,
                    attachment=file or hikari.UNDEFINED,
                    mentions_everyone=False,
                    user_mentions=False,
                    role_mentions=False,
                ),
                "channel",
            )
            self._by_hook.add(str(sent.id))
        else:
            nonce = nonce_of(message.delivery)
            sent = await self._call(
                rest.create_message(
                    _id(where),
                    shown.content,
                    embeds=shown.embeds or hikari.UNDEFINED,
                    attachment=file or hikari.UNDEFINED,
                    nonce=nonce if nonce is not None else hikari.UNDEFINED,
                    mentions_everyone=False,
                    user_mentions=False,
                    role_mentions=False,
                ),
                "channel",
            )
            self._by_bot.add(str(sent.id))
        if thread is not None:
            return NativeRef(thread, str(sent.id), message.thread.message_id)  # type: ignore[union-attr]
        return NativeRef(message.channel, str(sent.id))

    async def _thread_of(self, root: NativeRef, message: AdapterMessage) -> str:
        """The thread started from the entity's message (made on first use): its id, which
        is the message's."""
        if root.thread_root is not None:  # a post in a thread: that thread
            return root.channel
        if self._threads.get(root.message_id) is not None:
            return root.message_id
        rest = await self._client()
        try:
            made = await rest.create_message_thread(
                _id(root.channel), _id(root.message_id), thread_name(message)
            )
            thread = str(made.id)
        except hikari.BadRequestError as error:
            if error.code != THREAD_EXISTS:  # made before (by us before a restart, or a person)
                raise _failure(error, "message") from None
            thread = root.message_id
        except Exception as error:
            raise _failure(error, "message") from None
        self._threads[thread] = root.channel
        return thread

    async def edit_message(self, ref: NativeRef, message: AdapterMessage) -> NativeRef:
        shown = look(message)

        async def by_bot(rest: RESTClientImpl) -> None:
            await rest.edit_message(
                _id(ref.channel),
                _id(ref.message_id),
                shown.content,
                embeds=list(shown.embeds) or None,
                attachment=shown.attachment(),
                mentions_everyone=False,
                user_mentions=False,
                role_mentions=False,
            )

        async def by_hook(rest: RESTClientImpl) -> None:
            assert self._hook is not None
            await rest.edit_webhook_message(
                self._hook[0],
                self._hook[1],
                _id(ref.message_id),
                shown.content,
                thread=_id(ref.channel) if ref.thread_root is not None else hikari.UNDEFINED,
                embeds=list(shown.embeds) or None,
                attachment=shown.attachment(),
                mentions_everyone=False,
                user_mentions=False,
                role_mentions=False,
            )

        await self._as_author(ref, by_bot, by_hook)
        return ref

    async def delete_message(self, ref: NativeRef) -> None:
        async def by_bot(rest: RESTClientImpl) -> None:
            await rest.delete_message(_id(ref.channel), _id(ref.message_id))

        async def by_hook(rest: RESTClientImpl) -> None:
            assert self._hook is not None
            await rest.delete_webhook_message(self._hook[0], self._hook[1], _id(ref.message_id))

        await self._as_author(ref, by_bot, by_hook)

    async def _as_author(self, ref: NativeRef, by_bot: Any, by_hook: Any) -> None:
        """Act on a message as whoever posted it: the bot, or the webhook (only each can edit
        its own). Not known after a restart: the likelier first, then the other."""
        rest = await self._client()
        root_channel = self._threads.get(ref.channel) or ref.channel
        hooked = self._hook is not None and ref.message_id not in self._by_bot
        hook_first = hooked and (ref.message_id in self._by_hook or self._hooked(root_channel))
        ways = [by_hook, by_bot] if hook_first else [by_bot, *([by_hook] if hooked else [])]
        for n, way in enumerate(ways):
            try:
                await way(rest)
                return
            except (hikari.ForbiddenError, hikari.NotFoundError) as error:
                if n == len(ways) - 1 or getattr(error, "code", 0) == UNKNOWN_WEBHOOK:
                    raise _failure(error, "message") from None
            except Exception as error:
                raise _failure(error, "message") from None

    async def _call(self, work: Awaitable[T], what: str = "resource") -> T:
        """One REST call; Discord's failures as the seam's delivery errors."""
        try:
            answer = await work
        except Exception as error:
            failure = _failure(error, what)
            if isinstance(failure, BadCredentials | TransientFailure):
                self._connected = False
            raise failure from None
        self._connected = True
        return answer

    # -- inbound ------------------------------------------------------------------------------

    async def _on_payload(self, event: hikari.ShardPayloadEvent) -> None:
        """A gateway dispatch, raw: what the hub acts on goes to the handler."""
        try:
            inbound = await self._inbound(event.name, event.payload)
            if inbound is not None and self._handler is not None:
                await self._handler(inbound)
        except Exception:  # a listener's failure would only reach hikari's log
            log.exception("Discord %s failed", event.name)

    async def _inbound(self, name: str, data: Mapping[str, Any]) -> Inbound | None:
        if name == "READY":
            self._bot_user = str((data.get("user") or {}).get("id") or self._bot_user or "")
        elif name in ("THREAD_CREATE", "THREAD_UPDATE"):
            self._note_thread(data)
        elif name in ("GUILD_CREATE", "THREAD_LIST_SYNC"):
            for thread in data.get("threads") or []:
                self._note_thread(thread)
        elif name == "MESSAGE_REACTION_ADD":
            return reaction_event(data, self._bot_user)
        elif name == "MESSAGE_CREATE":
            if _not_a_person(data, self._bot_user):
                return None  # the hub's own posts come back over the gateway too
            return message_event(data, await self._parent_of(str(data.get("channel_id"))))
        return None

    def _note_thread(self, thread: Mapping[str, Any]) -> None:
        if thread.get("id") and thread.get("parent_id"):
            self._threads[str(thread["id"])] = str(thread["parent_id"])

    async def _parent_of(self, channel: str) -> str | None:
        """The channel a thread is in (None: `channel` is no thread), asked once per channel
        the gateway did not already tell about."""
        if channel in self._threads:
            return self._threads[channel]
        if not channel.isdigit():
            return None
        rest = await self._client()
        try:
            found = await rest.fetch_channel(int(channel))
        except hikari.HTTPError as error:
            log.info("Discord: channel %s unknown (%s)", channel, error)
            return None
        parent = (
            str(found.parent_id)
            if isinstance(found, hikari.GuildThreadChannel) and found.parent_id
            else None
        )
        self._threads[channel] = parent
        return parent


class GlobalRateLimit(Exception):
    """Discord's global rate limit (a 429 with `"global": true`), raised out of hikari."""

    def __init__(self, retry_after_s: float) -> None:
        super().__init__(f"globally rate limited for {retry_after_s:g} s")
        self.retry_after_s = retry_after_s


class _NoGlobalWait(RESTBucketManager):
    """hikari's rate-limit buckets, except that a global 429 is raised (as `GlobalRateLimit`,
    then `RateLimited`) rather than retried inside hikari: with `max_rate_limit=0` hikari raises
    a route's 429 (`RateLimitTooLongError`) but would send the request again at once on a
    global one. The runner waits `retry_after` in both cases, its outbox durable meanwhile."""

    def throttle(self, retry_after: float) -> None:
        raise GlobalRateLimit(float(retry_after))


def make(env: Mapping[str, str]) -> DiscordAdapter:
    """The adapter, from the environment (`CHANNELS` names this function)."""
    return DiscordAdapter(DiscordConfig.from_env(env))


def _id(native: str) -> hikari.Snowflake:
    """A channel's or message's id as hikari takes it (Discord's ids are numbers)."""
    if not native.isdigit():
        raise PermanentFailure(f"channel_not_found: {native!r} is not a Discord id")
    return hikari.Snowflake(int(native))


def _not_a_person(data: Mapping[str, Any], bot_user: str | None) -> bool:
    """A message the hub must not act on: its own (the bot's, any webhook's), another bot's,
    or a system message (a thread created, a pin...): only default messages and replies
    count."""
    author = data.get("author") or {}
    return bool(
        data.get("webhook_id")
        or author.get("bot")
        or (bot_user and str(author.get("id")) == bot_user)
        or data.get("type", 0) not in (0, 19)
    )


def reaction_event(data: Mapping[str, Any], bot_user: str | None) -> Inbound | None:
    """A MESSAGE_REACTION_ADD as what the hub should do: a person's ✅ completes; its id is
    the same at every redelivery (message, person, emoji), so it applies once."""
    emoji = data.get("emoji") or {}
    if emoji.get("name") != DONE_EMOJI or emoji.get("id"):
        return None
    user = str(data.get("user_id") or "")
    member = (data.get("member") or {}).get("user") or {}
    if not user or user == bot_user or member.get("bot"):
        return None
    channel, message = str(data.get("channel_id")), str(data.get("message_id"))
    provider_id = f"reaction:{channel}:{message}:{user}:{DONE_EMOJI}"
    return Inbound("complete", provider_id, channel, user, NativeRef(channel, message))


def message_event(data: Mapping[str, Any], parent: str | None) -> Inbound | None:
    """A person's MESSAGE_CREATE as a reply to what the hub posted: one in a thread (the
    thread's starter, whose id the thread shares), or a Discord reply to a message; None for
    a message on its own in a channel."""
    channel = str(data.get("channel_id"))
    reference = data.get("message_reference") or {}
    if parent is not None:
        ref = NativeRef(parent, channel)
    elif reference.get("message_id"):
        ref = NativeRef(str(reference.get("channel_id") or channel), str(reference["message_id"]))
    else:
        return None
    author = str((data.get("author") or {}).get("id") or "")
    text = str(data.get("content") or "")
    return Inbound("reply", f"message:{data.get('id')}", parent or channel, author, ref, text)


def _failure(error: BaseException, what: str) -> DeliveryError:
    """A hikari error as the seam's delivery error (`what` names the thing a 404 lacks)."""
    if isinstance(error, DeliveryError):
        return error
    if isinstance(error, hikari.RateLimitTooLongError):
        return RateLimited(max(float(error.retry_after), 0.0))
    if isinstance(error, GlobalRateLimit):
        return RateLimited(max(error.retry_after_s, 0.0))
    if isinstance(error, hikari.UnauthorizedError):
        return BadCredentials(f"Discord refused the token: {error.message or error.status}")
    if isinstance(error, hikari.NotFoundError):
        if error.code == UNKNOWN_WEBHOOK:
            return BadCredentials("CHITTY_DISCORD_WEBHOOK_URL names no webhook Discord knows")
        kind = "message" if error.code == UNKNOWN_MESSAGE else what
        return PermanentFailure(f"{kind}_not_found: {error.message} ({error.code})")
    if isinstance(error, hikari.ForbiddenError):
        return PermanentFailure(f"missing_access: {error.message} ({error.code})")
    if isinstance(error, hikari.ClientHTTPResponseError):
        return PermanentFailure(f"refused: {error.status} {error.message} ({error.code})")
    if isinstance(error, hikari.HTTPResponseError):
        return TransientFailure(f"Discord answered {error.status}: {error.message}")
    if isinstance(error, hikari.HTTPError | aiohttp.ClientError | OSError | TimeoutError):
        return TransientFailure(f"Discord is unreachable: {error!r}")
    if isinstance(error, hikari.ComponentStateConflictError):
        return TransientFailure(f"the Discord client is not running: {error}")
    raise error


def _gateway_failure(error: BaseException) -> DeliveryError:
    """Why the gateway bot stopped, as a delivery error."""
    if isinstance(error, hikari.GatewayServerClosedConnectionError):
        if error.code == AUTH_FAILED:
            return BadCredentials(f"the Discord gateway refused the token: {error.reason}")
        if error.code == DISALLOWED_INTENTS:
            return BadCredentials(
                "the bot may not use the Message Content intent: switch it on in the "
                "developer portal (Bot, Privileged Gateway Intents)"
            )
        return TransientFailure(f"the gateway closed the connection: {error.code} {error.reason}")
    if isinstance(error, hikari.GatewayError):
        return TransientFailure(f"gateway: {error}")
    try:
        return _failure(error, "gateway")
    except Exception:
        return TransientFailure(f"gateway: {error!r}")
