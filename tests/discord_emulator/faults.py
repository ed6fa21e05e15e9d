"""Fault injection: failing message posts (as Discord words its errors) and gateway disruptions."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from .api import ApiError, api_error
from .core import EmulatorCore
from .gateway import Op

log = logging.getLogger(__name__)

_BAD_GATEWAY_HTML = (
    "<html><head><title>502 Bad Gateway</title></head>"
    "<body><center><h1>502 Bad Gateway</h1></center></body></html>"
)


@dataclass
class FaultRule:
    channel_id: int
    status: int
    remaining: int
    code: int | None = None
    message: str | None = None
    retry_after: float = 1.0
    after_create: bool = False


class FaultInjection(EmulatorCore):
    """Failures a test arranges: failing message posts, rate-limit resets, gateway disruptions."""

    # -- failing REST calls ---------------------------------------------------------------

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

    def exhaust_global_rate_limit(self) -> None:
        """As if other requests had spent the bot's global limit for the second in which its
        next request arrives."""
        self._limiter.exhaust_global()

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


def fault_error(rule: FaultRule) -> ApiError:
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
        return api_error(403, code, rule.message or default.get(code, "Forbidden"))
    if status == 404:
        code = rule.code if rule.code is not None else 10003
        return api_error(404, code, rule.message or "Unknown Channel")
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
        return api_error(status, 0, rule.message or f"{status}: Internal Server Error")
    return api_error(status, rule.code or 0, rule.message or f"{status}")
