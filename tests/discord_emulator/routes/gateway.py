"""REST routes for gateway discovery: GET /gateway and /gateway/bot."""

from __future__ import annotations

import logging
from typing import Any

from ..api import Ctx, RouteTable
from ..core import EmulatorCore

log = logging.getLogger(__name__)


class GatewayRoutes(EmulatorCore):
    """Where to connect, how many shards, how many session starts remain."""

    def _add_gateway_routes(self, table: RouteTable) -> None:
        table.add("GET", "/gateway", self._get_gateway, "gateway", auth=False)
        table.add("GET", "/gateway/bot", self._get_gateway_bot, "gateway")

    async def _get_gateway(self, ctx: Ctx) -> tuple[int, Any]:
        return 200, {"url": self.gateway_url.rstrip("/")}

    async def _get_gateway_bot(self, ctx: Ctx) -> tuple[int, Any]:
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
