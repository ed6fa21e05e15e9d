"""REST routes for guilds: the guild, its channels, roles and members."""

from __future__ import annotations

import logging
from typing import Any

from ..api import Ctx, RouteTable, api_error, parse_int, unknown
from ..core import EmulatorCore
from ..state import Guild

log = logging.getLogger(__name__)


class GuildRoutes(EmulatorCore):
    """Guild reads, visible only to a bot that is a member."""

    def _add_guild_routes(self, table: RouteTable) -> None:
        g = "/guilds/{guild_id}"
        table.add("GET", g, self._get_guild, "guild", "guild_id")
        table.add("GET", f"{g}/channels", self._get_guild_channels, "guild", "guild_id")
        table.add("GET", f"{g}/roles", self._get_guild_roles, "guild", "guild_id")
        table.add("GET", f"{g}/members/{{user_id}}", self._get_guild_member, "member", "guild_id")

    def _guild(self, ctx: Ctx) -> Guild:
        guild = self.world.guilds.get(parse_int(ctx.params["guild_id"]))
        if guild is None:
            raise unknown("Guild", 10004)
        if self.world.bot.id not in guild.members:
            raise api_error(403, 50001, "Missing Access")
        return guild

    async def _get_guild(self, ctx: Ctx) -> tuple[int, Any]:
        guild = self._guild(ctx)
        body = self.world.guild_payload(guild.id, include_all_members=False)
        for key in ("channels", "threads", "members", "presences", "voice_states", "joined_at"):
            body.pop(key, None)
        return 200, body

    async def _get_guild_channels(self, ctx: Ctx) -> tuple[int, Any]:
        guild = self._guild(ctx)
        return 200, [
            self.world.channel_payload(c.id)
            for c in self.world.guild_channels(guild.id)
            if not c.is_thread
        ]

    async def _get_guild_roles(self, ctx: Ctx) -> tuple[int, Any]:
        guild = self._guild(ctx)
        return 200, [r.to_payload() for r in guild.roles.values()]

    async def _get_guild_member(self, ctx: Ctx) -> tuple[int, Any]:
        guild = self._guild(ctx)
        user_id = parse_int(ctx.params["user_id"])
        if user_id not in guild.members:
            raise unknown("Member", 10007)
        return 200, self.world.member_payload(guild.id, user_id)
