"""`DiscordEmulator`: Discord's REST API and gateway on 127.0.0.1 for end-to-end tests.

The real discord.py client runs against it unchanged; only its endpoints are
pointed here (`bot.discord_endpoints.configure_endpoints`). The emulator serves
the REST routes a bot uses (login, gateway discovery, application commands,
interaction callbacks and follow-ups, channel messages, DMs), enforces
Discord's limits, permissions, nonce deduplication and per-route rate limits
with real headers and error bodies, and exposes a test API to build guilds,
invoke slash commands, click components, inject failures and await what the
bot did. Everything runs on the caller's event loop; nothing is mocked.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import secrets
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import TracebackType
from typing import Any, Self

from aiohttp import BodyPartReader, web

from .gateway import Gateway, Intent, Op, SentEvent
from .interactions import (
    ALLOWED_CALLBACKS,
    CallbackRecord,
    CallbackType,
    EmulatorError,
    EmulatorTimeoutError,
    InteractionHandle,
    InteractionType,
    build_command_data,
    interaction_context,
    modal_submit_components,
    walk_components,
)
from .ratelimit import BucketConfig, RateLimiter
from .state import (
    DEFAULT_BOT_PERMISSIONS,
    DEFAULT_EVERYONE_PERMISSIONS,
    JSON,
    AppCommand,
    Attachment,
    Channel,
    ChannelType,
    Guild,
    Member,
    Message,
    MessageFlag,
    Overwrite,
    Permission,
    Role,
    Snowflakes,
    User,
    World,
    utcnow,
)
from .validation import (
    MAX_COMMANDS,
    FormErrors,
    check_choices,
    check_command,
    check_message,
    is_empty_message,
)

log = logging.getLogger(__name__)

DEFAULT_TOKEN = "MTEwMDAwMDAwMDAwMDAwMDAw.Emu1at.or-token-for-paperbell-tests"
ATTACHMENT_SIZE_LIMIT = 10 * 1024 * 1024
_RECHECK = 0.02
DISCORD_MESSAGE_RATE_LIMIT = BucketConfig(5, 5.0)  # per channel, as Discord documents for bots
GENEROUS_RATE_LIMIT = BucketConfig(50, 1.0)  # every other route: headers, but out of the way
_BAD_GATEWAY_HTML = (
    "<html><head><title>502 Bad Gateway</title></head>"
    "<body><center><h1>502 Bad Gateway</h1></center></body></html>"
)
INTERACTION_TOKEN_LIFETIME = 15 * 60.0

# Application flags: GATEWAY_PRESENCE_LIMITED, GATEWAY_GUILD_MEMBERS_LIMITED,
# GATEWAY_MESSAGE_CONTENT_LIMITED (the bits an unverified bot has when enabled).
_INTENT_FLAGS = {
    Intent.GUILD_PRESENCES: 1 << 13,
    Intent.GUILD_MEMBERS: 1 << 15,
    Intent.MESSAGE_CONTENT: 1 << 19,
}
_MESSAGE_FLAGS_SETTABLE = 4 | 64 | 4096 | 32768  # suppress embeds, ephemeral, silent, v2


class ApiError(Exception):
    """An error answer: status, JSON (or text) body and extra headers."""

    def __init__(
        self,
        status: int,
        body: JSON | str,
        headers: Mapping[str, str] | None = None,
        content_type: str = "application/json",
    ) -> None:
        super().__init__(f"{status} {body}")
        self.status = status
        self.body = body
        self.headers = dict(headers or {})
        self.content_type = content_type


def _error(status: int, code: int, message: str) -> ApiError:
    return ApiError(status, {"message": message, "code": code})


def _unknown(kind: str, code: int) -> ApiError:
    return _error(404, code, f"Unknown {kind}")


def _form_error(errors: FormErrors) -> ApiError:
    return ApiError(400, errors.body())


@dataclass
class FaultRule:
    channel_id: int
    status: int
    remaining: int
    code: int | None = None
    message: str | None = None
    retry_after: float = 1.0
    after_create: bool = False


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


@dataclass
class _Ctx:
    params: dict[str, str]
    query: Mapping[str, str]
    body: Any
    files: list[Attachment]


Handler = Callable[[_Ctx], Awaitable[tuple[int, Any]]]


@dataclass
class _Route:
    method: str
    template: str
    pattern: re.Pattern[str]
    handler: Handler
    auth: bool
    bucket: str | None
    major: str | None


class DiscordEmulator:
    """A local Discord for one bot application. `async with DiscordEmulator() as emu:`."""

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

    # -- lifecycle ---------------------------------------------------------------------

    async def start(self) -> Self:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", r"/api/v{version:\d+}/{tail:.*}", self._handle_api)
        app.router.add_get("/", self._handle_gateway)
        app.router.add_get("/resume", self._handle_gateway)
        app.router.add_get("/_emulator/state", self._handle_state)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        sockname = self._runner.addresses[0]
        self.port = int(sockname[1])
        log.info("Discord emulator listening on %s", self.base_url)
        return self

    async def stop(self) -> None:
        if self._runner is None:
            return
        await self.gateway.close_all(1001)
        await self._runner.cleanup()
        self._runner = None

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

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

    # -- building the world ----------------------------------------------------------------

    async def create_user(
        self,
        username: str,
        *,
        global_name: str | None = None,
        bot: bool = False,
        dms_open: bool = True,
    ) -> User:
        user = User(
            id=self.world.snowflakes.next(),
            username=username,
            global_name=global_name,
            bot=bot,
            dms_open=dms_open,
        )
        self.world.users[user.id] = user
        return user

    async def create_guild(
        self,
        name: str = "Test Guild",
        *,
        owner: User | int | None = None,
        shard: tuple[int, int] | None = None,
        everyone_permissions: int = DEFAULT_EVERYONE_PERMISSIONS,
        bot_permissions: int = DEFAULT_BOT_PERMISSIONS,
        with_bot: bool = True,
    ) -> Guild:
        """A guild with @everyone, an owner, and (by default) the bot with its managed role.

        `shard=(shard_id, shard_count)` picks an id that Discord routes to that shard.
        """
        world = self.world
        if owner is None:
            owner_user = await self.create_user(f"{name.lower().replace(' ', '-')}-owner")
            owner_id = owner_user.id
        else:
            owner_id = owner.id if isinstance(owner, User) else int(owner)
        guild_id = world.snowflakes.next(shard=shard)
        guild = Guild(id=guild_id, name=name, owner_id=owner_id)
        guild.roles[guild_id] = Role(
            id=guild_id, guild_id=guild_id, name="@everyone", permissions=everyone_permissions
        )
        world.guilds[guild_id] = guild
        guild.members[owner_id] = Member(guild_id=guild_id, user_id=owner_id)
        if with_bot:
            await self.add_bot(guild_id, permissions=bot_permissions)
        return guild

    async def add_bot(self, guild_id: int, *, permissions: int = DEFAULT_BOT_PERMISSIONS) -> Role:
        """The bot joins (is invited to) the guild; sends GUILD_CREATE to a connected shard."""
        world = self.world
        guild = world.guilds[guild_id]
        role = Role(
            id=world.snowflakes.next(),
            guild_id=guild_id,
            name=world.bot.username,
            permissions=permissions,
            position=1,
            managed=True,
            bot_id=world.bot.id,
        )
        guild.roles[role.id] = role
        guild.members[world.bot.id] = Member(
            guild_id=guild_id, user_id=world.bot.id, role_ids=[role.id]
        )
        for session in self.gateway.ready_shard_sessions(guild_id):
            body = world.guild_payload(
                guild_id, include_all_members=bool(session.intents & Intent.GUILD_MEMBERS)
            )
            await self.gateway._send_dispatch(session, "GUILD_CREATE", body)
        self._notify()
        return role

    async def remove_guild(self, guild_id: int) -> None:
        """The bot is kicked (or the guild deleted): GUILD_DELETE, and the guild is gone."""
        await self.gateway.dispatch("GUILD_DELETE", {"id": str(guild_id)}, guild_id=guild_id)
        guild = self.world.guilds.pop(guild_id)
        for cid in guild.channel_ids:
            self.world.channels.pop(cid, None)
        self._notify()

    def bot_role(self, guild_id: int) -> Role:
        return next(
            r for r in self.world.guilds[guild_id].roles.values() if r.bot_id == self.world.bot.id
        )

    async def create_role(self, guild_id: int, name: str, permissions: int = 0) -> Role:
        guild = self.world.guilds[guild_id]
        role = Role(
            id=self.world.snowflakes.next(),
            guild_id=guild_id,
            name=name,
            permissions=permissions,
            position=len(guild.roles),
        )
        guild.roles[role.id] = role
        await self.gateway.dispatch(
            "GUILD_ROLE_CREATE",
            {"guild_id": str(guild_id), "role": role.to_payload()},
            guild_id=guild_id,
        )
        return role

    async def set_role_permissions(self, guild_id: int, role_id: int, permissions: int) -> None:
        role = self.world.guilds[guild_id].roles[role_id]
        role.permissions = permissions
        await self.gateway.dispatch(
            "GUILD_ROLE_UPDATE",
            {"guild_id": str(guild_id), "role": role.to_payload()},
            guild_id=guild_id,
        )

    async def set_bot_permissions(self, guild_id: int, permissions: int) -> None:
        await self.set_role_permissions(guild_id, self.bot_role(guild_id).id, permissions)

    async def add_member(
        self,
        guild_id: int,
        user: User | int,
        *,
        roles: Iterable[Role | int] = (),
        nick: str | None = None,
    ) -> Member:
        user_id = user.id if isinstance(user, User) else int(user)
        role_ids = [r.id if isinstance(r, Role) else int(r) for r in roles]
        member = Member(guild_id=guild_id, user_id=user_id, role_ids=role_ids, nick=nick)
        self.world.guilds[guild_id].members[user_id] = member
        body = self.world.member_payload(guild_id, user_id)
        body["guild_id"] = str(guild_id)
        await self.gateway.dispatch(
            "GUILD_MEMBER_ADD", body, guild_id=guild_id, intent=Intent.GUILD_MEMBERS
        )
        return member

    async def create_member(
        self,
        guild_id: int,
        username: str,
        *,
        admin: bool = False,
        permissions: int | None = None,
        dms_open: bool = True,
    ) -> User:
        """A new user in the guild; `admin` gives an Administrator role, `permissions` a role
        with exactly those bits (on top of @everyone)."""
        user = await self.create_user(username, dms_open=dms_open)
        roles: list[Role] = []
        if admin:
            roles.append(await self.create_role(guild_id, "Admin", Permission.ADMINISTRATOR))
        if permissions is not None:
            roles.append(await self.create_role(guild_id, f"{username}-role", permissions))
        await self.add_member(guild_id, user, roles=roles)
        return user

    async def set_member_roles(
        self, guild_id: int, user_id: int, roles: Iterable[Role | int]
    ) -> None:
        member = self.world.guilds[guild_id].members[user_id]
        member.role_ids = [r.id if isinstance(r, Role) else int(r) for r in roles]
        body = self.world.member_payload(guild_id, user_id)
        body["guild_id"] = str(guild_id)
        intent = None if user_id == self.world.bot.id else Intent.GUILD_MEMBERS
        await self.gateway.dispatch("GUILD_MEMBER_UPDATE", body, guild_id=guild_id, intent=intent)

    async def create_text_channel(
        self,
        guild_id: int,
        name: str,
        *,
        topic: str | None = None,
        category_id: int | None = None,
        overwrites: Iterable[Overwrite] = (),
        announcement: bool = False,
    ) -> Channel:
        kind = ChannelType.GUILD_ANNOUNCEMENT if announcement else ChannelType.GUILD_TEXT
        return await self._create_guild_channel(
            guild_id, name, kind, topic=topic, parent_id=category_id, overwrites=overwrites
        )

    async def create_category(self, guild_id: int, name: str) -> Channel:
        return await self._create_guild_channel(guild_id, name, ChannelType.GUILD_CATEGORY)

    async def _create_guild_channel(
        self,
        guild_id: int,
        name: str,
        kind: int,
        *,
        topic: str | None = None,
        parent_id: int | None = None,
        overwrites: Iterable[Overwrite] = (),
    ) -> Channel:
        guild = self.world.guilds[guild_id]
        channel = Channel(
            id=self.world.snowflakes.next(),
            type=kind,
            name=name,
            guild_id=guild_id,
            position=len(guild.channel_ids),
            topic=topic,
            parent_id=parent_id,
            overwrites={ow.id: ow for ow in overwrites},
        )
        self.world.channels[channel.id] = channel
        guild.channel_ids.append(channel.id)
        await self.gateway.dispatch(
            "CHANNEL_CREATE", self.world.channel_payload(channel.id), guild_id=guild_id
        )
        return channel

    async def create_thread(
        self, parent_id: int, name: str, *, owner_id: int | None = None
    ) -> Channel:
        parent = self.world.channels[parent_id]
        assert parent.guild_id is not None, "threads live in guild channels"
        thread = Channel(
            id=self.world.snowflakes.next(),
            type=ChannelType.PUBLIC_THREAD,
            name=name,
            guild_id=parent.guild_id,
            parent_id=parent_id,
            owner_id=owner_id or self.world.bot.id,
        )
        self.world.channels[thread.id] = thread
        self.world.guilds[parent.guild_id].channel_ids.append(thread.id)
        body = self.world.channel_payload(thread.id)
        body["newly_created"] = True
        await self.gateway.dispatch("THREAD_CREATE", body, guild_id=parent.guild_id)
        return thread

    async def set_permission_overwrite(
        self, channel_id: int, target: User | Role | int, *, allow: int = 0, deny: int = 0
    ) -> None:
        """Set a channel overwrite for a role or member (Role/User or a raw id: guild id or role
        ids are roles, anything else a member); allow=deny=0 removes it. Sends CHANNEL_UPDATE."""
        channel = self.world.channels[channel_id]
        assert channel.guild_id is not None
        target_id = target.id if isinstance(target, User | Role) else int(target)
        is_role = target_id in self.world.guilds[channel.guild_id].roles
        if allow == 0 and deny == 0:
            channel.overwrites.pop(target_id, None)
        else:
            channel.overwrites[target_id] = Overwrite(
                id=target_id, type=0 if is_role else 1, allow=allow, deny=deny
            )
        await self.gateway.dispatch(
            "CHANNEL_UPDATE", self.world.channel_payload(channel_id), guild_id=channel.guild_id
        )

    async def delete_channel(self, channel_id: int) -> None:
        channel = self.world.channels.pop(channel_id)
        assert channel.guild_id is not None
        self.world.guilds[channel.guild_id].channel_ids.remove(channel_id)
        payload = {
            "id": str(channel.id),
            "type": channel.type,
            "guild_id": str(channel.guild_id),
            "name": channel.name,
            "parent_id": None if channel.parent_id is None else str(channel.parent_id),
            "position": channel.position,
            "permission_overwrites": [],
        }
        event = "THREAD_DELETE" if channel.is_thread else "CHANNEL_DELETE"
        await self.gateway.dispatch(event, payload, guild_id=channel.guild_id)

    def set_dms_open(self, user_id: int, is_open: bool) -> None:
        self.world.users[user_id].dms_open = is_open

    def dm_channel_id(self, user_id: int) -> int | None:
        return self.world.dm_channels.get(user_id)

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

    # -- reading what the bot did --------------------------------------------------------

    def channel_messages(self, channel_id: int) -> list[Message]:
        """Messages visible in the channel, oldest first (no ephemeral ones, no deleted ones)."""
        return [m for m in self.world.channel_messages.get(channel_id, []) if not m.deleted]

    def dm_messages(self, user_id: int) -> list[Message]:
        channel_id = self.world.dm_channels.get(user_id)
        return [] if channel_id is None else self.channel_messages(channel_id)

    def get_message(self, message_id: int) -> Message | None:
        return self.world.messages.get(message_id)

    def preload_commands(self, commands: Iterable[JSON], *, guild_id: int | None = None) -> None:
        """Register commands as if an earlier deployment had synced them (not counted as a sync).

        For a bot that only syncs when its command set changed and finds nothing changed.
        Takes the bodies discord.py sends (`command.to_dict(tree)`) or earlier payloads.
        """
        scope = (
            self.world.global_commands
            if guild_id is None
            else self.world.guild_commands.setdefault(guild_id, {})
        )
        for raw in commands:
            errors = FormErrors()
            check_command(raw, errors)
            if errors:
                raise EmulatorError(f"invalid command {raw.get('name')!r}: {errors.tree}")
            self._store_command(guild_id, scope, raw)

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

    # -- fault injection -------------------------------------------------------------------

    def fail_next_posts(
        self,
        channel_id: int | None = None,
        *,
        user_id: int | None = None,
        status: int,
        count: int = 1,
        code: int | None = None,
        message: str | None = None,
        retry_after: float = 1.0,
        after_create: bool = False,
    ) -> None:
        """The next `count` message posts to this channel (or this user's DM channel) fail.

        `status` 403 answers Missing Permissions (50013) unless `code` says otherwise, 404
        Unknown Channel (10003), 429 a rate limit with `retry_after`, 500/502/503 a server
        error. discord.py retries 429 and 500/502 by itself. With `after_create` the message
        is stored (nonce included) before the error is sent: the answer got lost, as when
        Discord times out behind its load balancer, so only a nonce makes a retry safe.
        """
        if (channel_id is None) == (user_id is None):
            raise ValueError("give exactly one of channel_id or user_id")
        if user_id is not None:
            channel_id = self._ensure_dm_channel(user_id).id
        assert channel_id is not None
        self._faults.append(
            FaultRule(
                channel_id=channel_id,
                status=status,
                remaining=count,
                code=code,
                message=message,
                retry_after=retry_after,
                after_create=after_create,
            )
        )

    def clear_faults(self) -> None:
        self._faults.clear()

    def reset_rate_limits(self) -> None:
        self._limiter.reset()

    def _take_fault(self, channel_id: int) -> FaultRule | None:
        for rule in self._faults:
            if rule.channel_id == channel_id and rule.remaining > 0:
                rule.remaining -= 1
                self.stats.injected_failures += 1
                return rule
        return None

    # -- gateway disruptions -----------------------------------------------------------------

    async def drop_connections(self, code: int = 4000) -> None:
        """Close every gateway socket with `code` (4000: the client should RESUME)."""
        await self.gateway.close_all(code)

    async def request_reconnect(self) -> None:
        """Send op 7 RECONNECT to every session."""
        await self.gateway.send_op_all(Op.RECONNECT, None)

    async def invalidate_sessions(self, *, resumable: bool = False) -> None:
        """Send op 9 INVALID_SESSION; with resumable=False the client must IDENTIFY again."""
        if not resumable:
            for session in self.gateway.sessions.values():
                session.buffer.clear()
        await self.gateway.send_op_all(Op.INVALID_SESSION, resumable)
        if not resumable:
            self.gateway.sessions.clear()

    # -- interactions ----------------------------------------------------------------------

    async def invoke_command(
        self,
        guild_id: int | None,
        channel_id: int | None,
        user_id: int,
        name: str,
        options: Mapping[str, Any] | None = None,
        *,
        locale: str = "en-US",
        client_checks: bool = True,
    ) -> InteractionHandle:
        """A user runs `/name [sub [subsub]] options...`; returns once INTERACTION_CREATE is sent.

        The command must have been synced (guild commands shadow global ones). For a DM
        pass guild_id=None and channel_id=None. With `client_checks` the emulator refuses,
        like Discord's client, commands the user could not see (contexts,
        default_member_permissions).
        """
        return await self._command_interaction(
            InteractionType.APPLICATION_COMMAND,
            guild_id,
            channel_id,
            user_id,
            name,
            options or {},
            focused=None,
            locale=locale,
            client_checks=client_checks,
        )

    async def autocomplete(
        self,
        guild_id: int | None,
        channel_id: int | None,
        user_id: int,
        name: str,
        options: Mapping[str, Any] | None = None,
        *,
        focused: str,
        locale: str = "en-US",
    ) -> InteractionHandle:
        """The user types into option `focused` (its current text is `options[focused]`)."""
        return await self._command_interaction(
            InteractionType.AUTOCOMPLETE,
            guild_id,
            channel_id,
            user_id,
            name,
            options or {},
            focused=focused,
            locale=locale,
            client_checks=True,
        )

    async def _command_interaction(
        self,
        itype: int,
        guild_id: int | None,
        channel_id: int | None,
        user_id: int,
        name: str,
        options: Mapping[str, Any],
        *,
        focused: str | None,
        locale: str,
        client_checks: bool,
    ) -> InteractionHandle:
        world = self.world
        parts = name.strip().lstrip("/").split()
        if not parts:
            raise EmulatorError("empty command name")
        command = world.command_by_name(parts[0], guild_id)
        if command is None:
            raise EmulatorError(
                f"/{parts[0]} is not registered for guild {guild_id} or globally; "
                f"synced: global={sorted(world.global_commands)}, "
                f"guild={sorted(world.guild_commands.get(guild_id or 0, {}))}"
            )
        channel = self._interaction_channel(guild_id, channel_id, user_id)
        cmd_payload = command.to_payload()
        if client_checks:
            self._check_command_visible(cmd_payload, channel, user_id)
        data = build_command_data(
            world,
            cmd_payload,
            parts[1:],
            options,
            guild_id=guild_id,
            channel_id=channel.id,
            user_id=user_id,
            focused=focused,
        )
        return await self._send_interaction(itype, channel, user_id, data, locale=locale)

    def _check_command_visible(self, command: JSON, channel: Channel, user_id: int) -> None:
        context = interaction_context(channel)
        contexts = command.get("contexts")
        if contexts is not None and context not in contexts:
            raise EmulatorError(
                f"/{command['name']} is not offered in context {context} ({contexts})"
            )
        if context == 1 and command.get("dm_permission") is False:
            raise EmulatorError(f"/{command['name']} is not offered in DMs")
        required = command.get("default_member_permissions")
        if context == 0 and required is not None and channel.guild_id is not None:
            perms = self.world.channel_permissions(channel.id, user_id)
            if int(required) & ~perms:
                raise EmulatorError(
                    f"/{command['name']} needs permissions {required}; the user lacks them"
                )

    def _interaction_channel(
        self, guild_id: int | None, channel_id: int | None, user_id: int
    ) -> Channel:
        world = self.world
        if user_id not in world.users:
            raise EmulatorError(f"unknown user {user_id}")
        if guild_id is None:
            if channel_id is not None and world.channels.get(channel_id, None) is not None:
                channel = world.channels[channel_id]
                if not channel.is_dm:
                    raise EmulatorError("a DM interaction needs a DM channel (or channel_id=None)")
                return channel
            return self._ensure_dm_channel(user_id)
        if guild_id not in world.guilds:
            raise EmulatorError(f"unknown guild {guild_id}")
        if world.member(guild_id, user_id) is None:
            raise EmulatorError(f"user {user_id} is not a member of guild {guild_id}")
        if channel_id is None or channel_id not in world.channels:
            raise EmulatorError(f"unknown channel {channel_id}")
        channel = world.channels[channel_id]
        if channel.guild_id != guild_id:
            raise EmulatorError(f"channel {channel_id} is not in guild {guild_id}")
        if not world.channel_permissions(channel_id, user_id) & Permission.VIEW_CHANNEL:
            raise EmulatorError(f"user {user_id} cannot see channel {channel_id}")
        return channel

    async def click_component(
        self,
        message_id: int,
        custom_id: str,
        user_id: int,
        *,
        values: list[str] | None = None,
        locale: str = "en-US",
    ) -> InteractionHandle:
        """The user clicks a button (or picks `values` in a select) on a message."""
        message = self.world.messages.get(message_id)
        if message is None or message.deleted:
            raise EmulatorError(f"unknown message {message_id}")
        component = next(
            (c for c in walk_components(message.components) if c.get("custom_id") == custom_id),
            None,
        )
        if component is None:
            ids = [
                c.get("custom_id")
                for c in walk_components(message.components)
                if c.get("custom_id")
            ]
            raise EmulatorError(
                f"message {message_id} has no component {custom_id!r}; it has {ids}"
            )
        if component.get("disabled"):
            raise EmulatorError(f"component {custom_id!r} is disabled")
        data: JSON = {"custom_id": custom_id, "component_type": component["type"]}
        if component["type"] in (3, 5, 6, 7, 8):
            data["values"] = [str(v) for v in values or []]
        elif values is not None:
            raise EmulatorError("values are only for select menus")
        channel = self._interaction_channel(message.guild_id, message.channel_id, user_id)
        return await self._send_interaction(
            InteractionType.MESSAGE_COMPONENT,
            channel,
            user_id,
            data,
            locale=locale,
            message=message,
        )

    async def submit_modal(
        self, handle: InteractionHandle, values: Mapping[str, Any], *, locale: str = "en-US"
    ) -> InteractionHandle:
        """The user fills in and submits the modal the bot answered `handle` with."""
        if handle.modal is None:
            raise EmulatorError("that interaction was not answered with a modal")
        channel = self.world.channels[handle.channel_id]
        data = {
            "custom_id": handle.modal.get("custom_id"),
            "components": modal_submit_components(handle.modal, values),
        }
        source = self.world.messages.get(handle.source_message_id or 0)
        return await self._send_interaction(
            InteractionType.MODAL_SUBMIT,
            channel,
            handle.user_id,
            data,
            locale=locale,
            message=source,
        )

    async def _send_interaction(
        self,
        itype: int,
        channel: Channel,
        user_id: int,
        data: JSON,
        *,
        locale: str,
        message: Message | None = None,
    ) -> InteractionHandle:
        world = self.world
        guild_id = channel.guild_id
        await self.wait_for(
            lambda: bool(self.gateway.ready_shard_sessions(guild_id)),
            timeout=self.connect_timeout,
            what=f"a READY gateway session for guild {guild_id}",
        )
        interaction_id = world.snowflakes.next()
        token = "aW50ZXJhY3Rpb246" + secrets.token_urlsafe(96)
        channel_payload = world.channel_payload(channel.id)
        payload: JSON = {
            "id": str(interaction_id),
            "application_id": str(world.application_id),
            "type": itype,
            "data": data,
            "token": token,
            "version": 1,
            "channel": channel_payload,
            "channel_id": str(channel.id),
            "locale": locale,
            "app_permissions": str(world.channel_permissions(channel.id, world.bot.id)),
            "entitlements": [],
            "entitlement_sku_ids": [],
            "attachment_size_limit": ATTACHMENT_SIZE_LIMIT,
            "context": interaction_context(channel),
        }
        if guild_id is not None:
            member = world.member_payload(guild_id, user_id)
            perms = world.channel_permissions(channel.id, user_id)
            member["permissions"] = str(perms)
            channel_payload["permissions"] = str(perms)
            payload.update(
                {
                    "guild_id": str(guild_id),
                    "guild": {"id": str(guild_id), "locale": "en-US", "features": []},
                    "guild_locale": "en-US",
                    "member": member,
                    "authorizing_integration_owners": {"0": str(guild_id)},
                }
            )
        else:
            payload["user"] = world.user_payload(user_id)
            payload["authorizing_integration_owners"] = {"0": "0"}
        if message is not None:
            payload["message"] = world.message_payload(message)
        handle = InteractionHandle(
            id=interaction_id,
            token=token,
            type=itype,
            guild_id=guild_id,
            channel_id=channel.id,
            user_id=user_id,
            payload=payload,
            emulator=self,
            source_message_id=None if message is None else message.id,
        )
        self.interactions.append(handle)
        self._handles_by_id[interaction_id] = handle
        self._handles_by_token[token] = handle
        await self.gateway.dispatch("INTERACTION_CREATE", payload, guild_id=guild_id, intent=None)
        self._notify()
        return handle

    # -- HTTP plumbing ---------------------------------------------------------------------

    def _build_routes(self) -> list[_Route]:
        routes: list[_Route] = []

        def add(
            method: str,
            template: str,
            handler: Handler,
            bucket: str | None,
            major: str | None = None,
            *,
            auth: bool = True,
        ) -> None:
            regex = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", template)
            pattern = re.compile(f"^{regex}$")
            routes.append(_Route(method, template, pattern, handler, auth, bucket, major))

        add("GET", "/gateway", self._get_gateway, "gateway", auth=False)
        add("GET", "/gateway/bot", self._get_gateway_bot, "gateway")
        add("GET", "/users/@me", self._get_me, "users")
        add("POST", "/users/@me/channels", self._create_dm, "dm")
        add("GET", "/users/{user_id}", self._get_user, "users")
        add("GET", "/oauth2/applications/@me", self._get_application, "app")
        add("GET", "/applications/@me", self._get_application, "app")
        for prefix, bucket, major in (
            ("/applications/{app_id}", "cmd", None),
            ("/applications/{app_id}/guilds/{guild_id}", "gcmd", "guild_id"),
        ):
            add("GET", f"{prefix}/commands", self._list_commands, bucket, major)
            add("PUT", f"{prefix}/commands", self._bulk_commands, f"{bucket}-put", major)
            add("POST", f"{prefix}/commands", self._upsert_command, f"{bucket}-post", major)
            one = f"{prefix}/commands/{{command_id}}"
            add("GET", one, self._get_command, bucket, major)
            add("PATCH", one, self._edit_command, bucket, major)
            add("DELETE", one, self._delete_command, bucket, major)
        ch = "/channels/{channel_id}"
        add("GET", ch, self._get_channel, "channel", "channel_id")
        add("GET", f"{ch}/messages", self._list_messages, "messages-get", "channel_id")
        add("POST", f"{ch}/messages", self._post_message, "messages-post", "channel_id")
        msg = f"{ch}/messages/{{message_id}}"
        add("GET", msg, self._get_channel_message, "message-get", "channel_id")
        add("PATCH", msg, self._edit_channel_message, "message-patch", "channel_id")
        add("DELETE", msg, self._delete_channel_message, "message-delete", "channel_id")
        add("POST", f"{ch}/typing", self._typing, "typing", "channel_id")
        g = "/guilds/{guild_id}"
        add("GET", g, self._get_guild, "guild", "guild_id")
        add("GET", f"{g}/channels", self._get_guild_channels, "guild", "guild_id")
        add("GET", f"{g}/roles", self._get_guild_roles, "guild", "guild_id")
        add("GET", f"{g}/members/{{user_id}}", self._get_guild_member, "member", "guild_id")
        # Interaction callbacks carry their own token and no rate-limit headers.
        cb = "/interactions/{interaction_id}/{token}/callback"
        add("POST", cb, self._interaction_callback, None, auth=False)
        hook = "/webhooks/{app_id}/{token}"
        add("POST", hook, self._execute_webhook, "webhook", "token", auth=False)
        hook_msg = f"{hook}/messages/{{message_id}}"
        add("GET", hook_msg, self._get_webhook_message, "webhook", "token", auth=False)
        add("PATCH", hook_msg, self._edit_webhook_message, "webhook", "token", auth=False)
        add("DELETE", hook_msg, self._delete_webhook_message, "webhook", "token", auth=False)
        return routes

    def _match(self, method: str, path: str) -> tuple[_Route | None, dict[str, str], bool]:
        path_matched = False
        for route in self._routes:
            m = route.pattern.match(path)
            if m is None:
                continue
            # A literal segment (@me) beats a parameter: /users/@me/channels vs /users/{id}.
            path_matched = True
            if route.method == method:
                return route, m.groupdict(), True
        return None, {}, path_matched

    async def _handle_api(self, request: web.Request) -> web.StreamResponse:
        path = "/" + request.match_info["tail"]
        method = request.method
        self.stats.requests += 1
        headers: dict[str, str] = {"Via": "1.1 google"}
        route, params, path_known = self._match(method, path)
        route_name = route.template if route else path
        try:
            if route is None:
                if path_known:
                    raise _error(405, 0, "405: Method Not Allowed")
                raise _error(404, 0, "404: Not Found")
            if route.auth and request.headers.get("Authorization") != f"Bot {self.token}":
                raise _error(401, 0, "401: Unauthorized")
            if route.bucket is not None:
                major = params.get(route.major, "") if route.major else ""
                config = self.default_rate_limit
                if route.bucket == "messages-post" and self.message_rate_limit is not None:
                    config = self.message_rate_limit
                decision = self._limiter.consume(route.bucket, major, config)
                headers.update(decision.headers)
                if not decision.allowed:
                    raise ApiError(
                        429,
                        {
                            "message": "You are being rate limited.",
                            "retry_after": round(decision.retry_after, 3),
                            "global": decision.is_global,
                        },
                    )
            ctx = _Ctx(params=params, query=request.query, body=None, files=[])
            await self._read_body(request, ctx)
            status, body = await route.handler(ctx)
        except ApiError as exc:
            status, body = exc.status, exc.body
            headers.update(exc.headers)
            if status == 400:
                self.stats.validation_errors += 1
            content_type = exc.content_type
        else:
            content_type = "application/json"
        if status == 429:
            self.stats.rate_limited += 1
        self.stats.by_route[f"{method} {route_name}"] += 1
        self.stats.statuses[status] += 1
        self.requests.append(RequestRecord(method, path, route_name, status, utcnow()))
        self._notify()
        if status == 204:
            return web.Response(status=204, headers=headers)
        if isinstance(body, str) and content_type != "application/json":
            headers["Content-Type"] = content_type
            return web.Response(status=status, body=body.encode(), headers=headers)
        # Exactly "application/json": discord.py only parses JSON with that content type.
        headers["Content-Type"] = "application/json"
        return web.Response(
            status=status, body=json.dumps(body, separators=(",", ":")).encode(), headers=headers
        )

    async def _read_body(self, request: web.Request, ctx: _Ctx) -> None:
        if not request.can_read_body:
            return
        ctype = request.content_type
        if ctype == "application/json":
            try:
                ctx.body = json.loads(await request.read() or b"null")
            except ValueError:
                raise _error(400, 50109, "The request body contains invalid JSON.") from None
        elif ctype == "multipart/form-data":
            reader = await request.multipart()
            while True:
                part = await reader.next()
                if part is None:
                    break
                if not isinstance(part, BodyPartReader):
                    continue
                data = await part.read()
                if part.name == "payload_json":
                    ctx.body = json.loads(data or b"null")
                else:
                    ctx.files.append(
                        Attachment(
                            id=self.world.snowflakes.next(),
                            filename=part.filename or "file",
                            size=len(data),
                            content_type=part.headers.get("Content-Type"),
                        )
                    )

    async def _handle_gateway(self, request: web.Request) -> web.StreamResponse:
        if request.headers.get("Upgrade", "").lower() != "websocket":
            return web.Response(
                status=404, text="this is the emulated gateway; connect with a websocket"
            )
        return await self.gateway.handle(request)

    async def _handle_state(self, request: web.Request) -> web.StreamResponse:
        body = {
            "application_id": str(self.application_id),
            "stats": {
                "requests": self.stats.requests,
                "rate_limited": self.stats.rate_limited,
                "messages_created": self.stats.messages_created,
                "nonce_duplicates": self.stats.nonce_duplicates,
            },
            "messages": [self.world.message_payload(m) for m in self.created_messages],
            "command_syncs": len(self.command_syncs),
            "sessions": [
                {"shard": [s.shard_id, s.shard_count], "connected": s.connection is not None}
                for s in self.gateway.sessions.values()
            ],
        }
        return web.Response(
            body=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
        )

    # -- REST: login and gateway discovery ----------------------------------------------------

    async def _get_gateway(self, ctx: _Ctx) -> tuple[int, Any]:
        return 200, {"url": self.gateway_url.rstrip("/")}

    async def _get_gateway_bot(self, ctx: _Ctx) -> tuple[int, Any]:
        return 200, {
            "url": self.gateway_url.rstrip("/"),
            "shards": self.recommended_shards,
            "session_start_limit": {
                "total": 1000,
                "remaining": self.gateway.session_start_remaining,
                "reset_after": 14_400_000,
                "max_concurrency": 1,
            },
        }

    async def _get_me(self, ctx: _Ctx) -> tuple[int, Any]:
        me = self.world.bot.to_payload()
        me.update(
            {"verified": True, "mfa_enabled": False, "email": None, "locale": "en-US", "bio": ""}
        )
        return 200, me

    async def _get_user(self, ctx: _Ctx) -> tuple[int, Any]:
        user = self.world.users.get(_int(ctx.params["user_id"]))
        if user is None:
            raise _unknown("User", 10013)
        return 200, user.to_payload()

    async def _get_application(self, ctx: _Ctx) -> tuple[int, Any]:
        world = self.world
        owner = next((u for u in world.users.values() if not u.bot), None)
        owner_payload = (owner or world.bot).to_payload()
        return 200, {
            "id": str(world.application_id),
            "name": world.application_name,
            "icon": None,
            "description": "paperbell under test",
            "summary": "",
            "type": None,
            "hook": True,
            "bot_public": False,
            "bot_require_code_grant": False,
            "verify_key": "0" * 64,
            "owner": owner_payload,
            "team": None,
            "flags": self.application_flags,
            "bot": world.bot.to_payload(),
            "redirect_uris": [],
            "interactions_endpoint_url": None,
            "role_connections_verification_url": None,
            "tags": [],
            "approximate_guild_count": len(world.guilds),
            "integration_types_config": {"0": {}},
        }

    # -- REST: application commands ------------------------------------------------------------

    def _command_scope(self, ctx: _Ctx) -> tuple[int | None, dict[str, AppCommand]]:
        if _int(ctx.params["app_id"]) != self.world.application_id:
            raise _error(403, 50001, "Missing Access")
        if "guild_id" in ctx.params:
            guild_id = _int(ctx.params["guild_id"])
            if (
                guild_id not in self.world.guilds
                or self.world.bot.id not in self.world.guilds[guild_id].members
            ):
                raise _error(403, 50001, "Missing Access")
            return guild_id, self.world.guild_commands.setdefault(guild_id, {})
        return None, self.world.global_commands

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

    async def _list_commands(self, ctx: _Ctx) -> tuple[int, Any]:
        _, scope = self._command_scope(ctx)
        return 200, [c.to_payload() for c in scope.values()]

    async def _bulk_commands(self, ctx: _Ctx) -> tuple[int, Any]:
        guild_id, scope = self._command_scope(ctx)
        body = ctx.body
        errors = FormErrors()
        if not isinstance(body, list):
            errors.add([], "BASE_TYPE_LIST", "Must be an array.")
            raise _form_error(errors)
        if len(body) > MAX_COMMANDS:
            raise _error(
                400, 30032, f"Maximum number of application commands reached ({MAX_COMMANDS})"
            )
        seen: set[tuple[int, str]] = set()
        for i, raw in enumerate(body):
            check_command(raw, errors, [i])
            if isinstance(raw, dict):
                key = (int(raw.get("type", 1)), str(raw.get("name")))
                if key in seen:
                    errors.add(
                        [i, "name"],
                        "APPLICATION_COMMANDS_DUPLICATE_NAME",
                        "Application command names must be unique",
                    )
                seen.add(key)
        if errors:
            raise _form_error(errors)
        old = dict(scope)
        scope.clear()
        for raw in body:
            existing = old.get(raw["name"])
            if existing is not None:
                scope[existing.name] = existing
            self._store_command(guild_id, scope, raw)
        self._record_sync("PUT", guild_id, [raw["name"] for raw in body])
        return 200, [c.to_payload() for c in scope.values()]

    async def _upsert_command(self, ctx: _Ctx) -> tuple[int, Any]:
        guild_id, scope = self._command_scope(ctx)
        errors = FormErrors()
        check_command(ctx.body, errors)
        if errors:
            raise _form_error(errors)
        created = ctx.body["name"] not in scope
        if created and len(scope) >= MAX_COMMANDS:
            raise _error(
                400, 30032, f"Maximum number of application commands reached ({MAX_COMMANDS})"
            )
        command = self._store_command(guild_id, scope, ctx.body)
        self._record_sync("POST", guild_id, [command.name])
        return (201 if created else 200), command.to_payload()

    def _find_command(self, ctx: _Ctx) -> tuple[int | None, dict[str, AppCommand], AppCommand]:
        guild_id, scope = self._command_scope(ctx)
        command_id = _int(ctx.params["command_id"])
        for command in scope.values():
            if command.id == command_id:
                return guild_id, scope, command
        raise _unknown("application command", 10063)

    async def _get_command(self, ctx: _Ctx) -> tuple[int, Any]:
        _, _, command = self._find_command(ctx)
        return 200, command.to_payload()

    async def _edit_command(self, ctx: _Ctx) -> tuple[int, Any]:
        guild_id, scope, command = self._find_command(ctx)
        merged = {**command.data, **(ctx.body or {})}
        errors = FormErrors()
        check_command(merged, errors)
        if errors:
            raise _form_error(errors)
        del scope[command.name]
        scope[merged["name"]] = command
        updated = self._store_command(guild_id, scope, merged)
        self._record_sync("PATCH", guild_id, [updated.name])
        return 200, updated.to_payload()

    async def _delete_command(self, ctx: _Ctx) -> tuple[int, Any]:
        guild_id, scope, command = self._find_command(ctx)
        del scope[command.name]
        self._record_sync("DELETE", guild_id, [command.name])
        return 204, None

    def _record_sync(self, method: str, guild_id: int | None, names: list[str]) -> None:
        self.command_syncs.append(CommandSync(method, guild_id, tuple(names), utcnow()))
        log.info("command sync %s guild=%s: %s", method, guild_id, names)

    # -- REST: channels, messages, DMs ----------------------------------------------------------

    def _channel(self, ctx: _Ctx, *, need: int = Permission.VIEW_CHANNEL) -> Channel:
        channel = self.world.channels.get(_int(ctx.params["channel_id"]))
        if channel is None:
            raise _unknown("Channel", 10003)
        if channel.is_dm:
            if channel.recipient_id is None:
                raise _unknown("Channel", 10003)
            return channel
        perms = self.world.channel_permissions(channel.id, self.world.bot.id)
        if not perms & Permission.VIEW_CHANNEL:
            raise _error(403, 50001, "Missing Access")
        if need & ~perms:
            raise _error(403, 50013, "Missing Permissions")
        return channel

    async def _get_channel(self, ctx: _Ctx) -> tuple[int, Any]:
        return 200, self.world.channel_payload(self._channel(ctx).id)

    async def _create_dm(self, ctx: _Ctx) -> tuple[int, Any]:
        body = ctx.body if isinstance(ctx.body, dict) else {}
        try:
            user_id = int(body["recipient_id"])
        except (KeyError, TypeError, ValueError):
            errors = FormErrors()
            errors.required(["recipient_id"])
            raise _form_error(errors) from None
        if user_id not in self.world.users or user_id == self.world.bot.id:
            raise _error(400, 50033, "Invalid Recipient(s)")
        channel = self._ensure_dm_channel(user_id)
        return 200, self.world.channel_payload(channel.id)

    async def _typing(self, ctx: _Ctx) -> tuple[int, Any]:
        self._channel(ctx, need=Permission.SEND_MESSAGES)
        return 204, None

    async def _list_messages(self, ctx: _Ctx) -> tuple[int, Any]:
        channel = self._channel(ctx)
        if not channel.is_dm:
            self._channel(ctx, need=Permission.VIEW_CHANNEL | Permission.READ_MESSAGE_HISTORY)
        messages = self.channel_messages(channel.id)
        try:
            limit = max(1, min(100, int(ctx.query.get("limit", "50"))))
        except ValueError:
            limit = 50
        if "before" in ctx.query:
            before = _int(ctx.query["before"])
            messages = [m for m in messages if m.id < before]
        if "after" in ctx.query:
            after = _int(ctx.query["after"])
            messages = [m for m in messages if m.id > after][:limit]
        newest_first = sorted(messages, key=lambda m: m.id, reverse=True)[:limit]
        return 200, [self.world.message_payload(m) for m in newest_first]

    def _channel_message(self, ctx: _Ctx, channel: Channel) -> Message:
        message = self.world.messages.get(_int(ctx.params["message_id"]))
        if (
            message is None
            or message.deleted
            or message.channel_id != channel.id
            or message.ephemeral
        ):
            raise _unknown("Message", 10008)
        return message

    async def _get_channel_message(self, ctx: _Ctx) -> tuple[int, Any]:
        channel = self._channel(ctx)
        return 200, self.world.message_payload(self._channel_message(ctx, channel))

    async def _post_message(self, ctx: _Ctx) -> tuple[int, Any]:
        world = self.world
        channel_id = _int(ctx.params["channel_id"])
        fault = self._take_fault(channel_id)
        if fault is not None and not fault.after_create:
            raise _fault_error(fault)
        channel = world.channels.get(channel_id)
        if channel is None:
            raise _unknown("Channel", 10003)
        if channel.is_dm:
            recipient = world.users.get(channel.recipient_id or 0)
            if recipient is None or not recipient.dms_open or recipient.bot:
                raise _error(403, 50007, "Cannot send messages to this user")
        else:
            need = (
                Permission.SEND_MESSAGES_IN_THREADS
                if channel.is_thread
                else Permission.SEND_MESSAGES
            )
            self._channel(ctx, need=need)
            if channel.type == ChannelType.GUILD_CATEGORY:
                raise _error(400, 50008, "Cannot send messages in a non-text channel")
            if channel.is_thread and channel.archived:
                raise _error(400, 50083, "Thread is archived")
        body = ctx.body if isinstance(ctx.body, dict) else {}
        errors = FormErrors()
        check_message(body, errors)
        if errors:
            raise _form_error(errors)
        if is_empty_message(body, len(ctx.files)):
            raise _error(400, 50006, "Cannot send an empty message")
        nonce = body.get("nonce")
        enforce = bool(body.get("enforce_nonce")) and nonce is not None
        key = (channel.id, str(nonce))
        if enforce:
            seen = self._nonces.get(key)
            if seen is not None and time.monotonic() - seen[1] < self.nonce_window:
                existing = world.messages.get(seen[0])
                if existing is not None:
                    self.stats.nonce_duplicates += 1
                    log.info(
                        "nonce %r repeated in channel %s: returning message %s",
                        nonce,
                        channel.id,
                        existing.id,
                    )
                    if fault is not None:
                        raise _fault_error(fault)
                    return 200, world.message_payload(existing)
        message = await self._create_message(
            channel,
            body,
            files=ctx.files,
            source="rest",
            flags=int(body.get("flags") or 0) & (4 | 4096 | 32768),
        )
        if enforce:
            self._nonces[key] = (message.id, time.monotonic())
        if fault is not None:
            raise _fault_error(fault)
        return 200, world.message_payload(message)

    async def _create_message(
        self,
        channel: Channel,
        body: JSON,
        *,
        files: list[Attachment],
        source: str,
        flags: int,
        handle: InteractionHandle | None = None,
        message_type: int = 0,
    ) -> Message:
        world = self.world
        message = Message(
            id=world.snowflakes.next(),
            channel_id=channel.id,
            guild_id=channel.guild_id,
            author_id=world.bot.id,
            content=str(body.get("content") or ""),
            embeds=list(body.get("embeds") or []),
            components=list(body.get("components") or []),
            flags=flags,
            allowed_mentions=body.get("allowed_mentions"),
            nonce=body.get("nonce"),
            enforce_nonce=bool(body.get("enforce_nonce")),
            tts=bool(body.get("tts")),
            type=message_type,
            attachments=list(files),
            message_reference=body.get("message_reference"),
            source=source,
        )
        if handle is not None:
            message.webhook_id = world.application_id
            message.application_id = world.application_id
            message.interaction_id = handle.id
            message.interaction_metadata = {
                "id": str(handle.id),
                "type": handle.type,
                "user": world.user_payload(handle.user_id),
                "authorizing_integration_owners": handle.payload.get(
                    "authorizing_integration_owners", {}
                ),
            }
        world.messages[message.id] = message
        if source == "rest":
            self.created_messages.append(message)
            self.stats.messages_created += 1
        if not message.ephemeral:
            world.channel_messages.setdefault(channel.id, []).append(message)
            channel.last_message_id = message.id
            if channel.is_thread:
                channel.message_count += 1
            await self._dispatch_message("MESSAGE_CREATE", message)
        self._notify()
        return message

    async def _dispatch_message(self, event: str, message: Message) -> None:
        body = self.world.message_payload(message)
        if message.guild_id is not None:
            body["guild_id"] = str(message.guild_id)
            body["member"] = self.world.member_payload(
                message.guild_id, message.author_id, with_user=False
            )
            intent = Intent.GUILD_MESSAGES
        else:
            intent = Intent.DIRECT_MESSAGES
        await self.gateway.dispatch(event, body, guild_id=message.guild_id, intent=intent)

    def _apply_edit(self, message: Message, body: JSON, files: list[Attachment]) -> None:
        if "content" in body:
            message.content = str(body["content"] or "")
        if "embeds" in body:
            message.embeds = list(body["embeds"] or [])
        if "components" in body:
            message.components = list(body["components"] or [])
        if "allowed_mentions" in body:
            message.allowed_mentions = body["allowed_mentions"]
        if "flags" in body and body["flags"] is not None:
            keep = message.flags & MessageFlag.EPHEMERAL
            message.flags = keep | (int(body["flags"]) & (4 | 4096 | 32768))
        if "attachments" in body:
            kept_ids = {
                int(a["id"])
                for a in body["attachments"] or []
                if "id" in a and str(a["id"]).isdigit()
            }
            message.attachments = [a for a in message.attachments if a.id in kept_ids]
        message.attachments.extend(files)
        message.flags &= ~MessageFlag.LOADING
        message.edited_at = utcnow()

    async def _edit_channel_message(self, ctx: _Ctx) -> tuple[int, Any]:
        channel = self._channel(ctx)
        message = self._channel_message(ctx, channel)
        if message.author_id != self.world.bot.id:
            raise _error(403, 50005, "Cannot edit a message authored by another user")
        body = ctx.body if isinstance(ctx.body, dict) else {}
        errors = FormErrors()
        check_message(body, errors, check_nonce=False)
        if errors:
            raise _form_error(errors)
        self._apply_edit(message, body, ctx.files)
        await self._dispatch_message("MESSAGE_UPDATE", message)
        self._notify()
        return 200, self.world.message_payload(message)

    async def _delete_channel_message(self, ctx: _Ctx) -> tuple[int, Any]:
        channel = self._channel(ctx)
        message = self._channel_message(ctx, channel)
        if message.author_id != self.world.bot.id and not channel.is_dm:
            self._channel(ctx, need=Permission.MANAGE_MESSAGES)
        message.deleted = True
        body: JSON = {"id": str(message.id), "channel_id": str(channel.id)}
        if channel.guild_id is not None:
            body["guild_id"] = str(channel.guild_id)
        await self.gateway.dispatch(
            "MESSAGE_DELETE",
            body,
            guild_id=channel.guild_id,
            intent=Intent.GUILD_MESSAGES if channel.guild_id else Intent.DIRECT_MESSAGES,
        )
        self._notify()
        return 204, None

    # -- REST: guilds ------------------------------------------------------------------------

    def _guild(self, ctx: _Ctx) -> Guild:
        guild = self.world.guilds.get(_int(ctx.params["guild_id"]))
        if guild is None:
            raise _unknown("Guild", 10004)
        if self.world.bot.id not in guild.members:
            raise _error(403, 50001, "Missing Access")
        return guild

    async def _get_guild(self, ctx: _Ctx) -> tuple[int, Any]:
        guild = self._guild(ctx)
        body = self.world.guild_payload(guild.id, include_all_members=False)
        for key in ("channels", "threads", "members", "presences", "voice_states", "joined_at"):
            body.pop(key, None)
        return 200, body

    async def _get_guild_channels(self, ctx: _Ctx) -> tuple[int, Any]:
        guild = self._guild(ctx)
        return 200, [
            self.world.channel_payload(c.id)
            for c in self.world.guild_channels(guild.id)
            if not c.is_thread
        ]

    async def _get_guild_roles(self, ctx: _Ctx) -> tuple[int, Any]:
        guild = self._guild(ctx)
        return 200, [r.to_payload() for r in guild.roles.values()]

    async def _get_guild_member(self, ctx: _Ctx) -> tuple[int, Any]:
        guild = self._guild(ctx)
        user_id = _int(ctx.params["user_id"])
        if user_id not in guild.members:
            raise _unknown("Member", 10007)
        return 200, self.world.member_payload(guild.id, user_id)

    # -- REST: interaction callbacks and webhooks ---------------------------------------------

    async def _interaction_callback(self, ctx: _Ctx) -> tuple[int, Any]:
        handle = self._handles_by_id.get(_int(ctx.params["interaction_id"]))
        if handle is None or handle.token != ctx.params["token"]:
            raise _error(404, 10062, "Unknown interaction")
        if handle.callback is not None:
            raise _error(400, 40060, "Interaction has already been acknowledged.")
        if (
            self.interaction_deadline is not None
            and time.monotonic() - handle.created_monotonic > self.interaction_deadline
        ):
            # Discord forgets an interaction that was not answered within 3 seconds.
            raise _error(404, 10062, "Unknown interaction")
        body = ctx.body if isinstance(ctx.body, dict) else {}
        cb_type = body.get("type")
        data = body.get("data") or {}
        if cb_type not in ALLOWED_CALLBACKS.get(handle.type, set()):
            errors = FormErrors()
            errors.add(
                ["type"], "INTERACTION_RESPONSE_TYPE_INVALID", "Invalid interaction response type"
            )
            raise _form_error(errors)
        world = self.world
        channel = world.channels[handle.channel_id]
        message: Message | None = None
        if cb_type == CallbackType.CHANNEL_MESSAGE:
            errors = FormErrors()
            check_message(data, errors, prefix=["data"])
            if errors:
                raise _form_error(errors)
            if is_empty_message(data, len(ctx.files)):
                raise _error(400, 50006, "Cannot send an empty message")
            message = await self._create_message(
                channel,
                data,
                files=ctx.files,
                source="interaction",
                flags=int(data.get("flags") or 0) & _MESSAGE_FLAGS_SETTABLE,
                handle=handle,
                message_type=20 if handle.type == InteractionType.APPLICATION_COMMAND else 0,
            )
            handle.original = message
        elif cb_type == CallbackType.DEFERRED_CHANNEL_MESSAGE:
            flags = MessageFlag.LOADING | (int(data.get("flags") or 0) & MessageFlag.EPHEMERAL)
            message = await self._create_message(
                channel,
                {},
                files=[],
                source="interaction",
                flags=flags,
                handle=handle,
                message_type=20 if handle.type == InteractionType.APPLICATION_COMMAND else 0,
            )
            handle.original = message
        elif cb_type in (CallbackType.DEFERRED_UPDATE_MESSAGE, CallbackType.UPDATE_MESSAGE):
            message = world.messages.get(handle.source_message_id or 0)
            if message is None:
                raise _unknown("Message", 10008)
            handle.original = message
            if cb_type == CallbackType.UPDATE_MESSAGE:
                errors = FormErrors()
                check_message(data, errors, prefix=["data"], check_nonce=False)
                if errors:
                    raise _form_error(errors)
                self._apply_edit(message, data, ctx.files)
                if not message.ephemeral:
                    await self._dispatch_message("MESSAGE_UPDATE", message)
        elif cb_type == CallbackType.AUTOCOMPLETE_RESULT:
            errors = FormErrors()
            check_choices(data.get("choices"), errors)
            if errors:
                raise _form_error(errors)
        elif cb_type == CallbackType.MODAL:
            handle.modal = data
        handle.callback = CallbackRecord(type=cb_type, data=data, at=utcnow(), message=message)
        self._notify()
        interaction_info: JSON = {
            "id": str(handle.id),
            "type": handle.type,
            "activity_instance_id": None,
            "response_message_id": None if message is None else str(message.id),
            "response_message_loading": cb_type == CallbackType.DEFERRED_CHANNEL_MESSAGE,
            "response_message_ephemeral": bool(message is not None and message.ephemeral),
        }
        response: JSON = {"interaction": interaction_info}
        if message is not None and cb_type in (4, 5, 7):
            response["resource"] = {"type": cb_type, "message": world.message_payload(message)}
        return 200, response

    def _webhook_handle(self, ctx: _Ctx) -> InteractionHandle:
        handle = self._handles_by_token.get(ctx.params["token"])
        if handle is None or _int(ctx.params["app_id"]) != self.world.application_id:
            raise _unknown("Webhook", 10015)
        if handle.expired:
            raise _error(401, 50027, "Invalid Webhook Token")
        if handle.callback is None:
            raise _unknown("Webhook", 10015)
        return handle

    async def _execute_webhook(self, ctx: _Ctx) -> tuple[int, Any]:
        handle = self._webhook_handle(ctx)
        body = ctx.body if isinstance(ctx.body, dict) else {}
        errors = FormErrors()
        check_message(body, errors)
        if errors:
            raise _form_error(errors)
        if is_empty_message(body, len(ctx.files)):
            raise _error(400, 50006, "Cannot send an empty message")
        original = handle.original
        if (
            handle.callback is not None
            and handle.callback.type == CallbackType.DEFERRED_CHANNEL_MESSAGE
            and original is not None
            and original.loading
        ):
            # The first follow-up after a "thinking" deferral replaces the loading message,
            # keeping the deferral's ephemeral flag.
            self._apply_edit(original, body, ctx.files)
            original.edited_at = None
            message = original
            if not message.ephemeral:
                await self._dispatch_message("MESSAGE_UPDATE", message)
        else:
            channel = self.world.channels[handle.channel_id]
            message = await self._create_message(
                channel,
                body,
                files=ctx.files,
                source="followup",
                flags=int(body.get("flags") or 0) & _MESSAGE_FLAGS_SETTABLE,
                handle=handle,
                message_type=20 if handle.type == InteractionType.APPLICATION_COMMAND else 0,
            )
        handle.followups.append(message)
        self._notify()
        if ctx.query.get("wait", "false").lower() in ("1", "true"):
            return 200, self.world.message_payload(message)
        return 204, None

    def _webhook_message(self, ctx: _Ctx, handle: InteractionHandle) -> Message:
        ref = ctx.params["message_id"]
        if ref == "@original":
            message = handle.original
        else:
            wanted = _int(ref)
            message = next((m for m in handle.followups if m.id == wanted), None)
            if message is None and handle.original is not None and handle.original.id == wanted:
                message = handle.original
        if message is None or message.deleted:
            raise _unknown("Message", 10008)
        return message

    async def _get_webhook_message(self, ctx: _Ctx) -> tuple[int, Any]:
        handle = self._webhook_handle(ctx)
        return 200, self.world.message_payload(self._webhook_message(ctx, handle))

    async def _edit_webhook_message(self, ctx: _Ctx) -> tuple[int, Any]:
        handle = self._webhook_handle(ctx)
        message = self._webhook_message(ctx, handle)
        body = ctx.body if isinstance(ctx.body, dict) else {}
        errors = FormErrors()
        check_message(body, errors, check_nonce=False)
        if errors:
            raise _form_error(errors)
        was_loading = message.loading
        self._apply_edit(message, body, ctx.files)
        if was_loading:
            message.edited_at = None  # completing a deferral is not shown as an edit
        if message is handle.original:
            handle.edits += 1
        if not message.ephemeral:
            await self._dispatch_message("MESSAGE_UPDATE", message)
        self._notify()
        return 200, self.world.message_payload(message)

    async def _delete_webhook_message(self, ctx: _Ctx) -> tuple[int, Any]:
        handle = self._webhook_handle(ctx)
        message = self._webhook_message(ctx, handle)
        message.deleted = True
        self._notify()
        return 204, None


def _int(value: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise _error(400, 50035, "Invalid Form Body") from None


def _fault_error(rule: FaultRule) -> ApiError:
    status = rule.status
    if status == 429:
        return ApiError(
            429,
            {
                "message": "You are being rate limited.",
                "retry_after": rule.retry_after,
                "global": False,
            },
            headers={
                "Retry-After": str(max(1, round(rule.retry_after))),
                "X-RateLimit-Scope": "shared",
            },
        )
    if status == 403:
        code = rule.code if rule.code is not None else 50013
        default = {
            50013: "Missing Permissions",
            50001: "Missing Access",
            50007: "Cannot send messages to this user",
        }
        return _error(403, code, rule.message or default.get(code, "Forbidden"))
    if status == 404:
        code = rule.code if rule.code is not None else 10003
        return _error(404, code, rule.message or "Unknown Channel")
    if status == 502:
        return ApiError(
            502,
            _BAD_GATEWAY_HTML,
            content_type="text/html",
        )
    if status == 503:
        return ApiError(
            503,
            "upstream connect error or disconnect/reset before headers. reset reason: overflow",
            content_type="text/plain",
        )
    if status >= 500:
        return _error(status, 0, rule.message or f"{status}: Internal Server Error")
    return _error(status, rule.code or 0, rule.message or f"{status}")
