"""The emulator's state (world, records, stats, rate limiter, interactions) and waiting on it."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from aiohttp import web

from .api import Route
from .gateway import Gateway, Intent, SentEvent
from .interactions import EmulatorTimeoutError, InteractionHandle
from .ratelimit import BucketConfig, RateLimiter
from .state import JSON, AppCommand, Channel, ChannelType, Message, Snowflakes, User, World, utcnow

if TYPE_CHECKING:
    from .faults import FaultRule  # faults builds on the core

log = logging.getLogger(__name__)

DEFAULT_TOKEN = "MTEwMDAwMDAwMDAwMDAwMDAw.Emu1at.or-token-for-paperbell-tests"
ATTACHMENT_SIZE_LIMIT = 10 * 1024 * 1024
_RECHECK = 0.02
DISCORD_MESSAGE_RATE_LIMIT = BucketConfig(5, 5.0)  # per channel, as Discord documents for bots
GENEROUS_RATE_LIMIT = BucketConfig(50, 1.0)  # every other route: headers, but out of the way
INTERACTION_TOKEN_LIFETIME = 15 * 60.0

# Application flags: GATEWAY_PRESENCE_LIMITED, GATEWAY_GUILD_MEMBERS_LIMITED,
# GATEWAY_MESSAGE_CONTENT_LIMITED (the bits an unverified bot has when enabled).
_INTENT_FLAGS = {
    Intent.GUILD_PRESENCES: 1 << 13,
    Intent.GUILD_MEMBERS: 1 << 15,
    Intent.MESSAGE_CONTENT: 1 << 19,
}


@dataclass(frozen=True)
class CommandSync:
    """One command write by the bot: bulk overwrite (PUT), create (POST), edit or delete."""

    method: str
    guild_id: int | None
    names: tuple[str, ...]
    at: datetime


@dataclass(frozen=True)
class RequestRecord:
    method: str
    path: str
    route: str
    status: int
    at: datetime


@dataclass
class EmulatorStats:
    requests: int = 0
    by_route: Counter[str] = field(default_factory=Counter)
    statuses: Counter[int] = field(default_factory=Counter)
    rate_limited: int = 0  # 429s from exhausted buckets and injected 429s
    injected_failures: int = 0
    nonce_duplicates: int = 0
    validation_errors: int = 0
    messages_created: int = 0


class EmulatorCore:
    """The emulator's state and the waits and reads over it; the other parts are mixins on it."""

    def __init__(
        self,
        *,
        token: str = DEFAULT_TOKEN,
        bot_name: str = "paperbell",
        host: str = "127.0.0.1",
        port: int = 0,
        message_rate_limit: BucketConfig | None = DISCORD_MESSAGE_RATE_LIMIT,
        default_rate_limit: BucketConfig = GENEROUS_RATE_LIMIT,
        global_rate_limit: int | None = None,
        recommended_shards: int = 1,
        privileged_intents: int = 0,
        heartbeat_interval_ms: int = 41250,
        interaction_deadline: float | None = 3.0,
        nonce_window: float = 300.0,
        resume_window: float = 60.0,
        connect_timeout: float = 10.0,
    ) -> None:
        snowflakes = Snowflakes()
        app_id = snowflakes.next()
        bot = User(id=app_id, username=bot_name, bot=True, discriminator="4242")
        self.world = World(bot=bot, application_id=app_id, token=token, snowflakes=snowflakes)
        self.world.users[bot.id] = bot
        self.token = token
        self.host = host
        self.port = port
        self.message_rate_limit = message_rate_limit
        self.default_rate_limit = default_rate_limit
        self.recommended_shards = recommended_shards
        self.privileged_intents = privileged_intents
        self.heartbeat_interval_ms = heartbeat_interval_ms
        self.interaction_deadline = interaction_deadline
        self.nonce_window = nonce_window
        self.resume_window = resume_window
        self.connect_timeout = connect_timeout

        self.stats = EmulatorStats()
        self.requests: list[RequestRecord] = []
        self.created_messages: list[Message] = []
        self.command_syncs: list[CommandSync] = []
        self.interactions: list[InteractionHandle] = []
        self.gateway = Gateway(self)
        self._limiter = RateLimiter(global_rate_limit)
        self._faults: list[FaultRule] = []
        self._nonces: dict[tuple[int, str], tuple[int, float]] = {}
        self._handles_by_id: dict[int, InteractionHandle] = {}
        self._handles_by_token: dict[str, InteractionHandle] = {}
        self._changed = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self._routes = self._build_routes()

    def _build_routes(self) -> list[Route]:
        raise NotImplementedError  # the assembled DiscordEmulator lists its routes

    # -- addresses and identity ----------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def api_url(self) -> str:
        """REST base for `configure_endpoints` / PAPERBELL_DISCORD_API_URL."""
        return f"{self.base_url}/api/v10"

    @property
    def gateway_url(self) -> str:
        """Gateway URL for `configure_endpoints` / PAPERBELL_DISCORD_GATEWAY_URL."""
        return f"ws://{self.host}:{self.port}/"

    @property
    def resume_gateway_url(self) -> str:
        return f"ws://{self.host}:{self.port}/resume"

    @property
    def application_id(self) -> int:
        return self.world.application_id

    @property
    def bot_user(self) -> User:
        return self.world.bot

    @property
    def application_flags(self) -> int:
        flags = 1 << 23  # APPLICATION_COMMAND_BADGE
        for intent, flag in _INTENT_FLAGS.items():
            if self.privileged_intents & intent:
                flags |= flag
        return flags

    # -- waiting -------------------------------------------------------------------------

    def _notify(self) -> None:
        # Wake every waiter; they re-check their predicate against the new state.
        self._changed.set()
        self._changed = asyncio.Event()

    async def wait_for(
        self,
        predicate: Callable[[], bool],
        *,
        timeout: float = 5.0,
        what: str = "a condition",
        details: Callable[[], str] | None = None,
    ) -> None:
        """Return as soon as `predicate()` is true; EmulatorTimeoutError after `timeout` s.

        Re-checked whenever the emulator's state changes, and every `_RECHECK` seconds so
        predicates over the bot's own state (its caches, its events) work too.
        """
        deadline = time.monotonic() + timeout
        while not predicate():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                extra = f" ({details()})" if details is not None else ""
                raise EmulatorTimeoutError(f"timed out after {timeout}s waiting for {what}{extra}")
            event = self._changed
            try:
                await asyncio.wait_for(event.wait(), min(remaining, _RECHECK))
            except TimeoutError:
                continue

    async def wait_for_messages(
        self,
        channel_id: int,
        count: int,
        *,
        timeout: float = 5.0,
        predicate: Callable[[Message], bool] | None = None,
    ) -> list[Message]:
        """Wait until the channel shows at least `count` (matching) messages; returns them all."""

        def matching() -> list[Message]:
            found = self.channel_messages(channel_id)
            return [m for m in found if predicate is None or predicate(m)]

        await self.wait_for(
            lambda: len(matching()) >= count,
            timeout=timeout,
            what=f"{count} message(s) in channel {channel_id}",
            details=lambda: f"saw {len(matching())}",
        )
        return matching()

    async def wait_for_dm_messages(
        self, user_id: int, count: int, *, timeout: float = 5.0
    ) -> list[Message]:
        await self.wait_for(
            lambda: len(self.dm_messages(user_id)) >= count,
            timeout=timeout,
            what=f"{count} DM(s) to user {user_id}",
            details=lambda: f"saw {len(self.dm_messages(user_id))}",
        )
        return self.dm_messages(user_id)

    async def wait_for_command_syncs(
        self, count: int = 1, *, timeout: float = 5.0
    ) -> list[CommandSync]:
        await self.wait_for(
            lambda: len(self.command_syncs) >= count,
            timeout=timeout,
            what=f"{count} command sync(s)",
            details=lambda: f"saw {len(self.command_syncs)}",
        )
        return list(self.command_syncs)

    async def wait_until_connected(
        self, shard_count: int = 1, *, timeout: float | None = None
    ) -> None:
        """Wait until every shard of `shard_count` has a READY, connected session."""

        def ready() -> bool:
            shards = {
                s.shard_id
                for s in self.gateway.sessions.values()
                if s.ready and s.shard_count == shard_count and s.connection is not None
            }
            return shards >= set(range(shard_count))

        await self.wait_for(
            ready,
            timeout=self.connect_timeout if timeout is None else timeout,
            what=f"{shard_count} READY shard(s)",
        )

    async def wait_until_disconnected(self, *, timeout: float = 5.0) -> None:
        await self.wait_for(
            lambda: not self.gateway.connections,
            timeout=timeout,
            what="all gateway connections to close",
        )

    # -- reading what the bot did --------------------------------------------------------

    def channel_messages(self, channel_id: int) -> list[Message]:
        """Messages visible in the channel, oldest first (no ephemeral ones, no deleted ones)."""
        return [m for m in self.world.channel_messages.get(channel_id, []) if not m.deleted]

    def dm_messages(self, user_id: int) -> list[Message]:
        channel_id = self.world.dm_channels.get(user_id)
        return [] if channel_id is None else self.channel_messages(channel_id)

    def get_message(self, message_id: int) -> Message | None:
        return self.world.messages.get(message_id)

    def global_commands(self) -> list[JSON]:
        return [c.to_payload() for c in self.world.global_commands.values()]

    def guild_commands(self, guild_id: int) -> list[JSON]:
        return [c.to_payload() for c in self.world.guild_commands.get(guild_id, {}).values()]

    def sent_events(
        self, name: str | None = None, *, shard_id: int | None = None
    ) -> list[SentEvent]:
        """Gateway DISPATCHes written to live connections, optionally filtered."""
        return [
            e
            for e in self.gateway.sent_events
            if (name is None or e.name == name) and (shard_id is None or e.shard_id == shard_id)
        ]

    def rate_limited_count(self) -> int:
        return self.stats.rate_limited

    # -- state helpers the routes, the builder and the driver share --------------------------

    def _ensure_dm_channel(self, user_id: int) -> Channel:
        existing = self.world.dm_channels.get(user_id)
        if existing is not None:
            return self.world.channels[existing]
        channel = Channel(
            id=self.world.snowflakes.next(), type=ChannelType.DM, recipient_id=user_id
        )
        self.world.channels[channel.id] = channel
        self.world.dm_channels[user_id] = channel.id
        return channel

    def _store_command(
        self, guild_id: int | None, scope: dict[str, AppCommand], raw: JSON
    ) -> AppCommand:
        name = raw["name"]
        kind = int(raw.get("type", 1))
        existing = scope.get(name)
        command = AppCommand(
            id=existing.id if existing else self.world.snowflakes.next(),
            application_id=self.world.application_id,
            guild_id=guild_id,
            name=name,
            type=kind,
            data={
                k: v
                for k, v in raw.items()
                if k not in ("id", "application_id", "version", "guild_id")
            },
            version=self.world.snowflakes.next(),
        )
        scope[name] = command
        return command

    def _record_sync(self, method: str, guild_id: int | None, names: list[str]) -> None:
        self.command_syncs.append(CommandSync(method, guild_id, tuple(names), utcnow()))
        log.info("command sync %s guild=%s: %s", method, guild_id, names)
