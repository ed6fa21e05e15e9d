"""Point discord.py at a Discord API and gateway other than discord.com.

Two deployments need this. Large ones put a shared REST proxy (one rate-limit
view for many processes) in front of Discord and want every HTTP call to go
through it. Tests run the real discord.py client against a local Discord
emulator on 127.0.0.1, so nothing in the bot is patched or mocked and no test
touches the network.

discord.py keeps both endpoints in class attributes, so they are process-wide:

* `discord.http.Route.BASE` is the REST base (version path included). Every
  `Route` is built from it, and that includes the interaction callbacks and the
  follow-up webhooks sent by `discord.webhook.async_`, which import the same
  `Route` class.
* `discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY` is where a plain `Client`
  connects, where an `AutoShardedClient` with an explicit `shard_count`
  connects, and where any client falls back after an INVALID_SESSION.
  `AutoShardedClient` without `shard_count` asks `GET /gateway/bot` (answered by
  the REST base above), and reconnects use READY's `resume_gateway_url`; both
  come from the server that is configured here, so they follow automatically.
"""

from __future__ import annotations

import logging
import re
from urllib.parse import urlsplit

import discord.gateway
import discord.http
import yarl

log = logging.getLogger(__name__)

DISCORD_API_URL = "https://discord.com/api/v10"
DISCORD_GATEWAY_URL = "wss://gateway.discord.gg/"

_VERSIONED_PATH = re.compile(r"/api/v\d+$")


def _check_url(kind: str, url: str, schemes: tuple[str, ...]) -> None:
    try:
        parts = urlsplit(url)
        port = parts.port  # raises ValueError for a port that is not a number
    except ValueError as exc:
        raise ValueError(f"{kind} {url!r} is not a valid URL: {exc}") from exc
    if parts.scheme not in schemes:
        allowed = " or ".join(f"{s}://" for s in schemes)
        raise ValueError(f"{kind} {url!r} must start with {allowed}")
    if not parts.hostname:
        raise ValueError(f"{kind} {url!r} has no host")
    if parts.query or parts.fragment:
        # discord.py appends paths to the REST base and replaces the gateway's query
        # string with its own, so either would be silently mangled.
        raise ValueError(f"{kind} {url!r} must not contain a query string or fragment")
    if port == 0:
        raise ValueError(f"{kind} {url!r} has port 0")


def configure_endpoints(api_url: str | None, gateway_url: str | None) -> None:
    """Make discord.py use `api_url` for REST and `gateway_url` for the gateway.

    `None` means Discord's own endpoint, so calling this with a settings object's
    optional values always leaves discord.py in a known state. Raises
    ValueError, naming the offending value, for anything that is not an
    http(s) URL ending in a version path such as /api/v10 (API) or a ws(s) URL
    (gateway).
    """
    api = DISCORD_API_URL if api_url is None else api_url.strip()
    gateway = DISCORD_GATEWAY_URL if gateway_url is None else gateway_url.strip()
    _check_url("Discord API URL", api, ("http", "https"))
    _check_url("Discord gateway URL", gateway, ("ws", "wss"))

    api = api.rstrip("/")  # Route appends paths that start with "/"
    if not _VERSIONED_PATH.search(urlsplit(api).path):
        # discord.py appends routes such as /users/@me directly to it: without the
        # version every request would be a 404.
        raise ValueError(
            f"Discord API URL {api!r} must end in a version path like /api/v10, e.g. {api}/api/v10"
        )
    discord.http.Route.BASE = api
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(gateway)
    if api_url is not None or gateway_url is not None:
        log.info("discord.py endpoints: REST %s, gateway %s", api, gateway)


def current_endpoints() -> tuple[str, str]:
    """The REST base and gateway URL discord.py uses right now (for restoring them)."""
    return discord.http.Route.BASE, str(discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY)
