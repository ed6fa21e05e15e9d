"""`DiscordEmulator`: Discord's REST API and gateway on 127.0.0.1 for end-to-end tests.

The real discord.py client runs against it unchanged; only its endpoints are
pointed here (`bot.discord_endpoints.configure_endpoints`). The emulator serves
the REST routes a bot uses (login, gateway discovery, application commands,
interaction callbacks and follow-ups, channel messages, DMs), enforces
Discord's limits, permissions, nonce deduplication and per-route rate limits
with real headers and error bodies, and exposes a test API to build guilds,
invoke slash commands, click components, inject failures and await what the
bot did. Everything runs on the caller's event loop; nothing is mocked.

This module only assembles the parts:

- `core`: the state (world, records, stats, rate limiter) and waiting on it;
- `frontend`: the aiohttp server and REST dispatch; `api`: error answers and routes;
- `routes/`: one module per resource (gateway, users and application commands,
  channels and messages, guilds, interactions and webhooks);
- `messages`: message creation and edits the routes share;
- `faults`: fault injection; `builder`: the world builder; `driver`: the interaction driver.
"""

from __future__ import annotations

from .api import ApiError, Route, RouteTable
from .builder import WorldBuilder
from .core import (
    ATTACHMENT_SIZE_LIMIT,
    DEFAULT_TOKEN,
    DISCORD_MESSAGE_RATE_LIMIT,
    GENEROUS_RATE_LIMIT,
    INTERACTION_TOKEN_LIFETIME,
    CommandSync,
    EmulatorStats,
    RequestRecord,
)
from .driver import InteractionDriver
from .faults import FaultRule
from .frontend import HttpFrontend
from .routes import ChannelRoutes, GatewayRoutes, GuildRoutes, InteractionRoutes, UserRoutes

__all__ = [
    "ATTACHMENT_SIZE_LIMIT",
    "DEFAULT_TOKEN",
    "DISCORD_MESSAGE_RATE_LIMIT",
    "GENEROUS_RATE_LIMIT",
    "INTERACTION_TOKEN_LIFETIME",
    "ApiError",
    "CommandSync",
    "DiscordEmulator",
    "EmulatorStats",
    "FaultRule",
    "RequestRecord",
]


class DiscordEmulator(
    HttpFrontend,
    WorldBuilder,
    InteractionDriver,
    GatewayRoutes,
    UserRoutes,
    ChannelRoutes,
    GuildRoutes,
    InteractionRoutes,
):
    """A local Discord for one bot application. `async with DiscordEmulator() as emu:`."""

    def _build_routes(self) -> list[Route]:
        table = RouteTable()
        self._add_gateway_routes(table)
        self._add_user_routes(table)
        self._add_channel_routes(table)
        self._add_guild_routes(table)
        self._add_interaction_routes(table)
        return table.routes
