"""Tests for pointing discord.py at another REST base and gateway."""

from __future__ import annotations

from collections.abc import Iterator

import discord.gateway
import discord.http
import pytest
import yarl

from bot.discord_endpoints import (
    DISCORD_API_URL,
    DISCORD_GATEWAY_URL,
    configure_endpoints,
    current_endpoints,
)


@pytest.fixture(autouse=True)
def restore_endpoints() -> Iterator[None]:
    previous = current_endpoints()
    yield
    configure_endpoints(*previous)


def test_custom_endpoints_reach_route_and_gateway() -> None:
    """Route.BASE (REST, interactions, webhooks) and DEFAULT_GATEWAY take the configured URLs."""
    configure_endpoints("http://127.0.0.1:8080/api/v10/", "ws://127.0.0.1:8080/")
    assert discord.http.Route.BASE == "http://127.0.0.1:8080/api/v10"
    route = discord.http.Route(
        "POST",
        "/interactions/{webhook_id}/{webhook_token}/callback",
        webhook_id=1,
        webhook_token="t",
    )
    assert route.url == "http://127.0.0.1:8080/api/v10/interactions/1/t/callback"
    gateway = discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY
    assert gateway == yarl.URL("ws://127.0.0.1:8080/")
    assert current_endpoints() == ("http://127.0.0.1:8080/api/v10", "ws://127.0.0.1:8080/")


def test_none_means_discord_itself() -> None:
    """Unset settings put discord.py back on discord.com, whatever was configured before."""
    configure_endpoints("https://proxy.internal/api/v10", "wss://gw.internal/")
    configure_endpoints(None, None)
    assert current_endpoints() == (DISCORD_API_URL, DISCORD_GATEWAY_URL)


@pytest.mark.parametrize(
    ("api", "gateway", "message"),
    [
        ("ws://127.0.0.1/api/v10", None, "must start with http:// or https://"),
        ("127.0.0.1:8080/api/v10", None, "must start with http:// or https://"),
        ("http:///api/v10", None, "has no host"),
        ("http://127.0.0.1:99999/api/v10", None, "not a valid URL"),
        ("http://127.0.0.1/api/v10?x=1", None, "query string"),
        ("http://127.0.0.1:8080", None, "must end in a version path like /api/v10"),
        ("https://proxy.internal/api/", None, "must end in a version path like /api/v10"),
        ("https://proxy.internal/v10", None, "must end in a version path like /api/v10"),
        (None, "http://127.0.0.1:8080/", "must start with ws:// or wss://"),
        (None, "wss://gw.internal/?v=10", "query string"),
    ],
)
def test_bad_urls_are_refused(api: str | None, gateway: str | None, message: str) -> None:
    """A malformed endpoint raises ValueError naming it, and leaves discord.py untouched."""
    before = current_endpoints()
    with pytest.raises(ValueError, match=message):
        configure_endpoints(api, gateway)
    assert current_endpoints() == before
