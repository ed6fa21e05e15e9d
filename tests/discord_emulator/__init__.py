"""A local Discord (REST API + gateway) that the real discord.py client runs against in tests.

Start it, point discord.py at it with `bot.discord_endpoints.configure_endpoints(
emu.api_url, emu.gateway_url)`, build guilds and users through its async API,
then drive the bot: `invoke_command`, `autocomplete`, `click_component`,
`submit_modal`, and await what it did with `wait_for_messages` or an
`InteractionHandle`. See `server.DiscordEmulator`, which assembles the parts:
state (`core`), HTTP front end (`frontend`, `api`), REST routes by resource
(`routes/`), fault injection (`faults`), world builder (`builder`) and
interaction driver (`driver`).
"""

from .client import running_client
from .gateway import Intent, SentEvent
from .interactions import (
    CallbackRecord,
    CallbackType,
    EmulatorError,
    EmulatorTimeoutError,
    InteractionHandle,
    InteractionType,
)
from .ratelimit import BucketConfig
from .server import DEFAULT_TOKEN, CommandSync, DiscordEmulator, EmulatorStats, RequestRecord
from .state import (
    ALL_PERMISSIONS,
    DEFAULT_BOT_PERMISSIONS,
    DEFAULT_EVERYONE_PERMISSIONS,
    Channel,
    ChannelType,
    Guild,
    Member,
    Message,
    MessageFlag,
    Overwrite,
    Permission,
    Role,
    User,
    shard_for_guild,
)

__all__ = [
    "ALL_PERMISSIONS",
    "DEFAULT_BOT_PERMISSIONS",
    "DEFAULT_EVERYONE_PERMISSIONS",
    "DEFAULT_TOKEN",
    "BucketConfig",
    "CallbackRecord",
    "CallbackType",
    "Channel",
    "ChannelType",
    "CommandSync",
    "DiscordEmulator",
    "EmulatorError",
    "EmulatorStats",
    "EmulatorTimeoutError",
    "Guild",
    "Intent",
    "InteractionHandle",
    "InteractionType",
    "Member",
    "Message",
    "MessageFlag",
    "Overwrite",
    "Permission",
    "RequestRecord",
    "Role",
    "SentEvent",
    "User",
    "running_client",
    "shard_for_guild",
]
