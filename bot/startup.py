"""Waiting for Discord at start-up instead of exiting when the network is not up yet.

At boot the network (or DNS) may come up after the bot, and Discord has short
outages. Before logging in, `paperbell run` asks the REST base for `/gateway`
(no token needed); until that answers it says what fails and tries again after
growing waits: "cannot reach discord.com (DNS lookup failed); retrying in 10 s".
Any HTTP answer below 500 counts as reachable: a wrong token is then refused
by the login itself (exit 2), not retried here.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
from collections.abc import Sequence
from urllib.parse import urlsplit

import aiohttp

log = logging.getLogger(__name__)

RETRY_DELAYS: tuple[float, ...] = (1, 2, 5, 10, 20, 30, 60)  # seconds; then every 60 s
PROBE_TIMEOUT = 10.0


def display_host(url: str) -> str:
    """`discord.com`, or `host:port` when the URL names a port."""
    parts = urlsplit(url)
    host = parts.hostname or url[:60]
    return f"{host}:{parts.port}" if parts.port else host


def describe_failure(exc: BaseException) -> str:
    """A few words for why a connection failed, for an operator reading the log."""
    if isinstance(exc, TimeoutError):
        return f"no answer within {PROBE_TIMEOUT:g} s"
    if isinstance(exc, aiohttp.ClientConnectorError):
        os_error = exc.os_error
        if isinstance(os_error, socket.gaierror):
            return "DNS lookup failed"
        if isinstance(os_error, ssl.SSLError) or isinstance(exc, aiohttp.ClientSSLError):
            return "TLS handshake failed"
        if isinstance(os_error, ConnectionRefusedError):
            return "connection refused"
        return (os_error.strerror or type(os_error).__name__).lower()
    if isinstance(exc, OSError):
        return (exc.strerror or type(exc).__name__).lower()
    return type(exc).__name__


async def probe(session: aiohttp.ClientSession, api_base: str) -> str | None:
    """None when Discord's REST base answers, else the reason it cannot be reached."""
    try:
        async with session.get(
            f"{api_base.rstrip('/')}/gateway",
            timeout=aiohttp.ClientTimeout(total=PROBE_TIMEOUT),
            allow_redirects=False,
        ) as resp:
            if resp.status >= 500:
                return f"HTTP {resp.status}"
            return None
    except (aiohttp.ClientError, OSError, TimeoutError) as exc:
        return describe_failure(exc)


async def wait_for_discord(
    api_base: str, stopping: asyncio.Event, *, delays: Sequence[float] = RETRY_DELAYS
) -> bool:
    """Return True once Discord's REST base answers; False if `stopping` is set first."""
    host = display_host(api_base)
    attempt = 0
    async with aiohttp.ClientSession() as session:
        while not stopping.is_set():
            reason = await probe(session, api_base)
            if reason is None:
                if attempt:
                    log.info("reached %s after %d failed attempts", host, attempt)
                return True
            delay = delays[min(attempt, len(delays) - 1)]
            log.warning("cannot reach %s (%s); retrying in %g s", host, reason, delay)
            attempt += 1
            try:
                await asyncio.wait_for(stopping.wait(), delay)
            except TimeoutError:
                continue
    return False
